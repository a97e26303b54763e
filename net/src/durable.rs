//! The parameter server's durable state in its checkpoint directory: `state.bin` (the last
//! snapshot, see [`crate::snapshot`]) and `wal/` (the write-ahead log of every op since, see
//! [`crate::wal`]). Recovery is the snapshot plus a replay of the log after it; a checkpoint writes
//! a new snapshot and removes the log segments it holds.
//!
//! When to checkpoint ([`CheckpointPolicy`]): every `every_updates` updates of the centre, and
//! whenever the log has grown past `log_bytes` since the last snapshot, so the log (and the time a
//! recovery replays) stays bounded whatever the model size.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{NetError, Result};
use crate::journal::Op;
use crate::snapshot::{self, StateSnapshot};
use crate::state::{Effect, PsState};
use crate::wal::{self, TornTail, Wal, WalOptions};

/// The snapshot's file name in the checkpoint directory.
pub const SNAPSHOT_FILE: &str = "state.bin";
/// The log's directory in the checkpoint directory.
pub const WAL_DIR: &str = "wal";

/// The snapshot's path in `dir`.
pub fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOT_FILE)
}

/// The log's directory in `dir`.
pub fn wal_dir(dir: &Path) -> PathBuf {
    dir.join(WAL_DIR)
}

/// What a recovery found and did.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// The snapshot's clock.
    pub snapshot_clock: u64,
    /// The last log record the snapshot held.
    pub snapshot_lsn: u64,
    /// Log records replayed after it.
    pub replayed_records: u64,
    /// Of which commits (asynchronous commits and averaging submissions).
    pub replayed_commits: u64,
    /// Bytes of log replayed.
    pub replayed_bytes: u64,
    /// The clock after the replay.
    pub clock: u64,
    /// A torn or corrupt tail cut off the log.
    pub torn: Option<TornTail>,
    /// Seconds the recovery took (reading the snapshot and replaying).
    pub seconds: f64,
    /// Epochs completed during the replayed stretch: (epoch, clock, centre then).
    pub epoch_centres: Vec<(u64, u64, Vec<f32>)>,
}

/// When to write a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Updates of the centre between snapshots.
    pub every_updates: u64,
    /// Bytes of log between snapshots.
    pub log_bytes: u64,
}

impl CheckpointPolicy {
    /// Snapshots every `every_updates` updates, and whenever the log outgrows 256 MiB or eight
    /// times the state's size (`state_floats` values), whichever is larger.
    pub fn new(every_updates: u64, state_floats: usize) -> Self {
        CheckpointPolicy {
            every_updates: every_updates.max(1),
            log_bytes: (256u64 << 20).max(32 * state_floats as u64),
        }
    }

    /// Whether a snapshot is due after `updates` updates and `log_bytes` bytes of log since the last.
    pub fn due(&self, updates: u64, log_bytes: u64) -> bool {
        updates >= self.every_updates || log_bytes >= self.log_bytes
    }
}

/// Starts a new run in `dir`: an earlier run's snapshot and log there are removed, the initial
/// state is snapshotted, and (with `wal`) an empty log is opened.
pub fn start(dir: &Path, state: &PsState, label: &str, wal: Option<WalOptions>) -> Result<Option<Wal>> {
    std::fs::create_dir_all(dir).map_err(|e| NetError::Storage(format!("cannot create {}: {e}", dir.display())))?;
    let wdir = wal_dir(dir);
    for (_, seg) in wal::segments(&wdir)? {
        std::fs::remove_file(&seg).map_err(|e| NetError::Storage(format!("cannot remove {}: {e}", seg.display())))?;
    }
    snapshot::write(&snapshot_path(dir), &state.snapshot(label, 0))?;
    let Some(options) = wal else { return Ok(None) };
    let (w, _) = Wal::open(&wdir, 0, options, |_, _| Ok(()))?;
    Ok(Some(w))
}

/// Recovers `state` from `dir`: its snapshot, then every log record after it, replayed through
/// [`PsState::apply`]. With `wal`, the log stays open for appending; without, a snapshot holding
/// the replayed records is written and the log removed.
pub fn recover(
    dir: &Path,
    state: &mut PsState,
    label: &str,
    wal: Option<WalOptions>,
) -> Result<(Option<Wal>, Recovery)> {
    let started = Instant::now();
    let snap: StateSnapshot = snapshot::read(&snapshot_path(dir))?;
    state.restore(&snap, label)?;
    let mut r = Recovery { snapshot_clock: snap.clock, snapshot_lsn: snap.lsn, ..Default::default() };
    let (log, replayed) = Wal::open(&wal_dir(dir), snap.lsn, wal.unwrap_or_default(), |lsn, body| {
        replay_record(state, lsn, body, &mut r)
    })?;
    r.replayed_records = replayed.records;
    r.replayed_bytes = replayed.bytes;
    r.torn = replayed.torn;
    r.clock = state.core.clock();
    r.seconds = started.elapsed().as_secs_f64();
    if wal.is_some() {
        return Ok((Some(log), r));
    }
    let last = log.rotate()?;
    snapshot::write(&snapshot_path(dir), &state.snapshot(label, last))?;
    log.remove_through(last)?;
    drop(log);
    for (_, seg) in wal::segments(&wal_dir(dir))? {
        std::fs::remove_file(&seg).map_err(|e| NetError::Storage(format!("cannot remove {}: {e}", seg.display())))?;
    }
    Ok((None, r))
}

/// Replays log record `lsn` (its body) into `state` through [`PsState::apply`], the code that
/// applied it the first time; counts it in `r` and keeps the centres of epochs it completes.
pub fn replay_record(state: &mut PsState, lsn: u64, body: &[u8], r: &mut Recovery) -> Result<()> {
    let op = Op::decode(body)?;
    if matches!(op, Op::Commit { .. } | Op::Submit { .. }) {
        r.replayed_commits += 1;
    }
    let effect = state
        .apply(&op)
        .map_err(|e| NetError::Storage(format!("log record {lsn} does not apply to the recovered state: {e}")))?;
    if let Effect::EpochComplete { epoch, clock } = effect {
        r.epoch_centres.push((epoch, clock, state.core.centre().to_vec()));
    }
    Ok(())
}

/// Writes `snap` as the snapshot of `dir` and removes the log segments it holds; returns the bytes
/// of the snapshot.
pub fn write_checkpoint(dir: &Path, wal: Option<&Wal>, snap: &StateSnapshot) -> Result<u64> {
    let bytes = snapshot::write(&snapshot_path(dir), snap)?;
    if let Some(w) = wal {
        w.remove_through(snap.lsn)?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::Membership;
    use crate::rules::testing::DistanceScaled;
    use crate::server::ServerCore;

    fn fresh() -> PsState {
        PsState::new(ServerCore::new(vec![0.0; 4], Box::new(DistanceScaled)), Membership::new(2), None)
    }

    /// Logs and applies `op` the way the server does.
    fn log(w: &Wal, s: &mut PsState, op: Op<'_>) {
        s.check(&op).unwrap();
        let (h, p) = op.encode();
        let lsn = w.append(&[&h, p]).unwrap();
        s.apply(&op).unwrap();
        w.durable_blocking(lsn).unwrap();
    }

    #[test]
    fn recovery_is_the_snapshot_plus_the_log_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = fresh();
        let w = start(dir.path(), &s, "adag", Some(WalOptions { preallocate: 4096 })).unwrap().unwrap();
        for worker in 0..2 {
            log(&w, &mut s, Op::Join { worker, incarnation: 9 + worker as u64, identity: "x" });
            log(&w, &mut s, Op::Pull { worker });
        }
        for seq in 1..=3 {
            log(&w, &mut s, Op::Commit { worker: 0, seq, payload: &[1.0, 0.5, 0.0, -1.0] });
        }
        // A checkpoint in the middle: the snapshot holds everything so far.
        let lsn = w.rotate().unwrap();
        write_checkpoint(dir.path(), Some(&w), &s.snapshot("adag", lsn)).unwrap();
        log(&w, &mut s, Op::Pull { worker: 1 });
        for seq in 1..=2 {
            log(&w, &mut s, Op::Commit { worker: 1, seq, payload: &[0.0, 1.0, 2.0, 3.0] });
        }
        log(&w, &mut s, Op::Epoch { worker: 0, epoch: 0 });
        log(&w, &mut s, Op::Epoch { worker: 1, epoch: 0 });
        log(&w, &mut s, Op::EpochComplete { epoch: 0 });
        let centre = s.core.centre().to_vec();
        drop(w); // a crash: nothing more is written

        let mut r = fresh();
        let on = Some(WalOptions::default());
        let (w, rec) = recover(dir.path(), &mut r, "adag", on).unwrap();
        assert_eq!(rec.snapshot_clock, 3);
        assert_eq!(rec.replayed_commits, 2);
        assert_eq!(rec.replayed_records, 6);
        assert_eq!(rec.clock, 5);
        assert!(rec.torn.is_none());
        assert_eq!(r.core.centre(), &centre[..]);
        assert_eq!(r.core.records(), s.core.records(), "pulled centres, clocks and sequences");
        assert_eq!(r.members.records(), s.members.records());
        assert_eq!(rec.epoch_centres, vec![(0, 5, centre.clone())]);
        assert!(recover(dir.path(), &mut fresh(), "dynsgd", on).is_err(), "another trainer's snapshot");
        drop(w);

        // Without the log: the replayed state becomes the snapshot and the log goes.
        let mut r2 = fresh();
        let (none, rec2) = recover(dir.path(), &mut r2, "adag", None).unwrap();
        assert!(none.is_none());
        assert_eq!(rec2.clock, 5);
        assert!(wal::segments(&wal_dir(dir.path())).unwrap().is_empty());
        let mut r3 = fresh();
        let (_, rec3) = recover(dir.path(), &mut r3, "adag", on).unwrap();
        assert_eq!((rec3.snapshot_clock, rec3.replayed_records), (5, 0));
        assert_eq!(r3.core.centre(), &centre[..]);
    }

    #[test]
    fn the_policy_bounds_updates_and_log_bytes() {
        let p = CheckpointPolicy::new(500, 10_000_000);
        assert_eq!(p.log_bytes, 320_000_000);
        assert!(!p.due(10, 1 << 20));
        assert!(p.due(500, 0));
        assert!(p.due(1, 320_000_000));
        assert_eq!(CheckpointPolicy::new(0, 10).log_bytes, 256 << 20);
    }
}
