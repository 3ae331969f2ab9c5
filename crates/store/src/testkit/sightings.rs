//! The contract of [`SightingStore`]: sightings join edges and images in
//! any order, redelivery changes nothing, PDQ hashes fill earlier
//! failures, and the cached fetches, contents walk, reference version and
//! fetch outcomes come back as written.

use std::sync::Arc;

use hashscan_hash::Digests;
use hashscan_pdq::PdqHash;

use super::{checks, exact, image, Check};
use crate::{
    Assessment, CachedFetch, FetchRecord, HitFilter, ImageRecord, MatchKind, PdqResult, Reason, Store, Validators,
};

pub(super) fn checks() -> Vec<Check> {
    checks![
        sightings_join_edges_and_images_in_any_order,
        redelivery_changes_nothing,
        pdq_is_stored_and_a_later_hash_fills_an_earlier_failure,
        a_batch_of_images_is_recorded_as_one_by_one,
        cached_fetches_round_trip_and_the_last_one_stands,
        content_is_found_by_blake3_with_its_first_scan,
        contents_pages_walk_everything_in_storage_order_once,
        reference_applied_round_trips,
        fetch_outcomes_are_kept_and_a_repeat_replaces_them,
        an_assessment_sets_score_kind_and_reasons,
    ]
}

fn all() -> HitFilter {
    HitFilter { all: true, ..Default::default() }
}

async fn sightings_join_edges_and_images_in_any_order(s: Arc<dyn Store>) {
    // Edge first, image later, and a second page after.
    s.record_edges("s1", "http://www.site0.test/a", &["http://img/x.png".into()], 10).await.unwrap();
    s.record_image(image("s1", "http://img/x.png", None, b"x", 20)).await.unwrap();
    s.record_edges("s1", "http://www.site0.test/b", &["http://img/x.png".into()], 30).await.unwrap();
    let c = s.counts(None).await.unwrap();
    assert_eq!((c.images, c.contents, c.edges, c.sightings, c.cases), (1, 1, 2, 2, 0));
    let hits = s.hits(all()).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].page_urls, vec!["http://www.site0.test/a", "http://www.site0.test/b"]);
    assert_eq!(hits[0].status, "none");
    assert!(s.hits(HitFilter::default()).await.unwrap().is_empty(), "no case, no hit");
    // Edges of an empty page list change nothing.
    s.record_edges("s1", "http://www.site0.test/c", &[], 40).await.unwrap();
    assert_eq!(s.counts(None).await.unwrap().edges, 2);
}

async fn redelivery_changes_nothing(s: Arc<dyn Store>) {
    let key = Digests::of(b"x").blake3;
    let mut ids = Vec::new();
    for _ in 0..3 {
        s.record_image(image("s1", "http://img/x.png", Some("http://p/1"), b"x", 5)).await.unwrap();
        s.record_edges("s1", "http://p/1", &["http://img/x.png".into()], 5).await.unwrap();
        s.record_assessment(key, exact()).await.unwrap();
        ids.push(s.open_case(key, 1.0, "s1", 5).await.unwrap());
    }
    assert!(ids.iter().all(|&id| id == ids[0]), "one case: {ids:?}");
    let c = s.counts(Some("s1".into())).await.unwrap();
    assert_eq!((c.images, c.contents, c.edges, c.sightings, c.cases), (1, 1, 1, 1, 1));
    let hits = s.hits(HitFilter::default()).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].image_urls.len(), hits[0].page_urls.len(), hits[0].ips.len()), (1, 1, 1));
}

async fn pdq_is_stored_and_a_later_hash_fills_an_earlier_failure(s: Arc<dyn Store>) {
    let failed = image("s1", "http://img/x.jpg", Some("http://p/1"), b"x", 1);
    s.record_image(failed.clone()).await.unwrap();
    let hits = s.hits(all()).await.unwrap();
    assert_eq!((hits[0].pdq.as_deref(), hits[0].pdq_error.as_deref()), (None, Some("unknown_format: test bytes")));
    assert_eq!((hits[0].pdq_quality, hits[0].width, hits[0].height), (None, None, None));
    let hash = PdqHash::from_bytes([0xab; 32]);
    let hashed = ImageRecord {
        image_id: "http://img/x2.jpg".into(),
        pdq: PdqResult::Hashed { hash, quality: 87, width: 640, height: 480, scale: 1 },
        ..failed.clone()
    };
    s.record_image(hashed).await.unwrap();
    let hits = s.hits(all()).await.unwrap();
    let h = &hits[0];
    assert_eq!(h.pdq.as_deref(), Some(hash.to_hex().as_str()));
    assert_eq!((h.pdq_quality, h.width, h.height, h.pdq_error.as_deref()), (Some(87), Some(640), Some(480), None));
    let json = serde_json::to_value(h).unwrap();
    assert!(json.get("pdq_error").is_none(), "absent, not null, when there is a hash");
    // A later failure (or another hash) does not undo the first hash.
    let other = PdqHash::from_bytes([0x01; 32]);
    s.record_image(ImageRecord { image_id: "http://img/x3.jpg".into(), ..failed }).await.unwrap();
    s.record_image(ImageRecord {
        image_id: "http://img/x4.jpg".into(),
        pdq: PdqResult::Hashed { hash: other, quality: 10, width: 1, height: 2, scale: 3 },
        ..image("s1", "", None, b"x", 9)
    })
    .await
    .unwrap();
    let c = s.content(Digests::of(b"x").blake3).await.unwrap().expect("stored");
    assert_eq!(c.pdq, PdqResult::Hashed { hash, quality: 87, width: 640, height: 480, scale: 1 });
}

async fn a_batch_of_images_is_recorded_as_one_by_one(s: Arc<dyn Store>) {
    let first = image("s1", "http://img/a.png", Some("http://p/1"), b"a", 10);
    // The same (scan, image id) again, from another host: the first stands.
    let again = ImageRecord { host: "other.test".into(), ip: Some("127.0.0.9".into()), ..first.clone() };
    let copy = image("s1", "http://img/a-copy.png", Some("http://p/2"), b"a", 20);
    let other = image("s1", "http://img/b.png", None, b"b", 30);
    s.record_images(vec![first, again, copy, other]).await.unwrap();
    s.record_images(Vec::new()).await.unwrap();
    let c = s.counts(None).await.unwrap();
    assert_eq!((c.images, c.contents, c.edges, c.sightings), (3, 2, 2, 2));
    let hits = s.hits(all()).await.unwrap();
    assert_eq!(hits.len(), 2);
    // Both score 0: the earlier first seen first.
    let a = &hits[0];
    assert_eq!(a.blake3, hex::encode(Digests::of(b"a").blake3));
    assert_eq!(a.image_urls, vec!["http://img/a.png", "http://img/a-copy.png"]);
    assert_eq!((a.host.as_str(), a.ips.clone()), ("img.site0.test", vec!["127.77.0.2".to_string()]));
    assert_eq!(a.page_urls, vec!["http://p/1", "http://p/2"]);
    assert_eq!((a.first_seen.as_str(), a.last_seen.as_str()), ("1970-01-01T00:00:00.010Z", "1970-01-01T00:00:00.020Z"));
    assert_eq!(a.scan, "s1");
    assert_eq!(a.bytes, 1);
    assert_eq!(hits[1].blake3, hex::encode(Digests::of(b"b").blake3));
    assert!(hits[1].page_urls.is_empty());
}

async fn cached_fetches_round_trip_and_the_last_one_stands(s: Arc<dyn Store>) {
    let url = "http://www.site0.test/page";
    assert_eq!(s.cached_fetch(url).await.unwrap(), None);
    let first = CachedFetch {
        validators: Validators {
            etag: Some("\"v1\"".into()),
            last_modified: Some("Mon, 01 Jan 2024 00:00:00 GMT".into()),
        },
        blake3: None,
        links: vec!["http://www.site0.test/next".into()],
        images: vec!["http://img/x.png".into(), "http://img/y.png".into()],
        data_ids: vec!["data:sha256:00".into()],
    };
    s.record_cached_fetch(url, first.clone(), 10).await.unwrap();
    assert_eq!(s.cached_fetch(url).await.unwrap(), Some(first));
    let second = CachedFetch {
        validators: Validators { etag: Some("\"v2\"".into()), last_modified: None },
        blake3: Some(hex::encode(Digests::of(b"x").blake3)),
        ..Default::default()
    };
    s.record_cached_fetch(url, second.clone(), 20).await.unwrap();
    assert_eq!(s.cached_fetch(url).await.unwrap(), Some(second));
    assert_eq!(s.cached_fetch("http://www.site0.test/other").await.unwrap(), None);
}

async fn content_is_found_by_blake3_with_its_first_scan(s: Arc<dyn Store>) {
    assert_eq!(s.content(Digests::of(b"x").blake3).await.unwrap(), None);
    s.record_image(image("s2", "http://img/late.png", None, b"x", 50)).await.unwrap();
    s.record_image(image("s1", "http://img/early.png", None, b"x", 10)).await.unwrap();
    let c = s.content(Digests::of(b"x").blake3).await.unwrap().expect("stored");
    assert_eq!(c.digests, Digests::of(b"x"));
    assert_eq!((c.scan.as_str(), c.first_seen_ms), ("s1", 10));
    assert_eq!(c.pdq, PdqResult::Failed { reason: "unknown_format".into(), detail: "test bytes".into() });
    assert_eq!(s.content(Digests::of(b"y").blake3).await.unwrap(), None);
}

async fn contents_pages_walk_everything_in_storage_order_once(s: Arc<dyn Store>) {
    let data: Vec<Vec<u8>> = (0..7u8).map(|i| vec![b'c', i]).collect();
    for (i, d) in data.iter().enumerate() {
        s.record_image(image("s1", &format!("http://img/{i}.png"), None, d, 100 + i as i64)).await.unwrap();
    }
    // Seeing an early content again does not move it.
    s.record_image(image("s2", "http://img/again.png", None, &data[1], 500)).await.unwrap();
    assert!(s.contents_page(None, 0).await.unwrap().is_empty());
    let mut seen = Vec::new();
    let mut positions = Vec::new();
    let mut after = None;
    loop {
        let page = s.contents_page(after, 3).await.unwrap();
        assert!(page.len() <= 3, "a page of {}", page.len());
        let Some(last) = page.last() else { break };
        after = Some(last.0);
        for (pos, c) in page {
            assert_eq!(c.scan, "", "scan is left empty");
            positions.push(pos);
            seen.push(c);
        }
    }
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "positions increase: {positions:?}");
    let blake3s: Vec<_> = seen.iter().map(|c| c.digests.blake3).collect();
    let expected: Vec<_> = data.iter().map(|d| Digests::of(d).blake3).collect();
    assert_eq!(blake3s, expected, "every content once, in the order first stored");
    assert_eq!(seen[1].first_seen_ms, 101);
    assert_eq!(seen[1].digests, Digests::of(&data[1]));
    let everything = s.contents_page(None, usize::MAX).await.unwrap();
    assert_eq!(everything.iter().map(|(p, _)| *p).collect::<Vec<_>>(), positions);
    assert!(s.contents_page(positions.last().copied(), 10).await.unwrap().is_empty());
}

async fn reference_applied_round_trips(s: Arc<dyn Store>) {
    assert_eq!(s.reference_applied().await.unwrap(), None);
    s.set_reference_applied("v1", 10).await.unwrap();
    assert_eq!(s.reference_applied().await.unwrap().as_deref(), Some("v1"));
    s.set_reference_applied("v2", 20).await.unwrap();
    assert_eq!(s.reference_applied().await.unwrap().as_deref(), Some("v2"));
}

async fn fetch_outcomes_are_kept_and_a_repeat_replaces_them(s: Arc<dyn Store>) {
    let failed = FetchRecord {
        scan: "s1".into(),
        url: "http://www.site0.test/b".into(),
        kind: "page".into(),
        depth: 2,
        outcome: "failed".into(),
        reason: Some("timeout".into()),
        detail: Some("body".into()),
        ip: None,
        at_ms: 30,
    };
    let image_fetch = FetchRecord {
        url: "http://img/x.png".into(),
        kind: "image".into(),
        depth: 3,
        outcome: "image".into(),
        reason: None,
        detail: None,
        ip: Some("127.77.0.2".into()),
        at_ms: 20,
        ..failed.clone()
    };
    let elsewhere = FetchRecord { scan: "s2".into(), at_ms: 5, ..failed.clone() };
    s.record_fetch(failed.clone()).await.unwrap();
    s.record_fetch(image_fetch.clone()).await.unwrap();
    s.record_fetch(elsewhere.clone()).await.unwrap();
    assert_eq!(s.fetches("s1").await.unwrap(), vec![image_fetch.clone(), failed.clone()], "by time");
    // A redelivered task's outcome replaces the first.
    let redirect = FetchRecord {
        outcome: "redirect".into(),
        reason: None,
        detail: Some("http://www.site0.test/c".into()),
        ip: Some("127.77.0.1".into()),
        at_ms: 10,
        ..failed
    };
    s.record_fetch(redirect.clone()).await.unwrap();
    assert_eq!(s.fetches("s1").await.unwrap(), vec![redirect, image_fetch]);
    assert_eq!(s.fetches("s2").await.unwrap(), vec![elsewhere]);
    assert!(s.fetches("s3").await.unwrap().is_empty());
}

async fn an_assessment_sets_score_kind_and_reasons(s: Arc<dyn Store>) {
    let key = Digests::of(b"x").blake3;
    // Of a content not stored: nothing to update, no error.
    s.record_assessment(key, exact()).await.unwrap();
    s.record_image(image("s1", "http://img/x.png", None, b"x", 1)).await.unwrap();
    let h = &s.hits(all()).await.unwrap()[0];
    assert_eq!((h.score, h.match_kind, h.match_algo.clone(), h.distance), (0.0, MatchKind::None, None, None));
    assert!(h.reasons.is_empty() && h.factors.is_empty());
    let near = Assessment {
        score: 0.75,
        match_kind: MatchKind::Near,
        match_algo: Some("pdq".into()),
        distance: Some(17),
        reference_version: Some("v9".into()),
        reasons: vec![Reason { factor: "near_match".into(), value: 0.75, weight: 1.0, note: "pdq within 31".into() }],
    };
    s.record_assessment(key, near.clone()).await.unwrap();
    let h = &s.hits(all()).await.unwrap()[0];
    assert_eq!(
        (h.score, h.match_kind, h.match_algo.as_deref(), h.distance),
        (0.75, MatchKind::Near, Some("pdq"), Some(17))
    );
    assert_eq!((h.reference_version.as_deref(), h.reasons.clone()), (Some("v9"), near.reasons));
    // A later assessment replaces it.
    s.record_assessment(key, exact()).await.unwrap();
    let h = &s.hits(all()).await.unwrap()[0];
    assert_eq!((h.score, h.match_kind, h.reference_version.as_deref()), (1.0, MatchKind::Exact, Some("abcd")));
    assert_eq!(h.reasons, exact().reasons);
    assert_eq!(s.hits(HitFilter { all: true, min_score: Some(0.9), ..Default::default() }).await.unwrap().len(), 1);
}
