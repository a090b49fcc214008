//! The notification log's semantics, the same on both backends (in memory and a real redis-server), driven through its trait with retention and visibility short enough to watch them act.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::redis::RedisServer;
use yungate::store::notifications::{
    Cursor, DeliveryState, FetchTerms, ListQuery, LogError, MemoryLog, NotificationLog, Record, RedisLog, Start,
};

const VISIBILITY: Duration = Duration::from_millis(100);

/// Each case runs on a fresh log of each backend.
struct Backends {
    _redis: RedisServer,
    logs: Vec<(&'static str, Arc<dyn NotificationLog>)>,
}

fn backends(retention: Duration) -> Backends {
    let redis = RedisServer::initialised();
    let on_redis = RedisLog::open(&redis.url(), Duration::from_secs(2), "s1", retention).unwrap();
    Backends {
        logs: vec![
            ("memory", Arc::new(MemoryLog::new(retention))),
            ("redis", Arc::new(on_redis)),
        ],
        _redis: redis,
    }
}

fn record(n: usize) -> Record {
    Record {
        id: format!("id-{n}"),
        service: "OrderService".into(),
        method: "pay".into(),
        biz_order_no: Some(format!("order-{n}")),
        biz_user_id: None,
        timestamp: "2026-12-01 10:00:00".into(),
        version: "1.0".into(),
        rps: format!("{{\"n\":{n}}}"),
        trace: None,
    }
}

fn terms(room: usize, max_deliveries: u32) -> FetchTerms {
    FetchTerms {
        room,
        visibility: VISIBILITY,
        max_deliveries,
    }
}

const ALL: &str = "{}";

#[tokio::test]
async fn a_full_consumer_gets_its_own_stale_events_again_then_dead_letters_them() {
    for (name, log) in backends(Duration::from_secs(3600)).logs {
        log.join("s", Start::Resume, ALL).await.unwrap();
        let a = log.append(&record(1)).await.unwrap().cursor;
        log.append(&record(2)).await.unwrap();
        // Room for one, never acknowledged, the stream kept open.
        let first = log.fetch("s", "c1", terms(1, 3)).await.unwrap();
        assert_eq!(first.deliveries.len(), 1, "{name}");
        assert_eq!((first.deliveries[0].entry.cursor, first.deliveries[0].attempt), (a, 1));
        assert!(
            log.fetch("s", "c1", terms(1, 3)).await.unwrap().deliveries.is_empty(),
            "{name}: full"
        );
        for attempt in [2, 3] {
            tokio::time::sleep(VISIBILITY + Duration::from_millis(30)).await;
            let again = log.fetch("s", "c1", terms(1, 3)).await.unwrap();
            assert_eq!(again.deliveries.len(), 1, "{name}: its own stale event is due again");
            assert_eq!(
                (again.deliveries[0].entry.cursor, again.deliveries[0].attempt),
                (a, attempt)
            );
        }
        tokio::time::sleep(VISIBILITY + Duration::from_millis(30)).await;
        let last = log.fetch("s", "c1", terms(1, 3)).await.unwrap();
        assert_eq!(last.dead_lettered, vec![a], "{name}: after max_deliveries");
        assert_eq!(last.deliveries.len(), 1, "{name}: and the next event comes");
        assert_eq!(last.deliveries[0].entry.record.id, "id-2");
    }
}

#[tokio::test]
async fn a_position_behind_the_retention_is_expired_never_skipped() {
    let retention = Duration::from_millis(500);
    for (name, log) in backends(retention).logs {
        log.join("s", Start::Resume, ALL).await.unwrap();
        let before = log.append(&record(1)).await.unwrap().cursor;
        let a = log.append(&record(2)).await.unwrap().cursor;
        // Nothing read; the retention passes and the next append trims both.
        tokio::time::sleep(retention + Duration::from_millis(200)).await;
        let b = log.append(&record(3)).await.unwrap().cursor;
        match log.fetch("s", "c1", terms(10, 3)).await {
            Err(LogError::CursorExpired { resume_from, .. }) => assert_eq!(resume_from, a, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        // Exact: after the newest trimmed event nothing was lost; before it, something was.
        match log.join("t", Start::After(before), ALL).await {
            Err(LogError::CursorExpired { resume_from, .. }) => assert_eq!(resume_from, a, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert!(matches!(
            log.list(&ListQuery {
                after: Some(before),
                limit: 10,
                ..Default::default()
            })
            .await,
            Err(LogError::CursorExpired { .. })
        ));
        log.join("s", Start::After(a), ALL).await.unwrap();
        let got = log.fetch("s", "c1", terms(10, 3)).await.unwrap();
        assert_eq!(
            got.deliveries.iter().map(|d| d.entry.cursor).collect::<Vec<_>>(),
            vec![b],
            "{name}"
        );
        let listed = log
            .list(&ListQuery {
                after: Some(a),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "{name}");
    }
}

#[tokio::test]
async fn an_event_trimmed_unacknowledged_is_a_dead_letter_for_a_while() {
    let retention = Duration::from_millis(500);
    for (name, log) in backends(retention).logs {
        log.join("s", Start::Resume, ALL).await.unwrap();
        let a = log.append(&record(1)).await.unwrap().cursor;
        assert_eq!(log.fetch("s", "c1", terms(10, 3)).await.unwrap().deliveries.len(), 1);
        tokio::time::sleep(retention + Duration::from_millis(200)).await;
        log.append(&record(2)).await.unwrap();
        let fetched = log.fetch("s", "c2", terms(10, 3)).await.unwrap();
        assert_eq!(
            fetched.dead_lettered,
            vec![a],
            "{name}: gone from the stream, not from sight"
        );
        assert_eq!(fetched.deliveries.len(), 1, "{name}");
        let dead = log.dead_letters("s", None, 10).await.unwrap();
        assert_eq!(dead.len(), 1, "{name}");
        assert_eq!((dead[0].cursor, dead[0].entry.is_none()), (a, true), "{name}");
        assert_eq!(
            log.redrive("s", &[], VISIBILITY).await.unwrap(),
            0,
            "{name}: nothing to redeliver"
        );
        // Twice the retention after the event, the dead letter goes too.
        tokio::time::sleep(retention + Duration::from_millis(100)).await;
        log.fetch("s", "c2", terms(10, 3)).await.unwrap();
        assert!(log.dead_letters("s", None, 10).await.unwrap().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn redriving_all_moves_more_than_one_page() {
    for (name, log) in backends(Duration::from_secs(3600)).logs {
        log.join("s", Start::Resume, ALL).await.unwrap();
        let n = 1100;
        for i in 0..n {
            log.append(&record(i)).await.unwrap();
        }
        assert_eq!(log.fetch("s", "c1", terms(n, 1)).await.unwrap().deliveries.len(), n);
        tokio::time::sleep(VISIBILITY + Duration::from_millis(30)).await;
        let buried = log.fetch("s", "c1", terms(n, 1)).await.unwrap();
        assert_eq!(buried.dead_lettered.len(), n, "{name}");
        assert_eq!(log.redrive("s", &[], VISIBILITY).await.unwrap(), n, "{name}");
        assert!(log.dead_letters("s", None, 10).await.unwrap().is_empty(), "{name}");
        let back = log.fetch("s", "c2", terms(n, 3)).await.unwrap();
        assert_eq!(back.deliveries.len(), n, "{name}");
        assert!(
            back.deliveries.iter().all(|d| d.attempt == 1),
            "{name}: attempts start again"
        );
        let cursors: Vec<Cursor> = back.deliveries.iter().map(|d| d.entry.cursor).collect();
        assert_eq!(log.ack("s", &cursors[..1000]).await.unwrap(), 1000, "{name}");
    }
}

#[tokio::test]
async fn one_subscriber_keeps_one_filter() {
    for (name, log) in backends(Duration::from_secs(3600)).logs {
        let narrow = r#"{"bizOrderNo":"x"}"#;
        log.join("s", Start::Resume, narrow).await.unwrap();
        log.join("s", Start::Resume, narrow).await.unwrap();
        match log.join("s", Start::Resume, ALL).await {
            Err(LogError::FilterMismatch { existing, .. }) => assert_eq!(existing, narrow, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        // A refused join leaves nothing behind.
        let c = log.append(&record(1)).await.unwrap().cursor;
        assert!(matches!(
            log.join(
                "t",
                Start::After(Cursor {
                    ms: c.ms + 60_000,
                    seq: 0
                }),
                ALL
            )
            .await,
            Err(LogError::CursorAhead { .. })
        ));
        assert!(
            matches!(log.states("t", &[c]).await, Err(LogError::NoSubscriber(_))),
            "{name}"
        );
    }
}

#[tokio::test]
async fn unknown_subscribers_and_edge_cursors_are_answered_plainly() {
    for (name, log) in backends(Duration::from_secs(3600)).logs {
        let c = log.append(&record(1)).await.unwrap().cursor;
        for result in [
            log.dead_letters("nobody", None, 10).await.map(|_| ()),
            log.redrive("nobody", &[], VISIBILITY).await.map(|_| ()),
            log.states("nobody", &[c]).await.map(|_| ()),
        ] {
            assert!(matches!(result, Err(LogError::NoSubscriber(_))), "{name}: {result:?}");
        }
        let max = Cursor {
            ms: u64::MAX,
            seq: u64::MAX,
        };
        let listed = log
            .list(&ListQuery {
                after: Some(max),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(listed.is_empty(), "{name}");
        // Room 0 takes nothing and changes nothing.
        log.join("s", Start::After(Cursor::default()), ALL).await.unwrap();
        assert!(log.fetch("s", "c1", terms(0, 3)).await.unwrap().deliveries.is_empty());
        assert_eq!(
            log.states("s", &[c]).await.unwrap(),
            vec![DeliveryState::Waiting],
            "{name}"
        );
    }
}

#[tokio::test]
async fn consumers_left_with_nothing_are_forgotten_on_redis() {
    let redis = RedisServer::initialised();
    let log = RedisLog::open(&redis.url(), Duration::from_secs(2), "s1", Duration::from_secs(3600)).unwrap();
    log.join("s", Start::Resume, ALL).await.unwrap();
    log.append(&record(1)).await.unwrap();
    assert_eq!(
        log.fetch("s", "dead-instance", terms(10, 5))
            .await
            .unwrap()
            .deliveries
            .len(),
        1
    );
    tokio::time::sleep(VISIBILITY + Duration::from_millis(30)).await;
    assert_eq!(
        log.fetch("s", "live", terms(10, 5)).await.unwrap().deliveries[0].attempt,
        2
    );
    let mut conn = redis.client().get_multiplexed_async_connection().await.unwrap();
    let consumers: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg("yg:ntf:{s1}:stream")
        .arg("s")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(consumers.len(), 1, "only the live consumer is left: {consumers:?}");
}

#[tokio::test]
async fn an_events_trace_link_and_its_backlog_come_back_as_stored() {
    for (name, log) in backends(Duration::from_secs(3600)).logs {
        log.join("s", Start::Resume, ALL).await.unwrap();
        let traced = Record {
            trace: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            ..record(1)
        };
        log.append(&traced).await.unwrap();
        log.append(&record(2)).await.unwrap();
        log.append(&record(3)).await.unwrap();
        // Nothing fetched yet: three waiting, none pending.
        let before = log.backlog("s").await.unwrap();
        assert_eq!((before.pending, before.waiting, before.dead), (0, Some(3), 0), "{name}");
        let fetched = log.fetch("s", "c1", terms(2, 3)).await.unwrap();
        assert_eq!(
            fetched.deliveries[0].entry.record, traced,
            "{name}: the traceparent is kept"
        );
        assert_eq!(fetched.deliveries[1].entry.record.trace, None, "{name}");
        let after = log.backlog("s").await.unwrap();
        assert_eq!((after.pending, after.waiting, after.dead), (2, Some(1), 0), "{name}");
        assert!(log.backlog("nobody").await.is_err(), "{name}: no such subscriber");
    }
}

/// A Redis that lost its data (here a FLUSHALL; a restart without
/// persistence or a failover to an empty replica alike) never gives a
/// subscriber a fresh start that would hide the unacknowledged events it
/// took: until an operator acknowledges the loss the log says so, then the
/// subscriber hears CURSOR_EXPIRED and replays everything kept since.
#[tokio::test]
async fn a_lost_store_is_never_a_silent_fresh_start() {
    use yungate::store::{Initialise, RedisStore, Store};
    let redis = RedisServer::initialised();
    let log = RedisLog::open(&redis.url(), Duration::from_secs(2), "s1", Duration::from_secs(3600)).unwrap();
    log.join("s", Start::Resume, ALL).await.unwrap();
    log.append(&record(1)).await.unwrap();
    assert_eq!(log.fetch("s", "c", terms(10, 5)).await.unwrap().deliveries.len(), 1);
    let mut admin = redis.client().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut admin).await.unwrap();
    // Not acknowledged: the position proves nothing, nothing is made afresh.
    assert!(matches!(
        log.fetch("s", "c", terms(10, 5)).await,
        Err(LogError::StoreUninitialised)
    ));
    assert!(matches!(
        log.join("s", Start::Resume, ALL).await,
        Err(LogError::StoreUninitialised)
    ));
    // Notifications still come in meanwhile (the provider's retries would otherwise run out).
    log.append(&record(2)).await.unwrap();
    let store = RedisStore::open(&redis.url(), Duration::from_secs(2)).unwrap();
    store.initialise(Initialise::AcknowledgeLoss).await.unwrap();
    let expired = |r: Result<_, LogError>| matches!(r, Err(LogError::CursorExpired { cursor, resume_from }) if cursor == Cursor::default() && resume_from == Cursor::default());
    assert!(expired(log.fetch("s", "c", terms(10, 5)).await.map(|_| ())));
    assert!(expired(log.join("s", Start::Resume, ALL).await));
    // From resume_from: everything kept since the loss.
    log.join("s", Start::After(Cursor::default()), ALL).await.unwrap();
    let fetched = log.fetch("s", "c", terms(10, 5)).await.unwrap();
    assert_eq!(fetched.deliveries.len(), 1);
    assert_eq!(fetched.deliveries[0].entry.record.id, record(2).id);
}
