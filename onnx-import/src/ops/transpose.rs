//! Transpose: output dim i is input dim `perm[i]` (default: the dims reversed). One permutation rule
//! for the run-time form and the constant fold. Opsets 1, 13, 21 and 23 differ only in types.

use distk_engine::{Op, Transpose};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::fold::{norm_axis, strides};
use crate::ops::spec::{AttrSpec, Consts, OpDef, OpSpec};
use crate::tensor::ConstTensor;

/// Transpose.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Transpose",
    spec: OpSpec { attrs: &[AttrSpec::absent("perm")], ..OpSpec::DEFAULT },
    import: Some(import),
    fold: Some(fold),
}];

/// The node's permutation of `rank` dims, checked to be one.
fn perm(cx: &NodeCx<'_>, rank: usize) -> Result<Vec<usize>> {
    let Some(p) = cx.ints_opt("perm")? else { return Ok((0..rank).rev().collect()) };
    let perm: Vec<usize> =
        p.iter().map(|&a| norm_axis(a, rank)).collect::<std::result::Result<_, _>>().map_err(|e| cx.err(e))?;
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&a| std::mem::replace(&mut seen[a], true)) {
        return Err(cx.err(format!("perm {p:?} is not a permutation of {rank} dims")));
    }
    Ok(perm)
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let perm = perm(cx, cx.shape(0)?.len())?;
    let x = cx.value(0)?;
    cx.emit_out(Op::Transpose(Transpose { perm }), &[x])
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let x = cx.arg(c, 0)?;
    let perm = perm(cx, x.shape.len())?;
    let src = strides(&x.shape);
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let st: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
    let mut data = Vec::with_capacity(x.data.len());
    distk_engine::cpu::kernels::for_each_index(&shape, [&st], |[i]| {
        data.push(x.data.get(i).copied().unwrap_or(f64::NAN));
    });
    Ok(ConstTensor { shape, data, is_float: x.is_float })
}
