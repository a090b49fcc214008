//! Idempotency benchmark: the throughput of replayed calls as a ratio to signed provider calls, both through the real gateway and sandbox in the same run.
//!
//! `cargo bench --bench replay` measures, with the in-memory store and, when
//! `redis-server` is installed, with Redis. Under `cargo test --all-targets`
//! (no `--bench` argument) it makes a few calls of each kind as a smoke test.
//! The goal: a replay at least 10x a signed call.

use std::time::Instant;

#[path = "support/redis.rs"]
mod bench_redis;

use tonic::transport::Channel;
use yungate::config::Config;
use yungate::grpc::proto::{self, member_service_client::MemberServiceClient};

fn create(id: String) -> proto::CreateMemberRequest {
    proto::CreateMemberRequest {
        biz_user_id: id,
        member_type: proto::MemberType::Individual as i32,
        source: proto::Source::Mobile as i32,
    }
}

/// Calls per second over `n` CreateMember calls from `concurrency` tasks;
/// `id(i)` names the member of call `i`.
async fn throughput(channel: &Channel, n: usize, concurrency: usize, id: impl Fn(usize) -> String) -> f64 {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..concurrency {
        let mut client = MemberServiceClient::new(channel.clone());
        let ids: Vec<String> = (t..n).step_by(concurrency).map(&id).collect();
        tasks.spawn(async move {
            for id in ids {
                client.create_member(create(id)).await.expect("create member");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

async fn measure(label: &str, redis_url: Option<String>, measuring: bool) {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        notify: yungate::config::NotifyConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
        ..Config::default()
    };
    if let Some(url) = redis_url {
        config.store.redis_url = Some(url.into());
        config.idempotency.fingerprint_key = Some("bench-fingerprint-key-0123456789abcdef".into());
    }
    // Generous quotas: the benchmark measures the gateway, not the limits.
    for limit in config.rate_limit.provider.values_mut() {
        limit.per_second = 100_000;
        limit.burst = 100_000;
    }
    let gateway = yungate::serve::start(config).await.expect("gateway");
    let channel = Channel::from_shared(format!("http://{}", gateway.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (signed_n, replay_n, concurrency) = if measuring { (400, 8000, 8) } else { (4, 20, 2) };
    // Warm-up: connections, the first claim, the replayed record.
    throughput(&channel, 4, 1, |i| format!("warm-{label}-{i}")).await;
    let signed = throughput(&channel, signed_n, concurrency, |i| format!("signed-{label}-{i}")).await;
    let replay = throughput(&channel, replay_n, concurrency, |_| format!("warm-{label}-0")).await;
    println!(
        "{label:>6}: signed provider call {signed:8.0}/s, replay {replay:8.0}/s, replay/signed = {:.1}x",
        replay / signed
    );
    gateway.stop().await.unwrap();
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(measure("memory", None, measuring));
    if !measuring {
        return;
    }
    let Ok(dir) = tempfile::tempdir() else { return };
    let Some(redis) = bench_redis::BenchRedis::start(dir.path()) else {
        println!("redis-server not installed: Redis not measured");
        return;
    };
    runtime.block_on(measure("redis", Some(redis.url.clone()), measuring));
}
