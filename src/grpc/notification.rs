//! `yungate.v1.NotificationService`: Subscribe (a stream per subscriber instance), Ack, history, dead letters and redrive over the notification log.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, WatchStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::convert;
use super::proto::notification::Event;
use super::proto::notification_service_server::NotificationService;
use super::proto::{
    self, AckRequest, AckResponse, CompanyAuditNotification, ListDeadLettersRequest, ListDeadLettersResponse,
    ListNotificationsRequest, ListNotificationsResponse, ListedNotification, NotificationFilter,
    OrderResultNotification, PayPasswordNotification, RedriveRequest, RedriveResponse, SubscribeRequest,
};
use super::status;
use crate::error::{GatewayError, Violation};
use crate::notify::fanout::{self, Feed, Filter, Subscription};
use crate::provider::notify::{Kind, payload};
use crate::provider::wire::NotificationBody;
use crate::serve::access::{AccessPolicy, Caller};
use crate::store::notifications::{
    Cursor, DeliveryState, Entry, FetchTerms, ListQuery, MAX_BATCH, NotificationLog, Start,
};
use crate::telemetry::Metrics;

/// How the fan-out delivers.
#[derive(Debug, Clone, Copy)]
pub struct FanoutSettings {
    pub visibility: Duration,
    pub max_deliveries: u32,
    pub max_in_flight: u32,
}

/// The service over one log.
#[derive(Debug, Clone)]
pub struct Notifications {
    log: Arc<dyn NotificationLog>,
    settings: FanoutSettings,
    shutdown: watch::Receiver<bool>,
    access: Option<AccessPolicy>,
    metrics: Arc<Metrics>,
}

impl Notifications {
    /// The streams end (UNAVAILABLE, subscribe again) when `shutdown` turns true.
    pub fn new(
        log: Arc<dyn NotificationLog>,
        settings: FanoutSettings,
        shutdown: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Notifications {
            log,
            settings,
            shutdown,
            access: None,
            metrics,
        }
    }

    /// Checks the access rules' `subscribers` on every rpc that acts as a subscriber.
    pub fn with_access(self, access: AccessPolicy) -> Self {
        Notifications {
            access: Some(access),
            ..self
        }
    }

    /// Whether the caller may act as `subscriber` in `rpc`.
    fn permit<T>(&self, request: &Request<T>, rpc: &str, subscriber: &str) -> Result<(), Status> {
        match &self.access {
            // A name that is not one is refused by validation; the rules see only names.
            Some(access) if is_name(subscriber) => access
                .check_subscriber(
                    request.extensions().get::<Caller>(),
                    &format!("/yungate.v1.NotificationService/{rpc}"),
                    subscriber,
                )
                .map_err(|e| status::from_gateway_error(&e)),
            _ => Ok(()),
        }
    }
}

/// The most entries one listing reads through to fill a filtered page.
const MAX_SCAN: usize = 10_000;
/// Entries read at a time while filling a filtered page.
const SCAN_BATCH: usize = 100;
/// The raw JSON one page carries at most (it always carries one event).
const PAGE_BYTES: usize = 1024 * 1024;
/// Default page size.
const PAGE: usize = 100;
/// The most values one filter part lists, and their length.
const MAX_FILTER_VALUES: usize = 32;
const MAX_NAME: usize = 64;

fn violation(field: &str, description: impl Into<String>) -> Violation {
    Violation {
        field: field.to_owned(),
        description: description.into(),
    }
}

fn is_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_NAME
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check_name(field: &str, value: &str, required: bool, out: &mut Vec<Violation>) {
    if value.is_empty() {
        if required {
            out.push(violation(field, "required: the subscribing service's name"));
        }
    } else if !is_name(value) {
        out.push(violation(field, "at most 64 of [A-Za-z0-9._-]"));
    }
}

fn check_cursor(field: &str, value: &str, out: &mut Vec<Violation>) -> Option<Cursor> {
    match value.parse::<Cursor>() {
        Ok(c) => Some(c),
        Err(reason) => {
            out.push(violation(field, reason));
            None
        }
    }
}

/// An optional cursor: empty is none.
fn optional_cursor(field: &str, value: &str, out: &mut Vec<Violation>) -> Option<Cursor> {
    if value.is_empty() {
        None
    } else {
        check_cursor(field, value, out)
    }
}

fn check_cursors(field: &str, values: &[String], out: &mut Vec<Violation>) -> Vec<Cursor> {
    if values.len() > MAX_BATCH {
        out.push(violation(field, format!("at most {MAX_BATCH} cursors")));
        return Vec::new();
    }
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| check_cursor(&format!("{field}[{i}]"), v, out))
        .collect()
}

/// Ack's and Redrive's request: a subscriber and its cursors.
fn subscriber_and_cursors(subscriber: &str, cursors: &[String]) -> Result<Vec<Cursor>, Status> {
    let mut violations = Vec::new();
    check_name("subscriber", subscriber, true, &mut violations);
    let cursors = check_cursors("cursors", cursors, &mut violations);
    invalid(violations)?;
    Ok(cursors)
}

fn filter_of(filter: Option<NotificationFilter>, out: &mut Vec<Violation>) -> Filter {
    let f = filter.unwrap_or_default();
    for (field, values) in [("filter.services", &f.services), ("filter.methods", &f.methods)] {
        if values.len() > MAX_FILTER_VALUES {
            out.push(violation(field, format!("at most {MAX_FILTER_VALUES} values")));
        }
        if values.iter().any(|v| v.is_empty() || v.len() > MAX_NAME) {
            out.push(violation(field, "each value 1 to 64 characters"));
        }
    }
    for (field, value) in [
        ("filter.biz_user_id", &f.biz_user_id),
        ("filter.biz_order_no", &f.biz_order_no),
    ] {
        if value.len() > MAX_NAME {
            out.push(violation(field, "at most 64 characters"));
        }
    }
    let some = |s: String| (!s.is_empty()).then_some(s);
    Filter {
        services: f.services,
        methods: f.methods,
        biz_user_id: some(f.biz_user_id),
        biz_order_no: some(f.biz_order_no),
    }
}

fn page_size(requested: u32, out: &mut Vec<Violation>) -> usize {
    match requested {
        0 => PAGE,
        n if n as usize > MAX_BATCH => {
            out.push(violation("page_size", format!("at most {MAX_BATCH}")));
            PAGE
        }
        n => n as usize,
    }
}

fn invalid(violations: Vec<Violation>) -> Result<(), Status> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(status::from_gateway_error(&GatewayError::Invalid(violations)))
    }
}

fn message_of<T: prost::Message + Default>(full_name: &str, payload: &serde_json::Map<String, Json>) -> Option<T> {
    let desc = convert::message(full_name)?;
    let dynamic = convert::from_wire(&desc, &Json::Object(payload.clone())).ok()?;
    dynamic.transcode_to::<T>().ok()
}

/// The typed event of a stored notification; none for a kind this gateway
/// does not type (or a payload it cannot read: `raw_json` still has it).
fn event_of(entry: &Entry) -> Option<Event> {
    if (entry.record.service.as_str(), entry.record.method.as_str())
        == (crate::reconcile::EVENT_SERVICE, crate::reconcile::EVENT_METHOD)
    {
        let body: Json = serde_json::from_str(&entry.record.rps).ok()?;
        let summary = serde_json::from_value(body.get("summary")?.clone()).ok()?;
        return Some(Event::Reconciliation(proto::ReconciliationNotification {
            summary: Some(super::reconciliation::summary_of(&summary)),
        }));
    }
    let body = NotificationBody::parse(&entry.record.rps).ok()?;
    let payload = payload(&body);
    match Kind::of(&body.service, &body.method) {
        Kind::OrderResult => message_of::<OrderResultNotification>("yungate.v1.OrderResultNotification", &payload)
            .map(Event::OrderResult),
        Kind::CompanyAudit => message_of::<CompanyAuditNotification>("yungate.v1.CompanyAuditNotification", &payload)
            .map(Event::CompanyAudit),
        Kind::PayPassword => message_of::<PayPasswordNotification>("yungate.v1.PayPasswordNotification", &payload)
            .map(Event::PayPassword),
        Kind::Other => None,
    }
}

/// The proto form of a stored notification.
pub fn notification_of(entry: &Entry, attempt: u32) -> proto::Notification {
    let r = &entry.record;
    proto::Notification {
        cursor: entry.cursor.to_string(),
        delivery_attempt: attempt,
        service: r.service.clone(),
        method: r.method.clone(),
        biz_order_no: r.biz_order_no.clone().unwrap_or_default(),
        biz_user_id: r.biz_user_id.clone().unwrap_or_default(),
        provider_timestamp: r.timestamp.clone(),
        received_at_ms: i64::try_from(entry.received_ms()).unwrap_or(i64::MAX),
        raw_json: r.rps.clone(),
        notification_id: r.id.clone(),
        event: event_of(entry),
    }
}

fn random_consumer() -> String {
    let mut bytes = [0u8; 8];
    // An all-zero name on a broken RNG would only make two streams compete.
    let _ = getrandom::fill(&mut bytes);
    format!("stream-{}", hex::encode(bytes))
}

fn log_status(e: &crate::store::notifications::LogError) -> Status {
    status::from_log_error(e)
}

type NotificationStream = std::pin::Pin<Box<dyn Stream<Item = Result<proto::Notification, Status>> + Send>>;

#[tonic::async_trait]
impl NotificationService for Notifications {
    type SubscribeStream = NotificationStream;

    async fn subscribe(&self, request: Request<SubscribeRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        self.permit(&request, "Subscribe", &request.get_ref().subscriber)?;
        let r = request.into_inner();
        let mut violations = Vec::new();
        check_name("subscriber", &r.subscriber, true, &mut violations);
        check_name("consumer", &r.consumer, false, &mut violations);
        let filter = filter_of(r.filter, &mut violations);
        let start = match r.from_cursor.as_deref() {
            None => Some(Start::Resume),
            Some(c) => check_cursor("from_cursor", c, &mut violations).map(Start::After),
        };
        if r.consumer == crate::store::notifications::REDRIVE_CONSUMER {
            violations.push(violation("consumer", "is reserved for redriven events".to_owned()));
        }
        invalid(violations)?;
        let start = start.unwrap_or(Start::Resume);
        self.log
            .join(&r.subscriber, start, &filter.canonical())
            .await
            .map_err(|e| log_status(&e))?;
        let limit = self.settings.max_in_flight;
        let room = if r.max_in_flight == 0 || r.max_in_flight > limit {
            limit
        } else {
            r.max_in_flight
        } as usize;
        let consumer = if r.consumer.is_empty() {
            random_consumer()
        } else {
            r.consumer
        };
        tracing::info!(subscriber = %r.subscriber, consumer = %consumer, "subscription started");
        let (tx, rx) = mpsc::channel::<Feed>(room.max(1));
        let open = self.metrics.stream_opened(&r.subscriber);
        let (metrics, subscriber) = (Arc::clone(&self.metrics), r.subscriber.clone());
        tokio::spawn(fanout::run(
            Arc::clone(&self.log),
            Subscription {
                subscriber: r.subscriber,
                consumer,
                filter,
            },
            FetchTerms {
                room,
                visibility: self.settings.visibility,
                max_deliveries: self.settings.max_deliveries,
            },
            tx,
            self.shutdown.clone(),
            Arc::clone(&self.metrics),
        ));
        // The gateway stopping ends the stream from here, whatever the
        // channel holds: tonic ends a stream at its first error.
        let stopping = WatchStream::new(self.shutdown.clone())
            .filter(|stopping| *stopping)
            .map(|_| Err(status::shutting_down()));
        let stream = ReceiverStream::new(rx)
            .map(move |feed| match feed {
                Feed::Delivery(d) => {
                    // Counted open as long as the stream is.
                    let _ = &open;
                    let now_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                    let lag = now_ms.saturating_sub(d.entry.received_ms());
                    metrics.notification_delivered(&subscriber, d.attempt, Duration::from_millis(lag));
                    // Linked to the event's trace (its order's call, else its ingest).
                    let span = tracing::info_span!(
                        target: "yungate::notify",
                        "notification delivery",
                        otel.name = "deliver notification",
                        otel.kind = "producer",
                        subscriber = %subscriber,
                        cursor = %d.entry.cursor,
                        attempt = d.attempt,
                        biz_order_no = d.entry.record.biz_order_no.as_deref(),
                    );
                    if let Some(trace) = &d.entry.record.trace {
                        crate::telemetry::link_to(&span, trace);
                    }
                    drop(span);
                    Ok(notification_of(&d.entry, d.attempt))
                }
                Feed::Failed(e) => Err(log_status(&e)),
            })
            // The merge would otherwise wait on `stopping` for ever once the
            // fan-out is gone: its end is an error too.
            .chain(tokio_stream::once(Err(status::subscription_ended())))
            .merge(stopping);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn ack(&self, request: Request<AckRequest>) -> Result<Response<AckResponse>, Status> {
        self.permit(&request, "Ack", &request.get_ref().subscriber)?;
        let r = request.into_inner();
        let cursors = subscriber_and_cursors(&r.subscriber, &r.cursors)?;
        let n = self
            .log
            .ack(&r.subscriber, &cursors)
            .await
            .map_err(|e| log_status(&e))?;
        Ok(Response::new(AckResponse {
            acknowledged: u32::try_from(n).unwrap_or(u32::MAX),
        }))
    }

    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        self.permit(&request, "ListNotifications", &request.get_ref().subscriber)?;
        let r = request.into_inner();
        let mut violations = Vec::new();
        let after = optional_cursor("after_cursor", &r.after_cursor, &mut violations);
        if r.since_ms < 0 {
            violations.push(violation("since_ms", "must not be negative"));
        }
        if r.until_ms < 0 {
            violations.push(violation("until_ms", "must not be negative"));
        }
        check_name("subscriber", &r.subscriber, false, &mut violations);
        let filter = filter_of(r.filter, &mut violations);
        let size = page_size(r.page_size, &mut violations);
        invalid(violations)?;
        let mut query = ListQuery {
            after,
            since_ms: (r.since_ms > 0).then_some(r.since_ms as u64),
            until_ms: (r.until_ms > 0).then_some(r.until_ms as u64),
            // Unfiltered, a page is one read; filtered, reads stay small
            // (an event may be 64 KiB) however long the scan.
            limit: if filter == Filter::default() { size } else { SCAN_BATCH },
        };
        let mut page = Vec::new();
        let mut bytes = 0usize;
        let mut scanned = 0;
        let mut more = false;
        'scan: while scanned < MAX_SCAN {
            let entries = self.log.list(&query).await.map_err(|e| log_status(&e))?;
            let full = entries.len() == query.limit;
            for entry in entries {
                scanned += 1;
                query.after = Some(entry.cursor);
                if filter.matches(&entry.record) {
                    bytes = bytes.saturating_add(entry.record.rps.len());
                    page.push(entry);
                    // A page stays well inside a client's default 4 MiB
                    // message limit (the typed event about doubles each).
                    if page.len() == size || bytes >= PAGE_BYTES {
                        more = true;
                        break 'scan;
                    }
                }
            }
            if !full {
                break;
            }
            more = true;
        }
        let states = if r.subscriber.is_empty() {
            vec![None; page.len()]
        } else {
            let cursors: Vec<Cursor> = page.iter().map(|e| e.cursor).collect();
            self.log
                .states(&r.subscriber, &cursors)
                .await
                .map_err(|e| log_status(&e))?
                .into_iter()
                .map(Some)
                .collect()
        };
        let next_cursor = if more {
            query.after.map(|c| c.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        let notifications = page
            .iter()
            .zip(states)
            .map(|(entry, state)| {
                let (state, attempts) = match state {
                    None => (proto::DeliveryState::Unspecified, 0),
                    Some(DeliveryState::Waiting) => (proto::DeliveryState::Waiting, 0),
                    Some(DeliveryState::Pending { attempts }) => (proto::DeliveryState::Pending, attempts),
                    Some(DeliveryState::Acked) => (proto::DeliveryState::Acked, 0),
                    Some(DeliveryState::Dead { attempts }) => (proto::DeliveryState::Dead, attempts),
                };
                ListedNotification {
                    notification: Some(notification_of(entry, attempts)),
                    state: state as i32,
                }
            })
            .collect();
        Ok(Response::new(ListNotificationsResponse {
            notifications,
            next_cursor,
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        self.permit(&request, "ListDeadLetters", &request.get_ref().subscriber)?;
        let r = request.into_inner();
        let mut violations = Vec::new();
        check_name("subscriber", &r.subscriber, true, &mut violations);
        let after = optional_cursor("after_cursor", &r.after_cursor, &mut violations);
        let size = page_size(r.page_size, &mut violations);
        invalid(violations)?;
        let letters = self
            .log
            .dead_letters(&r.subscriber, after, size + 1)
            .await
            .map_err(|e| log_status(&e))?;
        let more = letters.len() > size;
        let letters: Vec<_> = letters.into_iter().take(size).collect();
        let next_cursor = if more {
            letters.last().map(|d| d.cursor.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListDeadLettersResponse {
            dead_letters: letters
                .into_iter()
                .map(|d| proto::DeadLetter {
                    notification: Some(match &d.entry {
                        Some(entry) => notification_of(entry, d.attempts),
                        None => proto::Notification {
                            cursor: d.cursor.to_string(),
                            ..Default::default()
                        },
                    }),
                    attempts: d.attempts,
                    dead_at_ms: i64::try_from(d.at_ms).unwrap_or(i64::MAX),
                })
                .collect(),
            next_cursor,
        }))
    }

    async fn redrive(&self, request: Request<RedriveRequest>) -> Result<Response<RedriveResponse>, Status> {
        self.permit(&request, "Redrive", &request.get_ref().subscriber)?;
        let r = request.into_inner();
        let cursors = subscriber_and_cursors(&r.subscriber, &r.cursors)?;
        let n = self
            .log
            .redrive(&r.subscriber, &cursors, self.settings.visibility)
            .await
            .map_err(|e| log_status(&e))?;
        tracing::info!(subscriber = %r.subscriber, redriven = n, "dead letters redriven");
        Ok(Response::new(RedriveResponse {
            redriven: u32::try_from(n).unwrap_or(u32::MAX),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::notify::tests::any_rps;
    use crate::store::notifications::{Cursor, Record};

    fn entry(rps: &str) -> Entry {
        Entry {
            cursor: Cursor { ms: 1, seq: 0 },
            record: Record {
                id: "id".into(),
                service: "OrderService".into(),
                method: "pay".into(),
                biz_order_no: None,
                biz_user_id: None,
                timestamp: "2026-12-01 10:00:00".into(),
                version: "1.0".into(),
                rps: rps.into(),
                trace: None,
            },
        }
    }

    #[test]
    fn an_order_result_is_typed_from_either_return_value_form() {
        // 4.2.12: returnValue{orderNo, bizOrderNo, amount (Long, fen), payDatetime, buyerBizUserId}, rps.status OK.
        let value = serde_json::json!({"orderNo": "1", "bizOrderNo": "B1", "amount": 100,
                                       "payDatetime": "2026-12-01 10:00:00", "buyerBizUserId": "u1"});
        for value in [value.clone(), Json::String(value.to_string())] {
            let rps =
                serde_json::json!({"service": "OrderService", "method": "pay", "status": "OK", "returnValue": value});
            let Some(Event::OrderResult(o)) = notification_of(&entry(&rps.to_string()), 1).event else {
                panic!("not typed");
            };
            assert_eq!(
                (o.biz_order_no.as_str(), o.amount, o.status.as_str()),
                ("B1", 100, "OK")
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_stored_rps_converts_without_panicking(rps in any_rps()) {
            let n = notification_of(&entry(&rps), 1);
            proptest::prop_assert_eq!(n.raw_json, rps);
        }
    }
}
