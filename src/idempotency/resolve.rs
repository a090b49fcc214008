//! Resolution of an unknown outcome: before anything is sent again, ask the provider what the earlier attempt did (`Resolution` in the call table).
//!
//! A query completes a record only with what it proves about this very
//! request: getOrderDetail is asked with the request's own member and
//! number (the provider answers 40022 订单和用户不匹配 when the number is
//! another member's, which is flagged, never adopted), and its answer says
//! no more than the order's 6.13 status, so the recovered answer carries
//! no more than that either.

use serde_json::{Map, Value as Json, json};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use crate::error::GatewayError;
use crate::exchange::{ProviderAnswer, ProviderRequest, Subject};
use crate::provider::calls::{Call, CallSpec, Resolution};
use crate::provider::client::CallError;
use crate::provider::codes::OrderStatus;
use crate::provider::errors::code;

/// 40022 订单和用户不匹配 (section 7, l.3294): the number is another member's order.
const ORDER_OF_ANOTHER_MEMBER: &str = "40022";

/// What the provider knows about the earlier attempt.
#[derive(Debug)]
pub enum Resolved {
    /// It went through: the call's answer as far as the query tells it.
    Landed(Json),
    /// The provider has no trace of it: send once.
    Absent,
    /// Sending again is harmless and its answer is the outcome.
    Resend,
    /// Nothing can be learnt now; nothing may be sent.
    Unresolved { cause: &'static str, detail: String },
    /// A layer below refused the query (a rate limit): its refusal stands.
    Refused(GatewayError),
}

/// Why a query did not answer with a result.
enum QueryFailed {
    /// The provider refused it with this code.
    Code(String),
    /// No usable answer.
    Other(String),
    /// A layer below refused it, unsent.
    Refused(GatewayError),
}

async fn query<S>(
    inner: S,
    call: Call,
    param: Map<String, Json>,
    deadline: Option<Instant>,
) -> Result<Json, QueryFailed>
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError>,
{
    match inner.oneshot(ProviderRequest::internal(call, param, deadline)).await {
        Ok(ProviderAnswer { result: Ok(value), .. }) => Ok(value),
        Ok(ProviderAnswer {
            result: Err(CallError::Business { code, .. }),
            ..
        }) => Err(QueryFailed::Code(code)),
        Ok(ProviderAnswer { result: Err(e), .. }) => Err(QueryFailed::Other(e.to_string())),
        Err(e) => Err(QueryFailed::Refused(e)),
    }
}

fn query_failed(method: &str, failed: QueryFailed) -> Resolved {
    match failed {
        QueryFailed::Code(code) if code == ORDER_OF_ANOTHER_MEMBER => {
            tracing::warn!(
                method,
                "the number of an unknown outcome belongs to another member's order: not adopted"
            );
            Resolved::Unresolved {
                cause: "RESOLUTION_MISMATCH",
                detail: format!(
                    "{method} says the number belongs to another member's order (40022 订单和用户不匹配): \
                     it is not this request's outcome"
                ),
            }
        }
        QueryFailed::Code(code) => failed_with(format!("{method} was refused with {code}")),
        QueryFailed::Other(detail) => failed_with(format!("{method}: {detail}")),
        QueryFailed::Refused(e) => Resolved::Refused(e),
    }
}

fn failed_with(detail: String) -> Resolved {
    Resolved::Unresolved {
        cause: "RESOLUTION_FAILED",
        detail,
    }
}

/// The getOrderDetail parameters of a request resolved by it: its member and order number.
fn order_query(spec: &CallSpec, subject: &Subject) -> Option<Map<String, Json>> {
    if !matches!(
        spec.resolution,
        Resolution::OrderDetail { .. } | Resolution::PaymentDetail
    ) {
        return None;
    }
    let (Some(user), Some(order)) = (&subject.member, &subject.biz_order_no) else {
        return None;
    };
    let mut param = Map::new();
    param.insert("bizUserId".into(), json!(user));
    param.insert("bizOrderNo".into(), json!(order));
    Some(param)
}

/// The 6.13 status of the order a request names, when its call is resolved
/// by getOrderDetail and the provider answers; `None` otherwise (a
/// number-used answer then says less, nothing more).
pub async fn order_status<S>(
    inner: S,
    spec: &CallSpec,
    subject: &Subject,
    deadline: Option<Instant>,
) -> Option<OrderStatus>
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError>,
{
    let param = order_query(spec, subject)?;
    let detail = query(inner, Call::GetOrderDetail, param, deadline).await.ok()?;
    detail.get("orderStatus").and_then(integer).map(OrderStatus::from_code)
}

fn integer(value: &Json) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The answer an order call stands for when all that is known is its 6.13
/// status: the numbers the query was asked with, `payStatus` (with
/// "unpaid" for 1 未支付, which the calls' own answers never say) and
/// `orderStatus`. Nothing the query does not prove (the amount, the
/// provider's order number, a payment's `payInfo`) is filled in.
pub fn order_answer(subject: &Subject, status: OrderStatus) -> Json {
    let mut answer = Map::new();
    if let Some(order) = &subject.biz_order_no {
        answer.insert("bizOrderNo".into(), json!(order));
    }
    if let Some(user) = &subject.member {
        answer.insert("bizUserId".into(), json!(user));
    }
    answer.insert("payStatus".into(), json!(status.pay_status()));
    answer.insert("orderStatus".into(), json!(status.code()));
    Json::Object(answer)
}

/// Asks the provider about the earlier attempt of `request`.
pub async fn resolve<S>(inner: S, request: &ProviderRequest) -> Resolved
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError>,
{
    let spec = request.spec;
    let subject = &request.subject;
    match spec.resolution {
        Resolution::Resend => Resolved::Resend,
        Resolution::NoQuery => Resolved::Unresolved {
            cause: "NO_QUERY",
            detail: format!(
                "the provider offers no query for {}; its notification or the reconciliation file (4.3.2) will tell",
                spec.method
            ),
        },
        Resolution::OrderDetail { .. } | Resolution::PaymentDetail => {
            let Some(param) = order_query(spec, subject) else {
                return failed_with("the request has no member or bizOrderNo to query with".into());
            };
            match query(inner, Call::GetOrderDetail, param, request.deadline).await {
                Ok(detail) => {
                    let Some(status) = detail.get("orderStatus").and_then(integer).map(OrderStatus::from_code) else {
                        return failed_with("getOrderDetail answered without an orderStatus".into());
                    };
                    // 6.13 1 未支付 (l.2968): the order is there, its confirmation never landed.
                    if spec.resolution == Resolution::PaymentDetail && status == OrderStatus::Unpaid {
                        return Resolved::Absent;
                    }
                    let mut answer = order_answer(subject, status);
                    if let Some(batch) = request.param.get("bizBatchNo") {
                        answer["bizBatchNo"] = batch.clone();
                    }
                    Resolved::Landed(answer)
                }
                Err(QueryFailed::Code(code)) if code == code::ORDER_NOT_FOUND => Resolved::Absent,
                Err(failed) => query_failed("getOrderDetail", failed),
            }
        }
        Resolution::MemberInfo => {
            let Some(user) = &subject.member else {
                return failed_with("the request has no bizUserId to query with".into());
            };
            let mut param = Map::new();
            param.insert("bizUserId".into(), json!(user));
            match query(inner, Call::GetMemberInfo, param, request.deadline).await {
                Ok(info) => {
                    let member = match info.get("memberInfo") {
                        Some(Json::String(s)) => serde_json::from_str(s).unwrap_or(Json::Null),
                        Some(v) => v.clone(),
                        None => Json::Null,
                    };
                    let mut answer = Map::new();
                    answer.insert("bizUserId".into(), json!(user));
                    if let Some(id) = member.get("userId").and_then(Json::as_str) {
                        answer.insert("userId".into(), json!(id));
                    }
                    Resolved::Landed(Json::Object(answer))
                }
                Err(QueryFailed::Code(code)) if code == code::USER_NOT_FOUND => Resolved::Absent,
                Err(failed) => query_failed("getMemberInfo", failed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovered_order_says_unpaid_apart_from_pending() {
        let subject = Subject {
            biz_order_no: Some("o1".into()),
            member: Some("u1".into()),
            amount: Some(500),
            ..Subject::default()
        };
        // 6.13 l.2968 未支付 vs l.2973 进行中.
        let unpaid = order_answer(&subject, OrderStatus::from_code(1));
        assert_eq!(unpaid["payStatus"], "unpaid");
        assert_eq!(
            order_answer(&subject, OrderStatus::from_code(99))["payStatus"],
            "pending"
        );
        assert_eq!(unpaid["orderStatus"], 1);
        // getOrderDetail answers orderStatus only (l.2251): the amount is not proved.
        assert!(unpaid.get("amount").is_none(), "{unpaid}");
    }
}
