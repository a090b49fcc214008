//! Checks a request before anything is sent: required fields, formats and the provider's business rules.
//!
//! Runs on the wire JSON (after conversion), so rules are written once by
//! wire name; violations name the proto field path (`pay_method`,
//! `split_rule[0].fee`), and every violation is reported, not just the first.

use prost_reflect::{Kind, MessageDescriptor};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;

use super::status::Violation;
use crate::provider::calls::Call;
use crate::provider::formats::{RESERVED_BIZ_USER_IDS, is_id_card, is_mobile, parse_date};
use crate::provider::wire;

/// Wire fields the gateway fills in itself: never required from callers.
const GATEWAY_FILLED: [&str; 1] = ["backUrl"];

/// Methods that cannot be combined with another (5.2, 4.2.1).
const NOT_COMBINABLE: [&str; 11] = [
    "POSPAY",
    "WECHATPAY_APP",
    "SCAN_WEIXIN",
    "SCAN_ALIPAY",
    "WECHAT_PUBLIC",
    "ALIPAY_SERVICE",
    "QQ_WALLET",
    "CODEPAY_W",
    "CODEPAY_A",
    "CODEPAY_Q",
    "WITHDRAW_TLT",
];

struct Checker<'a> {
    desc: &'a MessageDescriptor,
    out: Vec<Violation>,
}

impl Checker<'_> {
    /// The proto name of a top-level wire field.
    fn name(&self, wire_name: &str) -> String {
        self.desc
            .fields()
            .find(|f| crate::grpc::convert::wire_name(f) == wire_name)
            .map_or_else(|| wire_name.to_owned(), |f| f.name().to_owned())
    }

    fn fail(&mut self, wire_name: &str, description: impl Into<String>) {
        let field = self.name(wire_name);
        self.out.push(Violation {
            field,
            description: description.into(),
        });
    }

    fn fail_at(&mut self, path: String, description: impl Into<String>) {
        self.out.push(Violation {
            field: path,
            description: description.into(),
        });
    }
}

fn is_present(v: Option<&Json>) -> bool {
    match v {
        None | Some(Json::Null) => false,
        Some(Json::String(s)) => !s.trim().is_empty(),
        Some(Json::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

/// Every violation of `call`'s rules in `wire` (the request as the provider would receive it).
pub fn violations(call: Call, desc: &MessageDescriptor, wire: &Map<String, Json>) -> Vec<Violation> {
    let mut c = Checker { desc, out: Vec::new() };
    let spec = call.spec();
    for name in spec.required_request {
        if GATEWAY_FILLED.contains(name) || (call == Call::QueryReserveFundBalance && *name == "sysid") {
            continue;
        }
        // Required messages of a known shape are checked field by field below.
        if !is_present(wire.get(*name)) {
            c.fail(name, format!("is required (spec {})", spec.section));
        }
    }
    let text = |name: &str| wire.get(name).and_then(Json::as_str).map(str::to_owned);
    let int = |name: &str| wire.get(name).and_then(Json::as_i64);
    for name in ["phone", "oldPhone", "newPhone"] {
        if let Some(p) = text(name) {
            if !is_mobile(&p) {
                c.fail(name, "must be an 11-digit mobile number starting with 1");
            }
        }
    }
    for name in ["cardNo", "bankCardNo", "lastCardNo"] {
        if let Some(card) = text(name) {
            if !(12..=19).contains(&card.len()) || !card.bytes().all(|b| b.is_ascii_digit()) {
                c.fail(name, "must be 12 to 19 digits");
            }
        }
    }
    if let Some(id) = text("identityNo") {
        if int("identityType") == Some(1) && !is_id_card(&id) {
            c.fail(
                "identityNo",
                "must be an ID card number: 18 characters (17 digits and a digit or X) or 15 digits",
            );
        }
    }
    if let Some(s) = text("summary") {
        if s.chars().count() > 20 {
            c.fail("summary", "must be at most 20 characters");
        }
    }
    let amount = int("amount");
    if let Some(a) = amount {
        if a <= 0 {
            c.fail("amount", "must be a positive number of fen");
        }
    }
    if let Some(fee) = int("fee") {
        if fee < 0 {
            c.fail("fee", "must not be negative");
        } else if amount.is_some_and(|a| fee > a) {
            c.fail("fee", "must not exceed amount (provider error 40016)");
        }
    }
    if let Some(expiry) = text("ordErexpireDatetime") {
        let now = OffsetDateTime::now_utc();
        match wire::parse_timestamp(&expiry) {
            None => c.fail(
                "ordErexpireDatetime",
                "must be yyyy-MM-dd HH:mm:ss in China time (UTC+8)",
            ),
            Some(at) if at <= now => c.fail("ordErexpireDatetime", "must lie in the future"),
            Some(at) if at > now + time::Duration::hours(24) => {
                c.fail("ordErexpireDatetime", "must be at most 24 hours ahead")
            }
            Some(_) => {}
        }
    }
    for name in ["frontUrl", "jumpUrl"] {
        if let Some(u) = text(name) {
            if !(u.starts_with("http://") || u.starts_with("https://")) || u.contains('#') {
                c.fail(name, "must be an http(s) URL without '#'");
            }
        }
    }
    if call == Call::CreateMember {
        if let Some(id) = text("bizUserId") {
            if RESERVED_BIZ_USER_IDS.contains(&id.as_str()) {
                c.fail("bizUserId", "is reserved for the platform itself");
            }
        }
    }
    if wire.get("isAuth") == Some(&Json::Bool(false)) {
        c.fail("isAuth", "must be true: the provider performs the verification");
    }
    let mut days = Vec::new();
    for name in ["dateStart", "dateEnd", "beginDate", "endDate", "date"] {
        if let Some(d) = text(name) {
            match parse_date(&d) {
                Some(day) => days.push((name, day)),
                None => c.fail(name, "must be a date, yyyy-MM-dd"),
            }
        }
    }
    let day = |n: &str| days.iter().find(|(k, _)| *k == n).map(|(_, d)| *d);
    if let (Some(s), Some(e)) = (day("dateStart"), day("dateEnd")) {
        if s > e {
            c.fail("dateStart", "must not be after dateEnd (provider error 50003)");
        }
    }
    if let Some(Json::Object(methods)) = wire.get("payMethod") {
        pay_method(&mut c, call, methods, amount);
    }
    for name in ["splitRule", "splitRuleList"] {
        if let Some(Json::Array(rules)) = wire.get(name) {
            let base = c.name(name);
            let carved = split_rules(&mut c, &base, rules);
            let fee = int("fee").unwrap_or(0);
            if let Some(a) = amount {
                if carved + fee > a {
                    c.fail(
                        name,
                        format!("splits ({carved} fen) and fee ({fee}) exceed amount ({a})"),
                    );
                }
            }
        }
    }
    if let Some(Json::Array(items)) = wire.get("batchPayList") {
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", c.name("batchPayList"));
            let amount = item.get("amount").and_then(Json::as_i64).unwrap_or(0);
            if amount <= 0 {
                c.fail_at(format!("{path}.amount"), "must be a positive number of fen");
            }
            let fee = item.get("fee").and_then(Json::as_i64).unwrap_or(0);
            if fee < 0 || fee > amount {
                c.fail_at(format!("{path}.fee"), "must be between 0 and amount");
            }
            for required in ["bizOrderNo", "bizUserId", "accountSetNo"] {
                if !is_present(item.get(required)) {
                    c.fail_at(
                        format!("{path}.{}", nested_name(desc, "batchPayList", required)),
                        "is required (spec 5.11)",
                    );
                }
            }
        }
    }
    c.out
}

/// The proto name of `wire` inside the message of top-level field `parent`.
fn nested_name(desc: &MessageDescriptor, parent: &str, wire: &str) -> String {
    use crate::grpc::convert::wire_name;
    desc.fields()
        .find(|f| wire_name(f) == parent)
        .and_then(|f| match f.kind() {
            Kind::Message(m) => m.fields().find(|g| wire_name(g) == wire).map(|g| g.name().to_owned()),
            _ => None,
        })
        .unwrap_or_else(|| wire.to_owned())
}

fn pay_method(c: &mut Checker<'_>, call: Call, methods: &Map<String, Json>, amount: Option<i64>) {
    let field = c.name("payMethod");
    let mut total = 0i64;
    let mut count = 0usize;
    for (key, value) in methods {
        let entries: Vec<&Json> = match value {
            Json::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for entry in entries {
            count += 1;
            match entry.get("amount").and_then(Json::as_i64) {
                Some(a) if a > 0 => total += a,
                Some(_) => c.fail_at(format!("{field}.{}", key.to_lowercase()), "amount must be positive"),
                None if key == "WITHDRAW_TLT" => total += amount.unwrap_or(0),
                None => c.fail_at(format!("{field}.{}", key.to_lowercase()), "amount is required"),
            }
        }
    }
    if count > 1 {
        if let Some(k) = methods.keys().find(|k| NOT_COMBINABLE.contains(&k.as_str())) {
            c.fail_at(field.clone(), format!("{k} cannot be combined with other methods"));
        }
    }
    match call {
        Call::DepositApply if count != 1 || methods.keys().any(|k| k == "BALANCE" || k.starts_with("COUPON")) => {
            c.fail_at(field.clone(), "deposits take exactly one bank or wallet method")
        }
        Call::WithdrawApply if methods.keys().any(|k| k != "WITHDRAW_TLT") => {
            c.fail_at(field.clone(), "withdrawals take WITHDRAW_TLT only")
        }
        Call::ConsumeApply if methods.keys().any(|k| k.starts_with("COUPON")) => {
            c.fail_at(field.clone(), "consume orders take no coupons")
        }
        _ => {}
    }
    if let Some(a) = amount {
        if call != Call::WithdrawApply && total != a {
            c.fail_at(
                field,
                format!("amounts add up to {total} fen, the order amount is {a} (provider error 40005)"),
            );
        }
    }
}

/// Checks split rules recursively; returns the total carved out at this level.
fn split_rules(c: &mut Checker<'_>, path: &str, rules: &[Json]) -> i64 {
    let mut total = 0;
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let amount = rule.get("amount").and_then(Json::as_i64).unwrap_or(0);
        let fee = rule.get("fee").and_then(Json::as_i64).unwrap_or(0);
        if !is_present(rule.get("bizUserId")) {
            c.fail_at(format!("{at}.biz_user_id"), "is required (spec 5.3)");
        }
        if amount < 0 || fee < 0 {
            c.fail_at(at.clone(), "amount and fee must not be negative");
        }
        let children = match rule.get("splitRuleList") {
            Some(Json::Array(list)) => split_rules(c, &format!("{at}.split_rule_list"), list),
            _ => 0,
        };
        if fee + children > amount {
            c.fail_at(
                at,
                format!("fee ({fee}) and onward splits ({children}) exceed its amount ({amount})"),
            );
        }
        total += amount;
    }
    total
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::grpc::convert::message;

    fn check(call: Call, msg: &str, wire: Json) -> Vec<(String, String)> {
        let desc = message(msg).unwrap();
        violations(call, &desc, wire.as_object().unwrap())
            .into_iter()
            .map(|v| (v.field, v.description))
            .collect()
    }

    #[test]
    fn every_violation_is_listed_with_its_proto_path() {
        let v = check(
            Call::ConsumeApply,
            "yungate.v1.ConsumeApplyRequest",
            json!({"payerId": "p", "bizOrderNo": "o", "amount": 100, "fee": 200, "summary": "一二三四五六七八九十一二三四五六七八九十一",
                   "industryCode": "1", "industryName": "x", "source": 1, "ordErexpireDatetime": "2000-01-01 00:00:00",
                   "payMethod": {"BALANCE": [{"accountSetNo": "100000", "amount": 50}]},
                   "splitRule": [{"bizUserId": "s", "amount": 10, "fee": 20}]}),
        );
        let fields: Vec<&str> = v.iter().map(|(f, _)| f.as_str()).collect();
        for expected in [
            "receiver_id",
            "fee",
            "summary",
            "order_expire_datetime",
            "pay_method",
            "split_rule[0]",
        ] {
            assert!(fields.contains(&expected), "{expected} missing from {v:?}");
        }
        assert!(!fields.contains(&"back_url"), "the gateway fills backUrl");
    }

    #[test]
    fn a_valid_request_has_no_violations() {
        let v = check(
            Call::DepositApply,
            "yungate.v1.DepositApplyRequest",
            json!({"bizOrderNo": "o", "bizUserId": "u", "accountSetNo": "100000", "amount": 100, "fee": 1,
                   "industryCode": "1010", "industryName": "x", "source": 2,
                   "payMethod": {"REALNAMEPAY": {"bankCardNo": "6228480402637874214", "amount": 100}}}),
        );
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn formats_and_reserved_ids() {
        let v = check(
            Call::CreateMember,
            "yungate.v1.CreateMemberRequest",
            json!({"bizUserId": "#yunBizUserId_B2C#", "memberType": 3, "source": 1}),
        );
        assert_eq!(
            v,
            [(
                "biz_user_id".to_owned(),
                "is reserved for the platform itself".to_owned()
            )]
        );
        let v = check(
            Call::SetRealName,
            "yungate.v1.SetRealNameRequest",
            json!({"bizUserId": "u", "name": "n", "identityType": 1, "identityNo": "123"}),
        );
        assert_eq!(v[0].0, "identity_no");
        let v = check(
            Call::QueryInExpDetail,
            "yungate.v1.QueryInExpDetailRequest",
            json!({"bizUserId": "u", "dateStart": "2026-02-01", "dateEnd": "2026-01-01", "startPosition": 1, "queryNum": 10}),
        );
        assert_eq!(v[0].0, "date_start");
    }
}
