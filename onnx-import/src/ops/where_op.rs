//! Where: `X` where `condition` is true, else `Y`, the three broadcast: the engine's [`Where`] at
//! run time, folded on constants (masks in shape computations).
//!
//! Opset history: 9; 16 only widens the types.

use distk_engine::{Op, Where};

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::ops::spec::{Consts, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::{ConstTensor, created_numel, numel};

/// Where.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Where",
    spec: OpSpec {
        since: 9,
        inputs: &[InputSpec::value("condition"), InputSpec::value("X"), InputSpec::value("Y")],
        outputs: &[OutputSpec::produced("output")],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: Some(fold),
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let (c, x, y) = (cx.value(0)?, cx.value(1)?, cx.value(2)?);
    cx.emit_out(Op::Where(Where), &[c, x, y])
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    use distk_engine::shape::{broadcast_shapes, broadcast_strides};
    let (cond, x, y) = (cx.arg(c, 0)?, cx.arg(c, 1)?, cx.arg(c, 2)?);
    let shape = broadcast_shapes(&cond.shape, &x.shape)
        .and_then(|s| broadcast_shapes(&s, &y.shape))
        .ok_or_else(|| cx.err(format!("shapes {:?}, {:?} and {:?} do not broadcast", cond.shape, x.shape, y.shape)))?;
    created_numel(&shape).map_err(|e| cx.err(e))?;
    for t in [cond, x, y] {
        if numel(&t.shape).ok() != Some(t.data.len()) {
            return Err(cx.err("a constant's data does not match its shape"));
        }
    }
    let st = [
        broadcast_strides(&cond.shape, &shape),
        broadcast_strides(&x.shape, &shape),
        broadcast_strides(&y.shape, &shape),
    ];
    let mut data = Vec::new();
    distk_engine::cpu::kernels::for_each_index(&shape, [&st[0], &st[1], &st[2]], |[i, j, k]| {
        data.push(if cond.data[i] != 0.0 { x.data[j] } else { y.data[k] });
    });
    Ok(ConstTensor { shape, data, is_float: x.is_float || y.is_float })
}
