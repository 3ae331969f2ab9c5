//! Tests use digests of benign strings; no real hash list appears here.

use std::path::Path;

use hashscan_hash::{CryptoAlgo, Digests, HexError};

use super::*;

fn listed() -> Digests {
    Digests::of(b"listed")
}

fn hex(d: &Digests, a: CryptoAlgo) -> String {
    d.hex(a)
}

/// A 64-hex value to stand in for a PDQ hash.
fn pdq_hex(seed: &[u8]) -> String {
    Digests::of(seed).hex(CryptoAlgo::Sha256)
}

fn load(text: &str) -> (ReferenceSet, Vec<Warning>) {
    match ReferenceSet::parse("refs.csv", text.as_bytes()) {
        Ok(ok) => ok,
        Err(e) => panic!("{e}"),
    }
}

fn errors(text: &str) -> Vec<RowError> {
    match ReferenceSet::parse("refs.csv", text.as_bytes()) {
        Err(LoadError::Invalid { errors }) => errors,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("parsed without error"),
    }
}

fn messages(text: &str) -> Vec<String> {
    errors(text).iter().map(|e| e.to_string()).collect()
}

#[test]
fn finds_an_item_by_each_cryptographic_algorithm() {
    for algo in CryptoAlgo::ALL {
        let d = listed();
        let (set, warnings) = load(&format!("id,{algo}\nX1,{}\n", hex(&d, algo)));
        assert!(warnings.is_empty());
        let item = set.find(algo.into(), d.get(algo)).expect("listed");
        assert_eq!(item.id, Some("X1"));
        assert_eq!(item.line, 2);
        assert_eq!(set.find(algo.into(), Digests::of(b"benign").get(algo)), None, "{algo}");
        for other in CryptoAlgo::ALL.into_iter().filter(|&o| o != algo) {
            assert_eq!(set.find(other.into(), d.get(other)), None, "{algo} row found by {other}");
        }
    }
}

#[test]
fn row_with_several_algorithms_is_one_item_found_by_any() {
    let d = listed();
    let text = format!("md5,sha1,label\n{},{},cat-a\n", hex(&d, CryptoAlgo::Md5), hex(&d, CryptoAlgo::Sha1));
    let (set, _) = load(&text);
    assert_eq!(set.len(), 1);
    let by_md5 = set.find(Algo::Md5, &d.md5).expect("md5");
    let by_sha1 = set.find(Algo::Sha1, &d.sha1).expect("sha1");
    assert_eq!(by_md5.index, by_sha1.index);
    assert_eq!(by_md5.label, Some("cat-a"));
    assert_eq!(by_md5.id, None);
}

#[test]
fn empty_cells_are_allowed_and_id_and_label_are_optional() {
    let (a, b) = (Digests::of(b"a"), Digests::of(b"b"));
    let text = format!("id,md5,sha256,label\n,{},,\nB,,{},\n", hex(&a, CryptoAlgo::Md5), hex(&b, CryptoAlgo::Sha256));
    let (set, _) = load(&text);
    let items: Vec<_> = set.items().map(|i| (i.id, i.label, i.line)).collect();
    assert_eq!(items, [(None, None, 2), (Some("B"), None, 3)]);
    assert!(set.find(Algo::Md5, &a.md5).is_some());
    assert!(set.find(Algo::Sha256, &b.sha256).is_some());
}

#[test]
fn find_with_wrong_digest_length_or_pdq_is_none() {
    let d = listed();
    let (set, _) = load(&format!("md5,pdq\n{},{}\n", hex(&d, CryptoAlgo::Md5), pdq_hex(b"p")));
    assert_eq!(set.find(Algo::Md5, &d.sha1), None);
    assert_eq!(set.find(Algo::Md5, &[]), None);
    let pdq = set.items().find_map(|i| i.pdq).expect("a pdq item");
    assert_eq!(set.find(Algo::Pdq, pdq.as_bytes()), None);
}

#[test]
fn tsv_is_detected_from_a_tab_in_the_header() {
    let d = listed();
    let text = format!("id\tsha1\tlabel\nT1\t{}\tlabel, with comma\n", hex(&d, CryptoAlgo::Sha1));
    let (set, _) = load(&text);
    let item = set.find(Algo::Sha1, &d.sha1).expect("listed");
    assert_eq!(item.id, Some("T1"));
    assert_eq!(item.label, Some("label, with comma"));
}

#[test]
fn csv_quoted_fields_are_unquoted() {
    let d = listed();
    let text = format!("\"md5\",label\n\"{}\",\"a \"\"quoted\"\", label\"\n", hex(&d, CryptoAlgo::Md5));
    let (set, _) = load(&text);
    assert_eq!(set.find(Algo::Md5, &d.md5).and_then(|i| i.label), Some("a \"quoted\", label"));
}

#[test]
fn hex_and_header_names_are_case_insensitive_and_trimmed() {
    let d = listed();
    let text = format!(
        " MD5 ,Sha-1, ID\n  {} , {} ,  x \n",
        hex(&d, CryptoAlgo::Md5).to_uppercase(),
        hex(&d, CryptoAlgo::Sha1).to_uppercase()
    );
    let (set, warnings) = load(&text);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(set.find(Algo::Md5, &d.md5).and_then(|i| i.id), Some("x"));
    assert!(set.find(Algo::Sha1, &d.sha1).is_some());
}

#[test]
fn utf8_bom_is_skipped() {
    let d = listed();
    let text = format!("\u{feff}md5,id\n{},B1\n", hex(&d, CryptoAlgo::Md5));
    let (set, warnings) = load(&text);
    assert!(warnings.is_empty(), "the BOM must not turn `md5` into an unknown column: {warnings:?}");
    assert_eq!(set.find(Algo::Md5, &d.md5).and_then(|i| i.id), Some("B1"));
}

#[test]
fn comments_and_blank_lines_are_skipped_and_lines_still_count() {
    let (a, b) = (Digests::of(b"a"), Digests::of(b"b"));
    let text = format!(
        "# exported by a test\n\nmd5,id\n# a comment\n{},A\n\n   \n,\n{},B\n",
        hex(&a, CryptoAlgo::Md5),
        hex(&b, CryptoAlgo::Md5)
    );
    let (set, _) = load(&text);
    assert_eq!(set.len(), 2);
    assert_eq!(set.find(Algo::Md5, &a.md5).map(|i| i.line), Some(5));
    assert_eq!(set.find(Algo::Md5, &b.md5).map(|i| i.line), Some(9));
    let report = check_bytes("refs.csv", text.as_bytes());
    assert_eq!(report.rows, 2);
}

#[test]
fn crlf_line_endings_work() {
    let d = listed();
    let text = format!("md5,id\r\n{},W\r\n", hex(&d, CryptoAlgo::Md5));
    let (set, _) = load(&text);
    assert_eq!(set.find(Algo::Md5, &d.md5).and_then(|i| i.id), Some("W"));
}

#[test]
fn unknown_columns_are_warned_once_by_name() {
    let d = listed();
    let text = format!(
        "source,md5,Notes,\nfeed-1,{},n1,\nfeed-2,{},n2,\n",
        hex(&d, CryptoAlgo::Md5),
        hex(&Digests::of(b"other"), CryptoAlgo::Md5)
    );
    let (set, warnings) = load(&text);
    assert_eq!(set.len(), 2);
    assert_eq!(warnings.len(), 1);
    let w = warnings[0].to_string();
    assert!(
        w.starts_with("refs.csv:1: ignoring 3 unknown column(s): \"source\", \"Notes\", column 4 (unnamed)"),
        "{w}"
    );
}

#[test]
fn unknown_columns_may_hold_anything_even_invalid_utf8() {
    let d = listed();
    let mut bytes = format!("md5,extra,extra\n{},", hex(&d, CryptoAlgo::Md5)).into_bytes();
    bytes.extend_from_slice(b"caf\xe9,x\n");
    let (set, warnings) = ReferenceSet::parse("refs.csv", &bytes[..]).expect("loads");
    assert!(set.find(Algo::Md5, &d.md5).is_some());
    assert_eq!(warnings.len(), 1);
}

#[test]
fn invalid_utf8_in_a_read_cell_is_an_error() {
    let d = listed();
    let mut bytes = format!("md5,label\n{},", hex(&d, CryptoAlgo::Md5)).into_bytes();
    bytes.extend_from_slice(b"caf\xe9\n");
    let Err(LoadError::Invalid { errors }) = ReferenceSet::parse("refs.csv", &bytes[..]) else { panic!("must fail") };
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].to_string(), "refs.csv:2: column 2 (label): not valid UTF-8 (reference files must be UTF-8)");
}

#[test]
fn duplicates_are_counted_and_the_first_row_wins() {
    let (a, b) = (Digests::of(b"a"), Digests::of(b"b"));
    let text = format!(
        "id,md5,sha1\nFIRST,{},\nSECOND,{},\nTHIRD,{},{}\n",
        hex(&a, CryptoAlgo::Md5),
        hex(&a, CryptoAlgo::Md5).to_uppercase(),
        hex(&a, CryptoAlgo::Md5),
        hex(&b, CryptoAlgo::Sha1)
    );
    let (set, _) = load(&text);
    assert_eq!(set.find(Algo::Md5, &a.md5).and_then(|i| i.id), Some("FIRST"));
    // THIRD adds a new SHA-1, so it is an item; SECOND adds nothing.
    assert_eq!(set.find(Algo::Sha1, &b.sha1).and_then(|i| i.id), Some("THIRD"));
    assert_eq!(set.len(), 2);
    let report = check_bytes("refs.csv", text.as_bytes());
    assert_eq!(report.duplicates, 2);
    assert_eq!(report.rows, 3);
    assert_eq!(report.items, 2);
    assert!(report.errors.is_empty());
}

#[test]
fn pdq_hashes_are_stored_with_quality() {
    let text = format!(
        "pdq,pdq_quality,id\n{},90,P1\n{},,P2\n{},10,P3\n",
        pdq_hex(b"one"),
        pdq_hex(b"two").to_uppercase(),
        pdq_hex(b"one")
    );
    let (set, _) = load(&text);
    let pdq: Vec<_> = set.items().filter(|i| i.pdq.is_some()).collect();
    assert_eq!(pdq.len(), 2, "the third row repeats the first hash");
    assert_eq!(pdq[0].pdq.map(|h| h.to_hex()), Some(pdq_hex(b"one")));
    assert_eq!(pdq[0].pdq_quality, Some(90));
    assert_eq!(pdq[0].id, Some("P1"));
    assert_eq!(pdq[1].pdq.map(|h| h.to_hex()), Some(pdq_hex(b"two")));
    assert_eq!(pdq[1].pdq_quality, None);
    assert_eq!(pdq[1].line, 3);
    assert_eq!(check_bytes("refs.csv", text.as_bytes()).duplicates, 1);
}

#[test]
fn wrong_hex_length_names_file_line_column_and_lengths() {
    let d = listed();
    let good = hex(&d, CryptoAlgo::Sha1);
    let text = format!("id,sha1\n# c\n\nA,{good}\n# c\n\nB,{}\n", &good[..39]);
    assert_eq!(messages(&text), ["refs.csv:7: column 2 (sha1): expected 40 hex digits, found 39"]);
    let e = &errors(&text)[0];
    assert_eq!(e.line, 7);
    assert_eq!(e.column, Some(Column { number: 2, name: "sha1".into() }));
    assert_eq!(e.kind, ErrorKind::Hex(HexError::Length { expected: 40, found: 39 }));
}

#[test]
fn each_algorithm_checks_its_own_length() {
    let d = listed();
    // A SHA-1 in an MD5 column, an MD5 in every 32-byte column.
    let cases = [
        ("md5", hex(&d, CryptoAlgo::Sha1), 32, 40),
        ("sha1", hex(&d, CryptoAlgo::Md5), 40, 32),
        ("sha256", hex(&d, CryptoAlgo::Md5), 64, 32),
        ("blake3", hex(&d, CryptoAlgo::Sha1), 64, 40),
        ("pdq", hex(&d, CryptoAlgo::Md5), 64, 32),
    ];
    for (col, value, expected, found) in cases {
        let errs = errors(&format!("{col}\n{value}\n"));
        assert_eq!(errs.len(), 1, "{col}");
        assert_eq!(errs[0].kind, ErrorKind::Hex(HexError::Length { expected, found }), "{col}");
    }
}

#[test]
fn non_hex_character_names_its_position() {
    let text = "md5\n00112233445566778899aabbccddeegf\n";
    assert_eq!(messages(text), ["refs.csv:2: column 1 (md5): not a hex digit 'g' at position 31"]);
}

#[test]
fn wrong_field_count_is_an_error_with_line() {
    let d = listed();
    let md5 = hex(&d, CryptoAlgo::Md5);
    let text = format!("id,md5\nA,{md5},extra\nB\n");
    assert_eq!(
        messages(&text),
        [
            "refs.csv:2: expected 2 fields as in the header, found 3",
            "refs.csv:3: expected 2 fields as in the header, found 1"
        ]
    );
}

#[test]
fn row_without_any_hash_is_an_error() {
    let text = "id,md5,sha1,label\nA,,,just a label\n";
    assert_eq!(messages(text), ["refs.csv:2: row has no hash (every hash cell is empty)"]);
    assert_eq!(errors(text)[0].kind, ErrorKind::NoHash);
}

#[test]
fn pdq_quality_must_be_an_integer_0_to_100() {
    let p = pdq_hex(b"q");
    for bad in ["101", "-1", "high", "50.5", "256"] {
        let errs = errors(&format!("pdq,pdq_quality\n{p},{bad}\n"));
        assert_eq!(errs.len(), 1, "{bad}");
        assert_eq!(
            errs[0].to_string(),
            format!("refs.csv:2: column 2 (pdq_quality): expected an integer from 0 to 100, found {bad:?}")
        );
    }
    for good in ["0", "100", " 75 "] {
        load(&format!("pdq,pdq_quality\n{p},{good}\n"));
    }
}

#[test]
fn pdq_quality_without_pdq_hash_is_an_error() {
    let d = listed();
    let text = format!("md5,pdq,pdq_quality\n{},,80\n", hex(&d, CryptoAlgo::Md5));
    assert_eq!(messages(&text), ["refs.csv:2: column 3 (pdq_quality): pdq_quality given on a row without a pdq hash"]);
}

#[test]
fn header_without_hash_column_lists_accepted_names() {
    let msgs = messages("id,label,hash\nA,b,c\n");
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0].starts_with("refs.csv:1: header names no hash column (found \"id\", \"label\", \"hash\")"),
        "{}",
        msgs[0]
    );
    assert!(msgs[0].contains("md5, sha1, sha256, blake3, pdq"), "{}", msgs[0]);
}

#[test]
fn header_that_looks_like_data_does_not_echo_hashes() {
    let d = listed();
    let md5 = hex(&d, CryptoAlgo::Md5);
    let text = format!("{md5},X1\n{md5},X2\n");
    let msgs = messages(&text);
    assert_eq!(msgs.len(), 1, "rows are not read without a header");
    assert!(!msgs[0].contains(&md5), "{}", msgs[0]);
    assert!(msgs[0].contains("<hex value>") && msgs[0].contains("a header line is required"), "{}", msgs[0]);
}

#[test]
fn no_message_contains_a_hash_from_the_file() {
    let d = listed();
    let md5 = hex(&d, CryptoAlgo::Md5);
    // A hash in the quality column, a hash one digit short, a hash in an unknown column.
    let text = format!("pdq,pdq_quality,{md5}\n{},{md5},x\n", pdq_hex(b"p"));
    let report = check_bytes("refs.csv", text.as_bytes());
    for line in report.errors.iter().map(|e| e.to_string()).chain(report.warnings.iter().map(|w| w.to_string())) {
        assert!(!line.contains(&md5), "{line}");
    }
    assert_eq!(report.errors.len(), 1);
    assert!(report.errors[0].to_string().ends_with("found \"<hex value>\""), "{}", report.errors[0]);
}

#[test]
fn duplicate_header_column_is_an_error() {
    assert_eq!(messages("md5,id,MD5\n"), ["refs.csv:1: column 3 (MD5): duplicate column (same name as column 1)"]);
    assert_eq!(messages("sha1,SHA-1\n"), ["refs.csv:1: column 2 (SHA-1): duplicate column (same name as column 1)"]);
    // Unknown columns are ignored, even when repeated.
    load("md5,note,note\n");
}

#[test]
fn empty_file_is_an_error() {
    for text in ["", "\u{feff}", "\n\n", "# only a comment\n"] {
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{text:?}");
        assert_eq!(errs[0].kind, ErrorKind::NoHeader);
        assert!(errs[0].to_string().starts_with("refs.csv:1: no header line"), "{}", errs[0]);
    }
}

#[test]
fn header_only_file_is_an_empty_set() {
    let (set, _) = load("md5,sha1\n");
    assert!(set.is_empty());
}

#[test]
fn all_row_errors_are_collected_with_line_numbers() {
    let d = listed();
    let md5 = hex(&d, CryptoAlgo::Md5);
    let other = hex(&Digests::of(b"other"), CryptoAlgo::Md5);
    let text = format!(
        "md5,label\n\
         {}x,bad one\n\
         {md5},\"a label\nover three\nlines\"\n\
         ,no hash\n\
         {other},fine\n\
         ab,\"two\nlines\"\n\
         {other},one,too many\n",
        &md5[..31]
    );
    let errs = errors(&text);
    let lines: Vec<u64> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 6, 8, 10], "{errs:?}");
    assert!(matches!(errs[0].kind, ErrorKind::Hex(HexError::NotHex { ch: 'x', position: 32 })));
    assert_eq!(errs[1].kind, ErrorKind::NoHash);
    assert!(matches!(errs[2].kind, ErrorKind::Hex(HexError::Length { expected: 32, found: 2 })));
    assert_eq!(errs[3].kind, ErrorKind::FieldCount { expected: 2, found: 3 });
    let report = check_bytes("refs.csv", text.as_bytes());
    assert_eq!(report.rows, 6);
    assert_eq!(report.items, 2);
    assert_eq!(report.duplicates, 0);
}

#[test]
fn several_bad_cells_in_one_row_are_each_reported() {
    let text = "md5,sha1,pdq_quality\nabc,xyz,500\n";
    let errs = errors(text);
    let columns: Vec<usize> = errs.iter().filter_map(|e| e.column.as_ref().map(|c| c.number)).collect();
    assert_eq!(columns, [1, 2, 3]);
}

#[test]
fn version_is_16_hex_digits_and_the_list_records_its_source_hash() {
    let d = listed();
    let text = format!("md5\n{}\n", hex(&d, CryptoAlgo::Md5));
    let (set, _) = load(&text);
    assert_eq!(set.version().len(), 16);
    assert!(set.version().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(set.lists()[0].source_version, &blake3::hash(text.as_bytes()).to_hex()[..16]);
    assert_eq!(set.source_name(), "refs.csv");
}

#[test]
fn version_is_stable_for_the_same_bytes_and_changes_with_them() {
    let d = listed();
    let text = format!("md5\n{}\n", hex(&d, CryptoAlgo::Md5));
    let v1 = load(&text).0.version().to_string();
    assert_eq!(load(&text).0.version(), v1);
    // Same items, different bytes (a comment): a different file, a different version.
    let v2 = load(&format!("# v2\n{text}")).0.version().to_string();
    assert_ne!(v1, v2);
    let v3 = load(&text.to_uppercase().replace("MD5", "md5")).0.version().to_string();
    assert_ne!(v1, v3);
    assert_eq!(check_bytes("refs.csv", text.as_bytes()).version, v1);
}

#[test]
fn check_reports_counts_warnings_and_all_errors_for_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("list.tsv");
    let (a, b) = (Digests::of(b"a"), Digests::of(b"b"));
    let text = format!(
        "md5\tsha1\tpdq\tpdq_quality\tsource\n\
         {}\t{}\t\t\tfeed\n\
         {}\t\t{}\t70\tfeed\n\
         {}\t\t\t\tfeed\n\
         nothex\t\t\t\tfeed\n\
         \t\t\t\tfeed\n",
        hex(&a, CryptoAlgo::Md5),
        hex(&a, CryptoAlgo::Sha1),
        hex(&b, CryptoAlgo::Md5),
        pdq_hex(b"b"),
        hex(&a, CryptoAlgo::Md5),
    );
    std::fs::write(&path, &text).expect("write");
    set_mode(&path, 0o600);
    let report = check(&path).expect("readable");
    assert_eq!(report.source, path.display().to_string());
    assert_eq!(report.version, "", "a list that does not load has no version");
    assert_eq!(report.rows, 5);
    assert_eq!(report.items, 2);
    let counts: Vec<(Algo, u64)> = report.counts.iter().map(|(a, n)| (*a, *n)).collect();
    assert_eq!(counts, [(Algo::Md5, 2), (Algo::Sha1, 1), (Algo::Pdq, 1)]);
    assert_eq!(report.duplicates, 1);
    assert_eq!(report.warnings.len(), 1);
    assert!(report.warnings[0].to_string().contains("\"source\""));
    let errs: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0], format!("{}:5: column 1 (md5): not a hex digit 'n' at position 1", path.display()));
    assert_eq!(errs[1], format!("{}:6: row has no hash (every hash cell is empty)", path.display()));
    assert!(!report.is_ok());

    // The same file refuses to load, with the same errors.
    let Err(LoadError::Invalid { errors }) = ReferenceSet::load(&path) else { panic!("must refuse") };
    assert_eq!(errors, report.errors);
}

#[test]
fn load_reads_a_file_and_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("refs.csv");
    let d = listed();
    std::fs::write(&path, format!("sha256,id\n{},F1\n", hex(&d, CryptoAlgo::Sha256))).expect("write");
    set_mode(&path, 0o600);
    let (set, warnings) = ReferenceSet::load(&path).expect("loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(set.source_name(), path.display().to_string());
    assert_eq!(set.find(Algo::Sha256, &d.sha256).and_then(|i| i.id), Some("F1"));
    assert!(check(&path).expect("readable").is_ok());
}

#[test]
fn load_of_a_missing_file_names_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no-such-list.csv");
    let err = ReferenceSet::load(&path).expect_err("must fail");
    assert!(matches!(err, LoadError::Io { .. }));
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    assert!(std::error::Error::source(&err).is_some());
    let err = check(&path).expect_err("must fail");
    assert!(err.to_string().contains("no-such-list.csv"), "{err}");
}

#[test]
fn invalid_error_summarises_count_and_first_error() {
    let err = ReferenceSet::parse("refs.csv", "md5\nab\ncd\n".as_bytes()).expect_err("must fail");
    assert_eq!(
        err.to_string(),
        "2 error(s) in reference file, the first: refs.csv:2: column 1 (md5): expected 32 hex digits, found 2"
    );
}

#[test]
fn debug_output_never_shows_hashes() {
    let d = listed();
    let text = format!("md5,pdq\n{},{}\n", hex(&d, CryptoAlgo::Md5), pdq_hex(b"p"));
    let (set, _) = load(&text);
    let debug = format!("{set:?} {:?}", set.items().collect::<Vec<_>>());
    assert!(!debug.contains(&hex(&d, CryptoAlgo::Md5)), "{debug}");
    assert!(!debug.contains(&pdq_hex(b"p")), "{debug}");
    assert!(debug.contains("refs.csv"), "{debug}");
}

#[test]
fn algo_names_round_trip_and_match_crypto_algo() {
    for a in Algo::ALL {
        assert_eq!(a.name().parse::<Algo>(), Ok(a));
        assert_eq!(a.to_string().to_uppercase().parse::<Algo>(), Ok(a));
        if let Some(c) = a.crypto() {
            assert_eq!(Algo::from(c), a);
            assert_eq!(c.name(), a.name());
        }
    }
    assert_eq!(Algo::Pdq.crypto(), None);
    assert_eq!("sha-256".parse::<Algo>(), Ok(Algo::Sha256));
    assert!("crc32".parse::<Algo>().is_err());
    assert_eq!(Algo::Sha1.len_bytes(), 20);
}

#[test]
fn load_error_can_be_wrapped_by_anyhow() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<LoadError>();
    assert_error::<RowError>();
}

#[test]
fn check_on_a_path_that_is_a_directory_is_an_io_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(check(Path::new(dir.path())), Err(LoadError::Io { .. })));
}

#[test]
fn line_numbers_hold_with_crlf_comments_and_hash_inside_quotes() {
    let text =
        "# a comment, with \"quote\r\n\r\nmd5,label\r\n# another\r\nab,\"x\r\n# not a comment\"\r\n# c\r\ncd,y\r\n";
    let errs = errors(text);
    let lines: Vec<u64> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, [5, 8], "{errs:?}");
}

#[test]
fn header_error_names_the_header_line_after_comments() {
    assert_eq!(
        messages("# list v1\n\nMD5,md5\n")[0],
        "refs.csv:3: column 2 (md5): duplicate column (same name as column 1)"
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn a_list_readable_by_everyone_is_loaded_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("open.csv");
    std::fs::write(&path, format!("md5\n{}\n", hex(&listed(), CryptoAlgo::Md5))).expect("write");
    set_mode(&path, 0o644);
    let (_, warnings) = ReferenceSet::load(&path).expect("loads");
    assert!(matches!(&warnings[..], [Warning::WorldReadable { .. }]), "{warnings:?}");
    assert!(warnings[0].to_string().contains("chmod 600"));
}

#[test]
fn difference_holds_only_what_the_new_version_adds() {
    let (a, b, c) = (Digests::of(b"a"), Digests::of(b"b"), Digests::of(b"c"));
    let (p1, p2) = (pdq_hex(b"p1"), pdq_hex(b"p2"));
    let md5 = |d: &Digests| hex(d, CryptoAlgo::Md5);
    let (old, _) = load(&format!("md5,pdq\n{},\n,{p1}\n", md5(&a)));
    let (new, _) = load(&format!("md5,pdq\n{},\n,{p1}\n{},\n,{p2}\n{},{p1}\n", md5(&a), md5(&b), md5(&c)));
    let diff = new.difference(&old).unwrap();
    assert_eq!(diff.count(Algo::Md5), 2, "b and c are new");
    assert!(diff.find(Algo::Md5, a.get(CryptoAlgo::Md5)).is_none(), "a was there before");
    assert!(diff.find(Algo::Md5, b.get(CryptoAlgo::Md5)).is_some());
    // p2 is new; p1 was in the same list before, so even the new item c
    // that lists it again adds nothing for PDQ (images near p1 were matched).
    let near = |h: &str| diff.near(&PdqHash::from_hex(h).unwrap(), 0).len();
    assert_eq!(near(&p2), 1);
    assert_eq!(near(&p1), 0, "p1 is not new");
    assert_eq!(diff.count(Algo::Pdq), 1);
    // Nothing changed: an empty difference.
    let same = new.difference(&new).unwrap();
    assert!(Algo::ALL.iter().all(|a| same.count(*a) == 0));
}
