//! A task's and its containers' statuses, why a task stopped, and where it runs.

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

impl TaskStatus {
    /// On its way up: placed, not yet RUNNING (what ECS counts as pending).
    pub fn is_pending(self) -> bool {
        self < Self::Running
    }

    /// On its way down (or there): it will not run again.
    pub fn is_stopping(self) -> bool {
        self >= Self::Stopping
    }
}

/// A task starts here: placed, nothing made yet.
impl Default for TaskStatus {
    fn default() -> Self {
        Self::Provisioning
    }
}

ecs_enum! {
    /// A task's `desiredStatus`: what the control plane wants of it. Berth never sets
    /// PENDING; `ListTasks` takes it as a filter meaning not stopped, as RUNNING does.
    /// (The agent's records once stored the variant names.)
    pub enum DesiredStatus {
        Running = "RUNNING" | "Running",
        Pending = "PENDING",
        Stopped = "STOPPED" | "Stopped",
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

/// A container starts here: not yet created.
impl Default for ContainerStatus {
    fn default() -> Self {
        Self::Pending
    }
}

ecs_enum! {
    /// A container's or (rolled up from its essential containers) a task's `healthStatus`.
    pub enum HealthStatus {
        Healthy = "HEALTHY",
        Unhealthy = "UNHEALTHY",
        Unknown = "UNKNOWN",
    }
}

ecs_enum! {
    /// Why a task stopped (`stopCode`, ECS's `TaskStopCode`).
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
    /// Where a task runs (`launchType`, and the compatibilities a task definition requires).
    pub enum LaunchType {
        Ec2 = "EC2" | "Ec2",
        Fargate = "FARGATE" | "Fargate",
        External = "EXTERNAL" | "External",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{names, EcsEnum};

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
        let pending: Vec<_> = TaskStatus::ALL.iter().filter(|s| s.is_pending()).collect();
        assert_eq!(
            pending,
            [
                &TaskStatus::Provisioning,
                &TaskStatus::Pending,
                &TaskStatus::Activating
            ]
        );
        let stopping: Vec<_> = TaskStatus::ALL.iter().filter(|s| s.is_stopping()).collect();
        assert_eq!(
            stopping,
            [
                &TaskStatus::Stopping,
                &TaskStatus::Deprovisioning,
                &TaskStatus::Stopped
            ]
        );
        assert!(ContainerStatus::Pending < ContainerStatus::Running);
        assert!(ContainerStatus::Running < ContainerStatus::Stopped);
    }

    #[test]
    fn names_list_values_for_messages() {
        assert_eq!(names(DesiredStatus::ALL), "RUNNING, PENDING or STOPPED");
        assert_eq!(names(&[HealthStatus::Healthy]), "HEALTHY");
    }

    #[test]
    fn aliases_read_old_records_but_parse_takes_only_ecs_strings() {
        let old: DesiredStatus = serde_json::from_str("\"Stopped\"").unwrap();
        assert_eq!(old, DesiredStatus::Stopped);
        assert_eq!(serde_json::to_string(&old).unwrap(), "\"STOPPED\"");
        assert_eq!(DesiredStatus::parse("Stopped"), None);
        assert_eq!(
            serde_json::from_str::<LaunchType>("\"Ec2\"").unwrap(),
            LaunchType::Ec2
        );
    }
}
