//! `nodestore migrate copy`: the whole node copied to another engine, then verified.

use std::marker::PhantomData;

use indicatif::{ProgressBar, ProgressStyle};
use node_storage::chain_store::evm::Evm;
use node_storage::{Backend, BackendVisitor, Config, copy_node};
use serde_json::json;

use crate::output::{json, table};

/// Copies from engine `S` (the configured one) to the engine `to` names.
pub(crate) struct CopyTo<S> {
    pub(crate) from: Config,
    pub(crate) to: Config,
    pub(crate) as_json: bool,
    pub(crate) source: PhantomData<S>,
}

impl<S: Backend> BackendVisitor for CopyTo<S> {
    type Output = anyhow::Result<()>;

    fn visit<D: Backend>(self) -> anyhow::Result<()> {
        let bar = if self.as_json { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
        bar.set_style(
            ProgressStyle::with_template("{spinner} copying {msg}: {pos} entries {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let report = copy_node::<S, D, Evm>(&self.from, &self.to, &mut |store, n| {
            bar.set_message(store.to_owned());
            bar.set_position(n);
        });
        bar.finish_and_clear();
        let report = report?;
        if self.as_json {
            let stores: Vec<_> = report
                .stores
                .iter()
                .map(|(store, tables)| {
                    json!({ "store": store, "tables": tables.iter().map(|t| json!({
                        "table": t.table, "keys": t.keys, "digest": t.digest })).collect::<Vec<_>>() })
                })
                .collect();
            json(&json!({ "from": S::KIND.to_string(), "to": D::KIND.to_string(),
                "to_path": self.to.data_dir.display().to_string(), "entries": report.entries, "stores": stores }));
        } else {
            let rows: Vec<Vec<String>> = report
                .stores
                .iter()
                .flat_map(|(store, tables)| {
                    tables.iter().map(move |t| {
                        vec![store.clone(), t.table.clone(), t.keys.to_string(), t.digest[..16].to_owned()]
                    })
                })
                .collect();
            table(&["store", "table", "keys", "digest (BLAKE3, first 16)"], &rows);
            println!(
                "copied {} entries from {} to {} at {}; every table verified entry by entry",
                report.entries,
                S::KIND,
                D::KIND,
                self.to.data_dir.display()
            );
        }
        Ok(())
    }
}
