//! The parameter server's QUIC shell: authenticates each connection (secret on the first stream,
//! constant-time), admits the worker ([`Membership`]), then answers one bidirectional stream per
//! request, in order, from the plain state machines ([`ServerCore`], [`RoundBarrier`]). A commit is
//! acknowledged only after it is applied; a malformed or oversized frame closes that connection and
//! the server keeps serving the others; a connection that ends before its worker is done marks the
//! worker lost (reported as an [`Event`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rkyv::util::AlignedVec;
use tokio::sync::{mpsc, watch};

use crate::auth::Secrets;
use crate::averaging::RoundBarrier;
use crate::close;
use crate::error::{NetError, Result};
use crate::membership::Membership;
use crate::server::ServerCore;
use crate::wire::{self, ALIGN, Header, Kind};

/// What the parameter server holds.
pub struct PsState {
    /// Centre, clock, per-worker pull clocks and sequence numbers.
    pub core: ServerCore,
    /// The workers and what became of them.
    pub members: Membership,
    /// The round barrier of synchronous averaging (None: asynchronous trainers).
    pub barrier: Option<RoundBarrier>,
}

/// What happened, for the launcher (logs, snapshots, validation, the end of the run).
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A worker authenticated and was admitted.
    Joined {
        /// Its id.
        worker: u32,
        /// Who holds its secret.
        identity: String,
    },
    /// A worker's connection ended before it was done.
    Lost {
        /// Its id.
        worker: u32,
        /// Why the connection ended.
        reason: String,
    },
    /// A worker finished an epoch.
    Epoch {
        /// Its id.
        worker: u32,
        /// The epoch (0-based).
        epoch: u64,
    },
    /// Every worker still counted finished `epoch`: the centre at that moment.
    EpochCentre {
        /// The epoch (0-based).
        epoch: u64,
        /// The clock then.
        clock: u64,
        /// The centre then.
        centre: Vec<f32>,
    },
    /// A worker is done.
    Done {
        /// Its id.
        worker: u32,
    },
    /// A commit or an averaging round changed the centre.
    Updated {
        /// The clock after it.
        clock: u64,
    },
    /// A connection was refused (wrong secret, bad frame...).
    Refused {
        /// Why.
        reason: String,
    },
}

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

/// The shared server: state behind one lock, the event channel, the count of closed rounds.
pub struct Host {
    state: Mutex<PsState>,
    events: mpsc::UnboundedSender<Event>,
    rounds: watch::Sender<u64>,
    config: HostConfig,
}

impl Host {
    /// A server over `state`; events go to the returned receiver.
    pub fn new(state: PsState, config: HostConfig) -> (Arc<Self>, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        let closed = state.barrier.as_ref().map_or(0, |b| b.round());
        let (rounds, _) = watch::channel(closed);
        (Arc::new(Host { state: Mutex::new(state), events, rounds, config }), rx)
    }

    /// Locks the state (a poisoned lock is taken over: every update is applied whole under it).
    pub fn lock(&self) -> MutexGuard<'_, PsState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// Closes the averaging round if every live worker has committed.
    fn close_round_if_ready(&self, st: &mut PsState) {
        let live = st.members.live();
        let PsState { core, barrier, .. } = st;
        if let Some(b) = barrier.as_mut() {
            let mut closed = None;
            let clock = core.update_centre_if(|centre| {
                closed = b.complete_if_ready(&live, centre);
                closed.is_some()
            });
            if let Some(round) = closed {
                self.rounds.send_replace(round + 1);
                if let Some(clock) = clock {
                    self.emit(Event::Updated { clock });
                }
            }
        }
    }
}

/// Serves `host` on `endpoint` until the endpoint is closed.
pub async fn serve(endpoint: quinn::Endpoint, host: Arc<Host>, secrets: Arc<Secrets>) {
    while let Some(incoming) = endpoint.accept().await {
        let (host, secrets) = (host.clone(), secrets.clone());
        tokio::spawn(async move {
            match incoming.await {
                Ok(conn) => handle(conn, host, secrets).await,
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
    let joined = host.lock().members.join(f.header.worker, identity);
    let (worker, generation) = match joined {
        Ok(j) => j,
        Err(e) => {
            conn.close(close::REFUSED.into(), e.to_string().as_bytes());
            return Err(e);
        }
    };
    host.emit(Event::Joined { worker, identity: identity.to_string() });
    write_frame(&mut send, &wire::encode(&Header::new(Kind::Welcome, worker), &[])?).await?;
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
            Ok(buf) => respond(&host, worker, &buf).await,
            Err(e) => Err(e),
        };
        match reply {
            Ok(frame) => {
                if let Err(e) = write_frame(&mut send, &frame).await {
                    break e.to_string();
                }
            }
            Err(NetError::Connection(e)) => break e,
            Err(e) => {
                conn.close(close::BAD_FRAME.into(), e.to_string().as_bytes());
                break format!("closed for a bad frame: {e}");
            }
        }
    };
    let mut st = host.lock();
    if st.members.connection_ended(worker, generation, &reason) {
        host.emit(Event::Lost { worker, reason });
        host.close_round_if_ready(&mut st);
    }
}

fn ack(worker: u32, seq: u64, clock: u64, staleness: u64) -> Result<Vec<u8>> {
    wire::encode(&Header { seq, clock, staleness, ..Header::new(Kind::Ack, worker) }, &[])
}

async fn respond(host: &Host, worker: u32, buf: &AlignedVec<ALIGN>) -> Result<Vec<u8>> {
    let f = wire::decode(buf, host.config.max_frame)?;
    if f.header.worker != worker {
        return Err(NetError::Protocol(format!("worker {worker} sent a frame as worker {}", f.header.worker)));
    }
    match f.header.kind {
        Kind::Commit => {
            let payload = f.floats()?;
            let mut st = host.lock();
            if let Some(barrier) = st.barrier.as_mut() {
                // A repeat of a round's commit (a retry) is acknowledged without counting it again.
                barrier.submit(worker, f.header.round, payload)?;
                let clock = st.core.clock();
                host.close_round_if_ready(&mut st);
                ack(worker, f.header.seq, clock, 0)
            } else {
                // Applied here, straight from the received bytes, before the acknowledgement exists.
                let o = st.core.commit(worker, f.header.seq, payload)?;
                drop(st);
                if o.applied {
                    host.emit(Event::Updated { clock: o.clock });
                }
                ack(worker, f.header.seq, o.clock, o.staleness)
            }
        }
        Kind::Pull => {
            if host.lock().barrier.is_some() && f.header.round != wire::NOW {
                let want = f.header.round;
                let mut rx = host.rounds.subscribe();
                match tokio::time::timeout(host.config.round_timeout, rx.wait_for(|closed| *closed > want)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return Err(NetError::Connection("the server is shutting down".into())),
                    Err(_) => {
                        return Err(NetError::Connection(format!(
                            "averaging round {want} did not close within {:?}",
                            host.config.round_timeout
                        )));
                    }
                }
            }
            let mut st = host.lock();
            let (clock, centre) = st.core.pull(worker);
            wire::encode(&Header { clock, ..Header::new(Kind::Centre, worker) }, centre)
        }
        Kind::FetchJob => wire::encode_bytes(&Header::new(Kind::Job, worker), &host.config.job),
        Kind::Epoch => {
            let mut st = host.lock();
            let before = st.members.epochs_done_by_all();
            st.members.epoch_done(worker, f.header.round);
            let after = st.members.epochs_done_by_all();
            let centre = (after > before).then(|| (st.core.clock(), st.core.centre().to_vec()));
            drop(st);
            host.emit(Event::Epoch { worker, epoch: f.header.round });
            if let Some((clock, centre)) = centre {
                host.emit(Event::EpochCentre { epoch: after - 1, clock, centre });
            }
            ack(worker, 0, 0, 0)
        }
        Kind::Report => {
            host.lock().members.report_chunk(worker, f.header.round, f.payload)?;
            ack(worker, 0, 0, 0)
        }
        Kind::Done => {
            let weights = f.floats()?;
            let mut st = host.lock();
            st.members.done(worker, (!weights.is_empty()).then(|| weights.to_vec()));
            host.close_round_if_ready(&mut st);
            let clock = st.core.clock();
            drop(st);
            host.emit(Event::Done { worker });
            ack(worker, 0, clock, 0)
        }
        other => Err(NetError::Protocol(format!("unexpected {other:?} frame from a worker"))),
    }
}
