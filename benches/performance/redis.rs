//! A throw-away `redis-server` for a benchmark run, on a unix socket without persistence, pinned like the sandbox; `None` when it is not installed.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A running server, killed when dropped.
pub struct BenchRedis {
    child: Child,
    pub url: String,
}

impl BenchRedis {
    /// Starts a server with its socket in `dir`, on `cpu` if given.
    pub fn start(dir: &Path, cpu: Option<usize>) -> Option<BenchRedis> {
        let installed = std::process::Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            return None;
        }
        let socket = dir.join("redis.sock");
        let child = crate::processes::command("redis-server", cpu)
            .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"])
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let started = Instant::now();
        while !socket.exists() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(BenchRedis {
            child,
            url: format!("redis+unix://{}", socket.display()),
        })
    }
}

impl Drop for BenchRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
