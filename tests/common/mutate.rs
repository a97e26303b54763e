//! The fuzz harnesses' mutator and guard (cargo-fuzz needs nightly; these run on stable, in CI, for
//! a fixed number of cases). Mutations are seeded and deterministic, so a failing case is named by
//! its number and reproduced by running the same test; `DISTK_FUZZ_CASES=N` runs N cases per
//! target instead of the default (longer local runs).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

/// A deterministic byte mutator (splitmix64).
pub struct Mutator {
    state: u64,
}

/// Values that sit on the edges of lengths, counts and signs.
const INTERESTING_U32: [u32; 9] = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0x8000_0000, u32::MAX];

impl Mutator {
    /// A mutator whose choices follow from `seed`.
    pub fn new(seed: u64) -> Self {
        Mutator { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    /// `input` with one to four of: a bit flipped, a byte or a 32-bit word set to an edge value, a
    /// run overwritten with random bytes, a chunk deleted, duplicated or inserted, the tail cut.
    pub fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..1 + self.below(4) {
            let len = out.len();
            let at = self.below(len.max(1));
            match self.below(8) {
                0 if len > 0 => out[at] ^= 1 << self.below(8),
                1 if len > 0 => out[at] = [0u8, 0xff, 0x7f, 0x80, b'0', b',', b'\n', b'"'][self.below(8)],
                2 if len >= 4 => {
                    let at = self.below(len - 3);
                    let v = INTERESTING_U32[self.below(INTERESTING_U32.len())];
                    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                3 if len > 0 => {
                    let end = (at + 1 + self.below(16)).min(len);
                    for b in &mut out[at..end] {
                        *b = self.next() as u8;
                    }
                }
                4 if len > 0 => {
                    let end = (at + 1 + self.below(64)).min(len);
                    out.drain(at..end);
                }
                5 if len > 0 => {
                    let end = (at + 1 + self.below(64)).min(len);
                    let chunk = out[at..end].to_vec();
                    let to = self.below(len + 1);
                    out.splice(to..to, chunk);
                }
                6 => {
                    let n = 1 + self.below(32);
                    let bytes: Vec<u8> = (0..n).map(|_| self.next() as u8).collect();
                    out.splice(at..at, bytes);
                }
                _ => out.truncate(at),
            }
        }
        out
    }
}

/// Cases per target: `DISTK_FUZZ_CASES`, else `default`.
pub fn cases(default: usize) -> usize {
    std::env::var("DISTK_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `f` on its own thread: `Ok` with its value, `Err` with its panic's message. A run longer
/// than `limit` fails the test at once as a hang, naming `what`.
pub fn bounded<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into())
        });
        let _ = tx.send(result);
    });
    match rx.recv_timeout(limit) {
        Ok(r) => r,
        Err(_) => panic!("{what}: no result within {limit:?} (a hang)"),
    }
}
