//! `distk-gpu evaluate`.

use anyhow::{Result, bail};
use distk_onnx::OnnxModel;

use crate::cli::EvaluateArgs;
use crate::data::FeatureColumns;
use crate::data::dataset::{DataColumns, Dataset};
use crate::runtime::Runtime;
use crate::training::evaluate::Evaluator;
use crate::training::model_widths;
use crate::transform::Transforms;

/// Prints loss, accuracy and rows (one JSON object with `--json`).
pub fn run(args: EvaluateArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let model = OnnxModel::load(&args.model)?;
    let (width, classes) = model_widths(&model)?;
    let mut transforms = Transforms::parse(&args.transform)?;
    if !transforms.unfitted().is_empty() {
        crate::data::fit::fit_standard_steps(&args.data, &mut transforms)?;
        eprintln!(
            "standard steps fitted on the evaluated rows (give the training rows' mean= and std= to scale alike): {:?}",
            transforms.texts()
        );
    }
    let cols =
        DataColumns { features: FeatureColumns::parse(&args.features_col), label: args.label_col.clone(), transforms };
    let data = Dataset::load(&args.data, &cols, width, classes)?;
    let mut runtime = Runtime::open(args.device.device, args.device.adapter)?;
    let loss = args.loss.clone().unwrap_or_else(|| data.default_loss(classes).to_string());
    let mut ev = Evaluator::with_import(
        &model,
        &mut runtime,
        args.batch_size.min(data.rows),
        &loss,
        data.sparse(),
        &Default::default(),
        None,
    )?;
    let r = ev.evaluate(&data)?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("loss {:.6}  accuracy {:.4}  rows {}", r.loss, r.accuracy, r.rows);
    }
    Ok(())
}
