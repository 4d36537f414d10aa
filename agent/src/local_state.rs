//! The agent's own durable record (one redb file): its container-instance
//! ARN and every task it holds, written before any host resource of the task
//! is created, so a restarted agent knows what to clean or adopt.

use std::net::Ipv4Addr;
use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::model::{TaskReport, TaskSpec};

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");

#[derive(Debug, thiserror::Error)]
#[error("agent state {path}: {op}: {message}")]
pub struct LocalStateError {
    pub path: String,
    pub op: &'static str,
    pub message: String,
}

/// What the agent remembers of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub spec: TaskSpec,
    pub ipv4: Option<Ipv4Addr>,
    pub last_report: TaskReport,
    /// Addresses of a bridge-mode task's container endpoints.
    #[serde(default)]
    pub endpoints: Vec<(String, Ipv4Addr)>,
}

pub struct LocalState {
    db: redb::Database,
    path: String,
}

impl LocalState {
    pub fn open(path: &Path) -> Result<Self, LocalStateError> {
        let p = path.display().to_string();
        let e = |op: &'static str, m: &dyn std::fmt::Display| LocalStateError {
            path: p.clone(),
            op,
            message: m.to_string(),
        };
        let db = redb::Database::create(path).map_err(|x| e("open", &x))?;
        // Task specs hold resolved secrets: root only.
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|x| e("chmod", &x))?;
        let txn = db.begin_write().map_err(|x| e("begin", &x))?;
        txn.open_table(META).map_err(|x| e("create", &x))?;
        txn.open_table(TASKS).map_err(|x| e("create", &x))?;
        txn.commit().map_err(|x| e("commit", &x))?;
        Ok(Self { db, path: p })
    }

    fn err(&self, op: &'static str, m: &dyn std::fmt::Display) -> LocalStateError {
        LocalStateError {
            path: self.path.clone(),
            op,
            message: m.to_string(),
        }
    }

    pub fn container_instance_arn(&self) -> Result<Option<String>, LocalStateError> {
        let txn = self.db.begin_read().map_err(|e| self.err("begin", &e))?;
        let t = txn.open_table(META).map_err(|e| self.err("open", &e))?;
        Ok(t.get("container_instance_arn")
            .map_err(|e| self.err("get", &e))?
            .map(|v| v.value().to_string()))
    }

    pub fn set_container_instance_arn(&self, arn: &str) -> Result<(), LocalStateError> {
        let txn = self.db.begin_write().map_err(|e| self.err("begin", &e))?;
        {
            let mut t = txn.open_table(META).map_err(|e| self.err("open", &e))?;
            t.insert("container_instance_arn", arn)
                .map_err(|e| self.err("insert", &e))?;
        }
        txn.commit().map_err(|e| self.err("commit", &e))
    }

    pub fn put_task(&self, record: &TaskRecord) -> Result<(), LocalStateError> {
        let bytes = serde_json::to_vec(record).expect("serializable");
        let txn = self.db.begin_write().map_err(|e| self.err("begin", &e))?;
        {
            let mut t = txn.open_table(TASKS).map_err(|e| self.err("open", &e))?;
            t.insert(record.spec.id.as_str(), bytes.as_slice())
                .map_err(|e| self.err("insert", &e))?;
        }
        txn.commit().map_err(|e| self.err("commit", &e))
    }

    /// Replaces a recorded task's last report; a task no longer recorded
    /// (cleaned up) stays unrecorded.
    pub fn update_report(&self, task_id: &str, report: &TaskReport) -> Result<(), LocalStateError> {
        let txn = self.db.begin_write().map_err(|e| self.err("begin", &e))?;
        {
            let mut t = txn.open_table(TASKS).map_err(|e| self.err("open", &e))?;
            let current = t
                .get(task_id)
                .map_err(|e| self.err("get", &e))?
                .map(|v| v.value().to_vec());
            if let Some(bytes) = current {
                let mut record: TaskRecord =
                    serde_json::from_slice(&bytes).map_err(|e| self.err("decode", &e))?;
                record.last_report = report.clone();
                let bytes = serde_json::to_vec(&record).expect("serializable");
                t.insert(task_id, bytes.as_slice())
                    .map_err(|e| self.err("insert", &e))?;
            }
        }
        txn.commit().map_err(|e| self.err("commit", &e))
    }

    pub fn remove_task(&self, task_id: &str) -> Result<(), LocalStateError> {
        let txn = self.db.begin_write().map_err(|e| self.err("begin", &e))?;
        {
            let mut t = txn.open_table(TASKS).map_err(|e| self.err("open", &e))?;
            t.remove(task_id).map_err(|e| self.err("remove", &e))?;
        }
        txn.commit().map_err(|e| self.err("commit", &e))
    }

    pub fn tasks(&self) -> Result<Vec<TaskRecord>, LocalStateError> {
        let txn = self.db.begin_read().map_err(|e| self.err("begin", &e))?;
        let t = txn.open_table(TASKS).map_err(|e| self.err("open", &e))?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(|e| self.err("iter", &e))? {
            let (k, v) = entry.map_err(|e| self.err("read", &e))?;
            match serde_json::from_slice(v.value()) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::error!(task_id = k.value(), error = %e, "unreadable task record skipped");
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        ContainerCondition, ContainerStatus, DesiredStatus, HealthStatus, NetworkMode, Protocol,
        StopCode, TaskStatus,
    };

    /// A record as the agent wrote it before statuses were enums: enums by
    /// their Rust names ("Running", "Bridge", "Success", "Tcp"), statuses and
    /// stop codes as strings.
    const STRING_STATUS_RECORD: &str = include_str!("../testdata/task-record-string-statuses.json");

    #[test]
    fn a_record_written_before_typed_statuses_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalState::open(&dir.path().join("agent.redb")).unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        {
            let txn = s.db.begin_write().unwrap();
            txn.open_table(TASKS)
                .unwrap()
                .insert(id, STRING_STATUS_RECORD.as_bytes())
                .unwrap();
            txn.commit().unwrap();
        }
        let records = s.tasks().unwrap();
        assert_eq!(records.len(), 1, "the old record must not be skipped");
        let r = &records[0];
        assert_eq!(r.spec.id, id);
        assert_eq!(r.spec.desired_status, DesiredStatus::Running);
        assert_eq!(r.spec.network_mode, NetworkMode::Bridge);
        let web = &r.spec.containers[1];
        assert_eq!(web.depends_on[0].condition, ContainerCondition::Success);
        assert_eq!(web.port_mappings[0].protocol, Protocol::Tcp);
        let report = &r.last_report;
        assert_eq!(report.last_status, TaskStatus::Running);
        assert_eq!(report.stop_code, Some(StopCode::EssentialContainerExited));
        assert_eq!(report.health_status, Some(HealthStatus::Unhealthy));
        let [init, web] = &report.containers[..] else {
            panic!("two containers: {:?}", report.containers);
        };
        assert_eq!(
            (init.last_status, init.exit_code),
            (ContainerStatus::Stopped, Some(0))
        );
        assert_eq!(web.last_status, ContainerStatus::Running);
        assert_eq!(web.health_status, Some(HealthStatus::Healthy));
        assert_eq!(web.network_bindings[0].protocol, Protocol::Udp);
        assert_eq!(r.endpoints.len(), 2);

        // Written back (the next report), it takes the ECS words, and loads again.
        s.put_task(r).unwrap();
        assert_eq!(&s.tasks().unwrap()[0], r);
        let json = serde_json::to_string(r).unwrap();
        for word in [
            r#""desired_status":"RUNNING""#,
            r#""network_mode":"bridge""#,
            r#""condition":"SUCCESS""#,
            r#""protocol":"tcp""#,
            r#""stop_code":"EssentialContainerExited""#,
        ] {
            assert!(json.contains(word), "{word} in {json}");
        }
    }

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.redb");
        let spec = TaskSpec {
            arn: "arn".into(),
            id: "t1".into(),
            family: "f".into(),
            revision: 1,
            cluster_arn: "c".into(),
            desired_status: DesiredStatus::Running,
            network_mode: NetworkMode::Awsvpc,
            cpu: None,
            memory_mib: None,
            containers: vec![],
            volumes: vec![],
            secrets_error: None,
        };
        {
            let s = LocalState::open(&path).unwrap();
            s.set_container_instance_arn("ci").unwrap();
            s.put_task(&TaskRecord {
                spec: spec.clone(),
                ipv4: Some(Ipv4Addr::new(10, 0, 0, 2)),
                last_report: TaskReport::default(),
                endpoints: vec![],
            })
            .unwrap();
        }
        let s = LocalState::open(&path).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "the state file holds secrets");
        assert_eq!(s.container_instance_arn().unwrap().as_deref(), Some("ci"));
        assert_eq!(s.tasks().unwrap()[0].ipv4, Some(Ipv4Addr::new(10, 0, 0, 2)));
        let report = TaskReport {
            last_status: TaskStatus::Running,
            ..TaskReport::default()
        };
        s.update_report("t1", &report).unwrap();
        assert_eq!(
            s.tasks().unwrap()[0].last_report.last_status,
            TaskStatus::Running
        );
        s.remove_task("t1").unwrap();
        s.update_report("t1", &report).unwrap();
        assert!(
            s.tasks().unwrap().is_empty(),
            "an update must not bring a removed task back"
        );
    }
}
