//! The bus: the messages that travel between roles, and the seam they travel through.
//!
//! scheduler → fetcher ([`FetchTask`]), fetcher → scheduler ([`FetchReport`]),
//! fetcher → matcher ([`MatchWork`]). Roles hold a `dyn` [`Bus`] and never know
//! whether it is the in-process [`MemoryBus`] of `hashscan scan` or RabbitMQ in
//! cluster mode.
//!
//! Decisions a reader would question:
//! * Image bytes never enter a message: [`MatchWork::ImageHashed`] carries
//!   [`Digests`], not content. `data:` images are named by a synthetic id
//!   ([`data_image_id`]) rather than by their URL, which *is* their content.
//! * Every delivery is acknowledged explicitly after its work and outputs are
//!   done, so a networked bus can redeliver on a crash; handlers must
//!   therefore be idempotent.
//! * Messages are versioned ([`SCHEMA_VERSION`]) so a worker can dead-letter
//!   what it does not understand instead of guessing.
#![deny(missing_docs)]

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hashscan_hash::Digests;
use hashscan_pdq::PdqHash;
use serde::{Deserialize, Serialize};
use url::Url;

/// Version of the message schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// What a fetch task is expected to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// An HTML page: extract links and images.
    Page,
    /// An image: hash it.
    Image,
    /// A host's `/robots.txt`, fetched before anything else on the host.
    Robots,
}

/// One URL for a fetcher to download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchTask {
    /// The scan this work belongs to.
    pub scan: String,
    /// What to fetch (already normalised and in scope).
    pub url: Url,
    /// Page or image.
    pub kind: TaskKind,
    /// Link depth from the seeds (images carry their page's depth).
    pub depth: u32,
    /// The page that linked or embedded this URL; `None` for seeds.
    pub referrer: Option<Url>,
    /// Redirect hops taken to reach this URL.
    pub hops: u8,
    /// Validators from an earlier fetch of this URL: the request is
    /// conditional, and a 304 reuses what that fetch found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validators: Option<Validators>,
    /// Earlier attempts that the server throttled (429/503).
    #[serde(default)]
    pub attempt: u8,
}

/// `ETag` and `Last-Modified` of a response, sent back as `If-None-Match`
/// and `If-Modified-Since` when the URL is fetched again.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Validators {
    /// The `ETag` header, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `Last-Modified` header, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validators {
    /// True when the response carried neither header.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

impl FetchTask {
    /// The host the task will connect to (politeness and sharding key).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or("")
    }
}

/// Why a fetch did not produce a page or an image. Short codes are stable:
/// they are counted in summaries and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// The network policy refused the target address.
    NetPolicy,
    /// DNS resolution failed.
    Dns,
    /// Connection refused, reset, or another transport error.
    Network,
    /// A connect, first-byte or body timeout.
    Timeout,
    /// A non-success HTTP status.
    HttpStatus,
    /// The body exceeded its size cap.
    TooLarge,
    /// An image task whose body is not an image (by magic bytes).
    NotAnImage,
    /// A page task whose body is neither HTML nor an image.
    NotHtml,
    /// Too many redirects, or a redirect without a usable Location.
    Redirect,
    /// The global in-flight byte budget stayed exhausted too long.
    MemoryBudget,
    /// The page could not be parsed.
    Parse,
    /// robots.txt disallows the URL; no request was made.
    Robots,
    /// robots.txt could not be had (5xx or unreachable) long enough that the
    /// host was given up; no request was made.
    RobotsUnavailable,
    /// The server kept answering 429/503 after the retries, or asked for a
    /// longer pause than the scan allows.
    Throttled,
    /// robots.txt asks for a longer Crawl-delay than the scan allows; the
    /// host was left alone.
    CrawlDelay,
    /// The task was handed out several times and never reported (lost in
    /// a fetcher or dead-lettered); see the scheduler's task lease.
    Lost,
}

impl FailReason {
    /// The stable short code.
    pub fn code(self) -> &'static str {
        match self {
            Self::NetPolicy => "net_policy",
            Self::Dns => "dns",
            Self::Network => "network",
            Self::Timeout => "timeout",
            Self::HttpStatus => "http_status",
            Self::TooLarge => "too_large",
            Self::NotAnImage => "not_an_image",
            Self::NotHtml => "not_html",
            Self::Redirect => "redirect",
            Self::MemoryBudget => "memory_budget",
            Self::Parse => "parse",
            Self::Robots => "robots",
            Self::RobotsUnavailable => "robots_unavailable",
            Self::Throttled => "throttled",
            Self::CrawlDelay => "crawl_delay",
            Self::Lost => "lost",
        }
    }
}

/// What became of a fetch task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A page was parsed; its links and image URLs go back to the frontier.
    Page {
        /// Links to consider for crawling.
        links: Vec<Url>,
        /// Image URLs to fetch.
        images: Vec<Url>,
        /// `data:` images hashed in place.
        data_images: u32,
        /// Their synthetic ids (see [`data_image_id`]), kept so a later
        /// fetch answered 304 can record the same edges.
        #[serde(default)]
        data_ids: Vec<String>,
    },
    /// An image was hashed; the digests went to the matcher.
    Image {
        /// Body size in bytes.
        bytes: u64,
        /// Its BLAKE3 (hex), so a later 304 can name the same content.
        #[serde(default)]
        blake3: String,
    },
    /// The server redirected; the frontier decides whether to follow.
    Redirect {
        /// The resolved target.
        location: Url,
    },
    /// robots.txt was answered: its status, and its text when 2xx (capped).
    Robots {
        /// Final HTTP status, after redirects.
        status: u16,
        /// The file's text when the status is 2xx.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// 304: the validators still hold; what the earlier fetch found stands.
    NotModified,
    /// 429 or 503: the server asks to slow down; the task is tried again later.
    Throttled {
        /// 429 or 503.
        status: u16,
        /// `Retry-After`, when given and understood.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// The fetch failed, with a reason.
    Failed {
        /// Stable reason code.
        reason: FailReason,
        /// Human-readable detail (never content).
        detail: String,
    },
}

/// The fetcher's answer to one [`FetchTask`]; exactly one per task, so the
/// scheduler can tell when a scan has no work left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchReport {
    /// The task this answers.
    pub task: FetchTask,
    /// When the request was sent (Unix ms); politeness is measured from it.
    pub started_at_ms: i64,
    /// The address connected to, when a connection was made.
    pub ip: Option<IpAddr>,
    /// The response's `ETag`/`Last-Modified`, to make the next fetch conditional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validators: Option<Validators>,
    /// What happened.
    pub outcome: Outcome,
    /// Messages this fetch published for the matchers: the scheduler adds
    /// them up, so a cluster knows when matching of a scan is complete.
    #[serde(default)]
    pub match_messages: u32,
}

/// What the perceptual-hash step made of an image: its PDQ hash, or why it
/// has none (an undecodable image is recorded with the reason, not dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PdqResult {
    /// Decoded and hashed.
    Hashed {
        /// The 256-bit hash (hex on the wire).
        hash: PdqHash,
        /// 0..=100; below 50 a match is not to be trusted.
        quality: u8,
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// DCT scale the pixels were decoded at (1 = every pixel).
        scale: u8,
    },
    /// No hash, and why.
    Failed {
        /// Stable short code (`corrupt`, `too_many_pixels`, `unsupported_format`, …).
        reason: String,
        /// Human-readable detail (never content).
        detail: String,
    },
}

/// Work for the matcher.
// One message per page or image, moved a few times: a few hundred bytes
// inline cost less than a heap allocation per image.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MatchWork {
    /// A page and the images it shows: the edges of the circumstances.
    PageImages {
        /// The scan.
        scan: String,
        /// The page.
        page_url: Url,
        /// Image ids on the page: URLs, or [`data_image_id`] for `data:` images.
        images: Vec<String>,
        /// When the page was fetched (Unix ms).
        seen_at_ms: i64,
    },
    /// An image was hashed.
    ImageHashed {
        /// The scan.
        scan: String,
        /// Image URL, or [`data_image_id`] for a `data:` image.
        image_id: String,
        /// The page that embedded or linked it.
        page_url: Option<Url>,
        /// Host that served it (the page's host for `data:` images).
        host: String,
        /// Address it was fetched from.
        ip: Option<IpAddr>,
        /// Its digests.
        digests: Digests,
        /// Its PDQ hash, or why there is none.
        pdq: PdqResult,
        /// When it was hashed (Unix ms).
        fetched_at_ms: i64,
    },
}

/// The synthetic id of a `data:` image: its media type and BLAKE3, never its bytes.
pub fn data_image_id(media_type: &str, digests: &Digests) -> String {
    format!("data:{media_type};blake3={}", digests.hex(hashscan_hash::CryptoAlgo::Blake3))
}

/// A queue on the bus; each message type has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// Fetch tasks, consumed by fetchers.
    Fetch,
    /// Fetch reports, consumed by the scheduler.
    Report,
    /// Matcher work, consumed by matchers.
    Match,
}

impl Topic {
    /// All topics.
    pub const ALL: [Topic; 3] = [Topic::Fetch, Topic::Report, Topic::Match];

    /// Queue name.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Fetch => "fetch",
            Topic::Report => "report",
            Topic::Match => "match",
        }
    }
}

/// Any message on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "lowercase")]
pub enum Message {
    /// For fetchers.
    Fetch(FetchTask),
    /// For the scheduler.
    Report(FetchReport),
    /// For matchers.
    Match(MatchWork),
}

impl Message {
    /// The queue this message belongs on.
    pub fn topic(&self) -> Topic {
        match self {
            Message::Fetch(_) => Topic::Fetch,
            Message::Report(_) => Topic::Report,
            Message::Match(_) => Topic::Match,
        }
    }
}

/// The wire form: a message with its schema version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Schema version; see [`SCHEMA_VERSION`].
    pub version: u32,
    /// The message.
    #[serde(flatten)]
    pub message: Message,
}

/// Decodes a message from its wire form, refusing unknown versions so the
/// caller can dead-letter it with the reason.
pub fn decode(bytes: &[u8]) -> Result<Message, BusError> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let v: Version = serde_json::from_slice(bytes).map_err(|e| BusError::Malformed(e.to_string()))?;
    if v.version != SCHEMA_VERSION {
        return Err(BusError::UnknownVersion(v.version));
    }
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| BusError::Malformed(e.to_string()))?;
    Ok(env.message)
}

/// Encodes a message in its wire form.
pub fn encode(message: &Message) -> Vec<u8> {
    #[derive(Serialize)]
    struct EnvelopeRef<'a> {
        version: u32,
        #[serde(flatten)]
        message: &'a Message,
    }
    // Serialising these plain data types cannot fail.
    serde_json::to_vec(&EnvelopeRef { version: SCHEMA_VERSION, message }).unwrap_or_default()
}

/// Bus failures.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus was closed: no more messages will come or go.
    #[error("bus closed")]
    Closed,
    /// A message could not be decoded.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A message of a schema version this worker does not know.
    #[error("unknown message schema version {0} (this worker speaks {SCHEMA_VERSION})")]
    UnknownVersion(u32),
    /// The broker failed.
    #[error("broker: {0}")]
    Broker(String),
}

/// Acknowledges or rejects one delivery; called once, after the work is done.
#[async_trait]
pub trait Acker: Send {
    /// The work and its outputs are done.
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    /// The message cannot be processed; it goes to the dead-letter store with the reason.
    async fn reject(self: Box<Self>, reason: &str) -> Result<(), BusError>;
    /// Not processed this time (a store or broker was away): deliver it
    /// again, to any consumer. A broker caps how often (then dead-letters it),
    /// so a message that always fails cannot loop for ever.
    async fn requeue(self: Box<Self>) -> Result<(), BusError>;
}

/// A received message with its acknowledgement handle.
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// True when the broker says this is a redelivery.
    pub redelivered: bool,
    acker: Box<dyn Acker>,
}

impl Delivery {
    /// Builds a delivery; used by bus implementations.
    pub fn new(message: Message, redelivered: bool, acker: Box<dyn Acker>) -> Self {
        Self { message, redelivered, acker }
    }

    /// Acknowledges the delivery.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Rejects the delivery with a reason.
    pub async fn reject(self, reason: &str) -> Result<(), BusError> {
        self.acker.reject(reason).await
    }

    /// Returns the delivery to its queue, to be delivered again.
    pub async fn requeue(self) -> Result<(), BusError> {
        self.acker.requeue().await
    }
}

/// A stream of deliveries from one topic.
#[async_trait]
pub trait Consumer: Send {
    /// The next delivery; `None` when the topic is closed and drained.
    async fn next(&mut self) -> Option<Delivery>;
}

/// The seam between roles.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Publishes a message on its topic; returns once the bus has it.
    async fn publish(&self, message: Message) -> Result<(), BusError>;
    /// Starts consuming a topic. Several consumers of one topic share its messages.
    async fn consume(&self, topic: Topic) -> Result<Box<dyn Consumer>, BusError>;
    /// Takes up to `max` dead letters of a topic (rejected or undecodable
    /// messages, with their reasons): for operators and tests.
    async fn take_dead_letters(&self, topic: Topic, max: usize) -> Result<Vec<DeadLetter>, BusError>;
    /// Messages of a topic waiting for a consumer (not handed out yet), or
    /// `None` when the bus cannot tell. The scheduler asks before it calls
    /// a task lost: while tasks wait, the fetchers are only behind or away.
    async fn waiting(&self, topic: Topic) -> Result<Option<u64>, BusError> {
        let _ = topic;
        Ok(None)
    }
}

/// A rejected message and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The topic it came from.
    pub topic: Topic,
    /// The message, when it could be decoded.
    pub message: Option<Message>,
    /// Its wire form (lossy UTF-8), so an undecodable one can be inspected.
    pub body: String,
    /// Why it was rejected.
    pub reason: String,
}

/// One topic's queue: messages with their "delivered before" flag.
type Channel = (async_channel::Sender<(Message, bool)>, async_channel::Receiver<(Message, bool)>);

/// The in-process bus of embedded mode: one bounded channel per topic.
///
/// Bounded, so a slow matcher pushes back on fetchers instead of growing
/// memory. Acks are no-ops: nothing outlives the process to be redelivered.
#[derive(Clone)]
pub struct MemoryBus {
    channels: Arc<[Channel; 3]>,
    dead: Arc<Mutex<Vec<DeadLetter>>>,
}

impl MemoryBus {
    /// A bus whose topics each hold at most `capacity` messages.
    pub fn new(capacity: usize) -> Self {
        let cap = capacity.max(1);
        Self {
            channels: Arc::new([async_channel::bounded(cap), async_channel::bounded(cap), async_channel::bounded(cap)]),
            dead: Arc::default(),
        }
    }

    fn channel(&self, topic: Topic) -> &Channel {
        match topic {
            Topic::Fetch => &self.channels[0],
            Topic::Report => &self.channels[1],
            Topic::Match => &self.channels[2],
        }
    }

    /// Closes a topic: consumers drain what is queued, then see the end.
    pub fn close(&self, topic: Topic) {
        self.channel(topic).0.close();
    }

    /// Messages waiting on a topic.
    pub fn depth(&self, topic: Topic) -> usize {
        self.channel(topic).0.len()
    }

    /// Rejected messages so far.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        self.channel(message.topic()).0.send((message, false)).await.map_err(|_| BusError::Closed)
    }

    async fn consume(&self, topic: Topic) -> Result<Box<dyn Consumer>, BusError> {
        let (tx, rx) = self.channel(topic);
        Ok(Box::new(MemoryConsumer { rx: rx.clone(), tx: tx.clone(), dead: self.dead.clone() }))
    }

    async fn take_dead_letters(&self, topic: Topic, max: usize) -> Result<Vec<DeadLetter>, BusError> {
        let mut dead = self.dead.lock().map_err(|_| BusError::Broker("dead-letter list poisoned".into()))?;
        let mut taken = Vec::new();
        let mut i = 0;
        while i < dead.len() && taken.len() < max {
            if dead[i].topic == topic {
                taken.push(dead.remove(i));
            } else {
                i += 1;
            }
        }
        Ok(taken)
    }

    async fn waiting(&self, topic: Topic) -> Result<Option<u64>, BusError> {
        Ok(Some(self.channel(topic).0.len() as u64))
    }
}

struct MemoryConsumer {
    rx: async_channel::Receiver<(Message, bool)>,
    tx: async_channel::Sender<(Message, bool)>,
    dead: Arc<Mutex<Vec<DeadLetter>>>,
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn next(&mut self) -> Option<Delivery> {
        let (message, redelivered) = self.rx.recv().await.ok()?;
        let acker = MemoryAcker { message: Some(message.clone()), tx: self.tx.clone(), dead: self.dead.clone() };
        Some(Delivery::new(message, redelivered, Box::new(acker)))
    }
}

struct MemoryAcker {
    message: Option<Message>,
    tx: async_channel::Sender<(Message, bool)>,
    dead: Arc<Mutex<Vec<DeadLetter>>>,
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        Ok(())
    }

    async fn reject(mut self: Box<Self>, reason: &str) -> Result<(), BusError> {
        if let (Some(message), Ok(mut dead)) = (self.message.take(), self.dead.lock()) {
            let body = String::from_utf8_lossy(&encode(&message)).into_owned();
            dead.push(DeadLetter { topic: message.topic(), message: Some(message), body, reason: reason.to_string() });
        }
        Ok(())
    }

    async fn requeue(mut self: Box<Self>) -> Result<(), BusError> {
        match self.message.take() {
            Some(m) => self.tx.send((m, true)).await.map_err(|_| BusError::Closed),
            None => Ok(()),
        }
    }
}

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_bus_meets_the_bus_contract() {
        testkit::check_bus(Arc::new(MemoryBus::new(64))).await;
    }

    fn task() -> FetchTask {
        FetchTask {
            scan: "s1".into(),
            url: Url::parse("http://www.site0.test:8080/a.html").unwrap(),
            kind: TaskKind::Page,
            depth: 2,
            referrer: None,
            hops: 0,
            validators: Some(Validators { etag: Some("\"abc\"".into()), last_modified: None }),
            attempt: 1,
        }
    }

    #[test]
    fn wire_round_trip_keeps_every_field() {
        let msgs = vec![
            Message::Fetch(task()),
            Message::Report(FetchReport {
                task: task(),
                started_at_ms: 5,
                ip: Some("127.77.0.1".parse().unwrap()),
                validators: None,
                outcome: Outcome::Failed { reason: FailReason::Timeout, detail: "body".into() },
                match_messages: 0,
            }),
            Message::Match(MatchWork::ImageHashed {
                scan: "s1".into(),
                image_id: "http://img.site0.test/x.png".into(),
                page_url: Some(Url::parse("http://www.site0.test/").unwrap()),
                host: "img.site0.test".into(),
                ip: None,
                digests: Digests::of(b"abc"),
                pdq: PdqResult::Hashed {
                    hash: PdqHash::from_bytes([7; 32]),
                    quality: 90,
                    width: 3,
                    height: 4,
                    scale: 1,
                },
                fetched_at_ms: 7,
            }),
            Message::Match(MatchWork::ImageHashed {
                scan: "s1".into(),
                image_id: "http://img.site0.test/broken.jpg".into(),
                page_url: None,
                host: "img.site0.test".into(),
                ip: Some("127.77.0.2".parse().unwrap()),
                digests: Digests::of(b"\xFF\xD8\xFF"),
                pdq: PdqResult::Failed { reason: "corrupt".into(), detail: "truncated".into() },
                fetched_at_ms: 8,
            }),
        ];
        for m in msgs {
            let bytes = encode(&m);
            assert_eq!(decode(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn unknown_version_and_garbage_are_refused_with_reasons() {
        let mut v: serde_json::Value = serde_json::from_slice(&encode(&Message::Fetch(task()))).unwrap();
        v["version"] = 99.into();
        let err = decode(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(err, BusError::UnknownVersion(99)), "{err}");
        assert!(matches!(decode(b"not json"), Err(BusError::Malformed(_))));
        assert!(matches!(decode(br#"{"version":1,"kind":"fetch","body":{}}"#), Err(BusError::Malformed(_))));
    }

    #[test]
    fn data_image_id_names_type_and_hash_not_content() {
        let d = Digests::of(b"\x89PNG...");
        let id = data_image_id("image/png", &d);
        assert_eq!(id, format!("data:image/png;blake3={}", d.hex(hashscan_hash::CryptoAlgo::Blake3)));
    }

    #[tokio::test]
    async fn memory_bus_shares_a_topic_between_consumers_and_drains_after_close() {
        let bus = MemoryBus::new(16);
        let mut a = bus.consume(Topic::Fetch).await.unwrap();
        let mut b = bus.consume(Topic::Fetch).await.unwrap();
        for _ in 0..4 {
            bus.publish(Message::Fetch(task())).await.unwrap();
        }
        bus.close(Topic::Fetch);
        let mut n = 0;
        while let Some(d) = a.next().await {
            d.ack().await.unwrap();
            n += 1;
            if let Some(d) = b.next().await {
                d.reject("bad").await.unwrap();
                n += 1;
            }
        }
        assert_eq!(n, 4);
        assert_eq!(bus.dead_letters().len(), 2);
        assert!(matches!(bus.publish(Message::Fetch(task())).await, Err(BusError::Closed)));
    }
}
