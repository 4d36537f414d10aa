//! ECS's status and code vocabularies as enums. Each variant's ECS string is written once,
//! in `ecs_enum!`, and serves serde (the store and the API), `as_str` and `parse`; an
//! `alias` keeps records written before a field was an enum readable.

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

        impl $crate::model::status::EcsEnum for $name {
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
                $crate::model::status::EcsEnum::as_str(self)
            }

            /// The value an ECS string names; None for anything else.
            pub fn parse(s: &str) -> Option<Self> {
                $crate::model::status::EcsEnum::parse(s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // Tests speak ECS strings, as users see them; the code never does.
        #[cfg(test)]
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        #[cfg(test)]
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::parse(s).unwrap_or_else(|| panic!("not a {}: {s}", stringify!($name)))
            }
        }
    };
}

pub(crate) use ecs_enum;

ecs_enum! {
    /// A task's `lastStatus`, in lifecycle order: a reported status never moves a task back.
    pub enum TaskStatus {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
    }
}

ecs_enum! {
    /// A task's `desiredStatus`: what the control plane wants of it. Berth never sets
    /// PENDING; `ListTasks` takes it as a filter meaning not stopped, as RUNNING does.
    pub enum DesiredStatus {
        Running = "RUNNING",
        Pending = "PENDING",
        Stopped = "STOPPED",
    }
}

ecs_enum! {
    /// A container's `lastStatus`, in order.
    pub enum ContainerStatus {
        Pending = "PENDING",
        Running = "RUNNING",
        Stopped = "STOPPED",
    }
}

ecs_enum! {
    /// A container's or task's `healthStatus`.
    pub enum HealthStatus {
        Healthy = "HEALTHY",
        Unhealthy = "UNHEALTHY",
        Unknown = "UNKNOWN",
    }
}

ecs_enum! {
    /// Why a task stopped (`stopCode`).
    pub enum StopCode {
        TaskFailedToStart = "TaskFailedToStart",
        EssentialContainerExited = "EssentialContainerExited",
        UserInitiated = "UserInitiated",
        ServiceSchedulerInitiated = "ServiceSchedulerInitiated",
        SpotInterruption = "SpotInterruption",
        TerminationNotice = "TerminationNotice",
    }
}

ecs_enum! {
    /// Whether a task's agent is in contact (`connectivity`).
    pub enum Connectivity {
        Connected = "CONNECTED",
        Disconnected = "DISCONNECTED",
    }
}

ecs_enum! {
    /// A cluster's `status`: ACTIVE, or INACTIVE once deleted (still describable).
    pub enum ClusterStatus {
        Active = "ACTIVE",
        Inactive = "INACTIVE",
    }
}

ecs_enum! {
    /// A container instance's `status`: INACTIVE once deregistered (still describable).
    /// Berth never sets the REGISTERING ones; `ListContainerInstances` accepts them.
    pub enum InstanceStatus {
        Active = "ACTIVE",
        Draining = "DRAINING",
        Registering = "REGISTERING",
        Deregistering = "DEREGISTERING",
        RegistrationFailed = "REGISTRATION_FAILED",
        Inactive = "INACTIVE",
    }
}

ecs_enum! {
    /// A task definition revision's `status`.
    pub enum TaskDefinitionStatus {
        Active = "ACTIVE",
        Inactive = "INACTIVE",
        DeleteInProgress = "DELETE_IN_PROGRESS",
    }
}

ecs_enum! {
    /// The `status` filter of `ListTaskDefinitionFamilies`.
    pub enum TaskDefinitionFamilyStatus {
        Active = "ACTIVE",
        Inactive = "INACTIVE",
        All = "ALL",
    }
}

ecs_enum! {
    /// A capacity provider's `status`.
    pub enum CapacityProviderStatus {
        Active = "ACTIVE",
        Inactive = "INACTIVE",
    }
}

ecs_enum! {
    /// A capacity provider's `updateStatus`: how its last create, update or delete went.
    pub enum CapacityProviderUpdateStatus {
        CreateComplete = "CREATE_COMPLETE",
        UpdateComplete = "UPDATE_COMPLETE",
        DeleteComplete = "DELETE_COMPLETE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_strings_round_trip_through_serde_as_str_and_parse() {
        for s in TaskStatus::ALL {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<TaskStatus>(&json).unwrap(), *s);
            assert_eq!(TaskStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(
            StopCode::EssentialContainerExited.to_string(),
            "EssentialContainerExited"
        );
        assert_eq!(TaskStatus::parse("running"), None);
        assert!(serde_json::from_str::<HealthStatus>("\"healthy\"").is_err());
    }

    #[test]
    fn lifecycles_are_ordered() {
        assert!(TaskStatus::Provisioning < TaskStatus::Pending);
        assert!(TaskStatus::Running < TaskStatus::Deactivating);
        assert!(TaskStatus::Deprovisioning < TaskStatus::Stopped);
        assert!(ContainerStatus::Pending < ContainerStatus::Running);
        assert!(ContainerStatus::Running < ContainerStatus::Stopped);
    }

    #[test]
    fn names_list_values_for_messages() {
        assert_eq!(names(DesiredStatus::ALL), "RUNNING, PENDING or STOPPED");
        assert_eq!(
            names(&[
                InstanceStatus::Active,
                InstanceStatus::Draining,
                InstanceStatus::Inactive
            ]),
            "ACTIVE, DRAINING or INACTIVE"
        );
        assert_eq!(names(&[HealthStatus::Healthy]), "HEALTHY");
    }

    #[test]
    fn aliases_read_old_records_but_parse_takes_only_ecs_strings() {
        use crate::model::service::ServiceStatus;
        let old: ServiceStatus = serde_json::from_str("\"Draining\"").unwrap();
        assert_eq!(old, ServiceStatus::Draining);
        assert_eq!(serde_json::to_string(&old).unwrap(), "\"DRAINING\"");
        assert_eq!(ServiceStatus::parse("Draining"), None);
    }
}
