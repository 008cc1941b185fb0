//! AWS names drpilot reads in many layers: region names, the parts of an ARN, and the
//! `s3://bucket/prefix?region=R` locations of a team's state. A leaf: pure functions of
//! strings, so the runbook reader, the cloud seam and the state store share one
//! definition without depending on each other.

/// Whether `s` has the shape of an AWS region name: partition-area-direction-N, e.g.
/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`. A shape check, not a list, so new
/// regions need no release of drpilot.
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[0].len() == 2
        && parts[parts.len() - 1]
            .parse::<u8>()
            .is_ok_and(|n| (1..=20).contains(&n))
}

/// The region inside an ARN (`arn:PARTITION:SERVICE:REGION:...`), if it has one.
pub fn arn_region(arn: &str) -> Option<&str> {
    let region = arn.split(':').nth(3)?;
    (!region.is_empty()).then_some(region)
}

/// One `s3://bucket/prefix` state location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The prefix, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// `?region=`: the bucket's region, when the operator states it (otherwise it is
    /// looked up, which needs some region to answer).
    pub region: Option<String>,
}

impl S3Location {
    /// Parses `s3://bucket[/prefix][?region=R]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("--state {url}: {why}");
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("not an s3:// URL"))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        // S3's bucket naming rules: 3-63 of lowercase letters, digits, '.', '-',
        // starting and ending with a letter or digit.
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && bucket
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric());
        if !valid {
            return Err(bad(&format!(
                "`{bucket}` is not a bucket name (3-63 lowercase letters, digits, '.' or '-')"
            )));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(bad("the prefix has an empty, `.` or `..` segment"));
        }
        let mut region = None;
        if let Some(q) = query {
            for pair in q.split('&') {
                match pair.split_once('=') {
                    Some(("region", r)) if is_region(r) => {
                        region = Some(r.to_string());
                    }
                    Some(("region", r)) => {
                        return Err(bad(&format!("`{r}` is not an AWS region")));
                    }
                    _ => {
                        return Err(bad(&format!(
                            "unknown parameter `{pair}` (only `region=` is understood)"
                        )));
                    }
                }
            }
        }
        Ok(Self {
            bucket: bucket.to_string(),
            prefix,
            region,
        })
    }

    /// The key of `rest` under the prefix.
    pub fn key(&self, rest: &str) -> String {
        if self.prefix.is_empty() {
            rest.to_string()
        } else {
            format!("{}/{rest}", self.prefix)
        }
    }

    /// `s3://bucket/key`, for messages.
    pub fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}
