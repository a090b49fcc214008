//! OTLP trace export of a `yungate serve` process to a receiver in this test: spans per rpc and per provider call with their attributes, the caller's `traceparent` continued, and, with everything at trace level, no personal value or key material in any span or log line.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use support::harness::{CARD, ID_NO, NAME};
use support::rig::{Rig, confirm_request, deposit_request};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use yungate::grpc::proto::notification_service_client::NotificationServiceClient;
use yungate::grpc::proto::{
    self, member_service_client::MemberServiceClient, order_service_client::OrderServiceClient,
};
use yungate::provider::crypto::{Protocol, sign};
use yungate::provider::wire::{self, NotificationEnvelope};

/// What the receiver was sent: every span, and the resources' attributes.
#[derive(Default, Clone)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    resources: Arc<Mutex<Vec<Vec<KeyValue>>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        for resource_spans in request.into_inner().resource_spans {
            if let Some(resource) = resource_spans.resource {
                self.resources.lock().unwrap().push(resource.attributes);
            }
            for scope in resource_spans.scope_spans {
                self.spans.lock().unwrap().extend(scope.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC receiver on a free port.
async fn receiver() -> (SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let service = TraceServiceServer::new(received.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, received)
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).map(|a| text(&a.value))
}

/// Everything a span carries, as text: its name, attributes, events and theirs.
fn everything(span: &Span) -> String {
    let mut out = span.name.clone();
    for a in &span.attributes {
        out.push_str(&format!(" {}={}", a.key, text(&a.value)));
    }
    for e in &span.events {
        out.push_str(&format!(" [{}", e.name));
        for a in &e.attributes {
            out.push_str(&format!(" {}={}", a.key, text(&a.value)));
        }
        out.push(']');
    }
    if let Some(status) = &span.status {
        out.push_str(&format!(" status={}", status.message));
    }
    out
}

/// `request` carrying the caller's W3C trace context.
fn traced<T>(request: T) -> Request<T> {
    let mut request = Request::new(request);
    request
        .metadata_mut()
        .insert("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01").parse().unwrap());
    request
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_carry_the_calls_and_continue_the_callers_trace_and_nothing_personal() {
    let (otlp, received) = receiver().await;
    let rig = Rig::start(|_| {}, |_| {}).await;
    let endpoint = format!("http://{otlp}");
    let mut replica = rig.replica_process_with_env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_SERVICE_NAME", "yungate-under-test"),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        // Everything, ours and the libraries': the scan below must find nothing at any level.
        ("RUST_LOG", "trace"),
        ("YUNGATE_TRACE_FILTER", "trace"),
    ]);
    let channel: Channel = replica.channel().await;
    let mut events = NotificationServiceClient::new(channel.clone())
        .subscribe(proto::SubscribeRequest {
            subscriber: "traced".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let phone = "13900139000";
    support::flow::onboard(&channel, "t1", phone).await;
    let mut orders = OrderServiceClient::new(channel.clone());
    // One business trace of the caller's across the order and its confirmation.
    orders
        .deposit_apply(traced(deposit_request("t-dep-1", "t1", 500)))
        .await
        .unwrap();
    orders
        .confirm_pay_sms(traced(confirm_request("t1", "t-dep-1", "9999")))
        .await
        .unwrap();
    // The provider's order result (4.2.12) for it, to this replica's ingress.
    let rps = r#"{"service":"OrderService","method":"pay","status":"OK","returnValue":{"orderNo":"yun-t","bizOrderNo":"t-dep-1","amount":500,"payDatetime":"2026-12-01 10:00:00","buyerBizUserId":"t1"}}"#;
    let timestamp = wire::format_timestamp(time::OffsetDateTime::now_utc());
    let sysid = &rig.config.provider.sysid;
    let form = NotificationEnvelope {
        sysid: sysid.clone(),
        sign: sign(
            Protocol::V1,
            &rig.keys.own,
            &wire::notification_signing_string(sysid, rps, &timestamp),
        )
        .unwrap(),
        timestamp,
        v: "1.0".into(),
        rps: rps.into(),
    }
    .to_form();
    let posted = reqwest::Client::new()
        .post(format!("http://{}/notify", replica.notify_addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.message())
        .await
        .expect("delivered")
        .unwrap()
        .unwrap();
    assert_eq!(event.biz_order_no, "t-dep-1");
    drop(events);
    let invalid = orders
        .query_balance(proto::QueryBalanceRequest::default())
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let refused = MemberServiceClient::new(channel.clone())
        .get_member_info(proto::GetMemberInfoRequest {
            biz_user_id: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    // SIGTERM: the gateway drains, and the process exports what is left before it exits.
    let status = replica.terminate();
    assert!(status.success(), "{status:?}");

    let spans = received.spans.lock().unwrap().clone();
    let named = |name: &str| -> Vec<&Span> { spans.iter().filter(|s| s.name == name).collect() };
    let resources = received.resources.lock().unwrap().clone();
    assert!(
        resources
            .iter()
            .flatten()
            .any(|a| a.key == "service.name" && text(&a.value) == "yungate-under-test"),
        "OTEL_SERVICE_NAME names the service"
    );

    // The rpc span continues the caller's trace (W3C traceparent).
    let rpc = named("yungate.v1.OrderService/DepositApply");
    assert_eq!(rpc.len(), 1, "{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    let rpc = rpc[0];
    assert_eq!(hex::encode(&rpc.trace_id), TRACE_ID);
    assert_eq!(hex::encode(&rpc.parent_span_id), PARENT_ID);
    assert_eq!(attribute(rpc, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attribute(rpc, "rpc.service").as_deref(),
        Some("yungate.v1.OrderService")
    );
    assert_eq!(attribute(rpc, "rpc.method").as_deref(), Some("DepositApply"));
    assert_eq!(attribute(rpc, "rpc.grpc.status_code").as_deref(), Some("0"));
    assert_eq!(attribute(rpc, "caller").as_deref(), Some("anonymous"));
    // Its provider call, in the same trace: the order, the record, the quota.
    let call = named("OrderService.depositApply");
    assert_eq!(call.len(), 1);
    let call = call[0];
    assert_eq!(call.trace_id, rpc.trace_id);
    assert_eq!(call.parent_span_id, rpc.span_id);
    assert_eq!(attribute(call, "biz_order_no").as_deref(), Some("t-dep-1"));
    assert_eq!(attribute(call, "idempotency").as_deref(), Some("executed"));
    assert_eq!(attribute(call, "rate_limit").as_deref(), Some("allowed"));
    assert_eq!(attribute(call, "attempt").as_deref(), Some("first"));
    // And its one HTTP exchange.
    let exchange = named("POST OrderService.depositApply");
    assert_eq!(exchange.len(), 1);
    assert_eq!(exchange[0].parent_span_id, call.span_id);
    assert_eq!(attribute(exchange[0], "outcome").as_deref(), Some("ok"));
    // A caller's mistake is not a server error; a provider refusal carries its code (section 7: 30001).
    let invalid = named("yungate.v1.OrderService/QueryBalance")[0];
    assert_eq!(attribute(invalid, "rpc.grpc.status_code").as_deref(), Some("3"));
    assert_ne!(invalid.status.as_ref().map(|s| s.code), Some(2), "not an error span");
    let lookup = named("POST MemberService.getMemberInfo");
    assert!(
        lookup
            .iter()
            .any(|s| attribute(s, "error_code").as_deref() == Some("30001")
                && attribute(s, "outcome").as_deref() == Some("business_error")),
        "{lookup:?}"
    );

    // The notification's ingest and its delivery link to the trace of the order's calls.
    let linked_to_order = |s: &&Span| s.links.iter().any(|l| hex::encode(&l.trace_id) == TRACE_ID);
    let ingest = named("POST /notify");
    assert_eq!(ingest.len(), 1);
    assert_eq!(attribute(ingest[0], "biz_order_no").as_deref(), Some("t-dep-1"));
    assert_eq!(attribute(ingest[0], "result").as_deref(), Some("accepted"));
    assert!(ingest.iter().any(linked_to_order), "{:?}", ingest[0].links);
    let delivery = named("deliver notification");
    assert_eq!(attribute(delivery[0], "subscriber").as_deref(), Some("traced"));
    assert!(delivery.iter().any(linked_to_order), "{:?}", delivery[0].links);

    // Nothing personal, no key material, in any span or log line (at trace level, libraries included).
    let key_pem = std::fs::read_to_string(rig.config.provider.key.as_ref().unwrap()).unwrap();
    let key_lines: Vec<&str> = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 32)
        .collect();
    assert!(!key_lines.is_empty());
    let log = replica.log();
    assert!(log.len() > 100, "trace-level logs were written");
    let exported: Vec<String> = spans.iter().map(everything).collect();
    assert!(exported.len() > 20, "library spans were exported too");
    for (what, texts) in [("span", &exported), ("log line", &log)] {
        for t in texts {
            for secret in [CARD, ID_NO, NAME, phone].iter().chain(key_lines.iter()) {
                assert!(!t.contains(secret), "a personal value or key material in a {what}");
            }
            assert!(!t.contains("PRIVATE KEY"), "key material in a {what}");
        }
    }
}
