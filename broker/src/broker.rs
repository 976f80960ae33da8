//! The broker's shared state: configuration, topics, the flusher, producer ids, consumer groups
//! and committed offsets, and the address it advertises. Every request handler gets an
//! `Arc<Broker>`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::flush::Flusher;
use crate::group::configs::GroupConfigStore;
use crate::group::offsets::OffsetStore;
use crate::group::{GroupConfig, GroupCoordinator};
use crate::producer_ids::ProducerIds;
use crate::topic::{TopicError, TopicRegistry};
use crate::txn::TxnCoordinator;

/// What a client is told to connect to.
#[derive(Debug, Clone)]
pub struct Advertised {
    pub host: String,
    pub port: i32,
}

/// Shared broker state.
pub struct Broker {
    pub config: Arc<Config>,
    pub topics: TopicRegistry,
    pub flusher: Flusher,
    pub producer_ids: ProducerIds,
    pub groups: GroupCoordinator,
    /// Group-level configs (resource type GROUP), stored and described; see [`GroupConfigStore`].
    pub group_configs: GroupConfigStore,
    pub offsets: OffsetStore,
    /// The transaction coordinator and its `__transaction_state`.
    pub txns: TxnCoordinator,
    /// SCRAM credentials and their `__datasync_scram_credentials` (issue 19).
    pub credentials: Arc<crate::security::credentials::CredentialStore>,
    pub advertised: Advertised,
    /// Cancelled when the broker starts shutting down: waits that would outlive it (a long-poll
    /// Fetch) answer at once instead.
    pub stopping: CancellationToken,
    /// ACLs and the rules that check every request against them.
    pub authorizer: crate::authorizer::Authorizer,
    /// Event counters and latency histograms (see [`crate::metrics`]).
    pub metrics: crate::metrics::Metrics,
}

impl Broker {
    /// Opens the data directory (recovering every partition and the committed offsets) and
    /// starts the flusher.
    pub async fn open(config: Config, advertised: Advertised) -> Result<Self, TopicError> {
        let config = Arc::new(config);
        let opening = config.clone();
        let topics = tokio::task::spawn_blocking(move || TopicRegistry::open(opening))
            .await
            .map_err(|e| TopicError::Io(std::io::Error::other(e)))??;
        let metrics = crate::metrics::Metrics::default();
        let flusher = Flusher::start(config.flush_policy, metrics.fsync_histogram());
        let producer_ids = ProducerIds::open(&config.data_dir)?;
        let offsets = OffsetStore::open(&topics, flusher.clone()).await?;
        let txns =
            TxnCoordinator::open(&topics, flusher.clone(), config.transaction_max_timeout_ms)
                .await?;
        let authorizer = crate::authorizer::Authorizer::open(
            &topics,
            flusher.clone(),
            config.super_users.as_ref().map_or(&[][..], |s| &s.0[..]),
            config.allow_everyone_if_no_acl_found,
        )
        .await?;
        let group_configs = GroupConfigStore::open(&config.data_dir)?;
        let credentials = Arc::new(
            crate::security::credentials::CredentialStore::open(&topics, flusher.clone()).await?,
        );
        let groups = GroupCoordinator::new(GroupConfig {
            min_session_timeout: Duration::from_millis(config.group_min_session_timeout_ms),
            max_session_timeout: Duration::from_millis(config.group_max_session_timeout_ms),
            initial_rebalance_delay: Duration::from_millis(config.group_initial_rebalance_delay_ms),
        })
        .with_metadata_sink(offsets.metadata_sink());
        let broker = Broker {
            config,
            topics,
            flusher,
            producer_ids,
            groups,
            group_configs,
            offsets,
            txns,
            credentials,
            advertised,
            stopping: CancellationToken::new(),
            authorizer,
            metrics,
        };
        // Transactions a crash left unfinished are finished before any client is served.
        broker.txns.recover(&broker).await;
        Ok(broker)
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }
}
