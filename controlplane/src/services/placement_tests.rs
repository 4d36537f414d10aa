//! Services placed as `RunTask` places: capacity provider strategies split
//! over the service's whole count, the cluster's default strategy, and
//! placement strategies and constraints, kept across a restart.

use std::sync::Arc;

use super::test_support::{self, report_all, service};
use super::{ServiceSpec, ServiceUpdate};
use crate::model::placement::{PlacementConstraint, PlacementStrategy, SpreadField};
use crate::model::{ArnContext, LaunchType, Resources, Service};
use crate::scheduler::CapacityProviderShare;
use crate::state::test_support::{
    add_instance, control_plane_with_clock, register_web, registration,
};
use crate::state::{Capacity, ClusterCapacity, ControlPlane, StateError};

fn share(provider: &str, weight: u32, base: u32) -> CapacityProviderShare {
    CapacityProviderShare {
        provider: provider.into(),
        base,
        weight,
    }
}

fn spec(desired: u32, capacity: Capacity) -> ServiceSpec {
    ServiceSpec {
        capacity,
        ..test_support::spec("api", desired)
    }
}

fn update() -> ServiceUpdate {
    ServiceUpdate {
        cluster: "default".into(),
        service: "api".into(),
        ..ServiceUpdate::default()
    }
}

/// A connected host of `provider` in `default`, room for 8 web tasks.
fn host(cp: &ControlPlane, provider: &str) -> String {
    let mut r = registration("default", false);
    r.capacity_provider = Some(provider.into());
    r.resources = Resources {
        cpu: 8192,
        memory_mib: 4096,
    };
    let ci = cp.register_instance(&r).unwrap();
    let _rx = cp.open_session(&ci.arn).unwrap();
    ci.arn
}

/// `default` with `FARGATE` and `FARGATE_SPOT` associated, a host of each.
fn two_pools(default: Vec<CapacityProviderShare>) -> (ControlPlane, String, String) {
    let (cp, _store, _clock) = control_plane_with_clock();
    cp.create_cluster("default", vec![]).unwrap();
    register_web(&cp);
    let fargate = host(&cp, "FARGATE");
    let spot = host(&cp, "FARGATE_SPOT");
    cp.put_cluster_capacity_providers(
        "default",
        &ClusterCapacity {
            capacity_providers: vec!["FARGATE".into(), "FARGATE_SPOT".into()],
            default_strategy: default,
        },
    )
    .unwrap();
    (cp, fargate, spot)
}

fn on(cp: &ControlPlane, instance: &str) -> usize {
    cp.desired_tasks(instance)
        .iter()
        .filter(|t| t.desired_status == "RUNNING")
        .count()
}

#[test]
fn a_strategy_splits_the_whole_service_and_scaling_keeps_the_split() {
    let (cp, fargate, spot) = two_pools(vec![]);
    let strategy = vec![share("FARGATE", 1, 2), share("FARGATE_SPOT", 3, 0)];
    let s = cp
        .create_service(&spec(5, Capacity::Strategy(strategy.clone())))
        .unwrap();
    assert_eq!(s.capacity_provider_strategy, strategy);
    assert_eq!(s.deployments[0].capacity_provider_strategy, strategy);
    cp.reconcile_services().unwrap();
    assert_eq!((on(&cp, &fargate), on(&cp, &spot)), (2, 3));
    for t in cp.desired_tasks(&spot) {
        assert_eq!(t.capacity_provider_name.as_deref(), Some("FARGATE_SPOT"));
        assert_eq!(t.launch_type, LaunchType::Fargate);
    }
    report_all(&cp, &fargate, "RUNNING");
    report_all(&cp, &spot, "RUNNING");
    cp.reconcile_services().unwrap();

    // 5 to 10: the base is the service's, not each step's: 4 + 6.
    cp.update_service(&ServiceUpdate {
        desired_count: Some(10),
        ..update()
    })
    .unwrap();
    cp.reconcile_services().unwrap();
    assert_eq!((on(&cp, &fargate), on(&cp, &spot)), (4, 6));
    assert_eq!(
        service(&cp).deployments.len(),
        1,
        "scaling is no deployment"
    );

    // A stopped FARGATE task comes back on FARGATE.
    report_all(&cp, &fargate, "RUNNING");
    report_all(&cp, &spot, "RUNNING");
    cp.reconcile_services().unwrap();
    let victim = cp.desired_tasks(&fargate)[0].clone();
    cp.stop_task("default", &victim.id, None).unwrap();
    report_all(&cp, &fargate, "STOPPED");
    cp.reconcile_services().unwrap();
    assert_eq!((on(&cp, &fargate), on(&cp, &spot)), (4, 6));

    // Back to 5: the split holds on the way in too.
    report_all(&cp, &fargate, "RUNNING");
    cp.update_service(&ServiceUpdate {
        desired_count: Some(5),
        ..update()
    })
    .unwrap();
    cp.reconcile_services().unwrap();
    assert_eq!((on(&cp, &fargate), on(&cp, &spot)), (2, 3));
}

#[test]
fn scale_in_takes_from_the_provider_above_its_share_not_just_the_newest() {
    let (cp, fargate, spot) = two_pools(vec![]);
    let strategy = vec![share("FARGATE", 1, 2), share("FARGATE_SPOT", 3, 0)];
    cp.create_service(&spec(8, Capacity::Strategy(strategy)))
        .unwrap();
    cp.reconcile_services().unwrap();
    assert_eq!((on(&cp, &fargate), on(&cp, &spot)), (3, 5));
    report_all(&cp, &fargate, "RUNNING");
    report_all(&cp, &spot, "RUNNING");
    // The newest task is a FARGATE replacement ...
    let victim = cp.desired_tasks(&fargate)[0].clone();
    cp.stop_task("default", &victim.id, None).unwrap();
    report_all(&cp, &fargate, "STOPPED");
    cp.reconcile_services().unwrap();
    report_all(&cp, &fargate, "RUNNING");
    assert_eq!((on(&cp, &fargate), on(&cp, &spot)), (3, 5));
    // ... yet 8 to 7 leaves 3 + 4: a FARGATE_SPOT task goes.
    cp.update_service(&ServiceUpdate {
        desired_count: Some(7),
        ..update()
    })
    .unwrap();
    cp.reconcile_services().unwrap();
    assert_eq!((on(&cp, &fargate), on(&cp, &spot)), (3, 4));
}

#[test]
fn naming_neither_takes_the_cluster_default_and_keeps_it() {
    let (cp, fargate, spot) = two_pools(vec![share("FARGATE_SPOT", 1, 0)]);
    let s = cp
        .create_service(&spec(2, Capacity::ClusterDefault))
        .unwrap();
    assert_eq!(
        s.capacity_provider_strategy,
        vec![share("FARGATE_SPOT", 1, 0)]
    );
    cp.reconcile_services().unwrap();
    assert_eq!((on(&cp, &fargate), on(&cp, &spot)), (0, 2));
    // A launch type ignores the default.
    let mut by_type = spec(1, Capacity::LaunchType(LaunchType::Fargate));
    by_type.name = "typed".into();
    let s = cp.create_service(&by_type).unwrap();
    assert!(s.capacity_provider_strategy.is_empty());
    assert_eq!(s.launch_type, LaunchType::Fargate);
}

#[test]
fn bad_strategies_are_refused_as_run_task_refuses_them() {
    let (cp, _, _) = two_pools(vec![]);
    for (strategy, words) in [
        (vec![share("gpu", 1, 0)], "not associated"),
        (
            vec![share("FARGATE", 1, 1), share("FARGATE_SPOT", 1, 1)],
            "one capacity provider",
        ),
        (vec![share("FARGATE", 0, 1)], "weight above 0"),
        (vec![], "at least one"),
    ] {
        let e = cp
            .create_service(&spec(1, Capacity::Strategy(strategy)))
            .unwrap_err();
        assert!(
            matches!(&e, StateError::InvalidParameter(m) if m.contains(words)),
            "{e:?}"
        );
    }
    assert!(cp.list_services("default", None, None).unwrap().is_empty());
    cp.create_service(&spec(1, Capacity::ClusterDefault))
        .unwrap();
    let e = cp
        .update_service(&ServiceUpdate {
            capacity_provider_strategy: Some(vec![]),
            ..update()
        })
        .unwrap_err();
    assert!(
        matches!(&e, StateError::InvalidParameter(m) if m.contains("cluster's default")),
        "{e:?}"
    );
    assert_eq!(service(&cp).deployments.len(), 1);
}

#[test]
fn distinct_instance_puts_one_task_per_host_and_says_when_it_cannot() {
    let (cp, _store, _clock) = control_plane_with_clock();
    let a = add_instance(&cp, "default");
    let b = add_instance(&cp, "default");
    let mut s = spec(3, Capacity::LaunchType(LaunchType::Ec2));
    s.placement_constraints = vec![PlacementConstraint::DistinctInstance];
    cp.create_service(&s).unwrap();
    cp.reconcile_services().unwrap();
    assert_eq!((on(&cp, &a), on(&cp, &b)), (1, 1));
    let s = service(&cp);
    assert!(s.events[0].message.contains("was unable to place a task"));
    for t in cp.desired_tasks(&a) {
        assert_eq!(
            t.placement_constraints,
            vec![PlacementConstraint::DistinctInstance]
        );
    }
}

#[test]
fn updating_placement_starts_a_deployment_and_survives_a_restart() {
    let (cp, store, clock) = control_plane_with_clock();
    let a = add_instance(&cp, "default");
    cp.create_service(&spec(1, Capacity::LaunchType(LaunchType::Ec2)))
        .unwrap();
    cp.reconcile_services().unwrap();
    report_all(&cp, &a, "RUNNING");
    cp.reconcile_services().unwrap();
    let spread = vec![PlacementStrategy::Spread(SpreadField::InstanceId)];
    let s = cp
        .update_service(&ServiceUpdate {
            placement_strategy: Some(spread.clone()),
            placement_constraints: Some(vec![PlacementConstraint::DistinctInstance]),
            ..update()
        })
        .unwrap();
    assert_eq!(s.deployments.len(), 2, "a new deployment, as ECS documents");
    assert_eq!(s.placement_strategy, spread);
    // The new deployment's task is placed with the new constraint: the only
    // host already runs one of the service's tasks.
    cp.reconcile_services().unwrap();
    assert_eq!(cp.desired_tasks(&a).len(), 1);
    let b = add_instance(&cp, "default");
    cp.reconcile_services().unwrap();
    assert_eq!(on(&cp, &b), 1);
    assert_eq!(cp.desired_tasks(&b)[0].placement_strategy, spread);

    let again = ControlPlane::open(
        store.clone() as Arc<dyn crate::store::Store>,
        clock.clone(),
        ArnContext {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        },
    )
    .unwrap();
    assert_eq!(service(&again), service(&cp));
}

#[test]
fn a_service_stored_before_placement_settings_still_loads() {
    let (cp, _, _) = two_pools(vec![]);
    let s = cp
        .create_service(&spec(1, Capacity::Strategy(vec![share("FARGATE", 1, 0)])))
        .unwrap();
    let mut old = serde_json::to_value(&s).unwrap();
    let o = old.as_object_mut().unwrap();
    for k in [
        "capacity_provider_strategy",
        "placement_strategy",
        "placement_constraints",
    ] {
        assert!(o.remove(k).is_some(), "{k} is stored");
    }
    o["deployments"][0]
        .as_object_mut()
        .unwrap()
        .remove("capacity_provider_strategy")
        .unwrap();
    let loaded: Service = serde_json::from_value(old).unwrap();
    assert!(loaded.capacity_provider_strategy.is_empty());
    assert!(loaded.deployments[0].capacity_provider_strategy.is_empty());
    assert!(loaded.placement_constraints.is_empty());
}
