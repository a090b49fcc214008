//! `yungate.v1.OutcomeService`: a number's timeline, and the audited manual settlement of an outcome no query, notification or file can settle.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::proto::outcome_service_server::OutcomeService;
use super::proto::{
    GetTimelineRequest, GetTimelineResponse, ResolveOutcomeRequest, ResolveOutcomeResponse, SettledOutcome,
    TimelineEvent,
};
use super::status::{self, Violation};
use crate::error::GatewayError;
use crate::idempotency::fingerprint::record_key;
use crate::idempotency::outcome::{Stored, StoredResult};
use crate::provider::calls::{Call, CallKind, Idempotency};
use crate::serve::access::{AccessPolicy, Caller};
use crate::store::Store;
use crate::timeline::{Event, Timeline};

/// The longest number or key taken, in bytes (a key is at most 255).
const MAX_NUMBER: usize = 255;
/// The longest reason taken, in characters.
const MAX_REASON: usize = 500;

/// What the service needs: the timelines, and the records it settles.
#[derive(Clone)]
pub struct Outcomes {
    timeline: Timeline,
    store: Arc<dyn Store>,
    sysid: String,
    secret: [u8; 32],
    retention: Duration,
    lease: Duration,
    access: AccessPolicy,
}

impl std::fmt::Debug for Outcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcomes")
            .field("sysid", &self.sysid)
            .finish_non_exhaustive()
    }
}

impl Outcomes {
    /// The service over `timeline` and `store`, whose records are keyed with `secret`.
    pub fn new(
        timeline: Timeline,
        store: Arc<dyn Store>,
        (sysid, secret): (String, [u8; 32]),
        (retention, lease): (Duration, Duration),
        access: AccessPolicy,
    ) -> Self {
        Outcomes {
            timeline,
            store,
            sysid,
            secret,
            retention,
            lease,
            access,
        }
    }
}

fn violation(field: &str, description: &str) -> Violation {
    Violation {
        field: field.to_owned(),
        description: description.to_owned(),
    }
}

fn check_number(field: &str, value: &str, required: bool, violations: &mut Vec<Violation>) {
    if value.is_empty() {
        if required {
            violations.push(violation(field, "is required"));
        }
    } else if value.len() > MAX_NUMBER || !value.bytes().all(|b| b.is_ascii_graphic()) {
        violations.push(violation(
            field,
            "must be at most 255 printable ASCII characters without spaces",
        ));
    }
}

/// The keyed backend call an rpc name serves.
fn keyed_call(rpc: &str) -> Option<Call> {
    Call::ALL.into_iter().find(|c| {
        let spec = c.spec();
        spec.kind == CallKind::Backend && spec.rpc == rpc && spec.idempotency.is_mutation()
    })
}

#[tonic::async_trait]
impl OutcomeService for Outcomes {
    async fn get_timeline(
        &self,
        request: Request<GetTimelineRequest>,
    ) -> Result<Response<GetTimelineResponse>, Status> {
        let number = request.into_inner().number;
        let mut violations = Vec::new();
        check_number("number", &number, true, &mut violations);
        if !violations.is_empty() {
            return Err(status::invalid_argument(&violations));
        }
        let events = self
            .timeline
            .read(&number)
            .await
            .map_err(|e| status::from_gateway_error(&GatewayError::StoreUnavailable(e.to_string())))?;
        Ok(Response::new(GetTimelineResponse {
            events: events
                .into_iter()
                .map(|e| TimelineEvent {
                    at_ms: i64::try_from(e.at_ms).unwrap_or(i64::MAX),
                    kind: e.kind,
                    rpc: e.rpc,
                    actor: e.actor,
                    outcome: e.outcome,
                    provider_code: e.provider_code,
                    order_status: e.order_status.and_then(|s| i32::try_from(s).ok()).unwrap_or(0),
                    detail: e.detail,
                })
                .collect(),
        }))
    }

    async fn resolve_outcome(
        &self,
        request: Request<ResolveOutcomeRequest>,
    ) -> Result<Response<ResolveOutcomeResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        self.access
            .check_named(caller.as_ref(), "/yungate.v1.OutcomeService/ResolveOutcome")
            .map_err(|e| status::from_gateway_error(&e))?;
        let r = request.into_inner();
        let mut violations = Vec::new();
        let call = keyed_call(&r.rpc);
        if call.is_none() {
            violations.push(violation(
                "rpc",
                "must name an rpc that changes something, e.g. UnfreezeMoney",
            ));
        }
        let idempotency = call.map(|c| c.spec().idempotency);
        let natural = idempotency.and_then(Idempotency::natural_field).is_some();
        let needs_key = matches!(idempotency, Some(Idempotency::Part(_) | Idempotency::CallerKey));
        check_number("number", &r.number, natural, &mut violations);
        check_number("idempotency_key", &r.idempotency_key, needs_key, &mut violations);
        let outcome = SettledOutcome::try_from(r.outcome).unwrap_or(SettledOutcome::Unspecified);
        if outcome == SettledOutcome::Unspecified {
            violations.push(violation(
                "outcome",
                "must be SETTLED_OUTCOME_LANDED or SETTLED_OUTCOME_ABSENT",
            ));
        }
        let reason = r.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
            violations.push(violation(
                "reason",
                "must be 1 to 500 characters without control characters",
            ));
        }
        let (Some(call), Some(idempotency), true) = (call, idempotency, violations.is_empty()) else {
            return Err(status::invalid_argument(&violations));
        };
        let key = match idempotency {
            Idempotency::Part(_) => format!("{}\0{}", r.number, r.idempotency_key),
            Idempotency::CallerKey => r.idempotency_key.clone(),
            _ => r.number.clone(),
        };
        // The number its attempts are journalled under (`exchange::Key::number`).
        let number = if idempotency.natural_field().is_some() {
            r.number.clone()
        } else {
            r.idempotency_key.clone()
        };
        let record = record_key(&self.secret, &self.sysid, call, &key);
        let token = hex::encode(rand_bytes());
        let store_down =
            |e: crate::store::StoreError| status::from_gateway_error(&GatewayError::StoreUnavailable(e.to_string()));
        // Taken as a claim, like the resolver's: never under a call in progress.
        let Some(taken) = self
            .store
            .take_unknown(&record, &token, self.lease)
            .await
            .map_err(store_down)?
        else {
            return Err(status::no_unknown_outcome(call.spec().rpc));
        };
        // The provider may still act on the last attempt: nobody can know yet.
        if !taken.settle_left.is_zero() {
            let _ = self.store.defer_unknown(&record, &token, taken.settle_left).await;
            return Err(status::outcome_still_settling(taken.settle_left));
        }
        let settled = match outcome {
            SettledOutcome::Landed => {
                let mut answer = serde_json::Map::new();
                if let Some(field) = idempotency.natural_field() {
                    answer.insert(field.to_owned(), serde_json::Value::from(r.number.as_str()));
                }
                let stored = Stored::V1 {
                    result: StoredResult::Answer(serde_json::Value::Object(answer)),
                    recovered: true,
                };
                self.store
                    .complete(&record, &token, &stored.to_bytes(), self.retention)
                    .await
                    .map_err(store_down)?
            }
            // Proved absent, not released: a retry sends it, and a duplicate
            // number it meets then is still read as perhaps this attempt's.
            _ => self.store.prove_absent(&record, &token).await.map_err(store_down)?,
        };
        if !settled {
            return Err(status::no_unknown_outcome(call.spec().rpc));
        }
        let actor = caller.map_or_else(String::new, |c| c.name.to_string());
        let word = if outcome == SettledOutcome::Landed {
            "landed"
        } else {
            "absent"
        };
        tracing::warn!(caller = %actor, rpc = call.spec().rpc, outcome = word, "an outcome settled by hand");
        // A transfer that landed is done (4.2.19): the day's file must list it.
        if outcome == SettledOutcome::Landed && crate::provider::checkfile::books(call, &serde_json::json!({})) {
            let amount = serde_json::from_slice::<serde_json::Value>(&taken.subject)
                .ok()
                .and_then(|s| s.get("amount").and_then(serde_json::Value::as_i64));
            self.timeline
                .book(&number, call.spec().rpc, amount, "override", None)
                .await;
        }
        self.timeline
            .record(
                &number,
                Event {
                    rpc: call.spec().rpc.to_owned(),
                    actor,
                    detail: reason.to_owned(),
                    ..Event::now("override", word)
                },
            )
            .await;
        Ok(Response::new(ResolveOutcomeResponse {
            outcome: outcome as i32,
        }))
    }
}

fn rand_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    // The OS generator does not fail on the platforms we build for.
    let _ = getrandom::fill(&mut bytes);
    bytes
}
