//! `distk-gpu transform`: dist-keras' transformers over a dataset, written as Parquet with every
//! column kept and the steps' columns appended.

use anyhow::{Result, bail};

use crate::cli::TransformArgs;
use crate::commands::object_paths::Staging;
use crate::data::fit::fit_standard_steps;
use crate::data::parquet_output::ParquetOutput;
use crate::data::reader::{DataReader, FeatureColumns, ReadOptions};
use crate::transform::Transforms;

/// Applies the steps and writes the output (a directory of parts for a directory input).
pub fn run(mut args: TransformArgs) -> Result<()> {
    let mut staging = Staging::default();
    let out = staging.output(&mut args.out, false)?;
    staging.input(&mut args.data)?;
    if args.data.is_dir() {
        staging.refuse_existing(out)?;
    }
    let result = transform(args);
    staging.publish(result)
}

fn transform(args: TransformArgs) -> Result<()> {
    if args.step.is_empty() {
        bail!("give at least one --step KIND:INPUT:OUTPUT[:args] (see `distk-gpu transform --help`)");
    }
    let mut transforms = Transforms::parse(&args.step)?;
    fit_standard_steps(&args.data, &mut transforms)?;
    for t in transforms.texts() {
        if t.starts_with("standard:") {
            eprintln!("fitted: --transform '{t}'");
        }
    }
    let options = ReadOptions { batch: 8192, transforms, keep_all_columns: true, ..Default::default() };
    let mut reader = DataReader::open_with(&args.data, &FeatureColumns(Vec::new()), None, options)?;
    let per_part = args.data.is_dir();
    let mut out = ParquetOutput::create(&args.out, per_part)?;
    while let Some(b) = reader.next_batch()? {
        out.write(b.part, &b.batch)?;
    }
    if out.rows() == 0 {
        bail!("`{}` has no rows", args.data.display());
    }
    let rows = out.rows();
    out.finish()?;
    eprintln!("wrote {rows} rows to {}", args.out.display());
    Ok(())
}
