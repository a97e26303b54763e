//! GatherND and ScatterND: slices at index tuples, the engine's [`GatherNd`] and [`ScatterNd`].
//!
//! Opset history: GatherND 11; 12 adds `batch_dims`; 13 widens the types. ScatterND 11; 16 adds
//! `reduction` (none, add, mul), 18 max and min.

use distk_engine::{GatherNd, Op, ScatterNd};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::gather_elements::reduction;
use crate::ops::spec::{AttrDefault, AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

/// GatherND, ScatterND.
pub static OPS: &[OpDef] = &[
    OpDef {
        op_type: "GatherND",
        spec: OpSpec {
            since: 11,
            inputs: &[InputSpec::value("data"), InputSpec::value("indices")],
            outputs: &[OutputSpec::produced("output")],
            attrs: &[AttrSpec::int("batch_dims", 0).opsets(12, None)],
            ..OpSpec::DEFAULT
        },
        import: Some(import_gather),
        fold: None,
    },
    OpDef {
        op_type: "ScatterND",
        spec: OpSpec {
            since: 11,
            inputs: &[InputSpec::value("data"), InputSpec::value("indices"), InputSpec::value("updates")],
            outputs: &[OutputSpec::produced("output")],
            attrs: &[AttrSpec::new("reduction", AttrDefault::Str("none")).opsets(16, None)],
            ..OpSpec::DEFAULT
        },
        import: Some(import_scatter),
        fold: None,
    },
];

fn import_gather(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let batch_dims = if cx.declares("batch_dims") { cx.int("batch_dims")? } else { 0 };
    let batch_dims = usize::try_from(batch_dims).map_err(|_| cx.err(format!("batch_dims {batch_dims} is negative")))?;
    let (x, idx) = (cx.value(0)?, cx.value(1)?);
    cx.emit_out(Op::GatherNd(GatherNd { batch_dims }), &[x, idx])
}

fn import_scatter(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let reduction = reduction(cx)?;
    let (x, idx, upd) = (cx.value(0)?, cx.value(1)?, cx.value(2)?);
    cx.emit_out(Op::ScatterNd(ScatterNd { reduction }), &[x, idx, upd])
}
