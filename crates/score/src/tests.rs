use super::*;

fn page(url: &str, domain: &str, others: u64, listed: u64) -> PageEvidence {
    PageEvidence { url: url.into(), domain: domain.into(), others, listed }
}

fn host(name: &str, pages: u64, with_listed: u64) -> HostEvidence {
    HostEvidence {
        host: name.into(),
        seen_on: 1,
        pages,
        pages_with_listed: with_listed,
        listed: with_listed,
        confirmed: 0,
        last_listed_ms: Some(0),
    }
}

/// An unlisted image on `listed` pages of bad.test (share 0.4 each) and
/// `clean` other pages.
fn neighbour(listed: u64, clean: u64) -> Evidence {
    Evidence {
        pages_total: listed + clean,
        pages_with_listed: listed,
        listed_pages: (0..listed).map(|i| page(&format!("http://www.bad.test/{i}"), "bad.test", 5, 2)).collect(),
        hosts: vec![HostEvidence { seen_on: listed + clean, ..host("www.bad.test", 12, 8) }],
        ..Evidence::default()
    }
}

fn s(e: &Evidence) -> f64 {
    score(e, &Weights::default()).score
}

#[test]
fn no_evidence_scores_zero_and_listed_scores_its_reference_value() {
    assert_eq!(s(&Evidence::default()), 0.0);
    assert_eq!(s(&Evidence { reference: 1.0, ..Evidence::default() }), 1.0);
    let near = Evidence { reference: near_value(20, 31), ..Evidence::default() };
    assert!((s(&near) - near_value(20, 31)).abs() < 1e-12);
}

#[test]
fn decisions_and_ignore_lists_override_everything() {
    let mut e = neighbour(5, 0);
    e.reference = 1.0;
    e.decision = Some(Decision::NotAbuse);
    let r = score(&e, &Weights::default());
    assert_eq!((r.score, r.factors[0].name.as_str()), (0.0, "analyst_not_abuse"));
    e.decision = Some(Decision::Confirmed);
    assert_eq!(s(&e), 1.0);
    let ignored = Evidence { ignored: true, ..neighbour(5, 0) };
    assert_eq!(s(&ignored), 0.0);
}

#[test]
fn repeated_company_of_listed_material_crosses_the_threshold_and_one_meeting_does_not() {
    assert!(s(&neighbour(2, 0)) >= 0.5, "{}", s(&neighbour(2, 0)));
    // Once next to listed material, otherwise on clean pages.
    assert!(s(&neighbour(1, 3)) < 0.4, "{}", s(&neighbour(1, 3)));
    assert!(s(&neighbour(1, 3)) < s(&neighbour(1, 0)));
    // Everywhere: on 40 listed pages but 200 pages in all.
    assert!(s(&neighbour(40, 160)) < 0.5, "{}", s(&neighbour(40, 160)));
}

#[test]
fn the_host_alone_ranks_but_never_makes_a_case() {
    let e = Evidence { pages_total: 1, hosts: vec![host("www.bad.test", 10, 10)], ..Evidence::default() };
    let v = s(&e);
    assert!(v > 0.0 && v < 0.5, "{v}");
    let clean = Evidence { pages_total: 1, hosts: vec![host("www.good.test", 10, 0)], ..Evidence::default() };
    assert!(s(&clean) < v);
}

#[test]
fn more_evidence_never_lowers_the_score() {
    let mut last = 0.0;
    for n in 0..12 {
        let v = s(&neighbour(n, 0));
        assert!(v >= last, "{n}: {v} < {last}");
        last = v;
    }
    // A larger listed share on a page raises it.
    let mut e = neighbour(1, 0);
    let before = s(&e);
    e.listed_pages[0].listed = 4;
    assert!(s(&e) > before);
    // A second domain raises it.
    let mut e = neighbour(2, 0);
    let before = s(&e);
    e.listed_pages[1].domain = "other.test".into();
    assert!(s(&e) > before);
}

#[test]
fn old_host_evidence_counts_less() {
    let day = 86_400_000;
    let mut e = Evidence { pages_total: 1, hosts: vec![host("h", 10, 5)], now_ms: 400 * day, ..Evidence::default() };
    e.hosts[0].last_listed_ms = Some(399 * day);
    let fresh = s(&e);
    e.hosts[0].last_listed_ms = Some(0);
    assert!(s(&e) < fresh);
}

#[test]
fn near_duplicates_of_confirmed_images_rise() {
    let e = Evidence { confirmed_near: Some((10, 31)), ..Evidence::default() };
    let r = score(&e, &Weights::default());
    assert!(r.score > 0.5);
    assert_eq!(r.factors[0].name, "near_confirmed");
}

#[test]
fn the_order_of_pages_does_not_matter_and_every_factor_is_named() {
    let mut e = neighbour(3, 1);
    e.listed_pages[0].listed = 1;
    e.listed_pages[2].domain = "x.test".into();
    let a = score(&e, &Weights::default());
    e.listed_pages.reverse();
    let b = score(&e, &Weights::default());
    assert!((a.score - b.score).abs() < 1e-12);
    let names: Vec<&str> = a.factors.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["cooccurrence", "listed_pages", "spread", "ubiquity", "host"]);
    for f in &a.factors {
        assert!((0.0..=1.0).contains(&f.value) && !f.note.is_empty(), "{f:?}");
    }
}

#[test]
fn scores_stay_in_range_for_extreme_inputs() {
    let e = Evidence {
        reference: 7.0,
        pages_total: 3,
        pages_with_listed: u64::MAX,
        listed_pages: vec![page("p", "d", 0, 9), page("q", "e", 1, 9)],
        hosts: vec![host("h", 1, 9)],
        now_ms: -5,
        ..Evidence::default()
    };
    let v = s(&e);
    assert!((0.0..=1.0).contains(&v), "{v}");
}

#[test]
fn a_picture_seen_across_many_hosts_takes_little_from_one_bad_host() {
    let bad = HostEvidence { seen_on: 2, ..host("www.bad.test", 10, 8) };
    let good = HostEvidence { seen_on: 98, ..host("www.good.test", 10, 0) };
    let spread = Evidence { pages_total: 100, hosts: vec![bad.clone(), good], ..Evidence::default() };
    let only_bad = Evidence { pages_total: 2, hosts: vec![bad], ..Evidence::default() };
    assert!(s(&spread) < 0.1 * s(&only_bad), "{} vs {}", s(&spread), s(&only_bad));
}

#[test]
fn a_confirmation_on_a_host_raises_its_unknown_images() {
    let plain = Evidence { pages_total: 1, hosts: vec![host("h", 10, 5)], ..Evidence::default() };
    let mut confirmed = plain.clone();
    confirmed.hosts[0].confirmed = 1;
    assert!(s(&confirmed) > s(&plain));
    assert!(s(&confirmed) < 0.5, "still only a prior");
}
