//! The provider's asynchronous notifications: signed form POSTs to backUrl, retried on the 3.6 schedule.
//!
//! A background loop wakes on every call (and every 50 ms), finishes due
//! company audits and pending payouts, and takes the notices the calls
//! queued. Each notice is delivered by its own task in at most 8 attempts
//! ("最多通知 8 次, 通知频率为 5s, 2m, 10m, 15m, 1h, 2h, 6h, 15h", 3.6
//! l.266): each attempt waits the next step of that schedule, the first one
//! 5 s after the event (v2: 4 attempts, 5s, 10m, 1h, 6h), multiplied by the
//! time scale, until the receiver answers HTTP 200. Every attempt is
//! recorded for `GET /sandbox/notifications`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::Shared;
use super::member::finish_due_audits;
use super::state::Notice;
use crate::provider::wire::{self, NotificationEnvelope};

/// The wait before each attempt in v1 (spec 3.6): 8 attempts in all.
pub const RETRY_SCHEDULE_V1: [Duration; 8] = [
    Duration::from_secs(5),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(900),
    Duration::from_secs(3600),
    Duration::from_secs(7200),
    Duration::from_secs(21600),
    Duration::from_secs(54000),
];

/// The wait before each attempt in the v2 profile: 4 attempts in all.
pub const RETRY_SCHEDULE_V2: [Duration; 4] = [
    Duration::from_secs(5),
    Duration::from_secs(600),
    Duration::from_secs(3600),
    Duration::from_secs(21600),
];

/// One delivery attempt, as `GET /sandbox/notifications` lists it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub notice_id: u64,
    pub url: String,
    pub service: &'static str,
    pub method: &'static str,
    pub attempt: u32,
    pub at: OffsetDateTime,
    /// HTTP status, or `None` when the request failed (refused, timed out).
    pub http_status: Option<u16>,
}

impl Attempt {
    fn to_json(&self) -> Value {
        json!({
            "noticeId": self.notice_id,
            "url": self.url,
            "service": self.service,
            "method": self.method,
            "attempt": self.attempt,
            "at": wire::format_timestamp(self.at),
            "atMillis": (self.at.unix_timestamp_nanos() / 1_000_000) as i64,
            "httpStatus": self.http_status,
        })
    }
}

/// The notifier's shared pieces: the wake-up signal and the attempt log.
#[derive(Debug, Default)]
pub struct Notifier {
    pub wake: Notify,
    pub attempts: Mutex<Vec<Attempt>>,
    next_id: Mutex<u64>,
}

impl Notifier {
    /// The attempt log as JSON.
    pub fn attempts_json(&self) -> Value {
        let attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        Value::Array(attempts.iter().map(Attempt::to_json).collect())
    }

    fn next_id(&self) -> u64 {
        let mut id = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
        *id += 1;
        *id
    }
}

/// Runs until the returned set is dropped or aborted: the loop and its deliveries.
pub fn spawn(shared: Arc<Shared>) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    tasks.spawn(run(shared));
    tasks
}

async fn run(shared: Arc<Shared>) {
    // The sandbox may run without any SoaClient in the process (yungate sandbox).
    crate::provider::client::install_tls_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut deliveries = JoinSet::new();
    loop {
        tokio::select! {
            _ = shared.notifier.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        let mut notices = take_outbox(&shared);
        if notices.is_empty() {
            while deliveries.try_join_next().is_some() {}
            continue;
        }
        let faults = shared.faults().notifications;
        if faults.reorder {
            // Gather what else the window brings, then send newest first.
            tokio::time::sleep(Duration::from_millis(faults.reorder_window_ms.unwrap_or(200))).await;
            notices.extend(take_outbox(&shared));
            notices.reverse();
        }
        for (i, notice) in notices.into_iter().enumerate() {
            if shared.chance(faults.drop_rate) {
                tracing::info!(
                    service = notice.service,
                    method = notice.method,
                    "sandbox dropped a notification (fault)"
                );
                continue;
            }
            let copies = if shared.chance(faults.duplicate_rate) { 2 } else { 1 };
            // Staggered starts keep a reordered batch in its new order on the wire.
            let start = Duration::from_millis(faults.delay_ms + if faults.reorder { 30 * i as u64 } else { 0 });
            for _ in 0..copies {
                deliveries.spawn(deliver(Arc::clone(&shared), http.clone(), notice.clone(), start));
            }
        }
        while deliveries.try_join_next().is_some() {}
    }
}

/// The signed form for one notice.
fn envelope(shared: &Shared, notice: &Notice) -> Option<NotificationEnvelope> {
    let mut rps = json!({
        "service": notice.service,
        "method": notice.method,
        "returnValue": notice.return_value,
    });
    if let Some(status) = notice.status {
        rps["status"] = json!(status);
    }
    if let Some(code) = &notice.error_code {
        rps["errorCode"] = json!(code);
    }
    if let Some(message) = &notice.message {
        rps["message"] = json!(message);
    }
    let rps = rps.to_string();
    let config = &shared.config;
    let timestamp = wire::format_timestamp(OffsetDateTime::now_utc());
    let sign = config
        .keys
        .sign(&wire::notification_signing_string(&config.sysid, &rps, &timestamp))
        .ok()?;
    Some(NotificationEnvelope {
        sysid: config.sysid.clone(),
        sign,
        timestamp,
        v: config.keys.protocol.version().to_owned(),
        rps,
    })
}

/// Takes the queued notices, after finishing the audits that are due.
fn take_outbox(shared: &Shared) -> Vec<Notice> {
    let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    let now = OffsetDateTime::now_utc();
    finish_due_audits(&mut state, now);
    super::orders::finish_due_payouts(&mut state, now);
    std::mem::take(&mut state.outbox)
}

async fn deliver(shared: Arc<Shared>, http: reqwest::Client, notice: Notice, start: Duration) {
    let id = shared.notifier.next_id();
    if !start.is_zero() {
        tokio::time::sleep(start).await;
    }
    let schedule: &[Duration] = match shared.config.keys.protocol {
        crate::provider::crypto::Protocol::V1 => &RETRY_SCHEDULE_V1,
        crate::provider::crypto::Protocol::V2 => &RETRY_SCHEDULE_V2,
    };
    for (attempt, wait) in schedule.iter().enumerate() {
        tokio::time::sleep(shared.config.scaled(*wait)).await;
        // Signed afresh each time: the timestamp must be within the receiver's window.
        let form = {
            let shared = Arc::clone(&shared);
            let notice = notice.clone();
            tokio::task::spawn_blocking(move || envelope(&shared, &notice))
                .await
                .ok()
                .flatten()
        };
        let Some(form) = form else {
            tracing::warn!(
                service = notice.service,
                method = notice.method,
                "cannot sign a notification"
            );
            return;
        };
        let status = http
            .post(&notice.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body(form.to_form())
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16());
        tracing::info!(
            service = notice.service,
            method = notice.method,
            attempt = attempt + 1,
            http_status = status,
            "sandbox notification"
        );
        shared
            .notifier
            .attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Attempt {
                notice_id: id,
                url: notice.url.clone(),
                service: notice.service,
                method: notice.method,
                attempt: attempt as u32 + 1,
                at: OffsetDateTime::now_utc(),
                http_status: status,
            });
        if status == Some(200) {
            return;
        }
    }
}
