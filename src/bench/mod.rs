//! The benchmark harness (`distk-gpu bench`): forward throughput of bundled models on both
//! executors, and a matrix-product sweep of the WGSL kernel beside a CPU BLAS-class baseline
//! (`matrixmultiply` sgemm), all measured in the same process so the ratios are fair.

pub mod forward;
pub mod matmul;
pub mod ps;

use std::time::Duration;

use serde::Serialize;

/// The median of some durations.
pub fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort_unstable();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

/// One forward-throughput measurement.
#[derive(Clone, Debug, Serialize)]
pub struct ForwardResult {
    /// The model file's stem.
    pub model: String,
    /// `wgpu: <adapter>` or `cpu`.
    pub executor: String,
    /// Rows per forward pass.
    pub batch_size: usize,
    /// Median rows per second (input upload and output readback included).
    pub rows_per_s: f64,
}

/// One matrix-product measurement.
#[derive(Clone, Debug, Serialize)]
pub struct MatmulResult {
    /// Square size.
    pub n: usize,
    /// WGSL kernel GFLOP/s (kernel time only, median).
    pub wgsl_gflops: f64,
    /// `matrixmultiply` sgemm GFLOP/s (median).
    pub cpu_gflops: f64,
    /// wgsl / cpu.
    pub ratio: f64,
    /// max |wgsl - cpu| / max |cpu| of the product (correctness check of the timed kernel).
    pub rel_error: f64,
}

/// Everything `bench` measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The adapter the WGSL numbers come from.
    pub adapter: String,
    /// When (UTC, seconds since the epoch).
    pub unix_time: u64,
    /// Forward throughput rows.
    pub forward: Vec<ForwardResult>,
    /// Matmul sweep rows.
    pub matmul: Vec<MatmulResult>,
}
