//! `reshape:INPUT:OUTPUT:shape=28x28x1`: a flat row to nested lists of that shape, row-major as
//! numpy's `reshape` (dist-keras' ReshapeTransformer). A row whose length is not the shape's
//! product is refused naming its row. distk-gpu reads nested lists back flat: the model's input
//! shape, not the column's nesting, decides how a row is laid out.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, FixedSizeListArray};
use arrow_schema::{DataType, Field};

use super::values;
use super::{StepArgs, StepError};
use crate::data::columns::CellError;

/// The reshape step.
#[derive(Clone, Debug, PartialEq)]
pub struct Reshape {
    /// The shape of each row.
    pub shape: Vec<usize>,
}

impl Reshape {
    /// `shape=AxBxC`.
    pub fn parse(args: &mut StepArgs) -> Result<Self, StepError> {
        let text = args.text("shape").ok_or_else(|| args.error("needs shape=AxBxC (e.g. shape=28x28x1)".into()))?;
        let shape = text
            .split(['x', 'X', ';'])
            .map(|d| d.trim().parse::<usize>().ok().filter(|&d| d > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| args.error(format!("shape={text} is not positive sizes joined by `x`")))?;
        let total = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&t| t <= i32::MAX as usize);
        if total.is_none() {
            return Err(args.error(format!("shape={text} holds more than {} values per row", i32::MAX)));
        }
        Ok(Reshape { shape })
    }

    /// The nested type: fixed-size lists, outermost first.
    pub fn output_type(&self) -> DataType {
        let mut dt = DataType::Float32;
        for &d in self.shape.iter().rev() {
            dt = DataType::FixedSizeList(Arc::new(Field::new("element", dt, false)), d as i32);
        }
        dt
    }

    /// The nested rows.
    pub fn apply(&self, input: &dyn Array) -> Result<ArrayRef, CellError> {
        let (rows, width) = values::rows(input)?;
        let want: usize = self.shape.iter().product();
        if width != want && !rows.is_empty() {
            return Err(CellError {
                row: Some(0),
                message: format!("{width} values per row cannot take the shape {:?} ({want} values)", self.shape),
            });
        }
        let mut array: ArrayRef = Arc::new(arrow_array::Float32Array::from(rows));
        let mut dt = DataType::Float32;
        for &d in self.shape.iter().rev() {
            let field = Arc::new(Field::new("element", dt, false));
            let list = FixedSizeListArray::try_new(field, d as i32, array, None)
                .map_err(|e| CellError { row: None, message: e.to_string() })?;
            dt = list.data_type().clone();
            array = Arc::new(list);
        }
        Ok(array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::columns::push_rows;

    #[test]
    fn rows_take_the_shape_and_read_back_flat() {
        let s = Reshape { shape: vec![2, 3] };
        let input = values::float_list((0..12).map(|x| x as f32).collect(), 6);
        let out = s.apply(input.as_ref()).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out.data_type(), &s.output_type());
        let row0 = out.as_any().downcast_ref::<FixedSizeListArray>().unwrap().value(0);
        let inner = row0.as_any().downcast_ref::<FixedSizeListArray>().unwrap();
        assert_eq!(inner.len(), 2);
        let mut flat = Vec::new();
        assert_eq!(push_rows(out.as_ref(), &mut flat).unwrap(), Some(6));
        assert_eq!(flat, (0..12).map(|x| x as f32).collect::<Vec<_>>());
        assert!(Reshape { shape: vec![5] }.apply(input.as_ref()).is_err());
    }
}
