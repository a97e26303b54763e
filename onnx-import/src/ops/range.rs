//! Range: `start, start + delta, ..` up to `limit` (exclusive). Constant form only (position
//! indices from shapes); on run-time bounds the importer has no form. Opset 11 introduced it.

use crate::context::NodeCx;
use crate::error::Result;
use crate::ops::spec::{Consts, InputSpec, OpDef, OpSpec};
use crate::tensor::{ConstTensor, check_len};

/// Range.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Range",
    spec: OpSpec {
        since: 11,
        inputs: &[InputSpec::known("start"), InputSpec::known("limit"), InputSpec::known("delta")],
        ..OpSpec::DEFAULT
    },
    import: None,
    fold: Some(fold),
}];

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let scalar = |i: usize| -> Result<f64> {
        let t = cx.arg(c, i)?;
        match t.data[..] {
            [v] => Ok(v),
            _ => Err(cx.err(format!("{} must be a scalar, not of shape {:?}", cx.input_label(i), t.shape))),
        }
    };
    let (start, limit, delta) = (scalar(0)?, scalar(1)?, scalar(2)?);
    if delta == 0.0 || !(start.is_finite() && limit.is_finite() && delta.is_finite()) {
        return Err(cx.err(format!("Range({start}, {limit}, {delta}) is not a finite sequence")));
    }
    let n = ((limit - start) / delta).ceil().max(0.0);
    let n = check_len(if n > usize::MAX as f64 { usize::MAX } else { n as usize }).map_err(|e| cx.err(e))?;
    let is_float = cx.arg(c, 0)?.is_float;
    Ok(ConstTensor { shape: vec![n], data: (0..n).map(|i| start + i as f64 * delta).collect(), is_float })
}
