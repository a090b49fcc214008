//! Fault injection: what the sandbox does wrong on purpose, set at start and changed at runtime.
//!
//! Every knob is off by default. Rates are probabilities in [0, 1], drawn
//! from a seeded generator so that a test run can be repeated. Per-call
//! knobs are keyed by `Service.method` (e.g. `OrderService.depositApply`)
//! with `*` for every call.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The fault settings (`PUT /sandbox/faults` takes this as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every answer, in milliseconds (not scaled).
    pub latency_ms: u64,
    /// Chance per call of refusing it, before anything is committed, with `error_code`.
    pub error_rate: BTreeMap<String, f64>,
    /// The section 7 code of injected refusals (default 9000, 其他错误).
    pub error_code: Option<String>,
    /// Chance per call of committing it and then never answering in time:
    /// the answer waits `hang_ms`, longer than any sane client timeout.
    pub timeout_after_commit: BTreeMap<String, f64>,
    /// How long a hung answer waits, in milliseconds (default 30 000).
    pub hang_ms: Option<u64>,
    /// Chance per successful answer of sending it without a signature.
    pub unsigned_rate: f64,
    /// Chance per successful answer of sending it with a wrong signature.
    pub bad_signature_rate: f64,
    /// Notifications.
    pub notifications: NotificationFaults,
}

/// What happens to notifications.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NotificationFaults {
    /// Chance a notification is never sent.
    pub drop_rate: f64,
    /// Chance a notification is delivered twice.
    pub duplicate_rate: f64,
    /// Wait before the first attempt, in milliseconds (not scaled).
    pub delay_ms: u64,
    /// Deliver the notifications produced within `reorder_window_ms` in reverse order.
    pub reorder: bool,
    /// How long notifications are gathered for reordering (default 200 ms).
    pub reorder_window_ms: Option<u64>,
}

impl Faults {
    /// Checks the rates lie in [0, 1]; names the first that does not.
    pub fn validate(&self) -> Result<(), String> {
        let mut rates: Vec<(String, f64)> = vec![
            ("unsignedRate".into(), self.unsigned_rate),
            ("badSignatureRate".into(), self.bad_signature_rate),
            ("notifications.dropRate".into(), self.notifications.drop_rate),
            ("notifications.duplicateRate".into(), self.notifications.duplicate_rate),
        ];
        rates.extend(self.error_rate.iter().map(|(k, v)| (format!("errorRate.{k}"), *v)));
        rates.extend(
            self.timeout_after_commit
                .iter()
                .map(|(k, v)| (format!("timeoutAfterCommit.{k}"), *v)),
        );
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        if let Some(code) = &self.error_code {
            if crate::provider::errors::lookup(code).is_none() {
                return Err(format!("errorCode {code:?} is not a section 7 code"));
            }
        }
        Ok(())
    }

    /// The rate for `call` (`Service.method`) in a per-call map, falling back to `*`.
    pub fn rate_for(map: &BTreeMap<String, f64>, call: &str) -> f64 {
        map.get(call).or_else(|| map.get("*")).copied().unwrap_or(0.0)
    }
}

/// A small seeded generator (SplitMix64): reproducible draws for fault decisions and ids.
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Dice(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `rate`.
    pub fn chance(&mut self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let unit = (self.next_u64() >> 11) as f64 / ((1u64 << 53) as f64);
        unit < rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_checked_and_parsed_from_camel_case() {
        let f: Faults = serde_json::from_str(r#"{"errorRate":{"*":0.5},"notifications":{"dropRate":2}}"#).unwrap();
        assert_eq!(
            f.validate().unwrap_err(),
            "notifications.dropRate must be between 0 and 1, got 2"
        );
        assert!(
            serde_json::from_str::<Faults>(r#"{"latencyMS":1}"#).is_err(),
            "unknown keys are refused"
        );
        assert_eq!(Faults::rate_for(&f.error_rate, "MemberService.createMember"), 0.5);
    }

    #[test]
    fn dice_are_reproducible_and_roughly_fair() {
        let mut a = Dice::new(7);
        let mut b = Dice::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let hits = (0..10_000).filter(|_| a.chance(0.3)).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        assert!(!a.chance(0.0));
        assert!(a.chance(1.0));
    }
}
