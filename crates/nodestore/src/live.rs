//! Commands that go through the running node's admin endpoint when one is listening (the node
//! keeps running; its stores stay open in its process), and open the stores here otherwise.

use node_storage::Config;
use node_storage::admin::AdminClient;

use crate::{BackupCmd, Cmd, DeadLetterCmd};

/// Whether `cmd` can run through the admin endpoint.
pub(crate) fn routable(cmd: &Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Stats
            | Cmd::Check { .. }
            | Cmd::Compact
            | Cmd::Prune { .. }
            | Cmd::DeadLetter { .. }
            | Cmd::Backup { what: BackupCmd::Create { .. } | BackupCmd::Schedule, .. }
    )
}

/// Runs `cmd` through the running node's admin endpoint: `Ok(false)` when no node listens on
/// this data directory's socket (the caller opens the stores itself).
pub(crate) fn try_run(cmd: &Cmd, config: &Config, as_json: bool) -> anyhow::Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let Some(client) = AdminClient::connect(config).await? else { return Ok(false) };
        tracing::info!(socket = %client.path().display(), "running through the node's admin endpoint");
        run(client, cmd, config, as_json).await?;
        Ok(true)
    })
}

async fn run(c: AdminClient, cmd: &Cmd, config: &Config, as_json: bool) -> anyhow::Result<()> {
    use crate::render;
    match cmd {
        Cmd::Stats => render::stats(&c.stats().await?, as_json),
        Cmd::Check { state } => render::check(&c.check(*state).await?, as_json),
        Cmd::Compact => {
            render::compact(c.compact().await?, as_json);
            Ok(())
        }
        Cmd::Prune { chain_keep, dag_below } => {
            crate::commands::prune_target(*chain_keep, *dag_below)?;
            render::prune(&c.prune(*chain_keep, *dag_below).await?, as_json);
            Ok(())
        }
        Cmd::DeadLetter { what: DeadLetterCmd::List } => {
            // Page by page, one connection each (the first is the one already open).
            let limit = node_storage::admin::MAX_DEAD_LETTERS_PER_PAGE as u32;
            let mut page = c.dead_letter_page(None, limit).await?;
            let mut letters = std::mem::take(&mut page.letters);
            while let Some(after) = page.next_after {
                let Some(next) = AdminClient::connect(config).await? else {
                    anyhow::bail!("the node stopped while its dead letters were listed");
                };
                page = next.dead_letter_page(Some(after), limit).await?;
                letters.append(&mut page.letters);
            }
            render::dead_letters(&letters, as_json);
            Ok(())
        }
        Cmd::DeadLetter { what: DeadLetterCmd::Replay { ids } } => {
            let ids = if ids.is_empty() { None } else { Some(ids.clone()) };
            render::replayed(&c.replay_dead_letters(ids).await?, as_json)
        }
        Cmd::Backup { what: BackupCmd::Create { kind }, .. } => {
            let bars = crate::backup::Bars::new(as_json);
            let r = c.backup(crate::backup::kind(*kind), bars.clone()).await;
            bars.finish();
            let r = r
                .map_err(anyhow::Error::new)
                .map_err(|e| e.context("backup failed (nothing was listed as complete)"))?;
            render::backup_created(&r, as_json);
            Ok(())
        }
        Cmd::Backup { what: BackupCmd::Schedule, .. } => {
            let status = c.schedule_status().await?;
            render::schedule(Some(&status), &config.backup, as_json);
            Ok(())
        }
        _ => unreachable!("not routable through the admin endpoint"),
    }
}
