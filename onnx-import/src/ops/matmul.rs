//! MatMul: numpy matrix product; a 1-d operand is promoted to a matrix and its dim dropped again.
//! Batch dims broadcast as numpy's do: the engine broadcasts an operand's batch dims only when they
//! are all ones, so an operand whose batch dims are broadcast otherwise (`[3, 1]` against `[1, 2]`)
//! is broadcast explicitly first. Opsets 1, 9 and 13 differ only in types. With `--add-missing-biases`, a MatMul that no bias
//! follows gets a trainable zero bias added.

use distk_engine::{BinaryOp, Broadcast, MatMul, Op};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{InputSpec, OpDef, OpSpec};

/// MatMul.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "MatMul",
    spec: OpSpec { inputs: &[InputSpec::value("A"), InputSpec::value("B")], ..OpSpec::DEFAULT },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let (sa, sb) = (cx.shape(0)?, cx.shape(1)?);
    if sa.is_empty() || sb.is_empty() {
        return Err(cx.err(format!("operands {sa:?} and {sb:?}: scalars have no matrix product")));
    }
    let (mut a, mut b) = (cx.value(0)?, cx.value(1)?);
    if let [k] = sa[..] {
        a = cx.reshape(a, vec![1, k])?;
    }
    if let [k] = sb[..] {
        b = cx.reshape(b, vec![k, 1])?;
    }
    let (ra, rb) = (cx.value_shape(a), cx.value_shape(b));
    let (ba, bb) = (&ra[..ra.len() - 2], &rb[..rb.len() - 2]);
    if let Some(batch) = distk_engine::shape::broadcast_shapes(ba, bb) {
        let n: usize = batch.iter().product();
        for (v, own, mat) in [(&mut a, ba, &ra[ra.len() - 2..]), (&mut b, bb, &rb[rb.len() - 2..])] {
            let m: usize = own.iter().product();
            if m != n && m != 1 {
                let shape = [batch.as_slice(), mat].concat();
                *v = cx.emit(Op::Broadcast(Broadcast { shape }), &[*v])?;
            }
        }
    }
    let mut y = cx.emit(Op::MatMul(MatMul { trans_a: false, trans_b: false, alpha: 1.0 }), &[a, b])?;
    if sa.len() == 1 || sb.len() == 1 {
        let mut s = cx.value_shape(y);
        if sb.len() == 1 {
            s.pop();
        }
        if sa.len() == 1 {
            // The promoted row: the last dim when B lost its column, the one before otherwise.
            let at = s.len().checked_sub(if sb.len() == 1 { 1 } else { 2 });
            if let Some(at) = at {
                s.remove(at);
            }
        }
        y = cx.reshape(y, s)?;
    }
    let n = cx.value_shape(y).last().copied().unwrap_or(1);
    if let Some(bias) = cx.added_bias(n)? {
        y = cx.emit(Op::Binary(BinaryOp::Add), &[y, bias])?;
    }
    cx.set(y)
}
