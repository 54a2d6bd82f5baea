//! Checkpoints: every table copied from one read transaction into a new database file in the
//! target directory, under the source file's name. Consistent, linear in the data size.

use std::path::Path;

use redb::{Database, Durability as RedbDurability, ReadableDatabase, ReadableTable};
use storage_api::{BackendError, CheckpointError, KvCheckpoint};

use crate::error::map_err;
use crate::{RawTable, RedbStore};

impl RedbStore {
    fn copy_into(&self, file: &Path) -> Result<(), BackendError> {
        let source = self.db().begin_read().map_err(map_err)?;
        let target = Database::create(file).map_err(map_err)?;
        let mut txn = target.begin_write().map_err(map_err)?;
        txn.set_durability(RedbDurability::Immediate).map_err(map_err)?;
        for name in &self.names {
            let from = source.open_table(RawTable::new(name)).map_err(map_err)?;
            let mut to = txn.open_table(RawTable::new(name)).map_err(map_err)?;
            for entry in from.iter().map_err(map_err)? {
                let (k, v) = entry.map_err(map_err)?;
                to.insert(k.value(), v.value()).map_err(map_err)?;
            }
        }
        txn.commit().map_err(map_err)
    }
}

impl KvCheckpoint for RedbStore {
    fn checkpoint(&self, target: &Path) -> Result<(), CheckpointError> {
        if target.exists() {
            return Err(CheckpointError::TargetExists(target.to_owned()));
        }
        std::fs::create_dir_all(target).map_err(|source| CheckpointError::Io { path: target.to_owned(), source })?;
        let file = target.join(self.path.file_name().unwrap_or_else(|| "store.redb".as_ref()));
        self.copy_into(&file).map_err(|e| {
            let _ = std::fs::remove_dir_all(target);
            CheckpointError::Backend(e)
        })
    }
}
