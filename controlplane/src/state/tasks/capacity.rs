//! Which hosts a `RunTask` may use: a launch type, a capacity provider
//! strategy, or (when it names neither) the cluster's default strategy.
//! Pure: turns the request and cluster into per-pool task counts.

use crate::model::capacity_provider::is_fargate;
use crate::model::{Cluster, LaunchType};
use crate::scheduler::{split_by_capacity_provider, validate_strategy, CapacityProviderShare};

/// How a `RunTask` chooses its capacity (ECS allows one of the first two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capacity {
    LaunchType(LaunchType),
    Strategy(Vec<CapacityProviderShare>),
    /// Neither was given: the cluster's default strategy, else EC2.
    ClusterDefault,
}

/// A set of hosts that takes a share of the tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pool {
    /// `launchType`: FARGATE-pool hosts, or the cluster's instances.
    LaunchType(LaunchType),
    /// The hosts of one capacity provider.
    Provider(String),
}

impl Pool {
    /// The launch type the pool's tasks report: Fargate pools run FARGATE
    /// tasks, named host pools EC2 ones (as an ECS Auto Scaling group
    /// provider does).
    pub fn launch_type(&self) -> LaunchType {
        match self {
            Pool::LaunchType(l) => *l,
            Pool::Provider(p) if is_fargate(p) => LaunchType::Fargate,
            Pool::Provider(_) => LaunchType::Ec2,
        }
    }

    pub fn provider(&self) -> Option<&str> {
        match self {
            Pool::Provider(p) => Some(p),
            Pool::LaunchType(_) => None,
        }
    }
}

/// Splits `count` tasks over pools; pools that get none are left out.
pub fn plan(
    cluster: &Cluster,
    capacity: &Capacity,
    count: u32,
) -> Result<Vec<(Pool, u32)>, String> {
    let strategy = match capacity {
        Capacity::LaunchType(l) => return Ok(vec![(Pool::LaunchType(*l), count)]),
        Capacity::ClusterDefault if cluster.default_capacity_provider_strategy.is_empty() => {
            return Ok(vec![(Pool::LaunchType(LaunchType::Ec2), count)])
        }
        Capacity::ClusterDefault => &cluster.default_capacity_provider_strategy,
        Capacity::Strategy(s) => s,
    };
    validate_strategy(strategy, &cluster.capacity_providers)?;
    Ok(split_by_capacity_provider(strategy, count)?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(p, n)| (Pool::Provider(p), n))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(p: &str, weight: u32, base: u32) -> CapacityProviderShare {
        CapacityProviderShare {
            provider: p.into(),
            weight,
            base,
        }
    }

    fn cluster(providers: &[&str], default: Vec<CapacityProviderShare>) -> Cluster {
        Cluster {
            name: "web".into(),
            arn: "arn".into(),
            status: "ACTIVE".into(),
            created_at_ms: 0,
            tags: vec![],
            settings: vec![],
            configuration: None,
            capacity_providers: providers.iter().map(|p| (*p).to_string()).collect(),
            default_capacity_provider_strategy: default,
        }
    }

    fn p(name: &str) -> Pool {
        Pool::Provider(name.into())
    }

    #[test]
    fn strategy_splits_as_the_issue_says() {
        let c = cluster(&["FARGATE", "FARGATE_SPOT"], vec![]);
        let s = Capacity::Strategy(vec![share("FARGATE", 1, 2), share("FARGATE_SPOT", 3, 0)]);
        assert_eq!(
            plan(&c, &s, 5).unwrap(),
            vec![(p("FARGATE"), 2), (p("FARGATE_SPOT"), 3)]
        );
        assert_eq!(
            plan(&c, &s, 10).unwrap(),
            vec![(p("FARGATE"), 4), (p("FARGATE_SPOT"), 6)]
        );
        // Providers with no share are left out.
        assert_eq!(plan(&c, &s, 2).unwrap(), vec![(p("FARGATE"), 2)]);
    }

    #[test]
    fn default_strategy_applies_only_when_nothing_is_named() {
        let c = cluster(&["gpu", "FARGATE"], vec![share("gpu", 1, 0)]);
        assert_eq!(
            plan(&c, &Capacity::ClusterDefault, 3).unwrap(),
            vec![(p("gpu"), 3)]
        );
        assert_eq!(
            plan(&c, &Capacity::LaunchType(LaunchType::Fargate), 3).unwrap(),
            vec![(Pool::LaunchType(LaunchType::Fargate), 3)]
        );
        let s = Capacity::Strategy(vec![share("FARGATE", 1, 0)]);
        assert_eq!(plan(&c, &s, 1).unwrap(), vec![(p("FARGATE"), 1)]);
        // No default strategy: EC2, as in ECS.
        let bare = cluster(&[], vec![]);
        assert_eq!(
            plan(&bare, &Capacity::ClusterDefault, 2).unwrap(),
            vec![(Pool::LaunchType(LaunchType::Ec2), 2)]
        );
    }

    #[test]
    fn unassociated_provider_is_refused() {
        let c = cluster(&["FARGATE"], vec![]);
        let s = Capacity::Strategy(vec![share("FARGATE_SPOT", 1, 0)]);
        assert!(plan(&c, &s, 1).unwrap_err().contains("not associated"));
    }

    #[test]
    fn pools_report_ecs_launch_types() {
        assert_eq!(p("FARGATE_SPOT").launch_type(), LaunchType::Fargate);
        assert_eq!(p("gpu").launch_type(), LaunchType::Ec2);
        assert_eq!(p("gpu").provider(), Some("gpu"));
        assert_eq!(Pool::LaunchType(LaunchType::External).provider(), None);
    }
}

/// `RunTask` through the control plane: each share lands on its pool's hosts.
#[cfg(test)]
mod wiring_tests {
    use super::*;
    use crate::model::Resources;
    use crate::state::test_support::{control_plane, register_web, registration, run};
    use crate::state::{CapacityProviderSpec, ClusterCapacity, ControlPlane, StateError};

    fn share(p: &str, weight: u32, base: u32) -> CapacityProviderShare {
        CapacityProviderShare {
            provider: p.into(),
            weight,
            base,
        }
    }

    /// A connected host of `provider` registered in `cluster`, room for 8 web tasks.
    fn host(cp: &ControlPlane, cluster: &str, provider: Option<&str>) -> String {
        let mut r = registration(cluster, false);
        r.capacity_provider = provider.map(str::to_owned);
        r.resources = Resources {
            cpu: 8192,
            memory_mib: 4096,
        };
        let ci = cp.register_instance(&r).unwrap();
        let _rx = cp.open_session(&ci.arn).unwrap();
        ci.arn
    }

    fn strategy_run(count: usize, capacity: Capacity) -> crate::state::RunTask {
        let mut r = run("web", LaunchType::Ec2, count);
        r.capacity = capacity;
        r
    }

    #[test]
    fn each_share_lands_on_its_pool() {
        let (cp, _) = control_plane();
        register_web(&cp);
        cp.create_cluster("other", vec![]).unwrap();
        cp.create_cluster("web", vec![]).unwrap();
        let fargate = host(&cp, "default", Some("FARGATE"));
        let spot = host(&cp, "other", Some("FARGATE_SPOT"));
        let plain = host(&cp, "web", None);
        cp.put_cluster_capacity_providers(
            "web",
            &ClusterCapacity {
                capacity_providers: vec!["FARGATE".into(), "FARGATE_SPOT".into()],
                default_strategy: vec![],
            },
        )
        .unwrap();
        let s = Capacity::Strategy(vec![share("FARGATE", 1, 2), share("FARGATE_SPOT", 3, 0)]);
        let out = cp.run_task(&strategy_run(5, s)).unwrap();
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        let on = |arn: &str| {
            out.tasks
                .iter()
                .filter(|t| t.container_instance_arn.as_deref() == Some(arn))
                .collect::<Vec<_>>()
        };
        assert_eq!(on(&fargate).len(), 2);
        assert_eq!(on(&spot).len(), 3);
        assert!(on(&plain).is_empty());
        assert!(on(&spot).iter().all(|t| t.capacity_provider_name.as_deref()
            == Some("FARGATE_SPOT")
            && t.launch_type == LaunchType::Fargate
            && t.cluster == "web"));
        // Not associated with "other".
        let mut r = strategy_run(1, Capacity::Strategy(vec![share("FARGATE", 1, 0)]));
        r.launch.cluster = "other".into();
        assert!(matches!(
            cp.run_task(&r),
            Err(StateError::InvalidParameter(m)) if m.contains("not associated")
        ));
    }

    #[test]
    fn default_strategy_places_on_the_named_pool_and_pins_it() {
        let (cp, store) = control_plane();
        register_web(&cp);
        cp.create_cluster("web", vec![]).unwrap();
        cp.create_capacity_provider(
            "us-east-1",
            &CapacityProviderSpec {
                name: "gpu".into(),
                auto_scaling_group_provider: serde_json::json!({"autoScalingGroupArn": "arn:asg"}),
                tags: vec![],
            },
        )
        .unwrap();
        let plain = host(&cp, "web", None);
        let gpu = host(&cp, "web", Some("gpu"));
        // A gpu host of another cluster is not the web pool's.
        cp.create_cluster("other", vec![]).unwrap();
        let foreign = host(&cp, "other", Some("gpu"));
        let with_gpu = ClusterCapacity {
            capacity_providers: vec!["gpu".into()],
            default_strategy: vec![share("gpu", 1, 0)],
        };
        cp.put_cluster_capacity_providers("web", &with_gpu).unwrap();
        let out = cp
            .run_task(&strategy_run(3, Capacity::ClusterDefault))
            .unwrap();
        assert_eq!(out.tasks.len(), 3);
        for t in &out.tasks {
            assert_eq!(t.container_instance_arn.as_deref(), Some(gpu.as_str()));
            assert_eq!(t.capacity_provider_name.as_deref(), Some("gpu"));
            assert_eq!(t.launch_type, LaunchType::Ec2);
        }
        let batches = store.batches.lock().unwrap().len();
        // A launch type overrides the default: any instance of the cluster.
        let ec2 = cp.run_task(&run("web", LaunchType::Ec2, 1)).unwrap();
        assert!(ec2.tasks[0].capacity_provider_name.is_none());
        assert_ne!(
            ec2.tasks[0].container_instance_arn.as_deref(),
            Some(foreign.as_str())
        );
        let _ = plain;
        // The pool cannot leave the cluster while its tasks run.
        assert!(matches!(
            cp.put_cluster_capacity_providers("web", &ClusterCapacity::default()),
            Err(StateError::ResourceInUse(m)) if m.contains("'gpu'")
        ));
        assert_eq!(store.batches.lock().unwrap().len(), batches + 1);
    }

    #[test]
    fn a_pool_without_hosts_is_a_failure_not_an_error() {
        let (cp, _) = control_plane();
        register_web(&cp);
        cp.create_cluster("web", vec![]).unwrap();
        cp.put_cluster_capacity_providers(
            "web",
            &ClusterCapacity {
                capacity_providers: vec!["FARGATE_SPOT".into()],
                default_strategy: vec![],
            },
        )
        .unwrap();
        let s = Capacity::Strategy(vec![share("FARGATE_SPOT", 1, 0)]);
        let out = cp.run_task(&strategy_run(2, s)).unwrap();
        assert!(out.tasks.is_empty());
        assert_eq!(out.failures.len(), 2);
        assert_eq!(out.failures[0].reason, "RESOURCE");
        assert!(out.failures[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("'FARGATE_SPOT'"));
    }
}
