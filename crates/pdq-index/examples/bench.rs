//! PDQ index benchmark: radius queries per second over millions of generated
//! hashes, for the MIH index, our linear popcount scan and faiss
//! (`IndexBinaryMultiHash` and its `IndexBinaryFlat` scan, through
//! `faiss_bench.py`, on the same file and the same queries), plus build
//! time, load time and memory per hash.
//!
//! ```text
//! pip install faiss-cpu numpy
//! cargo run --release -p hashscan-pdq-index --example bench -- --n 10000000
//! ```
//!
//! `--slices M` forces a slice count, `--huge-pages` loads into transparent
//! huge pages, `--skip-faiss` runs without faiss (and says so), `--sweep`
//! measures forced probes against forced scans over set sizes and radii
//! (how the strategy's costs were checked). Everything is generated from a
//! seed: random hashes, and clustered ones (centres with near duplicates, as
//! real lists have). No real hash list is used. Results: docs/pdq-index.md.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use hashscan_pdq::PdqHash;
use hashscan_pdq_index::{Match, OwnedPdqIndex, PdqIndex, PdqIndexBuilder, PdqIndexParts, SliceLayout, Strategy};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Parser, Debug)]
#[command(about = "PDQ radius-query benchmark: MIH index vs linear scan vs faiss IndexBinaryMultiHash")]
struct Args {
    /// Number of indexed hashes per set.
    #[arg(long, default_value_t = 10_000_000)]
    n: usize,
    /// Sets to run: random, clustered.
    #[arg(long, value_delimiter = ',', default_value = "random,clustered")]
    sets: Vec<String>,
    /// Queries for the index (half near duplicates of indexed hashes, half random).
    #[arg(long, default_value_t = 20_000)]
    queries: usize,
    /// Queries for the linear scan (the first ones of the same list).
    #[arg(long, default_value_t = 100)]
    linear_queries: usize,
    /// Queries for faiss (the first ones of the same list).
    #[arg(long, default_value_t = 2_000)]
    faiss_queries: usize,
    /// Query radius (distance ≤ radius is a match).
    #[arg(long, default_value_t = 31)]
    radius: u32,
    /// Timed repetitions of each measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Seed of every generated hash and query.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the index and query files go (about 1 GB per 10 M hashes).
    #[arg(long, default_value = "target/pdq-index-bench")]
    dir: PathBuf,
    /// Python interpreter with faiss-cpu and numpy.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Slice count (11..=16); default: chosen from n by the builder.
    #[arg(long)]
    slices: Option<usize>,
    /// Load the index into memory advised to use transparent huge pages.
    #[arg(long)]
    huge_pages: bool,
    /// Do not run faiss (the report then says so).
    #[arg(long)]
    skip_faiss: bool,
    /// Instead of the benchmark, measure probe vs scan cost over a range of
    /// set sizes and radii (how the strategy constants were chosen).
    #[arg(long)]
    sweep: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.repeats >= 1, "--repeats must be at least 1");
    ensure!(args.n >= 1 && args.queries >= 1, "--n and --queries must be at least 1");
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    println!("command: {}", std::env::args().collect::<Vec<_>>().join(" "));
    println!("machine: {}, {} cores; load average at start: {}", cpu_model(), num_cores(), loadavg());
    if args.sweep {
        return sweep(&args);
    }
    if !args.skip_faiss {
        check_faiss(&args.python)?;
    }
    let mut rows = Vec::new();
    for set in &args.sets {
        rows.push(run_set(&args, set)?);
    }
    println!("\nload average at end: {}", loadavg());
    print_table(&args, &rows);
    Ok(())
}

/// Fails early, with the fix, when faiss cannot be imported.
fn check_faiss(python: &str) -> Result<()> {
    let out = Command::new(python)
        .args(["-c", "import faiss, numpy; print(faiss.__version__)"])
        .output()
        .with_context(|| format!("running {python}"))?;
    if !out.status.success() {
        bail!(
            "faiss is not importable by {python}: {}\ninstall it with `pip install faiss-cpu numpy`, \
             or pass --skip-faiss to run without the comparison",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    println!("faiss-cpu {}", String::from_utf8_lossy(&out.stdout).trim());
    Ok(())
}

// ---------------------------------------------------------------- data

fn random_hash(rng: &mut ChaCha8Rng) -> [u8; 32] {
    let mut h = [0u8; 32];
    rng.fill_bytes(&mut h);
    h
}

/// `h` with `k` distinct random bits flipped.
fn flip_bits(rng: &mut ChaCha8Rng, h: &[u8; 32], k: u32) -> [u8; 32] {
    let mut out = *h;
    let mut flipped = [0u64; 4];
    let mut left = k;
    while left > 0 {
        let bit = rng.random_range(0..256usize);
        if flipped[bit / 64] & (1 << (bit % 64)) == 0 {
            flipped[bit / 64] |= 1 << (bit % 64);
            out[bit / 8] ^= 1 << (bit % 8);
            left -= 1;
        }
    }
    out
}

/// `random`: n uniform hashes. `clustered`: n/10 centres, each with 10 near
/// duplicates 0..=12 bits away, shuffled (a list is not sorted by cluster,
/// and keeping clusters adjacent would flatter any index's cache use).
fn generate(set: &str, n: usize, seed: u64) -> Result<Vec<[u8; 32]>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut hashes = Vec::with_capacity(n);
    match set {
        "random" => hashes.extend((0..n).map(|_| random_hash(&mut rng))),
        "clustered" => {
            while hashes.len() < n {
                let centre = random_hash(&mut rng);
                for _ in 0..10.min(n - hashes.len()) {
                    let k = rng.random_range(0..=12);
                    hashes.push(flip_bits(&mut rng, &centre, k));
                }
            }
            for i in (1..n).rev() {
                hashes.swap(i, rng.random_range(0..=i));
            }
        }
        other => bail!("unknown set {other:?} (random, clustered)"),
    }
    Ok(hashes)
}

/// Alternating: a near duplicate of a random indexed hash (5..=25 bits
/// away), then a uniformly random hash.
fn make_queries(hashes: &[[u8; 32]], count: usize, seed: u64) -> Vec<[u8; 32]> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|i| {
            if i % 2 == 0 {
                let base = hashes[rng.random_range(0..hashes.len())];
                let k = rng.random_range(5..=25);
                flip_bits(&mut rng, &base, k)
            } else {
                random_hash(&mut rng)
            }
        })
        .collect()
}

// ---------------------------------------------------------------- file

const MAGIC: &[u8; 8] = b"HSPDQIX1";
const HEADER: usize = 64;
const ALIGN: usize = 4096;

/// Section offsets of the benchmark's file: a 64-byte header (magic, then
/// n, the slice count and the three section offsets as u64 little-endian),
/// then hashes, offsets and ids, each 4096-aligned. faiss_bench.py reads the
/// same header.
struct FileLayout {
    n: usize,
    slices: usize,
    hashes: usize,
    offsets: usize,
    ids: usize,
    end: usize,
}

impl FileLayout {
    fn new(n: usize, slices: usize) -> Result<FileLayout> {
        let up = |x: usize| x.div_ceil(ALIGN) * ALIGN;
        let layout = SliceLayout::new(slices).context("bad slice count")?;
        let hashes = up(HEADER);
        let offsets = up(hashes + 32 * n);
        let ids = up(offsets + 4 * layout.offsets_len());
        let end = ids + 4 * slices * n;
        Ok(FileLayout { n, slices, hashes, offsets, ids, end })
    }

    fn parse(bytes: &[u8]) -> Result<FileLayout> {
        ensure!(bytes.len() >= HEADER && &bytes[..8] == MAGIC, "not a benchmark index file");
        let field = |i: usize| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().unwrap()) as usize;
        let layout = FileLayout::new(field(1), field(2))?;
        ensure!(
            (field(3), field(4), field(5)) == (layout.hashes, layout.offsets, layout.ids),
            "unexpected section offsets"
        );
        ensure!(bytes.len() >= layout.end, "file truncated: {} bytes, expected {}", bytes.len(), layout.end);
        Ok(layout)
    }

    fn index<'a>(&self, bytes: &'a [u8]) -> Result<PdqIndex<'a>> {
        Ok(PdqIndex::from_le_bytes(
            self.slices,
            &bytes[self.hashes..self.hashes + 32 * self.n],
            &bytes[self.offsets
                ..self.offsets + 4 * SliceLayout::new(self.slices).context("bad slice count")?.offsets_len()],
            &bytes[self.ids..self.end],
        )?)
    }
}

fn write_index(path: &Path, parts: &PdqIndexParts) -> Result<()> {
    let layout = FileLayout::new(parts.hashes.len(), parts.slices)?;
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    for (i, v) in [layout.n, layout.slices, layout.hashes, layout.offsets, layout.ids].into_iter().enumerate() {
        header[8 * (i + 1)..8 * (i + 2)].copy_from_slice(&(v as u64).to_le_bytes());
    }
    w.write_all(&header)?;
    let mut pos = HEADER;
    let [h, o, i] = parts.as_le_bytes();
    for (start, bytes) in [(layout.hashes, h), (layout.offsets, o), (layout.ids, i)] {
        w.write_all(&vec![0u8; start - pos])?;
        w.write_all(bytes)?;
        pos = start + bytes.len();
    }
    w.into_inner()?.sync_all()?;
    Ok(())
}

/// Asks the kernel to drop this file's pages from the page cache, so the next
/// read comes from disk (affects only this file).
fn evict_from_page_cache(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let f = File::open(path)?;
    // SAFETY: plain syscall on an open descriptor.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    ensure!(rc == 0, "posix_fadvise failed: {rc}");
    Ok(())
}

/// Reads the whole file into 8-aligned memory; with `huge`, asks for
/// transparent huge pages first (fewer TLB misses on random access).
fn read_aligned(path: &Path, huge: bool) -> Result<Vec<u64>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len() as usize;
    let mut buf = vec![0u64; len.div_ceil(8)];
    if huge {
        advise_huge_pages(&mut buf);
    }
    f.read_exact(&mut bytemuck::cast_slice_mut::<u64, u8>(&mut buf)[..len])?;
    Ok(buf)
}

/// `madvise(MADV_HUGEPAGE)` on the 2 MiB-aligned interior of `buf`, before
/// its pages are touched.
fn advise_huge_pages(buf: &mut [u64]) {
    const HUGE: usize = 2 << 20;
    let start = buf.as_mut_ptr() as usize;
    let end = start + size_of_val(buf);
    let (a, b) = (start.div_ceil(HUGE) * HUGE, end / HUGE * HUGE);
    if b > a {
        // SAFETY: advice on memory this buffer owns; it changes no contents.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE) };
    }
}

// ---------------------------------------------------------------- measuring

fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Wall and this thread's CPU seconds of one run of `f`.
#[derive(Clone, Copy, Debug)]
struct Timing {
    wall: f64,
    cpu: f64,
}

fn timed<R>(f: impl FnOnce() -> R) -> (R, Timing) {
    let (w0, c0) = (Instant::now(), thread_cpu_seconds());
    let r = f();
    (r, Timing { wall: w0.elapsed().as_secs_f64(), cpu: thread_cpu_seconds() - c0 })
}

/// Median wall and CPU time of `repeats` runs.
fn median_timing(repeats: usize, mut f: impl FnMut()) -> Timing {
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for _ in 0..repeats {
        let ((), t) = timed(&mut f);
        walls.push(t.wall);
        cpus.push(t.cpu);
    }
    Timing { wall: median(&mut walls), cpu: median(&mut cpus) }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

/// The process's transparent-huge-page total, as the kernel reports it.
fn anon_huge_pages() -> String {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("AnonHugePages"))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "AnonHugePages unknown".into())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// ---------------------------------------------------------------- queries

/// Runs every query once; returns the total number of matches.
fn run_queries(index: &PdqIndex<'_>, queries: &[[u8; 32]], radius: u32, out: &mut Vec<Match>) -> usize {
    let mut total = 0;
    for q in queries {
        index.query(&PdqHash::from_bytes(*q), radius, out);
        total += out.len();
    }
    total
}

fn run_linear(index: &PdqIndex<'_>, queries: &[[u8; 32]], radius: u32, out: &mut Vec<Match>) -> usize {
    let mut total = 0;
    for q in queries {
        index.query_linear(&PdqHash::from_bytes(*q), radius, out);
        total += out.len();
    }
    total
}

/// Queries per second by wall and by CPU time.
fn qps(count: usize, t: Timing) -> (f64, f64) {
    (count as f64 / t.wall, count as f64 / t.cpu)
}

#[derive(Debug, Default)]
struct Row {
    set: String,
    n: usize,
    slices: usize,
    build: Option<Timing>,
    bytes_per_hash: f64,
    rss_per_hash_built: f64,
    rss_per_hash_loaded: f64,
    load_read_warm: Option<Timing>,
    load_read_cold: Option<Timing>,
    load_mmap_warm: Option<Timing>,
    load_mmap_cold: Option<Timing>,
    mih_mixed: (f64, f64),
    mih_near: (f64, f64),
    mih_random: (f64, f64),
    mih_mmap_mixed: (f64, f64),
    linear: (f64, f64),
    matches_per_query: f64,
    candidates_per_query: f64,
    scanned_fraction: f64,
    nearest_near: (f64, f64),
    faiss: Option<FaissResult>,
    faiss_agree: Option<(usize, usize)>,
}

#[derive(Debug, Default, Clone)]
struct FaissResult {
    version: String,
    build_wall: f64,
    build_cpu: f64,
    rss_per_hash: f64,
    qps_wall: f64,
    qps_cpu: f64,
    queries: usize,
    counts: Vec<usize>,
    flat_qps_wall: f64,
    flat_qps_cpu: f64,
    flat_queries: usize,
}

fn run_set(args: &Args, set: &str) -> Result<Row> {
    let n = args.n;
    let radius = args.radius;
    println!("\n=== set {set}, n = {n}, radius {radius}");
    let (hashes, t) = timed(|| generate(set, n, args.seed));
    let hashes = hashes?;
    println!("generated in {:.2} s", t.wall);
    let queries = make_queries(&hashes, args.queries.max(args.linear_queries).max(args.faiss_queries), args.seed);
    let mut row = Row { set: set.into(), n, ..Row::default() };

    // Build (median of up to 3 builds; the last one is kept).
    let rss0 = rss_bytes();
    let mut builds = Vec::new();
    let mut parts = None;
    for _ in 0..args.repeats.min(3) {
        drop(parts.take()); // free the previous build first
        let builder = args.slices.map_or(PdqIndexBuilder::new(), |m| PdqIndexBuilder::new().slices(m));
        let (p, t) = timed(|| builder.build(&hashes));
        parts = Some(p?);
        builds.push(t);
    }
    let parts = parts.expect("at least one build");
    let rss_built = rss_bytes().saturating_sub(rss0);
    let mut walls: Vec<f64> = builds.iter().map(|t| t.wall).collect();
    let mut cpus: Vec<f64> = builds.iter().map(|t| t.cpu).collect();
    row.build = Some(Timing { wall: median(&mut walls), cpu: median(&mut cpus) });
    row.bytes_per_hash = parts.size_bytes() as f64 / n as f64;
    row.slices = parts.slices;
    row.rss_per_hash_built = rss_built as f64 / n as f64;
    println!(
        "build: {} slices, {:.2} s wall, {:.2} s CPU (median of {}); arrays {:.1} B/hash ({} bytes); RSS delta {:.1} B/hash",
        row.slices,
        row.build.unwrap().wall,
        row.build.unwrap().cpu,
        builds.len(),
        row.bytes_per_hash,
        parts.size_bytes(),
        row.rss_per_hash_built
    );
    let path = args.dir.join(format!("{set}-{n}.pdqidx"));
    write_index(&path, &parts)?;
    drop(parts);

    // Load: read + validate, warm (file in page cache) and cold (evicted).
    let rss_before_load = rss_bytes();
    let mut read_warm = Vec::new();
    let mut buf = Vec::new();
    for _ in 0..args.repeats.min(3) {
        drop(std::mem::take(&mut buf));
        let (r, t) = timed(|| -> Result<Vec<u64>> {
            let b = read_aligned(&path, args.huge_pages)?;
            let bytes: &[u8] = bytemuck::cast_slice(&b);
            FileLayout::parse(bytes)?.index(bytes)?;
            Ok(b)
        });
        buf = r?;
        read_warm.push(t);
    }
    row.rss_per_hash_loaded = rss_bytes().saturating_sub(rss_before_load) as f64 / n as f64;
    row.load_read_warm = Some(median_of(&read_warm));
    drop(std::mem::take(&mut buf));
    evict_from_page_cache(&path)?;
    let (r, t) = timed(|| -> Result<Vec<u64>> {
        let b = read_aligned(&path, args.huge_pages)?;
        let bytes: &[u8] = bytemuck::cast_slice(&b);
        FileLayout::parse(bytes)?.index(bytes)?;
        Ok(b)
    });
    buf = r?;
    row.load_read_cold = Some(t);
    let bytes: &[u8] = bytemuck::cast_slice(&buf);
    let index = FileLayout::parse(bytes)?.index(bytes)?;
    println!(
        "load (read + validate): warm {:.3} s, cold {:.3} s; RSS delta {:.1} B/hash; {}",
        row.load_read_warm.unwrap().wall,
        t.wall,
        row.rss_per_hash_loaded,
        anon_huge_pages()
    );

    // Queries on the heap copy.
    let mut out = Vec::new();
    let mixed = &queries[..args.queries];
    let warm_matches = run_queries(&index, mixed, radius, &mut out);
    row.matches_per_query = warm_matches as f64 / mixed.len() as f64;
    let (mut candidates, mut scanned) = (0u64, 0usize);
    for q in mixed {
        match index.strategy(&PdqHash::from_bytes(*q), radius) {
            Strategy::Mih { candidates: c, .. } => candidates += c,
            Strategy::Scan => scanned += 1,
        }
    }
    row.candidates_per_query = candidates as f64 / mixed.len() as f64;
    row.scanned_fraction = scanned as f64 / mixed.len() as f64;
    let t = median_timing(args.repeats, || {
        std::hint::black_box(run_queries(&index, mixed, radius, &mut out));
    });
    row.mih_mixed = qps(mixed.len(), t);
    let near: Vec<[u8; 32]> = mixed.iter().step_by(2).copied().collect();
    let random: Vec<[u8; 32]> = mixed.iter().skip(1).step_by(2).copied().collect();
    let t = median_timing(args.repeats, || {
        std::hint::black_box(run_queries(&index, &near, radius, &mut out));
    });
    row.mih_near = qps(near.len(), t);
    let t = median_timing(args.repeats, || {
        std::hint::black_box(run_queries(&index, &random, radius, &mut out));
    });
    row.mih_random = qps(random.len(), t);
    println!(
        "MIH: {:.0} q/s mixed ({:.0} by CPU), {:.0} near, {:.0} random; {:.2} matches/query, {:.0} candidates/query, {:.2}% scanned",
        row.mih_mixed.0,
        row.mih_mixed.1,
        row.mih_near.0,
        row.mih_random.0,
        row.matches_per_query,
        row.candidates_per_query,
        100.0 * row.scanned_fraction
    );

    // Nearest for near duplicates (the matcher's other question).
    let t = median_timing(args.repeats, || {
        for q in &near {
            std::hint::black_box(index.nearest_within(&PdqHash::from_bytes(*q), radius));
        }
    });
    row.nearest_near = qps(near.len(), t);

    // Linear scan on the first queries of the same list, checked against MIH.
    let lin = &queries[..args.linear_queries];
    let mut lin_out = Vec::new();
    for q in lin {
        let q = PdqHash::from_bytes(*q);
        index.query(&q, radius, &mut out);
        index.query_linear(&q, radius, &mut lin_out);
        out.sort_by_key(|m| m.index);
        ensure!(out == lin_out, "MIH and linear scan disagree on a query");
    }
    let t = median_timing(args.repeats.min(3), || {
        std::hint::black_box(run_linear(&index, lin, radius, &mut out));
    });
    row.linear = qps(lin.len(), t);
    println!(
        "linear scan: {:.1} q/s ({:.1} by CPU) over {} queries, same results as MIH; MIH speed-up {:.0}×",
        row.linear.0,
        row.linear.1,
        lin.len(),
        row.mih_mixed.0 / row.linear.0
    );

    // faiss on the same file and queries.
    let counts: Vec<usize> = queries[..args.faiss_queries]
        .iter()
        .map(|q| {
            index.query(&PdqHash::from_bytes(*q), radius, &mut out);
            out.len()
        })
        .collect();
    drop(buf);
    if !args.skip_faiss {
        let qpath = args.dir.join(format!("{set}-{n}.queries"));
        std::fs::write(&qpath, queries[..args.faiss_queries].as_flattened())?;
        let f = run_faiss(args, &path, &qpath)?;
        let agree = f.counts.iter().zip(&counts).filter(|(a, b)| a == b).count();
        row.faiss_agree = Some((agree, counts.len()));
        println!(
            "faiss {} MultiHash: build {:.1} s, {:.0} B/hash RSS, {:.0} q/s ({:.0} by CPU) over {} queries; \
             result counts agree on {agree}/{}; faiss flat scan {:.1} q/s ({:.1} by CPU) over {} queries",
            f.version,
            f.build_wall,
            f.rss_per_hash,
            f.qps_wall,
            f.qps_cpu,
            f.queries,
            counts.len(),
            f.flat_qps_wall,
            f.flat_qps_cpu,
            f.flat_queries
        );
        row.faiss = Some(f);
    }

    // Load by mmap, warm and cold, and queries over the mapping.
    let (m, t) = timed(|| -> Result<memmap2::Mmap> {
        // SAFETY: the benchmark's own file, not modified while mapped.
        let m = unsafe { memmap2::Mmap::map(&File::open(&path)?)? };
        FileLayout::parse(&m)?.index(&m)?;
        Ok(m)
    });
    drop(m?);
    row.load_mmap_warm = Some(t);
    evict_from_page_cache(&path)?;
    let (m, t) = timed(|| -> Result<memmap2::Mmap> {
        // SAFETY: as above.
        let m = unsafe { memmap2::Mmap::map(&File::open(&path)?)? };
        FileLayout::parse(&m)?.index(&m)?;
        Ok(m)
    });
    let m = m?;
    row.load_mmap_cold = Some(t);
    let index = FileLayout::parse(&m)?.index(&m)?;
    run_queries(&index, mixed, radius, &mut out); // fault the hash pages in
    let t = median_timing(args.repeats.min(3), || {
        std::hint::black_box(run_queries(&index, mixed, radius, &mut out));
    });
    row.mih_mmap_mixed = qps(mixed.len(), t);
    println!(
        "mmap: load + validate warm {:.3} s, cold {:.3} s; MIH {:.0} q/s mixed",
        row.load_mmap_warm.unwrap().wall,
        row.load_mmap_cold.unwrap().wall,
        row.mih_mmap_mixed.0
    );
    drop(m);
    std::fs::remove_file(&path).ok();
    Ok(row)
}

fn median_of(ts: &[Timing]) -> Timing {
    let mut w: Vec<f64> = ts.iter().map(|t| t.wall).collect();
    let mut c: Vec<f64> = ts.iter().map(|t| t.cpu).collect();
    Timing { wall: median(&mut w), cpu: median(&mut c) }
}

fn run_faiss(args: &Args, index_path: &Path, queries_path: &Path) -> Result<FaissResult> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("faiss_bench.py");
    let out = Command::new(&args.python)
        .arg(&script)
        .arg("--index")
        .arg(index_path)
        .arg("--queries")
        .arg(queries_path)
        .args(["--radius", &args.radius.to_string(), "--repeats", &args.repeats.min(3).to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {} {}", args.python, script.display()))?;
    ensure!(out.status.success(), "faiss_bench.py failed ({})", out.status);
    let text = String::from_utf8(out.stdout)?;
    let line = text.lines().rev().find(|l| l.starts_with('{')).context("faiss_bench.py printed no JSON")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let f = |k: &str| v[k].as_f64().with_context(|| format!("faiss_bench.py: no {k}"));
    Ok(FaissResult {
        version: v["faiss_version"].as_str().unwrap_or("?").to_string(),
        build_wall: f("build_wall_s")?,
        build_cpu: f("build_cpu_s")?,
        rss_per_hash: f("rss_bytes_per_hash")?,
        qps_wall: f("qps_wall")?,
        qps_cpu: f("qps_cpu")?,
        queries: f("queries")? as usize,
        flat_qps_wall: f("flat_qps_wall")?,
        flat_qps_cpu: f("flat_qps_cpu")?,
        flat_queries: f("flat_queries")? as usize,
        counts: v["counts"]
            .as_array()
            .context("faiss_bench.py: no counts")?
            .iter()
            .map(|c| c.as_u64().unwrap_or(u64::MAX) as usize)
            .collect(),
    })
}

fn print_table(args: &Args, rows: &[Row]) {
    println!("\n| set | n | MIH q/s (CPU) | near / random q/s | our linear scan q/s | MIH ÷ linear | faiss flat scan q/s | MIH ÷ faiss flat | faiss MultiHash q/s (CPU) | MIH ÷ faiss MultiHash | nearest ≤ r, near dups q/s |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let faiss = r.faiss.as_ref().map_or("not run".to_string(), |f| format!("{:.0} ({:.0})", f.qps_wall, f.qps_cpu));
        let ratio = r.faiss.as_ref().map_or("–".to_string(), |f| format!("{:.0}×", r.mih_mixed.0 / f.qps_wall));
        let flat = r.faiss.as_ref().map_or("not run".to_string(), |f| format!("{:.1}", f.flat_qps_wall));
        let flat_ratio =
            r.faiss.as_ref().map_or("–".to_string(), |f| format!("{:.0}×", r.mih_mixed.0 / f.flat_qps_wall));
        println!(
            "| {} | {} | {:.0} ({:.0}) | {:.0} / {:.0} | {:.1} ({:.1}) | {:.0}× | {} | {} | {} | {} | {:.0} |",
            r.set,
            r.n,
            r.mih_mixed.0,
            r.mih_mixed.1,
            r.mih_near.0,
            r.mih_random.0,
            r.linear.0,
            r.linear.1,
            r.mih_mixed.0 / r.linear.0,
            flat,
            flat_ratio,
            faiss,
            ratio,
            r.nearest_near.0
        );
    }
    println!("\n| set | slices | arrays B/hash | RSS B/hash (built / loaded) | build s (CPU) | load read+validate warm / cold s | load mmap+validate warm / cold s | MIH over mmap q/s | faiss B/hash (RSS) | faiss build s | faiss counts agree |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let b = r.build.unwrap();
        let (fb, fm, fa) = match (&r.faiss, r.faiss_agree) {
            (Some(f), Some((a, t))) => (
                format!("{:.0}", f.rss_per_hash),
                format!("{:.1} ({:.1})", f.build_wall, f.build_cpu),
                format!("{a}/{t}"),
            ),
            _ => ("not run".into(), "not run".into(), "not run".into()),
        };
        println!(
            "| {} | {} | {:.1} | {:.1} / {:.1} | {:.2} ({:.2}) | {:.3} / {:.3} | {:.3} / {:.3} | {:.0} | {} | {} | {} |",
            r.set,
            r.slices,
            r.bytes_per_hash,
            r.rss_per_hash_built,
            r.rss_per_hash_loaded,
            b.wall,
            b.cpu,
            r.load_read_warm.unwrap().wall,
            r.load_read_cold.unwrap().wall,
            r.load_mmap_warm.unwrap().wall,
            r.load_mmap_cold.unwrap().wall,
            r.mih_mmap_mixed.0,
            fb,
            fm,
            fa
        );
    }
    println!(
        "\nradius {}, {} MIH queries, {} linear, {} faiss (median of {} runs; queries alternate near duplicates 5–25 bits from an indexed hash and random hashes)",
        args.radius, args.queries, args.linear_queries, args.faiss_queries, args.repeats
    );
}

// ---------------------------------------------------------------- sweep

/// Forced probe vs forced scan, per set size and radius: where the crossover
/// lies, and what the strategy rule picks.
fn sweep(args: &Args) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let max_n = args.n;
    let all: Vec<[u8; 32]> = (0..max_n).map(|_| random_hash(&mut rng)).collect();
    println!("| n | radius | probe µs/query | scan µs/query | faster | rule picks |");
    println!("|---|---|---|---|---|---|");
    let mut n = 1000;
    while n <= max_n {
        let hashes = &all[..n];
        let owned = OwnedPdqIndex::build(hashes)?;
        let index = owned.index();
        let queries = make_queries(hashes, 200, args.seed + n as u64);
        for radius in [15u32, 31, 47, 63] {
            let mut out = Vec::new();
            let reps = if n >= 1_000_000 { 1 } else { 3 };
            let probe_q = if radius >= 47 && n >= 1_000_000 { &queries[..20] } else { &queries[..] };
            let tp = median_timing(reps, || {
                for q in probe_q {
                    index.query_mih(&PdqHash::from_bytes(*q), radius, &mut out);
                }
            });
            let scan_q = if n >= 1_000_000 { &queries[..20] } else { &queries[..] };
            let ts = median_timing(reps, || {
                for q in scan_q {
                    index.query_linear(&PdqHash::from_bytes(*q), radius, &mut out);
                }
            });
            let (p, s) = (tp.cpu / probe_q.len() as f64 * 1e6, ts.cpu / scan_q.len() as f64 * 1e6);
            let picks = queries
                .iter()
                .filter(|q| matches!(index.strategy(&PdqHash::from_bytes(**q), radius), Strategy::Mih { .. }))
                .count();
            println!(
                "| {n} | {radius} | {p:.1} | {s:.1} | {} | probe for {}% |",
                if p < s { "probe" } else { "scan" },
                picks * 100 / queries.len()
            );
        }
        n = if n.to_string().starts_with('1') { n * 3 } else { n * 10 / 3 };
    }
    Ok(())
}
