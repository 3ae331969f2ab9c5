//! Matching against several lists: near matches by each list's radius,
//! ignore lists, PDQ quality, reloading, and retro-matching of images seen
//! before a list changed. Hashes are of benign strings chosen here.

use std::sync::Arc;

use hashscan_bus::{Bus, MatchWork, MemoryBus, Message, PdqResult, Topic};
use hashscan_hash::{CryptoAlgo, Digests};
use hashscan_matcher::{retro, run_matcher, Matcher};
use hashscan_pdq::PdqHash;
use hashscan_refset::{ListKind, ListSpec, ReferenceSet, SetSpec};
use hashscan_store::{CaseStore, HitFilter, MatchKind, ScanStore, SightingStore, SqliteStore};

/// A PDQ hash `flips` bits away from `base`.
fn near(base: &PdqHash, flips: u32) -> PdqHash {
    let mut b = *base.as_bytes();
    for k in 0..flips as usize {
        b[k % 32] ^= 1 << (k / 32);
    }
    PdqHash::from_bytes(b)
}

fn base_pdq() -> PdqHash {
    PdqHash::from_bytes(Digests::of(b"listed picture").sha256)
}

fn hashed(image: &str, data: &[u8], pdq: Option<(PdqHash, u8)>) -> MatchWork {
    MatchWork::ImageHashed {
        scan: "s1".into(),
        image_id: format!("http://img.test/{image}"),
        // A page of its own: these tests are about the image, not its company.
        page_url: Some(url::Url::parse(&format!("http://www.test/of/{image}")).unwrap()),
        host: "img.test".into(),
        ip: None,
        digests: Digests::of(data),
        pdq: match pdq {
            Some((hash, quality)) => PdqResult::Hashed { hash, quality, width: 100, height: 100, scale: 1 },
            None => PdqResult::Failed { reason: "unknown_format".into(), detail: "test".into() },
        },
        fetched_at_ms: 1,
    }
}

/// Writes lists into `dir` and builds the set from a spec.
fn set_of(dir: &std::path::Path, lists: &[(&str, ListKind, u32, String)]) -> Arc<ReferenceSet> {
    let specs = lists
        .iter()
        .map(|(name, kind, radius, body)| {
            let file = dir.join(format!("{name}.csv"));
            std::fs::write(&file, body).unwrap();
            ListSpec { name: name.to_string(), kind: *kind, pdq_radius: *radius, ..ListSpec::for_file(&file) }
        })
        .collect();
    let spec = SetSpec::new("test-set", specs).unwrap();
    Arc::new(ReferenceSet::from_spec(&spec).unwrap().0)
}

async fn hit(store: &SqliteStore, image: &str) -> Option<hashscan_store::Hit> {
    let all = store.hits(HitFilter { all: true, ..HitFilter::default() }).await.unwrap();
    all.into_iter().find(|h| h.image_url.ends_with(image))
}

#[tokio::test]
async fn near_matches_follow_each_lists_radius_and_quality() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_pdq();
    let set = set_of(
        dir.path(),
        &[
            ("wide", ListKind::Match, 31, format!("id,pdq\nW1,{base}\n")),
            ("narrow", ListKind::Match, 8, format!("id,pdq\nN1,{}\n", near(&base, 1))),
        ],
    );
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let m = Matcher::new(set, store.clone(), 0.5);
    m.handle(hashed("close.jpg", b"close", Some((near(&base, 5), 90)))).await.unwrap();
    m.handle(hashed("far.jpg", b"far", Some((near(&base, 25), 90)))).await.unwrap();
    m.handle(hashed("too-far.jpg", b"too far", Some((near(&base, 40), 90)))).await.unwrap();
    m.handle(hashed("weak.jpg", b"weak", Some((near(&base, 5), 30)))).await.unwrap();

    let close = hit(&store, "close.jpg").await.unwrap();
    // 5 bits from the wide list's item (radius 31) scores higher than 4 bits
    // from the narrow list's (radius 8): the best-scoring match is named.
    assert_eq!((close.match_kind, close.distance, close.status.as_str()), (MatchKind::Near, Some(5), "open"));
    assert!(close.reasons.iter().any(|r| r.note.contains("\"narrow\"")), "within both radii: {:?}", close.reasons);
    let far = hit(&store, "far.jpg").await.unwrap();
    assert_eq!((far.match_kind, far.distance, far.status.as_str()), (MatchKind::Near, Some(25), "open"));
    assert!(far.reasons.iter().all(|r| !r.note.contains("\"narrow\"")), "outside narrow's radius");
    assert!(far.score < close.score, "closer copies score higher");
    let too_far = hit(&store, "too-far.jpg").await.unwrap();
    assert_eq!((too_far.match_kind, too_far.status.as_str()), (MatchKind::None, "none"));
    let weak = hit(&store, "weak.jpg").await.unwrap();
    assert_eq!(weak.match_kind, MatchKind::None, "quality 30 is below the default minimum of 50");
    assert!(weak.reasons.iter().any(|r| r.factor == "pdq_quality_low"), "{:?}", weak.reasons);
}

#[tokio::test]
async fn an_ignore_list_suppresses_a_hit_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = Digests::of(b"popular benign meme");
    let set = set_of(
        dir.path(),
        &[
            ("police", ListKind::Match, 31, format!("md5\n{}\n", d.hex(CryptoAlgo::Md5))),
            ("benign", ListKind::Ignore, 31, format!("sha1\n{}\n", d.hex(CryptoAlgo::Sha1))),
        ],
    );
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let m = Matcher::new(set, store.clone(), 0.5);
    m.handle(hashed("meme.jpg", b"popular benign meme", None)).await.unwrap();
    let h = hit(&store, "meme.jpg").await.unwrap();
    assert_eq!((h.score, h.status.as_str()), (0.0, "none"));
    assert!(h.reasons.iter().any(|r| r.factor == "ignore_list" && r.note.contains("\"benign\"")), "{:?}", h.reasons);
    assert!(h.reasons.iter().any(|r| r.factor == "exact_match" && r.note.contains("\"police\"")));
    assert!(store.hits(HitFilter::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn list_weight_scales_the_score() {
    let dir = tempfile::tempdir().unwrap();
    let d = Digests::of(b"x");
    let file = dir.path().join("low.csv");
    std::fs::write(&file, format!("md5\n{}\n", d.hex(CryptoAlgo::Md5))).unwrap();
    let spec = SetSpec::new("s", vec![ListSpec { weight: 0.4, ..ListSpec::for_file(&file) }]).unwrap();
    let set = Arc::new(ReferenceSet::from_spec(&spec).unwrap().0);
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let m = Matcher::new(set, store.clone(), 0.5);
    m.handle(hashed("x.jpg", b"x", None)).await.unwrap();
    let h = hit(&store, "x.jpg").await.unwrap();
    assert_eq!((h.score, h.status.as_str()), (0.4, "none"), "a weak list's exact hit stays under the threshold");
}

#[tokio::test]
async fn a_new_list_entry_lights_up_images_seen_before() {
    let dir = tempfile::tempdir().unwrap();
    let (a, c) = (Digests::of(b"image a"), Digests::of(b"image c"));
    let base = base_pdq();
    let v1 = set_of(dir.path(), &[("police", ListKind::Match, 31, format!("md5\n{}\n", a.hex(CryptoAlgo::Md5)))]);
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let m = Matcher::new(v1.clone(), store.clone(), 0.5);
    retro::rematch(&*store, None, &v1, &rescorer(&store)).await.unwrap();
    m.handle(hashed("a.jpg", b"image a", None)).await.unwrap();
    m.handle(hashed("b.jpg", b"image b", Some((near(&base, 7), 95)))).await.unwrap();
    m.handle(hashed("c.jpg", b"image c", None)).await.unwrap();
    m.handle(hashed("d.jpg", b"image d", None)).await.unwrap();
    assert_eq!(store.hits(HitFilter::default()).await.unwrap().len(), 1, "only a is listed in v1");

    // v2 adds b (by PDQ, in a new list) and c (by SHA-256) months later.
    let body = format!("md5,sha256\n{},\n,{}\n", a.hex(CryptoAlgo::Md5), c.hex(CryptoAlgo::Sha256));
    let v2 = set_of(
        dir.path(),
        &[("police", ListKind::Match, 31, body), ("partner", ListKind::Match, 31, format!("pdq\n{base}\n"))],
    );
    let report = retro::rematch(&*store, Some(&v1), &v2, &rescorer(&store)).await.unwrap();
    assert!(!report.full, "diffed against the old version");
    assert_eq!(report.changed_items, 2, "one new SHA-256 and one new PDQ: {report:?}");
    assert_eq!((report.scanned, report.rematched, report.cases), (4, 2, 2), "{report:?}");
    let cases = store.hits(HitFilter::default()).await.unwrap();
    let urls: Vec<&str> = cases.iter().map(|h| h.image_url.as_str()).collect();
    assert_eq!(cases.len(), 3, "{urls:?}");
    let b_hit = hit(&store, "b.jpg").await.unwrap();
    assert_eq!((b_hit.match_kind, b_hit.distance), (MatchKind::Near, Some(7)));
    assert_eq!(b_hit.reference_version.as_deref(), Some(v2.version()));
    assert_eq!(b_hit.page_urls, ["http://www.test/of/b.jpg"], "with the circumstances it was seen in");
    assert_eq!(b_hit.scan, "s1");
    assert_eq!(hit(&store, "c.jpg").await.unwrap().match_algo.as_deref(), Some("sha256"));
    assert_eq!(store.reference_applied().await.unwrap().as_deref(), Some(v2.version()));

    // Applying the same version again does nothing.
    let again = retro::rematch(&*store, Some(&v1), &v2, &rescorer(&store)).await.unwrap();
    assert_eq!((again.scanned, again.cases), (0, 0));
    // Without the old set, the whole new set is matched, with the same outcome.
    let store2 = Arc::new(SqliteStore::in_memory().unwrap());
    let m2 = Matcher::new(v1.clone(), store2.clone(), 0.5);
    for (img, data) in [("a.jpg", &b"image a"[..]), ("c.jpg", b"image c")] {
        m2.handle(hashed(img, data, None)).await.unwrap();
    }
    let full = retro::rematch(&*store2, None, &v2, &rescorer(&store2)).await.unwrap();
    assert!(full.full);
    assert_eq!(store2.hits(HitFilter::default()).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swapping_the_reference_while_messages_flow_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = set_of(dir.path(), &[("l", ListKind::Match, 31, "md5\n00000000000000000000000000000000\n".into())]);
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let matcher = Arc::new(Matcher::new(v1.clone(), store.clone(), 0.5));
    let bus = MemoryBus::new(64);
    let loops = tokio::spawn(run_matcher(Arc::new(bus.clone()), matcher.clone(), 4));
    let swapper = {
        let (matcher, v1) = (matcher.clone(), v1.clone());
        let v2 = set_of(dir.path(), &[("l", ListKind::Match, 31, "md5\n11111111111111111111111111111111\n".into())]);
        tokio::spawn(async move {
            for i in 0..50 {
                matcher.replace_reference(if i % 2 == 0 { v2.clone() } else { v1.clone() });
                tokio::task::yield_now().await;
            }
        })
    };
    for i in 0..500 {
        let data = format!("image {i}");
        bus.publish(Message::Match(hashed(&format!("{i}.jpg"), data.as_bytes(), None))).await.unwrap();
    }
    swapper.await.unwrap();
    bus.close(Topic::Match);
    loops.await.unwrap().unwrap();
    assert!(bus.dead_letters().is_empty());
    assert_eq!(matcher.images(), 500, "every message handled once");
    assert_eq!(store.counts(None).await.unwrap().images, 500);
}

fn rescorer(store: &Arc<SqliteStore>) -> hashscan_matcher::rescore::Rescorer {
    hashscan_matcher::rescore::Rescorer::new(store.clone(), store.clone(), 0.5)
}
