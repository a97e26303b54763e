//! Flatten: `[d0, .., dr-1]` to `[d0 * .. * d(axis-1), d(axis) * .. * d(r-1)]`, one shape rule for the
//! run-time form (a reshape) and the constant fold.
//!
//! Opset history: 1 and 9 take `axis` in `[0, r]` (default 1); 11 allows negative axes, counted
//! from the end (`[-r, r]`; the importer accepts them at every opset); 13, 21 and 23 widen the types.

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::fold::norm_split_axis;
use crate::ops::spec::{AttrSpec, Consts, OpDef, OpSpec};
use crate::tensor::{ConstTensor, numel};

/// Flatten.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Flatten",
    spec: OpSpec { attrs: &[AttrSpec::int("axis", 1)], ..OpSpec::DEFAULT },
    import: Some(import),
    fold: Some(fold),
}];

/// The 2-d shape Flatten gives a tensor of `shape`.
fn flat_shape(cx: &NodeCx<'_>, shape: &[usize]) -> Result<Vec<usize>> {
    let axis = norm_split_axis(cx.int("axis")?, shape.len()).map_err(|e| cx.err(e))?;
    let (outer, inner) = shape.split_at(axis);
    Ok(vec![numel(outer).map_err(|e| cx.err(e))?, numel(inner).map_err(|e| cx.err(e))?])
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let target = flat_shape(cx, &cx.shape(0)?)?;
    let x = cx.value(0)?;
    let y = cx.reshape(x, target)?;
    cx.set(y)
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let x = cx.arg(c, 0)?;
    Ok(ConstTensor { shape: flat_shape(cx, &x.shape)?, ..x.clone() })
}
