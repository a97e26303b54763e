//! `distk-gpu predict`.

use anyhow::{Context, Result, bail};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use distk_onnx::OnnxModel;

use crate::cli::PredictArgs;
use crate::commands::object_paths::Staging;
use crate::data::FeatureColumns;
use crate::data::fit::fit_standard_steps;
use crate::data::parquet_output::ParquetOutput;
use crate::data::predictions::{prediction_batch, single_output_threshold};
use crate::data::reader::{DataReader, ReadOptions};
use crate::predictor::Predictor;
use crate::runtime::Runtime;
use crate::transform::Transforms;

/// Runs the model over the data and writes the predictions atomically, batch by batch: one file,
/// or for a directory input a directory with one part per input part.
pub fn run(mut args: PredictArgs) -> Result<()> {
    let mut staging = Staging::default();
    let out = staging.output(&mut args.out, false)?;
    staging.input(&mut args.model)?;
    staging.input(&mut args.data)?;
    if args.data.is_dir() {
        staging.refuse_existing(out)?;
    }
    let result = predict(args);
    staging.publish(result)
}

fn predict(args: PredictArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let keep: Vec<String> = args.keep_cols.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if let Some(c) = keep.iter().find(|c| *c == "prediction" || *c == "predicted_class") {
        bail!("--keep-cols `{c}`: the output has its own column of that name; rename it first");
    }
    let mut transforms = Transforms::parse(&args.transform)?;
    if !transforms.unfitted().is_empty() {
        fit_standard_steps(&args.data, &mut transforms)?;
        eprintln!("standard steps fitted on the predicted rows: {:?}", transforms.texts());
    }
    let model = OnnxModel::load(&args.model)?;
    let threshold = single_output_threshold(&model);
    let mut predictor = Predictor::new(model, Runtime::open(args.device.device, args.device.adapter)?)?;
    let options = ReadOptions { batch: args.batch_size, transforms, keep_columns: keep.clone(), ..Default::default() };
    let mut reader = DataReader::open_with(&args.data, &FeatureColumns::parse(&args.features_col), None, options)?;
    let mut out = ParquetOutput::create(&args.out, args.data.is_dir())?;
    while let Some((rows, batch)) = reader.next_rows_and_batch()? {
        if rows.width != predictor.row_width {
            bail!(
                "input width {} (in {}) does not match the model's input {} ({} values per row); check --features-col or the model",
                rows.width,
                reader.parts()[rows.part].display(),
                predictor.input_display,
                predictor.row_width
            );
        }
        let outputs = predictor.predict(rows.count, &rows.features).context("running the model")?;
        let kept = if keep.is_empty() {
            let no_columns = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.count));
            RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &no_columns)?
        } else {
            let schema = batch.batch.schema();
            let indices = keep.iter().map(|k| schema.index_of(k)).collect::<Result<Vec<_>, _>>()?;
            batch.batch.project(&indices)?
        };
        out.write(rows.part, &prediction_batch(&kept, &outputs, predictor.output_width, threshold)?)?;
    }
    if out.rows() == 0 {
        bail!("`{}` has no rows", args.data.display());
    }
    let total = out.rows();
    out.finish()?;
    eprintln!("wrote {total} predictions to {} ({})", args.out.display(), predictor.describe());
    Ok(())
}
