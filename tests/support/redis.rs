//! A real `redis-server` for one test, on a unix socket in a temporary directory, without persistence; a test that cannot start it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`; killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server; panics (the test fails) when `redis-server` is missing or does not come up.
    pub fn start() -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let mut server = RedisServer {
            child: None,
            socket,
            _dir: dir,
        };
        server.restart();
        server
    }

    /// A server whose store has its identity marker, as `yungate store init`
    /// leaves it (for tests of the log alone; gateways in tests get theirs
    /// from `store.initialise_empty`).
    pub fn initialised() -> RedisServer {
        let server = RedisServer::start();
        let mut connection = server.client().get_connection().unwrap();
        let _: () = redis::cmd("HSET")
            .arg(yungate::store::redis::IDENTITY_KEY)
            .arg("id")
            .arg("test")
            .arg("since")
            .arg(0)
            .query(&mut connection)
            .unwrap();
        server
    }

    /// Runs `yungate store acknowledge-loss` against this server, as an
    /// operator would after it lost its data; panics unless it wrote a marker.
    pub fn acknowledge_loss(&self) {
        let out = Command::new(env!("CARGO_BIN_EXE_yungate"))
            .args(["store", "acknowledge-loss"])
            .env("YUNGATE__STORE__REDIS_URL", self.url())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("written: store "),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// The URL the gateway's `store.redis_url` takes.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// Kills the server (its data goes with it: `--save ""`).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Starts the server (again) on the same socket.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"])
            .arg(&self.socket)
            .args(["--unixsocketperm", "700", "--databases", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs the Debian package)");
        self.child = Some(child);
        let started = Instant::now();
        while !self.socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not open {}",
                self.socket.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl RedisServer {
    /// Freezes the server (SIGSTOP): connections stay open, nothing answers, nothing is lost.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server is running").id();
        let status = Command::new("kill").arg(signal).arg(pid.to_string()).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// The server's unix socket.
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// A connection for a test's own commands.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
