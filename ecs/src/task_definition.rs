//! A task definition's vocabulary: its status, network mode, dependency conditions and
//! port protocols.

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
    /// A task definition's `networkMode`.
    pub enum NetworkMode {
        Awsvpc = "awsvpc" | "Awsvpc",
        Bridge = "bridge" | "Bridge",
        Host = "host" | "Host",
        None = "none" | "None",
    }
}

ecs_enum! {
    /// A `dependsOn` condition.
    pub enum ContainerCondition {
        Start = "START" | "Start",
        Complete = "COMPLETE" | "Complete",
        Success = "SUCCESS" | "Success",
        Healthy = "HEALTHY" | "Healthy",
    }
}

ecs_enum! {
    /// A port mapping's or network binding's transport `protocol`.
    pub enum Protocol {
        Tcp = "tcp" | "Tcp",
        Udp = "udp" | "Udp",
    }
}

impl Protocol {
    /// The placement failure reason when a host port of this protocol is taken.
    pub fn resource_failure(self) -> &'static str {
        match self {
            Self::Tcp => "RESOURCE:PORTS",
            Self::Udp => "RESOURCE:PORTS_UDP",
        }
    }
}
