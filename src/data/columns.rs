//! Decoding Arrow columns into rows of f32: list columns (`list`, `large_list`, `fixed_size_list`
//! of any number type), Spark ML vectors (VectorUDT, dense and sparse) and scalar number columns;
//! labels as class indices (integers, or integral floats as StringIndexer writes them).
//!
//! Errors are [`CellError`]s: the row (within the batch) and what is wrong, so that the reader can
//! name the file, row group and row.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, StructArray};
use arrow_schema::{DataType, Fields};

/// The largest size a sparse vector may declare: its dense row is allocated (64 Mi values, 256 MiB).
pub const MAX_SPARSE_SIZE: usize = 1 << 26;

/// The most values one decoded batch may hold (1 GiB of f32): sparse sizes beyond any model
/// input are refused before they are allocated.
pub const MAX_BATCH_VALUES: usize = 1 << 28;

/// A bad value: its row within the batch (`None` for the whole column) and what is wrong.
#[derive(Debug)]
pub struct CellError {
    /// Row within the batch, when one row is at fault.
    pub row: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl CellError {
    fn at(row: usize, message: impl Into<String>) -> Self {
        CellError { row: Some(row), message: message.into() }
    }

    fn column(message: impl Into<String>) -> Self {
        CellError { row: None, message: message.into() }
    }
}

/// How a column holds one row's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnShape {
    /// One number per row.
    Scalar,
    /// A list of numbers per row.
    List,
    /// A Spark ML vector (`struct<type: int8, size: int32, indices: list<int32>, values: list<float64>>`).
    SparkVector,
}

/// The shape of a column of type `dt`, or `None` if it holds no numbers.
pub fn column_shape(dt: &DataType) -> Option<ColumnShape> {
    match dt {
        DataType::List(f) | DataType::LargeList(f) => is_number(f.data_type()).then_some(ColumnShape::List),
        DataType::FixedSizeList(f, _) => (is_number(f.data_type())
            || matches!(column_shape(f.data_type()), Some(ColumnShape::List))
                && matches!(f.data_type(), DataType::FixedSizeList(..)))
        .then_some(ColumnShape::List),
        DataType::Struct(fields) if is_spark_vector(fields) => Some(ColumnShape::SparkVector),
        other => is_number(other).then_some(ColumnShape::Scalar),
    }
}

/// Whether `fields` are those of Spark ML's VectorUDT as stored in Parquet or Arrow.
pub fn is_spark_vector(fields: &Fields) -> bool {
    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    names == ["type", "size", "indices", "values"]
}

/// Whether `dt` is a number type.
pub fn is_number(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Float32
            | DataType::Float64
            | DataType::Int64
            | DataType::Int32
            | DataType::Int16
            | DataType::Int8
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

/// Appends the numbers of `a` (no nulls) to `out` as f32.
pub fn push_numbers(a: &dyn Array, out: &mut Vec<f32>) -> Result<(), CellError> {
    if a.null_count() > 0 {
        let row = (0..a.len()).find(|&r| a.is_null(r)).unwrap_or(0);
        return Err(CellError::at(row, "the value is null"));
    }
    macro_rules! extend {
        ($t:ty) => {
            out.extend(a.as_primitive::<$t>().values().iter().map(|&x| x as f32))
        };
    }
    match a.data_type() {
        DataType::Float32 => out.extend_from_slice(a.as_primitive::<Float32Type>().values()),
        DataType::Float64 => extend!(Float64Type),
        DataType::Int64 => extend!(Int64Type),
        DataType::Int32 => extend!(Int32Type),
        DataType::Int16 => extend!(Int16Type),
        DataType::Int8 => extend!(Int8Type),
        DataType::UInt8 => extend!(UInt8Type),
        DataType::UInt16 => extend!(UInt16Type),
        DataType::UInt32 => extend!(UInt32Type),
        DataType::UInt64 => extend!(UInt64Type),
        other => return Err(CellError::column(format!("has element type {other}; expected numbers"))),
    }
    Ok(())
}

/// Appends every row of a list or Spark-vector column to `out`; returns the row width, equal for
/// all rows (`None` for an empty batch).
pub fn push_rows(col: &dyn Array, out: &mut Vec<f32>) -> Result<Option<usize>, CellError> {
    if let Some(r) = (0..col.len()).find(|&r| col.is_null(r)) {
        return Err(CellError::at(r, "the value is null"));
    }
    match col.data_type() {
        DataType::List(_) => {
            let l = col.as_list::<i32>();
            let offsets: Vec<usize> = l.value_offsets().iter().map(|&o| o as usize).collect();
            push_offset_rows(l.values().as_ref(), &offsets, out)
        }
        DataType::LargeList(_) => {
            let l = col.as_list::<i64>();
            let offsets: Vec<usize> = l.value_offsets().iter().map(|&o| o as usize).collect();
            push_offset_rows(l.values().as_ref(), &offsets, out)
        }
        DataType::FixedSizeList(_, _) => {
            // Nested fixed-size lists (a reshaped row) read flat, row-major.
            let l = col.as_fixed_size_list();
            // Slicing a fixed-size list slices its values (arrow-rs), level by level.
            let mut w = l.value_length() as usize;
            let mut leaf = l.values().clone();
            while let DataType::FixedSizeList(_, n) = leaf.data_type() {
                w *= *n as usize;
                let next = leaf.as_fixed_size_list().values().clone();
                leaf = next;
            }
            let values = leaf.slice(0, l.len() * w);
            push_numbers(values.as_ref(), out).map_err(|e| CellError { row: e.row.map(|r| r / w.max(1)), ..e })?;
            Ok((!l.is_empty()).then_some(w))
        }
        DataType::Struct(fields) if is_spark_vector(fields) => push_spark_vectors(col.as_struct(), out),
        other => Err(CellError::column(format!("has type {other}; expected a list of numbers or a Spark ML vector"))),
    }
}

fn push_offset_rows(values: &dyn Array, offsets: &[usize], out: &mut Vec<f32>) -> Result<Option<usize>, CellError> {
    let rows = offsets.len().saturating_sub(1);
    if rows == 0 {
        return Ok(None);
    }
    let width = offsets[1] - offsets[0];
    for r in 1..rows {
        let w = offsets[r + 1] - offsets[r];
        if w != width {
            return Err(CellError::at(r, format!("{w} values where earlier rows have {width}")));
        }
    }
    let (first, last) = (offsets[0], offsets[rows]);
    let slice = values.slice(first, last - first);
    push_numbers(slice.as_ref(), out).map_err(|e| CellError { row: e.row.map(|i| i / width.max(1)), ..e })?;
    Ok(Some(width))
}

/// Spark ML vectors: `type` 1 is dense (`values` holds the row), 0 is sparse (`size` values, zero
/// but at `indices`).
fn push_spark_vectors(s: &StructArray, out: &mut Vec<f32>) -> Result<Option<usize>, CellError> {
    let (ty, size, indices, values) = (s.column(0), s.column(1), s.column(2), s.column(3));
    let bad = |what: &str| {
        CellError::column(format!("is a struct named like a Spark ML vector, but its `{what}` field has another type"))
    };
    if ty.data_type() != &DataType::Int8 {
        return Err(bad("type"));
    }
    if size.data_type() != &DataType::Int32 {
        return Err(bad("size"));
    }
    let (DataType::List(fi), DataType::List(fv)) = (indices.data_type(), values.data_type()) else {
        return Err(bad("indices/values"));
    };
    if fi.data_type() != &DataType::Int32 || !is_number(fv.data_type()) {
        return Err(bad("indices/values"));
    }
    let ty = ty.as_primitive::<Int8Type>();
    let size = size.as_primitive::<Int32Type>();
    let indices = indices.as_list::<i32>();
    let values = values.as_list::<i32>();
    let mut width: Option<usize> = None;
    let mut row_values = Vec::new();
    for r in 0..s.len() {
        if ty.is_null(r) || values.is_null(r) {
            return Err(CellError::at(r, "the vector is incomplete (null type or values)"));
        }
        row_values.clear();
        push_numbers(values.value(r).as_ref(), &mut row_values).map_err(|e| CellError::at(r, e.message))?;
        let w = match ty.value(r) {
            1 => {
                let w = row_values.len();
                out.extend_from_slice(&row_values);
                w
            }
            0 => {
                if size.is_null(r) || indices.is_null(r) {
                    return Err(CellError::at(r, "a sparse vector without size or indices"));
                }
                let n = size.value(r);
                if n < 0 {
                    return Err(CellError::at(r, format!("a sparse vector of negative size {n}")));
                }
                let n = n as usize;
                if let Some(x) = width
                    && x != n
                {
                    return Err(CellError::at(r, format!("{n} values where earlier rows have {x}")));
                }
                if n > MAX_SPARSE_SIZE || out.len().saturating_add(n) > MAX_BATCH_VALUES {
                    return Err(CellError::at(
                        r,
                        format!(
                            "a sparse vector of size {n} (more than {MAX_SPARSE_SIZE} values per row) would not fit in memory"
                        ),
                    ));
                }
                let idx = indices.value(r);
                let idx = idx.as_primitive::<Int32Type>();
                if idx.len() != row_values.len() {
                    return Err(CellError::at(
                        r,
                        format!("a sparse vector with {} indices but {} values", idx.len(), row_values.len()),
                    ));
                }
                let base = out.len();
                out.resize(base + n, 0.0);
                for (k, &i) in idx.values().iter().enumerate() {
                    if i < 0 || i as usize >= n {
                        out.truncate(base);
                        return Err(CellError::at(r, format!("sparse vector index {i} is outside its size {n}")));
                    }
                    out[base + i as usize] = row_values[k];
                }
                n
            }
            t => return Err(CellError::at(r, format!("vector type {t} is neither 0 (sparse) nor 1 (dense)"))),
        };
        match width {
            None => width = Some(w),
            Some(x) if x != w => return Err(CellError::at(r, format!("{w} values where earlier rows have {x}"))),
            _ => {}
        }
    }
    Ok(width)
}

/// The values of a scalar number column as f64.
pub fn scalars(a: &dyn Array) -> Result<Vec<f64>, CellError> {
    if let Some(r) = (0..a.len()).find(|&r| a.is_null(r)) {
        return Err(CellError::at(r, "the value is null"));
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
        other => return Err(CellError::column(format!("has type {other}; expected numbers"))),
    })
}

/// Class indices from a scalar label column: integers, or floats that are whole numbers
/// (StringIndexer writes doubles).
pub fn class_indices(a: &dyn Array) -> Result<Vec<i64>, CellError> {
    if a.null_count() > 0 {
        let row = (0..a.len()).find(|&r| a.is_null(r)).unwrap_or(0);
        return Err(CellError::at(row, "the label is null"));
    }
    macro_rules! ints {
        ($t:ty) => {
            a.as_primitive::<$t>().values().iter().map(|&x| x as i64).collect()
        };
    }
    fn whole(values: impl Iterator<Item = f64>) -> Result<Vec<i64>, CellError> {
        values
            .enumerate()
            .map(|(r, v)| {
                if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Ok(v as i64)
                } else {
                    Err(CellError::at(r, format!("label {v} is not a whole number; class labels are 0, 1, 2, ...")))
                }
            })
            .collect()
    }
    Ok(match a.data_type() {
        DataType::Int64 => a.as_primitive::<Int64Type>().values().to_vec(),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int8 => ints!(Int8Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => {
            let v = a.as_primitive::<UInt64Type>().values();
            if let Some(r) = v.iter().position(|&x| x > i64::MAX as u64) {
                return Err(CellError::at(r, format!("label {} is too large", v[r])));
            }
            v.iter().map(|&x| x as i64).collect()
        }
        DataType::Float64 => whole(a.as_primitive::<Float64Type>().values().iter().copied())?,
        DataType::Float32 => whole(a.as_primitive::<Float32Type>().values().iter().map(|&x| x as f64))?,
        other => return Err(CellError::column(format!("has type {other}; labels must be class indices"))),
    })
}

/// Parses a class index written as text (CSV cells, partition folder values): `3` or `3.0`.
pub fn parse_class_index(cell: &str) -> Option<i64> {
    if let Ok(v) = cell.parse::<i64>() {
        return Some(v);
    }
    let v: f64 = cell.parse().ok()?;
    (v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
}

/// An Arrow array of `len` copies of a partition value (`col=value` folders): Int64 where the
/// value is an integer, Float64 where a number, otherwise `None`.
pub fn partition_array(value: &str, len: usize) -> Option<ArrayRef> {
    use std::sync::Arc;
    if let Ok(v) = value.parse::<i64>() {
        return Some(Arc::new(arrow_array::Int64Array::from(vec![v; len])));
    }
    let v: f64 = value.parse().ok()?;
    Some(Arc::new(arrow_array::Float64Array::from(vec![v; len])))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{Float64Builder, Int32Builder, ListBuilder};
    use arrow_array::{Float64Array, Int8Array, Int32Array};
    use arrow_schema::Field;

    use super::*;

    /// One Spark ML vector: `(type, size, indices, values)`.
    type SparkVector = (i8, Option<i32>, Option<Vec<i32>>, Vec<f64>);

    /// A VectorUDT column as Spark writes it.
    fn spark_vectors(rows: &[SparkVector]) -> ArrayRef {
        let mut idx = ListBuilder::new(Int32Builder::new());
        let mut val = ListBuilder::new(Float64Builder::new());
        for (_, _, i, v) in rows {
            match i {
                Some(i) => {
                    idx.values().append_slice(i);
                    idx.append(true);
                }
                None => idx.append(false),
            }
            val.values().append_slice(v);
            val.append(true);
        }
        let ty = Int8Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
        let size = Int32Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>());
        let (idx, val) = (idx.finish(), val.finish());
        let fields = vec![
            Field::new("type", DataType::Int8, false),
            Field::new("size", DataType::Int32, true),
            Field::new("indices", idx.data_type().clone(), true),
            Field::new("values", val.data_type().clone(), true),
        ];
        Arc::new(StructArray::new(
            fields.into(),
            vec![Arc::new(ty), Arc::new(size), Arc::new(idx), Arc::new(val)],
            None,
        ))
    }

    #[test]
    fn spark_vectors_dense_and_sparse_decode_to_rows() {
        let col = spark_vectors(&[
            (1, None, None, vec![1.0, 2.0, 3.0]),
            (0, Some(3), Some(vec![0, 2]), vec![5.0, 7.5]),
            (0, Some(3), Some(vec![]), vec![]),
        ]);
        assert_eq!(column_shape(col.data_type()), Some(ColumnShape::SparkVector));
        let mut out = Vec::new();
        assert_eq!(push_rows(col.as_ref(), &mut out).unwrap(), Some(3));
        assert_eq!(out, vec![1.0, 2.0, 3.0, 5.0, 0.0, 7.5, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn a_sparse_index_out_of_range_names_its_row() {
        let col = spark_vectors(&[(1, None, None, vec![1.0, 2.0]), (0, Some(2), Some(vec![2]), vec![1.0])]);
        let e = push_rows(col.as_ref(), &mut Vec::new()).unwrap_err();
        assert_eq!(e.row, Some(1));
        assert!(e.message.contains("index 2 is outside its size 2"), "{}", e.message);
    }

    #[test]
    fn a_sparse_vector_declaring_a_huge_size_is_refused_before_allocating() {
        let col = spark_vectors(&[(0, Some(i32::MAX), Some(vec![0]), vec![1.0])]);
        let e = push_rows(col.as_ref(), &mut Vec::new()).unwrap_err();
        assert!(e.message.contains("would not fit in memory"), "{}", e.message);
    }

    #[test]
    fn vectors_of_different_sizes_are_refused() {
        let col = spark_vectors(&[(1, None, None, vec![1.0, 2.0]), (0, Some(3), Some(vec![0]), vec![1.0])]);
        let e = push_rows(col.as_ref(), &mut Vec::new()).unwrap_err();
        assert_eq!(e.row, Some(1));
        assert!(e.message.contains("3 values where earlier rows have 2"), "{}", e.message);
    }

    #[test]
    fn list_rows_of_any_number_type_and_a_ragged_row() {
        let mut b = ListBuilder::new(Int32Builder::new());
        b.values().append_slice(&[1, 2]);
        b.append(true);
        b.values().append_slice(&[3, 4]);
        b.append(true);
        let col = b.finish();
        let mut out = Vec::new();
        assert_eq!(push_rows(&col, &mut out).unwrap(), Some(2));
        assert_eq!(out, vec![1.0, 2.0, 3.0, 4.0]);
        // A sliced list keeps its own rows only.
        let mut out = Vec::new();
        push_rows(&col.slice(1, 1), &mut out).unwrap();
        assert_eq!(out, vec![3.0, 4.0]);
        let mut b = ListBuilder::new(Float64Builder::new());
        b.values().append_slice(&[1.0, 2.0]);
        b.append(true);
        b.values().append_slice(&[3.0]);
        b.append(true);
        let e = push_rows(&b.finish(), &mut Vec::new()).unwrap_err();
        assert_eq!(e.row, Some(1));
    }

    #[test]
    fn double_labels_must_be_whole_numbers() {
        let ok = Float64Array::from(vec![0.0, 3.0, 9.0]);
        assert_eq!(class_indices(&ok).unwrap(), vec![0, 3, 9]);
        let bad = Float64Array::from(vec![0.0, 1.5]);
        let e = class_indices(&bad).unwrap_err();
        assert_eq!(e.row, Some(1));
        assert!(e.message.contains("label 1.5 is not a whole number"), "{}", e.message);
        let nan = Float64Array::from(vec![f64::NAN]);
        assert_eq!(class_indices(&nan).unwrap_err().row, Some(0));
        assert_eq!(parse_class_index("2.0"), Some(2));
        assert_eq!(parse_class_index("2.5"), None);
    }
}
