//! `moldau connect` worker processes and their REST API, for the Connect tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::BIN;

/// A `moldau connect` process, killed on drop.
pub struct Worker {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Worker {
    /// Starts `moldau connect <mode> <worker properties> <connector files...>` and waits
    /// until its REST API answers on `port` (the port its `listeners` names).
    pub fn spawn(mode: &str, properties: &Path, connector_files: &[&Path], port: u16) -> Worker {
        let log = properties.with_extension(format!("{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .args(["connect", mode])
            .arg(properties)
            .args(connector_files)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("spawn moldau connect");
        let w = Worker { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(90);
        while call("GET", &format!("{}/", w.url()), None).is_none() {
            assert!(
                Instant::now() < deadline,
                "worker did not serve REST:\n{}",
                w.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        w
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A REST call: (status, JSON body or Null), or None when nothing answers.
pub fn call(method: &str, url: &str, body: Option<Value>) -> Option<(u16, Value)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let json = |b: Value| b.to_string();
    let response = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        ("POST", Some(b)) => agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(json(b)),
        ("POST", None) => agent.post(url).send_empty(),
        ("PUT", Some(b)) => agent
            .put(url)
            .header("Content-Type", "application/json")
            .send(json(b)),
        ("PUT", None) => agent.put(url).send_empty(),
        (m, _) => panic!("method {m}"),
    }
    .ok()?;
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap_or_default();
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}
