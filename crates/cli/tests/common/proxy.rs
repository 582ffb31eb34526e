//! In-process TCP forwarders placed in front of the listeners of a test cluster's nodes,
//! so that a test can cut one node off the network and heal it again: a network
//! partition without root, iptables or network namespaces.
//!
//! Every node advertises its client listener's proxy and every voter is named by its
//! controller listener's proxy, so all traffic to a node (Raft, heartbeats and
//! AlterPartition to its controller listener; follower fetches, transaction markers and
//! clients to its client listener) passes a proxy. Isolating node N pauses the
//! connections to N's proxies (all of them, or only those from the other nodes) and the
//! connections *from* N's process to the other proxies: the source of a connection is
//! found by the socket inode of its client end (`/proc/net/tcp`) among the open files of
//! a process (`/proc/<pid>/fd`).
//!
//! A cut pauses, it does not drop: bytes stay in the kernel's buffers and new connections
//! are accepted but carry nothing, as packets lost in a real partition are (and TCP
//! resends them once it heals). A connection whose peer gives up meanwhile is closed.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::free_port;

/// Which node is cut off, shared by all proxies of one cluster.
#[derive(Default)]
pub struct Network {
    isolated: Mutex<Option<Isolation>>,
}

#[derive(Clone, PartialEq, Eq)]
struct Isolation {
    node: i32,
    pid: u32,
    /// The other nodes' processes when only they are cut off from it (clients still
    /// reach it); `None`: everyone is.
    peers: Option<Vec<u32>>,
}

impl Network {
    pub fn new() -> Arc<Network> {
        Arc::new(Network::default())
    }

    /// Cuts node `node` (process `pid`) off: nothing reaches it and nothing it sends
    /// arrives, until [`Network::heal`].
    pub fn isolate(&self, node: i32, pid: u32) {
        *self.isolated.lock().unwrap() = Some(Isolation {
            node,
            pid,
            peers: None,
        });
    }

    /// Cuts node `node` (process `pid`) off from the other nodes (processes `peers`)
    /// only: clients still reach it, as in a partition between racks that leaves the
    /// clients on both sides.
    pub fn isolate_from_peers(&self, node: i32, pid: u32, peers: Vec<u32>) {
        *self.isolated.lock().unwrap() = Some(Isolation {
            node,
            pid,
            peers: Some(peers),
        });
    }

    pub fn heal(&self) {
        *self.isolated.lock().unwrap() = None;
    }

    fn isolation(&self) -> Option<Isolation> {
        self.isolated.lock().unwrap().clone()
    }
}

/// A forwarder from `127.0.0.1:port` to one listener of node `node`.
pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    node: i32,
    target: SocketAddr,
    network: Arc<Network>,
    stopped: AtomicBool,
    connections: Mutex<Vec<Weak<Connection>>>,
}

/// One forwarded connection: `client` accepted by the proxy, `upstream` to the target.
struct Connection {
    client: TcpStream,
    upstream: TcpStream,
    /// The client end's address (the connecting process's local address).
    peer: SocketAddr,
    port: u16,
    /// Whether the connection comes from a process, cached per pid.
    source: Mutex<Vec<(u32, bool)>>,
}

impl Proxy {
    pub fn start(node: i32, target: SocketAddr, network: Arc<Network>) -> Proxy {
        let port = free_port();
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("proxy port");
        let shared = Arc::new(Shared {
            node,
            target,
            network,
            stopped: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(listener, port, shared))
        };
        Proxy {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the acceptor up.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for connection in self.shared.connections.lock().unwrap().drain(..) {
            if let Some(connection) = connection.upgrade() {
                connection.close();
            }
        }
    }
}

fn accept_loop(listener: TcpListener, port: u16, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        // The target may be down (killed node): the client sees the connection close.
        let Ok(upstream) = TcpStream::connect_timeout(&shared.target, Duration::from_secs(1))
        else {
            continue;
        };
        let Ok(peer) = client.peer_addr() else {
            continue;
        };
        for stream in [&client, &upstream] {
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
        }
        let connection = Arc::new(Connection {
            client,
            upstream,
            peer,
            port,
            source: Mutex::new(Vec::new()),
        });
        {
            let mut connections = shared.connections.lock().unwrap();
            connections.retain(|c| c.strong_count() > 0);
            connections.push(Arc::downgrade(&connection));
        }
        for upstream_bound in [true, false] {
            let connection = connection.clone();
            let shared = shared.clone();
            std::thread::spawn(move || pump(&connection, &shared, upstream_bound));
        }
    }
}

/// Copies one direction of a connection while the network lets it through.
fn pump(connection: &Connection, shared: &Shared, upstream_bound: bool) {
    let (mut from, mut to) = if upstream_bound {
        (&connection.client, &connection.upstream)
    } else {
        (&connection.upstream, &connection.client)
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if shared.stopped.load(Ordering::SeqCst) {
            break;
        }
        if connection.paused(shared) {
            // Nothing passes, but a peer that gave up is noticed (EOF with nothing
            // pending), so that connections retried during a cut do not pile up.
            match from.peek(&mut buf[..1]) {
                Ok(0) => break,
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) if is_timeout(&e) => {}
                Err(_) => break,
            }
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Read before a cut began: held back until it heals.
                while connection.paused(shared) && !shared.stopped.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    connection.close();
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

impl Connection {
    fn close(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }

    fn paused(&self, shared: &Shared) -> bool {
        let Some(isolation) = shared.network.isolation() else {
            return false;
        };
        if self.comes_from(isolation.pid) {
            return true;
        }
        if isolation.node != shared.node {
            return false;
        }
        match &isolation.peers {
            None => true,
            Some(peers) => peers.iter().any(|pid| self.comes_from(*pid)),
        }
    }

    fn comes_from(&self, pid: u32) -> bool {
        let mut source = self.source.lock().unwrap();
        if let Some((_, from)) = source.iter().find(|(cached, _)| *cached == pid) {
            return *from;
        }
        let from =
            socket_inode(self.peer, self.port).is_some_and(|inode| process_has_socket(pid, inode));
        source.push((pid, from));
        from
    }
}

/// The inode of the IPv4 socket whose local end is `local` and remote end port `remote_port`.
fn socket_inode(local: SocketAddr, remote_port: u16) -> Option<u64> {
    let SocketAddr::V4(local) = local else {
        return None;
    };
    let hex_ip = format!("{:08X}", u32::from_ne_bytes(local.ip().octets()));
    let want_local = format!("{hex_ip}:{:04X}", local.port());
    let want_remote_port = format!(":{remote_port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
        (*local == want_local && remote.ends_with(&want_remote_port))
            .then(|| inode.parse().ok())
            .flatten()
    })
}

fn process_has_socket(pid: u32, inode: u64) -> bool {
    let want = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|fd| fd.ok())
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|link| link.to_str() == Some(want.as_str()))
}
