//! Everything the parameter server holds, and the one place it changes: [`PsState::apply`] carries
//! out an [`Op`] — live, after the op was written ahead, and again during replay after a crash, so
//! both give the same state. [`PsState::check`] refuses an op before it is logged (an op in the log
//! always applies), and [`PsState::follow_ups`] names the ops a change makes due (an averaging round
//! that can close, epochs every worker finished), which are logged and applied in turn.

use crate::averaging::RoundBarrier;
use crate::error::{NetError, Result};
use crate::journal::Op;
use crate::membership::Membership;
use crate::server::{CommitCheck, CommitOutcome, ServerCore};
use crate::snapshot::StateSnapshot;

/// What the parameter server holds.
pub struct PsState {
    /// Centre, clock, per-worker pull clocks, pulled centres and sequence numbers.
    pub core: ServerCore,
    /// The workers and what became of them.
    pub members: Membership,
    /// The round barrier of synchronous averaging (None: asynchronous trainers).
    pub barrier: Option<RoundBarrier>,
    /// Epochs every counted worker finished (their centres were handed out for validation).
    pub epochs_completed: u64,
}

/// What applying an op did, beyond changing the state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Effect {
    /// Nothing to report.
    None,
    /// A commit was applied.
    Committed(CommitOutcome),
    /// Averaging round `round` closed; the clock after it.
    RoundClosed {
        /// The round.
        round: u64,
        /// The clock after it.
        clock: u64,
    },
    /// Every counted worker finished `epoch`: the centre now is its centre.
    EpochComplete {
        /// The epoch.
        epoch: u64,
        /// The clock now.
        clock: u64,
    },
}

/// How the server answers a commit frame.
#[derive(Debug)]
pub enum CommitPlan<'a> {
    /// A retry of something already applied: answered again (once the log is on disk) with the
    /// clock and staleness it had.
    Repeat {
        /// The clock to answer with.
        clock: u64,
        /// The staleness to answer with.
        staleness: u64,
    },
    /// A new commit or submission: log and apply this op.
    Record(Op<'a>),
}

impl PsState {
    /// Where a commit frame of `worker` (sequence `seq`, averaging round `round`) goes: asynchronous
    /// trainers fold it into the centre with their rule; an averaging run submits it to the open
    /// round. The host asks, so it needs no branch of its own per trainer.
    pub fn plan_commit<'a>(&self, worker: u32, seq: u64, round: u64, payload: &'a [f32]) -> Result<CommitPlan<'a>> {
        match &self.barrier {
            Some(b) if round < b.round() || round == b.round() && b.submitted(worker) => {
                Ok(CommitPlan::Repeat { clock: self.core.clock(), staleness: 0 })
            }
            Some(_) => Ok(CommitPlan::Record(Op::Submit { worker, round, weights: payload })),
            None => Ok(match self.core.check_commit(worker, seq, payload.len())? {
                CommitCheck::Retry(o) => CommitPlan::Repeat { clock: o.clock, staleness: o.staleness },
                CommitCheck::Fresh => CommitPlan::Record(Op::Commit { worker, seq, payload }),
            }),
        }
    }

    /// Whether a pull for `round` must wait for that averaging round to close (it has not yet; a
    /// pull for [`crate::wire::NOW`], or any pull of an asynchronous run, is answered at once).
    pub fn pull_waits(&self, round: u64) -> bool {
        round != crate::wire::NOW && self.barrier.as_ref().is_some_and(|b| b.round() <= round)
    }

    /// Whether a commit and a pull may travel in one frame (not in an averaging run: a round takes
    /// them apart).
    pub fn takes_commit_pull(&self) -> bool {
        self.barrier.is_none()
    }

    /// Averaging rounds closed so far (0 in an asynchronous run).
    pub fn rounds_closed(&self) -> u64 {
        self.barrier.as_ref().map_or(0, |b| b.round())
    }

    /// A state at clock 0.
    pub fn new(core: ServerCore, members: Membership, barrier: Option<RoundBarrier>) -> Self {
        PsState { core, members, barrier, epochs_completed: 0 }
    }

    /// Refuses an op that would not apply (so nothing that fails is ever logged).
    pub fn check(&self, op: &Op<'_>) -> Result<()> {
        let len = self.core.centre().len();
        match *op {
            Op::Commit { worker, seq, payload } => match self.core.check_commit(worker, seq, payload.len())? {
                CommitCheck::Fresh => Ok(()),
                CommitCheck::Retry(_) => {
                    Err(NetError::Protocol(format!("commit {seq} of worker {worker} was applied already")))
                }
            },
            Op::Submit { worker, round, weights } => {
                let b = self.barrier.as_ref().ok_or_else(|| NetError::Protocol("no averaging round is open".into()))?;
                if weights.len() != len {
                    return Err(NetError::Protocol(format!(
                        "worker {worker} committed {} values; the centre has {len}",
                        weights.len()
                    )));
                }
                if round != b.round() || b.submitted(worker) {
                    return Err(NetError::Protocol(format!(
                        "worker {worker} submitted to round {round} while round {} is open",
                        b.round()
                    )));
                }
                Ok(())
            }
            Op::CloseRound { round } => match &self.barrier {
                Some(b) if b.round() == round => Ok(()),
                _ => Err(NetError::Protocol(format!("averaging round {round} is not the open one"))),
            },
            Op::Report { worker, index, bytes } => self.members.check_report(worker, index, bytes.len()),
            Op::Done { weights, .. } if !weights.is_empty() && weights.len() != len => {
                Err(NetError::Protocol(format!("final weights of {} values for a centre of {len}", weights.len())))
            }
            _ => Ok(()),
        }
    }

    /// Carries out `op` (checked, or read back from the log).
    pub fn apply(&mut self, op: &Op<'_>) -> Result<Effect> {
        Ok(match *op {
            Op::Join { worker, incarnation, identity } => {
                self.members.set_owner(worker, identity, incarnation);
                Effect::None
            }
            Op::Commit { worker, seq, payload } => Effect::Committed(self.core.commit(worker, seq, payload)?),
            Op::Pull { worker } => {
                self.core.pull(worker);
                Effect::None
            }
            Op::Submit { worker, round, weights } => {
                let b = self.barrier.as_mut().ok_or_else(|| NetError::Protocol("no averaging round is open".into()))?;
                b.submit(worker, round, weights)?;
                Effect::None
            }
            Op::CloseRound { round } => {
                self.check(op)?;
                let PsState { core, barrier, .. } = self;
                let b = barrier.as_mut().ok_or_else(|| NetError::Protocol("no averaging round is open".into()))?;
                let clock = core.update_centre_if(|centre| {
                    b.close(centre);
                    true
                });
                Effect::RoundClosed { round, clock: clock.unwrap_or(0) }
            }
            Op::Epoch { worker, epoch } => {
                self.members.epoch_done(worker, epoch);
                Effect::None
            }
            Op::EpochComplete { epoch } => {
                self.epochs_completed = self.epochs_completed.max(epoch + 1);
                Effect::EpochComplete { epoch, clock: self.core.clock() }
            }
            Op::Report { worker, index, bytes } => {
                self.members.report_chunk(worker, index, bytes)?;
                Effect::None
            }
            Op::Done { worker, weights } => {
                self.members.done(worker, (!weights.is_empty()).then(|| weights.to_vec()));
                Effect::None
            }
        })
    }

    /// The next op the state makes due, if any: closing the averaging round once every worker it
    /// waits for has submitted, or completing the next epoch every counted worker finished.
    pub fn follow_up(&self) -> Option<Op<'static>> {
        if let Some(b) = &self.barrier
            && b.ready(&self.members.waited_for())
        {
            return Some(Op::CloseRound { round: b.round() });
        }
        (self.members.epochs_done_by_all() > self.epochs_completed)
            .then_some(Op::EpochComplete { epoch: self.epochs_completed })
    }

    /// The whole state, for a snapshot that holds the log up to `lsn`.
    pub fn snapshot(&self, label: &str, lsn: u64) -> StateSnapshot {
        StateSnapshot {
            label: label.to_string(),
            lsn,
            centre: self.core.centre().to_vec(),
            clock: self.core.clock(),
            workers: self.core.records(),
            barrier: self.barrier.as_ref().map(|b| b.record()),
            members: self.members.records(),
            epochs_completed: self.epochs_completed,
        }
    }

    /// Restores a snapshot (its label must be `label`).
    pub fn restore(&mut self, s: &StateSnapshot, label: &str) -> Result<()> {
        if s.label != label {
            return Err(NetError::Storage(format!("the snapshot is of a `{}` run; this run is `{label}`", s.label)));
        }
        self.core.restore(&s.centre, s.clock, &s.workers)?;
        match (&mut self.barrier, &s.barrier) {
            (Some(b), Some(r)) => b.restore(r)?,
            (None, None) => {}
            _ => return Err(NetError::Storage("the snapshot's averaging state does not fit this trainer".into())),
        }
        self.members.restore(&s.members);
        self.epochs_completed = s.epochs_completed;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Add;
    use crate::rules::testing::DistanceScaled;

    fn state(workers: u32, averaging: bool) -> PsState {
        let rule: Box<dyn crate::rules::UpdateRule> = if averaging { Box::new(Add) } else { Box::new(DistanceScaled) };
        let barrier = averaging.then(|| RoundBarrier::new(2));
        let mut s = PsState::new(ServerCore::new(vec![0.0; 2], rule), Membership::new(workers), barrier);
        for w in 0..workers {
            s.apply(&Op::Join { worker: w, incarnation: 100 + w as u64, identity: "x" }).unwrap();
            s.members.connect(w).unwrap();
        }
        s
    }

    /// Applies `op` and its follow-ups, as the server does; returns every op applied.
    fn run(s: &mut PsState, op: Op<'static>, log: &mut Vec<Op<'static>>) {
        s.check(&op).unwrap();
        s.apply(&op).unwrap();
        log.push(op);
        while let Some(f) = s.follow_up() {
            s.apply(&f).unwrap();
            log.push(f);
        }
    }

    #[test]
    fn replaying_the_ops_rebuilds_the_same_state() {
        let mut s = state(2, false);
        let mut log = Vec::new();
        let d: &'static [f32] = &[1.0, -1.0];
        run(&mut s, Op::Pull { worker: 0 }, &mut log);
        run(&mut s, Op::Pull { worker: 1 }, &mut log);
        run(&mut s, Op::Commit { worker: 1, seq: 1, payload: d }, &mut log);
        run(&mut s, Op::Commit { worker: 0, seq: 1, payload: d }, &mut log);
        run(&mut s, Op::Epoch { worker: 0, epoch: 0 }, &mut log);
        run(&mut s, Op::Epoch { worker: 1, epoch: 0 }, &mut log);
        assert_eq!(log.last(), Some(&Op::EpochComplete { epoch: 0 }), "the epoch completed as a follow-up");
        run(&mut s, Op::Pull { worker: 1 }, &mut log);
        run(&mut s, Op::Commit { worker: 0, seq: 2, payload: d }, &mut log);
        let mut r = state(2, false);
        for op in &log {
            r.apply(op).unwrap();
        }
        assert_eq!(r.core.centre(), s.core.centre());
        assert_eq!(r.core.records(), s.core.records(), "clocks, sequences and pulled centres");
        assert_eq!(r.epochs_completed, 1);
        assert!(matches!(s.check(&Op::Commit { worker: 0, seq: 2, payload: d }), Err(NetError::Protocol(_))));
    }

    #[test]
    fn snapshots_hold_the_whole_state() {
        let mut s = state(2, true);
        let mut log = Vec::new();
        run(&mut s, Op::Submit { worker: 0, round: 0, weights: &[2.0, 4.0] }, &mut log);
        assert!(s.follow_up().is_none(), "worker 1 has not submitted");
        let snap = s.snapshot("averaging", 7);
        let mut r = state(2, true);
        r.restore(&snap, "averaging").unwrap();
        assert!(r.restore(&snap, "adag").is_err());
        // Both workers are away after the restore, and the round still waits for worker 1.
        assert!(r.follow_up().is_none());
        let mut log2 = Vec::new();
        run(&mut r, Op::Submit { worker: 1, round: 0, weights: &[0.0, 0.0] }, &mut log2);
        assert_eq!(log2[1], Op::CloseRound { round: 0 });
        assert_eq!(r.core.centre(), &[1.0, 2.0]);
        assert_eq!(r.core.clock(), 1);
    }
}
