//! Gemm: `alpha * op(A) @ op(B) + beta * C`, op transposing when `transA`/`transB` is 1.
//!
//! Opset history: 1 and 6 carry a `broadcast` attribute for C (numpy broadcasting covers both
//! readings, so it is ignored) and need C; 7 broadcasts C; 9 and 13 widen the types; from 11 C is
//! optional. With `--add-missing-biases`, a Gemm without C gets a trainable zero bias.

use distk_engine::{BinaryOp, MatMul, Op};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec};

/// Gemm.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Gemm",
    spec: OpSpec {
        inputs: &[InputSpec::value("A"), InputSpec::value("B"), InputSpec::value("C").optional()],
        attrs: &[
            AttrSpec::float("alpha", 1.0),
            AttrSpec::float("beta", 1.0),
            AttrSpec::int("transA", 0),
            AttrSpec::int("transB", 0),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let (alpha, beta) = (cx.float("alpha")?, cx.float("beta")?);
    let (ta, tb) = (cx.int("transA")? == 1, cx.int("transB")? == 1);
    let (a, b) = (cx.value(0)?, cx.value(1)?);
    let mut y = cx.emit(Op::MatMul(MatMul { trans_a: ta, trans_b: tb, alpha }), &[a, b])?;
    if cx.has_input(2) {
        if beta != 0.0 {
            let mut c = cx.value(2)?;
            if beta != 1.0 {
                let k = cx.constant("beta", vec![], vec![beta])?;
                c = cx.emit(Op::Binary(BinaryOp::Mul), &[c, k])?;
            }
            y = cx.emit(Op::Binary(BinaryOp::Add), &[y, c])?;
        }
    } else {
        let n = cx.value_shape(y).last().copied().unwrap_or(1);
        if let Some(bias) = cx.added_bias(n)? {
            y = cx.emit(Op::Binary(BinaryOp::Add), &[y, bias])?;
        }
    }
    cx.set(y)
}
