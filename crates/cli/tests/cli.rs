//! The `hashscan` command as a user runs it: hashes that agree with the
//! standard tools, reference checks, and a scan of the loopback test web
//! followed by `hits` in every format.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use hashscan_hash::CryptoAlgo;
use hashscan_testweb::{TestWeb, WebSpec};

fn hashscan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hashscan")).args(args).output().expect("hashscan runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The hex digest a standard tool prints for `file`.
fn tool_digest(tool: &str, file: &Path) -> String {
    let out = Command::new(tool)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is needed by this test (scripts/test installs it): {e}"));
    assert!(out.status.success(), "{tool} failed");
    stdout(&out).split_whitespace().next().unwrap_or_default().to_string()
}

#[test]
fn hash_agrees_with_md5sum_sha1sum_sha256sum_and_b3sum() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, len) in [("empty", 0usize), ("small", 3), ("chunky", 16 * 1024 + 1), ("big", 3 << 20)] {
        let path = dir.path().join(name);
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, data).unwrap();
        files.push(path);
    }
    let args: Vec<&str> =
        ["hash", "--format", "jsonl"].into_iter().chain(files.iter().map(|f| f.to_str().unwrap())).collect();
    let out = hashscan(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), files.len());
    for (line, file) in lines.iter().zip(&files) {
        assert_eq!(line["file"], file.to_str().unwrap());
        assert_eq!(line["bytes"], std::fs::metadata(file).unwrap().len());
        for (field, tool) in [("md5", "md5sum"), ("sha1", "sha1sum"), ("sha256", "sha256sum"), ("blake3", "b3sum")] {
            assert_eq!(line[field], tool_digest(tool, file), "{field} of {}", file.display());
        }
    }
}

#[test]
fn hash_reports_unreadable_files_and_fails() {
    let out = hashscan(&["hash", "--format", "jsonl", "/nonexistent/file.jpg"]);
    assert!(!out.status.success());
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(line["file"], "/nonexistent/file.jpg");
    assert!(line["error"].as_str().unwrap().contains("No such file"), "{line}");
}

#[test]
fn refset_check_reports_every_malformed_row_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list.csv");
    let good = "900150983cd24fb0d6963f7d28e17f72";
    std::fs::write(&path, format!("id,md5,source\nA,{good},x\nB,{}z,x\nC,abc,x\nD,{good}\n", &good[1..])).unwrap();
    let out = hashscan(&["refset", "check", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(text.contains("list.csv:3"), "{text}");
    assert!(text.contains("list.csv:4"), "{text}");
    assert!(text.contains("list.csv:5"), "{text}");
    assert!(text.contains("source"), "unknown column is named: {text}");
    assert!(text.contains("3 error(s)"), "{text}");
}

#[test]
fn scan_refuses_to_start_on_a_malformed_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, "sha1\nnot-hex\n").unwrap();
    let out = hashscan(&[
        "scan",
        "--seed",
        "http://www.site0.test/",
        "--reference",
        path.to_str().unwrap(),
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("bad.csv:2"), "{}", stderr(&out));
    assert!(!dir.path().join("data").exists(), "nothing was scanned");
}

#[test]
fn scan_rejects_bad_flags_with_the_flag_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.csv");
    std::fs::write(&path, "md5\n900150983cd24fb0d6963f7d28e17f72\n").unwrap();
    let reference = path.to_str().unwrap();
    for (flag, value, needle) in [
        ("--seed", "ftp://x.test/", "--seed"),
        ("--allow-net", "10.0.0.0/33", "--allow-net"),
        ("--resolve", "nohost", "--resolve"),
        ("--rate", "0", "--rate"),
        ("--robots-agent", "bad token", "--robots-agent"),
        ("--contact", "not a url", "--contact"),
        ("--max-rate", "0", "--max-rate"),
        ("--first-byte-timeout", "0", "--first-byte-timeout"),
        ("--fetch-timeout", "inf", "--fetch-timeout"),
        ("--max-crawl-delay", "abc", "--max-crawl-delay"),
    ] {
        let mut args = vec!["scan", "--reference", reference, flag, value];
        if flag != "--seed" {
            args.extend(["--seed", "http://www.site0.test/"]);
        }
        let out = hashscan(&args);
        assert!(!out.status.success(), "{flag} {value}");
        assert!(stderr(&out).contains(needle), "{flag}: {}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_then_hits_in_every_format() {
    let web = TestWeb::start(WebSpec { sites: 2, ..WebSpec::default() }, 0).await.unwrap();
    let m = web.manifest().clone();
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.csv");
    std::fs::write(&reference, web.reference_csv()).unwrap();
    let seeds = dir.path().join("seeds.txt");
    std::fs::write(&seeds, format!("# the test web\n{}\n", m.seeds.join("\n"))).unwrap();
    let data = dir.path().join("data");
    let mut args: Vec<String> = vec![
        "scan".into(),
        "--seeds".into(),
        seeds.display().to_string(),
        "--reference".into(),
        reference.display().to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--rate".into(),
        "100".into(),
        "--allow-net".into(),
        web.allow_net(),
        "--scan-id".into(),
        "cli-1".into(),
    ];
    for r in m.resolve_flags() {
        args.extend(["--resolve".into(), r]);
    }
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_hashscan")).args(&args).output().expect("hashscan runs")
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("scan cli-1 finished"), "{}", stderr(&out));
    web.shutdown().await;

    let data = data.to_str().unwrap();
    let out = hashscan(&["hits", "--data-dir", data, "--format", "jsonl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hits: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Reference hits are exactly the listed images; the other cases were
    // raised by their circumstances and carry those factors.
    let found: BTreeSet<String> =
        hits.iter().filter(|h| h["match"] != "none").map(|h| h["blake3"].as_str().unwrap().to_string()).collect();
    let expected: BTreeSet<String> = m.expected_hits().map(|c| c.digests.hex(CryptoAlgo::Blake3)).collect();
    assert_eq!(found, expected);
    for h in hits.iter().filter(|h| h["match"] == "none") {
        assert!(h["factors"].as_array().is_some_and(|f| !f.is_empty()), "{h}");
    }
    for h in &hits {
        for field in [
            "image_url",
            "page_urls",
            "host",
            "score",
            "match",
            "match_algo",
            "distance",
            "reference_version",
            "md5",
            "sha1",
            "sha256",
            "blake3",
            "pdq",
            "pdq_quality",
            "reasons",
            "factors",
            "status",
            "first_seen",
            "last_seen",
            "scan",
        ] {
            assert!(h.get(field).is_some(), "{field} missing in {h}");
        }
        assert!(h["match"] == "exact" || h["match"] == "none", "{h}");
        assert_eq!(h["scan"], "cli-1");
    }

    let all = hashscan(&["hits", "--data-dir", data, "--all", "--format", "jsonl"]);
    assert_eq!(stdout(&all).lines().count() as u64, m.expected.contents);
    let csv = hashscan(&["hits", "--data-dir", data, "--format", "csv"]);
    assert_eq!(stdout(&csv).lines().count(), hits.len() + 1, "header plus one row per hit");
    let table = hashscan(&["hits", "--data-dir", data]);
    assert!(stdout(&table).contains(&format!("{} image(s)", hits.len())));
    let none = hashscan(&["hits", "--data-dir", data, "--min-score", "2"]);
    assert!(!none.status.success());
    assert!(stderr(&none).contains("--min-score"));
}

#[test]
fn hits_without_results_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = hashscan(&["hits", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("hashscan scan"), "{}", stderr(&out));
}

#[test]
fn demo_scans_the_test_web_and_checks_its_hits() {
    let dir = tempfile::tempdir().unwrap();
    let out = hashscan(&["demo", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(" 0 false hit(s)"), "{}", stderr(&out));
    assert!(stdout(&out).contains("exact"), "{}", stdout(&out));
}

fn conformance_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("HASHSCAN_CONFORMANCE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/pdq"));
    assert!(
        dir.join("reference.tsv").is_file(),
        "PDQ conformance data missing at {} (scripts/test finds it)",
        dir.display()
    );
    dir
}

/// `file → (pdq, quality)` from reference.tsv, or `file transform → pdq` from dihedral.tsv.
fn tsv_column(path: &Path, key_cols: &[&str], value_col: &str) -> std::collections::HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            let key = key_cols.iter().map(|k| cells[col(k)]).collect::<Vec<_>>().join(" ");
            (key, cells[col(value_col)].to_string())
        })
        .collect()
}

#[test]
fn hash_prints_pdq_and_dihedral_hashes_that_match_metas_reference() {
    let dir = conformance_dir();
    let files = ["images/generated/julia-point-symmetric.png", "images/reg-test-input/dih/bridge-1-original.jpg"];
    let paths: Vec<String> = files.iter().map(|f| dir.join(f).display().to_string()).collect();
    let mut args = vec!["hash", "--format", "jsonl", "--dihedral"];
    args.extend(paths.iter().map(String::as_str));
    let out = hashscan(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let pdq = tsv_column(&dir.join("reference.tsv"), &["file"], "pdq_hex");
    let quality = tsv_column(&dir.join("reference.tsv"), &["file"], "quality");
    let dihedral = tsv_column(&dir.join("dihedral.tsv"), &["file", "transform"], "pdq_hex");
    for (line, file) in stdout(&out).lines().zip(files) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["pdq"], pdq[file], "{file}");
        assert_eq!(v["pdq_quality"].to_string(), quality[file], "{file}");
        for (t, h) in v["pdq_dihedral"].as_object().unwrap() {
            assert_eq!(h, &dihedral[&format!("{file} {t}")], "{file} {t}");
        }
    }
}

#[test]
fn hash_says_why_a_file_has_no_pdq() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "plain text, not a picture").unwrap();
    let out = hashscan(&["hash", "--format", "jsonl", path.to_str().unwrap()]);
    assert!(out.status.success(), "a file without PDQ is not a failure: its digests are still right");
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(v.get("pdq").is_none());
    assert!(v["pdq_error"].as_str().unwrap().starts_with("unknown_format"), "{v}");
}

/// A PDQ hash (hex) `flips` bits away from `hex`.
fn flip_bits(hex: &str, flips: usize) -> String {
    let mut bytes = hex::decode(hex).unwrap();
    for k in 0..flips {
        bytes[k % 32] ^= 1 << (k / 32);
    }
    hex::encode(bytes)
}

#[test]
fn refset_build_then_match_finds_exact_near_and_ignored_records() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    // Three benign files: one listed by MD5, one near-listed by PDQ, one on an ignore list.
    let picture = hashscan_testweb::images::generate(3, 320, 240, hashscan_testweb::images::Format::Png);
    std::fs::write(p("picture.png"), &picture).unwrap();
    std::fs::write(p("listed.bin"), b"a benign file we list").unwrap();
    std::fs::write(p("noise.bin"), b"a benign file that keeps causing false alarms").unwrap();
    std::fs::write(p("other.bin"), b"nothing to see").unwrap();
    let out = hashscan(&[
        "hash",
        "--format",
        "jsonl",
        p("picture.png").to_str().unwrap(),
        p("listed.bin").to_str().unwrap(),
        p("noise.bin").to_str().unwrap(),
        p("other.bin").to_str().unwrap(),
    ]);
    std::fs::write(p("hashes.jsonl"), &out.stdout).unwrap();
    let records: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let pdq = records[0]["pdq"].as_str().unwrap().to_string();
    // Lists in three formats: CSV, signal lines (gzip), md5sum-style lines.
    std::fs::write(p("police.csv"), format!("id,md5\nP-1,{}\n", records[1]["md5"].as_str().unwrap())).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, format!("pdq,{},N-7\n", flip_bits(&pdq, 9)).as_bytes()).unwrap();
    std::fs::write(p("partner.txt.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(p("benign.md5"), format!("{}  noise.bin\n", records[2]["md5"].as_str().unwrap())).unwrap();

    let index = p("set.hsref");
    let police = format!("file={},name=police", p("police.csv").display());
    let partner = format!("file={},name=partner,radius=20", p("partner.txt.gz").display());
    let benign = format!("file={},name=benign,kind=ignore,algo=md5", p("benign.md5").display());
    let out = hashscan(&[
        "refset",
        "build",
        "--name",
        "hotline",
        "--out",
        index.to_str().unwrap(),
        "--list",
        &police,
        "--list",
        &partner,
        "--list",
        &benign,
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let version = stdout(&out).lines().find_map(|l| l.strip_prefix("version    ")).unwrap().to_string();
    assert_eq!(std::fs::metadata(&index).unwrap().permissions().mode() & 0o777, 0o600, "the index is private");
    let check = hashscan(&["refset", "check", index.to_str().unwrap()]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).contains("list partner") && stdout(&check).contains("radius 20"), "{}", stdout(&check));

    let out =
        hashscan(&["match", "--reference", index.to_str().unwrap(), "--hashes", p("hashes.jsonl").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let found: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(found.len(), 3, "other.bin matches nothing: {found:?}");
    let by_file = |name: &str| found.iter().find(|r| r["file"].as_str().unwrap().ends_with(name)).unwrap();
    let picture = by_file("picture.png");
    assert_eq!(picture["matched"], true);
    assert_eq!(picture["matches"][0]["list"], "partner");
    assert_eq!(picture["matches"][0]["distance"], 9);
    assert_eq!(picture["matches"][0]["id"], "N-7");
    assert_eq!(picture["reference_version"], version);
    assert_eq!(by_file("listed.bin")["matches"][0]["algo"], "md5");
    let noise = by_file("noise.bin");
    assert_eq!((noise["matched"].clone(), noise["ignored"].clone()), (false.into(), true.into()));
}

#[test]
fn match_reports_malformed_records_by_line_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("l.csv");
    std::fs::write(&list, "md5\n900150983cd24fb0d6963f7d28e17f72\n").unwrap();
    let hashes = dir.path().join("h.jsonl");
    std::fs::write(
        &hashes,
        "not json\n{\"md5\":\"zz\"}\n{\"file\":\"x\"}\n{\"md5\":\"900150983cd24fb0d6963f7d28e17f72\"}\n",
    )
    .unwrap();
    let out = hashscan(&["match", "--reference", list.to_str().unwrap(), "--hashes", hashes.to_str().unwrap()]);
    assert!(!out.status.success(), "malformed records make the exit status fail");
    let lines: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    for (i, l) in lines[..3].iter().enumerate() {
        assert!(l["line"].as_str().unwrap().ends_with(&format!("h.jsonl:{}", i + 1)), "{l}");
        assert!(l.get("error").is_some(), "{l}");
    }
    assert_eq!(lines[3]["matched"], true, "the good record after the bad ones is still matched");
}

#[test]
fn refset_build_refuses_malformed_lists_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"md5\":\"900150983cd24fb0d6963f7d28e17f72\"}\n{\"sha1\": 12}\n").unwrap();
    let index = dir.path().join("x.hsref");
    let out = hashscan(&["refset", "build", "--out", index.to_str().unwrap(), bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("bad.jsonl:2"), "{}", stderr(&out));
    assert!(!index.exists());
    let out = hashscan(&["refset", "build", "--out", index.to_str().unwrap(), "--list", "name=x"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("file=PATH is required"), "{}", stderr(&out));
}

fn all_hits(data: &str) -> Vec<serde_json::Value> {
    let out = hashscan(&["hits", "--data-dir", data, "--all", "--format", "jsonl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn eval_of_a_generated_web_meets_the_targets_and_a_confirmation_lifts_its_host() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("eval");
    let data = data.to_str().unwrap();
    let out = hashscan(&["eval", "--generate", "--seed", "3", "--data-dir", data, "--format", "json", "--check"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let e: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let classes: Vec<&str> = e["classes"].as_array().unwrap().iter().map(|c| c["class"].as_str().unwrap()).collect();
    assert_eq!(classes, ["listed", "variant", "cooccurring", "benign", "lone_neighbour", "popular"]);
    assert!(e["targets"].as_array().unwrap().iter().all(|t| t["met"] == true), "{e}");
    assert_eq!(e["unknown"], 0);
    assert_eq!(e["curve"].as_array().unwrap().len(), 20);
    // The text form says the same in a table.
    let text = hashscan(&["eval", "--truth", &format!("{data}/eval-truth.json"), "--data-dir", data]);
    assert!(stdout(&text).contains("cooccurring") && stdout(&text).contains("PRECISION"), "{}", stdout(&text));

    // An analyst confirms one unlisted case on a bad host; a second scan of
    // the same web (same seed, same port) ranks that host's other unknown
    // images higher, and lowers none.
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{data}/eval-truth.json")).unwrap()).unwrap();
    let class_of = |b: &str| -> String {
        truth["contents"].as_array().unwrap().iter().find(|c| c["blake3"] == b).unwrap()["class"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = all_hits(data);
    let host_of = |page: &str| page.split('/').nth(2).unwrap().to_string();
    let chosen = before
        .iter()
        .find(|h| {
            h["match"] == "none" && h["status"] == "open" && class_of(h["blake3"].as_str().unwrap()) == "cooccurring"
        })
        .expect("an unlisted case");
    let host = host_of(chosen["page_urls"][0].as_str().unwrap());
    let unknown_on_host = |hits: &[serde_json::Value]| -> std::collections::BTreeMap<String, f64> {
        hits.iter()
            .filter(|h| h["match"] == "none" && h["blake3"] != chosen["blake3"])
            .filter(|h| h["page_urls"].as_array().unwrap().iter().any(|p| host_of(p.as_str().unwrap()) == host))
            .map(|h| (h["blake3"].as_str().unwrap().to_string(), h["score"].as_f64().unwrap()))
            .collect()
    };
    let out = hashscan(&["decide", chosen["blake3"].as_str().unwrap(), "confirmed", "--data-dir", data]);
    assert!(out.status.success(), "{}", stderr(&out));
    let port = truth["port"].to_string();
    let out = hashscan(&["eval", "--generate", "--seed", "3", "--port", &port, "--data-dir", data, "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after = all_hits(data);
    let (b, a) = (unknown_on_host(&before), unknown_on_host(&after));
    assert!(!b.is_empty() && b.len() == a.len(), "{b:?} {a:?}");
    let raised = b.iter().filter(|(k, v)| a[*k] > **v + 1e-9).count();
    let fell: Vec<(f64, f64)> = b.iter().filter(|(k, v)| a[*k] < **v - 1e-6).map(|(k, v)| (*v, a[k])).collect();
    assert!(fell.is_empty(), "no unknown image of {host} falls: {fell:?}");
    assert!(raised * 2 >= b.len(), "most unknown images of {host} rise: {raised} of {}", b.len());
    let confirmed = after.iter().find(|h| h["blake3"] == chosen["blake3"]).unwrap();
    assert_eq!((confirmed["score"].as_f64(), confirmed["status"].as_str()), (Some(1.0), Some("confirmed")));

    // Bad input: a hash that is not one, a status that does not exist.
    let bad = hashscan(&["decide", "xyz", "confirmed", "--data-dir", data]);
    assert!(!bad.status.success() && stderr(&bad).contains("not a BLAKE3"), "{}", stderr(&bad));
    let bad = hashscan(&["decide", chosen["blake3"].as_str().unwrap(), "maybe", "--data-dir", data]);
    assert!(!bad.status.success() && stderr(&bad).contains("maybe"), "{}", stderr(&bad));
    let bad = hashscan(&["eval", "--truth", "/nonexistent/truth.json", "--data-dir", data]);
    assert!(!bad.status.success() && stderr(&bad).contains("cannot read"), "{}", stderr(&bad));
}

#[test]
fn recheck_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = hashscan(&["recheck", "--data-dir", d]);
    assert!(!out.status.success() && stderr(&out).contains("hashscan scan"), "{}", stderr(&out));
    let out = hashscan(&["recheck", "--data-dir", d, "--rate", "0"]);
    assert!(!out.status.success() && stderr(&out).contains("--rate"), "{}", stderr(&out));
    let out = hashscan(&["recheck", "--data-dir", d, "--status", "lost"]);
    assert!(!out.status.success() && stderr(&out).contains("lost"), "{}", stderr(&out));
}
