//! A dynamic metadata quorum (KIP-853) of `moldau server` processes: the first controller
//! formatted `--standalone`, two more formatted `--no-initial-controllers` and added with
//! `moldau metadata-quorum add-controller` (AddRaftVoter), a failover among the three,
//! and `remove-controller` (RemoveRaftVoter). Clients are librdkafka (rdkafka) and the CLI.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cluster::{brokers, controller_id, quorum, DEADLINE};
use common::{free_port, moldau, Server};

struct DynamicNode {
    dir: PathBuf,
    client_port: u16,
    controller_port: u16,
    config: PathBuf,
}

impl DynamicNode {
    fn new(root: &Path, id: i32, bootstrap_controller: Option<u16>) -> DynamicNode {
        let dir = root.join(format!("node-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let client_port = free_port();
        let controller_port = free_port();
        let bootstrap = bootstrap_controller.unwrap_or(controller_port);
        let config = dir.join("server.properties");
        let text = format!(
            "node.id={id}\n\
             listeners=PLAINTEXT://127.0.0.1:{client_port},CONTROLLER://127.0.0.1:{controller_port}\n\
             controller.listener.names=CONTROLLER\n\
             controller.quorum.bootstrap.servers=127.0.0.1:{bootstrap}\n\
             controller.quorum.election.timeout.ms=500\n\
             controller.quorum.fetch.timeout.ms=1000\n\
             broker.heartbeat.interval.ms=300\n\
             broker.session.timeout.ms=2000\n\
             log.dirs={}\n",
            dir.join("data").display()
        );
        std::fs::write(&config, text).unwrap();
        DynamicNode {
            dir,
            client_port,
            controller_port,
            config,
        }
    }

    fn format(&self, cluster_id: &str, how: &str) {
        let config = self.config.display().to_string();
        let out = moldau(&["storage", "format", "-t", cluster_id, "-c", &config, how]);
        assert_eq!(
            out.code,
            Some(0),
            "format {how}: {}{}",
            out.stdout,
            out.stderr
        );
    }

    fn spawn(&self) -> Server {
        let config = self.config.display().to_string();
        let listeners = format!(
            "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
            self.client_port, self.controller_port
        );
        let log_dirs = format!("log.dirs={}", self.dir.join("data").display());
        Server::spawn(
            &self.dir,
            &[],
            &[
                "--config",
                &config,
                "--override",
                &listeners,
                "--override",
                &log_dirs,
            ],
        )
    }

    fn directory_id(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("data").join("meta.properties")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("directory.id="))
            .unwrap()
            .to_string()
    }

    fn controller_addr(&self) -> String {
        format!("127.0.0.1:{}", self.controller_port)
    }
}

fn wait<T>(what: &str, logs: impl Fn() -> String, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn controllers_join_and_leave_a_dynamic_quorum() {
    let tmp = tempfile::tempdir().unwrap();
    let first = DynamicNode::new(tmp.path(), 1, None);
    let mut nodes = [
        first,
        DynamicNode::new(tmp.path(), 2, Some(0)),
        DynamicNode::new(tmp.path(), 3, Some(0)),
    ];
    // Nodes 2 and 3 find the quorum through node 1's controller listener.
    for node in &nodes[1..] {
        let text = std::fs::read_to_string(&node.config).unwrap().replace(
            "controller.quorum.bootstrap.servers=127.0.0.1:0",
            &format!(
                "controller.quorum.bootstrap.servers={}",
                nodes[0].controller_addr()
            ),
        );
        std::fs::write(&node.config, text).unwrap();
    }
    let cluster_id = moldau(&["storage", "random-uuid"])
        .stdout
        .trim()
        .to_string();
    // Kafka's rule: a controller of a dynamic quorum says how it starts.
    let config = nodes[0].config.display().to_string();
    let out = moldau(&["storage", "format", "-t", &cluster_id, "-c", &config]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr
            .contains("--standalone, --initial-controllers, or --no-initial-controllers"),
        "{}",
        out.stderr
    );
    nodes[0].format(&cluster_id, "--standalone");
    for node in &nodes[1..] {
        node.format(&cluster_id, "--no-initial-controllers");
    }

    let mut servers: Vec<Option<Server>> = nodes.iter().map(|n| Some(n.spawn())).collect();
    for server in servers.iter_mut().flatten() {
        server.wait_until_accepting();
    }
    let logs = |servers: &[Option<Server>]| -> String {
        servers
            .iter()
            .flatten()
            .map(|s| format!("--- {} ---\n{}", s.addr, s.log()))
            .collect()
    };
    let s1 = servers[0].as_ref().unwrap();
    // One voter; the joining controllers follow its log (registered brokers, observers).
    let all: BTreeSet<i32> = [1, 2, 3].into();
    wait(
        "three brokers",
        || logs(&servers),
        || brokers(&s1.addr.to_string()).filter(|b| *b == all),
    );
    let (leader, voters, observers) = quorum(s1).unwrap();
    assert_eq!((leader, voters), (1, vec![1]));
    assert_eq!(observers, vec![2, 3]);

    // add-controller: through a broker (forwarded) for node 2, the controllers' own
    // listeners for node 3.
    let out = s1.run(&[
        "metadata-quorum",
        "add-controller",
        "--command-config",
        &nodes[1].config.display().to_string(),
    ]);
    assert_eq!(
        out.code,
        Some(0),
        "{}{}\n{}",
        out.stdout,
        out.stderr,
        logs(&servers)
    );
    assert!(out.stdout.contains("Added controller 2"), "{}", out.stdout);
    let out = s1.run(&[
        "metadata-quorum",
        "add-controller",
        "--command-config",
        &nodes[2].config.display().to_string(),
        "--bootstrap-controller",
        &nodes[1].controller_addr(),
    ]);
    assert_eq!(
        out.code,
        Some(0),
        "{}{}\n{}",
        out.stdout,
        out.stderr,
        logs(&servers)
    );
    let (_, voters, _) = quorum(s1).unwrap();
    assert_eq!(voters, vec![1, 2, 3]);
    // --replication names each voter's directory id, as kafka-metadata-quorum does.
    let replication = s1.json(&["metadata-quorum", "describe", "--replication", "-o", "json"]);
    for (i, node) in nodes.iter().enumerate() {
        let row = replication
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["node_id"] == (i + 1) as i64)
            .unwrap_or_else(|| panic!("no row for {}: {replication}", i + 1));
        assert_eq!(row["directory_id"], node.directory_id(), "{replication}");
    }
    // Again: DUPLICATE_VOTER.
    let out = s1.run(&[
        "metadata-quorum",
        "add-controller",
        "--command-config",
        &nodes[1].config.display().to_string(),
    ]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("DuplicateVoter"), "{}", out.stderr);

    // kill -9 of the first controller: the two added ones elect a leader and take writes.
    drop(servers[0].take());
    let s2 = servers[1].as_ref().unwrap();
    let new_leader = wait(
        "a new active controller",
        || logs(&servers),
        || controller_id(s2).filter(|id| *id != 1),
    );
    assert!([2, 3].contains(&new_leader));
    s2.ok(&[
        "topics",
        "create",
        "--topic",
        "after-failover",
        "--partitions",
        "2",
    ]);

    // remove-controller: a wrong directory id names no voter; the right one removes it.
    let out = s2.run(&[
        "metadata-quorum",
        "remove-controller",
        "--controller-id",
        "1",
        "--controller-directory-id",
        &nodes[1].directory_id(),
    ]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("VoterNotFound"), "{}", out.stderr);
    let out = s2.run(&[
        "metadata-quorum",
        "remove-controller",
        "--controller-id",
        "1",
        "--controller-directory-id",
        &nodes[0].directory_id(),
    ]);
    assert_eq!(
        out.code,
        Some(0),
        "{}{}\n{}",
        out.stdout,
        out.stderr,
        logs(&servers)
    );
    let (_, voters, _) = wait(
        "two voters",
        || logs(&servers),
        || quorum(s2).filter(|(_, v, _)| *v == vec![2, 3]),
    );
    assert_eq!(voters, vec![2, 3]);
    s2.ok(&["topics", "create", "--topic", "after-removal"]);

    // A voter added at run time restarts on its own data (the log's membership, not a
    // config, names the voters), here on another controller port: it tells the active
    // controller (UpdateRaftVoter), which reaches it there from then on.
    let restarted = servers[2].take().unwrap();
    assert!(restarted.terminate().success());
    let new_port = free_port();
    let text = std::fs::read_to_string(&nodes[2].config).unwrap().replace(
        &format!("CONTROLLER://127.0.0.1:{}", nodes[2].controller_port),
        &format!("CONTROLLER://127.0.0.1:{new_port}"),
    );
    std::fs::write(&nodes[2].config, text).unwrap();
    nodes[2].controller_port = new_port;
    let mut s3 = nodes[2].spawn();
    s3.wait_until_accepting();
    servers[2] = Some(s3);
    let s2 = servers[1].as_ref().unwrap();
    wait(
        "writes with both voters back",
        || logs(&servers),
        || {
            (s2.run(&["topics", "create", "--topic", "after-restart"])
                .code
                == Some(0))
            .then_some(())
        },
    );
    let (_, voters, _) = quorum(servers[2].as_ref().unwrap()).unwrap();
    assert_eq!(voters, vec![2, 3]);
    // The membership now names node 3 at its new endpoint (whoever leads applied it).
    wait(
        "node 3's new endpoint recorded",
        || logs(&servers),
        || {
            servers
                .iter()
                .flatten()
                .any(|s| s.log().contains("SetNodes") && s.log().contains(&new_port.to_string()))
                .then_some(())
        },
    );
    // The controllers now name node 3 at its new endpoint.
    let status = servers[1].as_ref().unwrap().json(&[
        "metadata-quorum",
        "describe",
        "--status",
        "--bootstrap-controller",
        &nodes[2].controller_addr(),
        "-o",
        "json",
    ]);
    assert_eq!(
        status["current_voters"],
        serde_json::json!([2, 3]),
        "{status}"
    );
}
