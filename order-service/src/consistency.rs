//! Read-your-writes across instances.
//!
//! A 201 carries `X-Consistency-Token: <topic>:<partition>:<offset>`, the position of the
//! acknowledged record. The connect worker's sink records in `datasync_sink_offsets`, in the same
//! transaction as the rows, the next offset it will apply per partition; only the row of the
//! connector that writes the `orders` table counts (`--consistency-connector`), so another sink
//! reading the same topic, or a stale row of a renamed connector, cannot vouch for it. A GET
//! that sends the token back polls that table (5 ms, doubling to 100 ms) until
//! `next_offset > offset`, then reads. If that does not happen within `--consistency-timeout-ms`
//! the GET fails with 503 and `X-Consistency-Status: timeout` rather than silently returning
//! stale data, as a Kafka user would expect; the client may retry with the same token.
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

use crate::db;
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
    connector: String,
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
    pub fn new(topic: &str, connector: &str, timeout: Duration, db_timeout: Duration) -> Self {
        Consistency {
            topic: topic.to_string(),
            connector: connector.to_string(),
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
            let not_yet = || {
                ApiError::Service(OrderError::NotYetConsistent(format!(
                    "the write {token} is not in the database after {} ms; retry later",
                    self.timeout.as_millis()
                )))
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let budget = self.db_timeout.min(left.max(Duration::from_millis(1)));
            let next = match db::with_timeout(
                budget,
                db::sink_next_offset(pool, &self.connector, &self.topic, token.partition),
            )
            .await
            {
                Ok(next) => next,
                // Cut short by the consistency deadline, not by the database's own timeout.
                Err(_) if budget < self.db_timeout && Instant::now() >= deadline => {
                    return Err(not_yet());
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
                return Err(not_yet());
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
