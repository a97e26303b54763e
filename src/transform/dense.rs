//! `dense:INPUT:OUTPUT`: Spark ML vectors (sparse or dense) or lists of any number type to dense
//! `list<float32>` rows (dist-keras' DenseTransformer). distk-gpu reads sparse vectors directly;
//! this step is for writing data other tools read densely.

use arrow_array::{Array, ArrayRef};

use super::values;
use crate::data::columns::CellError;

/// The dense rows of `input`.
pub fn apply(input: &dyn Array) -> Result<ArrayRef, CellError> {
    let (rows, width) = values::rows(input)?;
    Ok(values::float_list(rows, width))
}
