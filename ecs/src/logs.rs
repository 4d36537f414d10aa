//! CloudWatch Logs' vocabulary that Berth's logs API speaks.

ecs_enum! {
    /// A Logs Insights query's `status`; a Berth query goes from `Running` to
    /// `Complete`, `Failed` or `Cancelled`.
    pub enum QueryStatus {
        Scheduled = "Scheduled",
        Running = "Running",
        Complete = "Complete",
        Failed = "Failed",
        Cancelled = "Cancelled",
        Timeout = "Timeout",
        Unknown = "Unknown",
    }
}
