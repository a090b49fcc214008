//! Orders as the provider keeps them: kinds, the 6.13 state machine, split rules (5.3), and the money each one moves.
//!
//! Settlement routes every order through the platform's intermediate account
//! A (100004): the payer's sources pay into it, and it pays the receiver, the
//! splits and the fee. For consume and deposit it ends where it started; for
//! agent collect the net stays there, in a pool per trade business and goods,
//! until agent pay takes it out. So the balance of A always equals the sum of
//! the pools, an invariant the property tests check.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::Reject;
use super::ledger::{AccountKey, Ledger, LedgerError, Memo};
use super::payment::{Confirmation, Direction, PayPart};
use crate::provider::errors::code;
use crate::provider::formats::{MAX_AMOUNT_FEN, MAX_LIST_ITEMS, MAX_SPLIT_DEPTH};
use crate::provider::wire;

/// The platform's standard account sets (6.21).
pub mod sets {
    /// Operating income: fees land here, and B2C consume proceeds.
    pub const BALANCE: &str = "100001";
    /// Margin deposits; a source of platform transfers and coupons.
    pub const MARGIN: &str = "100002";
    /// Intermediate account A: money of orders in flight and collected funds.
    pub const INTERMEDIATE_A: &str = "100004";
    /// Marketing funds; a source of platform transfers and coupons.
    pub const MARKETING: &str = "2000000";
    /// Custom account A; a source of platform transfers.
    pub const CUSTOM_A: &str = "3000001";
}

pub use crate::provider::formats::{PLATFORM_AS_RECEIVER, PLATFORM_AS_SPLIT};

/// Order type (6.19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKind {
    Deposit,
    Consume,
    Withdraw,
    AgentCollect,
    AgentPay,
    BatchAgentPay,
    Refund,
}

impl OrderKind {
    /// The 6.19 code.
    pub fn code(self) -> i64 {
        match self {
            OrderKind::Deposit => 1,
            OrderKind::Consume => 2,
            OrderKind::Withdraw => 3,
            OrderKind::AgentCollect => 4,
            OrderKind::AgentPay => 5,
            OrderKind::BatchAgentPay => 6,
            OrderKind::Refund => 10,
        }
    }

    /// The name the reconciliation file uses (4.3.2).
    pub fn file_name(self) -> &'static str {
        match self {
            OrderKind::Deposit => "充值",
            OrderKind::Consume => "消费",
            OrderKind::Withdraw => "提现",
            OrderKind::AgentCollect => "代收",
            OrderKind::AgentPay | OrderKind::BatchAgentPay => "代付",
            OrderKind::Refund => "退款",
        }
    }
}

/// Order status (6.13): the one table in `provider::codes`.
pub use crate::provider::codes::OrderStatus;

/// One split rule (5.3), recursive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRule {
    pub biz_user_id: String,
    pub account_set: Option<String>,
    pub amount: i64,
    pub fee: i64,
    pub remark: Option<String>,
    pub children: Vec<SplitRule>,
}

impl SplitRule {
    /// Parses a split-rule list (a JSON array, or a JSON string holding one),
    /// at most [`MAX_SPLIT_DEPTH`] levels of at most [`MAX_LIST_ITEMS`] rules.
    pub fn parse_list(value: Option<&Value>, field: &str) -> Result<Vec<SplitRule>, Reject> {
        SplitRule::parse_level(value, field, 1)
    }

    fn parse_level(value: Option<&Value>, field: &str, depth: usize) -> Result<Vec<SplitRule>, Reject> {
        let parsed;
        let list = match value {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(Vec::new()),
            Some(Value::String(s)) => {
                parsed = serde_json::from_str::<Value>(s)
                    .map_err(|_| Reject::new(code::PARAMETER_ERROR, format!("{field} is not a JSON array")))?;
                &parsed
            }
            Some(v) => v,
        };
        let items = list
            .as_array()
            .ok_or_else(|| Reject::new(code::PARAMETER_ERROR, format!("{field} is not a JSON array")))?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        if depth > MAX_SPLIT_DEPTH {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                format!("{field}: split rules nest at most {MAX_SPLIT_DEPTH} levels"),
            ));
        }
        if items.len() > MAX_LIST_ITEMS {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                format!("{field}: at most {MAX_LIST_ITEMS} split rules per level"),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| SplitRule::parse(item, &format!("{field}[{i}]"), depth))
            .collect()
    }

    /// Sum of the rules' amounts; `None` if it would overflow.
    pub fn total(rules: &[SplitRule]) -> Option<i64> {
        rules.iter().try_fold(0i64, |sum, r| sum.checked_add(r.amount))
    }

    fn parse(item: &Value, at: &str, depth: usize) -> Result<SplitRule, Reject> {
        let int = |name: &str, required: bool| -> Result<i64, Reject> {
            match item.get(name) {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim().parse().ok(),
                None | Some(Value::Null) | Some(Value::String(_)) if !required => Some(0),
                None | Some(Value::Null) | Some(Value::String(_)) => {
                    return Err(Reject::new(code::PARAMETER_EMPTY, format!("{at}.{name} is required")));
                }
                _ => None,
            }
            .filter(|v| (0..=MAX_AMOUNT_FEN).contains(v))
            .ok_or_else(|| {
                Reject::new(
                    code::PARAMETER_ERROR,
                    format!("{at}.{name} must be an integer from 0 to {MAX_AMOUNT_FEN}"),
                )
            })
        };
        let biz_user_id = match item.get("bizUserId") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                return Err(Reject::new(
                    code::PARAMETER_EMPTY,
                    format!("{at}.bizUserId is required"),
                ));
            }
        };
        let rule = SplitRule {
            biz_user_id,
            account_set: item.get("accountSetNo").and_then(Value::as_str).map(str::to_owned),
            amount: int("amount", true)?,
            fee: int("fee", true)?,
            remark: item.get("remark").and_then(Value::as_str).map(str::to_owned),
            children: SplitRule::parse_level(item.get("splitRuleList"), &format!("{at}.splitRuleList"), depth + 1)?,
        };
        // Bounded amounts, at most MAX_LIST_ITEMS of them: the sum fits, checked anyway.
        let carved = SplitRule::total(&rule.children).and_then(|t| t.checked_add(rule.fee));
        if carved.is_none_or(|carved| carved > rule.amount) {
            let carved = carved.map_or_else(|| "too many".to_owned(), |c| c.to_string());
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                format!(
                    "{at}: fee and onward splits ({carved} fen) exceed its amount ({})",
                    rule.amount
                ),
            ));
        }
        Ok(rule)
    }

    /// Every bizUserId named at any depth.
    pub fn recipients(rules: &[SplitRule]) -> Vec<&str> {
        let mut out = Vec::new();
        for r in rules {
            out.push(r.biz_user_id.as_str());
            out.extend(SplitRule::recipients(&r.children));
        }
        out
    }
}

/// One order, of any kind.
#[derive(Debug, Clone)]
pub struct Order {
    pub order_no: String,
    pub biz_order_no: String,
    pub kind: OrderKind,
    pub status: OrderStatus,
    /// The paying member (deposit/withdraw: the member itself; agent pay: the receiver's counterpart is absent).
    pub payer: String,
    pub receiver: Option<String>,
    pub amount: i64,
    pub fee: i64,
    pub parts: Vec<PayPart>,
    pub confirmation: Confirmation,
    pub validate_type: i64,
    pub splits: Vec<SplitRule>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub paid_at: Option<OffsetDateTime>,
    pub back_url: Option<String>,
    /// Where the payer's browser goes after a page payment (4.2.9).
    pub front_url: Option<String>,
    pub extend_info: Option<String>,
    pub trade_code: Option<String>,
    pub goods: Option<(i64, String)>,
    /// The bank payout of a withdrawal or an agent pay to a bank account.
    pub payout: Option<Payout>,
    /// Refunds: the refunded order, where the money went (1 balance, 2 card), and the coupon part.
    pub refund_of: Option<String>,
    pub refund_whereabouts: Option<i64>,
    /// A refund to a card waiting for the bank: its couponAmount and feeAmount, settled when it answers.
    pub refund_terms: Option<(i64, i64)>,
    pub refunded: i64,
    pub fail_message: Option<String>,
}

impl Order {
    /// An order with nothing but its identity and amounts: unpaid, no payment
    /// parts, no splits, created now. Callers fill in the rest.
    pub fn new(order_no: String, biz_order_no: String, kind: OrderKind, payer: String, amount: i64, fee: i64) -> Order {
        let now = OffsetDateTime::now_utc();
        Order {
            order_no,
            biz_order_no,
            kind,
            status: OrderStatus::Unpaid,
            payer,
            receiver: None,
            amount,
            fee,
            parts: Vec::new(),
            confirmation: super::payment::Confirmation::Immediate,
            validate_type: 0,
            splits: Vec::new(),
            created_at: now,
            expires_at: now,
            paid_at: None,
            back_url: None,
            front_url: None,
            extend_info: None,
            trade_code: None,
            goods: None,
            payout: None,
            refund_of: None,
            refund_whereabouts: None,
            refund_terms: None,
            refunded: 0,
            fail_message: None,
        }
    }
}

/// Money paid out to a bank account (withdrawal, 5.12 payToBankCardInfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    /// The bound card, or the company's audited corporate account.
    pub account: String,
    /// What reaches the bank account, in fen.
    pub amount: i64,
    /// 5.12's own backUrl, which overrides the order's (l.2819).
    pub back_url: Option<String>,
}

/// Where collected money waits for agent pay: the trade business (pair of
/// 6.15 codes) and the goods.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolKey {
    pub business: &'static str,
    pub goods_type: i64,
    pub goods_no: String,
}

/// The 6.15 pairs: collect code, pay code, business.
pub const TRADE_PAIRS: [(&str, &str, &str); 9] = [
    ("1001", "2001", "investment"),
    ("1002", "2002", "repayment"),
    ("1003", "2003", "debt transfer"),
    ("1004", "2004", "automatic investment"),
    ("1005", "2005", "automatic repayment"),
    ("1006", "2006", "third-party repayment"),
    ("1007", "2007", "reimbursed third-party repayment"),
    ("3001", "4001", "e-commerce"),
    ("3002", "4002", "rebate/commission"),
];

/// The business of a collect code (`collect = true`) or a pay code.
pub fn trade_business(trade_code: &str, collect: bool) -> Option<&'static str> {
    TRADE_PAIRS
        .iter()
        .find(|(c, p, _)| if collect { *c == trade_code } else { *p == trade_code })
        .map(|(_, _, b)| *b)
}

/// The money side of the sandbox: the ledger, the collected pools, and the
/// agent pays whose bank payout is still pending.
#[derive(Debug, Clone, Default)]
pub struct Books {
    pub ledger: Ledger,
    pub pools: BTreeMap<PoolKey, i64>,
    /// Agent pays to a bank account reported pending, by bizOrderNo: their
    /// money left its pool but stays in account A until the bank answers.
    /// Account A holds exactly the pools plus these.
    pub in_flight: BTreeMap<String, i64>,
}

fn ledger_reject(e: LedgerError) -> Reject {
    match e {
        LedgerError::Insufficient { .. } => Reject::new("40014", e.to_string()),
        LedgerError::NotPositive(_) | LedgerError::NotFrozen { .. } | LedgerError::Overflow => {
            Reject::new(code::PARAMETER_ERROR, e.to_string())
        }
    }
}

fn overflow() -> Reject {
    Reject::new(code::PARAMETER_ERROR, "amounts add up beyond the representable range")
}

/// The account a bizUserId names when it receives money: a member's custody
/// account, or the platform for the reserved ids.
pub fn receiving_account(biz_user_id: &str, account_set: Option<&str>, escrow: &str) -> AccountKey {
    if biz_user_id == PLATFORM_AS_RECEIVER || biz_user_id == PLATFORM_AS_SPLIT {
        AccountKey::platform(account_set.unwrap_or(sets::BALANCE))
    } else {
        AccountKey::member(biz_user_id, escrow)
    }
}

impl Books {
    /// The books as JSON: accounts, pools, and the totals that must agree.
    pub fn to_json(&self) -> Value {
        let accounts: Vec<Value> = self
            .ledger
            .accounts()
            .map(|(key, b)| {
                let owner = match &key.owner {
                    super::ledger::Owner::Member(id) => id.as_str(),
                    super::ledger::Owner::Platform => "platform",
                };
                json!({ "owner": owner, "accountSetNo": key.account_set, "balance": b.balance, "frozen": b.frozen })
            })
            .collect();
        let pools: Vec<Value> = self
            .pools
            .iter()
            .map(|(k, v)| json!({ "business": k.business, "goodsType": k.goods_type, "goodsNo": k.goods_no, "amount": v }))
            .collect();
        let in_flight: Vec<Value> = self
            .in_flight
            .iter()
            .map(|(no, amount)| json!({ "bizOrderNo": no, "amount": amount }))
            .collect();
        json!({
            "accounts": accounts,
            "pools": pools,
            "inFlight": in_flight,
            // The sum of all balances equals received - paidOut, both i64.
            "total": i64::try_from(self.ledger.total()).ok(),
            "received": self.ledger.received(),
            "paidOut": self.ledger.paid_out(),
        })
    }

    /// Moves an order's money into intermediate account A from its payment parts.
    fn collect_parts(&mut self, order: &Order, escrow: &str) -> Result<(), Reject> {
        let a = AccountKey::platform(sets::INTERMEDIATE_A);
        let memo = Memo {
            biz_order_no: Some(&order.biz_order_no),
            remark: "支付",
        };
        for part in &order.parts {
            match part.method.direction {
                Direction::Inbound => self.ledger.receive(&a, part.amount, memo),
                Direction::Internal if part.method.key == "BALANCE" => {
                    let set = part.account_set.as_deref().unwrap_or(escrow);
                    self.ledger
                        .transfer(&AccountKey::member(&order.payer, set), &a, part.amount, memo)
                }
                Direction::Internal => {
                    let set = part.account_set.as_deref().unwrap_or(sets::MARKETING);
                    self.ledger.transfer(&AccountKey::platform(set), &a, part.amount, memo)
                }
                Direction::Outbound => Ok(()),
            }
            .map_err(ledger_reject)?;
        }
        Ok(())
    }

    /// Pays `amount` from A to `to`, its fee to the platform, and its splits.
    fn distribute(
        &mut self,
        biz_order_no: &str,
        to: &AccountKey,
        amount: i64,
        fee: i64,
        splits: &[SplitRule],
        escrow: &str,
    ) -> Result<(), Reject> {
        let a = AccountKey::platform(sets::INTERMEDIATE_A);
        let memo = |remark| Memo {
            biz_order_no: Some(biz_order_no),
            remark,
        };
        let carved = SplitRule::total(splits)
            .and_then(|t| t.checked_add(fee))
            .ok_or_else(overflow)?;
        let net = amount - carved;
        if net < 0 {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                format!("fee and splits ({carved} fen) exceed the amount ({amount})"),
            ));
        }
        if net > 0 {
            self.ledger.transfer(&a, to, net, memo("收款")).map_err(ledger_reject)?;
        }
        if fee > 0 {
            self.ledger
                .transfer(&a, &AccountKey::platform(sets::BALANCE), fee, memo("手续费"))
                .map_err(ledger_reject)?;
        }
        for split in splits {
            let key = receiving_account(&split.biz_user_id, split.account_set.as_deref(), escrow);
            self.distribute(biz_order_no, &key, split.amount, split.fee, &split.children, escrow)?;
        }
        Ok(())
    }

    /// Runs `f` and keeps its changes only if it succeeds, so that a movement
    /// of several legs is all or nothing.
    pub fn all_or_nothing<T>(&mut self, f: impl FnOnce(&mut Books) -> Result<T, Reject>) -> Result<T, Reject> {
        let backup = self.clone();
        let result = f(self);
        if result.is_err() {
            *self = backup;
        }
        result
    }

    fn add_to_pool(&mut self, key: PoolKey, amount: i64) -> Result<(), Reject> {
        let pool = self.pools.entry(key).or_default();
        *pool = pool.checked_add(amount).ok_or_else(overflow)?;
        Ok(())
    }

    /// Settles a paid deposit, consume or agent-collect order, all or nothing.
    pub fn settle_inbound(&mut self, order: &Order, escrow: &str) -> Result<(), Reject> {
        self.all_or_nothing(|books| {
            books.collect_parts(order, escrow)?;
            match order.kind {
                OrderKind::Deposit => books.distribute(
                    &order.biz_order_no,
                    &AccountKey::member(&order.payer, escrow),
                    order.amount,
                    order.fee,
                    &[],
                    escrow,
                ),
                OrderKind::Consume => {
                    let receiver = order.receiver.as_deref().unwrap_or(PLATFORM_AS_RECEIVER);
                    books.distribute(
                        &order.biz_order_no,
                        &receiving_account(receiver, None, escrow),
                        order.amount,
                        order.fee,
                        &order.splits,
                        escrow,
                    )
                }
                OrderKind::AgentCollect => {
                    let memo = Memo {
                        biz_order_no: Some(&order.biz_order_no),
                        remark: "手续费",
                    };
                    if order.fee > 0 {
                        books
                            .ledger
                            .transfer(
                                &AccountKey::platform(sets::INTERMEDIATE_A),
                                &AccountKey::platform(sets::BALANCE),
                                order.fee,
                                memo,
                            )
                            .map_err(ledger_reject)?;
                    }
                    books.add_to_pool(pool_key(order, true)?, order.amount - order.fee)
                }
                _ => Err(Reject::new(code::OTHER, "not an inbound order")),
            }
        })
    }
}

impl Books {
    /// Pays out a confirmed withdrawal: the fee to the platform, the rest to the bank account.
    pub fn settle_withdraw(&mut self, order: &Order, escrow: &str) -> Result<(), Reject> {
        self.all_or_nothing(|books| {
            let member = AccountKey::member(&order.payer, escrow);
            let memo = |remark| Memo {
                biz_order_no: Some(&order.biz_order_no),
                remark,
            };
            if order.fee > 0 {
                books
                    .ledger
                    .transfer(&member, &AccountKey::platform(sets::BALANCE), order.fee, memo("手续费"))
                    .map_err(ledger_reject)?;
            }
            let to_bank = order.amount - order.fee;
            if to_bank > 0 {
                books
                    .ledger
                    .pay_out(&member, to_bank, memo("提现"))
                    .map_err(ledger_reject)?;
            }
            Ok(())
        })
    }

    /// A withdrawal the bank has not answered yet: its amount is frozen in the member's account.
    pub fn hold_withdraw(&mut self, order: &Order, escrow: &str) -> Result<(), Reject> {
        let memo = Memo {
            biz_order_no: Some(&order.biz_order_no),
            remark: "提现处理中",
        };
        self.ledger
            .freeze(&AccountKey::member(&order.payer, escrow), order.amount, memo)
            .map_err(ledger_reject)
    }

    /// The bank answered a held withdrawal: paid (`succeeded`) or returned.
    pub fn finish_withdraw(&mut self, order: &Order, escrow: &str, succeeded: bool) -> Result<(), Reject> {
        self.all_or_nothing(|books| {
            let memo = Memo {
                biz_order_no: Some(&order.biz_order_no),
                remark: "提现解冻",
            };
            books
                .ledger
                .unfreeze(&AccountKey::member(&order.payer, escrow), order.amount, memo)
                .map_err(ledger_reject)?;
            if succeeded {
                books.settle_withdraw(order, escrow)?;
            }
            Ok(())
        })
    }

    /// Takes an agent pay's amount out of its pool (it stays in account A).
    fn take_from_pool(&mut self, order: &Order) -> Result<(), Reject> {
        let key = pool_key(order, false)?;
        let pooled = self.pools.get(&key).copied().unwrap_or(0);
        if pooled < order.amount {
            return Err(Reject::new(
                "40014",
                format!(
                    "only {pooled} fen collected for {} goods {:?} (type {}), {} needed",
                    key.business, key.goods_no, key.goods_type, order.amount
                ),
            ));
        }
        self.pools.insert(key, pooled - order.amount);
        Ok(())
    }

    /// Pays an agent pay's amount from A: the receiver's net, the fee, the
    /// splits, then the payout to the bank account when there is one.
    fn pay_agent_pay(&mut self, order: &Order, escrow: &str) -> Result<(), Reject> {
        let receiver = order.receiver.as_deref().unwrap_or_default();
        let to = AccountKey::member(receiver, escrow);
        self.distribute(&order.biz_order_no, &to, order.amount, order.fee, &order.splits, escrow)?;
        if let Some(payout) = &order.payout {
            let memo = Memo {
                biz_order_no: Some(&order.biz_order_no),
                remark: "代付到银行账户",
            };
            self.ledger.pay_out(&to, payout.amount, memo).map_err(ledger_reject)?;
        }
        Ok(())
    }

    /// Pays collected money out of its pool to the receiver, and on to its
    /// bank account when asked (exactly `payout.amount`; the rest stays in
    /// the receiver's balance).
    pub fn settle_agent_pay(&mut self, order: &Order, escrow: &str) -> Result<(), Reject> {
        self.all_or_nothing(|books| {
            books.take_from_pool(order)?;
            books.pay_agent_pay(order, escrow)
        })
    }

    /// An agent pay to a bank account the bank has not answered yet: its
    /// money leaves the pool and waits in A.
    pub fn hold_agent_pay(&mut self, order: &Order) -> Result<(), Reject> {
        self.all_or_nothing(|books| {
            books.take_from_pool(order)?;
            books.in_flight.insert(order.biz_order_no.clone(), order.amount);
            Ok(())
        })
    }

    /// The bank answered a held agent pay: on success it is paid as usual,
    /// otherwise its money goes back to the pool (a failed order moves nothing).
    pub fn finish_agent_pay(&mut self, order: &Order, escrow: &str, succeeded: bool) -> Result<(), Reject> {
        self.all_or_nothing(|books| {
            let amount = books
                .in_flight
                .remove(&order.biz_order_no)
                .ok_or_else(|| Reject::new(code::OTHER, "no payout in flight for this order"))?;
            if succeeded {
                books.pay_agent_pay(order, escrow)
            } else {
                books.add_to_pool(pool_key(order, false)?, amount)
            }
        })
    }

    /// Refunds `refund.amount` of `original` to its payer: the fee part from
    /// the platform's income, the rest from the receiver (consume) or the
    /// collected pool (agent collect); coupons go back to the platform's
    /// account they came from; the bank/wallet part goes back to the card
    /// first (or to the balance for methods that refund to balance), the
    /// rest to the payer's balance. Returns the 4.2.12 `refundWhereabouts`.
    pub fn settle_refund(
        &mut self,
        original: &Order,
        refund: &Order,
        fee_amount: i64,
        coupon_amount: i64,
        escrow: &str,
        balance_only: bool,
    ) -> Result<i64, Reject> {
        self.all_or_nothing(|books| {
            let a = AccountKey::platform(sets::INTERMEDIATE_A);
            let memo = |remark| Memo {
                biz_order_no: Some(&refund.biz_order_no),
                remark,
            };
            let main = refund.amount - fee_amount;
            match original.kind {
                OrderKind::Consume => {
                    let receiver = original.receiver.as_deref().unwrap_or(PLATFORM_AS_RECEIVER);
                    let from = receiving_account(receiver, None, escrow);
                    if main > 0 {
                        books
                            .ledger
                            .transfer(&from, &a, main, memo("退款"))
                            .map_err(ledger_reject)?;
                    }
                }
                OrderKind::AgentCollect => {
                    let key = pool_key(original, true)?;
                    let pooled = books.pools.get(&key).copied().unwrap_or(0);
                    if pooled < main {
                        return Err(Reject::new(
                            "40014",
                            format!("only {pooled} fen left collected for this goods, {main} needed"),
                        ));
                    }
                    books.pools.insert(key, pooled - main);
                }
                _ => {
                    return Err(Reject::new(
                        "40018",
                        "only consume and agent-collect orders can be refunded",
                    ));
                }
            }
            if fee_amount > 0 {
                books
                    .ledger
                    .transfer(&AccountKey::platform(sets::BALANCE), &a, fee_amount, memo("退手续费"))
                    .map_err(ledger_reject)?;
            }
            let mut left = refund.amount;
            if coupon_amount > 0 {
                let set = original
                    .parts
                    .iter()
                    .find(|p| p.method.key.starts_with("COUPON"))
                    .and_then(|p| p.account_set.as_deref())
                    .unwrap_or(sets::MARKETING);
                books
                    .ledger
                    .transfer(&a, &AccountKey::platform(set), coupon_amount, memo("退代金券"))
                    .map_err(ledger_reject)?;
                left -= coupon_amount;
            }
            let channel = original.parts.iter().find(|p| p.method.direction == Direction::Inbound);
            let to_card = match channel {
                Some(p) if !balance_only && !p.method.refund_to_balance => {
                    left.min(p.amount - original.refunded.min(p.amount))
                }
                _ => 0,
            };
            if to_card > 0 {
                books
                    .ledger
                    .pay_out(&a, to_card, memo("退款到银行卡"))
                    .map_err(ledger_reject)?;
            }
            let to_balance = left - to_card;
            if to_balance > 0 {
                books
                    .ledger
                    .transfer(
                        &a,
                        &AccountKey::member(&original.payer, escrow),
                        to_balance,
                        memo("退款"),
                    )
                    .map_err(ledger_reject)?;
            }
            Ok(if to_card > 0 { 2 } else { 1 })
        })
    }
}

/// The pool an agent-collect (`collect = true`) or agent-pay order uses.
pub fn pool_key(order: &Order, collect: bool) -> Result<PoolKey, Reject> {
    let trade_code = order.trade_code.as_deref().unwrap_or_default();
    let business = trade_business(trade_code, collect).ok_or_else(|| {
        Reject::new(
            "40010",
            format!(
                "tradeCode {trade_code:?} is not a 6.15 {} code",
                if collect { "collect" } else { "pay" }
            ),
        )
    })?;
    let (goods_type, goods_no) = order.goods.clone().unwrap_or((0, String::new()));
    Ok(PoolKey {
        business,
        goods_type,
        goods_no,
    })
}

/// The `returnValue` of the order result notification (4.2.12).
pub fn result_notice(order: &Order) -> Value {
    let mut v = json!({
        "orderNo": order.order_no,
        "bizOrderNo": order.biz_order_no,
        "amount": order.amount,
        "buyerBizUserId": order.payer,
    });
    if let Some(at) = order.paid_at {
        v["payDatetime"] = json!(wire::format_timestamp(at));
    }
    if let Some(w) = order.refund_whereabouts {
        v["refundWhereabouts"] = json!(w);
    }
    if let Some(e) = &order.extend_info {
        v["extendInfo"] = json!(e);
    }
    v
}
