//! A worker's membership of its Connect group: Kafka's classic group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup with protocol type `connect`) spoken with
//! kafka-protocol's messages through Moldau's wire client (librdkafka only joins groups as a
//! consumer).

use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use moldau_wire::{
    check, find_coordinator_once, ClientSettings, Cluster, CoordinatorType, WireError,
};

use super::protocol::{decode_metadata, Compatibility, WorkerState};

pub const PROTOCOL_TYPE: &str = "connect";

/// Why a group request did not complete.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// The group is rebalancing, or this member's generation or id is stale: join again.
    #[error("rejoin needed: {0}")]
    Rejoin(String),
    #[error("{0}")]
    Wire(#[from] WireError),
}

/// A completed join.
#[derive(Clone, Debug)]
pub struct Joined {
    pub generation: i32,
    pub member_id: String,
    pub leader_id: String,
    pub protocol: Compatibility,
    /// Every member's metadata (only the leader gets these).
    pub members: Vec<(String, WorkerState)>,
}

impl Joined {
    pub fn is_leader(&self) -> bool {
        self.member_id == self.leader_id
    }
}

pub struct GroupMember {
    cluster: Cluster,
    coordinator: Option<i32>,
    group_id: String,
    pub member_id: String,
    pub generation: i32,
    protocol: Option<Compatibility>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
}

fn rejoin_error(e: &WireError) -> bool {
    matches!(
        e.kafka(),
        Some(
            ResponseError::RebalanceInProgress
                | ResponseError::IllegalGeneration
                | ResponseError::UnknownMemberId
                | ResponseError::FencedInstanceId
        )
    )
}

fn coordinator_error(e: &WireError) -> bool {
    e.is_unreachable()
        || matches!(
            e.kafka(),
            Some(
                ResponseError::NotCoordinator
                    | ResponseError::CoordinatorNotAvailable
                    | ResponseError::CoordinatorLoadInProgress
            )
        )
}

impl GroupMember {
    /// Connects to the cluster. The request timeout covers a whole rebalance (JoinGroup
    /// waits at the coordinator until every member joined).
    pub async fn connect(
        bootstrap: &str,
        mut settings: ClientSettings,
        group_id: &str,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
    ) -> Result<GroupMember, MemberError> {
        settings.timeout =
            Duration::from_millis(rebalance_timeout_ms.max(session_timeout_ms) as u64 + 5_000);
        let cluster = Cluster::connect(bootstrap, settings).await?;
        Ok(GroupMember {
            cluster,
            coordinator: None,
            group_id: group_id.to_string(),
            member_id: String::new(),
            generation: -1,
            protocol: None,
            session_timeout_ms,
            rebalance_timeout_ms,
        })
    }

    async fn send<R: kafka_protocol::protocol::Request>(
        &mut self,
        request: &R,
    ) -> Result<R::Response, MemberError> {
        let node = match self.coordinator {
            Some(n) => n,
            None => {
                let n = self.find_coordinator().await?;
                self.coordinator = Some(n);
                n
            }
        };
        let result = match self.cluster.broker(node).await {
            Ok(c) => c.send(request).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                if coordinator_error(&e) {
                    self.coordinator = None;
                }
                Err(e.into())
            }
        }
    }

    /// The group's coordinator (FindCoordinator on the bootstrap connection; the joining
    /// loop retries).
    async fn find_coordinator(&mut self) -> Result<i32, WireError> {
        let group_id = self.group_id.clone();
        find_coordinator_once(self.cluster.bootstrap(), CoordinatorType::Group, &group_id).await
    }

    /// Joins (or rejoins) the group with the worker's metadata for each protocol it offers.
    pub async fn join(
        &mut self,
        protocols: &[(Compatibility, Vec<u8>)],
    ) -> Result<Joined, MemberError> {
        loop {
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(self.group_id.clone())))
                .with_session_timeout_ms(self.session_timeout_ms)
                .with_rebalance_timeout_ms(self.rebalance_timeout_ms)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
                .with_protocols(
                    protocols
                        .iter()
                        .map(|(p, m)| {
                            JoinGroupRequestProtocol::default()
                                .with_name(StrBytes::from_static_str(p.protocol()))
                                .with_metadata(m.clone().into())
                        })
                        .collect(),
                );
            let response = match self.send(&request).await {
                Ok(r) => r,
                Err(MemberError::Wire(e)) if coordinator_error(&e) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match ResponseError::try_from_code(response.error_code) {
                None => {}
                // KIP-394: the first join learns its member id, then joins with it.
                Some(ResponseError::MemberIdRequired) => {
                    self.member_id = response.member_id.to_string();
                    continue;
                }
                Some(ResponseError::UnknownMemberId) => {
                    self.member_id.clear();
                    continue;
                }
                Some(
                    ResponseError::NotCoordinator
                    | ResponseError::CoordinatorNotAvailable
                    | ResponseError::CoordinatorLoadInProgress
                    | ResponseError::RebalanceInProgress,
                ) => {
                    self.coordinator = None;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Some(_) => {
                    check(response.error_code, None)?;
                }
            }
            self.member_id = response.member_id.to_string();
            self.generation = response.generation_id;
            let protocol_name = response
                .protocol_name
                .map(|p| p.to_string())
                .unwrap_or_default();
            let protocol = Compatibility::from_protocol(&protocol_name).ok_or_else(|| {
                MemberError::Rejoin(format!(
                    "the group chose an unknown protocol '{protocol_name}'"
                ))
            })?;
            self.protocol = Some(protocol);
            let mut members = Vec::new();
            for m in &response.members {
                match decode_metadata(&m.metadata) {
                    Ok(state) => members.push((m.member_id.to_string(), state)),
                    Err(e) => {
                        tracing::warn!("member {} sent unreadable metadata: {e}", m.member_id)
                    }
                }
            }
            return Ok(Joined {
                generation: response.generation_id,
                member_id: self.member_id.clone(),
                leader_id: response.leader.to_string(),
                protocol,
                members,
            });
        }
    }

    /// Sends the leader's assignments (followers send none) and returns this member's.
    pub async fn sync(
        &mut self,
        assignments: Vec<(String, Vec<u8>)>,
    ) -> Result<Vec<u8>, MemberError> {
        let protocol = self.protocol.unwrap_or(Compatibility::Eager);
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group_id.clone())))
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_protocol_type(Some(StrBytes::from_static_str(PROTOCOL_TYPE)))
            .with_protocol_name(Some(StrBytes::from_static_str(protocol.protocol())))
            .with_assignments(
                assignments
                    .into_iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(m))
                            .with_assignment(a.into())
                    })
                    .collect(),
            );
        let response = self.send(&request).await?;
        if let Err(e) = check(response.error_code, None) {
            if rejoin_error(&e) || coordinator_error(&e) {
                if coordinator_error(&e) {
                    self.coordinator = None;
                }
                return Err(MemberError::Rejoin(e.to_string()));
            }
            return Err(e.into());
        }
        Ok(response.assignment.to_vec())
    }

    /// One heartbeat; `Rejoin` when the group rebalances or forgot this member.
    pub async fn heartbeat(&mut self) -> Result<(), MemberError> {
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group_id.clone())))
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let response = self.send(&request).await?;
        match check(response.error_code, None) {
            Ok(()) => Ok(()),
            Err(e) if rejoin_error(&e) => {
                if matches!(e.kafka(), Some(ResponseError::UnknownMemberId)) {
                    self.member_id.clear();
                }
                Err(MemberError::Rejoin(e.to_string()))
            }
            Err(e) if coordinator_error(&e) => {
                self.coordinator = None;
                Err(MemberError::Rejoin(e.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Leaves the group (a clean shutdown lets the others take over at once).
    pub async fn leave(&mut self) {
        if self.member_id.is_empty() {
            return;
        }
        // v3+ names the leaving members in `members` (the top-level member id is v0-2 only).
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group_id.clone())))
            .with_members(vec![
                kafka_protocol::messages::leave_group_request::MemberIdentity::default()
                    .with_member_id(StrBytes::from_string(self.member_id.clone())),
            ]);
        if let Err(e) = self.send(&request).await {
            tracing::warn!("leaving group {}: {e}", self.group_id);
        }
    }
}
