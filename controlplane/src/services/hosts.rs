//! Which container instances a service must move its tasks off: an agent
//! out of contact past a grace period (lost), or an instance DRAINING.
//! Pure: the caller passes what it knows of each instance and the time.

use std::collections::HashMap;

use crate::model::InstanceStatus;

/// Default grace: an instance whose agent has no session and has not been
/// heard from (any message, heartbeats every 2 s) for this long is lost.
/// It equals the heartbeat window (`agents::HEARTBEAT_INTERVAL` x
/// `MISSED_HEARTBEATS`), so a silent host is lost as soon as its session is
/// closed (6 s of silence), and an agent whose connection dropped (a
/// crash, a restart) gets 4-6 s to come back before its tasks are replaced.
///
/// The trade-off: shorter means faster healing but more false alarms, and
/// each false alarm costs a task replacement (the old copy is stopped when
/// the agent returns, the new one may sit on a busier host). Longer keeps
/// through a slow agent restart, but a service runs short that much longer
/// after a real host loss.
pub const DEFAULT_LOST_AFTER_MS: i64 = 6_000;

/// After a control-plane start nothing has been heard from anyone yet, and
/// agents reconnect with a backoff capped at 10 s: an instance not heard
/// from since the start is lost only after this long.
pub const AFTER_START_GRACE_MS: i64 = 15_000;

/// What the reconciler does with the service tasks on an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceCondition {
    /// Connected and ACTIVE: its tasks count as they are.
    Serving,
    /// The agent is out of contact, within the grace: its tasks are
    /// assumed to still run (they usually do) and count as they are.
    Disconnected,
    /// DRAINING: its tasks are replaced within minimumHealthyPercent and
    /// maximumPercent, as a deployment replaces old tasks.
    Draining,
    /// Out of contact past the grace: its tasks are marked STOPPED (no agent
    /// will report them) and started elsewhere. If the agent comes back,
    /// the desired set it receives no longer holds them, so it stops them.
    Lost,
}

/// When an instance counts as lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostPolicy {
    pub lost_after_ms: i64,
    /// When this control plane started (its first sight of every instance).
    pub started_at_ms: i64,
}

/// The instance's condition: `status` is its ECS status, `connected`
/// whether its agent has a session, `last_seen_ms` the last message from
/// its agent (None: nothing since the control plane started).
pub fn instance_condition(
    status: InstanceStatus,
    connected: bool,
    last_seen_ms: Option<i64>,
    policy: LostPolicy,
    now_ms: i64,
) -> InstanceCondition {
    if !connected {
        let (since, grace) = match last_seen_ms {
            Some(seen) => (seen, policy.lost_after_ms),
            None => (
                policy.started_at_ms,
                policy.lost_after_ms.max(AFTER_START_GRACE_MS),
            ),
        };
        if now_ms.saturating_sub(since) >= grace {
            return InstanceCondition::Lost;
        }
    }
    match (status, connected) {
        (InstanceStatus::Draining, _) => InstanceCondition::Draining,
        (_, true) => InstanceCondition::Serving,
        (_, false) => InstanceCondition::Disconnected,
    }
}

/// What the reconciler knows of the fleet.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// Whether any instance could take one of the service's tasks now.
    pub can_place: bool,
    /// Instances by ARN; one not listed is `Serving`.
    pub instances: HashMap<String, InstanceCondition>,
}

impl Fleet {
    /// A fleet where tasks can be placed and every instance serves.
    pub fn serving() -> Self {
        Self {
            can_place: true,
            instances: HashMap::new(),
        }
    }

    pub fn condition(&self, instance_arn: Option<&str>) -> InstanceCondition {
        instance_arn
            .and_then(|a| self.instances.get(a))
            .copied()
            .unwrap_or(InstanceCondition::Serving)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 1_000_000;
    const POLICY: LostPolicy = LostPolicy {
        lost_after_ms: DEFAULT_LOST_AFTER_MS,
        started_at_ms: START,
    };

    fn at(status: &str, connected: bool, seen: Option<i64>, now: i64) -> InstanceCondition {
        instance_condition(status.into(), connected, seen, POLICY, now)
    }

    #[test]
    fn connected_instances_serve_or_drain() {
        assert_eq!(
            at("ACTIVE", true, Some(START), START + 60_000),
            InstanceCondition::Serving,
            "a session open: never lost, however old the last message"
        );
        assert_eq!(
            at("DRAINING", true, Some(START), START),
            InstanceCondition::Draining
        );
    }

    #[test]
    fn a_disconnected_agent_is_lost_after_the_grace() {
        let seen = START + 10_000;
        assert_eq!(
            at(
                "ACTIVE",
                false,
                Some(seen),
                seen + DEFAULT_LOST_AFTER_MS - 1
            ),
            InstanceCondition::Disconnected
        );
        assert_eq!(
            at("ACTIVE", false, Some(seen), seen + DEFAULT_LOST_AFTER_MS),
            InstanceCondition::Lost
        );
        assert_eq!(
            at("DRAINING", false, Some(seen), seen + 1),
            InstanceCondition::Draining
        );
        // Lost wins over DRAINING: no agent would stop those tasks.
        assert_eq!(
            at("DRAINING", false, Some(seen), seen + DEFAULT_LOST_AFTER_MS),
            InstanceCondition::Lost
        );
    }

    #[test]
    fn after_a_control_plane_start_agents_get_longer_to_reconnect() {
        assert_eq!(
            at("ACTIVE", false, None, START + DEFAULT_LOST_AFTER_MS),
            InstanceCondition::Disconnected
        );
        assert_eq!(
            at("ACTIVE", false, None, START + AFTER_START_GRACE_MS - 1),
            InstanceCondition::Disconnected
        );
        assert_eq!(
            at("ACTIVE", false, None, START + AFTER_START_GRACE_MS),
            InstanceCondition::Lost
        );
        // A longer configured grace is kept after a start too.
        let patient = LostPolicy {
            lost_after_ms: 60_000,
            started_at_ms: START,
        };
        assert_eq!(
            instance_condition("ACTIVE".into(), false, None, patient, START + 30_000),
            InstanceCondition::Disconnected
        );
    }

    #[test]
    fn unknown_instances_serve() {
        let f = Fleet::serving();
        assert_eq!(f.condition(Some("arn:x")), InstanceCondition::Serving);
        assert_eq!(f.condition(None), InstanceCondition::Serving);
    }
}
