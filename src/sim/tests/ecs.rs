//! ECS services: tasks that take time to start and to drain, and ECS's answers.

use super::*;
use crate::cloud::Ecs;

/// A runbook that scales `acme-api` in us-west-2 to 8 tasks.
pub(super) const SCALE: &str = "[runbook]\nname = \"scale\"\nmode = \"unplanned\"\n\
    [params]\nfrom = \"us-east-1\"\nto = \"us-west-2\"\n\
    [[step]]\nid = \"api\"\naction = \"ecs.scale_service\"\ncluster = \"acme-usw2\"\n\
    service = \"acme-api\"\nregion = \"us-west-2\"\ndesired_count = 8\n[step.rollback]\n";

pub(super) fn scale_runbook(text: &str) -> Runbook {
    crate::runbook::load_str(Path::new("scale.toml"), text)
        .unwrap_or_else(|e| panic!("{}", e.render(crate::runbook::RenderStyle::Short)))
        .runbook
}

fn ecs_world(cfg: &str) -> SimWorld {
    SimWorld::from_runbook(&scale_runbook(SCALE), &config(cfg), 5, clock()).expect("world builds")
}

async fn counts(w: &SimWorld) -> (u32, u32, u32) {
    let s = w
        .describe_service("us-west-2", "acme-usw2", "acme-api")
        .await
        .unwrap()
        .unwrap();
    (s.desired_count, s.running_count, s.pending_count)
}

#[tokio::test(start_paused = true)]
async fn a_scaled_service_exists_in_its_region_short_of_the_count_the_runbook_sets() {
    let w = ecs_world("");
    let s = w
        .describe_service("us-west-2", "acme-usw2", "acme-api")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.arn,
        "arn:aws:ecs:us-west-2:111122223333:service/acme-usw2/acme-api"
    );
    assert_eq!(
        s.cluster_arn,
        "arn:aws:ecs:us-west-2:111122223333:cluster/acme-usw2"
    );
    assert_eq!(
        (s.desired_count, s.running_count, s.pending_count),
        (2, 2, 0)
    );
    assert_eq!(s.settled_at(2), Ok(()));
    // By ARN too; in another region the cluster is unknown.
    let by_arn = w
        .describe_service("us-west-2", &s.cluster_arn, &s.arn)
        .await
        .unwrap();
    assert_eq!(by_arn.as_ref(), Some(&s));
    let e = w
        .describe_service("us-east-1", "acme-usw2", "acme-api")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::NotFound, Some("ClusterNotFoundException"))
    );
    // An unknown service is no error: DescribeServices reports it as MISSING.
    assert_eq!(
        w.describe_service("us-west-2", "acme-usw2", "nope")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn new_tasks_are_pending_then_running_and_a_scale_in_drains() {
    let w = ecs_world("[timing]\necs_task_start = \"40s\"\necs_task_stop = \"20s\"\n");
    w.set_desired_count("us-west-2", "acme-usw2", "acme-api", 5)
        .await
        .unwrap();
    assert_eq!(counts(&w).await, (5, 2, 3));
    wait(39).await;
    assert_eq!(counts(&w).await, (5, 2, 3));
    wait(1).await;
    assert_eq!(counts(&w).await, (5, 5, 0));
    w.set_desired_count("us-west-2", "acme-usw2", "acme-api", 1)
        .await
        .unwrap();
    assert_eq!(counts(&w).await, (1, 5, 0), "stopping tasks drain first");
    wait(20).await;
    assert_eq!(counts(&w).await, (1, 1, 0));
    let logged: Vec<(bool, serde_json::Value)> = w
        .op_log()
        .into_iter()
        .map(|o| (o.applied, o.args))
        .collect();
    assert_eq!(
        logged,
        [
            (
                true,
                serde_json::json!({"cluster": "acme-usw2", "service": "acme-api", "desiredCount": 5})
            ),
            (
                true,
                serde_json::json!({"cluster": "acme-usw2", "service": "acme-api", "desiredCount": 1})
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn update_service_is_refused_as_ecs_refuses_it() {
    let w = ecs_world("[ecs_services.acme-api]\nstatus = \"DRAINING\"\n");
    let e = w
        .set_desired_count("us-west-2", "acme-usw2", "acme-api", 4)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidState, Some("ServiceNotActiveException"))
    );
    let e = w
        .set_desired_count("us-west-2", "acme-usw2", "nope", 4)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::NotFound, Some("ServiceNotFoundException"))
    );
    let w = ecs_world("[ecs_services.\"acme-usw2/acme-api\"]\ncluster_missing = true\n");
    let e = w
        .set_desired_count("us-west-2", "acme-usw2", "acme-api", 4)
        .await
        .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("ClusterNotFoundException"));
    assert!(w.op_log().iter().all(|o| !o.applied));
}

#[tokio::test(start_paused = true)]
async fn the_sim_config_shapes_a_service() {
    let w = ecs_world(
        "[ecs_services.acme-api]\ndesired = 6\nrunning = 4\nrollout_state = false\n\
         launch_type = \"EC2\"\ndeploying_until = \"2m\"\n",
    );
    let s = w
        .describe_service("us-west-2", "acme-usw2", "acme-api")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.desired_count, s.running_count, s.pending_count),
        (6, 4, 2)
    );
    assert_eq!(s.launch_type.as_deref(), Some("EC2"));
    assert_eq!(s.rollout_state(), None);
    assert_eq!(s.deployments.len(), 2);
    wait(121).await;
    let s = w
        .describe_service("us-west-2", "acme-usw2", "acme-api")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.settled_at(6), Ok(()));
    // What the world does not have, and what it cannot be, point into the file.
    let rb = scale_runbook(SCALE);
    for (text, want) in [
        (
            "[ecs_services.acme-web]\ndesired = 1\n",
            "the world has no ECS service `acme-web`",
        ),
        (
            "[ecs_services.acme-api]\ndesired = 1\nrunning = 2\n",
            "would run 2 task(s) with a desired count of 1",
        ),
    ] {
        let e = SimWorld::from_runbook(&rb, &config(text), 1, clock()).unwrap_err();
        let shown = e.render(crate::runbook::RenderStyle::Short);
        assert!(shown.contains(want), "{shown}");
    }
    for (text, want) in [
        (
            "[ecs_services.acme-api]\nstatus = \"GONE\"\n",
            "not a known value",
        ),
        ("[ecs_services.acme-api]\nrunning = -1\n", "running"),
        ("[ecs_services.acme-api]\ndesried = 1\n", "desried"),
    ] {
        let e = SimConfig::parse(Path::new("sim.toml"), text).unwrap_err();
        let shown = e.render(crate::runbook::RenderStyle::Short);
        assert!(shown.contains(want), "{shown}");
    }
}

#[tokio::test(start_paused = true)]
async fn faults_name_the_ecs_calls_and_a_lost_answer_is_applied() {
    let w = ecs_world(
        "[[fault]]\nkind = \"error\"\nservice = \"ecs\"\noperation = \"UpdateService\"\n\
         times = 1\nafter_apply = true\n",
    );
    let e = w
        .set_desired_count("us-west-2", "acme-usw2", "acme-api", 3)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::Transient, Some("ServerException"))
    );
    assert_eq!(counts(&w).await.0, 3, "applied, then the answer was lost");
    let log = w.op_log();
    assert!(log[0].applied && log[0].injected, "{log:?}");
    // A region that does not answer.
    w.make_unreachable("us-west-2", secs(0), None);
    let e = w
        .set_desired_count("us-west-2", "acme-usw2", "acme-api", 4)
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::Unreachable);
    assert_eq!(w.op_log().iter().filter(|o| o.applied).count(), 1);
}
