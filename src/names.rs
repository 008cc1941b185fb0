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

/// The name of an ECS cluster or service given by name or by ARN: the end of its ARN
/// (`arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME` -> `NAME`,
/// `...:cluster/NAME` -> `NAME`), else the name given.
pub fn ecs_name(v: &str) -> &str {
    if v.starts_with("arn:") {
        v.rsplit('/').next().unwrap_or(v)
    } else {
        v
    }
}

/// The AWS partition a region belongs to, as ARNs spell it: `aws-cn` for the China
/// regions, `aws-us-gov` for GovCloud, `aws-iso` and `aws-iso-b` for the isolated
/// regions, `aws` for the rest.
pub fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// The partition an ARN names (`arn:PARTITION:...`).
pub fn arn_partition(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next() == Some("arn"))
        .then(|| parts.next())
        .flatten()
        .filter(|p| !p.is_empty())
}

/// Whether two engine versions may fail over or switch over to each other: AWS needs
/// the same major and minor version, and the patch level may differ (Aurora
/// PostgreSQL `16.4` and `16.4.2`; Aurora MySQL `8.0.mysql_aurora.3.04.0` and
/// `8.0.mysql_aurora.3.04.1`, whose own version follows `mysql_aurora`).
pub fn compatible_engine_versions(a: &str, b: &str) -> bool {
    fn major_minor(v: &str) -> Vec<&str> {
        let parts: Vec<&str> = v.split('.').collect();
        match parts.iter().position(|p| *p == "mysql_aurora") {
            Some(i) => parts.iter().take(i + 3).copied().collect(),
            None => parts.iter().take(2).copied().collect(),
        }
    }
    a == b || major_minor(a) == major_minor(b)
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

/// The longest DB cluster snapshot identifier AWS accepts (CreateDBClusterSnapshot,
/// CopyDBClusterSnapshot: "1 to 63 letters, numbers, or hyphens").
pub const MAX_CLUSTER_SNAPSHOT_ID: usize = 63;

/// The longest `snapshot_prefix` a runbook may give `aurora.snapshot_lost_writes`: with
/// the hash and the failover's time that make a long identifier unique, at least a few
/// characters of the cluster's name still fit in [`MAX_CLUSTER_SNAPSHOT_ID`].
pub const MAX_SNAPSHOT_PREFIX: usize = 30;

/// What AWS refuses in a DB cluster snapshot identifier (CopyDBClusterSnapshot's
/// TargetDBClusterSnapshotIdentifier): 1 to 63 letters, digits or hyphens, a letter
/// first, no hyphen at the end, no two in a row. Letters of either case: AWS stores the
/// identifier in lowercase.
pub fn cluster_snapshot_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() || id.len() > MAX_CLUSTER_SNAPSHOT_ID {
        Some("must contain from 1 to 63 letters, numbers, or hyphens")
    } else if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Some("must contain only letters, numbers, or hyphens")
    } else if !id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some("first character must be a letter")
    } else if id.ends_with('-') || id.contains("--") {
        Some("can't end with a hyphen or contain two consecutive hyphens")
    } else {
        None
    }
}

/// What is wrong with a snapshot identifier prefix, if anything: AWS's rules for the
/// identifier (a letter first, then letters, digits and single hyphens, no hyphen at
/// the end) and [`MAX_SNAPSHOT_PREFIX`].
pub fn snapshot_prefix_problem(prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return Some("is empty".into());
    }
    if !prefix.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Some("must start with a letter".into());
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Some(format!(
            "may hold only letters, digits and hyphens (found {c:?})"
        ));
    }
    if prefix.contains("--") {
        return Some("must not contain two consecutive hyphens".into());
    }
    if prefix.ends_with('-') {
        return Some("must not end with a hyphen".into());
    }
    if prefix.len() > MAX_SNAPSHOT_PREFIX {
        return Some(format!(
            "is {} characters; at most {MAX_SNAPSHOT_PREFIX} leave room for the cluster's \
             name and the failover's time in a {MAX_CLUSTER_SNAPSHOT_ID}-character snapshot \
             identifier",
            prefix.len()
        ));
    }
    None
}

/// The identifier of the manual copy of an `rds:unplanned-global-failover-*` snapshot:
/// `PREFIX-CLUSTER-TIME`, deterministic (an attempt after a lost response finds its own
/// copy), lowercase (AWS stores identifiers in lowercase, so a re-read compares equal),
/// and always valid for CopyDBClusterSnapshot: at most 63 letters, digits and single
/// hyphens, a letter first. When the name is too long, the cluster's part is shortened
/// and a hash of the full name keeps distinct clusters apart: `PREFIX-CLUS-HASH-TIME`.
pub fn lost_writes_snapshot_id(prefix: &str, source_id: &str) -> String {
    let bare = source_id.strip_prefix("rds:").unwrap_or(source_id);
    let suffix = bare
        .strip_prefix("unplanned-global-failover-")
        .unwrap_or(bare);
    let raw = format!("{prefix}-{suffix}").to_ascii_lowercase();
    let mut id = String::with_capacity(raw.len());
    for ch in raw.chars() {
        let ch = if ch.is_ascii_alphanumeric() { ch } else { '-' };
        if ch == '-' && (id.is_empty() || id.ends_with('-')) {
            continue;
        }
        id.push(ch);
    }
    while id.ends_with('-') {
        id.pop();
    }
    if !id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        id.insert_str(0, "s-");
    }
    if id.len() <= MAX_CLUSTER_SNAPSHOT_ID {
        return id;
    }
    // Keep the failover's time (`YYYY-MM-DD-HH-MM`, how Aurora names the snapshot) for
    // people; shorten the name before it.
    const TIME: usize = "2024-06-01-09-00".len();
    let time = id.len().checked_sub(TIME).map(|at| &id[at..]).filter(|t| {
        is_snapshot_time(t) && id.len() > TIME && id.as_bytes()[id.len() - TIME - 1] == b'-'
    });
    let hash = format!("{:08x}", fnv1a(&id) & 0xffff_ffff);
    let (body, tail) = match time {
        Some(t) => (&id[..id.len() - TIME - 1], format!("-{hash}-{t}")),
        None => (id.as_str(), format!("-{hash}")),
    };
    let mut head = body[..body.len().min(MAX_CLUSTER_SNAPSHOT_ID - tail.len())].to_string();
    while head.ends_with('-') {
        head.pop();
    }
    head + &tail
}

/// `YYYY-MM-DD-HH-MM`.
fn is_snapshot_time(t: &str) -> bool {
    t.len() == 16
        && t.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 | 10 | 13 => b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// A number of Aurora capacity units (ACUs), as Aurora Serverless v2 takes them: "You
/// can specify ACU values in half-step increments, such as 8, 8.5, 9, and so on" (RDS API
/// reference, `ServerlessV2ScalingConfiguration`). Held as a count of half ACUs, so a
/// value read back from AWS compares equal to the value sent, and JSON carries it as the
/// number AWS uses (`0.5`, `64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Acu(u16);

impl Acu {
    /// Zero: a minimum of 0 ACUs turns on automatic pause and resume (auto-pause).
    pub const ZERO: Acu = Acu(0);
    /// The smallest maximum AWS accepts: "The maximum capacity must be higher than 0.5
    /// ACUs" (CloudFormation, `AWS::RDS::DBCluster ServerlessV2ScalingConfiguration`).
    pub const MIN_MAX: Acu = Acu(2);
    /// "The largest value that you can use is 256 for recent Aurora versions, or 128 for
    /// older versions" (RDS API reference, `MaxCapacity`): AWS refuses what the cluster's
    /// version does not support.
    pub const LARGEST: Acu = Acu(512);

    /// `halves` half ACUs.
    pub const fn from_halves(halves: u16) -> Acu {
        Acu(halves)
    }

    /// The count of half ACUs.
    pub const fn halves(self) -> u16 {
        self.0
    }

    /// A value in ACUs, if it is a whole number of half steps from 0 to [`Acu::LARGEST`].
    pub fn from_f64(acu: f64) -> Option<Acu> {
        let halves = acu * 2.0;
        (acu.is_finite()
            && halves.fract() == 0.0
            && (0.0..=f64::from(Self::LARGEST.0)).contains(&halves))
        .then_some(Acu(halves as u16))
    }

    /// The value AWS reads and writes (`MinCapacity`, `MaxCapacity`: a Double).
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 2.0
    }
}

/// `0.5`, `8`, `40.5`: as the user guide writes capacities.
impl std::fmt::Display for Acu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_multiple_of(2) {
            write!(f, "{}", self.0 / 2)
        } else {
            write!(f, "{}.5", self.0 / 2)
        }
    }
}

impl serde::Serialize for Acu {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(2) {
            s.serialize_u16(self.0 / 2)
        } else {
            s.serialize_f64(self.as_f64())
        }
    }
}

impl<'de> serde::Deserialize<'de> for Acu {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Acu::from_f64(v).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{v} is not a capacity in ACUs (0 to {}, in steps of 0.5)",
                Acu::LARGEST
            ))
        })
    }
}

/// FNV-1a (64 bits): a stable hash. The standard library's may change between
/// releases, and what is derived from it must not: identifiers AWS keeps (the
/// lost-writes copy), names in saved simulated worlds.
pub fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_are_half_steps_and_read_back_as_aws_writes_them() {
        for (v, shown) in [
            (0.0, "0"),
            (0.5, "0.5"),
            (8.0, "8"),
            (40.5, "40.5"),
            (256.0, "256"),
        ] {
            let acu = Acu::from_f64(v).unwrap();
            assert_eq!(acu.to_string(), shown);
            assert_eq!(acu.as_f64(), v);
            let json = serde_json::to_value(acu).unwrap();
            assert_eq!(json.to_string(), shown);
            assert_eq!(serde_json::from_value::<Acu>(json).unwrap(), acu);
        }
        for bad in [0.3, -0.5, 256.5, f64::NAN, f64::INFINITY] {
            assert_eq!(Acu::from_f64(bad), None, "{bad}");
        }
        assert!(serde_json::from_str::<Acu>("1.25").is_err());
        assert!(Acu::from_halves(1) < Acu::MIN_MAX);
    }

    /// AWS's rules for a DB cluster snapshot identifier, in the lowercase AWS stores.
    fn valid_snapshot_id(id: &str) -> bool {
        cluster_snapshot_id_problem(id).is_none() && id == id.to_ascii_lowercase()
    }

    #[test]
    fn snapshot_identifiers_are_checked_as_aws_does() {
        assert_eq!(cluster_snapshot_id_problem("My-Copy-2"), None);
        for bad in ["", "9copy", "copy_1", "copy-", "co--py", &"c".repeat(64)] {
            assert!(cluster_snapshot_id_problem(bad).is_some(), "{bad:?}");
        }
        assert_eq!(cluster_snapshot_id_problem(&"c".repeat(63)), None);
    }

    #[test]
    fn partitions_follow_the_regions() {
        assert_eq!(partition_of_region("us-east-1"), "aws");
        assert_eq!(partition_of_region("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of_region("us-iso-east-1"), "aws-iso");
        assert_eq!(partition_of_region("us-isob-east-1"), "aws-iso-b");
        assert_eq!(
            arn_partition("arn:aws-cn:rds:cn-north-1:1:cluster:x"),
            Some("aws-cn")
        );
        assert_eq!(arn_partition("not-an-arn"), None);
    }

    #[test]
    fn short_names_keep_their_readable_identifier() {
        assert_eq!(
            lost_writes_snapshot_id("keep", "rds:unplanned-global-failover-db-2024-06-01-09-00"),
            "keep-db-2024-06-01-09-00"
        );
        assert_eq!(
            lost_writes_snapshot_id("9x__y-", "rds:odd:id--"),
            "s-9x-y-odd-id"
        );
        // AWS stores identifiers in lowercase: the re-read after a lost response must
        // find the copy under the same name.
        assert_eq!(
            lost_writes_snapshot_id(
                "DR-Keep",
                "rds:unplanned-global-failover-DB1-2024-06-01-09-00"
            ),
            "dr-keep-db1-2024-06-01-09-00"
        );
    }

    #[test]
    fn a_long_cluster_name_is_shortened_with_a_hash_and_keeps_the_time() {
        // A 40-character cluster name: 82 characters written out.
        let name = "acme-production-aurora-postgres-use1-v2x";
        let source = format!("rds:unplanned-global-failover-{name}-2024-06-01-09-00");
        let id = lost_writes_snapshot_id("drpilot-lost-writes", &source);
        assert_eq!(id.len(), MAX_CLUSTER_SNAPSHOT_ID, "{id}");
        assert!(valid_snapshot_id(&id), "{id}");
        assert!(id.starts_with("drpilot-lost-writes-acme-prod"), "{id}");
        assert!(id.ends_with("-2024-06-01-09-00"), "{id}");
        // Deterministic, and distinct for clusters that differ only past the cut and for
        // another failover of the same cluster.
        assert_eq!(id, lost_writes_snapshot_id("drpilot-lost-writes", &source));
        let other = source.replace("v2x", "v3x");
        assert_ne!(id, lost_writes_snapshot_id("drpilot-lost-writes", &other));
        let later = source.replace("09-00", "09-05");
        let later = lost_writes_snapshot_id("drpilot-lost-writes", &later);
        assert_ne!(id, later);
        assert!(later.ends_with("-2024-06-01-09-05"), "{later}");
    }

    #[test]
    fn every_identifier_is_valid_for_copy_db_cluster_snapshot() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        runner
            .run(
                &("[a-zA-Z][a-zA-Z0-9-]{0,29}", "[ -~]{0,300}"),
                |(prefix, source)| {
                    let id = lost_writes_snapshot_id(&prefix, &source);
                    prop_assert!(valid_snapshot_id(&id), "{id:?} from {prefix:?} {source:?}");
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn prefixes_are_checked_against_the_identifier_rules() {
        assert_eq!(snapshot_prefix_problem("drpilot-lost-writes"), None);
        for (bad, why) in [
            ("", "is empty"),
            ("1dr", "must start with a letter"),
            ("dr_lost", "may hold only letters, digits and hyphens"),
            ("dr--lost", "two consecutive hyphens"),
            ("dr-", "must not end with a hyphen"),
            (&"d".repeat(31), "is 31 characters; at most 30"),
        ] {
            let problem = snapshot_prefix_problem(bad).unwrap_or_default();
            assert!(problem.contains(why), "{bad:?}: {problem}");
        }
    }
}
