//! BrokerRegistration: a broker announces itself to the active controller, which commits
//! its registration (endpoint, rack) and answers with its broker epoch (the offset of the
//! registration record). Sent by Moldau nodes to the active controller's controller
//! listener at start. NOT_CONTROLLER from any other node; INCONSISTENT_CLUSTER_ID when the
//! broker's meta.properties names another cluster. A broker that is not a voter
//! (broker-only) is made an observer of the metadata quorum, so the committed log is
//! replicated to it from then on.

use kafka_protocol::messages::{BrokerRegistrationRequest, BrokerRegistrationResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use std::time::Duration;

use moldau_metadata::{BrokerEndpoint, MetadataRecord, Uuid};
use moldau_security::acl::AclOperation;

use crate::api::RequestContext;
use crate::authorizer;
use crate::broker_lifecycle::{move_leadership, partition_changes, Departure, ElectionConfig};
use crate::controller::MAX_RECORDS_PER_USER_OP;
use crate::error::BrokerError;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = BrokerRegistrationRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: BrokerRegistrationRequest,
) -> BrokerRegistrationResponse {
    let refuse = |error: ResponseError| {
        BrokerRegistrationResponse::default()
            .with_error_code(error.code())
            .with_broker_epoch(-1)
    };
    // Kafka's controller asks CLUSTER_ACTION on the cluster first.
    if !authorizer::allowed_cluster(state, ctx, AclOperation::ClusterAction) {
        return refuse(ResponseError::ClusterAuthorizationFailed);
    }
    if request.cluster_id.as_str() != state.cluster_id {
        tracing::warn!(
            broker_id = request.broker_id.0,
            theirs = request.cluster_id.as_str(),
            ours = %state.cluster_id,
            "refusing a broker registration from another cluster"
        );
        return refuse(ResponseError::InconsistentClusterId);
    }
    // Every advertised listener (clients are answered with the one they came in on, peers
    // use inter.broker.listener.name); a broker without one cannot be reached.
    if request.listeners.is_empty() {
        return refuse(ResponseError::InvalidRequest);
    }
    let registration = BrokerRegistration {
        broker_id: request.broker_id.0,
        incarnation_id: request.incarnation_id,
        listeners: request
            .listeners
            .iter()
            .map(|l| BrokerEndpoint {
                name: l.name.to_ascii_uppercase(),
                host: l.host.to_string(),
                port: l.port,
            })
            .collect(),
        rack: request.rack.as_ref().map(|r| r.to_string()),
    };
    match register(state, &registration).await {
        Ok(broker_epoch) => BrokerRegistrationResponse::default().with_broker_epoch(broker_epoch),
        Err(e) => {
            if !e.is_client_refusal() {
                tracing::error!(%e, "broker registration failed");
            }
            refuse(e.response_error())
        }
    }
}

/// What a broker registers: where clients and peers reach it, and its rack.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerRegistration {
    pub broker_id: i32,
    /// The registering process (a new one on every start).
    pub incarnation_id: Uuid,
    /// Its advertised listeners, at least one.
    pub listeners: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
}

/// Commits a registration on the active controller (nothing when it is unchanged) and
/// returns the broker's epoch. DUPLICATE_BROKER_REGISTRATION while another live process
/// holds the broker id.
pub async fn register(
    state: &BrokerState,
    registration: &BrokerRegistration,
) -> Result<i64, BrokerError> {
    if !state.controller.quorum().is_leader() {
        return Err(BrokerError::NotController {
            leader_id: state.controller.leader_id(),
        });
    }
    let term = state.controller.quorum().metrics().borrow().current_term;
    let session = Duration::from_millis(state.config.broker_session_timeout_ms);
    state
        .broker_heartbeats
        .register(
            registration.broker_id,
            registration.incarnation_id,
            term,
            session,
        )
        .map_err(BrokerError::Refused)?;
    let unclean = ElectionConfig::of(state);
    let (broker_epoch, more_changes) = state
        .controller
        .write(|image| {
            let current = image.brokers.get(&registration.broker_id);
            // The same process registering again (a retry, a new controller) keeps its
            // epoch; a restarted one is a new incarnation and must catch up afresh, so
            // it gets a new, fenced registration even with the same endpoint.
            if let Some(b) = current.filter(|b| {
                b.incarnation_id == Some(registration.incarnation_id)
                    && b.listeners == registration.listeners
                    && b.rack == registration.rack
            }) {
                return Ok::<_, BrokerError>((vec![], (b.broker_epoch, false)));
            }
            let broker_epoch = image.offset + 1;
            // Not empty: checked when the registration arrived.
            let first = &registration.listeners[0];
            let record = MetadataRecord::RegisterBroker {
                broker_id: registration.broker_id,
                broker_epoch,
                host: first.host.clone(),
                port: first.port,
                listeners: registration.listeners.clone(),
                rack: registration.rack.clone(),
                // Unfenced by its first heartbeat once its metadata has caught up.
                fenced: true,
                incarnation_id: Some(registration.incarnation_id),
            };
            // A new incarnation may lack what its predecessor had (an unclean shutdown
            // loses what was not flushed), and the predecessor may still be in ISRs (its
            // session not expired yet, or a controller failover in between): it leaves
            // every ISR and leadership in the same commit, and rejoins once caught up
            // (Kafka's controller: handleBrokerUncleanShutdown on a new incarnation).
            let mut records = vec![record];
            records.extend(partition_changes(
                image,
                registration.broker_id,
                Some(Departure::UncleanShutdown),
                MAX_RECORDS_PER_USER_OP - 1,
                unclean,
            ));
            let more = records.len() == MAX_RECORDS_PER_USER_OP;
            Ok((records, (broker_epoch, more)))
        })
        .await?;
    if more_changes {
        // The rest, against the image where this broker is now fenced.
        move_leadership(state, registration.broker_id).await?;
    }
    // Every time, not only for a new registration: a retry after a lost answer, or a new
    // active controller, makes sure the broker is replicated to (nothing when it is).
    if !state.raft_transport.is_voter(registration.broker_id as u64) {
        // Recorded in the membership for information only: the transport looks the
        // observer up in the image on every call (`raft_transport::broker_addr`).
        let inter_broker = registration
            .listeners
            .iter()
            .find(|l| l.name == state.config.inter_broker_listener_name)
            .unwrap_or(&registration.listeners[0]);
        state
            .controller
            .add_observer(
                registration.broker_id,
                &inter_broker.host,
                inter_broker.port,
            )
            .await?;
    }
    Ok(broker_epoch)
}
