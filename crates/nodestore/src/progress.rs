//! Progress on the terminal (hidden with `--json`): bars for long operations' phases, and
//! simple bars and spinners.

use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};

/// One bar per phase of a long operation (a backup's bytes, an archive's items), fed by the
/// facade's progress callbacks.
pub(crate) struct Bars {
    quiet: bool,
    template: &'static str,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Bars counting bytes (backups, restores, migrations' backups).
    pub(crate) fn bytes(quiet: bool) -> Arc<Self> {
        Self::new(quiet, "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    }

    /// Bars counting items (blocks, vertices, segments).
    pub(crate) fn items(quiet: bool) -> Arc<Self> {
        Self::new(quiet, "{msg:>16} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
    }

    fn new(quiet: bool, template: &'static str) -> Arc<Self> {
        Arc::new(Bars { quiet, template, bar: Mutex::new(None) })
    }

    /// Ends the current bar.
    pub(crate) fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            b.finish();
        }
    }

    fn start(&self, name: &str, total: u64) {
        let mut slot = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = slot.take() {
            b.finish();
        }
        if self.quiet {
            return;
        }
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(self.template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b.set_message(name.to_owned());
        *slot = Some(b);
    }

    fn add(&self, n: u64) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            b.inc(n);
        }
    }
}

impl node_storage::backups::Progress for Bars {
    fn phase(&self, name: &str, total: u64) {
        self.start(name, total);
    }

    fn advance(&self, n: u64) {
        self.add(n);
    }
}

impl node_storage::history_tier::Progress for Bars {
    fn phase(&self, name: &str, total: u64) {
        self.start(name, total);
    }

    fn advance(&self, n: u64) {
        self.add(n);
    }
}

/// A bar of `total` `unit`s named `what` (hidden when `quiet`).
pub(crate) fn bar(quiet: bool, total: u64, what: &str, unit: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(total);
    let template = format!("{{msg:>10}} [{{bar:40}}] {{pos}}/{{len}}{unit} {{per_sec}} eta {{eta}}");
    b.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "),
    );
    b.set_message(what.to_owned());
    b
}

/// A spinner with `template` (hidden when `quiet`).
pub(crate) fn spinner(quiet: bool, template: &str) -> ProgressBar {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()));
    bar
}
