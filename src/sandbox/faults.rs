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
    /// Waited before a call is processed, in milliseconds (not scaled): a
    /// provider still working on a request when its client gives up, which
    /// commits after the client's timeout.
    pub processing_ms: u64,
    /// Chance per call of refusing it, before anything is committed, with `error_code`.
    pub error_rate: BTreeMap<String, f64>,
    /// The code of injected refusals (default 9000, 其他错误): any code the
    /// spec shows, section 7's and 9999 内部错误 of the 3.3 example (l.229).
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
    /// How v1 error answers are signed: by default as the spec shows them
    /// (l.228, a `sign` over `"signedValue": "error"`), which the official
    /// v1 clients verify and accept.
    pub v1_error_signature: V1ErrorSignature,
    /// Notifications.
    pub notifications: NotificationFaults,
    /// Bank payouts: withdrawals, agent pay to bank accounts, batch items,
    /// refunds to bank cards.
    pub payouts: PayoutFaults,
    /// What the reconciliation file (4.3.2) gets wrong.
    pub check_file: CheckFileFaults,
}

/// Rows of the reconciliation file dropped, altered or added, to exercise
/// a merchant's reconciliation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct CheckFileFaults {
    /// Rows left out, by merchant order number (bizOrderNo, bizTransferNo).
    pub drop: Vec<String>,
    /// Rows written with another amount, by merchant order number.
    pub amounts: BTreeMap<String, i64>,
    /// Lines added at the end, as written.
    pub add: Vec<String>,
    /// Serve a day's file at once, with what succeeded so far, instead of
    /// from 11:00 China time the next day (4.3.2 l.2329): to try a
    /// reconciliation without waiting a day.
    pub early: bool,
}

/// The shape of v1 error answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum V1ErrorSignature {
    /// The spec's example (l.228): `"signedValue": "error"`, signed with the
    /// provider's key. 3.2 lists `sign` without condition (l.204) and every
    /// response table marks it required (e.g. l.332); the official v1 PHP
    /// client verifies `sign` over `signedValue` whenever a `sign` is
    /// there. Authentic, but it proves no code.
    #[default]
    SpecExample,
    /// No `signedValue`, no `sign`: a fault (real integrations report such
    /// answers; a client that insists on a `sign` rejects them).
    Unsigned,
    /// `signedValue` = `errorCode=..&message=..` signed, as v2 does: proves the code.
    CodeAndMessage,
    /// `errorCode=..&message=..` with a `sign` that does not verify.
    BadSignature,
}

/// What the (simulated) bank does with payouts to bank accounts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PayoutFaults {
    /// Chance a payout is refused by the bank (nothing moves; notified).
    pub fail_rate: f64,
    /// Chance a payout is first reported `pending` (notified), then ends
    /// after `pending_ms` in success or, with `fail_rate`, failure.
    pub pending_rate: f64,
    /// How long a pending payout waits, in sandbox milliseconds (scaled; default 2000).
    pub pending_ms: Option<u64>,
}

/// What the bank does with one payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutFate {
    Paid,
    Failed,
    Pending { succeeds: bool },
}

impl PayoutFaults {
    /// The wait of a pending payout.
    pub fn pending_ms(&self) -> u64 {
        self.pending_ms.unwrap_or(2_000)
    }

    /// Draws one payout's fate.
    pub fn draw(&self, dice: &mut Dice) -> PayoutFate {
        let pending = dice.chance(self.pending_rate);
        let fails = dice.chance(self.fail_rate);
        match (pending, fails) {
            (true, fails) => PayoutFate::Pending { succeeds: !fails },
            (false, true) => PayoutFate::Failed,
            (false, false) => PayoutFate::Paid,
        }
    }
}

/// The longest latency, hang or delay a fault may ask for, in milliseconds:
/// long enough for any timeout test, short enough that a typo cannot hang
/// the sandbox forever.
pub const MAX_FAULT_MS: u64 = 600_000;

/// The longest wait in sandbox time (scaled by the time scale), in
/// milliseconds: a day, like the provider's own retry schedule.
pub const MAX_SANDBOX_WAIT_MS: u64 = 86_400_000;

/// The most per-call entries a fault map may hold (there are 41 calls and `*`).
const MAX_FAULT_KEYS: usize = 64;

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
    /// Checks the rates lie in [0, 1] and the durations within
    /// [`MAX_FAULT_MS`]; names the first that does not.
    pub fn validate(&self) -> Result<(), String> {
        let durations = [
            ("latencyMs", Some(self.latency_ms)),
            ("processingMs", Some(self.processing_ms)),
            ("hangMs", self.hang_ms),
            ("notifications.delayMs", Some(self.notifications.delay_ms)),
            ("notifications.reorderWindowMs", self.notifications.reorder_window_ms),
        ];
        for (name, ms) in durations {
            if let Some(ms) = ms.filter(|ms| *ms > MAX_FAULT_MS) {
                return Err(format!("{name} must be at most {MAX_FAULT_MS} ms, got {ms}"));
            }
        }
        if let Some(ms) = self.payouts.pending_ms.filter(|ms| *ms > MAX_SANDBOX_WAIT_MS) {
            return Err(format!(
                "payouts.pendingMs must be at most {MAX_SANDBOX_WAIT_MS} ms (a day of sandbox time), got {ms}"
            ));
        }
        let f = &self.check_file;
        if f.drop.len() + f.amounts.len() + f.add.len() > MAX_FAULT_KEYS {
            return Err(format!("checkFile names more than {MAX_FAULT_KEYS} rows"));
        }
        if f.add.iter().any(|l| l.len() > 1024 || l.contains(['\n', '\r'])) {
            return Err("checkFile.add: a line is at most 1024 bytes, without line breaks".into());
        }
        for (name, map) in [
            ("errorRate", &self.error_rate),
            ("timeoutAfterCommit", &self.timeout_after_commit),
        ] {
            if map.len() > MAX_FAULT_KEYS {
                return Err(format!("{name} names more than {MAX_FAULT_KEYS} calls"));
            }
        }
        let mut rates: Vec<(String, f64)> = vec![
            ("unsignedRate".into(), self.unsigned_rate),
            ("badSignatureRate".into(), self.bad_signature_rate),
            ("notifications.dropRate".into(), self.notifications.drop_rate),
            ("notifications.duplicateRate".into(), self.notifications.duplicate_rate),
            ("payouts.failRate".into(), self.payouts.fail_rate),
            ("payouts.pendingRate".into(), self.payouts.pending_rate),
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
            if crate::provider::errors::shown(code).is_none() {
                return Err(format!(
                    "errorCode {code:?} is not a code the spec shows (section 7, or 9999 of 3.3)"
                ));
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
        let hang: Faults = serde_json::from_str(r#"{"latencyMs":18446744073709551615}"#).unwrap();
        assert_eq!(
            hang.validate().unwrap_err(),
            "latencyMs must be at most 600000 ms, got 18446744073709551615"
        );
        let nan = Faults {
            unsigned_rate: f64::NAN,
            ..Faults::default()
        };
        assert!(
            nan.validate().unwrap_err().starts_with("unsignedRate"),
            "NaN is no rate"
        );
    }

    #[test]
    fn payout_fates_follow_the_rates() {
        let mut dice = Dice::new(3);
        let never = PayoutFaults::default();
        assert!((0..100).all(|_| never.draw(&mut dice) == PayoutFate::Paid));
        let always_pending_then_fail = PayoutFaults {
            fail_rate: 1.0,
            pending_rate: 1.0,
            pending_ms: None,
        };
        assert_eq!(
            always_pending_then_fail.draw(&mut dice),
            PayoutFate::Pending { succeeds: false }
        );
        let refused = PayoutFaults {
            fail_rate: 1.0,
            ..PayoutFaults::default()
        };
        assert_eq!(refused.draw(&mut dice), PayoutFate::Failed);
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
