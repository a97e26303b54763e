//! `distk-gpu inspect`.

use anyhow::Result;
use distk_onnx::{OnnxModel, inspect};

use crate::cli::InspectArgs;

/// Prints the model report.
pub fn run(args: InspectArgs) -> Result<()> {
    let staged = crate::storage::stage_input(&args.model)?;
    let model = OnnxModel::load(staged.path())?;
    let r = inspect(&model)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("model      {}", r.path);
    println!("producer   {} (IR {}, opset {})", r.producer, r.ir_version, r.opset);
    for (n, s) in &r.inputs {
        println!("input      {n} {s}");
    }
    for (n, s) in &r.outputs {
        println!("output     {n} {s}");
    }
    let ops: Vec<String> = r.op_counts.iter().map(|(k, v)| format!("{k} x{v}")).collect();
    println!("ops        {}", ops.join(", "));
    println!("parameters {} ({} bytes as f32)", r.parameter_count, r.parameter_bytes);
    println!("float initializers (trained or frozen, and why; --trainable/--frozen override):");
    for d in &r.initializers {
        println!("  {} {:?}  {}", d.name, d.shape, d.reason);
    }
    println!("nodes:");
    for n in &r.nodes {
        println!("  {n}");
    }
    if !r.lost_for_training.is_empty() {
        println!("lost in export:");
        for l in &r.lost_for_training {
            println!("  - {l}");
        }
    }
    if r.unsupported.is_empty() {
        println!("unsupported ops: none");
    } else {
        println!("unsupported ops:");
        for u in &r.unsupported {
            println!("  {} x{} (nodes: {})", u.op_type, u.count, u.nodes.join(", "));
        }
    }
    if let Some(e) = &r.import_error {
        println!("import error: {e}");
    }
    Ok(())
}
