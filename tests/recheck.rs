//! Re-checking cases: a picture taken down is marked offline with the time
//! it went, one still served stays online, and the host is asked politely.
//! Proven from the test web's access log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hashscan_fetch::{FetchConfig, Fetcher};
use hashscan_netguard::{parse_net, NetPolicy, Overrides};
use hashscan_recheck::{recheck, RecheckOptions};
use hashscan_store::{CaseStore, Hit, HitFilter, MatchKind};
use hashscan_tests::scan_test_web;
use hashscan_testweb::WebSpec;

async fn cases(store: &hashscan_store::SqliteStore) -> BTreeMap<String, Hit> {
    store.hits(HitFilter::default()).await.unwrap().into_iter().map(|h| (h.blake3.clone(), h)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_picture_goes_offline_with_its_time_and_the_rest_stay_online() {
    let s = scan_test_web(WebSpec { seed: 5, sites: 2, ..WebSpec::default() }, |_| {}).await;
    let m = s.web.manifest().clone();
    let before = cases(&s.store).await;
    // Two listed pictures served from URLs only (not data: images).
    let mut listed = before.values().filter(|h| h.match_kind == MatchKind::Exact && h.image_url.starts_with("http"));
    let (gone, kept) = (listed.next().unwrap().clone(), listed.next().unwrap().clone());
    let gone_urls = m.content_by_blake3(&gone.blake3).unwrap().urls.clone();
    for u in &gone_urls {
        s.web.take_down(u);
    }

    let fetcher = Arc::new(
        Fetcher::new(FetchConfig {
            policy: NetPolicy::with_allowed(vec![parse_net(&s.web.allow_net()).unwrap()]),
            overrides: Overrides::parse(&m.resolve_flags()).unwrap(),
            ..FetchConfig::default()
        })
        .unwrap(),
    );
    let interval = Duration::from_millis(40);
    let options = RecheckOptions { host_interval: interval, ..RecheckOptions::default() };
    let logged = s.web.access_log().len();
    let store = Arc::new(s.store.clone());
    let report = recheck(store.clone(), fetcher.clone(), &options).await.unwrap();
    assert_eq!(report.cases as usize, before.values().filter(|h| h.image_url.starts_with("http")).count());
    assert_eq!((report.offline, report.unknown), (1, 0), "{report:?}");

    let after = cases(&s.store).await;
    let g = &after[&gone.blake3];
    assert_eq!(g.online, Some(false));
    let offline_since = g.offline_since.clone().expect("offline since the check");
    assert!(g.removal_secs.is_some_and(|r| r >= 0.0));
    let k = &after[&kept.blake3];
    assert_eq!((k.online, k.offline_since.as_ref()), (Some(true), None));
    assert!(k.last_online.is_some());

    // What the hosts saw: only image URLs of cases, no robots.txt, one
    // request at a time per host with the interval between them.
    let log = s.web.access_log()[logged..].to_vec();
    assert!(!log.is_empty());
    let case_urls: Vec<String> = after.values().flat_map(|h| h.image_urls.clone()).collect();
    let mut per_host: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in &log {
        assert!(case_urls.iter().any(|u| u.ends_with(&e.path)), "{} {} is not a case's image", e.host, e.path);
        assert_ne!(e.path, "/robots.txt");
        per_host.entry(e.host.clone()).or_default().push(e.at_ms);
    }
    for (host, times) in per_host {
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= 35, "{host}: requests {} ms apart", w[1] - w[0]);
        }
    }
    for u in &gone_urls {
        let path = u.split_once("://").unwrap().1.split_once('/').unwrap().1;
        assert!(log.iter().any(|e| e.path == format!("/{path}") && e.status == 404), "{u} was asked for");
    }

    // Again: still offline since the first check that found it gone.
    recheck(store.clone(), fetcher.clone(), &options).await.unwrap();
    assert_eq!(cases(&s.store).await[&gone.blake3].offline_since.as_ref(), Some(&offline_since));
    // Back up: online again.
    for u in &gone_urls {
        s.web.put_back(u);
    }
    let report = recheck(store, fetcher, &options).await.unwrap();
    assert_eq!(report.offline, 0);
    let back = &cases(&s.store).await[&gone.blake3];
    assert_eq!((back.online, back.offline_since.as_ref()), (Some(true), None));
}
