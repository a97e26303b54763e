//! Dropout: the identity at inference; training graphs turn it into `x * mask`.
//!
//! Opset history: 1 and 6 (`is_test`, ignored) and 7 and 10 take `ratio` as an attribute (default
//! 0.5); from 12 `ratio` and `training_mode` are optional inputs (`training_mode` is ignored: the
//! trainer decides). A `ratio` known at import is the training rate; one computed at run time
//! cannot be (the engine's rate is fixed), and as the inference form does not read it the import
//! takes ONNX's default, 0.5, for training. 13 and 22 widen the types. The `mask` output, when
//! the node names it, is all true in inference and the step's mask in training.

use distk_engine::{Dropout, Op};

use crate::context::{ImportCx, Kind};
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

/// Dropout.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Dropout",
    spec: OpSpec {
        inputs: &[
            InputSpec::value("data"),
            InputSpec::value("ratio").optional().since(12),
            InputSpec::value("training_mode").optional().since(12),
        ],
        outputs: &[OutputSpec::produced("output"), OutputSpec::produced("mask")],
        attrs: &[AttrSpec::float("ratio", 0.5).opsets(1, Some(11))],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let rate = if cx.opset < 12 {
        cx.float("ratio")?
    } else if cx.kind(1)? == Some(Kind::RunTime) {
        0.5
    } else {
        cx.known(1)?.and_then(|c| c.data.first().copied()).map_or(0.5, |r| r as f32)
    };
    let x = cx.value(0)?;
    let mask = cx.has_output(1);
    let outs = cx.emit_outputs(Op::Dropout(Dropout { rate, mask }), &[x])?;
    cx.set(outs[0])?;
    if mask {
        cx.set_output(1, outs[1])?;
    }
    Ok(())
}
