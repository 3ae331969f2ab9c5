//! The three worker roles as long-running processes: connect (riding out
//! outages), serve `/metrics` and health, work until told to stop, then
//! stop consuming, finish what is in hand and leave.

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hashscan_bus::{Bus, BusError, MatchWork, Topic};
use hashscan_bus_amqp::{AmqpBus, AmqpConfig};
use hashscan_fetch::{FetchConfig, Fetcher, GuardedResolver};
use hashscan_frontier_redis::RedisFrontierStore;
use hashscan_matcher::reload::{self, ReloadConfig};
use hashscan_matcher::{Matcher, WorkDone};
use hashscan_netguard::{parse_net, NetPolicy, Overrides};
use hashscan_refset::ReferenceSet;
use hashscan_scheduler::{AddressBook, Progress, Scheduler, SchedulerConfig};
use hashscan_store::{ScanRecord, SqliteStore, Store};
use hashscan_store_postgres::PgStore;
use prometheus_client::registry::Registry as Metrics;
use redis::AsyncCommands;
use tokio::sync::watch;

use crate::config::{StoreSection, WorkerConfig};
use crate::http::{self, BusCollector, FetchCollector, QueueDepth};
use crate::registry::{Recurring, Registry, RegistryError, ScanSpec};

/// One role of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs scans: frontier, politeness, robots.txt.
    Scheduler,
    /// Downloads and hashes.
    Fetcher,
    /// Matches hashes, records sightings and cases.
    Matcher,
}

impl Role {
    /// Its name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scheduler => "scheduler",
            Self::Fetcher => "fetcher",
            Self::Matcher => "matcher",
        }
    }
}

/// A worker could not start or stopped on an error it cannot ride out.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The configuration is unusable; the message names the key.
    #[error("configuration: {0}")]
    Config(String),
    /// The bus failed.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    /// The results store failed.
    #[error("store: {0}")]
    Store(String),
    /// The scan registry failed.
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    /// The metrics endpoint could not bind.
    #[error("metrics endpoint: {0}")]
    Http(#[from] std::io::Error),
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// How long in-hand work may take after a stop request before the worker
/// leaves anyway (the broker redelivers what is unacked).
const DRAIN: Duration = Duration::from_secs(8);

/// Builds the fetch configuration of this deployment.
pub fn fetch_config(config: &WorkerConfig) -> Result<FetchConfig, WorkerError> {
    let f = &config.fetcher;
    let allow = f
        .allow_net
        .iter()
        .map(|s| parse_net(s).map_err(|e| WorkerError::Config(format!("fetcher.allow_net: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let overrides = Overrides::parse(&f.resolve).map_err(|e| WorkerError::Config(format!("fetcher.resolve: {e}")))?;
    let secs = |key: &str, v: f64| {
        if v > 0.0 && v.is_finite() && v < 86_400.0 {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(WorkerError::Config(format!(
                "fetcher.{key}: must be a positive number of seconds below a day, got {v}"
            )))
        }
    };
    let mut fc = FetchConfig {
        policy: NetPolicy::with_allowed(allow),
        overrides,
        connect_timeout: secs("connect_timeout_secs", f.connect_timeout_secs)?,
        first_byte_timeout: secs("first_byte_timeout_secs", f.first_byte_timeout_secs)?,
        total_timeout: secs("fetch_timeout_secs", f.fetch_timeout_secs)?,
        ..FetchConfig::default()
    };
    if let Some(ua) = &f.user_agent {
        fc.user_agent = ua.clone();
    }
    Ok(fc)
}

/// Politeness keyed by the address the fetchers will connect to.
struct ResolverBook(GuardedResolver);

#[async_trait::async_trait]
impl AddressBook for ResolverBook {
    async fn lookup(&self, host: &str) -> Option<IpAddr> {
        self.0.first_address(host).await
    }
}

/// Connects to RabbitMQ, retrying with back-off until it answers or `stop`.
async fn connect_bus(config: &WorkerConfig, stop: &mut watch::Receiver<bool>) -> Option<AmqpBus> {
    let amqp = AmqpConfig {
        url: config.amqp.url.clone(),
        prefix: config.amqp.prefix.clone(),
        prefetch: config.amqp.prefetch,
        delivery_limit: config.amqp.delivery_limit,
        ..AmqpConfig::default()
    };
    let mut wait = Duration::from_millis(200);
    loop {
        match AmqpBus::connect(amqp.clone()).await {
            Ok(b) => return Some(b),
            Err(e) => tracing::warn!(error = %e, "RabbitMQ not reachable; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return None,
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// Runs `role` until `shutdown` resolves; `on_listen` learns the metrics address.
pub async fn run(
    role: Role,
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<(), WorkerError> {
    let (stop_tx, mut stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let bus_cell: Arc<OnceLock<AmqpBus>> = Arc::default();
    let mut metrics = Metrics::default();
    // Ready: connected to RabbitMQ, and (for the roles that use it) Redis
    // answered its last ping.
    let redis_ok = Arc::new(std::sync::atomic::AtomicBool::new(role == Role::Fetcher));
    if role != Role::Fetcher {
        let (url, ok) = (config.redis.url.clone(), redis_ok.clone());
        tokio::spawn(watch_redis(url, ok));
    }
    let ready: http::Readiness = {
        let (cell, redis_ok) = (bus_cell.clone(), redis_ok.clone());
        Arc::new(move || {
            cell.get().is_some_and(|b| b.is_connected()) && redis_ok.load(std::sync::atomic::Ordering::Relaxed)
        })
    };
    // Role-specific collectors are registered before the endpoint starts.
    let fetcher = if role == Role::Fetcher { Some(Arc::new(build_fetcher(&config)?)) } else { None };
    if let Some(f) = &fetcher {
        metrics.register_collector(Box::new(FetchCollector(f.clone())));
    }
    let depth = Arc::new(QueueDepth { depth: u64::MAX.into(), ..QueueDepth::default() });
    metrics.register_collector(Box::new(LazyBus(bus_cell.clone(), depth.clone())));
    let (addr, http_task) = http::serve(config.http.listen, metrics, ready, stop.clone()).await?;
    tracing::info!(role = role.name(), %addr, "metrics and health endpoint up");
    on_listen(addr);

    let Some(bus) = connect_bus(&config, &mut stop).await else {
        let _ = http_task.await;
        return Ok(());
    };
    let _ = bus_cell.set(bus.clone());
    tracing::info!(role = role.name(), "worker started");
    // Queue lag for /metrics: the depth of the queue this role consumes.
    let input = match role {
        Role::Scheduler => Topic::Report,
        Role::Fetcher => Topic::Fetch,
        Role::Matcher => Topic::Match,
    };
    let _ = depth.queue.set(bus.config().queue(input));
    let lag = {
        let (bus, depth) = (bus.clone(), depth.clone());
        tokio::spawn(async move {
            loop {
                match bus.depth(input).await {
                    Ok(n) => {
                        tracing::debug!(queue_depth = n, "queue depth");
                        depth.depth.store(u64::from(n), std::sync::atomic::Ordering::Relaxed)
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read the queue depth"),
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    };
    let shared: Arc<dyn Bus> = Arc::new(bus.clone());
    let work = {
        let (config, stop) = (config.clone(), stop.clone());
        tokio::spawn(async move {
            match role {
                Role::Fetcher => match fetcher {
                    Some(f) => {
                        hashscan_fetch::run_fetcher(shared, f, config.fetcher.concurrency).await.map_err(Into::into)
                    }
                    None => Ok(()),
                },
                Role::Matcher => run_matcher(shared, &config, stop).await,
                Role::Scheduler => run_scheduler(shared, &config, stop).await,
            }
        })
    };
    let mut work = work;
    let result = tokio::select! {
        r = &mut work => r,
        _ = stop.wait_for(|s| *s) => {
            tracing::info!(role = role.name(), "stopping: no new work; finishing what is in hand");
            bus.stop_consuming();
            match tokio::time::timeout(DRAIN, &mut work).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!("in-hand work did not finish in time; the broker will redeliver it");
                    work.abort();
                    Ok(Ok(()))
                }
            }
        }
    };
    lag.abort();
    bus.close().await;
    let _ = http_task.await;
    match result {
        Ok(r) => r,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(WorkerError::Bus(BusError::Broker(format!("{} loop panicked: {e}", role.name())))),
    }
}

/// Pings Redis every 2 s for readiness, for the life of the process.
async fn watch_redis(url: String, ok: Arc<std::sync::atomic::AtomicBool>) {
    let mut con = None;
    loop {
        if con.is_none() {
            if let Ok(client) = redis::Client::open(url.as_str()) {
                con = redis::aio::ConnectionManager::new(client).await.ok();
            }
        }
        let alive = match con.as_mut() {
            Some(c) => redis::cmd("PING").query_async::<String>(c).await.is_ok(),
            None => false,
        };
        if !alive {
            tracing::warn!("Redis is not answering; not ready");
        }
        ok.store(alive, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn build_fetcher(config: &WorkerConfig) -> Result<Fetcher, WorkerError> {
    Fetcher::new(fetch_config(config)?).map_err(|e| WorkerError::Config(format!("fetcher: {e}")))
}

/// Bus metrics once the bus exists.
struct LazyBus(Arc<OnceLock<AmqpBus>>, Arc<QueueDepth>);

impl std::fmt::Debug for LazyBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyBus")
    }
}

impl prometheus_client::collector::Collector for LazyBus {
    fn encode(&self, encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        match self.0.get() {
            Some(b) => {
                prometheus_client::collector::Collector::encode(&BusCollector(b.clone(), self.1.clone()), encoder)
            }
            None => Ok(()),
        }
    }
}

/// The results store a worker records into: the PostgreSQL server of
/// `store.url` when set, else the SQLite file in `store.data_dir`. Public
/// so that `hashscan serve` and `hashscan user` open the same store the
/// same way.
pub async fn open_results_store(section: &StoreSection) -> Result<Arc<dyn Store>, WorkerError> {
    if let Some(url) = section.url.as_deref().filter(|u| !u.trim().is_empty()) {
        // The URL may carry a password: errors name the host, never the URL.
        let store =
            PgStore::connect(url).await.map_err(|e| WorkerError::Store(format!("PostgreSQL (store.url): {e}")))?;
        return Ok(Arc::new(store));
    }
    std::fs::create_dir_all(&section.data_dir)
        .map_err(|e| WorkerError::Store(format!("cannot create {}: {e}", section.data_dir.display())))?;
    let db = section.data_dir.join("hashscan.db");
    let store = SqliteStore::open(&db).map_err(|e| WorkerError::Store(format!("{}: {e}", db.display())))?;
    Ok(Arc::new(store))
}

/// Counts recorded matcher work per scan in Redis, so the scheduler can
/// tell when a scan's matching is complete. Work is counted by its logical
/// identity (not its timestamps) in a set, so a message done twice — or
/// published twice by a fetcher that died between its outputs and its ack —
/// counts once.
struct MatchedCounter {
    con: redis::aio::ConnectionManager,
    prefix: String,
}

#[async_trait::async_trait]
impl WorkDone for MatchedCounter {
    async fn done(&self, work: &MatchWork) -> Result<(), String> {
        let (scan, identity) = match work {
            MatchWork::PageImages { scan, page_url, images, .. } => {
                (scan, format!("edges\n{page_url}\n{}", images.join("\n")))
            }
            MatchWork::ImageHashed { scan, image_id, page_url, digests, .. } => (
                scan,
                format!(
                    "image\n{image_id}\n{}\n{}",
                    page_url.as_ref().map(|u| u.as_str()).unwrap_or(""),
                    digests.hex(hashscan_hash::CryptoAlgo::Blake3)
                ),
            ),
        };
        let id = blake3::hash(identity.as_bytes()).to_hex()[..32].to_string();
        let mut con = self.con.clone();
        con.sadd::<_, _, ()>(matched_key(&self.prefix, scan), id).await.map_err(|e| format!("redis: {e}"))
    }
}

fn matched_key(prefix: &str, scan: &str) -> String {
    format!("{prefix}:registry:matched:{scan}")
}

async fn run_matcher(bus: Arc<dyn Bus>, config: &WorkerConfig, stop: watch::Receiver<bool>) -> Result<(), WorkerError> {
    let path =
        config.matcher.reference.clone().ok_or_else(|| {
            WorkerError::Config("matcher.reference: not set (a list, set definition or index)".into())
        })?;
    let (set, warnings) =
        ReferenceSet::load(&path).map_err(|e| WorkerError::Config(format!("matcher.reference: {e}")))?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let store = open_results_store(&config.store).await?;
    let matcher = Arc::new(Matcher::from_parts(
        Arc::new(set),
        store.clone(),
        store.clone(),
        store.clone(),
        config.matcher.threshold,
    ));
    let watch_config = ReloadConfig { path, interval: Duration::from_secs(5), applied_copy: None };
    let mut stop = stop;
    let Some(con) = redis_connection(&config.redis.url, &mut stop).await? else { return Ok(()) };
    let watcher = tokio::spawn(reload::watch(matcher.clone(), store, watch_config, stop));
    let observer = Arc::new(MatchedCounter { con, prefix: config.redis.prefix.clone() });
    let result = hashscan_matcher::run_matcher_observed(bus, matcher, config.matcher.concurrency, Some(observer)).await;
    watcher.abort();
    Ok(result?)
}

async fn run_scheduler(
    bus: Arc<dyn Bus>,
    config: &WorkerConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let mut pause = Duration::from_millis(500);
    let registry = loop {
        let attempt = tokio::select! {
            r = Registry::connect(&config.redis.url, &config.redis.prefix) => r,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        match attempt {
            Ok(r) => break r,
            Err(e) => {
                tracing::warn!(error = %e, "Redis not reachable; retrying");
                if !wait(&mut stop, &mut pause).await {
                    return Ok(());
                }
            }
        }
    };
    while !*stop.borrow() {
        let spec = tokio::select! {
            s = registry.take(2.0) => s,
            _ = stop.wait_for(|s| *s) => break,
        };
        let spec = match spec {
            Ok(Some(spec)) => spec,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the scan registry; retrying");
                if !wait(&mut stop, &mut pause).await {
                    break;
                }
                continue;
            }
        };
        tracing::info!(scan = %spec.id, "running scan");
        let id = spec.id.clone();
        let run = run_scan(bus.clone(), config, &registry, spec);
        let outcome = tokio::select! {
            r = run => r,
            // Stopping mid-scan: the scan stays on the running list; its
            // frontier is in Redis and its tasks and reports in RabbitMQ.
            _ = stop.wait_for(|s| *s) => break,
        };
        match outcome {
            Ok(()) => pause = Duration::from_millis(500),
            // A scan that cannot run as configured fails for good.
            Err(e @ WorkerError::Config(_)) => {
                tracing::error!(scan = %id, error = %e, "scan failed");
                let summary = serde_json::json!({ "error": e.to_string() }).to_string();
                if let Err(e) = registry.finish(&id, "failed", &summary).await {
                    tracing::warn!(error = %e, "cannot record the failure");
                }
            }
            // Redis, RabbitMQ or the store went away: the scan stays on the
            // running list and is resumed from its saved state.
            Err(e) => {
                tracing::warn!(scan = %id, error = %e, "scan interrupted; resuming it shortly");
                if !wait(&mut stop, &mut pause).await {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// A Redis connection, retried with back-off while Redis is away; `None`
/// when told to stop first. A malformed URL is a configuration error.
async fn redis_connection(
    url: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<redis::aio::ConnectionManager>, WorkerError> {
    let client = redis::Client::open(url).map_err(|e| WorkerError::Config(format!("redis.url: {e}")))?;
    let mut pause = Duration::from_millis(500);
    loop {
        let attempt = tokio::select! {
            r = redis::aio::ConnectionManager::new(client.clone()) => r,
            _ = stop.wait_for(|s| *s) => return Ok(None),
        };
        match attempt {
            Ok(con) => return Ok(Some(con)),
            Err(e) => tracing::warn!(error = %e, "Redis not reachable; retrying"),
        }
        if !wait(stop, &mut pause).await {
            return Ok(None);
        }
    }
}

/// Sleeps `pause` (doubling it, up to 30 s) unless told to stop; false when stopping.
async fn wait(stop: &mut watch::Receiver<bool>, pause: &mut Duration) -> bool {
    let d = *pause;
    *pause = (*pause * 2).min(Duration::from_secs(30));
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

async fn run_scan(
    bus: Arc<dyn Bus>,
    config: &WorkerConfig,
    registry: &Registry,
    spec: ScanSpec,
) -> Result<(), WorkerError> {
    let started = Instant::now();
    let started_ms = now_ms();
    let store = open_results_store(&config.store).await?;
    let version = match &config.matcher.reference {
        Some(p) => ReferenceSet::load(p).map(|(s, _)| s.version().to_string()).unwrap_or_default(),
        None => String::new(),
    };
    let spec_json = serde_json::to_value(&spec).unwrap_or_default();
    let mut record = spec_json.clone();
    if let Some(o) = record.as_object_mut() {
        o.insert("ignore_robots".into(), spec.plan.crawl.ignore_robots.into());
    }
    store
        .begin_scan(ScanRecord {
            id: spec.id.clone(),
            started_at_ms: now_ms(),
            config_json: record.to_string(),
            reference_version: version,
        })
        .await
        .map_err(|e| WorkerError::Store(e.to_string()))?;
    registry.update(&spec.id, &[("status", "running".into()), ("started_at_ms", now_ms().to_string())]).await?;
    let frontier_store = RedisFrontierStore::connect(&config.redis.url, &config.redis.prefix)
        .await
        .map_err(|e| WorkerError::Store(e.to_string()))?;
    let frontier = spec.plan.frontier(&spec.id, frontier_store);
    let fetch = fetch_config(config)?;
    let book = ResolverBook(GuardedResolver::new(fetch.policy.clone(), fetch.overrides.clone()));
    let progress = Arc::new(Progress::default());
    let scheduler = Scheduler::new(
        frontier,
        bus,
        store.clone(),
        SchedulerConfig {
            max_in_flight: config.scheduler.max_in_flight,
            resume_grace: Duration::from_secs_f64(config.scheduler.resume_grace_secs.clamp(0.0, 86_400.0)),
            task_lease: Duration::from_secs_f64(config.scheduler.task_lease_secs.clamp(1.0, 86_400.0)),
            ..spec.plan.crawl.clone()
        },
        progress.clone(),
    )
    .with_address_book(Arc::new(book));
    let reporter = {
        let (registry, progress, id) = (registry.clone(), progress.clone(), spec.id.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = registry.update(&id, &progress_fields(&progress)).await;
            }
        })
    };
    let summary = scheduler.run(spec.plan.seeds.clone()).await;
    reporter.abort();
    let summary = summary.map_err(|e| WorkerError::Store(format!("scheduler: {e}")))?;
    registry.update(&spec.id, &progress_fields(&progress)).await?;
    // Fetching is done; matching is done when the matchers have recorded
    // every message published for the scan.
    registry.update(&spec.id, &[("status", "matching".into())]).await?;
    let client =
        redis::Client::open(config.redis.url.as_str()).map_err(|e| WorkerError::Config(format!("redis.url: {e}")))?;
    let mut con = redis::aio::ConnectionManager::new(client).await.map_err(RegistryError::from)?;
    loop {
        let matched: u64 = con.scard(matched_key(&config.redis.prefix, &spec.id)).await.map_err(RegistryError::from)?;
        if matched >= summary.match_messages {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every message is recorded: score the scan's images on the whole
    // evidence (host figures included), whatever order it arrived in.
    let rescorer = hashscan_matcher::rescore::Rescorer::new(store.clone(), store.clone(), config.matcher.threshold);
    rescorer.sweep(&spec.id, now_ms()).await.map_err(|e| WorkerError::Store(e.to_string()))?;
    let counts = store.counts(Some(spec.id.clone())).await.map_err(|e| WorkerError::Store(e.to_string()))?;
    let report = serde_json::json!({
        "scan_id": spec.id,
        "summary": summary,
        "cases": counts.cases,
        "stored": counts,
        "elapsed_secs": started.elapsed().as_secs_f64(),
    });
    store.finish_scan(&spec.id, now_ms(), report.to_string()).await.map_err(|e| WorkerError::Store(e.to_string()))?;
    let _: () = con.del(matched_key(&config.redis.prefix, &spec.id)).await.map_err(RegistryError::from)?;
    // The next run of a recurring scan is submitted before this one is
    // marked finished: a scheduler dying in between resumes this run and
    // submits again, which the registry refuses as a duplicate.
    if let Some(r) = &spec.recurring {
        schedule_next(registry, &*store, r, &spec.id, started_ms).await?;
    }
    registry.finish(&spec.id, "finished", &report.to_string()).await?;
    tracing::info!(scan = %spec.id, pages = summary.pages, images = summary.images, cases = counts.cases, "scan finished");
    Ok(())
}

/// Submits the run after `done` of a recurring scan, due `every` after
/// `done` started, its plan learned from the runs so far.
async fn schedule_next(
    registry: &Registry,
    store: &dyn Store,
    r: &Recurring,
    done: &str,
    started_ms: i64,
) -> Result<(), WorkerError> {
    let mut runs = r.runs.clone();
    runs.push(done.to_string());
    if r.max_runs.is_some_and(|n| runs.len() as u64 >= n) {
        registry.set_schedule(&r.schedule, "finished").await?;
        return Ok(());
    }
    let mut plan = r.base.clone();
    let learned = hashscan_scheduler::revisit::learn(store, &runs, &mut plan)
        .await
        .map_err(|e| WorkerError::Store(e.to_string()))?;
    let next = ScanSpec {
        id: format!("{}-{}", r.schedule, runs.len() + 1),
        plan,
        recurring: Some(Recurring { runs, ..r.clone() }),
    };
    let due = started_ms + r.every_ms.min(i64::MAX as u64 / 2) as i64;
    match registry.submit_at(&next, Some(due)).await {
        Ok(()) => {
            tracing::info!(next = %next.id, due_ms = due, hot_seeds = learned.hot_seeds, capped_hosts = learned.capped_hosts, "next run scheduled")
        }
        Err(RegistryError::Invalid(e)) if e.contains("exists already") => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn progress_fields(p: &Progress) -> Vec<(&'static str, String)> {
    use std::sync::atomic::Ordering::Relaxed;
    vec![
        ("pages", p.pages.load(Relaxed).to_string()),
        ("images", p.images.load(Relaxed).to_string()),
        ("failed", p.failed.load(Relaxed).to_string()),
        ("queued", p.queued.load(Relaxed).to_string()),
        ("in_flight", p.in_flight.load(Relaxed).to_string()),
        ("updated_at_ms", now_ms().to_string()),
    ]
}
