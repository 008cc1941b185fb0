//! Regions inside resource names, and deterministic made-up identifiers.
//!
//! Real stacks name their regional resources after the region, in full (`us-west-2` in
//! an endpoint or ARN) or as a short code (`usw2` in `acme-prod-usw2`). The world uses
//! that convention to place resources a runbook names without saying where they are,
//! and to derive the "before" counterpart of a resource the runbook only names "after"
//! (the cluster in the `from` region when a step only names the target in `to`).

/// AWS regions recognised inside names even when the runbook never mentions them.
pub(crate) const KNOWN_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "ca-west-1",
    "mx-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "af-south-1",
    "ap-east-1",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "us-gov-west-1",
    "us-gov-east-1",
];

pub(crate) use crate::runbook::catalogue::is_region;

/// The conventional short code of a region: `us-west-2` -> `usw2`, `eu-central-1` ->
/// `euc1`, `ap-southeast-2` -> `apse2`.
pub(crate) fn short_code(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    let Some((last, rest)) = parts.split_last() else {
        return region.to_string();
    };
    let Some((first, middle)) = rest.split_first() else {
        return region.to_string();
    };
    let mut out = (*first).to_string();
    for p in middle {
        out.push_str(match *p {
            "east" => "e",
            "west" => "w",
            "north" => "n",
            "south" => "s",
            "central" => "c",
            "southeast" => "se",
            "northeast" => "ne",
            "southwest" => "sw",
            "northwest" => "nw",
            "gov" => "g",
            other => other.get(..1).unwrap_or(""),
        });
    }
    out.push_str(last);
    out
}

/// Byte offsets where `needle` occurs in `hay` as a whole token: not preceded or
/// followed by an ASCII letter or digit (so `usw2` matches in `acme-usw2.x` but not in
/// `busw22`).
fn bounded_matches(hay: &str, needle: &str) -> Vec<usize> {
    if needle.is_empty() {
        return Vec::new();
    }
    hay.match_indices(needle)
        .filter(|(i, _)| {
            let before = hay[..*i].chars().next_back();
            let after = hay[i + needle.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric())
                && !after.is_some_and(|c| c.is_ascii_alphanumeric())
        })
        .map(|(i, _)| i)
        .collect()
}

/// The first region named in `s` (in full or by short code), looking at the known
/// regions and `extra` (regions the runbook uses).
pub(crate) fn region_in(s: &str, extra: &[String]) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let mut best: Option<(usize, String)> = None;
    let candidates = KNOWN_REGIONS
        .iter()
        .map(|r| r.to_string())
        .chain(extra.iter().filter(|r| is_region(r)).cloned());
    for region in candidates {
        for needle in [region.clone(), short_code(&region)] {
            if let Some(&at) = bounded_matches(&lower, &needle).first()
                && best.as_ref().is_none_or(|(b, _)| at < *b)
            {
                best = Some((at, region.clone()));
            }
        }
    }
    best.map(|(_, r)| r)
}

/// `s` with every whole-token mention of region `a` (full name or short code) replaced
/// by region `b`'s, in one pass so a replacement is never replaced again.
pub(crate) fn swap_region(s: &str, a: &str, b: &str) -> String {
    if a == b {
        return s.to_string();
    }
    let (a_short, b_short) = (short_code(a), short_code(b));
    let full = bounded_matches(s, a);
    let short = bounded_matches(s, &a_short);
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if full.contains(&i) {
            out.push_str(b);
            i += a.len();
        } else if short.contains(&i) {
            out.push_str(&b_short);
            i += a_short.len();
        } else {
            let Some(c) = s[i..].chars().next() else {
                break;
            };
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

pub(crate) use crate::names::fnv1a;

/// `len` characters of `alphabet` drawn from `n` (a hash or a random draw); each
/// position mixes `n` with its index, so every character depends on all of `n`.
pub(crate) fn encode(n: u64, len: usize, alphabet: &[u8]) -> String {
    let base = alphabet.len().max(1) as u64;
    (0..len as u64)
        .map(|i| {
            let x = super::rng::mix(n ^ i.wrapping_mul(super::rng::GAMMA));
            char::from(alphabet.get((x % base) as usize).copied().unwrap_or(b'0'))
        })
        .collect()
}

/// Lowercase letters and digits, as in endpoint hashes (`cluster-c8x1dzk0ab12`).
pub(crate) const LOWER36: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Uppercase letters and digits, as in Route 53 ids (`Z0731524T4AKBG1PJWH9`).
pub(crate) const UPPER36: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A DNS name as Route 53 stores it: lowercase, with the trailing dot.
pub(crate) fn fqdn(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

/// `a.b.c.` -> `b.c.`; `None` when fewer than three labels would remain meaningful.
pub(crate) fn parent_domain(fqdn_name: &str) -> Option<String> {
    let labels: Vec<&str> = fqdn_name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
        .collect();
    (labels.len() >= 3).then(|| format!("{}.", labels[1..].join(".")))
}

/// Whether `name` is `zone` or inside it (both fully qualified).
pub(crate) fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}")) || zone == "."
}

/// The host of an `http://` or `https://` URL, lowercase, without port or user info.
pub(crate) fn url_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_codes_follow_the_usual_convention() {
        assert_eq!(short_code("us-east-1"), "use1");
        assert_eq!(short_code("us-west-2"), "usw2");
        assert_eq!(short_code("eu-central-1"), "euc1");
        assert_eq!(short_code("ap-southeast-2"), "apse2");
        assert_eq!(short_code("us-gov-west-1"), "usgw1");
        assert_eq!(short_code("weird"), "weird");
    }

    #[test]
    fn regions_are_found_as_whole_tokens_only() {
        assert_eq!(
            region_in("acme-prod-usw2", &[]).as_deref(),
            Some("us-west-2")
        );
        assert_eq!(
            region_in("arn:aws:rds:us-east-1:1:cluster:x", &[]).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            region_in("master.acme-sessions-use1.a9b8c7.use1.cache", &[]).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(region_in("busw22", &[]), None);
        assert_eq!(region_in("api.acme.example", &[]), None);
    }

    #[test]
    fn swapping_replaces_full_names_and_short_codes_once() {
        assert_eq!(
            swap_region(
                "acme-prod-usw2.cluster-c8.us-west-2.rds.amazonaws.com",
                "us-west-2",
                "us-east-1"
            ),
            "acme-prod-use1.cluster-c8.us-east-1.rds.amazonaws.com"
        );
        assert_eq!(
            swap_region("nothing-here", "us-west-2", "us-east-1"),
            "nothing-here"
        );
        assert_eq!(
            swap_region("ünïcode-usw2", "us-west-2", "us-east-1"),
            "ünïcode-use1"
        );
    }

    #[test]
    fn url_hosts_and_domains() {
        assert_eq!(
            url_host("https://API.acme.example:8443/healthz?x").as_deref(),
            Some("api.acme.example")
        );
        assert_eq!(
            url_host("http://u:p@h.example/").as_deref(),
            Some("h.example")
        );
        assert_eq!(url_host("ftp://x"), None);
        assert_eq!(fqdn("Api.Acme.Example"), "api.acme.example.");
        assert_eq!(
            parent_domain("api.acme.example.").as_deref(),
            Some("acme.example.")
        );
        assert_eq!(parent_domain("acme.example."), None);
        assert!(in_zone("db.acme.internal.", "acme.internal."));
        assert!(!in_zone("db.notacme.internal.", "acme.internal."));
    }
}
