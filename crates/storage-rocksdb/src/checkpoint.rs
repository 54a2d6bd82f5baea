//! Checkpoints through RocksDB's checkpoint API: SST files are hard-linked (copied across
//! filesystems), the small mutable files copied, memtables flushed first.

use std::path::Path;

use rocksdb::checkpoint::Checkpoint;
use storage_api::{CheckpointError, KvCheckpoint};
use tracing::info;

use crate::RocksStore;
use crate::error::map_err;

impl KvCheckpoint for RocksStore {
    fn checkpoint(&self, target: &Path) -> Result<(), CheckpointError> {
        self.checkpoint_with(target, 0)
    }
}

impl RocksStore {
    /// A checkpoint that does not flush the memtables: the live WAL files are copied instead
    /// and replayed when the checkpoint is opened. Its cost does not grow with the memtables
    /// (backups use it; [`KvCheckpoint::checkpoint`] flushes first, for a WAL-free copy).
    pub fn checkpoint_without_flush(&self, target: &Path) -> Result<(), CheckpointError> {
        self.checkpoint_with(target, u64::MAX)
    }

    fn checkpoint_with(&self, target: &Path, log_size_for_flush: u64) -> Result<(), CheckpointError> {
        if target.exists() {
            return Err(CheckpointError::TargetExists(target.to_owned()));
        }
        let result =
            Checkpoint::new(&self.db).and_then(|c| c.create_checkpoint_with_log_size(target, log_size_for_flush));
        match result {
            Ok(()) => {
                info!(source = %self.path.display(), target = %target.display(), "checkpoint written");
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(target);
                Err(CheckpointError::Backend(map_err(e)))
            }
        }
    }
}
