//! The window attributes Conv and the pools share (`strides`, `dilations`, `pads`, `auto_pad`),
//! checked and resolved to explicit pads. Not an op: a helper of `conv` and `pool`.

use crate::context::NodeCx;
use crate::error::Result;
use crate::ops::spec::{AttrDefault, AttrSpec};

/// The window attributes every windowed op declares (`dilations` is declared per op: the pools
/// gained it later).
pub(super) const WINDOW_ATTRS: [AttrSpec; 3] =
    [AttrSpec::absent("strides"), AttrSpec::absent("pads"), AttrSpec::new("auto_pad", AttrDefault::Str("NOTSET"))];

/// Kernel, strides, dilations and explicit pads of a windowed op.
pub(super) struct Window {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads_begin: Vec<usize>,
    pub pads_end: Vec<usize>,
}

/// A list of positive sizes from an attribute, one per spatial dim (`fill` when absent).
fn sizes(cx: &NodeCx<'_>, name: &str, nd: usize, min: i64) -> Result<Vec<usize>> {
    let Some(v) = (if cx.declares(name) { cx.ints_opt(name)? } else { None }) else { return Ok(vec![1; nd]) };
    if v.len() != nd || v.iter().any(|&x| x < min) {
        return Err(cx.err(format!("{name} {v:?} must be {nd} values of at least {min}")));
    }
    v.iter().map(|&x| usize::try_from(x).map_err(|_| cx.err(format!("{name} {v:?} is out of range")))).collect()
}

/// The kernel from `kernel_shape` (`None` when absent), checked to be `nd` positive sizes.
pub(super) fn kernel_attr(cx: &NodeCx<'_>, nd: usize) -> Result<Option<Vec<usize>>> {
    if cx.ints_opt("kernel_shape")?.is_none() {
        return Ok(None);
    }
    sizes(cx, "kernel_shape", nd, 1).map(Some)
}

/// Resolves the window of a node over `spatial` input dims with `kernel`.
pub(super) fn window(cx: &NodeCx<'_>, spatial: &[usize], kernel: Vec<usize>) -> Result<Window> {
    let nd = spatial.len();
    if kernel.len() != nd || kernel.contains(&0) {
        return Err(cx.err(format!("kernel {kernel:?} does not fit {nd} spatial dims")));
    }
    let strides = sizes(cx, "strides", nd, 1)?;
    let dilations = sizes(cx, "dilations", nd, 1)?;
    let mut spans = Vec::with_capacity(nd);
    for i in 0..nd {
        let span = dilations[i].checked_mul(kernel[i] - 1).and_then(|s| s.checked_add(1));
        spans.push(span.ok_or_else(|| cx.err(format!("dilations {dilations:?} with kernel {kernel:?} overflow")))?);
    }
    let (mut begin, mut end) = (vec![0; nd], vec![0; nd]);
    let auto = cx.string("auto_pad")?;
    match auto.as_str() {
        "NOTSET" => {
            if let Some(p) = cx.ints_opt("pads")? {
                if p.len() != 2 * nd || p.iter().any(|&x| x < 0) {
                    return Err(cx.err(format!("pads {p:?} must be {} values of at least 0", 2 * nd)));
                }
                let p: Vec<usize> = p.iter().map(|&x| usize::try_from(x).unwrap_or(usize::MAX)).collect();
                begin.copy_from_slice(&p[..nd]);
                end.copy_from_slice(&p[nd..]);
            }
        }
        "VALID" => {}
        "SAME_UPPER" | "SAME_LOWER" => {
            for i in 0..nd {
                let out = spatial[i].div_ceil(strides[i]);
                let need = out.saturating_sub(1).checked_mul(strides[i]).and_then(|a| a.checked_add(spans[i]));
                let total = need.ok_or_else(|| cx.err("window sizes overflow"))?.saturating_sub(spatial[i]);
                let small = total / 2;
                (begin[i], end[i]) = if auto == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
            }
        }
        other => return Err(cx.err(format!("auto_pad `{other}` is not valid"))),
    }
    Ok(Window { kernel, strides, dilations, pads_begin: begin, pads_end: end })
}
