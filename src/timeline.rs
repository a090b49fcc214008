//! The order timeline: a durable, personal-data-free journal per number of everything the gateway learnt about it (attempts, resolutions, notifications, manual settlements).
//!
//! A number is a bizOrderNo, another call's natural number, or a caller's
//! idempotency-key; an order's call, its confirmation and its notifications
//! share one timeline. The journal lives in the store under a keyed hash of
//! the number (`yg:tl:{sysid:HMAC}`: numbers are sometimes phone numbers),
//! the newest [`CAP`] events for the timeline's retention (35 days by
//! default: longer than the idempotency records, so that last month's
//! reconciliation finds them). Writing is best effort: a store that fails
//! costs a line in the log, never a call.
//!
//! Beside the timelines, a day index (`yg:day:{sysid:yyyyMMdd}`, China
//! dates) lists the orders and transfers the gateway learnt succeeded that
//! day, with their amounts: what the reconciliation expects in the day's
//! file ("gateway only" when a row is missing). Only numbers the file
//! names (bizOrderNo, bizTransferNo) go there, never a member's number.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::provider::formats::format_compact_date;
use crate::store::{Store, StoreError};

/// The most events a timeline keeps (the newest).
pub const CAP: usize = 1000;

/// One thing the gateway learnt about a number. Only numbers, rpcs, caller
/// names, outcome classes, provider codes and statuses: never an amount
/// of someone's, a name, a phone, a card or identity number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// attempt, resolution, notification, override.
    pub kind: String,
    /// The rpc the event is about, if one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rpc: String,
    /// The caller (attempts, overrides), or retry / resolver (resolutions).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actor: String,
    /// What it came to (see `TimelineEvent.outcome` in the proto).
    pub outcome: String,
    /// The provider's section 7 code, if it gave one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_code: String,
    /// The 6.13 order status, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<i64>,
    /// A notification's id, an override's reason, what a resolution could not learn.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Event {
    /// An event of `kind` with `outcome`, now.
    pub fn now(kind: &str, outcome: &str) -> Event {
        Event {
            at_ms: now_ms(),
            kind: kind.to_owned(),
            outcome: outcome.to_owned(),
            ..Event::default()
        }
    }
}

/// Milliseconds since the Unix epoch by this machine's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The most entries a day index keeps: as many as the file may have rows.
pub const DAY_CAP: usize = crate::provider::checkfile::MAX_ROWS;

/// A success the gateway learnt of, in the day index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Booked {
    /// The number the file names (bizOrderNo, or bizTransferNo).
    pub number: String,
    /// The rpc, when known (a notification does not say).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rpc: String,
    /// The amount in fen, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// How the gateway learnt it: answer, resolution, notification, override.
    pub via: String,
    pub at_ms: u64,
}

/// The China date of a moment in Unix milliseconds.
pub fn china_date(at_ms: u64) -> time::Date {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.to_offset(crate::provider::wire::CHINA).date()
}

/// The timelines of one merchant, in a store.
#[derive(Clone)]
pub struct Timeline {
    store: Arc<dyn Store>,
    sysid: String,
    secret: [u8; 32],
    retention: Duration,
}

impl std::fmt::Debug for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline")
            .field("sysid", &self.sysid)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Timeline {
    /// Timelines in `store`, keyed with `secret` (the idempotency records' key).
    pub fn new(store: Arc<dyn Store>, sysid: String, secret: [u8; 32], retention: Duration) -> Self {
        Timeline {
            store,
            sysid,
            secret,
            retention,
        }
    }

    /// The store key of `number`'s timeline: what a record keeps to journal
    /// under later, instead of the number itself.
    pub fn key(&self, number: &str) -> String {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret).expect("HMAC accepts any key length");
        mac.update(b"timeline\0");
        mac.update(number.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("yg:tl:{{{}:{}}}", self.sysid, hex::encode(&digest[..16]))
    }

    /// Adds `event` to `number`'s timeline; a failure is logged, never passed on.
    pub async fn record(&self, number: &str, event: Event) {
        self.record_at(&self.key(number), event).await;
    }

    /// Adds `event` to the timeline whose store key is `key` (see [`Timeline::key`]).
    pub async fn record_at(&self, key: &str, event: Event) {
        // Only keys this module made: a stray one would start a journal nobody reads.
        if !key.starts_with("yg:tl:{") {
            return;
        }
        let Ok(entry) = serde_json::to_vec(&event) else {
            return;
        };
        if let Err(e) = self.store.journal_append(key, &entry, self.retention, CAP).await {
            tracing::warn!(error = %e, kind = %event.kind, "cannot write the order timeline");
        }
    }

    /// The store key of `date`'s day index.
    pub fn day_key(&self, date: time::Date) -> String {
        format!("yg:day:{{{}:{}}}", self.sysid, format_compact_date(date))
    }

    /// Adds to the day index that `number` succeeded, as learnt `via` an
    /// answer, a resolution, a notification or an override, under the China
    /// date of `at_ms` (when the provider says it was paid) or else of now;
    /// a failure is logged, never passed on.
    pub async fn book(&self, number: &str, rpc: &str, amount: Option<i64>, via: &str, at_ms: Option<u64>) {
        let at_ms = at_ms.unwrap_or_else(now_ms);
        let booked = Booked {
            number: number.to_owned(),
            rpc: rpc.to_owned(),
            amount,
            via: via.to_owned(),
            at_ms,
        };
        let Ok(entry) = serde_json::to_vec(&booked) else {
            return;
        };
        let key = self.day_key(china_date(at_ms));
        if let Err(e) = self.store.journal_append(&key, &entry, self.retention, DAY_CAP).await {
            tracing::warn!(error = %e, "cannot write the day index");
        }
    }

    /// The successes booked on `date`, oldest first (unreadable entries skipped).
    pub async fn booked(&self, date: time::Date) -> Result<Vec<Booked>, StoreError> {
        let entries = self.store.journal_read(&self.day_key(date)).await?;
        Ok(entries.iter().filter_map(|e| serde_json::from_slice(e).ok()).collect())
    }

    /// How long timelines and day indexes are kept.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// `number`'s events, oldest first.
    pub async fn read(&self, number: &str) -> Result<Vec<Event>, StoreError> {
        let entries = self.store.journal_read(&self.key(number)).await?;
        Ok(entries.iter().filter_map(|e| serde_json::from_slice(e).ok()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn a_timeline_is_kept_per_number_under_a_keyed_hash() {
        let timeline = Timeline::new(
            Arc::new(MemoryStore::new()),
            "1902".into(),
            [7; 32],
            Duration::from_secs(60),
        );
        let key = timeline.key("13900001111");
        assert!(key.starts_with("yg:tl:{1902:") && !key.contains("13900001111"), "{key}");
        timeline.record("o-1", Event::now("attempt", "unknown")).await;
        timeline.record("o-1", Event::now("resolution", "landed")).await;
        timeline.record("o-2", Event::now("attempt", "ok")).await;
        let events = timeline.read("o-1").await.unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["attempt", "resolution"]);
        assert!(timeline.read("o-3").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn successes_are_indexed_by_their_china_date() {
        let timeline = Timeline::new(
            Arc::new(MemoryStore::new()),
            "1902".into(),
            [7; 32],
            Duration::from_secs(60),
        );
        // 2026-12-07 16:30 UTC is 2026-12-08 00:30 in China.
        assert_eq!(format_compact_date(china_date(1_796_661_000_000)), "20261208");
        let today = china_date(now_ms());
        timeline.book("o-1", "DepositApply", Some(100), "answer", None).await;
        // Booked across midnight: read the day it was booked under.
        let today = if china_date(now_ms()) == today {
            today
        } else {
            china_date(now_ms())
        };
        // Paid (by the provider's word) at 2026-12-08 00:30 China time.
        timeline
            .book("o-2", "", None, "notification", Some(1_796_661_000_000))
            .await;
        let paid = timeline.booked(china_date(1_796_661_000_000)).await.unwrap();
        assert!(paid.iter().any(|b| b.number == "o-2"), "{paid:?}");
        let booked: Vec<Booked> = timeline
            .booked(today)
            .await
            .unwrap()
            .into_iter()
            .filter(|b| b.number == "o-1")
            .collect();
        assert_eq!(booked.len(), 1);
        assert_eq!((booked[0].number.as_str(), booked[0].amount), ("o-1", Some(100)));
        assert_eq!(
            timeline.day_key(today),
            format!("yg:day:{{1902:{}}}", format_compact_date(today))
        );
    }
}
