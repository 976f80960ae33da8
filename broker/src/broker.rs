//! The broker's shared state: configuration, topics, the flusher and the address it advertises.
//! Every connection's request handlers get an `Arc<Broker>`.

use std::sync::Arc;

use crate::config::Config;
use crate::flush::Flusher;
use crate::producer_ids::ProducerIds;
use crate::topic::{TopicError, TopicRegistry};

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
    pub advertised: Advertised,
}

impl Broker {
    /// Opens the data directory (recovering every partition) and starts the flusher.
    pub fn open(config: Config, advertised: Advertised) -> Result<Self, TopicError> {
        let config = Arc::new(config);
        let topics = TopicRegistry::open(config.clone())?;
        let flusher = Flusher::start(config.flush_policy);
        let producer_ids = ProducerIds::open(&config.data_dir)?;
        Ok(Broker {
            config,
            topics,
            flusher,
            producer_ids,
            advertised,
        })
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }
}
