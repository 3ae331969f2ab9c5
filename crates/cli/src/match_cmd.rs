//! `hashscan match`: match hash records (the JSON Lines of `hashscan hash`)
//! against a reference set offline, and print the matches as JSON Lines.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use hashscan_pdq::PdqHash;
use hashscan_refset::{Algo, ReferenceSet};
use serde_json::{json, Map, Value};

#[derive(Args)]
pub struct MatchArgs {
    /// The reference: a built index, a `.toml` definition or a list file.
    #[arg(long, value_name = "INDEX")]
    reference: PathBuf,
    /// JSON Lines of hash records (`hashscan hash --format jsonl`); standard input when absent or `-`.
    #[arg(long, value_name = "FILE")]
    hashes: Option<PathBuf>,
    /// Print every record, not only those that match.
    #[arg(long)]
    all: bool,
}

/// The hashes of one record: exact digests, and PDQ with its quality.
type Record = (Vec<(Algo, Vec<u8>)>, Option<(PdqHash, u8)>);

/// The hashes a record carries, or why it cannot be used.
fn parse_record(obj: &Map<String, Value>) -> Result<Record, String> {
    let mut exact = Vec::new();
    for algo in [Algo::Md5, Algo::Sha1, Algo::Sha256, Algo::Blake3] {
        match obj.get(algo.name()) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                let bytes = hex::decode(s.trim()).map_err(|e| format!("{algo}: {e}"))?;
                if bytes.len() != algo.len_bytes() {
                    return Err(format!(
                        "{algo}: expected {} hex digits, found {}",
                        2 * algo.len_bytes(),
                        s.trim().len()
                    ));
                }
                exact.push((algo, bytes));
            }
            Some(_) => return Err(format!("{algo}: expected a hex string")),
        }
    }
    let pdq = match obj.get("pdq") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let hash = PdqHash::from_hex(s.trim()).map_err(|e| format!("pdq: {e}"))?;
            // A record without a quality is trusted as the reference does with
            // its own lists: as fully usable.
            let quality = match obj.get("pdq_quality") {
                None | Some(Value::Null) => 100,
                Some(Value::Number(n)) => {
                    n.as_u64().filter(|q| *q <= 100).ok_or("pdq_quality: expected 0..=100")? as u8
                }
                Some(_) => return Err("pdq_quality: expected a number".into()),
            };
            Some((hash, quality))
        }
        Some(_) => return Err("pdq: expected a hex string".into()),
    };
    if exact.is_empty() && pdq.is_none() {
        return Err("no hash (md5, sha1, sha256, blake3 or pdq)".into());
    }
    Ok((exact, pdq))
}

pub fn run(args: MatchArgs) -> anyhow::Result<ExitCode> {
    let (set, warnings) =
        ReferenceSet::load(&args.reference).with_context(|| format!("cannot load {}", args.reference.display()))?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let input: Box<dyn BufRead> = match &args.hashes {
        Some(p) if p.as_os_str() != "-" => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
        _ => Box::new(std::io::stdin().lock()),
    };
    let name = args.hashes.as_ref().map_or("stdin".to_string(), |p| p.display().to_string());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut records, mut matched, mut bad) = (0u64, 0u64, 0u64);
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {name}"))?;
        if line.trim().is_empty() {
            continue;
        }
        records += 1;
        let at = format!("{name}:{}", i + 1);
        let parsed = serde_json::from_str::<Value>(&line)
            .map_err(|e| e.to_string())
            .and_then(|v| match v {
                Value::Object(m) => Ok(m),
                _ => Err("expected a JSON object".to_string()),
            })
            .and_then(|m| parse_record(&m).map(|r| (m, r)));
        let (obj, (exact, pdq)) = match parsed {
            Ok(ok) => ok,
            Err(e) => {
                bad += 1;
                writeln!(out, "{}", json!({ "line": at, "error": e }))?;
                continue;
            }
        };
        let exact_refs: Vec<(Algo, &[u8])> = exact.iter().map(|(a, d)| (*a, d.as_slice())).collect();
        let report = set.match_hashes(&exact_refs, pdq.as_ref().map(|(h, q)| (h, *q)));
        let is_match = report.matches.iter().any(|m| m.item.list.kind == hashscan_refset::ListKind::Match);
        if is_match {
            matched += 1;
        }
        if !is_match && !args.all && report.matches.is_empty() {
            continue;
        }
        let matches: Vec<Value> = report
            .matches
            .iter()
            .map(|m| {
                json!({
                    "list": m.item.list.name,
                    "kind": m.item.list.kind.name(),
                    "algo": m.algo.name(),
                    "distance": m.distance,
                    "id": m.item.id,
                    "label": m.item.label,
                    "line": m.item.line,
                })
            })
            .collect();
        let mut rec = Map::new();
        rec.insert("line".into(), at.into());
        if let Some(file) = obj.get("file") {
            rec.insert("file".into(), file.clone());
        }
        rec.insert("matched".into(), is_match.into());
        rec.insert("ignored".into(), report.ignored().into());
        rec.insert("matches".into(), matches.into());
        if !report.low_quality.is_empty() {
            let low: Vec<Value> = report
                .low_quality
                .iter()
                .map(|(l, q, min)| json!({ "list": l.name, "quality": q, "min_quality": min }))
                .collect();
            rec.insert("pdq_quality_too_low".into(), low.into());
        }
        rec.insert("reference_version".into(), set.version().into());
        writeln!(out, "{}", Value::Object(rec))?;
    }
    eprintln!(
        "{records} record(s), {matched} matched, {bad} malformed; reference {} version {}",
        set.name(),
        set.version()
    );
    Ok(if bad > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
