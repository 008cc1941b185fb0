//! A receiver of notifications, parsed from its URL. The URL of a webhook carries its
//! secret (Slack's token is its path), so nothing here ever repeats it: errors and
//! descriptions show the kind and the host at most.

use std::fmt;

/// Where notifications go.
#[derive(Clone, PartialEq, Eq)]
pub enum Receiver {
    /// A generic JSON webhook: each notification is the event's JSON plus `text`.
    Webhook {
        /// The URL POSTed to (a secret).
        url: String,
        /// Its host (and port), which is not.
        host: String,
    },
    /// A Slack-compatible incoming webhook: `{"text": ...}`.
    Slack {
        /// The `https://` URL POSTed to (`slack+` stripped; a secret).
        url: String,
        /// Its host (and port).
        host: String,
    },
    /// An SNS topic, published to through the `cloud` seam in the topic's region.
    Sns {
        /// The topic's region.
        region: String,
        /// The topic (not a secret: access to it is IAM's).
        topic_arn: String,
    },
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// `host` or `host:port`: a DNS name, an IPv4 address or a bracketed IPv6 address.
fn is_host_port(authority: &str) -> bool {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, Some(p)),
        _ => (authority, None),
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    host_ok && port_ok
}

/// Hosts a plain-http Slack receiver may have: tests and local relays only.
fn loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1")
}

/// The first characters of `raw` up to its first `:` if they read as a URL scheme:
/// all a message may show of a value that did not parse.
fn scheme_of(raw: &str) -> String {
    match raw.split_once(':') {
        Some((s, _))
            if !s.is_empty()
                && s.len() <= 20
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            format!("`{s}:`")
        }
        _ => "a value without a URL scheme".to_string(),
    }
}

const EXPECTED: &str =
    "expected http(s)://HOST/PATH, slack+https://HOST/PATH or sns:arn:aws:sns:REGION:ACCOUNT:TOPIC";

impl Receiver {
    /// Parses a receiver's URL. The error never contains the URL (it may be a
    /// secret): only its scheme, or its host for a URL that parsed.
    pub fn parse(raw: &str) -> Result<Receiver, String> {
        let raw = raw.trim();
        if let Some(arn) = raw.strip_prefix("sns:") {
            return Self::sns(arn);
        }
        let (slack, url) = match raw.strip_prefix("slack+") {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let lower = url.to_ascii_lowercase();
        let https = lower.starts_with("https://");
        if !https && !lower.starts_with("http://") {
            return Err(format!(
                "{} is not a notification receiver: {EXPECTED}",
                scheme_of(raw)
            ));
        }
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| format!("{} URL that does not parse", scheme_of(raw)))?;
        let Some(authority) = uri.authority() else {
            return Err(format!("{} URL without a host", scheme_of(raw)));
        };
        if authority.as_str().contains('@') {
            return Err(format!(
                "{} URL with credentials (user:password@) is not supported: a webhook carries its token in its path",
                scheme_of(raw)
            ));
        }
        let host = authority.as_str().to_string();
        if !is_host_port(&host) {
            // `https://user:pass/word@host` splits at the first `/`: what it calls the
            // host may be a password. Show none of it.
            return Err(format!(
                "{} URL whose host is not a host name (credentials in a URL are not supported)",
                scheme_of(raw)
            ));
        }
        if slack {
            if !https && !loopback(uri.host().unwrap_or_default()) {
                return Err(format!(
                    "a Slack webhook must be slack+https:// (slack+http:// only to a loopback host, for tests); host {host}"
                ));
            }
            return Ok(Receiver::Slack {
                url: url.to_string(),
                host,
            });
        }
        Ok(Receiver::Webhook {
            url: url.to_string(),
            host,
        })
    }

    fn sns(arn: &str) -> Result<Receiver, String> {
        let parts: Vec<&str> = arn.split(':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "sns"
            && crate::names::is_region(parts[3])
            && parts[4].len() == 12
            && parts[4].chars().all(|c| c.is_ascii_digit())
            && !parts[5].is_empty()
            && parts[5]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            // A topic ARN is not a secret, but this one may be a mistyped URL: show
            // nothing of it.
            return Err(
                "`sns:` must be followed by a topic ARN (sns:arn:aws:sns:REGION:ACCOUNT:TOPIC, a 12-digit account)"
                    .to_string(),
            );
        }
        Ok(Receiver::Sns {
            region: parts[3].to_string(),
            topic_arn: arn.to_string(),
        })
    }

    /// The receiver for people, events and logs: kind and host, or the topic ARN.
    pub fn describe(&self) -> String {
        match self {
            Receiver::Webhook { host, .. } => format!("webhook {host}"),
            Receiver::Slack { host, .. } => format!("slack {host}"),
            Receiver::Sns { topic_arn, .. } => format!("sns {topic_arn}"),
        }
    }

    /// The secret URL, for delivery only.
    pub(super) fn url(&self) -> Option<&str> {
        match self {
            Receiver::Webhook { url, .. } | Receiver::Slack { url, .. } => Some(url),
            Receiver::Sns { .. } => None,
        }
    }

    /// `text` with this receiver's URL, and its path (where a webhook's token is),
    /// blanked: an error of a transport may quote what it was sent to.
    pub fn scrub(&self, text: &str) -> String {
        let Some(url) = self.url() else {
            return text.to_string();
        };
        let mut out = text.replace(url, "<url>");
        if let Ok(uri) = url.parse::<hyper::Uri>()
            && let Some(pq) = uri.path_and_query()
            && pq.as_str().len() > 1
        {
            out = out.replace(pq.as_str(), "/<hidden>");
            // A token may also appear on its own (a last path segment, a query value).
            for piece in pq.as_str().split(['/', '?', '&', '=']) {
                if piece.len() >= 6 {
                    out = out.replace(piece, "<hidden>");
                }
            }
        }
        out
    }
}

/// The URLs of a list: separated by whitespace or commas (`DRPILOT_NOTIFY`, and the
/// value of a variable `[notify] urls_env` names). A URL never contains either.
pub fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "T0000/B0000/XXXXsecretXXXX";

    #[test]
    fn kinds_follow_the_form_of_the_url() {
        assert_eq!(
            Receiver::parse("https://hooks.example.com/x").unwrap(),
            Receiver::Webhook {
                url: "https://hooks.example.com/x".into(),
                host: "hooks.example.com".into()
            }
        );
        assert_eq!(
            Receiver::parse(&format!("slack+https://hooks.slack.com/services/{TOKEN}"))
                .unwrap()
                .describe(),
            "slack hooks.slack.com"
        );
        assert_eq!(
            Receiver::parse("http://127.0.0.1:8080/hook")
                .unwrap()
                .describe(),
            "webhook 127.0.0.1:8080"
        );
        assert_eq!(
            Receiver::parse("sns:arn:aws:sns:us-west-2:111122223333:dr-alerts").unwrap(),
            Receiver::Sns {
                region: "us-west-2".into(),
                topic_arn: "arn:aws:sns:us-west-2:111122223333:dr-alerts".into()
            }
        );
        // Plain-http Slack only to loopback.
        assert!(Receiver::parse("slack+http://127.0.0.1:9/x").is_ok());
        assert!(Receiver::parse("slack+http://hooks.slack.com/x").is_err());
    }

    #[test]
    fn a_bad_value_is_refused_without_repeating_it() {
        for bad in [
            format!("ftp://hooks.example.com/{TOKEN}"),
            format!("hooks.example.com/{TOKEN}"),
            format!("slack+http://hooks.slack.com/{TOKEN}"),
            format!("https://user:{TOKEN}@hooks.example.com/"),
            format!("sns:https://hooks.example.com/{TOKEN}"),
            format!("sns:arn:aws:sns:us-west-2:1234:{TOKEN}"),
            format!("mailto:{TOKEN}"),
            format!("https:///{TOKEN}"),
        ] {
            let e = match Receiver::parse(&bad) {
                Ok(r) => panic!("{bad} parsed: {r:?}"),
                Err(e) => e,
            };
            assert!(!e.contains("secret"), "{bad}: {e}");
        }
        assert!(
            Receiver::parse("ftp://x/y")
                .unwrap_err()
                .starts_with("`ftp:` is not a notification receiver")
        );
    }

    #[test]
    fn scrubbing_blanks_the_url_and_its_token() {
        let r = Receiver::parse(&format!("https://hooks.example.com/services/{TOKEN}")).unwrap();
        let said = format!(
            "error sending request for url (https://hooks.example.com/services/{TOKEN}); also XXXXsecretXXXX"
        );
        let clean = r.scrub(&said);
        assert!(!clean.contains("secret"), "{clean}");
        assert!(clean.contains("<url>"), "{clean}");
    }

    #[test]
    fn lists_split_on_whitespace_and_commas() {
        let v: Vec<&str> = split_list(" https://a/x,https://b/y\n sns:arn:x ,, ").collect();
        assert_eq!(v, ["https://a/x", "https://b/y", "sns:arn:x"]);
    }
}
