//! The notification log: one append-only stream of verified notifications, consumer groups per subscriber, dead letters; a Redis Streams and an in-memory backend behind one trait.
//!
//! The model is Redis Streams' own, so that both backends mean the same:
//!
//! ```text
//!   append (deduplicated by content id) --> stream: ... c1 c2 c3 ...    trimmed after the retention;
//!                                              |                         the newest trimmed cursor is kept
//!   per subscriber (a consumer group, bound to one filter):
//!      last delivered cursor, pending entries (consumer, attempts, since), dead letters
//!      fetch: position < newest trimmed? CursorExpired (events were lost to it, never skip silently)
//!             this consumer's pending that is not yet stale < room? take stale pending (idle >= visibility)
//!             of any consumer, attempts + 1, or dead-letter it after max deliveries (or when trimmed);
//!             then new entries after the position
//!      ack:   pending -> done;  redrive: dead letter -> pending, due at once, attempt 1 again;
//!      dead letters go once their event is twice the retention old
//! ```
//!
//! A cursor is a stream id `<ms>-<seq>`, the same for every subscriber.

pub mod memory;
pub mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use tokio::sync::watch;

pub use memory::MemoryLog;
pub use redis::RedisLog;

/// A boxed future, so that the trait can be used as `dyn NotificationLog`.
pub type LogFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LogError>> + Send + 'a>>;

/// Why the log could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("the notification store is unavailable: {0}")]
    Unavailable(String),
    /// The store has no identity marker (`store::Identity`): it is new or
    /// lost its data, and a subscriber's position there proves nothing.
    #[error("the notification store is not initialised (new, or it lost its data)")]
    StoreUninitialised,
    /// Events after the cursor (or the subscriber's position) were trimmed:
    /// the subscriber must reconcile, then may go on from `resume_from`
    /// (the newest trimmed cursor: everything after it is retained).
    #[error("cursor {cursor} is older than the retained history (resume from {resume_from} after reconciling)")]
    CursorExpired { cursor: Cursor, resume_from: Cursor },
    /// The cursor is past the newest event: it is not from this log.
    #[error("cursor {cursor} is ahead of the newest event ({newest})")]
    CursorAhead { cursor: Cursor, newest: Cursor },
    /// The subscriber has never subscribed.
    #[error("subscriber {0:?} has never subscribed")]
    NoSubscriber(String),
    /// The subscriber exists with another filter: events its filter skips
    /// are acknowledged for the whole subscriber, so one name, one filter.
    #[error(
        "subscriber {subscriber:?} was created with the filter {existing}; subscribe under another name for another filter"
    )]
    FilterMismatch { subscriber: String, existing: String },
}

/// A position in the stream: `<milliseconds>-<sequence>`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cursor {
    pub ms: u64,
    pub seq: u64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for Cursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{:?} is not a cursor (<milliseconds>-<sequence>)",
                s.chars().take(40).collect::<String>()
            )
        };
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        let number = |t: &str| {
            if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse::<u64>().map_err(|_| bad())
        };
        Ok(Cursor {
            ms: number(ms)?,
            seq: number(seq)?,
        })
    }
}

/// What the ingress stores of a verified notification: the facts, not a
/// rendering, so that delivery can type it afresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The content id the log deduplicates on.
    pub id: String,
    pub service: String,
    pub method: String,
    pub biz_order_no: Option<String>,
    pub biz_user_id: Option<String>,
    /// The provider's timestamp (UTC+8), as sent.
    pub timestamp: String,
    /// The envelope's `v`.
    pub version: String,
    /// `rps` as received.
    pub rps: String,
    /// The W3C `traceparent` the event's spans link to: the trace of the
    /// call that made its order when the receiving replica knew it, else
    /// the ingest's own (none when traces are not exported).
    pub trace: Option<String>,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub cursor: Cursor,
    pub record: Record,
}

impl Entry {
    /// When it was appended, in Unix milliseconds (the store's clock).
    pub fn received_ms(&self) -> u64 {
        self.cursor.ms
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub cursor: Cursor,
    /// The notification was already in the log (a provider retry): nothing was added.
    pub duplicate: bool,
}

/// Where a subscriber's group starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Where the group is; a new group starts at the newest event.
    Resume,
    /// Everything strictly after this cursor is delivered (again), for every
    /// instance of the subscriber.
    After(Cursor),
}

/// What a fetch may take.
#[derive(Debug, Clone, Copy)]
pub struct FetchTerms {
    /// The most events this consumer may hold unacknowledged.
    pub room: usize,
    /// How long an event may stay unacknowledged before another consumer gets it.
    pub visibility: Duration,
    /// Deliveries after which an unacknowledged event is dead-lettered.
    pub max_deliveries: u32,
}

/// An event handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub entry: Entry,
    /// 1 for the first delivery to this subscriber, then + 1 each redelivery.
    pub attempt: u32,
}

/// What a fetch took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    pub deliveries: Vec<Delivery>,
    /// Events moved to the dead-letter list by this fetch.
    pub dead_lettered: Vec<Cursor>,
}

/// An event given up on for one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub cursor: Cursor,
    /// `None` when the event has since been trimmed from the stream.
    pub entry: Option<Entry>,
    pub attempts: u32,
    /// When it was dead-lettered, in Unix milliseconds.
    pub at_ms: u64,
}

/// Where an event is for one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet delivered.
    Waiting,
    /// Delivered, not acknowledged.
    Pending { attempts: u32 },
    /// Acknowledged (or filtered out by the subscriber's filter).
    Acked,
    /// In the dead-letter list.
    Dead { attempts: u32 },
}

/// How far behind one subscriber is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Delivered and not yet acknowledged.
    pub pending: u64,
    /// In the log and not yet delivered (`None` when the backend cannot tell).
    pub waiting: Option<u64>,
    /// In the dead-letter list.
    pub dead: u64,
}

/// A page of history.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only events strictly after this cursor.
    pub after: Option<Cursor>,
    /// Only events received at or after this time (Unix milliseconds).
    pub since_ms: Option<u64>,
    /// Only events received before this time (Unix milliseconds).
    pub until_ms: Option<u64>,
    /// The most events returned (oldest first).
    pub limit: usize,
}

/// The consumer name redriven events are parked under (no stream may use it).
pub const REDRIVE_CONSUMER: &str = "yungate-redrive";

/// The most cursors one ack, redrive or listing takes.
pub const MAX_BATCH: usize = 1000;

/// The operations the ingress and the fan-out need.
pub trait NotificationLog: Send + Sync + fmt::Debug {
    /// Appends `record` unless one with its id is already retained.
    fn append<'a>(&'a self, record: &'a Record) -> LogFuture<'a, Appended>;

    /// Creates `subscriber`'s group if needed (bound to `filter`, a
    /// canonical rendering of the subscription's filter) and moves it to
    /// `start`. A group bound to another filter is refused.
    fn join<'a>(&'a self, subscriber: &'a str, start: Start, filter: &'a str) -> LogFuture<'a, ()>;

    /// Takes what `consumer` of `subscriber` may have now (nothing waits).
    /// `CursorExpired` when events after the subscriber's position were
    /// trimmed before it read them.
    fn fetch<'a>(&'a self, subscriber: &'a str, consumer: &'a str, terms: FetchTerms) -> LogFuture<'a, Fetched>;

    /// Acknowledges events for `subscriber` (dead letters included): how
    /// many were outstanding, each counted once.
    fn ack<'a>(&'a self, subscriber: &'a str, cursors: &'a [Cursor]) -> LogFuture<'a, usize>;

    /// Forgets `consumer` if it holds nothing (a stream ended).
    fn leave<'a>(&'a self, subscriber: &'a str, consumer: &'a str) -> LogFuture<'a, ()>;

    /// `subscriber`'s dead letters after `after`, oldest cursor first.
    fn dead_letters<'a>(
        &'a self,
        subscriber: &'a str,
        after: Option<Cursor>,
        limit: usize,
    ) -> LogFuture<'a, Vec<DeadLetter>>;

    /// Puts dead letters (all when `cursors` is empty) back for delivery to
    /// `subscriber` at once; returns how many were still in the stream and moved.
    fn redrive<'a>(&'a self, subscriber: &'a str, cursors: &'a [Cursor], visibility: Duration) -> LogFuture<'a, usize>;

    /// History, oldest first; `CursorExpired` when `query.after` is older
    /// than the retained history.
    fn list<'a>(&'a self, query: &'a ListQuery) -> LogFuture<'a, Vec<Entry>>;

    /// Where each of `cursors` is for `subscriber`.
    fn states<'a>(&'a self, subscriber: &'a str, cursors: &'a [Cursor]) -> LogFuture<'a, Vec<DeliveryState>>;

    /// How far behind `subscriber` is, over all replicas.
    fn backlog<'a>(&'a self, subscriber: &'a str) -> LogFuture<'a, Backlog>;

    /// Changes whenever an event was appended (on any replica, as far as the backend can tell).
    fn changes(&self) -> watch::Receiver<u64>;
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn cursors_parse_strictly_and_order() {
        let c: Cursor = "1700000000000-3".parse().unwrap();
        assert_eq!(c.to_string(), "1700000000000-3");
        assert!(c < "1700000000000-10".parse().unwrap());
        for bad in ["", "1", "-1", "1-", "a-1", "1-1-1", "+1-1", "99999999999999999999999-0"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }
}
