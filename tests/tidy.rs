//! Architecture rules checked mechanically over the source tree (rust-analyzer's tidy tests): layering, the one RSA module, the one status builder, file headers.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn files_under(dir: &str) -> Vec<(String, String)> {
    let mut paths = Vec::new();
    rust_files(&root().join(dir), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.strip_prefix(root()).unwrap().display().to_string(), text)
        })
        .collect()
}

/// The code of a file without its comments (a rule about code must not trip on prose).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let mut files = files_under("src");
    files.extend(files_under("tests"));
    files.extend(files_under("benches"));
    files.extend(files_under("fuzz/fuzz_targets"));
    files.push((
        "build.rs".into(),
        std::fs::read_to_string(root().join("build.rs")).unwrap(),
    ));
    let missing: Vec<_> = files
        .iter()
        .filter(|(_, text)| !text.starts_with("//!"))
        .map(|(path, _)| path.as_str())
        .collect();
    assert!(missing.is_empty(), "files without a leading //! line: {missing:?}");
}

#[test]
fn the_provider_module_knows_nothing_of_the_rest() {
    // Invariant 1: provider/ can be lifted out as a client library.
    let mut files = files_under("src/provider");
    files.push((
        "src/provider.rs".into(),
        std::fs::read_to_string(root().join("src/provider.rs")).unwrap(),
    ));
    for (path, text) in files {
        let code = code(&text);
        for forbidden in ["tonic", "redis::", "prost", "tower", "governor"] {
            assert!(!code.contains(forbidden), "{path} uses {forbidden}");
        }
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            assert!(
                rest.starts_with("provider"),
                "{path} reaches outside provider/: crate::{}",
                rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap_or("")
            );
        }
    }
}

#[test]
fn only_the_crypto_module_names_the_rsa_crate() {
    // Invariant 4: a faster backend replaces one module.
    for dir in ["src", "tests", "benches"] {
        for (path, text) in files_under(dir) {
            let in_crypto = path == "src/provider/crypto.rs" || path.starts_with("src/provider/crypto/");
            if path == "tests/tidy.rs" {
                continue;
            }
            let code = code(&text);
            // OpenSSL's own `rsa` module is not the crate.
            let without_openssl = code.replace("openssl::rsa::", "");
            let names = without_openssl.contains("rsa::") || without_openssl.contains("use rsa");
            assert!(in_crypto || !names, "{path} names the rsa crate");
            // The benchmark's baseline calls OpenSSL itself: that is what it compares against.
            let baseline = path.starts_with("benches/performance/");
            let openssl = code.contains("openssl::") || code.contains("use openssl");
            assert!(in_crypto || baseline || !openssl, "{path} names the openssl crate");
        }
    }
}

#[test]
fn rsa_work_of_the_gateway_runs_on_the_crypto_pool() {
    // Invariant 5: one bounded pool, not tokio's blocking pool of up to 512 threads.
    // Start-up (keys, TLS files) and the simulator may still block on tokio's pool.
    let allowed = |path: &str| {
        path == "src/serve.rs"
            || path == "src/serve/listener.rs"
            || path == "src/sandbox.rs"
            || path.starts_with("src/sandbox/")
    };
    for (path, text) in files_under("src") {
        if allowed(&path) {
            continue;
        }
        assert!(!code(&text).contains("spawn_blocking"), "{path} uses spawn_blocking");
    }
}

#[test]
fn only_grpc_status_builds_a_status() {
    // Invariant 3: one mapping from errors to statuses.
    let constructors = [
        "Status::new(",
        "Status::with_",
        "Status::internal(",
        "Status::invalid_argument(",
        "Status::unavailable(",
        "Status::cancelled(",
        "Status::unknown(",
        "Status::not_found(",
        "Status::aborted(",
        "Status::resource_exhausted(",
        "Status::deadline_exceeded(",
        "Status::failed_precondition(",
        "Status::already_exists(",
        "Status::permission_denied(",
        "Status::unimplemented(",
    ];
    for (path, text) in files_under("src") {
        if path == "src/grpc/status.rs" {
            continue;
        }
        let code = code(&text);
        for c in constructors {
            assert!(!code.contains(c), "{path} builds a status itself: {c}");
        }
    }
}

#[test]
fn no_utility_modules() {
    // Names say what a thing is.
    for dir in ["src", "tests"] {
        for (path, _) in files_under(dir) {
            let name = Path::new(&path).file_stem().unwrap().to_string_lossy().to_string();
            assert!(
                !["utils", "util", "helpers", "helper", "manager", "misc", "common"].contains(&name.as_str()),
                "{path}"
            );
        }
    }
}
