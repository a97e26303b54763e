//! Every registered gradient rule against central finite differences in f64 on the CPU reference
//! (`CpuExecutor<f64>`), on the cases each op marks for it. Each op's inputs are trainable
//! parameters, the loss is mean(y^2) over its float outputs; the analytic gradient is read back from one
//! SGD step with learning rate 1 (g = p_before - p_after). Step h = 1e-6; tolerance 1e-6 of the
//! tensor's largest gradient (the central difference's truncation error is O(h^2), its round-off
//! about 1e-16 / h).

use distk_engine::autodiff::{TrainingSpec, build_eval_graph, build_training_graph};
use distk_engine::cpu::CpuExecutor;
use distk_engine::ops::{CaseData, CaseRng, OpCase};
use distk_engine::optimizer::{Optimizer, OptimizerKind};
use distk_engine::{Concat, Graph, GraphBuilder, LossKind, Op, Reshape};

const H: f64 = 1e-6;
const TOLERANCE: f64 = 1e-6;

/// The forward graph of a case (every input a trainable parameter, the output flattened) and its
/// training graph with plain SGD at learning rate 1; `Err` when the op has no gradient rule.
fn graphs(case: &OpCase, rng: &mut CaseRng) -> (Graph, Result<Graph, String>, usize, usize) {
    let mut b = GraphBuilder::new();
    let ids: Vec<usize> = case
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let n = input.shape.iter().product();
            let data = match &input.data {
                CaseData::Uniform(lo, hi) => (0..n).map(|_| rng.uniform(*lo, *hi)).collect(),
                CaseData::Values(v) => v.clone(),
            };
            if input.dtype.is_float() {
                b.param(&format!("p{i}"), input.shape.clone(), data, true).unwrap()
            } else {
                // Indices and masks are not perturbed: constants of their type.
                b.typed_constant(&format!("c{i}"), input.shape.clone(), data, input.dtype).unwrap()
            }
        })
        .collect();
    // Every float output enters the loss (a multi-output op's rule must pass each output's
    // gradient, LstmCell's c as well as its h); integer outputs such as TopK's indices do not.
    let ys = b.node_outputs("op", case.op.clone(), &ids).unwrap();
    // (An op with no float output, ArgMax's, still runs as before: its first output.)
    let float_outputs = ys.iter().filter(|&&y| b.dtype(y).is_float()).count();
    let mut flats = Vec::new();
    for (k, y) in ys.into_iter().enumerate() {
        if float_outputs > 0 && !b.dtype(y).is_float() || float_outputs == 0 && k > 0 {
            continue;
        }
        let len = b.shape(y).iter().product();
        flats.push(b.node(&format!("flat{k}"), Reshape { shape: vec![1, len] }.into(), &[y]).unwrap());
    }
    let flat = match flats[..] {
        [one] => one,
        _ => b.node("flat", Concat { axis: 1 }.into(), &flats).unwrap(),
    };
    let n = b.shape(flat)[1];
    b.output(flat);
    let forward = b.finish();
    let sgd = Optimizer {
        kind: OptimizerKind::Sgd { momentum: 0.0, nesterov: false },
        learning_rate: 1.0,
        weight_decay: None,
    };
    let spec =
        TrainingSpec { loss: LossKind::MeanSquaredError, prediction: flat, target_shape: vec![1, n], optimizer: sgd };
    let train = build_training_graph(forward.clone(), &spec).map_err(|e| e.to_string());
    (forward, train, flat, n)
}

fn check(case: &OpCase, rng: &mut CaseRng) {
    let what = format!("{:?}", case.op);
    let (forward, train, flat, n) = graphs(case, rng);
    let train = train.unwrap_or_else(|e| panic!("{what}: {e}"));
    let eval = build_eval_graph(forward, LossKind::MeanSquaredError, flat, vec![1, n]).unwrap();
    let zeros = vec![0.0f64; n];
    let one = vec![1.0f64];
    let p0: Vec<f64> = train.initial_params.iter().map(|&x| x as f64).collect();
    let mut t = CpuExecutor::<f64>::new(train.clone());
    t.run_real(&[&zeros, &one]).unwrap();
    let p1 = t.params_real().to_vec();
    let mut e = CpuExecutor::<f64>::new(eval);
    for slot in &train.layout.slots {
        let analytic: Vec<f64> = (slot.offset..slot.offset + slot.len).map(|i| p0[i] - p1[i]).collect();
        let scale = analytic.iter().fold(0.0f64, |m, &v| m.max(v.abs())).max(1e-3);
        let picks: Vec<usize> =
            if slot.len <= 24 { (0..slot.len).collect() } else { (0..24).map(|_| rng.size(0, slot.len - 1)).collect() };
        for k in picks {
            let mut p = p0.clone();
            p[slot.offset + k] += H;
            e.set_params_real(&p).unwrap();
            let up = e.run_real(&[&zeros, &one]).unwrap()[0][0];
            p[slot.offset + k] -= 2.0 * H;
            e.set_params_real(&p).unwrap();
            let down = e.run_real(&[&zeros, &one]).unwrap()[0][0];
            let numeric = (up - down) / (2.0 * H);
            let err = (numeric - analytic[k]).abs() / scale;
            assert!(
                err <= TOLERANCE,
                "{what}: d/d{}[{k}] analytic {} numeric {numeric} (error {err:e} of {scale})",
                slot.name,
                analytic[k]
            );
        }
    }
}

#[test]
fn every_gradient_rule_matches_finite_differences() {
    let mut rng = CaseRng::new(11);
    let cases: Vec<OpCase> = Op::all_cases(&mut rng).into_iter().filter(|c| c.check_gradient).collect();
    for case in &cases {
        check(case, &mut rng);
    }
    eprintln!("{} gradient cases", cases.len());
}

#[test]
fn every_op_with_a_gradient_rule_has_a_gradient_case() {
    let mut rng = CaseRng::new(12);
    let cases = Op::all_cases(&mut rng);
    for variant in Op::VARIANTS {
        let Some(first) = cases.iter().find(|c| c.op.variant() == *variant) else { continue };
        let (forward, train, ..) = graphs(first, &mut rng);
        // An op whose rule passes a gradient to some input (not the gradient ops, which refuse).
        let flows = train.is_ok_and(|t| !t.param_grads.is_empty()) && forward.nodes.len() == 2;
        if flows {
            assert!(
                cases.iter().any(|c| c.op.variant() == *variant && c.check_gradient),
                "op {variant} has a gradient rule but no case marked for the finite-difference check"
            );
        }
    }
}
