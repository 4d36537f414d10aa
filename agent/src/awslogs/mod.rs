//! The awslogs driver: a container's output, journalled on disk by the log driver
//! (`crate::log_driver`), shipped in order to the control plane's CloudWatch Logs
//! store over the agent's session, each batch acknowledged before the read position
//! moves past it.
//!
//! Nothing is lost in blocking mode: the journal is on disk, so output written while
//! the control plane is unreachable, or the agent is down, ships when they return; a
//! batch resent after a lost acknowledgement is stored once (the control plane keeps
//! each stream's journal position). In non-blocking mode at most `max-buffer-size`
//! of the newest unshipped journal ships; the oldest lines beyond it are skipped and
//! counted, and the count is written into the stream. The container never waits on
//! shipping in either mode.

pub mod events;
pub mod journal;
pub mod link;
pub mod shipper;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_ecs::awslogs;

use serde::{Deserialize, Serialize};

use crate::model::AwsLogs;

/// What the shipper needs to ship one container's journal, written beside its log file
/// before the container starts. Its presence also tells the log driver to journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipConfig {
    pub group: String,
    pub stream: String,
    pub create_group: bool,
    pub max_buffer_bytes: Option<u64>,
    pub multiline_pattern: Option<String>,
    pub task_arn: String,
    pub container: String,
}

impl ShipConfig {
    pub fn new(settings: &AwsLogs, stream: String, task_arn: &str, container: &str) -> Self {
        Self {
            group: settings.group.clone(),
            stream,
            create_group: settings.create_group,
            max_buffer_bytes: settings.max_buffer_bytes,
            multiline_pattern: settings.multiline_pattern.clone(),
            task_arn: task_arn.to_owned(),
            container: container.to_owned(),
        }
    }

    /// Writes the settings for the container whose log file is `log_path`.
    pub fn write(&self, log_path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(config_path(log_path), json)
    }

    pub fn read(path: &Path) -> std::io::Result<Self> {
        serde_json::from_slice(&std::fs::read(path)?).map_err(std::io::Error::other)
    }
}

pub(crate) const CONFIG_SUFFIX: &str = ".awslogs.json";

/// `<dir>/<container>.awslogs.json` beside `<dir>/<container>.log`.
pub fn config_path(log_path: &Path) -> PathBuf {
    sibling(log_path, CONFIG_SUFFIX)
}

/// `<dir>/<container>.journal`.
pub fn journal_path(log_path: &Path) -> PathBuf {
    sibling(log_path, ".journal")
}

/// `<dir>/<container>.journal.pos`: how far the journal has shipped.
pub fn position_path(log_path: &Path) -> PathBuf {
    sibling(log_path, ".journal.pos")
}

/// The log file a settings file belongs to.
pub fn log_path_of(config: &Path) -> Option<PathBuf> {
    let name = config.file_name()?.to_str()?.strip_suffix(CONFIG_SUFFIX)?;
    Some(config.with_file_name(format!("{name}.log")))
}

fn sibling(log_path: &Path, suffix: &str) -> PathBuf {
    let stem = log_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    log_path.with_file_name(format!("{stem}{suffix}"))
}

/// The awslogs settings a container's `logConfiguration.options` give, checked.
pub fn settings<S: std::hash::BuildHasher>(
    options: &HashMap<String, String, S>,
) -> Result<AwsLogs, String> {
    let option = |k: &str| options.get(k).filter(|v| !v.is_empty()).cloned();
    let group = option(awslogs::GROUP).ok_or("awslogs-group is not set")?;
    let max_buffer_bytes = match option(awslogs::MODE).as_deref() {
        None | Some("blocking") => None,
        Some("non-blocking") => Some(match option(awslogs::MAX_BUFFER_SIZE) {
            None => awslogs::DEFAULT_MAX_BUFFER_BYTES,
            Some(s) => awslogs::parse_size(&s)
                .ok_or_else(|| format!("max-buffer-size '{s}' is not a size"))?,
        }),
        Some(m) => return Err(format!("mode '{m}' is not blocking or non-blocking")),
    };
    let multiline_pattern = match (
        option(awslogs::MULTILINE_PATTERN),
        option(awslogs::DATETIME_FORMAT),
    ) {
        (Some(p), _) => Some(p),
        (None, Some(f)) => Some(awslogs::datetime_pattern(&f)?),
        (None, None) => None,
    };
    if let Some(p) = &multiline_pattern {
        regex::Regex::new(p).map_err(|e| format!("multiline pattern: {e}"))?;
    }
    Ok(AwsLogs {
        group,
        region: option(awslogs::REGION).unwrap_or_default(),
        stream_prefix: option(awslogs::STREAM_PREFIX),
        create_group: option(awslogs::CREATE_GROUP).is_some_and(|v| v.eq_ignore_ascii_case("true")),
        max_buffer_bytes,
        multiline_pattern,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_sit_beside_the_log() {
        let log = Path::new("/var/lib/berth/agent/tasks/abc/web.log");
        let config = config_path(log);
        assert_eq!(
            config,
            Path::new("/var/lib/berth/agent/tasks/abc/web.awslogs.json")
        );
        assert_eq!(
            journal_path(log),
            Path::new("/var/lib/berth/agent/tasks/abc/web.journal")
        );
        assert_eq!(
            position_path(log),
            Path::new("/var/lib/berth/agent/tasks/abc/web.journal.pos")
        );
        assert_eq!(log_path_of(&config).unwrap(), log);
        assert_eq!(log_path_of(Path::new("/x/web.log")), None);
    }
}
