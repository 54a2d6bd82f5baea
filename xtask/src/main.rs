//! `cargo xtask`: project automation.
//!
//! * `demo [ARGS]`: checks (installing where it can) what the build needs, then runs
//!   `nodestore demo`;
//! * `test [ARGS]`: checks (installing where it can) what the build and the tests need, then
//!   runs the whole test suite;
//! * `tidy`: the workspace's dependency invariants and the crates' module layering (also run
//!   by `cargo test`);
//! * `crash --cycles N`: the SIGKILL durability loop against RocksDB, longer than `cargo test`;
//! * `powercut [--cycles N] [--sweep]`: the power-cut loop on the fault-injecting file system
//!   (RocksDB and redb), and with `--sweep` the full I/O-error sweeps;
//! * `fuzz [--seconds N] [--target T] [--sanitizer S]`: builds and runs the cargo-fuzz targets,
//!   installing cargo-fuzz if missing (stable toolchain with `RUSTC_BOOTSTRAP=1`);
//! * `overhead [--blocks N] [--reads N]`: storage-api's RocksDB backend against the raw rocksdb
//!   crate on the same workload, in one run;
//! * `bench [--quick] [--no-write]`: the backend comparison, written into `docs/BENCHMARKS.md`
//!   with one SVG chart per workload in `docs/bench/`.

mod cycles;
mod setup;
mod tidy;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = args.split_first().map(|(c, r)| (c.as_str(), r)).unwrap_or(("help", &[]));
    match cmd {
        "demo" => {
            setup::ensure(setup::Purpose::Build)?;
            // In the caller's directory, where the demo's data directory belongs.
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.args(["run", "--quiet", "--manifest-path"]).arg(workspace_root().join("Cargo.toml"));
            run(cmd.args(["-p", "nodestore", "--", "demo"]).args(rest))
        }
        "test" => {
            setup::ensure(setup::Purpose::Test)?;
            run(cargo().args(["test", "--workspace"]).args(rest).env("S3S_FS_BIN", setup::s3s_fs()))
        }
        "setup" => setup::ensure(setup::Purpose::Test),
        "tidy" => {
            let problems = tidy::check(&workspace_root())?;
            if problems.is_empty() {
                println!("tidy: ok");
                Ok(())
            } else {
                for p in &problems {
                    eprintln!("tidy: {p}");
                }
                bail!("{} tidy problem(s)", problems.len())
            }
        }
        "crash" => crash(rest),
        "powercut" => powercut(rest),
        "fuzz" => fuzz(rest),
        "overhead" => overhead(rest),
        "bench" => bench(rest),
        "prometheus" => run(cargo().args(["test", "-p", "node-storage", "--test", "prometheus", "--", "--ignored"])),
        "help" | "--help" | "-h" => {
            println!("{}", HELP);
            Ok(())
        }
        other => bail!("unknown command `{other}`\n{HELP}"),
    }
}

const HELP: &str = "usage: cargo xtask <command>
  demo [ARGS]                            install what the build needs (if missing), then run
                                         `nodestore demo ARGS`
  test [ARGS]                            install what the build and the tests need (if missing),
                                         then `cargo test --workspace ARGS`
  setup                                  only check and install the prerequisites
  tidy                                   check the crate dependency invariants
  crash [--cycles N]                     SIGKILL durability loop (default 200 cycles)
  powercut [--cycles N] [--sweep]        power cuts on the fault-injecting FUSE file system, RocksDB
                                         and redb (default 100 cycles each); --sweep: also every
                                         I/O-error sweep at stride 1
  fuzz [--seconds N] [--target T] [--sanitizer address|none]
                                         run the cargo-fuzz targets (default 60 s each; ASan
                                         for the codecs, none for open_corrupted)
  overhead [--blocks N] [--reads N]      storage-api vs raw RocksDB overhead benchmark
  bench [--quick] [--no-write]           backend comparison (rocksdb, redb, sled) into docs/BENCHMARKS.md,
                                         then the facade targets (--only-facade: those alone);
                                         --only-backup: the backup targets alone;
                                         --only-migrate: the migration figures alone;
                                         --only-eth: the Ethereum model (sender recovery, import)
                                         --only-bulk: bulk import (synthetic vs live vs raw; era1)
                                         --only-history: the history tier (uploads, archived reads,
                                         log filters, replica freshness)
                                         --only-trie: the state trie (from-scratch and incremental
                                         roots, bytes written, proofs)
                                         --only-rpc: the JSON-RPC endpoint under 64 clients
                                         --only-chain / --only-dag: those comparison workloads only
  prometheus                             a real Prometheus scrapes node-storage; every dashboard query
                                         must return data (needs the `prometheus` binary)";

/// The workspace being worked on. Read at run time (cargo sets the variable for `cargo run`):
/// the build cache is shared between checkouts, so a path baked in at compile time can name
/// another checkout than the one invoking xtask.
fn workspace_root() -> PathBuf {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().expect("xtask lives in the workspace").to_path_buf()
}

/// The value following `--name`, if given.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn number(args: &[String], name: &str, default: u64) -> Result<u64> {
    flag(args, name).map_or(Ok(default), |v| v.parse().with_context(|| format!("{name} takes a number, got `{v}`")))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    // `cargo xtask` runs under `cargo run`, which sets xtask's own package variables. Build
    // scripts that declare them (ring's `rerun-if-env-changed=CARGO_PKG_NAME`, …) would see
    // them change between `cargo xtask …` and a plain `cargo …` and rebuild every time.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || matches!(
                key.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
            )
        {
            c.env_remove(key.as_ref());
        }
    }
    c
}

fn crash(args: &[String]) -> Result<()> {
    let cycles = number(args, "--cycles", 200)?;
    run(cargo()
        .args(["test", "-p", "storage-rocksdb", "--test", "faults", "--", "crash_cycles"])
        .env("NODE_STORAGE_CRASH_CYCLES", cycles.to_string()))
}

fn powercut(args: &[String]) -> Result<()> {
    let cycles = number(args, "--cycles", 100)?;
    run(cargo()
        .args(["test", "-p", "node-storage", "--test", "powercut", "--", "--nocapture"])
        .env("NODE_STORAGE_POWERCUT_CYCLES", cycles.to_string()))?;
    if args.iter().any(|a| a == "--sweep") {
        run(cargo()
            .args(["test", "-p", "engine-test", "--test", "sweep", "--", "--nocapture", "--test-threads=1"])
            .env("ENGINE_TEST_SWEEP_STRIDE", "1"))?;
    }
    Ok(())
}

fn bench(args: &[String]) -> Result<()> {
    let facade_only = args.iter().any(|a| a == "--only-facade");
    let backup_only = args.iter().any(|a| a == "--only-backup");
    let migrate_only = args.iter().any(|a| a == "--only-migrate");
    let eth_only = args.iter().any(|a| a == "--only-eth");
    let bulk_only = args.iter().any(|a| a == "--only-bulk");
    let history_only = args.iter().any(|a| a == "--only-history");
    let trie_only = args.iter().any(|a| a == "--only-trie");
    let rpc_only = args.iter().any(|a| a == "--only-rpc");
    // `--only-chain` / `--only-dag` select workloads of the backend comparison alone.
    let compare_only = args.iter().any(|a| a == "--only-chain" || a == "--only-dag");
    let rest: Vec<&String> = args
        .iter()
        .filter(|a| {
            !matches!(
                a.as_str(),
                "--only-facade"
                    | "--only-backup"
                    | "--only-migrate"
                    | "--only-eth"
                    | "--only-bulk"
                    | "--only-history"
                    | "--only-trie"
                    | "--only-rpc"
            )
        })
        .collect();
    let bulk = || {
        // Bulk history import: synthetic blocks against the live path and raw RocksDB; era1.
        let mut cmd = cargo();
        cmd.args(["run", "-p", "node-storage-benches", "--bin", "bulk", "--"]);
        cmd.args(rest.iter().filter(|a| a.as_str() == "--quick"));
        run(&mut cmd)
    };
    if bulk_only {
        return bulk();
    }
    let history = || {
        // The history tier: uploads, archived reads, log filters, replica freshness.
        let mut cmd = cargo();
        cmd.args(["run", "-p", "node-storage-benches", "--bin", "history", "--"]);
        cmd.args(rest.iter().filter(|a| a.as_str() == "--quick"));
        run(&mut cmd)
    };
    if history_only {
        return history();
    }
    let trie = || {
        // The state trie: from-scratch root, incremental roots, bytes written, proofs.
        let mut cmd = cargo();
        cmd.args(["run", "-p", "node-storage-benches", "--bin", "trie", "--"]);
        cmd.args(rest.iter().filter(|a| a.as_str() == "--quick"));
        run(&mut cmd)
    };
    if trie_only {
        return trie();
    }
    let rpc = || {
        // The JSON-RPC endpoint: 64 clients on loopback, and the same reads through the handle.
        let mut cmd = cargo();
        cmd.args(["run", "-p", "node-storage-benches", "--bin", "rpc", "--"]);
        cmd.args(rest.iter().filter(|a| matches!(a.as_str(), "--quick" | "--no-write")));
        run(&mut cmd)
    };
    if rpc_only {
        return rpc();
    }
    let eth = || {
        // The Ethereum model: sender recovery, import of mainnet-shaped blocks end to end.
        let mut cmd = cargo();
        cmd.args(["run", "-p", "node-storage-benches", "--bin", "eth", "--"]);
        cmd.args(rest.iter().filter(|a| matches!(a.as_str(), "--quick" | "--no-write")));
        run(&mut cmd)
    };
    if eth_only {
        return eth();
    }
    let quick: Vec<&&String> = rest.iter().filter(|a| a.as_str() == "--quick").collect();
    if backup_only || migrate_only {
        // backup: checkpoint, full and incremental backup, verify, restore.
        // migrate: the DAG v1 → v2 step and the legacy import.
        let mut cmd = cargo();
        cmd.args(["run", "-p", "node-storage-benches", "--bin", if backup_only { "backup" } else { "migrate" }, "--"]);
        cmd.args(quick);
        return run(&mut cmd);
    }
    if !facade_only {
        let mut cmd = cargo();
        cmd.args(["run", "-p", "node-storage-benches", "--bin", "compare", "--"]);
        cmd.args(&rest);
        run(&mut cmd)?;
        if compare_only {
            return Ok(());
        }
        eth()?;
        rpc()?;
        bulk()?;
        history()?;
        trie()?;
    }
    // The facade targets (group commit, cached reads, overhead) on RocksDB.
    let mut cmd = cargo();
    cmd.args(["run", "-p", "node-storage-benches", "--bin", "facade", "--"]);
    cmd.args(rest.iter().filter(|a| a.as_str() == "--quick"));
    run(&mut cmd)
}

fn overhead(args: &[String]) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["run", "-p", "node-storage-benches", "--bin", "overhead", "--"]);
    cmd.args(args);
    run(&mut cmd)
}

const FUZZ_TARGETS: [&str; 6] =
    ["key_codec", "value_codec", "open_corrupted", "backup_metadata", "era1_file", "segment_file"];

fn fuzz(args: &[String]) -> Result<()> {
    let seconds = number(args, "--seconds", 60)?;
    let sanitizer_flag = flag(args, "--sanitizer");
    let targets: Vec<&str> = match flag(args, "--target") {
        Some(t) if FUZZ_TARGETS.contains(&t) => vec![t],
        Some(t) => bail!("unknown fuzz target `{t}`; targets: {}", FUZZ_TARGETS.join(", ")),
        None => FUZZ_TARGETS.to_vec(),
    };
    let installed = Command::new("cargo").args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("cargo-fuzz is missing: installing it (once)");
        run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let fuzz_dir = workspace_root().join("fuzz");
    for target in targets {
        std::fs::create_dir_all(fuzz_dir.join("corpus").join(target))?;
        // RocksDB's C++ is not instrumented either way; without ASan on the Rust side the
        // RocksDB target builds faster and runs several times more inputs per second.
        let sanitizer = sanitizer_flag.unwrap_or(if target == "open_corrupted" { "none" } else { "address" });
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&fuzz_dir)
            // cargo-fuzz needs nightly flags; the stable toolchain accepts them this way.
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--sanitizer", sanitizer]);
        if target == "open_corrupted" {
            cmd.args(["--features", "rocksdb"]);
        }
        cmd.args([target, "--"]).arg(format!("-max_total_time={seconds}"));
        run(&mut cmd)?;
    }
    Ok(())
}
