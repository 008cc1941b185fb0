//! Prometheus' text exposition format, version 0.0.4: what node_exporter's textfile
//! collector reads from `*.prom` files and what a scrape endpoint serves.
//!
//! One [`Exposition`] holds metric families in the order they were first named. Each
//! family is written once, as a block: `# HELP`, `# TYPE`, then its samples (the format
//! forbids a family's lines to be split up, and a second `# TYPE` of a name is an
//! error to Prometheus). Label values escape backslash, double quote and newline;
//! HELP text escapes backslash and newline, as the format says.

use std::fmt::Write as _;

/// A metric family's type (`# TYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// A value that goes up and down.
    Gauge,
    /// A value that only goes up.
    Counter,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Gauge => "gauge",
            MetricType::Counter => "counter",
        }
    }
}

/// One sample: its labels (name, value) and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// A metric family: a name, its help and type, and its samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// The metric's name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
    pub name: String,
    /// One line of help.
    pub help: String,
    /// Its type.
    pub kind: MetricType,
    /// Its samples; a family may have none (its HELP and TYPE still say it exists).
    pub samples: Vec<Sample>,
}

/// Metric families to write, in the order they were first named.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a family (a second declaration of a name is the same family: its
    /// samples join the first's block, so no name is written twice).
    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) -> &mut Family {
        debug_assert!(valid_name(name), "{name:?} is not a metric name");
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    help: help.to_string(),
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[i]
    }

    /// Adds one sample to a family, declaring it if it is new.
    pub fn sample(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.family(name, help, kind).samples.push(Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        });
    }

    /// The families, in order.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// The text, every line ending in `\n`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            for s in &f.samples {
                out.push_str(&f.name);
                if !s.labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in s.labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        debug_assert!(valid_label_name(k), "{k:?} is not a label name");
                        let _ = write!(out, "{k}=\"{}\"", escape_label_value(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", format_value(s.value));
            }
        }
        out
    }
}

/// A label value as the format writes it: `\` as `\\`, `"` as `\"`, a newline as `\n`.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text as the format writes it: `\` as `\\`, a newline as `\n`.
pub fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A value as Go's ParseFloat reads it: `NaN`, `+Inf`, `-Inf`, else Rust's shortest
/// round-trip form (`1`, `0.25`, `1e21`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslash_quote_and_newline_only() {
        assert_eq!(
            escape_label_value("a\\b\"c\nd\te"),
            "a\\\\b\\\"c\\nd\te",
            "a tab stays as it is"
        );
        let mut e = Exposition::new();
        e.sample(
            "drpilot_ready",
            "h",
            MetricType::Gauge,
            &[("runbook", "we\"ird\\na\nme")],
            1.0,
        );
        assert!(
            e.render()
                .contains("drpilot_ready{runbook=\"we\\\"ird\\\\na\\nme\"} 1\n"),
            "{}",
            e.render()
        );
    }

    #[test]
    fn help_escapes_backslash_and_newline_but_not_quotes() {
        assert_eq!(escape_help("a \"b\" c\\d\ne"), "a \"b\" c\\\\d\\ne");
    }

    #[test]
    fn each_family_is_one_block_with_help_and_type_first() {
        let mut e = Exposition::new();
        e.sample("a_total", "A.", MetricType::Counter, &[("x", "1")], 1.0);
        e.sample("b", "B.", MetricType::Gauge, &[], 2.5);
        // Named again after another family: its sample joins the first block.
        e.sample("a_total", "A.", MetricType::Counter, &[("x", "2")], 3.0);
        e.family("c_seconds", "C, without samples.", MetricType::Gauge);
        assert_eq!(
            e.render(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 1\na_total{x=\"2\"} 3\n\
             # HELP b B.\n# TYPE b gauge\nb 2.5\n\
             # HELP c_seconds C, without samples.\n# TYPE c_seconds gauge\n"
        );
        let text = e.render();
        for name in ["a_total", "b", "c_seconds"] {
            let types = text
                .lines()
                .filter(|l| l.starts_with(&format!("# TYPE {name} ")))
                .count();
            assert_eq!(types, 1, "{name}: {text}");
        }
    }

    #[test]
    fn values_read_as_go_floats() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(1_700_000_000.5), "1700000000.5");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn names_follow_the_data_model() {
        assert!(valid_name("drpilot_ready"));
        assert!(valid_name("a:b_c1"));
        assert!(!valid_name("1a"));
        assert!(!valid_name("a-b"));
        assert!(valid_label_name("runbook"));
        assert!(!valid_label_name("__name"));
        assert!(!valid_label_name("a.b"));
    }
}
