//! A member onboarded through the gateway's gRPC API (created, real name, bound phone, bound card), as a caller would do it.

use tonic::transport::Channel;
use yungate::grpc::proto::{self, member_service_client::MemberServiceClient};

use super::harness::{CARD, ID_NO, NAME};

/// Real name (the test environment's identity), then a bound phone, over gRPC.
pub async fn verify_and_bind_phone(members: &mut MemberServiceClient<Channel>, id: &str, phone: &str) {
    members
        .set_real_name(proto::SetRealNameRequest {
            biz_user_id: id.into(),
            name: NAME.into(),
            identity_type: proto::IdentityType::IdCard as i32,
            identity_no: ID_NO.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    members
        .send_verification_code(proto::SendVerificationCodeRequest {
            biz_user_id: id.into(),
            phone: phone.into(),
            verification_code_type: proto::VerificationCodeType::BindPhone as i32,
        })
        .await
        .unwrap();
    members
        .bind_phone(proto::BindPhoneRequest {
            biz_user_id: id.into(),
            phone: phone.into(),
            verification_code: "9999".into(),
        })
        .await
        .unwrap();
}

/// Binds the test card by real-name pay (4.1.14, cardCheck 3) and returns ApplyBindBankCard's answer.
pub async fn bind_card(
    members: &mut MemberServiceClient<Channel>,
    id: &str,
    phone: &str,
) -> proto::ApplyBindBankCardResponse {
    let applied = members
        .apply_bind_bank_card(proto::ApplyBindBankCardRequest {
            biz_user_id: id.into(),
            card_no: CARD.into(),
            phone: phone.into(),
            name: NAME.into(),
            card_check: Some(proto::CardCheck::RealNamePay as i32),
            identity_type: proto::IdentityType::IdCard as i32,
            identity_no: ID_NO.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    members
        .bind_bank_card(proto::BindBankCardRequest {
            biz_user_id: id.into(),
            trans_num: applied.trans_num.clone().unwrap_or_default(),
            phone: phone.into(),
            verification_code: "9999".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    applied
}

/// An individual member created, verified, with the phone and the test card bound.
pub async fn onboard(channel: &Channel, id: &str, phone: &str) -> proto::CreateMemberResponse {
    let mut members = MemberServiceClient::new(channel.clone());
    let created = members
        .create_member(proto::CreateMemberRequest {
            biz_user_id: id.into(),
            member_type: proto::MemberType::Individual as i32,
            source: proto::Source::Mobile as i32,
        })
        .await
        .unwrap()
        .into_inner();
    verify_and_bind_phone(&mut members, id, phone).await;
    bind_card(&mut members, id, phone).await;
    created
}
