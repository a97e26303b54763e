//! The QUIC shell around [`ServerCore`]: TLS 1.3 (rustls, ring) with a self-signed certificate whose
//! SHA-256 the workers pin, authentication by a shared secret (compared in constant time) on the
//! first stream, then one bidirectional stream per request (commit or pull), each a [`wire`] frame.
//! A malformed or oversized frame closes that connection; the server keeps serving the others.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rkyv::util::AlignedVec;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use subtle::ConstantTimeEq;

use crate::error::{NetError, Result};
use crate::server::ServerCore;
use crate::wire::{self, ALIGN, Header, Kind, VERSION};

/// The server's certificate and key, and the certificate's SHA-256 that workers pin.
pub struct Identity {
    /// DER certificate.
    pub cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    /// SHA-256 of the DER certificate.
    pub sha256: [u8; 32],
}

/// Lower-case hex of a fingerprint.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Identity {
    /// A fresh self-signed certificate for `localhost` and the given names.
    pub fn self_signed(names: &[&str]) -> Result<Self> {
        let mut all = vec!["localhost".to_string()];
        all.extend(names.iter().map(|s| s.to_string()));
        let ck =
            rcgen::generate_simple_self_signed(all).map_err(|e| NetError::Protocol(format!("certificate: {e}")))?;
        let cert = ck.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der());
        let sha256 = sha256(&cert);
        Ok(Identity { cert, key, sha256 })
    }
}

/// The secrets file: a JSON list of `{"secret": .., "identity": ..}`.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct SecretEntry {
    /// The bearer secret.
    pub secret: String,
    /// Who holds it.
    pub identity: String,
}

/// Known secrets.
#[derive(Clone, Debug, Default)]
pub struct Secrets(pub Vec<SecretEntry>);

impl Secrets {
    /// Parses a secrets file's text.
    pub fn from_json(text: &str) -> Result<Self> {
        let v: Vec<SecretEntry> =
            serde_json::from_str(text).map_err(|e| NetError::Protocol(format!("secrets file: {e}")))?;
        Ok(Secrets(v))
    }

    /// The identity holding `secret`, compared in constant time against every entry.
    pub fn identify(&self, secret: &[u8]) -> Option<&str> {
        let mut found = None;
        for e in &self.0 {
            if bool::from(e.secret.as_bytes().ct_eq(secret)) {
                found = Some(e.identity.as_str());
            }
        }
        found
    }
}

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(Some(Duration::from_secs(5).try_into().expect("5 s is a valid idle timeout")));
    t.keep_alive_interval(Some(Duration::from_secs(1)));
    Arc::new(t)
}

/// A server endpoint bound to `addr` with `identity`.
pub fn server_endpoint(addr: SocketAddr, identity: &Identity) -> Result<quinn::Endpoint> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Protocol(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.clone()], PrivateKeyDer::Pkcs8(identity.key.clone_key()))
        .map_err(|e| NetError::Protocol(e.to_string()))?;
    let quic = QuicServerConfig::try_from(tls).map_err(|e| NetError::Protocol(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(transport());
    quinn::Endpoint::server(cfg, addr).map_err(|e| NetError::Protocol(format!("cannot listen on {addr}: {e}")))
}

/// Accepts only the server certificate whose SHA-256 is pinned (TLS 1.3 signatures still verified).
#[derive(Debug)]
struct Pinned {
    sha256: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if bool::from(sha256(end_entity).ct_eq(&self.sha256)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("the server certificate's SHA-256 does not match the pinned one".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Application close codes.
pub mod close {
    /// The secret was not accepted.
    pub const BAD_SECRET: u32 = 1;
    /// A frame was malformed, oversized or out of protocol.
    pub const BAD_FRAME: u32 = 2;
}

async fn read_frame(recv: &mut quinn::RecvStream, max: usize) -> Result<AlignedVec<ALIGN>> {
    let bytes = recv.read_to_end(max).await.map_err(|e| match e {
        quinn::ReadToEndError::TooLong => NetError::TooLarge { got: max + 1, limit: max },
        e => NetError::Protocol(format!("reading a frame: {e}")),
    })?;
    let mut buf = AlignedVec::<ALIGN>::with_capacity(bytes.len());
    buf.extend_from_slice(&bytes);
    Ok(buf)
}

/// Serves `core` on `endpoint` until the endpoint closes. `max_frame` bounds every frame.
pub async fn serve(endpoint: quinn::Endpoint, core: Arc<Mutex<ServerCore>>, secrets: Arc<Secrets>, max_frame: usize) {
    while let Some(incoming) = endpoint.accept().await {
        let (core, secrets) = (core.clone(), secrets.clone());
        tokio::spawn(async move {
            if let Ok(conn) = incoming.await {
                let _ = handle(conn, core, secrets, max_frame).await;
            }
        });
    }
}

async fn handle(
    conn: quinn::Connection,
    core: Arc<Mutex<ServerCore>>,
    secrets: Arc<Secrets>,
    max_frame: usize,
) -> Result<()> {
    // Hello: the secret and the worker id.
    let (mut send, mut recv) = conn.accept_bi().await.map_err(|e| NetError::Protocol(e.to_string()))?;
    let hello = recv.read_to_end(4096).await.map_err(|e| NetError::Protocol(e.to_string()))?;
    if hello.len() < 4 || secrets.identify(&hello[4..]).is_none() {
        conn.close(close::BAD_SECRET.into(), b"the secret was not accepted");
        return Err(NetError::Protocol("bad secret".into()));
    }
    let worker = u32::from_le_bytes([hello[0], hello[1], hello[2], hello[3]]);
    send.write_all(&[1]).await.map_err(|e| NetError::Protocol(e.to_string()))?;
    let _ = send.finish();
    loop {
        let (mut send, mut recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => return Ok(()),
        };
        let reply = match read_frame(&mut recv, max_frame).await.and_then(|buf| respond(&core, worker, &buf, max_frame))
        {
            Ok(r) => r,
            Err(e) => {
                conn.close(close::BAD_FRAME.into(), e.to_string().as_bytes());
                return Err(e);
            }
        };
        send.write_all(&reply).await.map_err(|e| NetError::Protocol(e.to_string()))?;
        let _ = send.finish();
    }
}

fn respond(core: &Mutex<ServerCore>, worker: u32, buf: &AlignedVec<ALIGN>, max_frame: usize) -> Result<Vec<u8>> {
    let f = wire::decode(buf, max_frame)?;
    if f.header.worker != worker {
        return Err(NetError::Protocol(format!("worker {worker} sent a frame as worker {}", f.header.worker)));
    }
    let mut core = core.lock().map_err(|_| NetError::Protocol("server state poisoned".into()))?;
    match f.header.kind {
        Kind::Commit => {
            // Applied before the acknowledgement is sent.
            let o = core.commit(worker, f.header.seq, f.payload)?;
            let h =
                Header { version: VERSION, kind: Kind::Ack, worker, seq: f.header.seq, clock: o.clock, payload_len: 0 };
            wire::encode(&h, &[])
        }
        Kind::Pull => {
            let (clock, centre) = core.pull(worker);
            let h = Header {
                version: VERSION,
                kind: Kind::Centre,
                worker,
                seq: 0,
                clock,
                payload_len: centre.len() as u64,
            };
            wire::encode(&h, centre)
        }
        other => Err(NetError::Protocol(format!("unexpected {other:?} frame from a worker"))),
    }
}

/// A worker's connection to the parameter server.
pub struct PsClient {
    conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
    worker: u32,
    max_frame: usize,
}

fn net<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> NetError + '_ {
    move |e| NetError::Protocol(format!("{what}: {e}"))
}

impl PsClient {
    /// Connects to `addr`, pinning the server certificate's SHA-256, and authenticates with `secret`.
    pub async fn connect(addr: SocketAddr, pin: [u8; 32], secret: &str, worker: u32, max_frame: usize) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(net("tls"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { sha256: pin, provider }))
            .with_no_client_auth();
        let mut cfg = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).map_err(net("quic"))?));
        cfg.transport_config(transport());
        let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().map_err(net("bind"))?;
        let mut endpoint = quinn::Endpoint::client(bind).map_err(net("client endpoint"))?;
        endpoint.set_default_client_config(cfg);
        let conn = endpoint
            .connect(addr, "localhost")
            .map_err(net("connect"))?
            .await
            .map_err(net(&format!("connecting to {addr}")))?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(net("hello"))?;
        let mut hello = worker.to_le_bytes().to_vec();
        hello.extend_from_slice(secret.as_bytes());
        send.write_all(&hello).await.map_err(net("hello"))?;
        let _ = send.finish();
        match recv.read_to_end(16).await {
            Ok(r) if r == [1] => Ok(PsClient { conn, _endpoint: endpoint, worker, max_frame }),
            _ => Err(NetError::Protocol(format!(
                "the parameter server at {addr} refused the secret ({})",
                conn.close_reason().map_or("no reason given".to_string(), |r| r.to_string())
            ))),
        }
    }

    async fn request(&self, frame: Vec<u8>) -> Result<AlignedVec<ALIGN>> {
        let (mut send, mut recv) = self.conn.open_bi().await.map_err(net("request"))?;
        send.write_all(&frame).await.map_err(net("request"))?;
        let _ = send.finish();
        read_frame(&mut recv, self.max_frame).await
    }

    /// Commits `payload` with sequence number `seq`; returns the server clock once it is applied.
    pub async fn commit(&self, seq: u64, clock: u64, payload: &[f32]) -> Result<u64> {
        let h = Header {
            version: VERSION,
            kind: Kind::Commit,
            worker: self.worker,
            seq,
            clock,
            payload_len: payload.len() as u64,
        };
        let buf = self.request(wire::encode(&h, payload)?).await?;
        let f = wire::decode(&buf, self.max_frame)?;
        match f.header.kind {
            Kind::Ack if f.header.seq == seq => Ok(f.header.clock),
            k => Err(NetError::Protocol(format!("expected the acknowledgement of commit {seq}, got {k:?}"))),
        }
    }

    /// Pulls the centre into `out`; returns the server clock.
    pub async fn pull(&self, out: &mut Vec<f32>) -> Result<u64> {
        let h = Header { version: VERSION, kind: Kind::Pull, worker: self.worker, seq: 0, clock: 0, payload_len: 0 };
        let buf = self.request(wire::encode(&h, &[])?).await?;
        let f = wire::decode(&buf, self.max_frame)?;
        if f.header.kind != Kind::Centre {
            return Err(NetError::Protocol(format!("expected the centre, got {:?}", f.header.kind)));
        }
        out.clear();
        out.extend_from_slice(f.payload);
        Ok(f.header.clock)
    }

    /// Sends raw bytes as one request (tests of malformed input).
    pub async fn send_raw(&self, bytes: Vec<u8>) -> Result<AlignedVec<ALIGN>> {
        self.request(bytes).await
    }
}
