//! The matrix-product sweep: the WGSL kernel (as the executor dispatches it) beside `matrixmultiply`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use distk_engine::cpu::gemm::{GemmShape, sgemm};
use distk_engine::wgpu_exec::{GpuContext, PipelineCache, WgpuExecutor};
use distk_engine::{Executor, GraphBuilder, MatMul, Op};

use crate::bench::{MatmulResult, median};

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| (((i + seed) * 2_654_435_761) % 2001) as f32 / 1000.0 - 1.0).collect()
}

/// Measures C = A B for square `n` on the GPU (kernel time) and on the CPU.
pub fn matmul_point(ctx: Arc<GpuContext>, cache: &mut PipelineCache, n: usize, repeats: usize) -> Result<MatmulResult> {
    let (a, b) = (values(n * n, 1), values(n * n, 2));
    let mut g = GraphBuilder::new();
    let x = g.input("a", vec![n, n]);
    let w = g.param("b", vec![n, n], b.clone(), true)?;
    let y = g.node("matmul", Op::MatMul(MatMul { trans_a: false, trans_b: false, alpha: 1.0 }), &[x, w])?;
    g.output(y);
    let mut exec = WgpuExecutor::new(ctx, g.finish(), cache)?;
    let gpu_out = exec.run(&[&a])?.remove(0);
    let flops = 2.0 * (n as f64).powi(3);
    // Enough products per timing for about a quarter second.
    let once = exec.run_kernels_only(1)?.as_secs_f64().max(1e-6);
    let reps = ((0.25 / once) as usize).clamp(1, 200);
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        times.push(exec.run_kernels_only(reps)? / reps as u32);
    }
    let wgsl = flops / median(times).as_secs_f64() / 1e9;

    let mut c = vec![0.0f32; n * n];
    let shape = GemmShape { m: n, k: n, n, a: (n, 1), b: (n, 1), c: (n, 1) };
    sgemm(shape, 1.0, &a, &b, 0.0, &mut c);
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let mut k = 0;
        while k == 0 || t.elapsed().as_secs_f64() < 0.2 {
            sgemm(shape, 1.0, &a, &b, 0.0, &mut c);
            k += 1;
        }
        times.push(t.elapsed() / k);
    }
    let cpu = flops / median(times).as_secs_f64() / 1e9;
    let scale = c.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64)).max(1e-30);
    let err = gpu_out.iter().zip(&c).fold(0.0f64, |m, (&g, &r)| m.max((g - r).abs() as f64)) / scale;
    Ok(MatmulResult { n, wgsl_gflops: wgsl, cpu_gflops: cpu, ratio: wgsl / cpu, rel_error: err })
}
