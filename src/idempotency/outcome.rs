//! What a finished record keeps: the provider's verified answer as it came (encrypted fields still encrypted), its verified refusal, or a number already used.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::{Forgets, GatewayError, NumberUsed, OrderFailed};
use crate::exchange::ProviderAnswer;
use crate::provider::calls::CallSpec;
use crate::provider::client::CallError;
use crate::provider::codes::OrderStatus;

/// A stored outcome, versioned so that a rolling upgrade can read old records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "v")]
pub enum Stored {
    #[serde(rename = "1")]
    V1 {
        #[serde(flatten)]
        result: StoredResult,
        /// Learnt from a query after an unknown outcome rather than from the call's own answer.
        #[serde(default)]
        recovered: bool,
    },
}

/// The answer or the refusal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StoredResult {
    Answer(Json),
    Refusal {
        code: String,
        message: String,
    },
    /// The number was already used at the provider on the first attempt
    /// (`errors::Meaning::NumberUsed`), with the order's status then.
    NumberUsed {
        code: String,
        message: String,
        verified: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        existing: Option<i64>,
        /// What the records had forgotten when it was met.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        forgets: Option<Forgets>,
    },
}

impl Stored {
    /// What to store for an answer, if it is final: a success, or a refusal
    /// whose signature proves it (see `CallError::outcome`).
    pub fn of(result: &Result<Json, CallError>, recovered: bool) -> Option<Stored> {
        let result = match result {
            Ok(value) => StoredResult::Answer(value.clone()),
            Err(e @ CallError::Business { code, message, .. })
                if e.outcome() == crate::provider::client::Outcome::Definite =>
            {
                StoredResult::Refusal {
                    code: code.clone(),
                    message: message.clone(),
                }
            }
            Err(_) => return None,
        };
        Some(Stored::V1 { result, recovered })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a JSON value with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Stored, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The replayed answer of a record of `spec`'s call.
    pub fn into_answer(self, spec: &CallSpec) -> Result<ProviderAnswer, GatewayError> {
        let Stored::V1 { result, recovered } = self;
        let result = match result {
            StoredResult::Answer(value) if recovered => return recovered_answer(value, true),
            StoredResult::Answer(value) => Ok(value),
            StoredResult::Refusal { code, message } => Err(CallError::Business {
                code,
                message,
                verified: true,
            }),
            StoredResult::NumberUsed {
                code,
                message,
                verified,
                existing,
                forgets,
            } => {
                return Err(GatewayError::NumberUsed(Box::new(NumberUsed {
                    existing: existing.map(OrderStatus::from_code),
                    forgets,
                    replayed: true,
                    ..NumberUsed::new(spec, code, message, verified)
                })));
            }
        };
        Ok(ProviderAnswer {
            result,
            clear: None,
            replayed: true,
            recovered,
        })
    }
}

/// An answer learnt after the fact (a query, a notification): a failed or
/// closed order (6.13 3, 6) is a failure whatever the rpc's response can
/// say, never an answer a caller could take for a success.
pub fn recovered_answer(value: Json, replayed: bool) -> Result<ProviderAnswer, GatewayError> {
    let status = value
        .get("orderStatus")
        .and_then(Json::as_i64)
        .map(OrderStatus::from_code);
    if let Some(status) = status.filter(|s| s.is_failure()) {
        let text = |field: &str| value.get(field).and_then(Json::as_str).map(str::to_owned);
        return Err(GatewayError::OrderFailed(Box::new(OrderFailed {
            status,
            order_no: text("orderNo"),
            message: text("payFailMessage"),
            replayed,
        })));
    }
    Ok(ProviderAnswer {
        result: Ok(value),
        clear: None,
        replayed,
        recovered: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_and_verified_refusals_round_trip_and_nothing_else_is_stored() {
        let ok = Stored::of(&Ok(json!({"orderNo": "1", "payStatus": "success"})), false).unwrap();
        assert_eq!(Stored::from_bytes(&ok.to_bytes()).unwrap(), ok);
        let refused = Err(CallError::Business {
            code: "40014".into(),
            message: "余额不足".into(),
            verified: true,
        });
        let stored = Stored::of(&refused, false).unwrap();
        let spec = crate::provider::calls::Call::DepositApply.spec();
        let again = Stored::from_bytes(&stored.to_bytes())
            .unwrap()
            .into_answer(spec)
            .unwrap();
        assert!(again.replayed);
        assert!(matches!(again.result, Err(CallError::Business { code, verified: true, .. }) if code == "40014"));
        // Unverified refusals and 9000 prove nothing: not final.
        for (code, verified) in [("40014", false), ("9000", true)] {
            let e = Err(CallError::Business {
                code: code.into(),
                message: String::new(),
                verified,
            });
            assert_eq!(Stored::of(&e, false), None);
        }
        assert_eq!(Stored::of(&Err(CallError::OutcomeUnknown("t".into())), false), None);
    }

    #[test]
    fn a_recovered_failed_order_replays_as_a_failure() {
        let spec = crate::provider::calls::Call::Refund.spec();
        // 6.13 l.2969 交易失败: a refund answer without a status field must not read as success.
        let failed = Stored::V1 {
            result: StoredResult::Answer(json!({"bizOrderNo": "r1", "orderStatus": 3, "payStatus": "fail"})),
            recovered: true,
        };
        let replay = Stored::from_bytes(&failed.to_bytes()).unwrap().into_answer(spec);
        assert!(
            matches!(&replay, Err(GatewayError::OrderFailed(f)) if f.status == OrderStatus::Failed && f.replayed),
            "{replay:?}"
        );
        let used = Stored::V1 {
            result: StoredResult::NumberUsed {
                code: "40017".into(),
                message: "订单已经存在".into(),
                verified: false,
                existing: Some(4),
                forgets: Some(Forgets::Loss { at_ms: 7 }),
            },
            recovered: false,
        };
        let replay = Stored::from_bytes(&used.to_bytes()).unwrap().into_answer(spec);
        assert!(
            matches!(&replay, Err(GatewayError::NumberUsed(u))
                if u.field == "bizOrderNo" && u.existing == Some(OrderStatus::Success)
                    && u.forgets == Some(Forgets::Loss { at_ms: 7 }) && u.replayed),
            "{replay:?}"
        );
    }
}
