//! The system prerequisites of `cargo xtask demo` and `cargo xtask test`, checked before
//! anything heavy compiles: what is missing is installed when that can be done without asking
//! (Debian packages as root, or with password-less sudo; cargo-installed servers into a cache
//! beside the build cache), and otherwise the command stops within seconds, printing the exact
//! command to run.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// What needs a prerequisite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Building the workspace (RocksDB's bindings need libclang).
    Build,
    /// Running the test suite (real servers on loopback).
    Test,
}

/// One system prerequisite.
struct Prerequisite {
    /// What it is, for messages.
    what: &'static str,
    /// Whether it is there.
    present: fn() -> bool,
    /// How to get it.
    install: Install,
    /// Who needs it.
    purpose: Purpose,
}

enum Install {
    /// Debian packages.
    Apt(&'static [&'static str]),
    /// `cargo install`ed into the node-storage cache.
    Cargo { krate: &'static str, version: &'static str, features: &'static str, dir: &'static str },
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(bin).is_file()))
}

/// libclang as bindgen looks for it (`libclang.so`, or a versioned one).
fn libclang_present() -> bool {
    let dirs = ["/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"];
    let llvm = std::fs::read_dir("/usr/lib")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("llvm-"))
                .map(|e| e.path().join("lib"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    dirs.iter().map(PathBuf::from).chain(llvm).any(|dir| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n == "libclang.so" || (n.starts_with("libclang-") && n.contains(".so")) || n.starts_with("libclang.so.")
            })
        })
    })
}

/// Where cargo-installed test servers live: beside the shared build cache.
pub(crate) fn tools_root() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/node-storage")
}

/// The s3s-fs binary the S3 tests use.
pub(crate) fn s3s_fs() -> PathBuf {
    tools_root().join("s3s/bin/s3s-fs")
}

const PREREQUISITES: &[Prerequisite] = &[
    Prerequisite {
        what: "a C compiler and libclang (RocksDB's build)",
        present: || on_path("clang") && libclang_present(),
        install: Install::Apt(&["clang", "libclang-dev"]),
        purpose: Purpose::Build,
    },
    Prerequisite {
        what: "Prometheus and promtool (alerting rules, the dashboard test)",
        present: || on_path("prometheus") && on_path("promtool"),
        install: Install::Apt(&["prometheus"]),
        purpose: Purpose::Test,
    },
    Prerequisite {
        what: "the FUSE mount helper fusermount3 (power-cut tests; root mounts without it)",
        present: || on_path("fusermount3") || !std::path::Path::new("/dev/fuse").exists(),
        install: Install::Apt(&["fuse3"]),
        purpose: Purpose::Test,
    },
    Prerequisite {
        what: "the s3s-fs S3 server (backup tests)",
        present: || s3s_fs().is_file(),
        install: Install::Cargo { krate: "s3s-fs", version: "0.14.1", features: "binary", dir: "s3s" },
        purpose: Purpose::Test,
    },
];

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn passwordless_sudo() -> bool {
    on_path("sudo") && Command::new("sudo").args(["-n", "true"]).status().is_ok_and(|s| s.success())
}

/// The Bigtable emulator (history-tier tests), where the testkit looks for it.
fn bigtable_emulator_present() -> bool {
    std::env::var_os("CBTEMULATOR_BIN").is_some()
        || on_path("cbtemulator")
        || std::path::Path::new("/usr/lib/google-cloud-sdk/platform/bigtable-emulator/cbtemulator").is_file()
        || std::path::Path::new("/usr/share/google-cloud-sdk/platform/bigtable-emulator/cbtemulator").is_file()
}

/// The Bigtable emulator comes from Google's Debian repository, which not every machine has:
/// installed when a package source offers it, else the Bigtable tests skip, saying so.
fn ensure_bigtable_emulator() {
    const PACKAGE: &str = "google-cloud-cli-bigtable-emulator";
    if bigtable_emulator_present() {
        return;
    }
    let offered = Command::new("apt-cache").args(["policy", PACKAGE]).output().is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout).contains("Candidate:")
            && !String::from_utf8_lossy(&o.stdout).contains("Candidate: (none)")
    });
    let prefix: Option<Vec<&str>> = match (offered, is_root(), passwordless_sudo()) {
        (true, true, _) => Some(vec!["env", "DEBIAN_FRONTEND=noninteractive"]),
        (true, false, true) => Some(vec!["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"]),
        _ => None,
    };
    if let Some(prefix) = prefix {
        eprintln!("setup: installing {PACKAGE} (the Bigtable emulator, history-tier tests)");
        let argv: Vec<&str> = prefix
            .iter()
            .copied()
            .chain(["apt-get", "install", "-y", "-qq", "--no-install-recommends", PACKAGE])
            .collect();
        let _ = Command::new(argv[0]).args(&argv[1..]).status();
    }
    if !bigtable_emulator_present() {
        eprintln!(
            "setup: warning: the Bigtable emulator (cbtemulator, Debian package {PACKAGE} from Google's repository) is \
             not installed; the Bigtable history tests will print SKIPPED. Install it, or set CBTEMULATOR_BIN."
        );
    }
}

/// Azurite's blob server (the Azure backup tests), where the testkit looks for it.
fn azurite_present() -> bool {
    std::env::var_os("AZURITE_BLOB_BIN").is_some()
        || on_path("azurite-blob")
        || tools_root().join("azurite/node_modules/.bin/azurite-blob").is_file()
}

/// Azurite from the npm registry (3.35.0: newer releases need a newer Node.js than Debian's),
/// into `~/.cache/node-storage/azurite`. Without Node.js and npm the Azure tests skip, saying so.
fn ensure_azurite() {
    if azurite_present() {
        return;
    }
    if on_path("npm") && on_path("node") {
        eprintln!("setup: installing Azurite 3.35.0 with npm (the Azure backup tests)");
        let dir = tools_root().join("azurite");
        let _ = std::fs::create_dir_all(&dir);
        let _ = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&dir)
            .arg("azurite@3.35.0")
            .status();
    }
    if !azurite_present() {
        eprintln!(
            "setup: warning: Azurite is not installed (needs Node.js and npm: npm install --prefix \
             ~/.cache/node-storage/azurite azurite@3.35.0); the Azure backup tests will print SKIPPED."
        );
    }
}

/// ethers (the JSON-RPC endpoint's real-client test), where that test looks for it.
fn ethers_present() -> bool {
    std::env::var_os("ETHERS_NODE_PATH").is_some()
        || tools_root().join("ethers/node_modules/ethers/package.json").is_file()
}

/// ethers v6 from the npm registry, pinned, into `~/.cache/node-storage/ethers`. Without
/// Node.js and npm the test skips, saying so.
fn ensure_ethers() {
    if ethers_present() {
        return;
    }
    if on_path("npm") && on_path("node") {
        eprintln!("setup: installing ethers 6.17.0 with npm (the JSON-RPC endpoint's client test)");
        let dir = tools_root().join("ethers");
        let _ = std::fs::create_dir_all(&dir);
        let _ = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&dir)
            .arg("ethers@6.17.0")
            .status();
    }
    if !ethers_present() {
        eprintln!(
            "setup: warning: ethers is not installed (needs Node.js and npm: npm install --prefix \
             ~/.cache/node-storage/ethers ethers@6.17.0); the JSON-RPC client test will print SKIPPED."
        );
    }
}

/// gcp-storage-emulator (the GCS backup tests), where the testkit looks for it.
fn gcs_emulator_present() -> bool {
    std::env::var_os("GCS_EMULATOR_BIN").is_some()
        || on_path("gcp-storage-emulator")
        || tools_root().join("gcs-emulator/bin/gcp-storage-emulator").is_file()
}

/// gcp-storage-emulator from PyPI (pinned: the tests record which of GCS's XML API it
/// serves), in a virtualenv at `~/.cache/node-storage/gcs-emulator`. Without Python 3 the GCS
/// tests skip, saying so.
fn ensure_gcs_emulator() {
    if gcs_emulator_present() {
        return;
    }
    if on_path("python3") {
        eprintln!("setup: installing gcp-storage-emulator 2026.7.19 with pip (the GCS backup tests)");
        let dir = tools_root().join("gcs-emulator");
        let _ = Command::new("python3").args(["-m", "venv"]).arg(&dir).status();
        let _ = Command::new(dir.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "gcp-storage-emulator==2026.7.19"])
            .status();
    }
    if !gcs_emulator_present() {
        eprintln!(
            "setup: warning: gcp-storage-emulator is not installed (needs Python 3 with venv: python3 -m venv \
             ~/.cache/node-storage/gcs-emulator, then its pip install gcp-storage-emulator==2026.7.19); the GCS \
             backup tests will print SKIPPED."
        );
    }
}

/// Checks (and where it can, installs) what `purpose` needs. Build prerequisites are always
/// included: nothing runs without the build.
pub(crate) fn ensure(purpose: Purpose) -> Result<()> {
    if purpose == Purpose::Test {
        ensure_bigtable_emulator();
        ensure_azurite();
        ensure_ethers();
        ensure_gcs_emulator();
    }
    let wanted: Vec<&Prerequisite> =
        PREREQUISITES.iter().filter(|p| p.purpose == Purpose::Build || p.purpose == purpose).collect();
    let missing: Vec<&&Prerequisite> = wanted.iter().filter(|p| !(p.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing
        .iter()
        .filter_map(|p| match p.install {
            Install::Apt(pkgs) => Some(pkgs),
            Install::Cargo { .. } => None,
        })
        .flatten()
        .copied()
        .collect();
    if !packages.is_empty() {
        let apt = on_path("apt-get");
        let runner: Option<Vec<&str>> = match (apt, is_root(), passwordless_sudo()) {
            (true, true, _) => Some(vec!["env", "DEBIAN_FRONTEND=noninteractive"]),
            (true, false, true) => Some(vec!["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"]),
            _ => None,
        };
        let Some(prefix) = runner else {
            let list: Vec<&str> = missing.iter().map(|p| p.what).collect();
            bail!(
                "missing: {}. Install them, then run this again:\n    sudo apt-get install -y {}",
                list.join("; "),
                packages.join(" ")
            );
        };
        eprintln!("setup: installing {}", packages.join(" "));
        let sh = |args: &[&str]| -> Result<()> {
            let argv: Vec<&str> = prefix.iter().chain(args).copied().collect();
            let status =
                Command::new(argv[0]).args(&argv[1..]).status().with_context(|| format!("running {argv:?}"))?;
            anyhow::ensure!(status.success(), "`{}` failed ({status})", argv.join(" "));
            Ok(())
        };
        sh(&["apt-get", "update", "-qq"])?;
        let mut install = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
        install.extend(&packages);
        sh(&install)?;
    }
    for p in &missing {
        if let Install::Cargo { krate, version, features, dir } = p.install {
            let root = tools_root().join(dir);
            eprintln!("setup: installing {} ({krate} {version}, about 5 minutes, once)", p.what);
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["install", &format!("{krate}@{version}"), "--features", features, "--root"])
                .arg(&root)
                // Its own target directory, removed afterwards: not the workspace's build.
                .env("CARGO_TARGET_DIR", root.join("target"))
                .status()
                .context("running cargo install")?;
            let _ = std::fs::remove_dir_all(root.join("target"));
            anyhow::ensure!(
                status.success(),
                "installing {krate} failed; run it yourself:\n    cargo install {krate}@{version} --features {features} --root {}",
                root.display()
            );
        }
    }
    let still: Vec<&str> = wanted.iter().filter(|p| !(p.present)()).map(|p| p.what).collect();
    anyhow::ensure!(still.is_empty(), "still missing after installing: {}", still.join("; "));
    Ok(())
}
