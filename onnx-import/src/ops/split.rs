//! Split: the input cut along an axis into consecutive parts, one output each (a multi-output
//! node; each part is the engine's [`Slice`]). The sizes come from `split` (an attribute before
//! opset 13, an input known at import from 13), or are equal parts (the last smaller, opset 18's
//! `num_outputs`).
//!
//! Opset history: 1 (`split` attribute or second input), 2 and 11 (negative axis) take `split` as an
//! attribute; 13 as an input; 18 adds `num_outputs`.

use distk_engine::{Op, Slice};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

/// Split.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Split",
    spec: OpSpec {
        since: 2,
        inputs: &[InputSpec::value("input"), InputSpec::known("split").optional().since(13)],
        outputs: &[OutputSpec::produced("outputs").variadic()],
        attrs: &[
            AttrSpec::int("axis", 0),
            AttrSpec::absent("split").opsets(1, Some(12)),
            AttrSpec::absent("num_outputs").opsets(18, None),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

/// The parts' sizes along an axis of length `len` into `n` outputs.
fn sizes(cx: &ImportCx<'_, '_>, len: usize, n: usize) -> Result<Vec<usize>> {
    let given = if cx.opset < 13 { cx.ints_opt("split")? } else { cx.known(1)?.map(|c| c.as_i64()) };
    let sizes: Vec<usize> = match given {
        Some(s) => s
            .iter()
            .map(|&v| usize::try_from(v).map_err(|_| cx.err(format!("split size {v} is negative"))))
            .collect::<Result<_>>()?,
        None => {
            let parts = match cx.declares("num_outputs").then(|| cx.int_opt("num_outputs")).transpose()?.flatten() {
                Some(k) => {
                    usize::try_from(k).ok().filter(|&k| k > 0).ok_or_else(|| cx.err(format!("num_outputs {k}")))?
                }
                None => n,
            };
            let each = len.div_ceil(parts.max(1));
            (0..parts).map(|i| each.min(len.saturating_sub(i * each))).collect()
        }
    };
    if sizes.iter().sum::<usize>() != len || sizes.len() != n {
        return Err(cx.err(format!("parts {sizes:?} for {n} outputs do not split a length of {len}")));
    }
    Ok(sizes)
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let shape = cx.shape(0)?;
    let axis = cx.axis(cx.int("axis")?, shape.len())?;
    let n = cx.node.output.len();
    let sizes = sizes(cx, shape[axis], n)?;
    let x = cx.value(0)?;
    let mut start = 0;
    for (k, &len) in sizes.iter().enumerate() {
        if cx.has_output(k) {
            let part = cx.emit(Op::Slice(Slice { axis, start, len }), &[x])?;
            if k == 0 { cx.set(part)? } else { cx.set_output(k, part)? }
        }
        start += len;
    }
    Ok(())
}
