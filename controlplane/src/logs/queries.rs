//! Logs Insights queries as `StartQuery` / `GetQueryResults` / `StopQuery` /
//! `DescribeQueries` see them: each runs on a thread of its own over the store's
//! events (the API call returns at once, as Insights' does), and its record and
//! results are kept, newest first, up to `KEPT_QUERIES`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::insights::{InsightsEvent, Query, QueryOutcome, MAX_ROWS};
use super::model::EventId;
use super::store::LogStore;
use super::{Logs, LogsError};

/// Queries whose records (and results) are kept; the oldest finished one goes first.
const KEPT_QUERIES: usize = 200;
/// Events read from the store at a time.
const PAGE: usize = 10_000;

pub use berth_ecs::logs::QueryStatus;

/// One query as `DescribeQueries` and `GetQueryResults` show it.
#[derive(Debug, Clone)]
pub struct QueryRecord {
    pub id: String,
    pub query_string: String,
    pub groups: Vec<String>,
    pub status: QueryStatus,
    pub create_time_ms: i64,
    /// Set once the query is Complete.
    pub outcome: Option<QueryOutcome>,
    cancel: Arc<AtomicBool>,
}

/// What `StartQuery` asks for.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    pub groups: Vec<String>,
    /// Event times, inclusive, in ms.
    pub start_ms: i64,
    pub end_ms: i64,
    pub query_string: String,
    pub limit: Option<usize>,
}

/// The queries' records, and a signal for each change of one.
#[derive(Default)]
pub struct QueryBook {
    records: Mutex<VecDeque<QueryRecord>>,
    changed: Condvar,
}

impl QueryBook {
    fn lock(&self) -> MutexGuard<'_, VecDeque<QueryRecord>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut QueryRecord)) {
        if let Some(r) = self.lock().iter_mut().find(|r| r.id == id) {
            f(r);
        }
        self.changed.notify_all();
    }

    /// Waits until query `id` is no longer `Running` (or is gone), at most `timeout`;
    /// false if it still runs.
    pub fn wait_finished(&self, id: &str, timeout: std::time::Duration) -> bool {
        let running = |book: &mut VecDeque<QueryRecord>| {
            book.iter()
                .any(|r| r.id == id && r.status == QueryStatus::Running)
        };
        let (book, _) = self
            .changed
            .wait_timeout_while(self.lock(), timeout, running)
            .unwrap_or_else(PoisonError::into_inner);
        !book
            .iter()
            .any(|r| r.id == id && r.status == QueryStatus::Running)
    }
}

impl Logs {
    /// `StartQuery`: checks the query and its groups, then runs it in the background;
    /// the query's id.
    pub fn start_query(&self, request: QueryRequest) -> Result<String, LogsError> {
        let query = Query::parse(&request.query_string)?;
        if request.groups.is_empty() {
            return Err(LogsError::InvalidParameter(
                "StartQuery needs logGroupName, logGroupNames or logGroupIdentifiers.".into(),
            ));
        }
        if request.start_ms > request.end_ms {
            return Err(LogsError::InvalidParameter(
                "endTime must not be before startTime.".into(),
            ));
        }
        for g in &request.groups {
            self.resolve_group(g)?;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let cancel = Arc::new(AtomicBool::new(false));
        {
            let mut book = self.queries.lock();
            book.push_front(QueryRecord {
                id: id.clone(),
                query_string: request.query_string.clone(),
                groups: request.groups.clone(),
                status: QueryStatus::Running,
                create_time_ms: self.now_ms(),
                outcome: None,
                cancel: cancel.clone(),
            });
            while book.len() > KEPT_QUERIES {
                match book.iter().rposition(|r| r.status != QueryStatus::Running) {
                    Some(i) => book.remove(i),
                    None => break,
                };
            }
        }
        let (store, book, account) = (
            self.store.clone(),
            self.queries.clone(),
            self.account.clone(),
        );
        let query_id = id.clone();
        std::thread::spawn(move || {
            let status = match run(&store, &query, &request, &account, &cancel) {
                Ok(outcome) => {
                    book.update(&query_id, |r| r.outcome = Some(outcome));
                    QueryStatus::Complete
                }
                Err(Stopped::Cancelled) => QueryStatus::Cancelled,
                Err(Stopped::Failed(e)) => {
                    tracing::error!(query = %query_id, error = %e, "a Logs Insights query failed");
                    QueryStatus::Failed
                }
            };
            book.update(&query_id, |r| {
                if r.status == QueryStatus::Running {
                    r.status = status;
                }
            });
        });
        Ok(id)
    }

    /// A query's record, results included once it is Complete.
    pub fn query(&self, id: &str) -> Result<QueryRecord, LogsError> {
        self.queries
            .lock()
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| LogsError::QueryNotFound(id.to_owned()))
    }

    /// `StopQuery`: true if the query was still running.
    pub fn stop_query(&self, id: &str) -> Result<bool, LogsError> {
        let mut book = self.queries.lock();
        let r = book
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| LogsError::QueryNotFound(id.to_owned()))?;
        if r.status != QueryStatus::Running {
            return Ok(false);
        }
        r.cancel.store(true, Ordering::Relaxed);
        r.status = QueryStatus::Cancelled;
        drop(book);
        self.queries.changed.notify_all();
        Ok(true)
    }

    /// Waits until query `id` has finished, at most `timeout`; false if it still runs.
    pub fn wait_query(&self, id: &str, timeout: std::time::Duration) -> bool {
        self.queries.wait_finished(id, timeout)
    }

    /// `DescribeQueries`: newest first, of one group and one status when given.
    pub fn queries(&self, group: Option<&str>, status: Option<QueryStatus>) -> Vec<QueryRecord> {
        self.queries
            .lock()
            .iter()
            .filter(|r| group.is_none_or(|g| r.groups.iter().any(|x| x == g)))
            .filter(|r| status.is_none_or(|s| r.status == s))
            .map(|r| QueryRecord {
                outcome: None,
                ..r.clone()
            })
            .collect()
    }
}

enum Stopped {
    Cancelled,
    Failed(String),
}

/// Runs `query` over the events of the request's groups and window.
fn run(
    store: &LogStore,
    query: &Query,
    request: &QueryRequest,
    account: &str,
    cancel: &AtomicBool,
) -> Result<QueryOutcome, Stopped> {
    let window = (request.start_ms, request.end_ms.saturating_add(1));
    let failed: std::cell::RefCell<Option<String>> = std::cell::RefCell::default();
    let failure = &failed;
    let events = request.groups.iter().flat_map(|group| {
        let mut after: Option<EventId> = None;
        let mut done = false;
        std::iter::from_fn(move || {
            if done || cancel.load(Ordering::Relaxed) {
                return None;
            }
            match store.filter(group, None, window, after, PAGE, &|_| true) {
                Ok((page, complete)) => {
                    done = complete || page.is_empty();
                    after = page.last().map(|e| e.id);
                    Some(page.into_iter().map(|e| InsightsEvent {
                        timestamp_ms: e.id.timestamp_ms,
                        ingestion_ms: e.ingestion_ms,
                        message: e.message,
                        log_stream: e.stream,
                        log_group: group.clone(),
                    }))
                }
                Err(e) => {
                    *failure.borrow_mut() = Some(e.to_string());
                    None
                }
            }
        })
        .flatten()
    });
    let mut outcome = query.run(account, events);
    if let Some(e) = failed.take() {
        return Err(Stopped::Failed(e));
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(Stopped::Cancelled);
    }
    outcome.rows.truncate(request.limit.unwrap_or(MAX_ROWS));
    Ok(outcome)
}
