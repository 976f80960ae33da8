//! A worker's life in the `connect` group (Kafka Connect's `WorkerCoordinator`): join, lead
//! when chosen, sync, hand the assignment to the herder, heartbeat, and rejoin when the group
//! rebalances, the configs change, revoked work was stopped or a scheduled rebalance is due.
//!
//! Every worker reads the config topic to the offset the leader assigned from before it runs
//! its assignment (and the leader to the newest offset a member reports before it assigns), so
//! no worker starts a task from configs older than the leader's; a worker that cannot catch up
//! within `worker.sync.timeout.ms` runs nothing of that round and rejoins.
//!
//! The herder is told of every assignment through [`Assignment`] events and acknowledges each
//! once it has stopped the revoked work (and started the new); only then does the coordinator
//! report its new running set in the next join, so the leader never hands out work that is
//! still running elsewhere. A member that loses the group (session expired, coordinator
//! unreachable) revokes everything it runs before it joins again, as Kafka's worker does when
//! its generation is reset: another worker may already run it.
//!
//! A member cut off from the coordinator without an error (a frozen connection: requests
//! neither answered nor refused) must not keep running its tasks once the group may have given
//! them to another worker, or with exactly-once source support off a source task would run on
//! two workers at once. The coordinator evicts a member `session.timeout.ms` after the last
//! request it received from it; so a member whose last answered request was sent at `t` stops
//! everything at `t + session.timeout.ms × 2/3` ([`CoordinatorConfig::lost_after`]) unless
//! another answer arrived, leaving a third of the session timeout for its tasks to stop before
//! the coordinator can evict it and the leader hand its work to another worker. While a round
//! runs (a JoinGroup may wait for other members well beyond the session timeout) the member
//! heartbeats on a second connection, whose answers count as well.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};

use super::assignor::{self, LeaderState, Work};
use super::client::{codes, GroupError, GroupMember, SideChannel};
use super::protocol::{self, ConnectProtocol, WorkerState};

/// The config snapshot the leader assigns from: the config topic offset it was read to and
/// every connector and task it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub offset: i64,
    pub work: BTreeSet<Work>,
}

#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub bootstrap: String,
    /// TLS and SASL of every connection to the coordinator (default: PLAINTEXT).
    pub security: broker::client::ClientSecurity,
    pub group_id: String,
    /// This worker's advertised REST URL.
    pub url: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub heartbeat_interval_ms: u64,
    /// Kafka's `scheduled.rebalance.max.delay.ms`.
    pub max_delay_ms: i64,
    /// Kafka's `worker.sync.timeout.ms`: how long a worker waits to read the config topic to
    /// the offset an assignment names (and a leader to the members' newest) before it gives
    /// up on the round and rejoins.
    pub worker_sync_timeout_ms: u64,
    /// Test hook: while set, every request to the group coordinator hangs, as over a frozen
    /// connection (the worker's other Kafka clients are unaffected).
    pub freeze: Arc<AtomicBool>,
}

impl CoordinatorConfig {
    /// How long after sending its last answered request a member stops all its tasks: two
    /// thirds of the session timeout.
    pub fn lost_after(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.session_timeout_ms).unwrap_or(0) * 2 / 3)
    }

    /// The time between heartbeats: `heartbeat.interval.ms`, but at most half of
    /// [`Self::lost_after`], so one heartbeat late does not stop the tasks.
    fn heartbeat_every(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms).min(self.lost_after() / 2)
    }

    /// Waits while the test hook freezes the group connection.
    async fn unfrozen(&self) {
        while self.freeze.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Returns when the session may have expired while a round runs: keeps heartbeating on a
/// side channel (the round's JoinGroup may wait for other members far longer than the session
/// timeout, during which the coordinator keeps this member), each answer that shows the
/// coordinator counted the heartbeat moving `last_ok` on; never returns when nothing runs.
async fn keep_alive(
    config: &CoordinatorConfig,
    mut side: Option<SideChannel>,
    last_ok: &parking_lot::Mutex<Instant>,
    running: &BTreeSet<Work>,
) {
    if running.is_empty() {
        std::future::pending::<()>().await;
    }
    let limit = config.lost_after();
    loop {
        let expiry = *last_ok.lock() + limit;
        tokio::select! {
            _ = tokio::time::sleep_until(expiry) => return,
            _ = tokio::time::sleep(config.heartbeat_every()) => {}
        }
        let Some(channel) = side.as_mut() else {
            continue;
        };
        if config.freeze.load(Ordering::Relaxed) {
            continue;
        }
        let sent = Instant::now();
        let expiry = *last_ok.lock() + limit;
        match tokio::time::timeout_at(expiry, channel.heartbeat()).await {
            Err(_) => return,
            Ok(Ok(())) => *last_ok.lock() = sent,
            Ok(Err(e)) if e.code() == Some(codes::REBALANCE_IN_PROGRESS) => {
                *last_ok.lock() = sent;
            }
            // Another generation by now (the round is ending) or the channel broke: the
            // round's own answers count from here.
            Ok(Err(_)) => side = None,
        }
    }
}

/// Sleeps until `last_ok + limit` when something runs (else forever).
async fn session_expiry(last_ok: Instant, limit: Duration, running: &BTreeSet<Work>) {
    if running.is_empty() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep_until(last_ok + limit).await;
}

/// One assignment for the herder to apply.
#[derive(Debug)]
pub struct AssignmentEvent {
    pub generation_id: i32,
    pub leader_url: String,
    /// The config topic offset to read to before running anything.
    pub config_offset: i64,
    pub assigned: BTreeSet<Work>,
    pub revoked: BTreeSet<Work>,
    /// Sent back once revoked work has stopped.
    pub applied: oneshot::Sender<()>,
}

/// Runs the worker's membership until `shutdown` fires, then leaves the group.
pub async fn run(
    config: CoordinatorConfig,
    mut snapshot: watch::Receiver<Snapshot>,
    events: mpsc::Sender<AssignmentEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut leader_state = LeaderState::default();
    let mut running: BTreeSet<Work> = BTreeSet::new();
    let mut leader_url = String::new();
    let backoff = Duration::from_millis(500);
    'connect: loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = config.unfrozen() => {}
            _ = shutdown.changed() => return,
        }
        let mut member = match GroupMember::connect_as(
            &config.bootstrap,
            &config.security,
            &config.group_id,
            config.session_timeout_ms,
            config.rebalance_timeout_ms,
            Duration::from_secs(10),
        )
        .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the group coordinator");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => continue 'connect,
                    _ = shutdown.changed() => return,
                }
            }
        };
        leader_url.clear();
        // A new connection is a new member: whatever we ran may be someone else's now.
        if !running.is_empty()
            && !apply(&events, -1, "", -1, BTreeSet::new(), running.clone()).await
        {
            return;
        }
        running.clear();
        let limit = config.lost_after();
        // When the last answered request to the coordinator was sent.
        let mut last_ok = Instant::now();

        loop {
            // The work the round assigns from: only a change of it calls for a new round (a
            // config change that moves no work, such as a pause, does not).
            let round_work = snapshot.borrow().work.clone();
            let sent = Instant::now();
            let side = if running.is_empty() || member.member_id().is_empty() {
                None
            } else {
                member.side_channel().await.ok()
            };
            let alive = parking_lot::Mutex::new(last_ok);
            let result = tokio::select! {
                r = round(&config, &mut member, &mut leader_state, &snapshot, &running) => r,
                _ = keep_alive(&config, side, &alive, &running) => {
                    if !stop_all_lost(&events, &mut running, limit).await {
                        return;
                    }
                    continue 'connect;
                }
                _ = shutdown.changed() => {
                    let _ = member.leave().await;
                    return;
                }
            };
            last_ok = alive.into_inner();
            let (gen, a) = match result {
                Ok(x) => {
                    last_ok = last_ok.max(sent);
                    x
                }
                Err(e) if rejoin_now(&e) => {
                    last_ok = last_ok.max(sent);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "group membership lost");
                    if !running.is_empty()
                        && !apply(&events, -1, "", -1, BTreeSet::new(), running.clone()).await
                    {
                        return;
                    }
                    running.clear();
                    continue 'connect;
                }
            };
            // When the coordinator last counted this member is unknown after a round whose
            // JoinGroup waited long (it restarts the session when the join completes): one
            // heartbeat answered now says. REBALANCE_IN_PROGRESS counts too; the heartbeat loop
            // rejoins after the assignment is applied.
            let sent = Instant::now();
            let beat = tokio::select! {
                r = async {
                    config.unfrozen().await;
                    member.heartbeat().await
                } => r,
                _ = session_expiry(last_ok, limit, &running) => {
                    if !stop_all_lost(&events, &mut running, limit).await {
                        return;
                    }
                    continue 'connect;
                }
            };
            match beat {
                Ok(()) => last_ok = sent,
                Err(e) if rejoin_now(&e) => last_ok = sent,
                Err(e) => {
                    tracing::warn!(error = %e, "heartbeat after a rebalance failed");
                    if !running.is_empty()
                        && !apply(&events, -1, "", -1, BTreeSet::new(), running.clone()).await
                    {
                        return;
                    }
                    running.clear();
                    continue 'connect;
                }
            }
            if a.error == protocol::CONFIG_MISMATCH {
                // The leader could not read the configs some member has: try again shortly.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            // Run nothing before the configs are read to the leader's offset.
            if !caught_up(
                &mut snapshot,
                a.config_offset,
                config.worker_sync_timeout_ms,
            )
            .await
            {
                tracing::warn!(
                    offset = a.config_offset,
                    "configs not read to the leader's offset in time; rejoining"
                );
                continue;
            }
            let assigned = assignor::from_connector_tasks(&a.assigned);
            let revoked = assignor::from_connector_tasks(&a.revoked);
            let any_revoked = !revoked.is_empty();
            // A new leader is news too: the herder forwards writes to it.
            let new_leader = a.leader_url != leader_url;
            if !assigned.is_empty() || any_revoked || new_leader {
                leader_url.clone_from(&a.leader_url);
                if !apply_heartbeating(
                    &events,
                    &mut member,
                    &config,
                    &mut last_ok,
                    AssignmentParts {
                        generation_id: gen,
                        leader_url: &a.leader_url,
                        config_offset: a.config_offset,
                        assigned: assigned.clone(),
                        revoked: revoked.clone(),
                    },
                )
                .await
                {
                    let _ = member.leave().await;
                    return;
                }
                for w in &revoked {
                    running.remove(w);
                }
                running.extend(assigned);
            }
            if any_revoked {
                // Kafka's worker rejoins at once after stopping revoked work, so the leader can
                // hand it to its new owner.
                continue;
            }
            let deadline = (a.delay_ms > 0).then(|| {
                tokio::time::Instant::now()
                    + Duration::from_millis(u64::try_from(a.delay_ms).unwrap_or(0))
            });
            snapshot.mark_unchanged();
            if snapshot.borrow().work != round_work {
                // Changed while the round ran: the assignment is already out of date.
                continue;
            }
            // Heartbeat until something calls for a new round.
            loop {
                let until_due = deadline
                    .map(|d| d.saturating_duration_since(tokio::time::Instant::now()))
                    .unwrap_or(Duration::MAX);
                tokio::select! {
                    _ = tokio::time::sleep(config.heartbeat_every()) => {}
                    _ = tokio::time::sleep(until_due), if deadline.is_some() => break,
                    r = snapshot.changed() => {
                        if r.is_err() {
                            let _ = member.leave().await;
                            return;
                        }
                        if snapshot.borrow_and_update().work != round_work {
                            break;
                        }
                        continue;
                    }
                    _ = shutdown.changed() => {
                        let _ = member.leave().await;
                        return;
                    }
                }
                let sent = Instant::now();
                let beat = tokio::select! {
                    r = async {
                        config.unfrozen().await;
                        member.heartbeat().await
                    } => r,
                    _ = session_expiry(last_ok, limit, &running) => {
                        if !stop_all_lost(&events, &mut running, limit).await {
                            return;
                        }
                        continue 'connect;
                    }
                };
                match beat {
                    Ok(()) => last_ok = sent,
                    Err(e) if rejoin_now(&e) => {
                        last_ok = sent;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "heartbeat failed");
                        if !running.is_empty()
                            && !apply(&events, -1, "", -1, BTreeSet::new(), running.clone()).await
                        {
                            return;
                        }
                        running.clear();
                        continue 'connect;
                    }
                }
            }
        }
    }
}

/// Stops everything this member runs because its session may have expired; false when the
/// herder is gone.
async fn stop_all_lost(
    events: &mpsc::Sender<AssignmentEvent>,
    running: &mut BTreeSet<Work>,
    limit: Duration,
) -> bool {
    tracing::warn!(
        ?limit,
        tasks = running.len(),
        "no answer from the group coordinator within two thirds of the session timeout: the \
         session may expire and the group give this worker's work to another; stopping all tasks"
    );
    let all = std::mem::take(running);
    apply(events, -1, "", -1, BTreeSet::new(), all).await
}

/// Waits until the snapshot is read to `offset`, at most `timeout_ms`.
async fn caught_up(snapshot: &mut watch::Receiver<Snapshot>, offset: i64, timeout_ms: u64) -> bool {
    let wait = snapshot.wait_for(|s| s.offset >= offset);
    matches!(
        tokio::time::timeout(Duration::from_millis(timeout_ms), wait).await,
        Ok(Ok(_))
    )
}

/// Errors after which the member simply joins again (its membership is intact or it is told
/// to rejoin).
fn rejoin_now(e: &GroupError) -> bool {
    matches!(
        e.code(),
        Some(codes::REBALANCE_IN_PROGRESS | codes::ILLEGAL_GENERATION)
    )
}

struct AssignmentParts<'a> {
    generation_id: i32,
    leader_url: &'a str,
    config_offset: i64,
    assigned: BTreeSet<Work>,
    revoked: BTreeSet<Work>,
}

/// As [`apply`], heartbeating while the herder stops and starts work (a sink finishing its
/// batch may take longer than the session timeout), as Kafka's heartbeat thread does. Errors
/// are left for the heartbeat loop that follows to act on.
async fn apply_heartbeating(
    events: &mpsc::Sender<AssignmentEvent>,
    member: &mut GroupMember,
    config: &CoordinatorConfig,
    last_ok: &mut Instant,
    parts: AssignmentParts<'_>,
) -> bool {
    let (tx, mut rx) = oneshot::channel();
    let ev = AssignmentEvent {
        generation_id: parts.generation_id,
        leader_url: parts.leader_url.to_string(),
        config_offset: parts.config_offset,
        assigned: parts.assigned,
        revoked: parts.revoked,
        applied: tx,
    };
    if events.send(ev).await.is_err() {
        return false;
    }
    loop {
        tokio::select! {
            r = &mut rx => return r.is_ok(),
            _ = tokio::time::sleep(config.heartbeat_every()) => {
                if config.freeze.load(Ordering::Relaxed) {
                    continue;
                }
                let sent = Instant::now();
                match member.heartbeat().await {
                    Ok(()) => *last_ok = sent,
                    // The coordinator counted it (another member joined meanwhile): the session
                    // lives on, and the loop that follows rejoins. Not counting it made a member
                    // whose herder applied for longer than two thirds of the session timeout
                    // stop everything it had just been given.
                    Err(e) if e.code() == Some(codes::REBALANCE_IN_PROGRESS) => *last_ok = sent,
                    Err(e) => tracing::debug!(error = %e, "heartbeat while applying an assignment"),
                }
            }
        }
    }
}

/// Sends one event and waits for the herder; false when the herder is gone.
async fn apply(
    events: &mpsc::Sender<AssignmentEvent>,
    generation_id: i32,
    leader_url: &str,
    config_offset: i64,
    assigned: BTreeSet<Work>,
    revoked: BTreeSet<Work>,
) -> bool {
    let (tx, rx) = oneshot::channel();
    let ev = AssignmentEvent {
        generation_id,
        leader_url: leader_url.to_string(),
        config_offset,
        assigned,
        revoked,
        applied: tx,
    };
    events.send(ev).await.is_ok() && rx.await.is_ok()
}

/// One JoinGroup/SyncGroup round; the leader assigns from the snapshot.
async fn round(
    config: &CoordinatorConfig,
    member: &mut GroupMember,
    leader_state: &mut LeaderState,
    snapshot: &watch::Receiver<Snapshot>,
    running: &BTreeSet<Work>,
) -> Result<(i32, protocol::Assignment), GroupError> {
    config.unfrozen().await;
    let mut snap = snapshot.borrow().clone();
    let me = WorkerState {
        url: config.url.clone(),
        config_offset: snap.offset,
        assignment: (!running.is_empty()).then(|| protocol::Assignment {
            assigned: assignor::to_connector_tasks(running),
            ..protocol::Assignment::default()
        }),
    };
    let offered = [
        (
            ConnectProtocol::Sessioned.name(),
            protocol::encode_metadata(ConnectProtocol::Sessioned, &me),
        ),
        (
            ConnectProtocol::Compatible.name(),
            protocol::encode_metadata(ConnectProtocol::Compatible, &me),
        ),
    ];
    let joined = member.join(&offered).await?;
    let chosen =
        ConnectProtocol::from_name(&joined.protocol).unwrap_or(ConnectProtocol::Compatible);
    let mut assignments = Vec::new();
    if joined.is_leader() {
        let mut members = BTreeMap::new();
        let mut newest = snap.offset;
        for (id, meta) in &joined.members {
            // A member whose metadata cannot be read runs nothing we know of.
            let owned = match protocol::decode_metadata(meta) {
                Ok(ws) => {
                    newest = newest.max(ws.config_offset);
                    ws.assignment
                        .map(|a| assignor::from_connector_tasks(&a.assigned))
                        .unwrap_or_default()
                }
                Err(e) => {
                    tracing::warn!(member = %id, error = %e, "unreadable member metadata");
                    BTreeSet::new()
                }
            };
            members.insert(id.clone(), owned);
        }
        // Assign from configs at least as new as every member's, as Kafka's leader does.
        if snap.offset < newest {
            let mut s = snapshot.clone();
            if caught_up(&mut s, newest, config.worker_sync_timeout_ms).await {
                snap = s.borrow().clone();
            } else {
                let mismatch = protocol::Assignment {
                    error: protocol::CONFIG_MISMATCH,
                    leader: joined.member_id.clone(),
                    leader_url: config.url.clone(),
                    config_offset: snap.offset,
                    ..protocol::Assignment::default()
                };
                let bytes = protocol::encode_assignment(chosen, &mismatch);
                let all = members
                    .keys()
                    .map(|id| (id.clone(), bytes.clone()))
                    .collect();
                let mine = member.sync(all).await?;
                return decode(&mine).map(|a| (joined.generation_id, a));
            }
        }
        let plans = assignor::assign(
            leader_state,
            &members,
            &snap.work,
            now_ms(),
            config.max_delay_ms,
        );
        for (id, plan) in plans {
            let a = protocol::Assignment {
                error: protocol::NO_ERROR,
                leader: joined.member_id.clone(),
                leader_url: config.url.clone(),
                config_offset: snap.offset,
                assigned: assignor::to_connector_tasks(&plan.assigned),
                revoked: assignor::to_connector_tasks(&plan.revoked),
                delay_ms: plan.delay_ms,
            };
            assignments.push((id, protocol::encode_assignment(chosen, &a)));
        }
    }
    let bytes = member.sync(assignments).await?;
    decode(&bytes).map(|a| (joined.generation_id, a))
}

fn decode(bytes: &[u8]) -> Result<protocol::Assignment, GroupError> {
    protocol::decode_assignment(bytes).map_err(|e| GroupError::Malformed {
        api: kafka_protocol::messages::ApiKey::SyncGroup,
        addr: String::new(),
        detail: e.to_string(),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
