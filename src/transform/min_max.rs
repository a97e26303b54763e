//! `min-max:INPUT:OUTPUT[:o_min=0,o_max=1,n_min=0,n_max=1]`: the linear map of `[o_min, o_max]`
//! onto `[n_min, n_max]`, per value (dist-keras' MinMaxTransformer: `scale * (x - o_max) + n_max`
//! with `scale = (n_max - n_min) / (o_max - o_min)`, the same map). Fixed: `o_min == o_max`
//! divided by zero; it is refused. Values outside `[o_min, o_max]` map outside `[n_min, n_max]`
//! as in the original (MNIST with o_max 250 puts 255 at 1.02).

use arrow_array::{Array, ArrayRef};

use super::values;
use super::{StepArgs, StepError};
use crate::data::columns::CellError;

/// The min-max step.
#[derive(Clone, Debug, PartialEq)]
pub struct MinMax {
    /// The old range's lower end.
    pub o_min: f64,
    /// The old range's upper end.
    pub o_max: f64,
    /// The new range's lower end.
    pub n_min: f64,
    /// The new range's upper end.
    pub n_max: f64,
}

impl MinMax {
    /// `o_min`, `o_max`, `n_min`, `n_max` (defaults 0, 1, 0, 1).
    pub fn parse(args: &mut StepArgs) -> Result<Self, StepError> {
        let s = MinMax {
            o_min: args.number("o_min", Some(0.0))?,
            o_max: args.number("o_max", Some(1.0))?,
            n_min: args.number("n_min", Some(0.0))?,
            n_max: args.number("n_max", Some(1.0))?,
        };
        if s.o_min == s.o_max {
            return Err(args.error(format!("o_min and o_max are both {}: the old range is empty", s.o_min)));
        }
        Ok(s)
    }

    fn map(&self, x: f64) -> f64 {
        let scale = (self.n_max - self.n_min) / (self.o_max - self.o_min);
        scale * (x - self.o_max) + self.n_max
    }

    /// The mapped column: scalars stay scalars (float64), lists and vectors become `list<float32>`.
    pub fn apply(&self, input: &dyn Array) -> Result<ArrayRef, CellError> {
        if values::is_scalar(input) {
            return Ok(values::float64(values::scalars(input)?.into_iter().map(|x| self.map(x)).collect()));
        }
        let (rows, width) = values::rows(input)?;
        Ok(values::float_list(rows.into_iter().map(|x| self.map(x as f64) as f32).collect(), width))
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Float64Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;

    use super::*;

    #[test]
    fn maps_the_old_range_onto_the_new() {
        let s = MinMax { o_min: 0.0, o_max: 250.0, n_min: 0.0, n_max: 1.0 };
        let out = s.apply(&Float64Array::from(vec![0.0, 125.0, 250.0, 255.0])).unwrap();
        assert_eq!(out.as_primitive::<Float64Type>().values().to_vec(), vec![0.0, 0.5, 1.0, 1.02]);
        let s = MinMax { o_min: -1.0, o_max: 1.0, n_min: 10.0, n_max: 20.0 };
        let out = s.apply(values::float_list(vec![-1.0, 0.0, 1.0, 0.5], 2).as_ref()).unwrap();
        assert_eq!(values::rows(out.as_ref()).unwrap(), (vec![10.0, 15.0, 20.0, 17.5], 2));
    }
}
