//! The benchmark's child processes (sandbox, gateway, load generators): started pinned to a core when the machine allows, stopped when dropped, their CPU time and resident memory read from /proc.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `yungate` binary cargo built for this benchmark (release, as the benchmark is).
pub const YUNGATE: &str = env!("CARGO_BIN_EXE_yungate");

/// The cores to pin to: `(gateway or direct client, everything else)`;
/// `None` when there are fewer than two or `taskset` does not work here.
pub fn pinning() -> Option<(usize, usize)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let works = Command::new("taskset")
        .args(["-c", "1", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (cores >= 2 && works).then_some((0, 1))
}

/// `program` to run on `cpu` (through `taskset`) or anywhere.
pub fn command(program: &str, cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string(), program]);
            c
        }
        None => Command::new(program),
    }
}

/// A child process, killed when dropped.
pub struct Child(std::process::Child);

impl Child {
    pub fn spawn(mut command: Command) -> Child {
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        Child(command.spawn().expect("the benchmark starts its child process"))
    }

    /// The process's id (`taskset` execs the program, so it is the program's).
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Whether the process has ended (it should not have, yet).
    fn ended(&mut self) -> bool {
        !matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User plus system CPU time of every thread of `pid`, in seconds (Linux's USER_HZ is 100).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // Fields 14 and 15 of stat(5), counted from the state (field 3).
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Resident memory of `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `N` distinct loopback ports, free a moment ago (held together while chosen, so never the same one twice).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    std::array::from_fn(|i| held[i].local_addr().expect("a bound port").port())
}

/// Waits until something accepts on `port`; fails at once if `child` ends first.
pub fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(!child.ended(), "{what} ended before it listened on {port}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The soft limit on open files of this process (children inherit it), if /proc says.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
