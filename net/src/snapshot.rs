//! The parameter server's snapshot: its whole state (centre, clock, every worker's pull clock,
//! pulled centre, sequence number and commit count, the averaging round, the members, the epochs
//! completed) and the last log record it holds, in one file written atomically.
//!
//! File: `[u32 magic "DSNP"][u32 version][u32 CRC-32 of the body][u32 0][u64 body length][8 zero
//! bytes][body: the rkyv archive of StateSnapshot]`. It is written to a temporary file, synced,
//! renamed over the old one, and the directory synced, so a crash leaves the old or the new snapshot
//! whole.

use std::io::Write;
use std::path::Path;

use rkyv::rancor::Error as RkyvError;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use crate::averaging::BarrierRecord;
use crate::error::{NetError, Result};
use crate::membership::MemberRecord;
use crate::server::WorkerRecord;
use crate::wal::sync_dir;

/// First bytes of a snapshot file ("DSNP").
pub const SNAPSHOT_MAGIC: u32 = 0x504E_5344;
/// Version of the snapshot layout.
pub const SNAPSHOT_VERSION: u32 = 1;
const PREFIX: usize = 32;

/// The parameter server's whole state.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StateSnapshot {
    /// What run this is (the trainer): a snapshot resumes only a run of the same kind.
    pub label: String,
    /// The last log record the snapshot holds.
    pub lsn: u64,
    /// The centre.
    pub centre: Vec<f32>,
    /// The clock.
    pub clock: u64,
    /// Every worker's server-side state.
    pub workers: Vec<WorkerRecord>,
    /// The averaging barrier.
    pub barrier: Option<BarrierRecord>,
    /// The members.
    pub members: Vec<MemberRecord>,
    /// Epochs every counted worker finished.
    pub epochs_completed: u64,
}

/// Writes `snap` to `path` atomically and durably; returns the bytes written.
pub fn write(path: &Path, snap: &StateSnapshot) -> Result<u64> {
    let body = rkyv::to_bytes::<RkyvError>(snap).map_err(|e| NetError::Storage(format!("encoding a snapshot: {e}")))?;
    let mut prefix = [0u8; PREFIX];
    prefix[0..4].copy_from_slice(&SNAPSHOT_MAGIC.to_le_bytes());
    prefix[4..8].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    prefix[8..12].copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
    prefix[16..24].copy_from_slice(&(body.len() as u64).to_le_bytes());
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let fail = |what: &str, e: std::io::Error| NetError::Storage(format!("cannot {what} {}: {e}", tmp.display()));
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| fail("create", e))?;
        f.write_all(&prefix).map_err(|e| fail("write", e))?;
        f.write_all(&body).map_err(|e| fail("write", e))?;
        f.sync_all().map_err(|e| fail("sync", e))?;
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| NetError::Storage(format!("cannot rename {} to {}: {e}", tmp.display(), path.display())))?;
    sync_dir(dir)?;
    Ok((PREFIX + body.len()) as u64)
}

/// Reads the snapshot at `path`, checking its magic, version, length and checksum.
pub fn read(path: &Path) -> Result<StateSnapshot> {
    let bytes = std::fs::read(path).map_err(|e| NetError::Storage(format!("cannot read {}: {e}", path.display())))?;
    let bad = |why: String| NetError::Storage(format!("the snapshot {} is unusable: {why}", path.display()));
    if bytes.len() < PREFIX {
        return Err(bad(format!("{} bytes is shorter than its header", bytes.len())));
    }
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if word(0) != SNAPSHOT_MAGIC {
        return Err(bad("not a distk-gpu snapshot".into()));
    }
    if word(4) != SNAPSHOT_VERSION {
        return Err(bad(format!("layout version {} (this build reads {SNAPSHOT_VERSION})", word(4))));
    }
    let len = u64::from_le_bytes(bytes[16..24].try_into().unwrap_or([0; 8]));
    if len != (bytes.len() - PREFIX) as u64 {
        return Err(bad(format!("{} bytes of body, the header says {len}", bytes.len() - PREFIX)));
    }
    if crc32fast::hash(&bytes[PREFIX..]) != word(8) {
        return Err(bad("it fails its checksum".into()));
    }
    let mut body = AlignedVec::<16>::with_capacity(bytes.len() - PREFIX);
    body.extend_from_slice(&bytes[PREFIX..]);
    rkyv::from_bytes::<StateSnapshot, RkyvError>(&body).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StateSnapshot {
        StateSnapshot {
            label: "adag".into(),
            lsn: 41,
            centre: vec![1.0, 2.0, 3.0],
            clock: 9,
            workers: vec![WorkerRecord {
                id: 0,
                pulled_at: 3,
                last_seq: Some(4),
                pulled: Some(vec![0.5; 3]),
                commits: 4,
            }],
            barrier: None,
            members: vec![MemberRecord {
                id: 0,
                identity: "alice".into(),
                incarnation: 77,
                epochs_done: 2,
                done: false,
                report: Some(b"{}".to_vec()),
                final_weights: None,
            }],
            epochs_completed: 2,
        }
    }

    #[test]
    fn a_snapshot_round_trips_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.bin");
        write(&path, &sample()).unwrap();
        assert_eq!(read(&path).unwrap(), sample());
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(read(&path), Err(NetError::Storage(m)) if m.contains("checksum")));
        std::fs::write(&path, &bytes[..n - 1]).unwrap();
        assert!(matches!(read(&path), Err(NetError::Storage(m)) if m.contains("bytes of body")));
        assert!(read(&dir.path().join("missing.bin")).is_err());
    }
}
