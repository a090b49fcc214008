//! The provider's web pages (4.1.20 to 4.1.23, 4.2.9, 4.2.10): signed GET links, a form, the effect, a signed redirect.
//!
//! A page link carries the same signed parameters as a backend call, in the
//! query string, urlencoded once or (as the official SDK does) twice. The
//! page checks them like the SOA gate, then shows a minimal HTML form. For
//! automation the form's fields may be given in the link itself
//! (`password`, `oldPassword`, `newPhone`, `smsCode`, `confirm=1`): the page
//! then acts at once. The password pages and the password pay page (4.2.10)
//! then redirect to `jumpUrl` with the page's answer in the response shape
//! (`status`, `signedValue`, `sign`, or `status=error`, `errorCode`,
//! `message`: l.1063, 1122, 1165, 1207, 1842), failures included; the
//! gateway page (4.2.9) reports to `frontUrl` with the 4.2.12 notification
//! (l.1899). The password pages also notify `backUrl` on success with
//! `returnValue` holding `bizUserId` (and `newPhone` for 4.1.23, l.1084-1096).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::order::OrderStatus;
use super::payment::Confirmation;
use super::state::{Notice, SandboxState};
use super::{Params, Reject, SandboxConfig, Shared, admit, decrypt_params, orders};
use crate::provider::calls::{Call, Environment};
use crate::provider::codes::MemberType;
use crate::provider::errors::code;
use crate::provider::wire::{self, Form, SignedRequest};

/// How long a page stays usable after it was opened (change log v1.27: 15 minutes).
const PAGE_LIFETIME: time::Duration = time::Duration::minutes(15);

/// A page opened and waiting for its form.
#[derive(Clone)]
pub struct OpenPage {
    pub call: Call,
    pub param: Value,
    pub opened_at: OffsetDateTime,
}

crate::debug_shows!(OpenPage: call, opened_at);

/// Which page a path serves in `environment`'s layout.
pub fn page_for_path(path: &str, environment: Environment) -> Option<Call> {
    Call::ALL.into_iter().find(|c| c.page_path(environment) == Some(path))
}

/// The form fields a user types on the page, from the link or the form post.
fn user_input(form: &Form) -> HashMap<&'static str, String> {
    ["password", "oldPassword", "newPhone", "smsCode", "confirm"]
        .into_iter()
        .filter_map(|k| form.get(k).filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect()
}

/// Reads the signed parameters, undoing a second urlencoding when the
/// values are still percent-encoded after the first.
fn signed_request(query: &[u8]) -> Result<SignedRequest, Reject> {
    let once = SignedRequest::from_form(query).map_err(|e| Reject::new(code::PARAMETER_EMPTY, e.to_string()))?;
    let looks_encoded = |v: &str| v.starts_with("%7B") || v.starts_with("%7b");
    if !looks_encoded(&once.req) {
        return Ok(once);
    }
    let twice = |v: &str| -> String {
        form_urlencoded::parse(format!("v={v}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(SignedRequest {
        sysid: twice(&once.sysid),
        sign: twice(&once.sign),
        timestamp: twice(&once.timestamp),
        v: twice(&once.v),
        req: twice(&once.req),
    })
}

/// `GET` (or `POST`) of a page path: checks the link, then shows the form or acts at once.
pub async fn open(
    State(shared): State<std::sync::Arc<Shared>>,
    uri: axum::http::Uri,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(call) = page_for_path(uri.path(), shared.config.environment) else {
        return (StatusCode::NOT_FOUND, "no such page").into_response();
    };
    let raw = if body.iter().any(|b| !b.is_ascii_whitespace()) {
        body.to_vec()
    } else {
        query.unwrap_or_default().into_bytes()
    };
    let result = tokio::task::spawn_blocking(move || {
        let opened = open_page(&shared, call, &raw);
        let response = match opened {
            Err(Refusal::Link(reject)) => Err(reject),
            Err(Refusal::Page(page, reject)) => Ok(refused(&shared, &page, &reject)),
            Ok((token, input)) if input.is_empty() => Ok(PageOutcome::Form(token, call)),
            Ok((token, input)) => submit_page(&shared, &token, &input),
        };
        shared.notifier.wake.notify_one();
        response
    })
    .await;
    render(result)
}

/// `POST /sandbox/pages/{token}`: the page's form was submitted.
pub async fn submit(State(shared): State<std::sync::Arc<Shared>>, Path(token): Path<String>, body: Bytes) -> Response {
    let result = tokio::task::spawn_blocking(move || {
        let form = Form::parse(&body);
        let response = submit_page(&shared, &token, &user_input(&form));
        shared.notifier.wake.notify_one();
        response
    })
    .await;
    render(result)
}

enum PageOutcome {
    /// Show the form for this open page.
    Form(String, Call),
    /// Done: redirect to this URL, or show the result when there is none.
    Done((Option<String>, Value)),
}

/// Why a page could not be used.
enum Refusal {
    /// The link itself is bad (unsigned, stale, for another page): nothing
    /// in it can be trusted, not even where to redirect. An error page.
    Link(Reject),
    /// The link checked out, the request did not: the answer goes to the
    /// page's redirect like any other.
    Page(OpenPage, Reject),
}

fn render(result: Result<Result<PageOutcome, Reject>, tokio::task::JoinError>) -> Response {
    match result {
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "page handler failed").into_response(),
        Ok(Err(reject)) => (
            StatusCode::BAD_REQUEST,
            Html(format!(
                "<!doctype html><meta charset=utf-8><title>错误</title><p id=errorCode>{}</p><p id=message>{}</p>",
                reject.code,
                escape(&reject.message())
            )),
        )
            .into_response(),
        Ok(Ok(PageOutcome::Form(token, call))) => Html(form_html(&token, call)).into_response(),
        Ok(Ok(PageOutcome::Done((Some(url), _)))) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
        Ok(Ok(PageOutcome::Done((None, rps)))) => {
            ([(header::CONTENT_TYPE, "application/json")], rps.to_string()).into_response()
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn form_html(token: &str, call: Call) -> String {
    let fields: &[(&str, &str)] = match call {
        Call::SetPayPwd => &[("password", "支付密码")],
        Call::UpdatePayPwd => &[("oldPassword", "原支付密码"), ("password", "新支付密码")],
        Call::ResetPayPwd => &[("smsCode", "短信验证码"), ("password", "新支付密码")],
        Call::UpdatePhoneByPayPwd => &[
            ("password", "支付密码"),
            ("newPhone", "新手机号"),
            ("smsCode", "短信验证码"),
        ],
        Call::PayPagePassword => &[("password", "支付密码")],
        _ => &[("confirm", "确认支付 (1)")],
    };
    let inputs: String = fields
        .iter()
        .map(|(name, label)| format!("<label>{label} <input name={name} required></label><br>"))
        .collect();
    format!(
        "<!doctype html><meta charset=utf-8><title>云账户 sandbox</title>\
         <form method=post action=/sandbox/pages/{token}>{inputs}<button>提交</button></form>"
    )
}

/// Checks the link and remembers the open page; returns its token and any input given in the link.
fn open_page(shared: &Shared, call: Call, raw: &[u8]) -> Result<(String, HashMap<&'static str, String>), Refusal> {
    let request = signed_request(raw).map_err(Refusal::Link)?;
    let body = admit(&shared.config, &request).map_err(Refusal::Link)?;
    let spec = call.spec();
    if body.service != spec.service || body.method != spec.method {
        return Err(Refusal::Link(Reject::new(
            code::PARAMETER_ERROR,
            format!(
                "this page is {}.{}, the link is for {}.{}",
                spec.service, spec.method, body.service, body.method
            ),
        )));
    }
    let param = decrypt_params(&shared.config, call, body.param).map_err(Refusal::Link)?;
    let page = OpenPage {
        call,
        param,
        opened_at: OffsetDateTime::now_utc(),
    };
    let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(reject) = check_page(&state, call, &Params(&page.param)) {
        return Err(Refusal::Page(page, reject));
    }
    let token = state.new_id("P");
    state.pages.insert(token.clone(), page);
    Ok((token, user_input(&Form::parse(raw))))
}

/// What a page checks when it opens: the member and, for pay pages, the order.
fn check_page(state: &SandboxState, call: Call, p: &Params<'_>) -> Result<(), Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let member = state
        .members
        .get(&biz_user_id)
        .ok_or_else(|| Reject::new(code::USER_NOT_FOUND, format!("bizUserId {biz_user_id:?}")))?;
    if member.locked {
        return Err(Reject::new(code::USER_LOCKED, format!("bizUserId {biz_user_id:?}")));
    }
    match call {
        Call::PayPageSms | Call::PayPagePassword => {
            p.str("bizOrderNo")?;
            p.str("consumerIp")?;
        }
        _ => {
            p.str("backUrl")?;
            if call == Call::SetPayPwd {
                p.str("jumpUrl")?;
            }
            if member.member_type != MemberType::Individual {
                return Err(Reject::new(
                    code::WRONG_MEMBER_TYPE,
                    "password pages are for individual members",
                ));
            }
            super::member::check_identity(member, p)?;
        }
    }
    Ok(())
}

/// Six digits: the provider's payment password rule.
fn check_new_password(password: &str) -> Result<(), Reject> {
    if password.len() == 6 && password.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Reject::new(
            code::PARAMETER_ERROR,
            "the payment password must be 6 digits",
        ))
    }
}

fn input<'a>(input: &'a HashMap<&'static str, String>, name: &str) -> Result<&'a str, Reject> {
    input
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| Reject::new(code::PARAMETER_EMPTY, format!("{name} is required on this page")))
}

/// Applies a submitted page; returns where to redirect and the answer.
/// A refusal after the page opened goes to the redirect too (`status=error`).
fn submit_page(shared: &Shared, token: &str, given: &HashMap<&'static str, String>) -> Result<PageOutcome, Reject> {
    let config = &shared.config;
    let faults = shared.faults();
    let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    let page = state
        .pages
        .get(token)
        .cloned()
        .ok_or_else(|| Reject::new(code::PARAMETER_ERROR, "this page is unknown or was already used"))?;
    if OffsetDateTime::now_utc() - page.opened_at > PAGE_LIFETIME {
        state.pages.remove(token);
        return Err(Reject::new(code::PARAMETER_ERROR, "this page expired (15 minutes)"));
    }
    let p = Params(&page.param);
    let spec = page.call.spec();
    let done = match page.call {
        Call::PayPageSms | Call::PayPagePassword => pay_page(&mut state, config, &faults, page.call, &p, given),
        call => password_page(&mut state, config, call, &p, given),
    };
    let (return_value, redirect) = match done {
        Ok(done) => done,
        Err(reject) => {
            drop(state);
            return Ok(refused(shared, &page, &reject));
        }
    };
    state.pages.remove(token);
    let back_url = p.opt_str("backUrl");
    if let Some(url) = back_url.filter(|_| spec.service == "MemberPwdService") {
        // The notification carries bizUserId (and newPhone for 4.1.23) only (l.1084-1096).
        let mut notified = json!({ "bizUserId": return_value["bizUserId"] });
        if let Some(phone) = return_value.get("newPhone") {
            notified["newPhone"] = phone.clone();
        }
        state.outbox.push(Notice {
            url,
            service: spec.service,
            method: spec.method,
            status: Some("OK"),
            error_code: None,
            message: None,
            return_value: notified,
        });
    }
    drop(state);
    let Some(url) = redirect else {
        let answer = json!({ "status": "OK", "signedValue": return_value.to_string() });
        return Ok(PageOutcome::Done((None, answer)));
    };
    let fields = if page.call == Call::PayPageSms {
        gateway_page_notice(config, &return_value)?
    } else {
        let signed_value = return_value.to_string();
        let sign = config
            .keys
            .sign(&signed_value)
            .map_err(|e| Reject::new("51002", e.to_string()))?;
        vec![
            ("status".to_owned(), "OK".to_owned()),
            ("signedValue".to_owned(), signed_value),
            ("sign".to_owned(), sign),
        ]
    };
    Ok(PageOutcome::Done((Some(with_query(&url, &fields)), return_value)))
}

/// 4.2.9's result at frontUrl: the order result notification's form (4.2.12, l.1899).
fn gateway_page_notice(config: &SandboxConfig, return_value: &Value) -> Result<Vec<(String, String)>, Reject> {
    let rps =
        json!({ "service": "OrderService", "method": "pay", "status": "OK", "returnValue": return_value }).to_string();
    let timestamp = wire::format_timestamp(OffsetDateTime::now_utc());
    let sign = config
        .keys
        .sign(&wire::notification_signing_string(&config.sysid, &rps, &timestamp))
        .map_err(|e| Reject::new("51002", e.to_string()))?;
    Ok(vec![
        ("sysid".to_owned(), config.sysid.clone()),
        ("sign".to_owned(), sign),
        ("timestamp".to_owned(), timestamp),
        ("v".to_owned(), config.keys.protocol.version().to_owned()),
        ("rps".to_owned(), rps),
    ])
}

/// `url` with `fields` appended to its query string.
fn with_query(url: &str, fields: &[(String, String)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        query.append_pair(k, v);
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{}", query.finish())
}

/// A page's refusal: to its redirect as `status=error`, `errorCode`,
/// `message` (signed in v2 over `errorCode=..&message=..`, as backend
/// errors are), or shown as JSON when it has no redirect.
fn refused(shared: &Shared, page: &OpenPage, reject: &Reject) -> PageOutcome {
    tracing::info!(code = reject.code, detail = %reject.detail, "sandbox page refused");
    let p = Params(&page.param);
    let redirect = p.opt_str("jumpUrl").or_else(|| {
        let order = p.opt_str("bizOrderNo")?;
        let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.orders.get(&order).and_then(|o| o.front_url.clone())
    });
    let message = reject.message();
    let mut fields = vec![
        ("status".to_owned(), "error".to_owned()),
        ("errorCode".to_owned(), reject.code.to_owned()),
        ("message".to_owned(), message.clone()),
    ];
    let keys = &shared.config.keys;
    if keys.protocol == crate::provider::crypto::Protocol::V2 {
        let value = wire::error_signed_value(reject.code, &message);
        if let Ok(sign) = keys.sign(&value) {
            fields.push(("signedValue".to_owned(), value));
            fields.push(("sign".to_owned(), sign));
        }
    }
    let answer = json!({ "status": "error", "errorCode": reject.code, "message": message });
    PageOutcome::Done((redirect.map(|url| with_query(&url, &fields)), answer))
}

fn password_page(
    state: &mut SandboxState,
    config: &SandboxConfig,
    call: Call,
    p: &Params<'_>,
    given: &HashMap<&'static str, String>,
) -> Result<(Value, Option<String>), Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let member = state
        .members
        .get_mut(&biz_user_id)
        .ok_or_else(|| Reject::new(code::USER_NOT_FOUND, format!("bizUserId {biz_user_id:?}")))?;
    let sms_ok = |given: &HashMap<&'static str, String>| -> Result<(), Reject> {
        if input(given, "smsCode")? != config.verification_code {
            return Err(Reject::new(code::WRONG_VERIFICATION_CODE, "smsCode does not match"));
        }
        Ok(())
    };
    let mut value = json!({ "bizUserId": biz_user_id, "result": "OK" });
    match call {
        Call::SetPayPwd => {
            if member.phone.as_deref() != Some(p.str("phone")?.as_str()) {
                return Err(Reject::new(
                    code::PHONE_NOT_BOUND,
                    "phone is not the member's bound phone",
                ));
            }
            if member.pay_password.is_some() {
                return Err(Reject::new("30031", "the payment password is already set"));
            }
            let password = input(given, "password")?;
            check_new_password(password)?;
            member.pay_password = Some(password.to_owned());
        }
        Call::UpdatePayPwd => {
            let current = member
                .pay_password
                .clone()
                .ok_or_else(|| Reject::new("30032", "no payment password set"))?;
            if input(given, "oldPassword")? != current {
                return Err(Reject::new(code::PARAMETER_ERROR, "oldPassword does not match"));
            }
            let password = input(given, "password")?;
            check_new_password(password)?;
            member.pay_password = Some(password.to_owned());
        }
        Call::ResetPayPwd => {
            if member.phone.as_deref() != Some(p.str("phone")?.as_str()) {
                return Err(Reject::new(
                    code::PHONE_NOT_BOUND,
                    "phone is not the member's bound phone",
                ));
            }
            sms_ok(given)?;
            let password = input(given, "password")?;
            check_new_password(password)?;
            member.pay_password = Some(password.to_owned());
        }
        Call::UpdatePhoneByPayPwd => {
            if member.phone.as_deref() != Some(p.str("oldPhone")?.as_str()) {
                return Err(Reject::new(code::PARAMETER_ERROR, "oldPhone is not the bound phone"));
            }
            let current = member
                .pay_password
                .clone()
                .ok_or_else(|| Reject::new("30032", "no payment password set"))?;
            if input(given, "password")? != current {
                return Err(Reject::new(
                    code::PARAMETER_ERROR,
                    "the payment password does not match",
                ));
            }
            sms_ok(given)?;
            let new_phone = input(given, "newPhone")?.to_owned();
            if !crate::provider::formats::is_mobile(&new_phone) {
                return Err(Reject::new(
                    code::PARAMETER_ERROR,
                    "newPhone must be an 11-digit mobile number",
                ));
            }
            member.phone = Some(new_phone.clone());
            value["newPhone"] = json!(new_phone);
        }
        other => return Err(Reject::new(code::OTHER, format!("{other:?} is not a password page"))),
    }
    Ok((value, p.opt_str("jumpUrl")))
}

fn pay_page(
    state: &mut SandboxState,
    config: &SandboxConfig,
    faults: &super::Faults,
    call: Call,
    p: &Params<'_>,
    given: &HashMap<&'static str, String>,
) -> Result<(Value, Option<String>), Reject> {
    let biz_user_id = p.str("bizUserId")?;
    let biz_order_no = p.str("bizOrderNo")?;
    let order = state
        .orders
        .get(&biz_order_no)
        .cloned()
        .ok_or_else(|| Reject::new("40000", format!("bizOrderNo {biz_order_no:?}")))?;
    let has_gateway = order.parts.iter().any(|part| part.method.key == "GATEWAY");
    match call {
        Call::PayPageSms => {
            if !has_gateway {
                return Err(Reject::new("40028", "the gateway page confirms GATEWAY orders only"));
            }
            // The SMS code is needed when gateway is combined with another method (4.2.9).
            if order.parts.len() > 1
                && p.opt_str("verificationCode").as_deref() != Some(config.verification_code.as_str())
            {
                return Err(Reject::new(
                    code::WRONG_VERIFICATION_CODE,
                    "verificationCode does not match",
                ));
            }
            input(given, "confirm")?;
        }
        _ => {
            if order.confirmation != Confirmation::CodeOrPassword || order.validate_type != 2 {
                return Err(Reject::new("40028", "the password page confirms validateType 2 orders"));
            }
            let password = state
                .members
                .get(&biz_user_id)
                .and_then(|m| m.pay_password.clone())
                .ok_or_else(|| Reject::new("30032", "set a payment password first (4.1.20)"))?;
            if input(given, "password")? != password {
                return Err(Reject::new("40006", "the payment password does not match"));
            }
        }
    }
    if order.payer != biz_user_id {
        return Err(Reject::new("40022", "bizUserId is not the payer of this order"));
    }
    let (paid, pay_status) = orders::complete_by_payer(state, config, faults, &biz_order_no)?;
    let mut value = json!({
        "payStatus": pay_status,
        "bizUserId": biz_user_id,
        "bizOrderNo": biz_order_no,
    });
    if let Some(m) = paid.fail_message.filter(|_| paid.status == OrderStatus::Failed) {
        value["payFailMessage"] = json!(m);
    }
    let redirect = p.opt_str("jumpUrl").or_else(|| order.front_url.clone());
    Ok((value, redirect))
}
