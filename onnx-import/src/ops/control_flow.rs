//! Loop, Scan and If, unrolled at import: the engine graph is static, so a loop becomes one copy of
//! its body per iteration (the body's weights shared, so their gradients add up over the
//! iterations, as backpropagation through time does) and an If the branch its condition picks.
//!
//! - Loop (opsets 1-24 as 11 defines it; 1 and 11 differ only in types): inputs `M` (trip
//!   count), `cond`, then the loop-carried values; body inputs `(iteration, cond, carried...)`,
//!   outputs `(cond, carried..., scan outputs...)`; the Loop's outputs are the final carried
//!   values, then each scan output stacked over the iterations along a new first axis. `M` and
//!   `cond` must be known at import, and when `cond` is given the body's condition must fold to
//!   a constant each iteration (the iteration number is one), as in exports that loop over a
//!   sequence of known length (Keras 3's recurrent layers). A data-dependent condition is refused.
//! - Scan (opsets 9+): state values then `num_scan_inputs` sequences, sliced along
//!   `scan_input_axes` (forwards, or backwards with `scan_input_directions`); body outputs the
//!   states then per-step scan outputs, stacked along `scan_output_axes` (reversed with
//!   `scan_output_directions`). The sequence length comes from the static shapes.
//! - If: `cond` must be known at import; the chosen branch's outputs are the node's.
//!
//! At most [`MAX_UNROLLED`] iterations are unrolled.

use distk_engine::{Concat, Op, Slice, ValueId};

use crate::context::{ImportCx, Val};
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};
use crate::tensor::ConstTensor;

/// The most iterations a Loop or Scan is unrolled to (each copies the body into the graph).
pub const MAX_UNROLLED: usize = 4096;

/// Loop, Scan and If.
pub static OPS: &[OpDef] = &[
    OpDef {
        op_type: "If",
        spec: OpSpec {
            inputs: &[InputSpec::known("cond")],
            outputs: &[OutputSpec::produced("outputs").variadic()],
            attrs: &[AttrSpec::required("then_branch"), AttrSpec::required("else_branch")],
            ..OpSpec::DEFAULT
        },
        import: Some(import_if),
        fold: None,
    },
    OpDef {
        op_type: "Loop",
        spec: OpSpec {
            inputs: &[
                InputSpec::known("M").optional(),
                InputSpec::known("cond").optional(),
                InputSpec::value("v_initial").zero_or_more(),
            ],
            outputs: &[OutputSpec::produced("v_final_and_scan_outputs").variadic()],
            attrs: &[AttrSpec::required("body")],
            ..OpSpec::DEFAULT
        },
        import: Some(import_loop),
        fold: None,
    },
    OpDef {
        op_type: "Scan",
        spec: OpSpec {
            since: 9,
            inputs: &[InputSpec::value("initial_state_and_scan_inputs").variadic()],
            outputs: &[OutputSpec::produced("final_state_and_scan_outputs").variadic()],
            attrs: &[
                AttrSpec::required("body"),
                AttrSpec::required("num_scan_inputs"),
                AttrSpec::absent("scan_input_axes"),
                AttrSpec::absent("scan_input_directions"),
                AttrSpec::absent("scan_output_axes"),
                AttrSpec::absent("scan_output_directions"),
            ],
            ..OpSpec::DEFAULT
        },
        import: Some(import_scan),
        fold: None,
    },
];

/// An int64 scalar constant.
fn int_scalar(v: i64) -> Val {
    Val::Const(ConstTensor { shape: vec![], data: vec![v as f64], is_float: false })
}

/// Sets the node's outputs to `vals` (as engine values).
fn set_outputs(cx: &mut ImportCx<'_, '_>, vals: &[Val]) -> Result<()> {
    for (k, v) in vals.iter().enumerate() {
        if cx.has_output(k) {
            let id = cx.materialize(v, &format!("output{k}"))?;
            cx.set_output(k, id)?;
        }
    }
    Ok(())
}

/// `parts` (each of shape `s`) stacked along a new axis `axis` (in the given order).
fn stack(cx: &mut ImportCx<'_, '_>, parts: &[ValueId], axis: usize) -> Result<ValueId> {
    let mut expanded = Vec::with_capacity(parts.len());
    for &p in parts {
        let mut shape = cx.value_shape(p);
        if axis > shape.len() {
            return Err(cx.err(format!("scan output axis {axis} is beyond the rank of {shape:?}")));
        }
        shape.insert(axis, 1);
        expanded.push(cx.reshape(p, shape)?);
    }
    match expanded.as_slice() {
        [] => Err(cx.err("the loop runs no iteration, so its scan outputs would be empty tensors")),
        [one] => Ok(*one),
        _ => cx.emit(Op::Concat(Concat { axis }), &expanded),
    }
}

/// Whether a known condition holds.
fn truth(cx: &ImportCx<'_, '_>, c: &ConstTensor, what: &str) -> Result<bool> {
    match c.data.as_slice() {
        [v] => Ok(*v != 0.0),
        _ => Err(cx.err(format!("{what} has {} values; a condition is one boolean", c.data.len()))),
    }
}

fn import_if(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let cond = cx.require_known(0)?;
    let branch = if truth(cx, &cond, "cond")? { cx.graph("then_branch")? } else { cx.graph("else_branch")? };
    let outs = cx.run_subgraph(branch, Vec::new())?;
    if outs.len() < cx.node.output.len() {
        return Err(cx.err(format!(
            "the branch gives {} outputs, the node names {}",
            outs.len(),
            cx.node.output.len()
        )));
    }
    set_outputs(cx, &outs)
}

fn import_loop(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let body = cx.graph("body")?;
    let trip = match cx.known(0)? {
        Some(m) => match m.data.as_slice() {
            [v] if *v >= 0.0 => Some(*v as usize),
            _ => return Err(cx.err(format!("the trip count M is {:?}; it must be one non-negative integer", m.data))),
        },
        None => None,
    };
    let mut cond = match cx.known(1)? {
        Some(c) => Some(truth(cx, &c, "cond")?),
        None => None,
    };
    let limit = match trip {
        Some(m) if m > MAX_UNROLLED => {
            return Err(cx.err(format!("the loop runs {m} iterations; distk unrolls at most {MAX_UNROLLED}")));
        }
        Some(m) => m,
        None if cond.is_none() => return Err(cx.err("a Loop with neither a trip count nor a condition never ends")),
        None => MAX_UNROLLED + 1,
    };
    let carried_n = cx.node.input.len().saturating_sub(2);
    if body.input.len() != carried_n + 2 || body.output.len() < carried_n + 1 {
        return Err(cx.err(format!(
            "the body has {} inputs and {} outputs for {carried_n} loop-carried values (it needs {} inputs and at least {} outputs)",
            body.input.len(),
            body.output.len(),
            carried_n + 2,
            carried_n + 1
        )));
    }
    let mut carried: Vec<Val> = (2..2 + carried_n).map(|i| cx.input_val(i)).collect::<Result<_>>()?;
    let scan_n = body.output.len() - carried_n - 1;
    let mut scans: Vec<Vec<ValueId>> = vec![Vec::new(); scan_n];
    let mut i = 0;
    while i < limit && cond.unwrap_or(true) {
        let cond_in = Val::Const(ConstTensor { shape: vec![], data: vec![1.0], is_float: false });
        let mut bindings = vec![int_scalar(i as i64), cond_in];
        bindings.extend(carried.iter().cloned());
        let outs = cx.run_subgraph(body, bindings)?;
        if cond.is_some() {
            cond = Some(match &outs[0] {
                Val::Const(c) => truth(cx, c, "the body's condition")?,
                _ => {
                    return Err(cx.err(
                        "the body's condition is computed from the data at run time; distk unrolls loops at import and needs it known (a loop over a sequence of known length)",
                    ));
                }
            });
        }
        carried = outs[1..=carried_n].to_vec();
        for (k, v) in outs[carried_n + 1..].iter().enumerate() {
            let id = cx.materialize(v, &format!("scan{k}_{i}"))?;
            scans[k].push(id);
        }
        i += 1;
    }
    if i > MAX_UNROLLED {
        return Err(cx.err(format!("the loop's condition still holds after {MAX_UNROLLED} iterations")));
    }
    let mut outs = carried;
    for parts in &scans {
        outs.push(Val::Dyn(stack(cx, parts, 0)?));
    }
    set_outputs(cx, &outs)
}

/// A list attribute of one entry per item (`n`), defaulting to zeros.
fn per_item(cx: &ImportCx<'_, '_>, name: &str, n: usize) -> Result<Vec<i64>> {
    match cx.ints_opt(name)? {
        None => Ok(vec![0; n]),
        Some(v) if v.len() == n => Ok(v),
        Some(v) => Err(cx.err(format!("{name} has {} entries for {n} sequences", v.len()))),
    }
}

fn import_scan(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let body = cx.graph("body")?;
    let n_inputs = cx.node.input.len();
    let scan_n = usize::try_from(cx.int("num_scan_inputs")?).map_err(|_| cx.err("num_scan_inputs is negative"))?;
    if scan_n == 0 || scan_n > n_inputs {
        return Err(cx.err(format!("num_scan_inputs is {scan_n}, of {n_inputs} inputs")));
    }
    let state_n = n_inputs - scan_n;
    if body.input.len() != n_inputs || body.output.len() < state_n {
        return Err(cx.err(format!(
            "the body has {} inputs and {} outputs for {state_n} states and {scan_n} sequences",
            body.input.len(),
            body.output.len()
        )));
    }
    let out_n = body.output.len() - state_n;
    let in_axes = per_item(cx, "scan_input_axes", scan_n)?;
    let in_dirs = per_item(cx, "scan_input_directions", scan_n)?;
    let out_axes = per_item(cx, "scan_output_axes", out_n)?;
    let out_dirs = per_item(cx, "scan_output_directions", out_n)?;
    let mut seqs = Vec::with_capacity(scan_n);
    let mut len = None;
    for (j, &in_axis) in in_axes.iter().enumerate() {
        let shape = cx.shape(state_n + j)?;
        let axis = cx.axis(in_axis, shape.len())?;
        if len.is_some_and(|l| l != shape[axis]) {
            return Err(cx.err("the scan inputs differ in length along their scan axes"));
        }
        len = Some(shape[axis]);
        let v = cx.value(state_n + j)?;
        seqs.push((v, axis, shape));
    }
    let len = len.unwrap_or(0);
    if len > MAX_UNROLLED {
        return Err(cx.err(format!("the scan runs {len} steps; distk unrolls at most {MAX_UNROLLED}")));
    }
    let mut states: Vec<Val> = (0..state_n).map(|i| cx.input_val(i)).collect::<Result<_>>()?;
    let mut outs: Vec<Vec<ValueId>> = vec![Vec::new(); out_n];
    for t in 0..len {
        let mut bindings = states.clone();
        for (j, (v, axis, shape)) in seqs.iter().enumerate() {
            let at = if in_dirs[j] == 1 { len - 1 - t } else { t };
            let slice = cx.emit(Op::Slice(Slice { axis: *axis, start: at, len: 1 }), &[*v])?;
            let mut step_shape = shape.clone();
            step_shape.remove(*axis);
            bindings.push(Val::Dyn(cx.reshape(slice, step_shape)?));
        }
        let step = cx.run_subgraph(body, bindings)?;
        states = step[..state_n].to_vec();
        for (k, v) in step[state_n..].iter().enumerate() {
            let id = cx.materialize(v, &format!("scan{k}_{t}"))?;
            outs[k].push(id);
        }
    }
    let mut results = states;
    for (k, mut parts) in outs.into_iter().enumerate() {
        if out_dirs[k] == 1 {
            parts.reverse();
        }
        let rank = parts.first().map_or(0, |&p| cx.value_shape(p).len());
        let axis = cx.axis(out_axes[k], rank + 1)?;
        results.push(Val::Dyn(stack(cx, &parts, axis)?));
    }
    set_outputs(cx, &results)
}
