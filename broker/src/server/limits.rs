//! Broker-wide connection limits: how many connections are open (in total and per client IP)
//! and how many bytes of requests are being read or served at once.
//!
//! The request-byte budget is Kafka's `queued.max.request.bytes` memory pool: a connection
//! reserves a frame's length before reading its body and keeps the reservation until the answer
//! is ready, so the requests in the broker never hold more than the budget, however many
//! clients send large or unfinished frames. Kafka's default is unbounded; ours is 128 MiB (see
//! [`crate::config::DEFAULT_QUEUED_MAX_REQUEST_BYTES`]), always at least one maximal frame, so a
//! legal request can always be read.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::config::Config;

/// Why a new connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} connections are open, the max.connections limit")]
    Total(u32),
    #[error("{count} connections from {ip} are open, the max.connections.per.ip limit")]
    PerIp { ip: IpAddr, count: u32 },
}

#[derive(Default)]
struct Open {
    total: u32,
    per_ip: HashMap<IpAddr, u32>,
}

/// Connection counts and the request-byte budget, shared by all listeners.
pub struct Limits {
    max_connections: u32,
    max_per_ip: u32,
    open: Mutex<Open>,
    refused: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
    budget: Option<Arc<Semaphore>>,
}

impl Limits {
    pub fn new(config: &Config) -> Arc<Self> {
        let budget = config
            .request_byte_budget()
            .map(|bytes| Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))));
        Arc::new(Limits {
            max_connections: config.max_connections,
            max_per_ip: config.max_connections_per_ip,
            open: Mutex::new(Open::default()),
            refused: AtomicU64::new(0),
            last_warning: Mutex::new(None),
            budget,
        })
    }

    /// Takes a connection slot for a client at `ip`, released when the [`Slot`] is dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let mut open = self.open.lock();
        if open.total >= self.max_connections {
            return Err(Refused::Total(open.total));
        }
        let count = open.per_ip.get(&ip).copied().unwrap_or(0);
        if count >= self.max_per_ip {
            return Err(Refused::PerIp { ip, count });
        }
        open.total += 1;
        open.per_ip.insert(ip, count + 1);
        Ok(Slot {
            limits: self.clone(),
            ip,
        })
    }

    /// Counts a refused connection and logs it (at most one warning a second, with the count,
    /// so a flood of refusals does not flood the log).
    pub fn note_refused(&self, peer: SocketAddr, why: &Refused) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_warning.lock();
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            *last = Some(now);
            tracing::warn!(%peer, refused_so_far = refused, "refusing connection: {why}");
        } else {
            tracing::debug!(%peer, refused_so_far = refused, "refusing connection: {why}");
        }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> u32 {
        self.open.lock().total
    }

    /// Connections refused since start.
    pub fn refused_connections(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The request-byte budget, `None` when unlimited.
    pub(crate) fn budget(&self) -> Option<&Arc<Semaphore>> {
        self.budget.as_ref()
    }
}

/// One open connection's place in the counts.
pub struct Slot {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_ip_and_in_total_and_frees_slots() {
        let mut config = Config::for_data_dir("/tmp/unused");
        config.max_connections = 3;
        config.max_connections_per_ip = 2;
        let limits = Limits::new(&config);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limits.admit(a).unwrap();
        let _a2 = limits.admit(a).unwrap();
        assert_eq!(
            limits.admit(a).err(),
            Some(Refused::PerIp { ip: a, count: 2 })
        );
        let _b1 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).err(), Some(Refused::Total(3)));
        drop(a1);
        assert_eq!(limits.open_connections(), 2);
        let _a3 = limits.admit(a).unwrap();
    }

    #[test]
    fn the_budget_always_fits_one_maximal_frame() {
        let mut config = Config::for_data_dir("/tmp/unused");
        config.max_request_bytes = 1000;
        config.queued_max_request_bytes = 10;
        assert_eq!(config.request_byte_budget(), Some(1000));
        config.queued_max_request_bytes = -1;
        assert_eq!(config.request_byte_budget(), None);
        assert!(Limits::new(&config).budget().is_none());
    }
}
