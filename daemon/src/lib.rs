//! What both daemons share as systemd services (`Type=notify`): telling the
//! service manager when they serve (`READY=1`), that they are alive
//! (`WATCHDOG=1`) and that they are stopping (`STOPPING=1`), and waiting for
//! the signal that asks them to stop.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every notification is a no-op, so
//! the daemons behave the same when started by hand, by scripts or by tests.

pub mod config;

use std::time::Duration;

use sd_notify::NotifyState;

/// Tells the service manager the daemon serves; `status` is what
/// `systemctl status` shows.
pub fn notify_ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells the service manager the daemon began shutting down, so a slow
/// shutdown shows as "deactivating", not as a hang.
pub fn notify_stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        // Not fatal: the daemon still works; systemd will time it out and
        // say so, which is the better place for the error to surface.
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}

/// How often to send `WATCHDOG=1`, from the `WATCHDOG_USEC` and
/// `WATCHDOG_PID` values systemd sets (`WatchdogSec=`): half the timeout, as
/// `sd_watchdog_enabled(3)` advises, so one late tick does not trip it. `None`
/// when the watchdog is off, the value is not a positive number of
/// microseconds, or it was meant for another process (a parent that passed
/// its environment down).
pub fn watchdog_ping_interval(
    watchdog_usec: Option<&str>,
    watchdog_pid: Option<&str>,
    own_pid: u32,
) -> Option<Duration> {
    if let Some(pid) = watchdog_pid {
        if pid.trim().parse::<u32>().ok() != Some(own_pid) {
            return None;
        }
    }
    let usec: u64 = watchdog_usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec) / 2)
}

/// Starts sending `WATCHDOG=1` at half of `WATCHDOG_USEC`, when systemd set
/// it. The pings come from a task on the daemon's runtime, so a wedged
/// runtime stops them and systemd restarts the daemon.
pub fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    let every = watchdog_ping_interval(usec.as_deref(), pid.as_deref(), std::process::id())?;
    tracing::info!(interval_ms = every.as_millis(), "systemd watchdog on");
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    }))
}

/// Resolves on SIGTERM (systemd's stop) or SIGINT (Ctrl-C). The handlers
/// are installed when this is called, not when the future is first polled:
/// call it before `notify_ready`, or a stop right after READY=1 would find
/// the default action (exit by signal) still in place.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit (as Go's runtime
/// does at start): the soft default (1024 under systemd) would cap the API's and the
/// agents' connections far below what the host allows. Returns the limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "could not raise the open-files limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Logs to stderr with `RUST_LOG` as the filter (default `info`); colours
/// only on a terminal, so journald and test logs stay plain.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_one() {
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        assert_eq!(raise_open_files_limit(), hard);
    }

    #[test]
    fn pings_at_half_the_watchdog_timeout() {
        assert_eq!(
            watchdog_ping_interval(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        // An odd number of microseconds still halves without rounding up.
        assert_eq!(
            watchdog_ping_interval(Some("3"), None, 7),
            Some(Duration::from_nanos(1500))
        );
    }

    #[test]
    fn no_watchdog_when_unset_zero_or_garbage() {
        assert_eq!(watchdog_ping_interval(None, None, 7), None);
        assert_eq!(watchdog_ping_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_ping_interval(Some("-5"), None, 7), None);
        assert_eq!(watchdog_ping_interval(Some("10s"), None, 7), None);
        assert_eq!(watchdog_ping_interval(Some(""), None, 7), None);
    }

    #[test]
    fn watchdog_meant_for_another_process_is_ignored() {
        assert_eq!(watchdog_ping_interval(Some("2000000"), Some("8"), 7), None);
        assert_eq!(
            watchdog_ping_interval(Some("2000000"), Some("junk"), 7),
            None
        );
        assert_eq!(
            watchdog_ping_interval(Some("2000000"), Some("7"), 7),
            Some(Duration::from_secs(1))
        );
    }
}
