//! The backup schedule of a running node (its state and status types: [`crate::schedule`]).

use storage_backup::{Backups, now_ms, rfc3339};

use super::*;
use crate::schedule::{ScheduleState, ScheduleStatus, ScheduledRun};

impl<B: Backend, M: ChainModel> StorageHandle<B, M> {
    /// Starts the backup schedule (`backup.schedule_interval_secs`, 0: off) on the current
    /// tokio runtime: a backup of `backup.schedule_kind` every interval, each followed by a
    /// prune when `backup.schedule_prune`. Failures are logged and counted in metrics
    /// (maintenance task `backup` / `backup_prune`) and in [`StorageHandle::schedule_status`];
    /// the schedule carries on. Ends at shutdown.
    pub fn spawn_backup_schedule(&self) -> Option<tokio::task::JoinHandle<()>> {
        let config = self.shared.config.backup.clone();
        if config.schedule_interval_secs == 0 {
            return None;
        }
        let handle = self.clone();
        let every = Duration::from_secs(config.schedule_interval_secs);
        self.schedule_state(|s| s.started(now_ms() + every.as_millis() as u64));
        Some(tokio::spawn(async move {
            let mut next = tokio::time::Instant::now() + every;
            loop {
                while tokio::time::Instant::now() < next {
                    if handle.is_closing() {
                        handle.schedule_state(ScheduleState::stopped);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200).min(every)).await;
                }
                next += every;
                let (started_at, started) = (now_ms(), Instant::now());
                handle.schedule_state(|s| s.run_began(started_at + every.as_millis() as u64));
                let result = match handle.backup(config.schedule_kind, Arc::new(())).await {
                    Ok(report) if config.schedule_prune => prune(&handle, &config).await.map(|()| report),
                    other => other.map_err(|e| e.to_string()),
                };
                let run = ScheduledRun {
                    started_at: rfc3339(started_at),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    backup: result.as_ref().ok().map(|r| r.manifest.id.clone()),
                    error: result.err(),
                };
                handle.schedule_state(|s| s.run_ended(run));
            }
        }))
    }

    /// How the backup schedule stands: settings, whether it runs, the next and the last run.
    pub fn schedule_status(&self) -> ScheduleStatus {
        self.shared.schedule.lock().unwrap_or_else(|p| p.into_inner()).status(&self.shared.config.backup)
    }

    fn schedule_state(&self, f: impl FnOnce(&mut ScheduleState)) {
        f(&mut self.shared.schedule.lock().unwrap_or_else(|p| p.into_inner()));
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
    handle.shared.metrics.maintenance("backup_prune", started.elapsed().as_secs_f64(), pruned.is_ok());
    pruned.map_err(|e| {
        tracing::warn!(error = %e, "scheduled prune of backups failed");
        format!("pruning old backups: {e}")
    })
}
