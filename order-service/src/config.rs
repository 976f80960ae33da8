//! Configuration: the flags every service takes ([`CommonConfig`]: bind address, database,
//! registry) and the order-service's own (the orders topic, the producer, consistency tokens).
//! Every flag also reads an environment variable, so the same binary runs from a shell, a compose
//! file or a test (tests build a `Config` with `Config::parse_from`).

use clap::Parser;

pub use service_common::config::CommonConfig;

/// `Debug` shows no secret: [`CommonConfig`]'s hides the database password, and the rest holds
/// none.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "order-service",
    about = "Orders over HTTP, published to Kafka",
    args_override_self = true
)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonConfig,
    /// Topic the orders are published to (and named in consistency tokens).
    #[arg(long, env = "ORDERS_TOPIC", default_value = "orders")]
    pub orders_topic: String,
    /// Partitions of the orders topic when this service has to create it.
    #[arg(long, env = "ORDERS_PARTITIONS", default_value_t = 1)]
    pub orders_partitions: i32,
    /// How long a POST waits for its order to be taken into a transaction (and each record for
    /// the broker's acknowledgement, `message.timeout.ms`) before answering 503.
    #[arg(long, env = "PUBLISH_TIMEOUT_MS", default_value_t = 3000)]
    pub publish_timeout_ms: u64,
    /// Producer `linger.ms`: how long a transaction's records wait to be batched before they
    /// are sent (the publisher waits for their delivery before committing, so each transaction
    /// takes at least this long). 5 ms, Kafka 4.0's default (KIP-1030): 0 halves the latency of
    /// a closed loop but gave a worse open-loop p99 at 5,000 orders/s (docs/benchmarks.md,
    /// session 7).
    #[arg(long, env = "PRODUCER_LINGER_MS", default_value_t = 5)]
    pub producer_linger_ms: u64,
    /// The producer's `transactional.id`. Give each instance its own, stable across restarts
    /// (compose: `order-service-1`, `order-service-2`): a restarted instance then fences its
    /// previous incarnation and aborts the transaction that one left open at once. Unset, a
    /// random one is used, and a crashed instance's open transaction holds the sink back until
    /// the broker aborts it (`--transaction-timeout-ms`). Two live instances must never share
    /// one: each would fence the other.
    #[arg(long, env = "ORDER_TRANSACTIONAL_ID")]
    pub transactional_id: Option<String>,
    /// The producer's `transaction.timeout.ms` (at least the publish timeout): how long the
    /// broker keeps a transaction of a vanished producer open before aborting it.
    #[arg(long, env = "TRANSACTION_TIMEOUT_MS", default_value_t = 10_000)]
    pub transaction_timeout_ms: u64,
    /// The most orders committed in one transaction (all those waiting, up to this many).
    #[arg(long, env = "ORDERS_PER_TRANSACTION", default_value_t = 1000)]
    pub orders_per_transaction: usize,
    /// How long a GET with `X-Consistency-Token` waits for the sink before answering 503.
    #[arg(long, env = "CONSISTENCY_TIMEOUT_MS", default_value_t = 5000)]
    pub consistency_timeout_ms: u64,
    /// The sink connector whose progress consistency tokens wait for. Unset (the default), any
    /// JDBC sink connector that writes the orders topic into the `orders` table vouches for a
    /// token, whatever it is called; set, only that connector does.
    #[arg(long, env = "CONSISTENCY_CONNECTOR")]
    pub consistency_connector: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let url = "mysql://root:te@st1357@db/mydb?ssl-mode=disabled";
        let config = Config::parse_from(["x", "--database-url", url, "--orders-topic", "o"]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("st1357"), "{shown}");
        assert!(shown.contains("root:[hidden]@"), "{shown}");
        assert!(shown.contains(r#"orders_topic: "o""#), "{shown}");
    }
}
