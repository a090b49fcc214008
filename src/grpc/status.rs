//! The one place that builds `tonic::Status`: provider errors, transport failures and field violations, with google.rpc details.
//!
//! Every section 7 code maps to a gRPC code through its class in
//! `provider/errors.rs` (a code that proves nothing is OUTCOME_UNKNOWN
//! whatever its class), and the provider's code and message
//! travel in `google.rpc.ErrorInfo` (domain `allinpay`). Failures of our own
//! carry domain `yungate` and a reason a program can switch on.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use tonic::metadata::MetadataValue;

use super::service::{RECOVERED, REPLAYED};
use crate::error::{Forgets, GatewayError, NumberUsed, OrderFailed};
use crate::provider::checkfile::FetchError;
use crate::provider::client::{CallError, proves_something};
use crate::provider::errors::{self, Class};
use crate::reconcile::ReconcileError;
use crate::store::notifications::LogError;

/// The gRPC code of a refusal class (`provider::errors::Class`): about the
/// request's content INVALID_ARGUMENT; about state (locked, not verified, no
/// balance) FAILED_PRECONDITION; "exists already" ALREADY_EXISTS; "no such"
/// NOT_FOUND; the application's set-up PERMISSION_DENIED; our keys INTERNAL.
pub fn code_of(class: Class) -> Code {
    match class {
        Class::Invalid => Code::InvalidArgument,
        Class::State => Code::FailedPrecondition,
        Class::Exists => Code::AlreadyExists,
        Class::Missing => Code::NotFound,
        Class::Setup => Code::PermissionDenied,
        Class::Keys => Code::Internal,
        Class::ProviderFault => Code::Unknown,
        Class::Timeout => Code::DeadlineExceeded,
    }
}

const DOMAIN: &str = "yungate";
const PROVIDER_DOMAIN: &str = "allinpay";

fn with_info(code: Code, message: String, reason: &str, domain: &str, metadata: HashMap<String, String>) -> Status {
    Status::with_error_details(code, message, ErrorDetails::with_error_info(reason, domain, metadata))
}

/// Why a call's outcome is unknown, as ErrorInfo's `cause` metadata: the
/// reason is always `OUTCOME_UNKNOWN`, so one switch covers them all.
fn outcome_unknown(code: Code, message: String, cause: &str, mut metadata: HashMap<String, String>) -> Status {
    metadata.insert("cause".to_owned(), cause.to_owned());
    with_info(code, message, OUTCOME_UNKNOWN, DOMAIN, metadata)
}

/// The ErrorInfo reason of every failure after which the call may have been processed.
pub const OUTCOME_UNKNOWN: &str = "OUTCOME_UNKNOWN";

/// A failed provider call as a status. The code is a promise about retry
/// safety: UNAVAILABLE (with RetryInfo) only when nothing was sent;
/// whatever may have reached the provider is DEADLINE_EXCEEDED or UNKNOWN
/// with reason `OUTCOME_UNKNOWN`.
pub fn from_call_error(error: &CallError) -> Status {
    match error {
        CallError::Business {
            code,
            message,
            verified,
        } => {
            let info = errors::shown(code);
            let unverified = if *verified { "" } else { " [signature not verified]" };
            let text = match info {
                Some(i) => format!(
                    "provider refused the call: {code} {} ({message}){unverified}",
                    i.message_en
                ),
                None => format!("provider refused the call: {code} ({message}){unverified}"),
            };
            let metadata = HashMap::from([
                ("message".to_owned(), message.clone()),
                ("verified".to_owned(), verified.to_string()),
            ]);
            // The same column makes CallError::outcome() Unknown: one table, no drift.
            // A code section 7 does not list (9999 of the 3.3 example) proves nothing either.
            match errors::lookup(code) {
                Some(e) if proves_something(code) => with_info(code_of(e.class), text, code, PROVIDER_DOMAIN, metadata),
                found => {
                    let mut metadata = metadata;
                    metadata.insert("providerCode".to_owned(), code.clone());
                    let (grpc_code, cause) = match found.map(|e| e.class) {
                        Some(Class::Timeout) => (Code::DeadlineExceeded, "PROVIDER_PAYMENT_TIMEOUT"),
                        _ => (Code::Unknown, "PROVIDER_UNKNOWN_ERROR"),
                    };
                    outcome_unknown(
                        grpc_code,
                        format!("{text}; the call may still have been processed, check before retrying"),
                        cause,
                        metadata,
                    )
                }
            }
        }
        CallError::NotSent(detail) => {
            let mut details = ErrorDetails::with_error_info("PROVIDER_UNREACHABLE", DOMAIN, HashMap::new());
            details.set_retry_info(Some(Duration::from_secs(1)));
            Status::with_error_details(
                Code::Unavailable,
                format!("the request did not reach the provider and is safe to retry: {detail}"),
                details,
            )
        }
        CallError::RefusedUnread { status } => with_info(
            Code::InvalidArgument,
            format!(
                "the provider refused the request unread (HTTP {status}): nothing was processed, \
                 and the same request cannot pass"
            ),
            "PROVIDER_REFUSED_UNREAD",
            DOMAIN,
            HashMap::from([("httpStatus".to_owned(), status.to_string())]),
        ),
        CallError::OutcomeUnknown(detail) => outcome_unknown(
            Code::DeadlineExceeded,
            format!("no answer from the provider; the call may have been processed, check before retrying: {detail}"),
            "NO_ANSWER",
            HashMap::new(),
        ),
        CallError::Http { status, .. } => outcome_unknown(
            Code::Unknown,
            format!("the provider answered HTTP {status}; the call may have been processed, check before retrying"),
            "PROVIDER_HTTP_ERROR",
            HashMap::from([("httpStatus".to_owned(), status.to_string())]),
        ),
        CallError::BadSignature(e) => outcome_unknown(
            Code::Unknown,
            format!(
                "the provider's answer failed signature verification ({e}); the call may have been processed, \
                 check before retrying, and check the provider certificate"
            ),
            "BAD_PROVIDER_SIGNATURE",
            HashMap::new(),
        ),
        CallError::Malformed(e) => outcome_unknown(
            Code::Unknown,
            format!(
                "the provider's answer is malformed ({e}); the call may have been processed, check before retrying"
            ),
            "MALFORMED_PROVIDER_RESPONSE",
            HashMap::new(),
        ),
        CallError::Decrypt { field, .. } => outcome_unknown(
            Code::Unknown,
            format!(
                "cannot decrypt {field} in the provider's answer (check the keys and protocol profile); \
                 the call was processed, check before retrying"
            ),
            "PROVIDER_DECRYPT_FAILED",
            HashMap::new(),
        ),
    }
}

pub use crate::error::Violation;

/// Any gateway failure as a status: the one mapping (invariant 3). Every
/// refusal of the gateway's own says in ErrorInfo (domain `yungate`) why,
/// and, where a retry can pass, in RetryInfo when.
pub fn from_gateway_error(error: &GatewayError) -> Status {
    let retry = |code: Code, message: String, reason: &str, metadata: HashMap<String, String>, after: Duration| {
        let mut details = ErrorDetails::with_error_info(reason, DOMAIN, metadata);
        details.set_retry_info(Some(after));
        Status::with_error_details(code, message, details)
    };
    match error {
        GatewayError::Invalid(violations) => invalid_argument(violations),
        GatewayError::InvalidKey(reason) => {
            let mut details = ErrorDetails::with_error_info("INVALID_IDEMPOTENCY_KEY", DOMAIN, HashMap::new());
            details.add_bad_request_violation("idempotency-key", reason.clone());
            Status::with_error_details(
                Code::InvalidArgument,
                format!("invalid request: the idempotency-key metadata {reason}"),
                details,
            )
        }
        GatewayError::Provider(e) => from_call_error(e),
        GatewayError::KeyReused { field } => with_info(
            Code::FailedPrecondition,
            format!(
                "{field} was used before with a different request: nothing was sent; \
                 use a new {field} for a new intent, or resend the first request unchanged"
            ),
            "IDEMPOTENCY_KEY_REUSED",
            DOMAIN,
            HashMap::from([("field".to_owned(), (*field).to_owned())]),
        ),
        GatewayError::InFlight { retry_after } => retry(
            Code::Aborted,
            "a request with the same idempotency key is still in flight: retry it unchanged to get its outcome".into(),
            "IDEMPOTENCY_IN_FLIGHT",
            HashMap::new(),
            *retry_after,
        ),
        GatewayError::NumberUsed(used) => number_used(used),
        GatewayError::OrderFailed(failed) => order_failed(failed),
        GatewayError::Unresolved {
            cause,
            detail,
            retry_after,
        } => {
            let metadata = HashMap::from([("cause".to_owned(), (*cause).to_owned())]);
            let mut details = ErrorDetails::with_error_info(OUTCOME_UNKNOWN, DOMAIN, metadata);
            if let Some(after) = retry_after {
                details.set_retry_info(Some(*after));
            }
            Status::with_error_details(
                Code::Unknown,
                format!(
                    "an earlier attempt with this idempotency key may have been processed and its outcome \
                     cannot be learnt now; nothing new was sent: {detail}"
                ),
                details,
            )
        }
        GatewayError::StoreUninitialised => retry(
            Code::Unavailable,
            "the idempotency store has no identity marker: it is new, or it lost its data (a restart without \
             persistence, a failover to an empty replica, a FLUSHALL). Money calls are refused and this one was \
             not sent, until an operator runs `yungate store init` (a first deployment) or, having checked what \
             was in flight, `yungate store acknowledge-loss` (README: when the store loses its data)"
                .into(),
            "STORE_NOT_INITIALISED",
            HashMap::new(),
            Duration::from_secs(10),
        ),
        GatewayError::StoreUnavailable(detail) => retry(
            Code::Unavailable,
            format!("the idempotency store is unavailable, so this call was not sent (nothing moved): {detail}"),
            "STORE_UNAVAILABLE",
            HashMap::new(),
            Duration::from_secs(1),
        ),
        GatewayError::RateLimited {
            scope,
            class,
            retry_after,
        } => retry(
            Code::ResourceExhausted,
            format!(
                "rate limit of the {} {} class exceeded: nothing was sent; retry after {} ms",
                scope.name(),
                class.name(),
                retry_after.as_millis().max(1)
            ),
            "RATE_LIMITED",
            HashMap::from([
                ("scope".to_owned(), scope.name().to_owned()),
                ("class".to_owned(), class.name().to_owned()),
            ]),
            *retry_after,
        ),
        GatewayError::Overloaded { retry_after } => retry(
            Code::Unavailable,
            "the gateway has too many requests in progress: this one was not started and is safe to retry".into(),
            "GATEWAY_OVERLOADED",
            HashMap::new(),
            *retry_after,
        ),
        GatewayError::ProviderBusy { retry_after } => retry(
            Code::Unavailable,
            "too many provider calls are in flight: this one was not sent and is safe to retry".into(),
            "PROVIDER_BUSY",
            HashMap::new(),
            *retry_after,
        ),
        GatewayError::DeadlineExceeded {
            sent: true,
            continues: true,
        } => outcome_unknown(
            Code::DeadlineExceeded,
            "the deadline passed before the provider answered; the call goes on at the gateway and records \
             its outcome: retry with the same idempotency key to learn it"
                .into(),
            "CALLER_DEADLINE",
            HashMap::new(),
        ),
        GatewayError::DeadlineExceeded {
            sent: true,
            continues: false,
        } => outcome_unknown(
            Code::DeadlineExceeded,
            "the deadline passed before the provider answered; the call may have been processed \
             (send an idempotency-key to make such a call retry-safe)"
                .into(),
            "CALLER_DEADLINE",
            HashMap::new(),
        ),
        GatewayError::DeadlineExceeded { sent: false, .. } => with_info(
            Code::DeadlineExceeded,
            "the deadline passed before the provider answered".into(),
            "DEADLINE_EXCEEDED",
            DOMAIN,
            HashMap::new(),
        ),
        GatewayError::Unauthenticated(why) => with_info(
            Code::Unauthenticated,
            format!("the caller is not authenticated, so nothing was done: {why}"),
            "UNAUTHENTICATED",
            DOMAIN,
            HashMap::new(),
        ),
        GatewayError::PermissionDenied { caller, what } => with_info(
            Code::PermissionDenied,
            format!(
                "{caller} may not call {what}: nothing was done; the gateway's access.rules must name this caller for it"
            ),
            "PERMISSION_DENIED",
            DOMAIN,
            HashMap::from([("caller".to_owned(), caller.clone())]),
        ),
        GatewayError::Internal(what) => internal(what),
    }
}

/// A number already used at the provider, met on a first attempt: says what
/// it proves (something holds the number, not this request's doing here),
/// never that the request failed or was refused for its content.
fn number_used(used: &NumberUsed) -> Status {
    let NumberUsed {
        field,
        confirmation,
        code,
        message,
        verified,
        existing,
        forgets,
        replayed,
    } = used;
    let said = errors::shown(code).map_or("", |e| e.message_zh);
    let unverified = if *verified { "" } else { ", signature not verified" };
    let status = existing.map_or(String::new(), |s| {
        format!("; the provider reports its status as {} {}", s.code(), s.name_zh())
    });
    let what = if *confirmation {
        format!(
            "the order this {field} names is no longer unpaid at the provider ({code} {said}{unverified}){status}: this confirmation was not applied"
        )
    } else {
        format!(
            "something with this {field} already exists at the provider ({code} {said}{unverified}){status}: this request was not processed under it"
        )
    };
    let memory = match forgets {
        None => String::new(),
        Some(Forgets::Restart) => " This gateway keeps its records in memory: an attempt sent before its last \
             restart is forgotten, and what exists may be that very attempt."
            .to_owned(),
        Some(Forgets::Loss { at_ms }) => format!(
            " This gateway's store lost its records (the loss was acknowledged at {} UTC): an attempt sent \
             before then is forgotten, and what exists may be that very attempt.",
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(*at_ms) * 1_000_000)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_else(|| at_ms.to_string())
        ),
    };
    let mut metadata = HashMap::from([
        ("field".to_owned(), (*field).to_owned()),
        ("providerCode".to_owned(), code.clone()),
        ("message".to_owned(), message.clone()),
        ("verified".to_owned(), verified.to_string()),
    ]);
    if let Some(s) = existing {
        metadata.insert("orderStatus".to_owned(), s.code().to_string());
    }
    let mut status = with_info(
        Code::AlreadyExists,
        format!(
            "{what}. The gateway has no record of an earlier attempt with this {field}.{memory} If this intent was \
             sent before, look that one up (GetOrderDetail, GetMemberInfo); otherwise use a new {field}."
        ),
        "NUMBER_ALREADY_USED",
        DOMAIN,
        metadata,
    );
    if *replayed {
        status
            .metadata_mut()
            .insert(REPLAYED, MetadataValue::from_static("true"));
    }
    status
}

/// An order an earlier attempt made, found failed or closed: a failure the
/// caller cannot take for a success, whichever rpc asked.
fn order_failed(failed: &OrderFailed) -> Status {
    let OrderFailed {
        status,
        order_no,
        message,
        replayed,
    } = failed;
    let why = message.as_deref().map_or(String::new(), |m| format!(": {m}"));
    let mut metadata = HashMap::from([("orderStatus".to_owned(), status.code().to_string())]);
    if let Some(no) = order_no {
        metadata.insert("orderNo".to_owned(), no.clone());
    }
    if let Some(m) = message {
        metadata.insert("payFailMessage".to_owned(), m.clone());
    }
    let mut grpc = with_info(
        Code::FailedPrecondition,
        format!(
            "the order an earlier attempt made failed at the provider (6.13 status {} {}{why}): no money moved \
             for it; a new attempt needs a new number",
            status.code(),
            status.name_zh()
        ),
        "ORDER_FAILED",
        DOMAIN,
        metadata,
    );
    grpc.metadata_mut()
        .insert(RECOVERED, MetadataValue::from_static("true"));
    if *replayed {
        grpc.metadata_mut().insert(REPLAYED, MetadataValue::from_static("true"));
    }
    grpc
}

/// No record of unknown outcome to settle by hand for this rpc and number:
/// finished, never made, or held by a call in progress.
pub fn no_unknown_outcome(rpc: &str) -> Status {
    with_info(
        Code::FailedPrecondition,
        format!(
            "there is no record of unknown outcome of {rpc} with this number that nobody holds: it is finished \
             (GetTimeline shows how), was never made, or a call or the resolver holds it now (retry in a moment); \
             nothing was changed"
        ),
        "NO_UNKNOWN_OUTCOME",
        DOMAIN,
        HashMap::new(),
    )
}

/// No stored reconciliation report of a day.
pub fn no_reconciliation_report(day: &str) -> Status {
    with_info(
        Code::NotFound,
        format!("no reconciliation report of {day} is stored: run Reconcile for it (not as a dry run) first"),
        "NO_RECONCILIATION_REPORT",
        DOMAIN,
        HashMap::new(),
    )
}

/// A reconciliation run that did not end in a report. getCheckAccountFile
/// is a read-only query and a run may always be made again; what the code
/// promises is whether the provider got the query, and the message says
/// whether records were completed before the failure (only
/// `ReconcileError::Interrupted` has any).
pub fn from_reconcile_error(error: &ReconcileError) -> Status {
    let unchanged = format!("reconciliation: {error}; no record was changed");
    let info = |code: Code, reason: &str, message: String| with_info(code, message, reason, DOMAIN, HashMap::new());
    match error {
        ReconcileError::Date => info(Code::InvalidArgument, "INVALID_DATE", unchanged),
        ReconcileError::Running => {
            let mut details = ErrorDetails::with_error_info("RECONCILIATION_RUNNING", DOMAIN, HashMap::new());
            details.set_retry_info(Some(Duration::from_secs(30)));
            Status::with_error_details(Code::Aborted, unchanged, details)
        }
        ReconcileError::Gateway(e) => from_gateway_error(e),
        ReconcileError::Provider(CallError::Business {
            code,
            message: said,
            verified,
        }) if proves_something(code) => {
            let mut metadata = HashMap::new();
            metadata.insert("code".to_owned(), code.clone());
            let unverified = if *verified { "" } else { " [signature not verified]" };
            with_info(
                Code::FailedPrecondition,
                format!(
                    "reconciliation: getCheckAccountFile was refused with {code} ({said}){unverified}; the provider \
                     generates the file of a day at 11:00 China time the next day (4.3.2); no record was changed"
                ),
                "PROVIDER_REFUSED",
                DOMAIN,
                metadata,
            )
        }
        ReconcileError::Provider(e @ CallError::RefusedUnread { .. }) => info(
            Code::FailedPrecondition,
            "PROVIDER_REFUSED",
            format!("reconciliation: {e}: the same query cannot pass; no record was changed"),
        ),
        ReconcileError::Provider(e) if e.is_not_sent() => {
            let mut details = ErrorDetails::with_error_info("PROVIDER_UNAVAILABLE", DOMAIN, HashMap::new());
            details.set_retry_info(Some(Duration::from_secs(5)));
            Status::with_error_details(
                Code::Unavailable,
                format!("reconciliation: {e}: getCheckAccountFile was not sent; no record was changed"),
                details,
            )
        }
        // The query may have reached the provider; it moves nothing.
        ReconcileError::Provider(e) => info(
            Code::Unknown,
            "PROVIDER_FAILED",
            format!(
                "reconciliation: {e}: getCheckAccountFile may have reached the provider (a read-only query: run \
                 again); no record was changed"
            ),
        ),
        ReconcileError::NoUrl => info(Code::FailedPrecondition, "FILE_REFUSED", unchanged),
        ReconcileError::Fetch(
            FetchError::ForeignHost { .. }
            | FetchError::Scheme { .. }
            | FetchError::BadUrl(_)
            | FetchError::Status(300..=399),
        ) => info(Code::FailedPrecondition, "FILE_URL_REFUSED", unchanged),
        ReconcileError::Fetch(FetchError::TooLarge { .. }) => {
            info(Code::FailedPrecondition, "FILE_TOO_LARGE", unchanged)
        }
        ReconcileError::Fetch(FetchError::Status(404)) => info(Code::FailedPrecondition, "FILE_NOT_FOUND", unchanged),
        ReconcileError::Fetch(FetchError::Timeout(_)) => info(Code::DeadlineExceeded, "FILE_TIMEOUT", unchanged),
        // The download was asked for and failed: a read, nothing moved; run again.
        ReconcileError::Fetch(_) => info(Code::Unknown, "FILE_UNAVAILABLE", unchanged),
        ReconcileError::File { .. } | ReconcileError::Overflow => {
            info(Code::FailedPrecondition, "FILE_MALFORMED", unchanged)
        }
        ReconcileError::Store(_) => info(Code::Unavailable, "STORE_UNAVAILABLE", unchanged),
        ReconcileError::Stopped(_) | ReconcileError::Day { .. } => info(
            Code::Internal,
            "RECONCILIATION_STOPPED",
            format!("reconciliation: {error}"),
        ),
        // Records were changed: never UNAVAILABLE, whose promise is that nothing was.
        ReconcileError::Interrupted { completed, .. } => {
            let mut metadata = HashMap::new();
            metadata.insert("completed".to_owned(), completed.to_string());
            with_info(
                Code::Aborted,
                format!("reconciliation: {error}"),
                "RECONCILIATION_INTERRUPTED",
                DOMAIN,
                metadata,
            )
        }
    }
}

/// An outcome not to be settled by hand yet: the provider may still act on
/// the last attempt for `left`.
pub fn outcome_still_settling(left: Duration) -> Status {
    let mut details = ErrorDetails::with_error_info("EARLIER_ATTEMPT_SETTLING", DOMAIN, HashMap::new());
    details.set_retry_info(Some(left));
    Status::with_error_details(
        Code::FailedPrecondition,
        format!(
            "the provider may still act on the last attempt for {} ms: what its books show now proves nothing yet; \
             nothing was changed, settle it after that",
            left.as_millis()
        ),
        details,
    )
}

/// A request message did not arrive in time; the call never started.
pub fn request_body_timeout(limit: Duration) -> Status {
    let mut details = ErrorDetails::with_error_info("REQUEST_BODY_TIMEOUT", DOMAIN, HashMap::new());
    details.set_retry_info(Some(Duration::from_millis(100)));
    Status::with_error_details(
        Code::Unavailable,
        format!(
            "the request message did not arrive within {} ms, so the call was not started and is safe to retry",
            limit.as_millis()
        ),
        details,
    )
}

/// A Subscribe stream ended because this replica is stopping.
pub fn shutting_down() -> Status {
    subscribe_again(
        "GATEWAY_SHUTTING_DOWN",
        "this gateway replica is stopping: subscribe again (unacknowledged events are redelivered)",
    )
}

/// A subscription's delivery ended on this replica without another
/// reason (its task is gone): a stream must never end with OK, or the
/// subscriber would not come back.
pub fn subscription_ended() -> Status {
    subscribe_again(
        "SUBSCRIPTION_ENDED",
        "this stream's delivery ended: subscribe again (unacknowledged events are redelivered)",
    )
}

/// The end of a stream that the subscriber answers by subscribing again at once.
fn subscribe_again(reason: &str, message: &str) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, DOMAIN, HashMap::new());
    details.set_retry_info(Some(Duration::from_millis(100)));
    Status::with_error_details(Code::Unavailable, message, details)
}

/// The status of a notification log failure.
pub fn from_log_error(error: &LogError) -> Status {
    match error {
        LogError::Unavailable(detail) => {
            let mut details = ErrorDetails::with_error_info("STORE_UNAVAILABLE", DOMAIN, HashMap::new());
            details.set_retry_info(Some(Duration::from_secs(1)));
            Status::with_error_details(
                Code::Unavailable,
                format!(
                    "the notification store is unavailable; retrying is safe (acks and redrives may be repeated): {detail}"
                ),
                details,
            )
        }
        LogError::StoreUninitialised => {
            let mut details = ErrorDetails::with_error_info("STORE_NOT_INITIALISED", DOMAIN, HashMap::new());
            details.set_retry_info(Some(Duration::from_secs(10)));
            Status::with_error_details(
                Code::Unavailable,
                "the notification store has no identity marker: it is new, or it lost its data; subscribers are \
                 not given a fresh start that would hide lost events. An operator runs `yungate store \
                 acknowledge-loss` (or `yungate store init` on a first deployment); subscribe again then, and a \
                 subscriber whose events were lost hears CURSOR_EXPIRED"
                    .to_owned(),
                details,
            )
        }
        LogError::CursorExpired { cursor, resume_from } => with_info(
            Code::FailedPrecondition,
            format!(
                "position {cursor} is older than the retained history: events after it were trimmed before they \
                 were read; reconcile (query the orders of that time), then subscribe with from_cursor \
                 {resume_from}, which replays everything retained"
            ),
            "CURSOR_EXPIRED",
            DOMAIN,
            HashMap::from([
                ("cursor".to_owned(), cursor.to_string()),
                ("resume_from".to_owned(), resume_from.to_string()),
            ]),
        ),
        LogError::CursorAhead { cursor, newest } => with_info(
            Code::FailedPrecondition,
            format!(
                "cursor {cursor} is ahead of the newest event ({newest}): it is not from this stream, or the \
                 store lost its history; reconcile (query the orders) and subscribe without a cursor"
            ),
            "CURSOR_UNKNOWN",
            DOMAIN,
            HashMap::from([("cursor".to_owned(), cursor.to_string())]),
        ),
        LogError::FilterMismatch { subscriber, existing } => with_info(
            Code::FailedPrecondition,
            format!(
                "subscriber {subscriber:?} was created with the filter {existing}: what a filter skips is \
                 acknowledged for every instance of the subscriber, so all of them must use the same one; \
                 subscribe under another name for another filter"
            ),
            "FILTER_MISMATCH",
            DOMAIN,
            HashMap::from([("filter".to_owned(), existing.clone())]),
        ),
        LogError::NoSubscriber(name) => with_info(
            Code::NotFound,
            format!("subscriber {name:?} has never subscribed"),
            "UNKNOWN_SUBSCRIBER",
            DOMAIN,
            HashMap::new(),
        ),
    }
}

/// The most violations a `BadRequest` lists: its trailer must stay far below
/// the 16 KB metadata limit of default clients, or they fail with
/// RESOURCE_EXHAUSTED and never see the reason.
pub const MAX_VIOLATIONS: usize = 20;

/// Longest field path or description carried in a violation, in characters.
const MAX_VIOLATION_TEXT: usize = 200;

fn clipped(text: &str) -> String {
    if text.chars().count() <= MAX_VIOLATION_TEXT {
        text.to_owned()
    } else {
        let mut t: String = text.chars().take(MAX_VIOLATION_TEXT).collect();
        t.push('…');
        t
    }
}

/// INVALID_ARGUMENT with a `google.rpc.BadRequest` listing the violations:
/// the first [`MAX_VIOLATIONS`], then one entry saying how many more there are.
pub fn invalid_argument(violations: &[Violation]) -> Status {
    let mut details = ErrorDetails::new();
    let shown = &violations[..violations.len().min(MAX_VIOLATIONS)];
    for v in shown {
        details.add_bad_request_violation(clipped(&v.field), clipped(&v.description));
    }
    let more = violations.len() - shown.len();
    if more > 0 {
        details.add_bad_request_violation("", format!("{more} more violations not listed"));
    }
    let mut summary: Vec<String> = shown
        .iter()
        .take(5)
        .map(|v| format!("{}: {}", clipped(&v.field), clipped(&v.description)))
        .collect();
    if violations.len() > summary.len() {
        summary.push(format!("and {} more", violations.len() - summary.len()));
    }
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {}", summary.join("; ")),
        details,
    )
}

/// A request that could not be decoded (invalid UTF-8 in a string, nesting
/// deeper than the decoder allows, truncated bytes): the caller's fault.
pub fn undecodable(error: &prost::DecodeError) -> Status {
    let mut details = ErrorDetails::with_error_info("UNDECODABLE_REQUEST", DOMAIN, HashMap::new());
    details.add_bad_request_violation("", format!("the request message cannot be decoded: {error}"));
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: the message cannot be decoded ({error})"),
        details,
    )
}

/// A failure inside the gateway (a bug or a broken deployment), never a caller's fault.
pub fn internal(what: &str) -> Status {
    with_info(
        Code::Internal,
        what.to_owned(),
        "GATEWAY_INTERNAL",
        DOMAIN,
        HashMap::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_errors_carry_error_info() {
        let status = from_call_error(&CallError::Business {
            code: "40014".into(),
            message: "账户余额不足".into(),
            verified: true,
        });
        assert_eq!(status.code(), Code::FailedPrecondition);
        let info = status.get_details_error_info().unwrap();
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("40014", "allinpay"));
        assert_eq!(info.metadata["message"], "账户余额不足");
        assert!(
            status.message().contains("Insufficient account balance"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn transport_failures_say_whether_to_retry() {
        let not_sent = from_call_error(&CallError::NotSent("refused".into()));
        assert_eq!(not_sent.code(), Code::Unavailable);
        assert!(not_sent.get_details_retry_info().is_some());
        let unknown = from_call_error(&CallError::OutcomeUnknown("timeout".into()));
        assert_eq!(unknown.code(), Code::DeadlineExceeded);
        assert_eq!(unknown.get_details_error_info().unwrap().reason, "OUTCOME_UNKNOWN");
        // Refused unread: nothing happened, but retrying the same bytes cannot help.
        let unread = from_call_error(&CallError::RefusedUnread { status: 413 });
        assert_eq!(unread.code(), Code::InvalidArgument);
        assert!(unread.get_details_retry_info().is_none());
        // 40007 支付超时, 9000 其他错误, 9100 未知错误, and 9999 内部错误 of the 3.3
        // example (l.229; not in section 7): the call may have gone through.
        for (code, grpc) in [
            ("40007", Code::DeadlineExceeded),
            ("9000", Code::Unknown),
            ("9100", Code::Unknown),
            ("9999", Code::Unknown),
            ("12345", Code::Unknown),
        ] {
            let status = from_call_error(&CallError::Business {
                code: code.into(),
                message: "x".into(),
                verified: true,
            });
            assert_eq!(status.code(), grpc, "{code}");
            let info = status.get_details_error_info().unwrap();
            assert_eq!(
                (info.reason.as_str(), info.metadata["providerCode"].as_str()),
                ("OUTCOME_UNKNOWN", code)
            );
        }
    }

    #[test]
    fn violations_become_bad_request() {
        let status = invalid_argument(&[
            Violation {
                field: "amount".into(),
                description: "must be positive".into(),
            },
            Violation {
                field: "pay_method".into(),
                description: "is required".into(),
            },
        ]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.get_details_bad_request().unwrap();
        assert_eq!(bad.field_violations.len(), 2);
        assert_eq!(bad.field_violations[1].field, "pay_method");
    }
}
