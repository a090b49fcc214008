//! `SoaClient`: the one function that sends HTTP to the provider (invariant 2), and its typed errors.
//!
//! A call serialises `req` once, signs exactly that text, POSTs the form,
//! verifies the response over exactly the `signedValue` it received, then
//! decrypts the fields the catalogue marks as encrypted. Private-key work
//! runs on the blocking pool so a slow RSA operation never stalls the
//! executor. Errors tell a caller what it may do next: retry freely
//! (`NotSent`), find out what happened first (`OutcomeUnknown`), or stop.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;

use super::calls::{Call, CallKind, Environment};
use super::crypto::{CryptoError, PartyKeys, Protocol, pool};
use super::wire::{self, ResponseEnvelope, ResponseStatus, SignedRequest, WireError};

/// A typed call: its parameters serialise to `req.param`, and its result
/// deserialises from the verified `signedValue`.
pub trait Endpoint: Serialize {
    /// Which call of the catalogue this is.
    const CALL: Call;
    /// The typed result.
    type Response: DeserializeOwned;
}

/// Where and how to reach the provider.
#[derive(Debug, Clone)]
pub struct SoaConfig {
    /// The SOA endpoint, e.g. `https://yun.allinpay.com/service/soa`.
    pub url: String,
    /// The merchant's system number.
    pub sysid: String,
    /// Time allowed to establish a connection; a failure here means nothing was sent.
    pub connect_timeout: Duration,
    /// Time allowed for the whole exchange; running out after sending makes the outcome unknown.
    pub request_timeout: Duration,
    /// Which environment's page layout page links use.
    pub environment: Environment,
}

/// The largest answer read from the provider. Its answers are small JSON
/// documents (the reconciliation file travels as a URL); a larger body is
/// not a protocol answer and is not buffered.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// What a failed call means for the money it may have moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The request certainly did not reach the provider: retrying is safe.
    NotSent,
    /// The provider answered with a verified refusal: nothing happened.
    Definite,
    /// The request may have been processed: resolve before retrying money.
    Unknown,
}

/// What went wrong with a call, sorted by what the caller may do about it.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request never left: safe to retry as is.
    #[error("request not sent: {0}")]
    NotSent(String),
    /// The provider's HTTP front refused the request before reading it
    /// (413 content too large, 414 URI too long, 431 headers too large):
    /// nothing was processed, and sending the same request again cannot help.
    #[error("provider refused the request unread (HTTP {status})")]
    RefusedUnread { status: u16 },
    /// The request may have reached the provider, but no answer came back:
    /// the outcome is unknown and must be resolved before retrying a money-moving call.
    #[error("outcome unknown, the request may have been processed: {0}")]
    OutcomeUnknown(String),
    /// The provider answered with an HTTP status other than 2xx, 413, 414
    /// or 431 (those mean the request was refused unread: `NotSent`). What
    /// happened behind such an answer is unknown.
    #[error("provider answered HTTP {status}")]
    Http { status: u16, body_snippet: String },
    /// The response's signature does not verify: it is not from the provider or was altered.
    #[error("provider response signature is invalid: {0}")]
    BadSignature(CryptoError),
    /// The response does not follow the protocol.
    #[error("provider response is malformed: {0}")]
    Malformed(#[from] WireError),
    /// An encrypted field of the response could not be decrypted.
    #[error("cannot decrypt response field {field}: {source}")]
    Decrypt {
        field: String,
        #[source]
        source: CryptoError,
    },
    /// The provider refused the call with a section 7 error code.
    /// `verified` is true only when a valid signature covers this very code
    /// and message (`errorCode=..&message=..`, as v2 signs them). A v1
    /// refusal that came unsigned, signed over the spec example's constant
    /// `"error"` (3.3 l.228, which one captured signature would prove for any
    /// code), or with a signature that does not verify is passed on as the
    /// refusal, but nobody can prove its code came from the provider.
    #[error("provider error {code}: {message}{}", if *verified { "" } else { " (signature not verified)" })]
    Business {
        code: String,
        message: String,
        verified: bool,
    },
}

/// Whether an answer with `code` proves anything about the request (see `errors::Proves`).
pub fn proves_something(code: &str) -> bool {
    super::errors::lookup(code).is_some_and(|e| e.proves != super::errors::Proves::Nothing)
}

/// The code an error answer without `errorCode` is read as.
const NO_CODE: &str = "9100";

/// The longest clear text encrypted for one field, in bytes. The longest
/// sensitive value the spec carries (a corporate account number) has 32
/// digits; a bound keeps one field from buying hundreds of RSA blocks.
pub const MAX_ENCRYPTED_FIELD_BYTES: usize = 64;

impl CallError {
    /// Whether the request certainly did not reach the provider (or was refused unread).
    pub fn is_not_sent(&self) -> bool {
        self.outcome() == Outcome::NotSent
    }

    /// What the failure means for money the call may have moved. Only a
    /// verified refusal whose code proves something (section 7's
    /// [`Proves`](super::errors::Proves): not 40007, 9000, 9100, nor a code
    /// the spec does not list) is definite.
    pub fn outcome(&self) -> Outcome {
        match self {
            CallError::NotSent(_) | CallError::RefusedUnread { .. } => Outcome::NotSent,
            CallError::Business {
                code, verified: true, ..
            } if proves_something(code) => Outcome::Definite,
            _ => Outcome::Unknown,
        }
    }
}

/// The provider client: one pooled HTTP client, the merchant's keys.
#[derive(Clone)]
pub struct SoaClient {
    http: reqwest::Client,
    /// `config.url` parsed once (parsing it per call showed in profiles), or why it does not parse.
    endpoint: Arc<Result<reqwest::Url, String>>,
    config: Arc<SoaConfig>,
    keys: Arc<PartyKeys>,
}

impl std::fmt::Debug for SoaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoaClient")
            .field("url", &self.config.url)
            .field("sysid", &self.config.sysid)
            .field("protocol", &self.keys.protocol)
            .finish_non_exhaustive()
    }
}

/// Installs rustls' ring provider once per process (reqwest is built without
/// a provider of its own, so that the crate has one TLS stack).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl SoaClient {
    /// Builds the client. `keys.own` is the merchant's private key and
    /// `keys.peer` the provider's public key.
    pub fn new(config: SoaConfig, keys: PartyKeys) -> Result<Self, CallError> {
        install_tls_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("yungate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CallError::NotSent(format!("cannot build HTTP client: {e}")))?;
        let endpoint = reqwest::Url::parse(&config.url).map_err(|e| format!("provider.url: {e}"));
        Ok(SoaClient {
            http,
            endpoint: Arc::new(endpoint),
            config: Arc::new(config),
            keys: Arc::new(keys),
        })
    }

    /// Whether the provider's host accepts a TCP connection within the
    /// connect timeout: a reachability probe that sends nothing (no HTTP
    /// leaves this client but through `call`).
    pub async fn reachable(&self) -> Result<(), String> {
        let url = self.endpoint.as_ref().clone()?;
        let host = url.host_str().ok_or("provider.url has no host")?.to_owned();
        let port = url.port_or_known_default().ok_or("provider.url has no port")?;
        match tokio::time::timeout(
            self.config.connect_timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot connect to {host}:{port}: {e}")),
            Err(_) => Err(format!(
                "no connection to {host}:{port} within {} ms",
                self.config.connect_timeout.as_millis()
            )),
        }
    }

    /// The merchant's system number.
    pub fn sysid(&self) -> &str {
        &self.config.sysid
    }

    /// The keys this client signs and verifies with.
    pub fn keys(&self) -> &PartyKeys {
        &self.keys
    }

    /// Makes a typed call.
    pub async fn call<E: Endpoint>(&self, params: &E) -> Result<E::Response, CallError> {
        let param = serde_json::to_value(params)
            .map_err(|e| CallError::NotSent(format!("cannot serialise parameters: {e}")))?;
        let value = self.call_value(E::CALL, param).await?;
        serde_json::from_value(value).map_err(|e| {
            CallError::Malformed(WireError::Malformed {
                field: "signedValue",
                reason: e.to_string(),
            })
        })
    }

    /// Makes a call with JSON parameters (clear text: the fields the catalogue
    /// marks as encrypted are encrypted here) and returns the verified,
    /// decrypted result.
    pub async fn call_value(&self, call: Call, param: Value) -> Result<Value, CallError> {
        let answered = self.exchange_value(call, param).await?;
        match answered.clear {
            Some(clear) => clear,
            None => self.decrypt_response(call, answered.signed).await,
        }
    }

    /// Makes a call and returns the verified result with the fields the
    /// catalogue marks encrypted still encrypted (see `decrypt_response`),
    /// as the provider sent them: what the idempotency store keeps.
    pub async fn exchange_value(&self, call: Call, param: Value) -> Result<Answered, CallError> {
        let spec = call.spec();
        if spec.kind != CallKind::Backend {
            return Err(CallError::NotSent(format!(
                "{} {}.{} is a {:?} call, not a backend call",
                spec.section, spec.service, spec.method, spec.kind
            )));
        }
        let started = std::time::Instant::now();
        let request = self.prepare(call, param).await?;

        let result = self.exchange(call, &request).await;
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(CallError::Business { code, .. }) => code.clone(),
            Err(e) => error_kind(e).to_owned(),
        };
        tracing::debug!(
            service = spec.service,
            method = spec.method,
            section = spec.section,
            outcome,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "provider call"
        );
        result
    }

    /// Decrypts the fields of a verified answer that the catalogue marks
    /// encrypted (a replayed answer; a fresh one was decrypted with its
    /// verification, see [`Answered::clear`]): in place in v1 (public-key
    /// operations), on the crypto pool in v2 (private-key ones).
    pub async fn decrypt_response(&self, call: Call, value: Value) -> Result<Value, CallError> {
        let spec = call.spec();
        if spec.encrypted_response.is_empty() {
            return Ok(value);
        }
        if !self.keys.protocol.decrypts_with_private_key() {
            return decrypt_fields(&self.keys, call, value);
        }
        let keys = Arc::clone(&self.keys);
        pool::run(move || decrypt_fields(&keys, call, value))
            .await
            .map_err(|e| CallError::OutcomeUnknown(format!("decryption task failed: {e}")))?
    }

    /// Encrypts the catalogue's sensitive fields of `param`, serialises `req`
    /// once and signs it, in one trip to the crypto pool.
    async fn prepare(&self, call: Call, mut param: Value) -> Result<SignedRequest, CallError> {
        let spec = call.spec();
        let keys = Arc::clone(&self.keys);
        let sysid = self.config.sysid.clone();
        pool::run(move || -> Result<SignedRequest, CallError> {
            transform_fields(&mut param, spec.encrypted_request, |field, clear| {
                if clear.len() > MAX_ENCRYPTED_FIELD_BYTES {
                    return Err(CallError::NotSent(format!(
                        "{field} is longer than {MAX_ENCRYPTED_FIELD_BYTES} bytes; not encrypted"
                    )));
                }
                keys.encrypt_field(clear)
                    .map_err(|e| CallError::NotSent(format!("cannot encrypt {field}: {e}")))
            })?;
            let req = wire::request_json(spec.service, spec.method, &param);
            let timestamp = wire::format_timestamp(OffsetDateTime::now_utc());
            sign_request(&keys, sysid, req, timestamp).map_err(|e| CallError::NotSent(format!("cannot sign: {e}")))
        })
        .await
        .map_err(|e| CallError::NotSent(format!("signing task failed: {e}")))?
    }

    /// A signed link for a page call (4.1.20 to 4.1.23, 4.2.9, 4.2.10), to
    /// send the user's browser to: `base` is the provider's page host (e.g.
    /// `https://yun.allinpay.com`), the path that of the configured
    /// environment, `param` the clear parameters; encrypted fields are
    /// encrypted here. Values are urlencoded once.
    pub async fn page_url(&self, base: &str, call: Call, param: Value) -> Result<String, CallError> {
        let spec = call.spec();
        let path = call.page_path(self.config.environment).ok_or_else(|| {
            CallError::NotSent(format!(
                "{} {}.{} is not a page call",
                spec.section, spec.service, spec.method
            ))
        })?;
        let request = self.prepare(call, param).await?;
        Ok(format!("{}{path}?{}", base.trim_end_matches('/'), request.to_form()))
    }

    /// Sends the form and checks the answer.
    async fn exchange(&self, call: Call, request: &SignedRequest) -> Result<Answered, CallError> {
        let response = self
            .http
            .post(
                self.endpoint
                    .as_ref()
                    .clone()
                    .map_err(|e| CallError::NotSent(e.clone()))?,
            )
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body(request.to_form())
            .send()
            .await
            .map_err(classify_send_error)?;
        let status = response.status().as_u16();
        if matches!(status, 413 | 414 | 431) {
            // Content too large, URI too long, headers too large: refused before being read.
            return Err(CallError::RefusedUnread { status });
        }
        let body = read_body(response).await?;
        if !(200..300).contains(&status) {
            return Err(CallError::Http {
                status,
                body_snippet: snippet(&body),
            });
        }
        let envelope = ResponseEnvelope::parse(&body)?;
        self.check_envelope(call, envelope).await
    }

    /// Verifies the answer and decrypts its encrypted fields. The signature
    /// check and v1's field decryption are public-key operations (tens of
    /// microseconds, less than a trip to the pool costs): done in place. v2
    /// decrypts with the private key: then the whole of it is one trip.
    async fn check_envelope(&self, call: Call, envelope: ResponseEnvelope) -> Result<Answered, CallError> {
        let encrypted = !call.spec().encrypted_response.is_empty();
        let long = envelope.signed_value.as_ref().is_some_and(|v| v.len() > IN_PLACE_BYTES);
        // v1 decryption is public-key work too, but one block per 117 bytes
        // of clear text: a long answer with many fields goes to the pool.
        let heavy = encrypted && (self.keys.protocol.decrypts_with_private_key() || long);
        if !heavy {
            return check_answer(&self.keys, call, envelope);
        }
        let keys = Arc::clone(&self.keys);
        pool::run(move || check_answer(&keys, call, envelope))
            .await
            .map_err(|e| CallError::OutcomeUnknown(format!("verification task failed: {e}")))?
    }
}

/// The longest answer (its `signedValue`, in bytes) whose v1 fields are
/// decrypted in place: at most a dozen RSA-2048 public-key blocks, about
/// 0.25 ms with OpenSSL.
const IN_PLACE_BYTES: usize = 4096;

/// Verifies `envelope` and decrypts the call's encrypted fields.
fn check_answer(keys: &PartyKeys, call: Call, envelope: ResponseEnvelope) -> Result<Answered, CallError> {
    let (signed, _) = verify_envelope(keys, envelope)?;
    // A field that does not decrypt does not make the answer any less the
    // provider's: `signed` is still recorded, and the error goes to the caller.
    let clear = (!call.spec().encrypted_response.is_empty()).then(|| decrypt_fields(keys, call, signed.clone()));
    Ok(Answered { signed, clear })
}

/// A verified answer of the provider. `Debug` never shows `clear`.
pub struct Answered {
    /// The `signedValue` as verified, the fields the catalogue marks
    /// encrypted still encrypted: what the idempotency store may keep.
    pub signed: Value,
    /// The same with those fields decrypted (or why they did not), when
    /// the call has any; computed with the verification.
    pub clear: Option<Result<Value, CallError>>,
}

impl std::fmt::Debug for Answered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answered")
            .field("signed", &self.signed)
            .field("clear", &self.clear.as_ref().map(|r| r.as_ref().map(|_| "***")))
            .finish()
    }
}

/// `value` with the call's encrypted response fields decrypted.
fn decrypt_fields(keys: &PartyKeys, call: Call, mut value: Value) -> Result<Value, CallError> {
    transform_fields(&mut value, call.spec().encrypted_response, |field, cipher| {
        keys.decrypt_field(cipher).map_err(|source| CallError::Decrypt {
            field: field.to_owned(),
            source,
        })
    })?;
    Ok(value)
}

/// Signs `sysid + req + timestamp` and assembles the request; `req` and
/// `timestamp` are used verbatim.
pub fn sign_request(
    keys: &PartyKeys,
    sysid: String,
    req: String,
    timestamp: String,
) -> Result<SignedRequest, CryptoError> {
    let sign = keys.sign(&wire::request_signing_string(&sysid, &req, &timestamp))?;
    Ok(SignedRequest {
        sysid,
        sign,
        timestamp,
        v: keys.protocol.version().to_owned(),
        req,
    })
}

/// Verifies a parsed response with the provider's key and turns it into a result.
pub fn verify_envelope(keys: &PartyKeys, envelope: ResponseEnvelope) -> Result<(Value, String), CallError> {
    match envelope.status {
        ResponseStatus::Ok => {
            let signed_value = envelope.signed_value.ok_or(WireError::Missing("signedValue"))?;
            let sign = envelope.sign.ok_or(WireError::Missing("sign"))?;
            keys.verify(&signed_value, &sign).map_err(CallError::BadSignature)?;
            let value = wire::parse_signed_value(&signed_value)?;
            Ok((value, signed_value))
        }
        ResponseStatus::Error => {
            let code = envelope.error_code.unwrap_or_else(|| NO_CODE.to_owned());
            let message = envelope.message.unwrap_or_default();
            let signed = envelope.signed_value.as_deref().zip(envelope.sign.as_deref());
            // A signature proves the refusal only if what it covers is this code and message.
            let binds = |value: &str| value == wire::error_signed_value(&code, &message);
            let verified = match (keys.protocol, signed) {
                // v2 always signs `errorCode=..&message=..`: it must verify and match.
                (Protocol::V2, None) => return Err(WireError::Missing("sign").into()),
                (Protocol::V2, Some((value, sign))) => {
                    keys.verify(value, sign).map_err(CallError::BadSignature)?;
                    if !binds(value) {
                        return Err(CallError::Malformed(WireError::Malformed {
                            field: "errorCode",
                            reason: "errorCode and message differ from the signed errorCode=..&message=..".into(),
                        }));
                    }
                    true
                }
                // v1 errors come unsigned, or signed over something the spec
                // does not document (l.228 shows `"signedValue": "error"`):
                // a refusal either way, unverified unless the signature
                // verifies over this very code and message.
                (Protocol::V1, None) => false,
                (Protocol::V1, Some((value, sign))) => binds(value) && keys.verify(value, sign).is_ok(),
            };
            if !verified {
                tracing::warn!(
                    code,
                    signed = signed.is_some(),
                    "provider refusal without a verifiable signature (v1): passed on as unverified"
                );
            }
            Err(CallError::Business {
                code,
                message,
                verified,
            })
        }
    }
}

fn classify_send_error(e: reqwest::Error) -> CallError {
    let detail = error_chain(&e);
    if e.is_connect() || e.is_builder() {
        CallError::NotSent(detail)
    } else {
        // A timeout or a dropped connection after the request was written:
        // the provider may have processed it.
        CallError::OutcomeUnknown(detail)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The body, at most [`MAX_RESPONSE_BYTES`]; a lost or oversized body after
/// the request was sent leaves the outcome unknown.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, CallError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(CallError::OutcomeUnknown(format!(
                        "response body larger than {MAX_RESPONSE_BYTES} bytes, not read"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(CallError::OutcomeUnknown(format!(
                    "response body lost: {}",
                    error_chain(&e)
                )));
            }
        }
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(200).collect()
}

fn error_kind(e: &CallError) -> &'static str {
    match e {
        CallError::NotSent(_) => "not_sent",
        CallError::RefusedUnread { .. } => "refused_unread",
        CallError::OutcomeUnknown(_) => "outcome_unknown",
        CallError::Http { .. } => "http",
        CallError::BadSignature(_) => "bad_signature",
        CallError::Malformed(_) => "malformed",
        CallError::Decrypt { .. } => "decrypt",
        CallError::Business { .. } => "business",
    }
}

/// Applies `f` to every string at the dotted `paths` of `value`; a path step
/// that meets an array applies to each element. Absent fields are skipped.
pub fn transform_fields<E>(
    value: &mut Value,
    paths: &[&str],
    mut f: impl FnMut(&str, &str) -> Result<String, E>,
) -> Result<(), E> {
    for path in paths {
        let steps: Vec<&str> = path.split('.').collect();
        transform_at(value, &steps, path, &mut f)?;
    }
    Ok(())
}

fn transform_at<E>(
    value: &mut Value,
    steps: &[&str],
    path: &str,
    f: &mut impl FnMut(&str, &str) -> Result<String, E>,
) -> Result<(), E> {
    match value {
        Value::Array(items) => {
            for item in items {
                transform_at(item, steps, path, f)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            let Some((first, rest)) = steps.split_first() else {
                return Ok(());
            };
            let Some(child) = map.get_mut(*first) else {
                return Ok(());
            };
            if rest.is_empty() {
                if let Value::String(s) = child {
                    if !s.is_empty() {
                        *s = f(path, s)?;
                    }
                }
                Ok(())
            } else if let Value::String(s) = child {
                // A nested structure sent as a JSON string (e.g. memberInfo in some answers).
                match serde_json::from_str::<Value>(s) {
                    Ok(mut inner) if inner.is_object() || inner.is_array() => {
                        transform_at(&mut inner, rest, path, f)?;
                        *child = inner;
                        Ok(())
                    }
                    _ => Ok(()),
                }
            } else {
                transform_at(child, rest, path, f)
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn an_oversized_field_is_not_encrypted_and_nothing_is_sent() {
        let key = crate::provider::crypto::PrivateKey::generate(1024).unwrap();
        let client = SoaClient::new(
            SoaConfig {
                // Nothing listens here; the field is refused before any connection.
                url: "http://127.0.0.1:9/service/soa".into(),
                sysid: "1".into(),
                connect_timeout: Duration::from_millis(200),
                request_timeout: Duration::from_millis(200),
                environment: Environment::Test,
            },
            PartyKeys {
                protocol: Protocol::V1,
                peer: key.public_key(),
                own: key,
            },
        )
        .unwrap();
        let param = json!({"bizUserId": "u", "name": "n", "identityType": 2, "identityNo": "E".repeat(65)});
        let err = client.call_value(Call::SetRealName, param).await.unwrap_err();
        assert!(
            matches!(&err, CallError::NotSent(m) if m.contains("identityNo is longer than 64 bytes")),
            "{err:?}"
        );
    }

    #[test]
    fn transform_fields_follows_paths_through_arrays_and_skips_absent() {
        let mut v = json!({
            "cardNo": "1",
            "batchPayList": [
                {"payToBankCardInfo": {"bankCardNo": "2"}},
                {"payToBankCardInfo": {}},
                {"other": 1}
            ],
            "memberInfo": "{\"identityCardNo\":\"3\"}"
        });
        transform_fields::<()>(
            &mut v,
            &[
                "cardNo",
                "batchPayList.payToBankCardInfo.bankCardNo",
                "memberInfo.identityCardNo",
                "absent.x",
            ],
            |_, s| Ok(format!("<{s}>")),
        )
        .unwrap();
        assert_eq!(v["cardNo"], "<1>");
        assert_eq!(v["batchPayList"][0]["payToBankCardInfo"]["bankCardNo"], "<2>");
        assert_eq!(v["memberInfo"]["identityCardNo"], "<3>");
    }
}
