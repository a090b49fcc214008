//! The store's record state machine and GCRA buckets behave the same on both backends: the in-memory default and a real redis-server.

mod support;

use std::time::Duration;

use support::redis::RedisServer;
use yungate::store::{
    Claim, ClaimTerms, Completed, Expect, Initialise, Initialised, Limit, MemoryLimits, MemoryStore, RateDecision,
    RecordState, RedisStore, Store, Window,
};

const LEASE: Duration = Duration::from_millis(300);
const ZERO: Duration = Duration::ZERO;

fn terms(fingerprint: &str) -> ClaimTerms {
    ClaimTerms {
        fingerprint: fingerprint.into(),
        lease: LEASE,
        retention: Duration::from_secs(60),
        attempt: Duration::from_secs(5),
        subject: br#"{"section":"4.2.2","bizOrderNo":"o1","member":"u1","amount":100}"#.to_vec(),
    }
}

fn unknown(claim: Claim) -> Duration {
    match claim {
        Claim::Unknown { settle_left, .. } => settle_left,
        other => panic!("expected unknown, got {other:?}"),
    }
}

async fn records(store: &dyn Store, prefix: &str) {
    let (fp1, fp2) = (terms("fp1"), terms("fp2"));
    let key = format!("yg:idem:{{{prefix}:4.2.2:A}}");
    completion_checks_the_subject(store, prefix).await;
    the_resolvers_operations(store, prefix).await;
    journals(store, prefix).await;
    // First claim: the record is the claimer's.
    assert_eq!(store.claim(&key, "t1", &fp1).await.unwrap(), Claim::Fresh);
    // The same request while the lease lives: busy, for at most the lease.
    match store.claim(&key, "t2", &fp1).await.unwrap() {
        Claim::Busy { retry_after } => assert!(retry_after <= LEASE, "{retry_after:?}"),
        other => panic!("expected busy, got {other:?}"),
    }
    // Another request with the same key: refused whatever the state.
    assert_eq!(store.claim(&key, "t3", &fp2).await.unwrap(), Claim::Mismatch);
    // Only the holder may renew or finish.
    assert!(!store.renew(&key, "t2", LEASE).await.unwrap());
    assert!(store.renew(&key, "t1", LEASE).await.unwrap());
    assert!(!store.complete(&key, "t2", b"x", fp1.retention).await.unwrap());
    assert!(
        store
            .complete(&key, "t1", b"{\"answer\":1}", fp1.retention)
            .await
            .unwrap()
    );
    // The holder's retry of its completion (its reply lost on the way) succeeds; nobody else's does.
    assert!(
        store
            .complete(&key, "t1", b"{\"answer\":1}", fp1.retention)
            .await
            .unwrap()
    );
    assert!(
        !store
            .complete(&key, "t2", b"{\"answer\":1}", fp1.retention)
            .await
            .unwrap()
    );
    // Nor a "retry" with another outcome: the first one stands.
    assert!(
        !store
            .complete(&key, "t1", b"{\"answer\":2}", fp1.retention)
            .await
            .unwrap()
    );
    assert_eq!(
        store.claim(&key, "t4", &fp1).await.unwrap(),
        Claim::Done(b"{\"answer\":1}".to_vec())
    );
    assert_eq!(store.claim(&key, "t5", &fp2).await.unwrap(), Claim::Mismatch);
    // A finished record cannot be released, marked, renewed or resent by anyone.
    assert!(!store.release(&key, "t1").await.unwrap());
    assert!(!store.mark_unknown(&key, "t1", Window::Closed).await.unwrap());
    assert!(!store.renew(&key, "t1", LEASE).await.unwrap());
    assert!(!store.sending(&key, "t1", LEASE).await.unwrap());

    // A lapsed lease: the next claimer takes over, as of unknown outcome
    // (the attempt may still be under way for most of `attempt`), and the
    // lapsed holder can no longer write anything.
    let lapsed = format!("yg:idem:{{{prefix}:4.2.2:B}}");
    assert_eq!(store.claim(&lapsed, "old", &fp1).await.unwrap(), Claim::Fresh);
    tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    let left = unknown(store.claim(&lapsed, "new", &fp1).await.unwrap());
    assert!(
        left > Duration::from_secs(4) && left <= Duration::from_secs(5),
        "{left:?}"
    );
    assert!(!store.complete(&lapsed, "old", b"late", fp1.retention).await.unwrap());
    assert!(!store.renew(&lapsed, "old", LEASE).await.unwrap());
    assert!(!store.mark_unknown(&lapsed, "old", Window::Closed).await.unwrap());
    assert!(!store.release(&lapsed, "old").await.unwrap());
    assert!(store.complete(&lapsed, "new", b"ok", fp1.retention).await.unwrap());

    // Marked unknown: the next claim at once is the resolver's, told how
    // long the provider may still act on the attempt.
    let marked = format!("yg:idem:{{{prefix}:4.2.2:C}}");
    assert_eq!(store.claim(&marked, "a", &fp1).await.unwrap(), Claim::Fresh);
    // An answered attempt closes the window.
    assert!(store.mark_unknown(&marked, "a", Window::Closed).await.unwrap());
    assert_eq!(unknown(store.claim(&marked, "b", &fp1).await.unwrap()), ZERO);
    // An unanswered one opens it for the settle time from now...
    let open = |d| Window::Open(d);
    assert!(
        store
            .mark_unknown(&marked, "b", open(Duration::from_secs(2)))
            .await
            .unwrap()
    );
    let left = unknown(store.claim(&marked, "c", &fp1).await.unwrap());
    assert!(
        left > Duration::from_millis(1500) && left <= Duration::from_secs(2),
        "{left:?}"
    );
    // ...a run that sends nothing keeps it as it is...
    assert!(store.mark_unknown(&marked, "c", Window::Keep).await.unwrap());
    let kept = unknown(store.claim(&marked, "d", &fp1).await.unwrap());
    assert!(kept > Duration::from_millis(1400) && kept <= left, "{kept:?}");
    // ...and an exchange that just ended replaces it (the claim's window covered the exchange).
    assert!(
        store
            .mark_unknown(&marked, "d", open(Duration::from_millis(10)))
            .await
            .unwrap()
    );
    let now_short = unknown(store.claim(&marked, "e", &fp1).await.unwrap());
    assert!(now_short <= Duration::from_millis(10), "{now_short:?}");
    // Sending again restarts it from now.
    assert!(store.sending(&marked, "e", Duration::from_secs(3)).await.unwrap());
    assert!(store.mark_unknown(&marked, "e", Window::Keep).await.unwrap());
    let resent = unknown(store.claim(&marked, "d", &fp1).await.unwrap());
    assert!(resent > Duration::from_millis(2500), "{resent:?}");
    // Released (nothing was sent): forgotten, the next claim is fresh.
    assert!(store.release(&marked, "d").await.unwrap());
    assert_eq!(store.claim(&marked, "e", &fp1).await.unwrap(), Claim::Fresh);

    // Retention: a finished record goes when its window ends, never before.
    let short = format!("yg:idem:{{{prefix}:4.2.2:D}}");
    assert_eq!(store.claim(&short, "a", &fp1).await.unwrap(), Claim::Fresh);
    assert!(
        store
            .complete(&short, "a", b"ok", Duration::from_millis(400))
            .await
            .unwrap()
    );
    assert!(matches!(store.claim(&short, "b", &fp1).await.unwrap(), Claim::Done(_)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.claim(&short, "c", &fp1).await.unwrap(), Claim::Fresh);
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

/// The memory store's ceilings: records (a new claim is refused, an existing one goes on,
/// expired records make room) and journal bytes (the least recently written go first).
#[tokio::test]
async fn the_memory_store_holds_at_most_its_limits() {
    let store = MemoryStore::bounded(MemoryLimits {
        records: 2,
        journal_bytes: 1024 * 1024,
    });
    let mut short = terms("fp");
    short.retention = Duration::from_millis(300);
    assert_eq!(
        store.claim("yg:idem:{c:4.2.2:A}", "t", &short).await.unwrap(),
        Claim::Fresh
    );
    assert_eq!(
        store.claim("yg:idem:{c:4.2.2:B}", "t", &terms("fp")).await.unwrap(),
        Claim::Fresh
    );
    assert_eq!(
        store.claim("yg:idem:{c:4.2.2:C}", "t", &terms("fp")).await.unwrap(),
        Claim::Full
    );
    assert!(matches!(
        store.claim("yg:idem:{c:4.2.2:B}", "u", &terms("fp")).await.unwrap(),
        Claim::Busy { .. }
    ));
    // Expired records make room; at the ceiling they are looked for once a second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        store.claim("yg:idem:{c:4.2.2:C}", "t", &terms("fp")).await.unwrap(),
        Claim::Fresh
    );
    // 2 000 journals of 1 KiB each: at most 1 MiB is kept, the newest.
    let entry = vec![b'x'; 1024];
    for n in 0..2_000 {
        store
            .journal_append(&format!("yg:tl:{{c:{n}}}"), &entry, Duration::from_secs(60), 10)
            .await
            .unwrap();
    }
    let mut kept = 0;
    for n in 0..2_000 {
        kept += store.journal_read(&format!("yg:tl:{{c:{n}}}")).await.unwrap().len();
    }
    assert!((900..=1024).contains(&kept), "{kept} KiB kept");
    assert_eq!(
        store.journal_read("yg:tl:{c:1999}").await.unwrap().len(),
        1,
        "the newest stays"
    );
    assert!(
        store.journal_read("yg:tl:{c:0}").await.unwrap().is_empty(),
        "the oldest went"
    );
}

#[tokio::test]
async fn redis_store() {
    let server = RedisServer::start();
    let store = RedisStore::open(&server.url(), Duration::from_secs(2)).unwrap();
    // A new Redis has no identity marker: nothing is claimed until it is initialised.
    assert_eq!(store.identity().await.unwrap(), None);
    assert_eq!(
        store.claim("yg:idem:{r:4.2.2:I}", "t", &terms("fp")).await.unwrap(),
        Claim::Uninitialised
    );
    let Initialised::Created(first) = store.initialise(Initialise::FirstDeployment).await.unwrap() else {
        panic!("a new store is initialised");
    };
    assert_eq!(first.lost_at_ms, None);
    // Initialising again writes nothing: the marker is never replaced.
    assert_eq!(
        store.initialise(Initialise::AcknowledgeLoss).await.unwrap(),
        Initialised::Existing(first.clone())
    );
    assert_eq!(store.identity().await.unwrap(), Some(first));
    records(&store, "r").await;
    buckets(&store, "r").await;
}

#[tokio::test]
async fn the_memory_store_is_never_uninitialised() {
    // It lives exactly as long as its records: what a restart forgets, it says by being new.
    let store = MemoryStore::new();
    let identity = store.identity().await.unwrap().unwrap();
    assert_eq!(identity.lost_at_ms, None);
    assert_eq!(
        store.initialise(Initialise::AcknowledgeLoss).await.unwrap(),
        Initialised::Existing(identity)
    );
    assert_eq!(store.claim("k", "t", &terms("fp")).await.unwrap(), Claim::Fresh);
}

#[tokio::test]
async fn redis_store_fails_fast_when_redis_is_down_and_recovers_by_itself() {
    let mut server = RedisServer::start();
    let store = RedisStore::open(&server.url(), Duration::from_millis(300)).unwrap();
    store.initialise(Initialise::FirstDeployment).await.unwrap();
    let key = "yg:idem:{d:4.2.2:A}";
    let fp = terms("fp");
    assert_eq!(store.claim(key, "t", &fp).await.unwrap(), Claim::Fresh);
    server.kill();
    let started = std::time::Instant::now();
    assert!(store.claim(key, "t2", &fp).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    server.restart();
    // The connection comes back without a new store. This test server keeps
    // nothing across a restart (`--save ""`), as a Redis without persistence
    // would: the claim it lost must not read as "never sent", so the store
    // says it lost its marker, and nothing is claimed.
    let mut claimed = None;
    for _ in 0..50 {
        if let Ok(c) = store.claim(key, "t3", &fp).await {
            claimed = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(claimed, Some(Claim::Uninitialised));
    // An operator acknowledges the loss: claims go on, and the marker says since when.
    let Initialised::Created(after) = store.initialise(Initialise::AcknowledgeLoss).await.unwrap() else {
        panic!("the lost store is given a new marker");
    };
    assert!(after.lost_at_ms.is_some());
    assert_eq!(store.claim(key, "t4", &fp).await.unwrap(), Claim::Fresh);
    // A FLUSHALL is a loss too.
    let mut admin = server.client().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut admin).await.unwrap();
    assert_eq!(store.identity().await.unwrap(), None);
    assert_eq!(store.claim(key, "t5", &fp).await.unwrap(), Claim::Uninitialised);
}

/// An unknown record is completed from outside only by what is about its
/// own request: another payer or amount (an older order with the same
/// number) leaves it unknown.
async fn completion_checks_the_subject(store: &dyn Store, prefix: &str) {
    let key = format!("yg:idem:{{{prefix}:4.2.2:S}}");
    let expect = |member: Option<&str>, amount: Option<i64>| Expect {
        member: member.map(str::to_owned),
        amount,
    };
    // Nothing there, or held: nothing to complete.
    let held = terms("fp");
    let nothing = expect(Some("u1"), Some(100));
    assert_eq!(
        store
            .complete_unknown(&key, b"x", held.retention, &nothing)
            .await
            .unwrap(),
        Completed::NotUnknown
    );
    // Read without taking (reconciliation): none, held, unknown, done.
    assert_eq!(store.inspect(&key).await.unwrap(), None);
    assert_eq!(store.claim(&key, "t1", &held).await.unwrap(), Claim::Fresh);
    let seen = store.inspect(&key).await.unwrap().expect("a held record");
    assert_eq!(
        (seen.state, seen.subject.as_slice()),
        (RecordState::Pending, held.subject.as_slice())
    );
    assert_eq!(
        store
            .complete_unknown(&key, b"x", held.retention, &nothing)
            .await
            .unwrap(),
        Completed::NotUnknown
    );
    assert!(store.mark_unknown(&key, "t1", Window::Closed).await.unwrap());
    assert_eq!(
        store.inspect(&key).await.unwrap().map(|r| r.state),
        Some(RecordState::Unknown)
    );
    for other in [
        expect(Some("u2"), Some(100)),
        expect(Some("u1"), Some(500)),
        expect(None, Some(1)),
    ] {
        assert_eq!(
            store
                .complete_unknown(&key, b"x", held.retention, &other)
                .await
                .unwrap(),
            Completed::Mismatch,
            "{other:?}"
        );
    }
    // Unchecked fields agree; the matching outcome completes it.
    assert_eq!(
        store
            .complete_unknown(&key, b"{\"ok\":1}", held.retention, &expect(None, Some(100)))
            .await
            .unwrap(),
        Completed::Done
    );
    let done = store.inspect(&key).await.unwrap().expect("a finished record");
    assert_eq!(
        (done.state, done.outcome.as_slice()),
        (RecordState::Done, b"{\"ok\":1}".as_slice())
    );
    assert_eq!(
        store.claim(&key, "t2", &held).await.unwrap(),
        Claim::Done(b"{\"ok\":1}".to_vec())
    );
}

/// What the resolver does to records: finds the due ones, takes one as a
/// claim (never a held one), gives it back for later, and counts them.
async fn the_resolvers_operations(store: &dyn Store, prefix: &str) {
    let key = format!("yg:idem:{{{prefix}:4.2.2:R}}");
    let t = terms("fp-r");
    assert_eq!(store.claim(&key, "owner", &t).await.unwrap(), Claim::Fresh);
    // Held by a live owner: not due, not taken.
    assert!(!store.due_unknown(100).await.unwrap().contains(&key));
    assert_eq!(store.take_unknown(&key, "resolver", LEASE).await.unwrap(), None);
    // Unknown with its window over: due, and counted.
    assert!(store.mark_unknown(&key, "owner", Window::Closed).await.unwrap());
    assert!(store.due_unknown(100).await.unwrap().contains(&key));
    let stats = store.unknown_stats(Duration::from_secs(60)).await.unwrap();
    assert!(
        stats.count >= 1 && stats.by_section.get("4.2.2").copied().unwrap_or(0) >= 1,
        "{stats:?}"
    );
    let taken = store
        .take_unknown(&key, "resolver", LEASE)
        .await
        .unwrap()
        .expect("taken");
    assert_eq!((taken.subject, taken.tries), (t.subject.clone(), 0));
    // Taken is held: a caller waits, and a second look does not take it.
    assert!(matches!(
        store.claim(&key, "caller", &t).await.unwrap(),
        Claim::Busy { .. }
    ));
    assert_eq!(store.take_unknown(&key, "other", LEASE).await.unwrap(), None);
    // Given back for later: not due now, taken again then, with one try counted.
    assert!(!store.defer_unknown(&key, "other", ZERO).await.unwrap());
    assert!(
        store
            .defer_unknown(&key, "resolver", Duration::from_millis(200))
            .await
            .unwrap()
    );
    assert!(!store.due_unknown(100).await.unwrap().contains(&key));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.due_unknown(100).await.unwrap().contains(&key));
    let again = store
        .take_unknown(&key, "resolver2", LEASE)
        .await
        .unwrap()
        .expect("taken again");
    assert_eq!(again.tries, 1);
    // Settled: it leaves the index.
    assert!(store.complete(&key, "resolver2", b"{}", t.retention).await.unwrap());
    assert!(!store.due_unknown(100).await.unwrap().contains(&key));
    assert_eq!(
        store
            .unknown_stats(Duration::from_secs(60))
            .await
            .unwrap()
            .by_section
            .get("4.2.2"),
        None
    );
    // Proved absent by a look: out of the indexes, and the next claim may send
    // without asking (once: the mark is that claim's alone).
    let absent = format!("yg:idem:{{{prefix}:4.2.2:P}}");
    assert_eq!(store.claim(&absent, "owner", &t).await.unwrap(), Claim::Fresh);
    assert!(store.mark_unknown(&absent, "owner", Window::Closed).await.unwrap());
    store
        .take_unknown(&absent, "look", LEASE)
        .await
        .unwrap()
        .expect("taken");
    assert!(store.prove_absent(&absent, "look").await.unwrap());
    assert!(!store.due_unknown(100).await.unwrap().contains(&absent));
    assert_eq!(
        store.claim(&absent, "retry", &t).await.unwrap(),
        Claim::Unknown {
            settle_left: ZERO,
            proved_absent: true
        }
    );
    assert!(store.mark_unknown(&absent, "retry", Window::Closed).await.unwrap());
    assert_eq!(
        store.claim(&absent, "retry2", &t).await.unwrap(),
        Claim::Unknown {
            settle_left: ZERO,
            proved_absent: false
        }
    );
    // One sweep at a time: the lease is its holder's until it lapses.
    assert!(store.lease("resolver", "a", LEASE).await.unwrap());
    assert!(store.lease("resolver", "a", LEASE).await.unwrap());
    assert!(!store.lease("resolver", "b", LEASE).await.unwrap());
    // Each name is a lease of its own: a reconciliation run does not wait for the sweep.
    assert!(store.lease("reconciliation", "b", LEASE).await.unwrap());
    assert!(!store.lease("reconciliation", "a", LEASE).await.unwrap());
    tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    assert!(store.lease("resolver", "b", LEASE).await.unwrap());
}

/// Journals (the order timeline): appended in order, capped to the newest, gone after their retention.
async fn journals(store: &dyn Store, prefix: &str) {
    let key = format!("yg:tl:{{{prefix}:J}}");
    for n in 0..5u8 {
        store
            .journal_append(&key, &[b'0' + n], Duration::from_millis(400), 3)
            .await
            .unwrap();
    }
    assert_eq!(
        store.journal_read(&key).await.unwrap(),
        [b"2".to_vec(), b"3".to_vec(), b"4".to_vec()]
    );
    assert!(store.journal_read("yg:tl:{none}").await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(store.journal_read(&key).await.unwrap().is_empty());
}
