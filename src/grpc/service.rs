//! The gRPC services: every rpc is validate -> convert -> the provider stack -> convert back, in one generic function.
//!
//! The five service traits are implemented by the `rpcs!` macro, one line
//! per rpc naming its call; all the work is in [`Gateway::backend`] and
//! [`Gateway::page`], which use the descriptors to convert (see
//! `convert.rs`). The gateway fills the fields of the call's `fills` in the
//! catalogue: its own `backUrl` (also inside batch items and payouts to
//! cards), the `sysid`, and configured `frontUrl` / `jumpUrl` defaults.
//! It answers a little before the caller's deadline, so that the caller
//! hears whether its call may have been sent (invariant 3).

use std::time::Duration;

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, Value};
use serde_json::{Map, Value as Json};
use tokio::time::Instant;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};
use tower::ServiceExt;

use super::convert::{self, from_wire, to_wire};
use super::status::{self, invalid_argument};
use super::{proto, rpc_of, validate};
use crate::error::GatewayError;
use crate::exchange::{ProviderAnswer, ProviderRequest};
use crate::provider::calls::{Call, Fill, Idempotency};
use crate::provider::client::{CallError, SoaClient};
use crate::serve::stack::ProviderStack;

/// The metadata key of a caller-chosen idempotency key (for mutations without a natural one).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Response metadata: the answer was replayed from the idempotency store.
pub const REPLAYED: &str = "idempotent-replayed";
/// Response metadata: the answer was recovered by querying the provider
/// after an attempt whose outcome was unknown.
pub const RECOVERED: &str = "idempotent-recovered";
/// Response metadata: with `RECOVERED`, the 6.13 order status the provider reported.
pub const RECOVERED_ORDER_STATUS: &str = "idempotent-recovered-order-status";

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

/// The state every rpc shares: the provider stack, the client (for page
/// links and decryption) and the settings.
#[derive(Clone)]
pub struct Gateway {
    client: SoaClient,
    provider: ProviderStack,
    settings: GatewaySettings,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("client", &self.client)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The caller's deadline from `grpc-timeout`, counted from `arrival`.
pub fn deadline_of(metadata: &MetadataMap, arrival: Instant) -> Option<Instant> {
    let timeout = grpc_timeout(metadata.get("grpc-timeout")?.to_str().ok()?)?;
    arrival.checked_add(timeout)
}

/// A `grpc-timeout` value: `<digits><H|M|S|m|u|n>`, at most 8 digits.
pub fn grpc_timeout(text: &str) -> Option<Duration> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    };
    Some(timeout)
}

/// When to answer: a little before the caller's deadline (a tenth of the
/// time left, at most 50 ms), so the answer arrives before the caller gives up.
fn answer_by(deadline: Instant) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    let early = (left / 10).min(Duration::from_millis(50));
    deadline.checked_sub(early).unwrap_or(deadline)
}

/// Marks an answer's metadata as replayed or recovered.
fn mark(metadata: &mut MetadataMap, answer: &ProviderAnswer) {
    if answer.replayed {
        metadata.insert(REPLAYED, MetadataValue::from_static("true"));
    }
    if answer.recovered {
        metadata.insert(RECOVERED, MetadataValue::from_static("true"));
        let status = answer
            .result
            .as_ref()
            .ok()
            .and_then(|v| v.get("orderStatus"))
            .and_then(Json::as_i64);
        if let Some(status) = status {
            metadata.insert(RECOVERED_ORDER_STATUS, MetadataValue::from(status));
        }
    }
}

fn descriptor(call: Call, suffix: &str) -> Result<MessageDescriptor, Status> {
    let (_, rpc) = rpc_of(call).ok_or_else(|| status::internal("no rpc for this call"))?;
    convert::message(&format!("yungate.v1.{rpc}{suffix}"))
        .ok_or_else(|| status::internal(&format!("descriptor of {rpc}{suffix} missing")))
}

impl Gateway {
    /// A gateway calling the provider through `client`.
    pub fn new(client: SoaClient, provider: ProviderStack, settings: GatewaySettings) -> Self {
        Gateway {
            client,
            provider,
            settings,
        }
    }

    /// The request as the provider's JSON, with the gateway's own fields
    /// filled in and every rule checked, and the caller-supplied part as
    /// canonical JSON (the map's keys are sorted) for the fingerprint.
    fn wire_request<Req: Message>(&self, call: Call, request: Req) -> Result<(Map<String, Json>, Vec<u8>), Status> {
        let desc = descriptor(call, "Request")?;
        let dynamic = DynamicMessage::decode(desc.clone(), request.encode_to_vec().as_slice())
            .map_err(|e| status::internal(&format!("cannot read the request: {e}")))?;
        let mut wire = to_wire(&dynamic);
        let idempotency = call.spec().idempotency;
        let supplied = match idempotency {
            Idempotency::Query => Vec::new(),
            // A confirmation's intent is a few of its fields: copy just those.
            Idempotency::Confirmation(_) => {
                let intent: Map<String, Json> = wire
                    .iter()
                    .filter(|(name, _)| idempotency.fingerprints(name))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                serde_json::to_vec(&intent).map_err(|e| status::internal(&e.to_string()))?
            }
            _ => serde_json::to_vec(&wire).map_err(|e| status::internal(&e.to_string()))?,
        };
        self.fill(call, &mut wire);
        let violations = validate::violations(call, &desc, &wire);
        if !violations.is_empty() {
            return Err(invalid_argument(&violations));
        }
        Ok((wire, supplied))
    }

    fn fill(&self, call: Call, wire: &mut Map<String, Json>) {
        let notify = Json::String(self.settings.notify_url.clone());
        for fill in call.spec().fills {
            let value = match fill {
                Fill::BackUrl => Some(notify.clone()),
                Fill::Sysid => Some(Json::String(self.client.sysid().to_owned())),
                Fill::DefaultFrontUrl => self.settings.default_front_url.clone().map(Json::String),
                Fill::DefaultJumpUrl => self.settings.default_jump_url.clone().map(Json::String),
            };
            let Some(value) = value else { continue };
            if fill.always() || !wire.contains_key(fill.field()) {
                wire.insert(fill.field().into(), value);
            }
        }
        // Nested backUrls: every batch item and payout to a card is notified on its own.
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
    }

    /// A backend rpc: validate, send through the provider stack, convert the answer.
    pub async fn backend<Req: Message, Resp: Message + Default>(
        &self,
        call: Call,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status> {
        let arrival = request
            .extensions()
            .get::<crate::serve::stack::Arrival>()
            .map_or_else(Instant::now, |a| a.0);
        let answer_at = deadline_of(request.metadata(), arrival).map(answer_by);
        let caller_key = match request.metadata().get(IDEMPOTENCY_KEY) {
            None => None,
            Some(v) => Some(v.to_str().map(str::to_owned).map_err(|_| {
                status::from_gateway_error(&GatewayError::InvalidKey("must be printable ASCII".into()))
            })?),
        };
        let caller = request
            .extensions()
            .get::<crate::serve::access::Caller>()
            .map(|c| std::sync::Arc::clone(&c.name));
        let (param, supplied) = self.wire_request(call, request.into_inner())?;
        let idempotency = call.spec().idempotency;
        // The layers answer a little before the gateway does, so that
        // their own refusals (in flight, busy) reach the caller.
        let deadline = answer_at.map(|t| t.checked_sub(Duration::from_millis(5)).unwrap_or(t));
        let request = ProviderRequest::new(call, param, supplied, caller_key, deadline, caller)
            .map_err(|e| status::from_gateway_error(&e))?;
        let continues = request.subject.key.is_some();
        let sent = self.provider.clone().oneshot(request);
        let answered = match answer_at {
            Some(at) => tokio::time::timeout_at(at, sent)
                .await
                .unwrap_or(Err(GatewayError::DeadlineExceeded {
                    sent: idempotency.is_mutation(),
                    continues,
                })),
            None => sent.await,
        };
        let answer = answered.map_err(|e| status::from_gateway_error(&e))?;
        let mut metadata = MetadataMap::new();
        mark(&mut metadata, &answer);
        let converted = match answer.result {
            Ok(value) => self.response(call, value, answer.clear).await,
            Err(e) => Err(status::from_call_error(&e)),
        };
        match converted {
            Ok(message) => {
                let mut response = Response::new(message);
                *response.metadata_mut() = metadata;
                Ok(response)
            }
            Err(mut status) => {
                for kv in metadata.iter() {
                    if let tonic::metadata::KeyAndValueRef::Ascii(k, v) = kv {
                        status.metadata_mut().insert(k.clone(), v.clone());
                    }
                }
                Err(status)
            }
        }
    }

    /// A verified answer (encrypted fields still encrypted, unless `clear`
    /// has them decrypted already) as the rpc's response.
    async fn response<Resp: Message + Default>(
        &self,
        call: Call,
        value: Json,
        clear: Option<Result<Json, CallError>>,
    ) -> Result<Resp, Status> {
        let answer = match clear {
            Some(Ok(clear)) => clear,
            Some(Err(e)) => return Err(status::from_call_error(&e)),
            None => self
                .client
                .decrypt_response(call, value)
                .await
                .map_err(|e| status::from_call_error(&e))?,
        };
        let desc = descriptor(call, "Response")?;
        let dynamic = from_wire(&desc, &answer).map_err(|e| {
            status::from_call_error(&CallError::Malformed(crate::provider::wire::WireError::Malformed {
                field: "signedValue",
                reason: e.to_string(),
            }))
        })?;
        Resp::decode(dynamic.encode_to_vec().as_slice())
            .map_err(|e| status::internal(&format!("cannot build the response: {e}")))
    }

    /// A page rpc: validate, then sign the link for the user's browser.
    pub async fn page<Req: Message, Resp: Message + Default>(
        &self,
        call: Call,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status> {
        let (wire, _) = self.wire_request(call, request.into_inner())?;
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
