//! Proto messages to the provider's JSON and back, driven by the descriptors: a field's wire name is its `(yungate.v1.wire_name)` option, else its JSON name.
//!
//! One converter serves all 47 rpcs, so a new field is a line of proto, not
//! code. Rules: an `optional` scalar is sent only when set, a plain scalar
//! always (the spec requires it), an empty string never; enum numbers are
//! the provider's codes, except `ValidateType` (NONE = 3 here, 0 on the
//! wire) and `TradeCode` (a string on the wire). Reading answers is lenient
//! (numbers as strings, booleans as text, objects as JSON strings), and an
//! unknown provider enum code is kept as its number, never mapped to a
//! known value.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value,
};
use serde_json::{Map, Value as Json};

use super::DESCRIPTOR_SET;

/// The API's descriptor pool, decoded once.
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTOR_SET).expect("the descriptor set built by build.rs decodes"))
}

/// The name of `field` in the provider's JSON.
pub fn wire_name(field: &FieldDescriptor) -> String {
    static OPTION: OnceLock<Option<prost_reflect::ExtensionDescriptor>> = OnceLock::new();
    let option = OPTION.get_or_init(|| pool().get_extension_by_name("yungate.v1.wire_name"));
    if let Some(ext) = option {
        let options = field.options();
        if options.has_extension(ext) {
            if let Value::String(name) = options.get_extension(ext).as_ref() {
                return name.clone();
            }
        }
    }
    field.json_name().to_owned()
}

/// A message descriptor by full name (`yungate.v1.X`).
pub fn message(full_name: &str) -> Option<MessageDescriptor> {
    pool().get_message_by_name(full_name)
}

const VALIDATE_TYPE: &str = "yungate.v1.ValidateType";
const VALIDATE_TYPE_NONE: i32 = 3;
const TRADE_CODE: &str = "yungate.v1.TradeCode";

/// The provider JSON of a message: wire names, only the fields that are set.
/// An `optional` string that is set travels even when empty: `payType: ""`
/// means "credit cards allowed" for WECHAT_PUBLIC and CODEPAY_W (5.2 l.2418, 2424).
pub fn to_wire(msg: &DynamicMessage) -> Map<String, Json> {
    let mut out = Map::new();
    for field in msg.descriptor().fields() {
        if field.supports_presence() && !msg.has_field(&field) {
            continue;
        }
        let value = msg.get_field(&field);
        let wire = match value.as_ref() {
            Value::String(s) if s.is_empty() && field.supports_presence() => Some(Json::String(String::new())),
            other => value_to_wire(&field, other),
        };
        if let Some(v) = wire {
            out.insert(wire_name(&field), v);
        }
    }
    out
}

fn value_to_wire(field: &FieldDescriptor, value: &Value) -> Option<Json> {
    match value {
        Value::List(items) if items.is_empty() => None,
        Value::List(items) => Some(Json::Array(
            items.iter().filter_map(|v| single_to_wire(field, v)).collect(),
        )),
        Value::Map(map) if map.is_empty() => None,
        Value::Map(map) => Some(Json::Object(
            map.iter()
                .filter_map(|(k, v)| match (k, v) {
                    (MapKey::String(k), Value::String(v)) => Some((k.clone(), Json::String(v.clone()))),
                    _ => None,
                })
                .collect(),
        )),
        single => single_to_wire(field, single),
    }
}

fn single_to_wire(field: &FieldDescriptor, value: &Value) -> Option<Json> {
    match value {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(Json::String(s.clone())),
        Value::I64(n) => Some(Json::from(*n)),
        Value::I32(n) => Some(Json::from(*n)),
        Value::U64(n) => Some(Json::from(*n)),
        Value::U32(n) => Some(Json::from(*n)),
        Value::Bool(b) => Some(Json::Bool(*b)),
        Value::F64(x) => serde_json::Number::from_f64(*x).map(Json::Number),
        Value::F32(x) => serde_json::Number::from_f64(f64::from(*x)).map(Json::Number),
        Value::EnumNumber(0) => None,
        Value::EnumNumber(n) => {
            let Kind::Enum(e) = field.kind() else {
                return Some(Json::from(*n));
            };
            Some(match e.full_name() {
                VALIDATE_TYPE if *n == VALIDATE_TYPE_NONE => Json::from(0),
                TRADE_CODE => Json::String(n.to_string()),
                _ => Json::from(*n),
            })
        }
        Value::Message(m) => Some(Json::Object(to_wire(m))),
        Value::Bytes(_) | Value::List(_) | Value::Map(_) => None,
    }
}

/// Why a provider answer does not fit its message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("field {field}: {reason}")]
pub struct ShapeError {
    pub field: String,
    pub reason: String,
}

fn shape(field: &FieldDescriptor, reason: impl Into<String>) -> ShapeError {
    ShapeError {
        field: wire_name(field),
        reason: reason.into(),
    }
}

/// Reads provider JSON into a message of `desc`; unknown JSON fields are ignored.
pub fn from_wire(desc: &MessageDescriptor, json: &Json) -> Result<DynamicMessage, ShapeError> {
    let mut msg = DynamicMessage::new(desc.clone());
    let obj = match json {
        Json::Object(o) => o.clone(),
        // Structures sometimes arrive as JSON text.
        Json::String(s) => match serde_json::from_str::<Json>(s) {
            Ok(Json::Object(o)) => o,
            _ => {
                return Err(ShapeError {
                    field: desc.name().to_owned(),
                    reason: "expected a JSON object".into(),
                });
            }
        },
        Json::Null => Map::new(),
        _ => {
            return Err(ShapeError {
                field: desc.name().to_owned(),
                reason: "expected a JSON object".into(),
            });
        }
    };
    if desc.full_name() == "yungate.v1.GetMemberInfoResponse" {
        return member_info(desc, &obj);
    }
    for field in desc.fields() {
        let Some(raw) = obj.get(&wire_name(&field)) else {
            continue;
        };
        if raw.is_null() {
            continue;
        }
        let value = if field.is_map() {
            map_from_wire(&field, raw)?
        } else if field.is_list() {
            let items = match raw {
                Json::Array(a) => a.clone(),
                Json::String(s) => match serde_json::from_str::<Json>(s) {
                    Ok(Json::Array(a)) => a,
                    _ => return Err(shape(&field, "expected a JSON array")),
                },
                other => vec![other.clone()],
            };
            Value::List(
                items
                    .iter()
                    .map(|item| single_from_wire(&field, item))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        } else {
            single_from_wire(&field, raw)?
        };
        msg.set_field(&field, value);
    }
    Ok(msg)
}

/// getMemberInfo's memberInfo is 5.8 or 5.6 depending on memberType.
fn member_info(desc: &MessageDescriptor, obj: &Map<String, Json>) -> Result<DynamicMessage, ShapeError> {
    let mut plain = obj.clone();
    let info = plain.remove("memberInfo").unwrap_or(Json::Null);
    let mut msg = from_wire_fields(desc, &plain)?;
    let company = matches!(obj.get("memberType"), Some(t) if t == 2 || t == "2");
    let field = desc
        .get_field_by_name(if company { "company" } else { "individual" })
        .ok_or_else(|| ShapeError {
            field: "memberInfo".into(),
            reason: "descriptor lacks the member info shapes".into(),
        })?;
    if let Kind::Message(inner) = field.kind() {
        if !info.is_null() {
            msg.set_field(&field, Value::Message(from_wire(&inner, &info)?));
        }
    }
    Ok(msg)
}

fn from_wire_fields(desc: &MessageDescriptor, obj: &Map<String, Json>) -> Result<DynamicMessage, ShapeError> {
    let mut msg = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        if field.containing_oneof().is_some() {
            continue;
        }
        if let Some(raw) = obj.get(&wire_name(&field)).filter(|v| !v.is_null()) {
            msg.set_field(&field, single_from_wire(&field, raw)?);
        }
    }
    Ok(msg)
}

fn map_from_wire(field: &FieldDescriptor, raw: &Json) -> Result<Value, ShapeError> {
    let obj = raw.as_object().ok_or_else(|| shape(field, "expected a JSON object"))?;
    let map: HashMap<MapKey, Value> = obj
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            (MapKey::String(k.clone()), Value::String(text))
        })
        .collect();
    Ok(Value::Map(map))
}

fn int_of(field: &FieldDescriptor, raw: &Json) -> Result<i64, ShapeError> {
    match raw {
        Json::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64))
            .ok_or_else(|| shape(field, format!("{n} is not an integer"))),
        Json::String(s) => s
            .trim()
            .parse()
            .map_err(|_| shape(field, format!("{s:?} is not an integer"))),
        other => Err(shape(field, format!("expected an integer, got {other}"))),
    }
}

fn single_from_wire(field: &FieldDescriptor, raw: &Json) -> Result<Value, ShapeError> {
    Ok(match field.kind() {
        Kind::String => Value::String(match raw {
            Json::String(s) => s.clone(),
            Json::Object(_) | Json::Array(_) => raw.to_string(),
            other => other.to_string(),
        }),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(int_of(field, raw)?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(i32::try_from(int_of(field, raw)?).map_err(|_| shape(field, "out of range"))?)
        }
        Kind::Bool => Value::Bool(match raw {
            Json::Bool(b) => *b,
            Json::String(s) if s == "true" || s == "1" => true,
            Json::String(s) if s == "false" || s == "0" || s.is_empty() => false,
            Json::Number(n) => n.as_i64() != Some(0),
            other => return Err(shape(field, format!("expected a boolean, got {other}"))),
        }),
        Kind::Double | Kind::Float => Value::F64(match raw {
            Json::Number(n) => n.as_f64().unwrap_or_default(),
            Json::String(s) => s
                .trim()
                .parse()
                .map_err(|_| shape(field, format!("{s:?} is not a number")))?,
            other => return Err(shape(field, format!("expected a number, got {other}"))),
        }),
        Kind::Enum(e) => {
            let code = int_of(field, raw)?;
            let number = i32::try_from(code).map_err(|_| shape(field, "enum code out of range"))?;
            Value::EnumNumber(if e.full_name() == VALIDATE_TYPE && number == 0 {
                VALIDATE_TYPE_NONE
            } else {
                number
            })
        }
        Kind::Message(inner) => Value::Message(from_wire(&inner, raw)?),
        other => return Err(shape(field, format!("unsupported kind {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use serde_json::json;

    use super::*;
    use crate::grpc::proto;

    fn dynamic<M: Message>(m: &M, name: &str) -> DynamicMessage {
        DynamicMessage::decode(message(name).unwrap(), m.encode_to_vec().as_slice()).unwrap()
    }

    #[test]
    fn requests_use_wire_names_codes_and_presence() {
        let req = proto::ConsumeApplyRequest {
            payer_id: "p".into(),
            receiver_id: "r".into(),
            biz_order_no: "o".into(),
            amount: 100,
            fee: 0,
            validate_type: Some(proto::ValidateType::None as i32),
            source: proto::Source::Pc as i32,
            order_expire_datetime: Some("2026-11-25 10:00:00".into()),
            pay_method: Some(proto::PayMethod {
                balance: vec![proto::AccountPayment {
                    account_set_no: "100000".into(),
                    amount: 100,
                }],
                ..Default::default()
            }),
            split_rule: vec![proto::SplitRule {
                biz_user_id: "s".into(),
                amount: 10,
                fee: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        let wire = Json::Object(to_wire(&dynamic(&req, "yungate.v1.ConsumeApplyRequest")));
        assert_eq!(wire["recieverId"], "r");
        assert_eq!(wire["ordErexpireDatetime"], "2026-11-25 10:00:00");
        assert_eq!(wire["fee"], 0, "a required scalar is sent even when zero");
        assert_eq!(wire["validateType"], 0, "NONE is 0 on the wire");
        assert_eq!(wire["source"], 2);
        assert_eq!(
            wire["payMethod"],
            json!({"BALANCE": [{"accountSetNo": "100000", "amount": 100}]})
        );
        assert_eq!(wire["splitRule"][0]["bizUserId"], "s");
        assert!(
            wire.get("summary").is_none() && wire.get("goodsName").is_none(),
            "{wire}"
        );
    }

    #[test]
    fn trade_codes_travel_as_strings() {
        let req = proto::SingleAgentPayRequest {
            trade_code: proto::TradeCode::PayPurchase as i32,
            ..Default::default()
        };
        let wire = to_wire(&dynamic(&req, "yungate.v1.SingleAgentPayRequest"));
        assert_eq!(wire["tradeCode"], "4001");
    }

    #[test]
    fn answers_are_read_leniently_and_unknown_codes_kept() {
        let desc = message("yungate.v1.GetMemberInfoResponse").unwrap();
        let msg = from_wire(
            &desc,
            &json!({"bizUserId": "u", "memberType": "3", "memberInfo": "{\"userState\":\"5\",\"isPhoneChecked\":\"true\",\"phone\":13800000000}"}),
        )
        .unwrap();
        let typed: proto::GetMemberInfoResponse = msg.transcode_to().unwrap();
        let Some(proto::get_member_info_response::MemberInfo::Individual(info)) = typed.member_info else {
            panic!("individual expected: {typed:?}");
        };
        assert_eq!(info.user_state, Some(proto::UserState::Locked as i32));
        assert_eq!(info.is_phone_checked, Some(true));
        assert_eq!(info.phone.as_deref(), Some("13800000000"));
        let company = from_wire(
            &desc,
            &json!({"bizUserId": "c", "memberType": 2, "memberInfo": {"companyName": "A", "status": 7}}),
        )
        .unwrap()
        .transcode_to::<proto::GetMemberInfoResponse>()
        .unwrap();
        let Some(proto::get_member_info_response::MemberInfo::Company(c)) = company.member_info else {
            panic!()
        };
        assert_eq!(c.status, 7, "an unknown audit status stays 7, not a known value");
        let detail = message("yungate.v1.GetOrderDetailResponse").unwrap();
        let err = from_wire(&detail, &json!({"orderStatus": "x"})).unwrap_err();
        assert_eq!(err.field, "orderStatus");
        let vt = message("yungate.v1.DepositApplyRequest").unwrap();
        let back = from_wire(&vt, &json!({"validateType": 0})).unwrap();
        assert_eq!(
            back.transcode_to::<proto::DepositApplyRequest>().unwrap().validate_type,
            Some(3)
        );
    }
}

#[cfg(test)]
mod masked_debug {
    use crate::grpc::proto;

    #[test]
    fn messages_with_personal_data_print_masked() {
        let request = proto::SetRealNameRequest {
            biz_user_id: "u1".into(),
            name: "王小二".into(),
            identity_no: "610422198600000000".into(),
            ..Default::default()
        };
        let shown = format!("{request:?}");
        assert_eq!(shown, "SetRealNameRequest { *** }");
        let card = proto::BoundCard {
            bank_card_no: Some("6228480402637874214".into()),
            ..Default::default()
        };
        assert!(!format!("{card:?}").contains("622848"));
        // Messages without personal data keep their derived Debug.
        let plain = proto::QueryBalanceRequest {
            biz_user_id: "u1".into(),
            account_set_no: "100000".into(),
        };
        assert!(format!("{plain:?}").contains("100000"));
    }
}
