//! Auto Scaling groups: instances that take time to come InService and to terminate.

use super::*;
use crate::cloud::{AutoScaling, GroupSizeUpdate, GroupSizes};

const SIZE: &str = "[runbook]\nname = \"size\"\nmode = \"unplanned\"\n\
    [params]\nfrom = \"us-east-1\"\nto = \"us-west-2\"\n\
    [[step]]\nid = \"workers\"\naction = \"autoscaling.set_capacity\"\ngroup = \"workers\"\n\
    region = \"us-west-2\"\ndesired_capacity = 8\nmax_size = 12\n[step.rollback]\n";

fn asg_world(cfg: &str) -> SimWorld {
    let rb = super::ecs::scale_runbook(SIZE);
    SimWorld::from_runbook(&rb, &config(cfg), 5, clock()).expect("world builds")
}

async fn states(w: &SimWorld) -> (GroupSizes, Vec<String>) {
    let g = w
        .describe_group("us-west-2", "workers")
        .await
        .unwrap()
        .unwrap();
    (
        g.sizes,
        g.instances.into_iter().map(|i| i.lifecycle_state).collect(),
    )
}

fn update(desired: u32) -> GroupSizeUpdate {
    GroupSizeUpdate {
        desired_capacity: Some(desired),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_sized_group_exists_short_of_what_the_runbook_sets() {
    let w = asg_world("");
    let (sizes, instances) = states(&w).await;
    assert_eq!(sizes.to_string(), "min 0, desired 2, max 12");
    assert_eq!(instances, ["InService", "InService"]);
    assert_eq!(
        w.describe_group("us-east-1", "workers").await.unwrap(),
        None,
        "a group is known in its region only, and an unknown one is no error"
    );
}

#[tokio::test(start_paused = true)]
async fn instances_launch_then_serve_and_a_scale_in_terminates_the_newest() {
    let w =
        asg_world("[timing]\nasg_instance_launch = \"90s\"\nasg_instance_terminate = \"40s\"\n");
    w.update_group_sizes("us-west-2", "workers", update(4))
        .await
        .unwrap();
    let (_, s) = states(&w).await;
    assert_eq!(s, ["InService", "InService", "Pending", "Pending"]);
    wait(90).await;
    let (_, s) = states(&w).await;
    assert_eq!(s, ["InService"; 4]);
    w.update_group_sizes("us-west-2", "workers", update(1))
        .await
        .unwrap();
    let g = w
        .describe_group("us-west-2", "workers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.settled(), Err("3 terminating".into()));
    wait(40).await;
    let g = w
        .describe_group("us-west-2", "workers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.settled(), Ok(()));
    assert_eq!(g.instances.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn updates_are_refused_as_auto_scaling_refuses_them() {
    let w = asg_world("");
    let e = w
        .update_group_sizes(
            "us-west-2",
            "workers",
            GroupSizeUpdate {
                max_size: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidRequest, Some("ValidationError"))
    );
    let e = w
        .update_group_sizes("us-west-2", "nope", update(1))
        .await
        .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("ValidationError"));
    let w = asg_world("[autoscaling_groups.workers]\ndeleting = true\n");
    assert!(
        w.update_group_sizes("us-west-2", "workers", update(3))
            .await
            .is_err()
    );
    assert!(w.op_log().iter().all(|o| !o.applied));
}

#[tokio::test(start_paused = true)]
async fn the_sim_config_shapes_a_group_and_a_suspended_launch_launches_nothing() {
    let w = asg_world(
        "[autoscaling_groups.workers]\nmin_size = 1\ndesired_capacity = 3\nmax_size = 6\n\
         in_service = 1\nsuspended_processes = [\"Launch\"]\n",
    );
    let g = w
        .describe_group("us-west-2", "workers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.sizes.to_string(), "min 1, desired 3, max 6");
    assert_eq!(
        g.settled(),
        Err("1/3 InService and Healthy, 2 launching".into())
    );
    assert!(g.suspended("Launch"));
    w.update_group_sizes("us-west-2", "workers", update(5))
        .await
        .unwrap();
    wait(200).await;
    let g = w
        .describe_group("us-west-2", "workers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.instances.len(), 3, "Launch is suspended");
    let rb = super::ecs::scale_runbook(SIZE);
    for (text, want) in [
        (
            "[autoscaling_groups.other]\nmissing = true\n",
            "the world has no Auto Scaling group `other`",
        ),
        (
            "[autoscaling_groups.workers]\nmin_size = 5\ndesired_capacity = 2\n",
            "would have min 5, desired 2, max 12",
        ),
    ] {
        let e = SimWorld::from_runbook(&rb, &config(text), 1, clock()).unwrap_err();
        let shown = e.render(crate::runbook::RenderStyle::Short);
        assert!(shown.contains(want), "{shown}");
    }
    let e = SimConfig::parse(
        Path::new("sim.toml"),
        "[autoscaling_groups.workers]\nsuspended_processes = [\"Lunch\"]\n",
    )
    .unwrap_err();
    let shown = e.render(crate::runbook::RenderStyle::Short);
    assert!(shown.contains("names an unknown process"), "{shown}");
}

#[tokio::test(start_paused = true)]
async fn faults_name_the_auto_scaling_calls() {
    let w = asg_world(
        "[[fault]]\nkind = \"error\"\nservice = \"autoscaling\"\n\
         operation = \"UpdateAutoScalingGroup\"\ntimes = 1\nafter_apply = true\n",
    );
    let e = w
        .update_group_sizes("us-west-2", "workers", update(3))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::Transient, Some("InternalFailure"))
    );
    assert_eq!(
        states(&w).await.0.desired_capacity,
        3,
        "applied, answer lost"
    );
}
