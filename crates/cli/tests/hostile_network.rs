//! Hostile clients against a `moldau server` process: raw sockets are the attacker (large
//! announced frames, trickled bytes, too many connections, amplifying requests, parked
//! requests across SIGTERM); the CLI's librdkafka producer and consumer show that other
//! clients keep working. Memory is the child's VmRSS, never this process's.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::Server;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

fn vm_rss_bytes(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    stream
}

/// True once the server has closed the connection (EOF or reset), false if it is still
/// open after `within`.
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// An ApiVersions v0 request frame; its answer proves the connection is served.
fn api_versions_frame(correlation_id: i32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&correlation_id.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes());
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

fn answers_api_versions(stream: &mut TcpStream) -> bool {
    if stream.write_all(&api_versions_frame(42)).is_err() {
        return false;
    }
    let mut size = [0u8; 4];
    if stream.read_exact(&mut size).is_err() {
        return false;
    }
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).is_ok() && body[..4] == 42i32.to_be_bytes()
}

fn produce_and_consume(server: &Server, topic: &str, count: usize) {
    let input: String = (0..count).map(|i| format!("record {i}\n")).collect();
    let out = server.ok_with_input(&["produce", "--topic", topic], &input);
    assert!(
        out.stderr.contains(&format!("Produced {count} records")),
        "{}",
        out.stderr
    );
    let values = server.consume_values(topic, count);
    assert_eq!(values.len(), count, "{values:?}");
}

#[test]
fn announced_frames_are_bounded_by_the_request_budget() {
    let tmp = tempfile::tempdir().unwrap();
    // Default socket.request.max.bytes (100 MiB), so the budget is 100 MiB too.
    let server = Server::start_in(tmp.path(), &["--override", "connections.max.idle.ms=4000"]);
    server.ok(&["topics", "create", "--topic", "calm"]);
    let baseline = vm_rss_bytes(&server);

    // Twenty clients announce 100 MB frames: ten trickle, ten push as fast as the broker reads.
    let addr = server.addr;
    let attackers: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                let mut stream = connect(addr);
                let _ = stream.write_all(&(100_000_000i32).to_be_bytes());
                let chunk = vec![7u8; if i % 2 == 0 { 1 } else { 64 * 1024 }];
                let until = Instant::now() + Duration::from_secs(6);
                while Instant::now() < until {
                    match stream.write(&chunk) {
                        Ok(_) if i % 2 == 0 => std::thread::sleep(Duration::from_millis(50)),
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    let mut peak = baseline;
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        peak = peak.max(vm_rss_bytes(&server));
        std::thread::sleep(Duration::from_millis(100));
    }
    for attacker in attackers {
        attacker.join().unwrap();
    }
    eprintln!("announced frames: RSS {baseline} -> peak {peak} bytes");
    // The budget (100 MiB) plus allocator slack; unbounded, this is 20 x 100 MB.
    let bound = baseline + 100 * 1024 * 1024 + 64 * 1024 * 1024;
    assert!(
        peak < bound,
        "RSS rose from {baseline} to {peak} bytes (bound {bound})"
    );
    // The stalled frames are dropped by connections.max.idle.ms; others are served.
    produce_and_consume(&server, "calm", 20);
}

#[test]
fn idle_time_counts_from_the_last_request_not_the_last_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(tmp.path(), &["--override", "connections.max.idle.ms=1500"]);
    let mut trickler = connect(server.addr);
    trickler.write_all(&1000i32.to_be_bytes()).unwrap();
    let started = Instant::now();
    let mut closed_after = None;
    while started.elapsed() < Duration::from_secs(10) {
        if trickler.write_all(&[1]).is_err()
            || closed_by_server(&mut trickler, Duration::from_millis(200))
        {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("a trickling connection is never closed");
    assert!(
        closed_after >= Duration::from_millis(1000),
        "{closed_after:?}"
    );
    // A connection that keeps sending whole requests stays open past the idle time.
    let mut served = connect(server.addr);
    for _ in 0..4 {
        assert!(answers_api_versions(&mut served));
        std::thread::sleep(Duration::from_millis(700));
    }
    assert!(answers_api_versions(&mut served));
}

#[test]
fn max_connections_per_ip_closes_extra_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(tmp.path(), &["--override", "max.connections.per.ip=3"]);
    // The harness's readiness probe connected and left: wait until it is counted out.
    std::thread::sleep(Duration::from_millis(300));
    let mut open: Vec<TcpStream> = (0..3).map(|_| connect(server.addr)).collect();
    for stream in &mut open {
        assert!(answers_api_versions(stream));
    }
    let mut extra = connect(server.addr);
    assert!(closed_by_server(&mut extra, Duration::from_secs(5)));
    drop(open.pop());
    std::thread::sleep(Duration::from_millis(300));
    let mut again = connect(server.addr);
    assert!(answers_api_versions(&mut again));
    // Overrides name an IP with its own limit.
    drop(open);
    drop(again);
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        tmp.path(),
        &[
            "--override",
            "max.connections.per.ip=1",
            "--override",
            "max.connections.per.ip.overrides=127.0.0.1:4",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut four: Vec<TcpStream> = (0..4).map(|_| connect(server.addr)).collect();
    for stream in &mut four {
        assert!(answers_api_versions(stream));
    }
}

/// A Produce v9 frame of `topics` empty-named topics without partitions: 3 bytes each on
/// the wire, hundreds decoded.
fn empty_topics_produce_frame(topics: usize) -> Vec<u8> {
    // Produce v9, correlation id 1, no client id, no header tags, no transactional id,
    // acks=1, timeout 1000 ms.
    let mut body = vec![
        0, 0, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0x03, 0xe8,
    ];
    let mut n = topics as u32 + 1;
    while n >= 0x80 {
        body.push((n as u8) | 0x80);
        n >>= 7;
    }
    body.push(n as u8);
    for _ in 0..topics {
        body.extend_from_slice(&[1, 1, 0]);
    }
    body.push(0);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[test]
fn amplifying_requests_are_refused_within_budget() {
    let server = Server::start();
    server.ok(&["topics", "create", "--topic", "calm"]);
    let baseline = vm_rss_bytes(&server);
    let frame = empty_topics_produce_frame(1_000_000);
    let mut attackers: Vec<TcpStream> = (0..8).map(|_| connect(server.addr)).collect();
    for stream in &mut attackers {
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(&frame).unwrap();
    }
    let mut peak = baseline;
    for stream in &mut attackers {
        assert!(closed_by_server(stream, Duration::from_secs(10)));
        peak = peak.max(vm_rss_bytes(&server));
    }
    eprintln!("amplifying requests: RSS {baseline} -> peak {peak} bytes");
    // Eight 3 MB frames; decoded without a bound each would take about 200 MB.
    let bound = baseline + 96 * 1024 * 1024;
    assert!(
        peak < bound,
        "RSS rose from {baseline} to {peak} (bound {bound})"
    );
    produce_and_consume(&server, "calm", 5);
}

fn put_unsigned_varint(buf: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// An ApiVersions v3 frame whose request header carries `tags` distinct empty tagged
/// fields: about 3 wire bytes each, a map entry each once decoded.
fn tagged_fields_frame(tags: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes());
    put_unsigned_varint(&mut body, tags);
    for tag in 0..tags {
        put_unsigned_varint(&mut body, tag);
        put_unsigned_varint(&mut body, 0);
    }
    // Body: client software name and version ("a", "1"), no tagged fields.
    body.extend_from_slice(&[2, b'a', 2, b'1', 0]);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[test]
fn unknown_tagged_fields_count_against_the_decode_allowance() {
    let server = Server::start();
    server.ok(&["topics", "create", "--topic", "calm"]);
    // A million tags in 3.5 MB decode to ~40 MB of map entries (11x the frame, past the
    // 8x allowance): refused and closed, where it used to be decoded and answered.
    let mut attacker = connect(server.addr);
    attacker
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    attacker.write_all(&tagged_fields_frame(1_000_000)).unwrap();
    assert!(closed_by_server(&mut attacker, Duration::from_secs(10)));
    // A few tagged fields, as clients send, are fine.
    let mut client = connect(server.addr);
    client.write_all(&tagged_fields_frame(3)).unwrap();
    let mut size = [0u8; 4];
    client.read_exact(&mut size).unwrap();
    assert!(i32::from_be_bytes(size) > 0);
    produce_and_consume(&server, "calm", 5);
}

/// Clients that together announce more than `queued.max.request.bytes` are served in turn:
/// none holds part of the budget while waiting for the rest.
#[test]
fn large_frames_beyond_the_budget_take_turns() {
    let tmp = tempfile::tempdir().unwrap();
    let frame_bytes: usize = 3 * 1024 * 1024;
    let server = Server::start_in(
        tmp.path(),
        &[
            "--override",
            &format!("socket.request.max.bytes={frame_bytes}"),
            "--override",
            &format!("queued.max.request.bytes={}", 4 * 1024 * 1024),
            // Longer than the test waits: a stall is not ended by the idle timeout.
            "--override",
            "connections.max.idle.ms=120000",
        ],
    );
    // An ApiVersions v0 request padded to the largest frame.
    let mut frame = api_versions_frame(9);
    frame.resize(4 + frame_bytes, 0);
    frame[..4].copy_from_slice(&(frame_bytes as i32).to_be_bytes());
    let addr = server.addr;
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let frame = frame.clone();
            std::thread::spawn(move || {
                let mut stream = connect(addr);
                stream
                    .set_write_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                stream
                    .write_all(&frame)
                    .map_err(|e| format!("write: {e}"))?;
                // Answered or closed: either way the broker read the whole frame.
                let mut byte = [0u8; 1];
                match stream.read(&mut byte) {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
                    Err(e) => Err(format!("read: {e}")),
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap().expect("the frame was read");
    }
    let mut after = connect(server.addr);
    assert!(answers_api_versions(&mut after));
}

fn parked_fetch_frame(topic: &str) -> Vec<u8> {
    let version = 4;
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(i32::MAX)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let header = RequestHeader::default()
        .with_request_api_key(1)
        .with_request_api_version(version)
        .with_correlation_id(9);
    let mut body = Vec::new();
    header.encode(&mut body, 1).unwrap();
    request.encode(&mut body, version).unwrap();
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[test]
fn sigterm_ends_parked_fetches_and_half_sent_frames() {
    // Its own temp dir: the server log is read after the server is gone.
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(tmp.path(), &[]);
    server.ok(&["topics", "create", "--topic", "empty"]);
    let mut parked = connect(server.addr);
    parked.write_all(&parked_fetch_frame("empty")).unwrap();
    let mut half = connect(server.addr);
    half.write_all(&1000i32.to_be_bytes()).unwrap();
    half.write_all(&[0u8; 10]).unwrap();
    // Let the fetch park.
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    let log_path = server.log_path.clone();
    let status = server.terminate();
    let took = sent.elapsed();
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    assert!(status.success(), "{status}:\n{log}");
    assert!(
        took < Duration::from_secs(8),
        "SIGTERM took {took:?}:\n{log}"
    );
    assert!(log.contains("stopped cleanly"), "{log}");
    parked
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut rest = Vec::new();
    let read = parked.read_to_end(&mut rest);
    assert!(
        read.is_ok() || read.as_ref().unwrap_err().kind() == std::io::ErrorKind::ConnectionReset,
        "{read:?} after {} bytes",
        rest.len()
    );
}

#[test]
fn every_listener_is_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let ports = [common::free_port(), common::free_port()];
    let mut child = std::process::Command::new(common::BIN)
        .args(["server", "--override"])
        .arg(format!(
            "listeners=PLAINTEXT://127.0.0.1:{},OTHER://127.0.0.1:{}",
            ports[0], ports[1]
        ))
        .args([
            "--override",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT",
        ])
        .arg("--override")
        .arg(format!("log.dirs={}", tmp.path().join("data").display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut served = Vec::new();
    for port in ports {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + common::STARTUP_DEADLINE;
        let mut stream = loop {
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                break Some(s);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        served.push(stream.as_mut().is_some_and(answers_api_versions));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(served, [true, true]);

    // A listener that cannot be bound fails the start, naming it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = common::moldau(&[
        "server",
        "--override",
        &format!("listeners=PLAINTEXT://127.0.0.1:0,BUSY://127.0.0.1:{port}"),
        "--override",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,BUSY:PLAINTEXT",
        "--override",
        &format!("log.dirs={}", tmp.path().join("other").display()),
    ]);
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("BUSY://127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_second_signal_exits_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(tmp.path(), &[]);
    server.ok(&["topics", "create", "--topic", "empty"]);
    // A parked fetch keeps the first shutdown in its grace period.
    let mut parked = connect(server.addr);
    parked.write_all(&parked_fetch_frame("empty")).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = server.child.id().to_string();
    let kill = |signal: &str| {
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    kill("-TERM");
    std::thread::sleep(Duration::from_millis(300));
    kill("-INT");
    let status = common::signal_and_wait(&mut server.child, "-0");
    let log = server.log();
    let status = status.unwrap_or_else(|| panic!("no exit after two signals:\n{log}"));
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.contains("second signal"), "{log}");
}

#[test]
fn max_connections_makes_new_connections_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(tmp.path(), &["--override", "max.connections=2"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut first = connect(server.addr);
    let mut second = connect(server.addr);
    assert!(answers_api_versions(&mut first));
    assert!(answers_api_versions(&mut second));
    // Connected by the kernel's backlog, but not accepted: no answer while two are open.
    let mut third = connect(server.addr);
    third.write_all(&api_versions_frame(42)).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut size = [0u8; 4];
    assert!(
        third.read_exact(&mut size).is_err(),
        "answered past max.connections"
    );
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    third.read_exact(&mut size).unwrap();
}

#[test]
fn out_of_descriptors_on_accept_the_broker_backs_off_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let log_path = tmp.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // Soft and hard limit, so that raising the soft limit at start does not lift it.
    let mut child = std::process::Command::new("prlimit")
        .arg("--nofile=160:160")
        .arg(common::BIN)
        .args(["server", "--override"])
        .arg(format!("listeners=PLAINTEXT://{addr}"))
        .arg("--override")
        .arg(format!("log.dirs={}", tmp.path().join("data").display()))
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let guard = KillOnDrop(&mut child);
    let deadline = Instant::now() + common::STARTUP_DEADLINE;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log_path).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // More connections than descriptors: the broker runs out while accepting.
    let flood: Vec<TcpStream> = (0..250)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.contains("accept failed"), "{text}");
    drop(flood);
    // The descriptors come back and the node serves again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut stream = connect(addr);
        if answers_api_versions(&mut stream) {
            break;
        }
        assert!(Instant::now() < deadline, "not serving after the flood");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(guard);
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_client_that_never_reads_its_responses_is_closed_when_idle() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(tmp.path(), &["--override", "connections.max.idle.ms=1500"]);
    server.ok(&["topics", "create", "--topic", "calm"]);
    // Pipelined requests whose answers fill the socket buffers: the broker blocks writing.
    let mut greedy = connect(server.addr);
    greedy
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let frames: Vec<u8> = (0..2000).flat_map(api_versions_frame).collect();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(15) {
        match greedy.write(&frames) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "a connection that never reads stays open");
    produce_and_consume(&server, "calm", 3);
}
