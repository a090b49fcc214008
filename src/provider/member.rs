//! Typed parameters and results of the member calls (spec 4.1), with their wire names.
//!
//! Each call is a params struct that implements [`Endpoint`]; its result is a
//! plain struct. Personal data sits in [`Sensitive`] so `Debug` never shows
//! it; encryption of the fields the spec marks "RSA 加密" is done by
//! `SoaClient` from the call catalogue, so these structs hold clear text.

use serde::{Deserialize, Serialize};

use super::calls::Call;
use super::client::Endpoint;
use super::codes::{self, IdentityType, MemberType, Source, UserState, VerificationCodeType};
use super::sensitive::Sensitive;

/// 4.1.1 createMember.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateMember {
    pub biz_user_id: String,
    pub member_type: MemberType,
    pub source: Source,
}

/// 4.1.1 result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateMemberResult {
    pub user_id: String,
    pub biz_user_id: String,
}

impl Endpoint for CreateMember {
    const CALL: Call = Call::CreateMember;
    type Response = CreateMemberResult;
}

/// 4.1.2 sendVerificationCode.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendVerificationCode {
    pub biz_user_id: String,
    pub phone: Sensitive<String>,
    pub verification_code_type: VerificationCodeType,
}

/// 4.1.2 and 4.1.3 result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneResult {
    pub biz_user_id: String,
    pub phone: Sensitive<String>,
}

impl Endpoint for SendVerificationCode {
    const CALL: Call = Call::SendVerificationCode;
    type Response = PhoneResult;
}

/// 4.1.3 bindPhone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindPhone {
    pub biz_user_id: String,
    pub phone: Sensitive<String>,
    pub verification_code: Sensitive<String>,
}

impl Endpoint for BindPhone {
    const CALL: Call = Call::BindPhone;
    type Response = PhoneResult;
}

/// 4.1.5 setRealName.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetRealName {
    pub biz_user_id: String,
    /// Whether the provider verifies the identity; it must (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_auth: Option<bool>,
    pub name: Sensitive<String>,
    pub identity_type: IdentityType,
    /// Encrypted on the wire.
    pub identity_no: Sensitive<String>,
}

/// 4.1.5 result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetRealNameResult {
    pub biz_user_id: String,
    pub name: Sensitive<String>,
    pub identity_type: IdentityType,
    pub identity_no: Sensitive<String>,
}

impl Endpoint for SetRealName {
    const CALL: Call = Call::SetRealName;
    type Response = SetRealNameResult;
}

/// 4.1.8 getMemberInfo.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetMemberInfo {
    pub biz_user_id: String,
}

/// 4.1.8 result; `member_info` follows 5.8 (individual) or 5.6 (company), chosen by `member_type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetMemberInfoResult {
    pub biz_user_id: String,
    pub member_type: MemberType,
    pub member_info: MemberInfo,
}

impl<'de> Deserialize<'de> for GetMemberInfoResult {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            biz_user_id: String,
            member_type: MemberType,
            #[serde(default)]
            member_info: serde_json::Value,
        }
        let raw = Raw::deserialize(d)?;
        let info = match raw.member_info {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            // Some answers carry the structure as a JSON string.
            serde_json::Value::String(s) => serde_json::from_str(&s).map_err(serde::de::Error::custom)?,
            other => other,
        };
        let member_info = match raw.member_type {
            MemberType::Company => MemberInfo::Company(Box::new(
                serde_json::from_value(info).map_err(serde::de::Error::custom)?,
            )),
            MemberType::Individual => MemberInfo::Individual(Box::new(
                serde_json::from_value(info).map_err(serde::de::Error::custom)?,
            )),
            MemberType::Unknown(n) => return Err(serde::de::Error::custom(format!("unknown memberType {n}"))),
        };
        Ok(GetMemberInfoResult {
            biz_user_id: raw.biz_user_id,
            member_type: raw.member_type,
            member_info,
        })
    }
}

impl Endpoint for GetMemberInfo {
    const CALL: Call = Call::GetMemberInfo;
    type Response = GetMemberInfoResult;
}

/// The two shapes of `memberInfo`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MemberInfo {
    Company(Box<CompanyInfo>),
    Individual(Box<IndividualInfo>),
}

/// 5.8 Individual basic information.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IndividualInfo {
    pub name: Option<Sensitive<String>>,
    pub address: Option<Sensitive<String>>,
    pub user_state: Option<UserState>,
    pub member_type: Option<MemberType>,
    pub user_id: Option<String>,
    pub country: Option<String>,
    pub province: Option<String>,
    pub area: Option<String>,
    pub phone: Option<Sensitive<String>>,
    /// Encrypted on the wire.
    pub identity_card_no: Option<Sensitive<String>>,
    #[serde(deserialize_with = "codes::lenient_opt_bool")]
    pub is_phone_checked: Option<bool>,
    pub register_time: Option<String>,
    pub register_ip: Option<String>,
    /// A count of failed payments, despite the name.
    #[serde(deserialize_with = "codes::lenient_opt_i64")]
    pub pay_fail_amount: Option<i64>,
    #[serde(deserialize_with = "codes::lenient_opt_bool")]
    pub is_identity_checked: Option<bool>,
    pub real_name_time: Option<String>,
    pub remark: Option<String>,
    pub source: Option<Source>,
    pub biz_user_id: Option<String>,
    #[serde(deserialize_with = "codes::lenient_opt_bool")]
    pub is_set_pay_pwd: Option<bool>,
}

/// 5.6 Company information (get).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyInfo {
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub company_address: Option<String>,
    #[serde(default)]
    pub business_license: Option<String>,
    #[serde(default)]
    pub organization_code: Option<String>,
    #[serde(default)]
    pub telephone: Option<Sensitive<String>>,
    #[serde(default)]
    pub legal_name: Option<Sensitive<String>>,
    #[serde(default)]
    pub identity_type: Option<IdentityType>,
    /// Encrypted on the wire.
    #[serde(default)]
    pub legal_ids: Option<Sensitive<String>>,
    #[serde(default)]
    pub legal_phone: Option<Sensitive<String>>,
    /// Encrypted on the wire.
    #[serde(default)]
    pub account_no: Option<Sensitive<String>>,
    #[serde(default)]
    pub parent_bank_name: Option<String>,
    #[serde(default)]
    pub bank_city_no: Option<String>,
    #[serde(default)]
    pub bank_name: Option<String>,
    /// 6.12 audit status.
    #[serde(default, deserialize_with = "codes::lenient_opt_i64")]
    pub status: Option<i64>,
    #[serde(default)]
    pub check_time: Option<String>,
    #[serde(default)]
    pub remark: Option<String>,
    #[serde(default)]
    pub fail_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_use_wire_names_and_debug_masks_pii() {
        let p = SetRealName {
            biz_user_id: "u1".into(),
            is_auth: Some(true),
            name: "王小二".into(),
            identity_type: IdentityType::IdCard,
            identity_no: "610422198600000000".into(),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["bizUserId"], "u1");
        assert_eq!(v["identityType"], 1);
        assert_eq!(v["identityNo"], "610422198600000000");
        let shown = format!("{p:?}");
        assert!(!shown.contains("610422") && !shown.contains("王小二"), "{shown}");
    }

    #[test]
    fn member_info_reads_both_shapes_leniently() {
        let person: GetMemberInfoResult = serde_json::from_str(
            r#"{"bizUserId":"u","memberType":"3","memberInfo":{"name":"n","isPhoneChecked":"true","userState":1,"payFailAmount":"0"}}"#,
        )
        .unwrap();
        match person.member_info {
            MemberInfo::Individual(i) => {
                assert_eq!(i.is_phone_checked, Some(true));
                assert_eq!(i.user_state, Some(UserState::Valid));
            }
            other => panic!("wrong shape {other:?}"),
        }
        let company: GetMemberInfoResult =
            serde_json::from_str(r#"{"bizUserId":"c","memberType":2,"memberInfo":{"companyName":"ACME","status":2}}"#)
                .unwrap();
        assert!(matches!(company.member_info, MemberInfo::Company(c) if c.status == Some(2)));
    }
}
