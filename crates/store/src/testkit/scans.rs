//! The contract of [`ScanStore`](crate::ScanStore): counts per scan and
//! overall, scan records (a restart replaces one), fetch order, recurring
//! scans and their states, and what earlier scans teach the next one
//! (hotspot pages, findings per host).

use std::sync::Arc;

use hashscan_hash::Digests;

use super::{checks, exact, image, Check};
use crate::{FetchRecord, HostFindings, ScanRecord, Schedule, Store, StoreCounts, StoreError, SCHEDULE_STATES};

pub(super) fn checks() -> Vec<Check> {
    checks![
        counts_are_per_scan_and_overall,
        scans_begin_finish_list_and_latest,
        fetches_come_back_by_time_then_url,
        schedules_round_trip_change_state_and_count_runs,
        hotspot_pages_and_host_findings_follow_listed_and_confirmed_material,
    ]
}

fn scan(id: &str, at: i64) -> ScanRecord {
    ScanRecord {
        id: id.into(),
        started_at_ms: at,
        config_json: "{\"seeds\":[]}".into(),
        reference_version: "v1".into(),
    }
}

fn fetch(scan: &str, url: &str, at: i64) -> FetchRecord {
    FetchRecord {
        scan: scan.into(),
        url: url.into(),
        kind: "page".into(),
        depth: 3,
        outcome: "failed".into(),
        reason: Some("timeout".into()),
        detail: Some("after 10 s".into()),
        ip: Some("127.77.0.9".into()),
        at_ms: at,
    }
}

async fn counts_are_per_scan_and_overall(s: Arc<dyn Store>) {
    assert_eq!(s.counts(None).await.unwrap(), StoreCounts::default());
    // s1: two contents on p1, one of them also on p2, and an edge to an
    // image never hashed (an edge, not a sighting).
    s.record_image(image("s1", "http://img/a.png", Some("http://p/1"), b"a", 1)).await.unwrap();
    s.record_image(image("s1", "http://img/b.png", Some("http://p/1"), b"b", 2)).await.unwrap();
    s.record_edges("s1", "http://p/2", &["http://img/a.png".into(), "http://img/unhashed.png".into()], 3)
        .await
        .unwrap();
    s.record_fetch(fetch("s1", "http://p/1", 4)).await.unwrap();
    s.record_fetch(fetch("s1", "http://p/2", 5)).await.unwrap();
    // s2: content a again, under another URL.
    s.record_image(image("s2", "http://img/a2.png", Some("http://p/1"), b"a", 6)).await.unwrap();
    s.record_fetch(fetch("s2", "http://p/1", 7)).await.unwrap();
    s.open_case(Digests::of(b"a").blake3, 1.0, "s1", 8).await.unwrap();

    let all = s.counts(None).await.unwrap();
    assert_eq!(all, StoreCounts { images: 3, contents: 2, edges: 5, sightings: 4, cases: 1, fetches: 3 });
    let s1 = s.counts(Some("s1".into())).await.unwrap();
    assert_eq!(s1, StoreCounts { images: 2, contents: 2, edges: 4, sightings: 3, cases: 1, fetches: 2 });
    let s2 = s.counts(Some("s2".into())).await.unwrap();
    assert_eq!(s2, StoreCounts { images: 1, contents: 1, edges: 1, sightings: 1, cases: 0, fetches: 1 });
    assert_eq!(s.counts(Some("s3".into())).await.unwrap(), StoreCounts::default());
}

async fn scans_begin_finish_list_and_latest(s: Arc<dyn Store>) {
    assert_eq!(s.latest_scan().await.unwrap(), None);
    assert!(s.scan_list(10).await.unwrap().is_empty());
    s.begin_scan(scan("s1", 100)).await.unwrap();
    s.begin_scan(scan("s2", 300)).await.unwrap();
    s.begin_scan(scan("s3", 200)).await.unwrap();
    s.finish_scan("s1", 150, "{\"pages\":1}".into()).await.unwrap();
    // Finishing an unknown scan changes nothing.
    s.finish_scan("nope", 160, "{}".into()).await.unwrap();
    assert_eq!(s.latest_scan().await.unwrap().as_deref(), Some("s2"));
    let list = s.scan_list(10).await.unwrap();
    assert_eq!(
        list,
        vec![
            ("s2".to_string(), 300, None, None),
            ("s3".to_string(), 200, None, None),
            ("s1".to_string(), 100, Some(150), Some("{\"pages\":1}".to_string())),
        ]
    );
    assert_eq!(s.scan_list(2).await.unwrap(), list[..2].to_vec());
    assert!(s.scan_list(0).await.unwrap().is_empty());
    // Starting a scan again under its id replaces the record, end included.
    s.begin_scan(scan("s1", 400)).await.unwrap();
    assert_eq!(s.latest_scan().await.unwrap().as_deref(), Some("s1"));
    assert_eq!(s.scan_list(1).await.unwrap(), vec![("s1".to_string(), 400, None, None)]);
    assert_eq!(s.scan_list(usize::MAX).await.unwrap().len(), 3);
}

async fn fetches_come_back_by_time_then_url(s: Arc<dyn Store>) {
    s.record_fetch(fetch("s1", "http://p/b", 20)).await.unwrap();
    s.record_fetch(fetch("s1", "http://p/z", 10)).await.unwrap();
    s.record_fetch(fetch("s1", "http://p/a", 20)).await.unwrap();
    s.record_fetch(fetch("s1", "http://p/B", 20)).await.unwrap();
    s.record_fetch(FetchRecord { kind: "image".into(), outcome: "image".into(), ..fetch("s2", "http://i/1", 5) })
        .await
        .unwrap();
    let f = s.fetches("s1").await.unwrap();
    let urls: Vec<&str> = f.iter().map(|f| f.url.as_str()).collect();
    // By time, then URL in byte order (upper case first).
    assert_eq!(urls, vec!["http://p/z", "http://p/B", "http://p/a", "http://p/b"]);
    assert_eq!(f[0], fetch("s1", "http://p/z", 10));
    let f2 = s.fetches("s2").await.unwrap();
    assert_eq!(f2.len(), 1);
    assert_eq!((f2[0].kind.as_str(), f2[0].outcome.as_str(), f2[0].depth), ("image", "image", 3));
    assert!(s.fetches("s3").await.unwrap().is_empty());
}

async fn schedules_round_trip_change_state_and_count_runs(s: Arc<dyn Store>) {
    assert!(s.schedules().await.unwrap().is_empty());
    assert_eq!(s.schedule("daily").await.unwrap(), None);
    s.put_schedule("daily", 86_400_000, Some(3), 1_000).await.unwrap();
    s.put_schedule("hourly", 3_600_000, None, 2_000).await.unwrap();
    s.put_schedule("Weekly", 604_800_000, None, 3_000).await.unwrap();
    let daily = Schedule {
        id: "daily".into(),
        every_ms: 86_400_000,
        state: "active".into(),
        runs: 0,
        max_runs: Some(3),
        last_run: None,
        next_run_at: Some(1_000),
        created_at: 1_000,
    };
    assert_eq!(s.schedule("daily").await.unwrap(), Some(daily.clone()));
    // By id, in byte order (upper case first).
    let ids: Vec<String> = s.schedules().await.unwrap().into_iter().map(|x| x.id).collect();
    assert_eq!(ids, vec!["Weekly", "daily", "hourly"]);

    for state in SCHEDULE_STATES {
        s.set_schedule_state("daily", state).await.unwrap();
        assert_eq!(s.schedule("daily").await.unwrap().unwrap().state, state);
    }
    s.set_schedule_state("daily", "paused").await.unwrap();
    match s.set_schedule_state("nope", "paused").await {
        Err(StoreError::NoSchedule(id)) => assert_eq!(id, "nope"),
        other => panic!("unknown schedule: {other:?}"),
    }
    match s.set_schedule_state("daily", "sleeping").await {
        Err(StoreError::BadStatus(st)) => assert_eq!(st, "sleeping"),
        other => panic!("unknown state: {other:?}"),
    }
    assert_eq!(s.schedule("daily").await.unwrap().unwrap().state, "paused", "a refused change changes nothing");
    assert_eq!(s.schedule("nope").await.unwrap(), None, "no schedule is made by a state change");

    s.schedule_ran("daily", "daily", 87_400_000).await.unwrap();
    s.schedule_ran("daily", "daily-2", 173_800_000).await.unwrap();
    // An unknown schedule's run changes nothing.
    s.schedule_ran("nope", "nope-2", 5).await.unwrap();
    let ran = s.schedule("daily").await.unwrap().unwrap();
    assert_eq!(
        ran,
        Schedule {
            state: "paused".into(),
            runs: 2,
            last_run: Some("daily-2".into()),
            next_run_at: Some(173_800_000),
            ..daily
        }
    );
    assert_eq!(s.schedule("hourly").await.unwrap().unwrap().runs, 0, "other schedules untouched");
    assert_eq!(s.schedules().await.unwrap().len(), 3);

    // Redefining starts from run 0, active and due now.
    s.put_schedule("daily", 60_000, None, 9_000).await.unwrap();
    assert_eq!(
        s.schedule("daily").await.unwrap(),
        Some(Schedule {
            id: "daily".into(),
            every_ms: 60_000,
            state: "active".into(),
            runs: 0,
            max_runs: None,
            last_run: None,
            next_run_at: Some(9_000),
            created_at: 9_000,
        })
    );
}

async fn hotspot_pages_and_host_findings_follow_listed_and_confirmed_material(s: Arc<dyn Store>) {
    let (p1, p2, p3, p4) =
        ("http://A.site1.test:8080/p1", "http://a.site1.test/p2", "http://b.site2.test/p3", "http://b.site2.test/p4");
    let (p5, p6, p7) = ("https://c.site3.test/p5", "https://c.site3.test/p6", "http://d.site4.test/p7");
    assert!(s.hotspot_pages(10).await.unwrap().is_empty());
    // Listed (exact) l1 on p1 and p2, l2 on p2; plain image on p2, p3, p4.
    s.record_image(image("s1", "http://img/l1", Some(p1), b"l1", 10)).await.unwrap();
    s.record_edges("s1", p2, &["http://img/l1".into()], 10).await.unwrap();
    s.record_image(image("s1", "http://img/l2", Some(p2), b"l2", 10)).await.unwrap();
    s.record_image(image("s1", "http://img/plain", Some(p2), b"plain", 10)).await.unwrap();
    s.record_edges("s1", p3, &["http://img/plain".into()], 10).await.unwrap();
    s.record_edges("s1", p4, &["http://img/plain".into()], 10).await.unwrap();
    for key in [b"l1".as_slice(), b"l2"] {
        s.record_assessment(Digests::of(key).blake3, exact()).await.unwrap();
    }
    // Confirmed by an analyst (not listed) on p4 and p5.
    let confirmed = Digests::of(b"confirmed").blake3;
    s.record_image(image("s1", "http://img/c", Some(p4), b"confirmed", 10)).await.unwrap();
    s.record_edges("s1", p5, &["http://img/c".into()], 10).await.unwrap();
    s.open_case(confirmed, 0.5, "s1", 10).await.unwrap();
    s.decide(confirmed, "confirmed", 11).await.unwrap();
    // Listed but found benign on p6: not a finding.
    let benign = Digests::of(b"benign").blake3;
    s.record_image(image("s1", "http://img/n", Some(p6), b"benign", 10)).await.unwrap();
    s.record_assessment(benign, exact()).await.unwrap();
    s.open_case(benign, 1.0, "s1", 10).await.unwrap();
    s.decide(benign, "not_abuse", 11).await.unwrap();
    // Another scan's listed image on p7: a hotspot, not a finding of s1.
    s.record_image(image("s2", "http://img/l3", Some(p7), b"l3", 20)).await.unwrap();
    s.record_assessment(Digests::of(b"l3").blake3, exact()).await.unwrap();

    // p2 has two listed images; the rest one each, by URL in byte order.
    let hot = s.hotspot_pages(10).await.unwrap();
    assert_eq!(hot, vec![p2, p1, p4, p7, p5]);
    assert_eq!(s.hotspot_pages(2).await.unwrap(), vec![p2, p1]);
    assert!(s.hotspot_pages(0).await.unwrap().is_empty());

    // By host (lower case, without port), in name order.
    let findings = s.host_findings("s1").await.unwrap();
    let f = |host: &str, pages, listed_pages| HostFindings { host: host.into(), pages, listed_pages };
    assert_eq!(findings, vec![f("a.site1.test", 2, 2), f("b.site2.test", 2, 1), f("c.site3.test", 2, 1)]);
    assert_eq!(s.host_findings("s2").await.unwrap(), vec![f("d.site4.test", 1, 1)]);
    assert!(s.host_findings("s9").await.unwrap().is_empty());

    // Findings are "as known now": the benign decision undone counts p6.
    s.decide(benign, "open", 12).await.unwrap();
    let findings = s.host_findings("s1").await.unwrap();
    assert_eq!(findings[2], f("c.site3.test", 2, 2));
    assert_eq!(s.hotspot_pages(10).await.unwrap(), vec![p2, p1, p4, p7, p5, p6]);
}
