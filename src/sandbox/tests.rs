//! Tests of the sandbox's gate, driven with raw forms (the HTTP path is covered in tests/sandbox_member.rs).

use std::sync::OnceLock;

use serde_json::json;

use super::*;
use crate::provider::crypto::PrivateKey;

const SYSID: &str = "1902271423530001";

fn merchant_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(1024).unwrap())
}

fn shared() -> Shared {
    let key = merchant_key().clone();
    Shared::new(SandboxConfig::new(
        SYSID,
        PartyKeys {
            protocol: Protocol::V1,
            peer: key.public_key(),
            own: key,
        },
    ))
}

fn form(req: &Value, timestamp: &str, key: &PrivateKey) -> Vec<u8> {
    let keys = PartyKeys {
        protocol: Protocol::V1,
        own: key.clone(),
        peer: key.public_key(),
    };
    crate::provider::client::sign_request(&keys, SYSID.into(), req.to_string(), timestamp.into())
        .unwrap()
        .to_form()
        .into_bytes()
}

fn now() -> String {
    wire::format_timestamp(OffsetDateTime::now_utc())
}

fn answer(shared: &Shared, form: &[u8]) -> Value {
    serde_json::from_str(&handle(shared, form).0).unwrap()
}

#[test]
fn missing_parameters_are_10001() {
    let a = answer(&shared(), b"sysid=1");
    assert_eq!(a["status"], "error");
    assert_eq!(a["errorCode"], "10001");
}

#[test]
fn unknown_method_is_refused_with_its_name() {
    let f = form(
        &json!({"service":"MemberService","method":"nope","param":{}}),
        &now(),
        merchant_key(),
    );
    let a = answer(&shared(), &f);
    assert_eq!(a["errorCode"], "10000");
    assert!(a["message"].as_str().unwrap().contains("MemberService.nope"));
}

#[test]
fn wrong_sysid_and_version_are_refused() {
    let s = shared();
    let f = String::from_utf8(form(
        &json!({"service":"MemberService","method":"createMember","param":{}}),
        &now(),
        merchant_key(),
    ))
    .unwrap();
    let a = answer(&s, f.replace(SYSID, "42").as_bytes());
    assert_eq!(a["errorCode"], "20000");
    let a = answer(&s, f.replace("v=1.0", "v=2.0").as_bytes());
    assert_eq!(a["errorCode"], "10000");
}

#[test]
fn success_is_signed_over_signed_value() {
    let s = shared();
    let f = form(
        &json!({"service":"MemberService","method":"createMember","param":{"bizUserId":"u1","memberType":3,"source":"2"}}),
        &now(),
        merchant_key(),
    );
    let a = answer(&s, &f);
    assert_eq!(a["status"], "OK", "{a}");
    let sv = a["signedValue"].as_str().unwrap();
    s.config.keys.verify(sv, a["sign"].as_str().unwrap()).unwrap();
    let v: Value = serde_json::from_str(sv).unwrap();
    assert_eq!(v["bizUserId"], "u1");
}

mod conservation {
    //! Money is conserved: random sequences of money-moving calls never create or lose a fen.

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::provider::calls::Call;

    const MEMBERS: [&str; 4] = ["m0", "m1", "m2", "m3"];
    const CARD: &str = "6228480402637874214";

    #[derive(Debug, Clone)]
    enum Op {
        Deposit {
            who: usize,
            amount: i64,
            fee: i64,
        },
        Consume {
            payer: usize,
            receiver: usize,
            amount: i64,
            fee: i64,
            split_to: usize,
            split: i64,
        },
        Collect {
            payer: usize,
            amount: i64,
            fee: i64,
        },
        AgentPay {
            to: usize,
            amount: i64,
            fee: i64,
            to_card: bool,
        },
        Refund {
            of: usize,
            amount: i64,
            fee: i64,
        },
        Transfer {
            to: usize,
            amount: i64,
        },
        Freeze {
            who: usize,
            amount: i64,
        },
        Unfreeze {
            of: usize,
            amount: i64,
        },
        Withdraw {
            who: usize,
            amount: i64,
            fee: i64,
        },
        BatchPay {
            to: [usize; 2],
            amount: i64,
            to_card: bool,
        },
        /// The bank answers every pending payout.
        BankAnswers,
    }

    /// Mostly amounts that find the money, sometimes any i64 at all, or
    /// amounts at the bound (which must neither panic nor wrap).
    fn money(small: std::ops::Range<i64>) -> impl Strategy<Value = i64> + Clone {
        use crate::provider::formats::MAX_AMOUNT_FEN;
        prop_oneof![
            8 => small,
            1 => proptest::prelude::any::<i64>(),
            1 => (MAX_AMOUNT_FEN - 2)..=(MAX_AMOUNT_FEN + 2),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        let who = 0..MEMBERS.len();
        let amount = money(1i64..5_000);
        let fee = money(0i64..200);
        prop_oneof![
            (who.clone(), amount.clone(), fee.clone()).prop_map(|(who, amount, fee)| Op::Deposit { who, amount, fee }),
            (
                who.clone(),
                who.clone(),
                amount.clone(),
                fee.clone(),
                who.clone(),
                0i64..300
            )
                .prop_map(|(payer, receiver, amount, fee, split_to, split)| Op::Consume {
                    payer,
                    receiver,
                    amount,
                    fee,
                    split_to,
                    split
                }),
            (who.clone(), amount.clone(), fee.clone()).prop_map(|(payer, amount, fee)| Op::Collect {
                payer,
                amount,
                fee
            }),
            // Smaller amounts out of pools and refunds, so that more of them find the money.
            (who.clone(), money(1i64..1_500), fee.clone(), proptest::bool::ANY).prop_map(
                |(to, amount, fee, to_card)| Op::AgentPay {
                    to,
                    amount,
                    fee,
                    to_card,
                }
            ),
            (0usize..40, money(1i64..1_500), fee.clone()).prop_map(|(of, amount, fee)| Op::Refund { of, amount, fee }),
            (who.clone(), who.clone(), money(1i64..800), proptest::bool::ANY).prop_map(|(a, b, amount, to_card)| {
                Op::BatchPay {
                    to: [a, b],
                    amount,
                    to_card,
                }
            }),
            Just(Op::BankAnswers),
            (who.clone(), amount.clone()).prop_map(|(to, amount)| Op::Transfer { to, amount }),
            (who.clone(), amount.clone()).prop_map(|(who, amount)| Op::Freeze { who, amount }),
            (0usize..40, amount.clone()).prop_map(|(of, amount)| Op::Unfreeze { of, amount }),
            (who, amount, fee).prop_map(|(who, amount, fee)| Op::Withdraw { who, amount, fee }),
        ]
    }

    /// Bank payouts fail or stay pending now and then, so that every path of the books is walked.
    fn payout_faults() -> Faults {
        Faults {
            payouts: super::super::faults::PayoutFaults {
                fail_rate: 0.2,
                pending_rate: 0.3,
                pending_ms: Some(0),
            },
            ..Faults::default()
        }
    }

    fn call(state: &mut SandboxState, config: &SandboxConfig, c: Call, v: Value) -> Result<Value, Reject> {
        refuse_locked(state, c, &v).and_then(|()| dispatch(state, config, &payout_faults(), c, &v))
    }

    /// Members with phones, real names and a real-name-pay card.
    fn setup(state: &mut SandboxState, config: &SandboxConfig) {
        for id in MEMBERS {
            call(
                state,
                config,
                Call::CreateMember,
                json!({"bizUserId": id, "memberType": 3, "source": 1}),
            )
            .unwrap();
            call(
                state,
                config,
                Call::SetRealName,
                json!({"bizUserId": id, "name": "n", "identityType": 1, "identityNo": "610422198600000000"}),
            )
            .unwrap();
            call(
                state,
                config,
                Call::SendVerificationCode,
                json!({"bizUserId": id, "phone": "13800000000", "verificationCodeType": 9}),
            )
            .unwrap();
            call(
                state,
                config,
                Call::BindPhone,
                json!({"bizUserId": id, "phone": "13800000000", "verificationCode": "9999"}),
            )
            .unwrap();
            let applied = call(
                state,
                config,
                Call::ApplyBindBankCard,
                json!({"bizUserId": id, "cardNo": CARD, "phone": "13800000000",
                "name": "n", "cardCheck": 3, "identityType": 1, "identityNo": "610422198600000000"}),
            )
            .unwrap();
            call(state, config, Call::BindBankCard, json!({"bizUserId": id, "tranceNum": applied["tranceNum"], "phone": "13800000000", "verificationCode": "9999"})).unwrap();
        }
    }

    fn order_common(no: &str, amount: i64, fee: i64) -> Value {
        json!({"bizOrderNo": no, "amount": amount, "fee": fee, "validateType": 1, "backUrl": "http://127.0.0.1:9/n",
               "industryCode": "1010", "industryName": "x", "source": 1, "accountSetNo": "100000"})
    }

    fn merge(mut a: Value, b: Value) -> Value {
        a.as_object_mut().unwrap().extend(b.as_object().unwrap().clone());
        a
    }

    fn apply_op(
        state: &mut SandboxState,
        config: &SandboxConfig,
        n: usize,
        op: &Op,
        orders: &mut Vec<(String, String)>,
        freezes: &mut Vec<(String, String)>,
    ) {
        let no = format!("o{n}");
        let confirm = |state: &mut SandboxState, who: &str, no: &str| {
            call(
                state,
                config,
                Call::PayBackendSms,
                json!({"bizUserId": who, "bizOrderNo": no, "verificationCode": "9999", "consumerIp": "1"}),
            )
        };
        match *op {
            Op::Deposit { who, amount, fee } => {
                let p = merge(
                    order_common(&no, amount, fee),
                    json!({"bizUserId": MEMBERS[who],
                    "payMethod": {"REALNAMEPAY": {"bankCardNo": CARD, "amount": amount}}}),
                );
                if call(state, config, Call::DepositApply, p).is_ok() {
                    let _ = confirm(state, MEMBERS[who], &no);
                }
            }
            Op::Consume {
                payer,
                receiver,
                amount,
                fee,
                split_to,
                split,
            } => {
                let p = merge(
                    order_common(&no, amount, fee),
                    json!({"payerId": MEMBERS[payer], "recieverId": MEMBERS[receiver],
                    "splitRule": [{"bizUserId": MEMBERS[split_to], "amount": split, "fee": split / 10}],
                    "payMethod": {"BALANCE": [{"accountSetNo": "100000", "amount": amount}]}}),
                );
                if call(state, config, Call::ConsumeApply, p).is_ok() && confirm(state, MEMBERS[payer], &no).is_ok() {
                    orders.push((no, MEMBERS[payer].to_owned()));
                }
            }
            Op::Collect { payer, amount, fee } => {
                let p = merge(
                    order_common(&no, amount, fee),
                    json!({"payerId": MEMBERS[payer], "tradeCode": "3001",
                    "payMethod": {"BALANCE": [{"accountSetNo": "100000", "amount": amount}]}}),
                );
                if call(state, config, Call::AgentCollectApplySimplify, p).is_ok()
                    && confirm(state, MEMBERS[payer], &no).is_ok()
                {
                    orders.push((no, MEMBERS[payer].to_owned()));
                }
            }
            Op::AgentPay {
                to,
                amount,
                fee,
                to_card,
            } => {
                let mut p = merge(
                    order_common(&no, amount, fee),
                    json!({"bizUserId": MEMBERS[to], "tradeCode": "4001"}),
                );
                if to_card {
                    p["payToBankCardInfo"] = json!({"bankCardNo": CARD, "amount": amount.saturating_sub(fee),
                                                    "withdrawType": "T0", "backUrl": "http://127.0.0.1:9/n"});
                }
                let _ = call(state, config, Call::SignalAgentPaySimplify, p);
            }
            Op::BatchPay { to, amount, to_card } => {
                let items: Vec<Value> = to
                    .iter()
                    .enumerate()
                    .map(|(i, who)| {
                        let mut item = json!({"bizOrderNo": format!("{no}-{i}"), "bizUserId": MEMBERS[*who],
                                              "accountSetNo": "100000", "amount": amount, "fee": 0,
                                              "backUrl": "http://127.0.0.1:9/n"});
                        if to_card {
                            item["payToBankCardInfo"] = json!({"bankCardNo": CARD, "amount": amount,
                                                               "backUrl": "http://127.0.0.1:9/n"});
                        }
                        item
                    })
                    .collect();
                let _ = call(
                    state,
                    config,
                    Call::BatchAgentPaySimplify,
                    json!({"bizBatchNo": no, "tradeCode": "4001", "batchPayList": items}),
                );
            }
            Op::BankAnswers => {
                super::super::orders::finish_due_payouts(state, OffsetDateTime::now_utc() + time::Duration::days(1));
            }
            Op::Refund { of, amount, fee } => {
                if let Some((ori, payer)) = orders.get(of % orders.len().max(1)).cloned() {
                    let _ = call(
                        state,
                        config,
                        Call::Refund,
                        json!({"bizOrderNo": no, "oriBizOrderNo": ori, "bizUserId": payer,
                        "amount": amount, "feeAmount": fee.min(amount)}),
                    );
                }
            }
            Op::Transfer { to, amount } => {
                let _ = call(
                    state,
                    config,
                    Call::ApplicationTransfer,
                    json!({"bizTransferNo": no, "sourceAccountSetNo": "2000000",
                    "targetBizUserId": MEMBERS[to], "targetAccountSetNo": "100000", "amount": amount}),
                );
            }
            Op::Freeze { who, amount } => {
                if call(
                    state,
                    config,
                    Call::FreezeMoney,
                    json!({"bizUserId": MEMBERS[who], "bizFreezenNo": no, "accountSetNo": "100000", "amount": amount}),
                )
                .is_ok()
                {
                    freezes.push((no, MEMBERS[who].to_owned()));
                }
            }
            Op::Unfreeze { of, amount } => {
                if let Some((f, who)) = freezes.get(of % freezes.len().max(1)).cloned() {
                    let _ = call(
                        state,
                        config,
                        Call::UnfreezeMoney,
                        json!({"bizUserId": who, "bizFreezenNo": f, "accountSetNo": "100000", "amount": amount}),
                    );
                }
            }
            Op::Withdraw { who, amount, fee } => {
                let p = merge(
                    order_common(&no, amount, fee),
                    json!({"bizUserId": MEMBERS[who], "bankCardNo": CARD}),
                );
                if call(state, config, Call::WithdrawApply, p).is_ok() {
                    let _ = confirm(state, MEMBERS[who], &no);
                }
            }
        }
    }

    fn check_books(state: &SandboxState) -> Result<(), TestCaseError> {
        let ledger = &state.books.ledger;
        prop_assert_eq!(
            ledger.total(),
            i128::from(ledger.net_inflow()),
            "balances must equal money in minus money out"
        );
        for (key, b) in ledger.accounts() {
            prop_assert!(b.balance >= 0, "{:?} went negative: {}", key, b.balance);
            prop_assert!(
                b.frozen >= 0 && b.frozen <= b.balance,
                "{:?} frozen {} of {}",
                key,
                b.frozen,
                b.balance
            );
        }
        let a = ledger.balance(&super::super::ledger::AccountKey::platform(
            super::super::order::sets::INTERMEDIATE_A,
        ));
        let pooled: i128 = state.books.pools.values().map(|v| i128::from(*v)).sum();
        let in_flight: i128 = state.books.in_flight.values().map(|v| i128::from(*v)).sum();
        prop_assert_eq!(
            i128::from(a.balance),
            pooled + in_flight,
            "intermediate account A holds exactly the collected pools and the agent pays in flight"
        );
        for (no, amount) in &state.books.in_flight {
            let order = state.orders.get(no);
            prop_assert!(
                order.is_some_and(|o| o.status == super::super::order::OrderStatus::Pending && o.amount == *amount),
                "money in flight for {} belongs to a pending order",
                no
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn money_is_conserved(ops in proptest::collection::vec(op(), 1..40)) {
            let shared = shared();
            let config = &shared.config;
            let mut state = SandboxState::new("100000", 1_000_000, 0, 1);
            setup(&mut state, config);
            check_books(&state)?;
            let mut orders = Vec::new();
            let mut freezes = Vec::new();
            for (n, op) in ops.iter().enumerate() {
                apply_op(&mut state, config, n, op, &mut orders, &mut freezes);
                check_books(&state)?;
            }
        }
    }
}

mod malformed {
    //! Malformed requests never panic the sandbox and always get a section 7 error.

    use proptest::prelude::*;
    // Named: the sandbox module's own `any` (axum routing) is also in scope.
    use proptest::prelude::any;

    use super::*;
    use crate::provider::calls::{Call, CallKind};
    use crate::provider::errors;

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-zA-Z0-9#%_ -]{0,24}".prop_map(Value::String),
            Just(json!("6228480402637874214")),
            Just(json!("100000")),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("bizUserId".to_owned()),
                        Just("amount".to_owned()),
                        Just("payMethod".to_owned()),
                        Just("BALANCE".to_owned()),
                        Just("splitRule".to_owned()),
                        Just("accountSetNo".to_owned()),
                        "[a-zA-Z]{1,12}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_get_an_error_answer(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let s = shared();
            let (text, hang) = handle(&s, &bytes);
            let answer: Value = serde_json::from_str(&text).unwrap();
            prop_assert!(!hang);
            prop_assert_eq!(&answer["status"], "error");
            prop_assert!(errors::lookup(answer["errorCode"].as_str().unwrap()).is_some(), "{}", answer);
        }

        #[test]
        fn arbitrary_params_for_every_call_never_panic(params in proptest::collection::vec(arbitrary_json(), 41)) {
            let s = shared();
            let mut state = s.state.lock().unwrap();
            let backend = Call::ALL.into_iter().filter(|c| c.spec().kind == CallKind::Backend);
            for (call, param) in backend.zip(params) {
                let param = match param {
                    Value::Object(_) => param,
                    other => json!({ "bizUserId": "x", "payMethod": other }),
                };
                if let Err(reject) = dispatch(&mut state, &s.config, &Faults::default(), call, &param) {
                    prop_assert!(errors::lookup(reject.code).is_some(), "{:?} gave unknown code {}", call, reject.code);
                }
            }
        }
    }
}

#[test]
fn what_the_sandbox_remembers_prints_without_personal_data() {
    use super::state::{BoundCard, Member, PendingCode, RealName};
    use crate::provider::codes::{MemberType, Source};
    let now = time::OffsetDateTime::now_utc();
    let member = Member {
        user_id: "u-1".into(),
        biz_user_id: "biz-1".into(),
        member_type: MemberType::Individual,
        source: Source::Mobile,
        registered_at: now,
        phone: Some("13900001111".into()),
        real_name: Some(RealName {
            name: "王小二".into(),
            identity_type: 1,
            identity_no: "610422198600000000".into(),
            verified_at: now,
        }),
        pending_codes: std::collections::HashMap::from([(
            "13900002222".into(),
            PendingCode {
                code: "987654".into(),
                code_type: 9,
                expires_at: now,
            },
        )]),
        locked: false,
        cards: vec![BoundCard {
            card_no: "6228480402637874214".into(),
            bank_name: "农业银行".into(),
            card_type: 1,
            phone: Some("13900003333".into()),
            bind_method: 3,
            bound_at: now,
            bound: true,
            safe: false,
        }],
        company: None,
        quick_pay_password: Some("q-secret".into()),
        pay_password: Some("p-secret".into()),
    };
    let printed = format!("{member:?} {:?} {:?}", member.real_name, member.cards);
    assert!(printed.contains("biz-1"), "{printed}");
    for secret in [
        "13900001111",
        "13900002222",
        "13900003333",
        "王小二",
        "610422198600000000",
        "987654",
        "6228480402637874214",
        "q-secret",
        "p-secret",
    ] {
        assert!(!printed.contains(secret), "{secret} printed: {printed}");
    }
}
