//! The load generators: this executable started again with `--role`, so that a load runs in a process of its own, on the core it was pinned to.
//!
//! `direct` makes QueryBalance calls with a `SoaClient` of its own (the
//! baseline: what a service embedding the provider's protocol does);
//! `grpc` makes calls through the gateway. Each prints one JSON report.
//! After its load, `direct` also times the RSA work of one call on its
//! own core (a v2 signature with the merchant's key, the check of one of
//! the provider's), so that the gateway's CPU can be taken apart into RSA
//! and the rest with a figure measured seconds, not minutes, apart.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tonic::transport::Channel;
use yungate::grpc::proto::{
    self, member_service_client::MemberServiceClient, order_service_client::OrderServiceClient,
};
use yungate::provider::calls::{Call, Environment};
use yungate::provider::client::{SoaClient, SoaConfig};
use yungate::provider::crypto::{self, Backend, PartyKeys, Protocol, load_private_key_pem, load_public_key_pem};

pub const SYSID: &str = "1902271423530001";
pub const MEMBER: &str = "bench";
pub const ACCOUNT_SET: &str = "100000";

/// What a load process measured. Latencies and the rate cover the
/// measurement window (after the warm-up); `total_calls` covers the whole
/// run, for dividing a process's CPU time.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub window_calls: u64,
    pub window_secs: f64,
    pub total_calls: u64,
    /// This load process's own CPU time over the whole run.
    pub cpu_secs: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// `direct` only: seconds of RSA work per call, timed after the load.
    pub rsa_secs_per_call: Option<f64>,
}

impl Report {
    pub fn rate(&self) -> f64 {
        self.window_calls as f64 / self.window_secs
    }
}

/// How long and how hard a load runs.
#[derive(Clone, Copy)]
pub struct Shape {
    pub callers: usize,
    pub warmup: Duration,
    pub window: Duration,
}

/// What a load calls.
pub enum Target<'a> {
    /// `SoaClient` straight to the sandbox at `url` with the merchant's
    /// `key` and the provider's `pubkey`, computed by `backend`; the
    /// provider's own key signs what the RSA timing checks.
    Direct {
        url: &'a str,
        key: &'a std::path::Path,
        pubkey: &'a std::path::Path,
        provider_key: &'a std::path::Path,
        backend: Backend,
    },
    /// Through the gateway at `addr`: `balance` (QueryBalance), `create` (a
    /// new member each call: signed, recorded) or `replay` (one member
    /// again and again: replayed from the record).
    Grpc { addr: &'a str, call: &'static str },
}

/// Runs a load process on `cpu` and returns its report.
pub fn spawn(target: &Target<'_>, shape: Shape, cpu: Option<usize>) -> Report {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut command = crate::processes::command(exe.to_str().expect("a UTF-8 path"), cpu);
    command.arg("--role");
    match target {
        Target::Direct {
            url,
            key,
            pubkey,
            provider_key,
            backend,
        } => {
            command
                .args(["direct", url, backend.name()])
                .arg(key)
                .arg(pubkey)
                .arg(provider_key);
        }
        Target::Grpc { addr, call } => {
            command.args(["grpc", addr, call]);
        }
    }
    command.args([
        shape.callers.to_string(),
        shape.warmup.as_millis().to_string(),
        shape.window.as_millis().to_string(),
    ]);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the load process starts");
    // Its report is one line, well within a pipe's buffer: waiting before reading cannot block it.
    let deadline = std::time::Instant::now() + shape.warmup + shape.window + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the load process") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the load process did not end within two minutes of its window");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the load process failed: {status:?}");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("its stdout"), &mut text).expect("its report");
    serde_json::from_str(text.lines().last().unwrap_or_default()).expect("the load process's report")
}

/// One caller's job: a call, which must succeed.
type CallFn = Arc<dyn Fn(usize, u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// The `--role` entry point: `direct URL BACKEND KEY PUBKEY PROVIDER_KEY` or `grpc ADDR CALL`, then `CALLERS WARMUP_MS WINDOW_MS`.
pub fn run(args: &[String]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut rsa_of_a_call: Option<Box<dyn FnMut()>> = None;
    let (call, rest): (CallFn, &[String]) = runtime.block_on(async {
        match args[0].as_str() {
            "direct" => {
                let backend: Backend = args[2].parse().expect("a backend");
                let client = direct_client(&args[1], args[3].as_ref(), args[4].as_ref(), backend);
                rsa_of_a_call = Some(rsa_work(backend, args[3].as_ref(), args[5].as_ref()));
                let call: CallFn = Arc::new(move |_, _| {
                    let client = client.clone();
                    Box::pin(async move {
                        client
                            .call_value(
                                Call::QueryBalance,
                                json!({"bizUserId": MEMBER, "accountSetNo": ACCOUNT_SET}),
                            )
                            .await
                            .expect("QueryBalance");
                    })
                });
                (call, &args[6..])
            }
            "grpc" => {
                let channel = Channel::from_shared(format!("http://{}", args[1]))
                    .expect("an address")
                    .connect()
                    .await
                    .expect("the gateway accepts");
                let pid = std::process::id();
                let call: CallFn = match args[2].as_str() {
                    "balance" => Arc::new(move |_, _| {
                        let mut client = OrderServiceClient::new(channel.clone());
                        Box::pin(async move {
                            client
                                .query_balance(proto::QueryBalanceRequest {
                                    biz_user_id: MEMBER.into(),
                                    account_set_no: ACCOUNT_SET.into(),
                                })
                                .await
                                .expect("QueryBalance");
                        })
                    }),
                    which @ ("create" | "replay") => {
                        let replay = which == "replay";
                        Arc::new(move |caller, i| {
                            let mut client = MemberServiceClient::new(channel.clone());
                            let id = if replay {
                                format!("replay-{pid}")
                            } else {
                                format!("m{pid}c{caller}n{i}")
                            };
                            Box::pin(async move {
                                client
                                    .create_member(proto::CreateMemberRequest {
                                        biz_user_id: id,
                                        member_type: proto::MemberType::Individual as i32,
                                        source: proto::Source::Mobile as i32,
                                    })
                                    .await
                                    .expect("CreateMember");
                            })
                        })
                    }
                    other => panic!("unknown call {other}"),
                };
                (call, &args[3..])
            }
            other => panic!("unknown role {other}"),
        }
    });
    let callers: usize = rest[0].parse().expect("callers");
    let warmup = Duration::from_millis(rest[1].parse().expect("warm-up ms"));
    let window = Duration::from_millis(rest[2].parse().expect("window ms"));
    let cpu_before = crate::processes::cpu_seconds(std::process::id());
    let report = runtime.block_on(async move {
        // One call first, so that connections and any record exist before the clock starts.
        call(0, 0).await;
        let started = Instant::now();
        let (measure_from, stop_at) = (started + warmup, started + warmup + window);
        let mut tasks = tokio::task::JoinSet::new();
        for caller in 0..callers {
            let call = Arc::clone(&call);
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                let mut total = 0u64;
                loop {
                    let sent = Instant::now();
                    if sent >= stop_at {
                        break;
                    }
                    call(caller, total + 1).await;
                    total += 1;
                    if sent >= measure_from {
                        latencies.push(sent.elapsed());
                    }
                }
                (latencies, total)
            });
        }
        let mut latencies = Vec::new();
        let mut total_calls = 1u64;
        while let Some(done) = tasks.join_next().await {
            let (mine, total) = done.expect("a caller");
            latencies.extend(mine);
            total_calls += total;
        }
        latencies.sort();
        let at = |p: f64| {
            latencies
                .get(((latencies.len().max(1) - 1) as f64 * p).round() as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Report {
            window_calls: latencies.len() as u64,
            window_secs: window.as_secs_f64(),
            total_calls,
            cpu_secs: 0.0,
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            rsa_secs_per_call: None,
        }
    });
    let cpu_secs = crate::processes::cpu_seconds(std::process::id()) - cpu_before;
    // CPU time, like the figures it is subtracted from: on a shared
    // machine wall time also counts what the core gave to others. The load
    // is over and its runtime idle, so the process's CPU is this loop's.
    let rsa_secs_per_call = rsa_of_a_call.map(|mut work| {
        let budget = (window / 4).min(Duration::from_millis(400)).as_secs_f64();
        let pid = std::process::id();
        let (cpu_from, started, mut n) = (crate::processes::cpu_seconds(pid), Instant::now(), 0u32);
        // In batches, so that reading /proc costs little beside the work;
        // the wall-time bound ends the loop should /proc not answer.
        while n == 0
            || (crate::processes::cpu_seconds(pid) - cpu_from < budget
                && started.elapsed().as_secs_f64() < 10.0 * budget)
        {
            for _ in 0..8 {
                work();
            }
            n += 8;
        }
        let cpu = crate::processes::cpu_seconds(pid) - cpu_from;
        let spent = if cpu > 0.0 {
            cpu
        } else {
            started.elapsed().as_secs_f64()
        };
        spent / f64::from(n)
    });
    let report = Report {
        cpu_secs,
        rsa_secs_per_call,
        ..report
    };
    println!("{}", serde_json::to_string(&report).expect("a report"));
}

/// The RSA work of one QueryBalance with `backend`: the merchant's v2
/// signature of the request, the check of the provider's signature of an
/// answer.
fn rsa_work(backend: Backend, key: &std::path::Path, provider_key: &std::path::Path) -> Box<dyn FnMut()> {
    let own = load_private_key_pem(key)
        .expect("the merchant key")
        .with_backend(backend)
        .expect("a backend of this build");
    let provider = load_private_key_pem(provider_key)
        .expect("the provider key")
        .with_backend(backend)
        .expect("a backend of this build");
    let answer = crate::crypto::DATA;
    let signature = crypto::sign(Protocol::V2, &provider, answer).expect("the provider's signature");
    let peer = provider.public_key();
    Box::new(move || {
        std::hint::black_box(crypto::sign(Protocol::V2, &own, crate::crypto::DATA).expect("a signature"));
        crypto::verify(Protocol::V2, &peer, answer, &signature).expect("the provider's signature checks");
    })
}

/// A client of the sandbox at `url` with the merchant's keys, computed by `backend`.
pub fn direct_client(url: &str, key: &std::path::Path, pubkey: &std::path::Path, backend: Backend) -> SoaClient {
    SoaClient::new(
        SoaConfig {
            url: url.into(),
            sysid: SYSID.into(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(30),
            environment: Environment::Test,
        },
        PartyKeys {
            protocol: Protocol::V2,
            own: load_private_key_pem(key)
                .expect("the merchant key")
                .with_backend(backend)
                .expect("a backend of this build"),
            peer: load_public_key_pem(pubkey)
                .expect("the provider key")
                .with_backend(backend)
                .expect("a backend of this build"),
        },
    )
    .expect("a client")
}
