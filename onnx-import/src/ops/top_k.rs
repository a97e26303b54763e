//! TopK: the `k` largest (or smallest) entries along an axis and their int64 positions (two
//! outputs), the engine's multi-output [`TopK`]. `K` must be known at import (it sets the shapes).
//!
//! Opset history: 1 takes `k` as an attribute; 10 takes `K` as an input; 11 adds `largest` and
//! `sorted` (the engine always sorts, which `sorted=0` allows) and negative axes.

use distk_engine::{Op, TopK};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

/// TopK.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "TopK",
    spec: OpSpec {
        inputs: &[InputSpec::value("X"), InputSpec::known("K").since(10)],
        outputs: &[OutputSpec::produced("Values"), OutputSpec::produced("Indices")],
        attrs: &[
            AttrSpec::int("axis", -1),
            AttrSpec::required("k").opsets(1, Some(9)),
            AttrSpec::int("largest", 1).opsets(11, None),
            AttrSpec::int("sorted", 1).opsets(11, None),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let shape = cx.shape(0)?;
    let axis = cx.axis(cx.int("axis")?, shape.len())?;
    let k = if cx.opset < 10 {
        cx.int("k")?
    } else {
        let k = cx.require_known(1)?;
        k.data.first().map(|&v| v as i64).ok_or_else(|| cx.err("K is empty"))?
    };
    let k = usize::try_from(k)
        .ok()
        .filter(|&k| k <= shape[axis])
        .ok_or_else(|| cx.err(format!("K = {k} is not between 0 and the axis' length {}", shape[axis])))?;
    let largest = !cx.declares("largest") || cx.int("largest")? != 0;
    let x = cx.value(0)?;
    let outs = cx.emit_outputs(Op::TopK(TopK { axis, k, largest }), &[x])?;
    cx.set(outs[0])?;
    cx.set_output(1, outs[1])
}
