//! Which workers the parameter server knows, and what became of each: connected, lost (its
//! connection ended before it said it was done), or done. Ids are `0..expected`; a worker may ask for
//! its id (local launches, reconnects) or let the server pick the lowest free one. A reconnecting
//! worker gets a new connection generation, so the end of its old connection does not mark it lost.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{NetError, Result};
use crate::wire::ANY_WORKER;

/// The largest history a worker may report.
pub const MAX_REPORT: usize = 512 << 20;

/// What became of a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Connected and training.
    Connected,
    /// Its connection ended before it was done (the reason).
    Lost(String),
    /// It finished its data and said so.
    Done,
}

/// One worker.
#[derive(Clone, Debug)]
pub struct Member {
    /// Who holds the secret it authenticated with.
    pub identity: String,
    /// Its state.
    pub presence: Presence,
    /// Epochs it finished.
    pub epochs_done: u64,
    /// Its history (JSON), once reported.
    pub report: Option<Vec<u8>>,
    /// Its final weights, when it sent them (ensembles).
    pub final_weights: Option<Vec<f32>>,
    generation: u64,
}

/// All workers of a run.
#[derive(Clone, Debug)]
pub struct Membership {
    members: BTreeMap<u32, Member>,
    expected: u32,
    generations: u64,
}

impl Membership {
    /// A run of `expected` workers.
    pub fn new(expected: u32) -> Self {
        Membership { members: BTreeMap::new(), expected, generations: 0 }
    }

    /// Workers the run expects.
    pub fn expected(&self) -> u32 {
        self.expected
    }

    /// Admits a worker asking for `requested` (or [`ANY_WORKER`]): returns its id and the
    /// connection generation.
    pub fn join(&mut self, requested: u32, identity: &str) -> Result<(u32, u64)> {
        let id = if requested == ANY_WORKER {
            (0..self.expected).find(|i| !self.members.contains_key(i)).ok_or_else(|| {
                NetError::Refused(format!("all {} worker places of this run are taken", self.expected))
            })?
        } else {
            requested
        };
        if id >= self.expected {
            return Err(NetError::Refused(format!(
                "worker id {id} is outside this run's {} workers (0..{})",
                self.expected,
                self.expected.saturating_sub(1)
            )));
        }
        if let Some(m) = self.members.get(&id) {
            match m.presence {
                Presence::Done => return Err(NetError::Refused(format!("worker {id} already finished"))),
                Presence::Connected | Presence::Lost(_) if m.identity != identity => {
                    return Err(NetError::Refused(format!("worker id {id} belongs to another identity")));
                }
                _ => {}
            }
        }
        self.generations += 1;
        let generation = self.generations;
        let m = self.members.entry(id).or_insert_with(|| Member {
            identity: identity.to_string(),
            presence: Presence::Connected,
            epochs_done: 0,
            report: None,
            final_weights: None,
            generation,
        });
        m.presence = Presence::Connected;
        m.generation = generation;
        Ok((id, generation))
    }

    /// The connection `generation` of `worker` ended: the worker is lost unless it is done or has
    /// reconnected since. Returns true when this marked it lost.
    pub fn connection_ended(&mut self, worker: u32, generation: u64, reason: &str) -> bool {
        match self.members.get_mut(&worker) {
            Some(m) if m.generation == generation && m.presence == Presence::Connected => {
                m.presence = Presence::Lost(reason.to_string());
                true
            }
            _ => false,
        }
    }

    /// `worker` finished epoch `epoch` (0-based).
    pub fn epoch_done(&mut self, worker: u32, epoch: u64) {
        if let Some(m) = self.members.get_mut(&worker) {
            m.epochs_done = m.epochs_done.max(epoch + 1);
        }
    }

    /// `worker` is done.
    pub fn done(&mut self, worker: u32, final_weights: Option<Vec<f32>>) {
        if let Some(m) = self.members.get_mut(&worker) {
            m.presence = Presence::Done;
            if final_weights.is_some() {
                m.final_weights = final_weights;
            }
        }
    }

    /// Keeps chunk `index` of `worker`'s history (chunk 0 starts it again; at most
    /// [`MAX_REPORT`] bytes in all).
    pub fn report_chunk(&mut self, worker: u32, index: u64, bytes: &[u8]) -> Result<()> {
        if let Some(m) = self.members.get_mut(&worker) {
            let r = m.report.get_or_insert_with(Vec::new);
            if index == 0 {
                r.clear();
            }
            if r.len() + bytes.len() > MAX_REPORT {
                return Err(NetError::Protocol(format!("worker {worker}'s history exceeds {MAX_REPORT} bytes")));
            }
            r.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Workers connected now.
    pub fn live(&self) -> BTreeSet<u32> {
        self.members.iter().filter(|(_, m)| m.presence == Presence::Connected).map(|(&id, _)| id).collect()
    }

    /// Whether every expected worker has joined and is now done or lost.
    pub fn all_finished(&self) -> bool {
        self.members.len() as u32 == self.expected && self.members.values().all(|m| m.presence != Presence::Connected)
    }

    /// Epochs finished by every worker still counted (lost workers no longer hold the others back).
    pub fn epochs_done_by_all(&self) -> u64 {
        let counted: Vec<u64> =
            self.members.values().filter(|m| !matches!(m.presence, Presence::Lost(_))).map(|m| m.epochs_done).collect();
        if counted.is_empty() || (self.members.len() as u32) < self.expected {
            return 0;
        }
        counted.into_iter().min().unwrap_or(0)
    }

    /// Every worker that joined.
    pub fn members(&self) -> &BTreeMap<u32, Member> {
        &self.members
    }

    /// Ids expected but never seen.
    pub fn never_joined(&self) -> Vec<u32> {
        (0..self.expected).filter(|i| !self.members.contains_key(i)).collect()
    }

    /// Marks `worker` done without a connection (restored from a snapshot).
    pub fn restore_done(&mut self, worker: u32, identity: &str) {
        self.members.insert(
            worker,
            Member {
                identity: identity.to_string(),
                presence: Presence::Done,
                epochs_done: 0,
                report: None,
                final_weights: None,
                generation: 0,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_assigned_and_checked() {
        let mut m = Membership::new(2);
        assert_eq!(m.join(ANY_WORKER, "alice").unwrap().0, 0);
        assert_eq!(m.join(1, "alice").unwrap().0, 1);
        assert!(matches!(m.join(ANY_WORKER, "alice"), Err(NetError::Refused(_))), "no free place");
        assert!(matches!(m.join(5, "alice"), Err(NetError::Refused(_))));
        assert!(matches!(m.join(0, "mallory"), Err(NetError::Refused(_))), "another identity's id");
    }

    #[test]
    fn a_lost_worker_is_named_and_a_reconnect_is_not_lost() {
        let mut m = Membership::new(2);
        let (a, ga) = m.join(0, "x").unwrap();
        let (b, gb) = m.join(1, "x").unwrap();
        // Worker 1 reconnects before its old connection times out.
        let (_, gb2) = m.join(1, "x").unwrap();
        assert!(!m.connection_ended(b, gb, "idle timeout"), "the old connection's end is not a loss");
        assert_eq!(m.live(), [0, 1].into());
        assert!(m.connection_ended(a, ga, "idle timeout"));
        assert_eq!(m.members()[&0].presence, Presence::Lost("idle timeout".into()));
        assert!(!m.all_finished());
        m.epoch_done(1, 0);
        assert_eq!(m.epochs_done_by_all(), 1, "the lost worker does not hold the epoch back");
        m.done(1, None);
        assert!(!m.connection_ended(1, gb2, "closed"), "a done worker is not lost");
        assert!(m.all_finished());
    }

    #[test]
    fn epochs_wait_for_every_expected_worker() {
        let mut m = Membership::new(2);
        m.join(0, "x").unwrap();
        m.epoch_done(0, 0);
        assert_eq!(m.epochs_done_by_all(), 0, "worker 1 has not joined yet");
        m.join(1, "x").unwrap();
        m.epoch_done(1, 0);
        m.epoch_done(0, 1);
        assert_eq!(m.epochs_done_by_all(), 1);
        assert_eq!(m.never_joined(), Vec::<u32>::new());
    }
}
