//! The archive's own small runtime: network clients live on it, and the synchronous API waits
//! for their futures from any thread — a plain thread, a blocking-pool thread or even a task of
//! another runtime (the future runs here, never on the caller's executor).

use std::future::Future;
use std::time::Duration;

use crate::error::HistoryError;

/// Two I/O threads and the runtime they drive.
pub(crate) struct Io {
    runtime: Option<tokio::runtime::Runtime>,
    timeout: Duration,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Io")
    }
}

impl Io {
    pub(crate) fn new(timeout: Duration) -> Result<Self, HistoryError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("node-storage-history")
            .enable_all()
            .build()
            .map_err(|e| HistoryError::Config(format!("starting the archive's I/O threads: {e}")))?;
        Ok(Io { runtime: Some(runtime), timeout })
    }

    /// Runs `f` on the archive's runtime and waits for it, for at most the configured timeout
    /// (then `Unavailable`, naming `archive` and `action`).
    pub(crate) fn run<T: Send + 'static>(
        &self,
        archive: &str,
        action: &str,
        f: impl Future<Output = Result<T, HistoryError>> + Send + 'static,
    ) -> Result<T, HistoryError> {
        let rt = self.runtime.as_ref().expect("the runtime lives until drop");
        let timeout = self.timeout;
        let task = rt.spawn(async move { tokio::time::timeout(timeout, f).await });
        match futures::executor::block_on(task) {
            Ok(Ok(result)) => result,
            Ok(Err(_elapsed)) => Err(HistoryError::Unavailable {
                archive: archive.to_owned(),
                action: action.to_owned(),
                reason: format!("no answer within {} ms", timeout.as_millis()),
            }),
            Err(join) => Err(HistoryError::Remote {
                archive: archive.to_owned(),
                action: action.to_owned(),
                reason: format!("the I/O task failed: {join}"),
            }),
        }
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // Never blocks: the archive may be dropped inside another runtime's task.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
