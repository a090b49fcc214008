//! The provider's error codes (spec section 7) as data: code, category, message, and what each proves about the request it answers.
//!
//! Generated once from `shared/spec/dictionaries.json` (checked by
//! `tests/call_catalogue.rs`). What a code means lives here and nowhere
//! else (GUIDE §13): the client reads [`Proves`] to tell a refusal from an
//! outcome it cannot know, idempotency reads it to tell "number already
//! used" from a refusal, and the gRPC mapping reads [`Class`]. The sandbox
//! reads the messages; neither spells one of its own.

/// What an answer with a code proves about the request it answers, for a
/// client that must never pay twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proves {
    /// The provider refused the request: it was not processed.
    Refusal,
    /// Nothing: the request may or may not have been processed: the
    /// provider's own time-outs and unexplained failures (40007 支付超时,
    /// 9000, 9100, 40002 订单错误), and its failures to encrypt or sign its
    /// answer (51000, 51002), which may come after it processed the request.
    Nothing,
    /// The request's number is already used at the provider (30000
    /// 用户已经存在 l.3240, 40017 订单已经存在 l.3289): this request was not
    /// processed under it, but an earlier one with the same number was,
    /// perhaps an earlier attempt of this very request.
    NumberUsed,
    /// 40004 订单不是未支付状态 (l.3275), 40019 订单状态错误 (l.3291): for a
    /// confirmation (4.2.8, 4.2.11) the order it confirms is no longer
    /// unpaid, which is what a second confirmation of a paid order meets
    /// ([`Proves::NumberUsed`]); for any other call a refusal.
    NumberUsedByConfirmation,
}

/// What a refusal is about: the class the gRPC mapping reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The request's content breaks a rule: fix the request.
    Invalid,
    /// A state at the provider stands in the way (locked, not verified, no balance).
    State,
    /// What the request creates or sets exists already.
    Exists,
    /// What the request names does not exist.
    Missing,
    /// The application's set-up at the provider: nothing a caller can fix.
    Setup,
    /// The provider could not use our keys or signature: the deployment's keys or profile are wrong.
    Keys,
    /// The provider failed in a way it does not explain.
    ProviderFault,
    /// The provider's channel timed out.
    Timeout,
}

/// What an answer with a code means for one call: [`Proves`] with the call's kind applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// The request was refused and not processed.
    Refusal,
    /// The request may or may not have been processed.
    Unknown,
    /// The request's number is already used at the provider.
    NumberUsed,
}

/// One row of section 7, with what the code proves and its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCodeInfo {
    pub code: &'static str,
    pub category_en: &'static str,
    pub message_zh: &'static str,
    pub message_en: &'static str,
    pub class: Class,
    pub proves: Proves,
}

/// Looks a code up in section 7; `None` for a code the spec does not list there.
pub fn lookup(code: &str) -> Option<&'static ErrorCodeInfo> {
    ERROR_CODES.iter().find(|e| e.code == code)
}

/// Looks a code up among every code the spec shows: section 7, and the
/// codes its examples use besides ([`EXAMPLE_CODES`]).
pub fn shown(code: &str) -> Option<&'static ErrorCodeInfo> {
    lookup(code).or_else(|| EXAMPLE_CODES.iter().find(|e| e.code == code))
}

/// What `code` means for a call; `confirmation` says whether the call
/// confirms an order (4.2.8, 4.2.11). A code the spec does not list in
/// section 7 (9999 of the 3.3 example included) proves nothing.
pub fn meaning(code: &str, confirmation: bool) -> Meaning {
    match lookup(code).map(|e| e.proves) {
        Some(Proves::Refusal) => Meaning::Refusal,
        Some(Proves::NumberUsed) => Meaning::NumberUsed,
        Some(Proves::NumberUsedByConfirmation) if confirmation => Meaning::NumberUsed,
        Some(Proves::NumberUsedByConfirmation) => Meaning::Refusal,
        Some(Proves::Nothing) | None => Meaning::Unknown,
    }
}

/// The codes the crate refers to by name.
pub mod code {
    /// 10000: Parameter error.
    pub const PARAMETER_ERROR: &str = "10000";
    /// 10001: Parameter must not be empty.
    pub const PARAMETER_EMPTY: &str = "10001";
    /// 30000: User already exists.
    pub const USER_EXISTS: &str = "30000";
    /// 30001: User does not exist.
    pub const USER_NOT_FOUND: &str = "30001";
    /// 30002: User is locked.
    pub const USER_LOCKED: &str = "30002";
    /// 30006: Incorrect user (member) type.
    pub const WRONG_MEMBER_TYPE: &str = "30006";
    /// 30007: User already real-name verified.
    pub const ALREADY_REAL_NAME: &str = "30007";
    /// 30009: Real-name information verification failed.
    pub const REAL_NAME_CHECK_FAILED: &str = "30009";
    /// 30021: Phone not bound.
    pub const PHONE_NOT_BOUND: &str = "30021";
    /// 30024: Phone already bound.
    pub const PHONE_ALREADY_BOUND: &str = "30024";
    /// 40000: Order does not exist.
    pub const ORDER_NOT_FOUND: &str = "40000";
    /// 40004: Order is not in unpaid state.
    pub const ORDER_NOT_UNPAID: &str = "40004";
    /// 40007: Payment timed out.
    pub const PAYMENT_TIMEOUT: &str = "40007";
    /// 40022: Order and user do not match (the number is another member's order).
    pub const ORDER_USER_MISMATCH: &str = "40022";
    /// 40024: Target goods does not exist.
    pub const GOODS_NOT_FOUND: &str = "40024";
    /// 40017: Order already exists.
    pub const ORDER_EXISTS: &str = "40017";
    /// 50001: Wrong verification code.
    pub const WRONG_VERIFICATION_CODE: &str = "50001";
    /// 50002: Unsupported ID type.
    pub const UNSUPPORTED_ID_TYPE: &str = "50002";
    /// 50004: Unsupported request source (e.g. mobile, PC).
    pub const UNSUPPORTED_SOURCE: &str = "50004";
    /// 51001: Decryption failed.
    pub const DECRYPTION_FAILED: &str = "51001";
    /// 51003: Signature verification failed.
    pub const SIGNATURE_INVALID: &str = "51003";
    /// 9000: Other error.
    pub const OTHER: &str = "9000";
    /// 9100: Unknown error.
    pub const UNKNOWN: &str = "9100";
    /// 9999: Internal error (the 3.3 example, l.229; not in section 7).
    pub const INTERNAL_EXAMPLE: &str = "9999";
}

/// Codes the spec shows outside section 7: 3.3's failure example answers
/// `"errorCode" : "9999", "message" : "内部错误"` (l.228-229).
pub const EXAMPLE_CODES: &[ErrorCodeInfo] = &[ErrorCodeInfo {
    code: "9999",
    category_en: "Other",
    message_zh: "内部错误",
    message_en: "Internal error",
    class: Class::ProviderFault,
    proves: Proves::Nothing,
}];

/// Every code of section 7, in spec order.
pub const ERROR_CODES: &[ErrorCodeInfo] = &[
    ErrorCodeInfo {
        code: "10000",
        category_en: "System error",
        message_zh: "参数错误",
        message_en: "Parameter error",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "10001",
        category_en: "System error",
        message_zh: "参数不能为空",
        message_en: "Parameter must not be empty",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "20000",
        category_en: "Application error",
        message_zh: "应用不存在",
        message_en: "Application does not exist",
        class: Class::Setup,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "20001",
        category_en: "Application error",
        message_zh: "应用没有开通 B2C 模式",
        message_en: "Application has not enabled B2C mode",
        class: Class::Setup,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "20002",
        category_en: "Application error",
        message_zh: "应用没有开通跨应用转账",
        message_en: "Application has not enabled cross-application transfer",
        class: Class::Setup,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "20003",
        category_en: "Application error",
        message_zh: "应用没有权限使用此接口",
        message_en: "Application has no permission for this interface",
        class: Class::Setup,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "20004",
        category_en: "Application error",
        message_zh: "用户没有开通密码确认支付",
        message_en: "Password-confirmed payment not enabled",
        class: Class::Setup,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "20005",
        category_en: "Application error",
        message_zh: "用户没有开通三要素绑卡",
        message_en: "Three-element card binding not enabled",
        class: Class::Setup,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30000",
        category_en: "User error",
        message_zh: "用户已经存在",
        message_en: "User already exists",
        class: Class::Exists,
        proves: Proves::NumberUsed,
    },
    ErrorCodeInfo {
        code: "30001",
        category_en: "User error",
        message_zh: "用户不存在",
        message_en: "User does not exist",
        class: Class::Missing,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30002",
        category_en: "User error",
        message_zh: "用户已经被锁",
        message_en: "User is locked",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30003",
        category_en: "User error",
        message_zh: "用户已经激活",
        message_en: "User already activated",
        class: Class::Exists,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30006",
        category_en: "User error",
        message_zh: "用户类型不正确",
        message_en: "Incorrect user (member) type",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30007",
        category_en: "User error",
        message_zh: "用户已经实名认证",
        message_en: "User already real-name verified",
        class: Class::Exists,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30008",
        category_en: "User error",
        message_zh: "用户还未实名认证",
        message_en: "User not yet real-name verified",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30009",
        category_en: "User error",
        message_zh: "验证实名信息失败",
        message_en: "Real-name information verification failed",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30012",
        category_en: "User error",
        message_zh: "身份证验证失败",
        message_en: "ID card verification failed",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30014",
        category_en: "User error",
        message_zh: "绑定银行卡失败",
        message_en: "Bank card binding failed",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30015",
        category_en: "User error",
        message_zh: "解绑银行卡失败",
        message_en: "Bank card unbinding failed",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30016",
        category_en: "User error",
        message_zh: "银行卡绑定记录不存在",
        message_en: "Bank card binding record does not exist",
        class: Class::Missing,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30017",
        category_en: "User error",
        message_zh: "该银行卡已绑定",
        message_en: "This bank card is already bound",
        class: Class::Exists,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30018",
        category_en: "User error",
        message_zh: "账户集错误",
        message_en: "Account set error",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30019",
        category_en: "User error",
        message_zh: "账户集不存在",
        message_en: "Account set does not exist",
        class: Class::Missing,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30021",
        category_en: "User error",
        message_zh: "未绑定手机",
        message_en: "Phone not bound",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30022",
        category_en: "User error",
        message_zh: "用户不可用",
        message_en: "User unavailable",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30023",
        category_en: "User error",
        message_zh: "企业会员已审核",
        message_en: "Company member already audited",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30024",
        category_en: "User error",
        message_zh: "已绑定手机",
        message_en: "Phone already bound",
        class: Class::Exists,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30025",
        category_en: "User error",
        message_zh: "安全卡必需是借记卡",
        message_en: "Safe card must be a debit card",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30026",
        category_en: "User error",
        message_zh: "安全卡已存在",
        message_en: "Safe card already exists",
        class: Class::Exists,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30027",
        category_en: "User error",
        message_zh: "安全卡不可解绑",
        message_en: "Safe card cannot be unbound",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30028",
        category_en: "User error",
        message_zh: "设置安全卡失败",
        message_en: "Setting the safe card failed",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30029",
        category_en: "User error",
        message_zh: "未设置安全卡不能提现",
        message_en: "Cannot withdraw without a safe card",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30030",
        category_en: "User error",
        message_zh: "未设置企业信息",
        message_en: "Company information not set",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30031",
        category_en: "User error",
        message_zh: "支付密码已设置",
        message_en: "Payment password already set",
        class: Class::Exists,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30032",
        category_en: "User error",
        message_zh: "支付密码未设置",
        message_en: "Payment password not set",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30033",
        category_en: "User error",
        message_zh: "支付密码错误超限制",
        message_en: "Payment password error limit exceeded",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30034",
        category_en: "User error",
        message_zh: "未进行实名认证",
        message_en: "Real-name verification not done",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "30035",
        category_en: "User error",
        message_zh: "已进行实名认证",
        message_en: "Real-name verification already done",
        class: Class::Exists,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40000",
        category_en: "Order error",
        message_zh: "订单不存在",
        message_en: "Order does not exist",
        class: Class::Missing,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40001",
        category_en: "Order error",
        message_zh: "订单已经关闭",
        message_en: "Order already closed",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40002",
        category_en: "Order error",
        message_zh: "订单错误",
        message_en: "Order error",
        class: Class::Invalid,
        proves: Proves::Nothing,
    },
    ErrorCodeInfo {
        code: "40003",
        category_en: "Order error",
        message_zh: "订单已过期",
        message_en: "Order expired",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40004",
        category_en: "Order error",
        message_zh: "订单不是未支付状态",
        message_en: "Order is not in unpaid state",
        class: Class::State,
        proves: Proves::NumberUsedByConfirmation,
    },
    ErrorCodeInfo {
        code: "40005",
        category_en: "Order error",
        message_zh: "订单金额和支付金额不一致",
        message_en: "Order amount and payment amount differ",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40006",
        category_en: "Order error",
        message_zh: "支付失败",
        message_en: "Payment failed",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40007",
        category_en: "Order error",
        message_zh: "支付超时",
        message_en: "Payment timed out",
        class: Class::Timeout,
        proves: Proves::Nothing,
    },
    ErrorCodeInfo {
        code: "40008",
        category_en: "Order error",
        message_zh: "快捷和网关不可同时使用",
        message_en: "Quick pay and gateway cannot be used together",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40009",
        category_en: "Order error",
        message_zh: "没有可用的支付通道",
        message_en: "No payment channel available",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40010",
        category_en: "Order error",
        message_zh: "交易类型不存在",
        message_en: "Transaction type does not exist",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40011",
        category_en: "Order error",
        message_zh: "准备金账户手续费不足",
        message_en: "Insufficient fee funds in the reserve account",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40012",
        category_en: "Order error",
        message_zh: "不支持信用卡",
        message_en: "Credit cards not supported",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40013",
        category_en: "Order error",
        message_zh: "商品录入失败",
        message_en: "Goods entry failed",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40014",
        category_en: "Order error",
        message_zh: "账户余额不足",
        message_en: "Insufficient account balance",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40015",
        category_en: "Order error",
        message_zh: "交易规则限制",
        message_en: "Blocked by transaction rules",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40016",
        category_en: "Order error",
        message_zh: "手续费大于金额",
        message_en: "Fee greater than amount",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40017",
        category_en: "Order error",
        message_zh: "订单已经存在",
        message_en: "Order already exists",
        class: Class::Exists,
        proves: Proves::NumberUsed,
    },
    ErrorCodeInfo {
        code: "40018",
        category_en: "Order error",
        message_zh: "订单类型错误",
        message_en: "Wrong order type",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40019",
        category_en: "Order error",
        message_zh: "订单状态错误",
        message_en: "Wrong order status",
        class: Class::State,
        proves: Proves::NumberUsedByConfirmation,
    },
    ErrorCodeInfo {
        code: "40020",
        category_en: "Order error",
        message_zh: "订单金额错误",
        message_en: "Wrong order amount",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40021",
        category_en: "Order error",
        message_zh: "强实名认证错误",
        message_en: "Strong real-name verification error",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40022",
        category_en: "Order error",
        message_zh: "订单和用户不匹配",
        message_en: "Order and user do not match",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40023",
        category_en: "Order error",
        message_zh: "标的超额",
        message_en: "Target over-subscribed (exceeds target amount)",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40024",
        category_en: "Order error",
        message_zh: "标的商品不存在",
        message_en: "Target goods does not exist",
        class: Class::Missing,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40025",
        category_en: "Order error",
        message_zh: "应用的支付通道配置不存在",
        message_en: "Application payment channel configuration missing",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40026",
        category_en: "Order error",
        message_zh: "没有支付权限",
        message_en: "No payment permission",
        class: Class::Setup,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40027",
        category_en: "Order error",
        message_zh: "没有设置提现支付方式",
        message_en: "No withdrawal payment method configured",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40028",
        category_en: "Order error",
        message_zh: "确认方式类型错误",
        message_en: "Wrong confirmation (validate) type",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40029",
        category_en: "Order error",
        message_zh: "投资金额小于最小起投金额",
        message_en: "Investment below the minimum investment amount",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40030",
        category_en: "Order error",
        message_zh: "未笔可投金额将小于最小起投金额",
        message_en: "Remaining investable amount would fall below the minimum investment (未笔 is apparently a typo for 末笔 'last tranche')",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40031",
        category_en: "Order error",
        message_zh: "手续费未设置",
        message_en: "Fee not configured",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "40032",
        category_en: "Order error",
        message_zh: "通道银行未设置",
        message_en: "Channel bank not configured",
        class: Class::State,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "50001",
        category_en: "General error",
        message_zh: "验证码错误",
        message_en: "Wrong verification code",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "50002",
        category_en: "General error",
        message_zh: "不支持的证件类型",
        message_en: "Unsupported ID type",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "50003",
        category_en: "General error",
        message_zh: "开始时间不能大于结束时间",
        message_en: "Start time must not be after end time",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "50004",
        category_en: "General error",
        message_zh: "不支持的请求来源（如手机、PC）",
        message_en: "Unsupported request source (e.g. mobile, PC)",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "50005",
        category_en: "General error",
        message_zh: "银行代码错误",
        message_en: "Wrong bank code",
        class: Class::Invalid,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "51000",
        category_en: "General error",
        message_zh: "加密失败",
        message_en: "Encryption failed",
        class: Class::Keys,
        proves: Proves::Nothing,
    },
    ErrorCodeInfo {
        code: "51001",
        category_en: "General error",
        message_zh: "解密失败",
        message_en: "Decryption failed",
        class: Class::Keys,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "51002",
        category_en: "General error",
        message_zh: "签名失败",
        message_en: "Signing failed",
        class: Class::Keys,
        proves: Proves::Nothing,
    },
    ErrorCodeInfo {
        code: "51003",
        category_en: "General error",
        message_zh: "签名验证失败",
        message_en: "Signature verification failed",
        class: Class::Keys,
        proves: Proves::Refusal,
    },
    ErrorCodeInfo {
        code: "9000",
        category_en: "Other",
        message_zh: "其他错误",
        message_en: "Other error",
        class: Class::ProviderFault,
        proves: Proves::Nothing,
    },
    ErrorCodeInfo {
        code: "9100",
        category_en: "Other",
        message_zh: "未知错误",
        message_en: "Unknown error",
        class: Class::ProviderFault,
        proves: Proves::Nothing,
    },
];
