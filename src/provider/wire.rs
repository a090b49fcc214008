//! The provider's envelope: the signed request form, the signed response, the notification form, China time.
//!
//! Everything here is pure (no I/O, no keys): it builds and parses the exact
//! strings that are signed and verified, so that the signing input is always
//! the text that travels (invariant 2). Parsers are lenient where real
//! traffic varies (see `shared/design/PROTOCOL.md`) and never panic.

use serde_json::Value;
use serde_json::value::RawValue;
use time::format_description::BorrowedFormatItem;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// China Standard Time: the provider's clock, whatever the host's zone.
pub const CHINA: UtcOffset = offset!(+8);

/// How far a request or notification timestamp may be from the receiver's clock (spec 3.1).
pub const TIMESTAMP_WINDOW: time::Duration = time::Duration::minutes(10);

const TIMESTAMP_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// `yyyy-MM-dd HH:mm:ss` in UTC+8.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    at.to_offset(CHINA).format(TIMESTAMP_FORMAT).unwrap_or_default()
}

/// Parses `yyyy-MM-dd HH:mm:ss` as UTC+8 (also without the space, as some tables print it).
pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    let owned;
    let normal = if text.len() == 18 && text.as_bytes().get(10).is_some_and(u8::is_ascii_digit) {
        owned = format!("{} {}", &text[..10], &text[10..]);
        owned.as_str()
    } else {
        text
    };
    PrimitiveDateTime::parse(normal, TIMESTAMP_FORMAT)
        .ok()
        .map(|t| t.assume_offset(CHINA))
}

/// Whether `timestamp` is within [`TIMESTAMP_WINDOW`] of `now`.
pub fn timestamp_is_fresh(timestamp: &str, now: OffsetDateTime) -> bool {
    parse_timestamp(timestamp).is_some_and(|t| (t - now).abs() <= TIMESTAMP_WINDOW)
}

/// Why a message from the other party could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("field {field} is malformed: {reason}")]
    Malformed { field: &'static str, reason: String },
}

/// The `req` JSON text `{"service","method","param"}`, serialised once: these
/// exact bytes are signed and sent.
pub fn request_json(service: &str, method: &str, param: &Value) -> String {
    serde_json::json!({ "service": service, "method": method, "param": param }).to_string()
}

/// `sysid + req + timestamp`, the string a request is signed over (spec 3.4).
pub fn request_signing_string(sysid: &str, req: &str, timestamp: &str) -> String {
    format!("{sysid}{req}{timestamp}")
}

/// `sysid + rps + timestamp`, the string a notification is signed over.
pub fn notification_signing_string(sysid: &str, rps: &str, timestamp: &str) -> String {
    format!("{sysid}{rps}{timestamp}")
}

/// The signed request, ready to encode as a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub sysid: String,
    pub sign: String,
    pub timestamp: String,
    pub v: String,
    pub req: String,
}

impl SignedRequest {
    /// `application/x-www-form-urlencoded` body: UTF-8, space as `+`, and the
    /// `+ / =` of the Base64 signature percent-encoded.
    pub fn to_form(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("sysid", &self.sysid)
            .append_pair("sign", &self.sign)
            .append_pair("timestamp", &self.timestamp)
            .append_pair("v", &self.v)
            .append_pair("req", &self.req)
            .finish()
    }

    /// Reads a request from its form (body or query string), leniently: any
    /// order, extra parameters ignored, `%xx` in either case, a trailing
    /// `&\r\n`. Each value is decoded exactly once.
    pub fn from_form(form: &[u8]) -> Result<Self, WireError> {
        let fields = Form::parse(form);
        Ok(SignedRequest {
            sysid: fields.required("sysid")?,
            sign: fields.required("sign")?,
            timestamp: fields.required("timestamp")?,
            v: fields.get("v").unwrap_or_else(|| "1.0".to_owned()),
            req: fields.required("req")?,
        })
    }

    /// The string this request's signature covers.
    pub fn signing_string(&self) -> String {
        request_signing_string(&self.sysid, &self.req, &self.timestamp)
    }
}

/// The decoded `req` object.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestBody {
    pub service: String,
    pub method: String,
    pub param: serde_json::Map<String, Value>,
}

impl RequestBody {
    /// Parses the `req` JSON (PHP `\/` and `\uXXXX` escapes included). The
    /// envelope table of two calls capitalises `Req`/`Method`; both spellings are read.
    pub fn parse(req: &str) -> Result<Self, WireError> {
        let value: Value = serde_json::from_str(req).map_err(|e| WireError::NotJson(e.to_string()))?;
        let obj = value.as_object().ok_or(WireError::Malformed {
            field: "req",
            reason: "not a JSON object".into(),
        })?;
        let text = |a: &str, b: &str| {
            obj.get(a)
                .or_else(|| obj.get(b))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let service = text("service", "Service").ok_or(WireError::Missing("req.service"))?;
        let method = text("method", "Method").ok_or(WireError::Missing("req.method"))?;
        let param = match obj.get("param").or_else(|| obj.get("Param")) {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(m)) => m.clone(),
            // Some SDKs send param as a JSON string.
            Some(Value::String(s)) => match serde_json::from_str(s) {
                Ok(Value::Object(m)) => m,
                _ => {
                    return Err(WireError::Malformed {
                        field: "req.param",
                        reason: "not a JSON object".into(),
                    });
                }
            },
            Some(_) => {
                return Err(WireError::Malformed {
                    field: "req.param",
                    reason: "not a JSON object".into(),
                });
            }
        };
        Ok(RequestBody { service, method, param })
    }
}

/// A decoded urlencoded form.
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Decodes once; `+` is a space; malformed `%` sequences stay literal.
    pub fn parse(body: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.trim().to_owned(), v.into_owned()))
                .filter(|(k, _)| !k.is_empty())
                .collect(),
        )
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn required(&self, name: &'static str) -> Result<String, WireError> {
        self.get(name).filter(|v| !v.is_empty()).ok_or(WireError::Missing(name))
    }
}

/// The outer `status` of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseStatus {
    Ok,
    Error,
}

/// A response as received, before its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseEnvelope {
    pub status: ResponseStatus,
    /// The exact `signedValue` text the signature covers.
    pub signed_value: Option<String>,
    pub sign: Option<String>,
    pub error_code: Option<String>,
    pub message: Option<String>,
}

impl ResponseEnvelope {
    /// Parses the JSON body. `signedValue` is normally a JSON string (whose text
    /// is what was signed); an object, as in the spec's 3.3 example, is kept as
    /// its raw JSON text. `errorCode` may be a string or a number.
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        #[derive(serde::Deserialize)]
        struct Raw<'a> {
            status: Option<String>,
            #[serde(rename = "signedValue", borrow)]
            signed_value: Option<&'a RawValue>,
            sign: Option<String>,
            #[serde(rename = "errorCode")]
            error_code: Option<Value>,
            message: Option<Value>,
        }
        let raw: Raw<'_> = serde_json::from_slice(body).map_err(|e| WireError::NotJson(e.to_string()))?;
        let status = match raw.status.as_deref().map(str::trim) {
            Some(s) if s.eq_ignore_ascii_case("ok") => ResponseStatus::Ok,
            Some(s) if s.eq_ignore_ascii_case("error") => ResponseStatus::Error,
            Some(other) => {
                return Err(WireError::Malformed {
                    field: "status",
                    reason: format!("unknown status {other:?}"),
                });
            }
            None => return Err(WireError::Missing("status")),
        };
        let signed_value = match raw.signed_value {
            None => None,
            Some(rv) if rv.get() == "null" => None,
            Some(rv) => Some(match serde_json::from_str::<String>(rv.get()) {
                Ok(s) => s,
                Err(_) => rv.get().to_owned(),
            }),
        };
        let scalar = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        Ok(ResponseEnvelope {
            status,
            signed_value,
            sign: raw.sign.filter(|s| !s.is_empty()),
            error_code: scalar(raw.error_code),
            message: scalar(raw.message),
        })
    }

    /// A success response body.
    pub fn ok_body(signed_value: &str, sign: &str) -> String {
        serde_json::json!({ "status": "OK", "signedValue": signed_value, "sign": sign }).to_string()
    }

    /// An error response body; `signed` carries `(signedValue, sign)` when the
    /// error is signed (always in v2).
    pub fn error_body(code: &str, message: &str, signed: Option<(&str, &str)>) -> String {
        let mut body = serde_json::json!({ "status": "error", "errorCode": code, "message": message });
        if let Some((value, sign)) = signed {
            body["signedValue"] = Value::String(value.to_owned());
            body["sign"] = Value::String(sign.to_owned());
        }
        body.to_string()
    }
}

/// The `signedValue` of a v2 error response.
pub fn error_signed_value(code: &str, message: &str) -> String {
    format!("errorCode={code}&message={message}")
}

/// Parses a verified `signedValue` into JSON, unwrapping `{"$PrimitiveReturn$": x}`.
pub fn parse_signed_value(signed_value: &str) -> Result<Value, WireError> {
    let value: Value = serde_json::from_str(signed_value).map_err(|e| WireError::Malformed {
        field: "signedValue",
        reason: format!("not JSON: {e}"),
    })?;
    Ok(match value {
        Value::Object(mut m) if m.len() == 1 && m.contains_key("$PrimitiveReturn$") => {
            m.remove("$PrimitiveReturn$").unwrap_or(Value::Null)
        }
        other => other,
    })
}

/// A notification as received (`sysid, sign, timestamp, v, rps`), before verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationEnvelope {
    pub sysid: String,
    pub sign: String,
    pub timestamp: String,
    pub v: String,
    /// The exact `rps` text the signature covers.
    pub rps: String,
}

impl NotificationEnvelope {
    /// Parses the body as a form whatever its Content-Type says (some
    /// notifications arrive labelled `text/xml`).
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let form = Form::parse(body);
        Ok(NotificationEnvelope {
            sysid: form.required("sysid")?,
            sign: form.required("sign")?,
            timestamp: form.required("timestamp")?,
            v: form.get("v").unwrap_or_else(|| "1.0".to_owned()),
            rps: form.required("rps")?,
        })
    }

    /// The string the notification's signature covers.
    pub fn signing_string(&self) -> String {
        notification_signing_string(&self.sysid, &self.rps, &self.timestamp)
    }

    /// The form body the provider POSTs.
    pub fn to_form(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("sysid", &self.sysid)
            .append_pair("sign", &self.sign)
            .append_pair("timestamp", &self.timestamp)
            .append_pair("v", &self.v)
            .append_pair("rps", &self.rps)
            .finish()
    }
}

/// The decoded `rps` of a notification.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationBody {
    pub service: String,
    pub method: String,
    /// `OK`, `error` or `pending`, as sent; absent in some notifications (4.1.7).
    pub status: Option<String>,
    pub error_code: Option<String>,
    pub message: Option<String>,
    /// The result object; a JSON string holding an object is parsed.
    pub return_value: Value,
}

impl NotificationBody {
    /// What can be picked out of an `rps` that [`parse`](Self::parse)
    /// refuses: the text fields where they are, the rest empty.
    pub fn untyped(rps: &str) -> Self {
        let obj = match serde_json::from_str::<Value>(rps) {
            Ok(Value::Object(obj)) => obj,
            _ => serde_json::Map::new(),
        };
        let text = |k: &str| match obj.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        NotificationBody {
            service: text("service").unwrap_or_default(),
            method: text("method").unwrap_or_default(),
            status: text("status"),
            error_code: text("errorCode"),
            message: text("message"),
            return_value: obj.get("returnValue").cloned().unwrap_or(Value::Null),
        }
    }

    /// Parses `rps`.
    pub fn parse(rps: &str) -> Result<Self, WireError> {
        let value: Value = serde_json::from_str(rps).map_err(|e| WireError::NotJson(e.to_string()))?;
        let obj = value.as_object().ok_or(WireError::Malformed {
            field: "rps",
            reason: "not a JSON object".into(),
        })?;
        let text = |k: &str| match obj.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let return_value = match obj.get("returnValue") {
            Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| WireError::Malformed {
                field: "rps.returnValue",
                reason: format!("string is not JSON: {e}"),
            })?,
            Some(v) => v.clone(),
            None => Value::Null,
        };
        Ok(NotificationBody {
            service: text("service").ok_or(WireError::Missing("rps.service"))?,
            method: text("method").ok_or(WireError::Missing("rps.method"))?,
            status: text("status"),
            error_code: text("errorCode"),
            message: text("message"),
            return_value,
        })
    }
}

#[cfg(test)]
mod tests;
