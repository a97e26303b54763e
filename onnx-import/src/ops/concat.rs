//! Concat: the inputs joined along `axis`. Empty inputs are left out of the run-time form (the
//! engine has no empty tensors); the constant fold joins shape vectors.
//!
//! Opset history: 1 has `axis` optional with default 1; from 4 it is required; 11 allows negative
//! axes; 13 widens the types.

use distk_engine::{Concat, Op};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::ops::spec::{AttrSpec, Consts, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::{ConstTensor, created_numel, numel};

/// Concat.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Concat",
    spec: OpSpec {
        inputs: &[InputSpec::value("inputs").variadic()],
        outputs: &[OutputSpec::produced("concat_result")],
        attrs: &[AttrSpec::int("axis", 1).opsets(1, Some(3)), AttrSpec::required("axis").opsets(4, None)],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: Some(fold),
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    let axis = cx.axis(cx.int("axis")?, s.len())?;
    let mut ins = Vec::new();
    for i in 0..cx.node.input.len() {
        if cx.has_input(i) && numel(&cx.shape(i)?).map_err(|e| cx.err(e))? > 0 {
            ins.push(cx.value(i)?);
        }
    }
    cx.emit_out(Op::Concat(Concat { axis }), &ins)
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let parts: Vec<&ConstTensor> = c.present().collect();
    let first = parts.first().ok_or_else(|| cx.err("needs at least one input"))?;
    let rank = first.shape.len();
    let axis = cx.axis(cx.int("axis")?, rank)?;
    let mut shape = first.shape.clone();
    shape[axis] = 0;
    for p in &parts {
        let fits = p.shape.len() == rank && (0..rank).all(|d| d == axis || p.shape[d] == first.shape[d]);
        if !fits {
            return Err(cx.err(format!("shapes {:?} and {:?} differ off axis {axis}", first.shape, p.shape)));
        }
        shape[axis] = shape[axis].checked_add(p.shape[axis]).ok_or_else(|| cx.err("the joined size overflows"))?;
    }
    let outer = numel(&shape[..axis]).map_err(|e| cx.err(e))?;
    let mut data = Vec::with_capacity(created_numel(&shape).map_err(|e| cx.err(e))?);
    for o in 0..outer {
        for p in &parts {
            let chunk = numel(&p.shape[axis..]).map_err(|e| cx.err(e))?;
            let part = p.data.get(o * chunk..(o + 1) * chunk).ok_or_else(|| cx.err("a constant's data is short"))?;
            data.extend_from_slice(part);
        }
    }
    Ok(ConstTensor { shape, data, is_float: parts.iter().any(|p| p.is_float) })
}
