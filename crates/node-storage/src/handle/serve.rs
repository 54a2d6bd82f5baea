//! The node's endpoints: the admin socket (see [`crate::admin`]), which runs operations on the
//! handle.

use storage_backup::Progress;

use super::*;
use crate::admin::AdminServer;
use crate::ops::{Operate, Operation, Outcome};

impl<B: Backend, M: ChainModel> StorageHandle<B, M> {
    /// Listens on the admin socket (`[admin]`; see [`crate::admin`]) on the current tokio
    /// runtime until the returned server is dropped or the handle shuts down. A socket left by
    /// a node that died is replaced; one another process still listens on is an error.
    pub fn serve_admin(&self) -> Result<AdminServer, StorageError> {
        crate::admin::listen(self.clone(), self.config().admin_socket())
    }
}

impl<B: Backend, M: ChainModel> Operate for StorageHandle<B, M> {
    fn execute<P: Progress + 'static>(
        &self,
        op: Operation,
        progress: Arc<P>,
    ) -> impl Future<Output = Result<Outcome, StorageError>> + Send {
        StorageHandle::execute(self, op, progress)
    }

    fn is_closing(&self) -> bool {
        StorageHandle::is_closing(self)
    }
}
