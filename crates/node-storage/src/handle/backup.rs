//! Backups of the running node (the taking itself: [`crate::backup`]).

use storage_backup::{BackupKind, Backups, Progress};

use super::*;
use crate::backup::BackupReport;

impl<B: Backend, M: ChainModel> StorageHandle<B, M> {
    /// Takes a backup of every store to the configured destination. Recorded in metrics
    /// (maintenance task `backup`, plus sizes).
    pub async fn backup<P: Progress + 'static>(
        &self,
        kind: BackupKind,
        progress: Arc<P>,
    ) -> Result<BackupReport, StorageError> {
        let shared = self.shared.clone();
        let started = Instant::now();
        let result = async {
            let backups = Backups::open(&shared.config.backup)?;
            match kind {
                BackupKind::Physical => crate::backup::physical(&shared, &backups, progress).await,
                BackupKind::Logical => crate::backup::logical(&shared, &backups, progress).await,
            }
        }
        .await;
        let secs = started.elapsed().as_secs_f64();
        shared.metrics.maintenance("backup", secs, result.is_ok());
        match &result {
            Ok(r) => {
                let t = r.manifest.totals;
                let kind = if kind == BackupKind::Physical { "physical" } else { "logical" };
                shared.metrics.backup(kind, t.raw_bytes, t.stored_bytes, t.uploaded_bytes);
                tracing::info!(
                    backup = %r.manifest.id, files = t.files, raw_bytes = t.raw_bytes, uploaded_bytes = t.uploaded_bytes,
                    ratio = t.ratio(), secs, "backup complete"
                );
            }
            Err(e) => {
                shared.metrics.error(e.kind().as_str());
                tracing::warn!(error = %e, "backup failed");
            }
        }
        result.map(|mut r| {
            r.elapsed_ms = started.elapsed().as_millis() as u64;
            r
        })
    }
}
