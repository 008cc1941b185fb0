//! Tests of the live data planes that need no server: parsing, secrets, TLS setup.

use super::dns::parse_resolver;
use super::*;

#[test]
fn resolvers_are_ip_or_ip_and_port() {
    for (text, want) in [
        ("10.0.0.2", "10.0.0.2:53"),
        ("10.0.0.2:5353", "10.0.0.2:5353"),
        (" 1.1.1.1 ", "1.1.1.1:53"),
        ("::1", "[::1]:53"),
        ("[::1]", "[::1]:53"),
        ("[2001:db8::1]:5300", "[2001:db8::1]:5300"),
    ] {
        assert_eq!(parse_resolver(text).unwrap().to_string(), want, "{text}");
    }
    for bad in [
        "dns.example",
        "10.0.0.2:dns",
        "",
        "10.0.0.256",
        "1.2.3.4:70000",
    ] {
        let e = parse_resolver(bad).unwrap_err();
        assert!(e.contains("is not an IP address"), "{bad}: {e}");
    }
}

#[test]
fn names_are_asked_as_absolute() {
    assert_eq!(absolute("db.acme.internal"), "db.acme.internal.");
    assert_eq!(absolute("db.acme.internal."), "db.acme.internal.");
}

#[test]
fn a_secret_is_blanked_and_a_missing_variable_is_named_not_shown() {
    let s = Secret(Some("hunter2".into()));
    assert_eq!(
        s.scrub("password hunter2 rejected"),
        "password **** rejected"
    );
    // The real environment: a variable no one sets.
    let env = LiveDataPlane::new().secrets;
    let e = Secret::from_env(Some("DRPILOT_TEST_UNSET_PASSWORD_VAR"), &env, OP_PG)
        .err()
        .unwrap();
    assert_eq!(e.kind, K::InvalidRequest);
    assert!(e.message.contains("DRPILOT_TEST_UNSET_PASSWORD_VAR"), "{e}");
    assert!(Secret::from_env(None, &env, OP_PG).unwrap().get().is_none());
    // An empty value is as good as none.
    let empty: SecretLookup = Arc::new(|_| Some(String::new()));
    assert!(Secret::from_env(Some("X"), &empty, OP_PG).is_err());
    let set: SecretLookup = Arc::new(|_| Some("pw".into()));
    assert_eq!(
        Secret::from_env(Some("X"), &set, OP_PG).unwrap().get(),
        Some("pw")
    );
}

#[test]
fn canary_ids_are_unique_and_safe_to_quote() {
    let a = canary_id();
    let b = canary_id();
    assert_ne!(a, b);
    assert!(
        a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "{a}"
    );
}

#[test]
fn role_is_the_first_element_of_the_reply() {
    let reply = redis::Value::Array(vec![
        redis::Value::BulkString(b"slave".to_vec()),
        redis::Value::BulkString(b"127.0.0.1".to_vec()),
    ]);
    assert_eq!(role_of(&reply).as_deref(), Some("slave"));
    assert_eq!(role_of(&redis::Value::Nil), None);
}

#[test]
fn a_ca_bundle_without_certificates_is_refused() {
    let e = LiveDataPlane::new()
        .with_ca_bundle(b"not a pem")
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest);
}

#[tokio::test]
async fn a_url_with_credentials_is_never_sent() {
    let plane = LiveDataPlane::new();
    let e = plane
        .http(&HttpProbe {
            url: "http://probe:UrlCanary42@127.0.0.1:9/".into(),
            method: "GET".into(),
            timeout: Duration::from_secs(1),
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest);
    assert!(!e.message.contains("UrlCanary42"), "{e}");
}
