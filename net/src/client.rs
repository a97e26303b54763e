//! A worker's connection to the parameter server: TLS 1.3 trusting the server by pin or CA, the
//! secret in the first frame, then one bidirectional stream per request. Every request has a
//! timeout; a lost connection is a [`NetError::Connection`] (retry after reconnecting), a refusal a
//! [`NetError::Refused`] (do not retry), a request the server could not log a
//! [`NetError::Rejected`]. [`join`] makes the first connection, retrying with backoff within a
//! deadline.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rkyv::util::AlignedVec;

use crate::close;
use crate::endpoint::client_endpoint;
use crate::error::{NetError, Result};
use crate::tls::Trust;
use crate::wire::{self, ALIGN, Header, Kind};

/// The largest piece of a history report in one frame.
pub const REPORT_CHUNK: usize = 256 << 10;

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The server's address.
    pub addr: SocketAddr,
    /// The name the certificate must carry (checked with a CA; ignored when pinned).
    pub server_name: String,
    /// How the server is trusted.
    pub trust: Trust,
    /// The secret.
    pub secret: String,
    /// The worker id to ask for ([`wire::ANY_WORKER`]: the server picks).
    pub worker: u32,
    /// Largest frame accepted.
    pub max_frame: usize,
    /// How long a request may take (an averaging pull waits for the round: see `pull_timeout`).
    pub request_timeout: Duration,
    /// How long a pull may wait (averaging rounds wait for the slowest worker).
    pub pull_timeout: Duration,
    /// This worker process's random incarnation number (the same for all its connections).
    pub incarnation: u64,
}

/// A random incarnation number for a worker process.
pub fn new_incarnation() -> Result<u64> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| NetError::Protocol("the operating system's random source failed".into()))?;
    Ok(u64::from_le_bytes(b).max(1))
}

/// What the server says of an applied commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The clock after the commit.
    pub clock: u64,
    /// Commits by anyone between this worker's pull and this commit.
    pub staleness: u64,
}

/// An authenticated connection.
pub struct PsClient {
    conn: quinn::Connection,
    endpoint: quinn::Endpoint,
    /// The worker id the server admitted.
    pub worker: u32,
    /// The sequence number of the last commit the server applied under this id when it admitted
    /// us (a new process numbers its commits after it).
    pub last_seq: u64,
    opts: ConnectOptions,
}

fn lost(what: &str, conn: &quinn::Connection, e: impl std::fmt::Display) -> NetError {
    match conn.close_reason() {
        Some(quinn::ConnectionError::ApplicationClosed(c))
            if c.error_code == close::BAD_SECRET.into() || c.error_code == close::REFUSED.into() =>
        {
            NetError::Refused(format!("the parameter server refused us: {}", String::from_utf8_lossy(&c.reason)))
        }
        Some(quinn::ConnectionError::ApplicationClosed(c)) if c.error_code == close::IN_USE.into() => {
            NetError::InUse(format!("the parameter server refused us: {}", String::from_utf8_lossy(&c.reason)))
        }
        Some(quinn::ConnectionError::ApplicationClosed(c)) if c.error_code == close::SUPERSEDED.into() => {
            NetError::Refused(format!(
                "the parameter server closed this connection: {}",
                String::from_utf8_lossy(&c.reason)
            ))
        }
        Some(quinn::ConnectionError::ApplicationClosed(c)) if c.error_code == close::BAD_FRAME.into() => {
            NetError::Protocol(format!(
                "the parameter server closed the connection: {}",
                String::from_utf8_lossy(&c.reason)
            ))
        }
        _ => NetError::Connection(format!("{what}: {e}")),
    }
}

impl PsClient {
    /// Connects, authenticates and is admitted (`rejoin`: this process was admitted before and
    /// reconnects).
    pub async fn connect(opts: ConnectOptions, rejoin: bool) -> Result<Self> {
        let handshake = opts.request_timeout;
        Self::connect_within(opts, rejoin, handshake).await
    }

    /// [`PsClient::connect`] giving the QUIC handshake at most `handshake` (a retry loop starts a
    /// fresh handshake rather than wait on one sent while the server was down).
    pub async fn connect_within(opts: ConnectOptions, rejoin: bool, handshake: Duration) -> Result<Self> {
        let endpoint = client_endpoint(opts.addr, &opts.trust)?;
        let connecting = endpoint
            .connect(opts.addr, &opts.server_name)
            .map_err(|e| NetError::Connection(format!("connecting to {}: {e}", opts.addr)))?;
        let conn = tokio::time::timeout(handshake, connecting)
            .await
            .map_err(|_| NetError::Connection(format!("no answer from {} within {handshake:?}", opts.addr)))?
            .map_err(|e| match e {
                quinn::ConnectionError::TransportError(t) if t.to_string().contains("certificate") => {
                    NetError::Tls(format!("the server at {} is not the one we trust: {t}", opts.addr))
                }
                e => NetError::Connection(format!("connecting to {}: {e}", opts.addr)),
            })?;
        let mut c = PsClient { conn, endpoint, worker: opts.worker, last_seq: 0, opts };
        let h = Header {
            incarnation: c.opts.incarnation,
            round: if rejoin { wire::REJOIN } else { 0 },
            ..Header::new(Kind::Hello, c.opts.worker)
        };
        let hello = wire::encode_bytes(&h, c.opts.secret.as_bytes())?;
        let buf = c.request(hello, c.opts.request_timeout).await?;
        let f = wire::decode(&buf, c.opts.max_frame)?;
        if f.header.kind == Kind::Error {
            return Err(NetError::Rejected(format!(
                "the parameter server could not admit us: {}",
                String::from_utf8_lossy(f.payload)
            )));
        }
        if f.header.kind != Kind::Welcome {
            return Err(NetError::Protocol(format!("expected Welcome, got {:?}", f.header.kind)));
        }
        c.worker = f.header.worker;
        c.last_seq = f.header.seq;
        Ok(c)
    }

    async fn request(&self, frame: Vec<u8>, timeout: Duration) -> Result<AlignedVec<ALIGN>> {
        self.request_parts(&frame, &[], timeout).await
    }

    /// Sends `head` then `payload` on one stream (no copy of the payload into a frame buffer) and
    /// reads the reply.
    async fn request_parts(&self, head: &[u8], payload: &[u8], timeout: Duration) -> Result<AlignedVec<ALIGN>> {
        let conn = &self.conn;
        let max = self.opts.max_frame;
        let work = async {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost("opening a stream", conn, e))?;
            send.write_all(head).await.map_err(|e| lost("sending", conn, e))?;
            send.write_all(payload).await.map_err(|e| lost("sending", conn, e))?;
            let _ = send.finish();
            crate::host::read_frame(&mut recv, max).await.map_err(|e| match e {
                NetError::Connection(m) => lost("waiting for the reply", conn, m),
                e => e,
            })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| NetError::Connection(format!("no reply from the parameter server within {timeout:?}")))?
    }

    async fn expect(&self, header: Header, payload: &[u8], kind: Kind, timeout: Duration) -> Result<AlignedVec<ALIGN>> {
        let head = wire::encode_head(&header, payload.len())?;
        let buf = self.request_parts(&head, payload, timeout).await?;
        let f = wire::decode(&buf, self.opts.max_frame)?;
        let got = f.header.kind;
        if got == Kind::Error {
            return Err(NetError::Rejected(format!(
                "the parameter server refused the request: {}",
                String::from_utf8_lossy(f.payload)
            )));
        }
        if got != kind {
            return Err(NetError::Protocol(format!("expected {kind:?}, got {got:?}")));
        }
        Ok(buf)
    }

    /// The job the server hands out (model and hyper-parameters, as the launcher encoded them).
    pub async fn fetch_job(&self) -> Result<Vec<u8>> {
        let buf =
            self.expect(Header::new(Kind::FetchJob, self.worker), &[], Kind::Job, self.opts.request_timeout).await?;
        Ok(wire::decode(&buf, self.opts.max_frame)?.payload.to_vec())
    }

    /// Commits `payload` with sequence number `seq` (averaging: whole weights for `round`); returns
    /// once the server applied it.
    pub async fn commit(&self, seq: u64, round: u64, payload: &[f32]) -> Result<Ack> {
        let h = Header { seq, round, ..Header::new(Kind::Commit, self.worker) };
        let buf = self.expect(h, bytemuck::cast_slice(payload), Kind::Ack, self.opts.request_timeout).await?;
        let f = wire::decode(&buf, self.opts.max_frame)?;
        if f.header.seq != seq {
            return Err(NetError::Protocol(format!("commit {seq} acknowledged as {}", f.header.seq)));
        }
        Ok(Ack { clock: f.header.clock, staleness: f.header.staleness })
    }

    /// Commits `payload` with sequence number `seq` and pulls the centre after it into `out`, in one
    /// request (asynchronous trainers).
    pub async fn commit_pull(&self, seq: u64, payload: &[f32], out: &mut Vec<f32>) -> Result<Ack> {
        let h = Header { seq, ..Header::new(Kind::CommitPull, self.worker) };
        let buf = self.expect(h, bytemuck::cast_slice(payload), Kind::Centre, self.opts.pull_timeout).await?;
        let f = wire::decode(&buf, self.opts.max_frame)?;
        if f.header.seq != seq {
            return Err(NetError::Protocol(format!("commit {seq} acknowledged as {}", f.header.seq)));
        }
        out.clear();
        out.extend_from_slice(f.floats()?);
        Ok(Ack { clock: f.header.clock, staleness: f.header.staleness })
    }

    /// Pulls the centre into `out` (averaging: once `round` closed); returns the server clock.
    pub async fn pull(&self, round: u64, out: &mut Vec<f32>) -> Result<u64> {
        let h = Header { round, ..Header::new(Kind::Pull, self.worker) };
        let buf = self.expect(h, &[], Kind::Centre, self.opts.pull_timeout).await?;
        let f = wire::decode(&buf, self.opts.max_frame)?;
        out.clear();
        out.extend_from_slice(f.floats()?);
        Ok(f.header.clock)
    }

    /// Says the worker finished `epoch`.
    pub async fn epoch_done(&self, epoch: u64) -> Result<()> {
        let h = Header { round: epoch, ..Header::new(Kind::Epoch, self.worker) };
        self.expect(h, &[], Kind::Ack, self.opts.request_timeout).await.map(|_| ())
    }

    /// Sends the worker's history (JSON), in chunks of at most [`REPORT_CHUNK`] bytes (every
    /// server accepts frames of that size): `round` is the chunk's index, `seq` the chunk count.
    pub async fn report(&self, json: &[u8]) -> Result<()> {
        let chunks: Vec<&[u8]> = if json.is_empty() { vec![json] } else { json.chunks(REPORT_CHUNK).collect() };
        for (i, chunk) in chunks.iter().enumerate() {
            let h = Header { round: i as u64, seq: chunks.len() as u64, ..Header::new(Kind::Report, self.worker) };
            self.expect(h, chunk, Kind::Ack, self.opts.request_timeout).await?;
        }
        Ok(())
    }

    /// Says the worker is done (with its final weights, or none) and closes the connection.
    pub async fn done(&self, final_weights: &[f32]) -> Result<()> {
        let h = Header::new(Kind::Done, self.worker);
        self.expect(h, bytemuck::cast_slice(final_weights), Kind::Ack, self.opts.request_timeout).await?;
        self.conn.close(close::DONE.into(), b"done");
        self.endpoint.wait_idle().await;
        Ok(())
    }

    /// Sends raw bytes as one request (tests of malformed input).
    pub async fn send_raw(&self, bytes: Vec<u8>) -> Result<AlignedVec<ALIGN>> {
        self.request(bytes, self.opts.request_timeout).await
    }
}

/// How long a first connection keeps asking for an id held by another connected process (if that
/// process died, the server notices within its idle timeout and frees the id).
pub const IN_USE_WAIT: Duration = Duration::from_secs(15);

/// The handshake timeout of the `attempt`-th try (from 0) of a retry loop: 1 s doubling up to
/// `max`, so a server that is back is reached soon and a slow one gets longer each time.
pub fn attempt_timeout(attempt: u32, max: Duration) -> Duration {
    Duration::from_secs(1u64 << attempt.min(6)).min(max)
}

/// Makes a worker process's first connection: retries a connection that fails or times out (a
/// server still starting, or too busy to answer every handshake in time) with exponential backoff
/// (0.1 s doubling to 2 s, with jitter, and handshakes given 1 s doubling to the request timeout)
/// until `deadline` has passed, and an id in use for at most [`IN_USE_WAIT`]; a refusal is not
/// retried.
pub async fn join(opts: ConnectOptions, deadline: Duration) -> Result<PsClient> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 0u32;
    loop {
        let handshake = attempt_timeout(attempt, opts.request_timeout);
        let e = match PsClient::connect_within(opts.clone(), false, handshake).await {
            Ok(c) => return Ok(c),
            Err(e) => e,
        };
        let limit = match e {
            NetError::InUse(_) => IN_USE_WAIT.min(deadline),
            _ if e.is_retryable() => deadline,
            _ => return Err(e),
        };
        // Jitter from the incarnation number, so many workers started together spread out.
        let jitter = (opts.incarnation.rotate_left(attempt * 7) % 1000) as f64 / 1000.0;
        let wait = backoff.mul_f64(0.5 + jitter / 2.0);
        if started.elapsed() + wait > limit {
            return Err(match e {
                NetError::InUse(m) => NetError::InUse(format!("{m} (asked for {:?})", started.elapsed())),
                NetError::Connection(m) => {
                    NetError::Connection(format!("{m} (after {} attempts in {:?})", attempt + 1, started.elapsed()))
                }
                e => e,
            });
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
        attempt += 1;
    }
}
