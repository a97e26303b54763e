//! GatherElements and ScatterElements (and Scatter, its name at opsets 9 and 10): elementwise
//! indexing along an axis, the engine's [`GatherElements`] and [`ScatterElements`].
//!
//! Opset history: GatherElements 11 (13 widens the types). Scatter 9, deprecated at 11 for
//! ScatterElements 11; 16 adds `reduction` (none, add, mul), 18 adds max and min.

use distk_engine::{GatherElements, Op, Reduction, ScatterElements};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

/// GatherElements, ScatterElements, Scatter.
pub static OPS: &[OpDef] = &[
    OpDef {
        op_type: "GatherElements",
        spec: OpSpec {
            since: 11,
            inputs: &[InputSpec::value("data"), InputSpec::value("indices")],
            outputs: &[OutputSpec::produced("output")],
            attrs: &[AttrSpec::int("axis", 0)],
            ..OpSpec::DEFAULT
        },
        import: Some(import_gather),
        fold: None,
    },
    OpDef {
        op_type: "ScatterElements",
        spec: OpSpec {
            since: 11,
            inputs: &[InputSpec::value("data"), InputSpec::value("indices"), InputSpec::value("updates")],
            outputs: &[OutputSpec::produced("output")],
            attrs: &[
                AttrSpec::int("axis", 0),
                AttrSpec::new("reduction", crate::ops::spec::AttrDefault::Str("none")).opsets(16, None),
            ],
            ..OpSpec::DEFAULT
        },
        import: Some(import_scatter),
        fold: None,
    },
    OpDef {
        op_type: "Scatter",
        spec: OpSpec {
            since: 9,
            until: Some(10),
            inputs: &[InputSpec::value("data"), InputSpec::value("indices"), InputSpec::value("updates")],
            outputs: &[OutputSpec::produced("output")],
            attrs: &[AttrSpec::int("axis", 0)],
            ..OpSpec::DEFAULT
        },
        import: Some(import_scatter),
        fold: None,
    },
];

/// ONNX's `reduction` attribute of the scatters (absent before opset 16: replacement).
pub(super) fn reduction(cx: &ImportCx<'_, '_>) -> Result<Reduction> {
    if !cx.declares("reduction") {
        return Ok(Reduction::None);
    }
    Ok(match cx.string("reduction")?.as_str() {
        "none" => Reduction::None,
        "add" => Reduction::Add,
        "mul" => Reduction::Mul,
        "max" => Reduction::Max,
        "min" => Reduction::Min,
        other => return Err(cx.err(format!("unknown reduction `{other}` (none, add, mul, max, min)"))),
    })
}

fn import_gather(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let axis = cx.axis(cx.int("axis")?, cx.shape(0)?.len())?;
    let (x, idx) = (cx.value(0)?, cx.value(1)?);
    cx.emit_out(Op::GatherElements(GatherElements { axis }), &[x, idx])
}

fn import_scatter(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let axis = cx.axis(cx.int("axis")?, cx.shape(0)?.len())?;
    let reduction = reduction(cx)?;
    let (x, idx, upd) = (cx.value(0)?, cx.value(1)?, cx.value(2)?);
    cx.emit_out(Op::ScatterElements(ScatterElements { axis, reduction }), &[x, idx, upd])
}
