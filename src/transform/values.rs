//! Reading a step's input column and building its output column.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, ListArray};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field};

use crate::data::columns::{self, CellError};

/// `list<float32>`, the type of list columns steps write.
pub fn float_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("element", DataType::Float32, false)))
}

/// A `list<float32>` column of `rows.len() / width` rows.
pub fn float_list(rows: Vec<f32>, width: usize) -> ArrayRef {
    let n = rows.len().checked_div(width).unwrap_or(0);
    let values = arrow_array::Float32Array::from(rows);
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(width, n));
    Arc::new(ListArray::new(Arc::new(Field::new("element", DataType::Float32, false)), offsets, Arc::new(values), None))
}

/// The rows of a list or vector column, flat, and their width.
pub fn rows(input: &dyn Array) -> Result<(Vec<f32>, usize), CellError> {
    let mut out = Vec::new();
    let width = columns::push_rows(input, &mut out)?.unwrap_or(0);
    Ok((out, width))
}

/// The values of a scalar number column as f64 (the data layer's reading).
pub use crate::data::columns::scalars;

/// A float64 column.
pub fn float64(values: Vec<f64>) -> ArrayRef {
    Arc::new(Float64Array::from(values))
}

/// Whether the column holds one number per row.
pub fn is_scalar(a: &dyn Array) -> bool {
    matches!(columns::column_shape(a.data_type()), Some(columns::ColumnShape::Scalar))
}
