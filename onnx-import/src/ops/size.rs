//! Size: the input's element count as an int64 scalar constant. Opsets 1, 13, 19, 21 and 23 differ
//! only in types.

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{OpDef, OpSpec, OutputRule};
use crate::tensor::{ConstTensor, numel};

/// Size.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Size",
    spec: OpSpec { output: OutputRule::FromShape, ..OpSpec::DEFAULT },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let n = numel(&cx.shape(0)?).map_err(|e| cx.err(e))?;
    cx.set_const(ConstTensor::scalar(n as f64, false))
}
