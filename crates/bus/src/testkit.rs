//! The contract of a [`Bus`], as one async check that every implementation
//! runs in its own tests (the in-process bus and the broker-backed one), so
//! the embedded and the cluster mode behave alike.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::{Bus, FetchTask, Message, TaskKind, Topic};

/// A distinct fetch task per `n`.
pub fn task(n: usize) -> FetchTask {
    FetchTask {
        scan: "testkit".into(),
        // A fixed, valid URL pattern: parsing cannot fail.
        url: Url::parse(&format!("http://www.site{n}.test/page{n}.html")).unwrap_or_else(|_| unreachable!()),
        kind: TaskKind::Page,
        depth: n as u32,
        referrer: None,
        hops: 0,
        validators: None,
        attempt: 0,
    }
}

async fn next(consumer: &mut Box<dyn crate::Consumer>) -> crate::Delivery {
    match tokio::time::timeout(Duration::from_secs(10), consumer.next()).await {
        Ok(Some(d)) => d,
        Ok(None) => panic!("the topic ended while a message was expected"),
        Err(_) => panic!("no delivery within 10 s"),
    }
}

/// Checks the whole contract on a bus with empty topics; panics on a breach.
pub async fn check_bus(bus: Arc<dyn Bus>) {
    round_trip_on_every_topic(&bus).await;
    consumers_share_a_topic(&bus).await;
    requeued_comes_again_marked_redelivered(&bus).await;
    rejected_goes_to_the_dead_letters_with_its_reason(&bus).await;
    waiting_counts_what_no_consumer_took(&bus).await;
}

/// `waiting` counts the messages of a topic no consumer took yet (a
/// broker may report a publish a moment late, so it is polled).
pub async fn waiting_counts_what_no_consumer_took(bus: &Arc<dyn Bus>) {
    async fn settles_at(bus: &Arc<dyn Bus>, want: u64) {
        let mut last = None;
        for _ in 0..100 {
            last = bus.waiting(Topic::Fetch).await.expect("waiting");
            if last == Some(want) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("waiting on the fetch topic: {last:?}, expected {want}");
    }
    settles_at(bus, 0).await;
    bus.publish(Message::Fetch(task(7))).await.expect("publish");
    bus.publish(Message::Fetch(task(8))).await.expect("publish");
    settles_at(bus, 2).await;
    let mut c = bus.consume(Topic::Fetch).await.expect("consume");
    for _ in 0..2 {
        next(&mut c).await.ack().await.expect("ack");
    }
    settles_at(bus, 0).await;
}

/// What is published is consumed unchanged, on its own topic only.
pub async fn round_trip_on_every_topic(bus: &Arc<dyn Bus>) {
    let report = crate::FetchReport {
        task: task(1),
        started_at_ms: 9,
        ip: None,
        validators: None,
        outcome: crate::Outcome::NotModified,
        match_messages: 0,
    };
    let work = crate::MatchWork::PageImages {
        scan: "testkit".into(),
        page_url: task(2).url,
        images: vec!["http://img.test/a.png".into()],
        seen_at_ms: 3,
    };
    let msgs = [Message::Fetch(task(0)), Message::Report(report), Message::Match(work)];
    for m in &msgs {
        bus.publish(m.clone()).await.expect("publish");
    }
    for (m, topic) in msgs.iter().zip(Topic::ALL) {
        let mut c = bus.consume(topic).await.expect("consume");
        let d = next(&mut c).await;
        assert_eq!(&d.message, m, "{topic:?}");
        assert!(!d.redelivered);
        d.ack().await.expect("ack");
    }
}

/// Two consumers of one topic get every message exactly once between them.
pub async fn consumers_share_a_topic(bus: &Arc<dyn Bus>) {
    let mut a = bus.consume(Topic::Fetch).await.expect("consume");
    let mut b = bus.consume(Topic::Fetch).await.expect("consume");
    const N: usize = 20;
    for n in 0..N {
        bus.publish(Message::Fetch(task(100 + n))).await.expect("publish");
    }
    let mut seen = BTreeSet::new();
    let mut turn = 0;
    while seen.len() < N {
        let c = if turn % 2 == 0 { &mut a } else { &mut b };
        turn += 1;
        // One consumer may hold everything (prefetch); give it a moment only.
        let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(200), c.next()).await else {
            assert!(turn < 10 * N, "messages went missing: got {} of {N}", seen.len());
            continue;
        };
        let Message::Fetch(t) = &d.message else { panic!("a fetch message") };
        assert!(seen.insert(t.depth), "task {} delivered twice", t.depth);
        d.ack().await.expect("ack");
    }
}

/// A requeued delivery comes again, marked as redelivered.
pub async fn requeued_comes_again_marked_redelivered(bus: &Arc<dyn Bus>) {
    let mut c = bus.consume(Topic::Report).await.expect("consume");
    let report = crate::FetchReport {
        task: task(7),
        started_at_ms: 1,
        ip: None,
        validators: None,
        outcome: crate::Outcome::NotModified,
        match_messages: 0,
    };
    bus.publish(Message::Report(report.clone())).await.expect("publish");
    let d = next(&mut c).await;
    assert_eq!(d.message, Message::Report(report.clone()));
    d.requeue().await.expect("requeue");
    let again = next(&mut c).await;
    assert_eq!(again.message, Message::Report(report));
    assert!(again.redelivered, "a requeued message says it was delivered before");
    again.ack().await.expect("ack");
}

/// A rejected delivery is kept as a dead letter of its topic with the reason.
pub async fn rejected_goes_to_the_dead_letters_with_its_reason(bus: &Arc<dyn Bus>) {
    let mut c = bus.consume(Topic::Fetch).await.expect("consume");
    bus.publish(Message::Fetch(task(9))).await.expect("publish");
    let d = next(&mut c).await;
    d.reject("testkit: refused on purpose").await.expect("reject");
    let mut dead = Vec::new();
    for _ in 0..50 {
        dead.extend(bus.take_dead_letters(Topic::Fetch, 10).await.expect("dead letters"));
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].topic, Topic::Fetch);
    assert_eq!(dead[0].message, Some(Message::Fetch(task(9))));
    assert_eq!(dead[0].reason, "testkit: refused on purpose");
    assert!(bus.take_dead_letters(Topic::Match, 10).await.expect("dead letters").is_empty());
}
