//! `hashscan eval`: how well the risk score separates what matters from
//! what does not, measured against a web whose truth is known.
//!
//! The evaluation web (`hashscan-testweb --eval`, or `--generate` here)
//! labels every image content with a class: `listed`, `variant` (altered
//! copies of listed images), `cooccurring` (unlisted, placed where listed
//! material lives: what the score must find), and the negatives `benign`,
//! `lone_neighbour` (met listed material once) and `popular` (shown
//! everywhere). Per positive class it prints recall, precision against the
//! negatives and average precision at the threshold; per negative class the
//! share flagged; and the precision–recall curve of the unlisted problem
//! (co-occurring against every negative) over thresholds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use hashscan_store::{CaseStore, HitFilter, SqliteStore};
use hashscan_testweb::{EvalClass, EvalSpec, EvalTruth, EvalWeb};
use serde::Serialize;

use crate::hits_cmd::db_path;

#[derive(Args)]
pub struct EvalArgs {
    /// Ground truth of the web that was scanned (`truth.json` of `hashscan-testweb --eval`).
    #[arg(long, required_unless_present = "generate", conflicts_with = "generate")]
    truth: Option<PathBuf>,
    /// Serve a generated evaluation web on loopback, scan it into the data
    /// directory, then evaluate (no other input needed).
    #[arg(long)]
    generate: bool,
    /// Seed of the generated web (with --generate).
    #[arg(long, default_value_t = 1, requires = "generate")]
    seed: u64,
    /// Port of the generated web (with --generate; 0 picks a free one).
    /// The same seed and port serve the same URLs again, for a second scan.
    #[arg(long, default_value_t = 0, requires = "generate")]
    port: u16,
    /// Requests per second to one host (with --generate).
    #[arg(long, default_value_t = 100.0, requires = "generate")]
    rate: f64,
    /// Where the scan's results are (with --generate: where they go).
    #[arg(long, default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Only this scan's images (default: every image in the store).
    #[arg(long)]
    scan: Option<String>,
    /// The review threshold to judge at.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = EvalFormat::Text)]
    format: EvalFormat,
    /// Exit with failure unless the targets are met (listed recall 100%,
    /// variant recall ≥ 95%, co-occurring precision ≥ 0.9 at recall ≥ 0.8).
    #[arg(long)]
    check: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum EvalFormat {
    Text,
    Json,
}

/// One class's figures at the threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassRow {
    /// Class name.
    pub class: &'static str,
    /// Whether the score should flag it.
    pub positive: bool,
    /// Contents of the class in the truth.
    pub total: usize,
    /// Of those, contents the scan recorded.
    pub seen: usize,
    /// Of those, contents at or above the threshold.
    pub flagged: usize,
    /// flagged / total: recall for a positive class, false-alarm rate for a negative one.
    pub rate: f64,
    /// Positive classes: flagged / (flagged + flagged negatives).
    pub precision: Option<f64>,
    /// Positive classes: average precision of the class against the negatives.
    pub average_precision: Option<f64>,
}

/// Precision and recall of co-occurring against the negatives at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Threshold.
    pub threshold: f64,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
}

/// A target of the evaluation and whether it is met.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// What is measured.
    pub name: &'static str,
    /// What it must reach.
    pub want: f64,
    /// What it reached.
    pub got: f64,
    /// Whether it did.
    pub met: bool,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Threshold judged at.
    pub threshold: f64,
    /// Per class.
    pub classes: Vec<ClassRow>,
    /// Recorded contents the truth does not know (should be 0).
    pub unknown: usize,
    /// The unlisted problem over thresholds.
    pub curve: Vec<CurvePoint>,
    /// The targets.
    pub targets: Vec<Target>,
}

impl Evaluation {
    /// Whether every target is met.
    pub fn all_met(&self) -> bool {
        self.targets.iter().all(|t| t.met)
    }

    fn class(&self, c: EvalClass) -> Option<&ClassRow> {
        self.classes.iter().find(|r| r.class == c.name())
    }
}

/// What the score should flag: listed material, its variants, and the
/// unlisted images found where it lives.
fn positive(c: EvalClass) -> bool {
    matches!(c, EvalClass::Listed | EvalClass::Variant | EvalClass::Cooccurring)
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Average precision of `positives` ranked among `negatives` (scores,
/// unseen contents at 0); ties rank negatives first, so it never flatters.
fn average_precision(positives: &[f64], negatives: &[f64]) -> f64 {
    if positives.is_empty() {
        return 0.0;
    }
    let mut ranked: Vec<(f64, bool)> =
        positives.iter().map(|s| (*s, true)).chain(negatives.iter().map(|s| (*s, false))).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let (mut hits, mut sum) = (0usize, 0.0);
    for (k, (_, positive)) in ranked.iter().enumerate() {
        if *positive {
            hits += 1;
            sum += hits as f64 / (k + 1) as f64;
        }
    }
    sum / positives.len() as f64
}

/// Compares the recorded `scores` (BLAKE3 hex → score) with the truth.
pub fn evaluate(truth: &EvalTruth, scores: &HashMap<String, f64>, threshold: f64) -> Evaluation {
    let mut by_class: HashMap<EvalClass, Vec<Option<f64>>> = HashMap::new();
    for c in &truth.contents {
        by_class.entry(c.class).or_default().push(scores.get(&c.blake3).copied());
    }
    let known: std::collections::HashSet<&str> = truth.contents.iter().map(|c| c.blake3.as_str()).collect();
    let unknown = scores.keys().filter(|k| !known.contains(k.as_str())).count();
    let values = |c: EvalClass| -> Vec<f64> {
        by_class.get(&c).map(|v| v.iter().map(|s| s.unwrap_or(0.0)).collect()).unwrap_or_default()
    };
    let negatives: Vec<f64> = EvalClass::ALL.iter().filter(|c| !positive(**c)).flat_map(|c| values(*c)).collect();
    let flagged = |v: &[f64], t: f64| v.iter().filter(|s| **s >= t).count();
    let false_alarms = flagged(&negatives, threshold);
    let classes = EvalClass::ALL
        .iter()
        .map(|c| {
            let all = by_class.get(c).map(Vec::as_slice).unwrap_or_default();
            let v = values(*c);
            let f = flagged(&v, threshold);
            ClassRow {
                class: c.name(),
                positive: positive(*c),
                total: all.len(),
                seen: all.iter().filter(|s| s.is_some()).count(),
                flagged: f,
                rate: ratio(f, all.len()),
                precision: positive(*c).then(|| ratio(f, f + false_alarms)),
                average_precision: positive(*c).then(|| average_precision(&v, &negatives)),
            }
        })
        .collect();
    let cooc = values(EvalClass::Cooccurring);
    let curve = (1..=20)
        .map(|k| {
            let t = k as f64 * 0.05;
            let (tp, fp) = (flagged(&cooc, t), flagged(&negatives, t));
            CurvePoint { threshold: t, precision: ratio(tp, tp + fp), recall: ratio(tp, cooc.len()) }
        })
        .collect();
    let mut e = Evaluation { threshold, classes, unknown, curve, targets: Vec::new() };
    let rate = |c| e.class(c).map_or(0.0, |r| r.rate);
    let precision = |c| e.class(c).and_then(|r| r.precision).unwrap_or(0.0);
    let target = |name, want: f64, got: f64| Target { name, want, got, met: got >= want };
    e.targets = vec![
        target("listed recall", 1.0, rate(EvalClass::Listed)),
        target("variant recall", 0.95, rate(EvalClass::Variant)),
        target("cooccurring recall", 0.8, rate(EvalClass::Cooccurring)),
        target("cooccurring precision", 0.9, precision(EvalClass::Cooccurring)),
    ];
    e
}

fn print_text(e: &Evaluation) {
    println!("threshold {:.2}", e.threshold);
    println!(
        "{:<16} {:>6} {:>6} {:>8} {:>8} {:>10} {:>8}",
        "CLASS", "TOTAL", "SEEN", "FLAGGED", "RATE", "PRECISION", "AP"
    );
    for r in &e.classes {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        println!(
            "{:<16} {:>6} {:>6} {:>8} {:>8} {:>10} {:>8}",
            r.class,
            r.total,
            r.seen,
            r.flagged,
            format!("{:.3}", r.rate),
            opt(r.precision),
            opt(r.average_precision)
        );
    }
    println!("(RATE is recall for listed/variant/cooccurring, the false-alarm rate for the others)");
    if e.unknown > 0 {
        println!("{} recorded image(s) are not in the truth file: was it the same web?", e.unknown);
    }
    println!("\ncooccurring against every negative class, by threshold:");
    println!("{:>9} {:>10} {:>8}", "THRESHOLD", "PRECISION", "RECALL");
    for p in &e.curve {
        println!("{:>9.2} {:>10.3} {:>8.3}", p.threshold, p.precision, p.recall);
    }
    println!("\ntargets:");
    for t in &e.targets {
        println!("  {:<22} {:.3} (want ≥ {:.2}) {}", t.name, t.got, t.want, if t.met { "met" } else { "NOT MET" });
    }
}

/// Serves a generated evaluation web, scans it into `data_dir`, and returns
/// its truth (also written next to the results as `eval-truth.json`).
async fn generate(args: &EvalArgs) -> anyhow::Result<(EvalTruth, String)> {
    let web = EvalWeb::start(EvalSpec { seed: args.seed, ..EvalSpec::default() }, args.port)
        .await
        .context("cannot start the loopback evaluation web")?;
    let truth = web.truth().clone();
    eprintln!(
        "evaluation web: {} hosts on {}, {} image contents (benign, generated)",
        truth.hosts.len(),
        web.allow_net(),
        truth.contents.len()
    );
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
    let reference_path = args.data_dir.join("eval-reference.csv");
    write(&reference_path, web.reference_csv())?;
    write(&args.data_dir.join("eval-truth.json"), &serde_json::to_string_pretty(&truth)?)?;
    let scan_id = format!("eval-{}", crate::scan_cmd::default_scan_id().trim_start_matches("scan-"));
    let options = crate::demo::loopback_scan(
        &scan_id,
        &truth.seeds,
        &web.allow_net(),
        &truth.resolve_flags(),
        &reference_path,
        &args.data_dir,
        args.rate,
    )?;
    let report = crate::scan_cmd::execute(options, &args.data_dir, false).await;
    web.shutdown().await;
    report?;
    Ok((truth, scan_id))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

pub async fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.threshold) {
        anyhow::bail!("--threshold must be between 0 and 1, got {}", args.threshold);
    }
    let (truth, scan) = match &args.truth {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let truth: EvalTruth = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a truth file of hashscan-testweb --eval", path.display()))?;
            (truth, args.scan.clone())
        }
        None => {
            let (truth, scan) = generate(&args).await?;
            (truth, Some(scan))
        }
    };
    let db = db_path(&args.data_dir);
    if !db.exists() {
        anyhow::bail!("no results in {} (run `hashscan scan` of the evaluation web first)", args.data_dir.display());
    }
    let store = SqliteStore::open(&db).with_context(|| format!("cannot open {}", db.display()))?;
    let hits = store.hits(HitFilter { all: true, scan, ..HitFilter::default() }).await?;
    let scores: HashMap<String, f64> = hits.into_iter().map(|h| (h.blake3, h.score)).collect();
    let e = evaluate(&truth, &scores, args.threshold);
    match args.format {
        EvalFormat::Text => print_text(&e),
        EvalFormat::Json => println!("{}", serde_json::to_string(&e)?),
    }
    Ok(if args.check && !e.all_met() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashscan_testweb::EvalContent;

    fn content(blake3: &str, class: EvalClass) -> EvalContent {
        EvalContent {
            blake3: blake3.into(),
            class,
            pdq: None,
            pdq_quality: None,
            variant_of: None,
            variant_kind: None,
            variant_detail: None,
            variant_distance: None,
            format: hashscan_testweb::images::Format::Png,
            width: 64,
            height: 64,
            urls: vec![],
            pages: vec![],
        }
    }

    fn truth(contents: Vec<EvalContent>) -> EvalTruth {
        EvalTruth { spec: EvalSpec::default(), port: 1, seeds: vec![], hosts: vec![], contents, pages: vec![] }
    }

    #[test]
    fn average_precision_is_one_for_a_perfect_ranking_and_ties_do_not_flatter() {
        assert_eq!(average_precision(&[0.9, 0.8], &[0.1, 0.2]), 1.0);
        // One negative above both positives: (1/2 + 2/3) / 2.
        let ap = average_precision(&[0.9, 0.8], &[0.95]);
        assert!((ap - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        // A tie ranks the negative first.
        assert_eq!(average_precision(&[0.5], &[0.5]), 0.5);
        assert_eq!(average_precision(&[], &[0.5]), 0.0);
    }

    #[test]
    fn figures_per_class_and_targets() {
        let t = truth(vec![
            content("l1", EvalClass::Listed),
            content("v1", EvalClass::Variant),
            content("c1", EvalClass::Cooccurring),
            content("c2", EvalClass::Cooccurring),
            content("c3", EvalClass::Cooccurring),
            content("b1", EvalClass::Benign),
            content("p1", EvalClass::Popular),
            content("n1", EvalClass::LoneNeighbour),
        ]);
        let scores: HashMap<String, f64> =
            [("l1", 1.0), ("v1", 0.7), ("c1", 0.8), ("c2", 0.6), ("c3", 0.2), ("b1", 0.1), ("p1", 0.55), ("x", 0.9)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let e = evaluate(&t, &scores, 0.5);
        let c = e.class(EvalClass::Cooccurring).unwrap();
        assert_eq!((c.total, c.seen, c.flagged), (3, 3, 2));
        assert!((c.rate - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.precision, Some(2.0 / 3.0), "p1 is a false alarm");
        let n = e.class(EvalClass::LoneNeighbour).unwrap();
        assert_eq!((n.total, n.seen, n.flagged, n.precision), (1, 0, 0, None));
        assert_eq!(e.unknown, 1);
        assert!(e.targets[0].met && e.targets[1].met);
        assert!(!e.targets[2].met && !e.targets[3].met && !e.all_met());
        assert_eq!(e.curve.len(), 20);
        assert_eq!(e.curve[9].threshold, 0.5);
        assert!((e.curve[9].recall - 2.0 / 3.0).abs() < 1e-12);
    }
}
