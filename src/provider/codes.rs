//! The provider's code tables (spec section 6) as Rust enums, and lenient readers for numbers sent as text.
//!
//! Each table keeps the provider's numbers. A value the table does not know
//! is kept as `Unknown(n)` rather than failing the whole answer, and nothing
//! downstream may treat `Unknown` as success.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Declares a code table: an enum with the provider's numbers, serialised as
/// a JSON number and read from a number or a numeric string.
macro_rules! code_table {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this table does not list.
            Unknown(i64),
        }

        impl $name {
            /// The provider's number.
            pub fn code(self) -> i64 {
                match self {
                    $($name::$variant => $value,)+
                    $name::Unknown(n) => n,
                }
            }

            /// The variant for a provider number.
            pub fn from_code(code: i64) -> Self {
                match code {
                    $($value => $name::$variant,)+
                    n => $name::Unknown(n),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i64(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                lenient_i64(d).map($name::from_code)
            }
        }
    };
}

code_table! {
    /// 6.3 Member type.
    MemberType {
        /// 企业会员.
        Company = 2,
        /// 个人会员.
        Individual = 3,
    }
}

code_table! {
    /// 6.9 Access terminal type.
    Source {
        Mobile = 1,
        Pc = 2,
    }
}

code_table! {
    /// 6.4 ID document type; member calls accept only the resident ID card.
    IdentityType {
        IdCard = 1,
        Passport = 2,
        MilitaryOfficer = 3,
        HomeReturnPermit = 4,
        TaiwanPermit = 5,
        PoliceOfficer = 6,
        Soldier = 7,
        Other = 99,
    }
}

code_table! {
    /// 6.10 Verification code type.
    VerificationCodeType {
        UnbindPhone = 6,
        BindPhone = 9,
    }
}

code_table! {
    /// 6.11 User state.
    UserState {
        Valid = 1,
        AuditFailed = 3,
        Locked = 5,
        PendingAudit = 7,
    }
}

code_table! {
    /// 6.13 Order status (l.2965-2973): what getOrderDetail (4.2.21)
    /// answers, and what the sandbox's orders go through.
    OrderStatus {
        /// 未支付: created, waiting for its confirmation.
        Unpaid = 1,
        /// 交易失败: "交易过程中出现错误".
        Failed = 3,
        /// 交易成功.
        Success = 4,
        /// 交易成功-发生退款: succeeded, then (partly) refunded.
        Refunded = 5,
        /// 关闭: "订单在过期时间内，没有进行确认操作" (never paid).
        Closed = 6,
        /// 进行中: the channel or the bank has not answered yet.
        Pending = 99,
    }
}

impl OrderStatus {
    /// Whether the order's money moved (4 交易成功, 5 交易成功-发生退款).
    pub fn is_success(self) -> bool {
        matches!(self, OrderStatus::Success | OrderStatus::Refunded)
    }

    /// Whether the order ended without moving money (3 交易失败, 6 关闭).
    pub fn is_failure(self) -> bool {
        matches!(self, OrderStatus::Failed | OrderStatus::Closed)
    }

    /// The word of the order calls' `payStatus` (4.2.2-4.2.8: "success",
    /// "pending", "fail"), and "unpaid" for 1 未支付, which those answers
    /// never carry but a recovered order must not pass off as in progress.
    /// A status the table does not list is pending, never success.
    pub fn pay_status(self) -> &'static str {
        match self {
            OrderStatus::Success | OrderStatus::Refunded => "success",
            OrderStatus::Failed | OrderStatus::Closed => "fail",
            OrderStatus::Unpaid => "unpaid",
            OrderStatus::Pending | OrderStatus::Unknown(_) => "pending",
        }
    }

    /// The status an order call's answer states: its `orderStatus` (a
    /// recovered answer), else its `payStatus` word (4.2.2-4.2.8: success,
    /// pending, fail; unpaid in a recovered answer); none when it says neither.
    pub fn of_answer(answer: &serde_json::Value) -> Option<OrderStatus> {
        if let Some(code) = answer.get("orderStatus").and_then(serde_json::Value::as_i64) {
            return Some(OrderStatus::from_code(code));
        }
        match answer.get("payStatus")?.as_str()? {
            "success" => Some(OrderStatus::Success),
            "fail" => Some(OrderStatus::Failed),
            "pending" => Some(OrderStatus::Pending),
            "unpaid" => Some(OrderStatus::Unpaid),
            _ => None,
        }
    }

    /// The spec's name of the status (6.13), for messages.
    pub fn name_zh(self) -> &'static str {
        match self {
            OrderStatus::Unpaid => "未支付",
            OrderStatus::Failed => "交易失败",
            OrderStatus::Success => "交易成功",
            OrderStatus::Refunded => "交易成功-发生退款",
            OrderStatus::Closed => "关闭",
            OrderStatus::Pending => "进行中",
            OrderStatus::Unknown(_) => "未知状态",
        }
    }
}

/// Reads an integer sent as a number or as a numeric string (the spec's own
/// examples send Long fields as strings).
pub fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer or a numeric string")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("integer out of range"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                Ok(v as i64)
            } else {
                Err(E::custom("expected an integer"))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom(format!("{v:?} is not an integer")))
        }
    }
    d.deserialize_any(V)
}

/// Optional variant of [`lenient_i64`]; an empty string reads as absent.
pub fn lenient_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(other) => lenient_i64(other).map(Some).map_err(de::Error::custom),
    }
}

/// Reads a boolean sent as `true`/`false`, `"true"`/`"false"` or `1`/`0`.
pub fn lenient_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Bool(b)) => Ok(Some(b)),
        Some(serde_json::Value::String(s)) => match s.trim() {
            "true" | "TRUE" | "1" => Ok(Some(true)),
            "false" | "FALSE" | "0" => Ok(Some(false)),
            "" => Ok(None),
            other => Err(de::Error::custom(format!("{other:?} is not a boolean"))),
        },
        Some(serde_json::Value::Number(n)) => Ok(Some(n.as_i64() != Some(0))),
        Some(_) => Err(de::Error::custom("expected a boolean")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_read_strings() {
        assert_eq!(serde_json::to_string(&MemberType::Individual).unwrap(), "3");
        assert_eq!(
            serde_json::from_str::<MemberType>("\"2\"").unwrap(),
            MemberType::Company
        );
        assert_eq!(serde_json::from_str::<MemberType>("7").unwrap(), MemberType::Unknown(7));
        assert!(serde_json::from_str::<MemberType>("\"x\"").is_err());
        assert!(serde_json::from_str::<MemberType>("2.5").is_err());
    }

    #[test]
    fn order_statuses_are_success_failure_or_open_and_unknown_is_never_success() {
        // 6.13 (l.2968-2973): 1 未支付, 3 交易失败, 4 交易成功, 5 交易成功-发生退款, 6 关闭, 99 进行中.
        let words: Vec<&str> = [1, 3, 4, 5, 6, 99, 7]
            .into_iter()
            .map(|n| OrderStatus::from_code(n).pay_status())
            .collect();
        assert_eq!(
            words,
            ["unpaid", "fail", "success", "success", "fail", "pending", "pending"]
        );
        assert!(!OrderStatus::Unknown(7).is_success() && !OrderStatus::Unknown(7).is_failure());
        assert_eq!(
            serde_json::from_str::<OrderStatus>("\"4\"").unwrap(),
            OrderStatus::Success
        );
    }
}
