//! A worker's group membership, running: the config topic's view goes to the coordinator as
//! the work to assign (and the offset read to), each assignment and each config change to the
//! herder, one at a time, so the herder never applies an assignment from configs older than
//! the leader's.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::assignor::Work;
use super::coordinator::{self, CoordinatorConfig, Snapshot};
use crate::herder::Herder;
use crate::storage::{ConfigView, TargetState};

/// The running membership; [`Group::stop`] ends it.
pub struct Group {
    stop: watch::Sender<bool>,
    herder_done: CancellationToken,
    coordinator: tokio::task::JoinHandle<()>,
    herder_loop: tokio::task::JoinHandle<()>,
    snapshots: tokio::task::JoinHandle<()>,
}

/// The work a config view holds: every connector, and the tasks of those not stopped.
pub fn snapshot_of(view: &ConfigView) -> Snapshot {
    let mut work = BTreeSet::new();
    for (name, c) in &view.connectors {
        work.insert(Work::connector(name));
        if c.target != TargetState::Stopped {
            for id in 0..c.tasks.len() {
                work.insert(Work::task(name, i32::try_from(id).unwrap_or(i32::MAX)));
            }
        }
    }
    Snapshot {
        offset: view.offset,
        work,
    }
}

/// Joins the group and keeps the herder in step with the group and the config topic.
pub fn start(
    config: CoordinatorConfig,
    herder: Arc<Herder>,
    view: watch::Receiver<ConfigView>,
) -> Group {
    let (snap_tx, snap_rx) = watch::channel(snapshot_of(&view.borrow()));
    let (events_tx, mut events_rx) = mpsc::channel::<coordinator::AssignmentEvent>(4);
    let (stop, stopped) = watch::channel(false);
    let coordinator = tokio::spawn(coordinator::run(config, snap_rx, events_tx, stopped));

    let mut v = view.clone();
    let snapshots = tokio::spawn(async move {
        while v.changed().await.is_ok() {
            let s = snapshot_of(&v.borrow_and_update());
            snap_tx.send_replace(s);
        }
    });

    let herder_done = CancellationToken::new();
    let done = herder_done.clone();
    let mut v = view;
    let herder_loop = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                _ = done.cancelled() => return,
                ev = events_rx.recv() => match ev {
                    Some(ev) => {
                        let current = v.borrow_and_update().clone();
                        herder.apply_assignment(ev, current).await;
                    }
                    None => return,
                },
                r = v.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let current = v.borrow_and_update().clone();
                    herder.apply_view(current).await;
                }
            }
        }
    });
    Group {
        stop,
        herder_done,
        coordinator,
        herder_loop,
        snapshots,
    }
}

impl Group {
    /// Stops every task, then leaves the group (so the others take the work at once).
    pub async fn stop(self, herder: &Herder) {
        self.herder_done.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(60), self.herder_loop).await;
        herder.shutdown().await;
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.coordinator).await;
        self.snapshots.abort();
    }
}
