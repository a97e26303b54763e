//! A worker's connection to the parameter server: TLS 1.3 trusting the server by pin or CA, the
//! secret in the first frame, then one bidirectional stream per request. Every request has a
//! timeout; a lost connection is a [`NetError::Connection`] (retry after reconnecting), a refusal a
//! [`NetError::Refused`] (do not retry).

use std::net::SocketAddr;
use std::time::Duration;

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
    opts: ConnectOptions,
}

fn lost(what: &str, conn: &quinn::Connection, e: impl std::fmt::Display) -> NetError {
    match conn.close_reason() {
        Some(quinn::ConnectionError::ApplicationClosed(c))
            if c.error_code == close::BAD_SECRET.into() || c.error_code == close::REFUSED.into() =>
        {
            NetError::Refused(format!("the parameter server refused us: {}", String::from_utf8_lossy(&c.reason)))
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
    /// Connects, authenticates and is admitted.
    pub async fn connect(opts: ConnectOptions) -> Result<Self> {
        let endpoint = client_endpoint(opts.addr, &opts.trust)?;
        let connecting = endpoint
            .connect(opts.addr, &opts.server_name)
            .map_err(|e| NetError::Connection(format!("connecting to {}: {e}", opts.addr)))?;
        let conn = tokio::time::timeout(opts.request_timeout, connecting)
            .await
            .map_err(|_| {
                NetError::Connection(format!("no answer from {} within {:?}", opts.addr, opts.request_timeout))
            })?
            .map_err(|e| match e {
                quinn::ConnectionError::TransportError(t) if t.to_string().contains("certificate") => {
                    NetError::Tls(format!("the server at {} is not the one we trust: {t}", opts.addr))
                }
                e => NetError::Connection(format!("connecting to {}: {e}", opts.addr)),
            })?;
        let mut c = PsClient { conn, endpoint, worker: opts.worker, opts };
        let hello = wire::encode_bytes(&Header::new(Kind::Hello, c.opts.worker), c.opts.secret.as_bytes())?;
        let buf = c.request(hello, c.opts.request_timeout).await?;
        let f = wire::decode(&buf, c.opts.max_frame)?;
        if f.header.kind != Kind::Welcome {
            return Err(NetError::Protocol(format!("expected Welcome, got {:?}", f.header.kind)));
        }
        c.worker = f.header.worker;
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
        let got = wire::decode(&buf, self.opts.max_frame)?.header.kind;
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
