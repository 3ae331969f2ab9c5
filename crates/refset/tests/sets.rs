//! Sets of several lists: every list format, definitions, the index file,
//! and matching that agrees with brute force. Hashes of benign strings and
//! random PDQ values only.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hashscan_hash::{CryptoAlgo, Digests};
use hashscan_pdq::PdqHash;
use hashscan_refset::{check_list, Algo, Format, ListKind, ListSpec, LoadError, ReferenceSet, SetSpec, Warning};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body).unwrap();
    gz.finish().unwrap()
}

fn d(s: &str) -> Digests {
    Digests::of(s.as_bytes())
}

fn load_one(path: &Path) -> ReferenceSet {
    match ReferenceSet::load(path) {
        Ok((set, _)) => set,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn every_list_format_loads_plain_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (d("a"), d("b"));
    let pdq = PdqHash::from_bytes(d("p").sha256);
    let jsonl = format!(
        "{{\"md5\":\"{}\",\"id\":\"J1\"}}\n\n{{\"file\":\"x.jpg\",\"bytes\":3,\"sha1\":\"{}\",\"pdq\":\"{}\",\"pdq_quality\":88}}\n",
        a.hex(CryptoAlgo::Md5),
        b.hex(CryptoAlgo::Sha1),
        pdq
    );
    let md5sum = format!("{}  a.jpg\n{} *b.jpg\n", a.hex(CryptoAlgo::Md5), b.hex(CryptoAlgo::Md5));
    let signals = format!("# export\npdq,{pdq},S-1\nsha256,{}\n", a.hex(CryptoAlgo::Sha256));
    for (name, body) in [("l.jsonl", jsonl), ("l.md5", md5sum), ("l.signals", signals)] {
        for gz in [false, true] {
            let bytes = if gz { gzip(body.as_bytes()) } else { body.clone().into_bytes() };
            let path = write(dir.path(), &format!("{name}{}", if gz { ".gz" } else { "" }), &bytes);
            let set = load_one(&path);
            match name {
                "l.jsonl" => {
                    assert_eq!(set.find(Algo::Md5, &a.md5).and_then(|i| i.id), Some("J1"));
                    let item = set.find(Algo::Sha1, &b.sha1).unwrap();
                    assert_eq!(
                        (item.label, item.line, item.pdq, item.pdq_quality),
                        (Some("x.jpg"), 3, Some(pdq), Some(88))
                    );
                }
                "l.md5" => {
                    assert_eq!(set.find(Algo::Md5, &a.md5).and_then(|i| i.label), Some("a.jpg"));
                    assert_eq!(set.find(Algo::Md5, &b.md5).and_then(|i| i.label), Some("b.jpg"));
                }
                _ => {
                    assert_eq!(set.near(&pdq, 0)[0].0.id, Some("S-1"));
                    assert_eq!(set.find(Algo::Sha256, &a.sha256).map(|i| i.line), Some(3));
                }
            }
        }
    }
}

#[test]
fn each_format_reports_its_malformed_lines_with_place() {
    let dir = tempfile::tempdir().unwrap();
    let errors = |name: &str, body: &str, spec: fn(&Path) -> ListSpec| -> Vec<String> {
        let path = write(dir.path(), name, body.as_bytes());
        check_list(&spec(&path)).unwrap().errors.iter().map(|e| e.to_string()).collect()
    };
    let jsonl = errors("e.jsonl", "{\"md5\":\"00\"}\nnot json\n[1]\n{\"sha1\":7}\n{\"id\":\"no hash\"}\n{\"pdq_quality\":5,\"md5\":\"900150983cd24fb0d6963f7d28e17f72\"}\n", ListSpec::for_file);
    assert_eq!(jsonl.len(), 6, "{jsonl:?}");
    assert!(jsonl[0].contains("e.jsonl:1: key \"md5\": expected 32 hex digits"), "{}", jsonl[0]);
    assert!(jsonl[1].contains("e.jsonl:2: not a valid JSON Lines row"), "{}", jsonl[1]);
    assert!(jsonl[4].contains("e.jsonl:5: row has no hash"), "{}", jsonl[4]);
    assert!(jsonl[5].contains("pdq_quality given on a row without a pdq hash"), "{}", jsonl[5]);
    let lines = errors("e.txt", "900150983cd24fb0d6963f7d28e17f72\nxyz\n", |p| ListSpec {
        format: Format::Lines,
        algo: Some(Algo::Md5),
        ..ListSpec::for_file(p)
    });
    assert_eq!(
        lines,
        [format!("{}:2: column 1 (md5): not a hex digit 'x' at position 1", dir.path().join("e.txt").display())]
    );
    let ambiguous = errors("e.sha", &format!("{}\n", d("a").hex(CryptoAlgo::Sha256)), |p| ListSpec {
        format: Format::Lines,
        ..ListSpec::for_file(p)
    });
    assert!(ambiguous[0].contains("which algorithm"), "{ambiguous:?}");
    let signals =
        errors("e.sig", "pdq,00\ncrc32,ab\nmd5\n", |p| ListSpec { format: Format::Signals, ..ListSpec::for_file(p) });
    assert_eq!(signals.len(), 3, "{signals:?}");
    assert!(signals[1].contains("unknown signal type \"crc32\""), "{}", signals[1]);
    let gz = write(dir.path(), "e.csv.gz", b"\x1f\x8bgarbage");
    let broken_gz: Vec<String> =
        check_list(&ListSpec::for_file(&gz)).unwrap().errors.iter().map(|e| e.to_string()).collect();
    assert!(broken_gz[0].contains("e.csv.gz: cannot decompress"), "{broken_gz:?}");
}

#[test]
fn a_definition_file_builds_lists_with_their_settings() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "own.csv", format!("id,md5\nO1,{}\n", d("own").hex(CryptoAlgo::Md5)).as_bytes());
    write(dir.path(), "benign.txt", format!("{}\n", d("meme").hex(CryptoAlgo::Md5)).as_bytes());
    let toml = write(
        dir.path(),
        "set.toml",
        b"name = \"hotline\"\n[[list]]\nname = \"own\"\nfile = \"own.csv\"\nweight = 0.9\npdq_radius = 20\n\
          [[list]]\nname = \"benign\"\nkind = \"ignore\"\nfile = \"benign.txt\"\nalgo = \"md5\"\n",
    );
    let set = load_one(&toml);
    assert_eq!(set.name(), "hotline");
    let lists: Vec<(&str, ListKind, u32, f64)> =
        set.lists().iter().map(|l| (l.name.as_str(), l.kind, l.pdq_radius, l.weight)).collect();
    assert_eq!(lists, [("own", ListKind::Match, 20, 0.9), ("benign", ListKind::Ignore, 31, 1.0)]);
    assert!(set.match_image(&d("meme"), None).ignored());
    // Errors name the key.
    let bad = write(dir.path(), "bad.toml", b"[[list]]\nname = \"x\"\nfile = \"own.csv\"\npdq_radius = 400\n");
    let err = ReferenceSet::load(&bad).unwrap_err().to_string();
    assert!(err.contains("pdq_radius") && err.contains("400"), "{err}");
    let unknown = write(dir.path(), "unknown.toml", b"[[list]]\nname = \"x\"\nfile = \"own.csv\"\nradius = 3\n");
    let err = ReferenceSet::load(&unknown).unwrap_err().to_string();
    assert!(err.contains("radius"), "{err}");
    let twice = write(
        dir.path(),
        "twice.toml",
        b"[[list]]\nname=\"x\"\nfile=\"own.csv\"\n[[list]]\nname=\"x\"\nfile=\"own.csv\"\n",
    );
    assert!(ReferenceSet::load(&twice).unwrap_err().to_string().contains("used twice"));
    for (kv, needle) in [
        ("name=x", "file=PATH is required"),
        ("file=a,kind=maybe", "match or ignore"),
        ("file=a,radius=-1", "whole number"),
        ("file=a,weight=2", "0..=1"),
        ("file=a,colour=red", "unknown key"),
    ] {
        let err = ListSpec::parse_kv(kv).unwrap_err().to_string();
        assert!(err.contains(needle), "{kv}: {err}");
    }
}

#[test]
fn an_index_file_loads_back_identical_private_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut body = String::from("id,md5,sha256,pdq\n");
    for i in 0..300 {
        let p: [u8; 32] = rng.random();
        body.push_str(&format!(
            "I{i},{},{},{}\n",
            d(&i.to_string()).hex(CryptoAlgo::Md5),
            d(&format!("s{i}")).hex(CryptoAlgo::Sha256),
            hex::encode(p)
        ));
    }
    let list = write(dir.path(), "big.csv", body.as_bytes());
    let (set, _) = ReferenceSet::load(&list).unwrap();
    let index = dir.path().join("set.hsref");
    set.write_index(&index).unwrap();
    assert_eq!(std::fs::metadata(&index).unwrap().permissions().mode() & 0o777, 0o600);
    let (loaded, warnings) = ReferenceSet::load(&index).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(loaded.version(), set.version(), "same lists, same version, however loaded");
    assert_eq!(loaded.len(), 300);
    for i in [0, 17, 299] {
        let item = loaded.find(Algo::Md5, &d(&i.to_string()).md5).unwrap();
        assert_eq!(item.id, Some(format!("I{i}").as_str()));
        assert_eq!(loaded.find(Algo::Sha256, &d(&format!("s{i}")).sha256).map(|x| x.index), Some(item.index));
        let pdq = item.pdq.unwrap();
        assert_eq!(loaded.near(&pdq, 0)[0].0.index, item.index);
    }
    // Everyone-readable index: loads, with a warning.
    std::fs::set_permissions(&index, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_, warnings) = ReferenceSet::load(&index).unwrap();
    assert!(matches!(&warnings[..], [Warning::WorldReadable { .. }]));
    // Damage anywhere is caught before any lookup.
    let mut bytes = std::fs::read(&index).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let damaged = write(dir.path(), "damaged.hsref", &bytes);
    assert!(matches!(ReferenceSet::load(&damaged), Err(LoadError::Index { .. })));
    let truncated = write(dir.path(), "truncated.hsref", &bytes[..bytes.len() - 100]);
    let err = ReferenceSet::load(&truncated).unwrap_err().to_string();
    assert!(err.contains("truncated.hsref") && err.contains("truncated"), "{err}");
}

/// Brute-force answer: every (item, distance) within each list's radius.
fn brute(set: &ReferenceSet, q: &PdqHash, quality: u8) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = set
        .items()
        .filter_map(|it| {
            let h = it.pdq?;
            let dist = h.hamming(q);
            (dist <= it.list.pdq_radius && quality >= it.list.min_quality).then_some((it.index, dist))
        })
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn pdq_matching_agrees_with_brute_force_across_lists_and_radii() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let centres: Vec<[u8; 32]> = (0..20).map(|_| rng.random()).collect();
    let near = |rng: &mut ChaCha8Rng, c: &[u8; 32], max: u32| {
        let mut h = *c;
        for _ in 0..rng.random_range(0..=max) {
            let bit = rng.random_range(0..256usize);
            h[bit / 8] ^= 1 << (bit % 8);
        }
        h
    };
    let mut specs = Vec::new();
    for (li, radius) in [(0, 31u32), (1, 10), (2, 0), (3, 64)] {
        let mut body = String::from("pdq\n");
        for _ in 0..150 {
            let c = centres[rng.random_range(0..centres.len())];
            body.push_str(&format!("{}\n", hex::encode(near(&mut rng, &c, 40))));
        }
        let path = write(dir.path(), &format!("l{li}.csv"), body.as_bytes());
        specs.push(ListSpec {
            name: format!("l{li}"),
            pdq_radius: radius,
            min_quality: 20 * li as u8,
            ..ListSpec::for_file(&path)
        });
    }
    let (set, _) = ReferenceSet::from_spec(&SetSpec::new("s", specs).unwrap()).unwrap();
    for _ in 0..400 {
        let c = centres[rng.random_range(0..centres.len())];
        let q = PdqHash::from_bytes(if rng.random_bool(0.8) { near(&mut rng, &c, 50) } else { rng.random() });
        let quality = rng.random_range(0..=100u8);
        let report = set.match_image(&d("nothing"), Some((&q, quality)));
        let mut got: Vec<(u32, u32)> = report.matches.iter().map(|m| (m.item.index, m.distance)).collect();
        got.sort_unstable();
        assert_eq!(got, brute(&set, &q, quality));
        for r in [0, 5, 31, 64, 256] {
            let mut near_got: Vec<(u32, u32)> = set.near(&q, r).iter().map(|(i, d)| (i.index, *d)).collect();
            near_got.sort_unstable();
            let mut want: Vec<(u32, u32)> =
                set.items().filter_map(|i| i.pdq.map(|h| (i.index, h.hamming(&q)))).filter(|(_, d)| *d <= r).collect();
            want.sort_unstable();
            assert_eq!(near_got, want, "radius {r}");
        }
    }
}

#[test]
fn the_difference_holds_exactly_what_a_new_version_adds() {
    let dir = tempfile::tempdir().unwrap();
    let p1 = PdqHash::from_bytes(d("p1").sha256);
    let p2 = PdqHash::from_bytes(d("p2").sha256);
    let v1_list = write(dir.path(), "a.csv", format!("md5,pdq\n{},{p1}\n", d("x").hex(CryptoAlgo::Md5)).as_bytes());
    let v1 = ReferenceSet::from_spec(&SetSpec::new("s", vec![ListSpec::for_file(&v1_list)]).unwrap()).unwrap().0;
    let v2_list = write(
        dir.path(),
        "a2.csv",
        format!("md5,pdq\n{},{p1}\n{},{p2}\n", d("x").hex(CryptoAlgo::Md5), d("y").hex(CryptoAlgo::Md5)).as_bytes(),
    );
    let extra = write(dir.path(), "b.csv", format!("sha1\n{}\n", d("z").hex(CryptoAlgo::Sha1)).as_bytes());
    let v2 = ReferenceSet::from_spec(
        &SetSpec::new(
            "s",
            vec![ListSpec { name: "a".into(), ..ListSpec::for_file(&v2_list) }, ListSpec::for_file(&extra)],
        )
        .unwrap(),
    )
    .unwrap()
    .0;
    let diff = v2.difference(&v1).unwrap();
    assert_eq!((diff.count(Algo::Md5), diff.count(Algo::Pdq), diff.count(Algo::Sha1)), (1, 1, 1), "{diff:?}");
    assert!(diff.find(Algo::Md5, &d("y").md5).is_some());
    assert!(diff.find(Algo::Md5, &d("x").md5).is_none(), "unchanged entries are left out");
    assert_eq!(diff.near(&p2, 0).len(), 1);
    assert!(diff.near(&p1, 0).is_empty());
    // Changing a list's radius brings the whole list back.
    let wider = ReferenceSet::from_spec(
        &SetSpec::new("s", vec![ListSpec { name: "a".into(), pdq_radius: 40, ..ListSpec::for_file(&v2_list) }])
            .unwrap(),
    )
    .unwrap()
    .0;
    assert_eq!(wider.difference(&v2).unwrap().count(Algo::Pdq), 2);
    assert_eq!(v2.difference(&v2).unwrap().len(), 0, "nothing changed, nothing to re-match");
}

#[test]
fn large_sets_get_the_multi_index_and_still_agree_with_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let hashes: Vec<[u8; 32]> = (0..6000).map(|_| rng.random()).collect();
    let body: String =
        std::iter::once("pdq\n".to_string()).chain(hashes.iter().map(|h| format!("{}\n", hex::encode(h)))).collect();
    let path = write(dir.path(), "big.csv", body.as_bytes());
    let set = load_one(&path);
    let small = load_one(&write(dir.path(), "small.csv", format!("pdq\n{}\n", hex::encode(hashes[0])).as_bytes()));
    assert!(set.image().len() > small.image().len() + (1 << 20), "the big set carries the multi-index tables");
    for k in 0..200 {
        let mut q = hashes[k * 7];
        for b in 0..(k % 40) {
            q[b % 32] ^= 1 << (b / 32 % 8);
        }
        let q = PdqHash::from_bytes(q);
        let mut got: Vec<(u32, u32)> = set.near(&q, 31).iter().map(|(i, d)| (i.index, *d)).collect();
        got.sort_unstable();
        let mut want: Vec<(u32, u32)> =
            set.items().filter_map(|i| i.pdq.map(|h| (i.index, h.hamming(&q)))).filter(|(_, d)| *d <= 31).collect();
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
