//! The `yungate` binary as scripts use it: `crypto` output and exit codes, and `sandbox` as a process.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::json;
use support::{MerchantFiles, openssl};
use yungate::provider::calls::Call;
use yungate::provider::client::{SoaClient, SoaConfig};
use yungate::provider::codes::{MemberType, Source};
use yungate::provider::crypto::{PartyKeys, Protocol, load_private_key_pem};
use yungate::provider::member::CreateMember;

const SYSID: &str = "1902271423530001";
const REQ: &str = r#"{"service":"MemberService","method":"createMember","param":{"bizUserId":"张三"}}"#;
const TS: &str = "2026-11-25 10:00:00";

fn yungate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_yungate"))
        .args(args)
        .env_remove("YUNGATE_KEYSTORE_PASSWORD")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap().trim_end().to_owned()
}

#[test]
fn sign_verify_and_exit_codes() {
    let m = MerchantFiles::new(1024, SYSID);
    let pfx = m.path_str("merchant.pfx");
    for protocol in ["v1", "v2"] {
        let out = yungate(&[
            "crypto",
            "sign",
            "--keystore",
            &pfx,
            "--password",
            "secret",
            "--alias",
            SYSID,
            "--protocol",
            protocol,
            "--sysid",
            SYSID,
            "--timestamp",
            TS,
            "--req",
            REQ,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let sig = stdout(&out);
        // The PEM key gives the same signature.
        let same = yungate(&[
            "crypto",
            "sign",
            "--key",
            &m.path_str("key.pem"),
            "--protocol",
            protocol,
            "--sysid",
            SYSID,
            "--timestamp",
            TS,
            "--req",
            REQ,
        ]);
        assert_eq!(stdout(&same), sig);
        for key in [
            ["--cert", &m.path_str("cert.pem")],
            ["--pubkey", &m.path_str("pub.pem")],
        ] {
            let ok = yungate(&[
                "crypto",
                "verify",
                key[0],
                key[1],
                "--protocol",
                protocol,
                "--sign",
                &sig,
                "--sysid",
                SYSID,
                "--timestamp",
                TS,
                "--req",
                REQ,
            ]);
            assert_eq!((ok.status.code(), stdout(&ok).as_str()), (Some(0), "valid"));
        }
        let data = format!("{SYSID}{REQ}{TS}");
        let ok = yungate(&[
            "crypto",
            "verify",
            "--keystore",
            &pfx,
            "--password",
            "secret",
            "--protocol",
            protocol,
            "--sign",
            &sig,
            "--data",
            &data,
        ]);
        assert_eq!((ok.status.code(), stdout(&ok).as_str()), (Some(0), "valid"));
        let bad = yungate(&[
            "crypto",
            "verify",
            "--cert",
            &m.path_str("cert.der"),
            "--protocol",
            protocol,
            "--sign",
            &sig,
            "--data",
            &data.replace("张三", "张四"),
        ]);
        assert_eq!((bad.status.code(), stdout(&bad).as_str()), (Some(1), "invalid"));
    }
}

#[test]
fn encrypt_and_decrypt_both_profiles() {
    let m = MerchantFiles::new(1024, SYSID);
    let v1 = yungate(&[
        "crypto",
        "encrypt",
        "--key",
        &m.path_str("key.pem"),
        "--value",
        "6228480402637874214",
    ]);
    let ct = stdout(&v1);
    let back = yungate(&["crypto", "decrypt", "--cert", &m.path_str("cert.pem"), "--value", &ct]);
    assert_eq!(stdout(&back), "6228480402637874214");
    let v2 = yungate(&[
        "crypto",
        "encrypt",
        "--protocol",
        "v2",
        "--cert",
        &m.path_str("cert.pem"),
        "--value",
        "王小二",
    ]);
    let hex = stdout(&v2);
    let plain = openssl(
        &[
            "pkeyutl",
            "-decrypt",
            "-inkey",
            &m.path_str("key.pem"),
            "-pkeyopt",
            "rsa_padding_mode:pkcs1",
        ],
        &hex::decode(&hex).unwrap(),
    );
    assert_eq!(plain, "王小二".as_bytes());
    let back = yungate(&[
        "crypto",
        "decrypt",
        "--protocol",
        "v2",
        "--key",
        &m.path_str("key.pem"),
        "--value",
        &hex,
    ]);
    assert_eq!(stdout(&back), "王小二");
}

#[test]
fn errors_exit_2_and_say_which() {
    let m = MerchantFiles::new(1024, SYSID);
    let pfx = m.path_str("merchant.pfx");
    let key = m.path_str("key.pem");
    let cases: [(Vec<&str>, &str); 5] = [
        (
            vec!["crypto", "inspect", "--keystore", &pfx, "--password", "wrong"],
            "wrong keystore password",
        ),
        (
            vec![
                "crypto",
                "inspect",
                "--keystore",
                &pfx,
                "--password",
                "secret",
                "--alias",
                "x",
            ],
            "no private key under alias \"x\"",
        ),
        (
            vec!["crypto", "inspect", "--cert", "/nonexistent.cer"],
            "/nonexistent.cer",
        ),
        (
            vec![
                "crypto",
                "encrypt",
                "--protocol",
                "v2",
                "--key",
                "k.pem",
                "--value",
                "x",
            ],
            "--key cannot be used",
        ),
        (vec!["crypto", "sign", "--key", &key, "--sysid", "1"], "--timestamp"),
    ];
    for (args, needle) in cases {
        let out = yungate(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn inspect_shows_metadata_and_no_key_material() {
    let m = MerchantFiles::new(2048, SYSID);
    let out = yungate(&[
        "crypto",
        "inspect",
        "--keystore",
        &m.path_str("merchant.pfx"),
        "--password",
        "secret",
    ]);
    let text = stdout(&out);
    assert!(out.status.success());
    for needle in [
        &format!("alias: {SYSID}"),
        "private key: RSA-2048",
        "云账户测试",
        "not after: ",
        "sha256 fingerprint: ",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let pem = std::fs::read_to_string(m.path("key.pem")).unwrap();
    let body_line = pem.lines().nth(3).unwrap();
    assert!(!text.contains(body_line) && !text.contains("secret"));
}

#[tokio::test]
async fn sandbox_process_with_generated_keys_serves_a_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_yungate"))
            .args(["sandbox", "--listen", "127.0.0.1:0", "--sysid", SYSID, "--write-keys"])
            .arg(dir.path())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    // Read the log until it says where it listens, then keep draining it.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let log = std::thread::spawn(move || {
        let mut tx = Some(tx);
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Some(i) = line.find("url=") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(line[i + 4..].split_whitespace().next().unwrap().to_owned());
                }
            }
            lines.push(line);
        }
        lines
    });
    let url = tokio::time::timeout(Duration::from_secs(60), rx)
        .await
        .expect("the sandbox never said where it listens")
        .unwrap();
    let key = load_private_key_pem(&dir.path().join("merchant-key.pem")).unwrap();
    let client = SoaClient::new(
        SoaConfig {
            url,
            sysid: SYSID.into(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            environment: yungate::provider::calls::Environment::Test,
        },
        PartyKeys {
            protocol: Protocol::V1,
            peer: key.public_key(),
            own: key,
        },
    )
    .unwrap();
    let created = client
        .call(&CreateMember {
            biz_user_id: "from-cli".into(),
            member_type: MemberType::Individual,
            source: Source::Pc,
        })
        .await;
    // A notification from the sandbox process: its notifier must work on its
    // own (it once panicked building its HTTP client without a TLS provider).
    let receiver = support::harness::Receiver::start(client.keys().clone(), 0).await;
    for (call, param) in [
        (
            Call::SendVerificationCode,
            json!({"bizUserId": "from-cli", "phone": "13800138000", "verificationCodeType": 9}),
        ),
        (
            Call::BindPhone,
            json!({"bizUserId": "from-cli", "phone": "13800138000", "verificationCode": "9999"}),
        ),
        (
            Call::DepositApply,
            json!({"bizOrderNo": "cli-1", "bizUserId": "from-cli", "accountSetNo": "100000", "amount": 100,
            "fee": 0, "validateType": 0, "backUrl": receiver.url, "industryCode": "1010", "industryName": "x", "source": 1,
            "payMethod": {"CODEPAY_W": {"payType": "", "amount": 100, "authcode": "1"}}}),
        ),
    ] {
        client.call_value(call, param).await.unwrap();
    }
    let notified = receiver.wait_for(1).await;
    assert_eq!(notified[0].body.return_value["bizOrderNo"], "cli-1");
    // SIGTERM stops it cleanly.
    send_sigterm(child.0.id());
    let status = child.0.wait().unwrap();
    let log = log.join().unwrap().join("\n");
    assert_eq!(created.unwrap().biz_user_id, "from-cli");
    assert!(status.success(), "{status:?}\n{log}");
    assert!(
        log.contains("merchant-key.pem") && log.contains("shutting down"),
        "{log}"
    );
}

/// A child process that is killed if the test ends early (a failed
/// assertion), so that no orphan keeps cargo's output pipe open.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM with the `kill` command (no libc binding needed).
fn send_sigterm(pid: u32) {
    let ok = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(ok.success());
}

#[test]
fn a_closed_stderr_does_not_bring_the_sandbox_down() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_yungate"))
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then close our end: later log lines meet a broken pipe.
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the sandbox died");
    send_sigterm(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// `yungate serve`'s log lines up to "yungate gRPC listening", with `extra` arguments and environment.
fn serve_log_until_listening(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_yungate"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--notify-listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("YUNGATE_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = Reaped(command.spawn().unwrap());
    let mut lines = Vec::new();
    for line in BufReader::new(child.0.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.contains("yungate gRPC listening");
        lines.push(line);
        if done {
            break;
        }
    }
    send_sigterm(child.0.id());
    lines
}

#[test]
fn serve_logs_json_lines_on_request_and_plain_text_without_colours_off_a_terminal() {
    for (args, env) in [
        (&["--log-format", "json"][..], &[][..]),
        (&[][..], &[("YUNGATE_LOG_FORMAT", "json")][..]),
    ] {
        let lines = serve_log_until_listening(args, env);
        assert!(
            lines.last().is_some_and(|l| l.contains("yungate gRPC listening")),
            "{lines:?}"
        );
        for line in &lines {
            let object: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(object["timestamp"].is_string() && object["level"].is_string(), "{line}");
            assert!(object["message"].is_string(), "{line}");
        }
        let warned = lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|o| o["message"].as_str().unwrap().starts_with("SANDBOX MODE"))
            .expect("sandbox mode is announced");
        assert_eq!(warned["level"], "WARN");
    }
    // The default: text, and a pipe is not a terminal, so no colour codes.
    let lines = serve_log_until_listening(&[], &[]);
    assert!(
        lines.iter().any(|l| l.contains(" WARN ") && l.contains("SANDBOX MODE")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| !l.contains('\u{1b}')), "{lines:?}");
    assert!(lines.iter().all(|l| !l.starts_with('{')), "{lines:?}");
}

#[test]
fn trace_export_settings_it_cannot_honour_stop_the_start_with_a_reason() {
    for (env, says) in [
        (
            [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ],
            "over gRPC only",
        ),
        (
            [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
            "plaintext http://",
        ),
        (
            [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                ("OTEL_TRACES_EXPORTER", "zipkin"),
            ],
            "otlp only",
        ),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_yungate"));
        command.args(["serve", "--listen", "127.0.0.1:0", "--notify-listen", "127.0.0.1:0"]);
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(says), "{env:?}: {stderr}");
    }
}

#[test]
fn check_config_says_what_a_configuration_sets_up_and_refuses_a_bad_one() {
    let check = |env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_yungate"));
        command.args(["serve", "--check-config"]);
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let fine = check(&[]);
    assert!(fine.status.success());
    assert!(
        stdout(&fine).starts_with("configuration valid: the embedded sandbox; store memory"),
        "{}",
        stdout(&fine)
    );
    let production = check(&[
        (
            "YUNGATE__PROVIDER__URL",
            "https://user:secret@yun.allinpay.com/service/soa?token=t0ken",
        ),
        ("YUNGATE__PROVIDER__SYSID", "1902271423530001"),
        ("YUNGATE__PROVIDER__KEYSTORE", "/nonexistent/keystore.p12"),
        ("YUNGATE__PROVIDER__KEYSTORE_PASSWORD_FILE", "/nonexistent/password"),
        ("YUNGATE__STORE__REDIS_URL", "redis://:hunter2@redis:6379/0"),
        ("YUNGATE__IDEMPOTENCY__FINGERPRINT_KEY_FILE", "/nonexistent/fingerprint"),
    ]);
    let said = stdout(&production);
    assert!(
        production.status.success(),
        "{}",
        String::from_utf8_lossy(&production.stderr)
    );
    assert!(
        said.contains("provider https://yun.allinpay.com;") && said.contains("store redis"),
        "{said}"
    );
    for secret in ["secret", "t0ken", "hunter2"] {
        assert!(!said.contains(secret), "{said}");
    }
    // A provider setting without its URL is refused, saying which.
    let refused = check(&[("YUNGATE__PROVIDER__SYSID", "2000000000000001")]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("provider.url"));
}

#[test]
fn the_crypto_backend_is_chosen_by_flag_or_environment_and_an_unknown_one_refused() {
    let check = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_yungate"));
        command.args(args).args(["serve", "--check-config"]);
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let default = if cfg!(feature = "openssl") { "openssl" } else { "rust" };
    let said = stdout(&check(&[], &[]));
    assert!(said.ends_with(&format!("; crypto {default}")), "{said}");
    let said = stdout(&check(&["--crypto-backend", "rust"], &[]));
    assert!(said.ends_with("; crypto rust"), "{said}");
    let said = stdout(&check(&[], &[("YUNGATE_CRYPTO_BACKEND", "rust")]));
    assert!(said.ends_with("; crypto rust"), "{said}");
    let unknown = check(&["--crypto-backend", "ring"], &[]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("expected openssl or rust"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}

#[test]
fn store_init_acknowledge_loss_and_status_exit_codes() {
    let redis = support::redis::RedisServer::start();
    let store = |command: &str| {
        Command::new(env!("CARGO_BIN_EXE_yungate"))
            .args(["store", command])
            .env("YUNGATE__STORE__REDIS_URL", redis.url())
            .output()
            .unwrap()
    };
    // A new Redis: no marker (1), written by init (0), which is harmless again (0).
    let status = store("status");
    assert_eq!(status.status.code(), Some(1), "{}", stdout(&status));
    assert!(stdout(&status).starts_with("no identity marker"), "{}", stdout(&status));
    let init = store("init");
    assert_eq!(init.status.code(), Some(0));
    assert!(stdout(&init).starts_with("written: store "), "{}", stdout(&init));
    let again = store("init");
    assert_eq!(again.status.code(), Some(0));
    assert!(stdout(&again).starts_with("nothing written"), "{}", stdout(&again));
    // There is no loss to acknowledge while the marker is there.
    let nothing_lost = store("acknowledge-loss");
    assert_eq!(nothing_lost.status.code(), Some(1), "{}", stdout(&nothing_lost));
    let status = store("status");
    assert_eq!(status.status.code(), Some(0));
    assert!(!stdout(&status).contains("loss"), "{}", stdout(&status));
    // Without a Redis store there is nothing to mark: an error (2).
    let memory = yungate(&["store", "status"]);
    assert_eq!(memory.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&memory.stderr).contains("store.redis_url is not set"),
        "{}",
        String::from_utf8_lossy(&memory.stderr)
    );
}
