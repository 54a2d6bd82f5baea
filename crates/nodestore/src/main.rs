//! `nodestore`: run, inspect and maintain a node-storage database.
//!
//! Every command takes `--config` (TOML), `--data-dir` (overrides the config) and `--json`;
//! errors are one line on stderr with a non-zero exit code. The command line is read in
//! [`cli`], routed in [`route`] (one decision: admin endpoint, replica, read-only, or the stores
//! opened here), and each result printed by one renderer.

mod archive;
mod backup;
mod cli;
mod demo;
mod era1;
mod migrate;
mod output;
mod progress;
mod query;
mod recover;
mod render;
mod route;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use node_storage::{Capability, ModelKind, OpenError, StorageError};

use crate::cli::{Cli, Cmd};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let migrate_cmd = cli.migrate_command();
    let filter = tracing_subscriber::EnvFilter::try_from_env("NODESTORE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if matches!(cli.command, Cmd::Serve { .. }) { "info" } else { "warn" })
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let result = (|| {
        let config = cli.config()?;
        let plan = route::Plan::of(cli.command)?;
        route::run(plan, config, cli.replica, cli.json)
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = one_line(&e);
            if needs_migration(&e) {
                msg.push_str(&format!(
                    "; to upgrade: stop the node, run `{migrate_cmd} --dry-run`, then `{migrate_cmd}` (it takes a \
                     backup first; docs/OPERATIONS.md, \"Schema migrations\")"
                ));
            }
            if let Some(hint) = hint(&e) {
                msg.push_str("; ");
                msg.push_str(hint);
            }
            eprintln!("nodestore: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// The storage error behind `e`, if there is one.
fn storage_error(e: &anyhow::Error) -> Option<&StorageError> {
    e.chain().find_map(|cause| cause.downcast_ref::<StorageError>())
}

/// Whether `e` is a store refusing to open because its schema is older than this build's (the
/// error names `nodestore migrate`; the CLI adds the exact commands for this data directory).
fn needs_migration(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<StorageError>(),
            Some(StorageError::Open { source: OpenError::OlderSchema { .. }, .. })
        ) || matches!(cause.downcast_ref::<OpenError>(), Some(OpenError::OlderSchema { .. }))
    })
}

/// What to do about a typed refusal, in the command line's words.
fn hint(e: &anyhow::Error) -> Option<&'static str> {
    match storage_error(e)? {
        StorageError::WrongModel { needs: ModelKind::Ethereum, .. } => {
            Some("pass --model ethereum (or set `model = \"ethereum\"`)")
        }
        StorageError::Incapable { needs: Capability::BulkIngest, .. } => {
            Some("import into a rocksdb or redb node, then `nodestore migrate copy` if needed")
        }
        StorageError::EmptyRange { .. } => Some("--from must not be after --to"),
        _ => None,
    }
}

/// The error and its causes on one line, each cause once: many errors already include their
/// cause's text in their own message, and `{:#}` would repeat it.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if msg.contains(text.as_str()) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::{needs_migration, one_line};

    #[test]
    fn older_schemas_are_recognised_by_kind() {
        use node_storage::OpenError;
        let older = OpenError::OlderSchema { schema: "dag", found: 1, expected: 2 };
        let e =
            anyhow::Error::new(node_storage::StorageError::Open { store: node_storage::StoreId::Dag, source: older })
                .context("opening the node");
        assert!(needs_migration(&e));
        let newer = OpenError::NewerSchema { schema: "dag", found: 3, supported: 2 };
        let e =
            anyhow::Error::new(node_storage::StorageError::Open { store: node_storage::StoreId::Dag, source: newer });
        assert!(!needs_migration(&e));
        assert!(!needs_migration(&anyhow::anyhow!("please run `nodestore migrate`")), "text alone is not the kind");
    }

    #[test]
    fn causes_appear_once() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied (os error 13)");
        let open = node_storage::OpenError::Io { action: "reading", path: "/x/CURRENT".into(), source: io };
        let e =
            anyhow::Error::new(node_storage::StorageError::Open { store: node_storage::StoreId::Chain, source: open })
                .context("opening the store");
        let line = one_line(&e);
        assert_eq!(line.matches("permission denied (os error 13)").count(), 1, "{line}");
        assert_eq!(line.matches("/x/CURRENT").count(), 1, "{line}");
        assert!(line.starts_with("opening the store: opening the chain store: reading /x/CURRENT"), "{line}");
    }
}
