//! Operations on a stopped node: each [`Operation`] on the node's stores opened for it alone.

use std::sync::Arc;

use storage_backup::Progress;

use crate::backend::Backend;
use crate::backup::backup_stopped;
use crate::config::Config;
use crate::error::StorageError;
use crate::handle::StorageHandle;
use crate::model::NodeModel;
use crate::ops::{Access, Operation, Outcome};
use crate::reader::NodeReader;

/// Runs `op` on the stopped node at `config.data_dir`: reads on its stores opened read-only,
/// the rest on its stores opened for the operation alone (the node lock held meanwhile, so
/// nothing else writes). A backup of a stopped node is taken as its stores are on disk
/// ([`backup_stopped`]).
pub async fn execute_stopped<B: Backend, M: NodeModel, P: Progress + 'static>(
    config: &Config,
    op: Operation,
    progress: Arc<P>,
) -> Result<Outcome, StorageError> {
    match op.access() {
        Access::Read => {
            let config = config.clone();
            tokio::task::spawn_blocking(move || NodeReader::<B, M>::open(config)?.execute(op))
                .await
                .map_err(|e| StorageError::Internal(format!("the read task failed: {e}")))?
        }
        Access::Running => Ok(Outcome::Schedule(None)),
        Access::Write => match op {
            Operation::Backup { kind } => {
                Ok(Outcome::BackedUp(backup_stopped::<B, M, P>(config, kind, progress).await?))
            }
            op => {
                let handle = StorageHandle::<B, M>::open(config.clone())?;
                let outcome = handle.execute(op, progress).await;
                handle.shutdown().await;
                outcome
            }
        },
    }
}
