//! Read-your-writes across instances.
//!
//! A 201 carries `X-Consistency-Token: <topic>:<partition>:<offset>`, the position of the
//! acknowledged record. The connect worker's sink records in `datasync_sink_offsets`, in the same
//! transaction as the rows, the next offset it will apply per partition and the table it writes
//! the topic into. Only a row of a connector that writes the orders topic into the `orders`
//! table counts, whatever the connector is called, so another sink reading the same topic into
//! another table cannot vouch for a token; `--consistency-connector` narrows it to one
//! connector. A GET that sends the token back polls that table (5 ms, doubling to 100 ms) until
//! `next_offset > offset`, then reads. If that does not happen within `--consistency-timeout-ms`
//! the GET fails with 503 rather than silently returning stale data, as a Kafka user would
//! expect: `X-Consistency-Status: timeout` when such a sink exists but has not got there yet
//! (the client may retry with the same token), `no-sink` when none has recorded anything, with
//! the body's `details` saying what was looked for, which connectors read the topic, and how to
//! set `--consistency-connector`.
//!
//! A token that no acknowledged write can have produced (an offset at or past the partition's
//! end on the broker, or a partition the topic does not have) is a 400 at once: waiting could
//! never succeed. When the broker cannot be asked, the token is waited for as usual.
//!
//! The highest watermark seen per partition is cached, so requests for positions already applied
//! cost no extra query.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::MySqlPool;

use crate::db::{self, SinkSelector, ORDERS_TABLE};
use crate::error::{ApiError, OrderError};
use crate::publisher::{OrderPublisher, Position};

/// How long to wait for the broker when checking a token against the partition's end.
const END_OFFSET_TIMEOUT: Duration = Duration::from_secs(2);

/// Name of the request/response header.
pub const HEADER: &str = "x-consistency-token";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyToken {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl ConsistencyToken {
    pub fn new(topic: &str, position: Position) -> Self {
        ConsistencyToken {
            topic: topic.to_string(),
            partition: position.partition,
            offset: position.offset,
        }
    }

    /// Parses `topic:partition:offset` (the topic may itself not contain ':').
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.trim().rsplitn(3, ':');
        let offset = parts.next()?.parse::<i64>().ok().filter(|o| *o >= 0)?;
        let partition = parts.next()?.parse::<i32>().ok().filter(|p| *p >= 0)?;
        let topic = parts.next().filter(|t| !t.is_empty() && !t.contains(':'))?;
        Some(ConsistencyToken {
            topic: topic.to_string(),
            partition,
            offset,
        })
    }
}

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.topic, self.partition, self.offset)
    }
}

pub struct Consistency {
    topic: String,
    sink: SinkSelector,
    timeout: Duration,
    db_timeout: Duration,
    /// Highest `next_offset` seen per partition.
    seen: Highest,
    /// Highest end offset (high watermark) the broker reported per partition.
    ends: Highest,
}

/// The highest value seen per partition (both offsets only ever grow).
#[derive(Default)]
struct Highest(Mutex<HashMap<i32, i64>>);

impl Highest {
    fn get(&self, partition: i32) -> Option<i64> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&partition)
            .copied()
    }

    fn raise(&self, partition: i32, value: i64) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let e = all.entry(partition).or_insert(value);
        *e = (*e).max(value);
    }
}

impl Consistency {
    /// Tokens of `topic`, vouched for by `connector` if given, else by any sink connector that
    /// writes the topic into the orders table.
    pub fn new(
        topic: &str,
        connector: Option<&str>,
        timeout: Duration,
        db_timeout: Duration,
    ) -> Self {
        Consistency {
            topic: topic.to_string(),
            sink: match connector {
                Some(name) => SinkSelector::Connector(name.to_string()),
                None => SinkSelector::Table(ORDERS_TABLE.to_string()),
            },
            timeout,
            db_timeout,
            seen: Highest::default(),
            ends: Highest::default(),
        }
    }

    /// Refuses a token whose offset is at or past its partition's end on the broker (or whose
    /// partition does not exist): no acknowledged write is there, so none will ever be applied.
    async fn check_issued(
        &self,
        token: &ConsistencyToken,
        publisher: &OrderPublisher,
    ) -> Result<(), ApiError> {
        let known_end = self.ends.get(token.partition);
        if known_end.is_some_and(|end| token.offset < end) {
            return Ok(());
        }
        match publisher
            .end_offset(token.partition, END_OFFSET_TIMEOUT)
            .await
        {
            Ok(Some(end)) => {
                self.ends.raise(token.partition, end);
                if token.offset >= end {
                    return Err(ApiError::BadRequest(format!(
                        "invalid {HEADER} header: {token} names offset {} of partition {} of topic {}, which ends at offset {end}; no acknowledged order is there, so the token was not issued by this service for this topic",
                        token.offset, token.partition, token.topic
                    )));
                }
                Ok(())
            }
            Ok(None) => Err(ApiError::BadRequest(format!(
                "invalid {HEADER} header: topic {} has no partition {}",
                token.topic, token.partition
            ))),
            Err(e) => {
                // Cannot tell: wait for it as for any token (bounded by the timeout).
                tracing::debug!(error = %e, %token, "could not read the partition's end offset");
                Ok(())
            }
        }
    }

    /// Waits until the sink has applied the token's record (bounded by the timeout).
    pub async fn wait_for(
        &self,
        pool: &MySqlPool,
        publisher: &OrderPublisher,
        raw: &str,
    ) -> Result<(), ApiError> {
        let token = ConsistencyToken::parse(raw).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid {HEADER} header: expected <topic>:<partition>:<offset>, got {raw:?}"
            ))
        })?;
        if token.topic != self.topic {
            return Err(ApiError::BadRequest(format!(
                "invalid {HEADER} header: topic {:?} is not this service's topic {:?}",
                token.topic, self.topic
            )));
        }
        if self
            .seen
            .get(token.partition)
            .is_some_and(|n| n > token.offset)
        {
            return Ok(());
        }
        let deadline = Instant::now() + self.timeout;
        self.check_issued(&token, publisher).await?;
        let mut pause = Duration::from_millis(5);
        loop {
            let not_yet = || async {
                ApiError::Service(self.why_not(pool, &token).await.unwrap_or_else(|| {
                    OrderError::NotYetConsistent(format!(
                        "the write {token} is not in the database after {} ms; retry later",
                        self.timeout.as_millis()
                    ))
                }))
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let budget = self.db_timeout.min(left.max(Duration::from_millis(1)));
            let next = match db::with_timeout(
                budget,
                db::sink_next_offset(pool, &self.sink, &self.topic, token.partition),
            )
            .await
            {
                Ok(next) => next,
                // Cut short by the consistency deadline, not by the database's own timeout.
                Err(_) if budget < self.db_timeout && Instant::now() >= deadline => {
                    return Err(not_yet().await);
                }
                Err(e) => return Err(e),
            };
            if let Some(next) = next {
                self.seen.raise(token.partition, next);
                if next > token.offset {
                    return Ok(());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(not_yet().await);
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// At the deadline: `NoSink` if no connector that could vouch for `token` has recorded
    /// anything on the topic, `None` if one has (it is only behind) or the database cannot say.
    async fn why_not(&self, pool: &MySqlPool, token: &ConsistencyToken) -> Option<OrderError> {
        let sinks = match db::with_timeout::<_, OrderError>(
            self.db_timeout,
            db::sinks_of_topic(pool, &self.topic),
        )
        .await
        {
            Ok(sinks) => sinks,
            Err(e) => {
                tracing::debug!(error = %e, "could not list the topic's sink connectors");
                return None;
            }
        };
        no_sink(&self.sink, &self.topic, token, self.timeout, &sinks)
    }
}

/// Whether a table name as a sink records it (`orders`, `mydb.orders`, perhaps quoted) is
/// `table`.
fn names_table(recorded: &str, table: &str) -> bool {
    let unquoted = recorded.replace('`', "");
    let last = unquoted.rsplit('.').next().unwrap_or(&unquoted);
    last.eq_ignore_ascii_case(table)
}

/// The `NoSink` answer when none of `sinks` (every connector with progress on `topic`) can
/// vouch for tokens as `selector` asks.
fn no_sink(
    selector: &SinkSelector,
    topic: &str,
    token: &ConsistencyToken,
    timeout: Duration,
    sinks: &[db::SinkOfTopic],
) -> Option<OrderError> {
    let writes_orders = |s: &&db::SinkOfTopic| {
        s.table
            .as_deref()
            .is_some_and(|t| names_table(t, ORDERS_TABLE))
    };
    let candidates: Vec<&str> = sinks
        .iter()
        .filter(writes_orders)
        .map(|s| s.connector.as_str())
        .collect();
    let (looked_for, hint) = match selector {
        SinkSelector::Table(_) => {
            if !candidates.is_empty() {
                return None;
            }
            let hint = match sinks.first() {
                Some(other) => format!(
                    "connector {:?} reads topic {topic:?}{}; if it writes the orders, start this service with --consistency-connector={} (env CONSISTENCY_CONNECTOR)",
                    other.connector,
                    other.table.as_deref().map(|t| format!(" into table {t:?}")).unwrap_or_default(),
                    other.connector
                ),
                None => format!(
                    "create a JDBC sink connector with \"topics\": \"{topic}\" and \"table.name.format\": \"{ORDERS_TABLE}\" (docker/connectors/orders-sink.json), or start this service with --consistency-connector=<name> (env CONSISTENCY_CONNECTOR) naming the connector that writes the orders"
                ),
            };
            (
                format!("any sink connector writing topic {topic:?} into table {ORDERS_TABLE:?}"),
                hint,
            )
        }
        SinkSelector::Connector(name) => {
            if sinks.iter().any(|s| &s.connector == name) {
                return None;
            }
            let hint = match candidates.first() {
                Some(found) => format!(
                    "connector {found:?} writes topic {topic:?} into table {ORDERS_TABLE:?}: start this service with --consistency-connector={found} (env CONSISTENCY_CONNECTOR), or without it to accept any such connector"
                ),
                None => format!(
                    "check the connector's name and that it reads topic {topic:?}, or start this service without --consistency-connector to accept any sink connector writing table {ORDERS_TABLE:?}"
                ),
            };
            (
                format!("sink connector {name:?} (--consistency-connector)"),
                hint,
            )
        }
    };
    let message = format!(
        "the write {token} cannot be confirmed: no {looked_for} has recorded progress in datasync_sink_offsets after {} ms; {hint}",
        timeout.as_millis()
    );
    let details = serde_json::json!({
        "looked_for": {
            "topic": topic,
            "table": ORDERS_TABLE,
            "connector": match selector {
                SinkSelector::Connector(name) => Some(name.as_str()),
                SinkSelector::Table(_) => None,
            },
        },
        "connectors_reading_topic": sinks
            .iter()
            .map(|s| serde_json::json!({"name": s.connector, "table": s.table}))
            .collect::<Vec<_>>(),
        "hint": hint,
    });
    Some(OrderError::NoSink { message, details })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(connector: &str, table: Option<&str>) -> db::SinkOfTopic {
        db::SinkOfTopic {
            connector: connector.into(),
            table: table.map(Into::into),
        }
    }

    fn details(e: Option<OrderError>) -> serde_json::Value {
        match e {
            Some(OrderError::NoSink { details, .. }) => details,
            other => panic!("expected NoSink, got {other:?}"),
        }
    }

    #[test]
    fn any_sink_of_the_orders_table_vouches_whatever_its_name() {
        let token = ConsistencyToken::parse("orders:0:7").unwrap();
        let any = SinkSelector::Table(ORDERS_TABLE.into());
        let t = Duration::from_millis(100);
        for table in ["orders", "mydb.orders", "`mydb`.`orders`", "ORDERS"] {
            let sinks = [sink("whatever-it-is-called", Some(table))];
            assert!(
                no_sink(&any, "orders", &token, t, &sinks).is_none(),
                "{table}"
            );
        }
        // Nothing at all: say so, and how to make one.
        let d = details(no_sink(&any, "orders", &token, t, &[]));
        assert_eq!(d["looked_for"]["table"], "orders");
        assert!(d["looked_for"]["connector"].is_null());
        assert!(d["hint"].as_str().unwrap().contains("table.name.format"));
        // Only a sink of another table (or one recorded before the column existed): name it.
        for other in [
            sink("audit", Some("orders_audit")),
            sink("old-worker", None),
        ] {
            let d = details(no_sink(
                &any,
                "orders",
                &token,
                t,
                std::slice::from_ref(&other),
            ));
            let hint = d["hint"].as_str().unwrap();
            assert!(
                hint.contains(&format!("--consistency-connector={}", other.connector)),
                "{hint}"
            );
            assert_eq!(
                d["connectors_reading_topic"][0]["name"],
                other.connector.as_str()
            );
        }
    }

    #[test]
    fn a_named_connector_must_be_the_one_that_recorded_progress() {
        let token = ConsistencyToken::parse("orders:0:7").unwrap();
        let named = SinkSelector::Connector("orders-sink".into());
        let t = Duration::from_millis(100);
        // Behind, but there: a plain timeout, whatever table it records.
        assert!(no_sink(&named, "orders", &token, t, &[sink("orders-sink", None)]).is_none());
        let d = details(no_sink(
            &named,
            "orders",
            &token,
            t,
            &[
                sink("audit", Some("audit")),
                sink("renamed", Some("orders")),
            ],
        ));
        assert_eq!(d["looked_for"]["connector"], "orders-sink");
        let hint = d["hint"].as_str().unwrap();
        assert!(hint.contains("--consistency-connector=renamed"), "{hint}");
        let d = details(no_sink(&named, "orders", &token, t, &[]));
        assert!(d["hint"]
            .as_str()
            .unwrap()
            .contains("without --consistency-connector"));
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_rejected() {
        let t = ConsistencyToken::new(
            "orders",
            Position {
                partition: 2,
                offset: 41,
            },
        );
        assert_eq!(t.to_string(), "orders:2:41");
        assert_eq!(ConsistencyToken::parse("orders:2:41"), Some(t));
        for bad in [
            "",
            "orders",
            "orders:1",
            ":1:2",
            "orders:-1:2",
            "orders:1:x",
            "a:b:1:2",
        ] {
            assert_eq!(ConsistencyToken::parse(bad), None, "{bad}");
        }
    }
}
