//! One subscription's delivery loop: fetch from the log what this consumer may hold, skip (acknowledge) what its filter does not want, hand the rest to a bounded channel, wait for changes.
//!
//! Flow control: the log counts this consumer's unacknowledged events and a
//! fetch takes at most `room` minus those, and the channel to the gRPC
//! stream holds at most `room`: a slow subscriber stops the fetching, never
//! makes the gateway buffer. A store outage pauses the loop (it retries
//! with back-off); a group that vanished (Redis lost its data) is made again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::store::notifications::{Delivery, FetchTerms, LogError, NotificationLog, Record, Start};

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
}

/// Who receives, and what.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub subscriber: String,
    pub consumer: String,
    pub filter: Filter,
}

/// What a subscription's channel carries.
#[derive(Debug)]
pub enum Feed {
    Delivery(Box<Delivery>),
    /// The gateway is stopping: the stream ends, the subscriber subscribes again.
    ShuttingDown,
}

/// Waits `backoff` (or until shutdown), then doubles it up to 2 s; true
/// when the stream has ended meanwhile.
async fn back_off(backoff: &mut Duration, shutdown: &mut watch::Receiver<bool>, tx: &mpsc::Sender<Feed>) -> bool {
    let ended = tokio::select! {
        _ = tokio::time::sleep(*backoff) => false,
        _ = shutdown.changed() => false,
        _ = tx.closed() => true,
    };
    *backoff = (*backoff * 2).min(Duration::from_secs(2));
    ended
}

/// Runs until the receiving side of `tx` is dropped (the stream ended) or
/// `shutdown` turns true (then it sends [`Feed::ShuttingDown`] and ends).
pub async fn run(
    log: Arc<dyn NotificationLog>,
    subscription: Subscription,
    terms: FetchTerms,
    tx: mpsc::Sender<Feed>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Subscription {
        subscriber,
        consumer,
        filter,
    } = subscription;
    let mut changes = log.changes();
    // Redeliveries fall due without any append: look again this often.
    let poll = (terms.visibility / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow_and_update() {
            let _ = tx.try_send(Feed::ShuttingDown);
            let _ = log.leave(&subscriber, &consumer).await;
            return;
        }
        changes.borrow_and_update();
        let took;
        match log.fetch(&subscriber, &consumer, terms).await {
            Ok(fetched) => {
                backoff = Duration::from_millis(100);
                if !fetched.dead_lettered.is_empty() {
                    tracing::warn!(
                        subscriber = %subscriber,
                        count = fetched.dead_lettered.len(),
                        max_deliveries = terms.max_deliveries,
                        "events moved to the dead-letter list: delivered too often without an ack"
                    );
                }
                took = !fetched.deliveries.is_empty();
                let mut unwanted = Vec::new();
                for delivery in fetched.deliveries {
                    if !filter.matches(&delivery.entry.record) {
                        unwanted.push(delivery.entry.cursor);
                        continue;
                    }
                    // Unsent when the gateway stops: it stays pending and is redelivered.
                    let sent = tokio::select! {
                        sent = tx.send(Feed::Delivery(Box::new(delivery))) => sent.is_ok(),
                        _ = shutdown.changed() => true,
                    };
                    if !sent {
                        let _ = log.leave(&subscriber, &consumer).await;
                        return;
                    }
                }
                if !unwanted.is_empty()
                    && let Err(e) = log.ack(&subscriber, &unwanted).await
                {
                    // They come back after the visibility timeout and are skipped then.
                    tracing::warn!(subscriber = %subscriber, error = %e, "cannot acknowledge filtered events");
                }
            }
            Err(LogError::NoSubscriber(_)) => {
                tracing::warn!(subscriber = %subscriber, "the subscriber's position is gone from the store: starting it again at the newest event");
                if let Err(e) = log.join(&subscriber, Start::Resume).await {
                    tracing::warn!(subscriber = %subscriber, error = %e, "cannot re-create the subscriber");
                }
                if back_off(&mut backoff, &mut shutdown, &tx).await {
                    return;
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(subscriber = %subscriber, error = %e, "cannot fetch notifications: retrying");
                if back_off(&mut backoff, &mut shutdown, &tx).await {
                    return;
                }
                continue;
            }
        }
        if took {
            continue;
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = tx.closed() => {
                let _ = log.leave(&subscriber, &consumer).await;
                return;
            }
        }
    }
}
