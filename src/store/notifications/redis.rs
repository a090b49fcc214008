//! The notification log on Redis Streams: one stream per sysid, a consumer group per subscriber, dead letters in a sorted set; every multi-step change is one Lua script.
//!
//! Keys share the hash tag `{sysid}` so that the scripts' keys stay in one
//! slot. Appends deduplicate on a `seen:<content id>` key written in the
//! same script as the `XADD`, so that a provider retry after a crash
//! between the append and the HTTP answer finds the event and adds nothing.
//! A task per process blocks on `XREAD` over a connection of its own and
//! wakes the local subscriptions when any replica appends.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Script, Value};
use tokio::sync::watch;

use crate::store::redis::IDENTITY_KEY;

use super::{
    Appended, Backlog, Cursor, DeadLetter, Delivery, DeliveryState, Entry, FetchTerms, Fetched, ListQuery, LogError,
    LogFuture, NotificationLog, Record, Start,
};

/// Lua shared by the scripts: stream ids compared as numbers, a group's position.
const IDS: &str = r#"
local function parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parts(a)
  local bm, bs = parts(b)
  return am < bm or (am == bm and as < bs)
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function position(stream, group)
  local groups = redis.pcall('XINFO', 'GROUPS', stream)
  if type(groups) ~= 'table' or groups.err then return nil end
  for _, g in ipairs(groups) do
    local name, ld
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then ld = g[i + 1] end
    end
    if name == group then return ld end
  end
  return nil
end
"#;

/// KEYS[1] stream, KEYS[2] seen key, KEYS[3] newest trimmed id; ARGV[1]
/// retention ms, then field/value pairs. Before trimming by `MINID`, the
/// newest id it removes is kept, so that "was anything after this
/// position lost?" has an exact answer (Redis 7.0 does not keep it).
const APPEND: &str = r#"
local seen = redis.call('GET', KEYS[2])
if seen then return {seen, 1} end
local retention = tonumber(ARGV[1])
local floor = now_ms() - retention
if floor < 0 then floor = 0 end
local min = string.format('%d', floor)
local gone = redis.call('XREVRANGE', KEYS[1], '(' .. min .. '-0', '-', 'COUNT', 1)
if gone[1] then
  local before = redis.call('GET', KEYS[3])
  if not before or less(before, gone[1][1]) then redis.call('SET', KEYS[3], gone[1][1]) end
end
local id = redis.call('XADD', KEYS[1], 'MINID', min, '*', unpack(ARGV, 2))
-- A little longer than the entry lives, so that a retry never outlives its dedupe key.
redis.call('SET', KEYS[2], id, 'PX', retention + 60000)
return {id, 0}
"#;

/// KEYS[1] stream, KEYS[2] filters hash, KEYS[3] newest trimmed id,
/// KEYS[4] the store's identity marker; ARGV group, filter, cursor ('' to
/// resume), retention ms. Refuses another filter; with a cursor, refuses
/// one ahead of the stream or with trimmed events after it, else creates
/// the group there (or moves it). Without a marker the store is new or
/// lost its data: nothing is created. A group to resume that is missing
/// after an acknowledged loss (within the retention) may have had events
/// the loss took: it is not made afresh, the subscriber hears 'expired'.
const JOIN: &str = r#"
if redis.call('EXISTS', KEYS[4]) == 0 then return {'uninitialised', ''} end
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing and existing ~= ARGV[2] then return {'filter', existing} end
if ARGV[3] == '' then
  if not position(KEYS[1], ARGV[1]) then
    local lost = tonumber(redis.call('HGET', KEYS[4], 'lost'))
    if lost and now_ms() - lost < tonumber(ARGV[4]) then return {'expired', '0-0'} end
  end
  redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '$', 'MKSTREAM')
else
  local last = '0-0'
  local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
  if type(info) == 'table' and not info.err then
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then last = info[i + 1] end
    end
  end
  if less(last, ARGV[3]) then return {'ahead', last} end
  local trimmed = redis.call('GET', KEYS[3])
  if trimmed and less(ARGV[3], trimmed) then return {'expired', trimmed} end
  local created = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], ARGV[3], 'MKSTREAM')
  if type(created) == 'table' and created.err then
    redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], ARGV[3])
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {'ok', ''}
"#;

/// KEYS[1] stream, KEYS[2] dead set, KEYS[3] dead info, KEYS[4] newest
/// trimmed id, KEYS[5] the store's identity marker; ARGV group, consumer,
/// room, visibility ms, max deliveries, retention ms. Returns {'ok',
/// deliveries {id, fields, attempt}, dead-lettered ids}, {'expired',
/// position, newest trimmed}, or, for a group that is gone, {'uninitialised'}
/// (the store lost its data, not yet acknowledged) or {'lost'} (an
/// acknowledged loss within the retention took it).
const FETCH: &str = r#"
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local room, idle, maxd = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local ld = position(stream, group)
if not ld then
  if redis.call('EXISTS', KEYS[5]) == 0 then return {'uninitialised'} end
  local lost = tonumber(redis.call('HGET', KEYS[5], 'lost'))
  if lost and now_ms() - lost < tonumber(ARGV[6]) then return {'lost'} end
  return redis.error_reply('NOGROUP no such subscriber')
end
local trimmed = redis.call('GET', KEYS[4])
if trimmed and less(ld, trimmed) then return {'expired', ld, trimmed} end
local now = now_ms()
local out, dead = {}, {}
-- Dead letters go once their event is twice the retention old (one
-- trimmed unacknowledged is dead-lettered at about one retention), a
-- bounded step each time.
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.format('%d', now - 2 * tonumber(ARGV[6])), 'LIMIT', 0, 100)
for _, id in ipairs(old) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
end
local function bury(id, count)
  redis.call('XACK', stream, group, id)
  redis.call('ZADD', KEYS[2], string.match(id, '^(%d+)-'), id)
  redis.call('HSET', KEYS[3], id, string.format('%d:%d', count, now))
  table.insert(dead, id)
end
-- What this consumer holds that is not yet stale (its stale ones are due again).
local held = 0
local summary = redis.call('XPENDING', stream, group)
for _, c in ipairs(summary[4] or {}) do
  if c[1] == consumer then held = tonumber(c[2]) end
end
if held > 0 then
  held = held - #redis.call('XPENDING', stream, group, 'IDLE', idle, '-', '+', held, consumer)
end
room = room - held
if room <= 0 then return {'ok', out, dead} end
local owners = {}
for _, p in ipairs(redis.call('XPENDING', stream, group, 'IDLE', idle, '-', '+', room + 100)) do
  if room <= 0 then break end
  local id, owner, count = p[1], p[2], tonumber(p[4])
  owners[owner] = true
  if count >= maxd then
    bury(id, count)
  else
    local claimed = redis.call('XCLAIM', stream, group, consumer, idle, id)
    if claimed[1] then
      table.insert(out, {claimed[1][1], claimed[1][2], count + 1})
      room = room - 1
    else
      -- trimmed before it was acknowledged: the operator must see it
      bury(id, count)
    end
  end
end
-- A consumer left with nothing pending is forgotten (a live one is made
-- again by its next read), so that dead instances do not pile up.
for owner in pairs(owners) do
  if owner ~= consumer and #redis.call('XPENDING', stream, group, '-', '+', 1, owner) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', stream, group, owner)
  end
end
if room > 0 then
  local fresh = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', room, 'STREAMS', stream, '>')
  if fresh then
    for _, e in ipairs(fresh[1][2]) do table.insert(out, {e[1], e[2], 1}) end
  end
end
return {'ok', out, dead}
"#;

/// KEYS[1] stream, KEYS[2] dead set, KEYS[3] dead info; ARGV group, ids.
/// Each id counts once, pending or dead.
const ACK: &str = r#"
local n = 0
for i = 2, #ARGV do
  local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  local buried = redis.call('ZREM', KEYS[2], ARGV[i])
  if buried == 1 then redis.call('HDEL', KEYS[3], ARGV[i]) end
  if acked == 1 or buried == 1 then n = n + 1 end
end
return n
"#;

/// KEYS[1] stream; ARGV group, consumer.
const LEAVE: &str = r#"
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if type(p) == 'table' and p.err == nil and #p == 0 then
  redis.pcall('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return 1
"#;

/// KEYS[1] stream, KEYS[2] dead set, KEYS[3] dead info; ARGV group,
/// visibility ms, consumer, offset, then ids (none: the page of at most
/// 1000 dead letters from `offset`). A redriven event is pending again with
/// no attempts and due at once, under a consumer no stream uses. Returns
/// {moved, examined}.
const REDRIVE: &str = r#"
if not position(KEYS[1], ARGV[1]) then return redis.error_reply('NOGROUP no such subscriber') end
local ids = {}
if #ARGV > 4 then
  for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  local offset = tonumber(ARGV[4])
  ids = redis.call('ZRANGE', KEYS[2], offset, offset + 999)
end
local moved = 0
for _, id in ipairs(ids) do
  if redis.call('ZSCORE', KEYS[2], id) then
    local c = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, id, 'IDLE', ARGV[2], 'RETRYCOUNT', 0, 'FORCE', 'JUSTID')
    if c[1] then
      redis.call('ZREM', KEYS[2], id)
      redis.call('HDEL', KEYS[3], id)
      moved = moved + 1
    end
  end
end
return {moved, #ids}
"#;

/// KEYS[1] stream, KEYS[2] dead set, KEYS[3] dead info; ARGV group, from
/// score, limit. Returns {id, info, entry or false}.
const DEAD: &str = r#"
if not position(KEYS[1], ARGV[1]) then return redis.error_reply('NOGROUP no such subscriber') end
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[2], '+inf', 'LIMIT', 0, ARGV[3])) do
  local e = redis.call('XRANGE', KEYS[1], id, id)
  out[#out + 1] = {id, redis.call('HGET', KEYS[3], id) or '0:0', e[1] or false}
end
return out
"#;

/// KEYS[1] stream, KEYS[3] dead info; ARGV group, ids. Returns per id
/// {'dead', info} | {'pending', attempts} | {'cmp', last delivered id}.
const STATES: &str = r#"
local last = position(KEYS[1], ARGV[1])
if not last then return redis.error_reply('NOGROUP no such subscriber') end
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local d = redis.call('HGET', KEYS[3], id)
  if d then
    out[#out + 1] = {'dead', d}
  else
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    if p[1] then out[#out + 1] = {'pending', tostring(p[1][4])} else out[#out + 1] = {'cmp', last} end
  end
end
return out
"#;

/// KEYS[1] stream, KEYS[2] newest trimmed id; ARGV start, end, count, the
/// cursor listed after ('' for none). Returns {'ok', entries} or
/// {'expired', newest trimmed}.
const LIST: &str = r#"
if ARGV[4] ~= '' then
  local trimmed = redis.call('GET', KEYS[2])
  if trimmed and less(ARGV[4], trimmed) then return {'expired', trimmed} end
end
return {'ok', redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])}
"#;

/// KEYS[1] stream, KEYS[2] dead set; ARGV group. Returns {pending, lag
/// (-1 when Redis cannot tell), dead}.
const BACKLOG: &str = r#"
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if type(groups) ~= 'table' or groups.err then return redis.error_reply('NOGROUP no such subscriber') end
for _, g in ipairs(groups) do
  local name, pending, lag
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'pending' then pending = g[i + 1] elseif g[i] == 'lag' then lag = g[i + 1] end
  end
  if name == ARGV[1] then
    if type(lag) ~= 'number' then lag = -1 end
    return {pending, lag, redis.call('ZCARD', KEYS[2])}
  end
end
return redis.error_reply('NOGROUP no such subscriber')
"#;

#[derive(Debug)]
struct Scripts {
    append: Script,
    join: Script,
    fetch: Script,
    ack: Script,
    leave: Script,
    redrive: Script,
    dead: Script,
    states: Script,
    list: Script,
    backlog: Script,
}

/// Aborts the tail task when the last handle of the log goes.
#[derive(Debug)]
struct TailTask(tokio::task::AbortHandle);

impl Drop for TailTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The Redis-backed log.
pub struct RedisLog {
    connection: ConnectionManager,
    scripts: Arc<Scripts>,
    prefix: String,
    retention_ms: u64,
    changes: watch::Sender<u64>,
    _tail: TailTask,
}

impl std::fmt::Debug for RedisLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLog")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> LogError {
    LogError::Unavailable(format!("redis: {e}"))
}

fn no_group_or(e: redis::RedisError, subscriber: &str) -> LogError {
    if e.code() == Some("NOGROUP") || e.to_string().contains("NOGROUP") {
        LogError::NoSubscriber(subscriber.to_owned())
    } else {
        unavailable(e)
    }
}

fn bad_reply(what: &str) -> LogError {
    LogError::Unavailable(format!("redis: unexpected {what} reply"))
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn array(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

fn cursor(value: &Value) -> Result<Cursor, LogError> {
    text(value)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad_reply("stream id"))
}

/// `{id, {field, value, ...}}` as Redis returns a stream entry.
fn entry(value: &Value) -> Result<Entry, LogError> {
    let parts = array(value).ok_or_else(|| bad_reply("entry"))?;
    let (Some(id), Some(fields)) = (parts.first(), parts.get(1).and_then(array)) else {
        return Err(bad_reply("entry"));
    };
    let mut record = Record {
        id: String::new(),
        service: String::new(),
        method: String::new(),
        biz_order_no: None,
        biz_user_id: None,
        timestamp: String::new(),
        version: String::new(),
        rps: String::new(),
        trace: None,
    };
    for pair in fields.chunks(2) {
        let (Some(name), Some(value)) = (pair.first().and_then(text), pair.get(1).and_then(text)) else {
            continue;
        };
        match name.as_str() {
            "id" => record.id = value,
            "svc" => record.service = value,
            "mth" => record.method = value,
            "ord" => record.biz_order_no = Some(value),
            "usr" => record.biz_user_id = Some(value),
            "ts" => record.timestamp = value,
            "v" => record.version = value,
            "rps" => record.rps = value,
            "tp" => record.trace = Some(value),
            _ => {}
        }
    }
    Ok(Entry {
        cursor: cursor(id)?,
        record,
    })
}

fn number<T: std::str::FromStr>(value: Option<&Value>, what: &str) -> Result<T, LogError> {
    value
        .and_then(text)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad_reply(what))
}

/// A script with the shared functions before it.
fn lua(body: &str) -> Script {
    Script::new(&format!("{IDS}{body}"))
}

/// `attempts:at_ms` as the dead info hash keeps it.
fn dead_info(text: &str) -> (u32, u64) {
    let (a, t) = text.split_once(':').unwrap_or((text, "0"));
    (a.parse().unwrap_or(0), t.parse().unwrap_or(0))
}

impl RedisLog {
    /// Connects lazily to `url`; every command waits at most `timeout`.
    /// Must be called inside a Tokio runtime (it starts the tail task).
    pub fn open(url: &str, timeout: Duration, sysid: &str, retention: Duration) -> Result<Self, LogError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(unavailable)?;
        let prefix = format!("yg:ntf:{{{sysid}}}:");
        let changes = watch::channel(0).0;
        let tail = tokio::spawn(tail(client, format!("{prefix}stream"), changes.clone(), timeout));
        Ok(RedisLog {
            connection,
            scripts: Arc::new(Scripts {
                append: lua(APPEND),
                join: lua(JOIN),
                fetch: lua(FETCH),
                ack: lua(ACK),
                leave: lua(LEAVE),
                redrive: lua(REDRIVE),
                dead: lua(DEAD),
                states: lua(STATES),
                list: lua(LIST),
                backlog: lua(BACKLOG),
            }),
            prefix,
            retention_ms: u64::try_from(retention.as_millis()).unwrap_or(u64::MAX).max(1),
            changes,
            _tail: TailTask(tail.abort_handle()),
        })
    }

    fn stream(&self) -> String {
        format!("{}stream", self.prefix)
    }

    /// The newest id the retention trimmed.
    fn trimmed(&self) -> String {
        format!("{}trimmed", self.prefix)
    }

    /// `script` on the stream and `subscriber`'s dead-letter keys, with the
    /// group name, `args` and `cursors` as its arguments.
    fn for_subscriber<'s>(
        &self,
        script: &'s Script,
        subscriber: &str,
        args: &[String],
        cursors: &[Cursor],
    ) -> redis::ScriptInvocation<'s> {
        let mut invocation = script.key(self.stream());
        invocation
            .key(format!("{}dead:{subscriber}", self.prefix))
            .key(format!("{}deadn:{subscriber}", self.prefix))
            .key(self.trimmed())
            .key(IDENTITY_KEY)
            .arg(subscriber);
        for arg in args {
            invocation.arg(arg);
        }
        for c in cursors {
            invocation.arg(c.to_string());
        }
        invocation
    }

    /// Wakes this replica's subscriptions.
    fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Blocks on `XREAD` after the newest id seen and bumps `changes` on every
/// append, until the log is dropped. A lost connection is made again.
async fn tail(client: redis::Client, stream: String, changes: watch::Sender<u64>, timeout: Duration) {
    const BLOCK: Duration = Duration::from_millis(1000);
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(BLOCK + timeout));
    let mut last = "$".to_owned();
    let mut connection = None;
    loop {
        let conn = match &mut connection {
            Some(c) => c,
            None => match client.get_multiplexed_async_connection_with_config(&config).await {
                Ok(c) => connection.insert(c),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            },
        };
        let reply: Result<Value, _> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(1000))
            .arg("COUNT")
            .arg(100)
            .arg("STREAMS")
            .arg(&stream)
            .arg(&last)
            .query_async(conn)
            .await;
        match reply {
            Ok(Value::Nil) => {}
            Ok(value) => {
                // {{stream, {{id, fields}, ...}}}
                let newest = array(&value)
                    .and_then(|streams| streams.first())
                    .and_then(array)
                    .and_then(|s| s.get(1))
                    .and_then(array)
                    .and_then(|entries| entries.last())
                    .and_then(array)
                    .and_then(|e| e.first())
                    .and_then(text);
                if let Some(id) = newest {
                    last = id;
                    changes.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
            Err(_) => {
                connection = None;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

impl NotificationLog for RedisLog {
    fn append<'a>(&'a self, record: &'a Record) -> LogFuture<'a, Appended> {
        Box::pin(async move {
            let mut invocation = self.scripts.append.key(self.stream());
            invocation
                .key(format!("{}seen:{}", self.prefix, record.id))
                .key(self.trimmed())
                .arg(self.retention_ms);
            for (name, value) in [
                ("id", Some(&record.id)),
                ("svc", Some(&record.service)),
                ("mth", Some(&record.method)),
                ("ord", record.biz_order_no.as_ref()),
                ("usr", record.biz_user_id.as_ref()),
                ("ts", Some(&record.timestamp)),
                ("v", Some(&record.version)),
                ("rps", Some(&record.rps)),
                ("tp", record.trace.as_ref()),
            ] {
                if let Some(value) = value {
                    invocation.arg(name).arg(value);
                }
            }
            let mut connection = self.connection.clone();
            let reply: Vec<Value> = invocation.invoke_async(&mut connection).await.map_err(unavailable)?;
            let appended = Appended {
                cursor: cursor(reply.first().ok_or_else(|| bad_reply("append"))?)?,
                duplicate: number::<i64>(reply.get(1), "append")? == 1,
            };
            if !appended.duplicate {
                self.bump();
            }
            Ok(appended)
        })
    }

    fn join<'a>(&'a self, subscriber: &'a str, start: Start, filter: &'a str) -> LogFuture<'a, ()> {
        Box::pin(async move {
            let at = match start {
                Start::Resume => String::new(),
                Start::After(at) => at.to_string(),
            };
            let mut connection = self.connection.clone();
            let reply: Vec<Value> = self
                .scripts
                .join
                .key(self.stream())
                .key(format!("{}filters", self.prefix))
                .key(self.trimmed())
                .key(IDENTITY_KEY)
                .arg(subscriber)
                .arg(filter)
                .arg(at)
                .arg(self.retention_ms)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let detail = || reply.get(1).ok_or_else(|| bad_reply("join"));
            match (reply.first().and_then(text).as_deref(), start) {
                (Some("ok"), _) => Ok(()),
                (Some("uninitialised"), _) => Err(LogError::StoreUninitialised),
                // After an acknowledged loss: replay everything kept since.
                (Some("expired"), Start::Resume) => Err(LogError::CursorExpired {
                    cursor: Cursor::default(),
                    resume_from: self::cursor(detail()?)?,
                }),
                (Some("filter"), _) => Err(LogError::FilterMismatch {
                    subscriber: subscriber.to_owned(),
                    existing: text(detail()?).unwrap_or_default(),
                }),
                (Some("ahead"), Start::After(cursor)) => Err(LogError::CursorAhead {
                    cursor,
                    newest: self::cursor(detail()?)?,
                }),
                (Some("expired"), Start::After(cursor)) => Err(LogError::CursorExpired {
                    cursor,
                    resume_from: self::cursor(detail()?)?,
                }),
                _ => Err(bad_reply("join")),
            }
        })
    }

    fn fetch<'a>(&'a self, subscriber: &'a str, consumer: &'a str, terms: FetchTerms) -> LogFuture<'a, Fetched> {
        Box::pin(async move {
            if terms.room == 0 {
                return Ok(Fetched::default());
            }
            let args = [
                consumer.to_owned(),
                terms.room.to_string(),
                u64::try_from(terms.visibility.as_millis())
                    .unwrap_or(u64::MAX)
                    .to_string(),
                terms.max_deliveries.max(1).to_string(),
                self.retention_ms.to_string(),
            ];
            let mut connection = self.connection.clone();
            let reply: Vec<Value> = self
                .for_subscriber(&self.scripts.fetch, subscriber, &args, &[])
                .invoke_async(&mut connection)
                .await
                .map_err(|e| no_group_or(e, subscriber))?;
            match reply.first().and_then(text).as_deref() {
                Some("expired") => {
                    return Err(LogError::CursorExpired {
                        cursor: cursor(reply.get(1).ok_or_else(|| bad_reply("fetch"))?)?,
                        resume_from: cursor(reply.get(2).ok_or_else(|| bad_reply("fetch"))?)?,
                    });
                }
                Some("uninitialised") => return Err(LogError::StoreUninitialised),
                // The loss took the group and what it had not acknowledged:
                // replay everything kept since.
                Some("lost") => {
                    return Err(LogError::CursorExpired {
                        cursor: Cursor::default(),
                        resume_from: Cursor::default(),
                    });
                }
                _ => {}
            }
            let mut out = Fetched::default();
            for item in reply.get(1).and_then(array).unwrap_or_default() {
                let parts = array(item).ok_or_else(|| bad_reply("fetch"))?;
                let (Some(id), Some(fields)) = (parts.first(), parts.get(1)) else {
                    return Err(bad_reply("fetch"));
                };
                let entry = entry(&Value::Array(vec![id.clone(), fields.clone()]))?;
                out.deliveries.push(Delivery {
                    entry,
                    attempt: number(parts.get(2), "fetch")?,
                });
            }
            for id in reply.get(2).and_then(array).unwrap_or_default() {
                out.dead_lettered.push(cursor(id)?);
            }
            Ok(out)
        })
    }

    fn ack<'a>(&'a self, subscriber: &'a str, cursors: &'a [Cursor]) -> LogFuture<'a, usize> {
        Box::pin(async move {
            if cursors.is_empty() {
                return Ok(0);
            }
            let mut connection = self.connection.clone();
            let n: i64 = self
                .for_subscriber(&self.scripts.ack, subscriber, &[], cursors)
                .invoke_async(&mut connection)
                .await
                .map_err(|e| no_group_or(e, subscriber))?;
            // A consumer of this replica that was full may take more now
            // (one on another replica finds out at its next poll).
            self.bump();
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }

    fn leave<'a>(&'a self, subscriber: &'a str, consumer: &'a str) -> LogFuture<'a, ()> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let _: i64 = self
                .scripts
                .leave
                .key(self.stream())
                .arg(subscriber)
                .arg(consumer)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn dead_letters<'a>(
        &'a self,
        subscriber: &'a str,
        after: Option<Cursor>,
        limit: usize,
    ) -> LogFuture<'a, Vec<DeadLetter>> {
        Box::pin(async move {
            // Scored by the cursor's milliseconds: read a little past the page
            // to order the ties of one millisecond by sequence.
            let args = [
                after.map_or(0, |a| a.ms).to_string(),
                limit.saturating_add(super::MAX_BATCH).to_string(),
            ];
            let mut connection = self.connection.clone();
            let reply: Vec<Value> = self
                .for_subscriber(&self.scripts.dead, subscriber, &args, &[])
                .invoke_async(&mut connection)
                .await
                .map_err(|e| no_group_or(e, subscriber))?;
            let mut out = Vec::new();
            for item in &reply {
                let parts = array(item).ok_or_else(|| bad_reply("dead letters"))?;
                let c = cursor(parts.first().ok_or_else(|| bad_reply("dead letters"))?)?;
                if after.is_some_and(|a| c <= a) {
                    continue;
                }
                let (attempts, at_ms) = dead_info(&parts.get(1).and_then(text).unwrap_or_default());
                let entry = match parts.get(2) {
                    Some(v @ Value::Array(_)) => Some(entry(v)?),
                    _ => None,
                };
                out.push(DeadLetter {
                    cursor: c,
                    entry,
                    attempts,
                    at_ms,
                });
            }
            out.sort_by_key(|d| d.cursor);
            out.truncate(limit);
            Ok(out)
        })
    }

    fn redrive<'a>(&'a self, subscriber: &'a str, cursors: &'a [Cursor], visibility: Duration) -> LogFuture<'a, usize> {
        Box::pin(async move {
            let visibility = u64::try_from(visibility.as_millis()).unwrap_or(u64::MAX).to_string();
            let mut connection = self.connection.clone();
            let mut moved = 0usize;
            // All of them: page by page, one script each, so that Redis is
            // never held long; what cannot move (trimmed) is stepped over.
            let mut offset = 0usize;
            loop {
                let args = [
                    visibility.clone(),
                    super::REDRIVE_CONSUMER.to_owned(),
                    offset.to_string(),
                ];
                let reply: Vec<Value> = self
                    .for_subscriber(&self.scripts.redrive, subscriber, &args, cursors)
                    .invoke_async(&mut connection)
                    .await
                    .map_err(|e| no_group_or(e, subscriber))?;
                let n: usize = number(reply.first(), "redrive")?;
                let examined: usize = number(reply.get(1), "redrive")?;
                moved = moved.saturating_add(n);
                if !cursors.is_empty() || examined == 0 {
                    break;
                }
                offset = offset.saturating_add(examined.saturating_sub(n));
            }
            self.bump();
            Ok(moved)
        })
    }

    fn list<'a>(&'a self, query: &'a ListQuery) -> LogFuture<'a, Vec<Entry>> {
        Box::pin(async move {
            if query.limit == 0 {
                return Ok(Vec::new());
            }
            let since = query.since_ms.map(|ms| Cursor { ms, seq: 0 });
            // Strictly after `a`: the next possible id (`(a` is refused for the largest).
            let after = |a: Cursor| match (a.seq.checked_add(1), a.ms.checked_add(1)) {
                (Some(seq), _) => Some(Cursor { ms: a.ms, seq }),
                (None, Some(ms)) => Some(Cursor { ms, seq: 0 }),
                (None, None) => None,
            };
            let start = match (query.after, since) {
                (Some(a), s) => match (after(a), s) {
                    (None, _) => return Ok(Vec::new()),
                    (Some(next), Some(s)) if s > next => s,
                    (Some(next), _) => next,
                },
                (None, Some(s)) => s,
                (None, None) => Cursor::default(),
            };
            let end = query.until_ms.map_or("+".to_owned(), |ms| format!("({ms}-0"));
            let mut connection = self.connection.clone();
            let reply: Vec<Value> = self
                .scripts
                .list
                .key(self.stream())
                .key(self.trimmed())
                .arg(start.to_string())
                .arg(end)
                .arg(query.limit)
                .arg(query.after.map(|a| a.to_string()).unwrap_or_default())
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            if reply.first().and_then(text).as_deref() == Some("expired") {
                return Err(LogError::CursorExpired {
                    cursor: query.after.unwrap_or_default(),
                    resume_from: cursor(reply.get(1).ok_or_else(|| bad_reply("list"))?)?,
                });
            }
            let mut out = Vec::new();
            for item in reply.get(1).and_then(array).unwrap_or_default() {
                out.push(entry(item)?);
            }
            Ok(out)
        })
    }

    fn states<'a>(&'a self, subscriber: &'a str, cursors: &'a [Cursor]) -> LogFuture<'a, Vec<DeliveryState>> {
        Box::pin(async move {
            if cursors.is_empty() {
                return Ok(Vec::new());
            }
            let mut connection = self.connection.clone();
            let reply: Vec<Value> = self
                .for_subscriber(&self.scripts.states, subscriber, &[], cursors)
                .invoke_async(&mut connection)
                .await
                .map_err(|e| no_group_or(e, subscriber))?;
            let mut out = Vec::with_capacity(cursors.len());
            for (item, c) in reply.iter().zip(cursors) {
                let parts = array(item).ok_or_else(|| bad_reply("states"))?;
                let kind = parts.first().and_then(text).unwrap_or_default();
                let value = parts.get(1).and_then(text).unwrap_or_default();
                out.push(match kind.as_str() {
                    "dead" => DeliveryState::Dead {
                        attempts: dead_info(&value).0,
                    },
                    "pending" => DeliveryState::Pending {
                        attempts: value.parse().unwrap_or(0),
                    },
                    "cmp" => {
                        let last: Cursor = value.parse().map_err(|_| bad_reply("states"))?;
                        if *c <= last {
                            DeliveryState::Acked
                        } else {
                            DeliveryState::Waiting
                        }
                    }
                    _ => return Err(bad_reply("states")),
                });
            }
            Ok(out)
        })
    }

    fn backlog<'a>(&'a self, subscriber: &'a str) -> LogFuture<'a, Backlog> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let reply: Vec<i64> = self
                .for_subscriber(&self.scripts.backlog, subscriber, &[], &[])
                .invoke_async(&mut connection)
                .await
                .map_err(|e| no_group_or(e, subscriber))?;
            let count = |i: usize| reply.get(i).copied().ok_or_else(|| bad_reply("backlog"));
            let (pending, lag, dead) = (count(0)?, count(1)?, count(2)?);
            Ok(Backlog {
                pending: u64::try_from(pending).map_err(|_| bad_reply("backlog"))?,
                waiting: u64::try_from(lag).ok(),
                dead: u64::try_from(dead).map_err(|_| bad_reply("backlog"))?,
            })
        })
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
