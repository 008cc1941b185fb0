//! Tests of pass 2's value checks and of the `[accounts]` table.

use super::*;

#[test]
fn regions() {
    for ok in [
        "us-east-1",
        "us-west-2",
        "ap-southeast-2",
        "us-gov-west-1",
        "eu-central-2",
    ] {
        assert!(is_region(ok), "{ok}");
    }
    for bad in [
        "",
        "us-east",
        "useast1",
        "US-EAST-1",
        "us-east-0",
        "us-east-1a",
        "x-y-1",
    ] {
        assert!(!is_region(bad), "{bad}");
    }
}

#[test]
fn cluster_arns() {
    assert_eq!(
        cluster_arn_problem("arn:aws:rds:us-west-2:111122223333:cluster:acme-prod-usw2"),
        None
    );
    let cases = [
        ("acme-prod", "not an ARN"),
        (
            "arn:aws:s3:us-west-2:111122223333:cluster:x",
            "service is `s3`",
        ),
        (
            "arn:aws:rds:mars-1:111122223333:cluster:x",
            "not an AWS region",
        ),
        ("arn:aws:rds:us-west-2:1111:cluster:x", "12-digit"),
        ("arn:aws:rds:us-west-2:111122223333:db:x", "not a cluster"),
        ("arn:aws:rds:us-west-2:111122223333:cluster:", "empty"),
    ];
    for (arn, want) in cases {
        let got = cluster_arn_problem(arn).unwrap_or_default();
        assert!(got.contains(want), "{arn}: {got}");
    }
}

#[test]
fn urls_and_identifiers() {
    assert!(is_url("https://api.example.com/health"));
    assert!(is_url("http://127.0.0.1:8080"));
    assert!(!is_url("ftp://x") && !is_url("https://") && !is_url("https:///x"));
    assert!(is_identifier("aurora-promote") && is_identifier("s3.check_1"));
    assert!(!is_identifier("-x") && !is_identifier("a b") && !is_identifier(""));
    assert!(!is_identifier(&"a".repeat(65)));
}

#[test]
fn role_arns() {
    for (arn, account) in [
        ("arn:aws:iam::111122223333:role/drpilot", "111122223333"),
        (
            "arn:aws-us-gov:iam::444455556666:role/dr/ops/drpilot",
            "444455556666",
        ),
        (
            "arn:aws-cn:iam::444455556666:role/a+=,.@_-b",
            "444455556666",
        ),
    ] {
        assert_eq!(role_arn_account(arn), Ok(account), "{arn}");
    }
    let cases = [
        ("drpilot", "not an ARN"),
        ("arn:azure:iam::111122223333:role/x", "not an ARN"),
        ("arn:aws-:iam::111122223333:role/x", "not an ARN"),
        ("arn:aws:sts::111122223333:role/x", "service is `sts`"),
        ("arn:aws:iam:us-east-1:111122223333:role/x", "has a region"),
        ("arn:aws:iam::1111:role/x", "12-digit"),
        ("arn:aws:iam::111122223333:user/x", "not a role"),
        ("arn:aws:iam::111122223333:role/", "role name ``"),
        ("arn:aws:iam::111122223333:role/dr/", "role name ``"),
        ("arn:aws:iam::111122223333:role/a b", "role name `a b`"),
        ("arn:aws:iam::111122223333:role//x", "role path `/`"),
    ];
    for (arn, want) in cases {
        let got = role_arn_account(arn).unwrap_err();
        assert!(got.contains(want), "{arn}: {got}");
    }
    let long = format!("arn:aws:iam::111122223333:role/{}", "r".repeat(65));
    assert!(role_arn_account(&long).is_err());
}

#[test]
fn assume_role_charsets() {
    assert_eq!(EXTERNAL_ID.problem("acme-dr-7f3a"), None);
    assert_eq!(EXTERNAL_ID.problem("a:b/c@d.e,f=g+h_i"), None);
    assert_eq!(SESSION_NAME.problem("drpilot-planned-switchover"), None);
    for (set, value, want) in [
        (&EXTERNAL_ID, "x", "1 characters long"),
        (&EXTERNAL_ID, "a b", "` ` is not accepted"),
        (&SESSION_NAME, "a:b", "`:` is not accepted"),
        (&SESSION_NAME, "café", "`é` is not accepted"),
    ] {
        let got = set.problem(value).unwrap_or_default();
        assert!(got.contains(want), "{value}: {got}");
    }
    assert!(EXTERNAL_ID.problem(&"e".repeat(1224)).is_none());
    assert!(EXTERNAL_ID.problem(&"e".repeat(1225)).is_some());
    assert!(SESSION_NAME.problem(&"s".repeat(65)).is_some());
    assert_eq!(SESSION_NAME.pattern(), r"^[A-Za-z0-9_+=,.@\-]{2,64}$");
}

#[test]
fn account_keys_are_not_taken_for_secrets() {
    // An external id is not a secret (AWS says so): none of these keys may trip the
    // secret heuristics, whose help would send the user to a `_env` key.
    for key in ACCOUNT_KEYS {
        assert!(!catalogue::looks_like_secret_key(key), "{key}");
        assert!(!is_credential_key(key), "{key}");
    }
    for key in [
        "access_key_id",
        "aws_access_key_id",
        "secret_access_key",
        "session_token",
        "SessionToken",
        "credentials",
        "secret_access_key_env",
    ] {
        assert!(is_credential_key(key), "{key}");
    }
}

const HEAD: &str = "[runbook]\nname = \"rb\"\nmode = \"planned\"\n";
const STEP: &str = "[[step]]\nid = \"dns\"\naction = \"wait\"\nduration = \"1s\"\n";

fn load(text: &str) -> Result<crate::runbook::Runbook, Vec<String>> {
    match crate::runbook::load_str(std::path::Path::new("a.toml"), text) {
        Ok(l) => Ok(l.runbook),
        Err(e) => Err(e.problems.into_iter().map(|p| p.message).collect()),
    }
}

#[test]
fn accounts_are_read_with_templates_and_steps_name_them() {
    let text = format!(
        "{HEAD}[params]\ndns_account = \"444455556666\"\n\
         [accounts.prod]\nid = \"111122223333\"\n\
         [accounts.dns]\nid = \"{{{{dns_account}}}}\"\n\
         role_arn = \"arn:aws:iam::{{{{dns_account}}}}:role/drpilot-dns\"\n\
         external_id = \"acme-dr-7f3a\"\nsession_name = \"drpilot-failover\"\n\
         {STEP}account = \"dns\"\n"
    );
    let rb = load(&text).unwrap();
    assert_eq!(rb.steps[0].account.as_deref(), Some("dns"));
    assert_eq!(
        rb.accounts["dns"],
        Account {
            id: "444455556666".into(),
            role_arn: Some("arn:aws:iam::444455556666:role/drpilot-dns".into()),
            external_id: Some("acme-dr-7f3a".into()),
            session_name: Some("drpilot-failover".into()),
        }
    );
    assert_eq!(
        rb.accounts["prod"],
        Account {
            id: "111122223333".into(),
            role_arn: None,
            external_id: None,
            session_name: None,
        }
    );
    // No [accounts], no `account`: the caller's credentials, as before.
    let rb = load(&format!("{HEAD}{STEP}")).unwrap();
    assert!(rb.accounts.is_empty() && rb.steps[0].account.is_none());
}

#[test]
fn account_problems() {
    let acct = |body: &str| format!("{HEAD}[accounts.dns]\n{body}\n{STEP}");
    let cases = [
        (
            acct("id = \"4444\""),
            "`id` in [accounts.dns] is invalid: `4444` is not a 12-digit account id",
        ),
        (
            acct("id = 444455556666"),
            "`id` in [accounts.dns] must be a string, found an integer",
        ),
        (
            acct("role_arn = \"arn:aws:iam::444455556666:role/x\""),
            "missing `id` in [accounts.dns]",
        ),
        (
            acct("id = \"444455556666\"\nrole_arn = \"arn:aws:iam::111122223333:role/x\""),
            "`role_arn` in [accounts.dns] is a role in account 111122223333, but the account's id is 444455556666",
        ),
        (
            acct("id = \"444455556666\"\nrole_arn = \"arn:aws:iam::444455556666:user/x\""),
            "`role_arn` in [accounts.dns] is invalid: the ARN names `user/x`, not a role",
        ),
        (
            acct("id = \"444455556666\"\nexternal_id = \"acme\""),
            "`external_id` in [accounts.dns] is set without `role_arn`",
        ),
        (
            acct("id = \"444455556666\"\nsession_name = \"dr\""),
            "`session_name` in [accounts.dns] is set without `role_arn`",
        ),
        (
            acct(
                "id = \"444455556666\"\nrole_arn = \"arn:aws:iam::444455556666:role/x\"\nsession_name = \"a b\"",
            ),
            "`session_name` in [accounts.dns] is invalid: ` ` is not accepted",
        ),
        (
            acct("id = \"444455556666\"\nsecret_access_key = \"x\""),
            "`secret_access_key` in [accounts.dns] would be a credential",
        ),
        (
            acct("id = \"444455556666\"\nrole_arn = 1\nexternal_id = \"acme\""),
            "`role_arn` in [accounts.dns] must be a string, found an integer",
        ),
        (
            acct("id = \"444455556666\"\nrole = \"x\""),
            "unknown key `role` in [accounts.dns]",
        ),
        (acct("id = \"{{nope}}\""), "unknown parameter `nope`"),
        (
            format!("{HEAD}[accounts]\n\"dns prod\" = {{ id = \"444455556666\" }}\n{STEP}"),
            "account name `dns prod` is not a plain name",
        ),
        (
            format!("{HEAD}[accounts]\ndns = \"444455556666\"\n{STEP}"),
            "[accounts.dns] must be a table, found a string",
        ),
        (
            format!("{HEAD}{STEP}account = \"dns\"\n"),
            "step `dns` uses account `dns`, which is not declared",
        ),
    ];
    for (text, want) in cases {
        let got = load(&text).expect_err(&text);
        assert!(
            got.iter().any(|m| m.contains(want)),
            "{text}\nwanted: {want}\ngot: {got:#?}"
        );
        assert_eq!(got.len(), 1, "{text}\none problem each: {got:#?}");
    }
}

#[test]
fn an_unknown_account_gets_a_hint() {
    let problems = |text: &str| {
        crate::runbook::load_str(std::path::Path::new("a.toml"), text)
            .unwrap_err()
            .problems
    };
    let declared =
        "[accounts.dns]\nid = \"444455556666\"\n[accounts.prod]\nid = \"111122223333\"\n";
    let p = problems(&format!("{HEAD}{declared}{STEP}account = \"dnss\"\n"));
    assert_eq!(
        p[0].help.as_deref(),
        Some("did you mean `dns`? declared: dns, prod")
    );
    let p = problems(&format!("{HEAD}{declared}{STEP}account = \"network\"\n"));
    assert_eq!(p[0].help.as_deref(), Some("declared accounts: dns, prod"));
    let p = problems(&format!("{HEAD}{STEP}account = \"dns\"\n"));
    assert_eq!(
        p[0].help.as_deref(),
        Some("the runbook declares no [accounts]")
    );
    // A broken account is still declared: its steps are not reported too.
    let p = problems(&format!(
        "{HEAD}[accounts.dns]\nid = \"4444\"\n{STEP}account = \"dns\"\n"
    ));
    assert_eq!(p.len(), 1, "{p:#?}");
}

#[test]
fn notify_names_environment_variables() {
    let rb = load(&format!(
        "{HEAD}[notify]\nurls_env = [\"DR_SLACK_WEBHOOK\", \"_PAGER\", \"DR_SLACK_WEBHOOK\"]\n{STEP}"
    ))
    .unwrap();
    assert_eq!(
        rb.notify.unwrap().urls_env,
        ["DR_SLACK_WEBHOOK", "_PAGER"],
        "names once each, in order"
    );
    assert!(load(&format!("{HEAD}{STEP}")).unwrap().notify.is_none());
}

#[test]
fn notify_refuses_a_url_without_showing_it() {
    let url = "https://hooks.slack.com/services/T000/B000/hunter2token";
    for value in [
        url.to_string(),
        "slack+https://hooks.slack.com/services/T/B/hunter2".into(),
        "sns:arn:aws:sns:us-west-2:111122223333:hunter2".into(),
    ] {
        let text = format!("{HEAD}[notify]\nurls_env = [\"{value}\"]\n{STEP}");
        let err = crate::runbook::load_str(std::path::Path::new("a.toml"), &text).unwrap_err();
        assert_eq!(err.error_count(), 1, "{:#?}", err.problems);
        let p = &err.problems[0];
        assert_eq!(p.message, "a notification URL in the runbook");
        assert!(p.help.as_deref().unwrap().contains("environment variable"));
        for style in [
            crate::runbook::RenderStyle::Short,
            crate::runbook::RenderStyle::Fancy {
                color: false,
                width: 100,
            },
        ] {
            let shown = err.render(style);
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("a.toml:5:"), "names the line: {shown}");
        }
    }
}

#[test]
fn notify_problems() {
    let cases = [
        ("urls_env = \"DR_HOOK\"", "a non-empty array"),
        ("urls_env = []", "a non-empty array"),
        ("urls_env = [42]", "a string"),
        ("urls_env = [\"1DR\"]", "not an environment variable name"),
        (
            "urls_env = [\"DR-HOOK\"]",
            "not an environment variable name",
        ),
        ("", "[notify] has no `urls_env`"),
        ("urls_env = [\"A\"]\nurl = \"x\"", "url"),
    ];
    for (body, want) in cases {
        let text = format!("{HEAD}[notify]\n{body}\n{STEP}");
        let got = load(&text).unwrap_err();
        assert!(
            got.iter().any(|g| g.contains(want)),
            "{text}\nwanted: {want}\ngot: {got:#?}"
        );
        assert_eq!(got.len(), 1, "{text}\none problem each: {got:#?}");
    }
}
