//! Reloading the reference set without stopping: on SIGHUP, or when the
//! reference file changes, the new set is loaded and checked off to the
//! side, put in force between two messages, and the images seen before are
//! matched against what changed.
//!
//! Decision: poll the file's modification time rather than use inotify: one
//! `stat` every few seconds costs nothing, works on every filesystem
//! (including network mounts where lists are often dropped), and a list
//! that fails to load leaves the old set in force with an error in the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hashscan_refset::{ReferenceSet, SetSpec};
use hashscan_store::{CaseStore, SightingStore};
use tokio::sync::watch;

use crate::{retro, Matcher};

/// Where the reference comes from and how often to look at it.
#[derive(Debug, Clone)]
pub struct ReloadConfig {
    /// The reference (index, list or `.toml` definition).
    pub path: PathBuf,
    /// How often the files' modification times are checked.
    pub interval: Duration,
    /// Where the set last applied to the store is kept, so the next change
    /// can be diffed against it (readable by the owner only).
    pub applied_copy: Option<PathBuf>,
}

/// The newest modification time of the reference and, for a definition,
/// of its lists.
fn stamp(path: &Path) -> Option<SystemTime> {
    let mut newest = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    if path.extension().is_some_and(|e| e == "toml") {
        if let Ok(spec) = SetSpec::from_toml_file(path) {
            for l in spec.lists {
                if let Ok(t) = std::fs::metadata(&l.file).and_then(|m| m.modified()) {
                    newest = newest.max(t);
                }
            }
        }
    }
    Some(newest)
}

/// Loads the reference off the async threads.
pub async fn load(path: PathBuf) -> Result<ReferenceSet, String> {
    tokio::task::spawn_blocking(move || match ReferenceSet::load(&path) {
        Ok((set, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            Ok(set)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Puts `new` in force, re-matches the store against what changed, and
/// keeps a copy of `new` for the next diff. Returns the retro-matching report.
pub async fn apply<S>(
    matcher: &Matcher,
    store: &S,
    new: Arc<ReferenceSet>,
    applied_copy: Option<&Path>,
) -> Result<retro::RetroReport, crate::MatchError>
where
    S: SightingStore + CaseStore + ?Sized,
{
    let old = matcher.replace_reference(new.clone());
    let previous = match applied_copy.filter(|p| p.exists()) {
        Some(p) => ReferenceSet::open_index(p).ok().map(Arc::new),
        None => None,
    };
    let base = previous.or(Some(old));
    let report = retro::rematch(store, base.as_deref(), &new, &matcher.rescorer()).await?;
    if let Some(p) = applied_copy {
        new.write_index(p).map_err(|e| crate::MatchError::Reference(e.to_string()))?;
    }
    Ok(report)
}

/// Watches the reference until `stop` turns true: on SIGHUP or a change of
/// the files, loads it and, when its version differs, [`apply`]s it.
pub async fn watch<S>(matcher: Arc<Matcher>, store: Arc<S>, config: ReloadConfig, mut stop: watch::Receiver<bool>)
where
    S: SightingStore + CaseStore + ?Sized + 'static,
{
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut last = stamp(&config.path);
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        let forced = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = hangup => true,
            () = tokio::time::sleep(config.interval) => false,
        };
        let now = stamp(&config.path);
        if !forced && now == last {
            continue;
        }
        last = now;
        let new = match load(config.path.clone()).await {
            Ok(set) => Arc::new(set),
            Err(e) => {
                tracing::error!(error = %e, "new reference set not loaded; the current one stays in force");
                continue;
            }
        };
        if new.version() == matcher.reference().version() {
            continue;
        }
        match apply(&matcher, &*store, new, config.applied_copy.as_deref()).await {
            Ok(r) => tracing::info!(version = %r.to_version, cases = r.cases, "reference set reloaded"),
            Err(e) => tracing::error!(error = %e, "reference set reloaded, retro-matching failed"),
        }
    }
}
