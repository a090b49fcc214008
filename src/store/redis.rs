//! The Redis store: records as hashes changed only by Lua compare-and-set scripts, buckets as GCRA in one script, times from Redis `TIME`.
//!
//! The connection manager reconnects by itself; every command has a
//! response timeout, so a dead Redis costs a caller at most that long and
//! the gateway recovers without a restart when Redis returns.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use super::{
    Claim, ClaimTerms, Completed, Expect, Identity, Initialise, Initialised, Inspected, Limit, RateDecision,
    RecordState, Store, StoreError, StoreFuture, Taken, UnknownStats, Window,
};

/// The store's identity marker (`store::Identity`), a hash: `id`, `since`
/// and, after an acknowledged loss, `lost` (ms). Not hash-tagged: every
/// claim reads it in the same script (a Redis Cluster client must check it
/// per node instead, see ARCHITECTURE).
pub const IDENTITY_KEY: &str = "yg:store:identity";

/// The index of records the resolver looks at, by when their next check is
/// due (a sorted set of record keys), and of records of unknown outcome by
/// when they became so. Not hash-tagged, like the marker.
pub const DUE_KEY: &str = "yg:idx:due";
pub const SINCE_KEY: &str = "yg:idx:since";
/// The key of the lease `name` (`store::lease`): `yg:resolver:lease` is the
/// resolver's sweep.
pub fn lease_key(name: &str) -> String {
    format!("yg:{name}:lease")
}

/// Milliseconds since the epoch by Redis' own clock.
const NOW_MS: &str =
    "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/// KEYS[1] record; ARGV fingerprint, token, lease ms, retention ms,
/// attempt ms, subject; KEYS[2] the identity marker, KEYS[3] the due
/// index. Fields: st (p
/// pending, u unknown, d done), fp, tok, exp (lease end), su (until when
/// the provider may act on the last attempt), out, sj (the subject, JSON).
/// Returns {state, payload}. Without the marker the store is new or lost
/// its data: an absent record proves nothing, and nothing is claimed.
const CLAIM: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 0 then return {'uninitialised', ''} end
local st = redis.call('HGET', KEYS[1], 'st')
if not st then
  redis.call('HSET', KEYS[1], 'st', 'p', 'fp', ARGV[1], 'tok', ARGV[2], 'exp', now + tonumber(ARGV[3]),
    'su', now + tonumber(ARGV[5]), 'sj', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  -- Looked at by the resolver if its owner dies with it: once the attempt and a lease are over.
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]) + tonumber(ARGV[3]), KEYS[1])
  return {'fresh', ''}
end
local r = redis.call('HMGET', KEYS[1], 'fp', 'exp', 'out', 'su')
if r[1] ~= ARGV[1] then return {'mismatch', ''} end
if st == 'd' then return {'done', r[3] or ''} end
local exp = tonumber(r[2]) or 0
if st == 'p' and exp > now then return {'busy', tostring(exp - now)} end
redis.call('HSET', KEYS[1], 'st', 'p', 'tok', ARGV[2], 'exp', now + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
-- Proved absent by a look: this claim may send; the mark is its alone.
local pa = redis.call('HGET', KEYS[1], 'pa') or '0'
redis.call('HDEL', KEYS[1], 'pa')
-- A record without su (written before it existed) gets a whole window, once.
local su = tonumber(r[4])
if not su then
  su = now + tonumber(ARGV[5])
  redis.call('HSET', KEYS[1], 'su', su)
end
local left = su - now
if left < 0 then left = 0 end
return {'unknown', tostring(left), pa}
"#;

/// KEYS[1] record; ARGV token, attempt ms.
const SENDING: &str = r#"
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'st') ~= 'p' then return 0 end
redis.call('HSET', KEYS[1], 'su', now + tonumber(ARGV[2]))
return 1
"#;

/// KEYS[1] record; ARGV token, lease ms.
const RENEW: &str = r#"
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'st') ~= 'p' then return 0 end
redis.call('HSET', KEYS[1], 'exp', now + tonumber(ARGV[2]))
return 1
"#;

/// KEYS[1] record, KEYS[2] due index, KEYS[3] since index; ARGV token,
/// outcome, retention ms.
const COMPLETE: &str = r#"
local st = redis.call('HGET', KEYS[1], 'st')
-- A retry of this very completion (its reply was lost): done already.
if st == 'd' and redis.call('HGET', KEYS[1], 'ft') == ARGV[1] and redis.call('HGET', KEYS[1], 'out') == ARGV[2] then
  return 1
end
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] or st ~= 'p' then return 0 end
redis.call('HSET', KEYS[1], 'st', 'd', 'out', ARGV[2], 'tok', '', 'exp', 0, 'ft', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZREM', KEYS[2], KEYS[1])
redis.call('ZREM', KEYS[3], KEYS[1])
return 1
"#;

/// KEYS[1] record, KEYS[2] due index, KEYS[3] since index; ARGV outcome,
/// retention ms, expected member ('' not
/// checked), expected amount ('' not checked). Only an unknown record
/// nobody holds (a live claim finds its own answer), and only one whose
/// subject agrees: 1 completed, 0 not unknown, -1 another request's.
const COMPLETE_UNKNOWN: &str = r#"
if redis.call('HGET', KEYS[1], 'st') ~= 'u' then return 0 end
local sj = redis.call('HGET', KEYS[1], 'sj')
if sj and sj ~= '' then
  local ok, subject = pcall(cjson.decode, sj)
  if ok and type(subject) == 'table' then
    if ARGV[3] ~= '' and type(subject.member) == 'string' and subject.member ~= ARGV[3] then return -1 end
    if ARGV[4] ~= '' and type(subject.amount) == 'number' and subject.amount ~= tonumber(ARGV[4]) then return -1 end
  end
end
redis.call('HSET', KEYS[1], 'st', 'd', 'out', ARGV[1], 'tok', '', 'exp', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], KEYS[1])
redis.call('ZREM', KEYS[3], KEYS[1])
return 1
"#;

/// KEYS[1] record, KEYS[2] due index, KEYS[3] since index; ARGV token,
/// window (c closed, o open for ms, k keep), ms. The resolver looks at it
/// once the window is over.
const MARK_UNKNOWN: &str = r#"
if ARGV[2] ~= 'c' and ARGV[2] ~= 'o' and ARGV[2] ~= 'k' then return redis.error_reply('bad window') end
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'st') ~= 'p' then return 0 end
redis.call('HSET', KEYS[1], 'st', 'u', 'exp', 0)
if ARGV[2] == 'c' then
  redis.call('HSET', KEYS[1], 'su', now)
elseif ARGV[2] == 'o' then
  redis.call('HSET', KEYS[1], 'su', now + tonumber(ARGV[3]))
end
local su = tonumber(redis.call('HGET', KEYS[1], 'su')) or now
if su < now then su = now end
redis.call('ZADD', KEYS[2], su, KEYS[1])
redis.call('ZADD', KEYS[3], 'NX', now, KEYS[1])
return 1
"#;

/// KEYS[1] record, KEYS[2] due index, KEYS[3] since index; ARGV token.
const RELEASE: &str = r#"
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'st') ~= 'p' then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
redis.call('ZREM', KEYS[3], KEYS[1])
return 1
"#;

/// KEYS[1] record, KEYS[2] due index, KEYS[3] since index; ARGV token,
/// lease ms. An unknown record, or a pending one whose lease lapsed (its
/// owner died), becomes the resolver's claim: {'taken', subject, settle
/// left ms, tries before}; {'held'} while someone holds it; {'gone'} when
/// it is finished or expired (it leaves the index).
const TAKE_UNKNOWN: &str = r#"
local r = redis.call('HMGET', KEYS[1], 'st', 'exp', 'sj', 'su', 'tr')
local st = r[1]
if not st or st == 'd' then
  redis.call('ZREM', KEYS[2], KEYS[1])
  redis.call('ZREM', KEYS[3], KEYS[1])
  return {'gone'}
end
if st == 'p' and (tonumber(r[2]) or 0) > now then return {'held'} end
local tries = tonumber(r[5]) or 0
redis.call('HSET', KEYS[1], 'st', 'p', 'tok', ARGV[1], 'exp', now + tonumber(ARGV[2]), 'tr', tries + 1)
redis.call('ZADD', KEYS[3], 'NX', now, KEYS[1])
local left = (tonumber(r[4]) or now) - now
if left < 0 then left = 0 end
return {'taken', r[3] or '', tostring(left), tostring(tries)}
"#;

/// KEYS[1] record, KEYS[2] due index, KEYS[3] since index; ARGV token.
const PROVE_ABSENT: &str = r#"
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'st') ~= 'p' then return 0 end
redis.call('HSET', KEYS[1], 'st', 'u', 'exp', 0, 'pa', '1')
redis.call('ZREM', KEYS[2], KEYS[1])
redis.call('ZREM', KEYS[3], KEYS[1])
return 1
"#;

/// KEYS[1] record, KEYS[2] due index; ARGV token, after ms.
const DEFER: &str = r#"
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'st') ~= 'p' then return 0 end
redis.call('HSET', KEYS[1], 'st', 'u', 'exp', 0)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), KEYS[1])
return 1
"#;

/// KEYS[1] due index; ARGV limit.
const DUE: &str = r#"
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
"#;

/// KEYS[1] since index; ARGV retention ms. {count, oldest age ms ('' when
/// none), the 10 000 oldest keys}. Entries older than the retention are of
/// records that expired unknown: they go first.
const STATS: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', now - tonumber(ARGV[1])))
local count = redis.call('ZCARD', KEYS[1])
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local age = ''
if oldest[2] then age = tostring(now - tonumber(oldest[2])) end
return {count, age, redis.call('ZRANGE', KEYS[1], 0, 9999)}
"#;

/// KEYS[1] a journal; ARGV entry, retention ms, cap.
const JOURNAL: &str = r#"
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[3]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// KEYS[1] a record. Returns {state, subject, outcome}, state '' when
/// there is none. A pending record whose owner died stays pending ('p'):
/// only the resolver or a retry takes it over.
const INSPECT: &str = r#"
local r = redis.call('HMGET', KEYS[1], 'st', 'sj', 'out')
if not r[1] then return {'', '', ''} end
return {r[1], r[2] or '', r[3] or ''}
"#;

/// KEYS[1] a lease; ARGV holder, ttl ms.
const SWEEP_LEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"#;

/// KEYS[1] the identity marker; ARGV a new id, '1' when a loss is
/// acknowledged. Writes the marker only when there is none. Returns
/// {created (0/1), id, since, lost ('' when none)}.
const INITIALISE: &str = r#"
local existing = redis.call('HMGET', KEYS[1], 'id', 'since', 'lost')
if existing[1] then return {0, existing[1], existing[2] or '0', existing[3] or ''} end
local at = string.format('%d', now)
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'since', at)
local lost = ''
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'lost', at)
  lost = at
end
return {1, ARGV[1], at, lost}
"#;

/// GCRA. KEYS[1] bucket holding the theoretical arrival time (TAT) in
/// microseconds; ARGV emission interval T and burst, both in microseconds
/// and cells. A request passes when its new TAT is at most `burst * T`
/// ahead of now; a refusal says how long until it would pass.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > tolerance then
  return {0, new_tat - now - tolerance}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
"#;

/// Scripts for the record transitions, each with the clock prologue.
#[derive(Debug)]
struct Scripts {
    claim: Script,
    renew: Script,
    sending: Script,
    complete: Script,
    complete_unknown: Script,
    mark_unknown: Script,
    release: Script,
    gcra: Script,
    initialise: Script,
    take_unknown: Script,
    prove_absent: Script,
    defer: Script,
    due: Script,
    stats: Script,
    sweep_lease: Script,
    journal: Script,
    inspect: Script,
}

fn with_clock(body: &str) -> Script {
    Script::new(&format!("{NOW_MS}\n{body}"))
}

/// A Redis-backed store on one server (keys are hash-tagged for a later cluster client).
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

fn store_error(e: redis::RedisError) -> StoreError {
    StoreError(format!("redis: {e}"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// Connects lazily to `url` (`redis://host:port/db` or
    /// `redis+unix:///path`): the gateway starts even when Redis is down,
    /// and every command waits at most `timeout`.
    pub fn open(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(store_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(store_error)?;
        Ok(RedisStore {
            connection,
            scripts: std::sync::Arc::new(Scripts {
                claim: with_clock(CLAIM),
                renew: with_clock(RENEW),
                sending: with_clock(SENDING),
                complete: with_clock(COMPLETE),
                complete_unknown: Script::new(COMPLETE_UNKNOWN),
                mark_unknown: with_clock(MARK_UNKNOWN),
                release: with_clock(RELEASE),
                gcra: Script::new(GCRA),
                initialise: with_clock(INITIALISE),
                take_unknown: with_clock(TAKE_UNKNOWN),
                prove_absent: Script::new(PROVE_ABSENT),
                defer: with_clock(DEFER),
                due: with_clock(DUE),
                stats: with_clock(STATS),
                sweep_lease: Script::new(SWEEP_LEASE),
                journal: Script::new(JOURNAL),
                inspect: Script::new(INSPECT),
            }),
        })
    }

    /// `flag` for a script whose KEYS[2] and KEYS[3] are the due and since indexes.
    async fn flag_indexed(&self, script: &Script, key: &str, args: &[&[u8]]) -> Result<bool, StoreError> {
        let mut invocation = script.key(key);
        invocation.key(DUE_KEY).key(SINCE_KEY);
        for arg in args {
            invocation.arg(*arg);
        }
        let mut connection = self.connection.clone();
        let n: i64 = invocation.invoke_async(&mut connection).await.map_err(store_error)?;
        Ok(n == 1)
    }

    async fn flag(&self, script: &Script, key: &str, args: &[&[u8]]) -> Result<bool, StoreError> {
        let mut invocation = script.key(key);
        for arg in args {
            invocation.arg(*arg);
        }
        let mut connection = self.connection.clone();
        let n: i64 = invocation.invoke_async(&mut connection).await.map_err(store_error)?;
        Ok(n == 1)
    }
}

fn text(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

impl Store for RedisStore {
    fn claim<'a>(&'a self, key: &'a str, token: &'a str, terms: &'a ClaimTerms) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let reply: Vec<Value> = self
                .scripts
                .claim
                .key(key)
                .key(IDENTITY_KEY)
                .key(DUE_KEY)
                .arg(&terms.fingerprint)
                .arg(token)
                .arg(millis(terms.lease))
                .arg(millis(terms.retention))
                .arg(millis(terms.attempt))
                .arg(terms.subject.as_slice())
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)?;
            let (Some(state), Some(payload)) = (reply.first().and_then(text), reply.get(1).and_then(text)) else {
                return Err(StoreError("redis: unexpected claim reply".into()));
            };
            // An unreadable number must not read as "no window left".
            let ms = || -> Result<u64, StoreError> {
                std::str::from_utf8(&payload)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| StoreError("redis: unreadable claim reply".into()))
            };
            Ok(match state.as_slice() {
                b"fresh" => Claim::Fresh,
                b"unknown" => Claim::Unknown {
                    settle_left: Duration::from_millis(ms()?),
                    proved_absent: reply.get(2).and_then(text).is_some_and(|pa| pa == b"1"),
                },
                b"mismatch" => Claim::Mismatch,
                b"busy" => Claim::Busy {
                    retry_after: Duration::from_millis(ms()?.max(1)),
                },
                b"done" => Claim::Done(payload),
                b"uninitialised" => Claim::Uninitialised,
                _ => return Err(StoreError("redis: unexpected claim state".into())),
            })
        })
    }

    fn renew<'a>(&'a self, key: &'a str, token: &'a str, lease: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let lease = millis(lease).to_string();
            self.flag(&self.scripts.renew, key, &[token.as_bytes(), lease.as_bytes()])
                .await
        })
    }

    fn sending<'a>(&'a self, key: &'a str, token: &'a str, attempt: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let attempt = millis(attempt).to_string();
            self.flag(&self.scripts.sending, key, &[token.as_bytes(), attempt.as_bytes()])
                .await
        })
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        outcome: &'a [u8],
        retention: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let retention = millis(retention).to_string();
            self.flag_indexed(
                &self.scripts.complete,
                key,
                &[token.as_bytes(), outcome, retention.as_bytes()],
            )
            .await
        })
    }

    fn complete_unknown<'a>(
        &'a self,
        key: &'a str,
        outcome: &'a [u8],
        retention: Duration,
        expect: &'a Expect,
    ) -> StoreFuture<'a, Completed> {
        Box::pin(async move {
            let retention = millis(retention).to_string();
            let member = expect.member.as_deref().unwrap_or("");
            let amount = expect.amount.map(|a| a.to_string()).unwrap_or_default();
            let mut connection = self.connection.clone();
            let n: i64 = self
                .scripts
                .complete_unknown
                .key(key)
                .key(DUE_KEY)
                .key(SINCE_KEY)
                .arg(outcome)
                .arg(retention.as_bytes())
                .arg(member.as_bytes())
                .arg(amount.as_bytes())
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)?;
            Ok(match n {
                1 => Completed::Done,
                -1 => Completed::Mismatch,
                _ => Completed::NotUnknown,
            })
        })
    }

    fn mark_unknown<'a>(&'a self, key: &'a str, token: &'a str, window: Window) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let (mode, ms) = match window {
                Window::Closed => ("c", 0),
                Window::Open(d) => ("o", millis(d)),
                Window::Keep => ("k", 0),
            };
            let ms = ms.to_string();
            self.flag_indexed(
                &self.scripts.mark_unknown,
                key,
                &[token.as_bytes(), mode.as_bytes(), ms.as_bytes()],
            )
            .await
        })
    }

    fn release<'a>(&'a self, key: &'a str, token: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.flag_indexed(&self.scripts.release, key, &[token.as_bytes()]).await })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let _: String = redis::cmd("PING")
                .query_async(&mut connection)
                .await
                .map_err(store_error)?;
            Ok(())
        })
    }

    fn due_unknown(&self, limit: usize) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            self.scripts
                .due
                .key(DUE_KEY)
                .arg(limit)
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)
        })
    }

    fn take_unknown<'a>(&'a self, key: &'a str, token: &'a str, lease: Duration) -> StoreFuture<'a, Option<Taken>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let reply: Vec<Value> = self
                .scripts
                .take_unknown
                .key(key)
                .key(DUE_KEY)
                .key(SINCE_KEY)
                .arg(token)
                .arg(millis(lease))
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)?;
            if reply.first().and_then(text).as_deref() != Some(b"taken".as_slice()) {
                return Ok(None);
            }
            let number = |i: usize| -> Result<u64, StoreError> {
                reply
                    .get(i)
                    .and_then(text)
                    .and_then(|t| String::from_utf8(t).ok())
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| StoreError("redis: unreadable take reply".into()))
            };
            Ok(Some(Taken {
                subject: reply.get(1).and_then(text).unwrap_or_default(),
                settle_left: Duration::from_millis(number(2)?),
                tries: u32::try_from(number(3)?).unwrap_or(u32::MAX),
            }))
        })
    }

    fn prove_absent<'a>(&'a self, key: &'a str, token: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.flag_indexed(&self.scripts.prove_absent, key, &[token.as_bytes()])
                .await
        })
    }

    fn defer_unknown<'a>(&'a self, key: &'a str, token: &'a str, after: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let n: i64 = self
                .scripts
                .defer
                .key(key)
                .key(DUE_KEY)
                .arg(token)
                .arg(millis(after))
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)?;
            Ok(n == 1)
        })
    }

    fn inspect<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Inspected>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let (state, subject, outcome): (Vec<u8>, Vec<u8>, Vec<u8>) = self
                .scripts
                .inspect
                .key(key)
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)?;
            let state = match state.as_slice() {
                b"" => return Ok(None),
                b"p" => RecordState::Pending,
                b"u" => RecordState::Unknown,
                b"d" => RecordState::Done,
                _ => return Err(StoreError("redis: unexpected record state".into())),
            };
            Ok(Some(Inspected {
                state,
                subject,
                outcome,
            }))
        })
    }

    fn lease<'a>(&'a self, name: &'a str, holder: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let n: i64 = self
                .scripts
                .sweep_lease
                .key(lease_key(name))
                .arg(holder)
                .arg(millis(ttl))
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)?;
            Ok(n == 1)
        })
    }

    fn unknown_stats(&self, retention: Duration) -> StoreFuture<'_, UnknownStats> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let (count, age, keys): (u64, String, Vec<String>) = self
                .scripts
                .stats
                .key(SINCE_KEY)
                .arg(millis(retention))
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)?;
            let mut by_section = std::collections::BTreeMap::new();
            for key in keys {
                if let Some(section) = super::section_of(&key) {
                    *by_section.entry(section.to_owned()).or_insert(0) += 1;
                }
            }
            Ok(UnknownStats {
                count,
                oldest: age.parse().ok().map(Duration::from_millis),
                by_section,
            })
        })
    }

    fn journal_append<'a>(
        &'a self,
        key: &'a str,
        entry: &'a [u8],
        retention: Duration,
        cap: usize,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let _: i64 = self
                .scripts
                .journal
                .key(key)
                .arg(entry)
                .arg(millis(retention))
                .arg(cap.max(1))
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)?;
            Ok(())
        })
    }

    fn journal_read<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Vec<Vec<u8>>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            redis::cmd("LRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .query_async(&mut connection)
                .await
                .map_err(store_error)
        })
    }

    fn identity(&self) -> StoreFuture<'_, Option<Identity>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let fields: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(IDENTITY_KEY)
                .arg("id")
                .arg("since")
                .arg("lost")
                .query_async(&mut connection)
                .await
                .map_err(store_error)?;
            let field = |i: usize| fields.get(i).cloned().flatten();
            Ok(field(0).map(|id| Identity {
                id,
                since_ms: field(1).and_then(|s| s.parse().ok()).unwrap_or(0),
                lost_at_ms: field(2).and_then(|s| s.parse().ok()),
            }))
        })
    }

    fn initialise(&self, how: Initialise) -> StoreFuture<'_, Initialised> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let lost = if how == Initialise::AcknowledgeLoss { "1" } else { "0" };
            let (created, id, since, lost_at): (i64, String, String, String) = self
                .scripts
                .initialise
                .key(IDENTITY_KEY)
                .arg(super::new_identity_id())
                .arg(lost)
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)?;
            let identity = Identity {
                id,
                since_ms: since.parse().unwrap_or(0),
                lost_at_ms: lost_at.parse().ok(),
            };
            Ok(if created == 1 {
                Initialised::Created(identity)
            } else {
                Initialised::Existing(identity)
            })
        })
    }

    fn acquire<'a>(&'a self, bucket: &'a str, limit: Limit) -> StoreFuture<'a, RateDecision> {
        Box::pin(async move {
            let interval = u64::try_from(limit.interval().as_micros()).unwrap_or(u64::MAX).max(1);
            let mut connection = self.connection.clone();
            let (allowed, wait_us): (i64, i64) = self
                .scripts
                .gcra
                .key(bucket)
                .arg(interval)
                .arg(limit.burst.max(1))
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)?;
            Ok(if allowed == 1 {
                RateDecision::Allowed
            } else {
                RateDecision::Limited {
                    retry_after: Duration::from_micros(u64::try_from(wait_us).unwrap_or(0).max(1)),
                }
            })
        })
    }
}
