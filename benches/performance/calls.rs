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
//! call (one RSA-2048 v2 signature, one RSA-1024 verification), which the
//! direct load times on the same core right after its load.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use yungate::provider::calls::Call;
use yungate::provider::crypto::{Backend, PrivateKey};

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
            "[store]\nredis_url = \"{url}\"\ninitialise_empty = true\n[idempotency]\nfingerprint_key = \"bench-fingerprint-key-0123456789abcdef\"\n"
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

/// A direct load and a gateway load of one shape, run one right after the other.
struct Round {
    direct: load::Report,
    via: load::Report,
    /// The gateway's CPU seconds per call over its load.
    gateway_cpu: f64,
}

impl Round {
    fn direct_cpu(&self) -> f64 {
        self.direct.cpu_secs / self.direct.total_calls as f64
    }

    /// The RSA work of a call, timed by the direct load on the gateway's core.
    fn rsa(&self) -> f64 {
        self.direct.rsa_secs_per_call.unwrap_or(f64::NAN)
    }
}

/// The item of median rank; with an even count, the upper of the middle two.
fn median_by<T>(items: &[T], rank: impl Fn(&T) -> f64) -> &T {
    let mut order: Vec<&T> = items.iter().collect();
    order.sort_by(|a, b| rank(a).total_cmp(&rank(b)));
    order[order.len() / 2]
}

pub fn run(table: &mut Table, files: &Files, measuring: bool) {
    let pin = processes::pinning();
    let (gateway_core, other_core) = (pin.map(|p| p.0), pin.map(|p| p.1));
    // Rounds, direct and gateway taking turns (ABBA), so that a machine
    // whose speed drifts (this one is shared) moves both alike; each figure
    // is the median round's.
    let (rounds, loaded, unloaded) = if measuring {
        let loaded = Shape {
            callers: 16,
            warmup: Duration::from_millis(400),
            window: Duration::from_millis(2000),
        };
        let unloaded = Shape {
            callers: 1,
            warmup: Duration::from_millis(300),
            window: Duration::from_millis(1000),
        };
        (5, loaded, unloaded)
    } else {
        let loaded = Shape {
            callers: 2,
            warmup: Duration::from_millis(50),
            window: Duration::from_millis(200),
        };
        (1, loaded, Shape { callers: 1, ..loaded })
    };
    // A replay is some 15 times a signed call: far from its goal, fewer rounds do.
    let replay_rounds = rounds.min(3);
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
    table.note(
        SECTION_CALLS,
        match rounds {
            1 => "one round of each".to_owned(),
            n => format!(
                "{n} rounds, direct and gateway alternating; each side's rows from one round: 16 callers the round of median calls/s ratio, 1 caller the round of median added p50"
            ),
        },
    );
    for &backend in Backend::AVAILABLE {
        let direct = |shape| {
            load::spawn(
                &Target::Direct {
                    url: &sandbox.url,
                    key: &files.merchant_key,
                    pubkey: &files.provider_pub,
                    provider_key: &files.provider_key,
                    backend,
                },
                shape,
                gateway_core,
            )
        };
        let gateway = start_gateway(files, &sandbox, backend, gateway_core, None);
        let round = |shape, gateway_first: bool| {
            let (direct, (via, gateway_cpu)) = if gateway_first {
                let via = through(&gateway, "balance", shape, other_core);
                (direct(shape), via)
            } else {
                let direct = direct(shape);
                (direct, through(&gateway, "balance", shape, other_core))
            };
            Round {
                direct,
                via,
                gateway_cpu,
            }
        };
        let at_load: Vec<Round> = (0..rounds).map(|r| round(loaded, r % 2 == 1)).collect();
        let c = loaded.callers;
        let ratio = |r: &Round| r.via.rate() / r.direct.rate();
        let mid = median_by(&at_load, ratio);
        table.ratio(
            SECTION_CALLS,
            format!("{backend}: calls/s, {c} callers"),
            (mid.via.rate(), "/s"),
            (mid.direct.rate(), "/s direct"),
            (backend == Backend::OpenSsl).then_some(Goal::RatioAtLeast(0.9)),
        );
        if rounds > 1 {
            let (low, high) = at_load
                .iter()
                .map(ratio)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(x), h.max(x)));
            table.note(
                SECTION_CALLS,
                format!("{backend}: calls/s ratio over the rounds: {low:.2}x to {high:.2}x"),
            );
        }
        table.ratio(
            SECTION_CALLS,
            format!("{backend}: gateway CPU per call, {c} callers"),
            (mid.gateway_cpu * 1e3, "ms"),
            (mid.direct_cpu() * 1e3, "ms direct client"),
            None,
        );
        if backend == Backend::OpenSsl {
            let alone: Vec<Round> = (0..rounds).map(|r| round(unloaded, r % 2 == 0)).collect();
            let alone_mid = median_by(&alone, |r| r.via.p50_ms - r.direct.p50_ms);
            hop(table, backend, c, mid, alone_mid);
        } else {
            // At a few hundred calls a second RSA is all there is: the
            // hop and the latencies drown in its run-to-run spread.
            less_rsa(table, backend, &format!("{c} callers"), mid, None);
        }
        if backend == Backend::current() {
            replay(table, &gateway, "memory store", replay_rounds, loaded, other_core);
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
    replay(
        table,
        &gateway,
        "Redis store (unix socket)",
        replay_rounds,
        loaded,
        other_core,
    );
}

/// The rows that take the gateway's CPU and latency apart: what the hop
/// adds to the direct client, what is left beside RSA, loaded and alone.
/// Each side's rows come from one round, so that they add up.
fn hop(table: &mut Table, backend: Backend, c: usize, at_load: &Round, alone: &Round) {
    table.ratio(
        SECTION_CALLS,
        format!("{backend}: gateway CPU per call less the direct client's, {c} callers"),
        ((at_load.gateway_cpu - at_load.direct_cpu()) * 1e3, "ms"),
        (
            (at_load.direct_cpu() - at_load.rsa()) * 1e3,
            "ms direct client less RSA",
        ),
        None,
    );
    for (label, round, goal) in [
        (format!("{c} callers"), at_load, Some(0.1)),
        ("1 caller".to_owned(), alone, None),
    ] {
        less_rsa(table, backend, &label, round, goal.map(Goal::ValueAtMost));
    }
    for (label, round, goal) in [
        (format!("{c} callers"), at_load, None),
        ("1 caller".to_owned(), alone, Some(0.3)),
    ] {
        for (p, via, direct, goal) in [
            ("p50", round.via.p50_ms, round.direct.p50_ms, goal),
            ("p99", round.via.p99_ms, round.direct.p99_ms, None),
        ] {
            table.ratio(
                SECTION_CALLS,
                format!("{backend}: added latency {p}, {label}"),
                (via - direct, "ms"),
                (direct, format!("ms {p} direct")),
                goal.map(Goal::ValueAtMost),
            );
        }
    }
}

/// The row of the gateway's CPU per call beside the RSA work of a call.
fn less_rsa(table: &mut Table, backend: Backend, label: &str, round: &Round, goal: Option<Goal>) {
    table.ratio(
        SECTION_CALLS,
        format!("{backend}: gateway CPU per call less RSA, {label}"),
        ((round.gateway_cpu - round.rsa()) * 1e3, "ms"),
        (round.rsa() * 1e3, "ms of RSA per call"),
        goal,
    );
}

/// Replays against signed calls, `rounds` of each taking turns; the figures of the round of median ratio.
fn replay(table: &mut Table, gateway: &Gateway, store: &str, rounds: usize, shape: Shape, cpu: Option<usize>) {
    let all: Vec<(load::Report, load::Report, f64)> = (0..rounds)
        .map(|r| {
            if r % 2 == 0 {
                let (signed, _) = through(gateway, "create", shape, cpu);
                let (replayed, replay_cpu) = through(gateway, "replay", shape, cpu);
                (replayed, signed, replay_cpu)
            } else {
                let (replayed, replay_cpu) = through(gateway, "replay", shape, cpu);
                let (signed, _) = through(gateway, "create", shape, cpu);
                (replayed, signed, replay_cpu)
            }
        })
        .collect();
    let (replayed, signed, replay_cpu) = median_by(&all, |(replayed, signed, _)| replayed.rate() / signed.rate());
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
