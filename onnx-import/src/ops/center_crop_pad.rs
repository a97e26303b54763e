//! CenterCropPad: each of `axes` (every axis by default) cropped or zero-padded to its length in
//! `shape`, centred; an odd difference puts the extra element at the end (crop: start at
//! `floor((dim - len) / 2)`; pad: `floor((len - dim) / 2)` zeros before, the rest after). A crop
//! is the engine's Slice, a pad a Concat with zero blocks (gradients by autodiff). `shape` must be
//! known at import.
//!
//! Opset history: 18; 24 and 25 widen the types.

use distk_engine::{Concat, Op, Slice};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::created_numel;

/// CenterCropPad.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "CenterCropPad",
    spec: OpSpec {
        since: 18,
        inputs: &[InputSpec::value("input_data"), InputSpec::known("shape")],
        outputs: &[OutputSpec::produced("output_data")],
        attrs: &[AttrSpec::absent("axes")],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let rank = cx.shape(0)?.len();
    let lens = cx.require_known(1)?.as_i64();
    let axes: Vec<usize> = match cx.ints_opt("axes")? {
        Some(a) => a.iter().map(|&v| cx.axis(v, rank)).collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    if lens.len() != axes.len() {
        return Err(cx.err(format!("shape has {} lengths for {} axes", lens.len(), axes.len())));
    }
    for (i, a) in axes.iter().enumerate() {
        if axes[..i].contains(a) {
            return Err(cx.err(format!("axis {a} is given twice")));
        }
    }
    let mut x = cx.value(0)?;
    let dtype = cx.value_dtype(x);
    for (&axis, &len) in axes.iter().zip(&lens) {
        let dim = cx.value_shape(x)[axis];
        let len = usize::try_from(len).ok().filter(|&l| l > 0).ok_or_else(|| {
            cx.err(format!("length {len} of axis {axis} is not positive (the engine has no empty tensors)"))
        })?;
        if len < dim {
            x = cx.emit(Op::Slice(Slice { axis, start: (dim - len) / 2, len }), &[x])?;
        } else if len > dim {
            let before = (len - dim) / 2;
            let after = len - dim - before;
            let mut parts = Vec::with_capacity(3);
            for (n, at) in [(before, "begin"), (after, "end")] {
                if n == 0 {
                    continue;
                }
                let mut bs = cx.value_shape(x);
                bs[axis] = n;
                let count = created_numel(&bs).map_err(|e| cx.err(e))?;
                let block = cx.typed_constant(&format!("pad{axis}_{at}"), bs, vec![0.0; count], dtype)?;
                parts.push(block);
            }
            parts.insert(usize::from(before > 0), x);
            x = cx.emit(Op::Concat(Concat { axis }), &parts)?;
        }
    }
    cx.set(x)
}
