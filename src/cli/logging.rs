//! Logs: a `tracing` subscriber writing to stderr, set up once in [`super::main`].
//!
//! Stdout is for results and `--output json` events; everything else a person or a log
//! pipeline reads goes to stderr. `--log-format json` makes each line one JSON object.
//! `DRPILOT_LOG` chooses which lines, in `tracing-subscriber`'s `EnvFilter` syntax.
//! Without it only warnings show — except under `--output json`, where nobody sees the
//! human progress lines and drpilot's own `info` lines (one per event, see
//! [`crate::report::log`]) are the progress; other crates (the AWS SDK) stay at `warn`.

use std::io::Write;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use super::args::LogFormat;

/// The variable holding the log filter.
pub const ENV: &str = "DRPILOT_LOG";

/// The filter without `DRPILOT_LOG`.
pub fn default_filter(json_output: bool) -> &'static str {
    if json_output {
        "warn,drpilot=info"
    } else {
        "warn"
    }
}

/// Installs the subscriber. An invalid `DRPILOT_LOG` is reported and the default used:
/// a typo in a log setting must not stop a failover.
pub fn init(format: LogFormat, color: bool, json_output: bool, notify: &[String]) {
    let default = default_filter(json_output);
    let filter = match std::env::var(ENV) {
        Ok(v) if !v.trim().is_empty() => EnvFilter::builder().parse(&v).unwrap_or_else(|e| {
            eprintln!("warning: {ENV} is not a valid filter ({e}); using `{default}`");
            EnvFilter::new(default)
        }),
        _ => EnvFilter::new(default),
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(RedactingStderr(Arc::new(
            Redactor::from_env().with(notify.iter().cloned()),
        )))
        .with_env_filter(filter);
    // Another subscriber may already be set (a test calling `main` twice): keep it.
    let _ = match format {
        LogFormat::Text => builder.with_ansi(color).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

/// Secret values are not shorter than this: blanking shorter ones (`true`, `1`) would
/// mangle every line without protecting anything.
const MIN_SECRET_LEN: usize = 6;

/// Blanks secrets in log lines, the last line of defence for text drpilot does not
/// write itself. At `debug` and `trace` the AWS SDK logs its resolved identity and
/// config bag, access key id included (its `Debug` already hides the secret key and
/// the session token); a future driver might echo a connection string. drpilot's own
/// lines never hold a secret, but the invariant is about the log, not about our code.
///
/// Blanked: the values of environment variables whose names say they hold a secret
/// (`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `DRPILOT_PG_PASSWORD`: see
/// [`looks_like_secret_key`](crate::runbook::catalogue::looks_like_secret_key)) and
/// `AWS_ACCESS_KEY_ID`'s, as written and as escaped in JSON; and anything shaped like
/// an AWS access key id (`AKIA`/`ASIA` and 16 more), wherever it came from (a
/// profile, SSO, an assumed role). Notification receivers' URLs are secrets too (a
/// webhook's token is in it): `--notify` values, `DRPILOT_NOTIFY`'s, and those of
/// variables whose names say they hold a webhook (`*WEBHOOK*`, `*HOOK_URL*`, as
/// `[notify] urls_env` names them by convention).
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    /// The secrets of this process's environment.
    pub fn from_env() -> Self {
        let (mut values, mut hooks) = (Vec::new(), Vec::new());
        for (k, v) in std::env::vars_os() {
            let (Ok(k), Ok(v)) = (k.into_string(), v.into_string()) else {
                continue;
            };
            let upper = k.to_ascii_uppercase();
            if upper == crate::app::NOTIFY_ENV
                || upper.contains("WEBHOOK")
                || upper.contains("HOOK_URL")
            {
                hooks.extend(crate::notify::split_list(&v).map(str::to_string));
            } else if k == "AWS_ACCESS_KEY_ID"
                || crate::runbook::catalogue::looks_like_secret_key(&k.to_ascii_lowercase())
            {
                values.push(v);
            }
        }
        Self::new(values).with(hooks)
    }

    /// These values blanked too (`--notify` URLs, and each with `slack+` taken off).
    pub fn with(self, more: impl IntoIterator<Item = String>) -> Self {
        let mut values = self.values;
        for v in more {
            if let Some(rest) = v.strip_prefix("slack+") {
                values.push(rest.to_string());
            }
            values.push(v);
        }
        Self::new(values)
    }

    /// Blanks these values (those shorter than 6 characters are ignored).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut out: Vec<String> = Vec::new();
        for v in values {
            if v.chars().count() < MIN_SECRET_LEN {
                continue;
            }
            let json = serde_json::to_string(&v).expect("a string serializes");
            let json = json[1..json.len() - 1].to_string();
            if json != v {
                out.push(json);
            }
            out.push(v);
        }
        // Longest first, so a secret containing another is blanked whole.
        out.sort_by_key(|v| std::cmp::Reverse(v.len()));
        out.dedup();
        Self { values: out }
    }

    /// `text` with every secret replaced by `****`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "****");
            }
        }
        mask_access_key_ids(&out)
    }
}

/// Masks `AKIA…`/`ASIA…` access key ids (4 + 16 upper-case letters or digits, not part
/// of a longer word), keeping the prefix: long-term or temporary is worth knowing.
fn mask_access_key_ids(text: &str) -> String {
    const BODY: usize = 16;
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i + 4 + BODY <= b.len() {
        let prefix = &b[i..i + 4];
        let is_key = (prefix == b"AKIA" || prefix == b"ASIA")
            && (i == 0 || !word(b[i - 1]))
            && b[i + 4..i + 4 + BODY]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && b.get(i + 4 + BODY).is_none_or(|&c| !word(c));
        if is_key {
            // Every byte matched is ASCII, so these are char boundaries.
            out.push_str(&text[copied..i + 4]);
            out.push_str(&"*".repeat(BODY));
            i += 4 + BODY;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Stderr behind a [`Redactor`].
#[derive(Clone, Debug)]
struct RedactingStderr(Arc<Redactor>);

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.clone())
    }
}

/// One log line's writer. The fmt layer formats a whole line and writes it at once,
/// so a secret is never split across two calls.
struct RedactingWriter(Arc<Redactor>);

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .lock()
            .write_all(self.0.redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_blanked_as_written_and_as_json() {
        let r = Redactor::new(["s3cr\"t!".to_string(), "true".to_string()]);
        assert_eq!(r.redact("pw=s3cr\"t! ok=true"), "pw=**** ok=true");
        let json = serde_json::json!({ "pw": "s3cr\"t!" }).to_string();
        assert_eq!(r.redact(&json), r#"{"pw":"****"}"#);
    }

    #[test]
    fn notification_urls_are_blanked_with_and_without_slack_plus() {
        let r = Redactor::default().with(["slack+https://hooks.example/T/B/tok3n".to_string()]);
        assert_eq!(
            r.redact("POST https://hooks.example/T/B/tok3n failed"),
            "POST **** failed"
        );
        assert_eq!(r.redact("slack+https://hooks.example/T/B/tok3n"), "****");
    }

    #[test]
    fn access_key_ids_are_masked_wherever_they_come_from() {
        let r = Redactor::default();
        assert_eq!(
            r.redact(r#"access_key_id: "AKIAIOSFODNN7EXAMPLE", x"#),
            r#"access_key_id: "AKIA****************", x"#
        );
        assert_eq!(
            r.redact("Credential=ASIAY34FZKBOKMUTVV7A/20240101/us-east-1/rds/aws4_request"),
            "Credential=ASIA****************/20240101/us-east-1/rds/aws4_request"
        );
        // Not a key: too short, part of a longer word, lower case.
        for text in [
            "AKIASHORT",
            "XAKIAIOSFODNN7EXAMPLE",
            "AKIAIOSFODNN7EXAMPLEX",
            "akiaiosfodnn7example",
        ] {
            assert_eq!(r.redact(text), text);
        }
        // Multi-byte text around a key stays intact.
        assert_eq!(
            r.redact("clé AKIAIOSFODNN7EXAMPLE ✓"),
            "clé AKIA**************** ✓"
        );
    }

    #[test]
    fn json_output_raises_only_drpilots_own_lines_to_info() {
        assert_eq!(default_filter(false), "warn");
        assert_eq!(default_filter(true), "warn,drpilot=info");
        for f in [default_filter(false), default_filter(true)] {
            assert!(EnvFilter::builder().parse(f).is_ok(), "{f}");
        }
    }
}
