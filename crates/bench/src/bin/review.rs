//! `hashscan-bench-review`: latency of the review queue with a million
//! cases in the store (issue 8). A benchmark, not a test: it prints
//! p50/p99/max per kind of request.
//!
//! The store is filled directly (one transaction of plain inserts into the
//! tables a scan writes: contents, images, edges, cases), with benign
//! made-up hashes; the service runs in-process on 127.0.0.1 and is asked
//! over HTTP with an API token, one request at a time (an analyst's view:
//! latency, not throughput).
//!
//! SQLite by default (a temporary file). With `--database-url` the store is
//! that PostgreSQL database, which must hold no cases yet; it is filled by
//! one server-side `generate_series` per table with the same shape and
//! distribution (scores, statuses, hosts, scans, times), not the same rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use hashscan_review::{hash_password, new_api_token, ReviewConfig};
use hashscan_store::review::Actor;
use hashscan_store::{SqliteStore, Store};
use hashscan_store_postgres::PgStore;
use rand::{Rng, SeedableRng};

#[derive(Parser, Clone)]
#[command(name = "hashscan-bench-review")]
struct Args {
    /// Cases in the store.
    #[arg(long, default_value_t = 1_000_000)]
    cases: u64,
    /// Distinct hosts the images are spread over.
    #[arg(long, default_value_t = 2_000)]
    hosts: u64,
    /// Requests per kind.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Print JSON too.
    #[arg(long)]
    json: bool,
    /// Run on this PostgreSQL database (empty of cases) instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
}

/// The same tables as [`fill`], filled on the PostgreSQL server itself.
async fn fill_postgres(url: &str, args: &Args) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let n: i64 = client.query_one("SELECT count(*) FROM cases", &[]).await?.get(0);
    anyhow::ensure!(n == 0, "the database already holds {n} cases; give the benchmark an empty one");
    let (cases, hosts) = (args.cases as i64, args.hosts as i64);
    client.batch_execute("SET synchronous_commit = off; SELECT setseed(0.7)").await?;
    // One row of made-up values per case, kept for the four inserts.
    client
        .execute(
            "CREATE TEMP TABLE bench_rows AS
             SELECT i,
                    decode(md5(i::text) || md5((i + 1000000000000)::text), 'hex') AS b,
                    0.5 + random() * 0.5 AS score,
                    random() < 0.3 AS listed,
                    1767225600000 + floor(random() * 90 * 86400000)::bigint AS at,
                    'img' || (i % 7) || '.host' || floor(random() * $2::float8)::bigint || '.test' AS host,
                    'scan-' || (i % 20) AS scan,
                    random() AS status_draw
             FROM generate_series(0, $1::bigint - 1) AS i",
            &[&cases, &(hosts as f64)],
        )
        .await?;
    client
        .batch_execute(
            "INSERT INTO contents (blake3, md5, sha1, sha256, bytes, first_seen, last_seen, score, ref_score, match_kind, factors)
             SELECT b, substring(b FROM 1 FOR 16), substring(b FROM 1 FOR 20), b, 50000, at, at, score,
                    CASE WHEN listed THEN 1.0 ELSE 0.0 END, CASE WHEN listed THEN 'exact' ELSE 'none' END, '[]'
             FROM bench_rows;
             INSERT INTO images (scan, image_id, blake3, host, ip, fetched_at)
             SELECT scan, 'http://' || host || '/i/' || i || '.jpg', b, host, '127.0.0.1', at FROM bench_rows;
             INSERT INTO edges (scan, page_url, image_id, seen_at)
             SELECT scan, 'http://www.' || substring(host FROM 6) || '/p/' || (i / 8) || '.html',
                    'http://' || host || '/i/' || i || '.jpg', at FROM bench_rows;
             INSERT INTO cases (blake3, status, score, scan, opened_at, updated_at)
             SELECT b, CASE WHEN status_draw < 0.90 THEN 'open' WHEN status_draw < 0.95 THEN 'confirmed' ELSE 'not_abuse' END,
                    score, scan, at, at FROM bench_rows;
             DROP TABLE bench_rows;
             ANALYZE",
        )
        .await?;
    Ok(())
}

fn fill(path: &std::path::Path, args: &Args) -> anyhow::Result<()> {
    let mut c = rusqlite::Connection::open(path)?;
    c.pragma_update(None, "synchronous", "OFF")?;
    let tx = c.transaction()?;
    {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut content = tx.prepare(
            "INSERT INTO contents (blake3, md5, sha1, sha256, bytes, first_seen, last_seen, score, ref_score, match_kind, factors)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, '[]')",
        )?;
        let mut image = tx.prepare(
            "INSERT INTO images (scan, image_id, blake3, host, ip, fetched_at) VALUES (?1, ?2, ?3, ?4, '127.0.0.1', ?5)",
        )?;
        let mut edge = tx.prepare("INSERT INTO edges (scan, page_url, image_id, seen_at) VALUES (?1, ?2, ?3, ?4)")?;
        let mut case = tx.prepare(
            "INSERT INTO cases (blake3, status, score, scan, opened_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?;
        let t0: i64 = 1_767_225_600_000;
        for i in 0..args.cases {
            let key = blake3::hash(&i.to_le_bytes());
            let b = key.as_bytes().to_vec();
            let score: f64 = rng.random_range(0.5..1.0);
            let listed = rng.random_bool(0.3);
            let at = t0 + rng.random_range(0..90 * 86_400_000i64);
            let host = format!("img{}.host{}.test", i % 7, rng.random_range(0..args.hosts));
            let scan = format!("scan-{}", i % 20);
            let url = format!("http://{host}/i/{i}.jpg");
            let page = format!("http://www.{}/p/{}.html", &host[5..], i / 8);
            content.execute(rusqlite::params![
                b,
                &b[..16],
                &b[..20],
                &b[..],
                50_000,
                at,
                score,
                if listed { 1.0 } else { 0.0 },
                if listed { "exact" } else { "none" }
            ])?;
            image.execute(rusqlite::params![scan, url, b, host, at])?;
            edge.execute(rusqlite::params![scan, page, url, at])?;
            let status = match rng.random_range(0..100) {
                0..90 => "open",
                90..95 => "confirmed",
                _ => "not_abuse",
            };
            case.execute(rusqlite::params![b, status, score, scan, at])?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[k].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let (store, backend): (Arc<dyn Store>, &str) = match &args.database_url {
        Some(url) => {
            // Connecting applies the schema; the fill writes into it.
            let store = Arc::new(PgStore::connect(url).await.context("PostgreSQL (--database-url)")?);
            fill_postgres(url, &args).await.context("filling PostgreSQL")?;
            (store, "PostgreSQL")
        }
        None => {
            let path = dir.path().join("hashscan.db");
            let store = Arc::new(SqliteStore::open(&path)?);
            let a = Args { database_url: None, ..args.clone() };
            tokio::task::spawn_blocking(move || fill(&path, &a)).await??;
            (store, "SQLite")
        }
    };
    let fill_secs = started.elapsed().as_secs_f64();
    let actor = Actor { name: "cli:bench".into(), ip: None };
    store.add_user("bench", "lead", &hash_password("benchmark password")?, actor.clone(), 0).await?;
    let (token, hash) = new_api_token();
    store.add_token("bench", "bench", hash, actor, 0).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hashscan_review::serve(listener, store.clone(), ReviewConfig::default(), async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder().build()?;
    let fetch = |path: String| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let t = Instant::now();
            let r = http.get(format!("{base}{path}")).bearer_auth(&token).send().await?;
            let status = r.status();
            let v: serde_json::Value = serde_json::from_slice(&r.bytes().await?)?;
            anyhow::ensure!(status.is_success(), "{path}: {status} {v}");
            Ok::<_, anyhow::Error>((t.elapsed(), v))
        }
    };
    let get = |q: String| fetch(format!("/api/cases{q}"));
    println!(
        "# hashscan-bench-review: {} cases over {} hosts on {backend}, store filled in {fill_secs:.1} s; {} requests per kind, one at a time",
        args.cases, args.hosts, args.requests
    );
    let mut rows = Vec::new();
    let mut run = |name: &'static str, times: Vec<Duration>, first: Option<Duration>| {
        let mut t = times;
        t.sort();
        let row = serde_json::json!({
            "kind": name, "n": t.len(), "p50_ms": percentile(&t, 0.5), "p99_ms": percentile(&t, 0.99),
            "max_ms": t.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0), "first_ms": first.map(|d| d.as_secs_f64() * 1000.0),
        });
        eprintln!("{row}");
        rows.push(row);
    };
    // The first page of the open queue, again and again.
    let mut t = Vec::new();
    for _ in 0..args.requests {
        t.push(get("?limit=50".into()).await?.0);
    }
    run("queue, first page (50)", t, None);
    // Paging deep with the cursor.
    let (mut t, mut next) = (Vec::new(), None::<String>);
    for _ in 0..args.requests {
        let q = match &next {
            Some(c) => format!("?limit=50&after={c}"),
            None => "?limit=50".into(),
        };
        let (d, v) = get(q).await?;
        t.push(d);
        next = v["next"].as_str().map(str::to_string);
    }
    run("queue, paging on (50 per page)", t, None);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut t = Vec::new();
    for _ in 0..args.requests {
        t.push(get(format!("?limit=50&scan=scan-{}", rng.random_range(0..20))).await?.0);
    }
    run("queue, by scan", t, None);
    let mut t = Vec::new();
    for _ in 0..args.requests {
        t.push(get("?limit=50&min_score=0.95&status=confirmed".into()).await?.0);
    }
    run("queue, confirmed, score ≥ 0.95", t, None);
    // Host filters read a derived table caught up on demand: the first
    // request pays for the catch-up.
    let mut t = Vec::new();
    let mut first = None;
    for k in 0..args.requests {
        let host = format!("img{}.host{}.test", k % 7, rng.random_range(0..args.hosts));
        let (d, _) = get(format!("?limit=50&host={host}")).await?;
        if first.is_none() {
            first = Some(d);
        } else {
            t.push(d);
        }
    }
    run("queue, by host", t, first);
    // The hotspot view over the fill's 90 days, weekly, top 20 places:
    // it counts every case of the period, so it is asked fewer times.
    for (name, by) in [("hotspots, by host (13 weeks)", "host"), ("hotspots, by domain (13 weeks)", "domain")] {
        let (mut t, mut first) = (Vec::new(), None);
        for _ in 0..args.requests.div_ceil(10) {
            let path =
                format!("/api/hotspots?by={by}&bucket=week&since=2026-01-01T00:00:00Z&until=2026-04-01T00:00:00Z");
            let (d, v) = fetch(path).await?;
            anyhow::ensure!(v["places"].as_array().is_some_and(|p| !p.is_empty()), "no places in {v}");
            if first.is_none() {
                first = Some(d);
            } else {
                t.push(d);
            }
        }
        run(name, t, first);
    }
    println!("| request | n | p50 ms | p99 ms | max ms | first ms |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} |",
            r["kind"].as_str().unwrap_or_default(),
            r["n"],
            r["p50_ms"].as_f64().unwrap_or_default(),
            r["p99_ms"].as_f64().unwrap_or_default(),
            r["max_ms"].as_f64().unwrap_or_default(),
            r["first_ms"].as_f64().map_or("-".into(), |v| format!("{v:.0}"))
        );
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "backend": backend, "cases": args.cases, "fill_secs": fill_secs, "rows": rows })
        );
    }
    let _ = stop.send(());
    server.await.context("server task")??;
    Ok(())
}
