//! Real parts for tests: the Bigtable emulator (`cbtemulator`, from Debian's
//! `google-cloud-cli-bigtable-emulator`) on a free loopback port, and a TCP proxy in front of
//! any server whose connection a test can cut and restore (an outage, without losing the
//! in-memory emulator's data).

use std::io::{BufRead, BufReader};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{HistoryConfig, TierKind};

/// Where the emulator's binary is: `CBTEMULATOR_BIN`, then `cbtemulator` on `PATH`, then the
/// Google Cloud CLI's platform directory (where the Debian package puts it).
pub fn emulator_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CBTEMULATOR_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join("cbtemulator")).collect())
        .unwrap_or_default();
    candidates.push(PathBuf::from("/usr/lib/google-cloud-sdk/platform/bigtable-emulator/cbtemulator"));
    candidates.push(PathBuf::from("/usr/share/google-cloud-sdk/platform/bigtable-emulator/cbtemulator"));
    candidates.into_iter().find(|p| p.is_file())
}

/// A running Bigtable emulator (in memory), stopped on drop.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    addr: SocketAddr,
}

impl Emulator {
    /// Starts the emulator on a free loopback port; `None` (after printing `SKIPPED: …` with
    /// what is missing) where its binary is not installed.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let Some(binary) = emulator_binary() else {
            eprintln!(
                "SKIPPED: {test}: the Bigtable emulator (cbtemulator) is not installed — apt-get install \
                 google-cloud-cli-bigtable-emulator, or set CBTEMULATOR_BIN"
            );
            return None;
        };
        Some(Self::start(&binary))
    }

    /// Starts `binary` on a free loopback port (it prints the port it took).
    pub fn start(binary: &std::path::Path) -> Self {
        let mut child = Command::new(binary)
            .args(["-host", "127.0.0.1", "-port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("the emulator's first line");
        let addr = line
            .split_whitespace()
            .last()
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("the emulator said `{}`, not its address", line.trim()));
        Emulator { child, addr }
    }

    /// `host:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A history configuration for this emulator (tables prefixed `prefix`, small batches,
    /// short timeouts).
    pub fn config(&self, prefix: &str) -> HistoryConfig {
        config_at(&self.addr.to_string(), prefix)
    }
}

/// A Bigtable history configuration for the emulator at `host:port`.
pub fn config_at(host: &str, prefix: &str) -> HistoryConfig {
    let mut c = HistoryConfig { kind: Some(TierKind::Bigtable), timeout_ms: 5_000, ..HistoryConfig::default() };
    c.bigtable.emulator = Some(host.to_owned());
    c.bigtable.table_prefix = prefix.to_owned();
    c.bigtable.project = "test".into();
    c.bigtable.instance = "test".into();
    c.upload_interval_ms = 50;
    c.max_backoff_ms = 200;
    c
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy on loopback in front of `target`. While down, open connections are cut and new
/// ones closed at once.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts forwarding a free loopback port to `target`.
    pub fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (up2, live2, stop2) = (up.clone(), live.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let mut tracked = live2.lock().unwrap_or_else(|p| p.into_inner());
                for s in [&client, &server] {
                    if let Ok(c) = s.try_clone() {
                        tracked.push(c);
                    }
                }
                drop(tracked);
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        Proxy { addr, up, live, stop }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.live.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
        let _ = TcpStream::connect(self.addr); // wakes the accept loop so it sees `stop`
    }
}
