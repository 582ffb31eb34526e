//! The REST API's HTTP server (hyper): each request is routed by [`rest::route`], run on
//! the [`Herder`], and answered with Kafka Connect's JSON and status codes; every error is
//! Connect's `{"error_code":..,"message":..}`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::config::Props;
use crate::rest::{
    self, apply_config_patch, check_and_put_connector_name, check_validate_plugin, ConfigPatch,
    ConnectorExpansions, ConnectorOffsets, CreateConnectorRequest, ErrorMessage,
    ExpandedConnectors, Expansion, LoggerLevel, LoggerLevels, LoggerScope, Route, ServerInfo,
    WorkerStatus,
};
use crate::storage::TargetState;
use crate::worker::HerderApi;

/// The largest request body accepted (connector configs are small; this bounds a client).
pub const MAX_REQUEST_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Log levels the REST API reads and sets (`/admin/loggers`), provided by the binary.
pub trait LoggerControl: Send + Sync {
    fn levels(&self) -> LoggerLevels;
    /// Sets a logger's level; returns the loggers whose level changed.
    fn set_level(&self, logger: &str, level: &str) -> Result<Vec<String>, String>;
}

/// What the server serves.
pub struct RestServer {
    pub herder: Arc<dyn HerderApi>,
    pub loggers: Option<Arc<dyn LoggerControl>>,
    pub kafka_cluster_id: Option<String>,
    /// `http` or `https`: how this worker and the others of its cluster are reached (the
    /// URL of a task's worker, which the statuses name by `host:port`).
    pub scheme: &'static str,
    /// The client of the requests to other workers (`crate::security::forwarding_agent`:
    /// https with the worker's trust and key stores).
    pub forward_agent: ureq::Agent,
}

type Answer = Response<Full<Bytes>>;

fn json_answer(status: u16, body: &impl Serialize) -> Answer {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn empty(status: u16) -> Answer {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT);
    r
}

fn error(e: ErrorMessage) -> Answer {
    json_answer(e.status(), &e)
}

/// Binds the listener (`host:port`; port 0 picks one) and serves until the task is
/// dropped, over TLS when `tls` is given (an https listener: a connection that does not
/// complete the handshake within 30 s, or speaks plain http, is closed). Returns the bound
/// address.
pub async fn serve(
    server: Arc<RestServer>,
    addr: &str,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("REST accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let server = server.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    None => serve_connection(server, stream).await,
                    Some(acceptor) => {
                        let handshake = tokio::time::timeout(
                            std::time::Duration::from_secs(30),
                            acceptor.accept(stream),
                        )
                        .await;
                        match handshake {
                            Ok(Ok(tls)) => serve_connection(server, tls).await,
                            Ok(Err(e)) => tracing::debug!("REST TLS handshake: {e}"),
                            Err(_) => tracing::debug!("REST TLS handshake: timed out"),
                        }
                    }
                }
            });
        }
    });
    Ok((bound, handle))
}

/// Serves one connection's HTTP/1.1 requests.
async fn serve_connection<S>(server: Arc<RestServer>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(handle(&server, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), svc);
    if let Err(e) = conn.await {
        tracing::debug!("REST connection: {e}");
    }
}

async fn body_bytes(req: Request<Incoming>) -> Result<Bytes, ErrorMessage> {
    Limited::new(req.into_body(), MAX_REQUEST_BODY_BYTES)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            ErrorMessage::new(
                413,
                format!(
                    "Request body larger than {MAX_REQUEST_BODY_BYTES} bytes or unreadable: {e}"
                ),
            )
        })
}

/// Parses a JSON body as Kafka's Jackson does; a malformed body answers 500 with the
/// parser's message, as Kafka's `ConnectExceptionMapper` does for a Jackson exception.
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ErrorMessage> {
    serde_json::from_slice(bytes)
        .map_err(|e| ErrorMessage::new(500, format!("Cannot deserialize request body: {e}")))
}

/// Marks a request one worker forwarded to another (a second hop is refused).
const FORWARDED_HEADER: &str = "x-moldau-connect-forwarded";

/// Whether a route changes the cluster's configs (a distributed follower forwards it to
/// the leader).
fn is_write(route: &Route) -> bool {
    matches!(
        route,
        Route::CreateConnector
            | Route::DeleteConnector { .. }
            | Route::PutConnectorConfig { .. }
            | Route::PatchConnectorConfig { .. }
            | Route::RestartConnector(_)
            | Route::StopConnector { .. }
            | Route::PauseConnector { .. }
            | Route::ResumeConnector { .. }
            | Route::AlterOffsets { .. }
            | Route::ResetOffsets { .. }
    )
}

async fn handle(server: &RestServer, req: Request<Incoming>) -> Answer {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let forwarded = req.headers().contains_key(FORWARDED_HEADER);
    let route = match rest::route(&method, &path, &query) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    let body = match body_bytes(req).await {
        Ok(b) => b,
        Err(e) => return error(e),
    };
    let path_and_query = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    if is_write(&route) {
        if let Some(leader) = server.herder.leader_url() {
            if forwarded {
                return error(ErrorMessage::conflicting_operation());
            }
            return forward(server, &leader, &method, &path_and_query, &body).await;
        }
    }
    let task_owner = match &route {
        Route::RestartTask { id } if !forwarded => server
            .herder
            .task_status(id)
            .await
            .ok()
            .map(|t| t.worker_id),
        _ => None,
    };
    match run(server, route, &body).await {
        Ok(a) => a,
        // A task another worker runs is restarted there.
        Err(e) if e.error_code == 409 && task_owner.as_deref().is_some_and(|w| !w.is_empty()) => {
            let owner = format!("{}://{}", server.scheme, task_owner.unwrap_or_default());
            forward(server, &owner, &method, &path_and_query, &body).await
        }
        Err(e) => error(e),
    }
}

/// Sends a request on to another worker and relays its answer.
async fn forward(
    server: &RestServer,
    base_url: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> Answer {
    let url = format!("{}{}", base_url.trim_end_matches('/'), path_and_query);
    let method = method.to_string();
    let body = body.to_vec();
    let agent = server.forward_agent.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<(u16, Vec<u8>), String> {
        let request = hyper::http::Request::builder()
            .method(method.as_str())
            .uri(&url)
            .header("Content-Type", "application/json")
            .header(FORWARDED_HEADER, "1")
            .body(body)
            .map_err(|e| e.to_string())?;
        let response = agent.run(request).map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok((status, bytes))
    })
    .await;
    match result {
        Ok(Ok((status, bytes))) => {
            let mut r = Response::new(Full::new(Bytes::from(bytes)));
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Ok(Err(e)) => error(ErrorMessage::new(
            500,
            format!("Error trying to forward REST request: {e}"),
        )),
        Err(e) => error(ErrorMessage::new(500, e.to_string())),
    }
}

async fn run(server: &RestServer, route: Route, body: &[u8]) -> Result<Answer, ErrorMessage> {
    let h = &server.herder;
    Ok(match route {
        Route::ServerInfo => json_answer(
            200,
            &ServerInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                commit: "moldau".into(),
                kafka_cluster_id: server
                    .kafka_cluster_id
                    .clone()
                    .or_else(|| h.kafka_cluster_id()),
            },
        ),
        Route::Health => json_answer(200, &WorkerStatus::healthy()),
        Route::ListConnectors { expand: None } => json_answer(200, &h.connector_names().await?),
        Route::ListConnectors {
            expand: Some(order),
        } => {
            let mut out = Vec::new();
            for name in h.connector_names().await? {
                let status = if order.contains(&Expansion::Status) {
                    h.status(&name).await.ok()
                } else {
                    None
                };
                let info = if order.contains(&Expansion::Info) {
                    h.connector_info(&name).await.ok()
                } else {
                    None
                };
                out.push((
                    name,
                    ConnectorExpansions {
                        status,
                        info,
                        order: order.clone(),
                    },
                ));
            }
            json_answer(200, &ExpandedConnectors(out))
        }
        Route::CreateConnector => {
            let request: CreateConnectorRequest = parse_json(body)?;
            let known = h.context().plugins.classes();
            let exists: std::collections::BTreeSet<String> =
                h.connector_names().await?.into_iter().collect();
            let new = rest::validate_create(&request, &known, |n| exists.contains(n))?;
            let (_, info) = h
                .put_connector(&new.name, new.config, false, new.initial_state)
                .await?;
            json_answer(201, &info)
        }
        Route::GetConnector { name } => json_answer(200, &h.connector_info(&name).await?),
        Route::DeleteConnector { name } => {
            h.delete_connector(&name).await?;
            empty(204)
        }
        Route::GetConnectorConfig { name } => {
            json_answer(200, &rest::JavaOrder(&h.connector_config(&name).await?))
        }
        Route::PutConnectorConfig { name } => {
            let config: Props = parse_json(body)?;
            let config = rest::validate_put_config(&name, config, &h.context().plugins.classes())?;
            let (created, info) = h.put_connector(&name, config, true, None).await?;
            json_answer(rest::put_config_status(!created), &info)
        }
        Route::PatchConnectorConfig { name } => {
            let patch: ConfigPatch = parse_json(body)?;
            let current = h.connector_config(&name).await.ok();
            let config = apply_config_patch(
                &name,
                current.as_ref(),
                &patch,
                &h.context().plugins.classes(),
            )?;
            let (_, info) = h.put_connector(&name, config, true, None).await?;
            json_answer(200, &info)
        }
        Route::ConnectorStatus { name } => json_answer(200, &h.status(&name).await?),
        Route::ConnectorTopics { name } => {
            let topics = h.active_topics(&name).await?;
            let info = rest::ActiveTopicsInfo {
                connector: name,
                topics,
            };
            json_answer(200, &info.response())
        }
        Route::ResetConnectorTopics { name } => {
            h.reset_active_topics(&name).await?;
            empty(202)
        }
        Route::RestartConnector(req) => match h.restart(&req).await? {
            Some(status) => json_answer(req.success_status(), &status),
            None => empty(req.success_status()),
        },
        Route::StopConnector { name } => {
            h.set_target_state(&name, TargetState::Stopped).await?;
            empty(204)
        }
        Route::PauseConnector { name } => {
            h.set_target_state(&name, TargetState::Paused).await?;
            empty(202)
        }
        Route::ResumeConnector { name } => {
            h.set_target_state(&name, TargetState::Started).await?;
            empty(202)
        }
        Route::TaskConfigs { name } => json_answer(200, &h.task_configs(&name).await?),
        Route::TasksConfig { name } => {
            let tasks = h.task_configs(&name).await?;
            let map: BTreeMap<String, rest::JavaOrder<'_>> = tasks
                .iter()
                .map(|t| (t.id.to_string(), rest::JavaOrder(&t.config)))
                .collect();
            json_answer(200, &map)
        }
        Route::TaskStatus { id } => json_answer(200, &h.task_status(&id).await?),
        Route::RestartTask { id } => {
            h.restart_task(&id).await?;
            empty(204)
        }
        Route::GetOffsets { name } => json_answer(200, &h.offsets(&name).await?),
        Route::AlterOffsets { name } => {
            let offsets: ConnectorOffsets = parse_json(body)?;
            json_answer(200, &h.modify_offsets(&name, Some(offsets)).await?)
        }
        Route::ResetOffsets { name } => json_answer(200, &h.modify_offsets(&name, None).await?),
        Route::ListPlugins { connectors_only } => json_answer(
            200,
            &rest::list_plugins(&h.context().plugins.infos(), connectors_only),
        ),
        Route::PluginConfig { plugin } => {
            let keys = h.plugin_config(&plugin)?;
            let json: Vec<serde_json::Value> = keys
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "name": k.name,
                        "type": k.type_name,
                        "required": k.required,
                        "default_value": k.default_value,
                        "importance": k.importance,
                        "documentation": k.documentation,
                        "group": k.group,
                        "order": k.order,
                        "width": k.width,
                        "display_name": k.display_name,
                        "dependents": k.dependents,
                    })
                })
                .collect();
            json_answer(200, &json)
        }
        Route::ValidateConfig { plugin } => {
            let mut config: Props = parse_json(body)?;
            check_validate_plugin(&plugin, &config)?;
            // The URL names the plugin when the body does not.
            config
                .entry(rest::CONNECTOR_CLASS_CONFIG.to_string())
                .or_insert(plugin);
            if let Some(name) = config.get(rest::NAME_CONFIG).cloned() {
                let _ = check_and_put_connector_name(&name, &mut config);
            }
            json_answer(200, &h.validate(&config).await?.to_json())
        }
        Route::ListLoggers => {
            let levels = match &server.loggers {
                Some(l) => l.levels(),
                None => LoggerLevels::new(),
            };
            json_answer(200, &levels)
        }
        Route::GetLogger { logger } => {
            let levels = server
                .loggers
                .as_ref()
                .map(|l| l.levels())
                .unwrap_or_default();
            let level: &LoggerLevel = levels
                .get(&logger)
                .ok_or_else(|| rest::logger_not_found(&logger))?;
            json_answer(200, level)
        }
        Route::SetLogger { logger, scope } => {
            let request: BTreeMap<String, Option<String>> = parse_json(body)?;
            let level = rest::validate_logger_level(&request)?;
            let control = server.loggers.as_ref().ok_or_else(|| {
                ErrorMessage::new(500, "Log levels cannot be changed on this worker")
            })?;
            let changed = control
                .set_level(&logger, &level)
                .map_err(ErrorMessage::bad_request)?;
            match scope {
                LoggerScope::Worker => json_answer(200, &changed),
                LoggerScope::Cluster => empty(204),
            }
        }
    })
}
