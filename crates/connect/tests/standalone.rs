//! A standalone worker driven through its REST API as a user would, against an in-process
//! broker, with Kafka's file connectors: the pipeline, restarts without loss or
//! duplicates, Connect's error answers, pause/resume/stop, offsets, the dead letter queue,
//! failed tasks and automatic restarts.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::TestBroker;
use moldau_connect::config::Props;
use moldau_connect::runtime::{start_standalone, RunningWorker};
use moldau_connect::worker::Plugins;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};

// Generous: the whole workspace's tests share two cores with these brokers and workers.
const DEADLINE: Duration = Duration::from_secs(90);

fn worker_props(broker: &TestBroker, dir: &Path) -> Props {
    [
        ("bootstrap.servers", broker.bootstrap()),
        (
            "key.converter",
            "org.apache.kafka.connect.storage.StringConverter".into(),
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.storage.StringConverter".into(),
        ),
        (
            "offset.storage.file.filename",
            dir.join("offsets").display().to_string(),
        ),
        ("offset.flush.interval.ms", "200".into()),
        ("listeners", "http://127.0.0.1:0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn start(broker: &TestBroker, dir: &Path) -> RunningWorker {
    start_standalone(
        worker_props(broker, dir),
        Vec::new(),
        Plugins::default(),
        None,
    )
    .await
    .expect("worker starts")
}

/// A blocking HTTP call from a blocking thread: (status, JSON body or Null).
async fn call(method: &str, url: String, body: Option<Value>) -> (u16, Value) {
    let method = method.to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let response = match (method.as_str(), body) {
            ("GET", _) => agent.get(&url).call(),
            ("DELETE", _) => agent.delete(&url).call(),
            ("POST", Some(b)) => agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            ("POST", None) => agent.post(&url).send_empty(),
            ("PUT", Some(b)) => agent
                .put(&url)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            ("PUT", None) => agent.put(&url).send_empty(),
            ("PATCH", Some(b)) => agent
                .patch(&url)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            (m, _) => panic!("method {m}"),
        }
        .expect("request");
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

async fn call_raw(method: &str, url: String, body: &'static str) -> (u16, Value) {
    let method = method.to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let response = match method.as_str() {
            "POST" => agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body),
            m => panic!("method {m}"),
        }
        .expect("request");
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn task_state(w: &RunningWorker, name: &str) -> Option<String> {
    let (_, s) = call(
        "GET",
        format!("{}/connectors/{name}/status", w.rest_url()),
        None,
    )
    .await;
    s["tasks"][0]["state"].as_str().map(str::to_string)
}

fn source_config(name: &str, file: &Path, topic: &str) -> Value {
    json!({"name": name, "config": {
        "connector.class": "FileStreamSource",
        "tasks.max": "1",
        "file": file.display().to_string(),
        "topic": topic,
    }})
}

fn sink_config(name: &str, file: &Path, topic: &str) -> Value {
    json!({"name": name, "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "tasks.max": "1",
        "file": file.display().to_string(),
        "topics": topic,
    }})
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_pipeline_survives_a_worker_restart_without_loss_or_duplicates() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    append(&input, "one\ntwo\n");

    let w = start(&broker, dir.path()).await;
    let (status, info) = call(
        "POST",
        format!("{}/connectors", w.rest_url()),
        Some(source_config("src", &input, "lines")),
    )
    .await;
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["name"], "src");
    assert_eq!(info["type"], "source");
    let (status, _) = call(
        "POST",
        format!("{}/connectors", w.rest_url()),
        Some(sink_config("snk", &output, "lines")),
    )
    .await;
    assert_eq!(status, 201);
    wait_until("two lines in the sink's file", || async {
        lines(&output).len() == 2
    })
    .await;
    append(&input, "three\n");
    wait_until("three lines", || async { lines(&output).len() == 3 }).await;
    let (_, topics) = call(
        "GET",
        format!("{}/connectors/src/topics", w.rest_url()),
        None,
    )
    .await;
    assert_eq!(topics, json!({"src": {"topics": ["lines"]}}));
    w.shutdown().await;

    // Written while no worker runs: read after the restart, once.
    append(&input, "four\nfive\n");
    let w = start(&broker, dir.path()).await;
    let (_, offsets) = call(
        "GET",
        format!("{}/connectors/src/offsets", w.rest_url()),
        None,
    )
    .await;
    assert_eq!(
        offsets["offsets"],
        Value::Null,
        "no connector yet: {offsets}"
    );
    call(
        "POST",
        format!("{}/connectors", w.rest_url()),
        Some(source_config("src", &input, "lines")),
    )
    .await;
    call(
        "POST",
        format!("{}/connectors", w.rest_url()),
        Some(sink_config("snk", &output, "lines")),
    )
    .await;
    wait_until("five lines", || async { lines(&output).len() >= 5 }).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(lines(&output), vec!["one", "two", "three", "four", "five"]);
    let (_, offsets) = call(
        "GET",
        format!("{}/connectors/src/offsets", w.rest_url()),
        None,
    )
    .await;
    assert_eq!(
        offsets["offsets"][0],
        json!({"partition": {"filename": input.display().to_string()}, "offset": {"position": 24}})
    );
    let (_, offsets) = call(
        "GET",
        format!("{}/connectors/snk/offsets", w.rest_url()),
        None,
    )
    .await;
    assert_eq!(
        offsets["offsets"][0],
        json!({"partition": {"kafka_topic": "lines", "kafka_partition": 0}, "offset": {"kafka_offset": 5}})
    );
    w.shutdown().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_connects_answers_and_create_nothing() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let w = start(&broker, dir.path()).await;
    let url = format!("{}/connectors", w.rest_url());

    let (status, e) = call(
        "POST",
        url.clone(),
        Some(json!({"name": "x", "config": {"connector.class": "com.example.NoSuchConnector"}})),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error_code"], 400);
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("com.example.NoSuchConnector") && m.contains("FileStreamSourceConnector"),
        "{m}"
    );

    let (status, e) = call(
        "POST",
        url.clone(),
        Some(json!({"name": "x", "config": {"connector.class": "FileStreamSource"}})),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("Connector configuration is invalid") && m.contains("\"topic\""),
        "{m}"
    );

    let (status, e) = call("POST", url.clone(), Some(json!({"name": "x", "config": {"connector.class": "FileStreamSource", "topic": "t", "tasks.max": "many"}}))).await;
    assert_eq!(status, 400);
    assert!(e["message"].as_str().unwrap().contains("tasks.max"), "{e}");

    let (status, e) = call_raw("POST", url.clone(), "{\"name\": ").await;
    assert_eq!(status, 500, "{e}");
    assert_eq!(e["error_code"], 500);

    let (status, e) = call("GET", format!("{url}/nope"), None).await;
    assert_eq!(
        (status, e["message"].as_str()),
        (404, Some("Connector nope not found"))
    );
    let (status, _) = call("DELETE", format!("{url}/nope"), None).await;
    assert_eq!(status, 404);

    // Nothing was created by any of the above.
    let (_, list) = call("GET", url.clone(), None).await;
    assert_eq!(list, json!([]));

    let good = source_config("x", &dir.path().join("in"), "t");
    assert_eq!(call("POST", url.clone(), Some(good.clone())).await.0, 201);
    let (status, e) = call("POST", url.clone(), Some(good)).await;
    assert_eq!(
        (status, e["message"].as_str()),
        (409, Some("Connector x already exists"))
    );

    let (status, infos) = call(
        "PUT",
        format!(
            "{}/connector-plugins/FileStreamSource/config/validate",
            w.rest_url()
        ),
        Some(json!({"connector.class": "FileStreamSource", "name": "v"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(infos["error_count"], 1, "{infos}");
    w.shutdown().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_resume_stop_and_offsets_of_a_stopped_connector() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    append(&input, "a\nb\n");
    let w = start(&broker, dir.path()).await;
    let base = format!("{}/connectors", w.rest_url());
    assert_eq!(
        call("POST", base.clone(), Some(source_config("s", &input, "t")))
            .await
            .0,
        201
    );
    wait_until("RUNNING", || async {
        task_state(&w, "s").await.as_deref() == Some("RUNNING")
    })
    .await;
    wait_until("offsets", || async {
        let (_, o) = call("GET", format!("{base}/s/offsets"), None).await;
        o["offsets"][0]["offset"]["position"] == 4
    })
    .await;

    assert_eq!(call("PUT", format!("{base}/s/pause"), None).await.0, 202);
    wait_until("PAUSED", || async {
        task_state(&w, "s").await.as_deref() == Some("PAUSED")
    })
    .await;
    assert_eq!(call("PUT", format!("{base}/s/resume"), None).await.0, 202);
    wait_until("RUNNING again", || async {
        task_state(&w, "s").await.as_deref() == Some("RUNNING")
    })
    .await;

    let alter = json!({"offsets": [{"partition": {"filename": input.display().to_string()}, "offset": {"position": 2}}]});
    let (status, e) = call("PATCH", format!("{base}/s/offsets"), Some(alter.clone())).await;
    assert_eq!(
        status, 400,
        "running connectors' offsets cannot change: {e}"
    );

    assert_eq!(call("PUT", format!("{base}/s/stop"), None).await.0, 204);
    let (_, st) = call("GET", format!("{base}/s/status"), None).await;
    assert_eq!(st["connector"]["state"], "STOPPED");
    assert_eq!(st["tasks"], json!([]));
    let (status, m) = call("PATCH", format!("{base}/s/offsets"), Some(alter)).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        m["message"],
        "The offsets for this connector have been altered successfully"
    );
    let (_, o) = call("GET", format!("{base}/s/offsets"), None).await;
    assert_eq!(o["offsets"][0]["offset"]["position"], 2);

    // Resumed from position 2: "b" is read again.
    let consumed_before = broker.read_topic("t", 10, Duration::from_secs(3)).len();
    assert_eq!(consumed_before, 2);
    assert_eq!(call("PUT", format!("{base}/s/resume"), None).await.0, 202);
    let after = broker.read_topic("t", 3, DEADLINE);
    assert_eq!(after.len(), 3);
    assert_eq!(after[2].1.as_deref(), Some(&b"b"[..]));

    assert_eq!(call("PUT", format!("{base}/s/stop"), None).await.0, 204);
    let (status, m) = call("DELETE", format!("{base}/s/offsets"), None).await;
    assert_eq!(
        (status, m["message"].as_str()),
        (
            200,
            Some("The offsets for this connector have been reset successfully")
        )
    );
    let (_, o) = call("GET", format!("{base}/s/offsets"), None).await;
    assert_eq!(o["offsets"], json!([]));
    assert_eq!(call("DELETE", format!("{base}/s"), None).await.0, 204);
    w.shutdown().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_that_fail_conversion_go_to_the_dead_letter_queue() {
    let broker = TestBroker::start().await;
    broker.create_topic("in", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.txt");
    let w = start(&broker, dir.path()).await;
    let mut config = sink_config("snk", &output, "in");
    let c = config["config"].as_object_mut().unwrap();
    c.insert(
        "value.converter".into(),
        json!("org.apache.kafka.connect.json.JsonConverter"),
    );
    c.insert("value.converter.schemas.enable".into(), json!("false"));
    c.insert("errors.tolerance".into(), json!("all"));
    c.insert("errors.deadletterqueue.topic.name".into(), json!("dlq"));
    c.insert(
        "errors.deadletterqueue.context.headers.enable".into(),
        json!("true"),
    );
    c.insert("errors.log.enable".into(), json!("true"));
    assert_eq!(
        call("POST", format!("{}/connectors", w.rest_url()), Some(config))
            .await
            .0,
        201
    );

    let producer: FutureProducer = broker.client_config().create().unwrap();
    for v in ["{\"a\":1}", "not json", "{\"a\":2}"] {
        producer
            .send(
                FutureRecord::<(), str>::to("in")
                    .payload(v)
                    .headers(OwnedHeaders::new().insert(Header {
                        key: "h",
                        value: Some("v"),
                    })),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
    }
    wait_until("the good records in the file", || async {
        lines(&output).len() == 2
    })
    .await;
    assert_eq!(lines(&output), vec!["{a=1}", "{a=2}"]);

    let consumer: rdkafka::consumer::BaseConsumer = broker
        .client_config()
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    use rdkafka::consumer::Consumer;
    consumer.subscribe(&["dlq"]).unwrap();
    let deadline = Instant::now() + DEADLINE;
    let m = loop {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "nothing in the dead letter queue"
        );
    };
    assert_eq!(m.payload(), Some(&b"not json"[..]));
    let headers = m.headers().expect("headers");
    let header = |k: &str| {
        headers
            .iter()
            .find(|h| h.key == k)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(
        header("h").as_deref(),
        Some("v"),
        "the original headers are kept"
    );
    assert_eq!(header("__connect.errors.topic").as_deref(), Some("in"));
    assert_eq!(header("__connect.errors.offset").as_deref(), Some("1"));
    assert_eq!(
        header("__connect.errors.stage").as_deref(),
        Some("VALUE_CONVERTER")
    );
    assert_eq!(
        header("__connect.errors.connector.name").as_deref(),
        Some("snk")
    );
    assert_eq!(task_state(&w, "snk").await.as_deref(), Some("RUNNING"));
    w.shutdown().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_task_shows_its_trace_and_restarts_by_itself_when_asked_to() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: reading it fails.
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let w = start(&broker, dir.path()).await;
    let base = format!("{}/connectors", w.rest_url());
    let mut config = source_config("s", &input, "t");
    let c = config["config"].as_object_mut().unwrap();
    c.insert("errors.restart.enable".into(), json!("true"));
    c.insert("errors.restart.initial.backoff.ms".into(), json!("300"));
    assert_eq!(call("POST", base.clone(), Some(config)).await.0, 201);
    wait_until("FAILED", || async {
        task_state(&w, "s").await.as_deref() == Some("FAILED")
    })
    .await;
    let (_, st) = call("GET", format!("{base}/s/tasks/0/status"), None).await;
    assert!(
        st["trace"].as_str().unwrap().contains("ConnectException"),
        "{st}"
    );

    // Fixed: the next automatic restart runs.
    std::fs::remove_dir(&input).unwrap();
    append(&input, "x\n");
    wait_until("RUNNING after an automatic restart", || async {
        task_state(&w, "s").await.as_deref() == Some("RUNNING")
    })
    .await;
    let (_, st) = call("GET", format!("{base}/s/tasks/0/status"), None).await;
    assert!(st["restarts"].as_u64().unwrap() >= 1, "{st}");
    assert!(st["last_error"].as_str().is_some(), "{st}");
    assert_eq!(broker.read_topic("t", 1, DEADLINE).len(), 1);

    // A restart through the API answers with the instances being restarted.
    let (status, st) = call("POST", format!("{base}/s/restart?includeTasks=true"), None).await;
    assert_eq!(status, 202, "{st}");
    assert_eq!(st["tasks"][0]["state"], "RESTARTING");
    assert_eq!(call("POST", format!("{base}/s/restart"), None).await.0, 204);
    assert_eq!(
        call("POST", format!("{base}/s/tasks/0/restart"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        call("POST", format!("{base}/s/tasks/7/restart"), None)
            .await
            .0,
        404
    );
    wait_until("RUNNING", || async {
        task_state(&w, "s").await.as_deref() == Some("RUNNING")
    })
    .await;
    w.shutdown().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_records_failing_transformation_go_to_the_dead_letter_queue() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    append(&input, "1\nnot-a-number\n3\n");
    let w = start(&broker, dir.path()).await;
    let mut config = source_config("numbers", &input, "ints");
    let c = config["config"].as_object_mut().unwrap();
    c.insert("transforms".into(), json!("toint"));
    c.insert(
        "transforms.toint.type".into(),
        json!("org.apache.kafka.connect.transforms.Cast$Value"),
    );
    c.insert("transforms.toint.spec".into(), json!("int32"));
    c.insert("errors.tolerance".into(), json!("all"));
    c.insert(
        "errors.deadletterqueue.topic.name".into(),
        json!("source-dlq"),
    );
    c.insert(
        "errors.deadletterqueue.context.headers.enable".into(),
        json!("true"),
    );
    assert_eq!(
        call("POST", format!("{}/connectors", w.rest_url()), Some(config))
            .await
            .0,
        201
    );

    let good = broker.read_topic("ints", 2, DEADLINE);
    let values: Vec<Option<Vec<u8>>> = good.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, vec![Some(b"1".to_vec()), Some(b"3".to_vec())]);

    let consumer: rdkafka::consumer::BaseConsumer = broker
        .client_config()
        .set("group.id", "source-dlq-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    use rdkafka::consumer::Consumer;
    consumer.subscribe(&["source-dlq"]).unwrap();
    let deadline = Instant::now() + DEADLINE;
    let m = loop {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "nothing in the source dead letter queue"
        );
    };
    assert_eq!(
        m.payload(),
        Some(&b"not-a-number"[..]),
        "the record as the task returned it"
    );
    let headers = m.headers().expect("context headers");
    let header = |k: &str| {
        headers
            .iter()
            .find(|h| h.key == k)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header("__connect.errors.topic").as_deref(), Some("ints"));
    assert_eq!(
        header("__connect.errors.stage").as_deref(),
        Some("TRANSFORMATION")
    );
    assert_eq!(
        header("__connect.errors.connector.name").as_deref(),
        Some("numbers")
    );
    let partition = header("__connect.errors.partition").unwrap();
    assert!(
        partition.starts_with('{') && partition.contains("in.txt"),
        "{partition}"
    );
    let offset: Value = serde_json::from_str(&header("__connect.errors.offset").unwrap()).unwrap();
    assert_eq!(
        offset,
        json!({"position": 15}),
        "the failed line's source offset"
    );
    assert_eq!(task_state(&w, "numbers").await.as_deref(), Some("RUNNING"));
    w.shutdown().await;
    broker.shutdown().await;
}
