//! Watches the plugin directory and triggers debounced rescans.
//!
//! `notify` events only wake the loop; what changed is always decided by a
//! full rescan of the directory ([`PluginRegistry::rescan`]), so missed,
//! duplicated or coalesced events cannot leave a stale adapter serving. A
//! slow periodic rescan covers filesystems without change events and a
//! plugin directory that is created after startup.

use super::registry::PluginRegistry;
use notify::{RecursiveMode, Watcher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Rescan at least this often, events or not.
pub const PERIODIC_RESCAN: Duration = Duration::from_secs(10);

/// Run the watcher until `shutdown` turns true.
pub async fn run(
    registry: Arc<PluginRegistry>,
    debounce: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let dir = registry.dir().to_path_buf();
    let mut watcher = match notify::recommended_watcher(
        move |res: notify::Result<notify::Event>| {
            if res.is_ok() {
                let _ = tx.send(());
            }
        },
    ) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot create a file watcher; falling back to periodic rescans");
            None
        }
    };
    let mut watching = false;
    loop {
        if !watching && let Some(w) = watcher.as_mut() {
            watching = w.watch(&dir, RecursiveMode::NonRecursive).is_ok();
            if watching {
                tracing::info!(dir = %dir.display(), "watching the plugin directory");
            }
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            ev = rx.recv() => {
                if ev.is_none() { break; }
                // Debounce: wait until the directory has been quiet.
                loop {
                    tokio::select! {
                        more = rx.recv() => if more.is_none() { break },
                        _ = tokio::time::sleep(debounce) => break,
                    }
                }
                registry.rescan().await;
            }
            _ = tokio::time::sleep(PERIODIC_RESCAN) => {
                registry.rescan().await;
                if watching && !dir.is_dir() {
                    watching = false;
                }
            }
        }
    }
}
