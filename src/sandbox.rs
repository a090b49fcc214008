//! A simulator of the provider: an HTTP server at `/service/soa` that checks and answers like the real one.
//!
//! It is reached over HTTP only, by the gateway and by tests alike
//! (invariant 8). Each request goes through the same gate as at the
//! provider: lenient form parsing (GET or POST, any order, any Content-Type),
//! the sysid, the 10-minute timestamp window (UTC+8), the merchant's
//! signature, then dispatch by service and method to a handler that keeps
//! state in memory. Answers are signed with the provider's key; fields the
//! catalogue marks as encrypted are decrypted on the way in and encrypted on
//! the way out. Refusals carry section 7 error codes.

mod cards;
mod faults;
mod ledger;
mod member;
mod notifier;
mod order;
mod orders;
mod pages;
mod payment;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::provider::calls::{Call, Environment};
use crate::provider::client::transform_fields;
use crate::provider::crypto::{PartyKeys, Protocol};
use crate::provider::errors::{self, code};
use crate::provider::wire::{self, RequestBody, ResponseEnvelope, SignedRequest};

pub use faults::{Faults, NotificationFaults};
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
    /// The merchant's custody account set (2.3's example: 100000).
    pub escrow_account_set: String,
    /// Fen the platform's margin, marketing and custom-A accounts start with
    /// (the sources of platform transfers and coupons).
    pub platform_funds: i64,
    /// Fen in the merchant's reserve fund (4.3.1) before any payout.
    pub reserve_fund: i64,
    /// None: company information passes audit at once (an audit-exempt
    /// platform, no notification). Some(d): the audit ends after `d` (scaled)
    /// and verifyResult (4.1.7) is sent.
    pub company_audit_delay: Option<std::time::Duration>,
    /// Multiplies every sandbox delay (notification retries, audits): 1.0 is
    /// real time, 0.001 runs a day's retry schedule in about 90 seconds.
    pub time_scale: f64,
    /// Seeds generated ids and fault draws; `None` picks a random seed.
    pub seed: Option<u64>,
    /// Faults in force from the start (changeable at `PUT /sandbox/faults`).
    pub faults: Faults,
    /// The URL clients reach the sandbox at, for the URLs it hands out
    /// (reconciliation files, payment links); default `http://` + the bound address.
    pub public_url: Option<String>,
    /// The environment it plays: its pages are served at that layout's
    /// paths only (spec 3.7: `/pwd/...` on the test host, `/yungateway/...`
    /// in production). Default: test.
    pub environment: Environment,
    /// The platform is set to "必须使用安全卡提现" (4.2.3 note 4): an
    /// individual without a safe card cannot withdraw (30029).
    pub require_safe_card: bool,
    /// The channel's fee on inbound payments, in basis points of the
    /// channel part, reported in the reconciliation file (4.3.2 l.2335) and
    /// charged to nobody (default 0).
    pub channel_fee_bp: u32,
}

impl SandboxConfig {
    /// The default verification code of the provider's test environment.
    pub const DEFAULT_VERIFICATION_CODE: &'static str = "9999";

    /// A configuration with the test environment's defaults.
    pub fn new(sysid: impl Into<String>, keys: PartyKeys) -> Self {
        SandboxConfig {
            sysid: sysid.into(),
            keys,
            verification_code: Self::DEFAULT_VERIFICATION_CODE.to_owned(),
            escrow_account_set: "100000".to_owned(),
            platform_funds: 10_000_000_000, // 100 million yuan
            reserve_fund: 10_000_000_000,
            company_audit_delay: None,
            time_scale: 1.0,
            seed: None,
            faults: Faults::default(),
            public_url: None,
            environment: Environment::Test,
            require_safe_card: false,
            channel_fee_bp: 0,
        }
    }

    /// The channel fee of an order's inbound channel parts, in fen (rounded down).
    pub fn channel_fee(&self, order: &order::Order) -> i64 {
        let channel: i128 = order
            .parts
            .iter()
            .filter(|p| p.method.direction == payment::Direction::Inbound)
            .map(|p| i128::from(p.amount))
            .sum();
        i64::try_from(channel * i128::from(self.channel_fee_bp) / 10_000).unwrap_or(i64::MAX)
    }

    /// The largest time scale (a day's schedule in a thousand days).
    pub const MAX_TIME_SCALE: f64 = 1_000.0;

    /// `d` in sandbox time (never panics: an absurd scale saturates).
    /// The sandbox's clock now: real time from `started`, at `1 / time_scale`
    /// times the speed (so that "11:00 the next day" comes in a test's time).
    pub fn clock(&self, started: OffsetDateTime) -> OffsetDateTime {
        let real = OffsetDateTime::now_utc() - started;
        let scale = if self.time_scale.is_finite() && self.time_scale > 0.0 {
            self.time_scale.clamp(1e-9, Self::MAX_TIME_SCALE)
        } else {
            1.0
        };
        let fast = real.as_seconds_f64() / scale;
        started + time::Duration::checked_seconds_f64(fast.min(1e12)).unwrap_or(time::Duration::MAX)
    }

    pub fn scaled(&self, d: std::time::Duration) -> std::time::Duration {
        let scale = if self.time_scale.is_finite() {
            self.time_scale.clamp(0.0, Self::MAX_TIME_SCALE)
        } else {
            1.0
        };
        std::time::Duration::try_from_secs_f64(d.as_secs_f64() * scale).unwrap_or(std::time::Duration::MAX)
    }

    /// The base URL for links the sandbox hands out.
    pub fn public_base_url(&self) -> &str {
        self.public_url
            .as_deref()
            .unwrap_or("http://127.0.0.1")
            .trim_end_matches('/')
    }
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
        let base = errors::shown(self.code).map_or("未知错误", |e| e.message_zh);
        if self.detail.is_empty() {
            base.to_owned()
        } else {
            format!("{base}: {}", self.detail)
        }
    }
}

struct Shared {
    config: SandboxConfig,
    /// Held (read) by every request being processed; `stop` takes it (write)
    /// to wait for requests whose clients hung up.
    processing: Arc<tokio::sync::RwLock<()>>,
    state: Mutex<SandboxState>,
    notifier: notifier::Notifier,
    faults: Mutex<Faults>,
    dice: Mutex<faults::Dice>,
}

impl Shared {
    fn new(config: SandboxConfig) -> Shared {
        let seed = config.seed.unwrap_or_else(|| {
            let mut bytes = [0u8; 8];
            let _ = getrandom::fill(&mut bytes);
            u64::from_le_bytes(bytes)
        });
        let state = SandboxState::new(
            &config.escrow_account_set,
            config.platform_funds,
            config.reserve_fund,
            seed,
        );
        Shared {
            faults: Mutex::new(config.faults.clone()),
            dice: Mutex::new(faults::Dice::new(seed ^ 0x5eed)),
            state: Mutex::new(state),
            notifier: notifier::Notifier::default(),
            processing: Arc::new(tokio::sync::RwLock::new(())),
            config,
        }
    }

    fn faults(&self) -> Faults {
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn chance(&self, rate: f64) -> bool {
        self.dice.lock().unwrap_or_else(|p| p.into_inner()).chance(rate)
    }
}

/// A sandbox serving on a socket; dropping it does not stop it, [`RunningSandbox::stop`] does.
pub struct RunningSandbox {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    /// The notifier loop and its deliveries; dropping the set aborts them.
    background: tokio::task::JoinSet<()>,
    processing: Arc<tokio::sync::RwLock<()>>,
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

    /// Stops accepting, finishes in-flight requests (also those whose
    /// clients hung up), and waits for the server to end.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = self.task.await;
        let _all_done = self.processing.write().await;
        self.background.abort_all();
        served.map_err(std::io::Error::other)?
    }

    /// Waits until the server ends (on its own, or after `stop` from elsewhere).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Binds `listen` (port 0 picks a free port) and serves until stopped.
pub async fn start(mut config: SandboxConfig, listen: SocketAddr) -> std::io::Result<RunningSandbox> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{addr}"));
    }
    let shared = Arc::new(Shared::new(config));
    let processing = Arc::clone(&shared.processing);
    let background = notifier::spawn(Arc::clone(&shared));
    let mut app = Router::new();
    // Each page at the path of the environment played, and nowhere else:
    // a link built for the other environment is a 404, as it would be there.
    for call in Call::ALL {
        if let Some(path) = call.page_path(shared.config.environment) {
            app = app.route(path, any(pages::open));
        }
    }
    let app = app
        .route("/service/soa", any(soa))
        .route("/yungateway/checkfile/{name}", get(check_file))
        .route("/sandbox/orders/{biz_order_no}/complete", post(complete_order))
        .route("/sandbox/notifications", get(notification_log))
        .route("/sandbox/accounts", get(account_list))
        .route("/sandbox/calls", get(call_counts))
        .route("/sandbox/faults", get(get_faults).put(put_faults))
        .route("/sandbox/pages/{token}", post(pages::submit))
        .with_state(shared);
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
        background,
        processing,
    })
}

/// `/service/soa`: parameters from the body, or from the query string when the body has none.
async fn soa(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let form: Vec<u8> = if body.iter().any(|b| !b.is_ascii_whitespace()) {
        body.to_vec()
    } else {
        query.unwrap_or_default().into_bytes()
    };
    let faults = shared.faults();
    let processing = std::time::Duration::from_millis(faults.processing_ms);
    // Like a real server, the sandbox finishes what it started when the
    // client hangs up: the processing is a task of its own.
    let held = Arc::clone(&shared.processing).read_owned().await;
    let answer = tokio::spawn(async move {
        let _held = held;
        if !processing.is_zero() {
            tokio::time::sleep(processing).await;
        }
        tokio::task::spawn_blocking(move || {
            let answer = handle(&shared, &form);
            shared.notifier.wake.notify_one();
            answer
        })
        .await
    })
    .await
    .unwrap_or_else(Err);
    if faults.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms)).await;
    }
    match answer {
        Ok((text, hang)) => {
            if hang {
                // Committed, but the answer comes too late for the client.
                tokio::time::sleep(std::time::Duration::from_millis(faults.hang_ms.unwrap_or(30_000))).await;
            }
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

/// `GET /yungateway/checkfile/{sysid}_{yyyyMMdd}_allinpay.txt`: the reconciliation file (4.3.2).
async fn check_file(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let prefix = format!("{}_", shared.config.sysid);
    let date = name
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix("_allinpay.txt"))
        .and_then(|d| time::Date::parse(d, time::macros::format_description!("[year][month][day]")).ok());
    let Some(date) = date else {
        return (StatusCode::NOT_FOUND, "no such reconciliation file").into_response();
    };
    let faults = shared.faults();
    let body = {
        let state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        if !orders::check_file_ready(&state, &shared.config, &faults, date) {
            return (
                StatusCode::NOT_FOUND,
                "not generated yet: 11:00 China time the next day (4.3.2)",
            )
                .into_response();
        }
        orders::reconciliation_file(&state, &shared.config, &faults.check_file, date)
    };
    ([(header::CONTENT_TYPE, "text/plain;charset=UTF-8")], body).into_response()
}

/// `POST /sandbox/orders/{bizOrderNo}/complete`: the payer paid on their side
/// (scanned the code, paid at the POS or on the bank page); settle the order
/// as the channel's report would.
async fn complete_order(State(shared): State<Arc<Shared>>, Path(biz_order_no): Path<String>) -> Response {
    let faults = shared.faults();
    let result = {
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        orders::complete_by_payer(&mut state, &shared.config, &faults, &biz_order_no)
            .map(|(order, _)| serde_json::json!({ "bizOrderNo": biz_order_no, "orderStatus": order.status.code() }))
    };
    match result {
        Ok(v) => {
            shared.notifier.wake.notify_one();
            (StatusCode::OK, v.to_string()).into_response()
        }
        Err(r) => (
            StatusCode::CONFLICT,
            serde_json::json!({ "errorCode": r.code, "message": r.message() }).to_string(),
        )
            .into_response(),
    }
}

/// `GET /sandbox/notifications`: every delivery attempt so far, oldest first.
async fn notification_log(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        shared.notifier.attempts_json().to_string(),
    )
        .into_response()
}

/// `GET /sandbox/accounts`: every account's balance, the collected pools,
/// and the money received and paid out, for checking the books from outside.
async fn account_list(State(shared): State<Arc<Shared>>) -> Response {
    let body = {
        let state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        state.books.to_json()
    };
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// `GET /sandbox/calls`: per spec section, how many calls succeeded and how many were refused.
async fn call_counts(State(shared): State<Arc<Shared>>) -> Response {
    let body = {
        let state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let map: serde_json::Map<String, Value> = state
            .call_counts
            .iter()
            .map(|(section, (ok, refused))| (section.to_string(), serde_json::json!({ "ok": ok, "refused": refused })))
            .collect();
        Value::Object(map)
    };
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// `GET /sandbox/faults`: the faults in force.
async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    let body = serde_json::to_string(&shared.faults()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `PUT /sandbox/faults`: replaces the faults (an empty object turns them all off).
async fn put_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let parsed: Result<Faults, String> = serde_json::from_slice(&body).map_err(|e| e.to_string());
    match parsed.and_then(|f| f.validate().map(|()| f)) {
        Ok(faults) => {
            tracing::info!(?faults, "sandbox faults changed");
            *shared.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
            get_faults(State(shared)).await
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("invalid faults: {e}")).into_response(),
    }
}

/// Runs one request through the gate and the handler; returns the JSON
/// answer and whether to hang before sending it (an injected timeout).
fn handle(shared: &Shared, form: &[u8]) -> (String, bool) {
    let keys = &shared.config.keys;
    match accept(shared, form) {
        Ok((value, hang)) => {
            let signed_value = value.to_string();
            let faults = shared.faults();
            let text = match keys.sign(&signed_value) {
                Ok(_) if shared.chance(faults.unsigned_rate) => {
                    serde_json::json!({ "status": "OK", "signedValue": signed_value }).to_string()
                }
                Ok(_) if shared.chance(faults.bad_signature_rate) => {
                    let wrong = keys.sign(&format!("{signed_value} ")).unwrap_or_default();
                    ResponseEnvelope::ok_body(&signed_value, &wrong)
                }
                Ok(sign) => ResponseEnvelope::ok_body(&signed_value, &sign),
                Err(e) => error_answer(keys, faults.v1_error_signature, &Reject::new("51002", e.to_string())),
            };
            (text, hang)
        }
        Err(reject) => {
            // Details name fields and rules, never their values (no PII in logs).
            tracing::info!(code = reject.code, detail = %reject.detail, "sandbox refused a request");
            (error_answer(keys, shared.faults().v1_error_signature, &reject), false)
        }
    }
}

/// v1 error answers are signed as the spec's example is (l.228: a `sign`
/// over `"signedValue": "error"`) unless a fault asks for another shape;
/// v2 signs `errorCode=...&message=...`.
fn error_answer(keys: &PartyKeys, v1_signature: faults::V1ErrorSignature, reject: &Reject) -> String {
    let message = reject.message();
    match keys.protocol {
        Protocol::V1 => {
            let bound = wire::error_signed_value(reject.code, &message);
            let signed = match v1_signature {
                faults::V1ErrorSignature::Unsigned => None,
                faults::V1ErrorSignature::SpecExample => keys.sign("error").ok().map(|s| ("error".to_owned(), s)),
                faults::V1ErrorSignature::CodeAndMessage => keys.sign(&bound).ok().map(|s| (bound, s)),
                faults::V1ErrorSignature::BadSignature => keys.sign("error").ok().map(|s| (bound, s)),
            };
            let signed = signed.as_ref().map(|(value, sign)| (value.as_str(), sign.as_str()));
            ResponseEnvelope::error_body(reject.code, &message, signed)
        }
        Protocol::V2 => {
            let value = wire::error_signed_value(reject.code, &message);
            match keys.sign(&value) {
                Ok(sign) => ResponseEnvelope::error_body(reject.code, &message, Some((&value, &sign))),
                Err(_) => ResponseEnvelope::error_body(reject.code, &message, None),
            }
        }
    }
}

/// The checks every signed request passes, backend or page: sysid, version,
/// timestamp window, signature. Returns the decoded `req`.
fn admit(config: &SandboxConfig, request: &SignedRequest) -> Result<RequestBody, Reject> {
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
    RequestBody::parse(&request.req).map_err(|e| Reject::new(code::PARAMETER_ERROR, e.to_string()))
}

/// Decrypts the fields `call` receives encrypted.
fn decrypt_params(config: &SandboxConfig, call: Call, param: serde_json::Map<String, Value>) -> Result<Value, Reject> {
    let mut param = Value::Object(param);
    transform_fields(&mut param, call.spec().encrypted_request, |field, cipher| {
        config
            .keys
            .decrypt_field(cipher)
            .map_err(|e| Reject::new(code::DECRYPTION_FAILED, format!("{field}: {e}")))
    })?;
    Ok(param)
}

fn accept(shared: &Shared, form: &[u8]) -> Result<(Value, bool), Reject> {
    let config = &shared.config;
    let request = SignedRequest::from_form(form).map_err(|e| Reject::new(code::PARAMETER_EMPTY, e.to_string()))?;
    let body = admit(config, &request)?;
    let call = Call::backend(&body.service, &body.method).ok_or_else(|| {
        Reject::new(
            code::PARAMETER_ERROR,
            format!("unknown service/method {}.{}", body.service, body.method),
        )
    })?;
    // 4.2.8 and 4.2.11 share OrderService.pay; only 4.2.11 carries the
    // (encrypted) quick-pay password.
    let call = match call {
        Call::PayBackendSms if body.param.contains_key("quickNewPwd") => Call::PayBackendNewMobile,
        other => other,
    };
    let spec = call.spec();
    tracing::info!(
        section = spec.section,
        service = spec.service,
        method = spec.method,
        "sandbox call"
    );
    let faults = shared.faults();
    let name = format!("{}.{}", spec.service, spec.method);
    if shared.chance(Faults::rate_for(&faults.error_rate, &name)) {
        let code = faults.error_code.clone().unwrap_or_else(|| code::OTHER.to_owned());
        let code = errors::shown(&code).map_or(code::OTHER, |e| e.code);
        return Err(Reject::new(code, "injected fault"));
    }
    let hang = shared.chance(Faults::rate_for(&faults.timeout_after_commit, &name));
    let param = decrypt_params(config, call, body.param)?;
    let mut result = {
        let mut state = shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let result =
            refuse_locked(&state, call, &param).and_then(|()| dispatch(&mut state, config, &faults, call, &param));
        let counts = state.call_counts.entry(spec.section).or_default();
        match result {
            Ok(_) => counts.0 += 1,
            Err(_) => counts.1 += 1,
        }
        result?
    };
    transform_fields(&mut result, spec.encrypted_response, |field, clear| {
        config
            .keys
            .encrypt_field(clear)
            .map_err(|e| Reject::new("51000", format!("{field}: {e}")))
    })?;
    Ok((result, hang))
}

/// "除解锁会员之外，其它接口都将返回错误信息“会员已锁定”" (4.1.18 l.980): every
/// call but unlockMember that names a locked member, as the member, payer,
/// receiver, transfer target or split recipient, is refused (30002).
/// Batch items are checked one by one instead (a locked receiver fails its item).
fn refuse_locked(state: &SandboxState, call: Call, param: &Value) -> Result<(), Reject> {
    if call == Call::UnlockMember {
        return Ok(());
    }
    fn splits<'a>(rules: Option<&'a Value>, out: &mut Vec<&'a str>) {
        for rule in rules.and_then(Value::as_array).into_iter().flatten() {
            out.extend(rule.get("bizUserId").and_then(Value::as_str));
            splits(rule.get("splitRuleList"), out);
        }
    }
    let mut named: Vec<&str> = ["bizUserId", "payerId", "recieverId", "targetBizUserId"]
        .iter()
        .filter_map(|k| param.get(*k).and_then(Value::as_str))
        .collect();
    splits(param.get("splitRule"), &mut named);
    splits(param.get("splitRuleList"), &mut named);
    match named
        .into_iter()
        .find(|id| state.members.get(*id).is_some_and(|m| m.locked))
    {
        Some(id) => Err(Reject::new(code::USER_LOCKED, format!("bizUserId {id:?} is locked"))),
        None => Ok(()),
    }
}

fn dispatch(
    state: &mut SandboxState,
    config: &SandboxConfig,
    faults: &Faults,
    call: Call,
    param: &Value,
) -> Result<Value, Reject> {
    let p = Params(param);
    match call {
        Call::CreateMember => member::create_member(state, &p),
        Call::SendVerificationCode => member::send_verification_code(state, config, &p),
        Call::BindPhone => member::bind_phone(state, &p),
        Call::SetRealName => member::set_real_name(state, &p),
        Call::GetMemberInfo => member::get_member_info(state, &p),
        Call::ChangeBindPhone => member::change_bind_phone(state, &p),
        Call::SetCompanyInfo => member::set_company_info(state, config, &p),
        Call::GetBankCardBin => cards::get_card_bin(&p),
        Call::ApplyBindBankCard => cards::apply_bind(state, &p),
        Call::BindBankCard => cards::confirm_bind(state, config, &p),
        Call::ApplyVerifyPayBindBankCard => cards::apply_verify_pay_bind(state, &p),
        Call::AffirmVerifyPayBindCard => cards::affirm_verify_pay_bind(state, config, &p),
        Call::ThreeElementsBindBankCard => cards::three_elements_bind(state, &p),
        Call::SetSafeCard => cards::set_safe_card(state, &p),
        Call::QueryBankCard => cards::query_cards(state, &p),
        Call::UnbindBankCard => cards::unbind(state, &p),
        Call::LockMember => member::set_locked(state, &p, true),
        Call::UnlockMember => member::set_locked(state, &p, false),
        Call::SetNewMobilePayPwd => member::set_quick_pay_password(state, &p),
        Call::ResetNewMobilePayPwdApply => member::reset_quick_pay_password_apply(state, &p),
        Call::ResetNewMobilePayPwdAffirm => member::reset_quick_pay_password_affirm(state, config, &p),
        Call::DepositApply => orders::apply(state, config, faults, &p, order::OrderKind::Deposit),
        Call::WithdrawApply => orders::apply(state, config, faults, &p, order::OrderKind::Withdraw),
        Call::ConsumeApply => orders::apply(state, config, faults, &p, order::OrderKind::Consume),
        Call::AgentCollectApplySimplify => orders::apply(state, config, faults, &p, order::OrderKind::AgentCollect),
        Call::SignalAgentPaySimplify => orders::agent_pay(state, config, faults, &p),
        Call::BatchAgentPaySimplify => orders::batch_agent_pay(state, config, faults, &p),
        Call::PayBackendSms | Call::PayBackendNewMobile => orders::confirm(state, config, faults, &p),
        Call::EntryGoods => orders::entry_goods(state, &p),
        Call::QueryModifyGoods => orders::query_modify_goods(state, &p),
        Call::FreezeMoney => orders::freeze(state, &p),
        Call::UnfreezeMoney => orders::unfreeze(state, &p),
        Call::Refund => orders::refund(state, config, faults, &p),
        Call::FailureBidRefund => orders::failure_bid_refund(state, &p),
        Call::ApplicationTransfer => orders::application_transfer(state, &p),
        Call::QueryBalance => orders::query_balance(state, &p),
        Call::GetOrderDetail => orders::order_detail(state, &p),
        Call::QueryInExpDetail => orders::in_exp_detail(state, &p),
        Call::QueryReserveFundBalance => orders::reserve_fund(state, config, &p),
        Call::GetCheckAccountFile => orders::check_account_file(state, config, faults, &p),
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
pub struct Params<'a>(pub(crate) &'a Value);

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

    /// An optional string; empty reads as absent.
    pub fn opt_str(&self, name: &str) -> Option<String> {
        match self.0.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The raw value of a field.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
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
