//! The performance benchmark: one command, one table of ratios, each against a baseline measured in the same run on this machine.
//!
//! `cargo bench --bench performance` measures (three to four minutes on two
//! cores); under `cargo test --all-targets` (no `--bench` argument) every
//! section runs briefly as a smoke test and the table is printed all the
//! same, its figures meaningless.
//!
//! 1. `crypto`: each backend's RSA operations against OpenSSL's own EVP
//!    calls on the same key.
//! 2. `calls`: signed calls through `yungate serve` against the same calls
//!    made by a `SoaClient` directly, with each backend; gateway, sandbox
//!    and load generator are separate processes (see `calls.rs` for how the
//!    gateway's CPU is kept apart from the sandbox's).
//! 3. `calls`: an idempotent replay against a signed call.
//! 4. `notify`: notification ingest to subscriber delivery; ingest rate
//!    against the signature-verification rate.
//! 5. `memory`: the gateway's resident memory with 1,000 idle connections
//!    and with 1,000 idle subscriber streams.
//!
//! The load generators are this same executable, started again with
//! `--role` (see `load.rs`). `-- --section N` (repeatable) runs only
//! those sections (2 and 3 run together).

mod calls;
mod crypto;
mod load;
mod memory;
mod notify;
mod processes;
mod redis;
mod table;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--role") {
        load::run(&args[at + 1..]);
        return;
    }
    let measuring = args.iter().any(|a| a == "--bench");
    let chosen: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--section")
        .map(|w| w[1].as_str())
        .collect();
    let runs = |section: &str| chosen.is_empty() || chosen.contains(&section);
    let mut table = table::Table::default();
    if runs("1") {
        crypto::run(&mut table, measuring);
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let files = calls::Files::write(dir.path());
    if runs("2") || runs("3") {
        calls::run(&mut table, &files, measuring);
    }
    if runs("4") {
        notify::run(&mut table, dir.path(), measuring);
    }
    if runs("5") {
        memory::run(&mut table, &files, measuring);
    }
    if !measuring {
        println!("performance smoke run: every section ran briefly; figures are not measurements");
    }
    table.print();
}
