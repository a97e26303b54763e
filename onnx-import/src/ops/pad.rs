//! Pad: each axis grown (or, with negative pads, cropped) at both ends. `constant` mode joins
//! blocks of the constant to the data (a Concat, whose gradient slices them off); `edge`, `reflect`
//! and `wrap` gather the data at the positions each output row reads (a Gather, whose gradient is
//! the scatter-add). The pads and the axes must be known at import; the constant may be computed at
//! run time (the blocks are then its broadcast).
//!
//! Opset history: 2 takes `pads` and `value` as attributes; 11 takes `pads` and `constant_value` as
//! inputs; 18 adds the `axes` input; 19 adds `wrap` mode; 13, 21 and 23 widen the types.

use distk_engine::{Broadcast, Concat, DType, Gather, Op, Slice, ValueId};

use crate::context::{ImportCx, Kind};
use crate::error::Result;
use crate::ops::spec::{AttrDefault, AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::created_numel;

/// Pad.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Pad",
    spec: OpSpec {
        since: 2,
        inputs: &[
            InputSpec::value("data"),
            InputSpec::known("pads").since(11),
            InputSpec::value("constant_value").optional().since(11),
            InputSpec::known("axes").optional().since(18),
        ],
        outputs: &[OutputSpec::produced("output")],
        attrs: &[
            AttrSpec::new("mode", AttrDefault::Str("constant")),
            AttrSpec::required("pads").opsets(2, Some(10)),
            AttrSpec::float("value", 0.0).opsets(2, Some(10)),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

/// The source position output position `i` (from `-begin`) reads along an axis of length `d`.
fn source(mode: &str, i: i64, d: i64) -> i64 {
    match mode {
        "edge" => i.clamp(0, d - 1),
        "wrap" => i.rem_euclid(d),
        // reflect: mirrored at the edges without repeating them.
        _ => {
            if d == 1 {
                return 0;
            }
            let period = 2 * (d - 1);
            let m = i.rem_euclid(period);
            if m < d { m } else { period - m }
        }
    }
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    let rank = s.len();
    let mode = cx.string("mode")?;
    if !matches!(mode.as_str(), "constant" | "edge" | "reflect" | "wrap") {
        return Err(cx.err(format!("mode `{mode}` is not constant, edge, reflect or wrap")));
    }
    // The constant: a value known at import, or a run-time scalar (broadcast into the blocks).
    let (pads, value, run_time_value) = if cx.opset < 11 {
        (cx.ints_opt("pads")?.unwrap_or_default(), cx.float("value")?, None)
    } else {
        let pads = cx.require_known(1)?.as_i64();
        match cx.kind(2)? {
            Some(Kind::RunTime) => (pads, 0.0, Some(cx.value(2)?)),
            _ => (pads, cx.known(2)?.and_then(|c| c.data.first().copied()).unwrap_or(0.0) as f32, None),
        }
    };
    let axes: Vec<usize> = match cx.known(3)? {
        Some(a) => a.as_i64().iter().map(|&v| cx.axis(v, rank)).collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(cx.err(format!("{} pads for {} axes (expected two per axis)", pads.len(), axes.len())));
    }
    let mut x = cx.value(0)?;
    let dtype = cx.value_dtype(x);
    for (k, &axis) in axes.iter().enumerate() {
        let (begin, end) = (pads[k], pads[k + axes.len()]);
        if begin == 0 && end == 0 {
            continue;
        }
        let shape = cx.value_shape(x);
        let d = shape[axis] as i64;
        let out_len = d.checked_add(begin).and_then(|v| v.checked_add(end)).filter(|&v| v > 0);
        let out_len =
            out_len.ok_or_else(|| cx.err(format!("pads {begin}, {end} leave nothing of axis {axis} ({d})")))?;
        if mode == "constant" || d == 0 {
            // Crop first (negative pads), then join the constant blocks.
            let (lo, hi) = ((-begin).max(0), (-end).max(0));
            if lo > 0 || hi > 0 {
                x = cx.emit(Op::Slice(Slice { axis, start: lo as usize, len: (d - lo - hi) as usize }), &[x])?;
            }
            let mut parts: Vec<ValueId> = Vec::new();
            let block = |cx: &mut ImportCx<'_, '_>, n: i64, at: &str| -> Result<ValueId> {
                let mut bs = cx.value_shape(x);
                bs[axis] = n as usize;
                let len = created_numel(&bs).map_err(|e| cx.err(e))?;
                match run_time_value {
                    Some(v) => {
                        let v = cx.reshape(v, vec![1; bs.len()])?;
                        cx.emit(Op::Broadcast(Broadcast { shape: bs }), &[v])
                    }
                    None => cx.typed_constant(&format!("pad{k}_{at}"), bs, vec![value; len], dtype),
                }
            };
            if begin > 0 {
                parts.push(block(cx, begin, "begin")?);
            }
            parts.push(x);
            if end > 0 {
                parts.push(block(cx, end, "end")?);
            }
            if parts.len() > 1 {
                x = cx.emit(Op::Concat(Concat { axis }), &parts)?;
            }
        } else {
            let idx: Vec<f32> = (-begin..d + end).map(|i| source(&mode, i, d) as f32).collect();
            debug_assert_eq!(idx.len() as i64, out_len);
            let at = cx.typed_constant(&format!("pad{k}_indices"), vec![idx.len()], idx, DType::I64)?;
            x = cx.emit(Op::Gather(Gather { axis }), &[x, at])?;
        }
    }
    cx.set(x)
}

#[cfg(test)]
mod tests {
    use super::source;

    #[test]
    fn edge_reflect_and_wrap_positions() {
        let read = |mode: &str| (-3..7).map(|i| source(mode, i, 4)).collect::<Vec<_>>();
        assert_eq!(read("edge"), vec![0, 0, 0, 0, 1, 2, 3, 3, 3, 3]);
        assert_eq!(read("reflect"), vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(read("wrap"), vec![1, 2, 3, 0, 1, 2, 3, 0, 1, 2]);
    }
}
