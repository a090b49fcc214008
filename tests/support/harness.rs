//! A running sandbox with a client and a notification receiver, and shortcuts for the usual set-up calls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};
use yungate::provider::calls::{Call, Environment};
use yungate::provider::client::{CallError, SoaClient, SoaConfig};
use yungate::provider::crypto::{PartyKeys, PrivateKey, Protocol};
use yungate::provider::wire::{NotificationBody, NotificationEnvelope};
use yungate::sandbox::{self, RunningSandbox, SandboxConfig};

pub const SYSID: &str = "1902271423530001";
pub const ESCROW: &str = "100000";
/// The test environment's three-element card, name and identity number (4.1.14).
pub const CARD: &str = "6228480402637874214";
pub const NAME: &str = "王小二";
pub const ID_NO: &str = "610422198600000000";

/// One notification as the receiver got it, its signature checked.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: NotificationBody,
    pub at: std::time::Instant,
}

/// An HTTP receiver for notifications that answers 500 to the first `fail_first` attempts.
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    pub attempts: Arc<Mutex<Vec<std::time::Instant>>>,
    /// Attempts whose form or signature did not check out (answered 400).
    pub rejected: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    pub async fn start(keys: PartyKeys, fail_first: usize) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let rejected = Arc::new(Mutex::new(Vec::new()));
        let (g, a, r) = (Arc::clone(&got), Arc::clone(&attempts), Arc::clone(&rejected));
        let app = axum::Router::new().route(
            "/notify",
            axum::routing::post(move |body: Bytes| {
                let (got, attempts, rejected, keys) = (Arc::clone(&g), Arc::clone(&a), Arc::clone(&r), keys.clone());
                async move {
                    let n = {
                        let mut a = attempts.lock().unwrap();
                        a.push(std::time::Instant::now());
                        a.len()
                    };
                    let env = match NotificationEnvelope::parse(&body) {
                        Ok(env) => env,
                        Err(e) => {
                            rejected.lock().unwrap().push(e.to_string());
                            return StatusCode::BAD_REQUEST;
                        }
                    };
                    if let Err(e) = keys.verify(&env.signing_string(), &env.sign) {
                        rejected.lock().unwrap().push(e.to_string());
                        return StatusCode::BAD_REQUEST;
                    }
                    if n <= fail_first {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    got.lock().unwrap().push(Received {
                        body: NotificationBody::parse(&env.rps).expect("rps"),
                        at: std::time::Instant::now(),
                    });
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url,
            got,
            attempts,
            rejected,
        }
    }

    /// Waits until `n` notifications arrived (at most 10 s) and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..1000 {
            if self.got.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let got = self.got.lock().unwrap().clone();
        let rejected = self.rejected.lock().unwrap().clone();
        assert!(
            got.len() >= n,
            "expected {n} notifications, got {}: {got:?}; rejected: {rejected:?}",
            got.len()
        );
        got
    }
}

/// A sandbox, a client for it and a receiver for its notifications.
pub struct Harness {
    pub sandbox: RunningSandbox,
    pub client: SoaClient,
    pub keys: PartyKeys,
    pub receiver: Receiver,
    direct: Direct,
}

impl std::ops::Deref for Harness {
    type Target = Direct;

    fn deref(&self) -> &Direct {
        &self.direct
    }
}

/// A client straight to a sandbox (never through a gateway) with the usual set-up calls.
pub struct Direct {
    pub client: SoaClient,
    /// The `backUrl` of the orders it makes.
    pub back_url: String,
}

impl Direct {
    pub async fn call(&self, call: Call, param: Value) -> Value {
        match self.client.call_value(call, param.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{call:?} {param} failed: {e}"),
        }
    }

    /// The section 7 code a refused call answered.
    pub async fn refused(&self, call: Call, param: Value) -> String {
        match self.client.call_value(call, param.clone()).await {
            Err(CallError::Business { code, .. }) => code,
            other => panic!("{call:?} {param} should be refused, got {other:?}"),
        }
    }

    /// An individual member with a bound phone and a real name.
    pub async fn individual(&self, id: &str) {
        self.call(
            Call::CreateMember,
            json!({"bizUserId": id, "memberType": 3, "source": 2}),
        )
        .await;
        self.call(
            Call::SetRealName,
            json!({"bizUserId": id, "name": NAME, "identityType": 1, "identityNo": ID_NO}),
        )
        .await;
        self.bind_phone(id).await;
    }

    /// Sends the bind-phone code to `phone_of(id)` and binds it.
    pub async fn bind_phone(&self, id: &str) {
        let phone = phone_of(id);
        self.call(
            Call::SendVerificationCode,
            json!({"bizUserId": id, "phone": phone, "verificationCodeType": 9}),
        )
        .await;
        self.call(
            Call::BindPhone,
            json!({"bizUserId": id, "phone": phone, "verificationCode": "9999"}),
        )
        .await;
    }

    /// Binds `card` by real-name pay (cardCheck 3), usable for REALNAMEPAY and withdrawals.
    pub async fn bind_card(&self, id: &str, card: &str) {
        self.bind_card_checked(id, card, 3).await;
    }

    /// Binds `card` by applyBindBankCard + bindBankCard with `card_check`
    /// (6.23: 2 four elements + SMS, 3 real-name pay, 4 new mobile).
    pub async fn bind_card_checked(&self, id: &str, card: &str, card_check: i64) {
        let applied = self
            .call(
                Call::ApplyBindBankCard,
                json!({"bizUserId": id, "cardNo": card, "phone": phone_of(id), "name": NAME, "cardCheck": card_check,
                       "identityType": 1, "identityNo": ID_NO}),
            )
            .await;
        self.call(
            Call::BindBankCard,
            json!({"bizUserId": id, "tranceNum": applied["tranceNum"], "phone": phone_of(id), "verificationCode": "9999"}),
        )
        .await;
    }

    /// Moves `amount` from the platform's account set `source` (margin
    /// 100002, marketing 2000000...) to `id`'s custody balance (4.2.19).
    pub async fn transfer_to(&self, id: &str, no: &str, source: &str, amount: i64) {
        self.call(
            Call::ApplicationTransfer,
            json!({"bizTransferNo": no, "sourceAccountSetNo": source, "targetBizUserId": id,
                   "targetAccountSetNo": ESCROW, "amount": amount}),
        )
        .await;
    }

    /// Tops up `id`'s custody balance by real-name pay, confirmed by SMS.
    pub async fn deposit(&self, id: &str, order: &str, amount: i64, card: &str) {
        self.call(
            Call::DepositApply,
            json!({"bizOrderNo": order, "bizUserId": id, "accountSetNo": ESCROW, "amount": amount, "fee": 0,
                   "validateType": 1, "backUrl": self.back_url, "industryCode": "1010", "industryName": "保险代理",
                   "source": 2, "payMethod": {"REALNAMEPAY": {"bankCardNo": card, "amount": amount}}}),
        )
        .await;
        self.confirm(id, order).await;
    }

    /// Confirms an order with the SMS code (4.2.8).
    pub async fn confirm(&self, id: &str, order: &str) -> Value {
        self.call(
            Call::PayBackendSms,
            json!({"bizUserId": id, "bizOrderNo": order, "verificationCode": "9999", "consumerIp": "127.0.0.1"}),
        )
        .await
    }

    /// allAmount and freezenAmount of a member's custody account.
    pub async fn balance(&self, id: &str) -> (i64, i64) {
        let b = self
            .call(Call::QueryBalance, json!({"bizUserId": id, "accountSetNo": ESCROW}))
            .await;
        (b["allAmount"].as_i64().unwrap(), b["freezenAmount"].as_i64().unwrap())
    }

    /// The URL of the reconciliation file of `date` (yyyyMMdd), once the
    /// sandbox's clock has passed 11:00 China time the next day (4.3.2
    /// l.2329): a sandbox with a small time scale gets there in a moment.
    pub async fn check_file_url(&self, date: &str) -> String {
        for _ in 0..100 {
            match self
                .client
                .call_value(Call::GetCheckAccountFile, json!({"date": date}))
                .await
            {
                Ok(v) => return v["url"].as_str().unwrap().to_owned(),
                Err(CallError::Business { code, .. }) if code == "10000" => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("getCheckAccountFile {date}: {e}"),
            }
        }
        panic!("the file of {date} was not generated in 5 s: is the sandbox's time scale small enough?");
    }

    /// The 6.13 status code of an order.
    pub async fn status(&self, id: &str, order: &str) -> i64 {
        self.call(Call::GetOrderDetail, json!({"bizUserId": id, "bizOrderNo": order}))
            .await["orderStatus"]
            .as_i64()
            .unwrap()
    }
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::with(|_| {}).await
    }

    /// A harness whose sandbox configuration `adjust` may change.
    pub async fn with(adjust: impl FnOnce(&mut SandboxConfig)) -> Harness {
        let key = shared_key();
        let keys = PartyKeys {
            protocol: Protocol::V1,
            peer: key.public_key(),
            own: key,
        };
        Harness::with_keys(keys.clone(), keys, adjust).await
    }

    /// A v2 harness: the provider has a key pair of its own.
    pub async fn v2(adjust: impl FnOnce(&mut SandboxConfig)) -> Harness {
        let merchant = shared_key();
        let provider = PrivateKey::generate(1024).unwrap();
        let client = PartyKeys {
            protocol: Protocol::V2,
            peer: provider.public_key(),
            own: merchant.clone(),
        };
        let sandbox = PartyKeys {
            protocol: Protocol::V2,
            peer: merchant.public_key(),
            own: provider,
        };
        Harness::with_keys(client, sandbox, adjust).await
    }

    async fn with_keys(keys: PartyKeys, sandbox_keys: PartyKeys, adjust: impl FnOnce(&mut SandboxConfig)) -> Harness {
        let mut config = SandboxConfig::new(SYSID, sandbox_keys);
        config.time_scale = 0.001;
        adjust(&mut config);
        let sandbox = sandbox::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = soa_client(
            sandbox.soa_url(),
            keys.clone(),
            Duration::from_secs(10),
            Environment::Test,
        );
        let receiver = Receiver::start(keys.clone(), 0).await;
        let direct = Direct {
            client: client.clone(),
            back_url: receiver.url.clone(),
        };
        Harness {
            sandbox,
            client,
            keys,
            receiver,
            direct,
        }
    }

    /// The balance of a platform account set, from the sandbox's books.
    pub async fn platform(&self, account_set: &str) -> i64 {
        let books = self.books().await;
        books["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["owner"] == "platform" && a["accountSetNo"] == account_set)
            .map_or(0, |a| a["balance"].as_i64().unwrap())
    }

    /// Replaces the sandbox's faults; returns the HTTP status.
    pub async fn set_faults(&self, faults: Value) -> u16 {
        put_faults(self.sandbox.addr(), &faults).await
    }

    /// A client of this sandbox with a short request timeout.
    pub fn impatient_client(&self, timeout: Duration) -> SoaClient {
        soa_client(self.sandbox.soa_url(), self.keys.clone(), timeout, Environment::Test)
    }

    /// A client of this sandbox whose page links use `environment`'s layout.
    pub fn client_in(&self, environment: Environment) -> SoaClient {
        soa_client(
            self.sandbox.soa_url(),
            self.keys.clone(),
            Duration::from_secs(10),
            environment,
        )
    }

    /// Sends `param` exactly as given (no field encryption), signed, and
    /// returns the answer's JSON: what a client that forgot to encrypt sends.
    pub async fn raw(&self, service: &str, method: &str, param: Value) -> Value {
        let req = yungate::provider::wire::request_json(service, method, &param);
        let timestamp = yungate::provider::wire::format_timestamp(time::OffsetDateTime::now_utc());
        let form = yungate::provider::client::sign_request(&self.keys, SYSID.into(), req, timestamp)
            .unwrap()
            .to_form();
        reqwest::Client::new()
            .post(self.sandbox.soa_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The sandbox's books (`GET /sandbox/accounts`).
    pub async fn books(&self) -> Value {
        sandbox_get(self.sandbox.addr(), "/sandbox/accounts").await
    }

    /// The sandbox's own record of notification attempts.
    pub async fn attempt_log(&self) -> Value {
        sandbox_get(self.sandbox.addr(), "/sandbox/notifications").await
    }
}

/// A client of the SOA endpoint `url`.
pub fn soa_client(url: String, keys: PartyKeys, timeout: Duration, environment: Environment) -> SoaClient {
    SoaClient::new(
        SoaConfig {
            url,
            sysid: SYSID.into(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: timeout,
            environment,
        },
        keys,
    )
    .unwrap()
}

/// `GET` of a sandbox admin endpoint at `addr`, as JSON.
pub async fn sandbox_get(addr: std::net::SocketAddr, path: &str) -> Value {
    reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `PUT /sandbox/faults` of the sandbox at `addr`; returns the HTTP status.
pub async fn put_faults(addr: std::net::SocketAddr, faults: &Value) -> u16 {
    reqwest::Client::new()
        .put(format!("http://{addr}/sandbox/faults"))
        .body(faults.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Today in China time as `yyyyMMdd` (reconciliation files are per China day).
pub fn china_today() -> String {
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    format!("{}{:02}{:02}", today.year(), u8::from(today.month()), today.day())
}

/// A company's 5.5 information, every required field set, with `account` as its corporate account.
pub fn company_info(name: &str, account: &str) -> Value {
    json!({"companyName": name, "companyAddress": "杭州", "businessLicense": "91330000000000000X", "legalName": "张三",
           "identityType": 1, "legalIds": ID_NO, "legalPhone": "13800000000", "accountNo": account,
           "parentBankName": "中国农业银行", "bankName": "中国农业银行杭州分行"})
}

/// A distinct valid phone per member id.
pub fn phone_of(id: &str) -> String {
    let n: u64 = id.bytes().fold(0u64, |a, b| a.wrapping_mul(131).wrapping_add(b as u64)) % 100_000_000;
    format!("139{n:08}")
}

/// One RSA-1024 key for every harness of a test binary (generation is the slow part).
fn shared_key() -> PrivateKey {
    static KEY: std::sync::OnceLock<PrivateKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(1024).unwrap()).clone()
}
