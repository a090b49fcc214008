//! The provider's error codes (spec section 7) as data: code, category and message in Chinese and English.
//!
//! Generated once from `shared/spec/dictionaries.json` (checked by
//! `tests/call_catalogue.rs`). The gRPC status mapping and the sandbox both
//! read this table; neither spells a message of its own.

/// One row of section 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCodeInfo {
    pub code: &'static str,
    pub category_en: &'static str,
    pub message_zh: &'static str,
    pub message_en: &'static str,
}

/// Looks a code up; `None` for a code the spec does not list.
pub fn lookup(code: &str) -> Option<&'static ErrorCodeInfo> {
    ERROR_CODES.iter().find(|e| e.code == code)
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
}

/// Every code of section 7, in spec order.
pub const ERROR_CODES: &[ErrorCodeInfo] = &[
    ErrorCodeInfo {
        code: "10000",
        category_en: "System error",
        message_zh: "参数错误",
        message_en: "Parameter error",
    },
    ErrorCodeInfo {
        code: "10001",
        category_en: "System error",
        message_zh: "参数不能为空",
        message_en: "Parameter must not be empty",
    },
    ErrorCodeInfo {
        code: "20000",
        category_en: "Application error",
        message_zh: "应用不存在",
        message_en: "Application does not exist",
    },
    ErrorCodeInfo {
        code: "20001",
        category_en: "Application error",
        message_zh: "应用没有开通 B2C 模式",
        message_en: "Application has not enabled B2C mode",
    },
    ErrorCodeInfo {
        code: "20002",
        category_en: "Application error",
        message_zh: "应用没有开通跨应用转账",
        message_en: "Application has not enabled cross-application transfer",
    },
    ErrorCodeInfo {
        code: "20003",
        category_en: "Application error",
        message_zh: "应用没有权限使用此接口",
        message_en: "Application has no permission for this interface",
    },
    ErrorCodeInfo {
        code: "20004",
        category_en: "Application error",
        message_zh: "用户没有开通密码确认支付",
        message_en: "Password-confirmed payment not enabled",
    },
    ErrorCodeInfo {
        code: "20005",
        category_en: "Application error",
        message_zh: "用户没有开通三要素绑卡",
        message_en: "Three-element card binding not enabled",
    },
    ErrorCodeInfo {
        code: "30000",
        category_en: "User error",
        message_zh: "用户已经存在",
        message_en: "User already exists",
    },
    ErrorCodeInfo {
        code: "30001",
        category_en: "User error",
        message_zh: "用户不存在",
        message_en: "User does not exist",
    },
    ErrorCodeInfo {
        code: "30002",
        category_en: "User error",
        message_zh: "用户已经被锁",
        message_en: "User is locked",
    },
    ErrorCodeInfo {
        code: "30003",
        category_en: "User error",
        message_zh: "用户已经激活",
        message_en: "User already activated",
    },
    ErrorCodeInfo {
        code: "30006",
        category_en: "User error",
        message_zh: "用户类型不正确",
        message_en: "Incorrect user (member) type",
    },
    ErrorCodeInfo {
        code: "30007",
        category_en: "User error",
        message_zh: "用户已经实名认证",
        message_en: "User already real-name verified",
    },
    ErrorCodeInfo {
        code: "30008",
        category_en: "User error",
        message_zh: "用户还未实名认证",
        message_en: "User not yet real-name verified",
    },
    ErrorCodeInfo {
        code: "30009",
        category_en: "User error",
        message_zh: "验证实名信息失败",
        message_en: "Real-name information verification failed",
    },
    ErrorCodeInfo {
        code: "30012",
        category_en: "User error",
        message_zh: "身份证验证失败",
        message_en: "ID card verification failed",
    },
    ErrorCodeInfo {
        code: "30014",
        category_en: "User error",
        message_zh: "绑定银行卡失败",
        message_en: "Bank card binding failed",
    },
    ErrorCodeInfo {
        code: "30015",
        category_en: "User error",
        message_zh: "解绑银行卡失败",
        message_en: "Bank card unbinding failed",
    },
    ErrorCodeInfo {
        code: "30016",
        category_en: "User error",
        message_zh: "银行卡绑定记录不存在",
        message_en: "Bank card binding record does not exist",
    },
    ErrorCodeInfo {
        code: "30017",
        category_en: "User error",
        message_zh: "该银行卡已绑定",
        message_en: "This bank card is already bound",
    },
    ErrorCodeInfo {
        code: "30018",
        category_en: "User error",
        message_zh: "账户集错误",
        message_en: "Account set error",
    },
    ErrorCodeInfo {
        code: "30019",
        category_en: "User error",
        message_zh: "账户集不存在",
        message_en: "Account set does not exist",
    },
    ErrorCodeInfo {
        code: "30021",
        category_en: "User error",
        message_zh: "未绑定手机",
        message_en: "Phone not bound",
    },
    ErrorCodeInfo {
        code: "30022",
        category_en: "User error",
        message_zh: "用户不可用",
        message_en: "User unavailable",
    },
    ErrorCodeInfo {
        code: "30023",
        category_en: "User error",
        message_zh: "企业会员已审核",
        message_en: "Company member already audited",
    },
    ErrorCodeInfo {
        code: "30024",
        category_en: "User error",
        message_zh: "已绑定手机",
        message_en: "Phone already bound",
    },
    ErrorCodeInfo {
        code: "30025",
        category_en: "User error",
        message_zh: "安全卡必需是借记卡",
        message_en: "Safe card must be a debit card",
    },
    ErrorCodeInfo {
        code: "30026",
        category_en: "User error",
        message_zh: "安全卡已存在",
        message_en: "Safe card already exists",
    },
    ErrorCodeInfo {
        code: "30027",
        category_en: "User error",
        message_zh: "安全卡不可解绑",
        message_en: "Safe card cannot be unbound",
    },
    ErrorCodeInfo {
        code: "30028",
        category_en: "User error",
        message_zh: "设置安全卡失败",
        message_en: "Setting the safe card failed",
    },
    ErrorCodeInfo {
        code: "30029",
        category_en: "User error",
        message_zh: "未设置安全卡不能提现",
        message_en: "Cannot withdraw without a safe card",
    },
    ErrorCodeInfo {
        code: "30030",
        category_en: "User error",
        message_zh: "未设置企业信息",
        message_en: "Company information not set",
    },
    ErrorCodeInfo {
        code: "30031",
        category_en: "User error",
        message_zh: "支付密码已设置",
        message_en: "Payment password already set",
    },
    ErrorCodeInfo {
        code: "30032",
        category_en: "User error",
        message_zh: "支付密码未设置",
        message_en: "Payment password not set",
    },
    ErrorCodeInfo {
        code: "30033",
        category_en: "User error",
        message_zh: "支付密码错误超限制",
        message_en: "Payment password error limit exceeded",
    },
    ErrorCodeInfo {
        code: "30034",
        category_en: "User error",
        message_zh: "未进行实名认证",
        message_en: "Real-name verification not done",
    },
    ErrorCodeInfo {
        code: "30035",
        category_en: "User error",
        message_zh: "已进行实名认证",
        message_en: "Real-name verification already done",
    },
    ErrorCodeInfo {
        code: "40000",
        category_en: "Order error",
        message_zh: "订单不存在",
        message_en: "Order does not exist",
    },
    ErrorCodeInfo {
        code: "40001",
        category_en: "Order error",
        message_zh: "订单已经关闭",
        message_en: "Order already closed",
    },
    ErrorCodeInfo {
        code: "40002",
        category_en: "Order error",
        message_zh: "订单错误",
        message_en: "Order error",
    },
    ErrorCodeInfo {
        code: "40003",
        category_en: "Order error",
        message_zh: "订单已过期",
        message_en: "Order expired",
    },
    ErrorCodeInfo {
        code: "40004",
        category_en: "Order error",
        message_zh: "订单不是未支付状态",
        message_en: "Order is not in unpaid state",
    },
    ErrorCodeInfo {
        code: "40005",
        category_en: "Order error",
        message_zh: "订单金额和支付金额不一致",
        message_en: "Order amount and payment amount differ",
    },
    ErrorCodeInfo {
        code: "40006",
        category_en: "Order error",
        message_zh: "支付失败",
        message_en: "Payment failed",
    },
    ErrorCodeInfo {
        code: "40007",
        category_en: "Order error",
        message_zh: "支付超时",
        message_en: "Payment timed out",
    },
    ErrorCodeInfo {
        code: "40008",
        category_en: "Order error",
        message_zh: "快捷和网关不可同时使用",
        message_en: "Quick pay and gateway cannot be used together",
    },
    ErrorCodeInfo {
        code: "40009",
        category_en: "Order error",
        message_zh: "没有可用的支付通道",
        message_en: "No payment channel available",
    },
    ErrorCodeInfo {
        code: "40010",
        category_en: "Order error",
        message_zh: "交易类型不存在",
        message_en: "Transaction type does not exist",
    },
    ErrorCodeInfo {
        code: "40011",
        category_en: "Order error",
        message_zh: "准备金账户手续费不足",
        message_en: "Insufficient fee funds in the reserve account",
    },
    ErrorCodeInfo {
        code: "40012",
        category_en: "Order error",
        message_zh: "不支持信用卡",
        message_en: "Credit cards not supported",
    },
    ErrorCodeInfo {
        code: "40013",
        category_en: "Order error",
        message_zh: "商品录入失败",
        message_en: "Goods entry failed",
    },
    ErrorCodeInfo {
        code: "40014",
        category_en: "Order error",
        message_zh: "账户余额不足",
        message_en: "Insufficient account balance",
    },
    ErrorCodeInfo {
        code: "40015",
        category_en: "Order error",
        message_zh: "交易规则限制",
        message_en: "Blocked by transaction rules",
    },
    ErrorCodeInfo {
        code: "40016",
        category_en: "Order error",
        message_zh: "手续费大于金额",
        message_en: "Fee greater than amount",
    },
    ErrorCodeInfo {
        code: "40017",
        category_en: "Order error",
        message_zh: "订单已经存在",
        message_en: "Order already exists",
    },
    ErrorCodeInfo {
        code: "40018",
        category_en: "Order error",
        message_zh: "订单类型错误",
        message_en: "Wrong order type",
    },
    ErrorCodeInfo {
        code: "40019",
        category_en: "Order error",
        message_zh: "订单状态错误",
        message_en: "Wrong order status",
    },
    ErrorCodeInfo {
        code: "40020",
        category_en: "Order error",
        message_zh: "订单金额错误",
        message_en: "Wrong order amount",
    },
    ErrorCodeInfo {
        code: "40021",
        category_en: "Order error",
        message_zh: "强实名认证错误",
        message_en: "Strong real-name verification error",
    },
    ErrorCodeInfo {
        code: "40022",
        category_en: "Order error",
        message_zh: "订单和用户不匹配",
        message_en: "Order and user do not match",
    },
    ErrorCodeInfo {
        code: "40023",
        category_en: "Order error",
        message_zh: "标的超额",
        message_en: "Target over-subscribed (exceeds target amount)",
    },
    ErrorCodeInfo {
        code: "40024",
        category_en: "Order error",
        message_zh: "标的商品不存在",
        message_en: "Target goods does not exist",
    },
    ErrorCodeInfo {
        code: "40025",
        category_en: "Order error",
        message_zh: "应用的支付通道配置不存在",
        message_en: "Application payment channel configuration missing",
    },
    ErrorCodeInfo {
        code: "40026",
        category_en: "Order error",
        message_zh: "没有支付权限",
        message_en: "No payment permission",
    },
    ErrorCodeInfo {
        code: "40027",
        category_en: "Order error",
        message_zh: "没有设置提现支付方式",
        message_en: "No withdrawal payment method configured",
    },
    ErrorCodeInfo {
        code: "40028",
        category_en: "Order error",
        message_zh: "确认方式类型错误",
        message_en: "Wrong confirmation (validate) type",
    },
    ErrorCodeInfo {
        code: "40029",
        category_en: "Order error",
        message_zh: "投资金额小于最小起投金额",
        message_en: "Investment below the minimum investment amount",
    },
    ErrorCodeInfo {
        code: "40030",
        category_en: "Order error",
        message_zh: "未笔可投金额将小于最小起投金额",
        message_en: "Remaining investable amount would fall below the minimum investment (未笔 is apparently a typo for 末笔 'last tranche')",
    },
    ErrorCodeInfo {
        code: "40031",
        category_en: "Order error",
        message_zh: "手续费未设置",
        message_en: "Fee not configured",
    },
    ErrorCodeInfo {
        code: "40032",
        category_en: "Order error",
        message_zh: "通道银行未设置",
        message_en: "Channel bank not configured",
    },
    ErrorCodeInfo {
        code: "50001",
        category_en: "General error",
        message_zh: "验证码错误",
        message_en: "Wrong verification code",
    },
    ErrorCodeInfo {
        code: "50002",
        category_en: "General error",
        message_zh: "不支持的证件类型",
        message_en: "Unsupported ID type",
    },
    ErrorCodeInfo {
        code: "50003",
        category_en: "General error",
        message_zh: "开始时间不能大于结束时间",
        message_en: "Start time must not be after end time",
    },
    ErrorCodeInfo {
        code: "50004",
        category_en: "General error",
        message_zh: "不支持的请求来源（如手机、PC）",
        message_en: "Unsupported request source (e.g. mobile, PC)",
    },
    ErrorCodeInfo {
        code: "50005",
        category_en: "General error",
        message_zh: "银行代码错误",
        message_en: "Wrong bank code",
    },
    ErrorCodeInfo {
        code: "51000",
        category_en: "General error",
        message_zh: "加密失败",
        message_en: "Encryption failed",
    },
    ErrorCodeInfo {
        code: "51001",
        category_en: "General error",
        message_zh: "解密失败",
        message_en: "Decryption failed",
    },
    ErrorCodeInfo {
        code: "51002",
        category_en: "General error",
        message_zh: "签名失败",
        message_en: "Signing failed",
    },
    ErrorCodeInfo {
        code: "51003",
        category_en: "General error",
        message_zh: "签名验证失败",
        message_en: "Signature verification failed",
    },
    ErrorCodeInfo {
        code: "9000",
        category_en: "Other",
        message_zh: "其他错误",
        message_en: "Other error",
    },
    ErrorCodeInfo {
        code: "9100",
        category_en: "Other",
        message_zh: "未知错误",
        message_en: "Unknown error",
    },
];
