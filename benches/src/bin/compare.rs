//! The backend comparison: every workload on RocksDB, redb and sled in one invocation, so the
//! ratios compare like with like. Writes the report section of `docs/BENCHMARKS.md` and one SVG
//! chart per workload under `docs/bench/`.
//!
//! `cargo xtask bench [--quick] [--no-write] [--only-dag | --only-chain] [--backend rocksdb|redb|sled]`
//! (the last two are for investigation and never write the report)

use std::path::PathBuf;
use std::time::Instant;

use node_storage_benches::backends::{Redb, Rocks, Sled, TestEngine};
use node_storage_benches::report::{markdown, splice};
use node_storage_benches::workloads::{Footprint, Only, Row, Sizes, run};

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map_or("?".into(), |kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem} RAM, Linux {}", kernel.trim())
}

fn collect((r, f): (Vec<Row>, Footprint), rows: &mut Vec<Row>, footprints: &mut Vec<Footprint>) {
    rows.extend(r);
    footprints.push(f);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = if args.iter().any(|a| a == "--only-dag") {
        Only::Dag
    } else if args.iter().any(|a| a == "--only-chain") {
        Only::Chain
    } else {
        Only::All
    };
    let only_backend = args.iter().position(|a| a == "--backend").and_then(|i| args.get(i + 1)).cloned();
    // Partial runs are for investigation; they never overwrite the recorded report.
    let write = !args.iter().any(|a| a == "--no-write") && only == Only::All && only_backend.is_none();
    let sizes = if quick { Sizes::QUICK } else { Sizes::FULL };
    let root = tempfile::Builder::new().prefix("bench-").tempdir_in(std::env::temp_dir()).unwrap();
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut footprints = Vec::new();
    let wanted = |name: &str| only_backend.as_deref().is_none_or(|b| b == name);
    if wanted(Rocks::NAME) {
        collect(run::<Rocks>(root.path(), sizes, only), &mut rows, &mut footprints);
    }
    if wanted(Redb::NAME) {
        collect(run::<Redb>(root.path(), sizes, only), &mut rows, &mut footprints);
    }
    if wanted(Sled::NAME) {
        collect(run::<Sled>(root.path(), sizes, only), &mut rows, &mut footprints);
    }
    let elapsed = started.elapsed();

    // Read at run time: the build cache is shared between checkouts.
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    let docs = manifest_dir.join("../docs");
    let charts = if write { docs.join("bench") } else { root.path().join("charts") };
    std::fs::create_dir_all(&charts).unwrap();
    let body = markdown(&rows, &footprints, &charts).unwrap();
    let command = if quick { "cargo xtask bench --quick" } else { "cargo xtask bench" };
    let header = format!(
        "Measured {} on {}. Command: `{command}` ({:.0} s in all). Each backend runs with its default \
         configuration in its own directory under the system temp dir; sled is included for comparison only.\n\n",
        today(),
        machine(),
        elapsed.as_secs_f64()
    );
    let section = format!("{header}{body}");
    println!("{section}");
    if write {
        let path = docs.join("BENCHMARKS.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
        std::fs::write(&path, splice(&doc, "backend-comparison", &section)).unwrap();
        eprintln!("wrote {} and {}", path.display(), charts.display());
    }
}

/// Today's date (UTC), from the system clock.
fn today() -> String {
    let days =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
