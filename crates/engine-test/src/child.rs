//! Crash tests through a child process: this test binary runs one of its own `#[ignore]`d
//! tests as a child (the child half of the test), reads what it prints, and kills it with
//! SIGKILL at a moment the parent chooses.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

/// What a killed child printed.
#[derive(Debug, Clone, Default)]
pub struct Killed {
    /// Every line read from its standard output before the kill (libtest's `test NAME ... `
    /// banner taken off the line it starts).
    pub lines: Vec<String>,
    /// Whether it was still running when killed (`false`: it ended by itself first).
    pub was_running: bool,
}

/// Starts the `#[ignore]`d test `child` of the current test binary with the environment `env`,
/// its standard output piped.
fn spawn(child: &str, env: &[(&str, &OsStr)]) -> (Child, ChildStdout) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", child, "--ignored", "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut process = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn the child test");
    let stdout = process.stdout.take().expect("piped");
    (process, stdout)
}

/// libtest prints `test NAME ... ` before running the test, without a line break.
fn banner(child: &str) -> String {
    format!("test {child} ... ")
}

/// `line` without the banner it may start with.
fn unbanner(banner: &str, line: String) -> String {
    line.strip_prefix(banner).map(str::to_owned).unwrap_or(line)
}

/// Runs the test `child` of the current test binary (an `#[ignore]`d test, run with
/// `--ignored --exact`) with the environment `env`, reads its standard output line by line,
/// and SIGKILLs it once `kill_when` returns true for a line (after waiting `delay` more), or
/// when its output ends.
pub fn run_and_kill(
    child: &str,
    env: &[(&str, &OsStr)],
    delay: std::time::Duration,
    mut kill_when: impl FnMut(&str) -> bool,
) -> Killed {
    let (mut process, stdout) = spawn(child, env);
    let mut killed = Killed::default();
    let banner = banner(child);
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let line = unbanner(&banner, line);
        let stop = kill_when(&line);
        killed.lines.push(line);
        if stop {
            std::thread::sleep(delay);
            break;
        }
    }
    killed.was_running = process.try_wait().expect("child status").is_none();
    let _ = process.kill(); // SIGKILL
    let _ = process.wait();
    killed
}

/// Runs the test `child` like [`run_and_kill`], but chooses the moment by time: `wait` after
/// the child prints a line starting with `ready`, calls `cut` while the child still runs (a
/// power cut: from then on its I/O fails), SIGKILLs it, and reads everything it printed up to
/// its death (a line printed after `cut` is an acknowledgement the child got before it).
///
/// Panics if the child, still running, prints nothing ready within a minute. `was_running`
/// says whether it was still running at the cut (a fast child may finish first).
pub fn run_and_cut(
    child: &str,
    env: &[(&str, &OsStr)],
    ready: &str,
    wait: std::time::Duration,
    cut: impl FnOnce(),
) -> Killed {
    let (mut process, stdout) = spawn(child, env);
    let banner = banner(child);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let ready = ready.to_owned();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let line = unbanner(&banner, line);
            if line.starts_with(&ready) {
                let _ = ready_tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    let became_ready = match ready_rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(()) => true,
        // Its output ended without the ready line: the child is exiting (a fast child with
        // nothing left to do). Reap it, or it may still count as running for a moment.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            let _ = process.wait();
            false
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
    };
    if became_ready {
        std::thread::sleep(wait);
    }
    let was_running = process.try_wait().expect("child status").is_none();
    cut();
    let _ = process.kill(); // SIGKILL
    let _ = process.wait();
    let lines = reader.join().expect("the reader thread");
    assert!(became_ready || !was_running, "the child {child} never got ready; it printed: {lines:?}");
    Killed { lines, was_running }
}
