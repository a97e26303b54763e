//! What the parameter server writes ahead: every change of its state as one [`Op`], encoded into a
//! log record's body. Replaying the ops in log order through [`crate::state::PsState::apply`] — the
//! same code that applied them the first time — rebuilds the state exactly: centre, clock, each
//! worker's pull clock, pulled centre (ADAG), sequence numbers and commit counts, the averaging round,
//! and which workers joined (with which process), finished epochs, reported and finished.
//!
//! Body layout: a 32-byte head `[u8 kind][3 zero bytes][u32 worker][u64 a][u64 b][u64 c]` and the
//! op's payload (f32 values or bytes). The head is a multiple of 16 bytes, so a payload in a
//! 16-aligned body is viewed in place as `&[f32]`.

use crate::error::{NetError, Result};

/// Bytes of an op's head.
pub const HEAD: usize = 32;

/// One change of the parameter server's state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op<'a> {
    /// A worker process (`incarnation`) was admitted under `worker`, held by `identity`.
    Join {
        /// The worker id.
        worker: u32,
        /// The worker process's random incarnation number.
        incarnation: u64,
        /// Who holds its secret.
        identity: &'a str,
    },
    /// An asynchronous commit, applied with the trainer's rule.
    Commit {
        /// The worker id.
        worker: u32,
        /// Its sequence number.
        seq: u64,
        /// The delta (or residual).
        payload: &'a [f32],
    },
    /// A worker pulled the centre (its pull clock and, for ADAG, its pulled centre).
    Pull {
        /// The worker id.
        worker: u32,
    },
    /// Averaging: a worker's whole weights for `round`.
    Submit {
        /// The worker id.
        worker: u32,
        /// The averaging round.
        round: u64,
        /// Its weights.
        weights: &'a [f32],
    },
    /// Averaging: `round` closed; the centre became the mean of what was submitted.
    CloseRound {
        /// The round.
        round: u64,
    },
    /// A worker finished `epoch` (0-based).
    Epoch {
        /// The worker id.
        worker: u32,
        /// The epoch.
        epoch: u64,
    },
    /// Every worker still counted finished `epoch`: the centre now is that epoch's centre.
    EpochComplete {
        /// The epoch.
        epoch: u64,
    },
    /// Chunk `index` of a worker's history.
    Report {
        /// The worker id.
        worker: u32,
        /// The chunk's index (0 starts the history again).
        index: u64,
        /// The chunk.
        bytes: &'a [u8],
    },
    /// A worker is done (with its final weights, or none).
    Done {
        /// The worker id.
        worker: u32,
        /// Its final weights (ensembles), or empty.
        weights: &'a [f32],
    },
}

const JOIN: u8 = 1;
const COMMIT: u8 = 2;
const PULL: u8 = 3;
const SUBMIT: u8 = 4;
const CLOSE_ROUND: u8 = 5;
const EPOCH: u8 = 6;
const EPOCH_COMPLETE: u8 = 7;
const REPORT: u8 = 8;
const DONE: u8 = 9;

fn head(kind: u8, worker: u32, a: u64, b: u64, c: u64) -> [u8; HEAD] {
    let mut h = [0u8; HEAD];
    h[0] = kind;
    h[4..8].copy_from_slice(&worker.to_le_bytes());
    h[8..16].copy_from_slice(&a.to_le_bytes());
    h[16..24].copy_from_slice(&b.to_le_bytes());
    h[24..32].copy_from_slice(&c.to_le_bytes());
    h
}

impl<'a> Op<'a> {
    /// The head and the payload of this op's record body (written one after the other).
    pub fn encode(&self) -> ([u8; HEAD], &'a [u8]) {
        match *self {
            Op::Join { worker, incarnation, identity } => (head(JOIN, worker, incarnation, 0, 0), identity.as_bytes()),
            Op::Commit { worker, seq, payload } => (head(COMMIT, worker, seq, 0, 0), bytemuck::cast_slice(payload)),
            Op::Pull { worker } => (head(PULL, worker, 0, 0, 0), &[]),
            Op::Submit { worker, round, weights } => (head(SUBMIT, worker, round, 0, 0), bytemuck::cast_slice(weights)),
            Op::CloseRound { round } => (head(CLOSE_ROUND, 0, round, 0, 0), &[]),
            Op::Epoch { worker, epoch } => (head(EPOCH, worker, epoch, 0, 0), &[]),
            Op::EpochComplete { epoch } => (head(EPOCH_COMPLETE, 0, epoch, 0, 0), &[]),
            Op::Report { worker, index, bytes } => (head(REPORT, worker, index, 0, 0), bytes),
            Op::Done { worker, weights } => (head(DONE, worker, 0, 0, 0), bytemuck::cast_slice(weights)),
        }
    }

    /// Decodes a record body (16-byte aligned, as replay hands it over).
    pub fn decode(body: &'a [u8]) -> Result<Op<'a>> {
        if body.len() < HEAD {
            return Err(NetError::Storage(format!("a log record of {} bytes is shorter than an op", body.len())));
        }
        let long = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().unwrap_or([0; 8]));
        let worker = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
        let (a, payload) = (long(8), &body[HEAD..]);
        let floats = || -> Result<&'a [f32]> {
            bytemuck::try_cast_slice(payload)
                .map_err(|e| NetError::Storage(format!("a log record's payload is not f32 values: {e}")))
        };
        Ok(match body[0] {
            JOIN => Op::Join {
                worker,
                incarnation: a,
                identity: std::str::from_utf8(payload)
                    .map_err(|_| NetError::Storage("a logged identity is not UTF-8".into()))?,
            },
            COMMIT => Op::Commit { worker, seq: a, payload: floats()? },
            PULL => Op::Pull { worker },
            SUBMIT => Op::Submit { worker, round: a, weights: floats()? },
            CLOSE_ROUND => Op::CloseRound { round: a },
            EPOCH => Op::Epoch { worker, epoch: a },
            EPOCH_COMPLETE => Op::EpochComplete { epoch: a },
            REPORT => Op::Report { worker, index: a, bytes: payload },
            DONE => Op::Done { worker, weights: floats()? },
            k => return Err(NetError::Storage(format!("a log record of unknown kind {k}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkyv::util::AlignedVec;

    #[test]
    fn every_op_round_trips() {
        let w = [1.0f32, -2.5, 3.25];
        let ops = [
            Op::Join { worker: 3, incarnation: 0xdead_beef, identity: "alice" },
            Op::Commit { worker: 1, seq: 42, payload: &w },
            Op::Pull { worker: 7 },
            Op::Submit { worker: 2, round: 9, weights: &w },
            Op::CloseRound { round: 9 },
            Op::Epoch { worker: 0, epoch: 4 },
            Op::EpochComplete { epoch: 4 },
            Op::Report { worker: 5, index: 1, bytes: b"{\"a\":1}" },
            Op::Done { worker: 6, weights: &[] },
        ];
        for op in ops {
            let (h, p) = op.encode();
            let mut body = AlignedVec::<16>::new();
            body.extend_from_slice(&h);
            body.extend_from_slice(p);
            assert_eq!(Op::decode(&body).unwrap(), op);
        }
        assert!(Op::decode(&[0u8; 8]).is_err());
        let mut bad = AlignedVec::<16>::new();
        bad.extend_from_slice(&head(99, 0, 0, 0, 0));
        assert!(Op::decode(&bad).is_err());
    }
}
