//! Events about a service that no deployment step makes: what happened to one of its
//! tasks from outside (an ECS Exec session into it).

use crate::state::{ControlPlane, StateError};

impl ControlPlane {
    /// Adds `message` to the service's events (newest first, as every event).
    pub fn add_service_event(
        &self,
        cluster: &str,
        service: &str,
        message: String,
    ) -> Result<(), StateError> {
        let now = self.now_ms();
        let mut state = self.lock();
        let mut s = Self::service_ref(&state, cluster, service)?.clone();
        s.push_event(message, now);
        self.put_service(&mut state, &s)
    }
}
