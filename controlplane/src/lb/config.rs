//! The load balancers' configuration: every change is validated, written through the
//! store, then published as a new immutable snapshot the data plane reads without locks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::watch;

use super::model::{Action, Listener, LoadBalancer, Rule, TargetGroup};
use crate::store::{Store, StoreError, Table, Write};

/// Everything configured, as one value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub load_balancers: BTreeMap<String, LoadBalancer>,
    pub target_groups: BTreeMap<String, TargetGroup>,
    pub listeners: BTreeMap<String, Listener>,
    pub rules: BTreeMap<String, Rule>,
}

impl Config {
    /// The listeners of `lb_arn`.
    pub fn listeners_of<'a>(&'a self, lb_arn: &'a str) -> impl Iterator<Item = &'a Listener> {
        self.listeners
            .values()
            .filter(move |l| l.load_balancer_arn == lb_arn)
    }

    /// The rules of `listener_arn`, by priority.
    pub fn rules_of(&self, listener_arn: &str) -> Vec<&Rule> {
        let mut rules: Vec<&Rule> = self
            .rules
            .values()
            .filter(|r| r.listener_arn == listener_arn)
            .collect();
        rules.sort_by_key(|r| r.priority);
        rules
    }

    /// Every action of `listener`: its rules' and its default ones.
    fn actions_of<'a>(&'a self, listener: &'a Listener) -> impl Iterator<Item = &'a Action> {
        self.rules_of(&listener.arn)
            .into_iter()
            .flat_map(|r| r.actions.iter())
            .chain(listener.default_actions.iter())
    }

    /// The tags of the load balancer, target group, listener or rule `arn` names.
    pub fn tags_of(&self, arn: &str) -> Option<&[(String, String)]> {
        let tags = if let Some(x) = self.load_balancers.get(arn) {
            &x.tags
        } else if let Some(x) = self.target_groups.get(arn) {
            &x.tags
        } else if let Some(x) = self.listeners.get(arn) {
            &x.tags
        } else {
            &self.rules.get(arn)?.tags
        };
        Some(tags)
    }

    /// The load balancers that send traffic to `tg_arn` (through a listener or a rule).
    pub fn load_balancers_of(&self, tg_arn: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .listeners
            .values()
            .filter(|l| {
                self.actions_of(l)
                    .any(|a| a.target_groups().any(|t| t == tg_arn))
            })
            .map(|l| l.load_balancer_arn.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// A failure with ELB's error code (`LoadBalancerNotFound`, `ValidationError`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct LbError {
    pub code: &'static str,
    pub message: String,
}

impl LbError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationError", message)
    }
}

impl From<StoreError> for LbError {
    fn from(e: StoreError) -> Self {
        Self::new("InternalFailure", e.to_string())
    }
}

/// One record kind's key prefix in the store.
#[derive(Clone, Copy)]
enum Kind {
    LoadBalancer,
    TargetGroup,
    Listener,
    Rule,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Self::LoadBalancer => "lb/",
            Self::TargetGroup => "tg/",
            Self::Listener => "listener/",
            Self::Rule => "rule/",
        }
    }
}

/// A batch of changes to the configuration, applied atomically by `LoadBalancing::change`.
#[derive(Default)]
pub struct Changes {
    writes: Vec<Write>,
}

impl Changes {
    fn put<T: Serialize>(&mut self, kind: Kind, arn: &str, value: &T) {
        let bytes = serde_json::to_vec(value).expect("load-balancing records serialize");
        self.writes.push(Write::put(
            Table::LoadBalancing,
            format!("{}{arn}", kind.prefix()),
            bytes,
        ));
    }

    fn delete(&mut self, kind: Kind, arn: &str) {
        self.writes.push(Write::delete(
            Table::LoadBalancing,
            format!("{}{arn}", kind.prefix()),
        ));
    }

    pub fn put_load_balancer(&mut self, c: &mut Config, lb: LoadBalancer) {
        self.put(Kind::LoadBalancer, &lb.arn, &lb);
        c.load_balancers.insert(lb.arn.clone(), lb);
    }

    pub fn put_target_group(&mut self, c: &mut Config, tg: TargetGroup) {
        self.put(Kind::TargetGroup, &tg.arn, &tg);
        c.target_groups.insert(tg.arn.clone(), tg);
    }

    pub fn put_listener(&mut self, c: &mut Config, l: Listener) {
        self.put(Kind::Listener, &l.arn, &l);
        c.listeners.insert(l.arn.clone(), l);
    }

    pub fn put_rule(&mut self, c: &mut Config, r: Rule) {
        self.put(Kind::Rule, &r.arn, &r);
        c.rules.insert(r.arn.clone(), r);
    }

    pub fn delete_load_balancer(&mut self, c: &mut Config, arn: &str) {
        let listeners: Vec<String> = c.listeners_of(arn).map(|l| l.arn.clone()).collect();
        for l in listeners {
            self.delete_listener(c, &l);
        }
        self.delete(Kind::LoadBalancer, arn);
        c.load_balancers.remove(arn);
    }

    pub fn delete_listener(&mut self, c: &mut Config, arn: &str) {
        let rules: Vec<String> = c.rules_of(arn).iter().map(|r| r.arn.clone()).collect();
        for r in rules {
            self.delete_rule(c, &r);
        }
        self.delete(Kind::Listener, arn);
        c.listeners.remove(arn);
    }

    pub fn delete_rule(&mut self, c: &mut Config, arn: &str) {
        self.delete(Kind::Rule, arn);
        c.rules.remove(arn);
    }

    pub fn delete_target_group(&mut self, c: &mut Config, arn: &str) {
        self.delete(Kind::TargetGroup, arn);
        c.target_groups.remove(arn);
    }
}

/// The configuration, durable and published.
pub struct LoadBalancing {
    store: Arc<dyn Store>,
    current: Mutex<Arc<Config>>,
    published: watch::Sender<Arc<Config>>,
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, LbError> {
    serde_json::from_slice(bytes).map_err(|e| {
        LbError::new(
            "InternalFailure",
            format!("corrupt load-balancing record {key}: {e}"),
        )
    })
}

impl LoadBalancing {
    pub fn open(store: Arc<dyn Store>) -> Result<Self, LbError> {
        let mut c = Config::default();
        for (key, bytes) in store.load(Table::LoadBalancing)? {
            if let Some(arn) = key.strip_prefix(Kind::LoadBalancer.prefix()) {
                c.load_balancers.insert(arn.into(), decode(&key, &bytes)?);
            } else if let Some(arn) = key.strip_prefix(Kind::TargetGroup.prefix()) {
                c.target_groups.insert(arn.into(), decode(&key, &bytes)?);
            } else if let Some(arn) = key.strip_prefix(Kind::Listener.prefix()) {
                c.listeners.insert(arn.into(), decode(&key, &bytes)?);
            } else if let Some(arn) = key.strip_prefix(Kind::Rule.prefix()) {
                c.rules.insert(arn.into(), decode(&key, &bytes)?);
            }
        }
        let c = Arc::new(c);
        Ok(Self {
            store,
            current: Mutex::new(c.clone()),
            published: watch::Sender::new(c),
        })
    }

    /// The configuration now.
    pub fn snapshot(&self) -> Arc<Config> {
        self.lock().clone()
    }

    /// Follows every change (the data plane's listeners and health checks).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.published.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<Config>> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on a copy of the configuration; what it changes is stored in one
    /// transaction and then published. Nothing is kept if `f` or the store fails.
    pub fn change<T>(
        &self,
        f: impl FnOnce(&mut Config, &mut Changes) -> Result<T, LbError>,
    ) -> Result<T, LbError> {
        let mut current = self.lock();
        let mut next = Config::clone(&current);
        let mut changes = Changes::default();
        let out = f(&mut next, &mut changes)?;
        if !changes.writes.is_empty() {
            self.store.apply(&changes.writes)?;
            let next = Arc::new(next);
            *current = next.clone();
            self.published.send_replace(next);
        }
        Ok(out)
    }
}
