//! Crypto benchmark: each operation's median time as a ratio to SHA1WithRSA signing with RSA-1024, measured in the same run.
//!
//! `cargo bench --bench crypto` measures; under `cargo test --all-targets`
//! (no `--bench` argument) it runs every operation once as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use yungate::provider::crypto::{self, PrivateKey, Protocol};

/// One measured operation.
type Operation<'a> = Box<dyn FnMut() + 'a>;

/// Median of `rounds` timings of `iters` calls each, per call.
fn median_per_call(rounds: usize, iters: u32, mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed() / iters
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let (rounds, iters) = if measuring { (11, 20) } else { (1, 1) };
    let data = r#"1902271423530001{"service":"OrderService","method":"consumeApply","param":{"bizOrderNo":"o-1","amount":10000,"summary":"商品购买"}}2026-11-25 10:00:00"#;
    let k1024 = PrivateKey::generate(1024).expect("keygen");
    let k2048 = PrivateKey::generate(2048).expect("keygen");
    let card = "6228480402637874214";

    let mut results: Vec<(String, Duration)> = Vec::new();
    let baseline = median_per_call(rounds, iters, || {
        black_box(crypto::sign(Protocol::V1, &k1024, black_box(data)).unwrap());
    });
    results.push(("v1 sign RSA-1024 (baseline)".into(), baseline));
    for (name, key) in [("RSA-1024", &k1024), ("RSA-2048", &k2048)] {
        let public = key.public_key();
        let sig = crypto::sign(Protocol::V1, key, data).unwrap();
        let ct1 = crypto::encrypt_v1(key, card).unwrap();
        let ct2 = crypto::encrypt_v2(&public, card).unwrap();
        let ops: Vec<(&str, Operation)> = vec![
            (
                "v1 sign",
                Box::new(|| drop(black_box(crypto::sign(Protocol::V1, key, data).unwrap()))),
            ),
            (
                "v2 sign",
                Box::new(|| drop(black_box(crypto::sign(Protocol::V2, key, data).unwrap()))),
            ),
            (
                "v1 verify",
                Box::new(|| crypto::verify(Protocol::V1, &public, data, &sig).unwrap()),
            ),
            (
                "v1 encrypt field",
                Box::new(|| drop(black_box(crypto::encrypt_v1(key, card).unwrap()))),
            ),
            (
                "v1 decrypt field",
                Box::new(|| drop(black_box(crypto::decrypt_v1(&public, &ct1).unwrap()))),
            ),
            (
                "v2 encrypt field",
                Box::new(|| drop(black_box(crypto::encrypt_v2(&public, card).unwrap()))),
            ),
            (
                "v2 decrypt field",
                Box::new(|| drop(black_box(crypto::decrypt_v2(key, &ct2).unwrap()))),
            ),
        ];
        for (op, mut f) in ops {
            results.push((format!("{op} {name}"), median_per_call(rounds, iters, &mut f)));
        }
    }
    if !measuring {
        println!("crypto bench smoke run: {} operations ran once", results.len());
        return;
    }
    println!("{:<34} {:>12} {:>10}", "operation", "median", "ratio");
    for (name, t) in &results {
        println!(
            "{:<34} {:>10.1}µs {:>9.2}x",
            name,
            t.as_secs_f64() * 1e6,
            t.as_secs_f64() / baseline.as_secs_f64()
        );
    }
}
