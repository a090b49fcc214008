//! The notification log in this process: the same semantics as Redis Streams, lost on restart, for one replica.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::{
    Appended, Backlog, Cursor, DeadLetter, Delivery, DeliveryState, Entry, FetchTerms, Fetched, ListQuery, LogError,
    LogFuture, NotificationLog, Record, Start,
};

/// The most events kept in memory, whatever the retention: past it the oldest go.
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
struct Pending {
    consumer: String,
    /// When it was last delivered; `None`: due at once (redriven).
    since: Option<Instant>,
    attempts: u32,
}

impl Pending {
    fn stale(&self, now: Instant, visibility: Duration) -> bool {
        self.since.is_none_or(|since| now.duration_since(since) >= visibility)
    }
}

#[derive(Debug, Default)]
struct Group {
    filter: String,
    last_delivered: Cursor,
    pending: BTreeMap<Cursor, Pending>,
    /// cursor -> (attempts, dead-lettered at, Unix ms)
    dead: BTreeMap<Cursor, (u32, u64)>,
}

#[derive(Debug, Default)]
struct State {
    entries: VecDeque<Entry>,
    last: Cursor,
    /// The newest cursor trimmed away.
    trimmed: Option<Cursor>,
    seen: HashMap<String, Cursor>,
    groups: HashMap<String, Group>,
}

impl State {
    fn entry(&self, cursor: Cursor) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.cursor.cmp(&cursor))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// `CursorExpired` when an event after `position` has been trimmed.
    fn check_retained(&self, position: Cursor) -> Result<(), LogError> {
        match self.trimmed {
            Some(trimmed) if position < trimmed => Err(LogError::CursorExpired {
                cursor: position,
                resume_from: trimmed,
            }),
            _ => Ok(()),
        }
    }

    fn trim(&mut self, floor_ms: u64, max: usize) {
        while let Some(front) = self.entries.front() {
            if front.cursor.ms >= floor_ms && self.entries.len() <= max {
                break;
            }
            let Some(gone) = self.entries.pop_front() else { break };
            self.seen.remove(&gone.record.id);
            self.trimmed = Some(gone.cursor);
        }
    }
}

/// The in-memory log.
#[derive(Debug)]
pub struct MemoryLog {
    state: Mutex<State>,
    retention: Duration,
    max_entries: usize,
    changes: watch::Sender<u64>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl MemoryLog {
    /// A log keeping events for `retention` (at most [`MAX_ENTRIES`]).
    pub fn new(retention: Duration) -> Self {
        Self::with_capacity(retention, MAX_ENTRIES)
    }

    /// A log keeping at most `max_entries` events.
    pub fn with_capacity(retention: Duration, max_entries: usize) -> Self {
        MemoryLog {
            state: Mutex::new(State::default()),
            retention,
            max_entries: max_entries.max(1),
            changes: watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn floor_ms(&self) -> u64 {
        now_ms().saturating_sub(u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX))
    }

    fn wake(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

fn ready<'a, T: Send + 'a>(value: Result<T, LogError>) -> LogFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl NotificationLog for MemoryLog {
    fn append<'a>(&'a self, record: &'a Record) -> LogFuture<'a, Appended> {
        let appended = {
            let mut state = self.lock();
            let now = now_ms();
            let floor = self.floor_ms();
            state.trim(floor, self.max_entries);
            if let Some(cursor) = state.seen.get(&record.id) {
                Appended {
                    cursor: *cursor,
                    duplicate: true,
                }
            } else {
                let cursor = if now > state.last.ms {
                    Cursor { ms: now, seq: 0 }
                } else {
                    Cursor {
                        ms: state.last.ms,
                        seq: state.last.seq + 1,
                    }
                };
                state.last = cursor;
                state.seen.insert(record.id.clone(), cursor);
                state.entries.push_back(Entry {
                    cursor,
                    record: record.clone(),
                });
                let max = self.max_entries;
                state.trim(floor, max);
                Appended {
                    cursor,
                    duplicate: false,
                }
            }
        };
        if !appended.duplicate {
            self.wake();
        }
        ready(Ok(appended))
    }

    fn join<'a>(&'a self, subscriber: &'a str, start: Start, filter: &'a str) -> LogFuture<'a, ()> {
        let mut state = self.lock();
        let last = state.last;
        if let Some(group) = state.groups.get(subscriber)
            && group.filter != filter
        {
            return ready(Err(LogError::FilterMismatch {
                subscriber: subscriber.to_owned(),
                existing: group.filter.clone(),
            }));
        }
        let result = match start {
            Start::Resume => {
                state.groups.entry(subscriber.to_owned()).or_insert_with(|| Group {
                    filter: filter.to_owned(),
                    last_delivered: last,
                    ..Group::default()
                });
                Ok(())
            }
            Start::After(cursor) if cursor > last => Err(LogError::CursorAhead { cursor, newest: last }),
            Start::After(cursor) => state.check_retained(cursor).map(|()| {
                let group = state.groups.entry(subscriber.to_owned()).or_insert_with(|| Group {
                    filter: filter.to_owned(),
                    ..Group::default()
                });
                group.last_delivered = cursor;
            }),
        };
        drop(state);
        self.wake();
        ready(result)
    }

    fn fetch<'a>(&'a self, subscriber: &'a str, consumer: &'a str, terms: FetchTerms) -> LogFuture<'a, Fetched> {
        // Dead letters go once their event is twice the retention old (one
        // trimmed unacknowledged is dead-lettered at about one retention).
        let retention = u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX);
        let dead_floor = now_ms().saturating_sub(retention.saturating_mul(2));
        let mut state = self.lock();
        let State {
            entries,
            groups,
            trimmed,
            ..
        } = &mut *state;
        let Some(group) = groups.get_mut(subscriber) else {
            return ready(Err(LogError::NoSubscriber(subscriber.to_owned())));
        };
        if let Some(trimmed) = *trimmed
            && group.last_delivered < trimmed
        {
            return ready(Err(LogError::CursorExpired {
                cursor: group.last_delivered,
                resume_from: trimmed,
            }));
        }
        group.dead.retain(|c, _| c.ms >= dead_floor);
        let mut out = Fetched::default();
        if terms.room == 0 {
            return ready(Ok(out));
        }
        let find = |cursor: Cursor| {
            entries
                .binary_search_by(|e| e.cursor.cmp(&cursor))
                .ok()
                .map(|i| entries[i].clone())
        };
        let now = Instant::now();
        // Its own stale events do not count: they are due again, to it or another.
        let mine = group
            .pending
            .values()
            .filter(|p| p.consumer == consumer && !p.stale(now, terms.visibility))
            .count();
        let mut room = terms.room.saturating_sub(mine);
        if room == 0 {
            return ready(Ok(out));
        }
        let stale: Vec<Cursor> = group
            .pending
            .iter()
            .filter(|(_, p)| p.stale(now, terms.visibility))
            .map(|(c, _)| *c)
            .collect();
        for cursor in stale {
            if room == 0 {
                break;
            }
            let Some(pending) = group.pending.get_mut(&cursor) else {
                continue;
            };
            let entry = find(cursor);
            if pending.attempts >= terms.max_deliveries || entry.is_none() {
                // Delivered too often, or trimmed before it was acknowledged:
                // either way the operator must see it.
                let attempts = pending.attempts;
                group.pending.remove(&cursor);
                group.dead.insert(cursor, (attempts, now_ms()));
                out.dead_lettered.push(cursor);
                continue;
            }
            let Some(entry) = entry else { continue };
            pending.attempts += 1;
            pending.since = Some(now);
            pending.consumer = consumer.to_owned();
            out.deliveries.push(Delivery {
                entry,
                attempt: pending.attempts,
            });
            room -= 1;
        }
        let start = entries.partition_point(|e| e.cursor <= group.last_delivered);
        for entry in entries.iter().skip(start).take(room) {
            group.last_delivered = entry.cursor;
            group.pending.insert(
                entry.cursor,
                Pending {
                    consumer: consumer.to_owned(),
                    since: Some(now),
                    attempts: 1,
                },
            );
            out.deliveries.push(Delivery {
                entry: entry.clone(),
                attempt: 1,
            });
        }
        ready(Ok(out))
    }

    fn ack<'a>(&'a self, subscriber: &'a str, cursors: &'a [Cursor]) -> LogFuture<'a, usize> {
        let mut state = self.lock();
        // As XACK: nothing to acknowledge for a subscriber that never subscribed.
        let Some(group) = state.groups.get_mut(subscriber) else {
            return ready(Ok(0));
        };
        let n = cursors
            .iter()
            .filter(|c| group.pending.remove(c).is_some() | group.dead.remove(c).is_some())
            .count();
        drop(state);
        // A consumer that was full may take more now.
        self.wake();
        ready(Ok(n))
    }

    fn leave<'a>(&'a self, _subscriber: &'a str, _consumer: &'a str) -> LogFuture<'a, ()> {
        // Consumers are not registered here: their pending entries are all there is.
        ready(Ok(()))
    }

    fn dead_letters<'a>(
        &'a self,
        subscriber: &'a str,
        after: Option<Cursor>,
        limit: usize,
    ) -> LogFuture<'a, Vec<DeadLetter>> {
        let state = self.lock();
        let Some(group) = state.groups.get(subscriber) else {
            return ready(Err(LogError::NoSubscriber(subscriber.to_owned())));
        };
        let letters = group
            .dead
            .iter()
            .filter(|(c, _)| after.is_none_or(|a| **c > a))
            .take(limit)
            .map(|(c, (attempts, at_ms))| DeadLetter {
                cursor: *c,
                entry: state.entry(*c).cloned(),
                attempts: *attempts,
                at_ms: *at_ms,
            })
            .collect();
        ready(Ok(letters))
    }

    fn redrive<'a>(
        &'a self,
        subscriber: &'a str,
        cursors: &'a [Cursor],
        _visibility: Duration,
    ) -> LogFuture<'a, usize> {
        let mut state = self.lock();
        let State { entries, groups, .. } = &mut *state;
        let Some(group) = groups.get_mut(subscriber) else {
            return ready(Err(LogError::NoSubscriber(subscriber.to_owned())));
        };
        let chosen: Vec<Cursor> = if cursors.is_empty() {
            group.dead.keys().copied().collect()
        } else {
            cursors.iter().filter(|c| group.dead.contains_key(c)).copied().collect()
        };
        let mut moved = 0;
        for cursor in chosen {
            if entries.binary_search_by(|e| e.cursor.cmp(&cursor)).is_err() {
                continue;
            }
            group.dead.remove(&cursor);
            group.pending.insert(
                cursor,
                Pending {
                    consumer: super::REDRIVE_CONSUMER.to_owned(),
                    since: None,
                    attempts: 0,
                },
            );
            moved += 1;
        }
        drop(state);
        self.wake();
        ready(Ok(moved))
    }

    fn list<'a>(&'a self, query: &'a ListQuery) -> LogFuture<'a, Vec<Entry>> {
        let state = self.lock();
        if let Some(after) = query.after
            && let Err(e) = state.check_retained(after)
        {
            return ready(Err(e));
        }
        let out = state
            .entries
            .iter()
            .filter(|e| query.after.is_none_or(|a| e.cursor > a))
            .filter(|e| query.since_ms.is_none_or(|s| e.cursor.ms >= s))
            .filter(|e| query.until_ms.is_none_or(|u| e.cursor.ms < u))
            .take(query.limit)
            .cloned()
            .collect();
        ready(Ok(out))
    }

    fn states<'a>(&'a self, subscriber: &'a str, cursors: &'a [Cursor]) -> LogFuture<'a, Vec<DeliveryState>> {
        let state = self.lock();
        let Some(group) = state.groups.get(subscriber) else {
            return ready(Err(LogError::NoSubscriber(subscriber.to_owned())));
        };
        let out = cursors
            .iter()
            .map(|c| {
                if let Some((attempts, _)) = group.dead.get(c) {
                    DeliveryState::Dead { attempts: *attempts }
                } else if let Some(p) = group.pending.get(c) {
                    DeliveryState::Pending { attempts: p.attempts }
                } else if *c <= group.last_delivered {
                    DeliveryState::Acked
                } else {
                    DeliveryState::Waiting
                }
            })
            .collect();
        ready(Ok(out))
    }

    fn backlog<'a>(&'a self, subscriber: &'a str) -> LogFuture<'a, Backlog> {
        let state = self.lock();
        let Some(group) = state.groups.get(subscriber) else {
            return ready(Err(LogError::NoSubscriber(subscriber.to_owned())));
        };
        let delivered = state.entries.partition_point(|e| e.cursor <= group.last_delivered);
        ready(Ok(Backlog {
            pending: group.pending.len() as u64,
            waiting: Some((state.entries.len() - delivered) as u64),
            dead: group.dead.len() as u64,
        }))
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
