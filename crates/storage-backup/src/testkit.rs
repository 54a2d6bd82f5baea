//! A real S3-compatible server for tests: `s3s-fs` on loopback, checking SigV4 signatures and
//! storing objects on disk. `.ci/run` installs it (see the README's prerequisites); the binary
//! is found through `S3S_FS_BIN`, then `PATH`, then `~/.cache/node-storage/s3s/bin`.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{BackupConfig, Credentials};

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "node-storage-test";
/// The secret key the server accepts.
pub const SECRET_KEY: &str = "node-storage-test-secret";
/// The bucket created at start.
pub const BUCKET: &str = "backups";

/// A running s3s-fs, stopped on drop.
#[derive(Debug)]
pub struct S3Server {
    child: Option<Child>,
    port: u16,
    root: tempfile::TempDir,
}

/// Where the s3s-fs binary is.
pub fn s3s_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("S3S_FS_BIN") {
        return PathBuf::from(p);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("s3s-fs");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".cache/node-storage/s3s/bin/s3s-fs")
}

impl S3Server {
    /// Starts a server with one empty bucket on a free loopback port.
    pub fn start() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket dir");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let mut server = S3Server { child: None, port, root };
        server.restart();
        server
    }

    /// Starts the server (again) on the same port and directory.
    pub fn restart(&mut self) {
        let binary = s3s_binary();
        assert!(
            binary.is_file(),
            "s3s-fs not found at {} — install it with `cargo install s3s-fs@0.14.1 --features binary` (or set S3S_FS_BIN)",
            binary.display()
        );
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn s3s-fs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start listening on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGKILL), as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The directory the server stores objects in (`<root>/<bucket>/<key>`).
    pub fn root(&self) -> &std::path::Path {
        self.root.path()
    }

    /// A backup configuration for `prefix` in the bucket with valid credentials, fast retries.
    pub fn config(&self, prefix: &str) -> BackupConfig {
        BackupConfig {
            destination: format!("s3://{BUCKET}/{prefix}"),
            endpoint: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            allow_http: true,
            max_retries: 2,
            retry_timeout_secs: 5,
            gc_grace_secs: 0,
            credentials: Some(Credentials { access_key_id: ACCESS_KEY.into(), secret_access_key: SECRET_KEY.into() }),
            ..BackupConfig::default()
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
