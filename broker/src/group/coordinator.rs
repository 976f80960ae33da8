//! The group state machine, as Kafka's classic group coordinator runs it:
//!
//! ```text
//! Empty ──join──▶ PreparingRebalance ──all joined / rebalance timeout──▶ CompletingRebalance
//!   ▲                   ▲    ▲                                               │ leader's SyncGroup
//!   └── last member ────┘    └──── join, leave, session expiry ◀── Stable ◀──┘
//! ```
//!
//! A JoinGroup is answered when every known member has (re)joined or the rebalance timeout
//! passes (members that did not rejoin are removed); followers' SyncGroups are answered the moment
//! the leader's assignment arrives. Waiting requests hold a oneshot receiver, never a sleep.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::consumer_protocol;
use super::metadata_record::{self, GroupRecord, MemberRecord};

/// Group coordination settings (Kafka's `group.*` broker configs).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    /// Delay before the first rebalance of an empty group completes, so that members starting
    /// together land in one generation (`group.initial.rebalance.delay.ms`).
    pub initial_rebalance_delay: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// What a JoinGroup gets back.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, group instance id, metadata): only for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// What a SyncGroup gets back.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

/// A JoinGroup answered now, or later.
pub enum JoinOutcome {
    Now(JoinResult),
    Later(oneshot::Receiver<JoinResult>),
}

/// A JoinGroup's arguments.
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: unknown members first get an id and MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_heartbeat: Instant,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

struct Group {
    id: String,
    state: State,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: IndexMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, expected back before this instant.
    pending: HashMap<String, Instant>,
    /// When the join phase ends even if not every member has rejoined (the rebalance timeout).
    rebalance_deadline: Instant,
    /// The first rebalance of an empty group does not end before this instant even when every
    /// member has joined (`group.initial.rebalance.delay.ms`), so that members starting together
    /// land in one generation.
    initial_delay_until: Instant,
    /// A new member joined while the group was completing a rebalance: the next rebalance starts
    /// as soon as the leader's assignment is delivered (see [`GroupCoordinator::join`]).
    rebalance_after_sync: bool,
    /// (generation, stable) of the last group-metadata record written for this group.
    stored: (i32, bool),
}

impl Group {
    fn new(id: String) -> Self {
        Group {
            id,
            state: State::Empty,
            generation: 0,
            stored: (0, false),
            protocol_type: None,
            protocol: None,
            leader: None,
            members: IndexMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: Instant::now(),
            initial_delay_until: Instant::now(),
            rebalance_after_sync: false,
        }
    }

    /// Whether every current member supports `protocol`.
    fn all_support(&self, protocol: &str) -> bool {
        self.members
            .values()
            .all(|m| m.protocols.iter().any(|(n, _)| n == protocol))
    }

    fn member_by_instance(&self, instance: &str) -> Option<String> {
        self.members
            .iter()
            .find(|(_, m)| m.instance_id.as_deref() == Some(instance))
            .map(|(id, _)| id.clone())
    }

    fn prepare_rebalance(&mut self, config: &GroupConfig) {
        self.rebalance_after_sync = false;
        if self.state == State::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult {
                        error: ResponseError::RebalanceInProgress.code(),
                        ..Default::default()
                    });
                }
            }
        }
        let was_empty = self.state == State::Empty;
        self.state = State::PreparingRebalance;
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        let now = Instant::now();
        self.rebalance_deadline = now + timeout;
        self.initial_delay_until = if was_empty {
            now + config.initial_rebalance_delay.min(timeout)
        } else {
            now
        };
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    /// Whether the join phase can end now: every member (including those just handed an id
    /// with MEMBER_ID_REQUIRED) has joined and any initial delay is over, or time is up.
    fn join_complete_due(&self, now: Instant) -> bool {
        now >= self.rebalance_deadline || (self.all_joined() && now >= self.initial_delay_until)
    }

    /// Ends the join phase: members that did not rejoin are dropped, a new generation starts,
    /// and every waiting JoinGroup is answered.
    fn complete_join(&mut self) {
        self.members.retain(|id, m| {
            let keep = m.join_waiter.is_some();
            if !keep {
                tracing::info!(group = %self.id, member = %id, "member did not rejoin in time; removed");
            }
            keep
        });
        // Members handed an id but not back yet stay pending: they join the next generation
        // (or expire after their session timeout).
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            return;
        }
        self.protocol = self.choose_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = State::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        let members: Vec<(String, Option<String>, Bytes)> = self
            .members
            .iter()
            .map(|(id, m)| {
                let metadata = m
                    .protocols
                    .iter()
                    .find(|(n, _)| *n == protocol)
                    .map(|(_, md)| md.clone())
                    .unwrap_or_default();
                (id.clone(), m.instance_id.clone(), metadata)
            })
            .collect();
        for (id, m) in self.members.iter_mut() {
            m.assignment = Bytes::new();
            m.last_heartbeat = Instant::now();
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult {
                    error: 0,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader {
                        members.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(), protocol = %protocol, "rebalance: join phase complete");
    }

    /// Every member votes for its most preferred protocol that all members support.
    fn choose_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| self.all_support(n))
            .collect();
        let mut votes: IndexMap<&String, usize> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                if let Some(v) = votes.get_mut(name) {
                    *v += 1;
                }
            }
        }
        votes
            .into_iter()
            .max_by_key(|(_, v)| *v)
            .map(|(n, _)| n.clone())
    }

    /// The group as its metadata record in `__consumer_offsets` holds it.
    fn record(&self) -> GroupRecord {
        let ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        let protocol = self.protocol.as_deref().unwrap_or_default();
        GroupRecord {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp_ms: crate::now_ms(),
            members: self
                .members
                .iter()
                .map(|(id, m)| MemberRecord {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: ms(m.rebalance_timeout),
                    session_timeout_ms: ms(m.session_timeout),
                    subscription: m
                        .protocols
                        .iter()
                        .find(|(n, _)| n == protocol)
                        .map(|(_, md)| md.clone())
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    fn remove_member(&mut self, id: &str, config: &GroupConfig) {
        if let Some(m) = self.members.shift_remove(id) {
            if let Some(w) = m.join_waiter {
                let _ = w.send(JoinResult {
                    error: ResponseError::UnknownMemberId.code(),
                    member_id: id.to_string(),
                    ..Default::default()
                });
            }
            if let Some(w) = m.sync_waiter {
                let _ = w.send(SyncResult {
                    error: ResponseError::UnknownMemberId.code(),
                    ..Default::default()
                });
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        match self.state {
            State::Empty => {}
            _ if self.members.is_empty() && self.pending.is_empty() => {
                self.state = State::Empty;
                self.generation += 1;
                self.protocol = None;
                self.protocol_type = None;
                self.leader = None;
            }
            State::PreparingRebalance => {
                if self.join_complete_due(Instant::now()) {
                    self.complete_join();
                }
            }
            State::Stable | State::CompletingRebalance => {
                self.prepare_rebalance(config);
                if self.join_complete_due(Instant::now()) {
                    self.complete_join();
                }
            }
        }
    }
}

/// A member as DescribeGroups shows it.
pub struct MemberSummary {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group as DescribeGroups and ListGroups show it.
pub struct GroupSummary {
    pub group_id: String,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberSummary>,
}

/// Where the coordinator writes group-metadata records: `(key, value)`, a `None` value deleting
/// the group's (see [`metadata_record`](super::metadata_record)).
pub type MetadataSink = Box<dyn Fn(Bytes, Option<Bytes>) + Send + Sync>;

/// All groups of this broker.
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: Mutex<HashMap<String, Group>>,
    sink: Option<MetadataSink>,
}

fn err<T: Default>(e: ResponseError, f: impl FnOnce(&mut T, i16)) -> T {
    let mut out = T::default();
    f(&mut out, e.code());
    out
}

fn join_error(e: ResponseError, member_id: &str) -> JoinOutcome {
    JoinOutcome::Now(JoinResult {
        error: e.code(),
        member_id: member_id.to_string(),
        generation: -1,
        ..Default::default()
    })
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        GroupCoordinator {
            config,
            groups: Mutex::new(HashMap::new()),
            sink: None,
        }
    }

    /// Writes a group-metadata record through `sink` whenever a group completes a rebalance or
    /// becomes empty, as Kafka's coordinator does, and a tombstone when a group is deleted.
    pub fn with_metadata_sink(mut self, sink: MetadataSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Writes `group`'s record if it reached a state not written yet (called with the groups
    /// locked, so a group's records are written in the order of its states).
    fn store(&self, group: &mut Group) {
        let Some(sink) = &self.sink else { return };
        let stable = match group.state {
            State::Stable => true,
            State::Empty => false,
            State::PreparingRebalance | State::CompletingRebalance => return,
        };
        if group.stored == (group.generation, stable) {
            return;
        }
        group.stored = (group.generation, stable);
        sink(
            metadata_record::key(&group.id),
            Some(metadata_record::value(&group.record())),
        );
    }

    pub fn join(&self, req: JoinRequest) -> JoinOutcome {
        if req.group_id.is_empty() {
            return join_error(ResponseError::InvalidGroupId, &req.member_id);
        }
        if req.session_timeout < self.config.min_session_timeout
            || req.session_timeout > self.config.max_session_timeout
        {
            return join_error(ResponseError::InvalidSessionTimeout, &req.member_id);
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return join_error(ResponseError::InconsistentGroupProtocol, &req.member_id);
        }
        let mut groups = self.groups.lock();
        let group = groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(req.group_id.clone()));
        let compatible = group.members.is_empty()
            || (group.protocol_type.as_deref() == Some(req.protocol_type.as_str())
                && req.protocols.iter().any(|(n, _)| group.all_support(n)));
        // A member replacing itself may change protocols; others must fit the group.
        let replacing = group.members.contains_key(&req.member_id) && group.members.len() == 1;
        if !compatible && !replacing {
            return join_error(ResponseError::InconsistentGroupProtocol, &req.member_id);
        }

        let member_id = if req.member_id.is_empty() {
            let new_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
            match &req.group_instance_id {
                Some(instance) => {
                    // A static member coming back: it takes over its old slot (the old member
                    // id is fenced) and keeps its assignment.
                    if let Some(old) = group.member_by_instance(instance) {
                        if let Some(mut m) = group.members.shift_remove(&old) {
                            if let Some(w) = m.join_waiter.take() {
                                let _ = w.send(JoinResult {
                                    error: ResponseError::FencedInstanceId.code(),
                                    ..Default::default()
                                });
                            }
                            group.members.insert(new_id.clone(), m);
                            if group.leader.as_deref() == Some(old.as_str()) {
                                group.leader = Some(new_id.clone());
                            }
                            let same_protocols = group
                                .members
                                .get(&new_id)
                                .is_some_and(|m| m.protocols == req.protocols);
                            if group.state == State::Stable
                                && same_protocols
                                && group.leader.as_deref() != Some(new_id.as_str())
                            {
                                if let Some(m) = group.members.get_mut(&new_id) {
                                    m.last_heartbeat = Instant::now();
                                }
                                return JoinOutcome::Now(JoinResult {
                                    error: 0,
                                    generation: group.generation,
                                    protocol_type: group.protocol_type.clone(),
                                    protocol_name: group.protocol.clone(),
                                    leader: group.leader.clone().unwrap_or_default(),
                                    member_id: new_id,
                                    members: Vec::new(),
                                });
                            }
                        }
                    }
                    new_id
                }
                None if req.require_known_member_id => {
                    group
                        .pending
                        .insert(new_id.clone(), Instant::now() + req.session_timeout);
                    return JoinOutcome::Now(JoinResult {
                        error: ResponseError::MemberIdRequired.code(),
                        member_id: new_id,
                        generation: -1,
                        ..Default::default()
                    });
                }
                None => new_id,
            }
        } else {
            let known = group.members.contains_key(&req.member_id);
            let pending = group.pending.remove(&req.member_id).is_some();
            if !known && !pending {
                return join_error(ResponseError::UnknownMemberId, &req.member_id);
            }
            if let Some(instance) = &req.group_instance_id {
                if let Some(owner) = group.member_by_instance(instance) {
                    if owner != req.member_id {
                        return join_error(ResponseError::FencedInstanceId, &req.member_id);
                    }
                }
            }
            req.member_id.clone()
        };

        let (tx, rx) = oneshot::channel();
        let is_new = !group.members.contains_key(&member_id);
        let member = group
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member {
                instance_id: req.group_instance_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                session_timeout: req.session_timeout,
                rebalance_timeout: req.rebalance_timeout,
                protocols: Vec::new(),
                assignment: Bytes::new(),
                last_heartbeat: Instant::now(),
                join_waiter: None,
                sync_waiter: None,
            });
        member.protocols = req.protocols;
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.last_heartbeat = Instant::now();
        if let Some(old) = member.join_waiter.replace(tx) {
            let _ = old.send(JoinResult {
                error: ResponseError::UnknownMemberId.code(),
                ..Default::default()
            });
        }
        group.protocol_type = Some(req.protocol_type);
        if group.state == State::CompletingRebalance && is_new {
            // Kafka would fail the pending SyncGroups with REBALANCE_IN_PROGRESS here. librdkafka
            // answers that by rejoining only after its one-second join backoff, so a member
            // arriving just after the others' JoinGroups cost a full second. Instead the current
            // generation completes (its SyncGroups are answered with the leader's assignment),
            // and the next rebalance starts right after: the members learn of it from their next
            // heartbeat and rejoin at once (a revoke-and-rejoin skips the backoff). The new
            // member's JoinGroup waits for that rebalance, as it would have anyway.
            group.rebalance_after_sync = true;
            return JoinOutcome::Later(rx);
        }
        if group.state != State::PreparingRebalance {
            group.prepare_rebalance(&self.config);
        }
        if group.join_complete_due(Instant::now()) {
            group.complete_join();
        }
        JoinOutcome::Later(rx)
    }

    pub fn sync(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<SyncResult, oneshot::Receiver<SyncResult>> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Ok(err(
                ResponseError::UnknownMemberId,
                |r: &mut SyncResult, c| r.error = c,
            ));
        };
        if let Err(e) = check_member(group, member_id, instance_id, generation) {
            return Ok(err(e, |r: &mut SyncResult, c| r.error = c));
        }
        let protocol_type = group.protocol_type.clone();
        let protocol_name = group.protocol.clone();
        match group.state {
            State::Empty => Ok(err(
                ResponseError::UnknownMemberId,
                |r: &mut SyncResult, c| r.error = c,
            )),
            State::PreparingRebalance => Ok(err(
                ResponseError::RebalanceInProgress,
                |r: &mut SyncResult, c| r.error = c,
            )),
            State::Stable => Ok(SyncResult {
                error: 0,
                protocol_type,
                protocol_name,
                assignment: group
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default(),
            }),
            State::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = group.members.get_mut(member_id) {
                    m.sync_waiter = Some(tx);
                    m.last_heartbeat = Instant::now();
                }
                if group.leader.as_deref() == Some(member_id) {
                    let mut assignments: HashMap<String, Bytes> = assignments.into_iter().collect();
                    group.state = State::Stable;
                    let ids: Vec<String> = group.members.keys().cloned().collect();
                    for id in ids {
                        if let Some(m) = group.members.get_mut(&id) {
                            m.assignment = assignments.remove(&id).unwrap_or_default();
                            if let Some(w) = m.sync_waiter.take() {
                                let _ = w.send(SyncResult {
                                    error: 0,
                                    protocol_type: protocol_type.clone(),
                                    protocol_name: protocol_name.clone(),
                                    assignment: m.assignment.clone(),
                                });
                            }
                        }
                    }
                    tracing::info!(
                        group = group_id,
                        generation = group.generation,
                        "rebalance complete"
                    );
                    self.store(group);
                    if group.rebalance_after_sync {
                        tracing::info!(
                            group = group_id,
                            "a member joined meanwhile: rebalancing again"
                        );
                        group.prepare_rebalance(&self.config);
                        if group.join_complete_due(Instant::now()) {
                            group.complete_join();
                        }
                    }
                }
                Err(rx)
            }
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> i16 {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return ResponseError::UnknownMemberId.code();
        };
        if let Err(e) = check_member(group, member_id, instance_id, generation) {
            return e.code();
        }
        if let Some(m) = group.members.get_mut(member_id) {
            m.last_heartbeat = Instant::now();
        }
        match group.state {
            State::Empty => ResponseError::UnknownMemberId.code(),
            State::PreparingRebalance => ResponseError::RebalanceInProgress.code(),
            State::CompletingRebalance | State::Stable => 0,
        }
    }

    /// Removes members (by member id, or by group instance id when the member id is empty).
    /// Returns one error code per member.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, i16> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(ResponseError::UnknownMemberId.code());
        };
        let mut codes = Vec::with_capacity(members.len());
        for (member_id, instance) in members {
            let id = if member_id.is_empty() {
                instance
                    .as_deref()
                    .and_then(|i| group.member_by_instance(i))
            } else {
                Some(member_id.clone())
            };
            match id {
                Some(id) if group.members.contains_key(&id) => {
                    if let (Some(i), Some(m)) = (instance, group.members.get(&id)) {
                        if m.instance_id.as_deref() != Some(i.as_str()) {
                            codes.push(ResponseError::FencedInstanceId.code());
                            continue;
                        }
                    }
                    tracing::info!(group = group_id, member = %id, "member left");
                    group.remove_member(&id, &self.config);
                    self.store(group);
                    codes.push(0);
                }
                _ => {
                    if group.pending.remove(member_id).is_some() {
                        codes.push(0);
                    } else {
                        codes.push(ResponseError::UnknownMemberId.code());
                    }
                }
            }
        }
        Ok(codes)
    }

    /// Expires members whose session ran out and completes rebalances whose time is up. Called
    /// periodically.
    pub fn tick(&self) {
        let now = Instant::now();
        let mut groups = self.groups.lock();
        for (id, group) in groups.iter_mut() {
            group.pending.retain(|_, expiry| *expiry > now);
            let expired: Vec<String> = group
                .members
                .iter()
                .filter(|(_, m)| {
                    m.join_waiter.is_none()
                        && now.duration_since(m.last_heartbeat) > m.session_timeout
                })
                .map(|(id, _)| id.clone())
                .collect();
            for member in expired {
                tracing::info!(group = %id, member = %member, "session timed out; member removed");
                group.remove_member(&member, &self.config);
            }
            if group.state == State::PreparingRebalance && group.join_complete_due(now) {
                group.complete_join();
            }
            self.store(group);
        }
    }

    /// Checks that a member may commit offsets for `generation`: a member of the current
    /// generation, or a standalone consumer (no member id, generation -1) of a group with no
    /// live members.
    pub fn validate_commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        let groups = self.groups.lock();
        let Some(group) = groups.get(group_id) else {
            return if generation < 0 {
                Ok(())
            } else {
                Err(ResponseError::IllegalGeneration)
            };
        };
        if generation < 0 && member_id.is_empty() {
            return if group.members.is_empty() {
                Ok(())
            } else {
                Err(ResponseError::UnknownMemberId)
            };
        }
        check_member(group, member_id, instance_id, generation)?;
        match group.state {
            State::CompletingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Whether any live member of the group is assigned a partition of `topic`.
    pub fn is_subscribed(&self, group_id: &str, topic: &str) -> bool {
        let groups = self.groups.lock();
        groups.get(group_id).is_some_and(|g| {
            g.members.values().any(|m| {
                consumer_protocol::assigned_partitions(&m.assignment)
                    .is_some_and(|a| a.iter().any(|(t, _)| t == topic))
            })
        })
    }

    /// Whether the group has live members.
    pub fn has_members(&self, group_id: &str) -> bool {
        self.groups
            .lock()
            .get(group_id)
            .is_some_and(|g| !g.members.is_empty())
    }

    /// Forgets an empty group.
    pub fn remove_if_empty(&self, group_id: &str) -> bool {
        let mut groups = self.groups.lock();
        match groups.get(group_id) {
            Some(g) if !g.members.is_empty() => false,
            _ => {
                if groups.remove(group_id).is_some() {
                    if let Some(sink) = &self.sink {
                        sink(metadata_record::key(group_id), None);
                    }
                }
                true
            }
        }
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupSummary> {
        let groups = self.groups.lock();
        let g = groups.get(group_id)?;
        let protocol = g.protocol.clone().unwrap_or_default();
        Some(GroupSummary {
            group_id: group_id.to_string(),
            state: g.state.name(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: g
                .members
                .iter()
                .map(|(id, m)| MemberSummary {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m
                        .protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, md)| md.clone())
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        self.groups
            .lock()
            .iter()
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state.name(),
                )
            })
            .collect()
    }
}

fn check_member(
    group: &Group,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> Result<(), ResponseError> {
    let Some(member) = group.members.get(member_id) else {
        if let Some(i) = instance_id {
            if group.member_by_instance(i).is_some() {
                return Err(ResponseError::FencedInstanceId);
            }
        }
        return Err(ResponseError::UnknownMemberId);
    };
    if let (Some(i), Some(mine)) = (instance_id, member.instance_id.as_deref()) {
        if i != mine {
            return Err(ResponseError::FencedInstanceId);
        }
    }
    if generation != group.generation {
        return Err(ResponseError::IllegalGeneration);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator() -> GroupCoordinator {
        GroupCoordinator::new(GroupConfig {
            min_session_timeout: Duration::from_millis(10),
            max_session_timeout: Duration::from_secs(60),
            initial_rebalance_delay: Duration::ZERO,
        })
    }

    fn join(c: &GroupCoordinator, member_id: &str) -> JoinOutcome {
        c.join(JoinRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            require_known_member_id: true,
        })
    }

    fn member_id_required(outcome: JoinOutcome) -> String {
        match outcome {
            JoinOutcome::Now(r) => {
                assert_eq!(r.error, ResponseError::MemberIdRequired.code());
                r.member_id
            }
            JoinOutcome::Later(_) => panic!("expected MEMBER_ID_REQUIRED"),
        }
    }

    #[tokio::test]
    async fn members_starting_together_land_in_one_generation() {
        let c = coordinator();
        // Three members ask to join before any of them comes back with its id.
        let ids: Vec<String> = (0..3).map(|_| member_id_required(join(&c, ""))).collect();
        let mut waiting = Vec::new();
        for id in &ids {
            match join(&c, id) {
                JoinOutcome::Later(rx) => waiting.push(rx),
                JoinOutcome::Now(r) => panic!("answered early: {r:?}"),
            }
        }
        let mut leaders = 0;
        for rx in waiting {
            let r = rx.await.expect("answer");
            assert_eq!(
                (r.error, r.generation),
                (0, 1),
                "one generation for all three"
            );
            if r.leader == r.member_id {
                leaders += 1;
                assert_eq!(r.members.len(), 3);
            }
        }
        assert_eq!(leaders, 1);
    }

    #[tokio::test]
    async fn followers_get_the_leaders_assignment_and_a_leave_triggers_a_rebalance() {
        let c = coordinator();
        let a = member_id_required(join(&c, ""));
        let b = member_id_required(join(&c, ""));
        let (ra, rb) = match (join(&c, &a), join(&c, &b)) {
            (JoinOutcome::Later(ra), JoinOutcome::Later(rb)) => (ra, rb),
            _ => panic!("joins answered early"),
        };
        let (ja, jb) = (ra.await.expect("a"), rb.await.expect("b"));
        let (leader, follower) = if ja.leader == a { (ja, jb) } else { (jb, ja) };
        // The follower syncs first and waits for the leader.
        let pending = c
            .sync("g", follower.generation, &follower.member_id, None, vec![])
            .expect_err("follower waits");
        let assignments = vec![
            (leader.member_id.clone(), Bytes::from_static(b"L")),
            (follower.member_id.clone(), Bytes::from_static(b"F")),
        ];
        let mine = c
            .sync("g", leader.generation, &leader.member_id, None, assignments)
            .map_err(|_| "leader must not wait")
            .ok();
        assert!(
            mine.is_none(),
            "the leader's own answer also comes through its waiter"
        );
        assert_eq!(
            pending.await.expect("follower").assignment,
            Bytes::from_static(b"F")
        );
        assert_eq!(c.heartbeat("g", 1, &follower.member_id, None), 0);
        assert_eq!(
            c.leave("g", &[(leader.member_id.clone(), None)]),
            Ok(vec![0])
        );
        assert_eq!(
            c.heartbeat("g", 1, &follower.member_id, None),
            ResponseError::RebalanceInProgress.code()
        );
        assert_eq!(
            c.heartbeat("g", 1, "nobody", None),
            ResponseError::UnknownMemberId.code()
        );
    }

    /// A member joining while the others wait for the leader's assignment does not fail their
    /// SyncGroups (librdkafka would then rejoin only after its 1 s backoff): that generation
    /// completes, then a rebalance starts at once, signalled through heartbeats, and the next
    /// generation holds all three.
    #[tokio::test]
    async fn a_member_joining_during_sync_rebalances_right_after_it() {
        let c = coordinator();
        let a = member_id_required(join(&c, ""));
        let b = member_id_required(join(&c, ""));
        let (ra, rb) = match (join(&c, &a), join(&c, &b)) {
            (JoinOutcome::Later(ra), JoinOutcome::Later(rb)) => (ra, rb),
            _ => panic!("joins answered early"),
        };
        let (ja, jb) = (ra.await.expect("a"), rb.await.expect("b"));
        let (leader, follower) = if ja.leader == a { (ja, jb) } else { (jb, ja) };
        let pending = c
            .sync("g", 1, &follower.member_id, None, vec![])
            .expect_err("follower waits");
        // The third member arrives now.
        let third = member_id_required(join(&c, ""));
        let mut third_joined = match join(&c, &third) {
            JoinOutcome::Later(rx) => rx,
            JoinOutcome::Now(r) => panic!("answered early: {r:?}"),
        };
        assert!(
            third_joined.try_recv().is_err(),
            "waits for the next rebalance"
        );
        let assignments = vec![
            (leader.member_id.clone(), Bytes::from_static(b"L")),
            (follower.member_id.clone(), Bytes::from_static(b"F")),
        ];
        let _ = c.sync("g", 1, &leader.member_id, None, assignments);
        let synced = pending.await.expect("follower");
        assert_eq!(
            (synced.error, synced.assignment),
            (0, Bytes::from_static(b"F"))
        );
        // Right after, heartbeats announce the next rebalance.
        assert_eq!(
            c.heartbeat("g", 1, &follower.member_id, None),
            ResponseError::RebalanceInProgress.code()
        );
        let (ra, rb) = match (join(&c, &leader.member_id), join(&c, &follower.member_id)) {
            (JoinOutcome::Later(ra), JoinOutcome::Later(rb)) => (ra, rb),
            _ => panic!("rejoins answered early"),
        };
        for r in [
            ra.await.expect("a"),
            rb.await.expect("b"),
            third_joined.await.expect("c"),
        ] {
            assert_eq!((r.error, r.generation), (0, 2));
            if r.leader == r.member_id {
                assert_eq!(r.members.len(), 3);
            }
        }
    }

    fn join_static(c: &GroupCoordinator, member_id: &str, instance: &str) -> JoinOutcome {
        c.join(JoinRequest {
            group_id: "s".into(),
            member_id: member_id.into(),
            group_instance_id: Some(instance.into()),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            require_known_member_id: true,
        })
    }

    #[tokio::test]
    async fn a_static_member_restarting_keeps_its_assignment_without_a_rebalance() {
        let c = coordinator();
        let (ra, rb) = match (join_static(&c, "", "a"), join_static(&c, "", "b")) {
            (JoinOutcome::Later(ra), JoinOutcome::Later(rb)) => (ra, rb),
            _ => panic!("static members join without MEMBER_ID_REQUIRED"),
        };
        let first = ra.await.expect("a");
        // The first member completed a generation alone; b's join started the next one.
        let (a, b) = if first.generation == 1 {
            let JoinOutcome::Later(again) = join_static(&c, &first.member_id, "a") else {
                panic!("rejoin answered early")
            };
            (again.await.expect("a again"), rb.await.expect("b"))
        } else {
            (first, rb.await.expect("b"))
        };
        assert_eq!(a.generation, b.generation);
        let (leader, follower) = if a.leader == a.member_id {
            (a, b)
        } else {
            (b, a)
        };
        let assignments = vec![
            (leader.member_id.clone(), Bytes::from_static(b"L")),
            (follower.member_id.clone(), Bytes::from_static(b"F")),
        ];
        let follower_sync = c
            .sync("s", follower.generation, &follower.member_id, None, vec![])
            .expect_err("waits for the leader");
        let _ = c.sync("s", leader.generation, &leader.member_id, None, assignments);
        assert_eq!(
            follower_sync.await.expect("sync").assignment,
            Bytes::from_static(b"F")
        );

        // The follower restarts: same instance id, no member id.
        let instance = if follower.member_id == a_id(&c, "a") {
            "a"
        } else {
            "b"
        };
        let JoinOutcome::Now(back) = join_static(&c, "", instance) else {
            panic!("a returning static follower is answered at once")
        };
        assert_eq!(
            (back.error, back.generation),
            (0, follower.generation),
            "no new generation"
        );
        assert_ne!(back.member_id, follower.member_id);
        let sync = c
            .sync(
                "s",
                back.generation,
                &back.member_id,
                Some(instance),
                vec![],
            )
            .expect("stable group answers at once");
        assert_eq!(
            sync.assignment,
            Bytes::from_static(b"F"),
            "keeps its assignment"
        );
        // The old member id is fenced.
        assert_eq!(
            c.heartbeat("s", back.generation, &follower.member_id, Some(instance)),
            ResponseError::FencedInstanceId.code()
        );
    }

    fn a_id(c: &GroupCoordinator, instance: &str) -> String {
        c.groups
            .lock()
            .get("s")
            .and_then(|g| g.member_by_instance(instance))
            .unwrap_or_default()
    }
}
