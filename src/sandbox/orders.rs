//! The order calls of spec 4.2 as the provider enforces them: apply, confirm, agent pay, refund, transfers, freezes, queries.

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::faults::{Faults, PayoutFate};
use super::ledger::{AccountKey, Memo};
use super::order::{
    OrderKind, OrderStatus, PLATFORM_AS_RECEIVER, Payout, SplitRule, result_notice, sets, trade_business,
};
use super::payment::{self, Confirmation, PayingOrder};
use super::state::{Freeze, Goods, Member, Notice, PendingPayout, SandboxState, Transfer};
use super::{Params, Reject, SandboxConfig};
use crate::provider::codes::MemberType;
use crate::provider::errors::code;
use crate::provider::formats::{self, MAX_AMOUNT_FEN, MAX_LIST_ITEMS};
use crate::provider::wire;

pub use super::order::Order;

/// Longest an order may stay open (4.2.2: at most 24 hours).
const MAX_EXPIRY: Duration = Duration::hours(24);

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A member that may take part in orders as payer: exists, not locked, phone bound (4.2.1).
fn paying_member<'a>(state: &'a SandboxState, biz_user_id: &str) -> Result<&'a Member, Reject> {
    let member = existing_member(state, biz_user_id)?;
    if member.phone.is_none() {
        return Err(Reject::new(
            code::PHONE_NOT_BOUND,
            format!("bizUserId {biz_user_id:?} must bind a phone before paying"),
        ));
    }
    Ok(member)
}

fn existing_member<'a>(state: &'a SandboxState, biz_user_id: &str) -> Result<&'a Member, Reject> {
    let member = state
        .members
        .get(biz_user_id)
        .ok_or_else(|| Reject::new(code::USER_NOT_FOUND, format!("bizUserId {biz_user_id:?}")))?;
    if member.locked {
        return Err(Reject::new(code::USER_LOCKED, format!("bizUserId {biz_user_id:?}")));
    }
    Ok(member)
}

fn check_escrow(state: &SandboxState, account_set: &str, field: &str) -> Result<(), Reject> {
    if account_set != state.escrow {
        return Err(Reject::new(
            "30019",
            format!("{field} {account_set:?} is not this application's custody account set"),
        ));
    }
    Ok(())
}

fn new_order_no(state: &mut SandboxState, biz_order_no: &str) -> Result<String, Reject> {
    if state.orders.contains_key(biz_order_no) {
        return Err(Reject::new(code::ORDER_EXISTS, format!("bizOrderNo {biz_order_no:?}")));
    }
    Ok(state.new_id("O"))
}

fn summary_ok(p: &Params<'_>) -> Result<(), Reject> {
    if let Some(s) = p.opt_str("summary") {
        if s.chars().count() > 20 {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                "summary is longer than 20 characters",
            ));
        }
    }
    Ok(())
}

fn url(p: &Params<'_>, name: &str, required: bool) -> Result<Option<String>, Reject> {
    match p.opt_str(name) {
        Some(u) if u.contains('#') => Err(Reject::new(
            code::PARAMETER_ERROR,
            format!("{name} must not contain '#'"),
        )),
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => Err(Reject::new(
            code::PARAMETER_ERROR,
            format!("{name} must be an http(s) URL"),
        )),
        Some(u) => Ok(Some(u)),
        None if required => Err(Reject::new(code::PARAMETER_EMPTY, format!("{name} is required"))),
        None => Ok(None),
    }
}

/// A required amount: 1 to [`MAX_AMOUNT_FEN`] fen, else 40020 (订单金额错误).
fn positive_amount(p: &Params<'_>, name: &str) -> Result<i64, Reject> {
    let amount = p.int(name)?;
    if !formats::is_positive_amount(amount) {
        return Err(Reject::new(
            "40020",
            format!("{name} must be from 1 to {MAX_AMOUNT_FEN} fen, got {amount}"),
        ));
    }
    Ok(amount)
}

fn amount_and_fee(p: &Params<'_>, fee_required: bool) -> Result<(i64, i64), Reject> {
    let amount = positive_amount(p, "amount")?;
    let fee = if fee_required {
        p.int("fee")?
    } else {
        p.opt_int("fee")?.unwrap_or(0)
    };
    if fee < 0 {
        return Err(Reject::new(code::PARAMETER_ERROR, "fee must not be negative"));
    }
    if fee > amount {
        return Err(Reject::new("40016", format!("fee {fee} exceeds amount {amount}")));
    }
    Ok((amount, fee))
}

fn expiry(p: &Params<'_>) -> Result<OffsetDateTime, Reject> {
    let now = now();
    match p.opt_str("ordErexpireDatetime") {
        None => Ok(now + MAX_EXPIRY),
        Some(text) => {
            let at = wire::parse_timestamp(&text).ok_or_else(|| {
                Reject::new(
                    code::PARAMETER_ERROR,
                    "ordErexpireDatetime must be yyyy-MM-dd HH:mm:ss (UTC+8)",
                )
            })?;
            if at <= now || at > now + MAX_EXPIRY {
                return Err(Reject::new(
                    code::PARAMETER_ERROR,
                    "ordErexpireDatetime must lie within the next 24 hours",
                ));
            }
            Ok(at)
        }
    }
}

/// Marks an order paid now (6.13: success).
fn mark_paid(order: &mut Order) {
    order.status = OrderStatus::Success;
    order.paid_at = Some(now());
}

/// Closes an unpaid order whose expiry has passed (6.13: closed).
fn expire(order: &mut Order) {
    if order.status == OrderStatus::Unpaid && now() > order.expires_at {
        order.status = OrderStatus::Closed;
    }
}

/// Queues the order result notification when the spec says this outcome is
/// notified: success always; failure and pending only for payouts to a bank
/// account (withdrawals, agent pay to a bank account; 3.6, l.1704, 1723,
/// 1901), to the payout's own backUrl when it has one (5.12 l.2819).
fn notify_result(state: &mut SandboxState, order: &Order) {
    let url = order
        .payout
        .as_ref()
        .and_then(|p| p.back_url.clone())
        .or_else(|| order.back_url.clone());
    let Some(url) = url else { return };
    let to_bank = order.payout.is_some();
    // "退款到银行卡成功、失败" (3.6 l.283).
    let card_refund = order.kind == OrderKind::Refund && order.refund_whereabouts == Some(2);
    let (status, notify) = match order.status {
        OrderStatus::Success | OrderStatus::Refunded => ("OK", true),
        OrderStatus::Failed => ("error", to_bank || card_refund),
        OrderStatus::Pending => ("pending", to_bank),
        OrderStatus::Unpaid | OrderStatus::Closed | OrderStatus::Unknown(_) => ("", false),
    };
    if !notify {
        return;
    }
    let mut return_value = result_notice(order);
    if let Some((1, goods_no)) = &order.goods {
        if order.kind == OrderKind::AgentCollect {
            return_value["remainAmount"] = json!(remaining_investable(state, goods_no));
        }
    }
    state.outbox.push(Notice {
        url,
        service: "OrderService",
        method: "pay",
        status: Some(status),
        error_code: (status == "error").then(|| "40006".to_owned()),
        message: order.fail_message.clone(),
        return_value,
    });
}

/// P2P targets: the target amount less what was collected for it.
fn remaining_investable(state: &SandboxState, goods_no: &str) -> i64 {
    let target = state
        .goods
        .get(goods_no)
        .and_then(|g| g.record["goodsParams"]["amount"].as_i64())
        .unwrap_or(0);
    let collected: i128 = state
        .orders
        .values()
        .filter(|o| {
            o.kind == OrderKind::AgentCollect
                && matches!(o.status, OrderStatus::Success)
                && o.goods.as_ref().is_some_and(|(t, n)| *t == 1 && n == goods_no)
        })
        .map(|o| i128::from(o.amount))
        .sum();
    // Both sides are bounded amounts; the difference fits, clamped for safety.
    i64::try_from(i128::from(target) - collected).unwrap_or(i64::MIN)
}

/// 4.2.2 to 4.2.5: the apply calls that take a payMethod.
pub fn apply(
    state: &mut SandboxState,
    config: &SandboxConfig,
    faults: &Faults,
    p: &Params<'_>,
    kind: OrderKind,
) -> Result<Value, Reject> {
    let biz_order_no = p.str("bizOrderNo")?;
    let (payer, receiver) = match kind {
        OrderKind::Consume => (p.str("payerId")?, Some(p.str("recieverId")?)),
        OrderKind::AgentCollect => (p.str("payerId")?, None),
        _ => (p.str("bizUserId")?, None),
    };
    let (amount, fee) = amount_and_fee(p, kind != OrderKind::AgentCollect)?;
    let validate_type = p.opt_int("validateType")?.unwrap_or(1);
    let back_url = url(p, "backUrl", true)?;
    let front_url = url(p, "frontUrl", false)?;
    p.str("industryCode")?;
    p.str("industryName")?;
    let source = p.int("source")?;
    if !(1..=2).contains(&source) {
        return Err(Reject::new(code::UNSUPPORTED_SOURCE, format!("source {source}")));
    }
    summary_ok(p)?;
    let expires_at = expiry(p)?;
    if matches!(kind, OrderKind::Deposit | OrderKind::Withdraw) {
        check_escrow(state, &p.str("accountSetNo")?, "accountSetNo")?;
    }
    let member = paying_member(state, &payer)?;
    let paying = match kind {
        OrderKind::Deposit => PayingOrder::Deposit,
        OrderKind::Withdraw => PayingOrder::Withdraw,
        OrderKind::Consume => PayingOrder::Consume,
        _ => PayingOrder::AgentCollect,
    };
    let parts = payment::parse(p.get("payMethod"), amount)?;
    let confirmation = payment::check(paying, &parts, amount, validate_type)?;
    for part in &parts {
        if let Some(card) = &part.bank_card_no {
            // WITHHOLD_TLT "支持对私和对公" (5.2 l.2410): a company's own corporate account too.
            if part.method.key == "WITHHOLD_TLT" && corporate_account(member) == Some(card.as_str()) {
                continue;
            }
            let bound = member.bound_card(card).ok_or_else(|| {
                Reject::new(
                    "30016",
                    format!("payMethod.{} card is not bound to the payer", part.method.key),
                )
            })?;
            // Real-name pay takes four-element (2) and real-name-pay (3)
            // cards, not three-element ones (5.2 l.2404, 2408); new mobile
            // quick pay only cards signed for it, cardCheck 4 (l.2467).
            let accepted: &[i64] = match part.method.key {
                "REALNAMEPAY" | "REALNAMEPAY_BATCH" => &[2, 3],
                "QUICKPAY_N" => &[4],
                _ => &[1, 2, 3, 4],
            };
            if !accepted.contains(&bound.bind_method) {
                return Err(Reject::new(
                    "40015",
                    format!(
                        "payMethod.{} does not take a card bound with cardCheck {}",
                        part.method.key, bound.bind_method
                    ),
                ));
            }
        }
        if part.method.key == "BALANCE" {
            check_escrow(
                state,
                part.account_set.as_deref().unwrap_or_default(),
                "payMethod.BALANCE.accountSetNo",
            )?;
        }
    }
    let payout = if kind == OrderKind::Withdraw {
        Some(withdraw_target(config, p, member, amount, fee)?)
    } else {
        None
    };
    let splits = SplitRule::parse_list(p.get("splitRule").or_else(|| p.get("splitRuleList")), "splitRule")?;
    let carved = SplitRule::total(&splits).and_then(|t| t.checked_add(fee));
    if carved.is_none_or(|c| c > amount) {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            format!("fee and splits exceed the amount ({amount})"),
        ));
    }
    for id in SplitRule::recipients(&splits) {
        if id != super::order::PLATFORM_AS_SPLIT {
            existing_member(state, id)?;
        }
    }
    if let Some(r) = &receiver {
        if r != PLATFORM_AS_RECEIVER {
            existing_member(state, r)?;
        }
    }
    let mut trade_code = None;
    let mut goods = None;
    if kind == OrderKind::AgentCollect {
        let tc = p.str("tradeCode")?;
        if trade_business(&tc, true).is_none() {
            return Err(Reject::new(
                "40010",
                format!("tradeCode {tc:?} is not a 6.15 collect code"),
            ));
        }
        trade_code = Some(tc);
        goods = goods_ref(state, p)?;
        if let Some((1, goods_no)) = &goods {
            check_investment(state, goods_no, amount)?;
        }
    }
    // Balance parts must be covered now; they are taken at confirmation.
    // (Each part is at most the order amount, checked by payment::check.)
    let from_balance: i64 = parts
        .iter()
        .filter(|p| p.method.key == "BALANCE")
        .map(|p| p.amount)
        .sum::<i64>()
        + if kind == OrderKind::Withdraw { amount } else { 0 };
    let available = state
        .books
        .ledger
        .balance(&AccountKey::member(&payer, &state.escrow))
        .available();
    if from_balance > available {
        return Err(Reject::new(
            "40014",
            format!("{available} fen available, {from_balance} fen needed"),
        ));
    }
    let order_no = new_order_no(state, &biz_order_no)?;
    let mut order = Order {
        receiver,
        parts,
        confirmation,
        validate_type,
        splits,
        expires_at,
        back_url,
        front_url,
        extend_info: p.opt_str("extendInfo"),
        trade_code,
        goods,
        payout,
        ..Order::new(order_no, biz_order_no.clone(), kind, payer.clone(), amount, fee)
    };
    let mut answer = json!({ "orderNo": order.order_no, "bizOrderNo": biz_order_no });
    if let Some(e) = &order.extend_info {
        answer["extendInfo"] = json!(e);
    }
    let keys: Vec<&str> = order.parts.iter().map(|p| p.method.key).collect();
    if keys.contains(&"POSPAY") {
        let mut bytes = [0u8; 4];
        let _ = getrandom::fill(&mut bytes);
        answer["payCode"] = json!(format!("{:06}", u32::from_le_bytes(bytes) % 1_000_000));
    }
    if keys.iter().any(|k| {
        matches!(
            *k,
            "SCAN_WEIXIN" | "SCAN_ALIPAY" | "WECHAT_PUBLIC" | "ALIPAY_SERVICE" | "QQ_WALLET"
        )
    }) {
        answer["payInfo"] = json!(format!("{}/pay/{}", config.public_base_url(), order.order_no));
    }
    if keys.contains(&"WECHATPAY_APP") {
        // 5.17: the WeChat APP SDK's parameters under "weixinstr".
        answer["weChatAPPInfo"] = json!({ "weixinstr": {
            "appid": "wxsandbox",
            "partnerid": "sandbox",
            "prepayid": format!("wx{}", order.order_no),
            "noncestr": order.order_no,
            "timestamp": now().unix_timestamp().to_string(),
            "package": "Sign=WXPay",
            "sign": "sandbox",
        }});
    }
    if order.confirmation == Confirmation::QuickPay {
        answer["isNeedPassword"] = json!(1);
        answer["mobileFlag"] = json!(1);
    }
    if keys.contains(&"QUICKPAY") {
        answer["tradeNo"] = json!(order.order_no);
    }
    if validate_type == 0 {
        answer["bizUserId"] = json!(payer);
        // Only the barcode methods settle here and say how it went; scan, JS,
        // APP and POS orders return their payment information and no
        // payStatus (5.2 l.2449-2461).
        if order.confirmation == Confirmation::Immediate {
            match settle(state, config, faults, &mut order) {
                Ok(status) => answer["payStatus"] = json!(status),
                Err(reject) => {
                    order.status = OrderStatus::Failed;
                    order.fail_message = Some(reject.detail.clone());
                    answer["payStatus"] = json!("fail");
                    answer["payFailMessage"] = json!(reject.detail);
                }
            }
        }
    }
    if order.status != OrderStatus::Unpaid {
        notify_result(state, &order);
    }
    state.orders.insert(biz_order_no, order);
    Ok(answer)
}

/// `goodsType` / `goodsNo`: goods type 0 (or absent) means none; P2P targets must have been entered.
fn goods_ref(state: &SandboxState, p: &Params<'_>) -> Result<Option<(i64, String)>, Reject> {
    let goods_type = p.opt_int("goodsType")?.unwrap_or(0);
    if goods_type == 0 {
        return Ok(None);
    }
    let goods_no = p
        .opt_str("goodsNo")
        .ok_or_else(|| Reject::new(code::PARAMETER_EMPTY, "goodsNo is required when goodsType is not 0"))?;
    if goods_type == 1 && !state.goods.contains_key(&goods_no) {
        return Err(Reject::new("40024", format!("P2P target {goods_no:?} was not entered")));
    }
    Ok(Some((goods_type, goods_no)))
}

/// P2P limits: the target's remaining amount (40023) and its minimum investment (40029, 40030).
fn check_investment(state: &SandboxState, goods_no: &str, amount: i64) -> Result<(), Reject> {
    let params = state
        .goods
        .get(goods_no)
        .map(|g| g.record["goodsParams"].clone())
        .unwrap_or(Value::Null);
    let remaining = remaining_investable(state, goods_no);
    if amount > remaining {
        return Err(Reject::new(
            "40023",
            format!("{remaining} fen left to invest in this target"),
        ));
    }
    if let Some(min) = params["minimumAmountInvestment"].as_i64() {
        if amount < min && amount != remaining {
            return Err(Reject::new("40029", format!("minimum investment is {min} fen")));
        }
        let left = remaining - amount;
        if left > 0 && left < min {
            return Err(Reject::new(
                "40030",
                format!("would leave {left} fen, below the minimum {min}"),
            ));
        }
    }
    Ok(())
}

/// Where a withdrawal goes (4.2.3): a bound card (the safe card when there
/// is one), or with `bankCardPro` 1 a company's audited corporate account.
fn withdraw_target(
    config: &SandboxConfig,
    p: &Params<'_>,
    member: &Member,
    amount: i64,
    fee: i64,
) -> Result<Payout, Reject> {
    let account = p.str("bankCardNo")?;
    let corporate = match p.opt_int("bankCardPro")?.unwrap_or(0) {
        0 => false,
        1 => true,
        n => {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                format!("bankCardPro {n}: expected 0 (personal card) or 1 (corporate account)"),
            ));
        }
    };
    let company = member.member_type == MemberType::Company;
    if company {
        company_audited(member)?;
    } else if member.real_name.is_none() {
        return Err(Reject::new(
            "30008",
            "individuals must pass real-name verification before withdrawing",
        ));
    }
    if corporate {
        if !company {
            return Err(Reject::new(
                "40015",
                "bankCardPro 1 (corporate account) is for company members",
            ));
        }
        if corporate_account(member) != Some(account.as_str()) {
            return Err(Reject::new(
                "30016",
                "bankCardNo is not the company's audited corporate account (companyBasicInfo.accountNo)",
            ));
        }
    } else {
        member
            .bound_card(&account)
            .ok_or_else(|| Reject::new("30016", "bankCardNo is not a card bound to this member"))?;
        match member.cards.iter().find(|c| c.bound && c.safe) {
            // "设置了安全卡的, 只能提现到安全卡中" (4.2.3 note 2).
            Some(safe) if safe.card_no != account => {
                return Err(Reject::new(
                    "40015",
                    "this member has a safe card: withdrawals go to it",
                ));
            }
            // "必须使用安全卡提现" (note 4); companies need none (4.1.15 l.884).
            None if config.require_safe_card && !company => {
                return Err(Reject::new(
                    "30029",
                    "this platform withdraws to safe cards only, and the member has set none",
                ));
            }
            _ => {}
        }
    }
    Ok(Payout {
        account,
        amount: amount - fee,
        back_url: None,
    })
}

/// A company whose information passed audit; 30030 when none was set.
pub fn company_audited(member: &Member) -> Result<(), Reject> {
    match &member.company {
        None => Err(Reject::new(
            "30030",
            "the company information was not set (setCompanyInfo)",
        )),
        Some(c) if c.status != 2 => Err(Reject::new("30022", "the company information has not passed audit")),
        Some(_) => Ok(()),
    }
}

/// The corporate account of a company whose information passed audit.
pub fn corporate_account(member: &Member) -> Option<&str> {
    member
        .company
        .as_ref()
        .filter(|c| c.status == 2)
        .and_then(|c| c.info.get("accountNo"))
        .and_then(Value::as_str)
}

/// Moves the money of a confirmed order; returns its payStatus. A bank
/// payout (withdrawal) may fail or stay pending, as the payout faults draw.
fn settle(
    state: &mut SandboxState,
    config: &SandboxConfig,
    faults: &Faults,
    order: &mut Order,
) -> Result<&'static str, Reject> {
    let escrow = state.escrow.clone();
    if order.kind != OrderKind::Withdraw {
        state.books.settle_inbound(order, &escrow)?;
        mark_paid(order);
        return Ok("success");
    }
    // The money is held first (so a lack of it is a refusal, not a bank
    // failure), then the bank answers now or later.
    state.books.hold_withdraw(order, &escrow)?;
    bank_answers(state, config, faults, order)
}

/// The (simulated) bank's answer to a held payout: paid, refused (the money
/// is released), or pending until [`finish_due_payouts`].
fn bank_answers(
    state: &mut SandboxState,
    config: &SandboxConfig,
    faults: &Faults,
    order: &mut Order,
) -> Result<&'static str, Reject> {
    let escrow = state.escrow.clone();
    match state.payout_fate(&faults.payouts) {
        PayoutFate::Paid => {
            if let Err(reject) = finish_payout(&mut state.books, order, &escrow, true) {
                finish_payout(&mut state.books, order, &escrow, false)?;
                return Err(reject);
            }
            mark_paid(order);
            Ok("success")
        }
        PayoutFate::Failed => {
            finish_payout(&mut state.books, order, &escrow, false)?;
            order.status = OrderStatus::Failed;
            order.fail_message = Some(BANK_REFUSED.to_owned());
            Ok("fail")
        }
        PayoutFate::Pending { succeeds } => {
            order.status = OrderStatus::Pending;
            schedule_payout(state, config, faults, order, succeeds);
            Ok("pending")
        }
    }
}

/// Ends a held payout: paid (`ok`) or released.
fn finish_payout(books: &mut super::order::Books, order: &Order, escrow: &str, ok: bool) -> Result<(), Reject> {
    match order.kind {
        OrderKind::Withdraw => books.finish_withdraw(order, escrow, ok),
        _ => books.finish_agent_pay(order, escrow, ok),
    }
}

/// The failure message of a payout the (simulated) bank refused.
const BANK_REFUSED: &str = "银行处理失败 (sandbox payout fault)";

fn schedule_payout(state: &mut SandboxState, config: &SandboxConfig, faults: &Faults, order: &Order, succeeds: bool) {
    let wait = config.scaled(std::time::Duration::from_millis(faults.payouts.pending_ms()));
    state.pending_payouts.push(PendingPayout {
        biz_order_no: order.biz_order_no.clone(),
        due: now() + Duration::try_from(wait).unwrap_or(Duration::ZERO),
        succeeds,
    });
}

/// The bank answers the payouts that were pending and are due: each ends
/// in success or failure, and is notified.
pub fn finish_due_payouts(state: &mut SandboxState, at: OffsetDateTime) {
    let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.pending_payouts)
        .into_iter()
        .partition(|p| p.due <= at);
    state.pending_payouts = waiting;
    let escrow = state.escrow.clone();
    for payout in due {
        let Some(mut order) = state.orders.get(&payout.biz_order_no).cloned() else {
            continue;
        };
        if order.status != OrderStatus::Pending {
            continue;
        }
        if order.kind == OrderKind::Refund {
            finish_card_refund(state, &mut order, payout.succeeds, &escrow);
            notify_result(state, &order);
            state.orders.insert(order.biz_order_no.clone(), order);
            continue;
        }
        let paid = payout.succeeds && finish_payout(&mut state.books, &order, &escrow, true).is_ok();
        if paid {
            mark_paid(&mut order);
        } else {
            if payout.succeeds {
                // The money could not be paid after all: release it as a failure.
                tracing::warn!("sandbox: a pending payout could not complete; it fails");
            }
            let _ = finish_payout(&mut state.books, &order, &escrow, false);
            order.status = OrderStatus::Failed;
            order.fail_message = Some(BANK_REFUSED.to_owned());
        }
        notify_result(state, &order);
        state.orders.insert(order.biz_order_no.clone(), order);
    }
}

/// The bank's late answer to a refund to a card: settled now, or failed
/// (and the amount it held back is refundable again).
fn finish_card_refund(state: &mut SandboxState, order: &mut Order, succeeds: bool, escrow: &str) {
    let (coupon_amount, fee_amount) = order.refund_terms.unwrap_or((0, 0));
    let ori_no = order.refund_of.clone().unwrap_or_default();
    let settled = match state.orders.get(&ori_no).cloned() {
        Some(mut original) if succeeds => {
            // What was refunded before this one: its own amount was held at acceptance.
            original.refunded -= order.amount;
            state
                .books
                .settle_refund(&original, order, fee_amount, coupon_amount, escrow, false)
                .is_ok()
        }
        _ => false,
    };
    if settled {
        mark_paid(order);
        if let Some(ori) = state.orders.get_mut(&ori_no) {
            ori.status = OrderStatus::Refunded;
        }
        return;
    }
    if succeeds {
        tracing::warn!("sandbox: a pending card refund could not complete; it fails");
    }
    if let Some(ori) = state.orders.get_mut(&ori_no) {
        ori.refunded -= order.amount;
    }
    order.status = OrderStatus::Failed;
    order.fail_message = Some(BANK_REFUSED.to_owned());
}

/// The stored order for a confirmation by `biz_user_id`, after expiry is applied.
fn order_for_payer<'a>(
    state: &'a mut SandboxState,
    biz_user_id: &str,
    biz_order_no: &str,
) -> Result<&'a mut Order, Reject> {
    let order = state
        .orders
        .get_mut(biz_order_no)
        .ok_or_else(|| Reject::new("40000", format!("bizOrderNo {biz_order_no:?}")))?;
    if order.payer != biz_user_id {
        return Err(Reject::new("40022", "bizUserId is not the payer of this order"));
    }
    expire(order);
    match order.status {
        OrderStatus::Unpaid => Ok(order),
        OrderStatus::Closed => Err(Reject::new("40003", "the order expired and was closed")),
        _ => Err(Reject::new("40004", "the order is not unpaid")),
    }
}

/// 4.2.8 / 4.2.11 pay: backend confirmation with an SMS code, or with the quick-pay password.
pub fn confirm(
    state: &mut SandboxState,
    config: &SandboxConfig,
    faults: &Faults,
    p: &Params<'_>,
) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let biz_order_no = p.str("bizOrderNo")?;
    p.str("consumerIp")?;
    let mut order = order_for_payer(state, &biz_user_id, &biz_order_no)?.clone();
    match (order.confirmation, order.validate_type) {
        (Confirmation::CodeOrPassword, 1) => {
            if p.opt_str("verificationCode").as_deref() != Some(config.verification_code.as_str()) {
                return Err(Reject::new(
                    code::WRONG_VERIFICATION_CODE,
                    "verificationCode does not match",
                ));
            }
        }
        (Confirmation::QuickPay, _) => {
            let code_ok = p.opt_str("verificationCode").as_deref() == Some(config.verification_code.as_str());
            let given = p.opt_str("quickNewPwd");
            if !code_ok || given.is_none() {
                return Err(Reject::new(
                    code::WRONG_VERIFICATION_CODE,
                    "quick pay needs the SMS code and quickNewPwd (isNeedPassword=1, mobileFlag=1)",
                ));
            }
            let set = state
                .members
                .get(&biz_user_id)
                .and_then(|m| m.quick_pay_password.clone());
            if given != set {
                return Err(Reject::new(
                    "40006",
                    "quickNewPwd does not match the quick-pay password",
                ));
            }
        }
        (Confirmation::CodeOrPassword, _) => {
            return Err(Reject::new(
                "40028",
                "validateType 2 orders are confirmed on the password page (4.2.10)",
            ));
        }
        _ => {
            return Err(Reject::new(
                "40028",
                "this order's payment method is not confirmed by pay (it completes on the payer's side)",
            ));
        }
    }
    let pay_status = settle(state, config, faults, &mut order)?;
    notify_result(state, &order);
    let mut answer = json!({ "payStatus": pay_status, "bizUserId": biz_user_id, "bizOrderNo": biz_order_no });
    if let Some(m) = &order.fail_message {
        answer["payFailMessage"] = json!(m);
    }
    state.orders.insert(biz_order_no.clone(), order);
    Ok(answer)
}

/// Completes an order paid on the payer's side (scan, wallet, POS, bank
/// page, password page), as the channel would report it; returns the order
/// and its payStatus.
pub fn complete_by_payer(
    state: &mut SandboxState,
    config: &SandboxConfig,
    faults: &Faults,
    biz_order_no: &str,
) -> Result<(Order, &'static str), Reject> {
    let payer = state
        .orders
        .get(biz_order_no)
        .map(|o| o.payer.clone())
        .ok_or_else(|| Reject::new("40000", format!("bizOrderNo {biz_order_no:?}")))?;
    let mut order = order_for_payer(state, &payer, biz_order_no)?.clone();
    let pay_status = settle(state, config, faults, &mut order)?;
    notify_result(state, &order);
    state.orders.insert(biz_order_no.to_owned(), order.clone());
    Ok((order, pay_status))
}

struct AgentPayItem {
    biz_order_no: String,
    receiver: String,
    amount: i64,
    fee: i64,
    splits: Vec<SplitRule>,
    back_url: Option<String>,
    payout: Option<Payout>,
    extend_info: Option<String>,
}

/// Reads one agent pay (4.2.6, or an item of 5.11) and checks its form: a
/// malformed one refuses the whole call, batch included.
fn parse_agent_pay_item(state: &SandboxState, p: &Params<'_>) -> Result<AgentPayItem, Reject> {
    let biz_order_no = p.str("bizOrderNo")?;
    if state.orders.contains_key(&biz_order_no) {
        return Err(Reject::new(code::ORDER_EXISTS, format!("bizOrderNo {biz_order_no:?}")));
    }
    let receiver = p.str("bizUserId")?;
    check_escrow(state, &p.str("accountSetNo")?, "accountSetNo")?;
    let back_url = url(p, "backUrl", true)?;
    let (amount, fee) = amount_and_fee(p, true)?;
    summary_ok(p)?;
    let splits = SplitRule::parse_list(p.get("splitRuleList"), "splitRuleList")?;
    // What reaches the receiver: amount - fee - splits (each bounded, so no overflow).
    let net = SplitRule::total(&splits)
        .and_then(|t| t.checked_add(fee))
        .map(|carved| amount - carved)
        .filter(|net| *net >= 0)
        .ok_or_else(|| {
            Reject::new(
                code::PARAMETER_ERROR,
                format!("fee and splits exceed the amount ({amount})"),
            )
        })?;
    let payout = match p.get("payToBankCardInfo") {
        None | Some(Value::Null) => None,
        Some(info) => Some(payout_info(info, net)?),
    };
    Ok(AgentPayItem {
        biz_order_no,
        receiver,
        amount,
        fee,
        splits,
        back_url,
        payout,
        extend_info: p.opt_str("extendInfo"),
    })
}

/// 5.12 payToBankCardInfo: the account, the amount paid to it (required, at
/// most `net`, l.2818), the payout's own backUrl (l.2819), T0/T1.
fn payout_info(info: &Value, net: i64) -> Result<Payout, Reject> {
    let info = Params(info);
    let at = |r: Reject| Reject::new(r.code, format!("payToBankCardInfo.{}", r.detail));
    let account = info.str("bankCardNo").map_err(at)?;
    let amount = info.int("amount").map_err(at)?;
    if !formats::is_positive_amount(amount) || amount > net {
        return Err(Reject::new(
            "40020",
            format!(
                "payToBankCardInfo.amount {amount}: must be positive and at most amount - fee - splits ({net} fen)"
            ),
        ));
    }
    let back_url = url(&info, "backUrl", true).map_err(at)?;
    if let Some(t) = info.opt_str("withdrawType") {
        if t != "T0" && t != "T1" {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                "payToBankCardInfo.withdrawType must be T0 or T1",
            ));
        }
    }
    Ok(Payout {
        account,
        amount,
        back_url,
    })
}

/// The conditions of the moment: the receiver and the split recipients
/// exist and are not locked, the payout goes to the receiver's own account.
/// In a batch a failure here fails that item only.
fn check_agent_pay_item(state: &SandboxState, item: &AgentPayItem) -> Result<(), Reject> {
    let member = existing_member(state, &item.receiver)?;
    for id in SplitRule::recipients(&item.splits) {
        if id != super::order::PLATFORM_AS_SPLIT {
            existing_member(state, id)?;
        }
    }
    if let Some(payout) = &item.payout {
        // "只支持用户已绑定的银行账户（银行卡或银行对公账户）" (5.12 l.2817).
        let bound = member.bound_card(&payout.account).is_some();
        let corporate = corporate_account(member) == Some(payout.account.as_str());
        if !bound && !corporate {
            return Err(Reject::new(
                "30016",
                "payToBankCardInfo.bankCardNo is neither a card bound to the receiver nor its audited corporate account",
            ));
        }
    }
    Ok(())
}

fn agent_pay_order(
    state: &mut SandboxState,
    item: AgentPayItem,
    kind: OrderKind,
    trade_code: &str,
    goods: Option<(i64, String)>,
) -> Order {
    Order {
        receiver: Some(item.receiver.clone()),
        splits: item.splits,
        back_url: item.back_url,
        extend_info: item.extend_info,
        trade_code: Some(trade_code.to_owned()),
        goods,
        payout: item.payout,
        ..Order::new(
            state.new_id("O"),
            item.biz_order_no,
            kind,
            item.receiver,
            item.amount,
            item.fee,
        )
    }
}

fn pay_trade_code(p: &Params<'_>) -> Result<String, Reject> {
    let tc = p.str("tradeCode")?;
    if trade_business(&tc, false).is_none() {
        return Err(Reject::new("40010", format!("tradeCode {tc:?} is not a 6.15 pay code")));
    }
    Ok(tc)
}

/// Pays one agent-pay order: to a balance at once (or refused), to a bank
/// account as the payout faults draw (paid, refused by the bank, or
/// pending). Returns its payStatus; the order ends Success, Failed or Pending.
fn run_agent_pay(
    state: &mut SandboxState,
    config: &SandboxConfig,
    faults: &Faults,
    order: &mut Order,
) -> Result<&'static str, Reject> {
    let escrow = state.escrow.clone();
    if order.payout.is_none() {
        state.books.settle_agent_pay(order, &escrow)?;
        mark_paid(order);
        return Ok("success");
    }
    state.books.hold_agent_pay(order)?;
    bank_answers(state, config, faults, order)
}

/// 4.2.6 signalAgentPaySimplify: pays collected money to one receiver.
pub fn agent_pay(
    state: &mut SandboxState,
    config: &SandboxConfig,
    faults: &Faults,
    p: &Params<'_>,
) -> Result<Value, Reject> {
    let item = parse_agent_pay_item(state, p)?;
    check_agent_pay_item(state, &item)?;
    let trade_code = pay_trade_code(p)?;
    let goods = goods_ref(state, p)?;
    let mut order = agent_pay_order(state, item, OrderKind::AgentPay, &trade_code, goods);
    let pay_status = run_agent_pay(state, config, faults, &mut order)?;
    notify_result(state, &order);
    let mut answer = json!({ "payStatus": pay_status, "orderNo": order.order_no, "bizOrderNo": order.biz_order_no });
    if let Some(m) = &order.fail_message {
        answer["payFailMessage"] = json!(m);
    }
    if let Some(e) = &order.extend_info {
        answer["extendInfo"] = json!(e);
    }
    state.orders.insert(order.biz_order_no.clone(), order);
    Ok(answer)
}

/// 4.2.7 batchAgentPaySimplify: accepted as a whole when every item is well
/// formed; then each item succeeds or fails on its own (l.1719-1723), and
/// the answer says only that the batch was accepted.
pub fn batch_agent_pay(
    state: &mut SandboxState,
    config: &SandboxConfig,
    faults: &Faults,
    p: &Params<'_>,
) -> Result<Value, Reject> {
    let biz_batch_no = p.str("bizBatchNo")?;
    if state.batches.contains_key(&biz_batch_no) {
        return Err(Reject::new(code::ORDER_EXISTS, format!("bizBatchNo {biz_batch_no:?}")));
    }
    let trade_code = pay_trade_code(p)?;
    let goods = goods_ref(state, p)?;
    let list = match p.get("batchPayList") {
        Some(Value::Array(items)) if !items.is_empty() => items.clone(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) if !items.is_empty() => items,
            _ => {
                return Err(Reject::new(
                    code::PARAMETER_ERROR,
                    "batchPayList must be a non-empty JSON array",
                ));
            }
        },
        None | Some(Value::Null) => return Err(Reject::new(code::PARAMETER_EMPTY, "batchPayList is required")),
        Some(_) => {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                "batchPayList must be a non-empty JSON array",
            ));
        }
    };
    if list.len() > MAX_LIST_ITEMS {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            format!("batchPayList holds {} items, at most {MAX_LIST_ITEMS}", list.len()),
        ));
    }
    let mut items = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, raw) in list.iter().enumerate() {
        let item = parse_agent_pay_item(state, &Params(raw))
            .map_err(|r| Reject::new(r.code, format!("batchPayList[{i}]: {}", r.detail)))?;
        if !seen.insert(item.biz_order_no.clone()) {
            return Err(Reject::new(
                code::ORDER_EXISTS,
                format!("batchPayList[{i}]: bizOrderNo repeated in the batch"),
            ));
        }
        items.push(item);
    }
    // "不支持既有代付到余额又有代付到银行账户" (l.1720).
    if items.iter().any(|o| o.payout.is_some()) && items.iter().any(|o| o.payout.is_none()) {
        return Err(Reject::new(
            "40015",
            "a batch pays either all to balances or all to bank accounts",
        ));
    }
    let mut numbers = Vec::new();
    for item in items {
        let checked = check_agent_pay_item(state, &item);
        let mut order = agent_pay_order(state, item, OrderKind::BatchAgentPay, &trade_code, goods.clone());
        let outcome = checked.and_then(|()| run_agent_pay(state, config, faults, &mut order));
        if let Err(reject) = outcome {
            order.status = OrderStatus::Failed;
            order.fail_message = Some(reject.message());
        }
        // Balance items notify success only; bank items every outcome (l.1722-1723).
        notify_result(state, &order);
        numbers.push(order.biz_order_no.clone());
        state.orders.insert(order.biz_order_no.clone(), order);
    }
    state.batches.insert(biz_batch_no.clone(), numbers);
    Ok(json!({ "bizBatchNo": biz_batch_no }))
}

/// 4.2.17 refund. A refund that goes back to a bank card (refundWhereabouts
/// 2) is a payout: under the payouts knob the bank may refuse it or answer
/// later, and 3.6 notifies "退款到银行卡成功、失败" (l.283). The call's own
/// answer (l.2097-2103) has no status: it says the refund was accepted.
pub fn refund(
    state: &mut SandboxState,
    config: &SandboxConfig,
    faults: &Faults,
    p: &Params<'_>,
) -> Result<Value, Reject> {
    let biz_order_no = p.str("bizOrderNo")?;
    let ori_no = p.str("oriBizOrderNo")?;
    let biz_user_id = p.str("bizUserId")?;
    let amount = positive_amount(p, "amount")?;
    let coupon_amount = p.opt_int("couponAmount")?.unwrap_or(0);
    let fee_amount = p.opt_int("feeAmount")?.unwrap_or(0);
    let back_url = url(p, "backUrl", false)?;
    if state.orders.contains_key(&biz_order_no) {
        return Err(Reject::new(code::ORDER_EXISTS, format!("bizOrderNo {biz_order_no:?}")));
    }
    let original = state
        .orders
        .get(&ori_no)
        .cloned()
        .ok_or_else(|| Reject::new("40000", format!("oriBizOrderNo {ori_no:?}")))?;
    if !matches!(original.kind, OrderKind::Consume | OrderKind::AgentCollect) {
        return Err(Reject::new(
            "40018",
            "only consume and agent-collect orders can be refunded",
        ));
    }
    if !matches!(original.status, OrderStatus::Success | OrderStatus::Refunded) {
        return Err(Reject::new("40019", "the original order has not succeeded"));
    }
    if original.payer != biz_user_id {
        return Err(Reject::new("40022", "bizUserId is not the payer of the original order"));
    }
    let refundable = original.amount - original.refunded;
    if amount <= 0 || amount > refundable {
        return Err(Reject::new(
            "40020",
            format!("refund amount {amount}: {refundable} fen refundable"),
        ));
    }
    if !(0..=amount).contains(&coupon_amount)
        || !(0..=amount).contains(&fee_amount)
        || coupon_amount + fee_amount > amount
    {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            "couponAmount and feeAmount must fit in amount",
        ));
    }
    if fee_amount > original.fee {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            format!("feeAmount exceeds the original fee {}", original.fee),
        ));
    }
    let coupons: i64 = original
        .parts
        .iter()
        .filter(|p| p.method.key.starts_with("COUPON"))
        .map(|p| p.amount)
        .sum();
    if coupon_amount != 0 && (coupon_amount != coupons || original.refunded > 0) {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            "coupons are refunded whole or not at all",
        ));
    }
    if let Some(list) = p.get("refundList").and_then(Value::as_array) {
        if list.len() > MAX_LIST_ITEMS {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                format!("refundList: at most {MAX_LIST_ITEMS} entries"),
            ));
        }
        let mut listed: i128 = 0;
        for (i, item) in list.iter().enumerate() {
            let at = |r: Reject| Reject::new(r.code, format!("refundList[{i}].{}", r.detail));
            let entry = Params(item).int("amount").map_err(at)?;
            if !(0..=MAX_AMOUNT_FEN).contains(&entry) {
                return Err(Reject::new(
                    code::PARAMETER_ERROR,
                    format!("refundList[{i}].amount must be from 0 to {MAX_AMOUNT_FEN} fen"),
                ));
            }
            listed += i128::from(entry);
        }
        // "此字段总金额=amount-feeAmount" (4.2.17 l.2091).
        let expected = amount - fee_amount;
        if listed != i128::from(expected) {
            return Err(Reject::new(
                "40020",
                format!("refundList adds up to {listed}, amount - feeAmount is {expected}"),
            ));
        }
    }
    let mut order = Order {
        back_url,
        refund_of: Some(ori_no.clone()),
        ..Order::new(
            state.new_id("R"),
            biz_order_no.clone(),
            OrderKind::Refund,
            biz_user_id,
            amount,
            fee_amount,
        )
    };
    let escrow = state.escrow.clone();
    let fate = if refunds_to_card(&original, &order, coupon_amount) {
        state.payout_fate(&faults.payouts)
    } else {
        PayoutFate::Paid
    };
    match fate {
        PayoutFate::Paid => {
            let whereabouts =
                state
                    .books
                    .settle_refund(&original, &order, fee_amount, coupon_amount, &escrow, false)?;
            order.refund_whereabouts = Some(whereabouts);
            mark_paid(&mut order);
            if let Some(ori) = state.orders.get_mut(&ori_no) {
                ori.refunded += amount;
                ori.status = OrderStatus::Refunded;
            }
        }
        // The bank refused the card refund: nothing moved.
        PayoutFate::Failed => {
            order.refund_whereabouts = Some(2);
            order.status = OrderStatus::Failed;
            order.fail_message = Some(BANK_REFUSED.to_owned());
        }
        // Nothing moves until the bank answers; the amount is spoken for,
        // so that no other refund can take it meanwhile.
        PayoutFate::Pending { succeeds } => {
            order.refund_whereabouts = Some(2);
            order.status = OrderStatus::Pending;
            order.refund_terms = Some((coupon_amount, fee_amount));
            if let Some(ori) = state.orders.get_mut(&ori_no) {
                ori.refunded += amount;
            }
            schedule_payout(state, config, faults, &order, succeeds);
        }
    }
    notify_result(state, &order);
    let answer = json!({
        "orderNo": order.order_no,
        "bizOrderNo": biz_order_no,
        "amount": amount,
        "couponAmount": coupon_amount,
        "feeAmount": fee_amount,
    });
    state.orders.insert(biz_order_no, order);
    Ok(answer)
}

/// Whether a refund of `original` goes (at least in part) back to a bank
/// card: its inbound channel part refunds to the card ("退款金额原路返回
/// (POS 支付、实名付除外)", 4.2.17 note 4, l.2070) and something is left
/// of it after coupons.
fn refunds_to_card(original: &Order, refund: &Order, coupon_amount: i64) -> bool {
    let channel = original
        .parts
        .iter()
        .find(|p| p.method.direction == super::payment::Direction::Inbound);
    matches!(channel, Some(part) if !part.method.refund_to_balance
        && part.amount > original.refunded.min(part.amount)
        && refund.amount > coupon_amount)
}

/// 4.2.18 failureBidRefund: full refunds of a failed P2P target's collect orders, all or nothing, to balances.
pub fn failure_bid_refund(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_batch_no = p.str("bizBatchNo")?;
    if state.batches.contains_key(&biz_batch_no) {
        return Err(Reject::new(code::ORDER_EXISTS, format!("bizBatchNo {biz_batch_no:?}")));
    }
    if p.int("goodsType")? != 1 {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            "failureBidRefund is for P2P targets (goodsType 1)",
        ));
    }
    let goods_no = p.str("goodsNo")?;
    let list = p
        .get("batchRefundList")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| Reject::new(code::PARAMETER_EMPTY, "batchRefundList is required"))?
        .clone();
    let mut plans = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        let item = Params(raw);
        let at = |r: Reject| Reject::new(r.code, format!("batchRefundList[{i}]: {}", r.detail));
        let biz_order_no = item.str("bizOrderNo").map_err(at)?;
        let ori_no = item.str("oriBizOrderNo").map_err(at)?;
        if state.orders.contains_key(&biz_order_no) || plans.iter().any(|(b, _): &(String, Order)| *b == biz_order_no) {
            return Err(at(Reject::new(
                code::ORDER_EXISTS,
                format!("bizOrderNo {biz_order_no:?}"),
            )));
        }
        let original = state
            .orders
            .get(&ori_no)
            .cloned()
            .ok_or_else(|| at(Reject::new("40000", format!("oriBizOrderNo {ori_no:?}"))))?;
        if original.kind != OrderKind::AgentCollect || original.goods != Some((1, goods_no.clone())) {
            return Err(at(Reject::new("40018", "not an agent-collect order of this target")));
        }
        if original.status != OrderStatus::Success {
            return Err(at(Reject::new(
                "40019",
                "the original order has not succeeded or was refunded",
            )));
        }
        plans.push((biz_order_no, original));
    }
    let escrow = state.escrow.clone();
    let mut refunds = Vec::new();
    for (biz_order_no, original) in &plans {
        let mut refund = Order::new(
            state.new_id("R"),
            biz_order_no.clone(),
            OrderKind::Refund,
            original.payer.clone(),
            original.amount,
            original.fee,
        );
        refund.status = OrderStatus::Success;
        refund.paid_at = Some(now());
        refund.refund_of = Some(original.biz_order_no.clone());
        refund.refund_whereabouts = Some(1);
        refunds.push(refund);
    }
    state.books.all_or_nothing(|books| {
        for ((_, original), refund) in plans.iter().zip(&refunds) {
            let coupons: i64 = original
                .parts
                .iter()
                .filter(|p| p.method.key.starts_with("COUPON"))
                .map(|p| p.amount)
                .sum();
            books.settle_refund(original, refund, original.fee, coupons, &escrow, true)?;
        }
        Ok(())
    })?;
    let mut numbers = Vec::new();
    let mut list = Vec::new();
    for ((_, original), refund) in plans.iter().zip(refunds) {
        if let Some(ori) = state.orders.get_mut(&original.biz_order_no) {
            ori.refunded = ori.amount;
            ori.status = OrderStatus::Refunded;
        }
        list.push(json!({ "bizOrderNo": refund.biz_order_no, "orderNo": refund.order_no }));
        numbers.push(refund.biz_order_no.clone());
        state.orders.insert(refund.biz_order_no.clone(), refund);
    }
    state.batches.insert(biz_batch_no, numbers);
    Ok(json!({ "orderNoList": list }))
}

/// 4.2.19 applicationTransfer: from a platform funding account to a member's custody balance.
pub fn application_transfer(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_transfer_no = p.str("bizTransferNo")?;
    let source = p.str("sourceAccountSetNo")?;
    let target = p.str("targetBizUserId")?;
    let target_set = p.str("targetAccountSetNo")?;
    let amount = positive_amount(p, "amount")?;
    if state.transfers.contains_key(&biz_transfer_no) {
        return Err(Reject::new(
            code::ORDER_EXISTS,
            format!("bizTransferNo {biz_transfer_no:?}"),
        ));
    }
    if ![sets::MARGIN, sets::MARKETING, sets::CUSTOM_A].contains(&source.as_str()) {
        return Err(Reject::new(
            "30018",
            "sourceAccountSetNo must be 100002 (margin), 2000000 (marketing) or 3000001 (custom A)",
        ));
    }
    check_escrow(state, &target_set, "targetAccountSetNo")?;
    existing_member(state, &target)?;
    let memo = Memo {
        biz_order_no: Some(&biz_transfer_no),
        remark: "平台转账",
    };
    state
        .books
        .ledger
        .transfer(
            &AccountKey::platform(&source),
            &AccountKey::member(&target, &target_set),
            amount,
            memo,
        )
        .map_err(|e| Reject::new("40014", e.to_string()))?;
    let transfer_no = state.new_id("T");
    state.transfers.insert(
        biz_transfer_no.clone(),
        Transfer {
            transfer_no: transfer_no.clone(),
            amount,
            at: now(),
        },
    );
    Ok(json!({ "transferNo": transfer_no, "bizTransferNo": biz_transfer_no, "amount": amount }))
}

/// 4.2.15 freezeMoney.
pub fn freeze(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let no = p.str("bizFreezenNo")?;
    let set = p.opt_str("accountSetNo").unwrap_or_else(|| state.escrow.clone());
    let amount = positive_amount(p, "amount")?;
    existing_member(state, &biz_user_id)?;
    check_escrow(state, &set, "accountSetNo")?;
    if state.freezes.contains_key(&no) {
        return Err(Reject::new(code::ORDER_EXISTS, format!("bizFreezenNo {no:?}")));
    }
    let memo = Memo {
        biz_order_no: Some(&no),
        remark: "冻结",
    };
    state
        .books
        .ledger
        .freeze(&AccountKey::member(&biz_user_id, &set), amount, memo)
        .map_err(|e| match e {
            super::ledger::LedgerError::NotPositive(_) => Reject::new("40020", e.to_string()),
            _ => Reject::new("40014", e.to_string()),
        })?;
    state.freezes.insert(
        no.clone(),
        Freeze {
            biz_user_id,
            account_set: set,
            frozen: amount,
        },
    );
    Ok(json!({ "bizFreezenNo": no, "amount": amount }))
}

/// 4.2.16 unfreezeMoney: releases all or part of one freeze.
pub fn unfreeze(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let no = p.str("bizFreezenNo")?;
    let set = p.str("accountSetNo")?;
    let amount = positive_amount(p, "amount")?;
    let freeze = state
        .freezes
        .get(&no)
        .cloned()
        .ok_or_else(|| Reject::new("40000", format!("bizFreezenNo {no:?}")))?;
    if freeze.biz_user_id != biz_user_id || freeze.account_set != set {
        return Err(Reject::new(
            "40022",
            "this freeze belongs to another member or account set",
        ));
    }
    if amount > freeze.frozen {
        return Err(Reject::new(
            "40020",
            format!("{} fen still frozen under this number", freeze.frozen),
        ));
    }
    let memo = Memo {
        biz_order_no: Some(&no),
        remark: "解冻",
    };
    state
        .books
        .ledger
        .unfreeze(&AccountKey::member(&biz_user_id, &set), amount, memo)
        .map_err(|e| Reject::new("40020", e.to_string()))?;
    if let Some(f) = state.freezes.get_mut(&no) {
        f.frozen -= amount;
    }
    Ok(json!({ "bizFreezenNo": no, "amount": amount }))
}

/// 4.2.20 queryBalance.
pub fn query_balance(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let set = p.str("accountSetNo")?;
    if !state.members.contains_key(&biz_user_id) {
        return Err(Reject::new(code::USER_NOT_FOUND, format!("bizUserId {biz_user_id:?}")));
    }
    check_escrow(state, &set, "accountSetNo")?;
    let b = state.books.ledger.balance(&AccountKey::member(&biz_user_id, &set));
    Ok(json!({ "allAmount": b.balance, "freezenAmount": b.frozen }))
}

/// 4.2.21 getOrderDetail: the 6.13 status of an order the member took part in.
pub fn order_detail(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let biz_order_no = p.str("bizOrderNo")?;
    let order = state
        .orders
        .get_mut(&biz_order_no)
        .ok_or_else(|| Reject::new("40000", format!("bizOrderNo {biz_order_no:?}")))?;
    if order.payer != biz_user_id && order.receiver.as_deref() != Some(biz_user_id.as_str()) {
        return Err(Reject::new("40022", "the order does not belong to this bizUserId"));
    }
    expire(order);
    Ok(json!({ "orderStatus": order.status.code() }))
}

/// A `yyyy-MM-dd` date, the format of every date field but 4.3.2's.
fn parse_date(text: &str, field: &str) -> Result<time::Date, Reject> {
    formats::parse_dashed_date(text)
        .ok_or_else(|| Reject::new(code::PARAMETER_ERROR, format!("{field} must be yyyy-MM-dd")))
}

/// 4.2.22 queryInExpDetail: the journal of a member's account, newest first, paged.
pub fn in_exp_detail(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    if !state.members.contains_key(&biz_user_id) {
        return Err(Reject::new(code::USER_NOT_FOUND, format!("bizUserId {biz_user_id:?}")));
    }
    let set = p.opt_str("accountSetNo").unwrap_or_else(|| state.escrow.clone());
    check_escrow(state, &set, "accountSetNo")?;
    let start = p
        .opt_str("dateStart")
        .map(|d| parse_date(&d, "dateStart"))
        .transpose()?;
    let end = p.opt_str("dateEnd").map(|d| parse_date(&d, "dateEnd")).transpose()?;
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(Reject::new("50003", "dateStart is after dateEnd"));
        }
    }
    let position = usize::try_from(p.opt_int("startPosition")?.unwrap_or(1).max(1)).unwrap_or(usize::MAX);
    let count = usize::try_from(p.opt_int("queryNum")?.unwrap_or(10).clamp(1, 100)).unwrap_or(100);
    let key = AccountKey::member(&biz_user_id, &set);
    let entries: Vec<_> = state
        .books
        .ledger
        .entries_of(&key)
        .rev()
        .filter(|e| {
            let day = e.at.to_offset(wire::CHINA).date();
            start.is_none_or(|s| day >= s) && end.is_none_or(|x| day <= x)
        })
        .collect();
    let page: Vec<Value> = entries
        .iter()
        .skip(position.saturating_sub(1))
        .take(count)
        .map(|e| {
            let mut v = json!({
                "tradeNo": format!("{:012}", e.serial),
                "accountSetName": "托管账户集",
                "changeTime": wire::format_timestamp(e.at),
                "curAmount": e.after,
                "oriAmount": e.before,
                "chgAmount": e.change,
                "curFreezenAmount": e.frozen_after,
                "remark": e.remark,
            });
            if let Some(no) = &e.biz_order_no {
                v["bizOrderNo"] = json!(no);
            }
            v
        })
        .collect();
    Ok(json!({ "bizUserId": biz_user_id, "totalNum": entries.len(), "inExpDetail": page }))
}

/// 4.2.13 entryGoods.
pub fn entry_goods(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let goods_type = p.int("goodsType")?;
    let biz_goods_no = p.str("bizGoodsNo")?;
    let goods_name = p.str("goodsName")?;
    existing_member(state, &biz_user_id)?;
    if ![1, 2, 3, 4, 90, 99].contains(&goods_type) {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            format!("goodsType {goods_type} is not in 6.6"),
        ));
    }
    let params = match p.get("goodsParams") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map_err(|_| Reject::new(code::PARAMETER_ERROR, "goodsParams is not a JSON object"))?,
        _ => return Err(Reject::new(code::PARAMETER_EMPTY, "goodsParams is required")),
    };
    if goods_type == 1 {
        for field in [
            "amount",
            "totalAmount",
            "annualYield",
            "investmentHorizon",
            "investmentHorizonScale",
            "repayType",
            "guaranteeType",
        ] {
            if params.get(field).is_none_or(Value::is_null) {
                return Err(Reject::new(
                    code::PARAMETER_EMPTY,
                    format!("goodsParams.{field} is required for P2P targets"),
                ));
            }
        }
        if params["amount"]
            .as_i64()
            .is_none_or(|a| !formats::is_positive_amount(a))
        {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                format!("goodsParams.amount must be from 1 to {MAX_AMOUNT_FEN} fen"),
            ));
        }
    }
    // 5.4 l.2628-2629: beginDate / endDate are yyyy-MM-dd.
    for field in ["beginDate", "endDate"] {
        if let Some(d) = params.get(field).and_then(Value::as_str).filter(|d| !d.is_empty()) {
            parse_date(d, &format!("goodsParams.{field}"))?;
        }
    }
    if state.goods.contains_key(&biz_goods_no) {
        return Err(Reject::new(
            "40013",
            format!("bizGoodsNo {biz_goods_no:?} already entered"),
        ));
    }
    let goods_no = state.new_id("G");
    let mut record = json!({
        "bizUserId": biz_user_id,
        "bizGoodsNo": biz_goods_no,
        "goodsType": goods_type,
        "goodsName": goods_name,
        "goodsParams": params,
    });
    for field in ["goodsDetail", "showUrl"] {
        if let Some(v) = p.opt_str(field) {
            record[field] = json!(v);
        }
    }
    state.goods.insert(
        biz_goods_no.clone(),
        Goods {
            goods_no: goods_no.clone(),
            biz_user_id,
            goods_type,
            record,
        },
    );
    Ok(json!({ "goodsNo": goods_no, "bizGoodsNo": biz_goods_no }))
}

/// 4.2.14 queryModifyGoods: returns the goods; with beginDate/endDate, changes those first.
pub fn query_modify_goods(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let biz_goods_no = p.str("bizGoodsNo")?;
    let goods_type = p.int("goodsType")?;
    let begin = p.opt_str("beginDate");
    let end = p.opt_str("endDate");
    for (field, value) in [("beginDate", &begin), ("endDate", &end)] {
        if let Some(v) = value {
            parse_date(v, field)?;
        }
    }
    let goods = state
        .goods
        .get_mut(&biz_goods_no)
        .filter(|g| g.biz_user_id == biz_user_id && g.goods_type == goods_type)
        .ok_or_else(|| {
            Reject::new(
                "40024",
                format!("no goods {biz_goods_no:?} of type {goods_type} for this member"),
            )
        })?;
    if let Some(b) = begin {
        goods.record["goodsParams"]["beginDate"] = json!(b);
    }
    if let Some(e) = end {
        goods.record["goodsParams"]["endDate"] = json!(e);
    }
    Ok(goods.record.clone())
}

/// 4.3.1 queryReserveFundBalance: the reserve fund less everything paid out to cards.
pub fn reserve_fund(state: &mut SandboxState, config: &SandboxConfig, p: &Params<'_>) -> Result<Value, Reject> {
    let sysid = p.str("sysid")?;
    if sysid != config.sysid {
        return Err(Reject::new(code::PARAMETER_ERROR, "sysid must be this application's"));
    }
    let balance = state.reserve_fund_initial.saturating_sub(state.books.ledger.paid_out());
    Ok(json!({
        "account_no": format!("{}0001", config.sysid),
        "account_name": "通联通备付金账户",
        "balance": balance,
        "usable_bal": balance,
        // "def_clr 是否默认结算户 Long" (4.3.1 l.2319).
        "def_clr": 1,
    }))
}

/// Whether the file of `date` exists yet: "云账户每天上午 11:00 生成前一天的
/// 商户对账文件" (4.3.2 l.2329), by the sandbox's clock (time-scaled).
/// The `checkFile.early` fault serves it at once.
pub fn check_file_ready(state: &SandboxState, config: &SandboxConfig, faults: &Faults, date: time::Date) -> bool {
    if faults.check_file.early {
        return true;
    }
    crate::provider::checkfile::generated_at(date).is_some_and(|ready| config.clock(state.started_at) >= ready)
}

/// 4.3.2 getCheckAccountFile: the URL of the day's reconciliation file,
/// served by the sandbox; refused (10000, saying when) before the file is
/// generated at 11:00 China time the next day.
pub fn check_account_file(
    state: &mut SandboxState,
    config: &SandboxConfig,
    faults: &Faults,
    p: &Params<'_>,
) -> Result<Value, Reject> {
    // "yyyyMMdd" (4.3.2 l.2360), unlike every other date field.
    let date = formats::parse_compact_date(&p.str("date")?)
        .ok_or_else(|| Reject::new(code::PARAMETER_ERROR, "date must be yyyyMMdd"))?;
    if !check_file_ready(state, config, faults, date) {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            "the file of this date is generated at 11:00 China time the next day (4.3.2 l.2329)",
        ));
    }
    let name = format!("{}_{}_allinpay.txt", config.sysid, formats::format_compact_date(date));
    Ok(json!({ "url": format!("{}/yungateway/checkfile/{name}", config.public_base_url()) }))
}

/// The reconciliation file for one day (China time): the successful
/// transactions only (orders that succeeded, later refunded or not, and the
/// platform transfers: "含所有订单及平台转账成功的交易", 4.3.2 l.2333), as
/// `orderNo|orderType|amount|channelFee|time|bizOrderNo` (l.2335). The fee
/// column is the channel's fee ("渠道手续费"), not the platform's `fee`.
pub fn reconciliation_file(
    state: &SandboxState,
    config: &SandboxConfig,
    faults: &super::faults::CheckFileFaults,
    date: time::Date,
) -> String {
    let mut lines: Vec<(OffsetDateTime, String)> = Vec::new();
    for order in state.orders.values() {
        let Some(at) = order.paid_at else { continue };
        if !matches!(order.status, OrderStatus::Success | OrderStatus::Refunded) {
            continue;
        }
        if faults.drop.contains(&order.biz_order_no) {
            continue;
        }
        let amount = faults.amounts.get(&order.biz_order_no).copied().unwrap_or(order.amount);
        if at.to_offset(wire::CHINA).date() == date {
            lines.push((
                at,
                format!(
                    "{}|{}|{}|{}|{}|{}",
                    order.order_no,
                    order.kind.file_name(),
                    amount,
                    config.channel_fee(order),
                    wire::format_timestamp(at),
                    order.biz_order_no
                ),
            ));
        }
    }
    for (biz_no, t) in &state.transfers {
        if faults.drop.contains(biz_no) {
            continue;
        }
        if t.at.to_offset(wire::CHINA).date() == date {
            lines.push((
                t.at,
                format!(
                    "{}|平台转账|{}|0|{}|{}",
                    t.transfer_no,
                    t.amount,
                    wire::format_timestamp(t.at),
                    biz_no
                ),
            ));
        }
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut file: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
    for extra in &faults.add {
        file.push_str(extra);
        file.push('\n');
    }
    file
}
