//! The catalogue of the provider's 49 calls (spec section 4): one enum, with service, method, kind and encrypted fields as data.
//!
//! Generated once from `shared/spec/calls.json` and checked against it by
//! `tests/call_catalogue.rs`. `pay` appears five times (4.2.8 to 4.2.12): calls
//! are told apart by section, never by method alone. Encrypted field paths are
//! dotted; a path step that meets a JSON array applies to every element.

/// Where a call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// Server-to-server request to the SOA endpoint.
    Backend,
    /// A signed GET link the user's browser is sent to.
    Page,
    /// An asynchronous POST from the provider to the merchant.
    Notification,
}

/// Static facts about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSpec {
    pub section: &'static str,
    pub service: &'static str,
    pub method: &'static str,
    pub kind: CallKind,
    /// The gRPC rpc that carries the call (in the service of the same name,
    /// or `PageService` for pages); empty for the two notifications.
    pub rpc: &'static str,
    /// What makes a retry of the call safe.
    pub idempotency: Idempotency,
    /// Whether the call moves or commits money: it never runs without the
    /// idempotency store (fail closed when the store is down).
    pub moves_money: bool,
    /// How a retry learns what an attempt with an unknown outcome did.
    pub resolution: Resolution,
    /// Which provider quota the call draws on.
    pub rate_class: RateClass,
    /// The fields the gateway fills in itself; callers never send them.
    pub fills: &'static [Fill],
    /// Request parameters (inside `req.param`) that travel encrypted.
    pub encrypted_request: &'static [&'static str],
    /// Response fields (inside `signedValue`) that travel encrypted.
    pub encrypted_response: &'static [&'static str],
    /// Request parameters the spec marks required (or whose blank 必填 cell
    /// the catalogue reads as required), by wire name.
    pub required_request: &'static [&'static str],
}

/// What makes a retry of a call safe (GUIDE section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Idempotency {
    /// A read, or a page link that only signs: retried freely, never stored.
    Query,
    /// A mutation keyed by the natural number in this request field (wire
    /// name), scoped by sysid and call: a retry with the same number is the
    /// same intent.
    Natural(&'static str),
    /// A confirmation keyed by the number of what it confirms: an order
    /// (4.2.8, 4.2.11: `bizOrderNo`), a card binding (4.1.11, 4.1.13: the
    /// `tranceNum` its application answered, l.709, 807), a password reset
    /// (4.1.26: `mobileFlowNO`, l.1338). Like `Natural`, but a refusal (a
    /// wrong SMS code) is not kept, so that a corrected confirmation of the
    /// same thing can be sent.
    Confirmation(&'static str),
    /// A mutation that may act on its number more than once: 4.2.16 releases
    /// one freeze in parts, each naming the freeze's number ("对应冻结金额时的
    /// 订单号", l.2047). Keyed by that number together with the caller's
    /// `idempotency-key`, which is then required: two partial releases are
    /// two calls, a retry of one is the same call.
    Part(&'static str),
    /// A mutation without a natural number: idempotent when the caller sends
    /// an `idempotency-key`, otherwise passed through as sent.
    CallerKey,
}

impl Idempotency {
    /// Whether the call changes anything at the provider.
    pub fn is_mutation(self) -> bool {
        self != Idempotency::Query
    }

    /// Whether the request field `name` belongs to the intent a fingerprint
    /// covers. A confirmation's intent is what it confirms (its number,
    /// bizUserId, and a payment's tradeNo): its SMS code, password and IP
    /// may change between attempts, so that a corrected code continues the
    /// same confirmation instead of reading as another request.
    pub fn fingerprints(self, name: &str) -> bool {
        match self {
            Idempotency::Confirmation(field) => name == field || matches!(name, "bizUserId" | "tradeNo"),
            _ => true,
        }
    }

    /// Whether the call confirms an order (4.2.8, 4.2.11): 40004 / 40019
    /// then say the order is no longer unpaid (`errors::Proves`); a card
    /// binding's or password reset's confirmation is not one.
    pub fn confirms_order(self) -> bool {
        self == Idempotency::Confirmation("bizOrderNo")
    }

    /// The request field holding the call's own idempotency key, if it has one.
    pub fn natural_field(self) -> Option<&'static str> {
        match self {
            Idempotency::Natural(field) | Idempotency::Confirmation(field) | Idempotency::Part(field) => Some(field),
            Idempotency::Query | Idempotency::CallerKey => None,
        }
    }
}

/// How a retry learns what an attempt with an unknown outcome did, before
/// anything is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// 4.2.21 getOrderDetail (l.2243-2244: bizUserId and bizOrderNo, both
    /// required) with the member of this request field and the request's
    /// `bizOrderNo`: 40000 订单不存在 means the attempt never landed.
    OrderDetail { member: &'static str },
    /// A confirmation (4.2.8, 4.2.11) of an order that exists: 4.2.21
    /// getOrderDetail with the request's `bizUserId` and `bizOrderNo`; 6.13
    /// status 1 未支付 (l.2968) means the confirmation never landed.
    PaymentDetail,
    /// 4.1.8 getMemberInfo with the request's `bizUserId`: 30001 用户不存在
    /// means the attempt never landed.
    MemberInfo,
    /// 4.1.8 getMemberInfo: the individual's memberInfo (5.8, l.2700-2712)
    /// shows whether the change the call makes is there. 5.6 (companies)
    /// has no such fields: a company's unknown outcome is sent again.
    MemberShows(MemberFact),
    /// 4.1.16 queryBankCard with the request's `cardNo`: the card's entry
    /// (5.9, l.2721-2723) shows whether the change the call makes is there.
    CardShows(CardFact),
    /// 4.2.14 queryModifyGoods without dates, a pure query (l.1979-1980):
    /// the goods exist; 40024 标的商品不存在 means the entry never landed.
    Goods,
    /// 4.2.22 queryInExpDetail of the member in request field `member`, in
    /// the account set in `account_set`: an entry whose `bizOrderNo` (5.14
    /// l.2850) is the call's number, of the request's amount, means it
    /// landed; none proves nothing (the field is optional, l.2850 "否"):
    /// then an operator settles it.
    InExpDetail {
        member: &'static str,
        account_set: &'static str,
    },
    /// 4.2.21 getOrderDetail of every item of the batch (5.11: each is an
    /// order with its bizOrderNo and bizUserId): all there, it landed; none,
    /// it did not.
    BatchItems,
    /// Nothing to learn and nothing to lose: the call sets state rather than
    /// moving money, so sending it again is harmless and its answer is the outcome.
    Resend,
    /// No query tells: an unfreeze (4.2.16) names its freeze's number, which
    /// every part of the freeze shares, and a failed-bid refund's items
    /// (5.13) do not name the members getOrderDetail needs. An unknown
    /// outcome stays unknown until a notification or the reconciliation
    /// file (4.3.2) settles it, and is never sent again on its own.
    NoQuery,
}

/// What getMemberInfo's memberInfo (5.8) shows of a member call's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberFact {
    /// `isIdentityChecked` (l.2707): setRealName landed.
    RealName,
    /// `isPhoneChecked` (l.2702) with `phone` (l.2700) equal to the
    /// request field named: the phone is bound.
    Phone(&'static str),
    /// `userState` (l.2695) 5 锁定 (6.11) or not: lockMember (true) or
    /// unlockMember (false) landed.
    Locked(bool),
}

/// What queryBankCard's entry (5.9) shows of a card call's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardFact {
    /// `isSafeCard` (l.2723): setSafeCard landed.
    Safe,
    /// No bound entry, or `bindState` 2 已解除 (l.2721, 6.14): unbindBankCard landed.
    Unbound,
}

/// Which provider quota a call draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RateClass {
    /// Reads.
    Query,
    /// Member and card set-up, goods.
    Member,
    /// Orders and every other call that moves money.
    Order,
    /// Page links: signed locally, they cost the provider nothing until the browser opens them.
    Page,
}

impl RateClass {
    /// Every class, in order.
    pub const ALL: [RateClass; 4] = [RateClass::Query, RateClass::Member, RateClass::Order, RateClass::Page];

    /// The class's name in configuration and in keys.
    pub fn name(self) -> &'static str {
        match self {
            RateClass::Query => "query",
            RateClass::Member => "member",
            RateClass::Order => "order",
            RateClass::Page => "page",
        }
    }
}

/// A field the gateway fills in for callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fill {
    /// `backUrl`: always the gateway's own notification URL.
    BackUrl,
    /// `frontUrl`: the configured default when the caller gives none.
    DefaultFrontUrl,
    /// `jumpUrl`: the configured default when the caller gives none.
    DefaultJumpUrl,
    /// `sysid`: always the merchant's own.
    Sysid,
}

impl Fill {
    /// Whether the gateway always sets the field (callers cannot), rather
    /// than only defaulting it.
    pub fn always(self) -> bool {
        matches!(self, Fill::BackUrl | Fill::Sysid)
    }

    /// The wire name of the filled field.
    pub fn field(self) -> &'static str {
        match self {
            Fill::BackUrl => "backUrl",
            Fill::DefaultFrontUrl => "frontUrl",
            Fill::DefaultJumpUrl => "jumpUrl",
            Fill::Sysid => "sysid",
        }
    }
}

/// The card numbers inside `payMethod` (5.2): "银行卡号, RSA 加密" for
/// REALNAMEPAY (l.2404), REALNAMEPAY_BATCH (l.2408), WITHHOLD_TLT (l.2410),
/// QUICKPAY_N (l.2442), and QUICKPAY of the example (l.2481-2483).
const PAY_METHOD_CARDS: &[&str] = &[
    "payMethod.REALNAMEPAY.bankCardNo",
    "payMethod.REALNAMEPAY_BATCH.bankCardNo",
    "payMethod.WITHHOLD_TLT.bankCardNo",
    "payMethod.QUICKPAY_N.bankCardNo",
    "payMethod.QUICKPAY.bankCardNo",
];

/// Whether `key` is a payMethod key whose `bankCardNo` is encrypted (see `PAY_METHOD_CARDS`).
pub fn is_pay_method_card(key: &str) -> bool {
    PAY_METHOD_CARDS.iter().any(|path| path.split('.').nth(1) == Some(key))
}

/// The fields of `companyBasicInfo` (5.5) marked 是 (l.2638-2648); bankName,
/// the branch, is optional (l.2650).
pub const COMPANY_BASIC_INFO_REQUIRED: [&str; 8] = [
    "companyName",
    "businessLicense",
    "legalName",
    "identityType",
    "legalIds",
    "legalPhone",
    "accountNo",
    "parentBankName",
];

/// Every call of the specification, in spec order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// 4.1.1 MemberService.createMember: Create member.
    CreateMember,
    /// 4.1.2 MemberService.sendVerificationCode: Send SMS verification code.
    SendVerificationCode,
    /// 4.1.3 MemberService.bindPhone: Bind phone.
    BindPhone,
    /// 4.1.4 MemberService.changeBindPhone: Change bound phone (SMS-code confirmed).
    ChangeBindPhone,
    /// 4.1.5 MemberService.setRealName: Individual real-name verification.
    SetRealName,
    /// 4.1.6 MemberService.setCompanyInfo: Set company information.
    SetCompanyInfo,
    /// 4.1.7 MemberService.verifyResult: Company information audit result notification.
    VerifyResultNotification,
    /// 4.1.8 MemberService.getMemberInfo: Get member information.
    GetMemberInfo,
    /// 4.1.9 MemberService.getBankCardBin: Query card BIN.
    GetBankCardBin,
    /// 4.1.10 MemberService.applyBindBankCard: Apply to bind bank card.
    ApplyBindBankCard,
    /// 4.1.11 MemberService.bindBankCard: Confirm bank card binding.
    BindBankCard,
    /// 4.1.12 MemberService.applyVerifyPayBindBankCard: Real-name-pay card binding application.
    ApplyVerifyPayBindBankCard,
    /// 4.1.13 MemberService.affirmVerifyPayBindCard: Real-name-pay card binding confirmation.
    AffirmVerifyPayBindCard,
    /// 4.1.14 MemberService.threeElementsBindBankCard: Three-element card binding.
    ThreeElementsBindBankCard,
    /// 4.1.15 MemberService.setSafeCard: Set safe card.
    SetSafeCard,
    /// 4.1.16 MemberService.queryBankCard: Query bound bank cards.
    QueryBankCard,
    /// 4.1.17 MemberService.unbindBankCard: Unbind bank card.
    UnbindBankCard,
    /// 4.1.18 MemberService.lockMember: Lock member.
    LockMember,
    /// 4.1.19 MemberService.unlockMember: Unlock member.
    UnlockMember,
    /// 4.1.20 MemberPwdService.setPayPwd: Set payment password [password-verification edition].
    SetPayPwd,
    /// 4.1.21 MemberPwdService.updatePayPwd: Change payment password [password-verification edition].
    UpdatePayPwd,
    /// 4.1.22 MemberPwdService.resetPayPwd: Reset payment password [password-verification edition].
    ResetPayPwd,
    /// 4.1.23 MemberPwdService.updatePhoneByPayPwd: Change phone [password-verification edition].
    UpdatePhoneByPayPwd,
    /// 4.1.24 MemberPwdService.setNewMobilePayPwd: Set / change new-mobile-quick-pay password.
    SetNewMobilePayPwd,
    /// 4.1.25 MemberPwdService.resetNewMobilePayPwdApply: Reset new-mobile-quick-pay password - application (sends SMS code).
    ResetNewMobilePayPwdApply,
    /// 4.1.26 MemberPwdService.resetNewMobilePayPwdAffirm: Reset new-mobile-quick-pay password - confirmation.
    ResetNewMobilePayPwdAffirm,
    /// 4.2.2 OrderService.depositApply: Deposit (top-up) application.
    DepositApply,
    /// 4.2.3 OrderService.withdrawApply: Withdrawal application.
    WithdrawApply,
    /// 4.2.4 OrderService.consumeApply: Consume (purchase) application.
    ConsumeApply,
    /// 4.2.5 OrderService.agentCollectApplySimplify: Agent (escrow) collect application (simplified).
    AgentCollectApplySimplify,
    /// 4.2.6 OrderService.signalAgentPaySimplify: Single agent (escrow) pay (simplified).
    SignalAgentPaySimplify,
    /// 4.2.7 OrderService.batchAgentPaySimplify: Batch agent (escrow) pay (simplified).
    BatchAgentPaySimplify,
    /// 4.2.8 OrderService.pay: Confirm payment (backend + SMS code).
    PayBackendSms,
    /// 4.2.9 OrderService.pay: Confirm payment (front page + SMS code).
    PayPageSms,
    /// 4.2.10 OrderService.pay: Confirm payment [front page + payment password].
    PayPagePassword,
    /// 4.2.11 OrderService.pay: Confirm payment (backend, new mobile quick pay).
    PayBackendNewMobile,
    /// 4.2.12 OrderService.pay: Order result notification.
    PayResultNotification,
    /// 4.2.13 OrderService.entryGoods: Goods entry.
    EntryGoods,
    /// 4.2.14 OrderService.queryModifyGoods: Query / modify goods.
    QueryModifyGoods,
    /// 4.2.15 OrderService.freezeMoney: Freeze amount.
    FreezeMoney,
    /// 4.2.16 OrderService.unfreezeMoney: Unfreeze amount.
    UnfreezeMoney,
    /// 4.2.17 OrderService.refund: Refund.
    Refund,
    /// 4.2.18 OrderService.failureBidRefund: Failed-bid refund (P2P).
    FailureBidRefund,
    /// 4.2.19 OrderService.applicationTransfer: Platform transfer.
    ApplicationTransfer,
    /// 4.2.20 OrderService.queryBalance: Query balance.
    QueryBalance,
    /// 4.2.21 OrderService.getOrderDetail: Query order status.
    GetOrderDetail,
    /// 4.2.22 OrderService.queryInExpDetail: Query account income/expense details.
    QueryInExpDetail,
    /// 4.3.1 MerchantService.queryReserveFundBalance: TLT reserve-fund position query.
    QueryReserveFundBalance,
    /// 4.3.2 MerchantService.getCheckAccountFile: Merchant consolidated reconciliation file download.
    GetCheckAccountFile,
}

impl Call {
    /// All calls, in spec order.
    pub const ALL: [Call; 49] = [
        Call::CreateMember,
        Call::SendVerificationCode,
        Call::BindPhone,
        Call::ChangeBindPhone,
        Call::SetRealName,
        Call::SetCompanyInfo,
        Call::VerifyResultNotification,
        Call::GetMemberInfo,
        Call::GetBankCardBin,
        Call::ApplyBindBankCard,
        Call::BindBankCard,
        Call::ApplyVerifyPayBindBankCard,
        Call::AffirmVerifyPayBindCard,
        Call::ThreeElementsBindBankCard,
        Call::SetSafeCard,
        Call::QueryBankCard,
        Call::UnbindBankCard,
        Call::LockMember,
        Call::UnlockMember,
        Call::SetPayPwd,
        Call::UpdatePayPwd,
        Call::ResetPayPwd,
        Call::UpdatePhoneByPayPwd,
        Call::SetNewMobilePayPwd,
        Call::ResetNewMobilePayPwdApply,
        Call::ResetNewMobilePayPwdAffirm,
        Call::DepositApply,
        Call::WithdrawApply,
        Call::ConsumeApply,
        Call::AgentCollectApplySimplify,
        Call::SignalAgentPaySimplify,
        Call::BatchAgentPaySimplify,
        Call::PayBackendSms,
        Call::PayPageSms,
        Call::PayPagePassword,
        Call::PayBackendNewMobile,
        Call::PayResultNotification,
        Call::EntryGoods,
        Call::QueryModifyGoods,
        Call::FreezeMoney,
        Call::UnfreezeMoney,
        Call::Refund,
        Call::FailureBidRefund,
        Call::ApplicationTransfer,
        Call::QueryBalance,
        Call::GetOrderDetail,
        Call::QueryInExpDetail,
        Call::QueryReserveFundBalance,
        Call::GetCheckAccountFile,
    ];

    /// The call's static facts.
    pub fn spec(self) -> &'static CallSpec {
        match self {
            Call::CreateMember => &CallSpec {
                section: "4.1.1",
                service: "MemberService",
                method: "createMember",
                kind: CallKind::Backend,
                rpc: "CreateMember",
                idempotency: Idempotency::Natural("bizUserId"),
                moves_money: false,
                resolution: Resolution::MemberInfo,
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "memberType", "source"],
            },
            Call::SendVerificationCode => &CallSpec {
                section: "4.1.2",
                service: "MemberService",
                method: "sendVerificationCode",
                kind: CallKind::Backend,
                rpc: "SendVerificationCode",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "phone", "verificationCodeType"],
            },
            Call::BindPhone => &CallSpec {
                section: "4.1.3",
                service: "MemberService",
                method: "bindPhone",
                kind: CallKind::Backend,
                rpc: "BindPhone",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::MemberShows(MemberFact::Phone("phone")),
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "phone", "verificationCode"],
            },
            Call::ChangeBindPhone => &CallSpec {
                section: "4.1.4",
                service: "MemberService",
                method: "changeBindPhone",
                kind: CallKind::Backend,
                rpc: "ChangeBindPhone",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::MemberShows(MemberFact::Phone("newPhone")),
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "oldPhone", "newPhone", "newVerificationCode"],
            },
            Call::SetRealName => &CallSpec {
                section: "4.1.5",
                service: "MemberService",
                method: "setRealName",
                kind: CallKind::Backend,
                rpc: "SetRealName",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::MemberShows(MemberFact::RealName),
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &["identityNo"],
                encrypted_response: &["identityNo"],
                required_request: &["bizUserId", "name", "identityType", "identityNo"],
            },
            Call::SetCompanyInfo => &CallSpec {
                section: "4.1.6",
                service: "MemberService",
                method: "setCompanyInfo",
                kind: CallKind::Backend,
                rpc: "SetCompanyInfo",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Member,
                fills: &[Fill::BackUrl],
                encrypted_request: &["companyBasicInfo.accountNo", "companyBasicInfo.legalIds"],
                encrypted_response: &[],
                required_request: &["bizUserId", "companyBasicInfo"],
            },
            Call::VerifyResultNotification => &CallSpec {
                section: "4.1.7",
                service: "MemberService",
                method: "verifyResult",
                kind: CallKind::Notification,
                rpc: "",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Query,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &[],
            },
            Call::GetMemberInfo => &CallSpec {
                section: "4.1.8",
                service: "MemberService",
                method: "getMemberInfo",
                kind: CallKind::Backend,
                rpc: "GetMemberInfo",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Query,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[
                    "memberInfo.accountNo",
                    "memberInfo.identityCardNo",
                    "memberInfo.legalIds",
                ],
                required_request: &["bizUserId"],
            },
            Call::GetBankCardBin => &CallSpec {
                section: "4.1.9",
                service: "MemberService",
                method: "getBankCardBin",
                kind: CallKind::Backend,
                rpc: "GetBankCardBin",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Query,
                fills: &[],
                encrypted_request: &["cardNo"],
                encrypted_response: &[],
                required_request: &["cardNo"],
            },
            Call::ApplyBindBankCard => &CallSpec {
                section: "4.1.10",
                service: "MemberService",
                method: "applyBindBankCard",
                kind: CallKind::Backend,
                rpc: "ApplyBindBankCard",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &["cardNo", "cvv2", "identityNo", "validate"],
                encrypted_response: &[],
                required_request: &["bizUserId", "cardNo", "phone", "name", "identityType", "identityNo"],
            },
            Call::BindBankCard => &CallSpec {
                section: "4.1.11",
                service: "MemberService",
                method: "bindBankCard",
                kind: CallKind::Backend,
                rpc: "BindBankCard",
                idempotency: Idempotency::Confirmation("tranceNum"),
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "tranceNum", "phone", "verificationCode"],
            },
            Call::ApplyVerifyPayBindBankCard => &CallSpec {
                section: "4.1.12",
                service: "MemberService",
                method: "applyVerifyPayBindBankCard",
                kind: CallKind::Backend,
                rpc: "ApplyVerifyPayBindBankCard",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &["cardNo", "identityNo"],
                encrypted_response: &[],
                required_request: &["bizUserId", "cardNo", "phone", "name", "identityType", "identityNo"],
            },
            Call::AffirmVerifyPayBindCard => &CallSpec {
                section: "4.1.13",
                service: "MemberService",
                method: "affirmVerifyPayBindCard",
                kind: CallKind::Backend,
                rpc: "AffirmVerifyPayBindCard",
                idempotency: Idempotency::Confirmation("tranceNum"),
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "tranceNum", "verificationCode"],
            },
            Call::ThreeElementsBindBankCard => &CallSpec {
                section: "4.1.14",
                service: "MemberService",
                method: "threeElementsBindBankCard",
                kind: CallKind::Backend,
                rpc: "ThreeElementsBindBankCard",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &["cardNo", "identityNo"],
                encrypted_response: &[],
                required_request: &["bizUserId", "name", "identityType", "identityNo", "cardNo"],
            },
            Call::SetSafeCard => &CallSpec {
                section: "4.1.15",
                service: "MemberService",
                method: "setSafeCard",
                kind: CallKind::Backend,
                rpc: "SetSafeCard",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::CardShows(CardFact::Safe),
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &["cardNo"],
                encrypted_response: &["cardNo"],
                required_request: &["bizUserId", "cardNo"],
            },
            Call::QueryBankCard => &CallSpec {
                section: "4.1.16",
                service: "MemberService",
                method: "queryBankCard",
                kind: CallKind::Backend,
                rpc: "QueryBankCard",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Query,
                fills: &[],
                encrypted_request: &["cardNo"],
                encrypted_response: &["bindCardList.bankCardNo"],
                required_request: &["bizUserId"],
            },
            Call::UnbindBankCard => &CallSpec {
                section: "4.1.17",
                service: "MemberService",
                method: "unbindBankCard",
                kind: CallKind::Backend,
                rpc: "UnbindBankCard",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::CardShows(CardFact::Unbound),
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &["cardNo"],
                encrypted_response: &["cardNo"],
                required_request: &["bizUserId", "cardNo"],
            },
            Call::LockMember => &CallSpec {
                section: "4.1.18",
                service: "MemberService",
                method: "lockMember",
                kind: CallKind::Backend,
                rpc: "LockMember",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::MemberShows(MemberFact::Locked(true)),
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId"],
            },
            Call::UnlockMember => &CallSpec {
                section: "4.1.19",
                service: "MemberService",
                method: "unlockMember",
                kind: CallKind::Backend,
                rpc: "UnlockMember",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::MemberShows(MemberFact::Locked(false)),
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId"],
            },
            Call::SetPayPwd => &CallSpec {
                section: "4.1.20",
                service: "MemberPwdService",
                method: "setPayPwd",
                kind: CallKind::Page,
                rpc: "SetPayPasswordPage",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Page,
                fills: &[Fill::BackUrl, Fill::DefaultJumpUrl],
                encrypted_request: &["identityNo"],
                encrypted_response: &[],
                required_request: &[
                    "bizUserId",
                    "phone",
                    "name",
                    "identityType",
                    "identityNo",
                    "jumpUrl",
                    "backUrl",
                ],
            },
            Call::UpdatePayPwd => &CallSpec {
                section: "4.1.21",
                service: "MemberPwdService",
                method: "updatePayPwd",
                kind: CallKind::Page,
                rpc: "UpdatePayPasswordPage",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Page,
                fills: &[Fill::BackUrl, Fill::DefaultJumpUrl],
                encrypted_request: &["identityNo"],
                encrypted_response: &[],
                required_request: &["bizUserId", "name", "identityType", "identityNo", "backUrl"],
            },
            Call::ResetPayPwd => &CallSpec {
                section: "4.1.22",
                service: "MemberPwdService",
                method: "resetPayPwd",
                kind: CallKind::Page,
                rpc: "ResetPayPasswordPage",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Page,
                fills: &[Fill::BackUrl, Fill::DefaultJumpUrl],
                encrypted_request: &["identityNo"],
                encrypted_response: &[],
                required_request: &["bizUserId", "name", "phone", "identityType", "identityNo", "backUrl"],
            },
            Call::UpdatePhoneByPayPwd => &CallSpec {
                section: "4.1.23",
                service: "MemberPwdService",
                method: "updatePhoneByPayPwd",
                kind: CallKind::Page,
                rpc: "UpdatePhoneByPayPasswordPage",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Page,
                fills: &[Fill::BackUrl, Fill::DefaultJumpUrl],
                encrypted_request: &["identityNo"],
                encrypted_response: &[],
                required_request: &["bizUserId", "name", "identityType", "identityNo", "oldPhone", "backUrl"],
            },
            Call::SetNewMobilePayPwd => &CallSpec {
                section: "4.1.24",
                service: "MemberPwdService",
                method: "setNewMobilePayPwd",
                kind: CallKind::Backend,
                rpc: "SetNewMobilePayPwd",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &["identityNo", "newPassword", "oldPassword"],
                encrypted_response: &[],
                required_request: &[
                    "bizUserId",
                    "operationType",
                    "name",
                    "identityType",
                    "identityNo",
                    "newPassword",
                ],
            },
            Call::ResetNewMobilePayPwdApply => &CallSpec {
                section: "4.1.25",
                service: "MemberPwdService",
                method: "resetNewMobilePayPwdApply",
                kind: CallKind::Backend,
                rpc: "ResetNewMobilePayPwdApply",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &["identityNo"],
                encrypted_response: &[],
                required_request: &["bizUserId", "name", "identityType", "identityNo"],
            },
            Call::ResetNewMobilePayPwdAffirm => &CallSpec {
                section: "4.1.26",
                service: "MemberPwdService",
                method: "resetNewMobilePayPwdAffirm",
                kind: CallKind::Backend,
                rpc: "ResetNewMobilePayPwdAffirm",
                idempotency: Idempotency::Confirmation("mobileFlowNO"),
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &["identityNo", "lastCardNo", "payPassword"],
                encrypted_response: &[],
                required_request: &[
                    "bizUserId",
                    "name",
                    "identityType",
                    "identityNo",
                    "payPassword",
                    "lastCardNo",
                    "mobileFlowNO",
                    "mobileMsCode",
                ],
            },
            Call::DepositApply => &CallSpec {
                section: "4.2.2",
                service: "OrderService",
                method: "depositApply",
                kind: CallKind::Backend,
                rpc: "DepositApply",
                idempotency: Idempotency::Natural("bizOrderNo"),
                moves_money: true,
                resolution: Resolution::OrderDetail { member: "bizUserId" },
                rate_class: RateClass::Order,
                fills: &[Fill::BackUrl, Fill::DefaultFrontUrl],
                encrypted_request: PAY_METHOD_CARDS,
                encrypted_response: &[],
                required_request: &[
                    "bizOrderNo",
                    "bizUserId",
                    "accountSetNo",
                    "amount",
                    "fee",
                    "backUrl",
                    "payMethod",
                    "industryCode",
                    "industryName",
                    "source",
                ],
            },
            Call::WithdrawApply => &CallSpec {
                section: "4.2.3",
                service: "OrderService",
                method: "withdrawApply",
                kind: CallKind::Backend,
                rpc: "WithdrawApply",
                idempotency: Idempotency::Natural("bizOrderNo"),
                moves_money: true,
                resolution: Resolution::OrderDetail { member: "bizUserId" },
                rate_class: RateClass::Order,
                fills: &[Fill::BackUrl],
                encrypted_request: &["bankCardNo"],
                encrypted_response: &[],
                required_request: &[
                    "bizOrderNo",
                    "bizUserId",
                    "accountSetNo",
                    "amount",
                    "fee",
                    "backUrl",
                    "bankCardNo",
                    "industryCode",
                    "industryName",
                    "source",
                ],
            },
            Call::ConsumeApply => &CallSpec {
                section: "4.2.4",
                service: "OrderService",
                method: "consumeApply",
                kind: CallKind::Backend,
                rpc: "ConsumeApply",
                idempotency: Idempotency::Natural("bizOrderNo"),
                moves_money: true,
                resolution: Resolution::OrderDetail { member: "payerId" },
                rate_class: RateClass::Order,
                fills: &[Fill::BackUrl, Fill::DefaultFrontUrl],
                encrypted_request: PAY_METHOD_CARDS,
                encrypted_response: &[],
                required_request: &[
                    "payerId",
                    "recieverId",
                    "bizOrderNo",
                    "amount",
                    "fee",
                    "backUrl",
                    "payMethod",
                    "industryCode",
                    "industryName",
                    "source",
                ],
            },
            Call::AgentCollectApplySimplify => &CallSpec {
                section: "4.2.5",
                service: "OrderService",
                method: "agentCollectApplySimplify",
                kind: CallKind::Backend,
                rpc: "AgentCollectApply",
                idempotency: Idempotency::Natural("bizOrderNo"),
                moves_money: true,
                resolution: Resolution::OrderDetail { member: "payerId" },
                rate_class: RateClass::Order,
                fills: &[Fill::BackUrl, Fill::DefaultFrontUrl],
                encrypted_request: PAY_METHOD_CARDS,
                encrypted_response: &[],
                required_request: &[
                    "bizOrderNo",
                    "payerId",
                    "tradeCode",
                    "amount",
                    "backUrl",
                    "payMethod",
                    "industryCode",
                    "industryName",
                    "source",
                ],
            },
            Call::SignalAgentPaySimplify => &CallSpec {
                section: "4.2.6",
                service: "OrderService",
                method: "signalAgentPaySimplify",
                kind: CallKind::Backend,
                rpc: "SingleAgentPay",
                idempotency: Idempotency::Natural("bizOrderNo"),
                moves_money: true,
                resolution: Resolution::OrderDetail { member: "bizUserId" },
                rate_class: RateClass::Order,
                fills: &[Fill::BackUrl],
                encrypted_request: &["payToBankCardInfo.bankCardNo"],
                encrypted_response: &[],
                required_request: &[
                    "bizOrderNo",
                    "bizUserId",
                    "accountSetNo",
                    "backUrl",
                    "amount",
                    "fee",
                    "tradeCode",
                ],
            },
            Call::BatchAgentPaySimplify => &CallSpec {
                section: "4.2.7",
                service: "OrderService",
                method: "batchAgentPaySimplify",
                kind: CallKind::Backend,
                rpc: "BatchAgentPay",
                idempotency: Idempotency::Natural("bizBatchNo"),
                moves_money: true,
                resolution: Resolution::BatchItems,
                rate_class: RateClass::Order,
                fills: &[],
                encrypted_request: &["batchPayList.payToBankCardInfo.bankCardNo"],
                encrypted_response: &[],
                required_request: &["bizBatchNo", "batchPayList", "tradeCode"],
            },
            Call::PayBackendSms => &CallSpec {
                section: "4.2.8",
                service: "OrderService",
                method: "pay",
                kind: CallKind::Backend,
                rpc: "ConfirmPaySms",
                idempotency: Idempotency::Confirmation("bizOrderNo"),
                moves_money: true,
                resolution: Resolution::PaymentDetail,
                rate_class: RateClass::Order,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "bizOrderNo", "verificationCode", "consumerIp"],
            },
            Call::PayPageSms => &CallSpec {
                section: "4.2.9",
                service: "OrderService",
                method: "pay",
                kind: CallKind::Page,
                rpc: "GatewayPayPage",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Page,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "bizOrderNo", "consumerIp"],
            },
            Call::PayPagePassword => &CallSpec {
                section: "4.2.10",
                service: "OrderService",
                method: "pay",
                kind: CallKind::Page,
                rpc: "PasswordPayPage",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Page,
                fills: &[Fill::DefaultJumpUrl],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "bizOrderNo", "consumerIp"],
            },
            Call::PayBackendNewMobile => &CallSpec {
                section: "4.2.11",
                service: "OrderService",
                method: "pay",
                kind: CallKind::Backend,
                rpc: "ConfirmPayNewMobile",
                idempotency: Idempotency::Confirmation("bizOrderNo"),
                moves_money: true,
                resolution: Resolution::PaymentDetail,
                rate_class: RateClass::Order,
                fills: &[],
                encrypted_request: &["quickNewPwd"],
                encrypted_response: &[],
                required_request: &["bizUserId", "bizOrderNo", "consumerIp"],
            },
            Call::PayResultNotification => &CallSpec {
                section: "4.2.12",
                service: "OrderService",
                method: "pay",
                kind: CallKind::Notification,
                rpc: "",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Query,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &[],
            },
            Call::EntryGoods => &CallSpec {
                section: "4.2.13",
                service: "OrderService",
                method: "entryGoods",
                kind: CallKind::Backend,
                rpc: "EntryGoods",
                idempotency: Idempotency::Natural("bizGoodsNo"),
                moves_money: false,
                resolution: Resolution::Goods,
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "goodsType", "bizGoodsNo", "goodsName", "goodsParams"],
            },
            Call::QueryModifyGoods => &CallSpec {
                section: "4.2.14",
                service: "OrderService",
                method: "queryModifyGoods",
                kind: CallKind::Backend,
                rpc: "QueryModifyGoods",
                idempotency: Idempotency::CallerKey,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Member,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "bizGoodsNo", "goodsType"],
            },
            Call::FreezeMoney => &CallSpec {
                section: "4.2.15",
                service: "OrderService",
                method: "freezeMoney",
                kind: CallKind::Backend,
                rpc: "FreezeMoney",
                idempotency: Idempotency::Natural("bizFreezenNo"),
                moves_money: true,
                resolution: Resolution::InExpDetail {
                    member: "bizUserId",
                    account_set: "accountSetNo",
                },
                rate_class: RateClass::Order,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "bizFreezenNo", "accountSetNo", "amount"],
            },
            Call::UnfreezeMoney => &CallSpec {
                section: "4.2.16",
                service: "OrderService",
                method: "unfreezeMoney",
                kind: CallKind::Backend,
                rpc: "UnfreezeMoney",
                idempotency: Idempotency::Part("bizFreezenNo"),
                moves_money: true,
                resolution: Resolution::NoQuery,
                rate_class: RateClass::Order,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "bizFreezenNo", "accountSetNo", "amount"],
            },
            Call::Refund => &CallSpec {
                section: "4.2.17",
                service: "OrderService",
                method: "refund",
                kind: CallKind::Backend,
                rpc: "Refund",
                idempotency: Idempotency::Natural("bizOrderNo"),
                moves_money: true,
                resolution: Resolution::OrderDetail { member: "bizUserId" },
                rate_class: RateClass::Order,
                fills: &[Fill::BackUrl],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizOrderNo", "oriBizOrderNo", "bizUserId", "amount"],
            },
            Call::FailureBidRefund => &CallSpec {
                section: "4.2.18",
                service: "OrderService",
                method: "failureBidRefund",
                kind: CallKind::Backend,
                rpc: "FailureBidRefund",
                idempotency: Idempotency::Natural("bizBatchNo"),
                moves_money: true,
                resolution: Resolution::NoQuery,
                rate_class: RateClass::Order,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizBatchNo", "goodsType", "goodsNo", "batchRefundList"],
            },
            Call::ApplicationTransfer => &CallSpec {
                section: "4.2.19",
                service: "OrderService",
                method: "applicationTransfer",
                kind: CallKind::Backend,
                rpc: "ApplicationTransfer",
                idempotency: Idempotency::Natural("bizTransferNo"),
                moves_money: true,
                resolution: Resolution::InExpDetail {
                    member: "targetBizUserId",
                    account_set: "targetAccountSetNo",
                },
                rate_class: RateClass::Order,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &[
                    "bizTransferNo",
                    "sourceAccountSetNo",
                    "targetBizUserId",
                    "targetAccountSetNo",
                    "amount",
                ],
            },
            Call::QueryBalance => &CallSpec {
                section: "4.2.20",
                service: "OrderService",
                method: "queryBalance",
                kind: CallKind::Backend,
                rpc: "QueryBalance",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Query,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "accountSetNo"],
            },
            Call::GetOrderDetail => &CallSpec {
                section: "4.2.21",
                service: "OrderService",
                method: "getOrderDetail",
                kind: CallKind::Backend,
                rpc: "GetOrderDetail",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Query,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "bizOrderNo"],
            },
            Call::QueryInExpDetail => &CallSpec {
                section: "4.2.22",
                service: "OrderService",
                method: "queryInExpDetail",
                kind: CallKind::Backend,
                rpc: "QueryInExpDetail",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Query,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["bizUserId", "dateStart", "dateEnd", "startPosition", "queryNum"],
            },
            Call::QueryReserveFundBalance => &CallSpec {
                section: "4.3.1",
                service: "MerchantService",
                method: "queryReserveFundBalance",
                kind: CallKind::Backend,
                rpc: "QueryReserveFundBalance",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Query,
                fills: &[Fill::Sysid],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["sysid"],
            },
            Call::GetCheckAccountFile => &CallSpec {
                section: "4.3.2",
                service: "MerchantService",
                method: "getCheckAccountFile",
                kind: CallKind::Backend,
                rpc: "GetCheckAccountFile",
                idempotency: Idempotency::Query,
                moves_money: false,
                resolution: Resolution::Resend,
                rate_class: RateClass::Query,
                fills: &[],
                encrypted_request: &[],
                encrypted_response: &[],
                required_request: &["date"],
            },
        }
    }

    /// The backend call with this service and method, if any. On the wire
    /// 4.2.8 and 4.2.11 are both `OrderService.pay` with the same envelope;
    /// this returns the first, 4.2.8.
    pub fn backend(service: &str, method: &str) -> Option<Call> {
        Call::ALL.into_iter().find(|c| {
            let s = c.spec();
            s.kind == CallKind::Backend && s.service == service && s.method == method
        })
    }
}

/// Which of the provider's two environments a deployment talks to. Their
/// page paths differ (spec 3.7 l.289/293, 4.1.20 l.1037-1038, 4.2.10
/// l.1820-1822): the test host serves password pages at `/pwd/...` and the
/// gateway page at `/service/gateway/frontTrans.do`, production puts both
/// under `/yungateway/`. The SOA endpoint is `/service/soa` in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// `https://yun.allinpay.com`.
    Production,
    /// The provider's test host (and the sandbox, which plays it).
    #[default]
    Test,
}

impl Environment {
    /// The production host's name (spec 3.7 l.291).
    pub const PRODUCTION_HOST: &'static str = "yun.allinpay.com";

    /// The environment a provider URL most likely belongs to: production
    /// when its host is the production host, the test layout otherwise.
    pub fn of_url(url: &str) -> Environment {
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let authority = url[after_scheme..].split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or_default();
        let host = host.split(':').next().unwrap_or_default();
        if host.eq_ignore_ascii_case(Self::PRODUCTION_HOST) {
            Environment::Production
        } else {
            Environment::Test
        }
    }

    /// `production` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Test => "test",
        }
    }
}

impl std::str::FromStr for Environment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "production" => Ok(Environment::Production),
            "test" => Ok(Environment::Test),
            other => Err(format!("unknown environment {other:?}: expected production or test")),
        }
    }
}

impl Call {
    /// For page calls, the path of the provider's page in `environment`.
    pub fn page_path(self, environment: Environment) -> Option<&'static str> {
        use Environment::{Production, Test};
        Some(match (self, environment) {
            (Call::SetPayPwd, Production) => "/yungateway/pwd/setPayPwd.html",
            (Call::SetPayPwd, Test) => "/pwd/setPayPwd.html",
            (Call::UpdatePayPwd, Production) => "/yungateway/pwd/updatePayPwd.html",
            (Call::UpdatePayPwd, Test) => "/pwd/updatePayPwd.html",
            (Call::ResetPayPwd, Production) => "/yungateway/pwd/resetPayPwd.html",
            (Call::ResetPayPwd, Test) => "/pwd/resetPayPwd.html",
            (Call::UpdatePhoneByPayPwd, Production) => "/yungateway/pwd/updatePhoneByPayPwd.html",
            (Call::UpdatePhoneByPayPwd, Test) => "/pwd/updatePhoneByPayPwd.html",
            (Call::PayPageSms, Production) => "/yungateway/frontTrans.do",
            (Call::PayPageSms, Test) => "/service/gateway/frontTrans.do",
            (Call::PayPagePassword, Production) => "/yungateway/pwd/payOrder.html",
            (Call::PayPagePassword, Test) => "/pwd/payOrder.html",
            _ => return None,
        })
    }

    /// Whether this is one of the six page calls.
    pub fn is_page(self) -> bool {
        self.spec().kind == CallKind::Page
    }
}
