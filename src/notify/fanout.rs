//! One subscription's delivery loop: fetch from the log what this consumer may hold, skip (acknowledge) what its filter does not want, hand the rest to a bounded channel, wait for changes.
//!
//! Flow control: the log counts this consumer's unacknowledged events and a
//! fetch takes at most `room` minus those, and the channel to the gRPC
//! stream holds at most `room`: a slow subscriber stops the fetching, never
//! makes the gateway buffer. A store outage pauses the loop (it retries
//! with back-off); a group that vanished is made again after the last event
//! this loop handed out. Whatever was fetched and not handed out stays
//! pending and is redelivered after the visibility timeout.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::store::notifications::{Cursor, Delivery, FetchTerms, LogError, NotificationLog, Record, Start};
use crate::telemetry::Metrics;

/// Which events a subscription wants; empty parts match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub services: Vec<String>,
    pub methods: Vec<String>,
    pub biz_user_id: Option<String>,
    pub biz_order_no: Option<String>,
}

impl Filter {
    pub fn matches(&self, record: &Record) -> bool {
        (self.services.is_empty() || self.services.contains(&record.service))
            && (self.methods.is_empty() || self.methods.contains(&record.method))
            && self
                .biz_user_id
                .as_ref()
                .is_none_or(|u| record.biz_user_id.as_ref() == Some(u))
            && self
                .biz_order_no
                .as_ref()
                .is_none_or(|o| record.biz_order_no.as_ref() == Some(o))
    }

    /// The filter as the log binds it to a subscriber: JSON with sorted,
    /// distinct values and no empty parts, so that equal filters are equal
    /// text (and an operator can read it in an error).
    pub fn canonical(&self) -> String {
        let sorted = |values: &[String]| {
            let mut v = values.to_vec();
            v.sort();
            v.dedup();
            v
        };
        let mut out = serde_json::Map::new();
        if !self.services.is_empty() {
            out.insert("services".into(), sorted(&self.services).into());
        }
        if !self.methods.is_empty() {
            out.insert("methods".into(), sorted(&self.methods).into());
        }
        if let Some(u) = &self.biz_user_id {
            out.insert("bizUserId".into(), u.clone().into());
        }
        if let Some(o) = &self.biz_order_no {
            out.insert("bizOrderNo".into(), o.clone().into());
        }
        serde_json::Value::Object(out).to_string()
    }
}

/// Who receives, and what.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub subscriber: String,
    pub consumer: String,
    pub filter: Filter,
}

/// What a subscription's channel carries besides the end of the stream
/// (the gateway stopping ends it from the gRPC side).
#[derive(Debug)]
pub enum Feed {
    Delivery(Box<Delivery>),
    /// The stream cannot go on (its position expired, its filter no longer
    /// fits the subscriber): ends it with this error.
    Failed(LogError),
}

/// How a wait ended.
enum Woken {
    /// Look again.
    Again,
    /// The stream ended, or the gateway is stopping: leave.
    Leave,
}

/// Waits for `wait` unless the stream ends or the gateway stops first.
/// A dropped shutdown sender counts as stopping, never as a change.
async fn pause(wait: Duration, shutdown: &mut watch::Receiver<bool>, tx: &mpsc::Sender<Feed>) -> Woken {
    tokio::select! {
        _ = tokio::time::sleep(wait) => Woken::Again,
        changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { Woken::Leave } else { Woken::Again },
        _ = tx.closed() => Woken::Leave,
    }
}

/// Runs until the receiving side of `tx` is dropped (the stream ended),
/// `shutdown` turns true (or its sender goes), or the log refuses the
/// subscription (then it sends [`Feed::Failed`]).
pub async fn run(
    log: Arc<dyn NotificationLog>,
    subscription: Subscription,
    terms: FetchTerms,
    tx: mpsc::Sender<Feed>,
    mut shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    deliver(&*log, &subscription, terms, &tx, &mut shutdown, &metrics).await;
    let _ = log.leave(&subscription.subscriber, &subscription.consumer).await;
}

/// Ends the stream with `error`, waiting for room behind what the channel
/// already holds (dropped, the stream would end without saying why).
async fn fail(error: LogError, subscriber: &str, tx: &mpsc::Sender<Feed>, shutdown: &mut watch::Receiver<bool>) {
    tracing::warn!(subscriber = %subscriber, error = %error, "subscription ended");
    tokio::select! {
        _ = tx.send(Feed::Failed(error)) => {}
        _ = shutdown.changed() => {}
    }
}

async fn deliver(
    log: &dyn NotificationLog,
    subscription: &Subscription,
    terms: FetchTerms,
    tx: &mpsc::Sender<Feed>,
    shutdown: &mut watch::Receiver<bool>,
    metrics: &Metrics,
) {
    let Subscription {
        subscriber,
        consumer,
        filter,
    } = subscription;
    let filter_key = &filter.canonical();
    let mut changes = log.changes();
    // Redeliveries fall due without any append: look again this often.
    let poll = (terms.visibility / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut backoff = Duration::from_millis(100);
    // The newest cursor handed out: where a lost group is made again.
    let mut handed_out: Option<Cursor> = None;
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        changes.borrow_and_update();
        let fetched = match log.fetch(subscriber, consumer, terms).await {
            Ok(fetched) => fetched,
            // A store that lost its data ends the stream with the reason:
            // never a fresh start that would hide what the loss took.
            Err(
                e @ (LogError::CursorExpired { .. } | LogError::FilterMismatch { .. } | LogError::StoreUninitialised),
            ) => {
                fail(e, subscriber, tx, shutdown).await;
                return;
            }
            Err(LogError::NoSubscriber(_)) => {
                tracing::warn!(subscriber = %subscriber, after = ?handed_out, "the subscriber's position is gone from the store: making it again");
                let again = match handed_out {
                    Some(c) => match log.join(subscriber, Start::After(c), filter_key).await {
                        Err(LogError::CursorAhead { .. }) => log.join(subscriber, Start::Resume, filter_key).await,
                        other => other,
                    },
                    None => log.join(subscriber, Start::Resume, filter_key).await,
                };
                match again {
                    Ok(()) => {}
                    Err(
                        e @ (LogError::CursorExpired { .. }
                        | LogError::FilterMismatch { .. }
                        | LogError::StoreUninitialised),
                    ) => {
                        fail(e, subscriber, tx, shutdown).await;
                        return;
                    }
                    Err(e) => tracing::warn!(subscriber = %subscriber, error = %e, "cannot make the subscriber again"),
                }
                if let Woken::Leave = pause(backoff, shutdown, tx).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
            Err(e) => {
                tracing::warn!(subscriber = %subscriber, error = %e, "cannot fetch notifications: retrying");
                if let Woken::Leave = pause(backoff, shutdown, tx).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if !fetched.dead_lettered.is_empty() {
            metrics.notifications_dead_lettered(subscriber, fetched.dead_lettered.len());
            tracing::warn!(
                subscriber = %subscriber,
                count = fetched.dead_lettered.len(),
                max_deliveries = terms.max_deliveries,
                "events moved to the dead-letter list: delivered too often without an ack, or trimmed unacknowledged"
            );
        }
        let took = !fetched.deliveries.is_empty();
        let mut unwanted = Vec::new();
        for delivery in fetched.deliveries {
            let cursor = delivery.entry.cursor;
            if !filter.matches(&delivery.entry.record) {
                unwanted.push(cursor);
                continue;
            }
            // Unsent when the gateway stops: it stays pending and is redelivered.
            tokio::select! {
                sent = tx.send(Feed::Delivery(Box::new(delivery))) => if sent.is_err() { return },
                _ = shutdown.changed() => return,
            }
            handed_out = handed_out.max(Some(cursor));
        }
        if !unwanted.is_empty()
            && let Err(e) = log.ack(subscriber, &unwanted).await
        {
            // They come back after the visibility timeout and are skipped then.
            tracing::warn!(subscriber = %subscriber, error = %e, "cannot acknowledge filtered events");
        }
        if took {
            continue;
        }
        tokio::select! {
            _ = changes.changed() => {}
            woken = pause(poll, shutdown, tx) => if let Woken::Leave = woken { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::notifications::MemoryLog;

    fn record(n: usize) -> Record {
        Record {
            id: format!("id-{n}"),
            service: "OrderService".into(),
            method: "pay".into(),
            biz_order_no: None,
            biz_user_id: None,
            timestamp: String::new(),
            version: "1.0".into(),
            rps: "{}".into(),
            trace: None,
        }
    }

    #[tokio::test]
    async fn an_expiry_behind_a_full_channel_still_reaches_the_stream() {
        let log: Arc<dyn NotificationLog> = Arc::new(MemoryLog::with_capacity(Duration::from_secs(3600), 2));
        log.join("s", Start::Resume, "{}").await.unwrap();
        log.append(&record(0)).await.unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let (_stop, shutdown) = watch::channel(false);
        let subscription = Subscription {
            subscriber: "s".into(),
            consumer: "c".into(),
            filter: Filter::default(),
        };
        let terms = FetchTerms {
            room: 1,
            visibility: Duration::from_secs(60),
            max_deliveries: 3,
        };
        let task = tokio::spawn(run(
            Arc::clone(&log),
            subscription,
            terms,
            tx,
            shutdown,
            Metrics::new(&[]),
        ));
        // The first event fills the channel; the subscriber does not read yet.
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Capacity 2: these trim the event after the subscriber's position that it never read.
        for n in 1..4 {
            log.append(&record(n)).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(matches!(rx.recv().await, Some(Feed::Delivery(_))));
        assert!(matches!(
            tokio::time::timeout(Duration::from_secs(5), rx.recv()).await,
            Ok(Some(Feed::Failed(LogError::CursorExpired { .. })))
        ));
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
