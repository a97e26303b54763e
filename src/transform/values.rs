//! Reading a step's input column and building its output column.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
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

/// The values of a scalar number column as f64.
pub fn scalars(a: &dyn Array) -> Result<Vec<f64>, CellError> {
    if let Some(r) = (0..a.len()).find(|&r| a.is_null(r)) {
        return Err(CellError { row: Some(r), message: "the value is null".into() });
    }
    macro_rules! cast {
        ($t:ty) => {
            a.as_primitive::<$t>().values().iter().map(|&x| x as f64).collect()
        };
    }
    Ok(match a.data_type() {
        DataType::Float64 => a.as_primitive::<Float64Type>().values().to_vec(),
        DataType::Float32 => cast!(Float32Type),
        DataType::Int64 => cast!(Int64Type),
        DataType::Int32 => cast!(Int32Type),
        DataType::Int16 => cast!(Int16Type),
        DataType::Int8 => cast!(Int8Type),
        DataType::UInt8 => cast!(UInt8Type),
        DataType::UInt16 => cast!(UInt16Type),
        DataType::UInt32 => cast!(UInt32Type),
        DataType::UInt64 => cast!(UInt64Type),
        other => return Err(CellError { row: None, message: format!("has type {other}; expected numbers") }),
    })
}

/// A float64 column.
pub fn float64(values: Vec<f64>) -> ArrayRef {
    Arc::new(Float64Array::from(values))
}

/// Whether the column holds one number per row.
pub fn is_scalar(a: &dyn Array) -> bool {
    matches!(columns::column_shape(a.data_type()), Some(columns::ColumnShape::Scalar))
}
