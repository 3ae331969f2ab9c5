//! `hashscan-bench`: the figures of `docs/benchmarks.md`, in one run.
//!
//! * decode+PDQ images/s of hashscan (exact and fast mode) against Meta's
//!   C++ PDQ through the PyPI binding `pdqhash` with Pillow decoding, on the
//!   same generated JPEGs of 0.3, 2 and 12 megapixels;
//! * MD5, SHA-1, SHA-256 and BLAKE3 MB/s alone and in one pass;
//! * the Hamming distance between fast and exact mode over the conformance
//!   images and a varied generated corpus;
//! * the time to refuse a decompression bomb.
//!
//! Everything is timed on the calling thread; run it pinned to one core:
//!
//! ```text
//! cargo build --release -p hashscan-bench
//! taskset -c 0 target/release/hashscan-bench
//! ```
//!
//! The Python side needs `pip install pdqhash pillow numpy`; the benchmark
//! stops with that message if they are missing rather than leave out the
//! comparison.

mod bomb;
mod clock;
mod gen;
mod stats;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use gen::{JpegSettings, Texture};
use hashscan_decode::{DecodeLimits, ImageHasher, Mode};
use hashscan_pdq::PdqHash;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stats::{DistSummary, Rate};

const PY_SCRIPT: &str = include_str!("../pdqhash_bench.py");
const PIP_HINT: &str = "pip install pdqhash pillow numpy";

#[derive(Parser, Debug)]
#[command(version, about = "hashscan decode+PDQ and hashing benchmark (docs/benchmarks.md)")]
struct Args {
    /// Where to write the generated benchmark JPEGs (default: a temporary
    /// directory, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Images per size.
    #[arg(long, default_value_t = 8)]
    per_size: usize,
    /// Rounds; each times hashscan exact, hashscan fast and pdqhash in turn,
    /// so the three share the machine's load conditions.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Passes over the image set per implementation and round.
    #[arg(long, default_value_t = 2)]
    reps: usize,
    /// Megabytes hashed per throughput measurement.
    #[arg(long, default_value_t = 256)]
    hash_mb: usize,
    /// Throughput measurements per algorithm (interleaved).
    #[arg(long, default_value_t = 5)]
    hash_reps: usize,
    /// Generated images in the fast-vs-exact distance corpus.
    #[arg(long, default_value_t = 150)]
    corpus: usize,
    /// The PDQ conformance folder (reference.tsv and images/).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/conformance/pdq"))]
    conformance: PathBuf,
    /// Python interpreter with pdqhash, Pillow and numpy.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Also write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Only write the benchmark JPEGs (into --dir) and print their sizes.
    #[arg(long, requires = "dir")]
    generate_only: bool,
    /// Seed of all generated images.
    #[arg(long, default_value_t = 2024)]
    seed: u64,
}

struct Size {
    label: &'static str,
    width: u32,
    height: u32,
}

const SIZES: [Size; 3] = [
    Size { label: "0.3 MP", width: 640, height: 480 },
    Size { label: "2 MP", width: 1600, height: 1200 },
    Size { label: "12 MP", width: 4000, height: 3000 },
];

struct BenchImage {
    path: PathBuf,
    bytes: Vec<u8>,
}

#[derive(serde::Serialize, Default)]
struct SizeResult {
    label: String,
    images: usize,
    mean_bytes: f64,
    bits_per_pixel: f64,
    fast_scale: u8,
    exact: Option<Timing>,
    fast: Option<Timing>,
    py_decode_hash: Option<Timing>,
    py_hash_only: Option<Timing>,
    py_draft: Option<Timing>,
    /// hashscan exact vs pdqhash+Pillow on the same files (decoder differences)
    exact_vs_pdqhash_max_bits: u32,
    fast_vs_exact_max_bits: u32,
}

/// One implementation's figures on one image set, from thread CPU time
/// (robust to other processes on the core) and from wall-clock time.
#[derive(serde::Serialize, Clone, Copy)]
struct Timing {
    cpu: Rate,
    wall: Rate,
}

/// Per image: the CPU and wall times of its repetitions.
#[derive(Clone, Default)]
struct Times {
    cpu: Vec<Vec<f64>>,
    wall: Vec<Vec<f64>>,
}

impl Times {
    fn new(n: usize) -> Self {
        Self { cpu: vec![Vec::new(); n], wall: vec![Vec::new(); n] }
    }
    fn push(&mut self, i: usize, t: clock::Sample) {
        self.cpu[i].push(t.cpu);
        self.wall[i].push(t.wall);
    }
    fn timing(&self) -> Timing {
        Timing { cpu: stats::rate(&self.cpu), wall: stats::rate(&self.wall) }
    }
}

#[derive(serde::Serialize)]
struct CryptoResult {
    mb_per_measurement: f64,
    /// name → MB/s of each measurement, by thread CPU time
    cpu_rates: BTreeMap<String, Vec<f64>>,
    /// name → MB/s of each measurement, by wall-clock time
    wall_rates: BTreeMap<String, Vec<f64>>,
}

#[derive(serde::Serialize, Clone)]
struct DistRow {
    source: String,
    name: String,
    width: u32,
    height: u32,
    scale: u8,
    exact_quality: u8,
    fast_vs_exact: u32,
    /// conformance only: Meta's reference hash
    exact_vs_reference: Option<u32>,
    fast_vs_reference: Option<u32>,
    /// jpeg-decoder (fast mode's decoder) at full scale vs exact: the part
    /// of the distance that comes from the decoder rather than the scale
    decoder_only: Option<u32>,
}

#[derive(serde::Serialize)]
struct BombResult {
    name: String,
    bytes: usize,
    mode: String,
    error: String,
    median_us: f64,
    min_us: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let mut report = String::new();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let load_start = read_loadavg();
    let affinity = read_affinity();
    if env!("BENCH_PROFILE") != "release" {
        eprintln!("warning: built with profile {:?}; figures are meaningless outside --release", env!("BENCH_PROFILE"));
    }
    eprintln!("load at start: {load_start}; CPUs allowed: {affinity}");
    if affinity.contains(',') || affinity.contains('-') {
        eprintln!("note: not pinned to one CPU; run it under `taskset -c 0` for single-core figures");
    }

    // Python first, so a missing module stops the run before the long parts.
    if !args.generate_only {
        check_python(&args.python)?;
    }

    // 1. The benchmark set.
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    eprintln!("generating {} JPEGs per size in {}", args.per_size, dir.display());
    let mut sets: Vec<Vec<BenchImage>> = Vec::new();
    for (si, size) in SIZES.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(args.seed ^ (si as u64) << 32);
        let mut set = Vec::new();
        for i in 0..args.per_size {
            let seed = args.seed.wrapping_mul(1000) + (si * 100 + i) as u64;
            let pic = gen::photo(seed, size.width, size.height);
            let settings = JpegSettings {
                quality: rng.random_range(85..=92),
                subsampling: (2, 2),
                progressive: false,
                grey: false,
            };
            let bytes = gen::encode_jpeg(&pic, settings)?;
            let path = dir.join(format!("bench-{}x{}-{i}.jpg", size.width, size.height));
            std::fs::write(&path, &bytes)?;
            set.push(BenchImage { path, bytes });
        }
        sets.push(set);
    }
    let mut results: Vec<SizeResult> = SIZES
        .iter()
        .zip(&sets)
        .map(|(s, set)| {
            let mean = set.iter().map(|b| b.bytes.len() as f64).sum::<f64>() / set.len() as f64;
            SizeResult {
                label: s.label.into(),
                images: set.len(),
                mean_bytes: mean,
                bits_per_pixel: mean * 8.0 / f64::from(s.width * s.height),
                fast_scale: hashscan_decode::fast_scale(s.width, s.height),
                ..Default::default()
            }
        })
        .collect();
    if args.generate_only {
        for r in &results {
            println!(
                "{}: {} images, mean {:.0} kB, {:.2} bits/pixel",
                r.label,
                r.images,
                r.mean_bytes / 1e3,
                r.bits_per_pixel
            );
        }
        return Ok(());
    }
    let versions = python_versions(&args.python)?;

    // 2. decode+PDQ, in rounds.
    let manifest = dir.join("manifest.json");
    let script = dir.join("pdqhash_bench.py");
    std::fs::write(&script, PY_SCRIPT)?;
    let manifest_json = serde_json::json!({
        "sizes": SIZES.iter().zip(&sets).map(|(s, set)| serde_json::json!({
            "label": s.label,
            "files": set.iter().map(|b| b.path.to_string_lossy().into_owned()).collect::<Vec<_>>(),
            "scales": set.iter().map(|_| hashscan_decode::fast_scale(s.width, s.height)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()
    });
    std::fs::write(&manifest, serde_json::to_vec(&manifest_json)?)?;

    let limits = DecodeLimits::default();
    let mut exact = ImageHasher::new(limits, Mode::Exact);
    let mut fast = ImageHasher::new(limits, Mode::Fast);
    // Warm-up, and the hashes for the cross-checks.
    let mut exact_hashes: Vec<Vec<PdqHash>> = Vec::new();
    let mut bench_rows: Vec<DistRow> = Vec::new();
    for (set, res) in sets.iter().zip(results.iter_mut()) {
        let mut hs = Vec::new();
        for img in set {
            let e = exact.pdq(&img.bytes).with_context(|| format!("exact {}", img.path.display()))?;
            let f = fast.pdq(&img.bytes).with_context(|| format!("fast {}", img.path.display()))?;
            let d = e.pdq.hash.hamming(&f.pdq.hash);
            res.fast_vs_exact_max_bits = res.fast_vs_exact_max_bits.max(d);
            hs.push(e.pdq.hash);
            bench_rows.push(DistRow {
                source: "benchmark".into(),
                name: img.path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
                width: e.probe.width,
                height: e.probe.height,
                scale: f.scale,
                exact_quality: e.pdq.quality,
                fast_vs_exact: d,
                exact_vs_reference: None,
                fast_vs_reference: None,
                decoder_only: if f.scale > 1 {
                    full_scale_jpeg_decoder(&img.bytes)?.map(|h| h.hamming(&e.pdq.hash))
                } else {
                    None
                },
            });
        }
        exact_hashes.push(hs);
    }
    let n_sizes = SIZES.len();
    let mut t_exact: Vec<Times> = sets.iter().map(|s| Times::new(s.len())).collect();
    let mut t_fast = t_exact.clone();
    let mut t_py_dh = t_exact.clone();
    let mut t_py_ho = t_exact.clone();
    let mut t_py_dr = t_exact.clone();
    let mut load_samples = vec![load_start.clone()];
    for round in 0..args.rounds {
        eprintln!("round {}/{}: hashscan exact, fast, pdqhash", round + 1, args.rounds);
        for (hasher, times) in [(&mut exact, &mut t_exact), (&mut fast, &mut t_fast)] {
            for s in 0..n_sizes {
                for _ in 0..args.reps {
                    for (i, img) in sets[s].iter().enumerate() {
                        let t = clock::now();
                        let r = hasher.pdq(black_box(&img.bytes))?;
                        times[s].push(i, t.elapsed());
                        black_box(r);
                    }
                }
            }
        }
        let py = run_python(&args.python, &script, &manifest, args.reps)?;
        for (s, size) in SIZES.iter().enumerate() {
            let n = sets[s].len();
            let entry = &py["sizes"][size.label];
            for (key, dst) in [("decode_hash", &mut t_py_dh), ("hash_only", &mut t_py_ho), ("draft", &mut t_py_dr)] {
                let v: Vec<[f64; 2]> =
                    serde_json::from_value(entry[key].clone()).with_context(|| format!("python {key}"))?;
                anyhow::ensure!(v.len() == n * args.reps, "python returned {} times for {}", v.len(), size.label);
                for (j, [wall, cpu]) in v.into_iter().enumerate() {
                    dst[s].push(j % n, clock::Sample { wall, cpu });
                }
            }
            for (i, img) in sets[s].iter().enumerate() {
                let hex = py["hashes"][img.path.to_string_lossy().as_ref()][0].as_str().context("python hash")?;
                let theirs = PdqHash::from_hex(hex).map_err(|e| anyhow::anyhow!("{e}"))?;
                let d = theirs.hamming(&exact_hashes[s][i]);
                results[s].exact_vs_pdqhash_max_bits = results[s].exact_vs_pdqhash_max_bits.max(d);
            }
        }
        load_samples.push(read_loadavg());
    }
    for s in 0..n_sizes {
        results[s].exact = Some(t_exact[s].timing());
        results[s].fast = Some(t_fast[s].timing());
        results[s].py_decode_hash = Some(t_py_dh[s].timing());
        results[s].py_hash_only = Some(t_py_ho[s].timing());
        results[s].py_draft = Some(t_py_dr[s].timing());
    }

    // 3. Exact hashes.
    eprintln!("hashing throughput, {} MB per measurement", args.hash_mb);
    let all_bytes: Vec<&[u8]> = sets.iter().flatten().map(|b| b.bytes.as_slice()).collect();
    let crypto = crypto_bench(&all_bytes, args.hash_mb << 20, args.hash_reps);
    load_samples.push(read_loadavg());

    // 4. Bombs.
    eprintln!("decompression bombs");
    let bombs = bomb_bench()?;

    // 5. Fast vs exact distances.
    eprintln!("fast-vs-exact distances: conformance images and {} generated", args.corpus);
    let conf = conformance_distances(&args.conformance)?;
    let generated = generated_distances(args.seed, args.corpus)?;
    let load_end = read_loadavg();
    load_samples.push(load_end.clone());

    // Report.
    let cpu = cpu_model();
    let cores = std::fs::read_to_string("/proc/cpuinfo").map(|s| s.matches("\nprocessor").count() + 1).unwrap_or(0);
    writeln!(report, "## Machine and run\n")?;
    writeln!(report, "| | |\n|---|---|")?;
    writeln!(report, "| CPU | {cpu}, {cores} logical cores; CPUs allowed to the run: {affinity} |")?;
    writeln!(report, "| load average (1, 5, 15 min) | start {load_start}; end {load_end} |")?;
    writeln!(report, "| load samples during the run | {} |", load_samples.join(" → "))?;
    writeln!(report, "| rustc | {} (profile {}) |", env!("BENCH_RUSTC_VERSION"), env!("BENCH_PROFILE"))?;
    writeln!(
        report,
        "| Python side | Python {}, pdqhash {}, Pillow {} (libjpeg-turbo {}), numpy {} |",
        versions["python"].as_str().unwrap_or("?"),
        versions["pdqhash"].as_str().unwrap_or("?"),
        versions["pillow"].as_str().unwrap_or("?"),
        versions["libjpeg_turbo"].as_str().unwrap_or("?"),
        versions["numpy"].as_str().unwrap_or("?"),
    )?;
    writeln!(report, "| command | `{command}` |")?;
    writeln!(
        report,
        "| repetitions | {} rounds × {} passes = {} timings per image and implementation, after one warm-up pass |",
        args.rounds,
        args.reps,
        args.rounds * args.reps
    )?;
    writeln!(report, "| wall time | {:.0} s |", started.elapsed().as_secs_f64())?;

    writeln!(report, "\n## Decode + PDQ, images/s on one core\n")?;
    writeln!(
        report,
        "Generated photo-like baseline JPEGs, 4:2:0, quality 85–92, {} per size, bytes in memory on both sides. \
         Rate = images / Σ per-image median **thread CPU time**; in brackets, from each image's best CPU time. \
         Ratios likewise.\n",
        args.per_size
    )?;
    writeln!(
        report,
        "| size | mean file (bits/px) | hashscan exact | hashscan fast (scale) | pdqhash+Pillow decode+hash | pdqhash hash-only | fast ÷ pdqhash | exact ÷ pdqhash |"
    )?;
    writeln!(report, "|---|---|---|---|---|---|---|---|")?;
    for (s, r) in SIZES.iter().zip(&results) {
        let (e, f, p, h) = (r.exact.unwrap(), r.fast.unwrap(), r.py_decode_hash.unwrap(), r.py_hash_only.unwrap());
        writeln!(
            report,
            "| {} ({}×{}) | {:.0} kB ({:.2}) | {} | {} (1/{}) | {} | {} | {:.2}× ({:.2}×) | {:.2}× ({:.2}×) |",
            s.label,
            s.width,
            s.height,
            r.mean_bytes / 1e3,
            r.bits_per_pixel,
            fmt_rate(e),
            fmt_rate(f),
            r.fast_scale,
            fmt_rate(p),
            fmt_rate(h),
            f.cpu.median_ips / p.cpu.median_ips,
            f.cpu.best_ips / p.cpu.best_ips,
            e.cpu.median_ips / p.cpu.median_ips,
            e.cpu.best_ips / p.cpu.best_ips,
        )?;
    }
    writeln!(
        report,
        "\nMean time per image, ms: median CPU time / best CPU time / median wall-clock time of its timings:\n"
    )?;
    writeln!(report, "| size | hashscan exact | hashscan fast | pdqhash+Pillow decode+hash | pdqhash hash-only | pdqhash+Pillow draft mode (context) |")?;
    writeln!(report, "|---|---|---|---|---|---|")?;
    for (s, r) in SIZES.iter().zip(&results) {
        let ms = |r: Option<Timing>| {
            let r = r.unwrap();
            format!("{:.2} / {:.2} / {:.2}", r.cpu.median_ms, r.cpu.best_ms, r.wall.median_ms)
        };
        writeln!(
            report,
            "| {} | {} | {} | {} | {} | {} |",
            s.label,
            ms(r.exact),
            ms(r.fast),
            ms(r.py_decode_hash),
            ms(r.py_hash_only),
            ms(r.py_draft)
        )?;
    }
    writeln!(
        report,
        "\nSame-file checks: hashscan exact vs pdqhash+Pillow, most bits apart per size: {}; fast vs exact: {}.",
        results.iter().map(|r| format!("{} {}", r.label, r.exact_vs_pdqhash_max_bits)).collect::<Vec<_>>().join(", "),
        results.iter().map(|r| format!("{} {}", r.label, r.fast_vs_exact_max_bits)).collect::<Vec<_>>().join(", "),
    )?;

    writeln!(report, "\n## Exact hashes, MB/s on one core\n")?;
    writeln!(
        report,
        "Over the benchmark JPEGs' bytes (each file one message, 16 KiB pieces), {:.0} MB per measurement, {} measurements each, \
         interleaved. Rates by thread CPU time (median, best) and by wall-clock time (median).\n",
        crypto.mb_per_measurement, args.hash_reps
    )?;
    writeln!(report, "| algorithm | MB/s CPU median | MB/s CPU best | MB/s wall median |\n|---|---|---|---|")?;
    for name in ["MD5", "SHA-1", "SHA-256", "BLAKE3", "all four, one pass (MultiHasher)"] {
        let (c, w) = (&crypto.cpu_rates[name], &crypto.wall_rates[name]);
        writeln!(report, "| {name} | {:.0} | {:.0} | {:.0} |", stats::median(c), stats::max(c), stats::median(w))?;
    }
    let singles = ["MD5", "SHA-1", "SHA-256", "BLAKE3"];
    let bound = |rates: &BTreeMap<String, Vec<f64>>, f: &dyn Fn(&[f64]) -> f64| {
        1.0 / singles.iter().map(|n| 1.0 / f(&rates[*n])).sum::<f64>()
    };
    let multi = "all four, one pass (MultiHasher)";
    let b = [
        bound(&crypto.cpu_rates, &stats::median),
        bound(&crypto.cpu_rates, &stats::max),
        bound(&crypto.wall_rates, &stats::median),
    ];
    let m = [
        stats::median(&crypto.cpu_rates[multi]),
        stats::max(&crypto.cpu_rates[multi]),
        stats::median(&crypto.wall_rates[multi]),
    ];
    writeln!(
        report,
        "| 1 / Σ 1/rᵢ (what the single rates allow together) | {:.0} | {:.0} | {:.0} |\n| **one pass ÷ 1/Σ 1/rᵢ** | **{:.1}%** | **{:.1}%** | **{:.1}%** |",
        b[0],
        b[1],
        b[2],
        m[0] / b[0] * 100.0,
        m[1] / b[1] * 100.0,
        m[2] / b[2] * 100.0
    )?;

    writeln!(report, "\n## Refusing a decompression bomb\n")?;
    writeln!(report, "| file | bytes | mode | error | µs CPU per refusal, median (best) |\n|---|---|---|---|---|")?;
    for b in &bombs {
        writeln!(
            report,
            "| {} | {} | {} | `{}` | {:.2} ({:.2}) |",
            b.name, b.bytes, b.mode, b.error, b.median_us, b.min_us
        )?;
    }

    writeln!(report, "\n## Fast vs exact mode: Hamming distance\n")?;
    writeln!(
        report,
        "Only images that fast mode decodes at reduced scale (JPEG, shorter side ≥ 512 px, not CMYK) can differ; the others \
         take the exact path and are counted separately. Quality is exact mode's PDQ quality.\n"
    )?;
    let buckets = stats::BUCKETS.join(" | ");
    writeln!(report, "| set | n | min | median | p90 | max | {buckets} |")?;
    writeln!(report, "|---|---|---|---|---|---|{}", "---|".repeat(stats::BUCKETS.len()))?;
    let mut dist_lines = Vec::new();
    let all: Vec<DistRow> = conf.iter().chain(&generated).chain(&bench_rows).cloned().collect();
    for (label, rows) in
        [("conformance", &conf), ("generated corpus", &generated), ("benchmark photos", &bench_rows), ("all", &all)]
    {
        let scaled: Vec<&DistRow> = rows.iter().filter(|r| r.scale > 1).collect();
        let q80: Vec<u32> = scaled.iter().filter(|r| r.exact_quality >= 80).map(|r| r.fast_vs_exact).collect();
        let any: Vec<u32> = scaled.iter().map(|r| r.fast_vs_exact).collect();
        let unscaled = rows.len() - scaled.len();
        for (sub, d) in [("scaled, quality ≥ 80", q80), ("scaled, any quality", any)] {
            let s = stats::distances(&d);
            writeln!(report, "{}", dist_row(&format!("{label}: {sub}"), &s))?;
            dist_lines.push((format!("{label}: {sub}"), s));
        }
        writeln!(
            report,
            "| {label}: not scaled (exact path, distance 0 by construction) | {unscaled} | | | | | {} |",
            " |".repeat(stats::BUCKETS.len() - 1)
        )?;
    }
    let by_scale: BTreeMap<u8, Vec<u32>> =
        all.iter().filter(|r| r.scale > 1 && r.exact_quality >= 80).fold(BTreeMap::new(), |mut m, r| {
            m.entry(r.scale).or_default().push(r.fast_vs_exact);
            m
        });
    for (k, d) in &by_scale {
        writeln!(report, "{}", dist_row(&format!("all, quality ≥ 80, scale 1/{k}"), &stats::distances(d)))?;
    }
    let mut textures: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for r in generated.iter().filter(|r| r.scale > 1 && r.exact_quality >= 80) {
        textures.entry(r.name.split('-').next().unwrap_or("").to_string()).or_default().push(r.fast_vs_exact);
    }
    for (t, d) in &textures {
        writeln!(report, "{}", dist_row(&format!("generated {t}, quality ≥ 80"), &stats::distances(d)))?;
    }
    let dec: Vec<u32> =
        all.iter().filter(|r| r.scale > 1 && r.exact_quality >= 80).filter_map(|r| r.decoder_only).collect();
    writeln!(
        report,
        "{}",
        dist_row(
            "all, quality ≥ 80: jpeg-decoder at full scale vs exact (decoder alone, no scaling)",
            &stats::distances(&dec)
        )
    )?;
    let conf_ref: Vec<&DistRow> = conf.iter().filter(|r| r.scale > 1).collect();
    if !conf_ref.is_empty() {
        writeln!(
            report,
            "\nConformance images decoded at reduced scale, against Meta's reference hash (`reference.tsv`):\n"
        )?;
        writeln!(report, "| file | size | scale | quality | exact vs reference | fast vs reference | fast vs exact | decoder alone |\n|---|---|---|---|---|---|---|---|")?;
        for r in conf_ref {
            writeln!(
                report,
                "| {} | {}×{} | 1/{} | {} | {} | {} | {} | {} |",
                r.name,
                r.width,
                r.height,
                r.scale,
                r.exact_quality,
                r.exact_vs_reference.map_or("–".into(), |d| d.to_string()),
                r.fast_vs_reference.map_or("–".into(), |d| d.to_string()),
                r.fast_vs_exact,
                r.decoder_only.map_or("–".into(), |d| d.to_string())
            )?;
        }
    }
    let mut worst: Vec<&DistRow> = generated.iter().chain(&bench_rows).filter(|r| r.scale > 1).collect();
    worst.sort_by_key(|r| std::cmp::Reverse(r.fast_vs_exact));
    writeln!(
        report,
        "\nLargest distances among generated images (\"decoder alone\": jpeg-decoder at full scale vs exact):\n"
    )?;
    writeln!(report, "| image | size | scale | quality | fast vs exact | decoder alone |\n|---|---|---|---|---|---|")?;
    for r in worst.iter().take(10) {
        writeln!(
            report,
            "| {} | {}×{} | 1/{} | {} | {} | {} |",
            r.name,
            r.width,
            r.height,
            r.scale,
            r.exact_quality,
            r.fast_vs_exact,
            r.decoder_only.map_or("–".into(), |d| d.to_string())
        )?;
    }

    println!("{report}");
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "command": command,
            "cpu": cpu,
            "affinity": affinity,
            "load": load_samples,
            "rustc": env!("BENCH_RUSTC_VERSION"),
            "python": versions,
            "sizes": results,
            "crypto": crypto,
            "bombs": bombs,
            "distances": { "summaries": dist_lines.iter().map(|(l, s)| serde_json::json!({"set": l, "summary": s})).collect::<Vec<_>>(),
                           "conformance": conf, "generated": generated, "benchmark": bench_rows },
        });
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)?;
    }
    Ok(())
}

fn fmt_rate(r: Timing) -> String {
    let f = |x: f64| if x >= 100.0 { format!("{x:.0}") } else { format!("{x:.1}") };
    format!("{} ({})", f(r.cpu.median_ips), f(r.cpu.best_ips))
}

fn dist_row(label: &str, s: &DistSummary) -> String {
    if s.n == 0 {
        return format!("| {label} | 0 | | | | | {} |", " |".repeat(stats::BUCKETS.len() - 1));
    }
    format!(
        "| {label} | {} | {} | {} | {} | {} | {} |",
        s.n,
        s.min,
        s.median,
        s.p90,
        s.max,
        s.histogram.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" | ")
    )
}

fn read_loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn read_affinity() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn python_command(python: &str) -> Command {
    let mut c = Command::new(python);
    // One thread for anything numpy or a BLAS might start.
    for v in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"] {
        c.env(v, "1");
    }
    c
}

fn check_python(python: &str) -> Result<()> {
    let out = python_command(python)
        .args(["-c", "import pdqhash, PIL, numpy"])
        .output()
        .with_context(|| format!("cannot run {python:?}; the comparison needs Python 3 with: {PIP_HINT}"))?;
    if !out.status.success() {
        bail!(
            "the pdqhash comparison needs the Python modules pdqhash, Pillow and numpy for {python:?}: {PIP_HINT}\n{}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn python_versions(python: &str) -> Result<serde_json::Value> {
    let code = r#"
import json, sys, numpy, PIL
from PIL import features
from importlib.metadata import version
print(json.dumps({"python": sys.version.split()[0], "pillow": PIL.__version__, "numpy": numpy.__version__,
                  "libjpeg_turbo": features.version("libjpeg_turbo"), "pdqhash": version("pdqhash")}))
"#;
    let out = python_command(python).args(["-c", code]).output()?;
    anyhow::ensure!(out.status.success(), "python version query failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn run_python(python: &str, script: &Path, manifest: &Path, reps: usize) -> Result<serde_json::Value> {
    let out = python_command(python)
        .arg(script)
        .arg(manifest)
        .args(["--reps", &reps.to_string()])
        .output()
        .with_context(|| format!("running {python} {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "pdqhash_bench.py failed ({}): {}\n(needs: {PIP_HINT})",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("pdqhash_bench.py output")
}

fn crypto_bench(files: &[&[u8]], target: usize, reps: usize) -> CryptoResult {
    use hashscan_hash::{MultiHasher, CHUNK};
    /// (MB/s by CPU time, MB/s by wall time)
    fn run(files: &[&[u8]], target: usize, mut one: impl FnMut(&[u8])) -> (f64, f64) {
        let t = clock::now();
        let mut done = 0usize;
        while done < target {
            for f in files {
                one(black_box(f));
                done += f.len();
            }
        }
        let e = t.elapsed();
        (done as f64 / e.cpu / 1e6, done as f64 / e.wall / 1e6)
    }
    fn digest<D: md5::Digest + Default>(data: &[u8]) {
        let mut h = D::default();
        for piece in data.chunks(CHUNK) {
            h.update(piece);
        }
        black_box(h.finalize());
    }
    let bytes = files.iter().map(|f| f.len()).sum::<usize>();
    let rounds = target.div_ceil(bytes);
    let mut cpu_rates: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut wall_rates: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut record = |name: &str, (cpu, wall): (f64, f64)| {
        cpu_rates.entry(name.into()).or_default().push(cpu);
        wall_rates.entry(name.into()).or_default().push(wall);
    };
    // Warm-up.
    run(files, bytes, |d| {
        let mut m = MultiHasher::new();
        m.update(d);
        black_box(m.finish());
    });
    for _ in 0..reps {
        record("MD5", run(files, target, digest::<md5::Md5>));
        record("SHA-1", run(files, target, digest::<sha1::Sha1>));
        record("SHA-256", run(files, target, digest::<sha2::Sha256>));
        record(
            "BLAKE3",
            run(files, target, |d| {
                let mut h = blake3::Hasher::new();
                for piece in d.chunks(CHUNK) {
                    h.update(piece);
                }
                black_box(h.finalize());
            }),
        );
        record(
            "all four, one pass (MultiHasher)",
            run(files, target, |d| {
                let mut m = MultiHasher::new();
                m.update(d);
                black_box(m.finish());
            }),
        );
    }
    CryptoResult { mb_per_measurement: (rounds * bytes) as f64 / 1e6, cpu_rates, wall_rates }
}

fn bomb_bench() -> Result<Vec<BombResult>> {
    let cases = [
        ("PNG, IHDR claims 100000×100000", bomb::png(100_000, 100_000)?),
        ("JPEG, SOF0 claims 65000×65000", bomb::jpeg(65_000, 65_000)?),
    ];
    let mut out = Vec::new();
    for (name, bytes) in cases {
        for mode in [Mode::Exact, Mode::Fast] {
            let mut h = ImageHasher::new(DecodeLimits::default(), mode);
            let err = match h.pdq(&bytes) {
                Ok(r) => bail!("{name} was decoded ({}x{}) instead of refused", r.probe.width, r.probe.height),
                Err(e) => e,
            };
            let mut times = Vec::new();
            for _ in 0..20 {
                let n = 500;
                let t = clock::now();
                for _ in 0..n {
                    black_box(h.pdq(black_box(&bytes)).is_err());
                }
                times.push(t.elapsed().cpu / f64::from(n) * 1e6);
            }
            out.push(BombResult {
                name: name.into(),
                bytes: bytes.len(),
                mode: format!("{mode:?}").to_lowercase(),
                error: format!("{}: {err}", err.code()),
                median_us: stats::median(&times),
                min_us: stats::min(&times),
            });
        }
    }
    Ok(out)
}

fn conformance_distances(root: &Path) -> Result<Vec<DistRow>> {
    let tsv = root.join("reference.tsv");
    let text = std::fs::read_to_string(&tsv)
        .with_context(|| format!("reading {} (pass --conformance with the folder of reference.tsv)", tsv.display()))?;
    let mut exact = ImageHasher::new(DecodeLimits::default(), Mode::Exact);
    let mut fast = ImageHasher::new(DecodeLimits::default(), Mode::Fast);
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, hex) = (cols[0], cols[1]);
        let bytes = std::fs::read(root.join(file)).with_context(|| format!("reading {file}"))?;
        let reference = PdqHash::from_hex(hex).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
        let e = exact.pdq(&bytes).with_context(|| format!("exact {file}"))?;
        let f = fast.pdq(&bytes).with_context(|| format!("fast {file}"))?;
        rows.push(DistRow {
            source: "conformance".into(),
            name: file.trim_start_matches("images/").into(),
            width: e.probe.width,
            height: e.probe.height,
            scale: f.scale,
            exact_quality: e.pdq.quality,
            fast_vs_exact: e.pdq.hash.hamming(&f.pdq.hash),
            exact_vs_reference: Some(e.pdq.hash.hamming(&reference)),
            fast_vs_reference: Some(f.pdq.hash.hamming(&reference)),
            decoder_only: if f.scale > 1 {
                full_scale_jpeg_decoder(&bytes)?.map(|h| h.hamming(&e.pdq.hash))
            } else {
                None
            },
        });
    }
    Ok(rows)
}

fn generated_distances(seed: u64, n: usize) -> Result<Vec<DistRow>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xd157);
    let mut exact = ImageHasher::new(DecodeLimits::default(), Mode::Exact);
    let mut fast = ImageHasher::new(DecodeLimits::default(), Mode::Fast);
    const ASPECTS: [(u32, u32); 7] = [(4, 3), (3, 2), (16, 9), (1, 1), (3, 4), (2, 3), (9, 16)];
    let mut rows = Vec::new();
    for i in 0..n {
        let texture = Texture::ALL[i % Texture::ALL.len()];
        // Long side log-uniform over 512..=4000.
        let long = (512.0f64 * (4000.0f64 / 512.0).powf(rng.random::<f64>())).round() as u32;
        let (a, b) = ASPECTS[rng.random_range(0..ASPECTS.len())];
        let (w, h) = if a >= b { (long, (long * b / a).max(16)) } else { ((long * a / b).max(16), long) };
        let settings = JpegSettings {
            quality: rng.random_range(50..=95),
            subsampling: match rng.random_range(0..20) {
                0..=11 => (2, 2),
                12..=16 => (1, 1),
                _ => (2, 1),
            },
            progressive: rng.random_bool(0.3),
            grey: rng.random_bool(0.1),
        };
        let pic = gen::draw(texture, seed.wrapping_add(10_000 + i as u64), w, h);
        let bytes = gen::encode_jpeg(&pic, settings)?;
        let e = exact.pdq(&bytes).with_context(|| format!("exact generated {i}"))?;
        let f = fast.pdq(&bytes).with_context(|| format!("fast generated {i}"))?;
        rows.push(DistRow {
            source: "generated".into(),
            name: format!("{}-{i} ({})", texture.name(), settings.describe()),
            width: w,
            height: h,
            scale: f.scale,
            exact_quality: e.pdq.quality,
            fast_vs_exact: e.pdq.hash.hamming(&f.pdq.hash),
            exact_vs_reference: None,
            fast_vs_reference: None,
            decoder_only: if f.scale > 1 {
                full_scale_jpeg_decoder(&bytes)?.map(|h| h.hamming(&e.pdq.hash))
            } else {
                None
            },
        });
        if (i + 1) % 20 == 0 {
            eprintln!("  {} / {n}", i + 1);
        }
    }
    Ok(rows)
}

/// PDQ of a JPEG decoded at full scale by jpeg-decoder, the decoder fast
/// mode uses; `None` for layouts fast mode does not take (CMYK, 16-bit).
fn full_scale_jpeg_decoder(bytes: &[u8]) -> Result<Option<PdqHash>> {
    use hashscan_pdq::Pixels;
    let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(bytes));
    let px = d.decode()?;
    let info = d.info().context("jpeg info")?;
    let pixels = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => Pixels::Rgb8(&px),
        jpeg_decoder::PixelFormat::L8 => Pixels::Gray8(&px),
        _ => return Ok(None),
    };
    let out = hashscan_pdq::PdqHasher::new().hash_pixels(u32::from(info.width), u32::from(info.height), pixels)?;
    Ok(Some(out.hash))
}
