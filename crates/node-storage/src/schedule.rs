//! The backup schedule of a running node, and its status (what the admin endpoint's `schedule
//! status` and `nodestore backup schedule` report).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chain_store::ChainModel;
use serde::{Deserialize, Serialize};
use storage_backup::{BackupKind, Backups, now_ms, rfc3339};

use crate::backend::Backend;
use crate::handle::StorageHandle;

/// How the backup schedule stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleStatus {
    /// Seconds between backups (`backup.schedule_interval_secs`; 0: no schedule).
    pub interval_secs: u64,
    /// The kind of backup taken.
    pub kind: BackupKind,
    /// Whether each backup is followed by a prune of old backups.
    pub prune: bool,
    /// Where backups go.
    pub destination: String,
    /// Whether the schedule runs in this node (`nodestore serve` starts it when the interval is
    /// set; an embedding application calls `spawn_backup_schedule`).
    pub running: bool,
    /// A scheduled backup is being taken now.
    pub in_progress: bool,
    /// When the next one is due (RFC 3339).
    pub next_at: Option<String>,
    /// Scheduled runs so far.
    pub runs: u64,
    /// Failed scheduled backups (or prunes after them).
    pub failures: u64,
    /// The last scheduled run.
    pub last: Option<ScheduledRun>,
}

/// One scheduled backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledRun {
    /// When it started (RFC 3339).
    pub started_at: String,
    /// How long it took.
    pub elapsed_ms: u64,
    /// The backup's id, when it completed.
    pub backup: Option<String>,
    /// Why it failed (the backup or the prune after it).
    pub error: Option<String>,
}

/// The schedule's state, kept in the shared state.
#[derive(Debug, Default)]
pub(crate) struct ScheduleState {
    running: bool,
    in_progress: bool,
    next_at_ms: Option<u64>,
    runs: u64,
    failures: u64,
    last: Option<ScheduledRun>,
}

impl<B: Backend, M: ChainModel> StorageHandle<B, M> {
    /// Starts the backup schedule (`backup.schedule_interval_secs`, 0: off) on the current
    /// tokio runtime: a backup of `backup.schedule_kind` every interval, each followed by a
    /// prune when `backup.schedule_prune`. Failures are logged and counted in metrics
    /// (maintenance task `backup` / `backup_prune`) and in [`StorageHandle::schedule_status`];
    /// the schedule carries on. Ends at shutdown.
    pub fn spawn_backup_schedule(&self) -> Option<tokio::task::JoinHandle<()>> {
        let config = self.shared().config.backup.clone();
        if config.schedule_interval_secs == 0 {
            return None;
        }
        let handle = self.clone();
        let every = Duration::from_secs(config.schedule_interval_secs);
        self.schedule_state(|s| {
            s.running = true;
            s.next_at_ms = Some(now_ms() + every.as_millis() as u64);
        });
        Some(tokio::spawn(async move {
            let mut next = tokio::time::Instant::now() + every;
            loop {
                while tokio::time::Instant::now() < next {
                    if handle.shared().closing.load(Ordering::SeqCst) {
                        handle.schedule_state(|s| (s.running, s.next_at_ms) = (false, None));
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200).min(every)).await;
                }
                next += every;
                let (started_at, started) = (now_ms(), Instant::now());
                handle.schedule_state(|s| {
                    s.in_progress = true;
                    s.next_at_ms = Some(started_at + every.as_millis() as u64);
                });
                let result = match handle.backup(config.schedule_kind, Arc::new(())).await {
                    Ok(report) if config.schedule_prune => prune(&handle, &config).await.map(|()| report),
                    other => other.map_err(|e| e.to_string()),
                };
                handle.schedule_state(|s| {
                    s.in_progress = false;
                    s.runs += 1;
                    s.failures += u64::from(result.is_err());
                    s.last = Some(ScheduledRun {
                        started_at: rfc3339(started_at),
                        elapsed_ms: started.elapsed().as_millis() as u64,
                        backup: result.as_ref().ok().map(|r| r.manifest.id.clone()),
                        error: result.err(),
                    });
                });
            }
        }))
    }

    /// How the backup schedule stands: settings, whether it runs, the next and the last run.
    pub fn schedule_status(&self) -> ScheduleStatus {
        let config = &self.shared().config.backup;
        let state = self.shared().schedule.lock().unwrap_or_else(|p| p.into_inner());
        ScheduleStatus {
            interval_secs: config.schedule_interval_secs,
            kind: config.schedule_kind,
            prune: config.schedule_prune,
            destination: config.destination.clone(),
            running: state.running,
            in_progress: state.in_progress,
            next_at: state.next_at_ms.map(rfc3339),
            runs: state.runs,
            failures: state.failures,
            last: state.last.clone(),
        }
    }

    fn schedule_state(&self, f: impl FnOnce(&mut ScheduleState)) {
        f(&mut self.shared().schedule.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// The prune after a scheduled backup (logged and counted; its failure is the run's).
async fn prune<B: Backend, M: ChainModel>(
    handle: &StorageHandle<B, M>,
    config: &storage_backup::BackupConfig,
) -> Result<(), String> {
    let started = Instant::now();
    let pruned = match Backups::open(config) {
        Ok(b) => b.prune(false).await.map(|_| ()),
        Err(e) => Err(e),
    };
    handle.shared().metrics.maintenance("backup_prune", started.elapsed().as_secs_f64(), pruned.is_ok());
    pruned.map_err(|e| {
        tracing::warn!(error = %e, "scheduled prune of backups failed");
        format!("pruning old backups: {e}")
    })
}
