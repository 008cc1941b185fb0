//! Route 53 ARC: routing controls at every endpoint, safety rules, a config's states.

use super::*;

/// The shipped failover's world: routing controls, RECOVERY_CONTROL failover pairs.
fn arc_world(cfg: &str) -> SimWorld {
    SimWorld::from_runbook(&shipped("region-failover.toml"), &config(cfg), 1, clock())
        .expect("world builds")
}

#[tokio::test(start_paused = true)]
async fn routing_controls_answer_at_every_reachable_endpoint_and_dns_follows_them() {
    let w = arc_world("[regions.us-east-1]\nunreachable_from = \"0s\"\n");
    let (use1, usw2) = (arc_endpoint("us-east-1"), arc_endpoint("us-west-2"));
    // The region holds the call (no answer) until the read deadline.
    let t = tokio::time::Instant::now();
    let e = w.routing_control_state(&use1, CELL_USE1).await.unwrap_err();
    assert_eq!(
        (e.kind, e.region.as_deref()),
        (K::Unreachable, Some("us-east-1"))
    );
    assert_eq!(t.elapsed(), crate::cloud::reach::DEFAULT_READ_TIMEOUT);
    assert_eq!(cells(&w).await, (On, Off), "the other endpoints answer");
    let flip = [update(CELL_USW2, On), update(CELL_USE1, Off)];
    // The silent call made the breaker probe the endpoint: the update waits for that
    // verdict and is refused without being sent.
    let e = w
        .update_routing_control_states(&use1, &flip, &[])
        .await
        .unwrap_err();
    assert!(crate::cloud::reach::is_region_unreachable(&e), "{e:?}");
    w.update_routing_control_states(&usw2, &flip, &[])
        .await
        .unwrap();
    assert_eq!(cells(&w).await, (Off, On), "the API shows it at once");
    // The operation log names the endpoint's region; only the us-west-2 call reached
    // the world.
    let log: Vec<(String, Option<String>, bool)> = w
        .op_log()
        .into_iter()
        .map(|o| (o.service, o.region, o.applied))
        .collect();
    assert_eq!(
        log,
        [(
            "route53-recovery-cluster".to_string(),
            Some("us-west-2".to_string()),
            true
        ),]
    );
    // The RECOVERY_CONTROL health checks take the new states within seconds; DNS
    // answers the SECONDARY records then, with no Route 53 API call at all.
    let db = "db-writer.acme.internal";
    assert_eq!(
        w.resolve(db, "CNAME", &[]).await.unwrap(),
        ["acme-prod-use1.cluster-c8x1dzk0ab12.us-east-1.rds.amazonaws.com"],
        "not propagated yet"
    );
    wait(11).await;
    assert_eq!(
        w.resolve(db, "CNAME", &[]).await.unwrap(),
        ["acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com"]
    );
    assert_eq!(
        w.resolve("api.acme.example", "A", &[]).await.unwrap(),
        ["api-usw2.acme.example"]
    );
    let probe = HttpProbe {
        url: "https://api.acme.example/healthz".into(),
        method: "GET".into(),
        timeout: secs(5),
    };
    assert_eq!(
        w.http(&probe).await.unwrap().body,
        r#"{"region":"us-west-2"}"#
    );
}

#[tokio::test(start_paused = true)]
async fn routing_control_updates_are_all_or_nothing_and_the_safety_rule_keeps_a_cell_on() {
    let w = arc_world("");
    let ep = arc_endpoint("us-west-2");
    let code = |e: crate::cloud::CloudError| (e.kind, e.code.unwrap_or_default());
    let e = w
        .update_routing_control_states(&ep, &[update(CELL_USE1, Off), update(CELL_USW2, Off)], &[])
        .await
        .unwrap_err();
    let (kind, c) = code(e.clone());
    assert_eq!((kind, c.as_str()), (K::InvalidState, "ConflictException"));
    assert!(
        e.message
            .contains("at least one routing control must be On"),
        "{e}"
    );
    let unknown = format!("{}0", CELL_USE1);
    let e = w
        .update_routing_control_states(&ep, &[update(CELL_USW2, On), update(&unknown, Off)], &[])
        .await
        .unwrap_err();
    assert_eq!(
        code(e),
        (K::NotFound, "ResourceNotFoundException".to_string())
    );
    let e = w
        .update_routing_control_states(&ep, &[update(CELL_USW2, On), update(CELL_USW2, Off)], &[])
        .await
        .unwrap_err();
    assert_eq!(
        code(e),
        (K::InvalidRequest, "ValidationException".to_string())
    );
    let e = w
        .update_routing_control_states(&ep, &[], &[])
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest);
    assert_eq!(cells(&w).await, (On, Off), "nothing was applied");
    assert!(w.op_log().iter().all(|o| !o.applied));
    // Overriding the rule by its ARN is the break-glass way through.
    let rule = w
        .lock()
        .arc_safety_rule
        .clone()
        .expect("two controls, one rule");
    assert!(rule.contains("/safetyrule/"), "{rule}");
    w.update_routing_control_states(
        &ep,
        &[update(CELL_USE1, Off), update(CELL_USW2, Off)],
        &[rule],
    )
    .await
    .unwrap();
    assert_eq!(cells(&w).await, (Off, Off));
    // Both cells Off: both health checks unhealthy, and Route 53 answers the PRIMARY.
    wait(11).await;
    assert_eq!(
        w.resolve("api.acme.example", "A", &[]).await.unwrap(),
        ["api-use1.acme.example"]
    );
    assert_eq!(
        w.routing_control_state(&ep, &unknown)
            .await
            .unwrap_err()
            .kind,
        K::NotFound
    );
}

#[tokio::test(start_paused = true)]
async fn a_sim_config_sets_a_routing_controls_state_and_names_only_known_ones() {
    let w = arc_world(&format!(
        "[routing_controls.\"{CELL_USE1}\"]\nstate = \"Off\"\n\
         [routing_controls.\"{CELL_USW2}\"]\nstate = \"On\"\n"
    ));
    assert_eq!(cells(&w).await, (Off, On));
    assert_eq!(
        w.resolve("api.acme.example", "A", &[]).await.unwrap(),
        ["api-usw2.acme.example"],
        "the health checks see it from the start"
    );
    let cfg = config(&format!(
        "[routing_controls.\"{CELL_USE1}x\"]\nstate = \"On\"\n"
    ));
    let err =
        SimWorld::from_runbook(&shipped("region-failover.toml"), &cfg, 1, clock()).unwrap_err();
    let out = err.render(crate::runbook::RenderStyle::Short);
    assert!(
        out.contains("the world has no routing control") && out.contains("did you mean"),
        "{out}"
    );
}
