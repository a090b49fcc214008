//! The member calls of spec 4.1 as the provider enforces them: create, verification codes, phone, real name, info.

use std::collections::HashMap;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::state::{CompanyRecord, Member, Notice, PendingCode, RealName, SandboxState};
use super::{Params, Reject, SandboxConfig};
use crate::provider::calls::COMPANY_BASIC_INFO_REQUIRED;
use crate::provider::codes::{MemberType, Source, UserState, VerificationCodeType};
use crate::provider::errors::code;
use crate::provider::formats::{RESERVED_BIZ_USER_IDS, is_id_card, is_mobile};
use crate::provider::wire;

/// How long a sent SMS code stays valid.
const CODE_LIFETIME: Duration = Duration::minutes(10);

/// The member a call names, refused when absent or locked.
fn active_member<'a>(state: &'a mut SandboxState, biz_user_id: &str) -> Result<&'a mut Member, Reject> {
    let member = state
        .members
        .get_mut(biz_user_id)
        .ok_or_else(|| Reject::new(code::USER_NOT_FOUND, format!("bizUserId {biz_user_id:?}")))?;
    if member.locked {
        return Err(Reject::new(code::USER_LOCKED, format!("bizUserId {biz_user_id:?}")));
    }
    Ok(member)
}

/// 4.1.1 createMember.
pub fn create_member(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    if RESERVED_BIZ_USER_IDS.contains(&biz_user_id.as_str()) {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            format!("bizUserId {biz_user_id:?} is reserved for the platform"),
        ));
    }
    let member_type = match MemberType::from_code(p.int("memberType")?) {
        MemberType::Unknown(n) => {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                format!("memberType {n}: expected 2 (company) or 3 (individual)"),
            ));
        }
        t => t,
    };
    let source = match Source::from_code(p.int("source")?) {
        Source::Unknown(n) => {
            return Err(Reject::new(
                code::UNSUPPORTED_SOURCE,
                format!("source {n}: expected 1 (mobile) or 2 (PC)"),
            ));
        }
        s => s,
    };
    if state.members.contains_key(&biz_user_id) {
        return Err(Reject::new(code::USER_EXISTS, format!("bizUserId {biz_user_id:?}")));
    }
    let user_id = state.new_user_id();
    state.members.insert(
        biz_user_id.clone(),
        Member {
            user_id: user_id.clone(),
            biz_user_id: biz_user_id.clone(),
            member_type,
            source,
            registered_at: OffsetDateTime::now_utc(),
            phone: None,
            real_name: None,
            pending_codes: HashMap::new(),
            locked: false,
            cards: Vec::new(),
            company: None,
            quick_pay_password: None,
            pay_password: None,
        },
    );
    Ok(json!({ "userId": user_id, "bizUserId": biz_user_id }))
}

/// 4.1.2 sendVerificationCode: the code is not sent anywhere; it is the configured fixed value.
pub fn send_verification_code(
    state: &mut SandboxState,
    config: &SandboxConfig,
    p: &Params<'_>,
) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let phone = p.str("phone")?;
    let code_type = p.int("verificationCodeType")?;
    if matches!(
        VerificationCodeType::from_code(code_type),
        VerificationCodeType::Unknown(_)
    ) {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            format!("verificationCodeType {code_type}: expected 9 (bind phone) or 6 (unbind phone)"),
        ));
    }
    if !is_mobile(&phone) {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            "phone must be an 11-digit mobile number",
        ));
    }
    let member = active_member(state, &biz_user_id)?;
    if code_type == VerificationCodeType::BindPhone.code() {
        if member.member_type == MemberType::Company {
            // Companies bind a phone only after their information passed audit (4.1.3).
            super::orders::company_audited(member)?;
        }
        // A code for the bound number itself is pointless; one for another
        // number serves changeBindPhone.
        if member.phone.as_deref() == Some(phone.as_str()) {
            return Err(Reject::new(
                code::PHONE_ALREADY_BOUND,
                "this number is already the bound phone",
            ));
        }
    } else if member.phone.as_deref() != Some(phone.as_str()) {
        return Err(Reject::new(
            code::PHONE_NOT_BOUND,
            "the phone to unbind is not the bound phone",
        ));
    }
    member.pending_codes.insert(
        phone.clone(),
        PendingCode {
            code: config.verification_code.clone(),
            code_type,
            expires_at: OffsetDateTime::now_utc() + CODE_LIFETIME,
        },
    );
    Ok(json!({ "bizUserId": biz_user_id, "phone": phone }))
}

/// 4.1.3 bindPhone.
pub fn bind_phone(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let phone = p.str("phone")?;
    let given = p.str("verificationCode")?;
    let member = active_member(state, &biz_user_id)?;
    if member.phone.is_some() {
        return Err(Reject::new(
            code::PHONE_ALREADY_BOUND,
            format!("bizUserId {biz_user_id:?}"),
        ));
    }
    take_code(member, &phone, &given)?;
    member.phone = Some(phone.clone());
    Ok(json!({ "bizUserId": biz_user_id, "phone": phone }))
}

/// 4.1.5 setRealName (individuals only; `identityNo` arrives decrypted).
pub fn set_real_name(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    if p.opt_bool("isAuth")? == Some(false) {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            "isAuth must be true: verification is done by Yun Account",
        ));
    }
    let name = p.str("name")?;
    let identity_type = p.int("identityType")?;
    let identity_no = p.str("identityNo")?;
    let member = active_member(state, &biz_user_id)?;
    if member.member_type != MemberType::Individual {
        return Err(Reject::new(
            code::WRONG_MEMBER_TYPE,
            "setRealName is for individual members",
        ));
    }
    if member.real_name.is_some() {
        return Err(Reject::new(
            code::ALREADY_REAL_NAME,
            format!("bizUserId {biz_user_id:?}"),
        ));
    }
    if identity_type != 1 {
        return Err(Reject::new(
            code::UNSUPPORTED_ID_TYPE,
            format!("identityType {identity_type}: only 1 (ID card) is supported"),
        ));
    }
    if !is_id_card(&identity_no) {
        return Err(Reject::new("30012", "identityNo is not an 18-character ID card number"));
    }
    member.real_name = Some(RealName {
        name: name.clone(),
        identity_type,
        identity_no: identity_no.clone(),
        verified_at: OffsetDateTime::now_utc(),
    });
    Ok(json!({
        "bizUserId": biz_user_id,
        "name": name,
        "identityType": identity_type,
        "identityNo": identity_no,
    }))
}

/// 4.1.8 getMemberInfo: 5.8 for individuals, 5.6 for companies.
pub fn get_member_info(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let member = state
        .members
        .get(&biz_user_id)
        .ok_or_else(|| Reject::new(code::USER_NOT_FOUND, format!("bizUserId {biz_user_id:?}")))?;
    let state_code = if member.locked {
        UserState::Locked
    } else {
        UserState::Valid
    };
    let info = match member.member_type {
        MemberType::Company => match &member.company {
            Some(company) => {
                let mut info = company.info.clone();
                info["status"] = json!(company.status);
                if let Some(at) = company.check_time {
                    info["checkTime"] = json!(wire::format_timestamp(at));
                }
                if let Some(reason) = &company.fail_reason {
                    info["failReason"] = json!(reason);
                }
                info
            }
            // Company details arrive with setCompanyInfo; until then there are none to show.
            None => json!({}),
        },
        _ => {
            let mut info = json!({
                "userState": state_code.code(),
                "memberType": member.member_type.code(),
                "userId": member.user_id,
                "isPhoneChecked": member.phone.is_some(),
                "registerTime": wire::format_timestamp(member.registered_at),
                "payFailAmount": 0,
                "isIdentityChecked": member.real_name.is_some(),
                "source": member.source.code(),
                "bizUserId": member.biz_user_id,
                "isSetPayPwd": member.pay_password.is_some(),
            });
            if let Some(phone) = &member.phone {
                info["phone"] = json!(phone);
            }
            if let Some(real) = &member.real_name {
                info["name"] = json!(real.name);
                info["identityCardNo"] = json!(real.identity_no);
                info["realNameTime"] = json!(wire::format_timestamp(real.verified_at));
            }
            info
        }
    };
    Ok(json!({
        "bizUserId": member.biz_user_id,
        "memberType": member.member_type.code(),
        "memberInfo": info,
    }))
}

fn take_code(member: &mut Member, phone: &str, given: &str) -> Result<(), Reject> {
    let now = OffsetDateTime::now_utc();
    let valid = member.pending_codes.get(phone).is_some_and(|c| {
        c.code_type == VerificationCodeType::BindPhone.code() && c.expires_at > now && c.code == given
    });
    if !valid {
        return Err(Reject::new(
            code::WRONG_VERIFICATION_CODE,
            "no matching bind-phone code was sent to this phone, or it expired",
        ));
    }
    member.pending_codes.remove(phone);
    Ok(())
}

/// 4.1.4 changeBindPhone: verified by the code sent to the new number.
pub fn change_bind_phone(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let old_phone = p.str("oldPhone")?;
    let new_phone = p.str("newPhone")?;
    let given = p.str("newVerificationCode")?;
    let member = active_member(state, &biz_user_id)?;
    match member.phone.as_deref() {
        None => return Err(Reject::new(code::PHONE_NOT_BOUND, format!("bizUserId {biz_user_id:?}"))),
        Some(bound) if bound != old_phone => {
            return Err(Reject::new(code::PARAMETER_ERROR, "oldPhone is not the bound phone"));
        }
        Some(_) => {}
    }
    take_code(member, &new_phone, &given)?;
    member.phone = Some(new_phone.clone());
    Ok(json!({ "bizUserId": biz_user_id, "oldPhone": old_phone, "newPhone": new_phone }))
}

/// 4.1.6 setCompanyInfo: audited at once (an audit-exempt platform: the
/// answer says how) or after the configured delay, then notified by
/// verifyResult (4.1.7). A company
/// name containing `FAIL` or `审核失败` fails the audit, for testing that path.
pub fn set_company_info(state: &mut SandboxState, config: &SandboxConfig, p: &Params<'_>) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let back_url = p.opt_str("backUrl");
    let info = match p.get("companyBasicInfo") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map_err(|_| Reject::new(code::PARAMETER_ERROR, "companyBasicInfo is not a JSON object"))?,
        _ => return Err(Reject::new(code::PARAMETER_EMPTY, "companyBasicInfo is required")),
    };
    for field in COMPANY_BASIC_INFO_REQUIRED {
        if info.get(field).is_none_or(|v| v.is_null() || v.as_str() == Some("")) {
            return Err(Reject::new(
                code::PARAMETER_EMPTY,
                format!("companyBasicInfo.{field} is required"),
            ));
        }
    }
    let member = active_member(state, &biz_user_id)?;
    if member.member_type != MemberType::Company {
        return Err(Reject::new(
            code::WRONG_MEMBER_TYPE,
            "setCompanyInfo is for company members",
        ));
    }
    if member.company.as_ref().is_some_and(|c| c.status == 2) {
        return Err(Reject::new("30023", "the company information already passed audit"));
    }
    let mut record = CompanyRecord {
        info,
        status: 1,
        back_url,
        check_time: None,
        fail_reason: None,
    };
    let mut answer = json!({ "bizUserId": biz_user_id });
    match config.company_audit_delay {
        // "免审平台：调用设置企业会员信息后，直接返回企业审核状态，没有异步通知"
        // (4.1.6 l.502): the status, in 4.1.7's words (result 2/3, checkTime).
        None => {
            audit(&mut record);
            answer["result"] = json!(record.status);
            if let Some(at) = record.check_time {
                answer["checkTime"] = json!(wire::format_timestamp(at));
            }
            if let Some(reason) = &record.fail_reason {
                answer["failReason"] = json!(reason);
            }
        }
        Some(delay) => {
            let due = OffsetDateTime::now_utc() + time::Duration::try_from(config.scaled(delay)).unwrap_or_default();
            state.audits.push((biz_user_id.clone(), due));
        }
    }
    if let Some(m) = state.members.get_mut(&biz_user_id) {
        m.company = Some(record);
    }
    Ok(answer)
}

/// Decides an audit: passed, unless the company name asks for a failure.
fn audit(record: &mut CompanyRecord) {
    let name = record.info["companyName"].as_str().unwrap_or_default();
    let failed = name.contains("FAIL") || name.contains("审核失败");
    record.status = if failed { 3 } else { 2 };
    record.check_time = Some(OffsetDateTime::now_utc());
    record.fail_reason = failed.then(|| "营业执照信息不符".to_owned());
}

/// Finishes the audits that are due, queueing their verifyResult notifications.
pub fn finish_due_audits(state: &mut SandboxState, now: OffsetDateTime) {
    let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.audits)
        .into_iter()
        .partition(|(_, at)| *at <= now);
    state.audits = waiting;
    for (biz_user_id, _) in due {
        let Some(record) = state.members.get_mut(&biz_user_id).and_then(|m| m.company.as_mut()) else {
            continue;
        };
        audit(record);
        if let Some(url) = record.back_url.clone() {
            let mut value = json!({
                "bizUserId": biz_user_id,
                "result": record.status,
                "checkTime": wire::format_timestamp(record.check_time.unwrap_or(now)),
            });
            if let Some(reason) = &record.fail_reason {
                value["failReason"] = json!(reason);
            }
            state.outbox.push(Notice {
                url,
                service: "MemberService",
                method: "verifyResult",
                status: None,
                error_code: None,
                message: None,
                return_value: value,
            });
        }
    }
}

/// 4.1.18 lockMember / 4.1.19 unlockMember.
pub fn set_locked(state: &mut SandboxState, p: &Params<'_>, locked: bool) -> Result<Value, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let member = state
        .members
        .get_mut(&biz_user_id)
        .ok_or_else(|| Reject::new(code::USER_NOT_FOUND, format!("bizUserId {biz_user_id:?}")))?;
    if locked && member.locked {
        return Err(Reject::new(code::USER_LOCKED, format!("bizUserId {biz_user_id:?}")));
    }
    member.locked = locked;
    Ok(json!({ "bizUserId": biz_user_id }))
}

/// The identity a call names (`name`, `identityType`, `identityNo`) must
/// be the member's verified real name; only ID cards are accepted.
pub fn check_identity(member: &Member, p: &Params<'_>) -> Result<(), Reject> {
    let identity_type = p.int("identityType")?;
    if identity_type != 1 {
        return Err(Reject::new(
            code::UNSUPPORTED_ID_TYPE,
            format!("identityType {identity_type}"),
        ));
    }
    let real = member
        .real_name
        .as_ref()
        .ok_or_else(|| Reject::new("30008", "real-name verification (setRealName) must come first"))?;
    if real.name != p.str("name")? || real.identity_no != p.str("identityNo")? {
        return Err(Reject::new(
            code::REAL_NAME_CHECK_FAILED,
            "name and identityNo must match the real-name record",
        ));
    }
    Ok(())
}

/// An individual whose name and identity number match the real-name record.
fn verified_individual<'a>(state: &'a mut SandboxState, p: &Params<'_>) -> Result<&'a mut Member, Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let member = active_member(state, &biz_user_id)?;
    if member.member_type != MemberType::Individual {
        return Err(Reject::new(
            code::WRONG_MEMBER_TYPE,
            "quick-pay passwords are for individual members",
        ));
    }
    check_identity(member, p)?;
    Ok(member)
}

/// 6 digits, not all the same, not a run like 123456 or 654321.
fn check_password(password: &str, field: &str) -> Result<(), Reject> {
    let d = password.as_bytes();
    let six_digits = d.len() == 6 && d.iter().all(u8::is_ascii_digit);
    let same = d.windows(2).all(|w| w[0] == w[1]);
    let up = d.windows(2).all(|w| w[1] == w[0].wrapping_add(1));
    let down = d.windows(2).all(|w| w[0] == w[1].wrapping_add(1));
    if !six_digits || same || up || down {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            format!("{field} must be 6 digits, not all the same, not consecutive"),
        ));
    }
    Ok(())
}

/// 4.1.24 setNewMobilePayPwd (`operationType` set or edit).
pub fn set_quick_pay_password(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let operation = p.str("operationType")?;
    let new_password = p.str("newPassword")?;
    let old_password = p.opt_str("oldPassword");
    check_password(&new_password, "newPassword")?;
    let member = verified_individual(state, p)?;
    match operation.as_str() {
        "set" if member.quick_pay_password.is_some() => {
            return Err(Reject::new(
                "30031",
                "the password is already set; use operationType edit",
            ));
        }
        "set" => {}
        "edit" => match (&member.quick_pay_password, old_password) {
            (None, _) => return Err(Reject::new("30032", "no password set yet; use operationType set")),
            (Some(_), None) => return Err(Reject::new(code::PARAMETER_EMPTY, "oldPassword is required to edit")),
            (Some(current), Some(old)) if *current != old => {
                return Err(Reject::new(code::PARAMETER_ERROR, "oldPassword does not match"));
            }
            _ => {}
        },
        other => {
            return Err(Reject::new(
                code::PARAMETER_ERROR,
                format!("operationType {other:?}: expected set or edit"),
            ));
        }
    }
    member.quick_pay_password = Some(new_password);
    Ok(json!({ "bizUserId": member.biz_user_id, "result": "OK" }))
}

/// 4.1.25 resetNewMobilePayPwdApply: sends a code and shows the last bound card, masked.
pub fn reset_quick_pay_password_apply(state: &mut SandboxState, p: &Params<'_>) -> Result<Value, Reject> {
    let member = verified_individual(state, p)?;
    let phone = member
        .phone
        .clone()
        .ok_or_else(|| Reject::new(code::PHONE_NOT_BOUND, "a bound phone is needed"))?;
    let card = member
        .cards
        .iter()
        .rev()
        .find(|c| c.bound)
        .cloned()
        .ok_or_else(|| Reject::new("30016", "a bound card is needed to reset the password"))?;
    let biz_user_id = member.biz_user_id.clone();
    let flow = state.new_id("M");
    state.pending_resets.insert(flow.clone(), biz_user_id.clone());
    Ok(json!({
        "bizUserId": biz_user_id,
        "mobileNoMask": format!("{}****{}", &phone[..3], &phone[7..]),
        "lastCardNoMask": format!("{}*********{}", &card.card_no[..6], &card.card_no[card.card_no.len() - 4..]),
        "bankName": card.bank_name,
        "cardType": card.card_type.to_string(),
        "mobileFlowNO": flow,
    }))
}

/// 4.1.26 resetNewMobilePayPwdAffirm.
pub fn reset_quick_pay_password_affirm(
    state: &mut SandboxState,
    config: &SandboxConfig,
    p: &Params<'_>,
) -> Result<Value, Reject> {
    let flow = p.str("mobileFlowNO")?;
    let given = p.str("mobileMsCode")?;
    let password = p.str("payPassword")?;
    let last_card = p.str("lastCardNo")?;
    check_password(&password, "payPassword")?;
    let owner = state.pending_resets.get(&flow).cloned();
    let member = verified_individual(state, p)?;
    if owner.as_deref() != Some(member.biz_user_id.as_str()) {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            format!("no reset {flow:?} pending for this member"),
        ));
    }
    if given != config.verification_code {
        return Err(Reject::new(
            code::WRONG_VERIFICATION_CODE,
            "mobileMsCode does not match",
        ));
    }
    if member.cards.iter().rev().find(|c| c.bound).map(|c| c.card_no.as_str()) != Some(last_card.as_str()) {
        return Err(Reject::new("30016", "lastCardNo is not the most recently bound card"));
    }
    member.quick_pay_password = Some(password);
    let biz_user_id = member.biz_user_id.clone();
    state.pending_resets.remove(&flow);
    Ok(json!({ "bizUserId": biz_user_id, "result": "OK" }))
}
