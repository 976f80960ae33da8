//! Fetching a user's orders from the order-service instances the registry says are live,
//! round-robin. An instance that fails or times out is skipped for the next one; when none
//! answers the caller gets `None` (and shows an empty list with a warning).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use discovery::Registry;
use serde_json::Value;

pub struct OrdersClient {
    registry: Registry,
    http: reqwest::Client,
    next: AtomicUsize,
}

impl OrdersClient {
    pub fn new(registry: Registry, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .unwrap_or_default();
        OrdersClient {
            registry,
            http,
            next: AtomicUsize::new(0),
        }
    }

    /// The user's orders from the first live instance that answers, if any.
    pub async fn orders_of(&self, user_id: &str) -> Option<Vec<Value>> {
        let live = self.registry.live("order-service");
        if live.is_empty() {
            tracing::warn!("no live order-service instance in the registry");
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..live.len() {
            let instance = &live[(start + i) % live.len()];
            let url = format!("{}/order-service/{user_id}/orders", instance.url);
            let answer = async {
                let r = self.http.get(&url).send().await?.error_for_status()?;
                r.json::<Vec<Value>>().await
            }
            .await;
            match answer {
                Ok(orders) => return Some(orders),
                Err(e) => {
                    tracing::warn!(instance = %instance.id, %url, error = %e, "order-service instance failed; trying the next")
                }
            }
        }
        tracing::warn!(user_id, "no order-service instance answered");
        None
    }
}
