//! The HTTP sink against a real HTTP server started in the test (hyper on 127.0.0.1): the
//! server records each request and answers with scripted statuses.

// common is shared test support, formatted and linted on its own terms.
mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use moldau_connect::config::Props;
use moldau_connect::connector::{
    ConnectError, Connector, NoOffsets, SinkTask, StatusReporter, TaskContext,
};
use moldau_connect::connectors::http_sink::{HttpSinkConnector, HttpSinkTask, PLUGIN};
use moldau_connect::data::{Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};
use moldau_connect::record::ConnectRecord;

#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The endpoint: records requests, answers the scripted (status, body) in order, then 200.
struct Endpoint {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<(u16, String)>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    async fn start(script: &[(u16, &str)]) -> Endpoint {
        common::init_tracing();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(
            script
                .iter()
                .map(|(s, b)| (*s, b.to_string()))
                .collect::<VecDeque<_>>(),
        ));
        let (r, s) = (received.clone(), script.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (r, s) = (r.clone(), s.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (r, s) = (r.clone(), s.clone());
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_string();
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(n, v)| {
                                    (n.to_string(), v.to_str().unwrap_or_default().to_string())
                                })
                                .collect();
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            let body =
                                String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
                            r.lock().unwrap().push(Received {
                                method,
                                path,
                                headers,
                                body,
                            });
                            let (status, text) =
                                s.lock().unwrap().pop_front().unwrap_or((200, "ok".into()));
                            let response = Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from(text)))
                                .unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Endpoint {
            url,
            received,
            script,
            server,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn ctx() -> TaskContext {
    TaskContext {
        connector: "http-sink".into(),
        task: 0,
        kafka_client_props: Props::new(),
        status: StatusReporter::default(),
        offsets: Arc::new(NoOffsets),
    }
}

fn props(url: &str, extra: &[(&str, &str)]) -> Props {
    let mut p = Props::new();
    p.insert("http.api.url".into(), url.into());
    p.insert("retry.backoff.ms".into(), "50".into());
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    p
}

async fn started(props: &Props) -> HttpSinkTask {
    let mut task = HttpSinkTask::default();
    task.start(props, ctx()).await.expect("task starts");
    task
}

fn order_schema() -> SchemaRef {
    SchemaBuilder::struct_builder()
        .field("id", Schema::primitive(Type::Int32, false))
        .unwrap()
        .field("item", Schema::primitive(Type::String, true))
        .unwrap()
        .field("price", SchemaBuilder::decimal(2).optional().build())
        .unwrap()
        .build()
}

fn order(offset: i64, id: i32, item: &str) -> ConnectRecord {
    let schema = order_schema();
    let s = Struct::new(schema.clone())
        .unwrap()
        .with("id", Value::Int32(id))
        .unwrap()
        .with("item", Value::String(item.into()))
        .unwrap()
        .with("price", Value::Decimal(250))
        .unwrap();
    let mut r = ConnectRecord::new("orders", Some(schema), Value::Struct(s));
    r.partition = Some(0);
    r.kafka_offset = Some(offset);
    r
}

fn text(offset: i64, s: &str) -> ConnectRecord {
    let mut r = ConnectRecord::new(
        "lines",
        Some(Schema::primitive(Type::String, false)),
        Value::String(s.into()),
    );
    r.partition = Some(1);
    r.kafka_offset = Some(offset);
    r
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"))
}

#[tokio::test]
async fn json_records_are_batched_into_arrays() {
    let endpoint = Endpoint::start(&[]).await;
    let p = props(
        &endpoint.url,
        &[
            ("request.body.format", "json"),
            ("batch.max.size", "2"),
            ("batch.json.as.array", "true"),
        ],
    );
    let mut task = started(&p).await;
    task.put(vec![
        order(0, 1, "apple"),
        order(1, 2, "pear"),
        order(2, 3, "fig"),
    ])
    .await
    .expect("sent");
    task.flush(&[]).await.unwrap();
    let got = endpoint.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[0].method.as_str(), got[0].path.as_str()),
        ("POST", "/events")
    );
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(
        json(&got[0].body),
        serde_json::json!([
            {"id": 1, "item": "apple", "price": 2.50},
            {"id": 2, "item": "pear", "price": 2.50}
        ])
    );
    assert_eq!(
        json(&got[1].body),
        serde_json::json!([{"id": 3, "item": "fig", "price": 2.50}])
    );
    task.stop().await;
}

#[tokio::test]
async fn headers_basic_auth_and_string_batches_arrive() {
    let endpoint = Endpoint::start(&[]).await;
    let p = props(
        &endpoint.url,
        &[
            ("request.method", "put"),
            ("headers", "X-Api-Key:secret|Authorization-Scope: orders"),
            ("auth.type", "BASIC"),
            ("connection.user", "alice"),
            ("connection.password", "s3cret"),
            ("batch.max.size", "3"),
            ("batch.prefix", "<"),
            ("batch.suffix", ">"),
            ("batch.separator", ";"),
        ],
    );
    let mut task = started(&p).await;
    let mut tombstone = text(3, "");
    tombstone.value = Value::Null;
    task.put(vec![text(0, "a"), text(1, "b"), tombstone, text(2, "c")])
        .await
        .expect("sent");
    let got = endpoint.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.body, "<a;b;c>", "null values are ignored by default");
    assert_eq!(r.header("x-api-key"), Some("secret"));
    assert_eq!(r.header("authorization-scope"), Some("orders"));
    // base64("alice:s3cret")
    assert_eq!(r.header("authorization"), Some("Basic YWxpY2U6czNjcmV0"));

    // Structs as strings print as Kafka's Struct.toString.
    let p = props(&endpoint.url, &[]);
    let mut task = started(&p).await;
    task.put(vec![order(9, 7, "kiwi")]).await.expect("sent");
    assert_eq!(
        endpoint.received().last().unwrap().body,
        "Struct{id=7,item=kiwi,price=2.50}"
    );
}

#[tokio::test]
async fn a_503_is_retried_until_a_200() {
    let endpoint = Endpoint::start(&[(503, "busy"), (503, "still busy")]).await;
    let p = props(&endpoint.url, &[("max.retries", "3")]);
    let mut task = started(&p).await;
    task.put(vec![text(5, "hello")])
        .await
        .expect("sent after retries");
    let got = endpoint.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.body == "hello"));
    assert!(endpoint.script.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_400_fails_naming_the_status_and_body() {
    let endpoint = Endpoint::start(&[(400, "field 'x' is unknown")]).await;
    let p = props(&endpoint.url, &[("retry.on.status.codes", "429,500-")]);
    let mut task = started(&p).await;
    let err = task.put(vec![text(8, "bad")]).await.unwrap_err();
    let ConnectError::Fatal(m) = err else {
        panic!("expected fatal: {err:?}")
    };
    assert!(
        m.contains("400") && m.contains("field 'x' is unknown"),
        "{m}"
    );
    assert!(m.contains("topic='lines',partition=1,offset=8"), "{m}");
    assert_eq!(endpoint.received().len(), 1, "not retried");

    // With the default retry.on.status.codes (400-), retries run out and then fail.
    let endpoint = Endpoint::start(&[(503, "a"), (503, "b"), (503, "c")]).await;
    let p = props(&endpoint.url, &[("max.retries", "2")]);
    let mut task = started(&p).await;
    let err = task.put(vec![text(9, "x")]).await.unwrap_err();
    assert!(
        matches!(&err, ConnectError::Fatal(m) if m.contains("after 2 retries") && m.contains("503")),
        "{err:?}"
    );
    assert_eq!(endpoint.received().len(), 3);
}

#[tokio::test]
async fn unreachable_endpoints_and_null_values_fail_when_asked() {
    // Nothing listens on this port: transport errors are retried, then fail.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = props(
        &format!("http://127.0.0.1:{port}/x"),
        &[("max.retries", "1"), ("http.connect.timeout.ms", "1000")],
    );
    let mut task = started(&p).await;
    let err = tokio::time::timeout(Duration::from_secs(10), task.put(vec![text(0, "x")]))
        .await
        .expect("bounded")
        .unwrap_err();
    assert!(
        matches!(&err, ConnectError::Fatal(m) if m.contains("after 1 retries")),
        "{err:?}"
    );

    let endpoint = Endpoint::start(&[]).await;
    let p = props(&endpoint.url, &[("behavior.on.null.values", "fail")]);
    let mut task = started(&p).await;
    let mut tombstone = text(4, "");
    tombstone.value = Value::Null;
    let err = task.put(vec![tombstone]).await.unwrap_err();
    assert!(
        matches!(&err, ConnectError::Fatal(m) if m.contains("offset=4")),
        "{err:?}"
    );
}

#[tokio::test]
async fn connector_validates_headers_and_auth() {
    assert_eq!(PLUGIN.class, "io.confluent.connect.http.HttpSinkConnector");
    assert!(PLUGIN.new_sink_task.is_some());
    let connector = HttpSinkConnector::default();
    let ok = props("http://localhost:1/x", &[]);
    assert!(connector.validate(&ok).await.is_empty());
    let errors = connector
        .validate(&props(
            "http://localhost:1/x",
            &[("headers", "no-colon-here")],
        ))
        .await;
    assert!(errors.iter().any(|(k, _)| k == "headers"), "{errors:?}");
    let errors = connector
        .validate(&props("http://localhost:1/x", &[("auth.type", "BASIC")]))
        .await;
    assert!(
        errors.iter().any(|(k, _)| k == "connection.user"),
        "{errors:?}"
    );
    let mut task = HttpSinkTask::default();
    assert!(matches!(
        task.start(&props("not a url", &[]), ctx()).await,
        Err(ConnectError::Config(_))
    ));
}
