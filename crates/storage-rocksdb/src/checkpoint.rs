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
        if target.exists() {
            return Err(CheckpointError::TargetExists(target.to_owned()));
        }
        let result = Checkpoint::new(&self.db).and_then(|c| c.create_checkpoint(target));
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
