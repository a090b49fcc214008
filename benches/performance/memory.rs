//! Section 5: the gateway's resident memory idle, with 1,000 idle connections, and with 1,000 idle subscriber streams.
//!
//! A fresh `yungate serve` process (default backend, memory store) for each
//! case, in front of a sandbox process: this process opens the connections
//! (each answers one health check, then stays open) or the streams (a
//! distinct subscriber each, 50 per connection), and reads the gateway's
//! VmRSS against its own idle figure.

use std::time::Duration;

use tonic::transport::Channel;
use yungate::grpc::proto::SubscribeRequest;
use yungate::grpc::proto::notification_service_client::NotificationServiceClient;
use yungate::provider::crypto::Backend;

use crate::calls::{self, Files};
use crate::processes;
use crate::table::{Goal, Table};

const SECTION: &str = "5. Resident memory of the gateway process";
const STREAMS_PER_CONNECTION: usize = 50;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn connect(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("the gateway accepts")
}

pub fn run(table: &mut Table, files: &Files, measuring: bool) {
    let wanted: usize = if measuring { 1000 } else { 20 };
    // This process holds n sockets and the gateway n more: stay under the open-files limit.
    let n = match processes::open_files_limit() {
        Some(limit) if (limit as usize) < wanted + 200 => {
            let n = (limit as usize).saturating_sub(200).max(10);
            table.note(
                SECTION,
                format!("open-files limit {limit}: measured with {n}, not {wanted} (raise `ulimit -n`)"),
            );
            n
        }
        _ => wanted,
    };
    let settle = Duration::from_millis(if measuring { 1500 } else { 100 });
    let sandbox = calls::start_sandbox(files, None);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for streams in [false, true] {
        let gateway = calls::start_gateway(files, &sandbox, Backend::current(), None, None);
        let pid = gateway.child.pid();
        runtime.block_on(async {
            tokio::time::sleep(settle).await;
            let idle = processes::rss_bytes(pid);
            if !streams {
                table.value(SECTION, "idle, after start", (mib(idle), "MiB"), None);
            }
            let mut held = Vec::new();
            let mut channels = Vec::new();
            if streams {
                for _ in 0..n.div_ceil(STREAMS_PER_CONNECTION) {
                    channels.push(connect(&gateway.addr).await);
                }
                for i in 0..n {
                    let mut client = NotificationServiceClient::new(channels[i / STREAMS_PER_CONNECTION].clone());
                    let stream = client
                        .subscribe(SubscribeRequest {
                            subscriber: format!("idle-{i}"),
                            ..Default::default()
                        })
                        .await
                        .expect("a subscription")
                        .into_inner();
                    held.push(stream);
                }
            } else {
                for _ in 0..n {
                    let channel = connect(&gateway.addr).await;
                    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
                    health
                        .check(tonic_health::pb::HealthCheckRequest::default())
                        .await
                        .expect("a health answer");
                    channels.push(channel);
                }
            }
            tokio::time::sleep(settle).await;
            let loaded = processes::rss_bytes(pid);
            let (what, each, goal) = if streams {
                (
                    format!("with {n} idle subscriber streams ({} connections)", channels.len()),
                    "per idle stream",
                    Some(Goal::ValueAtMost(64.0)).filter(|_| n == 1000),
                )
            } else {
                (format!("with {n} idle connections"), "per idle connection", None)
            };
            table.ratio(SECTION, what, (mib(loaded), "MiB"), (mib(idle), "MiB idle"), goal);
            table.value(
                SECTION,
                each,
                (loaded.saturating_sub(idle) as f64 / n as f64 / 1024.0, "KiB"),
                None,
            );
            drop(held);
        });
    }
}
