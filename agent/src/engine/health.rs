//! Container health from check results, and the task's rolled-up health, as ECS decides them.

use std::time::Duration;

use crate::model::HealthStatus;

/// Folds check results into a status: UNKNOWN until decided; HEALTHY on a
/// pass; UNHEALTHY after `retries` consecutive failures. Failures inside the
/// start period do not count (a pass there still counts).
#[derive(Debug, Clone)]
pub struct HealthTracker {
    retries: u32,
    start_period_ms: i64,
    started_at_ms: i64,
    failures: u32,
    status: HealthStatus,
}

impl HealthTracker {
    pub fn new(retries: u32, start_period: Duration, started_at_ms: i64) -> Self {
        Self {
            retries: retries.max(1),
            start_period_ms: i64::try_from(start_period.as_millis()).unwrap_or(i64::MAX),
            started_at_ms,
            failures: 0,
            status: HealthStatus::Unknown,
        }
    }

    pub fn status(&self) -> HealthStatus {
        self.status
    }

    /// Records one check result; returns the status after it.
    pub fn record(&mut self, passed: bool, now_ms: i64) -> HealthStatus {
        if passed {
            self.failures = 0;
            self.status = HealthStatus::Healthy;
        } else if now_ms - self.started_at_ms >= self.start_period_ms {
            self.failures += 1;
            if self.failures >= self.retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.status
    }
}

/// The task's health from its essential containers that have a health check:
/// UNHEALTHY if any is, else UNKNOWN if any is, else HEALTHY; UNKNOWN when
/// none has a check.
pub fn task_health(essential_healths: impl IntoIterator<Item = HealthStatus>) -> HealthStatus {
    let mut any = false;
    let mut unknown = false;
    for h in essential_healths {
        any = true;
        match h {
            HealthStatus::Unhealthy => return HealthStatus::Unhealthy,
            HealthStatus::Unknown => unknown = true,
            HealthStatus::Healthy => {}
        }
    }
    if !any || unknown {
        HealthStatus::Unknown
    } else {
        HealthStatus::Healthy
    }
}
