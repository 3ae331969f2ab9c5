//! Risk scores from the circumstances: order-independent, raised by later
//! evidence, moved by analyst decisions.

use std::collections::BTreeMap;
use std::sync::Arc;

use hashscan_bus::{MatchWork, PdqResult};
use hashscan_hash::{CryptoAlgo, Digests};
use hashscan_matcher::Matcher;
use hashscan_refset::ReferenceSet;
use hashscan_store::{CaseStore, HitFilter, SqliteStore};

/// The pages of a small web: listed images L*, unknown U (on two bad pages),
/// neighbours N*, a benign B on a clean page and a "logo" shown everywhere.
const WEB: &[(&str, &[&str])] = &[
    ("http://www.bad.test/1", &["L1", "L2", "U", "N1", "logo"]),
    ("http://www.bad.test/2", &["L3", "U", "N2", "logo"]),
    ("http://www.bad.test/about", &["N3", "logo"]),
    ("http://www.good.test/1", &["B", "logo"]),
    ("http://www.good.test/2", &["B2", "logo"]),
    ("http://www.good.test/3", &["B3", "logo"]),
    ("http://www.good.test/4", &["B4", "logo"]),
    ("http://www.good.test/5", &["N1", "logo"]),
    ("http://www.good.test/6", &["N1", "logo"]),
];

fn url(name: &str) -> String {
    format!("http://img.test/{name}.png")
}

fn digests(name: &str) -> Digests {
    Digests::of(name.as_bytes())
}

fn reference() -> Arc<ReferenceSet> {
    let mut csv = String::from("id,md5\n");
    for l in ["L1", "L2", "L3"] {
        csv.push_str(&format!("{l},{}\n", digests(l).hex(CryptoAlgo::Md5)));
    }
    Arc::new(ReferenceSet::parse("refs.csv", csv.as_bytes()).unwrap().0)
}

/// Every message the web gives: one edge list per page, one hashed image
/// per image (reported from the first page that showed it).
fn messages() -> Vec<MatchWork> {
    let mut out = Vec::new();
    let mut first_page: BTreeMap<&str, &str> = BTreeMap::new();
    for (page, images) in WEB {
        out.push(MatchWork::PageImages {
            scan: "s1".into(),
            page_url: url::Url::parse(page).unwrap(),
            images: images.iter().map(|i| url(i)).collect(),
            seen_at_ms: 1_000,
        });
        for i in *images {
            first_page.entry(i).or_insert(page);
        }
    }
    for (image, page) in first_page {
        out.push(MatchWork::ImageHashed {
            scan: "s1".into(),
            image_id: url(image),
            page_url: Some(url::Url::parse(page).unwrap()),
            host: "img.test".into(),
            ip: None,
            digests: digests(image),
            pdq: PdqResult::Failed { reason: "unknown_format".into(), detail: "test".into() },
            fetched_at_ms: 1_000,
        });
    }
    out
}

async fn scores(store: &SqliteStore) -> BTreeMap<String, (f64, String)> {
    let names = ["L1", "L2", "L3", "U", "N1", "N2", "N3", "B", "B2", "B3", "B4", "logo"];
    let by_hex: BTreeMap<String, &str> = names.iter().map(|n| (digests(n).hex(CryptoAlgo::Blake3), *n)).collect();
    store
        .hits(HitFilter { all: true, ..HitFilter::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|h| (by_hex[&h.blake3].to_string(), (h.score, h.status)))
        .collect()
}

async fn run(order: &[MatchWork]) -> (Arc<SqliteStore>, Matcher) {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let m = Matcher::new(reference(), store.clone(), 0.5);
    for w in order {
        m.handle(w.clone()).await.unwrap();
    }
    m.rescorer().sweep("s1", 2_000).await.unwrap();
    (store, m)
}

#[tokio::test]
async fn the_final_scores_do_not_depend_on_the_order_of_arrival() {
    let forward = messages();
    let reverse: Vec<_> = forward.iter().rev().cloned().collect();
    // Images before their pages, odd ones first.
    let mut shuffled: Vec<_> = forward.iter().skip(1).step_by(2).cloned().collect();
    shuffled.extend(forward.iter().step_by(2).cloned());
    let (a, _) = run(&forward).await;
    let base = scores(&a).await;
    assert_eq!(base.len(), 12);
    for order in [reverse, shuffled] {
        let (s, _) = run(&order).await;
        let other = scores(&s).await;
        for (name, (score, status)) in &base {
            let (o, ostatus) = &other[name];
            assert!((score - o).abs() < 1e-9, "{name}: {score} vs {o}");
            assert_eq!(status, ostatus, "{name}");
        }
    }
    // Listed images are cases at 1.0; the image that keeps company with
    // them is a case; what only once met listed material is not, nor is
    // the logo on every page, nor anything on the clean site.
    for l in ["L1", "L2", "L3"] {
        assert_eq!(base[l], (1.0, "open".to_string()), "{l}");
    }
    assert_eq!(base["U"].1, "open", "U: {:?}", base["U"]);
    for n in ["N1", "logo", "B", "N3"] {
        assert_eq!(base[n].1, "none", "{n}: {:?}", base[n]);
    }
    // The bad host ranks its unknown images above the clean site's.
    assert!(base["N3"].0 > base["B"].0, "{:?}", base);
    assert!(base["U"].0 > base["N1"].0 && base["N1"].0 > base["B"].0, "{:?}", base);
}

#[tokio::test]
async fn a_later_listed_image_raises_an_earlier_unknown_one_at_once() {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let m = Matcher::new(reference(), store.clone(), 0.5);
    let all = messages();
    let is_listed = |w: &MatchWork| matches!(w, MatchWork::ImageHashed { image_id, .. } if image_id.contains("/L"));
    for w in all.iter().filter(|w| !is_listed(w)) {
        m.handle(w.clone()).await.unwrap();
    }
    let before = scores(&store).await["U"].0;
    for w in all.iter().filter(|w| is_listed(w)) {
        m.handle(w.clone()).await.unwrap();
    }
    let after = scores(&store).await["U"].clone();
    assert!(after.0 > before, "{before} → {after:?}");
    // The case opens on the whole evidence, in the sweep; the factors say
    // why, each with its value and weight.
    assert_eq!(after.1, "none");
    m.rescorer().sweep("s1", 2_000).await.unwrap();
    assert_eq!(scores(&store).await["U"].1, "open");
    let hits = store.hits(HitFilter::default()).await.unwrap();
    let u = hits.iter().find(|h| h.blake3 == digests("U").hex(CryptoAlgo::Blake3)).unwrap();
    let names: Vec<&str> = u.factors.iter().map(|f| f.factor.as_str()).collect();
    assert!(names.contains(&"cooccurrence") && names.contains(&"host"), "{names:?}");
    assert!(u.factors.iter().all(|f| (0.0..=1.0).contains(&f.value) && !f.note.is_empty()));
}

#[tokio::test]
async fn decisions_move_the_image_and_its_surroundings() {
    let (store, m) = run(&messages()).await;
    let before = scores(&store).await;
    let key = |n: &str| digests(n).blake3;
    // Confirming U makes it evidence: its neighbour on page 2 rises.
    store.decide(key("U"), "confirmed", 3_000).await.unwrap();
    m.rescorer().after_decision(key("U"), "s1", 3_000).await.unwrap();
    let confirmed = scores(&store).await;
    assert_eq!(confirmed["U"].0, 1.0);
    assert!(confirmed["N2"].0 > before["N2"].0, "{:?} → {:?}", before["N2"], confirmed["N2"]);
    // 'Not abuse' on U suppresses it and takes its weight from N2.
    store.decide(key("U"), "not_abuse", 4_000).await.unwrap();
    m.rescorer().after_decision(key("U"), "s1", 4_000).await.unwrap();
    let cleared = scores(&store).await;
    assert_eq!(cleared["U"].0, 0.0);
    assert!(cleared["N2"].0 < confirmed["N2"].0);
    // Deciding on an image without a case, or with a made-up status, fails clearly.
    let err = store.decide(key("B"), "confirmed", 5_000).await.unwrap_err();
    assert!(err.to_string().contains("no case"), "{err}");
    let err = store.decide(key("U"), "maybe", 5_000).await.unwrap_err();
    assert!(err.to_string().contains("unknown case status"), "{err}");
}

#[tokio::test]
async fn a_half_seen_page_opens_no_case_that_the_whole_page_does_not_support() {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let m = Matcher::new(reference(), store.clone(), 0.5);
    let page = "http://www.mixed.test/gallery";
    let names = ["L1", "U", "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10"];
    let hashed_on = |name: &str, page: &str| MatchWork::ImageHashed {
        scan: "s1".into(),
        image_id: url(name),
        page_url: Some(url::Url::parse(page).unwrap()),
        host: "img.test".into(),
        ip: None,
        digests: digests(name),
        pdq: PdqResult::Failed { reason: "unknown_format".into(), detail: "test".into() },
        fetched_at_ms: 1_000,
    };
    let hashed = |name: &str| hashed_on(name, page);
    // The host's other pages are clean.
    for k in 0..3 {
        m.handle(hashed_on(&format!("C{k}"), &format!("http://www.mixed.test/about{k}"))).await.unwrap();
    }
    // The listed image and U arrive first: for a moment U is the only
    // other image next to listed material.
    m.handle(hashed("L1")).await.unwrap();
    m.handle(hashed("U")).await.unwrap();
    let early = store.hits(HitFilter { all: true, ..HitFilter::default() }).await.unwrap();
    let u = early.iter().find(|h| h.blake3 == digests("U").hex(CryptoAlgo::Blake3)).unwrap();
    assert!(u.score >= 0.5, "U looks strong on the half-seen page: {}", u.score);
    assert_eq!(u.status, "none", "but a case waits for the whole evidence");
    for n in &names[2..] {
        m.handle(hashed(n)).await.unwrap();
    }
    m.rescorer().sweep("s1", 2_000).await.unwrap();
    let all = store.hits(HitFilter { all: true, ..HitFilter::default() }).await.unwrap();
    let u = all.iter().find(|h| h.blake3 == digests("U").hex(CryptoAlgo::Blake3)).unwrap();
    assert!(u.score < 0.5 && u.status == "none", "{} {}", u.score, u.status);
    let l = all.iter().find(|h| h.blake3 == digests("L1").hex(CryptoAlgo::Blake3)).unwrap();
    assert_eq!(l.status, "open", "a listed image opens its case at once");
}
