//! `distk-gpu evaluate`.

use anyhow::{Result, bail};
use distk_onnx::OnnxModel;

use crate::cli::EvaluateArgs;
use crate::commands::object_paths::Staging;
use crate::data::FeatureColumns;
use crate::data::dataset::{DataColumns, Dataset};
use crate::data::predictions::{predicted_class_at, single_output_threshold};
use crate::predictor::Predictor;
use crate::runtime::Runtime;
use crate::training::evaluate::Evaluator;
use crate::training::metrics::{classification, regression};
use crate::training::{is_regression_loss, model_widths};
use crate::transform::Transforms;

/// Prints loss, accuracy and rows, and for classification the confusion matrix and per-class
/// precision, recall and F1, for regression MSE and MAE (one JSON object with `--json`).
pub fn run(mut args: EvaluateArgs) -> Result<()> {
    let mut staging = Staging::default();
    staging.input(&mut args.model)?;
    staging.input(&mut args.data)?;
    evaluate(args)
}

fn evaluate(args: EvaluateArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let model = OnnxModel::load(&args.model)?;
    crate::training::model_io::refuse_fixed_batch_for_inference(&model)?;
    let (width, classes) = model_widths(&model)?;
    let mut transforms = Transforms::parse(&args.transform)?;
    if !transforms.unfitted().is_empty() {
        crate::data::fit::fit_standard_steps(&args.data, &mut transforms)?;
        eprintln!(
            "standard steps fitted on the evaluated rows (give the training rows' mean= and std= to scale alike): {:?}",
            transforms.texts()
        );
    }
    let cols = DataColumns {
        features: FeatureColumns::parse(&args.features_col),
        label: args.label_col.clone(),
        transforms,
        regression: crate::training::is_regression_loss(args.loss.as_deref()),
    };
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
    drop(ev);
    // Per-row outputs for the metrics beyond loss and accuracy.
    let threshold = single_output_threshold(&model);
    let mut predictor = Predictor::new(model, runtime)?;
    let mut outputs = Vec::with_capacity(data.rows * predictor.output_width);
    let mut start = 0;
    while start < data.rows {
        let n = args.batch_size.min(data.rows - start);
        outputs.extend(predictor.predict(n, &data.features[start * width..(start + n) * width])?);
        start += n;
    }
    let ow = predictor.output_width;
    let mut json = serde_json::to_value(r)?;
    let mut text = format!("loss {:.6}  accuracy {:.4}  rows {}", r.loss, r.accuracy, r.rows);
    if is_regression_loss(Some(&loss)) {
        let e = regression(&outputs, &data.labels);
        json["mse"] = e.mse.into();
        json["mae"] = e.mae.into();
        text.push_str(&format!("\nmse {:.6}  mae {:.6}", e.mse, e.mae));
    } else {
        let lw = data.label_width;
        // Target rows (one-hot or soft) name their class as predictions do: the argmax.
        let truth: Vec<usize> = if data.sparse() {
            data.labels.iter().map(|&l| l as usize).collect()
        } else {
            data.labels.chunks(lw).map(|t| predicted_class_at(t, 0.5) as usize).collect()
        };
        // One output: a probability above 0.5 after a Sigmoid, a logit above 0 otherwise.
        let predicted: Vec<usize> = outputs.chunks(ow).map(|o| predicted_class_at(o, threshold) as usize).collect();
        let report = classification(&truth, &predicted, ow.max(2));
        let report_json = serde_json::to_value(&report)?;
        for key in ["confusion_matrix", "per_class", "macro_f1", "weighted_f1"] {
            json[key] = report_json[key].clone();
        }
        text.push_str(&format!("\nmacro F1 {:.4}  weighted F1 {:.4}\n", report.macro_f1, report.weighted_f1));
        text.push_str("class  precision  recall  f1      support\n");
        for c in &report.per_class {
            text.push_str(&format!(
                "{:<6} {:<10.4} {:<7.4} {:<7.4} {}\n",
                c.class, c.precision, c.recall, c.f1, c.support
            ));
        }
        text.push_str("confusion matrix (rows: true class, columns: predicted)\n");
        for row in &report.confusion_matrix {
            text.push_str(&row.iter().map(|v| format!("{v:>5}")).collect::<String>());
            text.push('\n');
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&json)?);
    } else {
        println!("{}", text.trim_end());
    }
    Ok(())
}
