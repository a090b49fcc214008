//! The store's record state machine and GCRA buckets behave the same on both backends: the in-memory default and a real redis-server.

mod support;

use std::time::Duration;

use support::redis::RedisServer;
use yungate::store::{Claim, Limit, MemoryStore, RateDecision, RedisStore, Store};

const LEASE: Duration = Duration::from_millis(300);
const KEEP: Duration = Duration::from_secs(60);

async fn records(store: &dyn Store, prefix: &str) {
    let key = format!("yg:idem:{{{prefix}:4.2.2:A}}");
    // First claim: the record is the claimer's.
    assert_eq!(store.claim(&key, "fp1", "t1", LEASE, KEEP).await.unwrap(), Claim::Fresh);
    // The same request while the lease lives: busy, for at most the lease.
    match store.claim(&key, "fp1", "t2", LEASE, KEEP).await.unwrap() {
        Claim::Busy { retry_after } => assert!(retry_after <= LEASE, "{retry_after:?}"),
        other => panic!("expected busy, got {other:?}"),
    }
    // Another request with the same key: refused whatever the state.
    assert_eq!(
        store.claim(&key, "fp2", "t3", LEASE, KEEP).await.unwrap(),
        Claim::Mismatch
    );
    // Only the holder may renew or finish.
    assert!(!store.renew(&key, "t2", LEASE).await.unwrap());
    assert!(store.renew(&key, "t1", LEASE).await.unwrap());
    assert!(!store.complete(&key, "t2", b"x", KEEP).await.unwrap());
    assert!(store.complete(&key, "t1", b"{\"answer\":1}", KEEP).await.unwrap());
    assert_eq!(
        store.claim(&key, "fp1", "t4", LEASE, KEEP).await.unwrap(),
        Claim::Done(b"{\"answer\":1}".to_vec())
    );
    assert_eq!(
        store.claim(&key, "fp2", "t5", LEASE, KEEP).await.unwrap(),
        Claim::Mismatch
    );
    // A finished record cannot be released, marked or renewed by anyone.
    assert!(!store.release(&key, "t1").await.unwrap());
    assert!(!store.mark_unknown(&key, "t1").await.unwrap());

    // A lapsed lease: the next claimer takes over, as of unknown outcome,
    // and the lapsed holder can no longer write.
    let lapsed = format!("yg:idem:{{{prefix}:4.2.2:B}}");
    assert_eq!(
        store.claim(&lapsed, "fp", "old", LEASE, KEEP).await.unwrap(),
        Claim::Fresh
    );
    tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    assert_eq!(
        store.claim(&lapsed, "fp", "new", LEASE, KEEP).await.unwrap(),
        Claim::Unknown
    );
    assert!(!store.complete(&lapsed, "old", b"late", KEEP).await.unwrap());
    assert!(store.complete(&lapsed, "new", b"ok", KEEP).await.unwrap());

    // Marked unknown: the next claim at once is the resolver's.
    let unknown = format!("yg:idem:{{{prefix}:4.2.2:C}}");
    assert_eq!(
        store.claim(&unknown, "fp", "a", LEASE, KEEP).await.unwrap(),
        Claim::Fresh
    );
    assert!(store.mark_unknown(&unknown, "a").await.unwrap());
    assert_eq!(
        store.claim(&unknown, "fp", "b", LEASE, KEEP).await.unwrap(),
        Claim::Unknown
    );
    // Released (nothing was sent): forgotten, the next claim is fresh.
    assert!(store.release(&unknown, "b").await.unwrap());
    assert_eq!(
        store.claim(&unknown, "fp", "c", LEASE, KEEP).await.unwrap(),
        Claim::Fresh
    );

    // Retention: a finished record goes when its window ends, never before.
    let short = format!("yg:idem:{{{prefix}:4.2.2:D}}");
    assert_eq!(store.claim(&short, "fp", "a", LEASE, KEEP).await.unwrap(), Claim::Fresh);
    assert!(
        store
            .complete(&short, "a", b"ok", Duration::from_millis(400))
            .await
            .unwrap()
    );
    assert!(matches!(
        store.claim(&short, "fp", "b", LEASE, KEEP).await.unwrap(),
        Claim::Done(_)
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.claim(&short, "fp", "c", LEASE, KEEP).await.unwrap(), Claim::Fresh);
}

async fn buckets(store: &dyn Store, prefix: &str) {
    let bucket = format!("yg:rate:{{{prefix}:provider:all:order}}");
    let limit = Limit {
        per_second: 10,
        burst: 5,
    };
    for i in 0..5 {
        assert_eq!(
            store.acquire(&bucket, limit).await.unwrap(),
            RateDecision::Allowed,
            "request {i}"
        );
    }
    let RateDecision::Limited { retry_after } = store.acquire(&bucket, limit).await.unwrap() else {
        panic!("the sixth request of a burst of 5 must be limited");
    };
    // One emission interval (1/10 s) at most, minus the time the burst took.
    assert!(
        retry_after > Duration::ZERO && retry_after <= Duration::from_millis(100),
        "{retry_after:?}"
    );
    tokio::time::sleep(retry_after + Duration::from_millis(5)).await;
    assert_eq!(store.acquire(&bucket, limit).await.unwrap(), RateDecision::Allowed);
    // Another bucket is independent.
    let other = format!("yg:rate:{{{prefix}:provider:all:query}}");
    assert_eq!(store.acquire(&other, limit).await.unwrap(), RateDecision::Allowed);
}

#[tokio::test]
async fn memory_store() {
    let store = MemoryStore::new();
    records(&store, "m").await;
    buckets(&store, "m").await;
}

#[tokio::test]
async fn redis_store() {
    let server = RedisServer::start();
    let store = RedisStore::open(&server.url(), Duration::from_secs(2)).unwrap();
    records(&store, "r").await;
    buckets(&store, "r").await;
}

#[tokio::test]
async fn redis_store_fails_fast_when_redis_is_down_and_recovers_by_itself() {
    let mut server = RedisServer::start();
    let store = RedisStore::open(&server.url(), Duration::from_millis(300)).unwrap();
    let key = "yg:idem:{d:4.2.2:A}";
    assert_eq!(store.claim(key, "fp", "t", LEASE, KEEP).await.unwrap(), Claim::Fresh);
    server.kill();
    let started = std::time::Instant::now();
    assert!(store.claim(key, "fp", "t2", LEASE, KEEP).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    server.restart();
    // The connection comes back without a new store; the old data is gone with the old server.
    let mut claimed = None;
    for _ in 0..50 {
        if let Ok(c) = store.claim(key, "fp", "t3", LEASE, KEEP).await {
            claimed = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(claimed, Some(Claim::Fresh));
}
