//! The running node's history uploader: a thread that uploads final units to the archive
//! (see [`crate::history`]) while the node runs.

use std::sync::Weak;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use chain_store::ChainModel;

use crate::backend::Backend;
use crate::error::StorageError;
use crate::history::{UploadRound, follow, upload_round};
use crate::shared::Shared;

/// The running node's uploader: rounds back to back while there is work, then every
/// `upload_interval_ms`; after a failure it backs off exponentially up to `max_backoff_ms`.
/// A node that does not upload (`upload = false`) still follows the watermarks, which bound
/// its pruning.
pub(crate) struct Uploader {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Uploader {
    pub(crate) fn start<B: Backend, M: ChainModel>(shared: Weak<Shared<B, M>>) -> Result<Self, StorageError> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("node-storage-history".into())
            .spawn(move || run(shared, stopped))
            .map_err(|e| StorageError::Internal(format!("starting the history uploader: {e}")))?;
        Ok(Uploader { stop, thread })
    }

    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn run<B: Backend, M: ChainModel>(shared: Weak<Shared<B, M>>, stopped: mpsc::Receiver<()>) {
    let mut delay = Duration::ZERO;
    let mut failures = 0u32;
    loop {
        match stopped.recv_timeout(delay) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(s) = shared.upgrade() else { return };
        let Some(history) = &s.history else { return };
        let interval = Duration::from_millis(history.config.upload_interval_ms);
        let result = if history.config.upload {
            upload_round(history, &s.stores.chain, &s.stores.dag)
        } else {
            follow(history, &s.stores.chain, &s.stores.dag).map(|_| UploadRound::default())
        };
        delay = match result {
            Ok(round) => {
                failures = 0;
                if round.progressed() { Duration::ZERO } else { interval }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                history.upload_failed(&e);
                tracing::warn!(error = %e, failures, "history upload failed; retrying");
                let max = Duration::from_millis(history.config.max_backoff_ms);
                interval.saturating_mul(1 << failures.min(16)).min(max)
            }
        };
    }
}
