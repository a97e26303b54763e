//! The parameter server's QUIC shell: authenticates each connection (secret on the first stream,
//! constant-time), admits the worker ([`crate::membership::Membership`]), then answers one
//! bidirectional stream per request, in order, from the state ([`PsState`]).
//!
//! Every request that changes the state becomes an [`Op`]: checked, written to the write-ahead log
//! (when there is one), applied, and answered only once the log is on disk up to it (group commit),
//! so nothing is acknowledged that a crash could take back, and nothing is acknowledged that was not
//! applied. A request the log cannot take (a full disk) is refused with an `Error` frame the worker
//! sees, and not applied. A malformed or oversized frame closes that connection and the server keeps
//! serving the others; a connection that ends before its worker is done marks the worker lost
//! (reported as an [`Event`]); a connection superseded by a newer one of the same worker is refused.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rkyv::util::AlignedVec;
use tokio::sync::{mpsc, watch};

use crate::auth::Secrets;
use crate::close;
use crate::error::{NetError, Result};
use crate::journal::Op;
pub use crate::protocol::Event;
use crate::protocol::{self, Answer, Recorder};
use crate::snapshot::StateSnapshot;
use crate::state::PsState;
use crate::wal::Wal;
use crate::wire::{self, ALIGN, Header, Kind};

/// Settings of the server shell.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Largest frame accepted (and sent).
    pub max_frame: usize,
    /// What a worker receives when it asks for the job (model and hyper-parameters).
    pub job: Arc<Vec<u8>>,
    /// How long an averaging pull waits for the round to close.
    pub round_timeout: Duration,
    /// How long a new connection has to say hello.
    pub hello_timeout: Duration,
}

/// The shared server: state behind one lock, the write-ahead log, the event channel, the count of
/// closed rounds.
pub struct Host {
    state: Mutex<PsState>,
    wal: Option<Wal>,
    events: mpsc::UnboundedSender<Event>,
    rounds: watch::Sender<u64>,
    config: HostConfig,
}

impl Host {
    /// A server over `state`, writing ahead to `wal` (None: no log); events go to the returned
    /// receiver.
    pub fn new(state: PsState, config: HostConfig, wal: Option<Wal>) -> (Arc<Self>, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        let closed = state.rounds_closed();
        let (rounds, _) = watch::channel(closed);
        (Arc::new(Host { state: Mutex::new(state), wal, events, rounds, config }), rx)
    }

    /// Locks the state (a poisoned lock is taken over: every update is applied whole under it).
    pub fn lock(&self) -> MutexGuard<'_, PsState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The write-ahead log, when there is one.
    pub fn wal(&self) -> Option<&Wal> {
        self.wal.as_ref()
    }

    /// Waits until the log is on disk up to `lsn`.
    async fn durable(&self, lsn: u64) -> Result<()> {
        match &self.wal {
            Some(w) => w.durable(lsn).await,
            None => Ok(()),
        }
    }

    /// Gives up on workers still away after a restart of the server (they did not reconnect in
    /// time): they are lost, and what waited for them (an averaging round, an epoch) goes on.
    pub fn give_up_away(&self, reason: &str) -> Vec<u32> {
        let mut st = self.lock();
        protocol::give_up_away(self, &mut st, reason)
    }

    /// Past the join deadline: ids nobody joined under stop holding epochs back
    /// ([`protocol::give_up_missing`]); returns them.
    pub fn give_up_missing(&self) -> Vec<u32> {
        protocol::give_up_missing(self, &mut self.lock())
    }

    /// Logs and applies what an earlier failure of the log left due ([`protocol::catch_up`]).
    pub fn catch_up(&self) {
        protocol::catch_up(self, &mut self.lock());
    }

    /// Takes a snapshot of the whole state labelled `label`, holding every op logged so far (the
    /// log moves on to a new segment). `under_lock` runs while the state is locked, so what it
    /// collects (pending events) matches the snapshot exactly.
    pub fn capture(&self, label: &str, under_lock: impl FnOnce()) -> Result<StateSnapshot> {
        let st = self.lock();
        under_lock();
        let lsn = match &self.wal {
            Some(w) => w.rotate()?,
            None => 0,
        };
        Ok(st.snapshot(label, lsn))
    }
}

impl Recorder for Host {
    fn appended(&self) -> u64 {
        self.wal.as_ref().map_or(0, |w| w.appended())
    }

    fn append(&self, op: &Op<'_>) -> Result<u64> {
        match &self.wal {
            Some(w) => {
                let (head, payload) = op.encode();
                w.append(&[&head, payload])
            }
            None => Ok(0),
        }
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    fn rounds_closed(&self, closed_rounds: u64) {
        self.rounds.send_replace(closed_rounds);
    }
}

/// Serves `host` on `endpoint` until the endpoint is closed.
pub async fn serve(endpoint: quinn::Endpoint, host: Arc<Host>, secrets: Arc<Secrets>) {
    while let Some(incoming) = endpoint.accept().await {
        let (host, secrets) = (host.clone(), secrets.clone());
        tokio::spawn(async move {
            match incoming.await {
                Ok(conn) => handle(conn, host, secrets).await,
                // A worker gave up on this attempt (it retries with a longer one): not a refusal.
                Err(quinn::ConnectionError::ConnectionClosed(c))
                    if c.error_code == quinn::TransportErrorCode::APPLICATION_ERROR => {}
                Err(e) => host.emit(Event::Refused { reason: format!("handshake failed: {e}") }),
            }
        });
    }
}

/// Reads a whole stream into an aligned buffer, chunk by chunk (one copy), refusing more than `max`.
pub async fn read_frame(recv: &mut quinn::RecvStream, max: usize) -> Result<AlignedVec<ALIGN>> {
    let mut buf = AlignedVec::<ALIGN>::new();
    loop {
        match recv.read_chunk(max.saturating_sub(buf.len()).max(1), true).await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.bytes.len() > max {
                    return Err(NetError::TooLarge { got: buf.len() + chunk.bytes.len(), limit: max });
                }
                buf.extend_from_slice(&chunk.bytes);
            }
            Ok(None) => return Ok(buf),
            Err(e) => return Err(NetError::Connection(format!("reading a frame: {e}"))),
        }
    }
}

async fn write_frame(send: &mut quinn::SendStream, frame: &[u8]) -> Result<()> {
    send.write_all(frame).await.map_err(|e| NetError::Connection(format!("writing a frame: {e}")))?;
    let _ = send.finish();
    Ok(())
}

fn close_code(e: &NetError) -> u32 {
    match e {
        NetError::InUse(_) => close::IN_USE,
        _ => close::REFUSED,
    }
}

/// Authenticates and admits the peer; returns its worker id and connection generation.
async fn admit(conn: &quinn::Connection, host: &Host, secrets: &Secrets) -> Result<(u32, u64)> {
    let (mut send, mut recv) = tokio::time::timeout(host.config.hello_timeout, conn.accept_bi())
        .await
        .map_err(|_| NetError::Refused("no hello in time".into()))?
        .map_err(|e| NetError::Connection(e.to_string()))?;
    let buf = read_frame(&mut recv, 64 << 10).await?;
    let f = wire::decode(&buf, 64 << 10)?;
    if f.header.kind != Kind::Hello {
        return Err(NetError::Protocol(format!("expected Hello, got {:?}", f.header.kind)));
    }
    let Some(identity) = secrets.identify(f.payload) else {
        conn.close(close::BAD_SECRET.into(), b"the secret was not accepted");
        return Err(NetError::Refused("a peer gave a secret that is not in the secrets file".into()));
    };
    let (incarnation, rejoin) = (f.header.incarnation, f.header.round == wire::REJOIN);
    // A refusal says what the state holds ("already finished" ends a worker whose `Done` it
    // answers): it is sent only once the log holds that state, as an acknowledgement would be.
    let refuse = async |e: NetError| {
        if matches!(e, NetError::InUse(_) | NetError::Refused(_)) {
            if let Err(d) = host.durable(host.appended()).await {
                return d;
            }
            conn.close(close_code(&e).into(), e.to_string().as_bytes());
        }
        e
    };
    // A new owner of the id is logged (and on disk) before the worker is connected under it.
    let logged = {
        let mut st = host.lock();
        protocol::admit(host, &mut st, f.header.worker, identity, incarnation, rejoin)
    };
    let logged = match logged {
        Ok((worker, lsn)) => host.durable(lsn).await.map(|_| worker),
        Err(e) => Err(refuse(e).await),
    };
    let worker = match logged {
        Ok(w) => w,
        // The log cannot take the join: the worker hears why.
        Err(NetError::Storage(m)) => {
            let frame = wire::encode_bytes(&Header::new(Kind::Error, f.header.worker), m.as_bytes())?;
            if write_frame(&mut send, &frame).await.is_ok() {
                // Until the peer has the answer: the connection closes when this returns.
                let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
            }
            return Err(NetError::Storage(m));
        }
        Err(e) => return Err(e),
    };
    let connected = {
        let mut st = host.lock();
        protocol::connect(host, &mut st, worker, identity, incarnation)
    };
    let (generation, welcome) = match connected {
        Ok(c) => c,
        Err(e) => return Err(refuse(e).await),
    };
    if let Err(e) = write_frame(&mut send, &welcome).await {
        host.lock().members.connection_ended(worker, generation, &e.to_string());
        return Err(e);
    }
    Ok((worker, generation))
}

async fn handle(conn: quinn::Connection, host: Arc<Host>, secrets: Arc<Secrets>) {
    let (worker, generation) = match admit(&conn, &host, &secrets).await {
        Ok(w) => w,
        Err(e) => {
            host.emit(Event::Refused { reason: e.to_string() });
            return;
        }
    };
    let reason = loop {
        let (mut send, mut recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(e) => break e.to_string(),
        };
        let reply = match read_frame(&mut recv, host.config.max_frame).await {
            Ok(buf) => respond(&host, worker, generation, &buf).await,
            Err(e) => Err(e),
        };
        let frame = match reply {
            Ok(frame) => frame,
            // Not applied and not acknowledged: the worker hears why and the connection stays.
            Err(NetError::Storage(m) | NetError::Rejected(m)) => {
                match wire::encode_bytes(&Header::new(Kind::Error, worker), m.as_bytes()) {
                    Ok(f) => f,
                    Err(e) => break e.to_string(),
                }
            }
            Err(NetError::Connection(e)) => break e,
            Err(e @ NetError::Refused(_)) => {
                conn.close(close::SUPERSEDED.into(), e.to_string().as_bytes());
                break e.to_string();
            }
            Err(e) => {
                conn.close(close::BAD_FRAME.into(), e.to_string().as_bytes());
                break format!("closed for a bad frame: {e}");
            }
        };
        if let Err(e) = write_frame(&mut send, &frame).await {
            break e.to_string();
        }
    };
    // The round may close, and epochs complete, without it.
    protocol::connection_ended(host.as_ref(), &mut host.lock(), worker, generation, &reason);
}

/// Answers one request frame: the state decides ([`protocol::answer`]); an averaging pull waits
/// here for its round; the reply goes once the log is on disk up to it.
async fn respond(host: &Host, worker: u32, generation: u64, buf: &AlignedVec<ALIGN>) -> Result<Vec<u8>> {
    let f = wire::decode(buf, host.config.max_frame)?;
    loop {
        // The guard lives in this block only: the waits happen without the lock.
        let answer = protocol::answer(host, &mut host.lock(), worker, generation, &f, &host.config.job)?;
        match answer {
            Answer::Reply { frame, lsn } => {
                host.durable(lsn).await?;
                return Ok(frame);
            }
            Answer::AwaitRound(round) => {
                let mut rx = host.rounds.subscribe();
                match tokio::time::timeout(host.config.round_timeout, rx.wait_for(|closed| *closed > round)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return Err(NetError::Connection("the server is shutting down".into())),
                    Err(_) => {
                        return Err(NetError::Connection(format!(
                            "averaging round {round} did not close within {:?}",
                            host.config.round_timeout
                        )));
                    }
                }
            }
        }
    }
}
