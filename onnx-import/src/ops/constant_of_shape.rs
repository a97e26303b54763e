//! ConstantOfShape: a tensor of the given shape filled with `value` (default: float 0). Constant form
//! only: the shape must be known at import. Opset 9 introduced it; 20, 21 and 23 widen the types.

use crate::context::NodeCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, Consts, InputSpec, OpDef, OpSpec};
use crate::tensor::{ConstTensor, created_numel};

/// ConstantOfShape.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "ConstantOfShape",
    spec: OpSpec {
        since: 9,
        inputs: &[InputSpec::known("input")],
        attrs: &[AttrSpec::absent("value")],
        ..OpSpec::DEFAULT
    },
    import: None,
    fold: Some(fold),
}];

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let shape: Vec<usize> = cx
        .arg(c, 0)?
        .as_i64()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| cx.err(format!("negative dim {d}"))))
        .collect::<Result<_>>()?;
    let (value, is_float) = match cx.tensor("value")? {
        Some(t) => {
            let v = ConstTensor::from_proto(t).map_err(|e| cx.err(e))?;
            (v.data.first().copied().unwrap_or(0.0), v.is_float)
        }
        None => (0.0, true),
    };
    let n = created_numel(&shape).map_err(|e| cx.err(e))?;
    Ok(ConstTensor { data: vec![value; n], shape, is_float })
}
