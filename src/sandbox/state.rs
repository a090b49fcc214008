//! The sandbox's memory: members, cards, orders, the books, and the notifications waiting to be sent.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use time::OffsetDateTime;

use super::cards::PendingBinding;
use super::ledger::{AccountKey, Memo};
use super::order::{Books, Order, sets};
use crate::provider::codes::{MemberType, Source};

/// Everything the sandbox remembers between calls.
#[derive(Debug)]
pub struct SandboxState {
    /// Members by the merchant's `bizUserId`.
    pub members: HashMap<String, Member>,
    /// Orders of every kind by the merchant's `bizOrderNo`.
    pub orders: HashMap<String, Order>,
    /// Money: the ledger and the collected pools.
    pub books: Books,
    /// Platform transfers by `bizTransferNo`.
    pub transfers: HashMap<String, Transfer>,
    /// Freezes by `bizFreezenNo`.
    pub freezes: HashMap<String, Freeze>,
    /// Goods by `bizGoodsNo`.
    pub goods: HashMap<String, Goods>,
    /// Batch numbers already used (`bizBatchNo`).
    pub batches: BTreeMap<String, Vec<String>>,
    /// Card bindings waiting for their SMS confirmation, by `tranceNum`.
    pub pending_bindings: HashMap<String, PendingBinding>,
    /// New-mobile password resets waiting for their SMS code, by `mobileFlowNO`.
    pub pending_resets: HashMap<String, String>,
    /// Pages opened and waiting for their form, by token.
    pub pages: HashMap<String, super::pages::OpenPage>,
    /// Company audits still running: bizUserId and when they finish.
    pub audits: Vec<(String, OffsetDateTime)>,
    /// When the sandbox started: its clock runs `1 / time_scale` times as
    /// fast from here (for the reconciliation file's 11:00 of the next day).
    pub started_at: time::OffsetDateTime,
    /// Bank payouts reported pending, waiting for the bank's answer.
    pub pending_payouts: Vec<PendingPayout>,
    /// Notifications produced by calls, for the notifier to send.
    pub outbox: Vec<Notice>,
    /// Per spec section: calls that succeeded and calls that were refused.
    pub call_counts: BTreeMap<&'static str, (u64, u64)>,
    /// The merchant's custody account set (2.3).
    pub escrow: String,
    /// The reserve fund (备付金) the merchant keeps for payouts, before any payout.
    pub reserve_fund_initial: i64,
    next_id: u64,
    ids: super::faults::Dice,
    /// Draws the fate of bank payouts (seeded, apart from the ids).
    payouts: super::faults::Dice,
}

/// A payout the bank has not answered yet, and what it will answer.
#[derive(Debug, Clone)]
pub struct PendingPayout {
    pub biz_order_no: String,
    pub due: OffsetDateTime,
    pub succeeds: bool,
}

impl SandboxState {
    /// A fresh provider for one merchant: custody account set `escrow`, and
    /// `platform_funds` fen in each of the platform's funding accounts
    /// (margin, marketing, custom A), as if paid in through the portal.
    /// `seed` makes the generated ids repeatable.
    pub fn new(escrow: &str, platform_funds: i64, reserve_fund: i64, seed: u64) -> Self {
        let mut books = Books::default();
        if platform_funds > 0 {
            for set in [sets::MARGIN, sets::MARKETING, sets::CUSTOM_A] {
                let memo = Memo {
                    biz_order_no: None,
                    remark: "平台入金",
                };
                // Cannot fail: the amount is positive.
                let _ = books.ledger.receive(&AccountKey::platform(set), platform_funds, memo);
            }
        }
        SandboxState {
            members: HashMap::new(),
            orders: HashMap::new(),
            books,
            transfers: HashMap::new(),
            freezes: HashMap::new(),
            goods: HashMap::new(),
            batches: BTreeMap::new(),
            pending_bindings: HashMap::new(),
            pending_resets: HashMap::new(),
            pages: HashMap::new(),
            audits: Vec::new(),
            started_at: time::OffsetDateTime::now_utc(),
            pending_payouts: Vec::new(),
            outbox: Vec::new(),
            call_counts: BTreeMap::new(),
            escrow: escrow.to_owned(),
            reserve_fund_initial: reserve_fund,
            next_id: 0,
            ids: super::faults::Dice::new(seed),
            payouts: super::faults::Dice::new(seed ^ 0xba_4c0u64),
        }
    }

    /// What the bank will do with the next payout, as the faults ask.
    pub fn payout_fate(&mut self, faults: &super::faults::PayoutFaults) -> super::faults::PayoutFate {
        faults.draw(&mut self.payouts)
    }

    /// A fresh provider-side id with a prefix (user, order, goods...).
    pub fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        // A seeded salt: ids differ between seeds, so that nobody comes to
        // rely on their value, and repeat for the same seed.
        let salt = self.ids.next_u64() & 0xff_ffff;
        format!("{prefix}{salt:06x}{:08}", self.next_id)
    }

    /// A fresh provider-side user id.
    pub fn new_user_id(&mut self) -> String {
        self.new_id("")
    }
}

impl Default for SandboxState {
    fn default() -> Self {
        SandboxState::new("100000", 0, 0, 0)
    }
}

/// One member as the provider keeps it.
#[derive(Clone)]
pub struct Member {
    pub user_id: String,
    pub biz_user_id: String,
    pub member_type: MemberType,
    pub source: Source,
    pub registered_at: OffsetDateTime,
    /// The bound phone, once `bindPhone` succeeded.
    pub phone: Option<String>,
    /// Real-name record, once `setRealName` succeeded.
    pub real_name: Option<RealName>,
    /// Codes sent by `sendVerificationCode`, by phone number.
    pub pending_codes: HashMap<String, PendingCode>,
    pub locked: bool,
    /// Bank cards ever bound, in binding order.
    pub cards: Vec<BoundCard>,
    /// Company information and its audit, once `setCompanyInfo` was called.
    pub company: Option<CompanyRecord>,
    /// The new-mobile quick-pay password (4.1.24).
    pub quick_pay_password: Option<String>,
    /// The payment password set on the password pages (4.1.20).
    pub pay_password: Option<String>,
}

crate::debug_shows!(Member: user_id, biz_user_id, member_type, source, locked);

/// Company information (5.5) and its audit (6.12: 1 pending, 2 passed, 3 failed).
#[derive(Clone)]
pub struct CompanyRecord {
    pub info: Value,
    pub status: i64,
    pub back_url: Option<String>,
    pub check_time: Option<OffsetDateTime>,
    pub fail_reason: Option<String>,
}

crate::debug_shows!(CompanyRecord: status, check_time);

impl Member {
    /// A bound (not unbound) card by number.
    pub fn bound_card(&self, card_no: &str) -> Option<&BoundCard> {
        self.cards.iter().find(|c| c.card_no == card_no && c.bound)
    }
}

/// A verified identity.
#[derive(Clone)]
pub struct RealName {
    pub name: String,
    pub identity_type: i64,
    pub identity_no: String,
    pub verified_at: OffsetDateTime,
}

crate::debug_shows!(RealName: identity_type, verified_at);

/// A verification code waiting to be used.
#[derive(Clone)]
pub struct PendingCode {
    pub code: String,
    pub code_type: i64,
    pub expires_at: OffsetDateTime,
}

crate::debug_shows!(PendingCode: code_type, expires_at);

/// A bank card bound to a member (5.9).
#[derive(Clone)]
pub struct BoundCard {
    pub card_no: String,
    pub bank_name: String,
    pub card_type: i64,
    pub phone: Option<String>,
    pub bind_method: i64,
    pub bound_at: OffsetDateTime,
    pub bound: bool,
    pub safe: bool,
}

crate::debug_shows!(BoundCard: bank_name, card_type, bind_method, bound, safe);

/// A platform transfer (4.2.19).
#[derive(Debug, Clone)]
pub struct Transfer {
    pub transfer_no: String,
    pub amount: i64,
    pub at: OffsetDateTime,
}

/// A freeze (4.2.15) and how much of it is still frozen.
#[derive(Debug, Clone)]
pub struct Freeze {
    pub biz_user_id: String,
    pub account_set: String,
    pub frozen: i64,
}

/// Goods entered with entryGoods (4.2.13).
#[derive(Debug, Clone)]
pub struct Goods {
    pub goods_no: String,
    pub biz_user_id: String,
    pub goods_type: i64,
    pub record: Value,
}

/// A notification to send: where, and the `rps` fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub url: String,
    pub service: &'static str,
    pub method: &'static str,
    /// `OK`, `error` or `pending`; `None` for notifications without a status (4.1.7).
    pub status: Option<&'static str>,
    pub error_code: Option<String>,
    pub message: Option<String>,
    pub return_value: Value,
}
