//! The RabbitMQ bus against the real broker on 127.0.0.1 (`HASHSCAN_AMQP_URL`
//! overrides; `scripts/test` starts RabbitMQ when it is not running). Each
//! test uses its own queue prefix and deletes its queues at the end.

use std::sync::Arc;
use std::time::Duration;

use hashscan_bus::testkit::{check_bus, task};
use hashscan_bus::{Bus, Message, Topic};
use hashscan_bus_amqp::{AmqpBus, AmqpConfig};
use rand::Rng;

async fn bus(delivery_limit: u32) -> AmqpBus {
    let url = std::env::var("HASHSCAN_AMQP_URL").unwrap_or_else(|_| AmqpConfig::default().url);
    let prefix = format!("hashscan-test-{:08x}", rand::rng().random::<u32>());
    let config = AmqpConfig { url: url.clone(), prefix, delivery_limit, ..AmqpConfig::default() };
    match AmqpBus::connect(config).await {
        Ok(b) => b,
        Err(e) => panic!("RabbitMQ not reachable at {url}: {e} (scripts/test starts it)"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_bus_meets_the_bus_contract() {
    let b = bus(5).await;
    check_bus(Arc::new(b.clone())).await;
    b.delete_topology().await.unwrap();
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_dead_lettered_with_their_reason_and_work_goes_on() {
    let b = bus(5).await;
    let mut v: serde_json::Value = serde_json::from_slice(&hashscan_bus::encode(&Message::Fetch(task(1)))).unwrap();
    v["version"] = 99.into();
    let future = serde_json::to_vec(&v).unwrap();
    for topic in Topic::ALL {
        b.publish_raw(topic, b"{not json").await.unwrap();
        b.publish_raw(topic, &future).await.unwrap();
    }
    // A valid message behind the bad ones still arrives, on every queue.
    b.publish(Message::Fetch(task(2))).await.unwrap();
    let mut c = b.consume(Topic::Fetch).await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), c.next()).await.unwrap().unwrap();
    assert_eq!(d.message, Message::Fetch(task(2)));
    d.ack().await.unwrap();
    for topic in [Topic::Report, Topic::Match] {
        let mut c = b.consume(topic).await.unwrap();
        // Nothing valid there: next() only dead-letters; stop waiting after a while.
        let got = tokio::time::timeout(Duration::from_millis(1500), c.next()).await;
        assert!(got.is_err(), "{topic:?}: an undecodable message reached a worker");
    }
    for topic in Topic::ALL {
        let mut dead = Vec::new();
        for _ in 0..50 {
            dead.extend(b.take_dead_letters(topic, 10).await.unwrap());
            if dead.len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(dead.len(), 2, "{topic:?}: {dead:?}");
        assert!(dead.iter().all(|d| d.message.is_none() && d.topic == topic));
        assert!(dead.iter().any(|d| d.reason.starts_with("malformed message") && d.body == "{not json"), "{dead:?}");
        assert!(dead.iter().any(|d| d.reason.contains("unknown message schema version 99")), "{dead:?}");
    }
    b.delete_topology().await.unwrap();
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_is_dead_lettered_by_the_broker_after_the_limit() {
    let b = bus(2).await;
    b.publish(Message::Fetch(task(3))).await.unwrap();
    let mut c = b.consume(Topic::Fetch).await.unwrap();
    let mut deliveries = 0;
    // Requeue every time, as a worker whose store is down would: the broker
    // stops the loop after the delivery limit.
    while let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(3), c.next()).await {
        deliveries += 1;
        assert!(deliveries <= 5, "the delivery limit did not hold");
        d.requeue().await.unwrap();
    }
    assert!(deliveries >= 2, "{deliveries}");
    let mut dead = Vec::new();
    for _ in 0..50 {
        dead.extend(b.take_dead_letters(Topic::Fetch, 10).await.unwrap());
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].message, Some(Message::Fetch(task(3))));
    assert!(dead[0].reason.starts_with("broker:") || dead[0].reason.contains("broker"), "{}", dead[0].reason);
    b.delete_topology().await.unwrap();
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_work_of_a_closed_consumer_is_delivered_again() {
    let a = bus(5).await;
    a.publish(Message::Match(hashscan_bus::MatchWork::PageImages {
        scan: "t".into(),
        page_url: task(4).url,
        images: vec![],
        seen_at_ms: 1,
    }))
    .await
    .unwrap();
    let mut c = a.consume(Topic::Match).await.unwrap();
    let held = tokio::time::timeout(Duration::from_secs(10), c.next()).await.unwrap().unwrap();
    assert!(!held.redelivered);
    // The worker dies holding it (its connection closes without an ack).
    let other = AmqpBus::connect(a.config().clone()).await.unwrap();
    a.close().await;
    drop(held);
    let mut c2 = other.consume(Topic::Match).await.unwrap();
    let again = tokio::time::timeout(Duration::from_secs(10), c2.next()).await.unwrap().unwrap();
    assert!(again.redelivered);
    again.ack().await.unwrap();
    other.delete_topology().await.unwrap();
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_depth_counts_waiting_messages() {
    let b = bus(5).await;
    assert_eq!(b.depth(Topic::Fetch).await.unwrap(), 0);
    for n in 0..3 {
        b.publish(Message::Fetch(task(n))).await.unwrap();
    }
    assert_eq!(b.depth(Topic::Fetch).await.unwrap(), 3);
    b.delete_topology().await.unwrap();
    b.close().await;
}

/// A consumer dropped while its delivery is unacked, on a connection that
/// stays up (a scheduler resuming a scan after a Redis outage): the next
/// consumer of the same bus gets the message, and no later message goes to
/// the dropped one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_consumer_hands_its_unacked_work_to_the_next_on_the_same_connection() {
    let a = bus(5).await;
    let work = |n: usize| {
        Message::Match(hashscan_bus::MatchWork::PageImages {
            scan: "t".into(),
            page_url: task(n).url,
            images: vec![],
            seen_at_ms: 1,
        })
    };
    a.publish(work(1)).await.unwrap();
    let mut first = a.consume(Topic::Match).await.unwrap();
    let held = tokio::time::timeout(Duration::from_secs(10), first.next()).await.unwrap().unwrap();
    drop(held);
    drop(first);
    a.publish(work(2)).await.unwrap();
    let mut next = a.consume(Topic::Match).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = tokio::time::timeout(Duration::from_secs(10), next.next())
            .await
            .expect("both messages reach the live consumer")
            .unwrap();
        if let Message::Match(hashscan_bus::MatchWork::PageImages { page_url, .. }) = &d.message {
            got.push(page_url.to_string());
        }
        d.ack().await.unwrap();
    }
    got.sort();
    let mut want = vec![task(1).url.to_string(), task(2).url.to_string()];
    want.sort();
    assert_eq!(got, want);
    a.delete_topology().await.unwrap();
    a.close().await;
}
