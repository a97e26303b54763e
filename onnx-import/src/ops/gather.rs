//! Gather: entries of `data` along `axis` at integer `indices` (negative counted from the end).
//! Constant form only (shape sub-graphs: picking dims out of a Shape); on run-time data the
//! importer has no form and says so for every such node at once.
//!
//! Opset history: 1; 11 allows negative indices (accepted at every opset); 13 widens the types.

use crate::context::NodeCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, Consts, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::{ConstTensor, created_numel, numel};

/// Gather.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Gather",
    spec: OpSpec {
        inputs: &[InputSpec::known("data"), InputSpec::known("indices")],
        outputs: &[OutputSpec::produced("output")],
        attrs: &[AttrSpec::int("axis", 0)],
        ..OpSpec::DEFAULT
    },
    import: None,
    fold: Some(fold),
}];

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let (x, idx) = (cx.arg(c, 0)?, cx.arg(c, 1)?);
    let axis = cx.axis(cx.int("axis")?, x.shape.len())?;
    gather(x, idx, axis).map_err(|e| cx.err(e))
}

/// Gather of `x` along `axis` (a valid axis of `x`) at `idx`.
fn gather(x: &ConstTensor, idx: &ConstTensor, axis: usize) -> std::result::Result<ConstTensor, String> {
    let dim = x.shape[axis];
    let outer = numel(&x.shape[..axis])?;
    let inner = numel(&x.shape[axis + 1..])?;
    let mut shape = x.shape[..axis].to_vec();
    shape.extend(&idx.shape);
    shape.extend(&x.shape[axis + 1..]);
    let mut data = Vec::with_capacity(created_numel(&shape)?);
    for o in 0..outer {
        for &i in &idx.data {
            let k = if i < 0.0 { i + dim as f64 } else { i };
            if !(0.0..dim as f64).contains(&k) || k.fract() != 0.0 {
                return Err(format!("gather index {i} out of range for dim {dim}"));
            }
            let base = (o * dim + k as usize) * inner;
            data.extend_from_slice(x.data.get(base..base + inner).ok_or("a constant's data is short")?);
        }
    }
    Ok(ConstTensor { shape, data, is_float: x.is_float })
}

#[cfg(test)]
mod tests {
    use super::gather;
    use crate::tensor::ConstTensor;

    #[test]
    fn gathers_dims_of_a_shape() {
        let shape = ConstTensor::ints(&[4, 64, 5, 5]);
        assert_eq!(gather(&shape, &ConstTensor::ints(&[0, 2, 3, 1]), 0).unwrap().as_i64(), vec![4, 5, 5, 64]);
        let last = gather(&shape, &ConstTensor::scalar(-1.0, false), 0).unwrap();
        assert_eq!((last.shape.clone(), last.as_i64()), (vec![], vec![5]));
        assert!(gather(&shape, &ConstTensor::ints(&[4]), 0).is_err());
    }
}
