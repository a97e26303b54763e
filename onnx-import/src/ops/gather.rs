//! Gather: entries of `data` along `axis` at integer `indices` (negative counted from the end).
//! On constants a fold (shape sub-graphs: picking dims out of a Shape); otherwise the engine's
//! [`Gather`], whose data may be a trainable table (an Embedding) and whose indices may be
//! computed at run time (token ids); its gradient is a scatter-add into the table.
//!
//! Opset history: 1; 11 allows negative indices (accepted at every opset); 13 widens the types.

use distk_engine::{Gather, Op};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::ops::spec::{AttrSpec, Consts, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::{ConstTensor, created_numel, numel};

/// Gather.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Gather",
    spec: OpSpec {
        inputs: &[InputSpec::value("data"), InputSpec::value("indices")],
        outputs: &[OutputSpec::produced("output")],
        attrs: &[AttrSpec::int("axis", 0)],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: Some(fold),
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let rank = cx.shape(0)?.len();
    let axis = cx.axis(cx.int("axis")?, rank)?;
    if cx.dtype(1)?.is_float() {
        return Err(cx.err("the indices are floats; ONNX Gather takes int32 or int64 indices"));
    }
    let (x, idx) = (cx.value(0)?, cx.value(1)?);
    cx.emit_out(Op::Gather(Gather { axis }), &[x, idx])
}

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
