//! Connections and memory stay bounded, whatever clients do: clients that leave during a
//! long-poll Fetch or in the middle of a frame free their sockets at once, unfinished frames hold
//! no more memory than `queued.max.request.bytes`, idle connections and half-sent frames are
//! closed, `max.connections.per.ip` is enforced, and shutdown does not wait for parked fetches.
//!
//! Each test runs the real broker binary with the flags under test and watches its open file
//! descriptors and resident memory in `/proc/<pid>`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::BrokerProcess;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn start(flags: &[&str]) -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), flags).expect("broker");
    (dir, broker)
}

fn frame<R: Request>(version: i16, correlation_id: i32, req: &R) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("limits")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, R::header_version(version))
        .expect("header");
    req.encode(&mut body, version).expect("body");
    let mut out = BytesMut::with_capacity(body.len() + 4);
    out.put_u32(u32::try_from(body.len()).expect("small frame"));
    out.extend_from_slice(&body);
    out.freeze()
}

/// Sends a request and reads the answer's frame (without decoding it).
async fn call(stream: &mut TcpStream, frame: &[u8]) -> Bytes {
    stream.write_all(frame).await.expect("write");
    let mut len = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut len))
        .await
        .expect("an answer within 10 s")
        .expect("an answer");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).await.expect("body");
    Bytes::from(body)
}

/// Sends a request and decodes the answer.
async fn call_decoded<R: Request>(stream: &mut TcpStream, version: i16, req: &R) -> R::Response {
    let mut resp = call(stream, &frame(version, 1, req)).await;
    ResponseHeader::decode(&mut resp, R::Response::header_version(version)).expect("header");
    R::Response::decode(&mut resp, version).expect("response")
}

/// JoinGroup v5 of `member_id` (empty for a new member) in group "jg".
fn join(member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("jg")))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(60_000)
        .with_member_id(StrBytes::from_string(member_id.into()))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(StrBytes::from_static_str("range"))
        .with_metadata(Bytes::new())])
}

async fn create_topic(addr: SocketAddr, topic: &str) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_num_partitions(1)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    call(&mut s, &frame(7, 1, &req)).await;
}

/// A Fetch v12 that waits for data as long as a client may ask (2^31-1 ms).
fn long_poll(topic: &str) -> Bytes {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(i32::MAX)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    frame(12, 7, &req)
}

fn api_versions() -> Bytes {
    frame(3, 1, &ApiVersionsRequest::default())
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until the broker's open fds are at most `at_most`, for up to `within`; returns how long
/// that took, or panics with the count.
async fn fds_back(pid: u32, at_most: usize, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let now = open_fds(pid);
        if now <= at_most {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "broker still has {now} fds open, {} more than before, {within:?} after the clients left",
            now - at_most
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the broker closes `stream` within `within` (reading EOF or a reset).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn clients_leaving_long_polls_and_half_sent_frames_free_their_sockets_at_once() {
    let (_dir, broker) = start(&[]);
    let pid = broker.pid();
    create_topic(broker.addr, "lp").await;
    // Settle: the broker's own files and the first client's socket come and go.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fds_before = open_fds(pid);
    let rss_before = rss_kib(pid);

    for round in 0..3 {
        let mut clients = Vec::new();
        for i in 0..150 {
            let mut s = TcpStream::connect(broker.addr).await.expect("connect");
            if i % 3 == 0 {
                // Half a frame, then silence.
                s.write_all(&[0, 0, 4, 0, 0, 1, 0, 12])
                    .await
                    .expect("write");
            } else {
                s.write_all(&long_poll("lp")).await.expect("write");
            }
            clients.push(s);
        }
        // Every connection is open and parked.
        let started = Instant::now();
        while open_fds(pid) < fds_before + 150 && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(open_fds(pid) >= fds_before + 150, "round {round}");
        drop(clients);
        let took = fds_back(pid, fds_before, Duration::from_secs(5)).await;
        eprintln!("round {round}: fds back {took:?} after the clients left");
        assert!(
            took < Duration::from_secs(1),
            "round {round}: fds back after {took:?}"
        );
    }
    let grown = rss_kib(pid).saturating_sub(rss_before);
    eprintln!("RSS grew by {grown} KiB over 450 abandoned connections");
    assert!(grown < 20 * 1024, "RSS grew by {grown} KiB");

    // The broker still serves.
    let mut s = TcpStream::connect(broker.addr).await.expect("connect");
    call(&mut s, &api_versions()).await;
}

#[tokio::test]
async fn a_client_leaving_a_parked_join_group_frees_its_socket_at_once() {
    let (_dir, broker) = start(&[]);
    let pid = broker.pid();
    // Member A joins (MEMBER_ID_REQUIRED, then with its id) and leads generation 1.
    let mut a = TcpStream::connect(broker.addr).await.expect("connect");
    let first = call_decoded(&mut a, 5, &join("")).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    let joined = call_decoded(&mut a, 5, &join(first.member_id.as_str())).await;
    assert_eq!(joined.error_code, 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fds_before = open_fds(pid);

    // Member B's join waits for A to rejoin (up to the 60 s rebalance timeout) ...
    let mut b = TcpStream::connect(broker.addr).await.expect("connect");
    let first = call_decoded(&mut b, 5, &join("")).await;
    assert_eq!(first.error_code, 79);
    b.write_all(&frame(5, 2, &join(first.member_id.as_str())))
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut probe = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(10), b.peek(&mut probe))
            .await
            .is_err(),
        "the join is parked"
    );
    assert_eq!(open_fds(pid), fds_before + 1);
    // ... and B leaving frees its socket at once.
    drop(b);
    let took = fds_back(pid, fds_before, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(1), "fd back after {took:?}");
    drop(a);
}

#[tokio::test]
async fn unfinished_large_frames_hold_no_more_than_the_request_budget() {
    // Frames up to 64 MiB, and 64 MiB of requests in the broker at once.
    let (_dir, broker) = start(&[
        "--socket-request-max-bytes",
        "67108864",
        "--queued-max-request-bytes",
        "67108864",
    ]);
    let pid = broker.pid();
    let fds_before = open_fds(pid);
    let rss_before = rss_kib(pid);
    let chunk = vec![0u8; 1 << 20];
    let mut senders = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(broker.addr).await.expect("connect");
        let chunk = chunk.clone();
        senders.push(tokio::spawn(async move {
            // Announce 60 MiB, send 24 MiB of it (as far as the broker reads), never finish.
            s.write_all(&(60u32 << 20).to_be_bytes()).await.ok()?;
            for _ in 0..24 {
                s.write_all(&chunk).await.ok()?;
            }
            Some(s)
        }));
    }
    // Give the sends time to go as far as the broker lets them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grown = rss_kib(pid).saturating_sub(rss_before);
    eprintln!("RSS grew by {} MiB with 8 unfinished frames", grown / 1024);
    // One connection gets the budget (up to 48 MiB with its buffer's growth); the others wait
    // unread. Without the budget the eight would take 8 x 24 MiB.
    assert!(
        grown < 80 * 1024,
        "RSS grew by {} MiB with 8 unfinished frames",
        grown / 1024
    );
    for s in senders {
        s.abort();
    }
    fds_back(pid, fds_before, Duration::from_secs(2)).await;
    let mut s = TcpStream::connect(broker.addr).await.expect("connect");
    call(&mut s, &api_versions()).await;
}

#[tokio::test]
async fn idle_connections_and_half_sent_frames_are_closed() {
    let (_dir, broker) = start(&[
        "--connections-max-idle-ms",
        "400",
        "--request-read-timeout-ms",
        "300",
    ]);
    // Idle after an answer: closed after the idle timeout.
    let mut idle = TcpStream::connect(broker.addr).await.expect("connect");
    call(&mut idle, &api_versions()).await;
    let started = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(3)).await);
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A busy connection is not idle.
    let mut busy = TcpStream::connect(broker.addr).await.expect("connect");
    for _ in 0..8 {
        call(&mut busy, &api_versions()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Half a frame, then silence: closed after the read timeout.
    let mut half = TcpStream::connect(broker.addr).await.expect("connect");
    half.write_all(&[0, 0, 0, 100, 0, 18, 0, 3])
        .await
        .expect("write");
    assert!(closed_within(&mut half, Duration::from_secs(3)).await);
}

#[tokio::test]
async fn connections_per_ip_are_limited() {
    let (_dir, broker) = start(&["--max-connections-per-ip", "2"]);
    let mut a = TcpStream::connect(broker.addr).await.expect("connect");
    let mut b = TcpStream::connect(broker.addr).await.expect("connect");
    call(&mut a, &api_versions()).await;
    call(&mut b, &api_versions()).await;
    // A third is accepted and closed at once.
    let mut c = TcpStream::connect(broker.addr).await.expect("connect");
    let _ = c.write_all(&api_versions()).await;
    assert!(closed_within(&mut c, Duration::from_secs(2)).await);
    // The first two still work; once one is gone there is room again.
    call(&mut a, &api_versions()).await;
    drop(b);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut d = TcpStream::connect(broker.addr).await.expect("connect");
    call(&mut d, &api_versions()).await;
    assert!(broker.logs().contains("max.connections.per.ip"));
}

#[tokio::test]
async fn shutdown_does_not_wait_for_parked_fetches() {
    let (_dir, broker) = start(&[]);
    create_topic(broker.addr, "lp").await;
    let mut parked = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(broker.addr).await.expect("connect");
        s.write_all(&long_poll("lp")).await.expect("write");
        parked.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &broker.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    while std::path::Path::new(&format!("/proc/{}/status", broker.pid())).exists()
        && !std::fs::read_to_string(format!("/proc/{}/status", broker.pid()))
            .unwrap_or_default()
            .contains("State:\tZ")
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the broker is still running 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Each parked fetch got its (empty) answer before the connection closed.
    for mut s in parked {
        let mut len = [0u8; 4];
        let read = tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut len)).await;
        assert!(matches!(read, Ok(Ok(_))), "a parked fetch was answered");
    }
}
