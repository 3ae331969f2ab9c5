//! The bus of cluster mode, over RabbitMQ (lapin).
//!
//! Each [`Topic`] is a durable **quorum** queue `{prefix}.{topic}` with a
//! dead-letter queue `{prefix}.{topic}.dead` beside it. Messages are
//! persistent and every publish waits for the broker's confirm, so a
//! message the bus accepted survives a broker restart. Consumers ack by
//! hand, only after the work and its outputs are confirmed.
//!
//! Decisions:
//! * Quorum queues, because they count deliveries: a message whose worker
//!   dies on it (kill -9, a panic) comes back at most `delivery_limit` times,
//!   then the broker dead-letters it. A poison message cannot crash-loop a
//!   worker pool.
//! * A rejected message is copied to its dead-letter queue **by us**, with
//!   the reason in the `x-hashscan-reason` header, then acked: the broker's
//!   own dead-lettering cannot carry a reason. A message that does not
//!   decode (garbage, an unknown schema version) is dead-lettered by the
//!   consumer before any worker sees it.
//! * One connection per process, re-established with exponential back-off
//!   when the broker goes away; consumers re-subscribe on it. Deliveries in
//!   flight on a dead connection are redelivered by the broker, so workers
//!   must be (and are) idempotent. [`AmqpBus::is_connected`] feeds readiness.
#![deny(missing_docs)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use hashscan_bus::{decode, encode, Acker, Bus, BusError, Consumer, DeadLetter, Delivery, Message, Topic};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::{watch, Mutex};

/// Header carrying why a message was dead-lettered.
pub const REASON_HEADER: &str = "x-hashscan-reason";
/// Header carrying the message schema version (also inside the body).
pub const SCHEMA_HEADER: &str = "x-hashscan-schema";

/// How to reach the broker and shape the topology.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:port/vhost` (or `amqps://`).
    pub url: String,
    /// Queue name prefix: several deployments (or tests) can share a broker.
    pub prefix: String,
    /// Unacked deliveries per consumer: bounds a worker's in-flight work.
    pub prefetch: u16,
    /// Deliveries of one message before the broker dead-letters it.
    pub delivery_limit: u32,
    /// How long a publish keeps retrying while the broker is away.
    pub publish_timeout: Duration,
    /// Longest pause between reconnection attempts.
    pub max_backoff: Duration,
    /// Longest wait for one broker round trip (connecting, a confirm, a
    /// subscription): a broker that accepts TCP but never answers (booting,
    /// or a connection dead without a reset) must not hang a worker.
    pub op_timeout: Duration,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            prefix: "hashscan".into(),
            prefetch: 16,
            delivery_limit: 5,
            publish_timeout: Duration::from_secs(60),
            max_backoff: Duration::from_secs(5),
            op_timeout: Duration::from_secs(15),
        }
    }
}

impl AmqpConfig {
    /// The work queue of a topic.
    pub fn queue(&self, topic: Topic) -> String {
        format!("{}.{}", self.prefix, topic.name())
    }

    /// The dead-letter queue of a topic.
    pub fn dead_queue(&self, topic: Topic) -> String {
        format!("{}.{}.dead", self.prefix, topic.name())
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct AmqpStats {
    /// Messages published (confirmed by the broker).
    pub published: AtomicU64,
    /// Deliveries handed to workers.
    pub delivered: AtomicU64,
    /// Of those, redeliveries.
    pub redelivered: AtomicU64,
    /// Acks sent.
    pub acked: AtomicU64,
    /// Requeues (nack with requeue).
    pub requeued: AtomicU64,
    /// Messages dead-lettered by us (rejected or undecodable).
    pub dead_lettered: AtomicU64,
    /// Connections (re-)established.
    pub connects: AtomicU64,
}

struct Inner {
    config: AmqpConfig,
    live: Mutex<Option<Live>>,
    connected: AtomicBool,
    stats: AmqpStats,
    closing: watch::Sender<bool>,
}

#[derive(Clone)]
struct Live {
    connection: Arc<Connection>,
    publisher: Channel,
}

/// A [`Bus`] on RabbitMQ. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct AmqpBus {
    inner: Arc<Inner>,
}

fn broker(context: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Broker(format!("{context}: {e}"))
}

fn header_str(props: &BasicProperties, name: &str) -> Option<String> {
    let headers = props.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

impl AmqpBus {
    /// Connects and declares the topology (idempotently). Fails when the
    /// broker cannot be reached now; later outages are ridden out.
    pub async fn connect(config: AmqpConfig) -> Result<Self, BusError> {
        let (closing, _) = watch::channel(false);
        let bus = Self {
            inner: Arc::new(Inner {
                config,
                live: Mutex::new(None),
                connected: AtomicBool::new(false),
                stats: AmqpStats::default(),
                closing,
            }),
        };
        bus.live().await?;
        Ok(bus)
    }

    /// The configuration in force.
    pub fn config(&self) -> &AmqpConfig {
        &self.inner.config
    }

    /// True while the connection is up: readiness.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Counters for metrics.
    pub fn stats(&self) -> &AmqpStats {
        &self.inner.stats
    }

    /// The live connection, (re-)established if needed.
    async fn live(&self) -> Result<Live, BusError> {
        let mut guard = self.inner.live.lock().await;
        if let Some(live) = guard.as_ref() {
            if live.connection.status().connected() && live.publisher.status().connected() {
                return Ok(live.clone());
            }
            self.inner.connected.store(false, Ordering::Relaxed);
            tracing::warn!("lost the connection to RabbitMQ; reconnecting");
        }
        *guard = None;
        let props = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current())
            .with_connection_name(format!("hashscan-{}", std::process::id()).into());
        let setup = async {
            let connection =
                Connection::connect(&self.inner.config.url, props).await.map_err(|e| broker("connect", e))?;
            let publisher = connection.create_channel().await.map_err(|e| broker("open channel", e))?;
            publisher.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| broker("confirm mode", e))?;
            declare(&publisher, &self.inner.config).await?;
            Ok::<_, BusError>((connection, publisher))
        };
        let (connection, publisher) = self.bounded("connect", setup).await?;
        let live = Live { connection: Arc::new(connection), publisher };
        *guard = Some(live.clone());
        self.inner.connected.store(true, Ordering::Relaxed);
        self.inner.stats.connects.fetch_add(1, Ordering::Relaxed);
        tracing::info!(prefix = %self.inner.config.prefix, "connected to RabbitMQ");
        Ok(live)
    }

    /// `op`, or an error once it took longer than `op_timeout`.
    async fn bounded<T>(
        &self,
        what: &str,
        op: impl std::future::Future<Output = Result<T, BusError>>,
    ) -> Result<T, BusError> {
        let limit = self.inner.config.op_timeout;
        match tokio::time::timeout(limit, op).await {
            Ok(r) => r,
            Err(_) => Err(BusError::Broker(format!("{what}: no answer from RabbitMQ in {} s", limit.as_secs_f64()))),
        }
    }

    /// Forgets a broken connection so the next call reconnects.
    async fn drop_live(&self) {
        self.inner.connected.store(false, Ordering::Relaxed);
        *self.inner.live.lock().await = None;
    }

    /// Publishes bytes to a queue and waits for the broker's confirm,
    /// retrying through outages until `publish_timeout`.
    async fn publish_bytes(&self, queue: &str, body: &[u8], headers: FieldTable) -> Result<(), BusError> {
        let deadline = tokio::time::Instant::now() + self.inner.config.publish_timeout;
        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = async {
                let live = self.live().await?;
                let props = BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type(ShortString::from("application/json"))
                    .with_headers(headers.clone());
                let confirm = live
                    .publisher
                    .basic_publish("", queue, BasicPublishOptions::default(), body, props)
                    .await
                    .map_err(|e| broker("publish", e))?;
                match confirm.await.map_err(|e| broker("publish confirm", e))? {
                    Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
                    Confirmation::Nack(_) => Err(BusError::Broker("the broker refused the message (nack)".into())),
                }
            };
            match self.bounded("publish", attempt).await {
                Ok(()) => {
                    self.inner.stats.published.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if tokio::time::Instant::now() + backoff < deadline && !*self.inner.closing.borrow() => {
                    tracing::warn!(error = %e, queue, "publish failed; retrying");
                    self.drop_live().await;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.inner.config.max_backoff);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Publishes arbitrary bytes on a topic's queue, bypassing encoding:
    /// for tests and tools that must show what a worker does with garbage.
    pub async fn publish_raw(&self, topic: Topic, body: &[u8]) -> Result<(), BusError> {
        self.publish_bytes(&self.inner.config.queue(topic), body, FieldTable::default()).await
    }

    /// Copies a message to its topic's dead-letter queue with the reason.
    async fn dead_letter(&self, topic: Topic, body: &[u8], reason: &str) -> Result<(), BusError> {
        let mut headers = FieldTable::default();
        headers.insert(ShortString::from(REASON_HEADER), AMQPValue::LongString(LongString::from(reason)));
        self.publish_bytes(&self.inner.config.dead_queue(topic), body, headers).await?;
        self.inner.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(topic = topic.name(), reason, "message dead-lettered");
        Ok(())
    }

    /// Messages waiting on a topic (queue lag), from a passive declare.
    pub async fn depth(&self, topic: Topic) -> Result<u32, BusError> {
        let live = self.live().await?;
        let q = live
            .publisher
            .queue_declare(
                &self.inner.config.queue(topic),
                QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() },
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker("queue depth", e))?;
        Ok(q.message_count())
    }

    /// Deletes this prefix's queues: for tests and for tearing a deployment down.
    ///
    /// Deleting a queue cancels its consumers, and lapin has been seen to
    /// take a late cancel-ok for a protocol error that closes the whole
    /// connection; deleting is idempotent, so it reconnects and tries again.
    pub async fn delete_topology(&self) -> Result<(), BusError> {
        let mut attempt = 0;
        loop {
            match self.try_delete_topology().await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 3 => {
                    tracing::warn!(error = %e, "deleting the queues failed; reconnecting to try again");
                    attempt += 1;
                    self.drop_live().await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_delete_topology(&self) -> Result<(), BusError> {
        let live = self.live().await?;
        for topic in Topic::ALL {
            for q in [self.inner.config.queue(topic), self.inner.config.dead_queue(topic)] {
                live.publisher
                    .queue_delete(&q, QueueDeleteOptions::default())
                    .await
                    .map_err(|e| broker("delete", e))?;
            }
        }
        Ok(())
    }

    /// Stops every consumer of this bus: their `next` returns `None`, so
    /// worker loops end after the message in hand, which they can still ack.
    /// The first step of a graceful shutdown; [`AmqpBus::close`] is the second.
    pub fn stop_consuming(&self) {
        let _ = self.inner.closing.send(true);
    }

    /// Stops consuming and closes the connection; whatever is still unacked
    /// is redelivered by the broker to another worker.
    pub async fn close(&self) {
        let _ = self.inner.closing.send(true);
        if let Some(live) = self.inner.live.lock().await.take() {
            let _ = live.connection.close(200, "shutting down").await;
        }
        self.inner.connected.store(false, Ordering::Relaxed);
    }
}

/// Declares a topic's queues; declaring again with the same arguments is a no-op.
async fn declare(channel: &Channel, config: &AmqpConfig) -> Result<(), BusError> {
    let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    for topic in Topic::ALL {
        let dead = config.dead_queue(topic);
        let mut dead_args = FieldTable::default();
        dead_args.insert("x-queue-type".into(), AMQPValue::LongString("classic".into()));
        channel.queue_declare(&dead, durable, dead_args).await.map_err(|e| broker("declare dead-letter queue", e))?;
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        args.insert("x-delivery-limit".into(), AMQPValue::LongInt(config.delivery_limit.min(i32::MAX as u32) as i32));
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(dead.as_str().into()));
        channel
            .queue_declare(&config.queue(topic), durable, args)
            .await
            .map_err(|e| broker(&format!("declare queue {}", config.queue(topic)), e))?;
    }
    Ok(())
}

#[async_trait]
impl Bus for AmqpBus {
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        let mut headers = FieldTable::default();
        headers.insert(SCHEMA_HEADER.into(), AMQPValue::LongUInt(hashscan_bus::SCHEMA_VERSION));
        self.publish_bytes(&self.inner.config.queue(message.topic()), &encode(&message), headers).await
    }

    async fn consume(&self, topic: Topic) -> Result<Box<dyn Consumer>, BusError> {
        Ok(Box::new(AmqpConsumer {
            bus: self.clone(),
            topic,
            closing: self.inner.closing.subscribe(),
            stream: None,
            backoff: Duration::from_millis(100),
        }))
    }

    async fn waiting(&self, topic: Topic) -> Result<Option<u64>, BusError> {
        Ok(Some(u64::from(self.depth(topic).await?)))
    }

    async fn take_dead_letters(&self, topic: Topic, max: usize) -> Result<Vec<DeadLetter>, BusError> {
        let live = self.live().await?;
        let queue = self.inner.config.dead_queue(topic);
        let mut out = Vec::new();
        while out.len() < max {
            let got = live
                .publisher
                .basic_get(&queue, BasicGetOptions { no_ack: false })
                .await
                .map_err(|e| broker("read dead letters", e))?;
            let Some(got) = got else { break };
            let d = got.delivery;
            let reason = header_str(&d.properties, REASON_HEADER)
                .or_else(|| header_str(&d.properties, "x-first-death-reason").map(|r| format!("broker: {r}")))
                .unwrap_or_else(|| "dead-lettered by the broker".into());
            out.push(DeadLetter {
                topic,
                message: decode(&d.data).ok(),
                body: String::from_utf8_lossy(&d.data).into_owned(),
                reason,
            });
            d.acker.ack(BasicAckOptions::default()).await.map_err(|e| broker("ack dead letter", e))?;
        }
        Ok(out)
    }
}

/// A subscription to one topic that survives reconnections.
struct AmqpConsumer {
    bus: AmqpBus,
    topic: Topic,
    closing: watch::Receiver<bool>,
    stream: Option<(Channel, lapin::Consumer)>,
    backoff: Duration,
}

impl AmqpConsumer {
    async fn subscribe(&mut self) -> Result<(), BusError> {
        let live = self.bus.live().await?;
        let (config, topic) = (&self.bus.inner.config, self.topic);
        let open = async {
            let channel = live.connection.create_channel().await.map_err(|e| broker("open channel", e))?;
            channel.basic_qos(config.prefetch, BasicQosOptions::default()).await.map_err(|e| broker("prefetch", e))?;
            let consumer = channel
                .basic_consume(&config.queue(topic), "", BasicConsumeOptions::default(), FieldTable::default())
                .await
                .map_err(|e| broker("consume", e))?;
            Ok::<_, BusError>((channel, consumer))
        };
        let (channel, consumer) = self.bus.bounded("subscribe", open).await?;
        self.stream = Some((channel, consumer));
        self.backoff = Duration::from_millis(100);
        Ok(())
    }

    /// Waits before the next reconnection attempt; false when closing.
    async fn pause(&mut self) -> bool {
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(self.bus.inner.config.max_backoff);
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = self.closing.wait_for(|c| *c) => false,
        }
    }
}

#[async_trait]
impl Consumer for AmqpConsumer {
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if self.stream.is_none() {
                if let Err(e) = self.subscribe().await {
                    tracing::warn!(error = %e, topic = self.topic.name(), "cannot subscribe; retrying");
                    self.bus.drop_live().await;
                    if !self.pause().await {
                        return None;
                    }
                    continue;
                }
            }
            let Some((_, consumer)) = self.stream.as_mut() else { continue };
            let item = tokio::select! {
                item = consumer.next() => item,
                _ = self.closing.wait_for(|c| *c) => return None,
            };
            let delivery = match item {
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, topic = self.topic.name(), "consumer failed; resubscribing");
                    self.stream = None;
                    if !self.pause().await {
                        return None;
                    }
                    continue;
                }
                None => {
                    self.stream = None;
                    if !self.pause().await {
                        return None;
                    }
                    continue;
                }
            };
            let stats = &self.bus.inner.stats;
            stats.delivered.fetch_add(1, Ordering::Relaxed);
            let count = delivery.properties.headers().as_ref().and_then(|h| match h.inner().get("x-delivery-count") {
                Some(AMQPValue::LongLongInt(n)) => Some(*n),
                Some(AMQPValue::LongInt(n)) => Some(i64::from(*n)),
                _ => None,
            });
            let redelivered = delivery.redelivered || count.is_some_and(|n| n > 0);
            if redelivered {
                stats.redelivered.fetch_add(1, Ordering::Relaxed);
            }
            match decode(&delivery.data) {
                Ok(message) if message.topic() == self.topic => {
                    let acker = AmqpAcker { bus: self.bus.clone(), topic: self.topic, delivery };
                    return Some(Delivery::new(message, redelivered, Box::new(acker)));
                }
                other => {
                    let reason = match other {
                        Ok(m) => format!("a {} message on the {} queue", m.topic().name(), self.topic.name()),
                        Err(e) => e.to_string(),
                    };
                    // Dead-letter first, then ack: a crash between the two
                    // leaves a copy in both, never in neither.
                    let acker = AmqpAcker { bus: self.bus.clone(), topic: self.topic, delivery };
                    if let Err(e) = Box::new(acker).reject(&reason).await {
                        tracing::warn!(error = %e, "could not dead-letter an undecodable message; it will come back");
                    }
                }
            }
        }
    }
}

struct AmqpAcker {
    bus: AmqpBus,
    topic: Topic,
    delivery: lapin::message::Delivery,
}

fn acked(done: Result<bool, lapin::Error>, what: &str) -> Result<(), BusError> {
    match done {
        Ok(true) => Ok(()),
        Ok(false) => Err(BusError::Broker(format!(
            "{what}: the channel closed first; the broker will deliver the message again"
        ))),
        Err(e) => Err(broker(what, e)),
    }
}

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        acked(self.delivery.acker.ack(BasicAckOptions::default()).await, "ack")?;
        self.bus.inner.stats.acked.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn reject(self: Box<Self>, reason: &str) -> Result<(), BusError> {
        self.bus.dead_letter(self.topic, &self.delivery.data, reason).await?;
        acked(self.delivery.acker.ack(BasicAckOptions::default()).await, "ack after dead-lettering")
    }

    async fn requeue(self: Box<Self>) -> Result<(), BusError> {
        let options = BasicNackOptions { multiple: false, requeue: true };
        acked(self.delivery.acker.nack(options).await, "requeue")?;
        self.bus.inner.stats.requeued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
