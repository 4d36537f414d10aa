//! The wire enums of `berth.agent.v1` and the ECS vocabulary they carry (`berth_ecs`): one
//! mapping each way, which the agent's and the control plane's conversion modules share.
//! An enum field that is unset (0) or holds a value this build does not know is refused.

use berth_ecs::{
    ContainerCondition, ContainerStatus, DesiredStatus, HealthStatus, NetworkMode, Protocol,
    StopCode, TaskStatus,
};

use crate::v1;

/// An enum field that is unset, or holds a value from another version of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownValue(pub i32);

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == 0 {
            f.write_str("unset")
        } else {
            write!(
                f,
                "{}, a value this side does not know (another version?)",
                self.0
            )
        }
    }
}

impl std::error::Error for UnknownValue {}

/// An ECS value that travels as a protobuf enum.
pub trait Wire: Sized + Copy {
    /// The value a required field holds; unset (0) is refused.
    fn from_wire(v: i32) -> Result<Self, UnknownValue>;

    fn to_wire(self) -> i32;

    /// The value of a field where unset means none (no health check, no stop code).
    fn optional_from_wire(v: i32) -> Result<Option<Self>, UnknownValue> {
        if v == 0 {
            Ok(None)
        } else {
            Self::from_wire(v).map(Some)
        }
    }

    fn optional_to_wire(v: Option<Self>) -> i32 {
        v.map_or(0, Self::to_wire)
    }
}

/// Pairs a `berth_ecs` enum with the wire enum whose variants bear the same names.
macro_rules! same_names {
    ($domain:ident <=> $wire:ident { $($v:ident),+ $(,)? }) => {
        impl Wire for $domain {
            fn from_wire(v: i32) -> Result<Self, UnknownValue> {
                match v1::$wire::try_from(v) {
                    $(Ok(v1::$wire::$v) => Ok(Self::$v),)+
                    _ => Err(UnknownValue(v)),
                }
            }

            fn to_wire(self) -> i32 {
                match self {
                    $(Self::$v => v1::$wire::$v.into(),)+
                }
            }
        }
    };
}

same_names!(TaskStatus <=> TaskState {
    Provisioning, Pending, Activating, Running, Deactivating, Stopping, Deprovisioning, Stopped,
});
same_names!(ContainerStatus <=> ContainerState { Pending, Running, Stopped });
same_names!(HealthStatus <=> HealthStatus { Unknown, Healthy, Unhealthy });
same_names!(StopCode <=> StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
    SpotInterruption,
    TerminationNotice,
});
same_names!(Protocol <=> Protocol { Tcp, Udp });
same_names!(ContainerCondition <=> DependencyCondition { Start, Complete, Success, Healthy });
same_names!(NetworkMode <=> NetworkMode { Awsvpc, Bridge, Host, None });

/// The agent runs or stops a task; PENDING (a `ListTasks` filter) is not a desired state
/// it is ever sent, and travels as RUNNING.
impl Wire for DesiredStatus {
    fn from_wire(v: i32) -> Result<Self, UnknownValue> {
        match v1::DesiredStatus::try_from(v) {
            Ok(v1::DesiredStatus::Running) => Ok(Self::Running),
            Ok(v1::DesiredStatus::Stopped) => Ok(Self::Stopped),
            _ => Err(UnknownValue(v)),
        }
    }

    fn to_wire(self) -> i32 {
        match self {
            Self::Running | Self::Pending => v1::DesiredStatus::Running.into(),
            Self::Stopped => v1::DesiredStatus::Stopped.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use berth_ecs::EcsEnum;

    use super::*;

    fn round_trips<T: Wire + EcsEnum + std::fmt::Debug>() {
        for v in T::ALL {
            assert_eq!(T::from_wire(v.to_wire()), Ok(*v), "{v:?}");
        }
        assert_eq!(T::from_wire(0), Err(UnknownValue(0)));
        assert_eq!(T::from_wire(99), Err(UnknownValue(99)));
    }

    #[test]
    fn every_value_crosses_the_wire_and_back() {
        round_trips::<TaskStatus>();
        round_trips::<ContainerStatus>();
        round_trips::<HealthStatus>();
        round_trips::<StopCode>();
        round_trips::<Protocol>();
        round_trips::<ContainerCondition>();
        round_trips::<NetworkMode>();
        assert_eq!(
            DesiredStatus::from_wire(DesiredStatus::Stopped.to_wire()),
            Ok(DesiredStatus::Stopped)
        );
        assert_eq!(
            DesiredStatus::from_wire(DesiredStatus::Pending.to_wire()),
            Ok(DesiredStatus::Running)
        );
    }

    #[test]
    fn unset_is_none_where_none_means_something() {
        assert_eq!(HealthStatus::optional_from_wire(0), Ok(None));
        assert_eq!(
            StopCode::optional_from_wire(StopCode::UserInitiated.to_wire()),
            Ok(Some(StopCode::UserInitiated))
        );
        assert_eq!(StopCode::optional_to_wire(None), 0);
        assert_eq!(UnknownValue(0).to_string(), "unset");
        assert!(UnknownValue(7)
            .to_string()
            .starts_with("7, a value this side does not know"));
    }
}
