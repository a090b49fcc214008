//! The limits that keep a replica alive, each shown holding over real sockets: descriptors exhausted (EMFILE), a flood of partial request streams, idle connections, the connection limit, and request bodies that never finish.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::replica::Replica;
use support::sandboxed::{self, member_lookup};
use tokio::io::AsyncReadExt as _;
use tonic::transport::Channel;
use yungate::grpc::proto;
use yungate::grpc::proto::notification_service_client::NotificationServiceClient;
use yungate::serve;

/// user + system CPU time of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces: count fields after its closing parenthesis.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn clock_ticks_per_second() -> u64 {
    let out = std::process::Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn out_of_descriptors_the_accept_loop_backs_off_and_keeps_serving() {
    const LIMIT: u32 = 64;
    let replica = Replica::sandbox(&[], Some(LIMIT));
    let pid = replica.pid();
    let existing = replica.channel().await;
    member_lookup(&existing).await.unwrap();

    // More connections than the process has descriptors: the kernel's
    // backlog takes them, the process's accept fails with EMFILE. Once the
    // backlog is full too, a connect waits for SYN retries: stop there.
    let mut held = Vec::new();
    for _ in 0..3 * LIMIT {
        match tokio::time::timeout(Duration::from_millis(300), tokio::net::TcpStream::connect(replica.addr)).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(_)) | Err(_) => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = open_descriptors(pid);
    assert!(
        open + 2 >= LIMIT as usize,
        "the process is out of descriptors: {open} of {LIMIT} open"
    );

    // A spinning accept loop burns a whole core; one that backs off, next to nothing.
    let (before, ticks) = (cpu_ticks(pid), clock_ticks_per_second());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(pid) - before;
    assert!(
        used * 100 < 2 * ticks * 25,
        "the process used {used} of {} ticks (more than a quarter of a core) while out of descriptors",
        2 * ticks
    );
    // Callers already connected are still served.
    member_lookup(&existing)
        .await
        .expect("an existing connection is served");

    // Descriptors freed, new callers are served again.
    drop(held);
    let fresh = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(Ok(ch)) = tokio::time::timeout(
                Duration::from_secs(2),
                Channel::from_shared(format!("http://{}", replica.addr))
                    .unwrap()
                    .connect(),
            )
            .await
            {
                if member_lookup(&ch).await.is_ok() {
                    return ch;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a new connection is served once descriptors are free");
    member_lookup(&fresh).await.unwrap();
}

/// The headers of a GetMemberInfo call, for a raw HTTP/2 client.
fn member_info_request(addr: SocketAddr) -> tonic::codegen::http::Request<()> {
    tonic::codegen::http::Request::post(format!("http://{addr}/yungate.v1.MemberService/GetMemberInfo"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// Opens `streams` GetMemberInfo requests on one HTTP/2 connection, each
/// announcing a message of `announced` bytes and sending `sent` of them,
/// never finishing. Returns the response futures (answered when the
/// gateway gives up on the bodies) and the senders (to keep them open).
async fn partial_streams(
    addr: SocketAddr,
    streams: usize,
    announced: u32,
    sent: usize,
) -> (
    Vec<h2::client::ResponseFuture>,
    Vec<h2::SendStream<tonic::codegen::Bytes>>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut responses = Vec::new();
    let mut senders = Vec::new();
    let mut body = Vec::with_capacity(5 + sent);
    body.push(0u8);
    body.extend_from_slice(&announced.to_be_bytes());
    body.resize(5 + sent, b'x');
    let body = tonic::codegen::Bytes::from(body);
    for _ in 0..streams {
        client = client.ready().await.unwrap();
        let request = member_info_request(addr);
        let (response, mut send) = client.send_request(request, false).unwrap();
        // Queued in this process; HTTP/2 flow control decides what reaches the gateway.
        send.send_data(body.clone(), false).unwrap();
        responses.push(response);
        senders.push(send);
    }
    (responses, senders)
}

#[tokio::test]
async fn a_flood_of_partial_streams_stays_bounded_and_others_are_served() {
    // A 1 MiB message limit, 2 MiB buffered per connection, 16 MiB in all, 3 s for a body.
    let replica = Replica::sandbox(
        &[
            ("YUNGATE__LIMITS__MAX_MESSAGE_BYTES", "1048576"),
            ("YUNGATE__LIMITS__CONNECTION_REQUEST_BYTES", "2097152"),
            ("YUNGATE__LIMITS__REQUEST_BYTES", "16777216"),
            ("YUNGATE__LIMITS__REQUEST_BODY_TIMEOUT_MS", "3000"),
        ],
        None,
    );
    let pid = replica.pid();
    let channel = replica.channel().await;
    member_lookup(&channel).await.unwrap();
    let baseline = rss_kib(pid);

    // Two connections, 100 streams each, 1,000,000-byte messages of which
    // 950,000 bytes are sent: 190 MB if the gateway buffered them all.
    let (mut responses, mut senders) = partial_streams(replica.addr, 100, 1_000_000, 950_000).await;
    let (more, more_senders) = partial_streams(replica.addr, 100, 1_000_000, 950_000).await;
    responses.extend(more);
    senders.extend(more_senders);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let grown = rss_kib(pid).saturating_sub(baseline);
    assert!(
        grown < 64 * 1024,
        "the gateway grew by {} MiB holding partial streams (bounded: 2 x 2 MiB + windows)",
        grown / 1024
    );
    // Meanwhile another caller is served at once.
    member_lookup(&channel)
        .await
        .expect("another caller is served during the flood");

    // The bodies that never finish are answered UNAVAILABLE (nothing was started) after 3 s.
    let first = tokio::time::timeout(Duration::from_secs(30), responses.remove(0))
        .await
        .expect("the gateway gives up on an unfinished body")
        .expect("a response");
    let headers = first.headers();
    assert_eq!(
        headers.get("grpc-status").map(|v| v.to_str().unwrap()),
        Some("14"),
        "{headers:?}"
    );
    let message = headers.get("grpc-message").unwrap().to_str().unwrap();
    assert!(
        message.contains("did%20not%20arrive") || message.contains("did not arrive"),
        "{message}"
    );
    drop(senders);
    let after = rss_kib(pid).saturating_sub(baseline);
    assert!(after < 64 * 1024, "grew by {} MiB", after / 1024);
}

// Several worker threads: a request's end and the connection's reads race there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_and_busy_ones_stay() {
    let mut config = sandboxed::config();
    config.limits.idle_timeout_secs = 1;
    // No PINGs: nothing but the idle timer may wake a quiet connection.
    config.limits.keepalive_interval_secs = 0;
    let gateway = serve::start(config).await.unwrap();

    // A client that connects and says nothing (not even the HTTP/2 preface) is closed.
    let mut silent = tokio::net::TcpStream::connect(gateway.addr()).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match silent.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(read.is_ok(), "an idle connection was closed");

    // A connection with an open stream is not idle, however quiet.
    let channel = sandboxed::channel(gateway.addr()).await;
    let mut stream = NotificationServiceClient::new(channel.clone())
        .subscribe(proto::SubscribeRequest {
            subscriber: "quiet".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let quiet = tokio::time::timeout(Duration::from_millis(200), stream.message()).await;
    assert!(quiet.is_err(), "the stream is still open and waiting: {quiet:?}");
    member_lookup(&channel).await.expect("its connection still serves");
    drop(stream);

    // Once its last request has ended, a connection is idle again and closes.
    let open = gateway
        .listener_counters()
        .open
        .load(std::sync::atomic::Ordering::Relaxed);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gateway
        .listener_counters()
        .open
        .load(std::sync::atomic::Ordering::Relaxed)
        >= open
    {
        assert!(
            std::time::Instant::now() < deadline,
            "a connection whose requests ended was not closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.stop().await.unwrap();
}

#[tokio::test]
async fn past_the_connection_limit_clients_wait_for_a_free_slot() {
    let mut config = sandboxed::config();
    config.limits.max_connections = 2;
    let gateway = serve::start(config).await.unwrap();
    let first = tokio::net::TcpStream::connect(gateway.addr()).await.unwrap();
    let _second = tokio::net::TcpStream::connect(gateway.addr()).await.unwrap();
    let addr = gateway.addr();
    let waiting = tokio::spawn(async move {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(30))
            .connect()
            .await
            .unwrap();
        member_lookup(&channel).await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection is not served while two are open"
    );
    drop(first);
    let served = tokio::time::timeout(Duration::from_secs(20), waiting).await;
    served.expect("served once a slot is free").unwrap().unwrap();
    assert!(
        gateway
            .listener_counters()
            .accepted
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_sharing_a_connection_do_not_stall_each_other() {
    // 4 MiB messages, 8 MiB buffered per connection: two bodies at a time
    // hold their reservation while the others wait for theirs, unread.
    let mut config = sandboxed::config();
    config.limits.max_message_bytes = 4 << 20;
    config.limits.connection_request_bytes = 8 << 20;
    config.limits.request_body_timeout_ms = 8_000;
    let gateway = serve::start(config).await.unwrap();
    let addr = gateway.addr();

    // A valid GetMemberInfoRequest: only an unknown field (number 1000,
    // bytes) of 3.9 MB, which decoding skips, so validation answers.
    let filler = 3_900_000usize;
    let mut message = Vec::new();
    prost::encoding::encode_key(1000, prost::encoding::WireType::LengthDelimited, &mut message);
    prost::encoding::encode_varint(filler as u64, &mut message);
    message.resize(message.len() + filler, b'x');
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&message);
    let body = tonic::codegen::Bytes::from(body);

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut responses = Vec::new();
    for _ in 0..8 {
        client = client.ready().await.unwrap();
        let request = member_info_request(addr);
        let (response, mut send) = client.send_request(request, false).unwrap();
        send.send_data(body.clone(), true).unwrap();
        responses.push(response);
    }
    for response in responses {
        let response = tokio::time::timeout(Duration::from_secs(30), response)
            .await
            .expect("an answer")
            .expect("a response");
        // Every body arrived whole and reached validation (a missing
        // bizUserId), none was cut at its deadline (UNAVAILABLE, 14).
        let status = response
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(status.as_deref(), Some("3"), "{:?}", response.headers());
    }
    gateway.stop().await.unwrap();
}

/// Reads until the server closes the connection; what it sent, and whether it closed within `within`.
async fn until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| String::from_utf8_lossy(&got).into_owned())
}

/// A client that trickles a request one byte at a time (each byte restarts the quiet timer) is cut at
/// `limits.http_header_timeout_ms`; a body that stalls gets 408 at `limits.http_body_timeout_ms`; and
/// with every connection slot of the ingress taken by such clients, a real request is served once they
/// are cut, not after minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_hold_the_ingress_or_metrics() {
    use tokio::io::AsyncWriteExt as _;
    let mut config = sandboxed::config();
    config.limits.http_header_timeout_ms = 500;
    config.limits.http_body_timeout_ms = 500;
    config.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    let gateway = serve::start(config).await.unwrap();
    let ingress = gateway.notify_addr();
    let metrics = gateway.metrics_addr().unwrap();

    for addr in [ingress, metrics] {
        let mut trickle = tokio::net::TcpStream::connect(addr).await.unwrap();
        trickle
            .write_all(b"GET /notify/stats HTTP/1.1\r\nX-Slow: ")
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let feeding = tokio::spawn({
            let (_, mut write) = trickle.into_split();
            async move {
                for _ in 0..40 {
                    if write.write_all(b"a").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        feeding.await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{addr}: the trickling client was still being read after {:?}",
            started.elapsed()
        );
    }

    // A body that stalls: 408.
    let mut stalled = tokio::net::TcpStream::connect(ingress).await.unwrap();
    stalled
        .write_all(b"POST /notify HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nsysid=1")
        .await
        .unwrap();
    let answer = until_closed(&mut stalled, Duration::from_secs(5)).await;
    assert!(
        answer.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 408")),
        "{answer:?}"
    );

    // Every slot of the ingress (256) taken by clients that never finish their request head.
    let mut held = Vec::new();
    for _ in 0..256 {
        let mut s = tokio::net::TcpStream::connect(ingress).await.unwrap();
        s.write_all(b"GET /notify/stats HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    let started = std::time::Instant::now();
    let stats = tokio::time::timeout(Duration::from_secs(5), async {
        let mut s = tokio::net::TcpStream::connect(ingress).await.unwrap();
        s.write_all(b"GET /notify/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        until_closed(&mut s, Duration::from_secs(5)).await
    })
    .await;
    let stats = stats.ok().flatten().unwrap_or_default();
    assert!(stats.starts_with("HTTP/1.1 200"), "not served: {stats:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "served after {:?}",
        started.elapsed()
    );
    drop(held);
}
