//! Progress of a running scan: a bar on a terminal, log lines otherwise.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hashscan_embedded::Monitor;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::oneshot;

pub struct Handle {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn line(m: &Monitor, started: Instant) -> String {
    let p = &m.progress;
    let pages = p.pages.load(Ordering::Relaxed);
    let images = p.images.load(Ordering::Relaxed) + p.data_images.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64().max(0.001);
    format!(
        "pages {pages}  images {images}  hits {}  errors {}  queued {}  in flight {}  {:.1} req/s",
        m.hits(),
        p.failed.load(Ordering::Relaxed),
        p.queued.load(Ordering::Relaxed),
        p.in_flight.load(Ordering::Relaxed),
        (pages
            + p.images.load(Ordering::Relaxed)
            + p.redirects.load(Ordering::Relaxed)
            + p.failed.load(Ordering::Relaxed)) as f64
            / secs
    )
}

/// Starts reporting progress until [`Handle::finish`].
pub fn start(monitor: Monitor) -> Handle {
    let (stop, mut stopped) = oneshot::channel();
    let started = Instant::now();
    let task = tokio::spawn(async move {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            loop {
                bar.set_message(line(&monitor, started));
                bar.tick();
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            bar.finish_and_clear();
        } else {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {
                        eprintln!("progress: {}", line(&monitor, started));
                    }
                }
            }
        }
    });
    Handle { stop, task }
}
