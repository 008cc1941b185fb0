//! Tests of the Route 53 actions against the simulated world: cutovers, batches,
//! health checks.

use std::time::Duration;

use super::super::testing::{HEALTH_CHECK, Harness, RUNBOOK, ZONE};
use super::super::{capture, check, execute, preflight, rollback, verify};
use super::*;
use crate::runbook::catalogue::lookup;
use serde_json::json;

/// The zone's record sets as the control plane holds them, in identity order.
fn zone(h: &Harness) -> Vec<RecordSet> {
    let mut z = h.world.with_state(|s| s.zones[ZONE].records.clone());
    z.sort_by_key(identity);
    z
}

/// Edits the zone's record sets before the run: what the control plane holds and what
/// resolvers answer alike (the world builds every record a cutover writes as existing).
fn edit_zone(h: &Harness, edit: impl FnOnce(&mut Vec<RecordSet>)) {
    h.world.with_state(|s| {
        let z = s.zones.get_mut(ZONE).expect("the runbook's zone");
        edit(&mut z.records);
        z.published = z.records.clone();
    });
}

/// The ids of the changes the world accepted, in order.
fn changes_in_world(h: &Harness) -> Vec<String> {
    h.world.with_state(|s| {
        let mut c: Vec<(u64, String)> = s.changes.values().map(|c| (c.seq, c.id.clone())).collect();
        c.sort();
        c.into_iter().map(|(_, id)| id).collect()
    })
}

/// A simple record set with one value.
fn record(name: &str, record_type: &str, value: &str) -> RecordSet {
    RecordSet {
        name: name.into(),
        record_type: record_type.into(),
        set_identifier: None,
        ttl: Some(60),
        values: vec![value.into()],
        alias: None,
        weight: None,
        failover: None,
        health_check_id: None,
        routing: Default::default(),
    }
}

#[tokio::test(start_paused = true)]
async fn cutover_upserts_what_differs_and_rollback_restores_exactly() {
    let h = Harness::prod();
    // The A record is new: the world builds it as existing, so it goes before the run.
    edit_zone(&h, |r| r.retain(|r| r.name != "new.acme.internal."));
    let before = zone(&h);
    let ctx = h.ctx("cutover");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(h.calls_of("ChangeResourceRecordSets").len(), 1);
    let c1 = changes_in_world(&h).pop().unwrap();
    assert_eq!(
        done.summary,
        format!("UPSERT 3 record set(s) in 1 ChangeResourceRecordSets call(s); change {c1}")
    );
    assert_eq!(done.output["change_ids"], serde_json::json!([c1]));
    // Verify polls GetChange: PENDING, then INSYNC once Route 53 has propagated it.
    let o = verify(&ctx, &done).await.unwrap();
    assert_eq!(
        (o.passed, o.observed),
        (false, format!("change {c1} PENDING"))
    );
    h.wait(Duration::from_secs(600)).await;
    let o = verify(&ctx, &done).await.unwrap();
    assert_eq!(
        (o.passed, o.observed),
        (true, format!("change {c1} INSYNC"))
    );
    // The gate without change_id uses the step's changes.
    let gate = ctx.step.gate.as_ref().unwrap();
    let o = check(&ctx, gate.spec, &gate.fields, Some(&done))
        .await
        .unwrap();
    assert!(o.passed);

    // Idempotent: nothing left to change.
    let again = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(
        again.summary,
        "already done: 3 record set(s) already as desired"
    );
    assert_eq!(h.calls_of("ChangeResourceRecordSets").len(), 1);

    // Rollback: UPSERT the two captured CNAMEs, DELETE the A record that was new.
    let rb = ctx.step.rollback.as_ref().unwrap();
    let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    let c2 = changes_in_world(&h).pop().unwrap();
    assert_ne!(c1, c2);
    assert_eq!(
        s,
        format!(
            "restored the captured record sets: UPSERT 2, DELETE 1 in 1 ChangeResourceRecordSets \
             call(s); change {c2}"
        )
    );
    assert_eq!(zone(&h), before);
    let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert_eq!(s, "already restored: 2 record set(s) as captured");
    assert_eq!(h.mutations(), 2);
    assert_eq!(h.applied(), 2);
}

fn many_records(n: usize) -> String {
    let mut t = String::from(
        "[runbook]\nname = \"big\"\nmode = \"planned\"\n[[step]]\nid = \"cutover\"\n\
         action = \"route53.cutover\"\nhosted_zone_id = \"Z0731524T4AKBG1PJWH9\"\n",
    );
    for i in 0..n {
        t.push_str(&format!(
            "[[step.records]]\nname = \"host{i}.acme.internal.\"\ntype = \"A\"\nttl = 60\nvalues = [\"10.1.{}.{}\"]\n",
            i / 250,
            i % 250
        ));
    }
    t.push_str("[step.rollback]\n");
    t
}

#[tokio::test(start_paused = true)]
async fn preflight_refuses_a_cutover_over_the_zones_record_quota() {
    let h = Harness::new(&many_records(30), "");
    // The 30 record sets are new, and the zone is filled up to 30 below Route 53's
    // default quota of 10,000 record sets (the world has that quota, and only that).
    let limit: usize = 10_000;
    edit_zone(&h, |r| {
        r.clear();
        r.extend(
            (0..limit - 30).map(|i| record(&format!("filler{i}.acme.internal."), "A", "192.0.2.9")),
        );
    });
    let used = zone(&h).len();
    assert_eq!(used + 30, limit);
    let ok = preflight(&h.ctx("cutover")).await.unwrap();
    assert!(ok.iter().all(|f| f.allows()), "{ok:?}");
    assert!(
        ok.iter()
            .any(|f| f.message.contains(&format!("{used} + 30 new of {limit}"))),
        "{ok:?}"
    );
    // One record set more: the cutover's 30 no longer fit.
    edit_zone(&h, |r| {
        r.push(record("one-more.acme.internal.", "A", "192.0.2.9"))
    });
    let over = preflight(&h.ctx("cutover")).await.unwrap();
    let bad: Vec<_> = over.iter().filter(|f| !f.allows()).collect();
    assert_eq!(bad.len(), 1, "{over:?}");
    assert!(
        bad[0].message.contains("over the quota"),
        "{}",
        bad[0].message
    );
}

#[test]
fn batches_follow_route53s_element_and_character_limits() {
    let change = |action, values: usize, len: usize| RecordChange {
        action,
        record: RecordSet {
            values: (0..values).map(|_| "x".repeat(len)).collect(),
            ..record("a.acme.internal.", "CNAME", "b")
        },
    };
    let sizes = |cs: &[RecordChange]| batches(cs).iter().map(|b| b.len()).collect::<Vec<_>>();
    // 1,000 elements per call: DELETEs count once, UPSERTs twice.
    let deletes: Vec<_> = (0..2500)
        .map(|_| change(ChangeAction::Delete, 1, 10))
        .collect();
    assert_eq!(sizes(&deletes), vec![1000, 1000, 500]);
    let upserts: Vec<_> = (0..1200)
        .map(|_| change(ChangeAction::Upsert, 1, 10))
        .collect();
    assert_eq!(sizes(&upserts), vec![500, 500, 200]);
    // Multi-value record sets count each value.
    let multi: Vec<_> = (0..30)
        .map(|_| change(ChangeAction::Create, 100, 5))
        .collect();
    assert_eq!(sizes(&multi), vec![10, 10, 10]);
    // 32,000 characters of values per call (an UPSERT's count twice).
    let long: Vec<_> = (0..10)
        .map(|_| change(ChangeAction::Upsert, 1, 4000))
        .collect();
    assert_eq!(sizes(&long), vec![4, 4, 2]);
    // A change above the limits on its own still goes alone (Route 53 then says why).
    let huge = vec![change(ChangeAction::Create, 1, 40_000)];
    assert_eq!(sizes(&huge), vec![1]);
    assert!(batches(&[]).is_empty());
}

#[tokio::test(start_paused = true)]
async fn batches_hold_at_most_a_thousand_changes_and_rollback_deletes_them_all() {
    let h = Harness::new(&many_records(2500), "");
    // 500 of them already exist with an old value: they are changed and restored too.
    // The other 2,000 are new.
    edit_zone(&h, |r| {
        r.clear();
        r.extend((0..500).map(|i| record(&format!("host{i}.acme.internal."), "A", "192.0.2.1")));
    });
    let before = zone(&h);
    assert_eq!(before.len(), 500);
    let ctx = h.ctx("cutover");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    let calls = h.calls_of("ChangeResourceRecordSets");
    // 2500 single-value UPSERTs count 5000 ResourceRecord elements: 5 calls.
    assert_eq!(calls.len(), 5, "ceil(2 * 2500 / 1000) calls");
    assert_eq!(done.output["change_ids"].as_array().unwrap().len(), 5);
    assert!(
        done.summary
            .starts_with("UPSERT 2500 record set(s) in 5 ChangeResourceRecordSets call(s)"),
        "{}",
        done.summary
    );
    assert_eq!(zone(&h).len(), 2500, "the 500 changed and the 2,000 new");

    let rb = ctx.step.rollback.as_ref().unwrap();
    let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert!(
        s.starts_with("restored the captured record sets: UPSERT 500, DELETE 2000 in 3"),
        "{s}"
    );
    assert_eq!(zone(&h), before, "restored exactly");
    // 500 UPSERTs (1,000 elements) and 2,000 DELETEs: 3 calls, 8 in all.
    assert_eq!(h.calls_of("ChangeResourceRecordSets").len(), 8);
    assert_eq!(h.applied(), 8, "the world took every batch");
}

#[tokio::test(start_paused = true)]
async fn a_lost_batch_response_is_re_read_not_resent() {
    let h = Harness::new(&many_records(1500), "");
    // The 1,500 record sets are new.
    edit_zone(&h, Vec::clear);
    h.lose("ChangeResourceRecordSets", 1);
    let ctx = h.ctx("cutover");
    let done = execute(&ctx, None).await.unwrap();
    // 1,500 UPSERTs: 3 batches, the first one's response lost and not resent.
    assert_eq!(h.calls_of("ChangeResourceRecordSets").len(), 3);
    assert!(
        done.summary
            .contains("1 batch(es) applied but their response was lost"),
        "{}",
        done.summary
    );
    assert_eq!(done.output["change_ids"].as_array().unwrap().len(), 2);
    assert_eq!(zone(&h).len(), 1500);
    let again = execute(&ctx, None).await.unwrap();
    assert!(
        again.summary.starts_with("already done"),
        "{}",
        again.summary
    );
    assert_eq!(h.mutations(), 3);
    assert_eq!(h.applied(), 3);
}

#[tokio::test(start_paused = true)]
async fn when_every_batchs_answer_is_lost_verify_waits_for_propagation_not_nothing() {
    let h = Harness::new(&many_records(1500), "");
    edit_zone(&h, Vec::clear);
    h.lose("ChangeResourceRecordSets", 3);
    let ctx = h.ctx("cutover");
    let done = execute(&ctx, None).await.unwrap();
    assert_eq!(h.calls_of("ChangeResourceRecordSets").len(), 3);
    assert_eq!(done.output["change_ids"], json!([]));
    assert_eq!(done.output["unconfirmed"], 3);
    // Submitted, so not "no change was submitted": no id to poll, so Route 53's
    // propagation time is allowed before it counts as INSYNC.
    let o = verify(&ctx, &done).await.unwrap();
    assert!(!o.passed, "{}", o.observed);
    assert!(
        o.observed
            .starts_with("no change id to poll; 3 batch(es) without a change id"),
        "{}",
        o.observed
    );
    h.wait(std::time::Duration::from_secs(61)).await;
    let o = verify(&ctx, &done).await.unwrap();
    assert!(o.passed, "{}", o.observed);
    assert!(
        o.observed.contains("given 1m to propagate"),
        "{}",
        o.observed
    );
}

#[tokio::test(start_paused = true)]
async fn health_check_flip_changes_only_what_differs_and_restores_the_capture() {
    let h = Harness::prod();
    h.lose("UpdateHealthCheck", 1);
    let ctx = h.ctx("flip");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(
        done.summary,
        format!(
            "UpdateHealthCheck {HEALTH_CHECK}: inverted false -> true (response lost; a re-read confirms it)"
        )
    );
    assert!(verify(&ctx, &done).await.unwrap().passed);
    // The health checkers take the new setting within seconds: the gate waits for it.
    let gate = ctx.step.gate.as_ref().unwrap();
    let o = check(&ctx, gate.spec, &gate.fields, Some(&done))
        .await
        .unwrap();
    assert!(!o.passed, "{}", o.observed);
    h.wait(Duration::from_secs(600)).await;
    let o = check(&ctx, gate.spec, &gate.fields, Some(&done))
        .await
        .unwrap();
    assert_eq!(
        (o.passed, o.observed),
        (true, format!("health check {HEALTH_CHECK} is unhealthy"))
    );
    let again = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(again.summary, "already done: 1 health check(s) already set");
    assert_eq!(h.mutations(), 1);

    let rb = ctx.step.rollback.as_ref().unwrap();
    let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert_eq!(
        s,
        format!("restored UpdateHealthCheck {HEALTH_CHECK}: inverted true -> false")
    );
    let (inverted, disabled) = h.world.with_state(|s| {
        let hc = &s.health_checks[HEALTH_CHECK];
        (hc.inverted, hc.disabled)
    });
    assert!(!inverted && !disabled);
    let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert_eq!(s, "already restored: 1 health check(s) as captured");
    assert_eq!(h.mutations(), 2);
    assert_eq!(h.applied(), 2);
}

#[tokio::test(start_paused = true)]
async fn route53_checks_observe_briefly() {
    let h = Harness::prod();
    // The record points at the us-east-1 cluster's endpoint. The world names that
    // endpoint after the us-west-2 one with the region swapped (same cluster hash,
    // `c8x1dzk0ab12`); a real Aurora endpoint has its own hash in each region, the one
    // the runbook's check expects.
    edit_zone(&h, |r| {
        let db = r
            .iter_mut()
            .find(|r| r.name == "db-writer.acme.internal." && r.record_type == "CNAME")
            .expect("the cutover's record");
        assert_eq!(
            db.values,
            ["acme-prod-use1.cluster-c8x1dzk0ab12.us-east-1.rds.amazonaws.com"]
        );
        db.values = vec!["acme-prod-use1.cluster-c4f7gh2jk9lm.us-east-1.rds.amazonaws.com".into()];
    });
    let ctx = h.ctx("record");
    let spec = lookup("route53.record_points_to").unwrap();
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert!(o.passed, "{}", o.observed);
    assert_eq!(
        o.observed,
        "db-writer.acme.internal. CNAME -> acme-prod-use1.cluster-c4f7gh2jk9lm.us-east-1.rds.amazonaws.com"
    );
    // The application the health check monitors (in us-east-1) is down.
    let h = Harness::new(RUNBOOK, "[regions.us-east-1]\napp_healthy = false\n");
    let ctx = h.ctx("hc");
    let spec = lookup("route53.health_check_healthy").unwrap();
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert_eq!(
        (o.passed, o.observed),
        (
            false,
            format!("health check {HEALTH_CHECK} is unhealthy (expected healthy)")
        )
    );
    // change_insync without a change and without a step result is an error, not a panic.
    let spec = lookup("route53.change_insync").unwrap();
    assert!(check(&ctx, spec, &Fields::new(), None).await.is_err());
    // Gating a step that made no record change (a flip): nothing to wait for.
    let flip = Executed {
        summary: String::new(),
        output: json!({ "updated": 1 }),
    };
    let o = check(&ctx, spec, &Fields::new(), Some(&flip))
        .await
        .unwrap();
    assert_eq!(
        (o.passed, o.observed.as_str()),
        (true, "no change was submitted")
    );
}

#[test]
fn the_insync_gate_reads_a_cutovers_typed_output_and_a_single_change_id() {
    let result = |output: Value| Executed {
        summary: String::new(),
        output,
    };
    let sent = |ids: &[&str], unconfirmed, at: Option<u64>| Sent {
        change_ids: ids.iter().map(|s| s.to_string()).collect(),
        unconfirmed,
        unconfirmed_at: at.map(std::time::Duration::from_secs),
        calls: 0,
    };
    let cutover = result(CutoverOutput::of(
        ZONE,
        &sent(&["/change/C1", "/change/C2"], 0, None),
    ));
    assert_eq!(
        cutover.output,
        json!({"hosted_zone_id": ZONE, "change_ids": ["/change/C1", "/change/C2"]})
    );
    assert_eq!(
        change_ids(Some(&cutover)),
        Some((
            vec!["/change/C1".to_string(), "/change/C2".to_string()],
            None
        ))
    );
    // Batches whose answer was lost are kept with when they were seen applied.
    let lost = result(CutoverOutput::of(ZONE, &sent(&[], 2, Some(90))));
    assert_eq!(
        lost.output,
        json!({"hosted_zone_id": ZONE, "change_ids": [], "unconfirmed": 2,
               "unconfirmed_at_secs": 90.0})
    );
    assert_eq!(
        change_ids(Some(&lost)),
        Some((Vec::new(), Some((2, std::time::Duration::from_secs(90)))))
    );
    let one = result(json!({"change_id": "/change/C9"}));
    assert_eq!(
        change_ids(Some(&one)),
        Some((vec!["/change/C9".to_string()], None))
    );
    // A flip or an "already done" lists none: nothing to wait for.
    assert_eq!(
        change_ids(Some(&result(json!({"updated": 1})))),
        Some((Vec::new(), None))
    );
    assert_eq!(change_ids(None), None);
}
