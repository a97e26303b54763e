//! Resize (opsets 10..) and Upsample (7..=9): each resized axis resampled on its own, as a
//! sparse interpolation matrix computed at import.
//!
//! Resize is separable: along one axis of input length `in` and output length `out`, output row
//! `y` is `sum_k w[y][k] * x[idx[y][k]]` (or a constant, see below), the same for every position
//! of the other axes. Shapes are static at import, so `scales`, `sizes` and `roi` must be known
//! then (`Need::Known`; a test or a model that feeds them as graph inputs binds them with
//! `ImportOptions::bound_inputs`), and the importer computes `idx` and `w` in f64, following
//! onnx's reference implementation (`onnx/reference/ops/op_resize.py`, which also wrote the
//! conformance cases' expected outputs) step by step:
//!
//! - the source coordinate of output row `y`, with `scale` the axis's scale, `ow = scale * in`
//!   (fractional when it comes from a scale) and `out` its integer output length:
//!   `half_pixel`: `(y + 0.5) / scale - 0.5`;
//!   `half_pixel_symmetric`: `in / 2 * (1 - out / ow) + (y + 0.5) / scale - 0.5`;
//!   `pytorch_half_pixel`: as `half_pixel`, but `-0.5` when `ow == 1` (the reference's value; the
//!   spec's text says 0, which gives the same result for linear and nearest);
//!   `align_corners`: `y * (in - 1) / (ow - 1)`, `0` when `ow == 1`;
//!   `asymmetric`: `y / scale`;
//!   `tf_half_pixel_for_nn` (opsets 11 and 12 only): `(y + 0.5) / scale`;
//!   `tf_crop_and_resize`: `start * (in - 1) + y * (end - start) * (in - 1) / (ow - 1)` (with `ow
//!   == 1`: `(end - start) * (in - 1) / 2 + start * (in - 1)`), for the axis's `roi = (start,
//!   end)`; a coordinate outside `[0, in - 1]` gives `extrapolation_value`;
//! - with `f = floor(x)` and `r = x - f` (`r = 1` when `x` is an integer: the pixel on the left is
//!   preferred), the weights of the taps around `x`: nearest `[1 - n, n]` where `n` is whether `r`
//!   rounds up (by `nearest_mode`: `round_prefer_floor` `r > 0.5`, `round_prefer_ceil` `r >= 0.5`,
//!   `floor` never, `ceil` always; an integer `x` is itself); linear `[1 - r, r]`; cubic (with
//!   `a = cubic_coeff_a`) Keys' kernel `W(d) = (a + 2)|d|^3 - (a + 3)|d|^2 + 1` for `|d| <= 1`,
//!   `a|d|^3 - 5a|d|^2 + 8a|d| - 4a` for `1 < |d| < 2`, at the distances `r + 1, r, 1 - r, 2 - r`;
//!   with `antialias` (linear and cubic), the kernel stretched by `1 / s` with `s = min(scale, 1)`
//!   (the triangle `max(0, 1 - |d| * s)` or `W(d * s)` over every tap within its support),
//!   normalised to sum 1;
//! - the taps: the `n` input positions nearest `x` (ties to the smaller), positions outside
//!   `[0, in)` reading the edge (clamped); with `exclude_outside`, those get weight 0 and the
//!   weights are renormalised.
//!
//! `axes` (opset 18) names the axes `scales`, `sizes` and `roi` refer to (all axes otherwise).
//! Output lengths: `floor(scale * in)` from `scales` (the spec's text multiplies by `roi_end -
//! roi_start` too; onnx's shape inference and reference do not, nor does this), or `sizes` (then
//! `scale = size / in`); with `keep_aspect_ratio_policy` `not_larger` (`not_smaller`) one scale,
//! the smallest (largest) over the axes, and lengths `round_half_up(scale * in)`. An axis whose
//! scale is 1 (within 1e-9), whose length stays and whose roi is `(0, 1)` is left alone, as the
//! reference does.
//!
//! Why a gather, a product and a sum rather than a dense `out x in` matrix product: the taps per
//! output row are few (2 for linear, 4 for cubic, about `2 / scale` or `4 / scale` with
//! antialias), so the constants stay `out x taps` whatever the input length, each output row reads
//! exactly the input positions the reference reads, and the work is proportional to the output.
//! Per resized axis, `x` viewed as `[pre, in, post]` becomes `Gather(x, idx [out, taps])` (`[pre,
//! out, taps, post]`) times the weights `[out, taps, 1]`, summed over the taps; when every row has
//! a single tap of weight 1 (nearest, and linear or cubic at integer positions) the gather alone.
//! Taps of weight 0 are dropped and taps reading the same clamped position merged before that, so
//! nearest is always a gather. Rows that are a constant (tf_crop_and_resize's extrapolated
//! positions; rows whose every tap `exclude_outside` removed, 0 as in the reference) are set by a
//! `Where` on a constant mask. The gradient is autodiff's: a scatter-add (Gather's), the product
//! and the sum's broadcast, the mask. Cost: the forward reads `taps` inputs per output (a dense
//! product would read `in`); the WGSL scatter-add scans every index for each input position, so a
//! training step's backward costs about what a dense product's would (`taps * out` per input
//! position against `out`), which a faster scatter-add in the engine would cut. Integer inputs
//! resize in nearest mode only (the engine's arithmetic is float; the reference rounds the
//! interpolation back to integers).
//!
//! Upsample (7: `scales` an attribute; 9: an input; deprecated by Resize at 10) and Resize 10 (its
//! successor: `X` and `scales` only) have no coordinate mode: they are `asymmetric` with `floor`
//! rounding, as Upsample's reference (`np.repeat`, integer scales only) has it; modes `nearest` and
//! `linear`. Nothing in onnx pins down nearest downsampling or fractional scales at these opsets
//! (other runtimes differ there: tract rounds half down at Resize 10); floor is kept for them.
//!
//! Opset history of Resize: 10 `X`, `scales`, `mode` (nearest, linear); 11 adds the `roi` and
//! `sizes` inputs (`scales` then empty), `cubic` mode, `coordinate_transformation_mode`
//! (`tf_half_pixel_for_nn` among its values), `cubic_coeff_a`, `exclude_outside`,
//! `extrapolation_value` and `nearest_mode`; 13 makes `roi` and `scales` optional and drops
//! `tf_half_pixel_for_nn`; 18 adds `antialias`, `axes` and `keep_aspect_ratio_policy`; 19 adds
//! `half_pixel_symmetric`.
//!
//! Refused: `scales` and `sizes` both given, or neither; lengths or values that do not fit the
//! input's rank or `axes`; non-positive or non-finite scales; an empty input or output axis;
//! `tf_crop_and_resize` without a finite `roi`; constants or outputs past the importer's size bound
//! (`tensor::MAX_CREATED_ELEMS`); linear or cubic on integer data.

use distk_engine::{BinaryOp, DType, Gather, Op, Reduce, ReduceOp, ValueId, Where};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrDefault, AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::{MAX_CREATED_ELEMS, created_numel, numel};

/// Resize, Upsample.
pub static OPS: &[OpDef] = &[
    OpDef {
        op_type: "Resize",
        spec: OpSpec {
            since: 10,
            inputs: &[
                InputSpec::value("X"),
                InputSpec::known("roi").optional().since(11),
                InputSpec::known("scales").optional(),
                InputSpec::known("sizes").optional().since(11),
            ],
            outputs: &[OutputSpec::produced("Y")],
            attrs: &[
                AttrSpec::new("mode", AttrDefault::Str("nearest")),
                AttrSpec::new("coordinate_transformation_mode", AttrDefault::Str("half_pixel")).opsets(11, None),
                AttrSpec::float("cubic_coeff_a", -0.75).opsets(11, None),
                AttrSpec::int("exclude_outside", 0).opsets(11, None),
                AttrSpec::float("extrapolation_value", 0.0).opsets(11, None),
                AttrSpec::new("nearest_mode", AttrDefault::Str("round_prefer_floor")).opsets(11, None),
                AttrSpec::int("antialias", 0).opsets(18, None),
                AttrSpec::absent("axes").opsets(18, None),
                AttrSpec::new("keep_aspect_ratio_policy", AttrDefault::Str("stretch")).opsets(18, None),
            ],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
    OpDef {
        op_type: "Upsample",
        spec: OpSpec {
            since: 7,
            until: Some(9),
            inputs: &[InputSpec::value("X"), InputSpec::known("scales").since(9)],
            outputs: &[OutputSpec::produced("Y")],
            attrs: &[
                AttrSpec::new("mode", AttrDefault::Str("nearest")),
                AttrSpec::required("scales").opsets(7, Some(8)),
            ],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
];

/// How nearest mode rounds a fractional source coordinate.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rounding {
    PreferFloor,
    PreferCeil,
    Floor,
    Ceil,
}

/// The interpolation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Nearest(Rounding),
    Linear,
    Cubic { a: f64 },
}

/// The coordinate transformation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Coord {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
    TfCropAndResize,
}

/// Everything about the resampling but the sizes.
#[derive(Clone, Copy, Debug)]
struct Interp {
    mode: Mode,
    coord: Coord,
    antialias: bool,
    exclude_outside: bool,
    extrapolation: f64,
}

/// One output row along an axis.
#[derive(Clone, Debug, PartialEq)]
enum Row {
    /// `sum w * x[i]` over the (input position, weight) taps.
    Taps(Vec<(usize, f64)>),
    /// A constant.
    Fill(f64),
}

/// One axis to resample: its output length, scale and roi.
#[derive(Clone, Copy, Debug)]
struct AxisPlan {
    axis: usize,
    out: usize,
    scale: f64,
    roi: Option<(f32, f32)>,
}

/// Python's `math.isclose` with its default tolerances (relative 1e-9, absolute 0).
fn isclose(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// The number of taps antialiasing uses at `scale` (`support` 1 for linear, 2 for cubic), or
/// `None` past the size bound.
fn antialias_taps(scale: f64, support: f64) -> Option<(i64, usize)> {
    let s = scale.min(1.0);
    let start = (-support / s).floor() + 1.0;
    if !start.is_finite() || start < -(MAX_CREATED_ELEMS as f64) {
        return None;
    }
    let start = start as i64;
    Some((start, (2 - 2 * start) as usize))
}

/// Keys' cubic kernel at distance `x`.
fn cubic_kernel(x: f64, a: f64) -> f64 {
    let x = x.abs();
    let x2 = x * x;
    let x3 = x * x2;
    if x <= 1.0 {
        (a + 2.0) * x3 - (a + 3.0) * x2 + 1.0
    } else if x < 2.0 {
        a * x3 - 5.0 * a * x2 + 8.0 * a * x - 4.0 * a
    } else {
        0.0
    }
}

/// The weights of the taps for a source coordinate whose fractional part (in `(0, 1]`) is `r`.
fn weights(it: &Interp, r: f64, scale: f64) -> Vec<f64> {
    let normalised = |c: Vec<f64>| {
        let sum: f64 = c.iter().sum();
        c.into_iter().map(|v| v / sum).collect::<Vec<_>>()
    };
    match it.mode {
        Mode::Nearest(rounding) => {
            let up = r == r.trunc()
                || match rounding {
                    Rounding::PreferFloor => r > 0.5,
                    Rounding::PreferCeil => r >= 0.5,
                    Rounding::Floor => false,
                    Rounding::Ceil => true,
                };
            if up { vec![0.0, 1.0] } else { vec![1.0, 0.0] }
        }
        Mode::Linear if it.antialias => {
            let s = scale.min(1.0);
            let (start, n) = antialias_taps(scale, 1.0).unwrap_or((0, 2));
            normalised((0..n as i64).map(|k| (1.0 - (((start + k) as f64 - r) * s).abs()).clamp(0.0, 1.0)).collect())
        }
        Mode::Linear => vec![1.0 - r, r],
        Mode::Cubic { a } if it.antialias => {
            let s = scale.min(1.0);
            let (start, n) = antialias_taps(scale, 2.0).unwrap_or((-1, 4));
            normalised((0..n as i64).map(|k| cubic_kernel(s * ((start + k) as f64 - r), a)).collect())
        }
        Mode::Cubic { a } => {
            let (p, q) = (r + 1.0, 1.0 - r + 1.0);
            vec![
                ((a * p - 5.0 * a) * p + 8.0 * a) * p - 4.0 * a,
                ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
                ((a + 2.0) * (1.0 - r) - (a + 3.0)) * (1.0 - r) * (1.0 - r) + 1.0,
                ((a * q - 5.0 * a) * q + 8.0 * a) * q - 4.0 * a,
            ]
        }
    }
}

/// The rows of one axis resampled from `in_len` to `out` (see the module's equations).
fn axis_rows(it: &Interp, in_len: usize, p: &AxisPlan) -> Vec<Row> {
    let (scale, out) = (p.scale, p.out);
    let inf = in_len as f64;
    let ow = scale * inf;
    (0..out)
        .map(|y| {
            let yf = y as f64;
            let x = match it.coord {
                Coord::HalfPixel => (yf + 0.5) / scale - 0.5,
                Coord::HalfPixelSymmetric => {
                    let offset = inf / 2.0 * (1.0 - out as f64 / ow);
                    offset + (yf + 0.5) / scale - 0.5
                }
                Coord::PytorchHalfPixel if ow == 1.0 => -0.5,
                Coord::PytorchHalfPixel => (yf + 0.5) / scale - 0.5,
                Coord::AlignCorners if ow == 1.0 => 0.0,
                Coord::AlignCorners => yf * (inf - 1.0) / (ow - 1.0),
                Coord::Asymmetric => yf / scale,
                Coord::TfHalfPixelForNn => (yf + 0.5) / scale,
                Coord::TfCropAndResize => {
                    // The reference computes the roi's terms in float32 (numpy's promotion).
                    let (start, end) = p.roi.unwrap_or((0.0, 1.0));
                    let n1 = (in_len - 1) as f32;
                    let x = if ow == 1.0 {
                        ((end - start) * n1 / 2.0) as f64
                    } else {
                        yf * (end - start) as f64 * (inf - 1.0) / (ow - 1.0)
                    };
                    let x = x + (start * n1) as f64;
                    if x < 0.0 || x > inf - 1.0 {
                        return Row::Fill(it.extrapolation);
                    }
                    x
                }
            };
            let r = if x == x.floor() { 1.0 } else { x - x.floor() };
            let mut w = weights(it, r, scale);
            let n = w.len();
            // The n positions nearest x, ties to the smaller (the reference's window).
            let pad = n.div_ceil(2) as f64;
            let xp = x + pad;
            let frac = xp - xp.floor();
            let half = (n / 2) as f64;
            let offset = if n.is_multiple_of(2) {
                if frac == 0.0 { -half } else { -half + 1.0 }
            } else {
                let base = -(((n - 1) / 2) as f64);
                if frac <= 0.5 { base } else { base + 1.0 }
            };
            let first = xp.floor() + offset - pad;
            let at = |k: usize| first + k as f64;
            if it.exclude_outside {
                for (k, wk) in w.iter_mut().enumerate() {
                    if at(k) < 0.0 || at(k) >= inf {
                        *wk = 0.0;
                    }
                }
                let sum: f64 = w.iter().sum();
                let sum = if sum == 0.0 { 1.0 } else { sum };
                w.iter_mut().for_each(|wk| *wk /= sum);
            }
            let mut taps: Vec<(usize, f64)> = Vec::new();
            for (k, &wk) in w.iter().enumerate() {
                if wk == 0.0 {
                    continue;
                }
                let i = at(k).clamp(0.0, inf - 1.0) as usize;
                match taps.iter_mut().find(|t| t.0 == i) {
                    Some(t) => t.1 += wk,
                    None => taps.push((i, wk)),
                }
            }
            if taps.is_empty() { Row::Fill(0.0) } else { Row::Taps(taps) }
        })
        .collect()
}

/// The number of taps a row of `it` reads at `scale` before merging (the rows' allocation bound).
fn taps_per_row(it: &Interp, scale: f64) -> Option<usize> {
    match it.mode {
        Mode::Nearest(_) => Some(2),
        Mode::Linear if it.antialias => antialias_taps(scale, 1.0).map(|t| t.1),
        Mode::Linear => Some(2),
        Mode::Cubic { .. } if it.antialias => antialias_taps(scale, 2.0).map(|t| t.1),
        Mode::Cubic { .. } => Some(4),
    }
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let shape = cx.shape(0)?;
    let rank = shape.len();
    let upsample = cx.def.op_type == "Upsample";
    let legacy = upsample || cx.opset < 11;
    let it = interp(cx, legacy)?;

    // scales, sizes and roi (empty tensors count as absent, as opset 11 writes them).
    let nonempty = |t: Option<crate::tensor::ConstTensor>| t.filter(|t| !t.data.is_empty());
    let (scales, sizes, roi) = if upsample && cx.opset < 9 {
        let s = cx.floats_opt("scales")?.unwrap_or_default();
        (Some(s.iter().map(|&v| v as f64).collect::<Vec<_>>()), None, None)
    } else if legacy {
        (Some(cx.require_known(1)?.data), None, None)
    } else {
        let roi = nonempty(cx.known(1)?).map(|t| t.data);
        (nonempty(cx.known(2)?).map(|t| t.data), nonempty(cx.known(3)?).map(|t| t.as_i64()), roi)
    };
    let axes: Vec<usize> = match cx.declares("axes").then(|| cx.ints_opt("axes")).transpose()?.flatten() {
        Some(a) => {
            let axes: Vec<usize> = a.iter().map(|&v| cx.axis(v, rank)).collect::<Result<_>>()?;
            if (1..axes.len()).any(|i| axes[..i].contains(&axes[i])) {
                return Err(cx.err(format!("axes {a:?} repeat an axis")));
            }
            axes
        }
        None => (0..rank).collect(),
    };
    let policy =
        if cx.declares("keep_aspect_ratio_policy") { cx.string("keep_aspect_ratio_policy")? } else { "stretch".into() };
    let k = axes.len();
    for &a in &axes {
        if shape[a] == 0 {
            return Err(cx.err(format!("axis {a} of input {shape:?} is empty")));
        }
    }
    let mut plans: Vec<AxisPlan> = match (scales, sizes) {
        (Some(_), Some(_)) => return Err(cx.err("both scales and sizes are given; one of them must be")),
        (None, None) => return Err(cx.err("neither scales nor sizes is given (or both are empty)")),
        (Some(s), None) => {
            if s.len() != k {
                return Err(cx.err(format!("{} scales for {k} axes", s.len())));
            }
            let mut plans = Vec::with_capacity(k);
            for (&axis, &scale) in axes.iter().zip(&s) {
                if !(scale.is_finite() && scale > 0.0) {
                    return Err(cx.err(format!("scale {scale} of axis {axis} is not a positive number")));
                }
                let out = (scale * shape[axis] as f64).floor();
                if out > MAX_CREATED_ELEMS as f64 {
                    return Err(cx.err(format!("scale {scale} makes axis {axis} ({}) too long", shape[axis])));
                }
                plans.push(AxisPlan { axis, out: out as usize, scale, roi: None });
            }
            plans
        }
        (None, Some(z)) => {
            if z.len() != k {
                return Err(cx.err(format!("{} sizes for {k} axes", z.len())));
            }
            let mut plans = Vec::with_capacity(k);
            for (&axis, &size) in axes.iter().zip(&z) {
                let out = usize::try_from(size)
                    .ok()
                    .filter(|&o| o <= MAX_CREATED_ELEMS)
                    .ok_or_else(|| cx.err(format!("size {size} of axis {axis} is out of range")))?;
                plans.push(AxisPlan { axis, out, scale: out as f64 / shape[axis] as f64, roi: None });
            }
            let pick = match policy.as_str() {
                "stretch" => None,
                "not_larger" => plans.iter().map(|p| p.scale).reduce(f64::min),
                "not_smaller" => plans.iter().map(|p| p.scale).reduce(f64::max),
                other => {
                    return Err(
                        cx.err(format!("keep_aspect_ratio_policy `{other}` is not stretch, not_larger or not_smaller"))
                    );
                }
            };
            if let Some(scale) = pick {
                for p in &mut plans {
                    p.scale = scale;
                    // round_half_up, as the reference's int(x + 0.5).
                    let out = (scale * shape[p.axis] as f64 + 0.5).trunc();
                    if out > MAX_CREATED_ELEMS as f64 {
                        return Err(cx.err(format!("axis {} resized past the size bound", p.axis)));
                    }
                    p.out = out as usize;
                }
            }
            plans
        }
    };
    if let Some(roi) = &roi {
        if roi.len() != 2 * k {
            return Err(cx.err(format!("roi has {} values for {k} axes (expected two per axis)", roi.len())));
        }
        for (i, p) in plans.iter_mut().enumerate() {
            p.roi = Some((roi[i] as f32, roi[k + i] as f32));
        }
    }
    if it.coord == Coord::TfCropAndResize && !roi.as_ref().is_some_and(|r| r.iter().all(|v| (*v as f32).is_finite())) {
        return Err(cx.err("coordinate_transformation_mode tf_crop_and_resize needs a finite roi"));
    }
    for p in &plans {
        if p.out == 0 {
            return Err(cx.err(format!("axis {} ({}) would be resized to nothing", p.axis, shape[p.axis])));
        }
    }
    let mut out_shape = shape.clone();
    for p in &plans {
        out_shape[p.axis] = p.out;
    }
    created_numel(&out_shape).map_err(|e| cx.err(e))?;
    // An axis kept as it is (the reference skips it too).
    plans.retain(|p| {
        let same_roi = p.roi.is_none_or(|(s, e)| isclose(s as f64, 0.0) && isclose(e as f64, 1.0));
        !(isclose(p.scale, 1.0) && p.out == shape[p.axis] && same_roi)
    });

    let mut x = cx.value(0)?;
    for p in &plans {
        let in_len = cx.value_shape(x)[p.axis];
        let taps = taps_per_row(&it, p.scale).ok_or_else(|| cx.err(format!("scale {} is too small", p.scale)))?;
        created_numel(&[p.out, taps]).map_err(|e| cx.err(e))?;
        if in_len > 1 << 24 {
            return Err(cx.err(format!("axis {} ({in_len}) is too long to index exactly", p.axis)));
        }
        let rows = axis_rows(&it, in_len, p);
        x = apply(cx, x, p.axis, &rows)?;
    }
    cx.set(x)
}

/// The interpolation the node asks for.
fn interp(cx: &ImportCx<'_, '_>, legacy: bool) -> Result<Interp> {
    let mode = cx.string("mode")?;
    let rounding = if legacy {
        Rounding::Floor
    } else {
        match cx.string("nearest_mode")?.as_str() {
            "round_prefer_floor" => Rounding::PreferFloor,
            "round_prefer_ceil" => Rounding::PreferCeil,
            "floor" => Rounding::Floor,
            "ceil" => Rounding::Ceil,
            other => {
                return Err(cx.err(format!(
                    "nearest_mode `{other}` is not round_prefer_floor, round_prefer_ceil, floor or ceil"
                )));
            }
        }
    };
    let mode = match mode.as_str() {
        "nearest" => Mode::Nearest(rounding),
        "linear" => Mode::Linear,
        "cubic" if !legacy => Mode::Cubic { a: cx.float("cubic_coeff_a")? as f64 },
        other => {
            let modes = if legacy { "nearest or linear" } else { "nearest, linear or cubic" };
            return Err(cx.err(format!("mode `{other}` is not {modes}")));
        }
    };
    let coord = if legacy {
        Coord::Asymmetric
    } else {
        match cx.string("coordinate_transformation_mode")?.as_str() {
            "half_pixel" => Coord::HalfPixel,
            "half_pixel_symmetric" if cx.opset >= 19 => Coord::HalfPixelSymmetric,
            "pytorch_half_pixel" => Coord::PytorchHalfPixel,
            "align_corners" => Coord::AlignCorners,
            "asymmetric" => Coord::Asymmetric,
            "tf_half_pixel_for_nn" if cx.opset < 13 => Coord::TfHalfPixelForNn,
            "tf_crop_and_resize" => Coord::TfCropAndResize,
            other => {
                return Err(
                    cx.err(format!("coordinate_transformation_mode `{other}` is not one opset {} defines", cx.opset))
                );
            }
        }
    };
    // antialias applies to linear and cubic only (the spec); nearest ignores it.
    let antialias = cx.declares("antialias") && cx.int("antialias")? != 0 && !matches!(mode, Mode::Nearest(_));
    Ok(Interp {
        mode,
        coord,
        antialias,
        exclude_outside: !legacy && cx.int("exclude_outside")? != 0,
        extrapolation: if legacy { 0.0 } else { cx.float("extrapolation_value")? as f64 },
    })
}

/// `x` resampled along `axis` to `rows`.
fn apply(cx: &mut ImportCx<'_, '_>, x: ValueId, axis: usize, rows: &[Row]) -> Result<ValueId> {
    let s = cx.value_shape(x);
    let dtype = cx.value_dtype(x);
    let in_len = s.get(axis).copied().ok_or_else(|| cx.err(format!("axis {axis} out of range for {s:?}")))?;
    let out = rows.len();
    let pre = numel(&s[..axis]).map_err(|e| cx.err(e))?;
    let post = numel(&s[axis + 1..]).map_err(|e| cx.err(e))?;
    let m = rows.iter().map(|r| if let Row::Taps(t) = r { t.len() } else { 0 }).max().unwrap_or(0).max(1);
    let gather_only = m == 1 && rows.iter().all(|r| !matches!(r, Row::Taps(t) if t.iter().any(|tap| tap.1 != 1.0)));
    let mut out_shape = s.clone();
    out_shape[axis] = out;
    if !gather_only {
        if dtype != DType::F32 {
            return Err(cx.err(format!("linear or cubic interpolation of {dtype:?} data (only float32 interpolates)")));
        }
        created_numel(&[pre, out, m, post]).map_err(|e| cx.err(e))?;
    }
    let len = created_numel(&[out, m]).map_err(|e| cx.err(e))?;
    let (mut idx, mut w) = (Vec::with_capacity(len), Vec::with_capacity(len));
    for r in rows {
        let taps: &[(usize, f64)] = if let Row::Taps(t) = r { t } else { &[] };
        for j in 0..m {
            let (i, wj) = taps.get(j).copied().unwrap_or((0, 0.0));
            idx.push(i as f32);
            w.push(wj as f32);
        }
    }
    let x3 = cx.reshape(x, vec![pre, in_len, post])?;
    let y = if gather_only {
        let at = cx.typed_constant(&format!("axis{axis}_indices"), vec![out], idx, DType::I64)?;
        cx.emit(Op::Gather(Gather { axis: 1 }), &[x3, at])?
    } else {
        let at = cx.typed_constant(&format!("axis{axis}_indices"), vec![out, m], idx, DType::I64)?;
        let g = cx.emit(Op::Gather(Gather { axis: 1 }), &[x3, at])?;
        let wc = cx.constant(&format!("axis{axis}_weights"), vec![out, m, 1], w)?;
        let p = cx.emit(Op::Binary(BinaryOp::Mul), &[g, wc])?;
        cx.emit(Op::Reduce(Reduce { op: ReduceOp::Sum, axes: vec![2], keepdims: false }), &[p])?
    };
    let y = if rows.iter().any(|r| matches!(r, Row::Fill(_))) {
        let mask: Vec<f32> = rows.iter().map(|r| if matches!(r, Row::Fill(_)) { 1.0 } else { 0.0 }).collect();
        let fill: Vec<f32> = rows.iter().map(|r| if let Row::Fill(v) = r { *v as f32 } else { 0.0 }).collect();
        let mask = cx.typed_constant(&format!("axis{axis}_filled"), vec![out, 1], mask, DType::Bool)?;
        let fill = cx.typed_constant(&format!("axis{axis}_fill"), vec![out, 1], fill, dtype)?;
        cx.emit(Op::Where(Where), &[mask, fill, y])?
    } else {
        y
    };
    cx.reshape(y, out_shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interp(mode: Mode, coord: Coord) -> Interp {
        Interp { mode, coord, antialias: false, exclude_outside: false, extrapolation: 0.0 }
    }

    fn rows(it: &Interp, in_len: usize, out: usize) -> Vec<Row> {
        axis_rows(it, in_len, &AxisPlan { axis: 0, out, scale: out as f64 / in_len as f64, roi: None })
    }

    #[test]
    fn nearest_reads_one_position() {
        // Asymmetric 2 -> 6: x = y / 3; floor is Upsample's repeat, rounding reads ahead (and
        // clamps at the edge).
        let read = |rounding| {
            let it = interp(Mode::Nearest(rounding), Coord::Asymmetric);
            rows(&it, 2, 6)
                .into_iter()
                .map(|r| match r {
                    Row::Taps(t) if t.len() == 1 && t[0].1 == 1.0 => t[0].0,
                    other => panic!("{other:?} is not one tap"),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(read(Rounding::Floor), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(read(Rounding::PreferFloor), vec![0, 0, 1, 1, 1, 1]);
        assert_eq!(read(Rounding::Ceil), vec![0, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn extrapolated_rows_are_fills() {
        let it = Interp { extrapolation: 2.5, ..interp(Mode::Linear, Coord::TfCropAndResize) };
        // roi (0.5, 1.5) of 3 positions to 3: x = 1, 2, 3 (past the end).
        let got = axis_rows(&it, 3, &AxisPlan { axis: 0, out: 3, scale: 1.0, roi: Some((0.5, 1.5)) });
        assert_eq!(got, vec![Row::Taps(vec![(1, 1.0)]), Row::Taps(vec![(2, 1.0)]), Row::Fill(2.5)]);
    }

    #[test]
    fn linear_half_pixel_clamps_at_the_edges() {
        let it = interp(Mode::Linear, Coord::HalfPixel);
        // x = -0.25, 0.25, 0.75, 1.25 for 2 -> 4.
        let got = rows(&it, 2, 4);
        assert_eq!(got[0], Row::Taps(vec![(0, 1.0)]));
        assert_eq!(got[1], Row::Taps(vec![(0, 0.75), (1, 0.25)]));
        assert_eq!(got[3], Row::Taps(vec![(1, 1.0)]));
    }

    #[test]
    fn cubic_weights_sum_to_one() {
        let it = interp(Mode::Cubic { a: -0.75 }, Coord::HalfPixel);
        for r in rows(&it, 5, 9) {
            let Row::Taps(t) = r else { panic!("a fill") };
            let sum: f64 = t.iter().map(|t| t.1).sum();
            assert!((sum - 1.0).abs() < 1e-12, "{t:?}");
        }
    }
}
