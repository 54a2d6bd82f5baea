//! A fault-injecting FUSE file system for node-storage's power-loss and I/O-error tests
//! (dev-only, Linux).
//!
//! A process killed with SIGKILL leaves every write it made in the kernel's page cache, so a
//! missing `fsync` — of a file, or of the directory that names a new file — goes unnoticed by
//! a kill test. A power cut drops them. [`FaultFs`] mounts a file system (with the `fuser`
//! crate, over `/dev/fuse`) that serves the program under test and remembers what each
//! `fsync`/`fdatasync` and each directory `fsync` made durable:
//!
//! * [`FaultFs::power_off`] then [`FaultFs::power_on`] (or [`FaultFs::cut_power`]) loses
//!   everything not durable: unsynced bytes and lengths, and creates, renames, links and
//!   unlinks whose directory was not synced since; optionally a torn last write ([`Cut`]).
//!   Between the two calls every operation fails with `EIO`, so a child process can be cut
//!   at any moment and killed afterwards.
//! * [`FaultFs::inject`] fails the Nth operation of a kind ([`Op`]) with `EIO` or `ENOSPC`,
//!   once or from then on ([`Fault`]).
//!
//! File data is passed through to files in a backing directory (one per file, named by inode
//! number, so unlinked-but-durable files can come back); the namespace and the durability
//! record are kept in memory, in the process that mounts. The durability model is documented
//! in `state.rs`: it is the strict POSIX one, stricter than ext4 in practice.
//!
//! FUSE needs `/dev/fuse` and either root or the `fusermount3` helper (Debian's `fuse3`).
//! Where it cannot mount, [`FaultFs::mount`] returns [`MountError::Unavailable`] with the
//! reason, and tests print it and skip.

mod fault;
mod fuse;
mod state;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, Config, MountOption, Session};

pub use fault::{Errno, Fault, Op, OpCounts};
pub use state::{Cut, CutReport};

use state::State;

/// Why the file system could not be mounted or remounted.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// FUSE cannot run on this machine (no `/dev/fuse`, no permission, no mount helper).
    #[error("FUSE is unavailable here: {0}")]
    Unavailable(String),
    /// Creating the mount point or the backing directory failed.
    #[error("creating the fault file system's directories: {0}")]
    Dirs(#[source] io::Error),
    /// Mounting failed for another reason.
    #[error("mounting the fault file system at {path}: {source}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// What the kernel or the mount helper said.
        #[source]
        source: io::Error,
    },
    /// Files stayed open on the file system, so it cannot be unmounted for a power cut.
    #[error("{open} file(s) still open on {path} after {waited:?}: close them before a power cut")]
    Busy {
        /// The mount point.
        path: PathBuf,
        /// How many handles are open.
        open: u32,
        /// How long the cut waited for them to close.
        waited: Duration,
    },
    /// Unmounting failed.
    #[error("unmounting {path}: {source}")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Reverting the backing files to their durable state failed.
    #[error("reverting the backing files after a power cut: {0}")]
    Revert(#[source] io::Error),
}

/// A mounted fault-injecting file system; unmounted (and its backing files deleted) on drop.
pub struct FaultFs {
    state: Arc<Mutex<State>>,
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
    _dirs: tempfile::TempDir,
}

impl std::fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultFs")
            .field("mountpoint", &self.mountpoint)
            .field("mounted", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

impl FaultFs {
    /// Mount a new, empty file system at a fresh temporary directory.
    pub fn mount() -> Result<Self, MountError> {
        if !Path::new("/dev/fuse").exists() {
            return Err(MountError::Unavailable("/dev/fuse does not exist".into()));
        }
        let dirs = tempfile::Builder::new().prefix("fault-fs-").tempdir().map_err(MountError::Dirs)?;
        let mountpoint = dirs.path().join("mnt");
        let backing = dirs.path().join("data");
        for dir in [&mountpoint, &backing] {
            std::fs::create_dir(dir).map_err(MountError::Dirs)?;
        }
        let mut fs = Self { state: Arc::new(Mutex::new(State::new(&backing))), session: None, mountpoint, _dirs: dirs };
        fs.attach()?;
        Ok(fs)
    }

    fn attach(&mut self) -> Result<(), MountError> {
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("node-storage-fault-fs".into()), MountOption::NoAtime];
        let fs = fuse::Fuse { state: self.state.clone() };
        let session = Session::new(fs, &self.mountpoint, &config).and_then(Session::spawn).map_err(|source| {
            match source.kind() {
                io::ErrorKind::PermissionDenied | io::ErrorKind::NotFound => MountError::Unavailable(format!(
                    "mounting with fuser: {source} (needs root, or the fusermount3 \
                         helper from Debian's fuse3)"
                )),
                _ => MountError::Mount { path: self.mountpoint.clone(), source },
            }
        })?;
        self.session = Some(session);
        Ok(())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mount point: the program under test keeps its files below it.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Add a fault; it counts the operations of its kind from now.
    pub fn inject(&self, fault: Fault) {
        self.state().faults.inject(fault);
    }

    /// Remove every fault (frees a full disk).
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// How many operations of each kind were served since the mount.
    pub fn counts(&self) -> OpCounts {
        self.state().faults.counts()
    }

    /// How many operations failed by an injected fault (or with the power off).
    pub fn failed(&self) -> u64 {
        self.state().faults.failed()
    }

    /// Cut the power: from now every operation fails with `EIO` and nothing more becomes
    /// durable. Kill the program under test, then [`power_on`](Self::power_on).
    pub fn power_off(&self) {
        self.state().faults.power_off();
    }

    /// Restore power: wait for every file to be closed, unmount, lose what was not durable
    /// (see [`Cut`]), and mount again — the program's next open sees what a disk would hold
    /// after a power cut.
    pub fn power_on(&mut self, cut: Cut) -> Result<CutReport, MountError> {
        self.power_off();
        self.wait_closed(Duration::from_secs(10))?;
        if let Some(session) = self.session.take() {
            session
                .umount_and_join()
                .map_err(|source| MountError::Unmount { path: self.mountpoint.clone(), source })?;
        }
        let report = {
            let mut state = self.state();
            let report = state.cut(cut).map_err(|e| MountError::Revert(io::Error::from_raw_os_error(e)));
            state.faults.power_on();
            report?
        };
        self.attach()?;
        Ok(report)
    }

    /// [`power_off`](Self::power_off) and [`power_on`](Self::power_on) in one: for a program
    /// that has closed its files (dropped its store) already.
    pub fn cut_power(&mut self, cut: Cut) -> Result<CutReport, MountError> {
        self.power_on(cut)
    }

    fn wait_closed(&self, limit: Duration) -> Result<(), MountError> {
        let start = Instant::now();
        loop {
            // The kernel releases a dead process's files asynchronously.
            let open = self.state().open_handles();
            if open == 0 {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(MountError::Busy { path: self.mountpoint.clone(), open, waited: start.elapsed() });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Mounts a new file system for the test `what`, or — where FUSE cannot run here — prints
/// `SKIPPED <what>: <reason>` and returns `None`, so the test passes visibly skipped. Any other
/// mount failure panics.
pub fn mount_or_skip(what: &str) -> Option<FaultFs> {
    match FaultFs::mount() {
        Ok(fs) => Some(fs),
        Err(MountError::Unavailable(why)) => {
            println!("SKIPPED {what}: {why}");
            None
        }
        Err(e) => panic!("{what}: {e}"),
    }
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // The kernel releases closed files asynchronously: give it a moment, so the join
            // does not wait on a handle. With files still open, dropping the session detaches
            // the mount lazily (it goes once they close) without waiting.
            if self.wait_closed(Duration::from_secs(2)).is_ok() {
                let _ = session.umount_and_join();
            } else {
                drop(session);
            }
        }
    }
}
