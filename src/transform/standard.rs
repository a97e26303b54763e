//! `standard:INPUT:OUTPUT[:mean=m1;m2;...,std=s1;s2;...]`: `(x - mean) / std` per value, or per
//! element of a list or vector column; mean and population standard deviation (divided by n, as
//! Spark's `stddev_pop` that dist-keras' StandardTransformer used) from a first pass over the data
//! unless both are given. Fixed: dist-keras divided by a zero deviation (a constant column became
//! NaN or infinite); here a zero deviation divides by 1 (the column is only centred), as
//! scikit-learn's StandardScaler does. dist-keras recovered column names from Spark's aggregate
//! names; here the step names its input and output.

use arrow_array::{Array, ArrayRef};

use super::values;
use super::{StepArgs, StepError};
use crate::data::columns::CellError;

/// The standard step.
#[derive(Clone, Debug, PartialEq)]
pub struct Standard {
    /// Mean per element (one value for a scalar column); `None` until fitted.
    pub mean: Option<Vec<f64>>,
    /// Population standard deviation per element.
    pub std: Option<Vec<f64>>,
}

impl Standard {
    /// `mean=` and `std=` (both or neither).
    pub fn parse(args: &mut StepArgs) -> Result<Self, StepError> {
        let (mean, std) = (args.numbers("mean")?, args.numbers("std")?);
        match (&mean, &std) {
            (Some(m), Some(s)) if m.len() != s.len() => {
                Err(args.error(format!("mean has {} values but std has {}", m.len(), s.len())))
            }
            (Some(_), None) | (None, Some(_)) => {
                Err(args.error("give both mean= and std=, or neither (a first pass computes them)".into()))
            }
            _ if std.as_ref().is_some_and(|s| s.iter().any(|&x| x < 0.0)) => {
                Err(args.error("std must not be negative".into()))
            }
            _ => Ok(Standard { mean, std }),
        }
    }

    /// Whether mean and std are known.
    pub fn is_fitted(&self) -> bool {
        self.mean.is_some() && self.std.is_some()
    }

    /// The scaled column.
    pub fn apply(&self, input: &dyn Array) -> Result<ArrayRef, CellError> {
        let (Some(mean), Some(std)) = (&self.mean, &self.std) else {
            return Err(CellError { row: None, message: "standard step used before its first pass".into() });
        };
        let scale = |x: f64, k: usize| (x - mean[k]) / if std[k] == 0.0 { 1.0 } else { std[k] };
        if values::is_scalar(input) {
            if mean.len() != 1 {
                return Err(CellError {
                    row: None,
                    message: format!("is one number per row but mean has {} values", mean.len()),
                });
            }
            return Ok(values::float64(values::scalars(input)?.into_iter().map(|x| scale(x, 0)).collect()));
        }
        let (rows, width) = values::rows(input)?;
        if width != mean.len() && !rows.is_empty() {
            return Err(CellError {
                row: Some(0),
                message: format!("{width} values per row but mean and std have {}", mean.len()),
            });
        }
        let out = rows.iter().enumerate().map(|(i, &x)| scale(x as f64, i % width.max(1)) as f32).collect();
        Ok(values::float_list(out, width))
    }
}

/// Running sums for the first pass: mean and population std per element, in f64.
#[derive(Clone, Debug, Default)]
pub struct Moments {
    count: u64,
    /// The first row: sums are of `x - shift`, so that a large mean does not cancel the variance.
    shift: Vec<f64>,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

impl Moments {
    /// Adds a column's values.
    pub fn add(&mut self, input: &dyn Array) -> Result<(), CellError> {
        let (rows, width) = if values::is_scalar(input) {
            (values::scalars(input)?, 1)
        } else {
            let (r, w) = values::rows(input)?;
            (r.into_iter().map(f64::from).collect(), w)
        };
        if rows.is_empty() {
            return Ok(());
        }
        if self.sum.is_empty() {
            self.shift = rows[..width].to_vec();
            self.sum = vec![0.0; width];
            self.sum_sq = vec![0.0; width];
        }
        if self.sum.len() != width {
            return Err(CellError {
                row: Some(0),
                message: format!("{width} values per row where earlier rows have {}", self.sum.len()),
            });
        }
        for row in rows.chunks(width) {
            for (k, &x) in row.iter().enumerate() {
                let d = x - self.shift[k];
                self.sum[k] += d;
                self.sum_sq[k] += d * d;
            }
        }
        self.count += (rows.len() / width) as u64;
        Ok(())
    }

    /// Mean and population standard deviation per element.
    pub fn finish(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        if self.count == 0 {
            return None;
        }
        let n = self.count as f64;
        let shifted: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let std = self.sum_sq.iter().zip(&shifted).map(|(q, m)| (q / n - m * m).max(0.0).sqrt()).collect();
        let mean = shifted.iter().zip(&self.shift).map(|(m, s)| m + s).collect();
        Some((mean, std))
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Float64Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;

    use super::*;

    #[test]
    fn population_moments_and_the_scaled_values() {
        let col = Float64Array::from(vec![1.0, 2.0, 3.0, 4.0]);
        let mut m = Moments::default();
        m.add(&col).unwrap();
        let (mean, std) = m.finish().unwrap();
        assert_eq!(mean, vec![2.5]);
        assert!((std[0] - 1.25f64.sqrt()).abs() < 1e-15);
        let s = Standard { mean: Some(mean), std: Some(std) };
        let out = s.apply(&col).unwrap();
        let got = out.as_primitive::<Float64Type>().values().to_vec();
        let want = [-1.5, -0.5, 0.5, 1.5].map(|x| x / 1.25f64.sqrt());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{g} vs {w}");
        }
        // Per element of a list column; a constant element is only centred.
        let rows = values::float_list(vec![1.0, 5.0, 3.0, 5.0], 2);
        let mut m = Moments::default();
        m.add(rows.as_ref()).unwrap();
        let (mean, std) = m.finish().unwrap();
        assert_eq!((mean.clone(), std.clone()), (vec![2.0, 5.0], vec![1.0, 0.0]));
        let out = Standard { mean: Some(mean), std: Some(std) }.apply(rows.as_ref()).unwrap();
        assert_eq!(values::rows(out.as_ref()).unwrap(), (vec![-1.0, 0.0, 1.0, 0.0], 2));
    }
}
