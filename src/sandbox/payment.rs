//! Payment methods (spec 5.2): parsing `payMethod`, and the rules on which methods an order may use and combine.

use serde_json::Value;

use super::Reject;
use super::order::sets;
use crate::provider::errors::code;
use crate::provider::formats::{self, MAX_LIST_ITEMS};

/// What kind of money a method moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a bank, card or wallet into the provider (入金).
    Inbound,
    /// Between accounts inside the provider (balance, coupons).
    Internal,
    /// Out to a bank account (出金).
    Outbound,
}

/// How an order paid this way gets confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// The payer acts outside our calls (scans a code, pays on a POS or a bank
    /// page); the sandbox completes it when told (admin endpoint or page).
    ByPayer,
    /// Settled inside the apply call; validateType must be 0.
    Immediate,
    /// Confirmed by `pay` with an SMS code (4.2.8) or a password (4.2.10).
    CodeOrPassword,
    /// New mobile quick pay, confirmed by `pay` 4.2.11; validateType must be 0.
    QuickPay,
}

/// One payment method key of 5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    pub key: &'static str,
    pub direction: Direction,
    pub combinable: bool,
    pub confirmation: Confirmation,
    /// Whether refunds of this method go to the payer's balance instead of back to the card.
    pub refund_to_balance: bool,
    /// Whether the value is a list of entries (BALANCE, COUPONLIST).
    pub list: bool,
}

const fn m(key: &'static str, direction: Direction, combinable: bool, confirmation: Confirmation) -> Method {
    Method {
        key,
        direction,
        combinable,
        confirmation,
        refund_to_balance: false,
        list: false,
    }
}

/// Every method the sandbox knows, with its 5.2 attributes.
pub const METHODS: &[Method] = &[
    m("GATEWAY", Direction::Inbound, true, Confirmation::ByPayer),
    Method {
        refund_to_balance: true,
        ..m("POSPAY", Direction::Inbound, false, Confirmation::ByPayer)
    },
    Method {
        refund_to_balance: true,
        ..m("REALNAMEPAY", Direction::Inbound, true, Confirmation::CodeOrPassword)
    },
    Method {
        refund_to_balance: true,
        ..m(
            "REALNAMEPAY_BATCH",
            Direction::Inbound,
            true,
            Confirmation::CodeOrPassword,
        )
    },
    m("WITHHOLD_TLT", Direction::Inbound, true, Confirmation::CodeOrPassword),
    m("WECHATPAY_APP", Direction::Inbound, false, Confirmation::ByPayer),
    m("SCAN_WEIXIN", Direction::Inbound, false, Confirmation::ByPayer),
    m("SCAN_ALIPAY", Direction::Inbound, false, Confirmation::ByPayer),
    m("WECHAT_PUBLIC", Direction::Inbound, false, Confirmation::ByPayer),
    m("ALIPAY_SERVICE", Direction::Inbound, false, Confirmation::ByPayer),
    m("QQ_WALLET", Direction::Inbound, false, Confirmation::ByPayer),
    m("CODEPAY_W", Direction::Inbound, false, Confirmation::Immediate),
    m("CODEPAY_A", Direction::Inbound, false, Confirmation::Immediate),
    m("CODEPAY_Q", Direction::Inbound, false, Confirmation::Immediate),
    m("QUICKPAY_N", Direction::Inbound, true, Confirmation::QuickPay),
    // Undocumented in the table but used by the spec's own example and by 40008.
    m("QUICKPAY", Direction::Inbound, true, Confirmation::CodeOrPassword),
    Method {
        list: true,
        ..m("BALANCE", Direction::Internal, true, Confirmation::CodeOrPassword)
    },
    m("COUPON", Direction::Internal, true, Confirmation::CodeOrPassword),
    Method {
        list: true,
        ..m("COUPONLIST", Direction::Internal, true, Confirmation::CodeOrPassword)
    },
    m("WITHDRAW_TLT", Direction::Outbound, false, Confirmation::CodeOrPassword),
];

/// One entry of `payMethod`.
#[derive(Clone, PartialEq, Eq)]
pub struct PayPart {
    pub method: Method,
    pub amount: i64,
    /// BALANCE / COUPON / COUPONLIST: the account set paid from.
    pub account_set: Option<String>,
    /// Card-based methods: the card number (already decrypted).
    pub bank_card_no: Option<String>,
}

crate::debug_shows!(PayPart: method, amount, account_set);

/// The order types that take a `payMethod` (6.19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayingOrder {
    Deposit,
    Withdraw,
    Consume,
    AgentCollect,
}

fn int_field(obj: &Value, key: &str, name: &str) -> Result<Option<i64>, Reject> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
            Reject::new(
                code::PARAMETER_ERROR,
                format!("payMethod.{key}.{name} must be an integer"),
            )
        }),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
            Reject::new(
                code::PARAMETER_ERROR,
                format!("payMethod.{key}.{name} must be an integer"),
            )
        }),
        Some(_) => Err(Reject::new(
            code::PARAMETER_ERROR,
            format!("payMethod.{key}.{name} must be an integer"),
        )),
    }
}

fn str_field(obj: &Value, name: &str) -> Option<String> {
    match obj.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses `payMethod` (absent or empty: no parts). `order_amount` fills in
/// the amount of WITHDRAW_TLT, which has none of its own.
pub fn parse(pay_method: Option<&Value>, order_amount: i64) -> Result<Vec<PayPart>, Reject> {
    let obj = match pay_method {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Vec::new()),
        // Some SDKs send the object as a JSON string.
        Some(Value::String(s)) => &serde_json::from_str::<Value>(s)
            .map_err(|_| Reject::new(code::PARAMETER_ERROR, "payMethod is not a JSON object"))?,
        Some(v) => v,
    };
    let map = obj
        .as_object()
        .ok_or_else(|| Reject::new(code::PARAMETER_ERROR, "payMethod is not a JSON object"))?;
    let mut parts = Vec::new();
    for (key, value) in map {
        let method = METHODS
            .iter()
            .find(|m| m.key == key.as_str())
            .copied()
            .ok_or_else(|| Reject::new(code::PARAMETER_ERROR, format!("unknown payMethod key {key:?}")))?;
        let entries: Vec<&Value> = match value {
            Value::Array(items) if method.list => items.iter().collect(),
            Value::Array(_) => {
                return Err(Reject::new(
                    code::PARAMETER_ERROR,
                    format!("payMethod.{key} takes an object, not a list"),
                ));
            }
            Value::Object(_) => vec![value],
            _ => {
                return Err(Reject::new(
                    code::PARAMETER_ERROR,
                    format!("payMethod.{key} must be an object"),
                ));
            }
        };
        if entries.is_empty() {
            return Err(Reject::new(code::PARAMETER_ERROR, format!("payMethod.{key} is empty")));
        }
        if entries.len() > MAX_LIST_ITEMS {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                format!("payMethod.{key}: at most {MAX_LIST_ITEMS} entries"),
            ));
        }
        for entry in entries {
            let amount = match (method.key, int_field(entry, key, "amount")?) {
                ("WITHDRAW_TLT", None) => order_amount,
                (_, Some(a)) if formats::is_positive_amount(a) => a,
                (_, Some(a)) => {
                    return Err(Reject::new(
                        code::PARAMETER_ERROR,
                        format!(
                            "payMethod.{key}.amount must be from 1 to {} fen, got {a}",
                            formats::MAX_AMOUNT_FEN
                        ),
                    ));
                }
                (_, None) => {
                    return Err(Reject::new(
                        code::PARAMETER_EMPTY,
                        format!("payMethod.{key}.amount is required"),
                    ));
                }
            };
            let account_set = match (method.key, str_field(entry, "accountSetNo")) {
                ("BALANCE", None) => {
                    return Err(Reject::new(
                        code::PARAMETER_EMPTY,
                        "payMethod.BALANCE.accountSetNo is required",
                    ));
                }
                // "如果不传此字段, 则默认为营销专用账户" (5.2 l.2437, 2439).
                ("COUPON" | "COUPONLIST", None) => Some(sets::MARKETING.to_owned()),
                ("COUPON" | "COUPONLIST", Some(set)) if !formats::COUPON_ACCOUNT_SETS.contains(&set.as_str()) => {
                    return Err(Reject::new(
                        "30018",
                        format!("payMethod.{key}.accountSetNo: coupons come from the marketing or margin account set"),
                    ));
                }
                (_, set) => set,
            };
            if method.key == "WITHDRAW_TLT" && str_field(entry, "payTypeName").as_deref() != Some("withdraw_tlt") {
                // "必须传 withdraw_tlt" (5.2 l.2440).
                return Err(Reject::new(
                    code::PARAMETER_ERROR,
                    "payMethod.WITHDRAW_TLT.payTypeName must be withdraw_tlt",
                ));
            }
            let bank_card_no = str_field(entry, "bankCardNo");
            if matches!(
                method.key,
                "REALNAMEPAY" | "REALNAMEPAY_BATCH" | "WITHHOLD_TLT" | "QUICKPAY_N"
            ) && bank_card_no.is_none()
            {
                return Err(Reject::new(
                    code::PARAMETER_EMPTY,
                    format!("payMethod.{key}.bankCardNo is required"),
                ));
            }
            if method.key == "GATEWAY" && str_field(entry, "bankCode").is_none() {
                return Err(Reject::new(
                    code::PARAMETER_EMPTY,
                    "payMethod.GATEWAY.bankCode is required (vbank in the test environment)",
                ));
            }
            parts.push(PayPart {
                method,
                amount,
                account_set,
                bank_card_no,
            });
        }
    }
    Ok(parts)
}

/// Checks the 5.2 / 4.2.1 rules for `order` and returns how it is confirmed.
pub fn check(order: PayingOrder, parts: &[PayPart], amount: i64, validate_type: i64) -> Result<Confirmation, Reject> {
    let rule = |detail: String| Reject::new("40015", detail);
    if order == PayingOrder::Withdraw {
        if parts.iter().any(|p| p.method.key != "WITHDRAW_TLT") || parts.len() > 1 {
            return Err(rule("withdrawals pay out with WITHDRAW_TLT only".into()));
        }
    } else if parts.is_empty() {
        return Err(Reject::new(code::PARAMETER_EMPTY, "payMethod is required"));
    }
    let total = if order == PayingOrder::Withdraw {
        Some(amount)
    } else {
        parts.iter().try_fold(0i64, |sum, p| sum.checked_add(p.amount))
    };
    if total != Some(amount) {
        let total = total.map_or_else(|| "more than can be represented".to_owned(), |t| t.to_string());
        return Err(Reject::new(
            "40005",
            format!("payMethod amounts add up to {total} fen, the order amount is {amount}"),
        ));
    }
    let keys: Vec<&str> = parts.iter().map(|p| p.method.key).collect();
    let channels = parts
        .iter()
        .filter(|p| p.method.direction == Direction::Inbound)
        .count();
    if keys.contains(&"GATEWAY") && (keys.contains(&"QUICKPAY") || keys.contains(&"QUICKPAY_N")) {
        return Err(Reject::new("40008", "GATEWAY cannot be combined with quick pay"));
    }
    if parts.len() > 1 {
        if let Some(p) = parts.iter().find(|p| !p.method.combinable) {
            return Err(rule(format!("{} cannot be combined with other methods", p.method.key)));
        }
    }
    match order {
        PayingOrder::Deposit => {
            if parts.len() != 1 || channels != 1 {
                return Err(rule(
                    "deposits take exactly one bank/wallet payment method, no combination".into(),
                ));
            }
        }
        PayingOrder::Consume => {
            if channels > 1 {
                return Err(rule("consume orders take at most one bank/wallet method".into()));
            }
            if keys.iter().any(|k| k.starts_with("COUPON")) {
                return Err(rule("consume orders take no coupons".into()));
            }
        }
        PayingOrder::AgentCollect => {
            if channels > 1 {
                return Err(rule("agent-collect orders take at most one bank/wallet method".into()));
            }
        }
        PayingOrder::Withdraw => {}
    }
    if parts.iter().any(|p| p.method.direction == Direction::Outbound) && order != PayingOrder::Withdraw {
        return Err(rule("WITHDRAW_TLT is for withdrawals only".into()));
    }
    // The confirmation of the order is that of its strictest method.
    let confirmation = if order == PayingOrder::Withdraw {
        Confirmation::CodeOrPassword
    } else if let Some(p) = parts
        .iter()
        .find(|p| p.method.confirmation != Confirmation::CodeOrPassword)
    {
        p.method.confirmation
    } else {
        Confirmation::CodeOrPassword
    };
    let validate_ok = match confirmation {
        Confirmation::Immediate | Confirmation::QuickPay => validate_type == 0,
        Confirmation::CodeOrPassword => validate_type == 1 || validate_type == 2,
        Confirmation::ByPayer => (0..=2).contains(&validate_type),
    };
    if !validate_ok {
        return Err(Reject::new(
            "40028",
            format!("validateType {validate_type} does not fit payMethod {}", keys.join("+")),
        ));
    }
    Ok(confirmation)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parts(v: Value) -> Vec<PayPart> {
        parse(Some(&v), 0).unwrap()
    }

    #[test]
    fn parses_lists_strings_and_withdraw_without_amount() {
        let p =
            parts(json!({"BALANCE":[{"accountSetNo":"100000","amount":"300"},{"accountSetNo":"100000","amount":200}]}));
        assert_eq!(p.iter().map(|p| p.amount).sum::<i64>(), 500);
        let w = parse(Some(&json!({"WITHDRAW_TLT":{"payTypeName":"withdraw_tlt"}})), 700).unwrap();
        assert_eq!(w[0].amount, 700);
        assert_eq!(
            parse(Some(&json!({"NOPE":{}})), 1).unwrap_err().detail,
            "unknown payMethod key \"NOPE\""
        );
        assert_eq!(
            parse(Some(&json!({"BALANCE":{"amount":1}})), 1).unwrap_err().code,
            "10001"
        );
    }

    #[test]
    fn combination_and_amount_rules() {
        let gw_bal = parts(
            json!({"GATEWAY":{"bankCode":"vbank","payType":1,"amount":600},"BALANCE":[{"accountSetNo":"100000","amount":400}]}),
        );
        assert!(check(PayingOrder::Consume, &gw_bal, 1000, 1).is_ok());
        assert_eq!(check(PayingOrder::Consume, &gw_bal, 999, 1).unwrap_err().code, "40005");
        assert_eq!(check(PayingOrder::Deposit, &gw_bal, 1000, 1).unwrap_err().code, "40015");
        let scan_bal = parts(
            json!({"SCAN_WEIXIN":{"payType":"W01","amount":600},"BALANCE":[{"accountSetNo":"100000","amount":400}]}),
        );
        assert_eq!(
            check(PayingOrder::AgentCollect, &scan_bal, 1000, 0).unwrap_err().code,
            "40015"
        );
        let coupon = parts(json!({"COUPON":{"accountSetNo":"2000000","amount":10}}));
        assert_eq!(check(PayingOrder::Consume, &coupon, 10, 1).unwrap_err().code, "40015");
        assert!(check(PayingOrder::AgentCollect, &coupon, 10, 1).is_ok());
        let code = parts(json!({"CODEPAY_W":{"payType":"","amount":10,"authcode":"1"}}));
        assert_eq!(check(PayingOrder::Consume, &code, 10, 1).unwrap_err().code, "40028");
        assert_eq!(
            check(PayingOrder::Consume, &code, 10, 0).unwrap(),
            Confirmation::Immediate
        );
        let gw_quick = parts(
            json!({"GATEWAY":{"bankCode":"vbank","payType":1,"amount":5},"QUICKPAY":{"bankCardNo":"1","amount":5}}),
        );
        assert_eq!(
            check(PayingOrder::AgentCollect, &gw_quick, 10, 1).unwrap_err().code,
            "40008"
        );
    }
}
