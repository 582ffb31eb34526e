//! `moldau connect` as processes against a `moldau server`: three distributed workers share
//! a connector's tasks through the group protocol, a request to any worker reaches the
//! leader, and when one worker is killed (SIGKILL) its tasks move to the others.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::connect::{call, Worker};
use common::{free_port, Server};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);

fn spawn_worker(dir: &Path, n: usize, broker: &Server, extra: &[(&str, &str)]) -> Worker {
    let port = free_port();
    let props = dir.join(format!("worker-{n}.properties"));
    let mut text = format!(
        "bootstrap.servers={}\ngroup.id=connect-cluster\nconfig.storage.topic=connect-configs\n\
         offset.storage.topic=connect-offsets\nstatus.storage.topic=connect-status\n\
         config.storage.replication.factor=1\noffset.storage.replication.factor=1\n\
         status.storage.replication.factor=1\n\
         key.converter=org.apache.kafka.connect.storage.StringConverter\n\
         value.converter=org.apache.kafka.connect.storage.StringConverter\n\
         listeners=http://127.0.0.1:{port}\noffset.flush.interval.ms=500\n",
        broker.addr
    );
    for (k, v) in extra {
        text.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(&props, text).unwrap();
    Worker::spawn("distributed", &props, &[], port)
}

fn wait_for<T>(what: &str, workers: &[&Worker], mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = workers.iter().map(|w| w.log()).collect();
            panic!(
                "timed out waiting for {what}; worker logs:\n{}",
                logs.join("\n-----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The worker id of each task when all `n` run.
fn running_tasks(w: &Worker, connector: &str, n: usize) -> Option<Vec<String>> {
    let (status, s) = call(
        "GET",
        &format!("{}/connectors/{connector}/status", w.url()),
        None,
    )?;
    if status != 200 {
        return None;
    }
    let tasks = s["tasks"].as_array()?;
    let running: Vec<String> = tasks
        .iter()
        .filter(|t| t["state"] == "RUNNING")
        .map(|t| t["worker_id"].as_str().unwrap_or("").to_string())
        .collect();
    (running.len() == n && tasks.len() == n).then_some(running)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn distributed_workers_share_tasks_and_take_over_from_a_killed_one() {
    let broker = Server::start();
    broker.ok(&["topics", "create", "--topic", "in", "--partitions", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let group_settings = [
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1000"),
        ("scheduled.rebalance.max.delay.ms", "2000"),
    ];
    let w1 = spawn_worker(dir.path(), 1, &broker, &group_settings);
    let w2 = spawn_worker(dir.path(), 2, &broker, &group_settings);
    let w3 = spawn_worker(dir.path(), 3, &broker, &group_settings);
    let all = [&w1, &w2, &w3];
    let out = dir.path().join("out.txt");
    let config = json!({"name": "snk", "config": {
        "connector.class": "FileStreamSink",
        "tasks.max": "3",
        "topics": "in",
        "file": out.display().to_string(),
    }});
    // Whichever worker is asked, the leader writes the config.
    let created = wait_for("the connector created", &all, || {
        let (status, body) = call(
            "POST",
            &format!("{}/connectors", w3.url()),
            Some(config.clone()),
        )?;
        match status {
            201 => Some(body),
            409 if body["message"]
                .as_str()
                .is_some_and(|m| m.contains("already exists")) =>
            {
                Some(body)
            }
            _ => None,
        }
    });
    assert_eq!(created["name"], "snk", "{created}");
    // Workers that joined after the first get their share by the next rebalances.
    let owners = wait_for("three running tasks spread over the workers", &all, || {
        let owners = running_tasks(&w1, "snk", 3)?;
        let distinct: std::collections::BTreeSet<&String> = owners.iter().collect();
        (distinct.len() == 3).then_some(owners)
    });
    // Every worker answers with the same view.
    for w in all {
        let (_, list) = call("GET", &format!("{}/connectors", w.url()), None).unwrap();
        assert_eq!(list, json!(["snk"]));
    }

    let values: Vec<String> = (0..60).map(|i| format!("v{i}")).collect();
    broker.ok_with_input(&["produce", "--topic", "in"], &(values.join("\n") + "\n"));
    wait_for("60 lines in the sink's file", &all, || {
        (lines(&out).len() >= 60).then_some(())
    });

    // SIGKILL the worker running task 0: its tasks move to the others.
    let victim_id = owners[0].clone();
    let (mut victim, survivors): (Vec<Worker>, Vec<Worker>) = [w1, w2, w3]
        .into_iter()
        .partition(|w| victim_id.ends_with(&format!(":{}", w.port)));
    let mut victim = victim.pop().expect("the victim is one of the workers");
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let survivors_ref: Vec<&Worker> = survivors.iter().collect();
    let owners = wait_for(
        "the killed worker's tasks running elsewhere",
        &survivors_ref,
        || {
            let owners = running_tasks(&survivors[0], "snk", 3)?;
            owners.iter().all(|o| *o != victim_id).then_some(owners)
        },
    );
    assert!(!owners.contains(&victim_id));

    let more: Vec<String> = (60..120).map(|i| format!("v{i}")).collect();
    broker.ok_with_input(&["produce", "--topic", "in"], &(more.join("\n") + "\n"));
    let got = wait_for("every value in the file", &survivors_ref, || {
        let got = lines(&out);
        values
            .iter()
            .chain(&more)
            .all(|v| got.contains(v))
            .then_some(got)
    });
    assert!(got.len() >= 120);
}

#[test]
fn an_exactly_once_source_delivers_each_line_once_across_a_killed_worker() {
    let broker = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let eos = [("exactly.once.source.support", "enabled")];
    let mut worker = spawn_worker(dir.path(), 1, &broker, &eos);
    let input = dir.path().join("in.txt");
    let lines_written: Vec<String> = (0..20_000).map(|i| format!("line-{i:05}")).collect();
    std::fs::write(&input, lines_written.join("\n") + "\n").unwrap();
    let config = json!({"name": "src", "config": {
        "connector.class": "FileStreamSource",
        "file": input.display().to_string(),
        "topic": "eos-lines",
        "batch.size": "100",
        "exactly.once.support": "required",
    }});
    wait_for("the connector created", &[&worker], || {
        let (status, _) = call(
            "POST",
            &format!("{}/connectors", worker.url()),
            Some(config.clone()),
        )?;
        (status == 201).then_some(())
    });
    // Killed mid-stream (SIGKILL), as soon as some transactions are committed.
    wait_for("some lines delivered", &[&worker], || {
        let out = broker.run(&[
            "consume",
            "--topic",
            "eos-lines",
            "--from-beginning",
            "--max-messages",
            "500",
            "--timeout-ms",
            "2000",
        ]);
        (out.stdout.lines().count() >= 500).then_some(())
    });
    worker.child.kill().unwrap();
    worker.child.wait().unwrap();
    drop(worker);
    // The same worker again: the connector is in the config topic, the offsets of what was
    // committed in the offsets topic; an open transaction was aborted by the new producer.
    let worker = spawn_worker(dir.path(), 1, &broker, &eos);
    let got = wait_for("every line committed", &[&worker], || {
        let values = broker.consume_values("eos-lines", 20_000);
        (values.len() >= 20_000).then_some(values)
    });
    assert_eq!(
        got, lines_written,
        "each line once, in order, for a read_committed consumer"
    );
    let (_, status) = call(
        "GET",
        &format!("{}/connectors/src/status", worker.url()),
        None,
    )
    .unwrap();
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
}
