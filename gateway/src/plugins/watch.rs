//! Watches the plugin directory and triggers rescans.
//!
//! `notify` events only wake the loop; what changed is always decided by a
//! full rescan of the directory ([`PluginRegistry::rescan`]), so missed,
//! duplicated or coalesced events cannot leave a stale adapter serving. A
//! slow periodic rescan covers filesystems without change events and a
//! plugin directory that is created after startup.
//!
//! A change that is known to be whole — a file renamed into the directory
//! (the atomic way to install one) or a writer closing a file it wrote —
//! is rescanned at once. Any other event (a file being created or written)
//! waits until the directory has been quiet for `reload_debounce`, or until
//! such a whole change arrives. A file caught half-written is refused and
//! the previous version keeps serving, so acting early never costs more
//! than a rescan.

use super::registry::PluginRegistry;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
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
    // Each event says whether it is a whole change (rescan at once).
    let (tx, mut rx) = mpsc::unbounded_channel::<bool>();
    let dir = registry.dir().to_path_buf();
    let mut watcher = match notify::recommended_watcher(
        move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                let _ = tx.send(is_whole(&ev.kind));
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
                let Some(whole) = ev else { break };
                if !whole {
                    // Debounce: wait until the directory has been quiet, or
                    // until a whole change arrives.
                    loop {
                        tokio::select! {
                            more = rx.recv() => match more {
                                None | Some(true) => break,
                                Some(false) => {}
                            },
                            _ = tokio::time::sleep(debounce) => break,
                        }
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

/// Whether an event marks a change that is whole: a rename into the
/// directory, or a writer closing a file it wrote.
fn is_whole(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange};

    #[test]
    fn renames_in_and_closed_writes_are_whole_changes() {
        assert!(is_whole(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(is_whole(&EventKind::Modify(ModifyKind::Name(
            RenameMode::Both
        ))));
        assert!(is_whole(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(!is_whole(&EventKind::Modify(ModifyKind::Name(
            RenameMode::From
        ))));
        assert!(!is_whole(&EventKind::Create(CreateKind::File)));
        assert!(!is_whole(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(!is_whole(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
    }
}
