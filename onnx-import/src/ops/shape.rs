//! Shape: the input's dims as a 1-d int64 constant (with the batch bound, every shape is static).
//! Opset history: 15 adds `start` and `end` (clamped to the rank, negative counted from the end);
//! 13, 19, 21 and 23 widen the types.

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, OpDef, OpSpec, OutputRule};
use crate::tensor::ConstTensor;

/// Shape.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Shape",
    spec: OpSpec {
        attrs: &[AttrSpec::int("start", 0).opsets(15, None), AttrSpec::absent("end").opsets(15, None)],
        output: OutputRule::FromShape,
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    let r = s.len();
    let (start, end) = if cx.declares("start") { (cx.int("start")?, cx.int_opt("end")?) } else { (0, None) };
    let clamp = |v: i64| -> usize {
        let v = if v < 0 { v.saturating_add(r as i64) } else { v };
        usize::try_from(v.max(0)).unwrap_or(usize::MAX).min(r)
    };
    let (start, end) = (clamp(start), end.map_or(r, clamp));
    let dims: Vec<i64> = s[start..end.max(start)].iter().map(|&d| d as i64).collect();
    cx.set_const(ConstTensor::ints(&dims))
}
