//! Caps on open event streams, in all and per client address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ConnectInfo;
use axum::http::Extensions;

use super::errors::ApiError;

/// Default [`KvRouter::max_event_streams`](super::KvRouter::max_event_streams).
pub const DEFAULT_MAX_EVENT_STREAMS: usize = 512;
/// Default [`KvRouter::max_event_streams_per_client`](super::KvRouter::max_event_streams_per_client).
pub const DEFAULT_MAX_EVENT_STREAMS_PER_CLIENT: usize = 16;

/// Who a stream is counted against: an IPv4 address, or an IPv6 address's
/// /64 prefix (one host usually holds a whole /64, so counting single
/// IPv6 addresses would not cap anyone).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Client {
    V4(u32),
    V6Prefix(u64),
}

impl Client {
    fn of(addr: IpAddr) -> Client {
        match addr {
            IpAddr::V4(v4) => Client::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(u32::from(v4)),
                None => Client::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }

    /// The client of a request: from axum's `ConnectInfo<SocketAddr>`,
    /// which [`Server`](super::Server) always adds.
    fn of_request(extensions: &Extensions) -> Option<Client> {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| Client::of(addr.ip()))
    }
}

/// The open streams of one router, and its caps.
pub(crate) struct StreamCaps {
    table: &'static str,
    max_total: usize,
    max_per_client: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_client: HashMap<Client, usize>,
}

impl StreamCaps {
    pub(crate) fn new(table: &'static str, max_total: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(StreamCaps {
            table,
            max_total,
            max_per_client,
            open: Mutex::new(Open::default()),
        })
    }

    /// A slot for one more stream of this request's client, or 429
    /// `TOO_MANY_STREAMS` when the client or the router is at its cap. A
    /// request without a client address counts against the total only.
    pub(crate) fn open(self: &Arc<Self>, extensions: &Extensions) -> Result<StreamSlot, ApiError> {
        let client = Client::of_request(extensions);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max_total {
            return Err(ApiError::too_many_streams("total", self.max_total));
        }
        if let Some(client) = client {
            let count = open.per_client.entry(client).or_insert(0);
            if *count >= self.max_per_client {
                return Err(ApiError::too_many_streams("client", self.max_per_client));
            }
            *count += 1;
        }
        open.total += 1;
        crate::telemetry::event_streams(self.table, open.total);
        Ok(StreamSlot {
            caps: self.clone(),
            client,
        })
    }

    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        (open.total, open.per_client.len())
    }
}

/// One open stream; dropping it (the stream ended, or its client went
/// away) frees the slot.
pub(crate) struct StreamSlot {
    caps: Arc<StreamCaps>,
    client: Option<Client>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .caps
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        crate::telemetry::event_streams(self.caps.table, open.total);
        if let Some(client) = self.client {
            if let Some(count) = open.per_client.get_mut(&client) {
                *count -= 1;
                if *count == 0 {
                    open.per_client.remove(&client);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(addr: &str) -> Extensions {
        let mut e = Extensions::new();
        let addr: SocketAddr = addr.parse().unwrap_or_else(|_| panic!("{addr}"));
        e.insert(ConnectInfo(addr));
        e
    }

    #[test]
    fn caps_per_client_and_in_all_and_frees_on_drop() {
        let caps = StreamCaps::new("t", 3, 2);
        let a = from("10.0.0.1:1000");
        let a1 = caps.open(&a).ok();
        let a2 = caps.open(&from("10.0.0.1:2000")).ok();
        assert!(a1.is_some() && a2.is_some());
        let refused = caps.open(&a).err().map(|e| e.code().to_owned());
        assert_eq!(refused.as_deref(), Some("TOO_MANY_STREAMS"));
        let b1 = caps.open(&from("10.0.0.2:1")).ok();
        assert!(b1.is_some());
        // The total is reached: another client is refused too, and so is
        // a request without an address.
        assert!(caps.open(&from("10.0.0.3:1")).is_err());
        assert!(caps.open(&Extensions::new()).is_err());
        drop(a1);
        assert!(caps.open(&a).is_ok(), "a freed slot is reused");
        drop((a2, b1));
        assert_eq!(caps.counts(), (0, 0), "every slot was freed");
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        let caps = StreamCaps::new("t", 100, 1);
        let first = caps.open(&from("[2001:db8:1:2::1]:1")).ok();
        assert!(first.is_some());
        assert!(caps.open(&from("[2001:db8:1:2:ffff::9]:1")).is_err());
        assert!(caps.open(&from("[2001:db8:1:3::1]:1")).is_ok());
        // IPv4-mapped addresses count as the IPv4 address.
        let v4 = caps.open(&from("192.0.2.1:1")).ok();
        assert!(v4.is_some());
        assert!(caps.open(&from("[::ffff:192.0.2.1]:1")).is_err());
    }
}
