//! Retention: which complete backups to keep (last N, newest per day for D days, newest per
//! ISO week for W weeks), deleting the rest, then garbage-collecting objects no kept backup
//! references. Deletion removes a backup's completion marker first, so a prune interrupted
//! half-way leaves an incomplete backup (cleaned later), never a complete one missing files.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use tracing::info;

use crate::config::RetentionPolicy;
use crate::error::BackupError;
use crate::manifest::{Manifest, marker_key};
use crate::{Backups, now_ms};

const DAY_MS: u64 = 86_400_000;

/// What a prune did (or, dry-run, would do).
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    /// Backups kept.
    pub kept: Vec<String>,
    /// Complete backups deleted.
    pub deleted: Vec<String>,
    /// Interrupted backups cleaned.
    pub incomplete: Vec<String>,
    /// Objects garbage-collected.
    pub objects: Vec<String>,
    /// Bytes freed by garbage collection.
    pub freed_bytes: u64,
    /// Whether nothing was actually deleted.
    pub dry_run: bool,
}

/// The ids retention keeps among `backups` (any order) at time `now_ms`.
pub fn select_kept(backups: &[Manifest], policy: &RetentionPolicy, now_ms: u64) -> BTreeSet<String> {
    let mut newest_first: Vec<&Manifest> = backups.iter().collect();
    newest_first.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then(b.id.cmp(&a.id)));
    let mut kept: BTreeSet<String> =
        newest_first.iter().take(policy.keep_last as usize).map(|m| m.id.clone()).collect();
    let today = now_ms / DAY_MS;
    // Days since the epoch (a Thursday) shifted by 3 give Monday-based weeks.
    let week = |day: u64| (day + 3) / 7;
    let mut seen_days = HashSet::new();
    let mut seen_weeks = HashSet::new();
    for m in &newest_first {
        let day = m.created_at_ms / DAY_MS;
        if today.saturating_sub(day) < u64::from(policy.keep_daily) && seen_days.insert(day) {
            kept.insert(m.id.clone());
        }
        if week(today).saturating_sub(week(day)) < u64::from(policy.keep_weekly) && seen_weeks.insert(week(day)) {
            kept.insert(m.id.clone());
        }
    }
    kept
}

impl Backups {
    /// Applies the retention policy and garbage-collects unreferenced objects older than the
    /// grace period. With `dry_run`, only reports.
    pub async fn prune(&self, dry_run: bool) -> Result<PruneReport, BackupError> {
        let grace = Duration::from_secs(self.config.gc_grace_secs);
        let mut report = PruneReport { dry_run, ..PruneReport::default() };
        // One listing: clean-up, retention and deletion all work from it.
        let all = self.list().await?;
        report.incomplete = self.remove_incomplete(&all, grace, dry_run).await?;
        let complete: Vec<Manifest> = all.iter().filter_map(|b| b.manifest.clone()).collect();
        let kept = select_kept(&complete, &self.config.retention, now_ms());
        let mut referenced: HashSet<String> = HashSet::new();
        for m in &complete {
            if kept.contains(&m.id) {
                referenced.extend(m.referenced_keys());
                report.kept.push(m.id.clone());
            } else {
                report.deleted.push(m.id.clone());
            }
        }
        if !dry_run {
            for b in all.iter().filter(|b| report.deleted.contains(&b.id)) {
                let marker = marker_key(&b.id);
                self.dest.delete(&marker).await?;
                for key in b.keys.iter().filter(|k| **k != marker) {
                    self.dest.delete(key).await?;
                }
                info!(backup = %b.id, "backup deleted by retention");
            }
        }
        let now = SystemTime::now();
        for object in self.dest.list("objects").await? {
            let young = now.duration_since(object.modified).map(|age| age < grace).unwrap_or(true);
            if referenced.contains(&object.key) || young {
                continue;
            }
            if !dry_run {
                self.dest.delete(&object.key).await?;
            }
            report.freed_bytes += object.size;
            report.objects.push(object.key);
        }
        if !dry_run {
            info!(
                kept = report.kept.len(),
                deleted = report.deleted.len(),
                objects = report.objects.len(),
                freed_bytes = report.freed_bytes,
                "prune complete"
            );
        }
        Ok(report)
    }
}
