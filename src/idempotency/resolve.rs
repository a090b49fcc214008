//! Resolution of an unknown outcome: before anything is sent again, ask the provider what the earlier attempt did (`Resolution` in the call table).
//!
//! A query completes a record only with what it proves about this very
//! request: getOrderDetail is asked with the request's own member and
//! number (the provider answers 40022 订单和用户不匹配 when the number is
//! another member's, which is flagged, never adopted), and its answer says
//! no more than the order's 6.13 status, so the recovered answer carries
//! no more than that either.

use std::time::Duration;

use serde_json::{Map, Value as Json, json};
use time::OffsetDateTime;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use crate::error::GatewayError;
use crate::exchange::{ProviderAnswer, ProviderRequest, Subject};
use crate::provider::calls::{Call, CallSpec, CardFact, MemberFact, Resolution};
use crate::provider::client::CallError;
use crate::provider::codes::{OrderStatus, UserState};
use crate::provider::errors::code;
use crate::provider::wire;

/// queryInExpDetail entries read per page, and pages read at most: a
/// member's income and expense over the records' retention, bounded.
const DETAIL_PAGE: usize = 100;
const DETAIL_PAGES: usize = 20;

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
        QueryFailed::Code(code) if code == code::ORDER_USER_MISMATCH => {
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

/// A boolean the provider may send as `true`, `"true"` or 1.
fn truthy(value: Option<&Json>) -> Option<bool> {
    match value? {
        Json::Bool(b) => Some(*b),
        Json::String(s) => match s.trim() {
            "true" | "TRUE" | "1" => Some(true),
            "false" | "FALSE" | "0" => Some(false),
            _ => None,
        },
        Json::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

/// A structure the provider may send as an object or as a JSON string.
fn structure(value: Option<&Json>) -> Json {
    match value {
        Some(Json::String(s)) => serde_json::from_str(s).unwrap_or(Json::Null),
        Some(v) => v.clone(),
        None => Json::Null,
    }
}

/// The answer of a call that landed, as far as the query proves: the
/// named request fields, never one the call's answer carries encrypted.
fn answer_with(request: &ProviderRequest, fields: &[&str]) -> Json {
    let mut answer = Map::new();
    for field in fields {
        if request.spec.encrypted_response.contains(field) {
            continue;
        }
        if let Some(v) = request.param.get(*field) {
            answer.insert((*field).to_owned(), v.clone());
        }
    }
    Json::Object(answer)
}

/// getMemberInfo: whether the change a member call makes is there.
async fn member_shows<S>(inner: S, request: &ProviderRequest, fact: MemberFact) -> Resolved
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError>,
{
    let Some(user) = &request.subject.member else {
        return failed_with("the request has no bizUserId to query with".into());
    };
    let mut param = Map::new();
    param.insert("bizUserId".into(), json!(user));
    let info = match query(inner, Call::GetMemberInfo, param, request.deadline).await {
        Ok(info) => structure(info.get("memberInfo")),
        // A locked member's calls all answer 30002 用户已经被锁 (4.1.18,
        // l.980; l.3242): that is the state itself.
        Err(QueryFailed::Code(code)) if code == code::USER_LOCKED => {
            return match fact {
                MemberFact::Locked(true) => Resolved::Landed(answer_with(request, &["bizUserId"])),
                MemberFact::Locked(false) => Resolved::Absent,
                _ => failed_with("getMemberInfo: the member is locked (30002)".into()),
            };
        }
        Err(failed) => return query_failed("getMemberInfo", failed),
    };
    let shown = match fact {
        MemberFact::RealName => truthy(info.get("isIdentityChecked")),
        MemberFact::Phone(field) => match truthy(info.get("isPhoneChecked")) {
            Some(true) => {
                let wanted = request.param.get(field).and_then(Json::as_str);
                let bound = info.get("phone").and_then(Json::as_str);
                match (wanted, bound) {
                    (Some(w), Some(b)) if w == b => Some(true),
                    // Another phone is bound: not this request's doing.
                    (Some(_), Some(_)) => Some(false),
                    _ => None,
                }
            }
            other => other,
        },
        MemberFact::Locked(locked) => info
            .get("userState")
            .and_then(integer)
            .map(|state| (UserState::from_code(state) == UserState::Locked) == locked),
    };
    match shown {
        Some(true) => Resolved::Landed(answer_with(request, &["bizUserId", "phone", "oldPhone", "newPhone"])),
        Some(false) => Resolved::Absent,
        // A company's memberInfo (5.6) has none of these fields: sending
        // again is all there is, and its answer is reported as unsure.
        None => Resolved::Resend,
    }
}

/// queryBankCard of the request's card: whether the change a card call makes is there.
async fn card_shows<S>(inner: S, request: &ProviderRequest, fact: CardFact) -> Resolved
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError>,
{
    let (Some(user), Some(card)) = (
        &request.subject.member,
        request.param.get("cardNo").and_then(Json::as_str),
    ) else {
        return failed_with("the request has no bizUserId or cardNo to query with".into());
    };
    let mut param = Map::new();
    param.insert("bizUserId".into(), json!(user));
    param.insert("cardNo".into(), json!(card));
    let list = match query(inner, Call::QueryBankCard, param, request.deadline).await {
        Ok(answer) => structure(answer.get("bindCardList")),
        Err(failed) => return query_failed("queryBankCard", failed),
    };
    let entries = list.as_array().map(Vec::as_slice).unwrap_or_default();
    // 6.14: 1 已绑定, 2 已解除 (l.2978-2979).
    let bound = entries
        .iter()
        .find(|e| e.get("bindState").and_then(integer).is_none_or(|s| s == 1));
    let landed = match (fact, bound) {
        (CardFact::Safe, Some(entry)) => truthy(entry.get("isSafeCard")).unwrap_or(false),
        (CardFact::Safe, None) => false,
        (CardFact::Unbound, found) => found.is_none(),
    };
    if landed {
        Resolved::Landed(answer_with(request, &["bizUserId", "cardNo"]))
    } else {
        Resolved::Absent
    }
}

/// queryModifyGoods without dates: whether the goods exist.
async fn goods<S>(inner: S, request: &ProviderRequest) -> Resolved
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError>,
{
    let mut param = Map::new();
    for field in ["bizUserId", "bizGoodsNo", "goodsType"] {
        let Some(v) = request.param.get(field) else {
            return failed_with(format!("the request has no {field} to query with"));
        };
        param.insert(field.into(), v.clone());
    }
    match query(inner, Call::QueryModifyGoods, param, request.deadline).await {
        Ok(_) => Resolved::Landed(answer_with(request, &["bizGoodsNo"])),
        Err(QueryFailed::Code(code)) if code == code::GOODS_NOT_FOUND => Resolved::Absent,
        Err(failed) => query_failed("queryModifyGoods", failed),
    }
}

/// queryInExpDetail: whether an entry of the member carries the call's number.
async fn in_exp_detail<S>(
    inner: S,
    request: &ProviderRequest,
    (member, account_set): (&str, &str),
    lookback: Duration,
) -> Resolved
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone,
{
    let text = |field: &str| request.param.get(field).and_then(Json::as_str).map(str::to_owned);
    let (Some(user), Some(set), Some(field)) = (
        text(member),
        text(account_set),
        request.spec.idempotency.natural_field(),
    ) else {
        return failed_with(format!("the request has no {member} or {account_set} to query with"));
    };
    let Some(number) = text(field) else {
        return failed_with(format!("the request has no {field}"));
    };
    // "yyyy-MM-dd" (l.2276-2277), China time, over the records' retention.
    let today = OffsetDateTime::now_utc().to_offset(wire::CHINA).date();
    let from = today - time::Duration::seconds(i64::try_from(lookback.as_secs()).unwrap_or(i64::MAX).min(400 * 86_400));
    let date = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
    let amount = request.subject.amount;
    for page in 0..DETAIL_PAGES {
        let mut param = Map::new();
        param.insert("bizUserId".into(), json!(user));
        param.insert("accountSetNo".into(), json!(set));
        param.insert("dateStart".into(), json!(date(from)));
        param.insert("dateEnd".into(), json!(date(today)));
        param.insert("startPosition".into(), json!(page * DETAIL_PAGE + 1));
        param.insert("queryNum".into(), json!(DETAIL_PAGE));
        let answer = match query(inner.clone(), Call::QueryInExpDetail, param, request.deadline).await {
            Ok(answer) => answer,
            Err(failed) => return query_failed("queryInExpDetail", failed),
        };
        let entries = structure(answer.get("inExpDetail"));
        let entries = entries.as_array().map(Vec::as_slice).unwrap_or_default();
        // Newest first (4.2.22 note 1, l.2260): an entry's frozen change is
        // its curFreezenAmount less the next (older) entry's.
        for (i, entry) in entries.iter().enumerate() {
            if entry.get("bizOrderNo").and_then(Json::as_str) != Some(number.as_str()) {
                continue;
            }
            let changed = entry.get("chgAmount").and_then(integer).map(i64::abs);
            let frozen = entry.get("curFreezenAmount").and_then(integer);
            let before = entries
                .get(i + 1)
                .and_then(|e| e.get("curFreezenAmount"))
                .and_then(integer);
            let frozen_by = frozen.zip(before).map(|(now, then)| now - then);
            return if amount.is_some_and(|a| changed == Some(a) || frozen_by == Some(a)) {
                Resolved::Landed(answer_with(request, &[field]))
            } else {
                Resolved::Unresolved {
                    cause: "RESOLUTION_MISMATCH",
                    detail: format!(
                        "queryInExpDetail has an entry with this {field}, but not of this request's amount"
                    ),
                }
            };
        }
        let Some(total) = answer.get("totalNum").and_then(integer) else {
            return failed_with("queryInExpDetail answered without totalNum".into());
        };
        let read = i64::try_from((page + 1) * DETAIL_PAGE).unwrap_or(i64::MAX);
        if entries.len() < DETAIL_PAGE || read >= total {
            // The spec does not promise an entry carries the number (5.14
            // bizOrderNo "(新增) ... 否", l.2850): its absence proves nothing.
            return failed_with(format!(
                "no queryInExpDetail entry of the last {} days carries this {field}; the spec does not promise \
                 one does, so this is no proof it never happened: {}",
                lookback.as_secs() / 86_400,
                if request.call == Call::ApplicationTransfer {
                    "the day's reconciliation file settles it if it went through (Reconcile), an operator \
                     otherwise (ResolveOutcome)"
                } else {
                    "an operator settles it (ResolveOutcome)"
                }
            ));
        }
    }
    failed_with(format!(
        "queryInExpDetail: more than {} entries to look through",
        DETAIL_PAGE * DETAIL_PAGES
    ))
}

/// getOrderDetail of every item of a batch: all there, or none.
async fn batch_items<S>(inner: S, request: &ProviderRequest) -> Resolved
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone,
{
    let items = request
        .param
        .get("batchPayList")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if items.is_empty() {
        return failed_with("the batch has no items to query".into());
    }
    let (mut found, mut absent) = (0usize, 0usize);
    for item in items {
        let (Some(user), Some(order)) = (
            item.get("bizUserId").and_then(Json::as_str),
            item.get("bizOrderNo").and_then(Json::as_str),
        ) else {
            return failed_with("a batch item has no bizUserId or bizOrderNo to query with".into());
        };
        let mut param = Map::new();
        param.insert("bizUserId".into(), json!(user));
        param.insert("bizOrderNo".into(), json!(order));
        match query(inner.clone(), Call::GetOrderDetail, param, request.deadline).await {
            Ok(_) => found += 1,
            Err(QueryFailed::Code(code)) if code == code::ORDER_NOT_FOUND => absent += 1,
            Err(failed) => return query_failed("getOrderDetail", failed),
        }
    }
    match (found, absent) {
        (_, 0) => Resolved::Landed(answer_with(request, &["bizBatchNo"])),
        (0, _) => Resolved::Absent,
        _ => failed_with(format!(
            "{found} of the batch's {} orders are at the provider, {absent} are not",
            found + absent
        )),
    }
}

/// What of a request's parameters its resolution queries with: kept with
/// its idempotency record, so that the resolver can ask the provider when
/// nobody retries. Personal data (phones, card numbers) is left out: the
/// member and card calls that need it are resolved when their caller retries.
pub fn plan(spec: &CallSpec, param: &Map<String, Json>) -> Map<String, Json> {
    let fields: Vec<&str> = match spec.resolution {
        Resolution::OrderDetail { member } => vec![member, "bizOrderNo"],
        Resolution::PaymentDetail => vec!["bizUserId", "bizOrderNo"],
        Resolution::MemberInfo | Resolution::MemberShows(_) | Resolution::CardShows(_) => vec!["bizUserId"],
        Resolution::Goods => vec!["bizUserId", "bizGoodsNo", "goodsType"],
        Resolution::InExpDetail { member, account_set } => {
            let mut fields = vec![member, account_set];
            fields.extend(spec.idempotency.natural_field());
            fields
        }
        Resolution::BatchItems => vec!["bizBatchNo"],
        Resolution::Resend | Resolution::NoQuery => Vec::new(),
    };
    let mut kept: Map<String, Json> = fields
        .into_iter()
        .filter_map(|f| param.get(f).map(|v| (f.to_owned(), v.clone())))
        .collect();
    if spec.resolution == Resolution::BatchItems {
        // Each item's numbers only: a payout item holds a card number (5.12).
        let items: Vec<Json> = param
            .get("batchPayList")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|item| json!({"bizOrderNo": item.get("bizOrderNo"), "bizUserId": item.get("bizUserId")}))
            .collect();
        kept.insert("batchPayList".into(), Json::Array(items));
    }
    kept
}

/// Asks the provider about the earlier attempt of `request`; `lookback`
/// is how far back an attempt may be (the records' retention).
pub async fn resolve<S>(inner: S, request: &ProviderRequest, lookback: Duration) -> Resolved
where
    S: Service<ProviderRequest, Response = ProviderAnswer, Error = GatewayError> + Clone,
{
    let spec = request.spec;
    let subject = &request.subject;
    match spec.resolution {
        Resolution::MemberShows(fact) => member_shows(inner, request, fact).await,
        Resolution::CardShows(fact) => card_shows(inner, request, fact).await,
        Resolution::Goods => goods(inner, request).await,
        Resolution::InExpDetail { member, account_set } => {
            in_exp_detail(inner, request, (member, account_set), lookback).await
        }
        Resolution::BatchItems => batch_items(inner, request).await,
        Resolution::Resend => Resolved::Resend,
        Resolution::NoQuery => Resolved::Unresolved {
            cause: "NO_QUERY",
            detail: match request.call {
                Call::UnfreezeMoney => "no query tells one part of a freeze from another, and unfreezes are neither \
                    notified nor in the reconciliation file: QueryBalance's freezen_amount and QueryInExpDetail \
                    show what was released; an operator then settles this key (README: outcomes no query can \
                    settle); do not release the part again under another key meanwhile"
                    .into(),
                Call::FailureBidRefund => "the provider offers no query for failureBidRefund, its items name no \
                    member for GetOrderDetail, and the day's reconciliation file lists each refund by its own \
                    number, not the batch's (PROVIDER_ONLY rows of the day's GetReconciliationReport): once the \
                    refunds are found there or at the provider, an operator settles this number (README: outcomes \
                    no query can settle); do not send this intent under another number meanwhile"
                    .into(),
                _ => format!(
                    "the provider offers no query for {}: an operator settles it once the provider's books show \
                     what happened (README: outcomes no query can settle); do not send this intent under another \
                     number meanwhile",
                    spec.method
                ),
            },
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
                    let member = structure(info.get("memberInfo"));
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
