//! The gRPC services: every rpc is validate -> convert -> `SoaClient` -> convert back, in one generic function.
//!
//! The five service traits are implemented by the `rpcs!` macro, one line
//! per rpc naming its call; all the work is in [`Gateway::backend`] and
//! [`Gateway::page`], which use the descriptors to convert (see
//! `convert.rs`). The gateway fills the fields callers never send: its own
//! `backUrl` (also inside batch items and payouts to cards), the `sysid`,
//! and configured `frontUrl` / `jumpUrl` defaults.

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, Value};
use serde_json::{Map, Value as Json};
use tonic::{Request, Response, Status};

use super::convert::{self, from_wire, to_wire};
use super::status::{self, invalid_argument};
use super::{proto, rpc_of, validate};
use crate::provider::calls::Call;
use crate::provider::client::SoaClient;

/// Calls whose request carries the provider's `backUrl` (the gateway's own
/// notification URL); checked against calls.json by tests/proto_catalogue.rs.
pub const CALLS_WITH_BACK_URL: [Call; 11] = [
    Call::SetCompanyInfo,
    Call::SetPayPwd,
    Call::UpdatePayPwd,
    Call::ResetPayPwd,
    Call::UpdatePhoneByPayPwd,
    Call::DepositApply,
    Call::WithdrawApply,
    Call::ConsumeApply,
    Call::AgentCollectApplySimplify,
    Call::SignalAgentPaySimplify,
    Call::Refund,
];

/// Settings of the gRPC layer.
#[derive(Debug, Clone, Default)]
pub struct GatewaySettings {
    /// The URL the provider POSTs notifications to (filled in as `backUrl`).
    pub notify_url: String,
    /// Where the provider's pages live (e.g. `https://yun.allinpay.com`).
    pub page_base_url: String,
    /// `frontUrl` for orders that do not give one.
    pub default_front_url: Option<String>,
    /// `jumpUrl` for pages that do not give one.
    pub default_jump_url: Option<String>,
}

/// The state every rpc shares: the provider client and the settings.
#[derive(Debug, Clone)]
pub struct Gateway {
    client: SoaClient,
    settings: GatewaySettings,
}

fn descriptor(call: Call, suffix: &str) -> Result<MessageDescriptor, Status> {
    let (_, rpc) = rpc_of(call).ok_or_else(|| status::internal("no rpc for this call"))?;
    convert::message(&format!("yungate.v1.{rpc}{suffix}"))
        .ok_or_else(|| status::internal(&format!("descriptor of {rpc}{suffix} missing")))
}

impl Gateway {
    /// A gateway calling the provider through `client`.
    pub fn new(client: SoaClient, settings: GatewaySettings) -> Self {
        Gateway { client, settings }
    }

    /// The request as the provider's JSON, with the gateway's own fields
    /// filled in and every rule checked.
    fn wire_request<Req: Message>(&self, call: Call, request: Req) -> Result<Map<String, Json>, Status> {
        let desc = descriptor(call, "Request")?;
        let dynamic = DynamicMessage::decode(desc.clone(), request.encode_to_vec().as_slice())
            .map_err(|e| status::internal(&format!("cannot read the request: {e}")))?;
        let mut wire = to_wire(&dynamic);
        self.fill(call, &mut wire);
        let violations = validate::violations(call, &desc, &wire);
        if !violations.is_empty() {
            return Err(invalid_argument(&violations));
        }
        Ok(wire)
    }

    fn fill(&self, call: Call, wire: &mut Map<String, Json>) {
        let notify = Json::String(self.settings.notify_url.clone());
        if CALLS_WITH_BACK_URL.contains(&call) {
            wire.insert("backUrl".into(), notify.clone());
        }
        if let Some(Json::Array(items)) = wire.get_mut("batchPayList") {
            for item in items {
                item["backUrl"] = notify.clone();
                if let Some(info) = item.get_mut("payToBankCardInfo").filter(|i| i.is_object()) {
                    info["backUrl"] = notify.clone();
                }
            }
        }
        if let Some(info) = wire.get_mut("payToBankCardInfo").filter(|i| i.is_object()) {
            info["backUrl"] = notify;
        }
        // WITHDRAW_TLT's payTypeName is always `withdraw_tlt` (5.2 l.2440).
        if let Some(Json::Object(tlt)) = wire.get_mut("payMethod").and_then(|m| m.get_mut("WITHDRAW_TLT")) {
            let empty = tlt.get("payTypeName").and_then(Json::as_str).is_none_or(str::is_empty);
            if empty {
                tlt.insert("payTypeName".into(), Json::String("withdraw_tlt".into()));
            }
        }
        validate::normalise_dates(wire);
        if call == Call::QueryReserveFundBalance {
            wire.insert("sysid".into(), Json::String(self.client.sysid().to_owned()));
        }
        let takes_front_url = matches!(
            call,
            Call::DepositApply | Call::ConsumeApply | Call::AgentCollectApplySimplify
        );
        if let (true, Some(url), false) = (
            takes_front_url,
            &self.settings.default_front_url,
            wire.contains_key("frontUrl"),
        ) {
            wire.insert("frontUrl".into(), Json::String(url.clone()));
        }
        let takes_jump_url = call.is_page() && call != Call::PayPageSms;
        if let (true, Some(url), false) = (
            takes_jump_url,
            &self.settings.default_jump_url,
            wire.contains_key("jumpUrl"),
        ) {
            wire.insert("jumpUrl".into(), Json::String(url.clone()));
        }
    }

    /// A backend rpc: validate, call the provider, convert the answer.
    pub async fn backend<Req: Message, Resp: Message + Default>(
        &self,
        call: Call,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status> {
        let wire = self.wire_request(call, request.into_inner())?;
        let answer = self
            .client
            .call_value(call, Json::Object(wire))
            .await
            .map_err(|e| status::from_call_error(&e))?;
        let desc = descriptor(call, "Response")?;
        let dynamic = from_wire(&desc, &answer).map_err(|e| {
            status::from_call_error(&crate::provider::client::CallError::Malformed(
                crate::provider::wire::WireError::Malformed {
                    field: "signedValue",
                    reason: e.to_string(),
                },
            ))
        })?;
        Resp::decode(dynamic.encode_to_vec().as_slice())
            .map(Response::new)
            .map_err(|e| status::internal(&format!("cannot build the response: {e}")))
    }

    /// A page rpc: validate, then sign the link for the user's browser.
    pub async fn page<Req: Message, Resp: Message + Default>(
        &self,
        call: Call,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status> {
        let wire = self.wire_request(call, request.into_inner())?;
        let url = self
            .client
            .page_url(&self.settings.page_base_url, call, Json::Object(wire))
            .await
            .map_err(|e| status::from_call_error(&e))?;
        let link = proto::PageLink {
            url,
            http_method: "GET".into(),
        };
        let desc = descriptor(call, "Response")?;
        let mut dynamic = DynamicMessage::new(desc.clone());
        let link_desc = convert::message("yungate.v1.PageLink").ok_or_else(|| status::internal("PageLink missing"))?;
        let link = DynamicMessage::decode(link_desc, link.encode_to_vec().as_slice())
            .map_err(|e| status::internal(&e.to_string()))?;
        dynamic.set_field_by_name("link", Value::Message(link));
        Resp::decode(dynamic.encode_to_vec().as_slice())
            .map(Response::new)
            .map_err(|e| status::internal(&format!("cannot build the response: {e}")))
    }
}

/// Implements a service trait: each line names an rpc, its messages and its call.
macro_rules! rpcs {
    ($service:path, $kind:ident; $($method:ident($req:ident) -> $resp:ident = $call:ident;)*) => {
        #[tonic::async_trait]
        impl $service for Gateway {
            $(
                async fn $method(&self, request: Request<proto::$req>) -> Result<Response<proto::$resp>, Status> {
                    self.$kind(Call::$call, request).await
                }
            )*
        }
    };
}

rpcs! { proto::member_service_server::MemberService, backend;
    create_member(CreateMemberRequest) -> CreateMemberResponse = CreateMember;
    send_verification_code(SendVerificationCodeRequest) -> SendVerificationCodeResponse = SendVerificationCode;
    bind_phone(BindPhoneRequest) -> BindPhoneResponse = BindPhone;
    change_bind_phone(ChangeBindPhoneRequest) -> ChangeBindPhoneResponse = ChangeBindPhone;
    set_real_name(SetRealNameRequest) -> SetRealNameResponse = SetRealName;
    set_company_info(SetCompanyInfoRequest) -> SetCompanyInfoResponse = SetCompanyInfo;
    get_member_info(GetMemberInfoRequest) -> GetMemberInfoResponse = GetMemberInfo;
    get_bank_card_bin(GetBankCardBinRequest) -> GetBankCardBinResponse = GetBankCardBin;
    apply_bind_bank_card(ApplyBindBankCardRequest) -> ApplyBindBankCardResponse = ApplyBindBankCard;
    bind_bank_card(BindBankCardRequest) -> BindBankCardResponse = BindBankCard;
    apply_verify_pay_bind_bank_card(ApplyVerifyPayBindBankCardRequest) -> ApplyVerifyPayBindBankCardResponse = ApplyVerifyPayBindBankCard;
    affirm_verify_pay_bind_card(AffirmVerifyPayBindCardRequest) -> AffirmVerifyPayBindCardResponse = AffirmVerifyPayBindCard;
    three_elements_bind_bank_card(ThreeElementsBindBankCardRequest) -> ThreeElementsBindBankCardResponse = ThreeElementsBindBankCard;
    set_safe_card(SetSafeCardRequest) -> SetSafeCardResponse = SetSafeCard;
    query_bank_card(QueryBankCardRequest) -> QueryBankCardResponse = QueryBankCard;
    unbind_bank_card(UnbindBankCardRequest) -> UnbindBankCardResponse = UnbindBankCard;
    lock_member(LockMemberRequest) -> LockMemberResponse = LockMember;
    unlock_member(UnlockMemberRequest) -> UnlockMemberResponse = UnlockMember;
}

rpcs! { proto::member_pwd_service_server::MemberPwdService, backend;
    set_new_mobile_pay_pwd(SetNewMobilePayPwdRequest) -> SetNewMobilePayPwdResponse = SetNewMobilePayPwd;
    reset_new_mobile_pay_pwd_apply(ResetNewMobilePayPwdApplyRequest) -> ResetNewMobilePayPwdApplyResponse = ResetNewMobilePayPwdApply;
    reset_new_mobile_pay_pwd_affirm(ResetNewMobilePayPwdAffirmRequest) -> ResetNewMobilePayPwdAffirmResponse = ResetNewMobilePayPwdAffirm;
}

rpcs! { proto::order_service_server::OrderService, backend;
    deposit_apply(DepositApplyRequest) -> DepositApplyResponse = DepositApply;
    withdraw_apply(WithdrawApplyRequest) -> WithdrawApplyResponse = WithdrawApply;
    consume_apply(ConsumeApplyRequest) -> ConsumeApplyResponse = ConsumeApply;
    agent_collect_apply(AgentCollectApplyRequest) -> AgentCollectApplyResponse = AgentCollectApplySimplify;
    single_agent_pay(SingleAgentPayRequest) -> SingleAgentPayResponse = SignalAgentPaySimplify;
    batch_agent_pay(BatchAgentPayRequest) -> BatchAgentPayResponse = BatchAgentPaySimplify;
    confirm_pay_sms(ConfirmPaySmsRequest) -> ConfirmPaySmsResponse = PayBackendSms;
    confirm_pay_new_mobile(ConfirmPayNewMobileRequest) -> ConfirmPayNewMobileResponse = PayBackendNewMobile;
    entry_goods(EntryGoodsRequest) -> EntryGoodsResponse = EntryGoods;
    query_modify_goods(QueryModifyGoodsRequest) -> QueryModifyGoodsResponse = QueryModifyGoods;
    freeze_money(FreezeMoneyRequest) -> FreezeMoneyResponse = FreezeMoney;
    unfreeze_money(UnfreezeMoneyRequest) -> UnfreezeMoneyResponse = UnfreezeMoney;
    refund(RefundRequest) -> RefundResponse = Refund;
    failure_bid_refund(FailureBidRefundRequest) -> FailureBidRefundResponse = FailureBidRefund;
    application_transfer(ApplicationTransferRequest) -> ApplicationTransferResponse = ApplicationTransfer;
    query_balance(QueryBalanceRequest) -> QueryBalanceResponse = QueryBalance;
    get_order_detail(GetOrderDetailRequest) -> GetOrderDetailResponse = GetOrderDetail;
    query_in_exp_detail(QueryInExpDetailRequest) -> QueryInExpDetailResponse = QueryInExpDetail;
}

rpcs! { proto::merchant_service_server::MerchantService, backend;
    query_reserve_fund_balance(QueryReserveFundBalanceRequest) -> QueryReserveFundBalanceResponse = QueryReserveFundBalance;
    get_check_account_file(GetCheckAccountFileRequest) -> GetCheckAccountFileResponse = GetCheckAccountFile;
}

rpcs! { proto::page_service_server::PageService, page;
    set_pay_password_page(SetPayPasswordPageRequest) -> SetPayPasswordPageResponse = SetPayPwd;
    update_pay_password_page(UpdatePayPasswordPageRequest) -> UpdatePayPasswordPageResponse = UpdatePayPwd;
    reset_pay_password_page(ResetPayPasswordPageRequest) -> ResetPayPasswordPageResponse = ResetPayPwd;
    update_phone_by_pay_password_page(UpdatePhoneByPayPasswordPageRequest) -> UpdatePhoneByPayPasswordPageResponse = UpdatePhoneByPayPwd;
    gateway_pay_page(GatewayPayPageRequest) -> GatewayPayPageResponse = PayPageSms;
    password_pay_page(PasswordPayPageRequest) -> PasswordPayPageResponse = PayPagePassword;
}
