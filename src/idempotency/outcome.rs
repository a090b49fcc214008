//! What a finished record keeps: the provider's verified answer as it came (encrypted fields still encrypted) or its verified refusal.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::exchange::ProviderAnswer;
use crate::provider::client::CallError;

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
    Refusal { code: String, message: String },
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

    /// The replayed answer.
    pub fn into_answer(self) -> ProviderAnswer {
        let Stored::V1 { result, recovered } = self;
        let result = match result {
            StoredResult::Answer(value) => Ok(value),
            StoredResult::Refusal { code, message } => Err(CallError::Business {
                code,
                message,
                verified: true,
            }),
        };
        ProviderAnswer {
            result,
            clear: None,
            replayed: true,
            recovered,
        }
    }
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
        let again = Stored::from_bytes(&stored.to_bytes()).unwrap().into_answer();
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
}
