//! Bank cards (spec 4.1.9 to 4.1.17): card BIN lookup, the three binding methods, safe card, query, unbind.
//!
//! The test environment's rules hold: only 19-digit cards starting 622848 or
//! 622849 exist, phones starting 151/152/153/181/182/183/188 make binding
//! fail, and every SMS code is the configured one.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::state::{BoundCard, Member, SandboxState};
use super::{Params, Reject, SandboxConfig};
use crate::provider::codes::MemberType;
use crate::provider::errors::code;
use crate::provider::wire;

/// A pending binding waiting for its SMS confirmation.
#[derive(Clone)]
pub struct PendingBinding {
    pub biz_user_id: String,
    pub card_no: String,
    pub phone: String,
    pub method: i64,
    pub safe: bool,
    pub trans_date: String,
}

crate::debug_shows!(PendingBinding: biz_user_id, method, safe);

/// Card BIN facts (5.1) of a test-environment card, or `None` for an unknown card.
pub fn card_bin(card_no: &str) -> Option<Value> {
    let valid = card_no.len() == 19
        && card_no.bytes().all(|b| b.is_ascii_digit())
        && (card_no.starts_with("622848") || card_no.starts_with("622849"));
    valid.then(|| {
        json!({
            "cardBin": &card_no[..6],
            "cardType": 1,
            "bankCode": "0103",
            "bankName": "中国农业银行",
            "cardName": "金穗通宝卡",
            "cardLenth": 19,
            "cardState": 1,
            "cardTypeLabel": "借记卡",
        })
    })
}

/// 4.1.9 getBankCardBin.
pub fn get_card_bin(p: &Params<'_>) -> Result<Value, Reject> {
    let card_no = p.str("cardNo")?;
    let info = card_bin(&card_no).ok_or_else(|| {
        Reject::new(
            code::PARAMETER_ERROR,
            "unknown card BIN (the test environment knows 19-digit cards starting 622848 or 622849)",
        )
    })?;
    Ok(json!({ "cardBinInfo": info }))
}

fn member_mut<'a>(state: &'a mut SandboxState, biz_user_id: &str) -> Result<&'a mut Member, Reject> {
    let member = state
        .members
        .get_mut(biz_user_id)
        .ok_or_else(|| Reject::new(code::USER_NOT_FOUND, format!("bizUserId {biz_user_id:?}")))?;
    if member.locked {
        return Err(Reject::new(code::USER_LOCKED, format!("bizUserId {biz_user_id:?}")));
    }
    Ok(member)
}

/// Who may bind: individuals with a matching real-name record, audited companies.
fn check_holder(member: &Member, p: &Params<'_>) -> Result<(), Reject> {
    if member.member_type == MemberType::Company {
        super::orders::company_audited(member)?;
        // "企业用户最多只允许绑定一张个人银行卡，且不支持通过接口解绑或变更" (4.1.10 l.630).
        if member.cards.iter().any(|c| c.bound) {
            return Err(Reject::new(
                "30014",
                "a company binds one personal card only; changing it is not possible through the API",
            ));
        }
        return Ok(());
    }
    super::member::check_identity(member, p)
}

fn check_card(member: &Member, card_no: &str, phone: Option<&str>) -> Result<Value, Reject> {
    let bin =
        card_bin(card_no).ok_or_else(|| Reject::new("30014", "unknown card (test cards: 19 digits, 622848/622849)"))?;
    if member.bound_card(card_no).is_some() {
        return Err(Reject::new("30017", "this card is already bound"));
    }
    if let Some(phone) = phone {
        if !crate::provider::formats::is_mobile(phone) {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                "phone must be an 11-digit mobile number",
            ));
        }
        if ["151", "152", "153", "181", "182", "183", "188"]
            .iter()
            .any(|p| phone.starts_with(p))
        {
            return Err(Reject::new(
                "30014",
                "the bank refused this reserved phone (test numbers 151/152/153/181/182/183/188)",
            ));
        }
    }
    Ok(bin)
}

fn check_safe(member: &Member, wanted: bool) -> Result<(), Reject> {
    if wanted && member.cards.iter().any(|c| c.bound && c.safe) {
        return Err(Reject::new("30026", "this member already has a safe card"));
    }
    Ok(())
}

fn bind(member: &mut Member, card_no: &str, phone: Option<String>, method: i64, safe: bool) {
    member.cards.push(BoundCard {
        card_no: card_no.to_owned(),
        bank_name: "中国农业银行".to_owned(),
        card_type: 1,
        phone,
        bind_method: method,
        bound_at: OffsetDateTime::now_utc(),
        bound: true,
        safe,
    });
}

fn trans_date() -> String {
    let d = OffsetDateTime::now_utc().to_offset(wire::CHINA).date();
    format!("{}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

/// 4.1.10 applyBindBankCard (cardCheck 1 binds at once; 2, 3, 4 wait for bindBankCard).
pub fn apply_bind(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let card_no = p.str("cardNo")?;
    let phone = p.str("phone")?;
    let method = p.opt_int("cardCheck")?.unwrap_or(2);
    if !(1..=4).contains(&method) {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            format!("cardCheck {method}: expected 1 to 4 (6.23)"),
        ));
    }
    let safe = p.opt_bool("isSafeCard")?.unwrap_or(false);
    let member = member_mut(state, &biz_user_id)?;
    check_holder(member, p)?;
    let bin = check_card(member, &card_no, Some(&phone))?;
    check_safe(member, safe)?;
    let mut answer = json!({
        "BizUserId": biz_user_id,
        "bankName": bin["bankName"],
        "bankCode": bin["bankCode"],
        "cardType": bin["cardType"],
    });
    if method == 1 {
        bind(member, &card_no, Some(phone), 1, safe);
        return Ok(answer);
    }
    let trance_num = state.new_id("B");
    let date = trans_date();
    state.pending_bindings.insert(
        trance_num.clone(),
        PendingBinding {
            biz_user_id,
            card_no,
            phone,
            method,
            safe,
            trans_date: date.clone(),
        },
    );
    answer["tranceNum"] = json!(trance_num);
    if method == 2 {
        answer["transDate"] = json!(date);
    }
    Ok(answer)
}

fn confirm_binding(
    state: &mut SandboxState,
    config: &SandboxConfig,
    biz_user_id: &str,
    trance_num: &str,
    phone: Option<&str>,
    code_given: &str,
) -> Result<PendingBinding, Reject> {
    let pending = state
        .pending_bindings
        .get(trance_num)
        .filter(|b| b.biz_user_id == biz_user_id)
        .cloned()
        .ok_or_else(|| Reject::new("30016", format!("no pending binding {trance_num:?} for this member")))?;
    if phone.is_some_and(|ph| ph != pending.phone) {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            "phone is not the one the binding was applied for",
        ));
    }
    if code_given != config.verification_code {
        return Err(Reject::new(
            code::WRONG_VERIFICATION_CODE,
            "verificationCode does not match",
        ));
    }
    let member = member_mut(state, biz_user_id)?;
    if member.bound_card(&pending.card_no).is_some() {
        return Err(Reject::new("30017", "this card is already bound"));
    }
    if member.member_type == MemberType::Company && member.cards.iter().any(|c| c.bound) {
        return Err(Reject::new("30014", "a company binds one personal card only"));
    }
    check_safe(member, pending.safe)?;
    bind(
        member,
        &pending.card_no,
        Some(pending.phone.clone()),
        pending.method,
        pending.safe,
    );
    state.pending_bindings.remove(trance_num);
    Ok(pending)
}

/// 4.1.11 bindBankCard.
pub fn confirm_bind(state: &mut SandboxState, config: &SandboxConfig, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let trance_num = p.str("tranceNum")?;
    let phone = p.str("phone")?;
    let given = p.str("verificationCode")?;
    let pending = confirm_binding(state, config, &biz_user_id, &trance_num, Some(&phone), &given)?;
    let mut answer = json!({ "bizUserId": biz_user_id, "tranceNum": trance_num });
    if pending.method == 2 {
        answer["transDate"] = json!(pending.trans_date);
    }
    Ok(answer)
}

/// 4.1.12 applyVerifyPayBindBankCard (real-name pay binding, superseded by cardCheck 3).
pub fn apply_verify_pay_bind(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let card_no = p.str("cardNo")?;
    let phone = p.str("phone")?;
    let safe = p.opt_bool("isSafeCard")?.unwrap_or(false);
    let member = member_mut(state, &biz_user_id)?;
    check_holder(member, p)?;
    let bin = check_card(member, &card_no, Some(&phone))?;
    check_safe(member, safe)?;
    let trance_num = state.new_id("B");
    state.pending_bindings.insert(
        trance_num.clone(),
        PendingBinding {
            biz_user_id,
            card_no,
            phone,
            method: 3,
            safe,
            trans_date: trans_date(),
        },
    );
    Ok(json!({
        "tranceNum": trance_num,
        "bankName": bin["bankName"],
        "bankCode": bin["bankCode"],
        "cardType": bin["cardType"],
    }))
}

/// 4.1.13 affirmVerifyPayBindCard.
pub fn affirm_verify_pay_bind(
    state: &mut SandboxState,
    config: &SandboxConfig,
    p: &Params<'_>,
) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let trance_num = p.str("tranceNum")?;
    let given = p.str("verificationCode")?;
    confirm_binding(state, config, &biz_user_id, &trance_num, None, &given)?;
    Ok(json!({ "tranceNum": trance_num }))
}

/// 4.1.14 threeElementsBindBankCard: binds at once, no SMS.
pub fn three_elements_bind(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let card_no = p.str("cardNo")?;
    let safe = p.opt_bool("isSafeCard")?.unwrap_or(false);
    let member = member_mut(state, &biz_user_id)?;
    check_holder(member, p)?;
    let bin = check_card(member, &card_no, None)?;
    check_safe(member, safe)?;
    bind(member, &card_no, None, 1, safe);
    Ok(json!({
        "bizUserId": biz_user_id,
        "transDate": wire::format_timestamp(OffsetDateTime::now_utc()),
        "bankName": bin["bankName"],
        "bankCode": bin["bankCode"],
        "cardType": bin["cardType"],
    }))
}

/// 4.1.15 setSafeCard: a bound debit card becomes the only withdrawal card, for good.
pub fn set_safe_card(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let card_no = p.str("cardNo")?;
    if p.opt_bool("setSafeCard")? == Some(false) {
        return Err(Reject::new(code::PARAMETER_ERROR, "setSafeCard=false is not supported"));
    }
    let member = member_mut(state, &biz_user_id)?;
    let card = member
        .bound_card(&card_no)
        .ok_or_else(|| Reject::new("30016", "the card is not bound to this member"))?;
    if card.card_type != 1 {
        return Err(Reject::new("30025", "a safe card must be a debit card"));
    }
    if card.safe {
        return Ok(json!({ "bizUserId": biz_user_id, "cardNo": card_no }));
    }
    check_safe(member, true)?;
    if let Some(c) = member.cards.iter_mut().find(|c| c.card_no == card_no && c.bound) {
        c.safe = true;
    }
    Ok(json!({ "bizUserId": biz_user_id, "cardNo": card_no }))
}

/// 4.1.16 queryBankCard: one bound card or all of them (5.9).
pub fn query_cards(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let only = p.opt_str("cardNo");
    let member = member_mut(state, &biz_user_id)?;
    let list: Vec<Value> = member
        .cards
        .iter()
        .filter(|c| c.bound && only.as_deref().is_none_or(|n| n == c.card_no))
        .map(|c| {
            let mut v = json!({
                "bankCardNo": c.card_no,
                "bankName": c.bank_name,
                "bindTime": wire::format_timestamp(c.bound_at),
                "cardType": c.card_type,
                "bindState": 1,
                "isSafeCard": c.safe,
                "isVerifyPayChecked": c.bind_method == 3,
                "IsQUICKPAYCard": c.bind_method == 4,
                "bindMethod": c.bind_method,
            });
            // "银行预留手机号码（仅四要素绑定的银行卡返回）" (5.9 l.2722).
            if let Some(phone) = c.phone.as_ref().filter(|_| c.bind_method == 2) {
                v["phone"] = json!(phone);
            }
            v
        })
        .collect();
    Ok(json!({ "bindCardList": list }))
}

/// 4.1.17 unbindBankCard (never the safe card).
pub fn unbind(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let card_no = p.str("cardNo")?;
    let member = member_mut(state, &biz_user_id)?;
    if member.member_type == MemberType::Company {
        // l.630: a company's card is changed by an emailed form, not through the API.
        return Err(Reject::new(
            "30015",
            "a company's bound card cannot be unbound through the API",
        ));
    }
    let card = member
        .cards
        .iter_mut()
        .find(|c| c.card_no == card_no && c.bound)
        .ok_or_else(|| Reject::new("30016", "the card is not bound to this member"))?;
    if card.safe {
        return Err(Reject::new("30027", "the safe card cannot be unbound"));
    }
    card.bound = false;
    Ok(json!({ "bizUserId": biz_user_id, "cardNo": card_no }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_test_environment_cards_have_a_bin() {
        assert!(card_bin("6228480402637874214").is_some());
        assert!(card_bin("6228490000000000000").is_some());
        assert!(card_bin("622848040263787421").is_none());
        assert!(card_bin("6222020402637874214").is_none());
    }
}
