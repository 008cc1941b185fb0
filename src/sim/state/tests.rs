//! Tests of the world's state: reachability windows and the snapshot calendar.

use super::*;

fn state() -> State {
    State::new(
        1,
        Timing::default(),
        "us-east-1",
        "us-west-2",
        jiff::Timestamp::UNIX_EPOCH,
    )
}

#[test]
fn reachability_follows_windows() {
    let mut s = state();
    s.regions.insert(
        "us-east-1".into(),
        SimRegion {
            unreachable: vec![Window {
                from: Duration::from_secs(60),
                until: Some(Duration::from_secs(120)),
            }],
            app_healthy: true,
            ..SimRegion::default()
        },
    );
    assert!(s.reachable("us-east-1", "rds", Duration::from_secs(59)));
    assert!(!s.reachable("us-east-1", "rds", Duration::from_secs(60)));
    assert!(s.reachable("us-east-1", "rds", Duration::from_secs(120)));
    assert!(s.reachable("eu-west-1", "rds", Duration::from_secs(90)));
    assert_eq!(
        s.outage_start("us-east-1", "rds", Duration::from_secs(90)),
        Some(Duration::from_secs(60))
    );
    // A partial outage: S3 down, RDS and the databases themselves answering.
    s.regions.insert(
        "eu-west-1".into(),
        SimRegion {
            unreachable: vec![Window {
                from: Duration::ZERO,
                until: None,
            }],
            services: Some(vec!["s3".into()]),
            ..SimRegion::default()
        },
    );
    let t = Duration::from_secs(10);
    assert!(!s.reachable("eu-west-1", "s3", t));
    assert!(s.reachable("eu-west-1", "rds", t));
    assert!(s.reachable("eu-west-1", "data", t));
    assert_eq!(s.outage_start("eu-west-1", "rds", t), None);
    assert_eq!(s.outage_start("eu-west-1", "s3", t), Some(Duration::ZERO));
    assert_eq!(
        s.both_reachable_from("us-east-1", "us-west-2", "s3", Duration::from_secs(70)),
        Some(Duration::from_secs(120))
    );
    s.regions.insert(
        "us-west-2".into(),
        SimRegion {
            unreachable: vec![Window {
                from: Duration::from_secs(100),
                until: None,
            }],
            app_healthy: true,
            ..SimRegion::default()
        },
    );
    assert_eq!(
        s.both_reachable_from("us-east-1", "us-west-2", "s3", Duration::from_secs(70)),
        None
    );
}

#[test]
fn snapshot_stamps_are_on_a_fixed_calendar() {
    let origin = jiff::Timestamp::from_second(946_684_800).unwrap();
    assert_eq!(stamp(origin, Duration::from_secs(90)), "2000-01-01-00-01");
    let _ = stamp(jiff::Timestamp::MAX, Duration::MAX);
}
