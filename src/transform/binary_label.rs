//! `binary-label:INPUT:OUTPUT:label=V`: `[1, 0]` where the value equals V, else `[0, 1]`
//! (dist-keras' BinaryLabelTransformer). Numbers are compared as numbers (`1` equals `1.0`).

use arrow_array::{Array, ArrayRef};

use super::values;
use super::{StepArgs, StepError};
use crate::data::columns::CellError;

/// The binary-label step.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryLabel {
    /// The value that gives `[1, 0]`.
    pub label: f64,
}

impl BinaryLabel {
    /// `label=V`.
    pub fn parse(args: &mut StepArgs) -> Result<Self, StepError> {
        Ok(BinaryLabel { label: args.number("label", None)? })
    }

    /// The two-value rows.
    pub fn apply(&self, input: &dyn Array) -> Result<ArrayRef, CellError> {
        let v = values::scalars(input)?;
        let out: Vec<f32> = v.iter().flat_map(|&x| if x == self.label { [1.0, 0.0] } else { [0.0, 1.0] }).collect();
        Ok(values::float_list(out, 2))
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Int32Array;

    use super::*;

    #[test]
    fn equal_values_give_one_zero() {
        let out = BinaryLabel { label: 1.0 }.apply(&Int32Array::from(vec![1, 0, 2])).unwrap();
        assert_eq!(values::rows(out.as_ref()).unwrap(), (vec![1.0, 0.0, 0.0, 1.0, 0.0, 1.0], 2));
    }
}
