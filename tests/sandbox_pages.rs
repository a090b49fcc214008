//! The sandbox's page calls: signed links (urlencoded once or twice), the form, the effect, the signed redirect.

mod support;

use serde_json::{Value, json};
use support::harness::{CARD, ESCROW, Harness, ID_NO, NAME, phone_of};
use yungate::provider::calls::Call;
use yungate::provider::wire::{Form, NotificationBody, NotificationEnvelope};

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follows nothing: returns the status and the Location header, or the body.
async fn visit(url: &str) -> (u16, String) {
    let r = browser().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    (status, location.unwrap_or(r.text().await.unwrap()))
}

/// A page's answer appended to its redirect, in the response shape of the
/// spec's jumpUrl tables (l.1063, 1122, 1165, 1207, 1842): `status=OK`,
/// `signedValue` and its `sign`; returns the verified signedValue.
fn page_answer(h: &Harness, location: &str, expected_prefix: &str) -> Value {
    assert!(location.starts_with(expected_prefix), "{location}");
    let query = location.split_once('?').unwrap().1;
    let form = Form::parse(query.as_bytes());
    assert_eq!(form.get("status").as_deref(), Some("OK"), "{location}");
    let signed_value = form.get("signedValue").unwrap();
    h.keys
        .verify(&signed_value, &form.get("sign").unwrap())
        .expect("the answer is signed over signedValue");
    serde_json::from_str(&signed_value).unwrap()
}

/// A page's refusal at its redirect: `status=error` and the section 7 code.
fn page_refusal(location: &str, expected_prefix: &str) -> String {
    assert!(location.starts_with(expected_prefix), "{location}");
    let form = Form::parse(location.split_once('?').unwrap().1.as_bytes());
    assert_eq!(form.get("status").as_deref(), Some("error"), "{location}");
    assert!(form.get("message").is_some_and(|m| !m.is_empty()));
    form.get("errorCode").unwrap()
}

/// Checks the signed result appended to a redirect and returns its rps.
fn signed_result(h: &Harness, location: &str, expected_prefix: &str) -> NotificationBody {
    assert!(location.starts_with(expected_prefix), "{location}");
    let query = location.split_once('?').unwrap().1;
    let env = NotificationEnvelope::parse(query.as_bytes()).unwrap();
    h.keys
        .verify(&env.signing_string(), &env.sign)
        .expect("the result is signed");
    NotificationBody::parse(&env.rps).unwrap()
}

fn pwd_params(id: &str, extra: Value, jump: &str, back: &str) -> Value {
    let mut v = json!({"bizUserId": id, "name": NAME, "identityType": 1, "identityNo": ID_NO,
                       "jumpUrl": jump, "backUrl": back});
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    v
}

async fn link(h: &Harness, call: Call, param: Value) -> String {
    h.client
        .page_url(&format!("http://{}", h.sandbox.addr()), call, param)
        .await
        .unwrap()
}

#[tokio::test]
async fn password_pages_set_update_reset_and_change_phone() {
    let h = Harness::start().await;
    h.individual("pat").await;
    let jump = "http://shop.example/done";
    let set = link(
        &h,
        Call::SetPayPwd,
        pwd_params("pat", json!({"phone": phone_of("pat")}), jump, &h.receiver.url),
    )
    .await;
    // Without input the page shows its form.
    let (status, html) = visit(&set).await;
    assert_eq!(status, 200);
    let action = html
        .split("action=")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    assert!(action.starts_with("/sandbox/pages/"), "{html}");
    let posted = browser()
        .post(format!("http://{}{action}", h.sandbox.addr()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("password=135790")
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 303);
    let answer = page_answer(&h, posted.headers()["location"].to_str().unwrap(), jump);
    // "bizUserId ... 是 / result 设置支付密码结果 成功：OK 失败：error" (4.1.20 l.1068-1069).
    assert_eq!(answer, json!({"bizUserId": "pat", "result": "OK"}));
    let note = h.receiver.wait_for(1).await;
    assert_eq!(
        (note[0].body.service.as_str(), note[0].body.method.as_str()),
        ("MemberPwdService", "setPayPwd")
    );
    // The notification's returnValue holds bizUserId only (4.1.20 l.1084-1085).
    assert_eq!(note[0].body.return_value, json!({"bizUserId": "pat"}));
    assert_eq!(
        h.call(Call::GetMemberInfo, json!({"bizUserId": "pat"})).await["memberInfo"]["isSetPayPwd"],
        true
    );
    // The same form twice: the page is used up.
    let again = browser()
        .post(format!("http://{}{action}", h.sandbox.addr()))
        .body("password=135790")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);

    // Update, with the link carrying the input (automation).
    let update = link(
        &h,
        Call::UpdatePayPwd,
        pwd_params("pat", json!({}), jump, &h.receiver.url),
    )
    .await;
    // A refusal goes to jumpUrl as well, as status=error.
    let (status, location) = visit(&format!("{update}&oldPassword=000000&password=246802")).await;
    assert_eq!(status, 303);
    assert_eq!(page_refusal(&location, jump), "10000");
    let (status, location) = visit(&format!("{update}&oldPassword=135790&password=246802")).await;
    assert_eq!(status, 303, "{location}");
    page_answer(&h, &location, jump);

    // Reset needs the SMS code; change phone needs the password and the new number's code.
    let reset = link(
        &h,
        Call::ResetPayPwd,
        pwd_params("pat", json!({"phone": phone_of("pat")}), jump, &h.receiver.url),
    )
    .await;
    let (status, location) = visit(&format!("{reset}&smsCode=1111&password=357913")).await;
    assert_eq!((status, page_refusal(&location, jump).as_str()), (303, "50001"));
    let (_, location) = visit(&format!("{reset}&smsCode=9999&password=357913")).await;
    page_answer(&h, &location, jump);
    let change = link(
        &h,
        Call::UpdatePhoneByPayPwd,
        pwd_params("pat", json!({"oldPhone": phone_of("pat")}), jump, &h.receiver.url),
    )
    .await;
    let (status, location) = visit(&format!("{change}&password=357913&newPhone=13511112222&smsCode=9999")).await;
    assert_eq!(status, 303);
    // 4.1.23 l.1207: bizUserId, result, newPhone.
    assert_eq!(
        page_answer(&h, &location, jump),
        json!({"bizUserId": "pat", "result": "OK", "newPhone": "13511112222"})
    );
    assert_eq!(
        h.call(Call::GetMemberInfo, json!({"bizUserId": "pat"})).await["memberInfo"]["phone"],
        "13511112222"
    );
    let notes = h.receiver.wait_for(4).await;
    // 4.1.23's notification: returnValue {bizUserId, newPhone} (l.1228-1236).
    assert!(notes.iter().any(|n| n.body.method == "updatePhoneByPayPwd"
        && n.body.return_value == json!({"bizUserId": "pat", "newPhone": "13511112222"})));
}

#[tokio::test]
async fn links_encoded_twice_are_accepted_and_tampered_links_are_not() {
    let h = Harness::start().await;
    h.individual("dan").await;
    let url = link(
        &h,
        Call::SetPayPwd,
        pwd_params("dan", json!({"phone": phone_of("dan")}), "http://x/j", &h.receiver.url),
    )
    .await;
    let (base, query) = url.split_once('?').unwrap();
    // Encode every value a second time, as the official SDK does.
    let twice: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.split('&').map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        }))
        .finish();
    assert_eq!(visit(&format!("{base}?{twice}&password=135790")).await.0, 303);
    // The sandbox plays the test environment: "测试环境地址：http://122.227.225.142:23661/pwd/setPayPwd.html"
    // (l.1037); the production path "/yungateway/pwd/setPayPwd.html" (l.1038) is not served.
    assert!(
        base.ends_with("/pwd/setPayPwd.html") && !base.contains("/yungateway/"),
        "{base}"
    );
    let production = url.replace("/pwd/", "/yungateway/pwd/");
    assert_eq!(visit(&production).await.0, 404);
    let (status, location) = visit(&format!("{url}&password=135790")).await;
    assert_eq!(status, 303);
    assert_eq!(page_refusal(&location, "http://x/j"), "30031", "already set");
    let tampered = url.replace("bizUserId%22%3A%22dan", "bizUserId%22%3A%22eve");
    let (status, body) = visit(&tampered).await;
    assert_eq!(status, 400);
    assert!(body.contains("51003"), "{body}");
    // A link for one page opened on another.
    let wrong = url.replace("setPayPwd.html", "resetPayPwd.html");
    assert!(visit(&wrong).await.1.contains("10000"));
}

#[tokio::test]
async fn pay_pages_confirm_password_and_gateway_orders() {
    let h = Harness::start().await;
    h.individual("olga").await;
    h.bind_card("olga", CARD).await;
    let set = link(
        &h,
        Call::SetPayPwd,
        pwd_params(
            "olga",
            json!({"phone": phone_of("olga")}),
            "http://x/j",
            &h.receiver.url,
        ),
    )
    .await;
    assert_eq!(visit(&format!("{set}&password=135790")).await.0, 303);
    // validateType 2: confirmed on payOrder.html with the payment password.
    h.call(
        Call::DepositApply,
        json!({"bizOrderNo": "pw-1", "bizUserId": "olga", "accountSetNo": ESCROW, "amount": 500, "fee": 0, "validateType": 2,
               "backUrl": h.receiver.url, "industryCode": "1010", "industryName": "x", "source": 2,
               "payMethod": {"REALNAMEPAY": {"bankCardNo": CARD, "amount": 500}}}),
    )
    .await;
    let pay = link(
        &h,
        Call::PayPagePassword,
        json!({"bizUserId": "olga", "bizOrderNo": "pw-1", "jumpUrl": "http://shop/paid", "consumerIp": "1.2.3.4"}),
    )
    .await;
    let (status, location) = visit(&format!("{pay}&password=000000")).await;
    assert_eq!(status, 303);
    assert_eq!(page_refusal(&location, "http://shop/paid"), "40006");
    let (status, location) = visit(&format!("{pay}&password=135790")).await;
    assert_eq!(status, 303);
    // 4.2.10 l.1842: payStatus, payFailMessage, bizUserId, bizOrderNo.
    assert_eq!(
        page_answer(&h, &location, "http://shop/paid"),
        json!({"payStatus": "success", "bizUserId": "olga", "bizOrderNo": "pw-1"})
    );
    assert_eq!(h.balance("olga").await.0, 500);
    // Gateway: the bank page, then back to frontUrl.
    h.call(
        Call::DepositApply,
        json!({"bizOrderNo": "gw-1", "bizUserId": "olga", "accountSetNo": ESCROW, "amount": 300, "fee": 0, "validateType": 1,
               "frontUrl": "http://shop/front", "backUrl": h.receiver.url, "industryCode": "1010", "industryName": "x", "source": 2,
               "payMethod": {"GATEWAY": {"bankCode": "vbank", "payType": 1, "amount": 300}}}),
    )
    .await;
    let gateway = link(
        &h,
        Call::PayPageSms,
        json!({"bizUserId": "olga", "bizOrderNo": "gw-1", "consumerIp": "1.2.3.4"}),
    )
    .await;
    // "测试环境网关地址：http://122.227.225.142:23661/service/gateway/frontTrans.do" (l.1791).
    assert!(gateway.contains("/service/gateway/frontTrans.do?"), "{gateway}");
    let (status, location) = visit(&format!("{gateway}&confirm=1")).await;
    assert_eq!(status, 303);
    signed_result(&h, &location, "http://shop/front");
    assert_eq!(h.balance("olga").await.0, 800);
    let paid: Vec<String> = h
        .receiver
        .wait_for(3)
        .await
        .iter()
        .filter(|n| n.body.service == "OrderService")
        .map(|n| n.body.return_value["bizOrderNo"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paid, ["pw-1", "gw-1"]);
    // A password page for a gateway order is refused.
    let wrong = link(
        &h,
        Call::PayPagePassword,
        json!({"bizUserId": "olga", "bizOrderNo": "gw-1", "consumerIp": "1"}),
    )
    .await;
    assert!(visit(&format!("{wrong}&password=135790")).await.1.contains("40028"));
}
