//! Resolution of an unknown outcome: before anything is sent again, ask the provider what the earlier attempt did (`Resolution` in the call table).

use serde_json::{Map, Value as Json, json};
use tower::{Service, ServiceExt};

use crate::error::GatewayError;
use crate::exchange::{ProviderAnswer, ProviderRequest};
use crate::provider::calls::{Call, Resolution};
use crate::provider::client::CallError;

/// 40000 订单不存在 (section 7, l.3271).
const ORDER_NOT_FOUND: &str = "40000";
/// 30001 用户不存在 (section 7, l.3241).
const USER_NOT_FOUND: &str = "30001";
/// 6.13 未支付 (l.2968).
const UNPAID: i64 = 1;

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

/// 6.13 order status -> the `payStatus` words of the order calls' answers.
/// A status the table does not list is pending, never success.
pub fn pay_status(order_status: i64) -> &'static str {
    match order_status {
        4 | 5 => "success",
        3 | 6 => "fail",
        _ => "pending",
    }
}

fn text(param: &Map<String, Json>, field: &str) -> Option<String> {
    param.get(field).and_then(Json::as_str).map(str::to_owned)
}

fn integer(value: &Json) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
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
    request: &ProviderRequest,
) -> Result<Json, QueryFailed>
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError>,
{
    match inner
        .oneshot(ProviderRequest::internal(call, param, request.deadline))
        .await
    {
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

/// Asks the provider about the earlier attempt of `request`.
pub async fn resolve<S>(inner: S, request: &ProviderRequest) -> Resolved
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError>,
{
    let spec = request.call.spec();
    let p = &request.param;
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
            let member = match spec.resolution {
                Resolution::OrderDetail { member } => member,
                _ => "bizUserId",
            };
            let (Some(user), Some(order)) = (text(p, member), text(p, "bizOrderNo")) else {
                return failed_with(format!("the request has no {member} or bizOrderNo to query with"));
            };
            let mut param = Map::new();
            param.insert("bizUserId".into(), json!(user));
            param.insert("bizOrderNo".into(), json!(order));
            match query(inner, Call::GetOrderDetail, param, request).await {
                Ok(detail) => {
                    let Some(status) = detail.get("orderStatus").and_then(integer) else {
                        return failed_with("getOrderDetail answered without an orderStatus".into());
                    };
                    if spec.resolution == Resolution::PaymentDetail && status == UNPAID {
                        return Resolved::Absent;
                    }
                    let mut answer = Map::new();
                    answer.insert("bizOrderNo".into(), json!(order));
                    answer.insert("bizUserId".into(), json!(user));
                    answer.insert("payStatus".into(), json!(pay_status(status)));
                    answer.insert("orderStatus".into(), json!(status));
                    for field in ["amount", "bizBatchNo"] {
                        if let Some(v) = p.get(field) {
                            answer.insert(field.into(), v.clone());
                        }
                    }
                    Resolved::Landed(Json::Object(answer))
                }
                Err(QueryFailed::Code(code)) if code == ORDER_NOT_FOUND => Resolved::Absent,
                Err(failed) => query_failed("getOrderDetail", failed),
            }
        }
        Resolution::MemberInfo => {
            let Some(user) = text(p, "bizUserId") else {
                return failed_with("the request has no bizUserId to query with".into());
            };
            let mut param = Map::new();
            param.insert("bizUserId".into(), json!(user));
            match query(inner, Call::GetMemberInfo, param, request).await {
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
                Err(QueryFailed::Code(code)) if code == USER_NOT_FOUND => Resolved::Absent,
                Err(failed) => query_failed("getMemberInfo", failed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pay_status;

    #[test]
    fn order_statuses_map_to_pay_statuses_and_unknown_is_pending() {
        // 6.13 (l.2968-2973): 1 未支付, 3 交易失败, 4 交易成功, 5 交易成功-发生退款, 6 关闭, 99 进行中.
        assert_eq!(pay_status(1), "pending");
        assert_eq!(pay_status(3), "fail");
        assert_eq!(pay_status(4), "success");
        assert_eq!(pay_status(5), "success");
        assert_eq!(pay_status(6), "fail");
        assert_eq!(pay_status(99), "pending");
        assert_eq!(pay_status(7), "pending");
    }
}
