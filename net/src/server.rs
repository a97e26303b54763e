//! The parameter server as a plain state machine: the centre variable, the global clock, and per
//! worker the clock of its last pull, its last applied commit sequence number, and (for ADAG) the
//! centre it pulled. No sockets: the QUIC layer feeds it messages and sends what it returns.
//!
//! Guarantees it gives the transport: a commit is applied at most once (a retry with a sequence
//! number already applied is acknowledged without applying it again); a commit is applied before the
//! same worker's next pull is answered (the transport serves one worker's messages in order and
//! acknowledges a commit only after `commit` returned).

use std::collections::BTreeMap;

use crate::error::{NetError, Result};
use crate::rules::{CommitMeta, UpdateRule};

#[derive(Clone, Debug, Default, PartialEq)]
struct WorkerState {
    pulled_at: u64,
    last_seq: Option<u64>,
    pulled: Option<Vec<f32>>,
    commits: u64,
}

/// What a commit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitOutcome {
    /// False when the commit was a retry of one already applied.
    pub applied: bool,
    /// The clock after the commit.
    pub clock: u64,
    /// Commits by others between this worker's pull and this commit.
    pub staleness: u64,
}

/// The state a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The centre.
    pub centre: Vec<f32>,
    /// The global clock.
    pub clock: u64,
    /// Per worker: last-pull clock and last applied sequence number.
    pub workers: Vec<(u32, u64, Option<u64>)>,
}

/// The parameter server's state.
pub struct ServerCore {
    centre: Vec<f32>,
    clock: u64,
    workers: BTreeMap<u32, WorkerState>,
    rule: Box<dyn UpdateRule>,
}

impl ServerCore {
    /// A server holding `centre`, folding commits in with `rule`. The clock starts at 0.
    pub fn new(centre: Vec<f32>, rule: Box<dyn UpdateRule>) -> Self {
        ServerCore { centre, clock: 0, workers: BTreeMap::new(), rule }
    }

    /// The centre variable.
    pub fn centre(&self) -> &[f32] {
        &self.centre
    }

    /// Lets `f` rewrite the centre (an averaging round); when it returns true, that counts as one
    /// update of the clock, which is returned.
    pub fn update_centre_if(&mut self, f: impl FnOnce(&mut [f32]) -> bool) -> Option<u64> {
        if f(&mut self.centre) {
            self.clock += 1;
            Some(self.clock)
        } else {
            None
        }
    }

    /// Commits applied so far.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Commits applied per worker.
    pub fn commits_of(&self, worker: u32) -> u64 {
        self.workers.get(&worker).map_or(0, |w| w.commits)
    }

    /// Answers a pull: records the clock (and, for ADAG, a copy of the centre) for this worker.
    pub fn pull(&mut self, worker: u32) -> (u64, &[f32]) {
        let keep = self.rule.needs_pulled_centre();
        let w = self.workers.entry(worker).or_default();
        w.pulled_at = self.clock;
        if keep {
            match &mut w.pulled {
                Some(p) => p.copy_from_slice(&self.centre),
                None => w.pulled = Some(self.centre.clone()),
            }
        }
        (self.clock, &self.centre)
    }

    /// Applies a commit with sequence number `seq` (increasing per worker) straight from `payload`.
    pub fn commit(&mut self, worker: u32, seq: u64, payload: &[f32]) -> Result<CommitOutcome> {
        if payload.len() != self.centre.len() {
            return Err(NetError::Protocol(format!(
                "worker {worker} committed {} values; the centre has {}",
                payload.len(),
                self.centre.len()
            )));
        }
        let w = self.workers.entry(worker).or_default();
        let staleness = self.clock - w.pulled_at.min(self.clock);
        if w.last_seq.is_some_and(|last| seq <= last) {
            return Ok(CommitOutcome { applied: false, clock: self.clock, staleness });
        }
        let meta = CommitMeta { worker, staleness, pulled_centre: w.pulled.as_deref() };
        self.rule.apply(&mut self.centre, payload, &meta);
        w.last_seq = Some(seq);
        w.commits += 1;
        self.clock += 1;
        Ok(CommitOutcome { applied: true, clock: self.clock, staleness })
    }

    /// The state to checkpoint.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            centre: self.centre.clone(),
            clock: self.clock,
            workers: self.workers.iter().map(|(&id, w)| (id, w.pulled_at, w.last_seq)).collect(),
        }
    }

    /// Restores a checkpoint (pulled centres are not kept: ADAG treats the next commit of each
    /// worker as unscaled until it pulls again).
    pub fn restore(&mut self, s: &Snapshot) -> Result<()> {
        if s.centre.len() != self.centre.len() {
            return Err(NetError::Protocol(format!(
                "snapshot of {} values for a centre of {}",
                s.centre.len(),
                self.centre.len()
            )));
        }
        self.centre.copy_from_slice(&s.centre);
        self.clock = s.clock;
        self.workers = s
            .workers
            .iter()
            .map(|&(id, pulled_at, last_seq)| (id, WorkerState { pulled_at, last_seq, pulled: None, commits: 0 }))
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Adag, Add, DynSgd};

    #[test]
    fn staleness_counts_the_commits_of_others_since_the_pull() {
        let mut s = ServerCore::new(vec![0.0; 2], Box::new(DynSgd));
        s.pull(0);
        s.pull(1);
        assert_eq!(s.commit(1, 1, &[1.0, 1.0]).unwrap().staleness, 0);
        assert_eq!(
            s.commit(1, 2, &[1.0, 1.0]).unwrap().staleness,
            1,
            "own commits since its pull count too, as in DynSGD"
        );
        // Worker 0 pulled at clock 0; two commits since: scale 1/3.
        let o = s.commit(0, 1, &[3.0, 3.0]).unwrap();
        assert_eq!((o.staleness, o.clock), (2, 3));
        assert_eq!(s.centre(), &[1.0 + 0.5 + 1.0, 1.0 + 0.5 + 1.0]);
    }

    #[test]
    fn a_retried_commit_is_applied_once() {
        let mut s = ServerCore::new(vec![0.0], Box::new(Add));
        s.pull(4);
        assert!(s.commit(4, 1, &[1.0]).unwrap().applied);
        let retry = s.commit(4, 1, &[1.0]).unwrap();
        assert!(!retry.applied);
        assert_eq!((s.centre(), s.clock(), s.commits_of(4)), (&[1.0][..], 1, 1));
        assert!(s.commit(4, 2, &[1.0]).unwrap().applied);
        assert_eq!(s.centre(), &[2.0]);
    }

    #[test]
    fn wrong_lengths_are_protocol_errors() {
        let mut s = ServerCore::new(vec![0.0; 3], Box::new(Add));
        assert!(matches!(s.commit(0, 1, &[1.0]), Err(NetError::Protocol(_))));
        assert_eq!(s.clock(), 0);
    }

    #[test]
    fn adag_uses_the_centre_each_worker_pulled() {
        let mut s = ServerCore::new(vec![0.0], Box::new(Adag { gamma: 1.0 }));
        s.pull(0);
        s.pull(1);
        s.commit(1, 1, &[2.0]).unwrap(); // worker 1 pulled 0, centre 0: distance 0, full step -> 2
        s.commit(0, 1, &[1.0]).unwrap(); // worker 0 pulled 0, centre now 2: s = 1/(4+1) -> 2.2
        assert!((s.centre()[0] - 2.2).abs() < 1e-6, "{:?}", s.centre());
    }

    #[test]
    fn snapshots_restore_centre_clock_and_sequences() {
        let mut s = ServerCore::new(vec![0.0; 2], Box::new(Add));
        s.pull(0);
        s.commit(0, 5, &[1.0, 2.0]).unwrap();
        let snap = s.snapshot();
        let mut t = ServerCore::new(vec![0.0; 2], Box::new(Add));
        t.restore(&snap).unwrap();
        assert_eq!((t.centre(), t.clock()), (&[1.0, 2.0][..], 1));
        assert!(!t.commit(0, 5, &[1.0, 2.0]).unwrap().applied, "sequence numbers survive a restart");
    }
}
