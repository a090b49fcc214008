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

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

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
}
