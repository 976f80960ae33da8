//! Workers' `connect` group over the Kafka protocol against the in-process broker: the group
//! client joins with Kafka Connect's metadata, the leader runs the incremental cooperative
//! assignor, and every member reads its assignment back, across a join and a leave.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use connect_worker::distributed::assignor::{self, LeaderState, Work};
use connect_worker::distributed::client::{codes, GroupError, GroupMember};
use connect_worker::distributed::protocol::{self, Assignment, ConnectProtocol, WorkerState};
use tokio::sync::Mutex;

const GROUP: &str = "connect-cluster";

struct Worker {
    member: GroupMember,
    url: String,
    running: BTreeSet<Work>,
    /// The last assignment, sent back as the allocation in the next join.
    last: Option<Assignment>,
}

/// What one member saw in one round.
#[derive(Debug, Default)]
struct Round {
    leader: bool,
    protocol: String,
    assignment: Assignment,
}

async fn worker(bootstrap: &str, n: usize) -> Worker {
    let member = GroupMember::connect(bootstrap, GROUP, 6_000, 10_000, Duration::from_secs(5))
        .await
        .expect("coordinator");
    Worker {
        member,
        url: format!("http://worker-{n}:8083/"),
        running: BTreeSet::new(),
        last: None,
    }
}

fn configured() -> BTreeSet<Work> {
    let mut out = BTreeSet::new();
    for c in ["orders-sink", "users-source"] {
        out.insert(Work::connector(c));
        for t in 0..3 {
            out.insert(Work::task(c, t));
        }
    }
    out
}

/// One JoinGroup/SyncGroup round of `w`; the leader assigns with `state`.
/// `None` when the generation ended before SyncGroup answered: the member rejoins.
async fn round(w: &mut Worker, state: Arc<Mutex<LeaderState>>, max_delay_ms: i64) -> Option<Round> {
    let me = WorkerState {
        url: w.url.clone(),
        config_offset: 5,
        assignment: w.last.clone(),
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
    let joined = w.member.join(&offered).await.expect("join");
    let chosen = ConnectProtocol::from_name(&joined.protocol).expect("known protocol");
    let mut assignments = Vec::new();
    if joined.is_leader() {
        let mut members = BTreeMap::new();
        let mut urls = BTreeMap::new();
        for (id, meta) in &joined.members {
            let ws = protocol::decode_metadata(meta).expect("member metadata");
            // What a member runs: everything assigned to it minus what was revoked, as Kafka's
            // allocation carries the member's current assignment.
            let running = match &ws.assignment {
                Some(a) => assignor::from_connector_tasks(&a.assigned),
                None => BTreeSet::new(),
            };
            members.insert(id.clone(), running);
            urls.insert(id.clone(), ws.url);
        }
        let now = now_ms();
        let plans = assignor::assign(
            &mut *state.lock().await,
            &members,
            &configured(),
            now,
            max_delay_ms,
        );
        for (id, plan) in plans {
            let a = Assignment {
                error: protocol::NO_ERROR,
                leader: joined.member_id.clone(),
                leader_url: w.url.clone(),
                config_offset: 5,
                assigned: assignor::to_connector_tasks(&plan.assigned),
                revoked: assignor::to_connector_tasks(&plan.revoked),
                delay_ms: plan.delay_ms,
            };
            assignments.push((id, protocol::encode_assignment(chosen, &a)));
        }
    }
    let bytes = match w.member.sync(assignments).await {
        Ok(bytes) => bytes,
        Err(e) if must_rejoin(&e) => return None,
        Err(e) => panic!("sync: {e}"),
    };
    let a = protocol::decode_assignment(&bytes).expect("assignment");
    for r in assignor::from_connector_tasks(&a.revoked) {
        w.running.remove(&r);
    }
    w.running
        .extend(assignor::from_connector_tasks(&a.assigned));
    // The allocation a member reports is everything it runs now.
    w.last = Some(Assignment {
        assigned: assignor::to_connector_tasks(&w.running),
        revoked: Default::default(),
        ..a.clone()
    });
    Some(Round {
        leader: joined.is_leader(),
        protocol: joined.protocol,
        assignment: a,
    })
}

fn must_rejoin(e: &GroupError) -> bool {
    matches!(
        e.code(),
        Some(codes::REBALANCE_IN_PROGRESS | codes::ILLEGAL_GENERATION | codes::UNKNOWN_MEMBER_ID)
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Every worker runs one round at once (a JoinGroup from any member starts the rebalance the
/// others join). A member that finished a generation before another joined heartbeats, learns of
/// the rebalance (REBALANCE_IN_PROGRESS) and rejoins, as a worker does, until all have synced
/// the same generation.
async fn all_round(
    workers: Vec<Worker>,
    state: &Arc<Mutex<LeaderState>>,
    max_delay_ms: i64,
) -> (Vec<Worker>, Vec<Round>) {
    let synced = Arc::new(std::sync::Mutex::new(vec![-1i32; workers.len()]));
    let handles: Vec<_> = workers
        .into_iter()
        .enumerate()
        .map(|(i, mut w)| {
            let state = state.clone();
            let synced = synced.clone();
            tokio::spawn(async move {
                let mut rounds = Vec::new();
                loop {
                    let Some(r) = round(&mut w, state.clone(), max_delay_ms).await else {
                        continue;
                    };
                    rounds.push(r);
                    let gen = w.member.generation_id();
                    if let Ok(mut s) = synced.lock() {
                        s[i] = gen;
                    }
                    loop {
                        let all = synced
                            .lock()
                            .map(|s| s.iter().all(|g| *g == gen))
                            .unwrap_or(false);
                        if all {
                            return (w, rounds);
                        }
                        match w.member.heartbeat().await {
                            Ok(()) => {}
                            Err(e) if must_rejoin(&e) => break,
                            Err(e) => panic!("heartbeat: {e}"),
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    let mut ws = Vec::new();
    let mut rs = Vec::new();
    for h in handles {
        let (w, r) = tokio::time::timeout(Duration::from_secs(30), h)
            .await
            .expect("round in time")
            .expect("round task");
        ws.push(w);
        rs.extend(r);
    }
    (ws, rs)
}

fn quiet(rounds: &[Round]) -> bool {
    rounds
        .iter()
        .all(|r| r.assignment.assigned.is_empty() && r.assignment.revoked.is_empty())
}

fn assert_exactly_once(workers: &[Worker]) {
    let mut seen = BTreeSet::new();
    for w in workers {
        for work in &w.running {
            assert!(seen.insert(work.clone()), "{work:?} runs on two workers");
        }
    }
    assert_eq!(seen, configured());
}

/// Rounds until one changes nothing; returns every round's view.
async fn settle(
    mut workers: Vec<Worker>,
    state: &Arc<Mutex<LeaderState>>,
    max_delay_ms: i64,
) -> (Vec<Worker>, Vec<Vec<Round>>) {
    let mut all = Vec::new();
    for _ in 0..5 {
        let (ws, rs) = all_round(workers, state, max_delay_ms).await;
        workers = ws;
        let done = quiet(&rs);
        all.push(rs);
        if done {
            return (workers, all);
        }
    }
    panic!("the group did not settle in 5 rounds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_connectors_and_tasks_through_a_connect_group() {
    let broker = test_support::TestBroker::start().await.expect("broker");
    let bootstrap = broker.bootstrap();
    let state = Arc::new(Mutex::new(LeaderState::default()));

    // Two workers: the group settles with everything running once, on the sessioned protocol.
    let workers = vec![worker(&bootstrap, 1).await, worker(&bootstrap, 2).await];
    let (workers, rounds) = settle(workers, &state, 0).await;
    let urls = ["http://worker-1:8083/", "http://worker-2:8083/"];
    for r in rounds.iter().flatten() {
        assert_eq!(r.protocol, "sessioned");
        assert!(urls.contains(&r.assignment.leader_url.as_str()));
    }
    assert!(rounds.iter().flatten().any(|r| r.leader));
    assert_exactly_once(&workers);
    assert!(workers.iter().all(|w| w.running.len() == 4));

    // A third worker joins: only what it receives moves, the others gain nothing.
    let before: Vec<BTreeSet<Work>> = workers.iter().map(|w| w.running.clone()).collect();
    let mut workers = workers;
    workers.push(worker(&bootstrap, 3).await);
    let (workers, _) = settle(workers, &state, 0).await;
    assert_exactly_once(&workers);
    for (w, b) in workers.iter().zip(&before) {
        assert!(w.running.is_subset(b), "{} gained work", w.url);
    }
    let moved: usize = workers
        .iter()
        .zip(&before)
        .map(|(w, b)| b.len() - w.running.len())
        .sum();
    assert_eq!(moved, workers[2].running.len());
    assert!(workers.iter().all(|w| w.running.len() >= 2));

    // The second worker leaves: with no rebalance delay its work moves at once to the others.
    let mut workers = workers;
    let mut gone = workers.remove(1);
    gone.member.leave().await.expect("leave");
    let (workers, _) = settle(workers, &state, 0).await;
    assert_exactly_once(&workers);
}

mod coordinated {
    //! The same through `distributed::coordinator`, the membership loop the worker runs: a
    //! herder stand-in applies each assignment and acknowledges it.

    use super::*;
    use connect_worker::distributed::coordinator::{self, CoordinatorConfig, Snapshot};
    use tokio::sync::{mpsc, watch};

    struct Running {
        work: Arc<std::sync::Mutex<BTreeSet<Work>>>,
        /// Work given to this worker since the last `clear_gained`.
        gained: Arc<std::sync::Mutex<BTreeSet<Work>>>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(bootstrap: &str, n: usize, snapshot: watch::Receiver<Snapshot>) -> Running {
        start_slow(bootstrap, n, snapshot, Duration::ZERO)
    }

    /// A worker whose herder takes `apply_time` to apply each assignment.
    fn start_slow(
        bootstrap: &str,
        n: usize,
        snapshot: watch::Receiver<Snapshot>,
        apply_time: Duration,
    ) -> Running {
        let config = CoordinatorConfig {
            bootstrap: bootstrap.to_string(),
            security: Default::default(),
            group_id: "connect-coordinated".into(),
            url: format!("http://worker-{n}:8083/"),
            session_timeout_ms: 2_000,
            rebalance_timeout_ms: 5_000,
            heartbeat_interval_ms: 200,
            max_delay_ms: 0,
            worker_sync_timeout_ms: 1_000,
            freeze: Default::default(),
        };
        let (events, mut rx) = mpsc::channel::<coordinator::AssignmentEvent>(4);
        let (stop, stopped) = watch::channel(false);
        let work = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
        let gained = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
        let (w, g) = (work.clone(), gained.clone());
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                tokio::time::sleep(apply_time).await;
                if let (Ok(mut w), Ok(mut g)) = (w.lock(), g.lock()) {
                    for r in &ev.revoked {
                        w.remove(r);
                    }
                    w.extend(ev.assigned.iter().cloned());
                    g.extend(ev.assigned.iter().cloned());
                }
                let _ = ev.applied.send(());
            }
        });
        let task = tokio::spawn(coordinator::run(config, snapshot, events, stopped));
        Running {
            work,
            gained,
            stop,
            task,
        }
    }

    fn snapshot_of(workers: &[&Running]) -> Vec<BTreeSet<Work>> {
        workers
            .iter()
            .map(|r| r.work.lock().map(|w| w.clone()).unwrap_or_default())
            .collect()
    }

    fn exactly_once(sets: &[BTreeSet<Work>], expected: &BTreeSet<Work>) -> bool {
        let total: usize = sets.iter().map(|s| s.len()).sum();
        let union: BTreeSet<Work> = sets.iter().flatten().cloned().collect();
        total == expected.len() && &union == expected
    }

    async fn wait_exactly_once(workers: &[&Running], expected: &BTreeSet<Work>, what: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let sets = snapshot_of(workers);
            // At no moment do two live workers run the same work.
            let total: usize = sets.iter().map(|s| s.len()).sum();
            let distinct: BTreeSet<&Work> = sets.iter().flatten().collect();
            assert_eq!(total, distinct.len(), "{what}: work runs twice: {sets:?}");
            if exactly_once(&sets, expected) && sets.iter().all(|s| !s.is_empty()) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: not settled: {sets:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn coordinators_spread_rebalance_and_fail_over() {
        let broker = test_support::TestBroker::start().await.expect("broker");
        let bootstrap = broker.bootstrap();
        let (snap_tx, snap_rx) = watch::channel(Snapshot {
            offset: 1,
            work: configured(),
        });
        let w1 = start(&bootstrap, 1, snap_rx.clone());
        let w2 = start(&bootstrap, 2, snap_rx.clone());
        let w3 = start(&bootstrap, 3, snap_rx.clone());
        wait_exactly_once(&[&w1, &w2, &w3], &configured(), "three workers").await;

        // A fourth worker: the first three only give work away.
        for w in [&w1, &w2, &w3] {
            if let Ok(mut g) = w.gained.lock() {
                g.clear();
            }
        }
        let w4 = start(&bootstrap, 4, snap_rx.clone());
        wait_exactly_once(&[&w1, &w2, &w3, &w4], &configured(), "four workers").await;
        for w in [&w1, &w2, &w3] {
            assert!(w.gained.lock().map(|g| g.is_empty()).unwrap_or(false));
        }

        // A new connector in the configs is run, once.
        let mut more = configured();
        more.insert(Work::connector("extra"));
        more.insert(Work::task("extra", 0));
        snap_tx.send_replace(Snapshot {
            offset: 2,
            work: more.clone(),
        });
        wait_exactly_once(&[&w1, &w2, &w3, &w4], &more, "new connector").await;

        // Worker 2 dies without leaving: after its session timeout its work runs elsewhere.
        let started = std::time::Instant::now();
        w2.task.abort();
        wait_exactly_once(&[&w1, &w3, &w4], &more, "after a kill").await;
        assert!(started.elapsed() < Duration::from_secs(2 + 5));

        // A graceful stop leaves the group at once.
        let _ = w4.stop.send(true);
        let _ = w4.task.await;
        wait_exactly_once(&[&w1, &w3], &more, "after a stop").await;
        for w in [w1, w3] {
            let _ = w.stop.send(true);
            let _ = w.task.await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_herder_slower_than_the_session_timeout_keeps_its_membership() {
        let broker = test_support::TestBroker::start().await.expect("broker");
        let bootstrap = broker.bootstrap();
        let (_tx, rx) = watch::channel(Snapshot {
            offset: 1,
            work: configured(),
        });
        // Applying takes 3 s, longer than the 2 s session timeout.
        let w1 = start_slow(&bootstrap, 1, rx.clone(), Duration::from_millis(3_000));
        let w2 = start(&bootstrap, 2, rx);
        wait_exactly_once(&[&w1, &w2], &configured(), "two workers").await;
        // Had w1 missed its heartbeats, its work would have moved to w2 (max delay 0) and w2
        // would hold everything.
        assert!(w1.work.lock().map(|w| !w.is_empty()).unwrap_or(false));
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        wait_exactly_once(&[&w1, &w2], &configured(), "still two").await;
        for w in [w1, w2] {
            let _ = w.stop.send(true);
            let _ = w.task.await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_behind_on_configs_runs_nothing_until_it_catches_up() {
        let broker = test_support::TestBroker::start().await.expect("broker");
        let bootstrap = broker.bootstrap();
        let snap = |offset| Snapshot {
            offset,
            work: configured(),
        };
        let (_lead_tx, lead_rx) = watch::channel(snap(2));
        let w1 = start(&bootstrap, 1, lead_rx);
        wait_exactly_once(&[&w1], &configured(), "one worker").await;

        // The second worker has read the config topic only to offset 1.
        let (lag_tx, lag_rx) = watch::channel(Snapshot {
            offset: 1,
            work: BTreeSet::new(),
        });
        let w2 = start(&bootstrap, 2, lag_rx);
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert!(w2.work.lock().map(|w| w.is_empty()).unwrap_or(false));
        // Never twice in the meantime.
        let sets = snapshot_of(&[&w1, &w2]);
        let total: usize = sets.iter().map(|s| s.len()).sum();
        assert_eq!(total, sets.iter().flatten().collect::<BTreeSet<_>>().len());

        // Once it has read to offset 2 it takes its share.
        lag_tx.send_replace(snap(2));
        wait_exactly_once(&[&w1, &w2], &configured(), "caught up").await;
        for w in [w1, w2] {
            let _ = w.stop.send(true);
            let _ = w.task.await;
        }
    }
}
