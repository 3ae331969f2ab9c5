//! `hashscan-bench-refset`: a hotline-sized reference set and store.
//!
//! Builds a set of 10 M PDQ hashes and 30 M MD5s from generated list files
//! (random and clustered PDQ, as real lists have many near-duplicates),
//! writes and loads the index, measures lookups through the same API the
//! matcher uses, then fills a store with 10 M sightings and times
//! retro-matching when a new version adds entries. Everything is random
//! data; no real list is involved. Figures go to docs/benchmarks.md.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use hashscan_bus::PdqResult;
use hashscan_hash::Digests;
use hashscan_matcher::retro;
use hashscan_pdq::PdqHash;
use hashscan_refset::{Algo, Format, ListSpec, ReferenceSet, SetSpec};
use hashscan_store::{CaseStore, ImageRecord, SightingStore, SqliteStore};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Parser)]
#[command(name = "hashscan-bench-refset")]
struct Args {
    /// PDQ hashes in the set.
    #[arg(long, default_value_t = 10_000_000)]
    pdq: usize,
    /// MD5 hashes in the set.
    #[arg(long, default_value_t = 30_000_000)]
    md5: usize,
    /// Images in the store for retro-matching.
    #[arg(long, default_value_t = 10_000_000)]
    stored: usize,
    /// Queries per lookup measurement.
    #[arg(long, default_value_t = 20_000)]
    queries: usize,
    /// Working directory (default: a temporary one, removed at the end).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Skip the full re-match of every stored image (about half an hour at 10M).
    #[arg(long)]
    skip_full: bool,
}

/// Peak resident memory of the process so far (VmHWM).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1e3)
}

fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    pages * 4096.0 / 1e6
}

/// A PDQ hash `flips` random bits from `base`.
fn near(rng: &mut ChaCha8Rng, base: &[u8; 32], flips: u32) -> [u8; 32] {
    let mut h = *base;
    for _ in 0..flips {
        let bit = rng.random_range(0..256usize);
        h[bit / 8] ^= 1 << (bit % 8);
    }
    h
}

/// Half random hashes, half clusters of ten near-duplicates (≤ 12 bits).
fn pdq_hashes(rng: &mut ChaCha8Rng, n: usize) -> Vec<[u8; 32]> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n / 2 {
        out.push(rng.random());
    }
    while out.len() < n {
        let centre: [u8; 32] = rng.random();
        for _ in 0..10.min(n - out.len()) {
            let flips = rng.random_range(0..=12);
            out.push(near(rng, &centre, flips));
        }
    }
    out
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    for l in lines {
        writeln!(w, "{l}")?;
    }
    w.flush()?;
    Ok(())
}

fn per_sec(n: usize, secs: f64) -> String {
    format!("{:.0}", n as f64 / secs.max(1e-9))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    println!("# hashscan-bench-refset: {} PDQ + {} MD5 listed, {} stored images", args.pdq, args.md5, args.stored);

    // Lists.
    let t = Instant::now();
    let pdq = pdq_hashes(&mut rng, args.pdq);
    write_lines(&dir.join("pdq.signals"), pdq.iter().enumerate().map(|(i, h)| format!("pdq,{},P{i}", hex::encode(h))))?;
    let md5: Vec<[u8; 16]> = (0..args.md5).map(|_| rng.random()).collect();
    write_lines(&dir.join("md5.txt"), md5.iter().map(hex::encode))?;
    println!("generated list files in {:.1}s", t.elapsed().as_secs_f64());
    let lists = |extra: Option<&Path>| -> anyhow::Result<SetSpec> {
        let mut specs = vec![
            ListSpec { name: "pdq".into(), format: Format::Signals, ..ListSpec::for_file(&dir.join("pdq.signals")) },
            ListSpec {
                name: "md5".into(),
                format: Format::Lines,
                algo: Some(Algo::Md5),
                ..ListSpec::for_file(&dir.join("md5.txt"))
            },
        ];
        if let Some(e) = extra {
            specs.push(ListSpec { name: "additions".into(), ..ListSpec::for_file(e) });
        }
        Ok(SetSpec::new("bench", specs)?)
    };

    // Build, write, load.
    let rss0 = rss_mb();
    let t = Instant::now();
    let (set, _) = ReferenceSet::from_spec(&lists(None)?)?;
    let build_secs = t.elapsed().as_secs_f64();
    let index = dir.join("bench.hsref");
    let t = Instant::now();
    set.write_index(&index)?;
    let write_secs = t.elapsed().as_secs_f64();
    let file_bytes = std::fs::metadata(&index)?.len();
    drop(set);
    let t = Instant::now();
    let set = ReferenceSet::open_index(&index)?;
    let load_secs = t.elapsed().as_secs_f64();
    let rss_after_load = rss_mb();
    let n_hashes = set.count(Algo::Pdq) + set.count(Algo::Md5);
    println!("build {build_secs:.1}s (peak RSS {:.0} MB, {rss0:.0} MB before), write {write_secs:.1}s", peak_rss_mb());
    println!(
        "index file {:.0} MB = {:.1} bytes per listed hash ({} PDQ, {} MD5); load (mmap + checksum + checks) {load_secs:.2}s; RSS after load {:.0} MB",
        file_bytes as f64 / 1e6,
        file_bytes as f64 / n_hashes as f64,
        set.count(Algo::Pdq),
        set.count(Algo::Md5),
        rss_after_load
    );

    // Lookups through the matcher's API, single thread.
    let queries: Vec<(Digests, [u8; 32])> = (0..args.queries)
        .map(|i| {
            let mut d = Digests::of(&i.to_le_bytes());
            if i % 2 == 0 {
                d.md5 = md5[rng.random_range(0..md5.len())];
            }
            let q = if i % 2 == 0 {
                let (base, flips) = (pdq[rng.random_range(0..pdq.len())], rng.random_range(5..=25));
                near(&mut rng, &base, flips)
            } else {
                rng.random()
            };
            (d, q)
        })
        .collect();
    let t = Instant::now();
    let mut found = 0usize;
    for (d, q) in &queries {
        let h = PdqHash::from_bytes(*q);
        found += set.match_image(d, Some((&h, 100))).matches.len();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "match_image (4 exact lookups + PDQ radius 31), half near-duplicates: {} images/s ({found} matches), RSS {:.0} MB",
        per_sec(queries.len(), secs),
        rss_mb()
    );

    // A store of past sightings.
    let store = SqliteStore::open(&dir.join("store.db"))?;
    let rescorer = hashscan_matcher::rescore::Rescorer::new(
        std::sync::Arc::new(store.clone()),
        std::sync::Arc::new(store.clone()),
        0.5,
    );
    let t = Instant::now();
    let mut stored_md5 = Vec::new();
    let mut stored_pdq = Vec::new();
    for batch in 0..args.stored.div_ceil(10_000) {
        let recs: Vec<ImageRecord> = (0..10_000.min(args.stored - batch * 10_000))
            .map(|k| {
                let i = batch * 10_000 + k;
                let digests = Digests::of(format!("stored image {i}").as_bytes());
                let hash: [u8; 32] = rng.random();
                if i % 100_000 == 0 {
                    stored_md5.push(digests.md5);
                    stored_pdq.push(hash);
                }
                ImageRecord {
                    scan: "old-scan".into(),
                    image_id: format!("http://img.example.test/{i}.jpg"),
                    page_url: Some(format!("http://www.example.test/page{}.html", i / 10)),
                    host: "img.example.test".into(),
                    ip: None,
                    digests,
                    pdq: PdqResult::Hashed {
                        hash: PdqHash::from_bytes(hash),
                        quality: 90,
                        width: 640,
                        height: 480,
                        scale: 1,
                    },
                    fetched_at_ms: i as i64,
                }
            })
            .collect();
        store.record_images(recs).await?;
    }
    println!("filled the store with {} images in {:.0}s", args.stored, t.elapsed().as_secs_f64());

    if args.skip_full {
        // As if the full set had been applied: what the incremental step
        // below diffs against.
        store.set_reference_applied(set.version(), 0).await?;
    } else {
        let t = Instant::now();
        let full = retro::rematch(&store, None, &set, &rescorer).await?;
        println!(
            "full re-match of {} stored images against the whole set: {:.1}s ({} hits)",
            full.scanned,
            t.elapsed().as_secs_f64(),
            full.rematched
        );
    }
    // A new version: 1,000 additions, 100 of them hashes of stored images
    // (50 by MD5, 50 PDQs within 10 bits), the rest unrelated.
    let additions = dir.join("additions.csv");
    let mut body = String::from("md5,pdq\n");
    for m in stored_md5.iter().take(50) {
        body.push_str(&format!("{},\n", hex::encode(m)));
    }
    for p in stored_pdq.iter().take(50) {
        body.push_str(&format!(",{}\n", hex::encode(near(&mut rng, p, 10))));
    }
    for _ in 0..900 {
        let r: [u8; 16] = rng.random();
        body.push_str(&format!("{},\n", hex::encode(r)));
    }
    std::fs::write(&additions, body)?;
    let (v2, _) = ReferenceSet::from_spec(&lists(Some(&additions))?)?;
    let t = Instant::now();
    let report = retro::rematch(&store, Some(&set), &v2, &rescorer).await?;
    println!(
        "retro-matching after 1,000 additions: {} stored images examined, {} re-assessed, {} cases, {:.1}s (difference computed in the same call)",
        report.scanned,
        report.rematched,
        report.cases,
        t.elapsed().as_secs_f64()
    );
    let cases = store.hits(hashscan_store::HitFilter::default()).await?;
    let by_algo = |a: &str| cases.iter().filter(|h| h.match_algo.as_deref() == Some(a)).count();
    println!("cases by algorithm: md5 {}, pdq {}", by_algo("md5"), by_algo("pdq"));
    // The planted MD5s and PDQs are of the same stored images (the k-th of
    // each): 50 images, each hit both ways.
    let planted = stored_md5.len().min(50).max(stored_pdq.len().min(50)) as u64;
    anyhow::ensure!(
        report.cases >= planted,
        "expected the {planted} stored images among the additions to become cases"
    );
    let _ = std::fs::remove_file(&index).context("cleanup");
    Ok(())
}
