//! The statuses of what a cluster holds: itself, its container instances, capacity
//! providers and services, and a service's deployments; and the built-in capacity
//! providers' names.

/// The built-in capacity providers, which exist in every account and serve every cluster.
pub const FARGATE: &str = "FARGATE";
pub const FARGATE_SPOT: &str = "FARGATE_SPOT";

ecs_enum! {
    /// A cluster's `status`: INACTIVE once deleted (still describable).
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

ecs_enum! {
    /// A service's `status`.
    pub enum ServiceStatus {
        Active = "ACTIVE" | "Active",
        /// Deleted, its tasks still stopping.
        Draining = "DRAINING" | "Draining",
        /// Deleted and empty: describable, not listed.
        Inactive = "INACTIVE" | "Inactive",
    }
}

ecs_enum! {
    /// A service's `schedulingStrategy`: REPLICA keeps `desiredCount` tasks placed by its
    /// strategy; DAEMON runs one task on each ACTIVE container instance of the cluster
    /// that meets its placement constraints.
    #[derive(Default)]
    pub enum SchedulingStrategy {
        #[default]
        Replica = "REPLICA",
        Daemon = "DAEMON",
    }
}

ecs_enum! {
    /// A task set's `status`: the PRIMARY one serves production traffic, ACTIVE ones
    /// run beside it, DRAINING ones are being deleted.
    pub enum TaskSetStatus {
        Primary = "PRIMARY",
        Active = "ACTIVE",
        Draining = "DRAINING",
    }
}

ecs_enum! {
    /// A task set's `stabilityStatus`: `STEADY_STATE` once it runs its computed count.
    pub enum StabilityStatus {
        SteadyState = "STEADY_STATE",
        Stabilizing = "STABILIZING",
    }
}

ecs_enum! {
    /// A deployment's `status`.
    pub enum DeploymentStatus {
        /// The deployment the service converges to.
        Primary = "PRIMARY" | "Primary",
        /// An older deployment whose tasks are being replaced.
        Active = "ACTIVE" | "Active",
    }
}

ecs_enum! {
    /// A service deployment's `status` (`ListServiceDeployments`, ...).
    pub enum ServiceDeploymentStatus {
        Pending = "PENDING",
        InProgress = "IN_PROGRESS",
        Successful = "SUCCESSFUL",
        Stopped = "STOPPED",
        StopRequested = "STOP_REQUESTED",
        RollbackRequested = "ROLLBACK_REQUESTED",
        RollbackInProgress = "ROLLBACK_IN_PROGRESS",
        RollbackSuccessful = "ROLLBACK_SUCCESSFUL",
        RollbackFailed = "ROLLBACK_FAILED",
    }
}

ecs_enum! {
    /// A service deployment's circuit breaker (and alarms): `status`.
    pub enum DeploymentMonitorStatus {
        Triggered = "TRIGGERED",
        Monitoring = "MONITORING",
        MonitoringComplete = "MONITORING_COMPLETE",
        Disabled = "DISABLED",
    }
}

ecs_enum! {
    /// A deployment's `rolloutState`.
    pub enum RolloutState {
        InProgress = "IN_PROGRESS" | "InProgress",
        Completed = "COMPLETED" | "Completed",
        Failed = "FAILED" | "Failed",
    }
}
