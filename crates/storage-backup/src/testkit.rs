//! Real object-storage servers for tests. S3: `s3s-fs` on loopback, checking SigV4 signatures and
//! storing objects on disk. `.ci/run` installs it (see the README's prerequisites); the binary
//! is found through `S3S_FS_BIN`, then `PATH`, then `~/.cache/node-storage/s3s/bin`. Azure Blob:
//! Azurite ([`AzuriteServer`]); GCS: gcp-storage-emulator ([`GcsEmulator`]); both skipped
//! visibly where they are not installed.

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
    if let Some(found) = on_path("s3s-fs") {
        return found;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".cache/node-storage/s3s/bin/s3s-fs")
}

/// `name` in a directory of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// SIGKILLs a test server (an outage) and reaps it.
fn kill(child: Option<Child>) {
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
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
        kill(self.child.take());
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

/// Azurite's well-known development account (public, documented by Microsoft).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development account key.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The container created at start.
pub const AZURE_CONTAINER: &str = "backups";

/// Creates a container on Azurite with a SharedKey-signed request (object_store has no
/// container API). Node.js runs it: Azurite needs Node.js anyway, and its crypto signs.
const CREATE_CONTAINER_JS: &str = r#"
const [port, account, key, container] = process.argv.slice(1);
const crypto = require('crypto'), http = require('http');
const date = new Date().toUTCString(), version = '2021-08-06', path = `/${account}/${container}`;
const toSign = `PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:${date}\nx-ms-version:${version}\n/${account}${path}\nrestype:container`;
const sig = crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(toSign, 'utf8').digest('base64');
const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: path + '?restype=container',
  headers: { 'x-ms-date': date, 'x-ms-version': version, Authorization: `SharedKey ${account}:${sig}`, 'Content-Length': 0 } },
  res => { res.resume(); res.on('end', () => {
    if (res.statusCode === 201 || res.statusCode === 409) process.exit(0);
    console.error(`status ${res.statusCode}`); process.exit(1); }); });
req.on('error', e => { console.error(e.message); process.exit(1); });
req.end();
"#;

/// Where Azurite's blob server is: `AZURITE_BLOB_BIN`, then `azurite-blob` on `PATH`, then
/// `~/.cache/node-storage/azurite/node_modules/.bin/azurite-blob` (where `cargo xtask setup`
/// installs azurite@3.35.0 with npm). `None` if none exists.
pub fn azurite_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AZURITE_BLOB_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "AZURITE_BLOB_BIN names {}, which does not exist", p.display());
        return Some(p);
    }
    if let Some(found) = on_path("azurite-blob") {
        return Some(found);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    Some(home.join(".cache/node-storage/azurite/node_modules/.bin/azurite-blob")).filter(|p| p.is_file())
}

/// A running Azurite blob server on loopback (SharedKey signatures checked, blobs on disk in a
/// temporary directory, so a restart keeps them), stopped on drop.
#[derive(Debug)]
pub struct AzuriteServer {
    binary: PathBuf,
    child: Option<Child>,
    port: u16,
    root: tempfile::TempDir,
}

impl AzuriteServer {
    /// Starts Azurite with one empty container on a port it picks, or prints `SKIPPED` naming
    /// what is missing and returns `None` when Azurite is not installed.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let Some(binary) = azurite_binary() else {
            eprintln!(
                "SKIPPED {test}: Azurite is not installed — `cargo xtask setup` installs it (npm install azurite@3.35.0 \
                 into ~/.cache/node-storage/azurite), or set AZURITE_BLOB_BIN"
            );
            return None;
        };
        let mut server = AzuriteServer { binary, child: None, port: 0, root: tempfile::tempdir().expect("temp dir") };
        server.restart();
        Some(server)
    }

    /// Starts the server (again) on the same port and directory, and makes sure the container
    /// exists (Azurite saves its metadata lazily, so a killed server may have forgotten it).
    pub fn restart(&mut self) {
        let mut child = Command::new(&self.binary)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &self.port.to_string()])
            .arg("--location")
            .arg(self.root.path())
            // No telemetry (it would try to reach the internet); any API version the client speaks.
            .args(["--skipApiVersionCheck", "--disableTelemetry"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn azurite-blob");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                // "Azurite Blob service successfully listens on http://127.0.0.1:PORT"
                if let Some(port) = line.split("listens on http://127.0.0.1:").nth(1) {
                    let _ = tx.send(port.trim().parse::<u16>().ok());
                }
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(port)) => self.port = port,
            _ => panic!("Azurite ({}) did not report its port", self.binary.display()),
        }
        let status = Command::new("node")
            .arg("-e")
            .arg(CREATE_CONTAINER_JS)
            .args([&self.port.to_string(), AZURITE_ACCOUNT, AZURITE_KEY, AZURE_CONTAINER])
            .status()
            .expect("run node");
        assert!(status.success(), "creating the container on Azurite failed");
    }

    /// Stops the server (SIGKILL), as an outage would.
    pub fn stop(&mut self) {
        kill(self.child.take());
    }

    /// The account's blob service URL (path-style, as Azurite serves it).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port)
    }

    /// A backup configuration for `prefix` in the container with valid credentials, fast
    /// retries.
    pub fn config(&self, prefix: &str) -> BackupConfig {
        BackupConfig {
            destination: format!("az://{AZURE_CONTAINER}/{prefix}"),
            endpoint: Some(self.endpoint()),
            allow_http: true,
            max_retries: 2,
            retry_timeout_secs: 5,
            gc_grace_secs: 0,
            credentials: Some(Credentials {
                access_key_id: AZURITE_ACCOUNT.into(),
                secret_access_key: AZURITE_KEY.into(),
            }),
            ..BackupConfig::default()
        }
    }
}

impl Drop for AzuriteServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The bucket the GCS emulator creates at start.
pub const GCS_BUCKET: &str = "nodebackups";

/// Where gcp-storage-emulator is: `GCS_EMULATOR_BIN`, then `PATH`, then the virtualenv
/// `cargo xtask setup` makes in `~/.cache/node-storage/gcs-emulator`.
fn gcs_emulator_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GCS_EMULATOR_BIN") {
        return Some(PathBuf::from(p));
    }
    if let Some(found) = on_path("gcp-storage-emulator") {
        return Some(found);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    Some(home.join(".cache/node-storage/gcs-emulator/bin/gcp-storage-emulator")).filter(|p| p.is_file())
}

/// A running gcp-storage-emulator (PyPI) on loopback with one bucket, objects in memory,
/// stopped on drop. It serves GCS's JSON API and, of the XML API that object_store speaks,
/// only object uploads (`PUT`) and downloads (`GET`).
#[derive(Debug)]
pub struct GcsEmulator {
    child: Option<Child>,
    port: u16,
}

impl GcsEmulator {
    /// Starts the emulator on a free port, or prints `SKIPPED` naming what is missing and
    /// returns `None` when it is not installed.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let Some(binary) = gcs_emulator_binary() else {
            eprintln!(
                "SKIPPED {test}: gcp-storage-emulator is not installed — `cargo xtask setup` installs it (pip, into \
                 ~/.cache/node-storage/gcs-emulator), or set GCS_EMULATOR_BIN"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = Command::new(&binary)
            .args(["start", "--host", "127.0.0.1", "--port", &port.to_string(), "--in-memory"])
            .arg(format!("--default-bucket={GCS_BUCKET}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn gcp-storage-emulator");
        let server = GcsEmulator { child: Some(child), port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "gcp-storage-emulator did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    /// The emulator's base URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A backup configuration for `prefix` in the bucket, fast retries.
    pub fn config(&self, prefix: &str) -> BackupConfig {
        BackupConfig {
            destination: format!("gs://{GCS_BUCKET}/{prefix}"),
            endpoint: Some(self.endpoint()),
            max_retries: 1,
            retry_timeout_secs: 5,
            ..BackupConfig::default()
        }
    }

    /// Stops the emulator (SIGKILL), as an outage would.
    pub fn stop(&mut self) {
        kill(self.child.take());
    }
}

impl Drop for GcsEmulator {
    fn drop(&mut self) {
        self.stop();
    }
}
