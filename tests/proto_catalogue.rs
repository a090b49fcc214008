//! The gRPC contract against the spec: an rpc for every backend and page call of calls.json, none invented, every request field present.

use std::collections::BTreeSet;
use std::path::PathBuf;

use prost_reflect::DescriptorPool;
use serde_json::Value;
use yungate::grpc::convert::wire_name;
use yungate::grpc::{DESCRIPTOR_SET, rpc_of};
use yungate::provider::calls::{Call, CallKind};

fn calls_json() -> Vec<Value> {
    let dir = std::env::var_os("YUNGATE_SPEC_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/spec"));
    let text =
        std::fs::read_to_string(dir.join("calls.json")).expect("../shared/spec/calls.json (or YUNGATE_SPEC_DIR)");
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn pool() -> DescriptorPool {
    DescriptorPool::decode(DESCRIPTOR_SET).unwrap()
}

#[test]
fn every_backend_and_page_call_has_an_rpc_and_no_rpc_is_invented() {
    let pool = pool();
    let spec = calls_json();
    let mut mapped = BTreeSet::new();
    for (json, call) in spec.iter().zip(Call::ALL) {
        let kind = call.spec().kind;
        let Some((service, rpc)) = rpc_of(call) else {
            assert_eq!(kind, CallKind::Notification, "{}", json["section"]);
            continue;
        };
        let svc = pool
            .get_service_by_name(&format!("yungate.v1.{service}"))
            .unwrap_or_else(|| panic!("service {service} missing"));
        let method = svc
            .methods()
            .find(|m| m.name() == rpc)
            .unwrap_or_else(|| panic!("{} {service}.{rpc} missing", json["section"]));
        assert!(
            mapped.insert(format!("{service}.{rpc}")),
            "{service}.{rpc} serves two calls"
        );
        // Every request field of the spec is in the request message (by wire name), except the
        // notification URL and the sysid the gateway fills in itself.
        let input = method.input();
        let wire: BTreeSet<String> = input.fields().map(|f| wire_name(&f)).collect();
        for field in json["request"].as_array().unwrap() {
            let name = field["name"].as_str().unwrap();
            if name == "backUrl" || (name == "sysid" && call == Call::QueryReserveFundBalance) {
                continue;
            }
            assert!(
                wire.contains(name),
                "{} {}: request field {name} missing",
                json["section"],
                input.full_name()
            );
        }
        if kind == CallKind::Backend {
            let output = method.output();
            let wire: BTreeSet<String> = output.fields().map(|f| wire_name(&f)).collect();
            for field in json["response"].as_array().unwrap() {
                let name = field["name"].as_str().unwrap();
                // memberInfo is a oneof of the two shapes.
                if name == "memberInfo" {
                    continue;
                }
                assert!(
                    wire.contains(name),
                    "{} {}: response field {name} missing",
                    json["section"],
                    output.full_name()
                );
            }
        } else {
            let link = method
                .output()
                .get_field_by_name("link")
                .expect("page responses carry a link");
            assert_eq!(link.kind().as_message().unwrap().full_name(), "yungate.v1.PageLink");
        }
    }
    // NotificationService (the fan-out of 4.1.7 and 4.2.12), OutcomeService (the timeline and
    // manual settlements) and ReconciliationService (4.3.2's file matched against the records) are
    // the gateway's own, no provider call's.
    let all: BTreeSet<String> = pool
        .services()
        .filter(|s| {
            !matches!(
                s.full_name(),
                "yungate.v1.NotificationService" | "yungate.v1.OutcomeService" | "yungate.v1.ReconciliationService"
            )
        })
        .flat_map(|s| {
            let service = s.name().to_owned();
            s.methods()
                .map(move |m| format!("{service}.{}", m.name()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(all, mapped, "rpcs without a call, or calls without an rpc");
    assert_eq!(mapped.len(), 47);
}

#[test]
fn misspelled_wire_names_stay_out_of_the_proto_json_names() {
    let pool = pool();
    let consume = pool.get_message_by_name("yungate.v1.ConsumeApplyRequest").unwrap();
    let receiver = consume.get_field_by_name("receiver_id").unwrap();
    assert_eq!(receiver.json_name(), "receiverId", "what JSON clients see");
    assert_eq!(wire_name(&receiver), "recieverId", "what the provider gets");
    for message in pool.all_messages() {
        for field in message.fields() {
            let typos = [
                "recieverId",
                "ordErexpireDatetime",
                "bizFreezenNo",
                "freezenAmount",
                "curFreezenAmount",
                "cardLenth",
                "tranceNum",
                "BizUserId",
                "IsQUICKPAYCard",
                "mobileFlowNO",
            ];
            assert!(
                !typos.contains(&field.json_name()),
                "{} shows {}",
                field.full_name(),
                field.json_name()
            );
        }
    }
}

#[test]
fn enum_numbers_equal_provider_codes() {
    let pool = pool();
    let member_type = pool.get_enum_by_name("yungate.v1.MemberType").unwrap();
    assert_eq!(
        member_type.get_value_by_name("MEMBER_TYPE_COMPANY").unwrap().number(),
        2
    );
    assert_eq!(
        member_type
            .get_value_by_name("MEMBER_TYPE_INDIVIDUAL")
            .unwrap()
            .number(),
        3
    );
    let status = pool.get_enum_by_name("yungate.v1.OrderStatus").unwrap();
    assert_eq!(
        status.get_value_by_name("ORDER_STATUS_IN_PROGRESS").unwrap().number(),
        99
    );
    let trade = pool.get_enum_by_name("yungate.v1.TradeCode").unwrap();
    assert_eq!(
        trade.get_value_by_name("TRADE_CODE_PAY_PURCHASE").unwrap().number(),
        4001
    );
}

#[test]
fn the_gateway_fills_back_url_exactly_where_the_spec_has_it() {
    use yungate::provider::calls::Fill;
    for (json, call) in calls_json().iter().zip(Call::ALL) {
        let has = json["request"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "backUrl");
        let fills = call.spec().fills.contains(&Fill::BackUrl);
        assert_eq!(has, fills, "{} backUrl", json["section"]);
        // Every field the gateway fills is a request field of the spec's call.
        for fill in call.spec().fills {
            let named = json["request"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == fill.field());
            assert!(
                named,
                "{} fills {} the spec does not list",
                json["section"],
                fill.field()
            );
        }
    }
}

#[test]
fn every_natural_idempotency_key_is_a_required_request_field_of_its_call() {
    use yungate::provider::calls::{CallKind, Idempotency};
    for (json, call) in calls_json().iter().zip(Call::ALL) {
        let spec = call.spec();
        if let Some(field) = spec.idempotency.natural_field() {
            let f = json["request"].as_array().unwrap().iter().find(|f| f["name"] == field);
            let f = f.unwrap_or_else(|| panic!("{} has no request field {field}", json["section"]));
            assert_eq!(f["required"], true, "{} {field}", json["section"]);
        }
        // A call that moves money is never without a natural key.
        if spec.moves_money {
            assert!(spec.idempotency.natural_field().is_some(), "{}", json["section"]);
        }
        // Pages and notifications never reach the provider stack as mutations.
        if spec.kind != CallKind::Backend {
            assert_eq!(spec.idempotency, Idempotency::Query, "{}", json["section"]);
        }
    }
}
