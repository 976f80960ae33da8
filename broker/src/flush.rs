//! Group commit: producers whose records must be durable hand their partition to one flusher
//! thread, which fsyncs each dirty partition once for everyone who asked while the previous
//! fsync ran, then releases all their acknowledgements together. Under load one fdatasync covers
//! many requests, so durability costs little throughput.

use prometheus_client::metrics::histogram::Histogram;
use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::FlushPolicy;
use crate::topic::Partition;

type Waiter = oneshot::Sender<Result<(), String>>;

struct Request {
    partition: Arc<Partition>,
    done: Waiter,
}

/// Makes appended records durable and visible, and tells long-polling fetches about them.
#[derive(Clone)]
pub struct Flusher {
    policy: FlushPolicy,
    requests: mpsc::UnboundedSender<Request>,
    /// Bumped whenever the high watermark of any partition moves.
    appended: Arc<watch::Sender<u64>>,
}

impl Flusher {
    /// Starts the flusher thread. It stops when every `Flusher` clone is dropped. Each fsync's
    /// duration goes into `fsync_seconds`.
    pub fn start(policy: FlushPolicy, fsync_seconds: Histogram) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (appended, _) = watch::channel(0u64);
        let appended = Arc::new(appended);
        let notify = appended.clone();
        std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || run(rx, notify, fsync_seconds))
            .map_err(|e| tracing::error!(error = %e, "could not start the flusher thread"))
            .ok();
        Flusher {
            policy,
            requests: tx,
            appended,
        }
    }

    /// Makes what was appended to `partition` durable (under the flush policy) and visible.
    /// Resolves when that is done.
    pub async fn commit(&self, partition: Arc<Partition>) -> Result<(), String> {
        match self.policy {
            FlushPolicy::Os => {
                partition.publish_unsynced();
                self.appended.send_modify(|v| *v = v.wrapping_add(1));
                Ok(())
            }
            FlushPolicy::GroupCommit => {
                let (done, wait) = oneshot::channel();
                self.requests
                    .send(Request { partition, done })
                    .map_err(|_| "the flusher has stopped".to_string())?;
                wait.await
                    .map_err(|_| "the flusher has stopped".to_string())?
            }
        }
    }

    /// Watches for new visible records (for long-polling fetches).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }
}

fn run(
    mut rx: mpsc::UnboundedReceiver<Request>,
    appended: Arc<watch::Sender<u64>>,
    fsync_seconds: Histogram,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        // One fsync per distinct partition in this round.
        let mut by_partition: HashMap<*const Partition, (Arc<Partition>, Vec<Waiter>)> =
            HashMap::new();
        for req in batch {
            by_partition
                .entry(Arc::as_ptr(&req.partition))
                .or_insert_with(|| (req.partition.clone(), Vec::new()))
                .1
                .push(req.done);
        }
        let started = std::time::Instant::now();
        let requests: usize = by_partition.values().map(|(_, w)| w.len()).sum();
        let partitions = by_partition.len();
        // Each partition's file is fsynced on its own thread, all at once: the filesystem
        // commits concurrent fsyncs together, and every producer is released as soon as its
        // own partition is durable rather than after the slowest one.
        let sync = |partition: Arc<Partition>, waiters: Vec<Waiter>| {
            let fsync_started = std::time::Instant::now();
            let result = partition.sync().map(|_| ()).map_err(|e| {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "fsync failed");
                format!("fsync failed: {e}")
            });
            fsync_seconds.observe(fsync_started.elapsed().as_secs_f64());
            appended.send_modify(|v| *v = v.wrapping_add(1));
            for w in waiters {
                let _ = w.send(result.clone());
            }
        };
        // Work list shared by this thread and one helper per further partition; if a helper
        // cannot be started, the others (this thread at least) take its share.
        let work = parking_lot::Mutex::new(by_partition.into_values().collect::<Vec<_>>());
        let drain = || {
            while let Some((partition, waiters)) = work.lock().pop() {
                sync(partition, waiters);
            }
        };
        std::thread::scope(|scope| {
            for _ in 1..partitions {
                let spawned = std::thread::Builder::new()
                    .name("group-commit-sync".into())
                    .spawn_scoped(scope, drain);
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "could not start an fsync thread");
                    break;
                }
            }
            drain();
        });
        tracing::trace!(
            requests,
            partitions,
            took_us = started.elapsed().as_micros() as u64,
            "group commit"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::encode_batch;
    use crate::log::LogConfig;

    /// Several partitions committed at once (one group commit, one fsync thread each): every
    /// producer is answered, and each partition's high watermark reaches its log end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_of_many_partitions_all_complete() {
        let dir = tempfile::tempdir().unwrap();
        let partitions: Vec<Arc<Partition>> = (0..6)
            .map(|i| {
                let pdir = dir.path().join(format!("t-{i}"));
                std::fs::create_dir_all(&pdir).unwrap();
                Arc::new(Partition::open("t", i, &pdir, LogConfig::default()).unwrap())
            })
            .collect();
        let flusher = Flusher::start(FlushPolicy::GroupCommit, Histogram::new([0.1].into_iter()));
        let mut commits = Vec::new();
        for round in 0..20 {
            for p in &partitions {
                let mut batch = encode_batch(&[(b"k", format!("v{round}").as_bytes(), 0)]);
                p.append(&mut batch).unwrap();
                let (flusher, p) = (flusher.clone(), p.clone());
                commits.push(tokio::spawn(async move { flusher.commit(p).await }));
            }
        }
        for c in commits {
            c.await.unwrap().unwrap();
        }
        for p in &partitions {
            assert_eq!(p.high_watermark(), 20, "partition {}", p.index);
        }
    }
}
