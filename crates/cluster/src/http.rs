//! Every worker's HTTP endpoint: `/metrics` (Prometheus text format),
//! `/healthz` (the process is alive) and `/readyz` (its broker and stores
//! are reachable, so it can do work).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hashscan_bus_amqp::AmqpBus;
use hashscan_fetch::Fetcher;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// Whether the worker can do work now.
pub type Readiness = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
struct Shared {
    registry: Arc<Registry>,
    ready: Readiness,
}

/// Starts the endpoint; it stops when `stop` turns true. Returns the bound
/// address (the configured port may be 0).
pub async fn serve(
    listen: SocketAddr,
    registry: Registry,
    ready: Readiness,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let shared = Shared { registry: Arc::new(registry), ready };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(shared);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "metrics endpoint failed");
        }
    });
    Ok((addr, task))
}

async fn metrics(State(s): State<Shared>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode metrics: {e}\n")).into_response(),
    }
}

async fn readyz(State(s): State<Shared>) -> impl IntoResponse {
    if (s.ready)() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: broker or store unreachable\n")
    }
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    let m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

/// The bus's counters: messages out and in, acks, requeues, redeliveries,
/// dead letters, reconnections, whether it is connected, and the depth of
/// the queue this worker consumes (its lag), refreshed by the worker.
#[derive(Clone)]
pub struct BusCollector(pub AmqpBus, pub Arc<QueueDepth>);

/// The last known depth of a worker's input queue (`None`: not known yet).
#[derive(Debug, Default)]
pub struct QueueDepth {
    /// The queue's name.
    pub queue: std::sync::OnceLock<String>,
    /// Messages waiting, or `u64::MAX` while unknown.
    pub depth: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for BusCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BusCollector")
    }
}

impl Collector for BusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.stats();
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        counter(&mut encoder, "hashscan_bus_published", "Messages published and confirmed", l(&s.published))?;
        counter(&mut encoder, "hashscan_bus_delivered", "Messages delivered to this worker", l(&s.delivered))?;
        counter(&mut encoder, "hashscan_bus_redelivered", "Deliveries that were redeliveries", l(&s.redelivered))?;
        counter(&mut encoder, "hashscan_bus_acked", "Messages acknowledged", l(&s.acked))?;
        counter(&mut encoder, "hashscan_bus_requeued", "Messages returned to their queue (nack)", l(&s.requeued))?;
        counter(
            &mut encoder,
            "hashscan_bus_dead_lettered",
            "Messages dead-lettered with a reason",
            l(&s.dead_lettered),
        )?;
        counter(&mut encoder, "hashscan_bus_connects", "Connections to RabbitMQ established", l(&s.connects))?;
        let g = ConstGauge::new(i64::from(self.0.is_connected()));
        g.encode(encoder.encode_descriptor(
            "hashscan_bus_connected",
            "1 while connected to RabbitMQ",
            None,
            g.metric_type(),
        )?)?;
        let depth = self.1.depth.load(Ordering::Relaxed);
        if let (Some(queue), true) = (self.1.queue.get(), depth != u64::MAX) {
            let g = ConstGauge::new(i64::try_from(depth).unwrap_or(i64::MAX));
            let mut family = encoder.encode_descriptor(
                "hashscan_queue_depth",
                "Messages waiting in the queue this worker consumes (its lag)",
                None,
                g.metric_type(),
            )?;
            g.encode(family.encode_family(&[("queue", queue.as_str())])?)?;
        }
        Ok(())
    }
}

/// The fetcher's counters: fetches by outcome, bytes hashed, busy time.
#[derive(Clone)]
pub struct FetchCollector(pub Arc<Fetcher>);

impl std::fmt::Debug for FetchCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FetchCollector")
    }
}

impl Collector for FetchCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.stats();
        let outcomes = s.by_outcome();
        {
            let mut family = encoder.encode_descriptor(
                "hashscan_fetches",
                "Fetches by outcome (page, image, redirect, robots, not_modified, throttled, or a failure reason)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (outcome, n) in outcomes {
                let c = ConstCounter::new(n);
                c.encode(family.encode_family(&[("outcome", outcome)])?)?;
            }
        }
        counter(&mut encoder, "hashscan_image_bytes", "Image bytes hashed", s.image_bytes.load(Ordering::Relaxed))?;
        let hashing = ConstCounter::new(s.hash_micros.load(Ordering::Relaxed) as f64 / 1e6);
        hashing.encode(encoder.encode_descriptor(
            "hashscan_hash_seconds",
            "Time spent hashing images: digests, decoding and PDQ",
            None,
            hashing.metric_type(),
        )?)?;
        let busy = s.busy_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let c = ConstCounter::new(busy);
        c.encode(encoder.encode_descriptor(
            "hashscan_fetch_busy_seconds",
            "Wall time spent in fetches (sum over parallel fetches)",
            None,
            c.metric_type(),
        )?)
    }
}
