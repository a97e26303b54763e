//! `distk-gpu bench`.

use anyhow::Result;

use crate::cli::BenchArgs;

/// Runs the forward and matmul benchmarks.
pub fn run(_args: BenchArgs) -> Result<()> {
    anyhow::bail!("bench: not built yet")
}
