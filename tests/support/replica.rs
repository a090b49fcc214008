//! A `yungate serve` process: a gateway replica of its own, configured by a TOML file written from a `Config`, its address read from its log.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::Channel;
use yungate::config::Config;

/// A running replica; killed when dropped.
pub struct Replica {
    child: Child,
    pub addr: SocketAddr,
    /// Its notification ingress.
    pub notify_addr: SocketAddr,
    /// Every line it has written to stderr so far (colours removed).
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The line without ANSI colour sequences.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Replica {
    /// Starts `yungate serve` with the provider, key, notify URL, store and
    /// limits of `config`, on a port of its own.
    pub fn spawn(config: &Config) -> Replica {
        Replica::spawn_with_env(config, &[])
    }

    /// [`Replica::spawn`] with more environment (`RUST_LOG`, `OTEL_*`...).
    pub fn spawn_with_env(config: &Config, env: &[(&str, &str)]) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let p = &config.provider;
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\n[provider]\nurl = {}\nkey = {}\nenvironment = \"test\"\nsysid = {}\n\
             request_timeout_ms = {}\n[notify]\nlisten = \"127.0.0.1:0\"\nvisibility_timeout_ms = {}\n\
             max_deliveries = {}\nretention_hours = {}\n[idempotency]\nlease_ms = {}\nin_flight_wait_ms = {}\n",
            quoted(p.url.as_deref().unwrap()),
            quoted(&p.key.as_ref().unwrap().display().to_string()),
            quoted(&p.sysid),
            p.request_timeout_ms,
            config.notify.visibility_timeout_ms,
            config.notify.max_deliveries,
            config.notify.retention_hours,
            config.idempotency.lease_ms,
            config.idempotency.in_flight_wait_ms,
        );
        if let Some(key) = &config.idempotency.fingerprint_key {
            toml.push_str(&format!("fingerprint_key = {}\n", quoted(key.expose())));
        }
        if let Some(url) = &config.gateway.notify_url {
            toml.push_str(&format!("[gateway]\nnotify_url = {}\n", quoted(url)));
        }
        if let Some(url) = &config.store.redis_url {
            toml.push_str(&format!(
                "[store]\nredis_url = {}\ninitialise_empty = {}\n",
                quoted(url.expose()),
                config.store.initialise_empty
            ));
        }
        let r = &config.resolver;
        toml.push_str(&format!(
            "[resolver]\nenabled = {}\ninterval_ms = {}\nschedule_secs = {:?}\nbatch = {}\n",
            r.enabled, r.interval_ms, r.schedule_secs, r.batch
        ));
        if let Some(daily) = config.reconciliation.daily {
            toml.push_str(&format!("[reconciliation]\ndaily = {daily}\n"));
        }
        toml.push_str(&format!("[rate_limit]\nshadow = {}\n", config.rate_limit.shadow));
        for (class, limit) in &config.rate_limit.provider {
            toml.push_str(&format!(
                "[rate_limit.provider.{class}]\nper_second = {}\nburst = {}\n",
                limit.per_second, limit.burst
            ));
        }
        let file = dir.path().join("yungate.toml");
        std::fs::write(&file, toml).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_yungate"));
        command.arg("serve").arg("--config").arg(&file);
        Replica::launch(command, dir, env)
    }

    /// `yungate serve` on the embedded sandbox with `YUNGATE__*` settings
    /// `env`, its descriptors limited to `fd_limit` (`ulimit -n`) if given.
    pub fn sandbox(env: &[(&str, &str)], fd_limit: Option<u32>) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let mut command = match fd_limit {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_yungate"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_yungate")),
        };
        command.args(["serve", "--listen", "127.0.0.1:0", "--notify-listen", "127.0.0.1:0"]);
        Replica::launch(command, dir, env)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn launch(mut command: Command, dir: tempfile::TempDir, env: &[(&str, &str)]) -> Replica {
        command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("YUNGATE_LOG_FORMAT")
            .env_remove("YUNGATE__STORE__REDIS_URL");
        for var in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "YUNGATE_TRACE_FILTER",
        ] {
            command.env_remove(var);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr_in = |line: &str| -> SocketAddr {
            let at = line.find("addr=").expect("the listening line names its addr") + 5;
            line[at..].split_whitespace().next().unwrap().parse().unwrap()
        };
        let mut notify_addr = None;
        let log = Arc::new(Mutex::new(Vec::new()));
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("yungate serve exited before listening");
            };
            let line = plain(&line);
            log.lock().unwrap().push(line.clone());
            if line.contains("notification ingress listening") {
                notify_addr = Some(addr_in(&line));
            }
            if line.contains("yungate gRPC listening") {
                break addr_in(&line);
            }
        };
        let notify_addr = notify_addr.expect("the ingress listens before the gRPC server");
        // Keep draining the log so the process never blocks on a full pipe.
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(plain(&line));
            }
        });
        Replica {
            child,
            addr,
            notify_addr,
            log,
            _dir: dir,
        }
    }

    /// A channel to the replica.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap()
    }
}

impl Replica {
    /// Its stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM (the `kill` command) and waits for the process to end: it drains and flushes.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }

    /// Kills the process at once (SIGKILL): nothing it does is finished.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
