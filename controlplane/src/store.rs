//! Durable key-value persistence for control-plane state (redb by default).
//!
//! The control plane keeps its working set in memory and writes every change
//! through this trait before acknowledging it, so a kill -9 loses nothing that
//! a client was told succeeded.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

/// The kinds of records the control plane stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Table {
    Meta,
    Clusters,
    TaskDefinitions,
    Tasks,
    ContainerInstances,
    Services,
    CapacityProviders,
    Secrets,
    ClientTokens,
    AccountSettings,
    Parameters,
    LoadBalancing,
    Certificates,
}

impl Table {
    pub const ALL: [Table; 13] = [
        Table::Meta,
        Table::Clusters,
        Table::TaskDefinitions,
        Table::Tasks,
        Table::ContainerInstances,
        Table::Services,
        Table::CapacityProviders,
        Table::Secrets,
        Table::ClientTokens,
        Table::AccountSettings,
        Table::Parameters,
        Table::LoadBalancing,
        Table::Certificates,
    ];

    fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Clusters => "clusters",
            Table::TaskDefinitions => "task_definitions",
            Table::Tasks => "tasks",
            Table::ContainerInstances => "container_instances",
            Table::Services => "services",
            Table::CapacityProviders => "capacity_providers",
            Table::Secrets => "secrets",
            Table::ClientTokens => "client_tokens",
            Table::AccountSettings => "account_settings",
            Table::Parameters => "ssm_parameters",
            Table::LoadBalancing => "load_balancing",
            Table::Certificates => "acm_certificates",
        }
    }

    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(self.name())
    }
}

/// One change in an atomic batch: `Some` puts the value, `None` deletes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub table: Table,
    pub key: String,
    pub value: Option<Vec<u8>>,
}

impl Write {
    pub fn put(table: Table, key: impl Into<String>, value: Vec<u8>) -> Self {
        Self {
            table,
            key: key.into(),
            value: Some(value),
        }
    }

    pub fn delete(table: Table, key: impl Into<String>) -> Self {
        Self {
            table,
            key: key.into(),
            value: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not open the store at {path}: {source}")]
    Open {
        path: String,
        source: Box<redb::DatabaseError>,
    },
    #[error("store {op} failed on table {table}: {message}")]
    Io {
        op: &'static str,
        table: &'static str,
        message: String,
    },
}

/// Persistence for control-plane records. Every `apply` is atomic and durable
/// when it returns.
pub trait Store: Send + Sync + 'static {
    fn apply(&self, writes: &[Write]) -> Result<(), StoreError>;
    fn load(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

/// The embedded store: one redb file.
pub struct RedbStore {
    db: redb::Database,
}

impl RedbStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = redb::Database::create(path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            source: Box::new(e),
        })?;
        // It holds the cluster CA's key, the API secret key and secrets: root only.
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| io("chmod", Table::Meta, &e))?;
        // Create every table up front so reads never see "table does not exist".
        let txn = db.begin_write().map_err(|e| io("begin", Table::Meta, &e))?;
        for table in Table::ALL {
            txn.open_table(table.definition())
                .map_err(|e| io("create", table, &e))?;
        }
        txn.commit().map_err(|e| io("commit", Table::Meta, &e))?;
        Ok(Self { db })
    }
}

fn io(op: &'static str, table: Table, e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Io {
        op,
        table: table.name(),
        message: e.to_string(),
    }
}

impl Store for RedbStore {
    fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        let first = writes.first().map_or(Table::Meta, |w| w.table);
        let txn = self.db.begin_write().map_err(|e| io("begin", first, &e))?;
        for w in writes {
            let mut table = txn
                .open_table(w.table.definition())
                .map_err(|e| io("open", w.table, &e))?;
            match &w.value {
                Some(v) => {
                    table
                        .insert(w.key.as_str(), v.as_slice())
                        .map_err(|e| io("insert", w.table, &e))?;
                }
                None => {
                    table
                        .remove(w.key.as_str())
                        .map_err(|e| io("remove", w.table, &e))?;
                }
            }
        }
        txn.commit().map_err(|e| io("commit", first, &e))
    }

    fn load(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| io("begin", table, &e))?;
        let t = txn
            .open_table(table.definition())
            .map_err(|e| io("open", table, &e))?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(|e| io("iter", table, &e))? {
            let (k, v) = entry.map_err(|e| io("read", table, &e))?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }
}

/// An in-memory store for unit tests; records every batch it was given.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<BTreeMap<(Table, String), Vec<u8>>>,
    pub batches: Mutex<Vec<Vec<Write>>>,
}

impl Store for MemoryStore {
    fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        let mut data = self.data.lock().unwrap();
        for w in writes {
            match &w.value {
                Some(v) => data.insert((w.table, w.key.clone()), v.clone()),
                None => data.remove(&(w.table, w.key.clone())),
            };
        }
        self.batches.lock().unwrap().push(writes.to_vec());
        Ok(())
    }

    fn load(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let data = self.data.lock().unwrap();
        Ok(data
            .iter()
            .filter(|((t, _), _)| *t == table)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redb_store_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            store
                .apply(&[
                    Write::put(Table::Clusters, "a", b"1".to_vec()),
                    Write::put(Table::Clusters, "b", b"2".to_vec()),
                ])
                .unwrap();
            store.apply(&[Write::delete(Table::Clusters, "a")]).unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "the store holds keys and secrets");
        assert_eq!(
            store.load(Table::Clusters).unwrap(),
            vec![("b".to_string(), b"2".to_vec())]
        );
        assert!(store.load(Table::Tasks).unwrap().is_empty());
    }
}
