//! How many connections the job server holds at once: in all, and from one address. A connection
//! past either limit is closed at once, before its TLS handshake, so that idle or slow clients from
//! a few addresses cannot take the server's file descriptors or memory from everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The limits and the connections held now.
pub struct ConnectionLimits {
    max_total: usize,
    max_per_address: usize,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
    refused: u64,
}

/// Why a connection was closed unserved.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The server holds its most connections.
    Total(usize),
    /// The address holds its most connections.
    PerAddress(usize),
}

/// One admitted connection: released when dropped.
pub struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    address: IpAddr,
}

impl ConnectionLimits {
    /// At most `max_total` connections, `max_per_address` of them from one address.
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(ConnectionLimits { max_total, max_per_address, held: Mutex::new(Held::default()) })
    }

    /// Admits a connection from `address`, or says which limit it meets.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let from_address = held.by_address.get(&address).copied().unwrap_or(0);
        let refusal = if held.total >= self.max_total {
            Some(Refusal::Total(self.max_total))
        } else if from_address >= self.max_per_address {
            Some(Refusal::PerAddress(self.max_per_address))
        } else {
            None
        };
        if let Some(r) = refusal {
            held.refused += 1;
            return Err(r);
        }
        held.total += 1;
        held.by_address.insert(address, from_address + 1);
        Ok(ConnectionPermit { limits: self.clone(), address })
    }

    /// Connections held now, and refused since the start.
    pub fn counts(&self) -> (usize, u64) {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        (held.total, held.refused)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut held = self.limits.held.lock().unwrap_or_else(|p| p.into_inner());
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                held.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_limited_in_all_and_per_address_and_released_when_dropped() {
        let limits = ConnectionLimits::new(3, 2);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap());
        let a1 = limits.admit(a).unwrap();
        let _a2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).err(), Some(Refusal::PerAddress(2)));
        let _b1 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(c).err(), Some(Refusal::Total(3)));
        drop(a1);
        let _c1 = limits.admit(c).unwrap();
        assert_eq!(limits.counts(), (3, 2));
    }
}
