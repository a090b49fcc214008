//! The in-memory store: the embedded default, one process only, with the same semantics as the Redis store.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use super::{
    Claim, ClaimTerms, Completed, Expect, Identity, Initialise, Initialised, Inspected, Limit, RateDecision,
    RecordState, Store, StoreError, StoreFuture, Taken, UnknownStats, Window,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Unknown,
    Done,
}

#[derive(Debug)]
struct Record {
    state: State,
    fingerprint: String,
    token: String,
    lease_until: Instant,
    /// Until when the provider may still act on the last attempt.
    settled: Instant,
    outcome: Vec<u8>,
    expires: Instant,
    /// What the request is about (`ClaimTerms::subject`).
    subject: Vec<u8>,
    /// When its outcome became unknown, while it is.
    unknown_since: Option<Instant>,
    /// When the resolver looks at it next.
    due: Instant,
    /// How many sweeps took it.
    tries: u32,
    /// A look proved the last attempt absent: the next claim may send.
    proved_absent: bool,
    /// The claim that finished it (`complete`), so that its retry succeeds.
    finished_by: String,
}

impl Record {
    /// Done with `outcome`, kept until `expires`, held by nobody.
    fn finish(&mut self, outcome: &[u8], expires: Instant) {
        self.state = State::Done;
        self.outcome = outcome.to_vec();
        self.token.clear();
        self.expires = expires;
        self.unknown_since = None;
    }

    /// Whether the resolver may take it now: unknown, or pending with a
    /// lapsed lease (its owner died), and due.
    fn due_now(&self, now: Instant) -> bool {
        let free = match self.state {
            State::Unknown => true,
            State::Pending => self.lease_until <= now,
            State::Done => false,
        };
        free && self.due <= now
    }
}

/// How many claims pass between sweeps of expired records and idle buckets.
const SWEEP_EVERY: u32 = 4096;

#[derive(Debug, Default)]
struct Records {
    map: HashMap<String, Record>,
    since_sweep: u32,
    /// When a claim at the ceiling last looked for expired records.
    full_since: Option<Instant>,
}

/// A journal's entries, oldest first, until when it lives, and when it
/// was last written.
type Journal = (std::collections::VecDeque<Vec<u8>>, Instant, Instant);

/// The journals, and the bytes their entries hold (bounded).
#[derive(Debug, Default)]
struct Journals {
    map: HashMap<String, Journal>,
    bytes: usize,
}

impl Journals {
    fn size(journal: &Journal) -> usize {
        journal.0.iter().map(Vec::len).sum()
    }

    /// Drops expired journals, then the least recently written ones (never
    /// `keep`, the one just written), until at most `target` bytes are
    /// held; how many journals it dropped that had not expired.
    fn make_room(&mut self, now: Instant, target: usize, keep: &str) -> usize {
        let before = self.map.len();
        self.map.retain(|_, j| j.1 > now);
        if self.map.len() != before {
            self.bytes = self.map.values().map(Journals::size).sum();
        }
        if self.bytes <= target {
            return 0;
        }
        let mut by_write: Vec<(Instant, String)> = self
            .map
            .iter()
            .filter(|(k, _)| k.as_str() != keep)
            .map(|(k, j)| (j.2, k.clone()))
            .collect();
        by_write.sort();
        let mut dropped = 0;
        for (_, key) in by_write {
            if self.bytes <= target {
                break;
            }
            if let Some(journal) = self.map.remove(&key) {
                self.bytes = self.bytes.saturating_sub(Journals::size(&journal));
                dropped += 1;
            }
        }
        dropped
    }
}

/// What the memory store holds at most (`store.memory_*`): one replica's
/// records for their retention, without Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Idempotency records.
    pub records: usize,
    /// Bytes of journal entries (timelines, day indexes, reports).
    pub journal_bytes: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        MemoryLimits {
            records: 100_000,
            journal_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Records in a map, buckets in governor's keyed limiters (one per distinct limit).
#[derive(Debug, Clone)]
pub struct MemoryStore {
    records: Arc<Mutex<Records>>,
    /// The resolver's sweep lease: its holder and until when.
    leases: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    /// Journals (the order timeline): entries and until when they live.
    journals: Arc<Mutex<Journals>>,
    limits: MemoryLimits,
    limiters: Arc<Mutex<HashMap<Limit, Arc<DefaultKeyedRateLimiter<String>>>>>,
    /// Made with the store: it lives exactly as long as its records, so it
    /// never lacks one (what a restart forgets, the store says by being new).
    identity: Identity,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store with the default limits.
    pub fn new() -> Self {
        MemoryStore::bounded(MemoryLimits::default())
    }

    /// An empty store holding at most `limits`.
    pub fn bounded(limits: MemoryLimits) -> Self {
        let since_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        MemoryStore {
            records: Arc::default(),
            leases: Arc::default(),
            journals: Arc::default(),
            limits,
            limiters: Arc::default(),
            identity: Identity {
                id: super::new_identity_id(),
                since_ms,
                lost_at_ms: None,
            },
        }
    }

    fn with_record<T>(&self, key: &str, f: impl FnOnce(&mut Records, Instant) -> T) -> T {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if records.map.get(key).is_some_and(|r| r.expires <= now) {
            records.map.remove(key);
        }
        f(&mut records, now)
    }

    fn limiter(&self, limit: Limit) -> Arc<DefaultKeyedRateLimiter<String>> {
        let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(limiters.entry(limit).or_insert_with(|| {
            let rate = NonZeroU32::new(limit.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(limit.burst.max(1)).unwrap_or(NonZeroU32::MIN);
            Arc::new(RateLimiter::dashmap(Quota::per_second(rate).allow_burst(burst)))
        }))
    }
}

/// A number below `n`, cheaply: for occasional sweeps, not for secrets.
fn rand_below(n: u32) -> u32 {
    let mut byte = [0u8; 4];
    let _ = getrandom::fill(&mut byte);
    u32::from_le_bytes(byte) % n.max(1)
}

fn ready<'a, T: Send + 'a>(value: T) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(Ok::<T, StoreError>(value)))
}

impl Store for MemoryStore {
    fn claim<'a>(&'a self, key: &'a str, token: &'a str, terms: &'a ClaimTerms) -> StoreFuture<'a, Claim> {
        let claim = self.with_record(key, |records, now| {
            records.since_sweep += 1;
            if records.since_sweep >= SWEEP_EVERY {
                records.since_sweep = 0;
                records.map.retain(|_, r| r.expires > now);
            }
            if !records.map.contains_key(key) && records.map.len() >= self.limits.records {
                // At the ceiling, expired records are looked for once a second at most:
                // refused callers retry every second, and the scan holds the lock.
                if records
                    .full_since
                    .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1))
                {
                    records.map.retain(|_, r| r.expires > now);
                    records.full_since = Some(now);
                }
                if records.map.len() >= self.limits.records {
                    return Claim::Full;
                }
            }
            let Some(record) = records.map.get_mut(key) else {
                records.map.insert(
                    key.to_owned(),
                    Record {
                        state: State::Pending,
                        fingerprint: terms.fingerprint.clone(),
                        token: token.to_owned(),
                        lease_until: now + terms.lease,
                        settled: now + terms.attempt,
                        outcome: Vec::new(),
                        expires: now + terms.retention,
                        subject: terms.subject.clone(),
                        unknown_since: None,
                        due: now + terms.attempt + terms.lease,
                        tries: 0,
                        proved_absent: false,
                        finished_by: String::new(),
                    },
                );
                return Claim::Fresh;
            };
            if record.fingerprint != terms.fingerprint {
                return Claim::Mismatch;
            }
            match record.state {
                State::Done => Claim::Done(record.outcome.clone()),
                State::Pending if record.lease_until > now => Claim::Busy {
                    retry_after: record.lease_until - now,
                },
                State::Pending | State::Unknown => {
                    record.state = State::Pending;
                    token.clone_into(&mut record.token);
                    record.lease_until = now + terms.lease;
                    record.expires = now + terms.retention;
                    Claim::Unknown {
                        settle_left: record.settled.saturating_duration_since(now),
                        proved_absent: std::mem::take(&mut record.proved_absent),
                    }
                }
            }
        });
        ready(claim)
    }

    fn renew<'a>(&'a self, key: &'a str, token: &'a str, lease: Duration) -> StoreFuture<'a, bool> {
        let renewed = self.with_record(key, |records, now| match records.map.get_mut(key) {
            Some(r) if r.token == token && r.state == State::Pending => {
                r.lease_until = now + lease;
                true
            }
            _ => false,
        });
        ready(renewed)
    }

    fn sending<'a>(&'a self, key: &'a str, token: &'a str, attempt: Duration) -> StoreFuture<'a, bool> {
        let marked = self.with_record(key, |records, now| match records.map.get_mut(key) {
            Some(r) if r.token == token && r.state == State::Pending => {
                r.settled = now + attempt;
                true
            }
            _ => false,
        });
        ready(marked)
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        outcome: &'a [u8],
        retention: Duration,
    ) -> StoreFuture<'a, bool> {
        let done = self.with_record(key, |records, now| match records.map.get_mut(key) {
            Some(r) if r.token == token && r.state == State::Pending => {
                r.finish(outcome, now + retention);
                r.finished_by = token.to_owned();
                true
            }
            // A retry of this very completion: done already.
            Some(r) => r.state == State::Done && !token.is_empty() && r.finished_by == token && r.outcome == outcome,
            None => false,
        });
        ready(done)
    }

    fn complete_unknown<'a>(
        &'a self,
        key: &'a str,
        outcome: &'a [u8],
        retention: Duration,
        expect: &'a Expect,
    ) -> StoreFuture<'a, Completed> {
        let done = self.with_record(key, |records, now| match records.map.get_mut(key) {
            Some(r) if r.state == State::Unknown && !expect.agrees(&r.subject) => Completed::Mismatch,
            Some(r) if r.state == State::Unknown => {
                r.finish(outcome, now + retention);
                Completed::Done
            }
            _ => Completed::NotUnknown,
        });
        ready(done)
    }

    fn mark_unknown<'a>(&'a self, key: &'a str, token: &'a str, window: Window) -> StoreFuture<'a, bool> {
        let marked = self.with_record(key, |records, now| match records.map.get_mut(key) {
            Some(r) if r.token == token && r.state == State::Pending => {
                r.state = State::Unknown;
                r.lease_until = now;
                match window {
                    Window::Closed => r.settled = now,
                    Window::Open(d) => r.settled = now + d,
                    Window::Keep => {}
                }
                r.unknown_since.get_or_insert(now);
                r.due = r.settled.max(now);
                true
            }
            _ => false,
        });
        ready(marked)
    }

    fn release<'a>(&'a self, key: &'a str, token: &'a str) -> StoreFuture<'a, bool> {
        let released = self.with_record(key, |records, _| {
            let mine = records
                .map
                .get(key)
                .is_some_and(|r| r.token == token && r.state == State::Pending);
            if mine {
                records.map.remove(key);
            }
            mine
        });
        ready(released)
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn due_unknown(&self, limit: usize) -> StoreFuture<'_, Vec<String>> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let mut due: Vec<(Instant, &String)> = records
            .map
            .iter()
            .filter(|(_, r)| r.expires > now && r.due_now(now))
            .map(|(k, r)| (r.due, k))
            .collect();
        due.sort();
        ready(due.into_iter().take(limit).map(|(_, k)| k.clone()).collect())
    }

    fn take_unknown<'a>(&'a self, key: &'a str, token: &'a str, lease: Duration) -> StoreFuture<'a, Option<Taken>> {
        let taken = self.with_record(key, |records, now| {
            let r = records.map.get_mut(key)?;
            let free = match r.state {
                State::Unknown => true,
                State::Pending => r.lease_until <= now,
                State::Done => false,
            };
            if !free {
                return None;
            }
            let tries = r.tries;
            r.state = State::Pending;
            token.clone_into(&mut r.token);
            r.lease_until = now + lease;
            r.tries = tries.saturating_add(1);
            r.unknown_since.get_or_insert(now);
            Some(Taken {
                subject: r.subject.clone(),
                settle_left: r.settled.saturating_duration_since(now),
                tries,
            })
        });
        ready(taken)
    }

    fn prove_absent<'a>(&'a self, key: &'a str, token: &'a str) -> StoreFuture<'a, bool> {
        let proved = self.with_record(key, |records, now| match records.map.get_mut(key) {
            Some(r) if r.token == token && r.state == State::Pending => {
                r.state = State::Unknown;
                r.lease_until = now;
                r.proved_absent = true;
                // Out of the resolver's sight: nothing left to ask.
                r.unknown_since = None;
                r.due = r.expires;
                true
            }
            _ => false,
        });
        ready(proved)
    }

    fn defer_unknown<'a>(&'a self, key: &'a str, token: &'a str, after: Duration) -> StoreFuture<'a, bool> {
        let deferred = self.with_record(key, |records, now| match records.map.get_mut(key) {
            Some(r) if r.token == token && r.state == State::Pending => {
                r.state = State::Unknown;
                r.lease_until = now;
                r.due = now + after;
                true
            }
            _ => false,
        });
        ready(deferred)
    }

    fn lease<'a>(&'a self, name: &'a str, holder: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let mine = match leases.get(name) {
            Some((h, until)) => h == holder || *until <= now,
            None => true,
        };
        if mine {
            leases.insert(name.to_owned(), (holder.to_owned(), now + ttl));
        }
        ready(mine)
    }

    fn inspect<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Inspected>> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let found = records.map.get(key).filter(|r| r.expires > now).map(|r| Inspected {
            // A pending record whose owner died stays pending until the
            // resolver or a retry takes it over: only they may.
            state: match r.state {
                State::Pending => RecordState::Pending,
                State::Unknown => RecordState::Unknown,
                State::Done => RecordState::Done,
            },
            subject: r.subject.clone(),
            outcome: r.outcome.clone(),
        });
        ready(found)
    }

    fn unknown_stats(&self, _retention: Duration) -> StoreFuture<'_, UnknownStats> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let mut stats = UnknownStats::default();
        for (key, r) in records.map.iter().filter(|(_, r)| r.expires > now) {
            let Some(since) = r.unknown_since else { continue };
            stats.count += 1;
            let age = now.saturating_duration_since(since);
            stats.oldest = Some(stats.oldest.map_or(age, |o| o.max(age)));
            if let Some(section) = super::section_of(key) {
                *stats.by_section.entry(section.to_owned()).or_insert(0) += 1;
            }
        }
        ready(stats)
    }

    fn journal_append<'a>(
        &'a self,
        key: &'a str,
        entry: &'a [u8],
        retention: Duration,
        cap: usize,
    ) -> StoreFuture<'a, ()> {
        let mut journals = self.journals.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // Journals past their retention go now and then, not at every append.
        if journals.map.len() > 10_000 && rand_below(SWEEP_EVERY) == 0 {
            journals.make_room(now, usize::MAX, key);
        }
        let Journals { map, bytes } = &mut *journals;
        let (entries, until, written) = map
            .entry(key.to_owned())
            .or_insert_with(|| (std::collections::VecDeque::new(), now, now));
        *written = now;
        if *until <= now {
            *bytes = bytes.saturating_sub(entries.iter().map(Vec::len).sum());
            entries.clear();
        }
        entries.push_back(entry.to_vec());
        *bytes = bytes.saturating_add(entry.len());
        while entries.len() > cap.max(1) {
            if let Some(gone) = entries.pop_front() {
                *bytes = bytes.saturating_sub(gone.len());
            }
        }
        *until = now + retention;
        if journals.bytes > self.limits.journal_bytes {
            // Down to nine tenths: the sort is paid once per tenth, not per write.
            let dropped = journals.make_room(now, self.limits.journal_bytes / 10 * 9, key);
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    max_bytes = self.limits.journal_bytes,
                    "the memory store's journals are full (store.memory_max_journal_bytes): the least recently \
                     written timelines, day indexes or reports were dropped"
                );
            }
        }
        ready(())
    }

    fn journal_read<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Vec<Vec<u8>>> {
        let journals = self.journals.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let entries = journals
            .map
            .get(key)
            .filter(|(_, until, _)| *until > now)
            .map(|(entries, _, _)| entries.iter().cloned().collect())
            .unwrap_or_default();
        ready(entries)
    }

    fn identity(&self) -> StoreFuture<'_, Option<Identity>> {
        ready(Some(self.identity.clone()))
    }

    fn initialise(&self, _how: Initialise) -> StoreFuture<'_, Initialised> {
        ready(Initialised::Existing(self.identity.clone()))
    }

    fn acquire<'a>(&'a self, bucket: &'a str, limit: Limit) -> StoreFuture<'a, RateDecision> {
        let limiter = self.limiter(limit);
        let decision = match limiter.check_key(&bucket.to_owned()) {
            Ok(()) => RateDecision::Allowed,
            Err(not_until) => RateDecision::Limited {
                retry_after: not_until.wait_time_from(limiter.clock().now()),
            },
        };
        if limiter.len() > 10_000 {
            // Buckets of callers seen once would otherwise stay forever.
            limiter.retain_recent();
        }
        ready(decision)
    }
}
