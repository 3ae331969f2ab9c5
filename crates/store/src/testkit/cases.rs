//! The contract of [`CaseStore`]: one case per image (also when many
//! open it at once), hits with their hashes, reasons, times and filters,
//! decisions, and the re-check record.

use std::sync::Arc;

use hashscan_hash::Digests;

use super::{checks, exact, image, Check};
use crate::{HitFilter, MatchKind, ScanRecord, Store, StoreError};

pub(super) fn checks() -> Vec<Check> {
    checks![
        hits_carry_hashes_reasons_and_times,
        opening_a_case_again_returns_the_same_id,
        many_openers_of_one_case_at_once_get_one_case,
        decide_sets_the_status_and_refuses_bad_ones,
        cases_to_recheck_lists_the_http_urls_of_cases_in_the_statuses,
        record_check_tracks_online_and_offline_since,
        hits_say_when_the_scan_ignored_robots,
    ]
}

async fn hits_carry_hashes_reasons_and_times(s: Arc<dyn Store>) {
    s.record_image(image("s1", "http://img/x.png", Some("http://p/1"), b"abc", 1_000)).await.unwrap();
    s.record_image(image("s1", "http://img/copy.png", Some("http://p/2"), b"abc", 2_000)).await.unwrap();
    s.record_image(image("s1", "http://img/y.png", Some("http://p/1"), b"other", 1_500)).await.unwrap();
    let key = Digests::of(b"abc").blake3;
    s.record_assessment(key, exact()).await.unwrap();
    let id = s.open_case(key, 1.0, "s1", 1_000).await.unwrap();
    assert_eq!(s.open_case(key, 0.5, "s1", 3_000).await.unwrap(), id, "one case per image");
    let hits = s.hits(HitFilter::default()).await.unwrap();
    assert_eq!(hits.len(), 1);
    let h = &hits[0];
    assert_eq!(h.md5, "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(h.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(h.blake3, hex::encode(key));
    assert_eq!(h.bytes, 3);
    assert_eq!(h.image_url, "http://img/x.png");
    assert_eq!(h.host, "img.site0.test");
    assert_eq!(h.ips, vec!["127.77.0.2"]);
    assert_eq!(h.image_urls, vec!["http://img/x.png", "http://img/copy.png"]);
    assert_eq!(h.page_urls, vec!["http://p/1", "http://p/2"]);
    assert_eq!(h.match_kind, MatchKind::Exact);
    assert_eq!(
        (h.match_algo.as_deref(), h.distance, h.reference_version.as_deref()),
        (Some("sha1"), Some(0), Some("abcd"))
    );
    assert_eq!(h.score, 1.0);
    assert_eq!((h.status.as_str(), h.scan.as_str()), ("open", "s1"));
    assert_eq!(h.first_seen, "1970-01-01T00:00:01.000Z");
    assert_eq!(h.last_seen, "1970-01-01T00:00:02.000Z");
    assert_eq!(h.reasons, exact().reasons);
    assert!(!h.robots_ignored);
    assert_eq!((h.online, h.last_checked.as_deref(), h.offline_since.as_deref()), (None, None, None));
    let all = s.hits(HitFilter { all: true, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].blake3, h.blake3, "cases first");
    assert_eq!((all[1].status.as_str(), all[1].scan.as_str()), ("none", "s1"));
    let none = s.hits(HitFilter { all: true, min_score: Some(0.5), ..Default::default() }).await.unwrap();
    assert_eq!(none.len(), 1);
    let other = s.hits(HitFilter { all: true, scan: Some("s2".into()), ..Default::default() }).await.unwrap();
    assert!(other.is_empty());
    // Seen in a second scan: the filter keeps only that scan's URLs and pages.
    s.record_image(image("s2", "http://img/s2.png", Some("http://p/3"), b"abc", 4_000)).await.unwrap();
    let s2 = s.hits(HitFilter { scan: Some("s2".into()), ..Default::default() }).await.unwrap();
    assert_eq!(s2.len(), 1);
    assert_eq!(
        (s2[0].image_urls.clone(), s2[0].page_urls.clone()),
        (vec!["http://img/s2.png".to_string()], vec!["http://p/3".to_string()])
    );
    assert_eq!(s2[0].scan, "s1", "the case's scan");
    let every = s.hits(HitFilter::default()).await.unwrap();
    assert_eq!(every[0].image_urls, vec!["http://img/x.png", "http://img/copy.png", "http://img/s2.png"]);
    assert_eq!(every[0].last_seen, "1970-01-01T00:00:04.000Z");
}

async fn opening_a_case_again_returns_the_same_id(s: Arc<dyn Store>) {
    let (a, b) = (Digests::of(b"a").blake3, Digests::of(b"b").blake3);
    let id_a = s.open_case(a, 0.5, "s1", 10).await.unwrap();
    let id_b = s.open_case(b, 0.7, "s1", 20).await.unwrap();
    assert_ne!(id_a, id_b, "a case per image");
    assert_eq!(s.open_case(a, 0.9, "s2", 30).await.unwrap(), id_a);
    assert_eq!(s.open_case(a, 0.1, "s3", 40).await.unwrap(), id_a);
    assert_eq!(s.counts(None).await.unwrap().cases, 2);
    // The case stays with the scan that opened it.
    assert_eq!(s.counts(Some("s1".into())).await.unwrap().cases, 2);
}

async fn many_openers_of_one_case_at_once_get_one_case(s: Arc<dyn Store>) {
    s.record_image(image("s1", "http://img/x.png", None, b"x", 1)).await.unwrap();
    let key = Digests::of(b"x").blake3;
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let openers: Vec<_> = (0..16)
        .map(|i| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.open_case(key, 0.5 + f64::from(i) / 100.0, "s1", 10 + i64::from(i)).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for o in openers {
        ids.push(o.await.unwrap().unwrap_or_else(|e| panic!("open_case: {e}")));
    }
    assert!(ids.iter().all(|&id| id == ids[0]), "one id: {ids:?}");
    let hits = s.hits(HitFilter::default()).await.unwrap();
    assert_eq!(hits.len(), 1, "exactly one case");
    assert_eq!(s.counts(None).await.unwrap().cases, 1, "exactly one case");
    assert_eq!(s.open_case(key, 0.1, "s1", 99).await.unwrap(), ids[0]);
}

async fn decide_sets_the_status_and_refuses_bad_ones(s: Arc<dyn Store>) {
    let key = Digests::of(b"x").blake3;
    let unknown = Digests::of(b"y").blake3;
    match s.decide(unknown, "confirmed", 5).await {
        Err(StoreError::NoCase(k)) => assert_eq!(k, hex::encode(unknown)),
        other => panic!("expected NoCase, got {other:?}"),
    }
    s.record_image(image("s1", "http://img/x.png", None, b"x", 1)).await.unwrap();
    s.open_case(key, 1.0, "s1", 1).await.unwrap();
    match s.decide(key, "guilty", 5).await {
        Err(StoreError::BadStatus(st)) => assert_eq!(st, "guilty"),
        other => panic!("expected BadStatus, got {other:?}"),
    }
    assert!(matches!(s.decide(unknown, "", 5).await, Err(StoreError::BadStatus(_))), "status checked first");
    assert_eq!(s.hits(HitFilter::default()).await.unwrap()[0].status, "open", "a refused decision changes nothing");
    for status in ["confirmed", "not_abuse", "escalate", "open", "confirmed"] {
        s.decide(key, status, 10).await.unwrap();
        assert_eq!(s.hits(HitFilter::default()).await.unwrap()[0].status, status);
    }
}

async fn cases_to_recheck_lists_the_http_urls_of_cases_in_the_statuses(s: Arc<dyn Store>) {
    let (a, b, c, d) =
        (Digests::of(b"a").blake3, Digests::of(b"b").blake3, Digests::of(b"c").blake3, Digests::of(b"d").blake3);
    for (scan, id, data) in [
        ("s1", "https://img/a2.png", &b"a"[..]),
        ("s1", "http://img/a1.png", b"a"),
        ("s2", "http://img/a1.png", b"a"),
        ("s1", "data:sha256:aa", b"a"),
        ("s1", "HTTPS://IMG/A3.PNG", b"a"),
        ("s1", "ftp://img/a4.png", b"a"),
        ("s1", "http://img/b.png", b"b"),
        ("s1", "data:sha256:cc", b"c"),
        ("s1", "http://img/d.png", b"d"),
    ] {
        s.record_image(image(scan, id, None, data, 1)).await.unwrap();
    }
    s.open_case(b, 1.0, "s1", 1).await.unwrap();
    s.open_case(a, 1.0, "s1", 2).await.unwrap();
    s.open_case(c, 1.0, "s1", 3).await.unwrap();
    s.decide(b, "confirmed", 4).await.unwrap();
    // d has no case.
    let open = s.cases_to_recheck(&["open".into()]).await.unwrap();
    assert_eq!(open.len(), 1, "c has no http(s) URL: {open:?}");
    assert_eq!(open[0].blake3, a);
    // Byte order, each URL once; SQLite's LIKE ignores ASCII case.
    assert_eq!(open[0].urls, vec!["HTTPS://IMG/A3.PNG", "http://img/a1.png", "https://img/a2.png"]);
    let both = s.cases_to_recheck(&["confirmed".into(), "open".into()]).await.unwrap();
    assert_eq!(both.iter().map(|i| i.blake3).collect::<Vec<_>>(), vec![b, a], "in case order");
    assert_eq!(both[0].urls, vec!["http://img/b.png"]);
    assert!(s.cases_to_recheck(&["escalate".into()]).await.unwrap().is_empty());
    assert!(s.cases_to_recheck(&[]).await.unwrap().is_empty());
    assert!(!both.iter().any(|i| i.blake3 == d));
}

async fn record_check_tracks_online_and_offline_since(s: Arc<dyn Store>) {
    let key = Digests::of(b"x").blake3;
    s.record_image(image("s1", "http://img/x.png", None, b"x", 1_000)).await.unwrap();
    s.open_case(key, 1.0, "s1", 1_000).await.unwrap();
    let hit = || async { s.hits(HitFilter::default()).await.unwrap().remove(0) };
    let h = hit().await;
    assert_eq!(
        (h.online, h.last_checked, h.last_online, h.offline_since, h.removal_secs),
        (None, None, None, None, None)
    );
    s.record_check(key, 11_000, true).await.unwrap();
    let h = hit().await;
    assert_eq!(h.online, Some(true));
    assert_eq!(h.last_checked.as_deref(), Some("1970-01-01T00:00:11.000Z"));
    assert_eq!(h.last_online.as_deref(), Some("1970-01-01T00:00:11.000Z"));
    assert_eq!((h.offline_since, h.removal_secs), (None, None));
    s.record_check(key, 61_000, false).await.unwrap();
    let h = hit().await;
    assert_eq!(h.online, Some(false));
    assert_eq!(h.last_checked.as_deref(), Some("1970-01-01T00:01:01.000Z"));
    assert_eq!(h.last_online.as_deref(), Some("1970-01-01T00:00:11.000Z"), "the last time it was served");
    assert_eq!(h.offline_since.as_deref(), Some("1970-01-01T00:01:01.000Z"));
    assert_eq!(h.removal_secs, Some(60.0));
    s.record_check(key, 121_000, false).await.unwrap();
    let h = hit().await;
    assert_eq!(h.last_checked.as_deref(), Some("1970-01-01T00:02:01.000Z"));
    assert_eq!(h.offline_since.as_deref(), Some("1970-01-01T00:01:01.000Z"), "the first check that found it gone");
    assert_eq!(h.removal_secs, Some(60.0));
    s.record_check(key, 181_000, true).await.unwrap();
    let h = hit().await;
    assert_eq!(h.online, Some(true));
    assert_eq!(h.last_online.as_deref(), Some("1970-01-01T00:03:01.000Z"));
    assert_eq!((h.offline_since.as_deref(), h.removal_secs), (None, None), "back online clears it");
    let json = serde_json::to_value(&h).unwrap();
    assert!(json.get("offline_since").is_none() && json.get("online") == Some(&serde_json::json!(true)));
    // A check of an image without a case is no error and opens nothing.
    s.record_check(Digests::of(b"y").blake3, 1, false).await.unwrap();
    assert_eq!(s.hits(HitFilter::default()).await.unwrap().len(), 1);
}

async fn hits_say_when_the_scan_ignored_robots(s: Arc<dyn Store>) {
    for (id, config) in
        [("polite", r#"{"seeds":[]}"#), ("rude", r#"{"ignore_robots":true}"#), ("told", r#"{"ignore_robots":false}"#)]
    {
        s.begin_scan(ScanRecord {
            id: id.into(),
            started_at_ms: 1,
            config_json: config.into(),
            reference_version: "v".into(),
        })
        .await
        .unwrap();
    }
    for (i, (scan, data)) in [("polite", &b"p"[..]), ("rude", b"r"), ("told", b"t")].into_iter().enumerate() {
        s.record_image(image(scan, &format!("http://img/{scan}.png"), None, data, 10 + i as i64)).await.unwrap();
        s.open_case(Digests::of(data).blake3, 1.0, scan, 10).await.unwrap();
    }
    s.record_image(image("rude", "http://img/none.png", None, b"n", 20)).await.unwrap();
    let hits = s.hits(HitFilter { all: true, ..Default::default() }).await.unwrap();
    let flags: Vec<_> = hits.iter().map(|h| (h.scan.as_str(), h.status.as_str(), h.robots_ignored)).collect();
    assert_eq!(
        flags,
        vec![("polite", "open", false), ("rude", "open", true), ("told", "open", false), ("rude", "none", false)]
    );
}
