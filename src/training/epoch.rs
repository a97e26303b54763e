//! The order in which an epoch visits its rows (seeded shuffling), shared by `run` and the workers.

use rand::SeedableRng;
use rand::seq::SliceRandom;

/// The row order of an epoch.
pub fn epoch_order(rows: usize, shuffle: bool, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows).collect();
    if shuffle {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        order.shuffle(&mut rng);
    }
    order
}
