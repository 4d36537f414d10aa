//! berth-ecs: ECS's vocabulary, shared by the control plane, the agent, the protobuf
//! conversions and the CLI. Each value's ECS string is written once, in `ecs_enum!`, and
//! serves serde (stores, APIs, logs), `as_str` and `parse`; an alias keeps records written
//! before a field was an enum (with Rust's variant names) readable.

/// An enum of ECS strings (implemented by `ecs_enum!`).
pub trait EcsEnum: Sized + Copy + PartialEq + 'static {
    /// Every value, in declaration order.
    const ALL: &'static [Self];

    /// The ECS string.
    fn as_str(self) -> &'static str;

    /// The value an ECS string names; None for anything else (aliases of old records
    /// are for serde only).
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }
}

/// `values`' ECS strings for a message: `A, B or C`.
pub fn names<T: EcsEnum>(values: &[T]) -> String {
    let names: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// Declares an enum whose variants are ECS strings. Variants are in the order given, so
/// `Ord` follows it (lifecycles are declared in order).
macro_rules! ecs_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text $(, alias = $alias)*)] $variant ),+
        }

        impl $crate::EcsEnum for $name {
            const ALL: &'static [$name] = &[$($name::$variant),+];

            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl $name {
            /// The ECS string.
            pub fn as_str(self) -> &'static str {
                $crate::EcsEnum::as_str(self)
            }

            /// The value an ECS string names; None for anything else.
            pub fn parse(s: &str) -> Option<Self> {
                $crate::EcsEnum::parse(s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // Tests speak ECS strings, as users see them; the code never does.
        #[cfg(any(test, feature = "test-strings"))]
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        #[cfg(any(test, feature = "test-strings"))]
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::parse(s).unwrap_or_else(|| panic!("not a {}: {s}", stringify!($name)))
            }
        }
    };
}

pub mod awslogs;
mod cluster;
pub mod logs;
mod task;
mod task_definition;

pub use cluster::{
    CapacityProviderStatus, CapacityProviderUpdateStatus, ClusterStatus, DeploymentMonitorStatus,
    DeploymentStatus, InstanceStatus, RolloutState, SchedulingStrategy, ServiceDeploymentStatus,
    ServiceStatus, StabilityStatus, TaskSetStatus, FARGATE, FARGATE_SPOT,
};
pub use task::{
    Connectivity, ContainerStatus, DesiredStatus, HealthStatus, LaunchType, StopCode, TaskStatus,
};
pub use task_definition::{
    ContainerCondition, NetworkMode, Protocol, TaskDefinitionFamilyStatus, TaskDefinitionStatus,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value is stored (serde), shown (`Display`) and parsed by the same ECS string.
    fn one_string_each<T>()
    where
        T: EcsEnum + std::fmt::Debug + std::fmt::Display + serde::Serialize,
        T: serde::de::DeserializeOwned,
    {
        for v in T::ALL {
            let json = serde_json::to_string(v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.as_str()), "{v:?}");
            assert_eq!(v.to_string(), v.as_str());
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *v);
            assert_eq!(T::parse(v.as_str()), Some(*v));
        }
    }

    #[test]
    fn every_vocabulary_has_one_string_per_value() {
        one_string_each::<TaskStatus>();
        one_string_each::<DesiredStatus>();
        one_string_each::<ContainerStatus>();
        one_string_each::<HealthStatus>();
        one_string_each::<StopCode>();
        one_string_each::<Connectivity>();
        one_string_each::<LaunchType>();
        one_string_each::<SchedulingStrategy>();
        one_string_each::<TaskSetStatus>();
        one_string_each::<StabilityStatus>();
        one_string_each::<NetworkMode>();
        one_string_each::<ContainerCondition>();
        one_string_each::<Protocol>();
        one_string_each::<TaskDefinitionStatus>();
        one_string_each::<TaskDefinitionFamilyStatus>();
        one_string_each::<ClusterStatus>();
        one_string_each::<InstanceStatus>();
        one_string_each::<CapacityProviderStatus>();
        one_string_each::<CapacityProviderUpdateStatus>();
        one_string_each::<ServiceStatus>();
        one_string_each::<DeploymentStatus>();
        one_string_each::<RolloutState>();
    }
}
