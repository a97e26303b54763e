//! Tile: the input repeated `repeats[d]` times along each dim (`repeats` known at import). At run
//! time a reshape that puts a 1 before each dim, the engine's [`Broadcast`] of those to the
//! repeats, and a reshape that merges each pair; a fold on constants.
//!
//! Opset history: 6 (1 took `tiles` and `axis`, not supported); 13 widens the types.

use distk_engine::{Broadcast, Op};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::ops::spec::{Consts, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::{ConstTensor, created_numel};

/// Tile.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Tile",
    spec: OpSpec {
        since: 6,
        inputs: &[InputSpec::value("input"), InputSpec::known("repeats")],
        outputs: &[OutputSpec::produced("output")],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: Some(fold),
}];

/// The repeats, one per dim of `x`.
fn repeats(cx: &NodeCx<'_>, x: &[usize], r: &ConstTensor) -> Result<Vec<usize>> {
    let r: Vec<usize> = r
        .as_i64()
        .iter()
        .map(|&v| usize::try_from(v).map_err(|_| cx.err(format!("repeat {v} is negative"))))
        .collect::<Result<_>>()?;
    if r.len() != x.len() {
        return Err(cx.err(format!("{} repeats for an input of rank {}", r.len(), x.len())));
    }
    let out: Vec<usize> = x.iter().zip(&r).map(|(&d, &k)| d * k).collect();
    created_numel(&out).map_err(|e| cx.err(e))?;
    Ok(r)
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let xs = cx.shape(0)?;
    let r = repeats(cx, &xs, &cx.require_known(1)?)?;
    let x = cx.value(0)?;
    let lifted: Vec<usize> = xs.iter().flat_map(|&d| [1, d]).collect();
    let spread: Vec<usize> = xs.iter().zip(&r).flat_map(|(&d, &k)| [k, d]).collect();
    let out: Vec<usize> = xs.iter().zip(&r).map(|(&d, &k)| d * k).collect();
    let x = cx.reshape(x, lifted)?;
    let y = cx.emit(Op::Broadcast(Broadcast { shape: spread }), &[x])?;
    let y = cx.reshape(y, out)?;
    cx.set(y)
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let x = cx.arg(c, 0)?;
    let r = repeats(cx, &x.shape, cx.arg(c, 1)?)?;
    let out: Vec<usize> = x.shape.iter().zip(&r).map(|(&d, &k)| d * k).collect();
    let n = created_numel(&out).map_err(|e| cx.err(e))?;
    let xs = crate::fold::strides(&x.shape);
    let os = crate::fold::strides(&out);
    let mut data = Vec::with_capacity(n);
    for i in 0..n {
        let src: usize = (0..out.len()).map(|d| (i / os[d]) % out[d] % x.shape[d] * xs[d]).sum();
        data.push(x.data.get(src).copied().ok_or_else(|| cx.err("a constant's data is short"))?);
    }
    Ok(ConstTensor { shape: out, data, is_float: x.is_float })
}
