//! The backup schedule's state and status (the schedule itself runs in the handle: see
//! `StorageHandle::spawn_backup_schedule`) (what the admin endpoint's `schedule
//! status` and `nodestore backup schedule` report).

use serde::{Deserialize, Serialize};
use storage_backup::{BackupConfig, BackupKind, rfc3339};

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

impl ScheduleState {
    /// The schedule started; the first run is due at `next_at_ms`.
    pub(crate) fn started(&mut self, next_at_ms: u64) {
        self.running = true;
        self.next_at_ms = Some(next_at_ms);
    }

    /// The schedule stopped (the node shuts down).
    pub(crate) fn stopped(&mut self) {
        (self.running, self.next_at_ms) = (false, None);
    }

    /// A scheduled run began; the next is due at `next_at_ms`.
    pub(crate) fn run_began(&mut self, next_at_ms: u64) {
        self.in_progress = true;
        self.next_at_ms = Some(next_at_ms);
    }

    /// A scheduled run ended (`run.error`: it failed).
    pub(crate) fn run_ended(&mut self, run: ScheduledRun) {
        self.in_progress = false;
        self.runs += 1;
        self.failures += u64::from(run.error.is_some());
        self.last = Some(run);
    }

    /// The status with the schedule's settings from `config`.
    pub(crate) fn status(&self, config: &BackupConfig) -> ScheduleStatus {
        ScheduleStatus {
            interval_secs: config.schedule_interval_secs,
            kind: config.schedule_kind,
            prune: config.schedule_prune,
            destination: config.destination.clone(),
            running: self.running,
            in_progress: self.in_progress,
            next_at: self.next_at_ms.map(rfc3339),
            runs: self.runs,
            failures: self.failures,
            last: self.last.clone(),
        }
    }
}
