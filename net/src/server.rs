//! The parameter server as a plain state machine: the centre variable, the global clock, and per
//! worker the clock of its last pull, its last applied commit sequence number, and (for ADAG) the
//! centre it pulled. No sockets: the QUIC layer feeds it messages and sends what it returns.
//!
//! Guarantees it gives the transport: a commit is applied exactly once and never acknowledged
//! without having been applied. A worker numbers its commits 1, 2, 3... and sends the next only once
//! the last is acknowledged, so the only repeat it can send is a retry of its last commit (whose
//! acknowledgement was lost): that is acknowledged again without applying it twice. An older number
//! is refused, not acknowledged. A commit is applied before the same worker's next pull is answered
//! (the transport serves one worker's messages in order and acknowledges a commit only after
//! `commit` returned).

use std::collections::BTreeMap;

use rkyv::{Archive, Deserialize, Serialize};

use crate::error::{NetError, Result};
use crate::rules::{CommitMeta, UpdateRule};

#[derive(Clone, Debug, Default, PartialEq)]
struct WorkerState {
    pulled_at: u64,
    last_seq: Option<u64>,
    pulled: Option<Vec<f32>>,
    commits: u64,
}

/// One worker's state as a snapshot keeps it.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct WorkerRecord {
    /// The worker id.
    pub id: u32,
    /// The clock at its last pull.
    pub pulled_at: u64,
    /// The sequence number of its last applied commit.
    pub last_seq: Option<u64>,
    /// The centre it last pulled (ADAG).
    pub pulled: Option<Vec<f32>>,
    /// Commits applied from it.
    pub commits: u64,
}

/// What to do with a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitCheck {
    /// Not applied yet: apply it.
    Fresh,
    /// The retry of the last applied commit: acknowledge it again (it was applied once).
    Retry(CommitOutcome),
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

    /// The sequence number of `worker`'s last applied commit.
    pub fn last_seq(&self, worker: u32) -> Option<u64> {
        self.workers.get(&worker).and_then(|w| w.last_seq)
    }

    /// Decides on commit `seq` of `worker` with `len` values: fresh, the retry of the last applied
    /// commit, or an error (a wrong length, or a number older than the last applied one).
    pub fn check_commit(&self, worker: u32, seq: u64, len: usize) -> Result<CommitCheck> {
        if len != self.centre.len() {
            return Err(NetError::Protocol(format!(
                "worker {worker} committed {len} values; the centre has {}",
                self.centre.len()
            )));
        }
        let Some(w) = self.workers.get(&worker) else { return Ok(CommitCheck::Fresh) };
        match w.last_seq {
            Some(last) if seq == last => Ok(CommitCheck::Retry(CommitOutcome {
                applied: false,
                clock: self.clock,
                staleness: self.clock - w.pulled_at.min(self.clock),
            })),
            Some(last) if seq < last => Err(NetError::Protocol(format!(
                "worker {worker} sent commit {seq} after commit {last} was applied: \
                 it is not acknowledged (is another process using this worker id?)"
            ))),
            _ => Ok(CommitCheck::Fresh),
        }
    }

    /// Applies a commit with sequence number `seq` (increasing per worker) straight from `payload`;
    /// a retry of the last applied one is acknowledged without applying it again.
    pub fn commit(&mut self, worker: u32, seq: u64, payload: &[f32]) -> Result<CommitOutcome> {
        if let CommitCheck::Retry(o) = self.check_commit(worker, seq, payload.len())? {
            return Ok(o);
        }
        let w = self.workers.entry(worker).or_default();
        let staleness = self.clock - w.pulled_at.min(self.clock);
        let meta = CommitMeta { worker, staleness, pulled_centre: w.pulled.as_deref() };
        self.rule.apply(&mut self.centre, payload, &meta);
        w.last_seq = Some(seq);
        w.commits += 1;
        self.clock += 1;
        Ok(CommitOutcome { applied: true, clock: self.clock, staleness })
    }

    /// The per-worker state a snapshot keeps (with the pulled centres).
    pub fn records(&self) -> Vec<WorkerRecord> {
        self.workers
            .iter()
            .map(|(&id, w)| WorkerRecord {
                id,
                pulled_at: w.pulled_at,
                last_seq: w.last_seq,
                pulled: w.pulled.clone(),
                commits: w.commits,
            })
            .collect()
    }

    /// Restores the centre, the clock and every worker's state from a snapshot.
    pub fn restore(&mut self, centre: &[f32], clock: u64, workers: &[WorkerRecord]) -> Result<()> {
        if centre.len() != self.centre.len() {
            return Err(NetError::Protocol(format!(
                "snapshot of {} values for a centre of {}",
                centre.len(),
                self.centre.len()
            )));
        }
        if let Some(w) = workers.iter().find(|w| w.pulled.as_ref().is_some_and(|p| p.len() != centre.len())) {
            return Err(NetError::Protocol(format!(
                "the snapshot's pulled centre of worker {} has another size",
                w.id
            )));
        }
        self.centre.copy_from_slice(centre);
        self.clock = clock;
        self.workers = workers
            .iter()
            .map(|w| {
                let state = WorkerState {
                    pulled_at: w.pulled_at,
                    last_seq: w.last_seq,
                    pulled: w.pulled.clone(),
                    commits: w.commits,
                };
                (w.id, state)
            })
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Add;
    use crate::rules::testing::{DistanceScaled, StaleScaled};

    #[test]
    fn staleness_counts_the_commits_of_others_since_the_pull() {
        let mut s = ServerCore::new(vec![0.0; 2], Box::new(StaleScaled));
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
    fn a_retried_commit_is_applied_once_and_an_older_one_is_refused() {
        let mut s = ServerCore::new(vec![0.0], Box::new(Add));
        s.pull(4);
        assert!(s.commit(4, 1, &[1.0]).unwrap().applied);
        let retry = s.commit(4, 1, &[1.0]).unwrap();
        assert!(!retry.applied);
        assert_eq!((s.centre(), s.clock(), s.commits_of(4)), (&[1.0][..], 1, 1));
        assert!(s.commit(4, 2, &[1.0]).unwrap().applied);
        assert!(s.commit(4, 3, &[1.0]).unwrap().applied);
        assert_eq!(s.centre(), &[3.0]);
        // A second process numbering from 1 under the same id is never acknowledged.
        for seq in [1, 2] {
            assert!(matches!(s.commit(4, seq, &[1.0]), Err(NetError::Protocol(_))));
            assert!(matches!(s.check_commit(4, seq, 1), Err(NetError::Protocol(_))));
        }
        assert_eq!((s.centre(), s.clock(), s.commits_of(4)), (&[3.0][..], 3, 3));
    }

    #[test]
    fn wrong_lengths_are_protocol_errors() {
        let mut s = ServerCore::new(vec![0.0; 3], Box::new(Add));
        assert!(matches!(s.commit(0, 1, &[1.0]), Err(NetError::Protocol(_))));
        assert_eq!(s.clock(), 0);
    }

    #[test]
    fn adag_uses_the_centre_each_worker_pulled() {
        let mut s = ServerCore::new(vec![0.0], Box::new(DistanceScaled));
        s.pull(0);
        s.pull(1);
        s.commit(1, 1, &[2.0]).unwrap(); // worker 1 pulled 0, centre 0: distance 0, full step -> 2
        s.commit(0, 1, &[1.0]).unwrap(); // worker 0 pulled 0, centre now 2: s = 1/(4+1) -> 2.2
        assert!((s.centre()[0] - 2.2).abs() < 1e-6, "{:?}", s.centre());
    }

    #[test]
    fn snapshots_restore_centre_clock_sequences_and_pulled_centres() {
        let mut s = ServerCore::new(vec![0.0; 2], Box::new(DistanceScaled));
        s.pull(0);
        s.commit(0, 5, &[1.0, 2.0]).unwrap();
        s.pull(1);
        s.commit(0, 6, &[1.0, 1.0]).unwrap();
        let mut t = ServerCore::new(vec![0.0; 2], Box::new(DistanceScaled));
        t.restore(s.centre(), s.clock(), &s.records()).unwrap();
        assert_eq!((t.centre(), t.clock(), t.commits_of(0)), (s.centre(), 2, 2));
        assert!(!t.commit(0, 6, &[1.0, 2.0]).unwrap().applied, "sequence numbers survive a restart");
        // Worker 1's commit is scaled by its distance from the centre it pulled, on both.
        let a = s.commit(1, 1, &[1.0, 1.0]).unwrap();
        let b = t.commit(1, 1, &[1.0, 1.0]).unwrap();
        assert_eq!((a.staleness, a.clock), (b.staleness, b.clock));
        assert_eq!(s.centre(), t.centre(), "the pulled centre survived the restart");
    }
}
