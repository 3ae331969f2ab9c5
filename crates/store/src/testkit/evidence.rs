//! The contract of [`EvidenceStore`](crate::EvidenceStore): the
//! circumstances of an image (pages next to listed or confirmed material,
//! counted exactly, listed pages and origins capped in the same order),
//! what an origin holds, the contents around an image, on a page, on an
//! origin and in a scan, confirmed PDQ hashes, and scores written back.

use std::sync::Arc;

use hashscan_hash::Digests;
use hashscan_pdq::PdqHash;
use hashscan_score::Decision;

use super::{checks, exact, image, Check};
use crate::{
    Assessment, HitFilter, HostEvidence, ImageRecord, MatchKind, PageEvidence, PdqResult, RawEvidence, Reason, Store,
};

pub(super) fn checks() -> Vec<Check> {
    checks![
        evidence_counts_pages_next_to_listed_material,
        evidence_caps_listed_pages_and_origins_but_counts_every_page,
        host_evidence_reads_one_origin_only,
        neighbours_exclude_the_image_itself_and_honour_the_limit,
        contents_on_a_page_an_origin_and_in_a_scan,
        confirmed_pdqs_are_those_of_confirmed_images,
        a_recorded_score_and_its_factors_come_back,
    ]
}

fn key(data: &[u8]) -> [u8; 32] {
    Digests::of(data).blake3
}

fn sorted(mut v: Vec<[u8; 32]>) -> Vec<[u8; 32]> {
    v.sort();
    v
}

/// `x` on three pages of two origins; exact-listed `l` on page 1, plain `p`
/// on pages 1 and 2, listed but benign `n` on page 2; `e` on URLs that
/// only look like origin `http://a.test`. Times: x 50, l 20, p 30, n 40.
async fn small_scan(s: &Arc<dyn Store>) {
    let (a1, a2, b3) = ("http://a.test/1", "http://a.test/2", "http://b.test:81/3");
    s.record_image(image("s1", "http://img/x", Some(a1), b"x", 50)).await.unwrap();
    s.record_edges("s1", a2, &["http://img/x".into()], 50).await.unwrap();
    s.record_edges("s1", b3, &["http://img/x".into()], 50).await.unwrap();
    // The same content under a second URL on page 1: still one content.
    s.record_image(image("s1", "http://img/x-copy", Some(a1), b"x", 50)).await.unwrap();
    s.record_image(image("s1", "http://img/l", Some(a1), b"l", 20)).await.unwrap();
    s.record_assessment(key(b"l"), exact()).await.unwrap();
    s.record_image(image("s1", "http://img/p", Some(a1), b"p", 30)).await.unwrap();
    s.record_edges("s1", a2, &["http://img/p".into()], 30).await.unwrap();
    s.record_image(image("s1", "http://img/n", Some(a2), b"n", 40)).await.unwrap();
    s.record_assessment(key(b"n"), exact()).await.unwrap();
    s.open_case(key(b"n"), 1.0, "s1", 40).await.unwrap();
    s.decide(key(b"n"), "not_abuse", 41).await.unwrap();
    for page in ["http://a.test.evil/1", "http://a.test:8080/1", "http://a.testing/1", "https://a.test/1"] {
        s.record_image(image("s1", &format!("http://img/e-{page}"), Some(page), b"e", 60)).await.unwrap();
    }
}

async fn evidence_counts_pages_next_to_listed_material(s: Arc<dyn Store>) {
    assert_eq!(s.evidence(key(b"x")).await.unwrap(), None, "never hashed");
    small_scan(&s).await;
    let x = s.evidence(key(b"x")).await.unwrap().expect("hashed");
    assert_eq!(
        x,
        RawEvidence {
            reference: 0.0,
            ignored: false,
            decision: None,
            pdq: None,
            pages_total: 3,
            pages_with_listed: 1,
            // Page 1: l and p besides x (its copy is x itself); l is listed.
            listed_pages: vec![PageEvidence {
                url: "http://a.test/1".into(),
                domain: String::new(),
                others: 2,
                listed: 1
            }],
            origins: vec![("http://a.test".into(), 2), ("http://b.test:81".into(), 1)],
        }
    );
    let l = s.evidence(key(b"l")).await.unwrap().expect("hashed");
    assert_eq!((l.reference, l.pages_total, l.pages_with_listed), (1.0, 1, 0));
    assert!(l.listed_pages.is_empty());
    assert_eq!(l.origins, vec![("http://a.test".to_string(), 1)]);
    let n = s.evidence(key(b"n")).await.unwrap().expect("hashed");
    assert_eq!((n.reference, n.decision), (1.0, Some(Decision::NotAbuse)));

    // An ignore-listed content.
    s.record_image(image("s1", "http://img/i", None, b"i", 70)).await.unwrap();
    let ignore = Assessment {
        score: 0.0,
        match_kind: MatchKind::None,
        match_algo: None,
        distance: None,
        reference_version: Some("abcd".into()),
        reasons: vec![Reason { factor: "ignore_list".into(), value: 1.0, weight: 0.0, note: "logo".into() }],
    };
    s.record_assessment(key(b"i"), ignore).await.unwrap();
    let i = s.evidence(key(b"i")).await.unwrap().expect("hashed");
    assert_eq!((i.ignored, i.pages_total, i.origins.len()), (true, 0, 0));

    // A confirmed image next to x on page 2 makes it a listed page too;
    // x's own decision shows.
    s.open_case(key(b"p"), 0.5, "s1", 80).await.unwrap();
    s.decide(key(b"p"), "confirmed", 81).await.unwrap();
    s.open_case(key(b"x"), 0.5, "s1", 80).await.unwrap();
    s.decide(key(b"x"), "escalate", 81).await.unwrap();
    let x = s.evidence(key(b"x")).await.unwrap().expect("hashed");
    assert_eq!(x.decision, None, "escalate is no decision");
    assert_eq!(x.pages_with_listed, 2);
    // Page 1: 2 of 2 listed; page 2: p confirmed, n benign: 1 of 2.
    assert_eq!(
        x.listed_pages,
        vec![
            PageEvidence { url: "http://a.test/1".into(), domain: String::new(), others: 2, listed: 2 },
            PageEvidence { url: "http://a.test/2".into(), domain: String::new(), others: 2, listed: 1 },
        ]
    );
    s.decide(key(b"x"), "confirmed", 82).await.unwrap();
    assert_eq!(s.evidence(key(b"x")).await.unwrap().unwrap().decision, Some(Decision::Confirmed));
    // Benign l and p: nothing listed next to x any more.
    s.open_case(key(b"l"), 1.0, "s1", 83).await.unwrap();
    s.decide(key(b"l"), "not_abuse", 84).await.unwrap();
    s.decide(key(b"p"), "not_abuse", 84).await.unwrap();
    let x = s.evidence(key(b"x")).await.unwrap().unwrap();
    assert_eq!((x.pages_total, x.pages_with_listed, x.listed_pages.len()), (3, 0, 0));
}

async fn evidence_caps_listed_pages_and_origins_but_counts_every_page(s: Arc<dyn Store>) {
    // 4,001 image records of x (past the 4,000 pages looked at in detail),
    // one page each, on 30 origins in descending name order.
    let recs: Vec<ImageRecord> = (0..4001)
        .map(|k| {
            let page = format!("http://h{:02}.test/{k}", 29 - k % 30);
            image("s1", &format!("http://img/x{k}"), Some(&page), b"x", k)
        })
        .collect();
    s.record_images(recs).await.unwrap();
    let x = s.evidence(key(b"x")).await.unwrap().expect("hashed");
    assert_eq!(x.pages_total, 4001, "every page counted");
    // The first 20 origins in the order the pages were recorded, counted
    // over the first 4,000 pages (the 4,001st is on h19).
    let expected: Vec<(String, u64)> =
        (10..30).rev().map(|h| (format!("http://h{h:02}.test"), if h >= 20 { 134 } else { 133 })).collect();
    assert_eq!(x.origins, expected);
    assert_eq!(x.pages_with_listed, 0);

    // 201 pages of y next to listed l: 200 described, by URL at equal share.
    let pages: Vec<String> = (0..201).map(|k| format!("http://l.test/{k:03}")).collect();
    s.record_image(image("s1", "http://img/y", None, b"y", 1)).await.unwrap();
    s.record_image(image("s1", "http://img/l", None, b"l", 1)).await.unwrap();
    s.record_assessment(key(b"l"), exact()).await.unwrap();
    for page in &pages {
        s.record_edges("s1", page, &["http://img/y".into(), "http://img/l".into()], 2).await.unwrap();
    }
    // One more page where y is next to l and a plain image: a lower share.
    s.record_image(image("s1", "http://img/q", Some("http://l.test/000"), b"q", 3)).await.unwrap();
    let y = s.evidence(key(b"y")).await.unwrap().expect("hashed");
    assert_eq!((y.pages_total, y.pages_with_listed, y.listed_pages.len()), (201, 201, 200));
    assert_eq!(y.listed_pages[0].url, "http://l.test/001");
    assert_eq!(y.listed_pages[198].url, "http://l.test/199");
    // Page 000 (share 1/2) sorts last and is the one left out.
    assert_eq!(y.listed_pages[199].url, "http://l.test/200");
    assert!(y.listed_pages.iter().all(|p| (p.others, p.listed) == (1, 1)));
    assert_eq!(y.origins, vec![("http://l.test".to_string(), 201)]);
}

async fn host_evidence_reads_one_origin_only(s: Arc<dyn Store>) {
    let empty = s.host_evidence("http://a.test").await.unwrap();
    assert_eq!(
        empty,
        HostEvidence {
            host: "a.test".into(),
            seen_on: 0,
            pages: 0,
            pages_with_listed: 0,
            listed: 0,
            confirmed: 0,
            last_listed_ms: None
        }
    );
    small_scan(&s).await;
    // Pages 1 and 2 (not the look-alike URLs); l is listed on page 1, n is
    // listed but benign.
    let a = s.host_evidence("http://a.test").await.unwrap();
    assert_eq!(
        a,
        HostEvidence {
            host: "a.test".into(),
            seen_on: 0,
            pages: 2,
            pages_with_listed: 1,
            listed: 1,
            confirmed: 0,
            last_listed_ms: Some(20)
        }
    );
    // x (fetched at 50) confirmed: both pages, and a later listed sighting.
    s.open_case(key(b"x"), 0.5, "s1", 90).await.unwrap();
    s.decide(key(b"x"), "confirmed", 91).await.unwrap();
    let a = s.host_evidence("http://a.test").await.unwrap();
    assert_eq!((a.pages, a.pages_with_listed, a.listed, a.confirmed, a.last_listed_ms), (2, 2, 1, 1, Some(50)));
    let b = s.host_evidence("http://b.test:81").await.unwrap();
    assert_eq!((b.host.as_str(), b.pages, b.pages_with_listed, b.confirmed), ("b.test", 1, 1, 1));
    let port = s.host_evidence("http://a.test:8080").await.unwrap();
    assert_eq!((port.host.as_str(), port.pages, port.pages_with_listed), ("a.test", 1, 0));
    let https = s.host_evidence("https://a.test").await.unwrap();
    assert_eq!((https.host.as_str(), https.pages, https.last_listed_ms), ("a.test", 1, None));
}

async fn neighbours_exclude_the_image_itself_and_honour_the_limit(s: Arc<dyn Store>) {
    small_scan(&s).await;
    let all = sorted(vec![key(b"l"), key(b"p"), key(b"n")]);
    assert_eq!(sorted(s.neighbours(key(b"x"), 10).await.unwrap()), all);
    let two = s.neighbours(key(b"x"), 2).await.unwrap();
    assert_eq!(two.len(), 2);
    assert!(two.iter().all(|k| all.contains(k)) && two[0] != two[1], "{two:?}");
    assert!(s.neighbours(key(b"x"), 0).await.unwrap().is_empty());
    assert_eq!(sorted(s.neighbours(key(b"n"), 10).await.unwrap()), sorted(vec![key(b"x"), key(b"p")]));
    assert!(s.neighbours(key(b"e"), 10).await.unwrap().is_empty(), "alone on its pages");
    assert!(s.neighbours(key(b"unknown"), 10).await.unwrap().is_empty());
}

async fn contents_on_a_page_an_origin_and_in_a_scan(s: Arc<dyn Store>) {
    small_scan(&s).await;
    s.record_image(image("s2", "http://img/z", Some("http://a.test/3"), b"z", 70)).await.unwrap();
    let page1 = sorted(vec![key(b"x"), key(b"l"), key(b"p")]);
    assert_eq!(sorted(s.contents_on_page("http://a.test/1", 10).await.unwrap()), page1);
    let one = s.contents_on_page("http://a.test/1", 1).await.unwrap();
    assert!(one.len() == 1 && page1.contains(&one[0]), "{one:?}");
    assert!(s.contents_on_page("http://a.test/9", 10).await.unwrap().is_empty());
    // The origin's pages only: not .evil, :8080, .testing or https.
    let origin = sorted(vec![key(b"x"), key(b"l"), key(b"p"), key(b"n"), key(b"z")]);
    assert_eq!(sorted(s.contents_on_origin("http://a.test", 10).await.unwrap()), origin);
    assert_eq!(s.contents_on_origin("http://a.test", 3).await.unwrap().len(), 3);
    assert_eq!(s.contents_on_origin("http://b.test:81", 10).await.unwrap(), vec![key(b"x")]);
    assert_eq!(s.contents_on_origin("http://a.test:8080", 10).await.unwrap(), vec![key(b"e")]);
    assert!(s.contents_on_origin("http://c.test", 10).await.unwrap().is_empty());
    let scan1 = sorted(vec![key(b"x"), key(b"l"), key(b"p"), key(b"n"), key(b"e")]);
    assert_eq!(sorted(s.scan_contents("s1").await.unwrap()), scan1);
    assert_eq!(s.scan_contents("s2").await.unwrap(), vec![key(b"z")]);
    assert!(s.scan_contents("s3").await.unwrap().is_empty());
}

async fn confirmed_pdqs_are_those_of_confirmed_images(s: Arc<dyn Store>) {
    let hashed = |id: &str, data: &[u8], pdq: u8| ImageRecord {
        pdq: PdqResult::Hashed { hash: PdqHash::from_bytes([pdq; 32]), quality: 90, width: 64, height: 64, scale: 1 },
        ..image("s1", id, Some("http://p/1"), data, 1)
    };
    s.record_image(hashed("http://img/q", b"q", 0x11)).await.unwrap();
    s.record_image(hashed("http://img/r", b"r", 0x22)).await.unwrap();
    s.record_image(hashed("http://img/t", b"t", 0x33)).await.unwrap();
    s.record_image(image("s1", "http://img/u", Some("http://p/1"), b"u", 1)).await.unwrap();
    for k in [b"q".as_slice(), b"r", b"t", b"u"] {
        s.open_case(key(k), 0.5, "s1", 2).await.unwrap();
    }
    assert!(s.confirmed_pdqs().await.unwrap().is_empty(), "open cases are not confirmed");
    s.decide(key(b"q"), "confirmed", 3).await.unwrap();
    s.decide(key(b"u"), "confirmed", 3).await.unwrap();
    s.decide(key(b"t"), "confirmed", 3).await.unwrap();
    s.decide(key(b"t"), "not_abuse", 4).await.unwrap();
    s.decide(key(b"r"), "escalate", 3).await.unwrap();
    // q only: u has no PDQ, t was found benign after all, r is escalated.
    assert_eq!(s.confirmed_pdqs().await.unwrap(), vec![PdqHash::from_bytes([0x11; 32])]);
    let q = s.evidence(key(b"q")).await.unwrap().unwrap();
    assert_eq!((q.pdq, q.decision), (Some(PdqHash::from_bytes([0x11; 32])), Some(Decision::Confirmed)));
}

async fn a_recorded_score_and_its_factors_come_back(s: Arc<dyn Store>) {
    s.record_image(image("s1", "http://img/x", Some("http://p/1"), b"x", 1)).await.unwrap();
    s.record_image(image("s1", "http://img/y", Some("http://p/1"), b"y", 2)).await.unwrap();
    let factors = vec![
        Reason { factor: "listed_neighbours".into(), value: 0.5, weight: 0.25, note: "1 of 2 on p/1".into() },
        Reason { factor: "host_history".into(), value: 1.0, weight: 0.125, note: "a.test".into() },
    ];
    s.record_score(key(b"x"), 0.375, factors.clone()).await.unwrap();
    // An unknown content changes nothing.
    s.record_score(key(b"unknown"), 0.9, Vec::new()).await.unwrap();
    let hits = s.hits(HitFilter { all: true, ..Default::default() }).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].blake3, hex::encode(key(b"x")));
    assert_eq!((hits[0].score, hits[0].factors.clone()), (0.375, factors));
    assert_eq!((hits[1].score, hits[1].factors.len()), (0.0, 0));
    // Scores filter hits; a second score replaces the first.
    let min = |m: f64| HitFilter { all: true, min_score: Some(m), ..Default::default() };
    assert_eq!(s.hits(min(0.3)).await.unwrap().len(), 1);
    s.record_score(key(b"x"), 0.125, Vec::new()).await.unwrap();
    let hits = s.hits(HitFilter { all: true, ..Default::default() }).await.unwrap();
    let x = hits.iter().find(|h| h.blake3 == hex::encode(key(b"x"))).unwrap();
    assert_eq!((x.score, x.factors.len()), (0.125, 0));
    assert!(s.hits(min(0.3)).await.unwrap().is_empty());
}
