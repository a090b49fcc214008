//! Sections 2 and 3: signed calls through `yungate serve` against a `SoaClient` calling directly, with each backend; an idempotent replay against a signed call.
//!
//! Separate processes: the sandbox, the gateway, and a load generator (see
//! `load.rs`). Keeping the gateway's CPU apart from the sandbox's: the
//! gateway (or, for the baseline, the direct client) is pinned to core 0;
//! the sandbox and the gRPC load generator share core 1 (`taskset`, when it
//! works here; the table says whether it did). The profile is v2, so the
//! sandbox signs with an RSA-1024 key of its own while the merchant signs
//! with RSA-2048: the provider side costs little and core 0 is the one
//! that saturates. The gateway's CPU per call comes from its /proc CPU
//! time over the load's calls; its own work is that less the RSA work of a
//! call measured in section 1 (one RSA-2048 v2 signature, one RSA-1024
//! verification).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use yungate::provider::calls::Call;
use yungate::provider::crypto::{Backend, PrivateKey};

use crate::crypto::RsaCost;
use crate::load::{self, Shape, Target};
use crate::processes::{self, Child, YUNGATE};
use crate::table::{Goal, Table};

const SECTION_CALLS: &str =
    "2. QueryBalance through the gateway against a SoaClient calling directly, on the same core";
const SECTION_REPLAY: &str =
    "3. CreateMember replayed from the idempotency record against CreateMember signed and sent";

/// The keys of the run, as PEM files.
pub struct Files {
    pub dir: PathBuf,
    pub merchant_key: PathBuf,
    pub merchant_pub: PathBuf,
    pub provider_key: PathBuf,
    pub provider_pub: PathBuf,
}

impl Files {
    /// The merchant's RSA-2048 pair and the sandbox's RSA-1024 pair, written to `dir`.
    pub fn write(dir: &Path) -> Files {
        let merchant = PrivateKey::generate(2048).expect("key generation");
        let provider = PrivateKey::generate(1024).expect("key generation");
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("a key file");
            path
        };
        Files {
            dir: dir.to_path_buf(),
            merchant_key: write("merchant-key.pem", merchant.to_pkcs8_pem().unwrap()),
            merchant_pub: write("merchant-pub.pem", merchant.public_key().to_pem()),
            provider_key: write("provider-key.pem", provider.to_pkcs8_pem().unwrap()),
            provider_pub: write("provider-pub.pem", provider.public_key().to_pem()),
        }
    }
}

/// A running `yungate sandbox` (v2, its own RSA-1024 key).
pub struct Sandbox {
    _child: Child,
    pub url: String,
}

pub fn start_sandbox(files: &Files, cpu: Option<usize>) -> Sandbox {
    let [port] = processes::free_ports();
    let mut command = processes::command(YUNGATE, cpu);
    command
        .args([
            "sandbox",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--protocol",
            "v2",
            "--seed",
            "1",
        ])
        .arg("--pubkey")
        .arg(&files.merchant_pub)
        .arg("--provider-key")
        .arg(&files.provider_key)
        .env("RUST_LOG", "warn");
    let mut child = Child::spawn(command);
    processes::wait_for_port(port, "the sandbox", &mut child);
    Sandbox {
        _child: child,
        url: format!("http://127.0.0.1:{port}/service/soa"),
    }
}

/// A running `yungate serve` in front of a sandbox.
pub struct Gateway {
    pub child: Child,
    pub addr: String,
}

/// Starts the gateway with `backend`, quotas out of the way, the memory
/// store or Redis at `redis`.
pub fn start_gateway(
    files: &Files,
    sandbox: &Sandbox,
    backend: Backend,
    cpu: Option<usize>,
    redis: Option<&str>,
) -> Gateway {
    let [port, notify] = processes::free_ports();
    let mut config = format!(
        "listen = \"127.0.0.1:{port}\"\n\
         [notify]\nlisten = \"127.0.0.1:{notify}\"\n\
         [provider]\nurl = \"{url}\"\nsysid = \"{sysid}\"\nprotocol = \"v2\"\nkey = \"{key}\"\npubkey = \"{pubkey}\"\nmax_in_flight = 4096\n",
        url = sandbox.url,
        sysid = load::SYSID,
        key = files.merchant_key.display(),
        pubkey = files.provider_pub.display(),
    );
    // The benchmark measures the gateway, not the provider quota it enforces.
    for class in ["query", "member", "order"] {
        config.push_str(&format!(
            "[rate_limit.provider.{class}]\nper_second = 1000000\nburst = 1000000\n"
        ));
    }
    if let Some(url) = redis {
        config.push_str(&format!(
            "[store]\nredis_url = \"{url}\"\n[idempotency]\nfingerprint_key = \"bench-fingerprint-key-0123456789abcdef\"\n"
        ));
    }
    let path = files.dir.join(format!("gateway-{port}.toml"));
    std::fs::write(&path, config).expect("the gateway's configuration");
    let mut command = processes::command(YUNGATE, cpu);
    command
        .args(["--crypto-backend", backend.name(), "serve", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn");
    let mut child = Child::spawn(command);
    processes::wait_for_port(port, "the gateway", &mut child);
    Gateway {
        child,
        addr: format!("127.0.0.1:{port}"),
    }
}

/// Runs a load against the gateway and returns its report and the gateway's CPU seconds per call.
fn through(gateway: &Gateway, call: &'static str, shape: Shape, cpu: Option<usize>) -> (load::Report, f64) {
    let before = processes::cpu_seconds(gateway.child.pid());
    let report = load::spawn(
        &Target::Grpc {
            addr: &gateway.addr,
            call,
        },
        shape,
        cpu,
    );
    let used = processes::cpu_seconds(gateway.child.pid()) - before;
    let per_call = used / report.total_calls as f64;
    (report, per_call)
}

pub fn run(table: &mut Table, files: &Files, costs: &HashMap<Backend, RsaCost>, measuring: bool) {
    let pin = processes::pinning();
    let (gateway_core, other_core) = (pin.map(|p| p.0), pin.map(|p| p.1));
    let (warmup, window) = if measuring {
        (Duration::from_millis(700), Duration::from_secs(4))
    } else {
        (Duration::from_millis(50), Duration::from_millis(200))
    };
    let loaded = Shape {
        callers: if measuring { 16 } else { 2 },
        warmup,
        window,
    };
    let unloaded = Shape { callers: 1, ..loaded };
    let sandbox = start_sandbox(files, other_core);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let setup = load::direct_client(
            &sandbox.url,
            &files.merchant_key,
            &files.provider_pub,
            Backend::current(),
        );
        setup
            .call_value(
                Call::CreateMember,
                json!({"bizUserId": load::MEMBER, "memberType": 3, "source": 2}),
            )
            .await
            .expect("the benchmark's member");
    });
    let pinned = match pin {
        Some(_) => "gateway or direct client on core 0; sandbox and gRPC load on core 1",
        None => "NOT pinned (taskset unavailable or one core): CPU figures include the sandbox's share of the cores",
    };
    table.note(SECTION_CALLS, format!("placement: {pinned}"));
    for &backend in Backend::AVAILABLE {
        let direct = |shape| {
            load::spawn(
                &Target::Direct {
                    url: &sandbox.url,
                    key: &files.merchant_key,
                    pubkey: &files.provider_pub,
                    backend,
                },
                shape,
                gateway_core,
            )
        };
        let direct_loaded = direct(loaded);
        let direct_unloaded = direct(unloaded);
        let gateway = start_gateway(files, &sandbox, backend, gateway_core, None);
        let (via_loaded, cpu_loaded) = through(&gateway, "balance", loaded, other_core);
        let (via_unloaded, cpu_unloaded) = through(&gateway, "balance", unloaded, other_core);
        let rsa = costs[&backend].per_call;
        let direct_cpu = direct_loaded.cpu_secs / direct_loaded.total_calls as f64;
        let c = loaded.callers;
        table.ratio(
            SECTION_CALLS,
            format!("{backend}: calls/s, {c} callers"),
            (via_loaded.rate(), "/s"),
            (direct_loaded.rate(), "/s direct"),
            (backend == Backend::OpenSsl).then_some(Goal::RatioAtLeast(0.9)),
        );
        table.ratio(
            SECTION_CALLS,
            format!("{backend}: gateway CPU per call, {c} callers"),
            (cpu_loaded * 1e3, "ms"),
            (direct_cpu * 1e3, "ms direct client"),
            None,
        );
        table.ratio(
            SECTION_CALLS,
            format!("{backend}: gateway CPU per call less the direct client's, {c} callers"),
            ((cpu_loaded - direct_cpu) * 1e3, "ms"),
            ((direct_cpu - rsa) * 1e3, "ms direct client less RSA"),
            None,
        );
        table.ratio(
            SECTION_CALLS,
            format!("{backend}: gateway CPU per call less RSA, {c} callers"),
            ((cpu_loaded - rsa) * 1e3, "ms"),
            (rsa * 1e3, "ms of RSA per call"),
            (backend == Backend::OpenSsl).then_some(Goal::ValueAtMost(0.1)),
        );
        table.ratio(
            SECTION_CALLS,
            format!("{backend}: gateway CPU per call less RSA, 1 caller"),
            ((cpu_unloaded - rsa) * 1e3, "ms"),
            (rsa * 1e3, "ms of RSA per call"),
            None,
        );
        for (label, via, direct, goal) in [
            (format!("{c} callers"), &via_loaded, &direct_loaded, None),
            ("1 caller".to_owned(), &via_unloaded, &direct_unloaded, Some(0.3)),
        ] {
            table.ratio(
                SECTION_CALLS,
                format!("{backend}: added latency p50, {label}"),
                (via.p50_ms - direct.p50_ms, "ms"),
                (direct.p50_ms, "ms p50 direct"),
                goal.filter(|_| backend == Backend::OpenSsl).map(Goal::ValueAtMost),
            );
            table.ratio(
                SECTION_CALLS,
                format!("{backend}: added latency p99, {label}"),
                (via.p99_ms - direct.p99_ms, "ms"),
                (direct.p99_ms, "ms p99 direct"),
                None,
            );
        }
        if backend == Backend::current() {
            replay(table, &gateway, "memory store", loaded, other_core);
        }
    }
    if !measuring {
        return;
    }
    // Beside the sandbox: the gateway's core stays the gateway's.
    let Some(redis) = crate::redis::BenchRedis::start(&files.dir, other_core) else {
        table.note(SECTION_REPLAY, "Redis store: redis-server not installed, not measured");
        return;
    };
    let gateway = start_gateway(files, &sandbox, Backend::current(), gateway_core, Some(&redis.url));
    replay(table, &gateway, "Redis store (unix socket)", loaded, other_core);
}

fn replay(table: &mut Table, gateway: &Gateway, store: &str, shape: Shape, cpu: Option<usize>) {
    let (signed, _) = through(gateway, "create", shape, cpu);
    let (replayed, replay_cpu) = through(gateway, "replay", shape, cpu);
    table.ratio(
        SECTION_REPLAY,
        format!("{}: replays/s, {store}, {} callers", Backend::current(), shape.callers),
        (replayed.rate(), "/s"),
        (signed.rate(), "/s signed"),
        Some(Goal::RatioAtLeast(10.0)),
    );
    table.value(
        SECTION_REPLAY,
        format!("{}: gateway CPU per replay, {store}", Backend::current()),
        (replay_cpu * 1e3, "ms"),
        None,
    );
}
