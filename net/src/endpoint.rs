//! QUIC endpoint settings shared by both ends: the ALPN name, and the transport tuned so a vanished
//! peer is noticed within seconds (quinn's default idle timeout is 30 s and it sends no keep-alives).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

use crate::error::{NetError, Result};
use crate::tls::{Identity, Trust};

/// The ALPN protocol name of the parameter server.
pub const ALPN: &[u8] = b"distk-ps/3";
/// A connection with no packet for this long is dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Keep-alive interval (both ends).
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    // 5 s fits quinn's VarInt range.
    if let Ok(idle) = IDLE_TIMEOUT.try_into() {
        t.max_idle_timeout(Some(idle));
    }
    t.keep_alive_interval(Some(KEEP_ALIVE));
    // Large commits: let a stream and the connection carry 64 MiB in flight.
    t.stream_receive_window(quinn::VarInt::from_u32(64 << 20));
    t.receive_window(quinn::VarInt::from_u32(128 << 20));
    t.send_window(128 << 20);
    Arc::new(t)
}

/// Random 8-byte connection ids. quinn's default signs its ids with a key of its own process and
/// drops packets whose ids fail the check; these are not signed, so a restarted server takes its
/// predecessor's ids as possibly its own and answers them with (rate-limited) stateless resets.
struct RandomCids;

impl quinn::ConnectionIdGenerator for RandomCids {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        use ring::rand::SecureRandom;
        static FALLBACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut b = [0u8; 8];
        if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
            // Never seen; still unique within the process.
            b = FALLBACK.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_le_bytes();
        }
        quinn::ConnectionId::new(&b)
    }
    fn cid_len(&self) -> usize {
        8
    }
    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// A server endpoint bound to `addr` presenting `identity`.
///
/// Its stateless-reset key derives from the identity's private key, so a server restarted with the
/// same identity (`ps --resume`) answers packets of connections its predecessor held with resets
/// the workers accept: they notice at once, instead of after the idle timeout, and reconnect.
pub fn server_endpoint(addr: SocketAddr, identity: &Identity) -> Result<quinn::Endpoint> {
    let tls = identity.server_config(&[ALPN])?;
    let quic = QuicServerConfig::try_from(tls).map_err(|e| NetError::Tls(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(transport());
    let secret = identity.reset_secret();
    let reset = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let mut endpoint_cfg = quinn::EndpointConfig::new(Arc::new(reset));
    endpoint_cfg.cid_generator(|| Box::new(RandomCids));
    let listen =
        |e: std::io::Error| NetError::Connection(format!("cannot listen on {addr}: {e} (is the port in use?)"));
    let socket = std::net::UdpSocket::bind(addr).map_err(listen)?;
    let runtime =
        quinn::default_runtime().ok_or_else(|| NetError::Connection("no async runtime to serve QUIC on".into()))?;
    quinn::Endpoint::new(endpoint_cfg, Some(cfg), socket, runtime).map_err(listen)
}

/// A client endpoint for servers at addresses like `addr`, trusting them per `trust`.
pub fn client_endpoint(addr: SocketAddr, trust: &Trust) -> Result<quinn::Endpoint> {
    let tls = trust.client_config(&[ALPN])?;
    let mut cfg =
        quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).map_err(|e| NetError::Tls(e.to_string()))?));
    cfg.transport_config(transport());
    let bind: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let mut endpoint =
        quinn::Endpoint::client(bind).map_err(|e| NetError::Connection(format!("client endpoint: {e}")))?;
    endpoint.set_default_client_config(cfg);
    Ok(endpoint)
}
