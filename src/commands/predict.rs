//! `distk-gpu predict`.

use anyhow::{Context, Result, bail};
use distk_onnx::OnnxModel;

use crate::cli::PredictArgs;
use crate::data::atomic::write_atomically;
use crate::data::predictions::PredictionWriter;
use crate::data::{DataReader, FeatureColumns};
use crate::predictor::Predictor;
use crate::runtime::Runtime;

/// Runs the model over the data and writes the predictions file atomically.
pub fn run(args: PredictArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let model = OnnxModel::load(&args.model)?;
    let mut predictor = Predictor::new(model, Runtime::open(args.device.device, args.device.adapter)?)?;
    let mut reader = DataReader::open(&args.data, &FeatureColumns::parse(&args.features_col), None, args.batch_size)?;
    let mut total = 0usize;
    write_atomically(&args.out, |file| {
        let mut writer = PredictionWriter::new(file)?;
        while let Some(rows) = reader.next_rows()? {
            if rows.width != predictor.row_width {
                bail!(
                    "input width {} (in `{}`) does not match the model's input {} ({} values per row); check --features-col or the model",
                    rows.width,
                    args.data.display(),
                    predictor.input_display,
                    predictor.row_width
                );
            }
            let out = predictor.predict(rows.count, &rows.features).context("running the model")?;
            writer.write(&out, predictor.output_width)?;
            total += rows.count;
        }
        if total == 0 {
            bail!("`{}` has no rows", args.data.display());
        }
        writer.finish()
    })?;
    eprintln!("wrote {total} predictions to {} ({})", args.out.display(), predictor.describe());
    Ok(())
}
