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
    /// How long a POST waits for the broker's acknowledgement before answering 503.
    #[arg(long, env = "PUBLISH_TIMEOUT_MS", default_value_t = 3000)]
    pub publish_timeout_ms: u64,
    /// Producer `linger.ms`: batching delay, trading a little latency for throughput. 5 ms, as in
    /// Apache Kafka 4.0's producer (KIP-1030): the idempotent producer keeps one request per
    /// partition in flight, and librdkafka's broker thread spins while a batch whose linger has
    /// run out waits for that request; a linger longer than the broker's fsync round trip avoids
    /// the spin (less CPU and a lower p99 at 5,000 orders/s, see docs/benchmarks.md).
    #[arg(long, env = "PRODUCER_LINGER_MS", default_value_t = 5)]
    pub producer_linger_ms: u64,
    /// How long a GET with `X-Consistency-Token` waits for the sink before answering 503.
    #[arg(long, env = "CONSISTENCY_TIMEOUT_MS", default_value_t = 5000)]
    pub consistency_timeout_ms: u64,
    /// Name of the sink connector that writes the orders table (`docker/connectors/
    /// orders-sink.json`): consistency tokens wait for its progress only.
    #[arg(long, env = "CONSISTENCY_CONNECTOR", default_value = "orders-sink")]
    pub consistency_connector: String,
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
