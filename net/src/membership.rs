//! Which workers the parameter server knows, and what became of each: connected, away (known from
//! before a restart of the server, not reconnected yet), lost (its connection ended before it said it
//! was done), or done. Ids are `0..expected`; a worker may ask for its id (local launches, reconnects)
//! or let the server pick the lowest free one.
//!
//! Each worker process carries a random incarnation number. An id belongs to one process at a time:
//! another process asking for an id whose process is connected is refused ([`NetError::InUse`]); a
//! new process may take over an id whose process is gone (and numbers its commits after the last one
//! applied); a process whose id was taken over is refused when it comes back. Every connection gets a
//! new generation, so the end of an old connection does not mark a reconnected worker lost, and the
//! requests of a superseded connection are refused (fencing).

use std::collections::{BTreeMap, BTreeSet};

use rkyv::{Archive, Deserialize, Serialize};

use crate::error::{NetError, Result};
use crate::wire::ANY_WORKER;

/// The largest history a worker may report.
pub const MAX_REPORT: usize = 512 << 20;

/// What became of a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Connected and training.
    Connected,
    /// Known from before the server restarted; not reconnected yet (still waited for).
    Away,
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
    /// The worker process holding the id.
    pub incarnation: u64,
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

/// A member as a snapshot keeps it (connections are not kept: a restored member is away or done).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MemberRecord {
    /// The worker id.
    pub id: u32,
    /// Who holds its secret.
    pub identity: String,
    /// The worker process holding the id.
    pub incarnation: u64,
    /// Epochs it finished.
    pub epochs_done: u64,
    /// Whether it is done.
    pub done: bool,
    /// Its history, once reported.
    pub report: Option<Vec<u8>>,
    /// Its final weights (ensembles).
    pub final_weights: Option<Vec<f32>>,
}

/// The decision on a worker's hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The worker id.
    pub worker: u32,
    /// Whether the id gets a new owner (its first process, or a new process taking over): the
    /// caller logs that before it connects the worker.
    pub new_owner: bool,
}

/// All workers of a run.
#[derive(Clone, Debug)]
pub struct Membership {
    members: BTreeMap<u32, Member>,
    expected: u32,
    generations: u64,
    /// The join deadline passed: ids nobody joined under no longer hold epochs back.
    missing_given_up: bool,
}

impl Membership {
    /// A run of `expected` workers.
    pub fn new(expected: u32) -> Self {
        Membership { members: BTreeMap::new(), expected, generations: 0, missing_given_up: false }
    }

    /// Workers the run expects.
    pub fn expected(&self) -> u32 {
        self.expected
    }

    /// Decides on the hello of process `incarnation` asking for `requested` (or [`ANY_WORKER`]);
    /// `rejoin` says the process was admitted before (it reconnects). Changes nothing.
    pub fn admit(&self, requested: u32, identity: &str, incarnation: u64, rejoin: bool) -> Result<Admission> {
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
        let Some(m) = self.members.get(&id) else { return Ok(Admission { worker: id, new_owner: true }) };
        if m.presence == Presence::Done {
            return Err(NetError::Refused(format!("worker {id} already finished")));
        }
        if m.identity != identity {
            return Err(NetError::Refused(format!("worker id {id} belongs to another identity")));
        }
        if m.incarnation == incarnation {
            return Ok(Admission { worker: id, new_owner: false });
        }
        if m.presence == Presence::Connected {
            return Err(NetError::InUse(format!(
                "worker id {id} is in use by another worker process that is still connected: give each worker its own --worker-id"
            )));
        }
        if rejoin {
            return Err(NetError::Refused(format!(
                "worker id {id} was taken over by another worker process while this one was away"
            )));
        }
        Ok(Admission { worker: id, new_owner: true })
    }

    /// Records process `incarnation` (held by `identity`) as the owner of `worker` (a new member is
    /// away until it connects).
    pub fn set_owner(&mut self, worker: u32, identity: &str, incarnation: u64) {
        let m = self.members.entry(worker).or_insert_with(|| Member {
            identity: identity.to_string(),
            incarnation,
            presence: Presence::Away,
            epochs_done: 0,
            report: None,
            final_weights: None,
            generation: 0,
        });
        m.identity = identity.to_string();
        m.incarnation = incarnation;
    }

    /// Marks `worker` connected on a new connection; returns the connection's generation.
    pub fn connect(&mut self, worker: u32) -> Result<u64> {
        self.generations += 1;
        let generation = self.generations;
        let m = self
            .members
            .get_mut(&worker)
            .ok_or_else(|| NetError::Protocol(format!("worker {worker} connected before it was admitted")))?;
        m.presence = Presence::Connected;
        m.generation = generation;
        Ok(generation)
    }

    /// Whether connection `generation` is `worker`'s current one.
    pub fn is_current(&self, worker: u32, generation: u64) -> bool {
        self.members.get(&worker).is_some_and(|m| m.generation == generation)
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

    /// Gives up on workers still away (known from before a restart, never reconnected); returns them.
    pub fn give_up_away(&mut self, reason: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for (&id, m) in self.members.iter_mut() {
            if m.presence == Presence::Away {
                m.presence = Presence::Lost(reason.to_string());
                out.push(id);
            }
        }
        out
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

    /// Checks that chunk `index` of `worker`'s history may be kept (at most [`MAX_REPORT`] bytes).
    pub fn check_report(&self, worker: u32, index: u64, len: usize) -> Result<()> {
        let have = match self.members.get(&worker).and_then(|m| m.report.as_ref()) {
            Some(r) if index > 0 => r.len(),
            _ => 0,
        };
        if have + len > MAX_REPORT {
            return Err(NetError::Protocol(format!("worker {worker}'s history exceeds {MAX_REPORT} bytes")));
        }
        Ok(())
    }

    /// Keeps chunk `index` of `worker`'s history (chunk 0 starts it again; at most
    /// [`MAX_REPORT`] bytes in all).
    pub fn report_chunk(&mut self, worker: u32, index: u64, bytes: &[u8]) -> Result<()> {
        self.check_report(worker, index, bytes.len())?;
        if let Some(m) = self.members.get_mut(&worker) {
            let r = m.report.get_or_insert_with(Vec::new);
            if index == 0 {
                r.clear();
            }
            r.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Workers connected now.
    pub fn live(&self) -> BTreeSet<u32> {
        self.members.iter().filter(|(_, m)| m.presence == Presence::Connected).map(|(&id, _)| id).collect()
    }

    /// Workers an averaging round waits for: connected, or away after a restart of the server.
    pub fn waited_for(&self) -> BTreeSet<u32> {
        self.members
            .iter()
            .filter(|(_, m)| matches!(m.presence, Presence::Connected | Presence::Away))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Whether every expected worker has joined and is now done or lost.
    pub fn all_finished(&self) -> bool {
        (self.members.len() as u32 == self.expected || self.missing_given_up)
            && self.members.values().all(|m| matches!(m.presence, Presence::Done | Presence::Lost(_)))
    }

    /// Epochs finished by every worker still counted (lost workers no longer hold the others back).
    pub fn epochs_done_by_all(&self) -> u64 {
        let counted: Vec<u64> =
            self.members.values().filter(|m| !matches!(m.presence, Presence::Lost(_))).map(|m| m.epochs_done).collect();
        if counted.is_empty() || (self.members.len() as u32) < self.expected && !self.missing_given_up {
            return 0;
        }
        counted.into_iter().min().unwrap_or(0)
    }

    /// Every worker that joined.
    pub fn members(&self) -> &BTreeMap<u32, Member> {
        &self.members
    }

    /// Past the join deadline: the ids nobody joined under stop holding epochs back (a late worker
    /// may still join under one). Returns them. Not kept in snapshots: a restarted server waits for
    /// its own deadline.
    pub fn give_up_missing(&mut self) -> Vec<u32> {
        self.missing_given_up = true;
        self.never_joined()
    }

    /// Ids expected but never seen.
    pub fn never_joined(&self) -> Vec<u32> {
        (0..self.expected).filter(|i| !self.members.contains_key(i)).collect()
    }

    /// The members as a snapshot keeps them.
    pub fn records(&self) -> Vec<MemberRecord> {
        self.members
            .iter()
            .map(|(&id, m)| MemberRecord {
                id,
                identity: m.identity.clone(),
                incarnation: m.incarnation,
                epochs_done: m.epochs_done,
                done: m.presence == Presence::Done,
                report: m.report.clone(),
                final_weights: m.final_weights.clone(),
            })
            .collect()
    }

    /// Members restored from a snapshot: done, or away until they reconnect.
    pub fn restore(&mut self, records: &[MemberRecord]) {
        self.members = records
            .iter()
            .map(|r| {
                let m = Member {
                    identity: r.identity.clone(),
                    incarnation: r.incarnation,
                    presence: if r.done { Presence::Done } else { Presence::Away },
                    epochs_done: r.epochs_done,
                    report: r.report.clone(),
                    final_weights: r.final_weights.clone(),
                    generation: 0,
                };
                (r.id, m)
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admits and connects process `inc`; returns (id, generation).
    fn join(m: &mut Membership, requested: u32, identity: &str, inc: u64) -> Result<(u32, u64)> {
        let a = m.admit(requested, identity, inc, false)?;
        if a.new_owner {
            m.set_owner(a.worker, identity, inc);
        }
        Ok((a.worker, m.connect(a.worker)?))
    }

    #[test]
    fn ids_are_assigned_and_checked() {
        let mut m = Membership::new(2);
        assert_eq!(join(&mut m, ANY_WORKER, "alice", 1).unwrap().0, 0);
        assert_eq!(join(&mut m, 1, "alice", 2).unwrap().0, 1);
        assert!(matches!(m.admit(ANY_WORKER, "alice", 3, false), Err(NetError::Refused(_))), "no free place");
        assert!(matches!(m.admit(5, "alice", 3, false), Err(NetError::Refused(_))));
        assert!(matches!(m.admit(0, "mallory", 1, false), Err(NetError::Refused(_))), "another identity's id");
    }

    #[test]
    fn a_live_id_is_refused_to_another_process_and_fenced_for_its_own() {
        let mut m = Membership::new(1);
        let (_, g1) = join(&mut m, 0, "x", 7).unwrap();
        // A second process asks for the same id while the first is connected.
        assert!(matches!(m.admit(0, "x", 8, false), Err(NetError::InUse(_))));
        assert!(matches!(m.admit(0, "x", 8, true), Err(NetError::InUse(_))));
        // The first process reconnects before its old connection timed out: the old one is fenced.
        let a = m.admit(0, "x", 7, true).unwrap();
        assert!(!a.new_owner);
        let g2 = m.connect(0).unwrap();
        assert!(!m.is_current(0, g1) && m.is_current(0, g2));
        assert!(!m.connection_ended(0, g1, "idle timeout"), "the old connection's end is not a loss");
        // The process dies; a new process may take the id over, and the dead one may not return.
        assert!(m.connection_ended(0, g2, "idle timeout"));
        let a = m.admit(0, "x", 9, false).unwrap();
        assert!(a.new_owner);
        m.set_owner(0, "x", 9);
        m.connect(0).unwrap();
        assert!(matches!(m.admit(0, "x", 7, true), Err(NetError::InUse(_))));
        let g = m.connect(0).unwrap();
        m.connection_ended(0, g, "gone");
        assert!(matches!(m.admit(0, "x", 7, true), Err(NetError::Refused(r)) if r.contains("taken over")));
    }

    #[test]
    fn a_lost_worker_is_named_and_a_reconnect_is_not_lost() {
        let mut m = Membership::new(2);
        let (a, ga) = join(&mut m, 0, "x", 1).unwrap();
        let (b, gb) = join(&mut m, 1, "x", 2).unwrap();
        // Worker 1 reconnects before its old connection times out.
        let (_, gb2) = join(&mut m, 1, "x", 2).unwrap();
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
        join(&mut m, 0, "x", 1).unwrap();
        m.epoch_done(0, 0);
        assert_eq!(m.epochs_done_by_all(), 0, "worker 1 has not joined yet");
        join(&mut m, 1, "x", 2).unwrap();
        m.epoch_done(1, 0);
        m.epoch_done(0, 1);
        assert_eq!(m.epochs_done_by_all(), 1);
        assert_eq!(m.never_joined(), Vec::<u32>::new());
    }

    #[test]
    fn restored_members_are_away_and_waited_for_until_given_up() {
        let mut m = Membership::new(3);
        join(&mut m, 0, "x", 1).unwrap();
        join(&mut m, 1, "x", 2).unwrap();
        join(&mut m, 2, "x", 3).unwrap();
        m.epoch_done(0, 3);
        m.done(2, Some(vec![1.0]));
        let mut r = Membership::new(3);
        r.restore(&m.records());
        assert_eq!(r.members()[&0].presence, Presence::Away);
        assert_eq!(r.members()[&0].epochs_done, 4);
        assert_eq!(r.members()[&2].presence, Presence::Done);
        assert_eq!(r.members()[&2].final_weights, Some(vec![1.0]));
        assert!(r.live().is_empty());
        assert_eq!(r.waited_for(), [0, 1].into());
        assert!(!r.all_finished(), "away workers are still expected");
        // Worker 0's process reconnects; worker 1 never does.
        assert!(!r.admit(0, "x", 1, true).unwrap().new_owner);
        r.connect(0).unwrap();
        assert_eq!(r.give_up_away("did not come back"), vec![1]);
        assert_eq!(r.waited_for(), [0].into());
    }
}
