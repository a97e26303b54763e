//! The synchronous barrier of model averaging (dist-keras' AveragingTrainer): in round `r` every live
//! worker commits its whole weights; once all live workers have committed (a worker that is lost or
//! done no longer counts), the centre becomes their mean `C = (1/n) sum_k W_k` and the round closes.
//! Workers that train shards of unequal size only wait longer; nobody waits for a worker that left.

use std::collections::{BTreeMap, BTreeSet};

use rkyv::{Archive, Deserialize, Serialize};

use crate::error::{NetError, Result};

/// The barrier as a snapshot keeps it.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BarrierRecord {
    /// The round being collected.
    pub round: u64,
    /// The sum of the weights submitted to it.
    pub sum: Vec<f64>,
    /// Who submitted to it.
    pub committed: Vec<u32>,
    /// Weights each worker committed, over all rounds.
    pub commits: Vec<(u32, u64)>,
}

/// The state of the current round.
#[derive(Clone, Debug, Default)]
pub struct RoundBarrier {
    round: u64,
    sum: Vec<f64>,
    committed: BTreeSet<u32>,
    commits: BTreeMap<u32, u64>,
}

impl RoundBarrier {
    /// A barrier at round 0 for centres of `len` values.
    pub fn new(len: usize) -> Self {
        RoundBarrier { round: 0, sum: vec![0.0; len], committed: BTreeSet::new(), commits: BTreeMap::new() }
    }

    /// The round being collected (rounds before it are complete).
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Weights `worker` committed (each counted once).
    pub fn commits_of(&self, worker: u32) -> u64 {
        self.commits.get(&worker).copied().unwrap_or(0)
    }

    /// Continues at `round` (after a restore).
    pub fn set_round(&mut self, round: u64) {
        self.round = round;
        self.committed.clear();
        self.sum.iter_mut().for_each(|v| *v = 0.0);
    }

    /// Adds `worker`'s weights to `round`. Returns false for a repeat (a retry) or a past round.
    pub fn submit(&mut self, worker: u32, round: u64, weights: &[f32]) -> Result<bool> {
        if weights.len() != self.sum.len() {
            return Err(NetError::Protocol(format!(
                "worker {worker} committed {} values; the centre has {}",
                weights.len(),
                self.sum.len()
            )));
        }
        if round < self.round || self.committed.contains(&worker) && round == self.round {
            return Ok(false);
        }
        if round > self.round {
            return Err(NetError::Protocol(format!(
                "worker {worker} committed round {round} while round {} is open",
                self.round
            )));
        }
        for (s, &w) in self.sum.iter_mut().zip(weights) {
            *s += w as f64;
        }
        self.committed.insert(worker);
        *self.commits.entry(worker).or_default() += 1;
        Ok(true)
    }

    /// Whether `worker` already submitted to the open round.
    pub fn submitted(&self, worker: u32) -> bool {
        self.committed.contains(&worker)
    }

    /// Whether the round can close: every worker in `live` has committed (and at least one has).
    pub fn ready(&self, live: &BTreeSet<u32>) -> bool {
        !self.committed.is_empty() && live.iter().all(|w| self.committed.contains(w))
    }

    /// Closes the open round (whoever committed): writes the mean into `centre`; returns the round.
    pub fn close(&mut self, centre: &mut [f32]) -> u64 {
        let n = self.committed.len().max(1) as f64;
        for (c, s) in centre.iter_mut().zip(&self.sum) {
            *c = (*s / n) as f32;
        }
        let closed = self.round;
        self.set_round(closed + 1);
        closed
    }

    /// Closes the round when every worker in `live` has committed (and at least one has): writes the
    /// mean into `centre` and returns the closed round.
    pub fn complete_if_ready(&mut self, live: &BTreeSet<u32>, centre: &mut [f32]) -> Option<u64> {
        self.ready(live).then(|| self.close(centre))
    }

    /// The barrier as a snapshot keeps it.
    pub fn record(&self) -> BarrierRecord {
        BarrierRecord {
            round: self.round,
            sum: self.sum.clone(),
            committed: self.committed.iter().copied().collect(),
            commits: self.commits.iter().map(|(&w, &n)| (w, n)).collect(),
        }
    }

    /// Restores a barrier from a snapshot.
    pub fn restore(&mut self, r: &BarrierRecord) -> Result<()> {
        if r.sum.len() != self.sum.len() {
            return Err(NetError::Protocol(format!(
                "a snapshot's averaging sum of {} values for a centre of {}",
                r.sum.len(),
                self.sum.len()
            )));
        }
        self.round = r.round;
        self.sum.copy_from_slice(&r.sum);
        self.committed = r.committed.iter().copied().collect();
        self.commits = r.commits.iter().copied().collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_round_closes_with_the_mean_of_the_live_workers() {
        let mut b = RoundBarrier::new(2);
        let mut centre = vec![0.0; 2];
        let live: BTreeSet<u32> = [0, 1, 2].into();
        assert!(b.submit(0, 0, &[1.0, 2.0]).unwrap());
        assert!(!b.submit(0, 0, &[9.0, 9.0]).unwrap(), "a retry is not counted twice");
        assert!(b.submit(1, 0, &[3.0, 4.0]).unwrap());
        assert_eq!(b.complete_if_ready(&live, &mut centre), None, "worker 2 has not committed");
        // Worker 2 is lost: the others do not wait for it.
        let live: BTreeSet<u32> = [0, 1].into();
        assert_eq!(b.complete_if_ready(&live, &mut centre), Some(0));
        assert_eq!(centre, vec![2.0, 3.0]);
        assert_eq!(b.round(), 1);
        assert!(!b.submit(1, 0, &[1.0, 1.0]).unwrap(), "a late retry of a closed round is ignored");
        assert!(b.submit(1, 2, &[1.0, 1.0]).is_err(), "a round in the future is a protocol error");
        assert!(b.submit(1, 1, &[1.0]).is_err());
    }

    #[test]
    fn an_empty_round_never_closes() {
        let mut b = RoundBarrier::new(1);
        let mut centre = vec![5.0];
        assert_eq!(b.complete_if_ready(&BTreeSet::new(), &mut centre), None);
        assert_eq!(centre, vec![5.0]);
    }
}
