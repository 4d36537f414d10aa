//! Target health as ELB reports it: a pure state machine over health-check outcomes, and
//! the table of every target's health, kept in step with the targets each group has.
//!
//! A new target is `initial` until its first check: one success makes it `healthy`.
//! Afterwards it takes `UnhealthyThresholdCount` failures in a row to become `unhealthy`
//! and `HealthyThresholdCount` successes in a row to come back. A target that leaves its
//! group drains for the group's deregistration delay, then is forgotten.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{HealthCheck, Target};

/// What one health check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// A status the matcher accepts.
    Passed,
    /// Any other status.
    CodeMismatch(u16),
    Timeout,
    /// No connection, or no valid HTTP answer.
    Failed(String),
}

/// ELB's target states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
    Unused,
    Unavailable,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Draining => "draining",
            Self::Unused => "unused",
            Self::Unavailable => "unavailable",
        }
    }
}

/// One target's health, as `DescribeTargetHealth` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub state: State,
    pub reason: Option<&'static str>,
    pub description: Option<String>,
    passes: u32,
    failures: u32,
    /// While draining: when the target is dropped.
    pub drained_at_ms: Option<i64>,
}

impl TargetHealth {
    pub fn registered() -> Self {
        Self {
            state: State::Initial,
            reason: Some("Elb.RegistrationInProgress"),
            description: Some("Target registration is in progress".into()),
            passes: 0,
            failures: 0,
            drained_at_ms: None,
        }
    }

    /// Whether requests may go to this target (failing open is the router's business).
    pub fn routable(&self) -> bool {
        self.state == State::Healthy
    }

    pub fn observe(&mut self, outcome: &CheckOutcome, hc: &HealthCheck) {
        if self.state == State::Draining {
            return;
        }
        if *outcome == CheckOutcome::Passed {
            self.passes += 1;
            self.failures = 0;
            let enough = self.state == State::Initial || self.passes >= hc.healthy_threshold;
            if enough {
                self.state = State::Healthy;
                self.reason = None;
                self.description = None;
            }
            return;
        }
        self.failures += 1;
        self.passes = 0;
        let (reason, description) = match outcome {
            CheckOutcome::CodeMismatch(code) => (
                "Target.ResponseCodeMismatch",
                format!("Health checks failed with these codes: [{code}]"),
            ),
            CheckOutcome::Timeout => ("Target.Timeout", "Request timed out".to_string()),
            CheckOutcome::Failed(why) => (
                "Target.FailedHealthChecks",
                format!("Health checks failed: {why}"),
            ),
            CheckOutcome::Passed => unreachable!("handled above"),
        };
        if self.failures >= hc.unhealthy_threshold || self.state == State::Unhealthy {
            self.state = State::Unhealthy;
            self.reason = Some(reason);
            self.description = Some(description);
        } else if self.state == State::Initial {
            self.reason = Some("Elb.InitialHealthChecking");
            self.description = Some("Initial health checks in progress".into());
        }
    }

    fn drain(&mut self, until_ms: i64) {
        self.state = State::Draining;
        self.reason = Some("Target.DeregistrationInProgress");
        self.description = Some("Target deregistration is in progress".into());
        self.drained_at_ms = Some(until_ms);
    }
}

/// Every target's health, by target group ARN.
#[derive(Debug, Default)]
pub struct HealthTable {
    groups: BTreeMap<String, BTreeMap<Target, TargetHealth>>,
}

impl HealthTable {
    /// Brings `tg`'s entries in step with the targets it has now: new ones start
    /// `initial`, missing ones drain for `delay_ms`, drained ones are dropped.
    pub fn sync(&mut self, tg: &str, targets: &BTreeSet<Target>, now_ms: i64, delay_ms: i64) {
        let group = self.groups.entry(tg.to_string()).or_default();
        for t in targets {
            let h = group
                .entry(t.clone())
                .or_insert_with(TargetHealth::registered);
            if h.state == State::Draining {
                *h = TargetHealth::registered();
            }
        }
        group.retain(|t, h| {
            if targets.contains(t) {
                return true;
            }
            match h.drained_at_ms {
                Some(at) => at > now_ms,
                None if delay_ms > 0 => {
                    h.drain(now_ms + delay_ms);
                    true
                }
                None => false,
            }
        });
    }

    /// Forgets target groups that no longer exist.
    pub fn retain_groups(&mut self, keep: impl Fn(&str) -> bool) {
        self.groups.retain(|arn, _| keep(arn));
    }

    /// The groups the table holds.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    pub fn group(&self, tg: &str) -> impl Iterator<Item = (&Target, &TargetHealth)> {
        self.groups.get(tg).into_iter().flat_map(|g| g.iter())
    }

    pub fn get(&self, tg: &str, target: &Target) -> Option<&TargetHealth> {
        self.groups.get(tg).and_then(|g| g.get(target))
    }

    pub fn observe(&mut self, tg: &str, target: &Target, outcome: &CheckOutcome, hc: &HealthCheck) {
        if let Some(h) = self.groups.get_mut(tg).and_then(|g| g.get_mut(target)) {
            h.observe(outcome, hc);
        }
    }

    /// The targets requests may go to: the healthy ones, or, when none is, every target
    /// not draining (ELB fails open).
    pub fn routable(&self, tg: &str) -> Vec<Target> {
        let live: Vec<(&Target, &TargetHealth)> = self
            .group(tg)
            .filter(|(_, h)| h.state != State::Draining)
            .collect();
        let healthy: Vec<Target> = live
            .iter()
            .filter(|(_, h)| h.routable())
            .map(|(t, _)| (*t).clone())
            .collect();
        if healthy.is_empty() {
            live.into_iter().map(|(t, _)| t.clone()).collect()
        } else {
            healthy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc() -> HealthCheck {
        HealthCheck {
            healthy_threshold: 3,
            unhealthy_threshold: 2,
            ..HealthCheck::default()
        }
    }

    fn t(ip: &str) -> Target {
        Target {
            id: ip.into(),
            port: 80,
        }
    }

    #[test]
    fn one_pass_makes_a_new_target_healthy() {
        let mut h = TargetHealth::registered();
        assert_eq!(h.reason, Some("Elb.RegistrationInProgress"));
        h.observe(&CheckOutcome::Passed, &hc());
        assert_eq!((h.state, h.reason), (State::Healthy, None));
    }

    #[test]
    fn a_new_target_that_fails_stays_initial_until_the_unhealthy_threshold() {
        let mut h = TargetHealth::registered();
        h.observe(&CheckOutcome::Timeout, &hc());
        assert_eq!(
            (h.state, h.reason),
            (State::Initial, Some("Elb.InitialHealthChecking"))
        );
        h.observe(&CheckOutcome::CodeMismatch(404), &hc());
        assert_eq!(h.state, State::Unhealthy);
        assert_eq!(h.reason, Some("Target.ResponseCodeMismatch"));
        assert_eq!(
            h.description.as_deref(),
            Some("Health checks failed with these codes: [404]")
        );
    }

    #[test]
    fn thresholds_count_consecutive_results() {
        let mut h = TargetHealth::registered();
        h.observe(&CheckOutcome::Passed, &hc());
        h.observe(&CheckOutcome::Failed("refused".into()), &hc());
        assert_eq!(
            h.state,
            State::Healthy,
            "one failure is under the threshold"
        );
        h.observe(&CheckOutcome::Passed, &hc());
        h.observe(&CheckOutcome::Failed("refused".into()), &hc());
        assert_eq!(h.state, State::Healthy, "the streak was broken");
        h.observe(&CheckOutcome::Failed("refused".into()), &hc());
        assert_eq!(
            (h.state, h.reason),
            (State::Unhealthy, Some("Target.FailedHealthChecks"))
        );
        h.observe(&CheckOutcome::Passed, &hc());
        h.observe(&CheckOutcome::Passed, &hc());
        assert_eq!(
            h.state,
            State::Unhealthy,
            "two passes are under the healthy threshold"
        );
        h.observe(&CheckOutcome::Passed, &hc());
        assert_eq!(h.state, State::Healthy);
    }

    #[test]
    fn removed_targets_drain_for_the_delay_then_go() {
        let mut table = HealthTable::default();
        let both: BTreeSet<Target> = [t("10.0.0.1"), t("10.0.0.2")].into();
        table.sync("tg", &both, 0, 1000);
        table.observe("tg", &t("10.0.0.1"), &CheckOutcome::Passed, &hc());
        let one: BTreeSet<Target> = [t("10.0.0.2")].into();
        table.sync("tg", &one, 100, 1000);
        let h = table.get("tg", &t("10.0.0.1")).unwrap();
        assert_eq!(
            (h.state, h.reason),
            (State::Draining, Some("Target.DeregistrationInProgress"))
        );
        assert_eq!(
            table.routable("tg"),
            vec![t("10.0.0.2")],
            "draining targets get no new requests"
        );
        table.sync("tg", &one, 1099, 1000);
        assert!(table.get("tg", &t("10.0.0.1")).is_some());
        table.sync("tg", &one, 1100, 1000);
        assert!(table.get("tg", &t("10.0.0.1")).is_none());
        // With no delay, a removed target goes at once.
        table.sync("tg", &BTreeSet::new(), 1200, 0);
        assert_eq!(table.group("tg").count(), 0);
    }

    #[test]
    fn routing_prefers_healthy_targets_and_fails_open_when_none_is() {
        let mut table = HealthTable::default();
        let both: BTreeSet<Target> = [t("10.0.0.1"), t("10.0.0.2")].into();
        table.sync("tg", &both, 0, 0);
        assert_eq!(
            table.routable("tg").len(),
            2,
            "none healthy yet: all of them"
        );
        table.observe("tg", &t("10.0.0.2"), &CheckOutcome::Passed, &hc());
        assert_eq!(table.routable("tg"), vec![t("10.0.0.2")]);
        assert!(table.routable("other").is_empty());
    }
}
