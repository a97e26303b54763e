//! LSTM, GRU and RNN, unrolled over the (static) sequence length into engine ops: one matrix
//! product of every time step's inputs with the input weights, then per step the recurrent product,
//! the gates and the state updates (the default LSTM's and PyTorch's GRU's gates and states as one
//! engine op, `LstmCell`, `GruCell`). Autodiff then trains them through time like any graph; the weights stay the model's
//! parameters (sliced per direction and gate).
//!
//! Supported: every direction (forward, reverse, bidirectional), biases, initial states, LSTM
//! peepholes, `clip`, `layout` 0 and 1, GRU's `linear_before_reset`, the activations Sigmoid, Tanh,
//! Relu, HardSigmoid, LeakyRelu, Elu, Softsign and Softplus (with their alpha/beta), all three
//! outputs, `sequence_lens` known at import (a row shorter than the sequence holds its state and
//! outputs zeros past its length; a reverse layer starts at the row's last step). Refused with a
//! clear error: `sequence_lens` computed at run time, LSTM's `input_forget`.
//!
//! Opset history: LSTM, GRU and RNN 1 (GRU 1 has `output_sequence`), 7 (no more
//! `output_sequence`), 14 adds `layout`, 22 widens the types. GRU 3 adds `linear_before_reset`.

use distk_engine::{BinaryOp, Concat, GruCell, LstmCell, MatMul, Op, Slice, Transpose, UnaryOp, ValueId};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrDefault, AttrSpec, InputSpec, OpDef, OpSpec, OutputSpec};

const COMMON_ATTRS: [AttrSpec; 6] = [
    AttrSpec::new("activation_alpha", AttrDefault::Absent),
    AttrSpec::new("activation_beta", AttrDefault::Absent),
    AttrSpec::new("activations", AttrDefault::Absent),
    AttrSpec::new("clip", AttrDefault::Absent),
    AttrSpec::new("direction", AttrDefault::Str("forward")),
    AttrSpec::required("hidden_size"),
];

/// LSTM's inputs; GRU and RNN take the first six.
const LSTM_INPUTS: &[InputSpec] = &[
    InputSpec::value("X"),
    InputSpec::value("W"),
    InputSpec::value("R"),
    InputSpec::value("B").optional(),
    InputSpec::known("sequence_lens").optional(),
    InputSpec::value("initial_h").optional(),
    InputSpec::value("initial_c").optional(),
    InputSpec::value("P").optional(),
];
const GRU_RNN_INPUTS: &[InputSpec] = LSTM_INPUTS.split_at(6).0;

/// LSTM, GRU, RNN.
pub static OPS: &[OpDef] = &[
    OpDef {
        op_type: "LSTM",
        spec: OpSpec {
            since: 7,
            inputs: LSTM_INPUTS,
            outputs: &[OutputSpec::produced("Y"), OutputSpec::produced("Y_h"), OutputSpec::produced("Y_c")],
            attrs: &[
                COMMON_ATTRS[0],
                COMMON_ATTRS[1],
                COMMON_ATTRS[2],
                COMMON_ATTRS[3],
                COMMON_ATTRS[4],
                COMMON_ATTRS[5],
                AttrSpec::int("input_forget", 0),
                AttrSpec::int("layout", 0).opsets(14, None),
            ],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
    OpDef {
        op_type: "GRU",
        spec: OpSpec {
            since: 7,
            inputs: GRU_RNN_INPUTS,
            outputs: &[OutputSpec::produced("Y"), OutputSpec::produced("Y_h")],
            attrs: &[
                COMMON_ATTRS[0],
                COMMON_ATTRS[1],
                COMMON_ATTRS[2],
                COMMON_ATTRS[3],
                COMMON_ATTRS[4],
                COMMON_ATTRS[5],
                AttrSpec::int("linear_before_reset", 0),
                AttrSpec::int("layout", 0).opsets(14, None),
            ],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
    OpDef {
        op_type: "RNN",
        spec: OpSpec {
            since: 7,
            inputs: GRU_RNN_INPUTS,
            outputs: &[OutputSpec::produced("Y"), OutputSpec::produced("Y_h")],
            attrs: &[
                COMMON_ATTRS[0],
                COMMON_ATTRS[1],
                COMMON_ATTRS[2],
                COMMON_ATTRS[3],
                COMMON_ATTRS[4],
                COMMON_ATTRS[5],
                AttrSpec::int("layout", 0).opsets(14, None),
            ],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
];

/// Which cell.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    Lstm,
    Gru { linear_before_reset: bool },
    Rnn,
}

impl Cell {
    /// Gates per step (the row blocks of W and R).
    fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru { .. } => 3,
            Cell::Rnn => 1,
        }
    }

    /// Activations per direction.
    fn activations(self) -> usize {
        match self {
            Cell::Lstm => 3,
            Cell::Gru { .. } => 2,
            Cell::Rnn => 1,
        }
    }

    fn default_activations(self) -> &'static [&'static str] {
        match self {
            Cell::Lstm => &["Sigmoid", "Tanh", "Tanh"],
            Cell::Gru { .. } => &["Sigmoid", "Tanh"],
            Cell::Rnn => &["Tanh"],
        }
    }
}

/// The engine form of an ONNX recurrent activation.
fn activation(cx: &ImportCx<'_, '_>, name: &str, alpha: Option<f32>, beta: Option<f32>) -> Result<UnaryOp> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "sigmoid" => UnaryOp::Sigmoid,
        "tanh" => UnaryOp::Tanh,
        "relu" => UnaryOp::Relu,
        "hardsigmoid" => UnaryOp::HardSigmoid { alpha: alpha.unwrap_or(0.2), beta: beta.unwrap_or(0.5) },
        "leakyrelu" => UnaryOp::LeakyRelu { alpha: alpha.unwrap_or(0.01) },
        "elu" => UnaryOp::Elu { alpha: alpha.unwrap_or(1.0) },
        "softsign" => UnaryOp::Softsign,
        "softplus" => UnaryOp::Softplus,
        other => {
            return Err(cx.err(format!(
                "recurrent activation `{other}` is not supported (Sigmoid, Tanh, Relu, HardSigmoid, LeakyRelu, Elu, Softsign, Softplus)"
            )));
        }
    })
}

/// What the per-step loop needs.
struct Unroll {
    cell: Cell,
    steps: usize,
    batch: usize,
    hidden: usize,
    clip: Option<f32>,
    /// Each row's length where some row is shorter than `steps`.
    lens: Option<Vec<usize>>,
    /// Activations of this direction (f, g, h for LSTM; f, g for GRU; f for RNN).
    acts: Vec<UnaryOp>,
}

fn bin(cx: &mut ImportCx<'_, '_>, op: BinaryOp, a: ValueId, b: ValueId) -> Result<ValueId> {
    cx.emit(Op::Binary(op), &[a, b])
}

fn act(cx: &mut ImportCx<'_, '_>, u: &Unroll, f: UnaryOp, x: ValueId) -> Result<ValueId> {
    let x = match u.clip {
        Some(c) => cx.emit(Op::Unary(UnaryOp::Clip { min: -c, max: c }), &[x])?,
        None => x,
    };
    cx.emit(Op::Unary(f), &[x])
}

/// Block `k` of `gates` blocks of `hidden` along axis 1 of `x` ([N, gates * hidden]).
fn block(cx: &mut ImportCx<'_, '_>, x: ValueId, k: usize, hidden: usize) -> Result<ValueId> {
    cx.emit(Op::Slice(Slice { axis: 1, start: k * hidden, len: hidden }), &[x])
}

/// One direction: returns every step's hidden state in time order, the last H and (LSTM) the last C.
#[allow(clippy::too_many_arguments)]
fn direction(
    cx: &mut ImportCx<'_, '_>,
    u: &Unroll,
    x: ValueId,
    w: ValueId,
    r: ValueId,
    bias: Option<(ValueId, ValueId)>,
    h0: ValueId,
    c0: Option<ValueId>,
    peep: Option<ValueId>,
    reverse: bool,
) -> Result<(Vec<ValueId>, ValueId, Option<ValueId>)> {
    let (t_len, n, h) = (u.steps, u.batch, u.hidden);
    let g = u.cell.gates();
    // Every step's input product at once: [T*N, I] x W^T -> [T, N, g*H], plus Wb (and, except for
    // GRU's reset-gated block, Rb).
    let input = cx.value_shape(x)[2];
    let xs = cx.reshape(x, vec![t_len * n, input])?;
    let mut xw = cx.emit(Op::MatMul(MatMul { trans_a: false, trans_b: true, alpha: 1.0 }), &[xs, w])?;
    let (wb, rb) = match bias {
        Some((wb, rb)) => (Some(wb), Some(rb)),
        None => (None, None),
    };
    if let Some(wb) = wb {
        xw = bin(cx, BinaryOp::Add, xw, wb)?;
    }
    let is_gru = matches!(u.cell, Cell::Gru { .. });
    // Rb goes with the input product, except the GRU's h block, whose Rb sits with the recurrent
    // product (inside the reset gate when linear_before_reset).
    if let Some(rb) = rb {
        if is_gru {
            let zr = cx.emit(Op::Slice(Slice { axis: 0, start: 0, len: 2 * h }), &[rb])?;
            let zeros = cx.constant("zeros_h", vec![h], vec![0.0; h])?;
            let rb_zr = cx.emit(Op::Concat(Concat { axis: 0 }), &[zr, zeros])?;
            xw = bin(cx, BinaryOp::Add, xw, rb_zr)?;
        } else {
            xw = bin(cx, BinaryOp::Add, xw, rb)?;
        }
    }
    let xw = cx.reshape(xw, vec![t_len, n * g * h])?;
    let rb_h = match (rb, is_gru) {
        (Some(rb), true) => Some(cx.emit(Op::Slice(Slice { axis: 0, start: 2 * h, len: h }), &[rb])?),
        _ => None,
    };
    let peeps = match peep {
        Some(p) => Some((
            cx.emit(Op::Slice(Slice { axis: 0, start: 0, len: h }), &[p])?,
            cx.emit(Op::Slice(Slice { axis: 0, start: h, len: h }), &[p])?,
            cx.emit(Op::Slice(Slice { axis: 0, start: 2 * h, len: h }), &[p])?,
        )),
        None => None,
    };
    let r_h = if is_gru { Some(cx.emit(Op::Slice(Slice { axis: 0, start: 2 * h, len: h }), &[r])?) } else { None };
    let r_zr = if is_gru { Some(cx.emit(Op::Slice(Slice { axis: 0, start: 0, len: 2 * h }), &[r])?) } else { None };
    let one = cx.constant("one", vec![], vec![1.0])?;
    // The default LSTM (sigmoid gates, tanh cell and output, no peepholes, no clip) runs its
    // elementwise step as one engine op.
    let fused_lstm = u.cell == Cell::Lstm
        && peeps.is_none()
        && u.clip.is_none()
        && u.acts[..] == [UnaryOp::Sigmoid, UnaryOp::Tanh, UnaryOp::Tanh];
    // PyTorch's GRU (linear_before_reset, sigmoid and tanh, no clip) likewise as `GruCell`, its
    // recurrent product over all three blocks at once (Rb_h added to the h block).
    let fused_gru = u.cell == (Cell::Gru { linear_before_reset: true })
        && u.clip.is_none()
        && u.acts[..] == [UnaryOp::Sigmoid, UnaryOp::Tanh];
    let rb_h_block = match rb_h {
        Some(b) if fused_gru => {
            let zeros = cx.constant("zeros_zr", vec![2 * h], vec![0.0; 2 * h])?;
            Some(cx.emit(Op::Concat(Concat { axis: 0 }), &[zeros, b])?)
        }
        _ => None,
    };
    let (mut hp, mut cp) = (h0, c0);
    let mut outs = vec![h0; t_len];
    let order: Vec<usize> = if reverse { (0..t_len).rev().collect() } else { (0..t_len).collect() };
    for t in order {
        // Rows whose sequence has ended before step t hold their state and output zeros.
        let valid: Option<Vec<f32>> =
            u.lens.as_ref().map(|l| l.iter().map(|&l| if t < l { 1.0 } else { 0.0 }).collect());
        let valid = valid.filter(|v| v.contains(&0.0));
        if valid.as_ref().is_some_and(|v| v.iter().all(|&k| k == 0.0)) {
            outs[t] = cx.constant("ended_rows_output", vec![n, h], vec![0.0; n * h])?;
            continue;
        }
        let c_before = cp;
        let xt = cx.emit(Op::Slice(Slice { axis: 0, start: t, len: 1 }), &[xw])?;
        let xt = cx.reshape(xt, vec![n, g * h])?;
        let mm = Op::MatMul(MatMul { trans_a: false, trans_b: true, alpha: 1.0 });
        let hn = match u.cell {
            Cell::Lstm if fused_lstm => {
                let hr = cx.emit(mm, &[hp, r])?;
                let pre = bin(cx, BinaryOp::Add, xt, hr)?;
                let cprev = cp.ok_or_else(|| cx.err("internal: LSTM without a cell state"))?;
                let hc = cx.emit_outputs(Op::LstmCell(LstmCell), &[pre, cprev])?;
                cp = Some(hc[1]);
                hc[0]
            }
            Cell::Lstm => {
                let hr = cx.emit(mm, &[hp, r])?;
                let pre = bin(cx, BinaryOp::Add, xt, hr)?;
                let (mut i, o, mut f, c) =
                    (block(cx, pre, 0, h)?, block(cx, pre, 1, h)?, block(cx, pre, 2, h)?, block(cx, pre, 3, h)?);
                let cprev = cp.ok_or_else(|| cx.err("internal: LSTM without a cell state"))?;
                if let Some((pi, _, pf)) = peeps {
                    let a = bin(cx, BinaryOp::Mul, cprev, pi)?;
                    i = bin(cx, BinaryOp::Add, i, a)?;
                    let b = bin(cx, BinaryOp::Mul, cprev, pf)?;
                    f = bin(cx, BinaryOp::Add, f, b)?;
                }
                let (fa, ga, ha) = (u.acts[0], u.acts[1], u.acts[2]);
                let i = act(cx, u, fa, i)?;
                let f = act(cx, u, fa, f)?;
                let c = act(cx, u, ga, c)?;
                let fc = bin(cx, BinaryOp::Mul, f, cprev)?;
                let ic = bin(cx, BinaryOp::Mul, i, c)?;
                let cn = bin(cx, BinaryOp::Add, fc, ic)?;
                let mut o = o;
                if let Some((_, po, _)) = peeps {
                    let a = bin(cx, BinaryOp::Mul, cn, po)?;
                    o = bin(cx, BinaryOp::Add, o, a)?;
                }
                let o = act(cx, u, fa, o)?;
                let hc = cx.emit(Op::Unary(ha), &[cn])?;
                cp = Some(cn);
                bin(cx, BinaryOp::Mul, o, hc)?
            }
            Cell::Gru { .. } if fused_gru => {
                let mut hr = cx.emit(mm, &[hp, r])?;
                if let Some(b) = rb_h_block {
                    hr = bin(cx, BinaryOp::Add, hr, b)?;
                }
                cx.emit(Op::GruCell(GruCell), &[xt, hr, hp])?
            }
            Cell::Gru { linear_before_reset } => {
                let (r_zr, r_h) = (r_zr.unwrap_or(r), r_h.unwrap_or(r));
                let hzr = cx.emit(mm.clone(), &[hp, r_zr])?;
                let xzr = cx.emit(Op::Slice(Slice { axis: 1, start: 0, len: 2 * h }), &[xt])?;
                let zr = bin(cx, BinaryOp::Add, xzr, hzr)?;
                let (fa, ga) = (u.acts[0], u.acts[1]);
                let z = block(cx, zr, 0, h)?;
                let z = act(cx, u, fa, z)?;
                let rg = block(cx, zr, 1, h)?;
                let rg = act(cx, u, fa, rg)?;
                let xh = block(cx, xt, 2, h)?;
                let rec = if linear_before_reset {
                    let mut hr = cx.emit(mm, &[hp, r_h])?;
                    if let Some(b) = rb_h {
                        hr = bin(cx, BinaryOp::Add, hr, b)?;
                    }
                    bin(cx, BinaryOp::Mul, rg, hr)?
                } else {
                    let rh = bin(cx, BinaryOp::Mul, rg, hp)?;
                    let mut hr = cx.emit(mm, &[rh, r_h])?;
                    if let Some(b) = rb_h {
                        hr = bin(cx, BinaryOp::Add, hr, b)?;
                    }
                    hr
                };
                let pre = bin(cx, BinaryOp::Add, xh, rec)?;
                let cand = act(cx, u, ga, pre)?;
                // H = (1 - z) * cand + z * H_prev
                let nz = bin(cx, BinaryOp::Sub, one, z)?;
                let a = bin(cx, BinaryOp::Mul, nz, cand)?;
                let b = bin(cx, BinaryOp::Mul, z, hp)?;
                bin(cx, BinaryOp::Add, a, b)?
            }
            Cell::Rnn => {
                let hr = cx.emit(mm, &[hp, r])?;
                let pre = bin(cx, BinaryOp::Add, xt, hr)?;
                act(cx, u, u.acts[0], pre)?
            }
        };
        let hn = match valid {
            Some(valid) => {
                let hold: Vec<f32> = valid.iter().map(|&k| 1.0 - k).collect();
                let keep = cx.constant("sequence_keep", vec![n, 1], valid)?;
                let hold = cx.constant("sequence_hold", vec![n, 1], hold)?;
                let mix = |cx: &mut ImportCx<'_, '_>, new: ValueId, old: ValueId| -> Result<(ValueId, ValueId)> {
                    let kept = bin(cx, BinaryOp::Mul, new, keep)?;
                    let held = bin(cx, BinaryOp::Mul, old, hold)?;
                    Ok((kept, bin(cx, BinaryOp::Add, kept, held)?))
                };
                if let (Some(cn), Some(cb)) = (cp, c_before) {
                    cp = Some(mix(cx, cn, cb)?.1);
                }
                let (out, state) = mix(cx, hn, hp)?;
                outs[t] = out;
                state
            }
            None => {
                outs[t] = hn;
                hn
            }
        };
        hp = hn;
    }
    Ok((outs, hp, cp))
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let cell = match cx.def.op_type {
        "LSTM" => Cell::Lstm,
        "GRU" => Cell::Gru { linear_before_reset: cx.int("linear_before_reset")? != 0 },
        _ => Cell::Rnn,
    };
    if cell == Cell::Lstm && cx.int("input_forget")? != 0 {
        return Err(cx.err("LSTM with input_forget=1 (coupled input and forget gates) is not supported"));
    }
    let layout = if cx.declares("layout") { cx.int("layout")? } else { 0 };
    let xs = cx.shape(0)?;
    if xs.len() != 3 {
        return Err(cx.err(format!("X {xs:?} is not [seq, batch, input] (or [batch, seq, input] with layout 1)")));
    }
    let (steps, batch) = if layout == 1 { (xs[1], xs[0]) } else { (xs[0], xs[1]) };
    let hidden = usize::try_from(cx.int("hidden_size")?).map_err(|_| cx.err("hidden_size is negative"))?;
    let directions: Vec<bool> = match cx.string("direction")?.as_str() {
        "forward" => vec![false],
        "reverse" => vec![true],
        "bidirectional" => vec![false, true],
        other => return Err(cx.err(format!("direction `{other}` is not forward, reverse or bidirectional"))),
    };
    let nd = directions.len();
    let ws = cx.shape(1)?;
    if ws != [nd, cell.gates() * hidden, xs[2]] {
        return Err(cx.err(format!("W is {ws:?}, expected {:?}", [nd, cell.gates() * hidden, xs[2]])));
    }
    let lens = match cx.known(4)? {
        Some(lens) => {
            let values = lens.as_i64();
            if values.len() != batch || values.iter().any(|&l| l < 1 || l as usize > steps) {
                return Err(cx.err(format!(
                    "sequence_lens {values:?} must give each of the {batch} rows a length from 1 to {steps}"
                )));
            }
            let lens: Vec<usize> = values.iter().map(|&l| l as usize).collect();
            lens.iter().any(|&l| l < steps).then_some(lens)
        }
        None => None,
    };
    let alphas = cx.floats_opt("activation_alpha")?.unwrap_or_default();
    let betas = cx.floats_opt("activation_beta")?.unwrap_or_default();
    let names: Vec<String> = match cx.tensor("activations").ok().flatten() {
        Some(_) => return Err(cx.err("attribute `activations` must be a list of strings")),
        None => {
            let attr = cx.node.attribute.iter().find(|a| a.name == "activations");
            match attr {
                Some(a) => a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect(),
                None => cell.default_activations().iter().map(|s| s.to_string()).collect(),
            }
        }
    };
    let per = cell.activations();
    if names.len() != per * nd && !(names.len() == per && nd == 2) {
        return Err(cx.err(format!("{} activations for {nd} direction(s) of {per}", names.len())));
    }
    let clip = if cx.has("clip")? { Some(cx.float("clip")?) } else { None };
    let mut x = cx.value(0)?;
    if layout == 1 {
        x = cx.emit(Op::Transpose(Transpose { perm: vec![1, 0, 2] }), &[x])?;
    }
    let (w_all, r_all) = (cx.value(1)?, cx.value(2)?);
    let mut b_all = if cx.has_input(3) { Some(cx.value(3)?) } else { None };
    // tf2onnx writes a Keras LSTM's (or GRU's without reset_after) one bias per gate into the
    // first half of B and constant zeros into the second (Rb): only the first half is a Keras
    // weight. B is used through a mask that zeroes Rb's gradient, so Rb stays zero and the bias
    // learns at Keras' rate instead of twice it.
    let single_bias = matches!(cell, Cell::Lstm | Cell::Gru { linear_before_reset: false });
    if let Some(b) = b_all
        && single_bias
        && cx.producer() == "tf2onnx"
        && let Some(values) = cx.known(3).ok().flatten()
    {
        let half = cell.gates() * hidden;
        let rows: Vec<&[f64]> = values.data.chunks(2 * half).collect();
        if rows.iter().all(|r| r.len() == 2 * half && r[half..].iter().all(|&v| v == 0.0)) {
            let mask: Vec<f32> = (0..nd * 2 * half).map(|i| if i % (2 * half) < half { 1.0 } else { 0.0 }).collect();
            let m = cx.constant("keras_bias_mask", vec![nd, 2 * half], mask)?;
            b_all = Some(cx.emit(Op::Binary(BinaryOp::Mul), &[b, m])?);
        }
    }
    let h0_all = if cx.has_input(5) { Some(cx.value(5)?) } else { None };
    let c0_all = if cell == Cell::Lstm && cx.has_input(6) { Some(cx.value(6)?) } else { None };
    let p_all = if cell == Cell::Lstm && cx.has_input(7) { Some(cx.value(7)?) } else { None };
    let g = cell.gates();
    let zeros_state = cx.constant("zero_state", vec![batch, hidden], vec![0.0; batch * hidden])?;
    let pick = |cx: &mut ImportCx<'_, '_>, v: ValueId, d: usize, rest: Vec<usize>| -> Result<ValueId> {
        let s = cx.emit(Op::Slice(Slice { axis: 0, start: d, len: 1 }), &[v])?;
        cx.reshape(s, rest)
    };
    let (mut ys, mut hs, mut cs) = (Vec::new(), Vec::new(), Vec::new());
    for (d, &reverse) in directions.iter().enumerate() {
        let input = xs[2];
        let w = pick(cx, w_all, d, vec![g * hidden, input])?;
        let r = pick(cx, r_all, d, vec![g * hidden, hidden])?;
        let bias = match b_all {
            Some(b) => {
                let b = pick(cx, b, d, vec![2 * g * hidden])?;
                let wb = cx.emit(Op::Slice(Slice { axis: 0, start: 0, len: g * hidden }), &[b])?;
                let rb = cx.emit(Op::Slice(Slice { axis: 0, start: g * hidden, len: g * hidden }), &[b])?;
                Some((wb, rb))
            }
            None => None,
        };
        let h0 = match h0_all {
            Some(v) => pick(cx, v, d, vec![batch, hidden])?,
            None => zeros_state,
        };
        let c0 = match (cell, c0_all) {
            (Cell::Lstm, Some(v)) => Some(pick(cx, v, d, vec![batch, hidden])?),
            (Cell::Lstm, None) => Some(zeros_state),
            _ => None,
        };
        let peep = match p_all {
            Some(p) => Some(pick(cx, p, d, vec![3 * hidden])?),
            None => None,
        };
        let at = |k: usize| if names.len() == per { k } else { d * per + k };
        let mut acts = Vec::new();
        for k in 0..per {
            let i = at(k);
            acts.push(activation(cx, &names[i], alphas.get(i).copied(), betas.get(i).copied())?);
        }
        let u = Unroll { cell, steps, batch, hidden, clip, lens: lens.clone(), acts };
        let (outs, hl, cl) = direction(cx, &u, x, w, r, bias, h0, c0, peep, reverse)?;
        // Y of this direction: [T, 1, N, H].
        let mut parts = Vec::new();
        for o in outs {
            parts.push(cx.reshape(o, vec![1, 1, batch, hidden])?);
        }
        ys.push(if parts.len() == 1 { parts[0] } else { cx.emit(Op::Concat(Concat { axis: 0 }), &parts)? });
        hs.push(cx.reshape(hl, vec![1, batch, hidden])?);
        if let Some(c) = cl {
            cs.push(cx.reshape(c, vec![1, batch, hidden])?);
        }
    }
    let join = |cx: &mut ImportCx<'_, '_>, v: Vec<ValueId>, axis: usize| -> Result<ValueId> {
        if v.len() == 1 { Ok(v[0]) } else { cx.emit(Op::Concat(Concat { axis }), &v) }
    };
    let mut y = join(cx, ys, 1)?;
    let mut yh = join(cx, hs, 0)?;
    let mut yc = if cs.is_empty() { None } else { Some(join(cx, cs, 0)?) };
    if layout == 1 {
        y = cx.emit(Op::Transpose(Transpose { perm: vec![2, 0, 1, 3] }), &[y])?;
        yh = cx.emit(Op::Transpose(Transpose { perm: vec![1, 0, 2] }), &[yh])?;
        if let Some(c) = yc {
            yc = Some(cx.emit(Op::Transpose(Transpose { perm: vec![1, 0, 2] }), &[c])?);
        }
    }
    // Y is computed even when the node leaves it out (its steps feed Y_h anyway).
    if cx.has_output(0) {
        cx.set(y)?;
    }
    cx.set_output(1, yh)?;
    if let Some(c) = yc {
        cx.set_output(2, c)?;
    }
    Ok(())
}
