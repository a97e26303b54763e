//! `distk-gpu evaluate`.

use anyhow::{Result, bail};
use distk_onnx::OnnxModel;

use crate::cli::EvaluateArgs;
use crate::data::FeatureColumns;
use crate::data::dataset::Dataset;
use crate::runtime::Runtime;
use crate::training::evaluate::Evaluator;

/// Prints loss, accuracy and rows (one JSON object with `--json`).
pub fn run(args: EvaluateArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let model = OnnxModel::load(&args.model)?;
    let (width, classes) = model_widths(&model)?;
    let data = Dataset::load(&args.data, &FeatureColumns::parse(&args.features_col), &args.label_col, width, classes)?;
    let mut runtime = Runtime::open(args.device.device, args.device.adapter)?;
    let loss = args.loss.clone().unwrap_or_else(|| data.default_loss(classes).to_string());
    let mut ev = Evaluator::with_import(
        &model,
        &mut runtime,
        args.batch_size.min(data.rows),
        &loss,
        data.sparse(),
        &Default::default(),
    )?;
    let r = ev.evaluate(&data)?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("loss {:.6}  accuracy {:.4}  rows {}", r.loss, r.accuracy, r.rows);
    }
    Ok(())
}

/// Values per input row and outputs per row of a one-input, one-output model.
pub fn model_widths(model: &OnnxModel) -> Result<(usize, usize)> {
    let g = distk_onnx::import(model, 1)?.graph;
    if g.inputs.len() != 1 || g.outputs.len() != 1 {
        bail!("distk-gpu trains and evaluates models with one input and one output");
    }
    Ok((distk_engine::shape::numel(g.shape(g.inputs[0])), distk_engine::shape::numel(g.shape(g.outputs[0]))))
}
