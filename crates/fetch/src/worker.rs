//! The fetcher's loop over the bus.

use std::sync::Arc;

use hashscan_bus::{Bus, BusError, Message, Topic};

use crate::Fetcher;

/// Consumes fetch tasks with `concurrency` parallel loops until the topic
/// closes. Each task's matcher work and report are published before the
/// delivery is acknowledged, so a crash redelivers instead of losing it; a
/// broker outage costs the task in hand a second fetch, never the loop.
pub async fn run_fetcher(bus: Arc<dyn Bus>, fetcher: Arc<Fetcher>, concurrency: usize) -> Result<(), BusError> {
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let mut consumer = bus.consume(Topic::Fetch).await?;
        let (bus, fetcher) = (bus.clone(), fetcher.clone());
        loops.spawn(async move {
            while let Some(delivery) = consumer.next().await {
                let task = match &delivery.message {
                    Message::Fetch(t) => t.clone(),
                    other => {
                        let reason = format!("fetch queue got a {:?} message", other.topic());
                        delivery.reject(&reason).await?;
                        continue;
                    }
                };
                let fetched = fetcher.fetch(task).await;
                let sent = async {
                    for w in fetched.work {
                        bus.publish(Message::Match(w)).await?;
                    }
                    bus.publish(Message::Report(fetched.report)).await?;
                    delivery.ack().await
                };
                // The broker went away: the task was not acked, so it is
                // delivered again once the broker is back; keep consuming.
                if let Err(e) = sent.await {
                    tracing::warn!(error = %e, "could not hand a fetch's results over; the task will come again");
                }
            }
            Ok::<(), BusError>(())
        });
    }
    while let Some(r) = loops.join_next().await {
        r.map_err(|e| BusError::Broker(format!("fetch loop panicked: {e}")))??;
    }
    Ok(())
}
