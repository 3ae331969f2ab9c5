//! The cluster's frontier store: a scan's seen-set, budgets and per-host
//! queues kept in Redis.
//!
//! In cluster mode the scheduler may be restarted at any moment (kill -9),
//! and more than one process may touch a scan's frontier, so its state
//! cannot live in a process. [`RedisFrontierStore`] implements
//! [`FrontierStore`] on Redis with the same contract as the embedded
//! `MemoryFrontierStore` (both run `hashscan_frontier::testkit`).
//!
//! # Key layout
//!
//! Every key of a scan starts with `{prefix}:{scan}:` (see
//! [`RedisFrontierStore::scan_namespace`]):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `…:seen` | set | normalised URLs offered so far |
//! | `…:pages` | string (integer) | pages taken from the scan's budget |
//! | `…:host_pages` | hash host → integer | pages taken from each host's budget |
//! | `…:query_variants` | hash host+path → integer | query strings counted per path |
//! | `…:q:{host}` | list of task JSON | the host's queue, head first |
//! | `…:hosts` | set | hosts whose queue is not empty |
//! | `…:queued` | string (integer) | tasks in all the scan's queues |
//! | `…:bad` | list | queue entries that did not decode, moved aside |
//!
//! # Atomicity
//!
//! Each operation is one Redis command or one Lua script, and Redis runs a
//! script without interleaving any other client's command, so callers in
//! other processes never see half an operation:
//! * budgets are checked and charged in one script, so a cap is never
//!   exceeded however many callers race (and a refused call writes nothing);
//! * the seen-set is `SADD`, query variants `HINCRBY`;
//! * admitting an offered URL (seen-set, query variants, both page budgets
//!   and the push) is one script, so a scheduler killed mid-offer leaves
//!   the URL either queued or not seen at all, never seen and unqueued;
//! * a push (`RPUSH`, or `LPUSH` for a retry), its host's entry in `…:hosts`
//!   and the `…:queued` counter change in one script, and so do a pop
//!   (`LPOP`), the counter and the removal of a host whose queue it emptied.
//!
//! The scripts check the types of their keys before writing anything, so a
//! script that fails (a key clobbered by hand) fails without a partial write.
//!
//! # Failures
//!
//! Connections go through redis' `ConnectionManager`, which reconnects after
//! a dropped connection; the operation that met the failure returns a
//! [`StoreError`] naming the operation and key, and is not retried
//! (a retried `dequeue` could hand out a second task, a retried push could
//! queue one twice). A queue entry that is not a valid task is never handed
//! out nor silently dropped: `dequeue` moves it to `…:bad` and returns an
//! error naming the queue.
#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hashscan_bus::FetchTask;
use hashscan_frontier::{AdmitChecks, Admitted, FrontierStore, SavedState, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, RedisError, Script, ScriptInvocation};

/// How long one connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a reply may take. Generous: a reply lost to a timeout after the
/// server ran a pop would lose that task, so only a server that is really
/// gone should hit it.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection attempts before an operation gives up (with exponential
/// back-off from 100 ms, at most 1 s apart), so an unreachable server is
/// reported within seconds rather than waited for.
const RECONNECT_RETRIES: usize = 3;
/// Keys asked for per `SCAN` step in [`RedisFrontierStore::forget_scan`].
const SCAN_COUNT: usize = 1_000;
/// `SCAN` steps after which [`RedisFrontierStore::forget_scan`] gives up: a
/// full iteration of a database of `SCAN_COUNT × MAX_SCAN_STEPS` (10⁸) keys.
const MAX_SCAN_STEPS: usize = 100_000;
/// Bytes of an undecodable entry quoted in an error when it could not be
/// moved aside.
const QUOTE_BYTES: usize = 200;

/// Lua: checks that `key` is absent or of type `want`; returns an error
/// text otherwise. And that a counter is absent or an integer.
const LUA_CHECKS: &str = r"
local function expect(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    return 'WRONGTYPE ' .. key .. ' is a ' .. t .. ', expected a ' .. want
  end
  return nil
end
local function expect_count(key, v)
  if v and not string.match(v, '^%-?%d+$') then
    return key .. ' holds ' .. string.sub(v, 1, 40) .. ', not a count'
  end
  return nil
end
";

/// Lua: takes one unit of a budget kept in a string counter.
/// KEYS[1] counter; ARGV[1] cap. 1 when granted, 0 when spent (nothing written).
/// Caps above 2⁵³ lose precision in Lua's numbers; no scan has that many pages.
const LUA_TAKE: &str = r"
local err = expect(KEYS[1], 'string')
if err then return redis.error_reply(err) end
local v = redis.call('GET', KEYS[1])
err = expect_count(KEYS[1], v)
if err then return redis.error_reply(err) end
local n = 0
if v then n = tonumber(v) end
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
return 1
";

/// Lua: takes one unit of a budget kept in a hash field.
/// KEYS[1] hash; ARGV[1] cap, ARGV[2] field. 1 when granted, 0 when spent.
const LUA_TAKE_FIELD: &str = r"
local err = expect(KEYS[1], 'hash')
if err then return redis.error_reply(err) end
local v = redis.call('HGET', KEYS[1], ARGV[2])
err = expect_count(KEYS[1] .. ' field ' .. ARGV[2], v)
if err then return redis.error_reply(err) end
local n = 0
if v then n = tonumber(v) end
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
return 1
";

/// Lua: queues a task. KEYS[1] host queue, KEYS[2] host set, KEYS[3] queued
/// counter, KEYS[4] handed-out hash; ARGV[1] task JSON, ARGV[2] host,
/// ARGV[3] `front` (a task put back: no longer handed out) or `back`,
/// ARGV[4] the task's URL.
const LUA_PUSH: &str = r"
local err = expect(KEYS[1], 'list') or expect(KEYS[2], 'set') or expect(KEYS[3], 'string')
  or expect_count(KEYS[3], redis.call('GET', KEYS[3]))
if err then return redis.error_reply(err) end
if ARGV[3] == 'front' then
  -- A task put back is no longer handed out.
  redis.call('HDEL', KEYS[4], ARGV[4])
  redis.call('LPUSH', KEYS[1], ARGV[1])
else
  redis.call('RPUSH', KEYS[1], ARGV[1])
end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('INCR', KEYS[3])
return 1
";

/// Lua: takes the head of a host's queue. KEYS as for the push; ARGV[1] host,
/// ARGV[2] `take` to record the task as handed out in the same step.
/// The task's JSON, or nil when the queue is empty. A host leaves the host
/// set with its last task.
const LUA_POP: &str = r"
local err = expect(KEYS[1], 'list') or expect(KEYS[2], 'set') or expect(KEYS[3], 'string')
  or expect_count(KEYS[3], redis.call('GET', KEYS[3]))
if err then return redis.error_reply(err) end
local v = redis.call('LPOP', KEYS[1])
if not v then
  redis.call('SREM', KEYS[2], ARGV[1])
  return false
end
if redis.call('DECR', KEYS[3]) < 0 then redis.call('SET', KEYS[3], '0') end
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
if ARGV[2] == 'take' then
  -- Handed out in the same step: a scheduler dying now cannot lose it.
  local ok, t = pcall(cjson.decode, v)
  if ok and type(t) == 'table' and type(t['url']) == 'string' then
    redis.call('HSET', KEYS[4], t['url'], v)
  end
end
return v
";

/// Lua: admits one offered URL (see `FrontierStore::admit`), every check
/// and write in one step. KEYS[1] seen set, KEYS[2] query-variant hash,
/// KEYS[3] host-page hash, KEYS[4] page counter, KEYS[5] host queue,
/// KEYS[6] host set, KEYS[7] queued counter; ARGV[1] seen key, ARGV[2]
/// host+path ('' without a query), ARGV[3] max query variants, ARGV[4]
/// '1' for a page, ARGV[5] host page cap, ARGV[6] scan page cap, ARGV[7]
/// task JSON, ARGV[8] host. Returns what happened, as `Admitted` names it.
const LUA_ADMIT: &str = r"
local err = expect(KEYS[1], 'set') or expect(KEYS[2], 'hash') or expect(KEYS[3], 'hash')
  or expect(KEYS[4], 'string') or expect(KEYS[5], 'list') or expect(KEYS[6], 'set') or expect(KEYS[7], 'string')
  or expect_count(KEYS[4], redis.call('GET', KEYS[4])) or expect_count(KEYS[7], redis.call('GET', KEYS[7]))
  or expect_count(KEYS[3] .. ' field ' .. ARGV[8], redis.call('HGET', KEYS[3], ARGV[8]))
if err then return redis.error_reply(err) end
if ARGV[2] ~= '' then
  err = expect_count(KEYS[2] .. ' field ' .. ARGV[2], redis.call('HGET', KEYS[2], ARGV[2]))
  if err then return redis.error_reply(err) end
end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 'duplicate' end
if ARGV[2] ~= '' then
  if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) > tonumber(ARGV[3]) then return 'trap_query' end
end
if ARGV[4] == '1' then
  local h = tonumber(redis.call('HGET', KEYS[3], ARGV[8]) or '0')
  if h >= tonumber(ARGV[5]) then return 'host_budget' end
  redis.call('HINCRBY', KEYS[3], ARGV[8], 1)
  local p = tonumber(redis.call('GET', KEYS[4]) or '0')
  if p >= tonumber(ARGV[6]) then return 'page_budget' end
  redis.call('INCR', KEYS[4])
end
redis.call('RPUSH', KEYS[5], ARGV[7])
redis.call('SADD', KEYS[6], ARGV[8])
redis.call('INCR', KEYS[7])
return 'queued'
";

/// What went wrong, before it is flattened into the trait's [`StoreError`].
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("invalid Redis URL {url}: {source}")]
    Url { url: String, source: RedisError },
    #[error(
        "invalid key prefix {0:?}: it must be non-empty and free of ':', of the glob characters *?[]\\ \
         and of control characters, so that no scan's keys can match another's"
    )]
    Prefix(String),
    #[error("Redis not reachable at {url}: {source}")]
    Unreachable { url: String, source: RedisError },
    #[error("Redis {op} on {key}: {source}")]
    Command { op: &'static str, key: String, source: RedisError },
    #[error("{op}: {key} holds {value:?}, not a count")]
    Counter { op: &'static str, key: String, value: String },
    #[error("enqueue: cannot encode the task for {url}: {source}")]
    Encode { url: String, source: serde_json::Error },
    #[error("dequeue: the entry at the head of {key} is not a task ({source}); moved it to {bad}")]
    BadTask { key: String, bad: String, source: serde_json::Error },
    #[error(
        "dequeue: the entry at the head of {key} is not a task ({source}), and moving it to {bad} \
         failed ({moved}); it began {head:?}"
    )]
    BadTaskLost { key: String, bad: String, source: serde_json::Error, moved: RedisError, head: String },
    #[error("forget_scan: still finding keys matching {pattern} after {steps} SCAN steps; stopped")]
    EndlessScan { pattern: String, steps: usize },
}

impl From<Failure> for StoreError {
    fn from(f: Failure) -> Self {
        StoreError(f.to_string())
    }
}

/// The Lua scripts, hashed once (calls go by `EVALSHA`, and redis-rs loads
/// a script the server does not know yet).
struct Scripts {
    take: Script,
    take_field: Script,
    push: Script,
    pop: Script,
    admit: Script,
}

impl Scripts {
    fn new() -> Self {
        let with_checks = |body: &str| Script::new(&format!("{LUA_CHECKS}{body}"));
        Self {
            take: with_checks(LUA_TAKE),
            take_field: with_checks(LUA_TAKE_FIELD),
            push: with_checks(LUA_PUSH),
            pop: with_checks(LUA_POP),
            admit: with_checks(LUA_ADMIT),
        }
    }
}

/// A [`FrontierStore`] on Redis, for cluster mode: any number of processes
/// (and a restarted scheduler) share one scan's frontier through it.
///
/// Cheap to clone; clones share one multiplexed connection, which
/// reconnects by itself after the server or the network drops it.
#[derive(Clone)]
pub struct RedisFrontierStore {
    con: ConnectionManager,
    prefix: String,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisFrontierStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFrontierStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// The names of one scan's keys.
struct Keys(String);

impl Keys {
    fn seen(&self) -> String {
        format!("{}:seen", self.0)
    }
    fn pages(&self) -> String {
        format!("{}:pages", self.0)
    }
    fn host_pages(&self) -> String {
        format!("{}:host_pages", self.0)
    }
    fn query_variants(&self) -> String {
        format!("{}:query_variants", self.0)
    }
    fn queue(&self, host: &str) -> String {
        format!("{}:q:{host}", self.0)
    }
    fn hosts(&self) -> String {
        format!("{}:hosts", self.0)
    }
    fn queued(&self) -> String {
        format!("{}:queued", self.0)
    }
    fn bad(&self) -> String {
        format!("{}:bad", self.0)
    }
    fn in_flight(&self) -> String {
        format!("{}:in_flight", self.0)
    }
    fn ready(&self) -> String {
        format!("{}:ready", self.0)
    }
    fn state(&self) -> String {
        format!("{}:state", self.0)
    }
}

/// Characters that may not appear verbatim in a key segment: the separator,
/// the escape itself and what `SCAN … MATCH` would read as a pattern.
fn is_special(c: char) -> bool {
    matches!(c, ':' | '%' | '*' | '?' | '[' | ']' | '\\') || c.is_control()
}

/// A scan id as one key segment: special characters percent-encoded, so
/// scans `a` and `a:b` get disjoint key sets and a pattern over one never
/// matches the other's keys. Ordinary ids stay as they are.
fn segment(scan: &str) -> String {
    let mut out = String::with_capacity(scan.len());
    for c in scan.chars() {
        if is_special(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(an unparsable URL)".to_string(),
    }
}

/// A count read from a counter key; a missing key is zero.
fn count(op: &'static str, key: &str, value: Option<String>) -> Result<u64, Failure> {
    match value {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| Failure::Counter { op, key: key.to_string(), value: v }),
    }
}

impl RedisFrontierStore {
    /// Connects to the Redis at `url` (`redis://host:port/db`, see the
    /// redis crate for the forms) and checks that it answers, so a
    /// misconfigured worker fails at start-up rather than at its first task.
    /// Every key lives under `{prefix}:`; the prefix separates deployments
    /// sharing one server and must be one key segment (no `:`, no glob
    /// characters).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        if prefix.is_empty() || prefix.chars().any(is_special) {
            return Err(Failure::Prefix(prefix.to_string()).into());
        }
        let shown = redact(url);
        let client = redis::Client::open(url).map_err(|source| Failure::Url { url: shown.clone(), source })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(Duration::from_secs(1));
        let mut con = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|source| Failure::Unreachable { url: shown.clone(), source })?;
        redis::cmd("PING")
            .query_async::<String>(&mut con)
            .await
            .map_err(|source| Failure::Unreachable { url: shown.clone(), source })?;
        Ok(Self { con, prefix: prefix.to_string(), scripts: Arc::new(Scripts::new()) })
    }

    /// The namespace of a scan's keys, `{prefix}:{scan}` with the scan id
    /// escaped as one segment (`:` → `%3A`, …): what an operator greps for
    /// in `redis-cli --scan`, and what tests use to reach the raw keys.
    pub fn scan_namespace(&self, scan: &str) -> String {
        format!("{}:{}", self.prefix, segment(scan))
    }

    fn keys(&self, scan: &str) -> Keys {
        Keys(self.scan_namespace(scan))
    }

    /// Deletes every key of a scan, for tests and for ops retiring a scan;
    /// returns how many keys went. Walks the keys with `SCAN` (never
    /// `KEYS`, which blocks the server) and deletes them with `UNLINK`
    /// (freed in the background), both in bounded batches. Meant for a scan
    /// no process is working on: keys written during the walk may survive.
    pub async fn forget_scan(&self, scan: &str) -> Result<u64, StoreError> {
        let pattern = format!("{}:*", self.scan_namespace(scan));
        let mut con = self.con.clone();
        let mut cursor = 0u64;
        let mut removed = 0u64;
        for _ in 0..MAX_SCAN_STEPS {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut con)
                .await
                .map_err(|source| Failure::Command { op: "forget_scan (SCAN)", key: pattern.clone(), source })?;
            if !keys.is_empty() {
                let n: u64 = redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async(&mut con)
                    .await
                    .map_err(|source| Failure::Command { op: "forget_scan (UNLINK)", key: pattern.clone(), source })?;
                removed += n;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
        Err(Failure::EndlessScan { pattern, steps: MAX_SCAN_STEPS }.into())
    }

    /// Runs one command whose failure is reported as `op` on `key`.
    async fn query<T: FromRedisValue>(&self, op: &'static str, key: &str, cmd: &Cmd) -> Result<T, StoreError> {
        let mut con = self.con.clone();
        cmd.query_async(&mut con).await.map_err(|source| Failure::Command { op, key: key.to_string(), source }.into())
    }

    /// Runs one script whose failure is reported as `op` on `key`.
    async fn eval<T: FromRedisValue>(
        &self,
        op: &'static str,
        key: &str,
        call: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut con = self.con.clone();
        call.invoke_async(&mut con).await.map_err(|source| Failure::Command { op, key: key.to_string(), source }.into())
    }

    /// Queues a task at the back (`enqueue`) or front (`requeue_front`) of
    /// its host's queue.
    async fn push(&self, op: &'static str, task: &FetchTask, end: &str) -> Result<(), StoreError> {
        let json = serde_json::to_vec(task).map_err(|source| Failure::Encode { url: task.url.to_string(), source })?;
        let keys = self.keys(&task.scan);
        let host = task.host();
        let queue = keys.queue(host);
        let mut call = self.scripts.push.prepare_invoke();
        call.key(&queue)
            .key(keys.hosts())
            .key(keys.queued())
            .key(keys.in_flight())
            .arg(json)
            .arg(host)
            .arg(end)
            .arg(task.url.as_str());
        self.eval::<i64>(op, &queue, &call).await.map(drop)
    }

    /// Pops a host's next task; `take` also records it as handed out.
    async fn pop(&self, op: &'static str, scan: &str, host: &str) -> Result<Option<FetchTask>, StoreError> {
        let keys = self.keys(scan);
        let queue = keys.queue(host);
        let mut call = self.scripts.pop.prepare_invoke();
        call.key(&queue).key(keys.hosts()).key(keys.queued()).key(keys.in_flight()).arg(host).arg(op);
        let Some(raw) = self.eval::<Option<Vec<u8>>>(op, &queue, &call).await? else {
            return Ok(None);
        };
        match serde_json::from_slice::<FetchTask>(&raw) {
            Ok(task) => Ok(Some(task)),
            Err(source) => Err(self.set_aside(&keys, &queue, raw, source).await),
        }
    }

    /// A task popped from `queue` that does not decode: moved to the scan's
    /// `bad` list so it neither blocks the queue nor disappears.
    async fn set_aside(&self, keys: &Keys, queue: &str, raw: Vec<u8>, source: serde_json::Error) -> StoreError {
        let bad = keys.bad();
        let mut con = self.con.clone();
        let moved = redis::cmd("RPUSH").arg(&bad).arg(&raw).query_async::<i64>(&mut con).await;
        match moved {
            Ok(_) => Failure::BadTask { key: queue.to_string(), bad, source }.into(),
            Err(moved) => {
                let head = String::from_utf8_lossy(&raw[..raw.len().min(QUOTE_BYTES)]).into_owned();
                Failure::BadTaskLost { key: queue.to_string(), bad, source, moved, head }.into()
            }
        }
    }
}

#[async_trait]
impl FrontierStore for RedisFrontierStore {
    async fn mark_seen(&self, scan: &str, key: &str) -> Result<bool, StoreError> {
        let set = self.keys(scan).seen();
        let added: i64 = self.query("mark_seen", &set, redis::cmd("SADD").arg(&set).arg(key)).await?;
        Ok(added == 1)
    }

    async fn take_page(&self, scan: &str, max_pages: u64) -> Result<bool, StoreError> {
        let counter = self.keys(scan).pages();
        let mut call = self.scripts.take.prepare_invoke();
        call.key(&counter).arg(max_pages);
        Ok(self.eval::<i64>("take_page", &counter, &call).await? == 1)
    }

    async fn take_host_page(&self, scan: &str, host: &str, max_pages: u64) -> Result<bool, StoreError> {
        let hash = self.keys(scan).host_pages();
        let mut call = self.scripts.take_field.prepare_invoke();
        call.key(&hash).arg(max_pages).arg(host);
        Ok(self.eval::<i64>("take_host_page", &hash, &call).await? == 1)
    }

    async fn count_query_variant(&self, scan: &str, host_path: &str) -> Result<u64, StoreError> {
        let hash = self.keys(scan).query_variants();
        let n: i64 =
            self.query("count_query_variant", &hash, redis::cmd("HINCRBY").arg(&hash).arg(host_path).arg(1)).await?;
        u64::try_from(n).map_err(|_| {
            Failure::Counter {
                op: "count_query_variant",
                key: format!("{hash} field {host_path}"),
                value: n.to_string(),
            }
            .into()
        })
    }

    async fn requeue_front(&self, task: FetchTask) -> Result<(), StoreError> {
        self.push("requeue_front", &task, "front").await
    }

    async fn enqueue(&self, task: FetchTask) -> Result<(), StoreError> {
        self.push("enqueue", &task, "back").await
    }

    async fn admit(&self, task: FetchTask, checks: &AdmitChecks) -> Result<Admitted, StoreError> {
        let json = serde_json::to_vec(&task).map_err(|source| Failure::Encode { url: task.url.to_string(), source })?;
        let keys = self.keys(&task.scan);
        let host = task.host();
        let queue = keys.queue(host);
        let (query_field, max_variants) = checks.query.clone().unwrap_or_default();
        let (is_page, host_cap, scan_cap) = match checks.pages {
            Some((h, s)) => ("1", h, s),
            None => ("0", 0, 0),
        };
        let mut call = self.scripts.admit.prepare_invoke();
        call.key(keys.seen())
            .key(keys.query_variants())
            .key(keys.host_pages())
            .key(keys.pages())
            .key(&queue)
            .key(keys.hosts())
            .key(keys.queued())
            .arg(&checks.seen_key)
            .arg(query_field)
            .arg(max_variants)
            .arg(is_page)
            .arg(host_cap)
            .arg(scan_cap)
            .arg(json)
            .arg(host);
        let outcome: String = self.eval("admit", &queue, &call).await?;
        match outcome.as_str() {
            "queued" => Ok(Admitted::Queued),
            "duplicate" => Ok(Admitted::Duplicate),
            "trap_query" => Ok(Admitted::TrapQuery),
            "host_budget" => Ok(Admitted::HostBudget),
            "page_budget" => Ok(Admitted::PageBudget),
            other => Err(StoreError(format!("admit: the script answered {other:?}"))),
        }
    }

    async fn dequeue(&self, scan: &str, host: &str) -> Result<Option<FetchTask>, StoreError> {
        self.pop("dequeue", scan, host).await
    }

    async fn take(&self, scan: &str, host: &str) -> Result<Option<FetchTask>, StoreError> {
        self.pop("take", scan, host).await
    }

    async fn host_queued_len(&self, scan: &str, host: &str) -> Result<u64, StoreError> {
        let queue = self.keys(scan).queue(host);
        let n: i64 = self.query("host_queued_len", &queue, redis::cmd("LLEN").arg(&queue)).await?;
        Ok(n.max(0) as u64)
    }

    async fn in_flight(&self, scan: &str) -> Result<Vec<FetchTask>, StoreError> {
        let hash = self.keys(scan).in_flight();
        let raw: Vec<Vec<u8>> = self.query("in_flight", &hash, redis::cmd("HVALS").arg(&hash)).await?;
        raw.iter()
            .map(|r| {
                serde_json::from_slice(r)
                    .map_err(|e| StoreError(format!("in_flight: an entry of {hash} is not a task: {e}")))
            })
            .collect()
    }

    async fn settle(&self, scan: &str, url: &str, host: &str, ready_at_ms: i64, state: &str) -> Result<(), StoreError> {
        let keys = self.keys(scan);
        let mut con = self.con.clone();
        redis::pipe()
            .atomic()
            .hdel(keys.in_flight(), url)
            .hset(keys.ready(), host, ready_at_ms)
            .set(keys.state(), state)
            .query_async::<()>(&mut con)
            .await
            .map_err(|source| Failure::Command { op: "settle", key: keys.state(), source }.into())
    }

    async fn saved_state(&self, scan: &str) -> Result<Option<SavedState>, StoreError> {
        let keys = self.keys(scan);
        let state: Option<String> =
            self.query("saved_state", &keys.state(), redis::cmd("GET").arg(keys.state())).await?;
        let Some(state) = state else { return Ok(None) };
        let ready: std::collections::BTreeMap<String, i64> =
            self.query("saved_state", &keys.ready(), redis::cmd("HGETALL").arg(keys.ready())).await?;
        Ok(Some(SavedState { state, ready_at_ms: ready }))
    }

    async fn queued_hosts(&self, scan: &str) -> Result<Vec<String>, StoreError> {
        let set = self.keys(scan).hosts();
        let mut hosts: Vec<String> = self.query("queued_hosts", &set, redis::cmd("SMEMBERS").arg(&set)).await?;
        // Sorted like the memory store's, so schedules rebuild in a stable order.
        hosts.sort();
        Ok(hosts)
    }

    async fn queued_len(&self, scan: &str) -> Result<u64, StoreError> {
        let counter = self.keys(scan).queued();
        let value: Option<String> = self.query("queued_len", &counter, redis::cmd("GET").arg(&counter)).await?;
        Ok(count("queued_len", &counter, value)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_ids_become_one_key_segment() {
        assert_eq!(segment("scan-1_a.b"), "scan-1_a.b");
        assert_eq!(segment("a:b"), "a%3Ab");
        assert_eq!(segment("50%*?[x]\\"), "50%25%2A%3F%5Bx%5D%5C");
        assert_eq!(segment("é\n"), "é%0A");
        assert_ne!(segment("a:b"), segment("a%3Ab"), "the escape character is escaped too");
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact("redis://:s3cret@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(redact("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
        assert_eq!(redact("not a url"), "(an unparsable URL)");
    }

    #[test]
    fn counters_must_hold_counts() {
        assert_eq!(count("op", "k", None).unwrap(), 0);
        assert_eq!(count("op", "k", Some("12".into())).unwrap(), 12);
        let e = StoreError::from(count("queued_len", "p:s:queued", Some("x".into())).unwrap_err());
        assert_eq!(e.to_string(), "frontier store: queued_len: p:s:queued holds \"x\", not a count");
    }
}
