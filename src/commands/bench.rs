//! `distk-gpu bench`.

use std::sync::Arc;

use anyhow::{Result, bail};
use distk_engine::wgpu_exec::{PipelineCache, device};

use crate::bench::BenchReport;
use crate::bench::forward::{forward_throughput, train_throughput};
use crate::bench::matmul::matmul_point;
use crate::cli::BenchArgs;
use crate::runtime::DeviceChoice;

/// Runs the forward and matmul benchmarks and prints a table (or JSON).
pub fn run(args: BenchArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.suite == "ps" {
        let r = crate::bench::ps::ps_bench(args.seconds, args.repeats, !args.json, &args.wal_dir)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            println!("| parameters | clients | commits/s | GB/s |\n|---|---|---|---|");
            for c in &r.commits {
                println!("| {} | {} | {:.1} | {:.3} |", c.params, c.clients, c.commits_per_s, c.gb_per_s);
            }
            println!(
                "\napply a 10M delta: {:.2} GB/s; memcpy 10M floats: {:.2} GB/s; apply/memcpy {:.2}",
                r.apply_gb_per_s, r.memcpy_gb_per_s, r.apply_vs_memcpy
            );
            println!(
                "commit path (10M, 1 client) / raw quinn streams ({:.3} GB/s): {:.2}",
                r.raw_quinn_gb_per_s, r.commit_vs_raw_quinn
            );
            println!("\nwrite-ahead log in {}:", r.wal_dir);
            println!("| parameters | clients | commits/s without | commits/s with | with/without | snapshots |");
            println!("|---|---|---|---|---|---|");
            for w in &r.wal {
                println!(
                    "| {} | {} | {:.1} | {:.1} | {:.2} | {} |",
                    w.params, w.clients, w.no_wal_commits_per_s, w.wal_commits_per_s, w.ratio, w.snapshots
                );
            }
            println!("\n| parameters | commits replayed | MB of log | recovery s |\n|---|---|---|---|");
            for v in &r.recovery {
                println!("| {} | {} | {:.0} | {:.3} |", v.params, v.replayed_commits, v.log_mb, v.seconds);
            }
        }
        return Ok(());
    }
    let ctx = Arc::new(device::open(args.adapter)?);
    let adapter = format!("{} ({:?}, {:?})", ctx.info.name, ctx.info.backend, ctx.info.device_type);
    let mut forward = Vec::new();
    let paths: Vec<std::path::PathBuf> = if args.models.is_empty() {
        ["keras_mlp_mnist", "keras_cnn"].iter().map(|name| args.models_dir.join(format!("{name}.onnx"))).collect()
    } else {
        args.models.clone()
    };
    for path in paths {
        if !path.exists() {
            bail!(
                "`{}` not found: run bench from the repository root, or pass --models-dir or --model",
                path.display()
            );
        }
        for device in [DeviceChoice::Wgpu, DeviceChoice::Cpu] {
            let r = if args.suite == "train" {
                train_throughput(&path, device, args.adapter, args.batch_size, args.repeats)?
            } else {
                forward_throughput(&path, device, args.adapter, args.batch_size, args.repeats)?
            };
            if !args.json {
                eprintln!("{} {:16} {:50} {:>10.0} rows/s", args.suite, r.model, r.executor, r.rows_per_s);
            }
            forward.push(r);
        }
    }
    let mut cache = PipelineCache::default();
    let mut matmul = Vec::new();
    let sizes: &[usize] = if args.suite == "train" { &[] } else { &args.sizes };
    for &n in sizes {
        let r = matmul_point(ctx.clone(), &mut cache, n, args.repeats)?;
        if !args.json {
            eprintln!(
                "matmul n={n:5}  wgsl {:7.2} GFLOP/s  cpu {:7.2} GFLOP/s  ratio {:.3}",
                r.wgsl_gflops, r.cpu_gflops, r.ratio
            );
        }
        matmul.push(r);
    }
    let unix_time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let report = BenchReport { adapter, unix_time, forward, matmul };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("adapter: {}", report.adapter);
        println!("| model | executor | batch | rows/s |\n|---|---|---|---|");
        for r in &report.forward {
            println!("| {} | {} | {} | {:.0} |", r.model, r.executor, r.batch_size, r.rows_per_s);
        }
        println!("\n| n | WGSL GFLOP/s | CPU sgemm GFLOP/s | WGSL/CPU | rel. error |\n|---|---|---|---|---|");
        for r in &report.matmul {
            println!("| {} | {:.2} | {:.2} | {:.3} | {:.1e} |", r.n, r.wgsl_gflops, r.cpu_gflops, r.ratio, r.rel_error);
        }
    }
    Ok(())
}
