//! `label-index:INPUT:OUTPUT[:threshold=0.55,default_index=0]` or `...:argmax=true`: scores to a
//! class index (float64, as dist-keras emits it). dist-keras' LabelIndexTransformer returns the
//! **first** index whose score is at least the threshold (0.55), otherwise the argmax of the
//! scores above 0 (ties: the first), otherwise `default_index`; kept as the default so that
//! figures compare with the original. `argmax=true` is the plain argmax (ties: the first), what
//! `evaluate` and `predict`'s `predicted_class` use.

use arrow_array::{Array, ArrayRef};

use super::values;
use super::{StepArgs, StepError};
use crate::data::columns::CellError;

/// The label-index step.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelIndex {
    /// The activation threshold, `None` for the plain argmax.
    pub threshold: Option<f64>,
    /// The index when no score is above 0 (threshold rule only).
    pub default_index: usize,
}

impl LabelIndex {
    /// `threshold=`, `default_index=`, or `argmax=true`.
    pub fn parse(args: &mut StepArgs) -> Result<Self, StepError> {
        let argmax = match args.text("argmax").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => return Err(args.error(format!("argmax={v} is neither true nor false"))),
        };
        if argmax {
            return Ok(LabelIndex { threshold: None, default_index: 0 });
        }
        let threshold = args.number("threshold", Some(0.55))?;
        let default_index = args.number("default_index", Some(0.0))?;
        if default_index < 0.0 || default_index.fract() != 0.0 {
            return Err(args.error(format!("default_index={default_index} is not a class index")));
        }
        Ok(LabelIndex { threshold: Some(threshold), default_index: default_index as usize })
    }

    fn index(&self, row: &[f32]) -> usize {
        let argmax = |keep: &dyn Fn(f32) -> bool| {
            let mut best: Option<usize> = None;
            for (i, &v) in row.iter().enumerate() {
                if keep(v) && best.is_none_or(|b| v > row[b]) {
                    best = Some(i);
                }
            }
            best
        };
        match self.threshold {
            None => argmax(&|_| true).unwrap_or(0),
            Some(t) => {
                row.iter().position(|&v| v as f64 >= t).or_else(|| argmax(&|v| v > 0.0)).unwrap_or(self.default_index)
            }
        }
    }

    /// The class index of each row of scores.
    pub fn apply(&self, input: &dyn Array) -> Result<ArrayRef, CellError> {
        let (rows, width) = values::rows(input)?;
        Ok(values::float64(rows.chunks(width.max(1)).map(|r| self.index(r) as f64).collect()))
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;

    use super::*;

    fn indices(s: &LabelIndex, rows: Vec<f32>, width: usize) -> Vec<f64> {
        s.apply(values::float_list(rows, width).as_ref()).unwrap().as_primitive::<Float64Type>().values().to_vec()
    }

    #[test]
    fn the_threshold_rule_and_the_plain_argmax() {
        let seed = LabelIndex { threshold: Some(0.55), default_index: 7 };
        // First index at or above 0.55 (not the largest); else argmax of positives; else default.
        let rows = vec![0.56, 0.9, 0.0, /**/ 0.2, 0.3, 0.3, /**/ -1.0, 0.0, -0.5];
        assert_eq!(indices(&seed, rows.clone(), 3), vec![0.0, 1.0, 7.0]);
        let plain = LabelIndex { threshold: None, default_index: 0 };
        assert_eq!(indices(&plain, rows, 3), vec![1.0, 1.0, 1.0]);
    }
}
