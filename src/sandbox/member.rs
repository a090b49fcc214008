//! The member calls of spec 4.1 as the provider enforces them: create, verification codes, phone, real name, info.

use std::collections::HashMap;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::state::{Member, PendingCode, RealName, SandboxState};
use super::{Params, Reject, SandboxConfig};
use crate::provider::codes::{MemberType, Source, UserState, VerificationCodeType};
use crate::provider::errors::code;
use crate::provider::wire;

/// Ids the provider reserves for the platform itself (`protocol.reserved_biz_user_ids`).
const RESERVED_BIZ_USER_IDS: [&str; 2] = ["#yunBizUserId_B2C#", "#yunBizUserId_application#"];

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

/// 11 digits starting with 1: a mainland mobile number.
fn is_mobile(phone: &str) -> bool {
    phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit())
}

/// 18 characters: 17 digits and a digit or X (15-digit first-generation cards also pass).
fn is_id_card_format(id: &str) -> bool {
    let b = id.as_bytes();
    match b.len() {
        18 => b[..17].iter().all(u8::is_ascii_digit) && (b[17].is_ascii_digit() || b[17] == b'X' || b[17] == b'x'),
        15 => b.iter().all(u8::is_ascii_digit),
        _ => false,
    }
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
            return Err(Reject::new(
                "30030",
                "company information must be audited before binding a phone",
            ));
        }
        if member.phone.is_some() {
            return Err(Reject::new(
                code::PHONE_ALREADY_BOUND,
                format!("bizUserId {biz_user_id:?}"),
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
    let now = OffsetDateTime::now_utc();
    let valid = member.pending_codes.get(&phone).is_some_and(|c| {
        c.code_type == VerificationCodeType::BindPhone.code() && c.expires_at > now && c.code == given
    });
    if !valid {
        return Err(Reject::new(
            code::WRONG_VERIFICATION_CODE,
            "no matching bind-phone code was sent to this phone, or it expired",
        ));
    }
    member.pending_codes.remove(&phone);
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
    if !is_id_card_format(&identity_no) {
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
        // Company details arrive with setCompanyInfo; until then there are none to show.
        MemberType::Company => json!({}),
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
                "isSetPayPwd": false,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_and_phone_formats() {
        assert!(is_id_card_format("610422198600000000"));
        assert!(is_id_card_format("11010519491231002X"));
        assert!(!is_id_card_format("61042219860000000"));
        assert!(!is_id_card_format("6104221986000000AB"));
        assert!(is_mobile("13800138000"));
        assert!(!is_mobile("23800138000"));
        assert!(!is_mobile("1380013800"));
    }
}
