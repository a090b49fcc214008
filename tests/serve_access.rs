//! Who may call, over real sockets: TLS and mTLS on the gRPC listener (identities from certificates made by the openssl CLI), a mesh's identity header, per-rpc and per-subscriber access rules, certificate reload, the plaintext health listener, reflection off, and the sandbox marker.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use support::sandboxed::{self, member_lookup};
use support::tls::{Ca, channel, client_config};
use tokio::io::AsyncReadExt as _;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt as _;
use yungate::config::{AccessRule, Config, IdentitySource};
use yungate::grpc::proto::member_service_client::MemberServiceClient;
use yungate::grpc::proto::notification_service_client::NotificationServiceClient;
use yungate::grpc::proto::order_service_client::OrderServiceClient;
use yungate::grpc::proto::{self, GetMemberInfoRequest};
use yungate::serve::{self, RunningGateway};
use yungate::store::Limit;

const CHECKOUT: &str = "spiffe://test.local/ns/shop/sa/checkout";
const LEDGER: &str = "spiffe://test.local/ns/books/sa/ledger";

/// The certificates of one test: a CA, the server's, and clients'.
struct Pki {
    ca: Ca,
    server: (PathBuf, PathBuf),
    checkout: (PathBuf, PathBuf),
    ledger: (PathBuf, PathBuf),
    /// Same identity as checkout, issued by a CA the gateway does not trust.
    forged: (PathBuf, PathBuf),
    _other: Ca,
}

fn pki() -> Pki {
    let ca = Ca::new("yungate test CA");
    let other = Ca::new("someone else's CA");
    Pki {
        server: ca.server("server"),
        checkout: ca.issue("checkout", "checkout", Some(&format!("URI:{CHECKOUT}")), "clientAuth"),
        ledger: ca.issue("ledger", "ledger", Some(&format!("URI:{LEDGER}")), "clientAuth"),
        forged: other.issue("forged", "checkout", Some(&format!("URI:{CHECKOUT}")), "clientAuth"),
        ca,
        _other: other,
    }
}

/// mTLS with rules: checkout may use the member service and its own subscribers.
fn mtls_config(pki: &Pki) -> Config {
    let mut config = sandboxed::config();
    // TLS and rules beside no provider settings: the sandbox only when chosen.
    config.provider.sandbox = true;
    config.tls.cert = Some(pki.server.0.clone());
    config.tls.key = Some(pki.server.1.clone());
    config.tls.client_ca = Some(pki.ca.pem());
    config.tls.reload_interval_secs = 1;
    config.health.listen = Some("127.0.0.1:0".parse().unwrap());
    config.access.identity = IdentitySource::Tls;
    config.access.rules = vec![
        AccessRule {
            callers: vec![CHECKOUT.into()],
            rpcs: vec![
                "yungate.v1.MemberService".into(),
                "yungate.v1.NotificationService/*".into(),
            ],
            subscribers: vec!["checkout-*".into()],
        },
        AccessRule {
            callers: vec!["spiffe://test.local/ns/books/*".into()],
            rpcs: vec!["yungate.v1.OrderService/GetOrderDetail".into()],
            subscribers: vec![],
        },
    ];
    config
}

fn info(id: &str) -> GetMemberInfoRequest {
    GetMemberInfoRequest { biz_user_id: id.into() }
}

/// GetOrderDetail of an order that does not exist: refused, by the rules or by the provider.
async fn order_lookup(channel: &Channel) -> tonic::Status {
    OrderServiceClient::new(channel.clone())
        .get_order_detail(proto::GetOrderDetailRequest {
            biz_user_id: "nobody".into(),
            biz_order_no: "no-such-order".into(),
        })
        .await
        .unwrap_err()
}

async fn tls(gateway: &RunningGateway, pki: &Pki, identity: Option<&(PathBuf, PathBuf)>) -> Channel {
    let config = client_config(&pki.ca.pem(), identity.map(|(c, k)| (c.as_path(), k.as_path())));
    channel(gateway.addr(), config).await.expect("a TLS connection")
}

#[tokio::test]
async fn mtls_identities_are_authenticated_and_held_to_the_rules() {
    let pki = pki();
    let gateway = serve::start(mtls_config(&pki)).await.unwrap();

    // An allowed identity gets through to the provider.
    let checkout = tls(&gateway, &pki, Some(&pki.checkout)).await;
    member_lookup(&checkout)
        .await
        .expect("checkout may call the member service");

    // Without a certificate: UNAUTHENTICATED, and health still answers.
    let anonymous = tls(&gateway, &pki, None).await;
    let refused = member_lookup(&anonymous).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert_eq!(refused.get_details_error_info().unwrap().reason, "UNAUTHENTICATED");
    assert!(refused.message().contains("client certificate"), "{refused:?}");
    let health = HealthClient::new(anonymous.clone())
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap();
    assert_eq!(health.into_inner().status(), ServingStatus::Serving);

    // A valid certificate whose identity no rule names for this rpc: PERMISSION_DENIED.
    let ledger = tls(&gateway, &pki, Some(&pki.ledger)).await;
    let denied = member_lookup(&ledger).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let info = denied.get_details_error_info().unwrap();
    assert_eq!(info.reason, "PERMISSION_DENIED");
    assert_eq!(info.metadata["caller"], LEDGER);
    assert!(
        denied.message().contains("yungate.v1.MemberService/GetMemberInfo"),
        "{denied:?}"
    );
    // ... while the one rpc its rule names (by an identity prefix) gets through.
    let detail = order_lookup(&ledger).await;
    assert_ne!(detail.code(), Code::PermissionDenied, "{detail:?}");
    assert_ne!(detail.code(), Code::Unauthenticated, "{detail:?}");
    // Checkout's rule does not name the order service.
    let order = order_lookup(&checkout).await;
    assert_eq!(order.code(), Code::PermissionDenied, "{order:?}");

    // A certificate from a CA the gateway does not trust fails the handshake.
    let forged = client_config(&pki.ca.pem(), Some((pki.forged.0.as_path(), pki.forged.1.as_path())));
    if let Ok(ch) = channel(gateway.addr(), forged).await {
        // TLS 1.3 reports a refused client certificate only at the first read.
        let e = member_lookup(&ch).await.unwrap_err();
        assert!(
            format!("{e:?}").contains("UnknownCA"),
            "the gateway refused the certificate: {e:?}"
        );
    }
    // So does a plaintext client.
    let plain = Channel::from_shared(format!("http://{}", gateway.addr()))
        .unwrap()
        .connect()
        .await;
    if let Ok(ch) = plain {
        assert!(member_lookup(&ch).await.is_err());
    }
    assert!(
        gateway
            .listener_counters()
            .handshake_failures
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    // Subscribers: checkout may act as checkout-*, not as another.
    let mut notifications = NotificationServiceClient::new(checkout.clone());
    let other = notifications
        .subscribe(proto::SubscribeRequest {
            subscriber: "ledger".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied, "{other:?}");
    assert!(other.message().contains("\"ledger\""), "{other:?}");
    let mut stream = notifications
        .subscribe(proto::SubscribeRequest {
            subscriber: "checkout-orders".into(),
            ..Default::default()
        })
        .await
        .expect("its own subscriber")
        .into_inner();
    let open = tokio::time::timeout(Duration::from_millis(300), stream.message()).await;
    assert!(open.is_err(), "the stream is open, waiting for events: {open:?}");
    let own = notifications
        .list_dead_letters(proto::ListDeadLettersRequest {
            subscriber: "checkout-orders".into(),
            ..Default::default()
        })
        .await;
    own.expect("its own subscriber's dead letters");
    // Every rpc that acts as a subscriber is held to the rule.
    let ack = notifications
        .ack(proto::AckRequest {
            subscriber: "ledger".into(),
            cursors: vec!["1-0".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(ack.code(), Code::PermissionDenied, "{ack:?}");
    let redrive = notifications
        .redrive(proto::RedriveRequest {
            subscriber: "ledger".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(redrive.code(), Code::PermissionDenied, "{redrive:?}");
    let states = notifications
        .list_notifications(proto::ListNotificationsRequest {
            subscriber: "ledger".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(states.code(), Code::PermissionDenied, "{states:?}");
    let dead = notifications
        .list_dead_letters(proto::ListDeadLettersRequest {
            subscriber: "ledger".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(dead.code(), Code::PermissionDenied, "{dead:?}");

    // The plaintext health listener answers the kubelet without TLS.
    let probe = Channel::from_shared(format!("http://{}", gateway.health_addr().unwrap()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let readiness = HealthClient::new(probe.clone())
        .check(HealthCheckRequest {
            service: "readiness".into(),
        })
        .await
        .unwrap();
    assert_eq!(readiness.into_inner().status(), ServingStatus::Serving);
    // ... and nothing else.
    let api = member_lookup(&probe).await.unwrap_err();
    assert_eq!(api.code(), Code::Unimplemented, "{api:?}");
    gateway.stop().await.unwrap();
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let pki = pki();
    let mut config = mtls_config(&pki);
    // The gateway serves certificate files it reads from a directory, as a mounted Secret.
    let mounted = tempfile::tempdir().unwrap();
    let (cert, key) = (mounted.path().join("tls.crt"), mounted.path().join("tls.key"));
    std::fs::copy(&pki.server.0, &cert).unwrap();
    std::fs::copy(&pki.server.1, &key).unwrap();
    config.tls.cert = Some(cert.clone());
    config.tls.key = Some(key.clone());
    let gateway = serve::start(config).await.unwrap();
    member_lookup(&tls(&gateway, &pki, Some(&pki.checkout)).await)
        .await
        .unwrap();

    // A new CA issues the server a new certificate; clients that trust only it fail until the reload.
    let renewed = Ca::new("renewed CA");
    let (new_cert, new_key) = renewed.server("server");
    let trusting_renewed = || {
        client_config(
            &renewed.pem(),
            Some((pki.checkout.0.as_path(), pki.checkout.1.as_path())),
        )
    };
    let before = channel(gateway.addr(), trusting_renewed()).await;
    assert!(before.is_err() || member_lookup(&before.unwrap()).await.is_err());
    // A half-written update is not taken: the old certificate stays in use.
    std::fs::write(&cert, b"-----BEGIN CERTIFICATE-----\nnot yet\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(gateway.tls_reloads(), 0);
    member_lookup(&tls(&gateway, &pki, Some(&pki.checkout)).await)
        .await
        .unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    std::fs::copy(&new_cert, &cert).unwrap();
    for _ in 0..100 {
        if gateway.tls_reloads() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gateway.tls_reloads(), 1, "the new files were taken");
    let after = channel(gateway.addr(), trusting_renewed())
        .await
        .expect("the renewed certificate");
    member_lookup(&after)
        .await
        .expect("a client certificate from the client CA is still accepted");
    gateway.stop().await.unwrap();
}

#[tokio::test]
async fn a_tls_client_that_never_finishes_its_handshake_is_dropped() {
    let pki = pki();
    let mut config = mtls_config(&pki);
    config.limits.handshake_timeout_ms = 300;
    let gateway = serve::start(config).await.unwrap();
    let mut silent = tokio::net::TcpStream::connect(gateway.addr()).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the server closed it: {read:?}");
    gateway.stop().await.unwrap();
}

/// A mesh sidecar that terminated mTLS and set `x-forwarded-client-cert`.
fn with_xfcc<T>(message: T, xfcc: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(v) = xfcc {
        r.metadata_mut().insert("x-forwarded-client-cert", v.parse().unwrap());
    }
    r
}

#[tokio::test]
async fn behind_a_mesh_the_identity_header_is_trusted_and_metadata_names_are_not() {
    let mut config = sandboxed::config();
    config.provider.sandbox = true;
    config.access.identity = IdentitySource::Header;
    config.access.rules = vec![AccessRule {
        callers: vec![CHECKOUT.into()],
        rpcs: vec!["yungate.v1.MemberService/GetMemberInfo".into()],
        subscribers: vec![],
    }];
    // Per-caller limits follow the authenticated identity.
    config.rate_limit.callers = BTreeMap::from([(
        CHECKOUT.to_owned(),
        BTreeMap::from([(
            "query".to_owned(),
            Limit {
                per_second: 1,
                burst: 1,
            },
        )]),
    )]);
    let gateway = serve::start(config).await.unwrap();
    let channel = sandboxed::channel(gateway.addr()).await;
    let mut members = MemberServiceClient::new(channel.clone());
    // As Envoy writes it: the hash, the subject (quoted, with commas) and the URI SAN.
    let xfcc = format!(
        "By=spiffe://test.local/ns/pay/sa/yungate;Hash=0a1b2c;Subject=\"CN=checkout,O=Shop, Inc.\";URI={CHECKOUT}"
    );
    let first = members
        .get_member_info(with_xfcc(info("nobody"), Some(&xfcc)))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::NotFound, "the identity is allowed: {first:?}");
    // The same identity under another x-yungate-caller name shares its limit.
    let mut renamed = with_xfcc(info("nobody"), Some(&xfcc));
    renamed
        .metadata_mut()
        .insert("x-yungate-caller", "someone-else".parse().unwrap());
    let limited = members.get_member_info(renamed).await.unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
    let missing = members
        .get_member_info(with_xfcc(info("nobody"), None))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing:?}");
    assert!(missing.message().contains("x-forwarded-client-cert"), "{missing:?}");
    let other = format!("By=spiffe://test.local/ns/pay/sa/yungate;URI={LEDGER}");
    let denied = members
        .get_member_info(with_xfcc(info("nobody"), Some(&other)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    gateway.stop().await.unwrap();
}

#[tokio::test]
async fn reflection_can_be_turned_off_and_sandbox_mode_marks_every_answer() {
    let mut config = sandboxed::config();
    config.access.reflection = false;
    let gateway = serve::start(config).await.unwrap();
    let channel = sandboxed::channel(gateway.addr()).await;
    let mut reflection =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let listed = reflection
        .server_reflection_info(tokio_stream::iter([
            tonic_reflection::pb::v1alpha::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(
                    tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::ListServices(
                        String::new(),
                    ),
                ),
            },
        ]))
        .await;
    let e = match listed {
        Err(e) => e,
        Ok(mut stream) => stream.get_mut().message().await.unwrap_err(),
    };
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");

    // Sandbox mode is in every answer's metadata, errors included.
    let answer = MemberServiceClient::new(channel.clone())
        .get_member_info(info("nobody"))
        .await
        .unwrap_err();
    assert_eq!(
        answer.metadata().get(serve::SANDBOX_HEADER).unwrap(),
        "true",
        "{answer:?}"
    );
    gateway.stop().await.unwrap();
}

#[tokio::test]
async fn a_provider_setting_without_a_url_is_refused_at_start() {
    // The deployment forgot YUNGATE__PROVIDER__URL but set the keystore: no sandbox.
    let mut config = sandboxed::config();
    config.provider.keystore = Some("/etc/yungate/merchant.p12".into());
    let err = serve::start(config).await.err().expect("refused").to_string();
    assert!(
        err.contains("provider.url") && err.contains("provider.keystore"),
        "{err}"
    );
    assert!(err.contains("provider.sandbox = true"), "{err}");
    // A deployment that lost all its provider settings but keeps its shared store.
    let mut deployment = sandboxed::config();
    deployment.store.redis_url = Some("redis://redis:6379".to_owned().into());
    deployment.idempotency.fingerprint_key = Some("k".repeat(32).into());
    let err = serve::start(deployment).await.err().expect("refused").to_string();
    assert!(err.contains("store.redis_url"), "{err}");
    // Chosen on purpose, the sandbox runs with a sysid of one's own.
    let mut chosen = sandboxed::config();
    chosen.provider.sandbox = true;
    chosen.provider.sysid = "2001010000000001".into();
    let gateway = serve::start(chosen).await.unwrap();
    assert!(gateway.sandbox_addr().is_some());
    gateway.stop().await.unwrap();
}
