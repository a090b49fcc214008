//! An order result notification (4.2.12) completes the idempotency records of that order whose outcome was unknown: a retry then replays the provider's word instead of querying.
//!
//! The notification does not say which call made the order, so every money
//! call keyed by `bizOrderNo` is tried (the order call and its SMS
//! confirmation share the number); only a record in the unknown state
//! changes (`Store::complete_unknown`), so a finished record keeps its own
//! answer and a claim in flight finds out by itself. Only final statuses
//! complete: `OK` (6.13 交易成功, 4) and `error` (交易失败, 3); `pending` leaves
//! the record unknown. A notification completes a record only when it is
//! about that record's request: the same amount, and the same payer where
//! the request names the payer (4.2.12 `buyerBizUserId` "付款人",
//! l.1914). Another request's (an older order with the same number) is
//! flagged in the log and leaves the record unknown.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json, json};

use super::fingerprint::record_key;
use super::outcome::{Stored, StoredResult};
use crate::provider::calls::{Call, Idempotency, Resolution};
use crate::provider::codes::OrderStatus;
use crate::provider::notify::{Kind, Verified};
use crate::store::{Completed, Expect, Store};
use crate::timeline::{Event, Timeline};

/// What completing needs: the records' store and how their keys are made.
#[derive(Clone)]
pub struct Completion {
    pub store: Arc<dyn Store>,
    pub sysid: String,
    pub secret: [u8; 32],
    pub retention: Duration,
    /// Where the order's result is journalled.
    pub timeline: Timeline,
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("sysid", &self.sysid)
            .finish_non_exhaustive()
    }
}

/// The money calls an order result may answer: keyed by `bizOrderNo`, resolved by the order's status.
fn order_calls() -> impl Iterator<Item = Call> {
    Call::ALL.into_iter().filter(|call| {
        let spec = call.spec();
        spec.moves_money
            && matches!(
                spec.idempotency,
                Idempotency::Natural("bizOrderNo") | Idempotency::Confirmation("bizOrderNo")
            )
            && matches!(
                spec.resolution,
                Resolution::OrderDetail { .. } | Resolution::PaymentDetail
            )
    })
}

/// The answer a notification stands for, as far as it tells: the fields a
/// recovered answer has (see `resolve.rs`), with the order number it adds.
pub fn answer_of(verified: &Verified) -> Option<Json> {
    if verified.kind != Kind::OrderResult {
        return None;
    }
    // 4.2.12 status "OK" / "error": 6.13 交易成功 / 交易失败 (l.2969-2970).
    let status = match verified.body.status.as_deref() {
        Some("OK") => OrderStatus::Success,
        Some("error") => OrderStatus::Failed,
        _ => return None,
    };
    let value = &verified.body.return_value;
    let mut answer = Map::new();
    answer.insert("bizOrderNo".into(), json!(verified.biz_order_no.clone()?));
    if let Some(no) = value.get("orderNo").filter(|v| !v.is_null()) {
        answer.insert("orderNo".into(), no.clone());
    }
    answer.insert("payStatus".into(), json!(status.pay_status()));
    answer.insert("orderStatus".into(), json!(status.code()));
    if status.is_failure()
        && let Some(message) = &verified.body.message
    {
        answer.insert("payFailMessage".into(), json!(message));
    }
    Some(Json::Object(answer))
}

impl Completion {
    /// Completes the unknown records `verified` answers; how many changed.
    /// A store failure is logged: the record stays unknown and a retry
    /// resolves it by query.
    pub async fn complete(&self, verified: &Verified) -> usize {
        if verified.kind == Kind::OrderResult
            && let Some(order) = verified.biz_order_no.as_deref()
        {
            let status = match verified.body.status.as_deref() {
                Some("OK") => Some(OrderStatus::Success.code()),
                Some("error") => Some(OrderStatus::Failed.code()),
                _ => None,
            };
            let event = Event {
                order_status: status,
                detail: verified.id.clone(),
                ..Event::now(
                    "notification",
                    &verified
                        .body
                        .status
                        .as_deref()
                        .unwrap_or("none")
                        .chars()
                        .take(16)
                        .collect::<String>(),
                )
            };
            self.timeline.record(order, event).await;
            // What the day's file must list (4.2.12 "OK": 交易成功).
            if status == Some(OrderStatus::Success.code()) {
                let amount = verified
                    .body
                    .return_value
                    .get("amount")
                    .and_then(|a| a.as_i64().or_else(|| a.as_str()?.trim().parse().ok()));
                // Filed under the day it was paid (4.2.12 payDatetime), as the file is.
                let paid = verified
                    .body
                    .return_value
                    .get("payDatetime")
                    .and_then(Json::as_str)
                    .and_then(crate::provider::wire::parse_timestamp)
                    .and_then(|at| u64::try_from(at.unix_timestamp()).ok())
                    .map(|s| s.saturating_mul(1000));
                self.timeline.book(order, "", amount, "notification", paid).await;
            }
        }
        let (Some(answer), Some(order)) = (answer_of(verified), verified.biz_order_no.as_deref()) else {
            return 0;
        };
        let outcome = Stored::V1 {
            result: StoredResult::Answer(answer),
            recovered: true,
        }
        .to_bytes();
        // 4.2.12: `refundWhereabouts` is there for refunds only; such a
        // result must never finish an order call of the same number.
        let refund = verified.body.return_value.get("refundWhereabouts").is_some();
        // All at once: with the store slow, the provider's answer waits for
        // one store timeout, not one per call.
        let value = &verified.body.return_value;
        let amount = value
            .get("amount")
            .and_then(|a| a.as_i64().or_else(|| a.as_str()?.trim().parse().ok()));
        let buyer = value.get("buyerBizUserId").and_then(Json::as_str).map(str::to_owned);
        let mut tries = tokio::task::JoinSet::new();
        for call in order_calls().filter(|call| !refund || *call == Call::Refund) {
            let key = record_key(&self.secret, &self.sysid, call, order);
            let expect = Expect {
                member: if names_the_payer(call) { buyer.clone() } else { None },
                amount,
            };
            let (store, outcome, retention) = (Arc::clone(&self.store), outcome.clone(), self.retention);
            tries.spawn(async move { (call, store.complete_unknown(&key, &outcome, retention, &expect).await) });
        }
        let mut completed = 0;
        while let Some(done) = tries.join_next().await {
            match done {
                Ok((call, Ok(Completed::Done))) => {
                    completed += 1;
                    tracing::info!(
                        call = call.spec().method,
                        section = call.spec().section,
                        "an unknown outcome completed by the provider's notification"
                    );
                }
                Ok((call, Ok(Completed::Mismatch))) => tracing::warn!(
                    call = call.spec().method,
                    section = call.spec().section,
                    "an order result with the number of an unknown outcome is about another request (payer or \
                     amount differ): not taken as its outcome"
                ),
                Ok((_, Ok(Completed::NotUnknown))) => {}
                Ok((_, Err(e))) => {
                    tracing::warn!(error = %e, "cannot complete idempotency records from a notification")
                }
                Err(e) => tracing::warn!(error = %e, "a completion task failed"),
            }
        }
        completed
    }
}

/// Whether the call's member is the order's payer (4.2.12's `buyerBizUserId`):
/// deposits, withdrawals, consumption and agent collection (`bizUserId` or
/// `payerId`) and their confirmations; an agent pay names its receiver, a
/// refund its receiver.
fn names_the_payer(call: Call) -> bool {
    !matches!(call, Call::SignalAgentPaySimplify | Call::Refund)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_calls_are_those_keyed_by_biz_order_no() {
        let calls: Vec<Call> = order_calls().collect();
        for call in [
            Call::DepositApply,
            Call::WithdrawApply,
            Call::ConsumeApply,
            Call::Refund,
        ] {
            assert!(calls.contains(&call), "{call:?}");
        }
        assert!(!calls.contains(&Call::BatchAgentPaySimplify), "keyed by bizBatchNo");
    }
}
