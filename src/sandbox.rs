//! A simulator of the provider: an HTTP server at `/service/soa` that checks and answers like the real one.
//!
//! It is reached over HTTP only, by the gateway and by tests alike
//! (invariant 7). Each request goes through the same gate as at the
//! provider: lenient form parsing (GET or POST, any order, any Content-Type),
//! the sysid, the 10-minute timestamp window (UTC+8), the merchant's
//! signature, then dispatch by service and method to a handler that keeps
//! state in memory. Answers are signed with the provider's key; fields the
//! catalogue marks as encrypted are decrypted on the way in and encrypted on
//! the way out. Refusals carry section 7 error codes.

mod member;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::provider::calls::Call;
use crate::provider::client::transform_fields;
use crate::provider::crypto::{PartyKeys, Protocol};
use crate::provider::errors::{self, code};
use crate::provider::wire::{self, RequestBody, ResponseEnvelope, SignedRequest};

pub use state::SandboxState;

/// How the sandbox behaves.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The merchant's system number; requests for another sysid are refused.
    pub sysid: String,
    /// The provider's side of the keys: `own` signs answers, `peer` is the
    /// merchant's public key that verifies requests.
    pub keys: PartyKeys,
    /// The SMS code every verification accepts (the provider's test
    /// environment uses 9999).
    pub verification_code: String,
}

impl SandboxConfig {
    /// The default verification code of the provider's test environment.
    pub const DEFAULT_VERIFICATION_CODE: &'static str = "9999";
}

/// A refusal: a section 7 code and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub code: &'static str,
    pub detail: String,
}

impl Reject {
    /// A refusal with `code` and a detail naming the field or rule.
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Reject {
            code,
            detail: detail.into(),
        }
    }

    /// The provider's message for the code, with the detail appended.
    fn message(&self) -> String {
        let base = errors::lookup(self.code).map_or("未知错误", |e| e.message_zh);
        if self.detail.is_empty() {
            base.to_owned()
        } else {
            format!("{base}: {}", self.detail)
        }
    }
}

struct Shared {
    config: SandboxConfig,
    state: Mutex<SandboxState>,
}

/// A sandbox serving on a socket; dropping it does not stop it, [`RunningSandbox::stop`] does.
pub struct RunningSandbox {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningSandbox {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The SOA endpoint URL.
    pub fn soa_url(&self) -> String {
        format!("http://{}/service/soa", self.addr)
    }

    /// Stops accepting, finishes in-flight requests, and waits for the server to end.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Waits until the server ends (on its own, or after `stop` from elsewhere).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Binds `listen` (port 0 picks a free port) and serves until stopped.
pub async fn start(config: SandboxConfig, listen: SocketAddr) -> std::io::Result<RunningSandbox> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        config,
        state: Mutex::new(SandboxState::default()),
    });
    let app = Router::new().route("/service/soa", any(soa)).with_state(shared);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    Ok(RunningSandbox {
        addr,
        shutdown: Some(tx),
        task,
    })
}

/// `/service/soa`: parameters from the body, or from the query string when the body has none.
async fn soa(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let form: Vec<u8> = if body.iter().any(|b| !b.is_ascii_whitespace()) {
        body.to_vec()
    } else {
        query.unwrap_or_default().into_bytes()
    };
    let answer = tokio::task::spawn_blocking(move || handle(&shared, &form)).await;
    match answer {
        Ok(text) => {
            let mut response = (StatusCode::OK, text).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json;charset=UTF-8"),
            );
            response
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "sandbox handler failed").into_response(),
    }
}

/// Runs one request through the gate and the handler; returns the JSON answer.
fn handle(shared: &Shared, form: &[u8]) -> String {
    let keys = &shared.config.keys;
    match accept(shared, form) {
        Ok(value) => {
            let signed_value = value.to_string();
            match keys.sign(&signed_value) {
                Ok(sign) => ResponseEnvelope::ok_body(&signed_value, &sign),
                Err(e) => error_answer(keys, &Reject::new("51002", e.to_string())),
            }
        }
        Err(reject) => {
            // Details name fields and rules, never their values (no PII in logs).
            tracing::info!(code = reject.code, detail = %reject.detail, "sandbox refused a request");
            error_answer(keys, &reject)
        }
    }
}

/// v1 error answers go unsigned, as the provider's often do; v2 signs
/// `errorCode=...&message=...`.
fn error_answer(keys: &PartyKeys, reject: &Reject) -> String {
    let message = reject.message();
    match keys.protocol {
        Protocol::V1 => ResponseEnvelope::error_body(reject.code, &message, None),
        Protocol::V2 => {
            let value = wire::error_signed_value(reject.code, &message);
            match keys.sign(&value) {
                Ok(sign) => ResponseEnvelope::error_body(reject.code, &message, Some((&value, &sign))),
                Err(_) => ResponseEnvelope::error_body(reject.code, &message, None),
            }
        }
    }
}

fn accept(shared: &Shared, form: &[u8]) -> Result<Value, Reject> {
    let config = &shared.config;
    let request = SignedRequest::from_form(form).map_err(|e| Reject::new(code::PARAMETER_EMPTY, e.to_string()))?;
    if request.sysid != config.sysid {
        return Err(Reject::new("20000", format!("unknown sysid {}", request.sysid)));
    }
    if request.v != config.keys.protocol.version() {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            format!(
                "v={} but this application uses v={}",
                request.v,
                config.keys.protocol.version()
            ),
        ));
    }
    let now = OffsetDateTime::now_utc();
    if !wire::timestamp_is_fresh(&request.timestamp, now) {
        return Err(Reject::new(
            code::PARAMETER_ERROR,
            format!(
                "timestamp {:?} is not within 10 minutes of the server time {} (yyyy-MM-dd HH:mm:ss, UTC+8)",
                request.timestamp,
                wire::format_timestamp(now)
            ),
        ));
    }
    config
        .keys
        .verify(&request.signing_string(), &request.sign)
        .map_err(|e| {
            Reject::new(
                code::SIGNATURE_INVALID,
                format!("{e}; signed string must be sysid + req + timestamp exactly as sent"),
            )
        })?;
    let body = RequestBody::parse(&request.req).map_err(|e| Reject::new(code::PARAMETER_ERROR, e.to_string()))?;
    let call = Call::backend(&body.service, &body.method).ok_or_else(|| {
        Reject::new(
            code::PARAMETER_ERROR,
            format!("unknown service/method {}.{}", body.service, body.method),
        )
    })?;
    let spec = call.spec();
    tracing::info!(
        section = spec.section,
        service = spec.service,
        method = spec.method,
        "sandbox call"
    );
    let mut param = Value::Object(body.param);
    transform_fields(&mut param, spec.encrypted_request, |field, cipher| {
        config
            .keys
            .decrypt_field(cipher)
            .map_err(|e| Reject::new(code::DECRYPTION_FAILED, format!("{field}: {e}")))
    })?;
    let mut result = {
        let mut state = shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        dispatch(&mut state, config, call, &param)?
    };
    transform_fields(&mut result, spec.encrypted_response, |field, clear| {
        config
            .keys
            .encrypt_field(clear)
            .map_err(|e| Reject::new("51000", format!("{field}: {e}")))
    })?;
    Ok(result)
}

fn dispatch(state: &mut SandboxState, config: &SandboxConfig, call: Call, param: &Value) -> Result<Value, Reject> {
    let p = Params(param);
    match call {
        Call::CreateMember => member::create_member(state, &p),
        Call::SendVerificationCode => member::send_verification_code(state, config, &p),
        Call::BindPhone => member::bind_phone(state, &p),
        Call::SetRealName => member::set_real_name(state, &p),
        Call::GetMemberInfo => member::get_member_info(state, &p),
        other => {
            let s = other.spec();
            Err(Reject::new(
                "20003",
                format!("{} {}.{} is not simulated yet", s.section, s.service, s.method),
            ))
        }
    }
}

/// Typed access to `req.param` with the provider's refusals for missing or malformed fields.
pub struct Params<'a>(&'a Value);

impl Params<'_> {
    /// A required non-empty string.
    pub fn str(&self, name: &str) -> Result<String, Reject> {
        match self.0.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(Value::String(_)) | Some(Value::Null) | None => {
                Err(Reject::new(code::PARAMETER_EMPTY, format!("{name} is required")))
            }
            Some(_) => Err(Reject::new(code::PARAMETER_ERROR, format!("{name} must be a string"))),
        }
    }

    /// A required integer (a number, or a numeric string as some SDKs send).
    pub fn int(&self, name: &str) -> Result<i64, Reject> {
        match self.opt_int(name)? {
            Some(v) => Ok(v),
            None => Err(Reject::new(code::PARAMETER_EMPTY, format!("{name} is required"))),
        }
    }

    /// An optional integer.
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, Reject> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| Reject::new(code::PARAMETER_ERROR, format!("{name} must be an integer"))),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Reject::new(code::PARAMETER_ERROR, format!("{name} must be an integer"))),
            Some(_) => Err(Reject::new(code::PARAMETER_ERROR, format!("{name} must be an integer"))),
        }
    }

    /// An optional boolean (`true`/`false` or their text).
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, Reject> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(Reject::new(
                code::PARAMETER_ERROR,
                format!("{name} must be true or false"),
            )),
        }
    }
}

#[cfg(test)]
mod tests;
