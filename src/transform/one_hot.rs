//! `one-hot:INPUT:OUTPUT:output_dim=N`: a class index to a list of N values, 1.0 at the index.
//! dist-keras' OneHotTransformer wrote a plain list and failed inside Spark on an index outside
//! `0..N`; here such an index is refused naming its row, and a non-whole value is refused too
//! (the original truncated it with `int()`).

use arrow_array::{Array, ArrayRef};

use super::values;
use super::{StepArgs, StepError};
use crate::data::columns::{self, CellError};

/// The one-hot step.
#[derive(Clone, Debug, PartialEq)]
pub struct OneHot {
    /// Values per output row.
    pub output_dim: usize,
}

impl OneHot {
    /// `output_dim=N`.
    pub fn parse(args: &mut StepArgs) -> Result<Self, StepError> {
        let output_dim = args.count("output_dim")?;
        if output_dim > 1 << 24 {
            return Err(args
                .error(format!("output_dim={output_dim} is more classes than a model can have (at most 16,777,216)")));
        }
        Ok(OneHot { output_dim })
    }

    /// The one-hot rows of `input`'s class indices.
    pub fn apply(&self, input: &dyn Array) -> Result<ArrayRef, CellError> {
        let classes = columns::class_indices(input)?;
        let mut out = vec![0.0f32; classes.len() * self.output_dim];
        for (r, &c) in classes.iter().enumerate() {
            if c < 0 || c as usize >= self.output_dim {
                return Err(CellError {
                    row: Some(r),
                    message: format!(
                        "class {c} is outside 0..{} (output_dim={})",
                        self.output_dim - 1,
                        self.output_dim
                    ),
                });
            }
            out[r * self.output_dim + c as usize] = 1.0;
        }
        Ok(values::float_list(out, self.output_dim))
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::{Float64Array, Int64Array};

    use super::*;
    use crate::transform::values::rows;

    #[test]
    fn indices_become_one_hot_rows() {
        let s = OneHot { output_dim: 3 };
        let out = s.apply(&Int64Array::from(vec![2, 0])).unwrap();
        assert_eq!(rows(out.as_ref()).unwrap(), (vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0], 3));
        let out = s.apply(&Float64Array::from(vec![1.0])).unwrap();
        assert_eq!(rows(out.as_ref()).unwrap(), (vec![0.0, 1.0, 0.0], 3));
        let e = s.apply(&Int64Array::from(vec![0, 3])).unwrap_err();
        assert_eq!(e.row, Some(1));
        assert!(e.message.contains("class 3 is outside 0..2"), "{}", e.message);
        assert!(s.apply(&Float64Array::from(vec![0.5])).is_err());
    }
}
