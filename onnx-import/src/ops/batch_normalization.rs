//! BatchNormalization in inference form: `scale * (x - mean) / sqrt(var + epsilon) + B` over axis 1.
//! The running statistics become state parameters (they travel with the weights, no optimizer
//! moves them); `momentum` is kept for training.
//!
//! Opset history: 1 (`consumed_inputs`, `is_test`: ignored) and 6 and 7 have `spatial` (only 1,
//! per-channel statistics, is supported; 9 drops it); 14 adds `training_mode` and 15 widens the
//! types. The training form (`training_mode=1`, or any output past Y) is refused: export the
//! inference graph.

use distk_engine::{BatchNorm, Op};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

/// BatchNormalization.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "BatchNormalization",
    spec: OpSpec {
        inputs: &[
            InputSpec::value("X"),
            InputSpec::value("scale"),
            InputSpec::value("B"),
            InputSpec::value("input_mean"),
            InputSpec::value("input_var"),
        ],
        outputs: &[
            OutputSpec::produced("Y"),
            OutputSpec::not_produced("running_mean"),
            OutputSpec::not_produced("running_var"),
            OutputSpec::not_produced("saved_mean"),
            OutputSpec::not_produced("saved_var"),
        ],
        attrs: &[
            AttrSpec::float("epsilon", 1e-5),
            AttrSpec::absent("momentum"),
            AttrSpec::int("spatial", 1).opsets(1, Some(8)),
            AttrSpec::int("training_mode", 0).opsets(14, None),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    if cx.opset < 9 && cx.int("spatial")? == 0 {
        return Err(cx.err("BatchNormalization with spatial=0 (per-activation statistics) is not supported"));
    }
    if cx.opset >= 14 && cx.int("training_mode")? == 1 {
        return Err(cx.err(
            "BatchNormalization in training form (training_mode=1) is not supported on import; export the inference graph",
        ));
    }
    let epsilon = cx.float("epsilon")?;
    let momentum = if cx.has("momentum")? { Some(cx.float("momentum")?) } else { None };
    let mut ins = Vec::with_capacity(5);
    for i in 0..3 {
        ins.push(cx.value(i)?);
    }
    for i in 3..5 {
        ins.push(cx.state(i)?);
    }
    cx.emit_out(Op::BatchNorm(BatchNorm { epsilon, momentum }), &ins)
}
