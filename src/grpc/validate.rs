//! Checks a request before anything is sent: bounds, required fields, formats and the provider's business rules.
//!
//! Runs on the wire JSON (after conversion), so rules are written once by
//! wire name; violations name the proto field path (`pay_method`,
//! `split_rule[0].fee`), and every violation is reported, not just the first
//! (the status carries a bounded number of them). Every amount and every
//! list is bounded first (`provider::formats`), so no sum can overflow and
//! no request buys unbounded RSA work; sums are taken in `i128`, exact for
//! any number of bounded amounts.

use prost_reflect::{Kind, MessageDescriptor};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;

use super::convert::wire_name;
use super::status::Violation;
use crate::provider::calls::{COMPANY_BASIC_INFO_REQUIRED, Call, is_pay_method_card};
use crate::provider::client::MAX_ENCRYPTED_FIELD_BYTES;
use crate::provider::formats::{
    COUPON_ACCOUNT_SETS, MAX_AMOUNT_FEN, MAX_LIST_ITEMS, MAX_SPLIT_DEPTH, RESERVED_BIZ_USER_IDS, is_account_number,
    is_card_number, is_id_card, is_mobile, parse_compact_date, parse_dashed_date, parse_date,
};
use crate::provider::wire;

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

/// Wire keys that hold money, wherever they appear.
const MONEY_KEYS: [&str; 7] = [
    "amount",
    "fee",
    "couponAmount",
    "feeAmount",
    "totalAmount",
    "highestAmount",
    "minimumAmountInvestment",
];

/// Structures with required fields of their own: (wire field, its required wire fields, spec section).
const REQUIRED_INSIDE: [(&str, &[&str], &str); 1] = [("companyBasicInfo", &COMPANY_BASIC_INFO_REQUIRED, "5.5")];

/// The date fields of requests and the format the spec gives each.
const DATE_FIELDS: [(&str, DateFormat); 5] = [
    ("date", DateFormat::Compact),
    ("dateStart", DateFormat::Dashed),
    ("dateEnd", DateFormat::Dashed),
    ("beginDate", DateFormat::Dashed),
    ("endDate", DateFormat::Dashed),
];

/// How the spec writes a date field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFormat {
    /// `yyyyMMdd` (4.3.2 `date`, l.2360).
    Compact,
    /// `yyyy-MM-dd` (dateStart/dateEnd l.2276-2277, beginDate/endDate l.1980-1981).
    Dashed,
}

/// The spec format of a date field, if `name` is one.
pub fn date_format(name: &str) -> Option<DateFormat> {
    DATE_FIELDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

struct Checker<'a> {
    desc: &'a MessageDescriptor,
    out: Vec<Violation>,
}

impl Checker<'_> {
    /// The proto name of a top-level wire field.
    fn name(&self, wire: &str) -> String {
        proto_name(self.desc, wire)
    }

    fn fail(&mut self, wire: &str, description: impl Into<String>) {
        let field = self.name(wire);
        self.fail_at(field, description);
    }

    fn fail_at(&mut self, path: String, description: impl Into<String>) {
        self.out.push(Violation {
            field: path,
            description: description.into(),
        });
    }
}

/// The proto name of wire field `wire` in `desc` (the wire name itself when unknown).
fn proto_name(desc: &MessageDescriptor, wire: &str) -> String {
    desc.fields()
        .find(|f| wire_name(f) == wire)
        .map_or_else(|| wire.to_owned(), |f| f.name().to_owned())
}

/// The message type of wire field `wire` in `desc`, if it is a message.
fn child(desc: &MessageDescriptor, wire: &str) -> Option<MessageDescriptor> {
    desc.fields()
        .find(|f| wire_name(f) == wire)
        .and_then(|f| match f.kind() {
            Kind::Message(m) => Some(m),
            _ => None,
        })
}

fn is_present(v: Option<&Json>) -> bool {
    match v {
        None | Some(Json::Null) => false,
        Some(Json::String(s)) => !s.trim().is_empty(),
        Some(Json::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

/// An amount inside the bounds, or `None` (absent, not an integer, or out
/// of bounds: the bounds walk has reported the latter).
fn money(v: Option<&Json>) -> Option<i64> {
    v.and_then(Json::as_i64).filter(|a| (0..=MAX_AMOUNT_FEN).contains(a))
}

/// Every violation of `call`'s rules in `wire` (the request as the provider would receive it).
pub fn violations(call: Call, desc: &MessageDescriptor, wire: &Map<String, Json>) -> Vec<Violation> {
    let mut c = Checker { desc, out: Vec::new() };
    bounds(&mut c, desc, wire, "");
    encrypted_lengths(&mut c, call, desc, wire);
    let spec = call.spec();
    for name in spec.required_request {
        // Fields the gateway always sets are never required from callers.
        if spec.fills.iter().any(|f| f.always() && f.field() == *name) {
            continue;
        }
        if !is_present(wire.get(*name)) {
            c.fail(name, format!("is required (spec {})", spec.section));
        }
    }
    for (structure, required, section) in REQUIRED_INSIDE {
        let (Some(Json::Object(inner)), Some(inner_desc)) = (wire.get(structure), child(desc, structure)) else {
            continue;
        };
        let base = c.name(structure);
        for name in required {
            if !is_present(inner.get(*name)) {
                c.fail_at(
                    format!("{base}.{}", proto_name(&inner_desc, name)),
                    format!("is required (spec {section})"),
                );
            }
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
    // withdrawApply's bankCardNo is "银行卡号/账号" (l.1503): with bankCardPro 1
    // (l.1504) it is a corporate account number, often longer than a card's.
    let corporate = call == Call::WithdrawApply && int("bankCardPro") == Some(1);
    for name in ["cardNo", "bankCardNo", "lastCardNo"] {
        if let Some(card) = text(name) {
            if corporate && name == "bankCardNo" {
                if !is_account_number(&card) {
                    c.fail(name, "must be a corporate account number: 6 to 32 digits");
                }
            } else if !is_card_number(&card) {
                c.fail(name, "must be 12 to 19 digits");
            }
        }
    }
    if let Some(pro) = int("bankCardPro") {
        if !(0..=1).contains(&pro) {
            c.fail(
                "bankCardPro",
                "must be 0 (personal card) or 1 (corporate account), spec 4.2.3",
            );
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
    let amount = money(wire.get("amount"));
    if amount == Some(0) {
        c.fail("amount", "must be a positive number of fen");
    }
    let fee = money(wire.get("fee"));
    if let (Some(f), Some(a)) = (fee, amount) {
        if f > a {
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
    if let Some(Json::Object(goods)) = wire.get("goodsParams") {
        let base = c.name("goodsParams");
        for name in ["beginDate", "endDate"] {
            if let Some(d) = goods.get(name).and_then(Json::as_str) {
                if parse_date(d).is_none() {
                    let field = child(desc, "goodsParams").map_or_else(|| name.to_owned(), |g| proto_name(&g, name));
                    c.fail_at(format!("{base}.{field}"), "must be a date, yyyy-MM-dd (spec 5.4)");
                }
            }
        }
    }
    let mut days = Vec::new();
    for (name, format) in DATE_FIELDS {
        if let Some(d) = text(name) {
            // Either form is accepted here; the gateway sends the spec's (see `normalise_dates`).
            match parse_date(&d) {
                Some(day) => days.push((name, day)),
                None => c.fail(
                    name,
                    match format {
                        DateFormat::Compact => "must be a date, yyyyMMdd (spec 4.3.2; yyyy-MM-dd is accepted too)",
                        DateFormat::Dashed => "must be a date, yyyy-MM-dd (yyyyMMdd is accepted too)",
                    },
                ),
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
    // consumeApply calls it splitRule, the agent-pay calls splitRuleList (spec README 15).
    let splits = ["splitRule", "splitRuleList"]
        .into_iter()
        .find_map(|name| match wire.get(name) {
            Some(Json::Array(rules)) => Some((c.name(name), rules)),
            _ => None,
        });
    let (carved, splits_field) = match splits {
        Some((base, rules)) => (split_rules(&mut c, &base, rules, 1), base),
        None => (0, c.name("splitRule")),
    };
    payout_and_total(&mut c, wire, "", amount, fee, carved, &splits_field);
    if let Some(Json::Array(items)) = wire.get("batchPayList") {
        batch_items(&mut c, desc, items);
    }
    if call == Call::Refund {
        refund_list(&mut c, wire, amount);
    }
    c.out
}

/// Every field the call encrypts holds at most [`MAX_ENCRYPTED_FIELD_BYTES`]:
/// a longer value would buy one RSA operation per 117 bytes (v1, RSA-1024).
fn encrypted_lengths(c: &mut Checker<'_>, call: Call, desc: &MessageDescriptor, wire: &Map<String, Json>) {
    fn walk(c: &mut Checker<'_>, desc: &MessageDescriptor, value: &Json, steps: &[&str], at: &str) {
        match value {
            Json::Array(items) => {
                for (i, item) in items.iter().take(MAX_LIST_ITEMS).enumerate() {
                    walk(c, desc, item, steps, &format!("{at}[{i}]"));
                }
            }
            Json::Object(map) => walk_object(c, desc, map, steps, at),
            _ => {}
        }
    }
    fn walk_object(c: &mut Checker<'_>, desc: &MessageDescriptor, map: &Map<String, Json>, steps: &[&str], at: &str) {
        let Some((first, rest)) = steps.split_first() else {
            return;
        };
        let Some(child_value) = map.get(*first) else { return };
        let name = proto_name(desc, first);
        let path = if at.is_empty() { name } else { format!("{at}.{name}") };
        match (rest.is_empty(), child_value, child(desc, first)) {
            (true, Json::String(text), _) if text.len() > MAX_ENCRYPTED_FIELD_BYTES => c.fail_at(
                path,
                format!("must be at most {MAX_ENCRYPTED_FIELD_BYTES} bytes (it travels RSA-encrypted)"),
            ),
            (false, next, Some(inner)) => walk(c, &inner, next, rest, &path),
            _ => {}
        }
    }
    for path in call.spec().encrypted_request {
        let steps: Vec<&str> = path.split('.').collect();
        walk_object(c, desc, wire, &steps, "");
    }
}

/// The bounds every request obeys before anything else is looked at: money
/// fields within [0, MAX_AMOUNT_FEN], lists of at most MAX_LIST_ITEMS.
fn bounds(c: &mut Checker<'_>, desc: &MessageDescriptor, obj: &Map<String, Json>, path: &str) {
    for (key, value) in obj {
        let at = if path.is_empty() {
            proto_name(desc, key)
        } else {
            format!("{path}.{}", proto_name(desc, key))
        };
        if MONEY_KEYS.contains(&key.as_str()) {
            if let Some(n) = value.as_i64() {
                if n < 0 {
                    c.fail_at(at.clone(), "must not be negative");
                } else if n > MAX_AMOUNT_FEN {
                    c.fail_at(at.clone(), format!("must be at most {MAX_AMOUNT_FEN} fen"));
                }
            }
        }
        match value {
            Json::Array(items) => {
                if items.len() > MAX_LIST_ITEMS {
                    c.fail_at(
                        at.clone(),
                        format!("must hold at most {MAX_LIST_ITEMS} entries, has {}", items.len()),
                    );
                }
                if let Some(inner) = child(desc, key) {
                    for (i, item) in items.iter().take(MAX_LIST_ITEMS).enumerate() {
                        if let Json::Object(o) = item {
                            bounds(c, &inner, o, &format!("{at}[{i}]"));
                        }
                    }
                }
            }
            Json::Object(o) => {
                if let Some(inner) = child(desc, key) {
                    bounds(c, &inner, o, &at);
                }
            }
            _ => {}
        }
    }
}

/// A payout to a bank account (5.12): `payToBankCardInfo.amount` is
/// required, positive, and at most what reaches the receiver (the amount
/// less fee and splits, l.2818); its card or corporate account is a number.
/// Also checks that fee and splits fit in the amount.
fn payout_and_total(
    c: &mut Checker<'_>,
    item: &Map<String, Json>,
    path: &str,
    amount: Option<i64>,
    fee: Option<i64>,
    carved: i128,
    splits_field: &str,
) {
    let fee = fee.unwrap_or(0);
    let net = amount.map(|a| i128::from(a) - i128::from(fee) - carved);
    if let (Some(n), Some(a)) = (net, amount) {
        // Without splits, a fee beyond the amount is reported as such already.
        if n < 0 && carved > 0 {
            c.fail_at(
                splits_field.to_owned(),
                format!("splits ({carved} fen) and fee ({fee}) exceed amount ({a})"),
            );
        }
    }
    let Some(Json::Object(info)) = item.get("payToBankCardInfo") else {
        return;
    };
    let base = if path.is_empty() {
        c.name("payToBankCardInfo")
    } else {
        format!("{path}.pay_to_bank_card_info")
    };
    match info.get("amount").and_then(Json::as_i64) {
        // A plain int64 on the proto side: unset arrives as 0.
        None | Some(0) => c.fail_at(
            format!("{base}.amount"),
            "is required: the amount paid to the bank account, positive (spec 5.12)",
        ),
        // Negative or beyond the bound: reported by the bounds walk.
        Some(paid) if !(1..=MAX_AMOUNT_FEN).contains(&paid) => {}
        Some(paid) => {
            if let Some(n) = net.filter(|n| *n >= 0) {
                if i128::from(paid) > n {
                    c.fail_at(
                        format!("{base}.amount"),
                        format!("must not exceed what reaches the receiver: amount - fee - splits = {n} fen"),
                    );
                }
            }
        }
    }
    match info.get("bankCardNo").and_then(Json::as_str) {
        None | Some("") => c.fail_at(format!("{base}.bank_card_no"), "is required (spec 5.12)"),
        Some(card) if !is_account_number(card) => c.fail_at(
            format!("{base}.bank_card_no"),
            "must be a card or corporate account number: 6 to 32 digits",
        ),
        Some(_) => {}
    }
}

fn batch_items(c: &mut Checker<'_>, desc: &MessageDescriptor, items: &[Json]) {
    let list = c.name("batchPayList");
    let item_desc = child(desc, "batchPayList");
    let name_in = |wire: &str| {
        item_desc
            .as_ref()
            .map_or_else(|| wire.to_owned(), |d| proto_name(d, wire))
    };
    for (i, item) in items.iter().take(MAX_LIST_ITEMS).enumerate() {
        let path = format!("{list}[{i}]");
        let Json::Object(item) = item else { continue };
        let amount = money(item.get("amount"));
        if matches!(item.get("amount").map(Json::as_i64), None | Some(Some(0))) {
            c.fail_at(format!("{path}.amount"), "must be a positive number of fen");
        }
        let fee = money(item.get("fee"));
        if let (Some(f), Some(a)) = (fee, amount) {
            if f > a {
                c.fail_at(format!("{path}.fee"), "must be between 0 and amount");
            }
        }
        for required in ["bizOrderNo", "bizUserId", "accountSetNo"] {
            if !is_present(item.get(required)) {
                c.fail_at(format!("{path}.{}", name_in(required)), "is required (spec 5.11)");
            }
        }
        if let Some(s) = item.get("summary").and_then(Json::as_str) {
            if s.chars().count() > 20 {
                c.fail_at(format!("{path}.summary"), "must be at most 20 characters");
            }
        }
        let carved = match item.get("splitRuleList") {
            Some(Json::Array(rules)) => split_rules(c, &format!("{path}.split_rule_list"), rules, 1),
            _ => 0,
        };
        payout_and_total(c, item, &path, amount, fee, carved, &format!("{path}.split_rule_list"));
    }
}

/// refund: `refundList` adds up to `amount - feeAmount` (4.2.17 l.2091).
fn refund_list(c: &mut Checker<'_>, wire: &Map<String, Json>, amount: Option<i64>) {
    let Some(Json::Array(list)) = wire.get("refundList") else {
        return;
    };
    let fee_amount = money(wire.get("feeAmount")).unwrap_or(0);
    let coupon = money(wire.get("couponAmount")).unwrap_or(0);
    if let Some(a) = amount {
        if fee_amount > a || coupon > a {
            c.fail("amount", "must cover couponAmount and feeAmount");
        }
        let listed: i128 = list.iter().filter_map(|i| money(i.get("amount"))).map(i128::from).sum();
        let expected = i128::from(a) - i128::from(fee_amount);
        if listed != expected {
            c.fail(
                "refundList",
                format!("adds up to {listed} fen; it must equal amount - feeAmount = {expected} (spec 4.2.17)"),
            );
        }
    }
}

fn pay_method(c: &mut Checker<'_>, call: Call, methods: &Map<String, Json>, amount: Option<i64>) {
    let field = c.name("payMethod");
    let mut total: i128 = 0;
    let mut count = 0usize;
    for (key, value) in methods {
        let at = format!("{field}.{}", key.to_lowercase());
        let entries: Vec<(String, &Json)> = match value {
            Json::Array(items) => items
                .iter()
                .take(MAX_LIST_ITEMS)
                .enumerate()
                .map(|(i, v)| (format!("{at}[{i}]"), v))
                .collect(),
            other => vec![(at.clone(), other)],
        };
        for (path, entry) in entries {
            count += 1;
            match (entry.get("amount"), money(entry.get("amount"))) {
                (_, Some(a)) if a > 0 => total += i128::from(a),
                (Some(_), Some(_)) => c.fail_at(format!("{path}.amount"), "must be positive"),
                // Out of bounds or not an integer: reported by the bounds walk.
                (Some(_), None) => {}
                (None, _) if key == "WITHDRAW_TLT" => total += i128::from(amount.unwrap_or(0)),
                (None, _) => c.fail_at(format!("{path}.amount"), "is required"),
            }
            if is_pay_method_card(key) {
                // WITHHOLD_TLT "支持对私和对公" (l.2410): a corporate account too.
                let corporate = key == "WITHHOLD_TLT";
                match entry.get("bankCardNo").and_then(Json::as_str) {
                    None | Some("") => c.fail_at(format!("{path}.bank_card_no"), "is required (spec 5.2)"),
                    Some(no) if corporate && !is_account_number(no) => c.fail_at(
                        format!("{path}.bank_card_no"),
                        "must be a card or corporate account number: 6 to 32 digits",
                    ),
                    Some(card) if !corporate && !is_card_number(card) => {
                        c.fail_at(format!("{path}.bank_card_no"), "must be 12 to 19 digits")
                    }
                    Some(_) => {}
                }
            }
            let account_set = entry
                .get("accountSetNo")
                .and_then(Json::as_str)
                .filter(|s| !s.is_empty());
            match key.as_str() {
                // BALANCE names its account set; coupons default to the marketing one (l.2437, 2439).
                "BALANCE" if account_set.is_none() => {
                    c.fail_at(format!("{path}.account_set_no"), "is required for BALANCE (spec 5.2)")
                }
                "COUPON" | "COUPONLIST" if account_set.is_some_and(|s| !COUPON_ACCOUNT_SETS.contains(&s)) => c.fail_at(
                    format!("{path}.account_set_no"),
                    "coupons come from the marketing (2000000) or margin (100002) account set (spec 5.2)",
                ),
                "WITHDRAW_TLT" => {
                    if let Some(name) = entry.get("payTypeName").and_then(Json::as_str) {
                        if name != "withdraw_tlt" {
                            c.fail_at(
                                format!("{path}.pay_type_name"),
                                "must be withdraw_tlt (spec 5.2), or left empty for the gateway to fill",
                            );
                        }
                    }
                }
                _ => {}
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
        if call != Call::WithdrawApply && total != i128::from(a) {
            c.fail_at(
                field,
                format!("amounts add up to {total} fen, the order amount is {a} (provider error 40005)"),
            );
        }
    }
}

/// Checks split rules recursively; returns the total carved out at this level.
fn split_rules(c: &mut Checker<'_>, path: &str, rules: &[Json], depth: usize) -> i128 {
    if depth > MAX_SPLIT_DEPTH {
        c.fail_at(
            path.to_owned(),
            format!("split rules nest at most {MAX_SPLIT_DEPTH} levels deep"),
        );
        return 0;
    }
    let mut total: i128 = 0;
    for (i, rule) in rules.iter().take(MAX_LIST_ITEMS).enumerate() {
        let at = format!("{path}[{i}]");
        let amount = money(rule.get("amount")).unwrap_or(0);
        let fee = money(rule.get("fee")).unwrap_or(0);
        if !is_present(rule.get("bizUserId")) {
            c.fail_at(format!("{at}.biz_user_id"), "is required (spec 5.3)");
        }
        let children = match rule.get("splitRuleList") {
            Some(Json::Array(list)) => split_rules(c, &format!("{at}.split_rule_list"), list, depth + 1),
            _ => 0,
        };
        if i128::from(fee) + children > i128::from(amount) {
            c.fail_at(
                at,
                format!("fee ({fee}) and onward splits ({children}) exceed its amount ({amount})"),
            );
        }
        total += i128::from(amount);
    }
    total
}

/// Rewrites the date fields the caller gave in either form into the spec's
/// format for each (`date` yyyyMMdd, the others yyyy-MM-dd, goodsParams'
/// too: 5.4 l.2628-2629); values that are not dates are left for
/// [`violations`] to report.
pub fn normalise_dates(wire: &mut Map<String, Json>) {
    if let Some(Json::Object(goods)) = wire.get_mut("goodsParams") {
        normalise_dates(goods);
    }
    use crate::provider::formats::{format_compact_date, format_dashed_date};
    for (name, format) in DATE_FIELDS {
        let Some(Json::String(text)) = wire.get_mut(name) else {
            continue;
        };
        let already = match format {
            DateFormat::Compact => parse_compact_date(text).is_some(),
            DateFormat::Dashed => parse_dashed_date(text).is_some(),
        };
        if already {
            continue;
        }
        if let Some(day) = parse_date(text) {
            *text = match format {
                DateFormat::Compact => format_compact_date(day),
                DateFormat::Dashed => format_dashed_date(day),
            };
        }
    }
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

    #[test]
    fn amounts_beyond_the_bound_are_named_not_summed() {
        let v = check(
            Call::ConsumeApply,
            "yungate.v1.ConsumeApplyRequest",
            json!({"payerId": "p", "recieverId": "r", "bizOrderNo": "o", "amount": i64::MAX, "fee": i64::MAX,
                   "industryCode": "1", "industryName": "x", "source": 1,
                   "payMethod": {"BALANCE": [{"accountSetNo": "100000", "amount": i64::MAX},
                                             {"accountSetNo": "100000", "amount": i64::MAX}]},
                   "splitRule": [{"bizUserId": "s", "amount": i64::MAX, "fee": i64::MAX}]}),
        );
        let fields: Vec<&str> = v.iter().map(|(f, _)| f.as_str()).collect();
        for expected in [
            "amount",
            "fee",
            "pay_method.balance[0].amount",
            "pay_method.balance[1].amount",
            "split_rule[0].amount",
            "split_rule[0].fee",
        ] {
            assert!(fields.contains(&expected), "{expected} missing from {v:?}");
        }
        assert!(
            v.iter().any(|(_, d)| d.contains(&MAX_AMOUNT_FEN.to_string())),
            "the bound is said: {v:?}"
        );
    }

    #[test]
    fn dates_are_normalised_to_each_fields_spec_format() {
        let mut wire =
            json!({"date": "2026-11-25", "dateStart": "20261101", "dateEnd": "2026-11-30", "beginDate": "x"});
        let map = wire.as_object_mut().unwrap();
        normalise_dates(map);
        assert_eq!(map["date"], "20261125");
        assert_eq!(map["dateStart"], "2026-11-01");
        assert_eq!(map["dateEnd"], "2026-11-30");
        assert_eq!(map["beginDate"], "x");
        // 5.4 l.2628: goodsParams.beginDate is yyyy-MM-dd too.
        let mut goods = json!({"goodsParams": {"beginDate": "20261201", "endDate": "2026-12-31"}});
        normalise_dates(goods.as_object_mut().unwrap());
        assert_eq!(goods["goodsParams"]["beginDate"], "2026-12-01");
        let v = check(
            Call::EntryGoods,
            "yungate.v1.EntryGoodsRequest",
            json!({"bizUserId": "u", "goodsType": 1, "bizGoodsNo": "g", "goodsName": "n",
                   "goodsParams": {"beginDate": "soon"}}),
        );
        assert!(
            v.iter()
                .any(|(f, d)| f == "goods_params.begin_date" && d.contains("yyyy-MM-dd")),
            "{v:?}"
        );
    }

    mod arbitrary {
        //! Validation never panics, whatever the amounts (the whole i64 range).

        use proptest::prelude::*;
        use serde_json::json;

        use super::check;
        use crate::provider::calls::Call;

        proptest! {
            #[test]
            fn any_amounts_give_violations_not_panics(
                amount in any::<i64>(), fee in any::<i64>(), parts in proptest::collection::vec(any::<i64>(), 0..4),
                split in any::<i64>(), split_fee in any::<i64>(), inner in any::<i64>(), paid in any::<i64>(),
            ) {
                let balance: Vec<_> = parts.iter().map(|a| json!({"accountSetNo": "100000", "amount": a})).collect();
                check(Call::ConsumeApply, "yungate.v1.ConsumeApplyRequest", json!({
                    "payerId": "p", "recieverId": "r", "bizOrderNo": "o", "amount": amount, "fee": fee,
                    "industryCode": "1", "industryName": "x", "source": 1, "payMethod": {"BALANCE": balance},
                    "splitRule": [{"bizUserId": "s", "amount": split, "fee": split_fee,
                                   "splitRuleList": [{"bizUserId": "t", "amount": inner, "fee": 0}]}]}));
                check(Call::BatchAgentPaySimplify, "yungate.v1.BatchAgentPayRequest", json!({
                    "bizBatchNo": "b", "tradeCode": "4001", "batchPayList": [{
                        "bizOrderNo": "o", "bizUserId": "u", "accountSetNo": "100000", "amount": amount, "fee": fee,
                        "payToBankCardInfo": {"bankCardNo": "6228480402637874214", "amount": paid},
                        "splitRuleList": [{"bizUserId": "s", "amount": split, "fee": split_fee}]}]}));
                check(Call::Refund, "yungate.v1.RefundRequest", json!({
                    "bizOrderNo": "r", "oriBizOrderNo": "o", "bizUserId": "u", "amount": amount,
                    "feeAmount": fee, "couponAmount": split, "refundList": [{"bizUserId": "s", "amount": inner}]}));
            }
        }
    }
}
