//! The parameter server's side of the protocol without sockets, clocks or tasks: what a hello, a
//! request frame or the end of a connection does to the [`PsState`], which ops it writes ahead,
//! and what it answers. The QUIC shell ([`crate::host`]) and the deterministic simulation
//! (`net/tests/simulation.rs`) both drive these functions, so the simulation tests the code the
//! server runs, not a model of it.
//!
//! Every request that changes the state becomes an [`Op`]: checked ([`PsState::check`]), appended
//! to the log through the [`Recorder`], applied, then the ops it made due (a closing round, a
//! completed epoch) in turn. An answer carries the LSN the log must hold on disk before it is sent
//! (group commit): the caller waits for that, so nothing is acknowledged that a crash could take
//! back.

use crate::error::{NetError, Result};
use crate::journal::Op;
use crate::server::CommitCheck;
use crate::state::{CommitPlan, Effect, PsState};
use crate::wire::{self, Frame, Header, Kind};

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

/// Where the ops go and what is told: the write-ahead log and the event channel of a server.
pub trait Recorder {
    /// The LSN of the last op appended (0 without a log).
    fn appended(&self) -> u64;
    /// Appends `op` to the log (not yet on disk); returns its LSN (0 without a log).
    fn append(&self, op: &Op<'_>) -> Result<u64>;
    /// Tells the launcher what happened.
    fn emit(&self, event: Event);
    /// Averaging round `closed_rounds - 1` closed: pulls waiting for it may go on.
    fn rounds_closed(&self, closed_rounds: u64);
}

/// How a request is answered.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Send `frame` once the log is on disk up to `lsn`.
    Reply {
        /// The reply frame.
        frame: Vec<u8>,
        /// The LSN the log must hold on disk first.
        lsn: u64,
    },
    /// An averaging pull of `round`: ask again once the round closed.
    AwaitRound(u64),
}

/// Emits what an applied op did (while the state is held, so events come in the state's order).
fn announce(rec: &impl Recorder, st: &PsState, effect: Effect) {
    match effect {
        Effect::Committed(o) if o.applied => rec.emit(Event::Updated { clock: o.clock }),
        Effect::RoundClosed { round, clock } => {
            rec.rounds_closed(round + 1);
            rec.emit(Event::Updated { clock });
        }
        Effect::EpochComplete { epoch, clock } => {
            rec.emit(Event::EpochCentre { epoch, clock, centre: st.core.centre().to_vec() })
        }
        _ => {}
    }
}

/// Logs and applies the ops the state made due; returns the LSN of the last.
pub fn follow_up(rec: &impl Recorder, st: &mut PsState) -> Result<u64> {
    let mut last = rec.appended();
    while let Some(op) = st.follow_up() {
        last = rec.append(&op)?;
        let effect = st.apply(&op)?;
        announce(rec, st, effect);
    }
    Ok(last)
}

/// Logs and applies the ops due that an earlier failure of the log left undone (a full disk when a
/// loss closed a round or completed an epoch, with no request after it to try again); the
/// launcher calls it on every tick, and the changes no request waits for (a loss, a give-up) end
/// with it.
pub fn catch_up(rec: &impl Recorder, st: &mut PsState) {
    if let Err(e) = follow_up(rec, st) {
        rec.emit(Event::LogFailed { reason: e.to_string() });
    }
}

/// Checks `op`, logs it, applies it and what it made due; returns the LSN to wait for before
/// answering, and what the op did.
pub fn record(rec: &impl Recorder, st: &mut PsState, op: &Op<'_>) -> Result<(u64, Effect)> {
    st.check(op)?;
    let lsn = rec.append(op)?;
    let effect = st.apply(op)?;
    announce(rec, st, effect);
    let last = follow_up(rec, st)?;
    Ok((lsn.max(last), effect))
}

/// The first half of a hello: decides which id process `incarnation` (held by `identity`) gets
/// and, for a new owner of the id, logs the join. Returns the id and the LSN that must be on disk
/// before the worker is connected under it. An `InUse` or `Refused` error is the answer the peer
/// should hear.
pub fn admit(
    rec: &impl Recorder,
    st: &mut PsState,
    requested: u32,
    identity: &str,
    incarnation: u64,
    rejoin: bool,
) -> Result<(u32, u64)> {
    let a = st.members.admit(requested, identity, incarnation, rejoin)?;
    if a.new_owner {
        let (lsn, _) = record(rec, st, &Op::Join { worker: a.worker, incarnation, identity })?;
        Ok((a.worker, lsn))
    } else {
        Ok((a.worker, rec.appended()))
    }
}

/// The second half of a hello, once the join is on disk: connects `worker` on a new connection.
/// Returns the connection's generation and the welcome frame, which carries the sequence number
/// of the last commit applied under the id (a process taking the id over numbers after it).
pub fn connect(
    rec: &impl Recorder,
    st: &mut PsState,
    worker: u32,
    identity: &str,
    incarnation: u64,
) -> Result<(u64, Vec<u8>)> {
    st.members.admit(worker, identity, incarnation, true)?;
    let generation = st.members.connect(worker)?;
    let last_seq = st.core.last_seq(worker).unwrap_or(0);
    rec.emit(Event::Joined { worker, identity: identity.to_string() });
    let welcome = Header { seq: last_seq, ..Header::new(Kind::Welcome, worker) };
    Ok((generation, wire::encode(&welcome, &[])?))
}

/// Connection `generation` of `worker` ended for `reason`: unless the worker is done or has a
/// newer connection, it is lost, and what waited for it (a round, an epoch) goes on. Returns
/// whether it was marked lost.
pub fn connection_ended(rec: &impl Recorder, st: &mut PsState, worker: u32, generation: u64, reason: &str) -> bool {
    if !st.members.connection_ended(worker, generation, reason) {
        return false;
    }
    rec.emit(Event::Lost { worker, reason: reason.to_string() });
    catch_up(rec, st);
    true
}

/// Gives up on workers still away after a restart of the server (they did not reconnect in
/// time): they are lost, and what waited for them goes on. Returns them.
pub fn give_up_away(rec: &impl Recorder, st: &mut PsState, reason: &str) -> Vec<u32> {
    let gone = st.members.give_up_away(reason);
    for &worker in &gone {
        rec.emit(Event::Lost { worker, reason: reason.to_string() });
    }
    catch_up(rec, st);
    gone
}

/// Past the join deadline: ids nobody joined under no longer hold epochs back, and the epochs
/// every worker that did join finished complete. Returns the ids.
pub fn give_up_missing(rec: &impl Recorder, st: &mut PsState) -> Vec<u32> {
    let missing = st.members.give_up_missing();
    catch_up(rec, st);
    missing
}

fn ack(worker: u32, seq: u64, clock: u64, staleness: u64) -> Result<Vec<u8>> {
    wire::encode(&Header { seq, clock, staleness, ..Header::new(Kind::Ack, worker) }, &[])
}

/// Answers request `f` of `worker` on its connection `generation`. `job` is what a worker asking
/// for the job receives. A connection a newer one of the same worker superseded is refused
/// (`Refused`); a request the log cannot take is refused (`Storage`) and not applied.
pub fn answer(
    rec: &impl Recorder,
    st: &mut PsState,
    worker: u32,
    generation: u64,
    f: &Frame<'_>,
    job: &[u8],
) -> Result<Answer> {
    if f.header.worker != worker {
        return Err(NetError::Protocol(format!("worker {worker} sent a frame as worker {}", f.header.worker)));
    }
    if !st.members.is_current(worker, generation) {
        return Err(NetError::Refused(format!(
            "this connection of worker {worker} was superseded by a newer one of the same worker"
        )));
    }
    let (seq, round) = (f.header.seq, f.header.round);
    let reply = |frame: Vec<u8>, lsn: u64| Ok(Answer::Reply { frame, lsn });
    match f.header.kind {
        Kind::Commit => {
            let payload = f.floats()?;
            let (lsn, clock, staleness) = match st.plan_commit(worker, seq, round, payload)? {
                // A retry of something already applied: acknowledged again once it is on disk.
                CommitPlan::Repeat { clock, staleness } => (rec.appended(), clock, staleness),
                // Logged, then applied straight from the received bytes; acknowledged once the log
                // holds it.
                CommitPlan::Record(op) => match record(rec, st, &op)? {
                    (lsn, Effect::Committed(o)) => (lsn, o.clock, o.staleness),
                    (lsn, _) => (lsn, st.core.clock(), 0),
                },
            };
            reply(ack(worker, seq, clock, staleness)?, lsn)
        }
        Kind::Pull => {
            if st.pull_waits(round) {
                return Ok(Answer::AwaitRound(round));
            }
            let (lsn, _) = record(rec, st, &Op::Pull { worker })?;
            let h = Header { clock: st.core.clock(), ..Header::new(Kind::Centre, worker) };
            reply(wire::encode(&h, st.core.centre())?, lsn)
        }
        Kind::CommitPull => {
            let payload = f.floats()?;
            if !st.takes_commit_pull() {
                return Err(NetError::Protocol("an averaging round takes commits and pulls apart".into()));
            }
            let staleness = match st.core.check_commit(worker, seq, payload.len())? {
                CommitCheck::Retry(o) => o.staleness,
                CommitCheck::Fresh => match record(rec, st, &Op::Commit { worker, seq, payload })?.1 {
                    Effect::Committed(o) => o.staleness,
                    _ => 0,
                },
            };
            // The pull is logged after the commit: one sync covers both.
            let (lsn, _) = record(rec, st, &Op::Pull { worker })?;
            let h = Header { seq, staleness, clock: st.core.clock(), ..Header::new(Kind::Centre, worker) };
            reply(wire::encode(&h, st.core.centre())?, lsn)
        }
        Kind::FetchJob => reply(wire::encode_bytes(&Header::new(Kind::Job, worker), job)?, 0),
        Kind::Epoch => {
            let (lsn, _) = record(rec, st, &Op::Epoch { worker, epoch: round })?;
            rec.emit(Event::Epoch { worker, epoch: round });
            reply(ack(worker, 0, 0, 0)?, lsn)
        }
        Kind::Report => {
            let (lsn, _) = record(rec, st, &Op::Report { worker, index: round, bytes: f.payload })?;
            reply(ack(worker, 0, 0, 0)?, lsn)
        }
        Kind::Done => {
            let weights = f.floats()?;
            let (lsn, _) = record(rec, st, &Op::Done { worker, weights })?;
            rec.emit(Event::Done { worker });
            reply(ack(worker, 0, st.core.clock(), 0)?, lsn)
        }
        other => Err(NetError::Protocol(format!("unexpected {other:?} frame from a worker"))),
    }
}
