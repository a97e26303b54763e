//! The first pass of `standard` steps: mean and population standard deviation of their input
//! column over every row of a dataset (after the steps before them).

use std::path::Path;

use anyhow::{Result, anyhow};

use crate::data::reader::{DataReader, FeatureColumns, ReadOptions};
use crate::transform::standard::{Moments, Standard};
use crate::transform::{StepKind, Transforms};

/// Fits every `standard` step of `transforms` that has no mean and std on the rows of `path`.
pub fn fit_standard_steps(path: &Path, transforms: &mut Transforms) -> Result<()> {
    if !transforms.unfitted().is_empty() && path.as_os_str() == "-" {
        anyhow::bail!(
            "a standard step without mean= and std= needs a first pass over the data, and standard input can be read only once: give mean= and std=, or write the rows to a file"
        );
    }
    for i in transforms.unfitted() {
        let before = Transforms(transforms.0[..i].to_vec());
        let input = transforms.0[i].input.clone();
        let options = ReadOptions { batch: 8192, transforms: before, ..Default::default() };
        let mut reader = DataReader::open_with(path, &FeatureColumns(vec![input.clone()]), None, options)?;
        let mut moments = Moments::default();
        while let Some(b) = reader.next_batch()? {
            let col = b
                .batch
                .column_by_name(&input)
                .ok_or_else(|| anyhow!("{}: no column `{input}`", reader.locate_in(b.part, b.first_row)))?;
            moments.add(col.as_ref()).map_err(|e| {
                anyhow!(
                    "{}, column `{input}`: {}",
                    reader.locate_in(b.part, b.first_row + e.row.unwrap_or(0)),
                    e.message
                )
            })?;
        }
        let (mean, std) = moments
            .finish()
            .ok_or_else(|| anyhow!("`{}` has no rows to fit `{}` on", path.display(), transforms.0[i].text))?;
        transforms.0[i].kind = StepKind::Standard(Standard { mean: Some(mean), std: Some(std) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_input_cannot_be_fitted_on() {
        let mut t = Transforms::parse(&["standard:features:fs".into()]).unwrap();
        let e = fit_standard_steps(Path::new("-"), &mut t).unwrap_err().to_string();
        assert!(e.contains("standard input can be read only once"), "{e}");
    }
}
