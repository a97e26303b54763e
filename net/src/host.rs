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
use crate::server::CommitCheck;
use crate::snapshot::StateSnapshot;
use crate::state::{CommitPlan, Effect, PsState};
use crate::wal::Wal;
use crate::wire::{self, ALIGN, Header, Kind};

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
    /// The write-ahead log refused an op that no request waited for (a round closed by a loss).
    LogFailed {
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

    /// Locks the state for a request on connection `generation` of `worker`, refusing a connection
    /// a newer one of the same worker superseded.
    fn lock_current(&self, worker: u32, generation: u64) -> Result<MutexGuard<'_, PsState>> {
        let st = self.lock();
        if !st.members.is_current(worker, generation) {
            return Err(NetError::Refused(format!(
                "this connection of worker {worker} was superseded by a newer one of the same worker"
            )));
        }
        Ok(st)
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// The LSN of the last record logged (0 without a log).
    fn appended(&self) -> u64 {
        self.wal.as_ref().map_or(0, |w| w.appended())
    }

    /// Waits until the log is on disk up to `lsn`.
    async fn durable(&self, lsn: u64) -> Result<()> {
        match &self.wal {
            Some(w) => w.durable(lsn).await,
            None => Ok(()),
        }
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

    /// Emits what an applied op did (under the state lock, so events come in the state's order).
    fn announce(&self, st: &PsState, effect: Effect) {
        match effect {
            Effect::Committed(o) if o.applied => self.emit(Event::Updated { clock: o.clock }),
            Effect::RoundClosed { round, clock } => {
                self.rounds.send_replace(round + 1);
                self.emit(Event::Updated { clock });
            }
            Effect::EpochComplete { epoch, clock } => {
                self.emit(Event::EpochCentre { epoch, clock, centre: st.core.centre().to_vec() })
            }
            _ => {}
        }
    }

    /// Logs and applies the ops the state made due; returns the LSN of the last.
    fn follow_up(&self, st: &mut PsState) -> Result<u64> {
        let mut last = self.appended();
        while let Some(op) = st.follow_up() {
            last = self.append(&op)?;
            let effect = st.apply(&op)?;
            self.announce(st, effect);
        }
        Ok(last)
    }

    /// Checks `op`, logs it, applies it and what it made due; returns the LSN to wait for before
    /// answering, and what the op did.
    fn record(&self, st: &mut PsState, op: &Op<'_>) -> Result<(u64, Effect)> {
        st.check(op)?;
        let lsn = self.append(op)?;
        let effect = st.apply(op)?;
        self.announce(st, effect);
        let last = self.follow_up(st)?;
        Ok((lsn.max(last), effect))
    }

    /// Gives up on workers still away after a restart of the server (they did not reconnect in
    /// time): they are lost, and what waited for them (an averaging round, an epoch) goes on.
    pub fn give_up_away(&self, reason: &str) -> Vec<u32> {
        let mut st = self.lock();
        let gone = st.members.give_up_away(reason);
        for &worker in &gone {
            self.emit(Event::Lost { worker, reason: reason.to_string() });
        }
        if let Err(e) = self.follow_up(&mut st) {
            self.emit(Event::LogFailed { reason: e.to_string() });
        }
        gone
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
    let refuse = |e: NetError| {
        if matches!(e, NetError::InUse(_) | NetError::Refused(_)) {
            conn.close(close_code(&e).into(), e.to_string().as_bytes());
        }
        e
    };
    // A new owner of the id is logged (and on disk) before the worker is connected under it.
    let logged = {
        let mut st = host.lock();
        let a = st.members.admit(f.header.worker, identity, incarnation, rejoin).map_err(refuse)?;
        if a.new_owner {
            host.record(&mut st, &Op::Join { worker: a.worker, incarnation, identity }).map(|(lsn, _)| (a.worker, lsn))
        } else {
            Ok((a.worker, host.appended()))
        }
    };
    let logged = match logged {
        Ok((worker, lsn)) => host.durable(lsn).await.map(|_| worker),
        Err(e) => Err(e),
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
    let (generation, last_seq) = {
        let mut st = host.lock();
        st.members.admit(worker, identity, incarnation, true).map_err(refuse)?;
        (st.members.connect(worker)?, st.core.last_seq(worker).unwrap_or(0))
    };
    host.emit(Event::Joined { worker, identity: identity.to_string() });
    // The worker's next commit follows the last one applied under its id (a process taking the id
    // over numbers its commits after its predecessor's).
    let welcome = Header { seq: last_seq, ..Header::new(Kind::Welcome, worker) };
    if let Err(e) = write_frame(&mut send, &wire::encode(&welcome, &[])?).await {
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
    let mut st = host.lock();
    if st.members.connection_ended(worker, generation, &reason) {
        host.emit(Event::Lost { worker, reason });
        // The round may close, and epochs complete, without it.
        if let Err(e) = host.follow_up(&mut st) {
            host.emit(Event::LogFailed { reason: e.to_string() });
        }
    }
}

fn ack(worker: u32, seq: u64, clock: u64, staleness: u64) -> Result<Vec<u8>> {
    wire::encode(&Header { seq, clock, staleness, ..Header::new(Kind::Ack, worker) }, &[])
}

async fn respond(host: &Host, worker: u32, generation: u64, buf: &AlignedVec<ALIGN>) -> Result<Vec<u8>> {
    let f = wire::decode(buf, host.config.max_frame)?;
    if f.header.worker != worker {
        return Err(NetError::Protocol(format!("worker {worker} sent a frame as worker {}", f.header.worker)));
    }
    let (seq, round) = (f.header.seq, f.header.round);
    match f.header.kind {
        Kind::Commit => {
            let payload = f.floats()?;
            // The guard lives in this block only: the wait for the disk happens without the lock.
            let (lsn, clock, staleness) = {
                let mut st = host.lock_current(worker, generation)?;
                match st.plan_commit(worker, seq, round, payload)? {
                    // A retry of something already applied: acknowledged again once it is on disk.
                    CommitPlan::Repeat { clock, staleness } => (host.appended(), clock, staleness),
                    // Logged, then applied straight from the received bytes; acknowledged once the
                    // log holds it.
                    CommitPlan::Record(op) => match host.record(&mut st, &op)? {
                        (lsn, Effect::Committed(o)) => (lsn, o.clock, o.staleness),
                        (lsn, _) => (lsn, st.core.clock(), 0),
                    },
                }
            };
            host.durable(lsn).await?;
            ack(worker, seq, clock, staleness)
        }
        Kind::Pull => {
            if host.lock().pull_waits(round) {
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
            let (lsn, frame) = {
                let mut st = host.lock_current(worker, generation)?;
                let (lsn, _) = host.record(&mut st, &Op::Pull { worker })?;
                let h = Header { clock: st.core.clock(), ..Header::new(Kind::Centre, worker) };
                (lsn, wire::encode(&h, st.core.centre()))
            };
            host.durable(lsn).await?;
            frame
        }
        Kind::CommitPull => {
            let payload = f.floats()?;
            let (lsn, frame) = {
                let mut st = host.lock_current(worker, generation)?;
                if !st.takes_commit_pull() {
                    return Err(NetError::Protocol("an averaging round takes commits and pulls apart".into()));
                }
                let staleness = match st.core.check_commit(worker, seq, payload.len())? {
                    CommitCheck::Retry(o) => o.staleness,
                    CommitCheck::Fresh => match host.record(&mut st, &Op::Commit { worker, seq, payload })?.1 {
                        Effect::Committed(o) => o.staleness,
                        _ => 0,
                    },
                };
                // The pull is logged after the commit: one sync covers both.
                let (lsn, _) = host.record(&mut st, &Op::Pull { worker })?;
                let h = Header { seq, staleness, clock: st.core.clock(), ..Header::new(Kind::Centre, worker) };
                (lsn, wire::encode(&h, st.core.centre()))
            };
            host.durable(lsn).await?;
            frame
        }
        Kind::FetchJob => wire::encode_bytes(&Header::new(Kind::Job, worker), &host.config.job),
        Kind::Epoch => {
            let lsn = {
                let mut st = host.lock_current(worker, generation)?;
                let (lsn, _) = host.record(&mut st, &Op::Epoch { worker, epoch: round })?;
                host.emit(Event::Epoch { worker, epoch: round });
                lsn
            };
            host.durable(lsn).await?;
            ack(worker, 0, 0, 0)
        }
        Kind::Report => {
            let lsn = {
                let mut st = host.lock_current(worker, generation)?;
                host.record(&mut st, &Op::Report { worker, index: round, bytes: f.payload })?.0
            };
            host.durable(lsn).await?;
            ack(worker, 0, 0, 0)
        }
        Kind::Done => {
            let weights = f.floats()?;
            let (lsn, clock) = {
                let mut st = host.lock_current(worker, generation)?;
                let (lsn, _) = host.record(&mut st, &Op::Done { worker, weights })?;
                host.emit(Event::Done { worker });
                (lsn, st.core.clock())
            };
            host.durable(lsn).await?;
            ack(worker, 0, clock, 0)
        }
        other => Err(NetError::Protocol(format!("unexpected {other:?} frame from a worker"))),
    }
}
