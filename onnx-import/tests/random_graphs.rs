//! Property test: random small valid graphs of registered ops (activations, arithmetic with
//! broadcast operands, MatMul, Gemm, Softmax, Transpose, Flatten, Reshape through shape chains,
//! Squeeze/Unsqueeze, Concat, reductions, Clip, Conv and pools, Resize), imported and run on the CPU
//! executor against tract on the same bytes (1e-5). Seeded: a failure names its seed and graph.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tract_onnx::pb;

/// Graphs per run.
const GRAPHS: u64 = 100;
/// The batch the graphs are checked at.
const BATCH: usize = 2;

/// A graph under construction: the current tensor and its shape (batch bound to [`BATCH`]).
struct Builder {
    rng: StdRng,
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    cur: String,
    shape: Vec<usize>,
    next: usize,
}

impl Builder {
    fn fresh(&mut self, what: &str) -> String {
        self.next += 1;
        format!("{what}{}", self.next)
    }

    fn push(&mut self, op: &str, inputs: &[&str], attrs: Vec<pb::AttributeProto>, shape: Vec<usize>) {
        let out = self.fresh("t");
        self.nodes.push(node(op, inputs, &out, attrs));
        self.cur = out;
        self.shape = shape;
    }

    fn init_f32(&mut self, dims: &[usize], lo: f32, hi: f32) -> String {
        let name = self.fresh("w");
        let n = dims.iter().product();
        let data: Vec<f32> = (0..n).map(|_| self.rng.random_range(lo..hi)).collect();
        self.inits.push(f32_tensor(&name, dims, &data));
        name
    }

    fn init_i64(&mut self, data: &[i64]) -> String {
        let name = self.fresh("k");
        self.inits.push(i64_tensor(&name, data));
        name
    }

    /// A broadcast-compatible shape for the current tensor (some dims 1, some leading dims dropped).
    fn broadcast_shape(&mut self) -> Vec<usize> {
        let drop = self.rng.random_range(0..=self.shape.len());
        let shape = self.shape.clone();
        shape[drop..].iter().map(|&d| if self.rng.random_bool(0.3) { 1 } else { d }).collect()
    }

    fn step(&mut self) {
        let rank = self.shape.len();
        let cur = self.cur.clone();
        match self.rng.random_range(0..16) {
            0 => {
                let op =
                    ["Relu", "Sigmoid", "Tanh", "Softplus", "Neg", "Abs", "Elu", "LeakyRelu", "Selu", "HardSigmoid"]
                        [self.rng.random_range(0..10)];
                self.push(op, &[&cur], vec![], self.shape.clone());
            }
            1 => {
                // Log and Sqrt on a positive input: |x| + 1.
                let a = self.fresh("abs");
                self.nodes.push(node("Abs", &[&cur], &a, vec![]));
                let one = self.init_f32(&[1], 1.0, 1.0 + f32::EPSILON);
                let p = self.fresh("pos");
                self.nodes.push(node("Add", &[&a, &one], &p, vec![]));
                let op = if self.rng.random_bool(0.5) { "Log" } else { "Sqrt" };
                self.push(op, &[&p], vec![], self.shape.clone());
            }
            2 => {
                let dims = self.broadcast_shape();
                let op = ["Add", "Sub", "Mul", "Div"][self.rng.random_range(0..4)];
                // Divisors kept away from 0.
                let b = if op == "Div" { self.init_f32(&dims, 0.5, 2.0) } else { self.init_f32(&dims, -1.0, 1.0) };
                let inputs =
                    if self.rng.random_bool(0.5) || op == "Div" { [cur.as_str(), &b] } else { [b.as_str(), &cur] };
                let shape = self.shape.clone();
                self.push(op, &inputs, vec![], shape);
            }
            3 if rank >= 2 => {
                let k = *self.shape.last().unwrap_or(&1);
                let n = self.rng.random_range(1..5);
                let w = self.init_f32(&[k, n], -1.0, 1.0);
                let mut shape = self.shape.clone();
                *shape.last_mut().unwrap() = n;
                self.push("MatMul", &[&cur, &w], vec![], shape);
            }
            4 if rank == 2 => {
                let k = self.shape[1];
                let n = self.rng.random_range(1..5);
                let tb = self.rng.random_range(0..2);
                let dims = if tb == 1 { [n, k] } else { [k, n] };
                let w = self.init_f32(&dims, -1.0, 1.0);
                let c = self.init_f32(&[n], -1.0, 1.0);
                let attrs = vec![attr_i("transB", tb), attr_f("alpha", 0.7), attr_f("beta", 1.3)];
                self.push("Gemm", &[&cur, &w, &c], attrs, vec![self.shape[0], n]);
            }
            5 => {
                let axis = self.rng.random_range(-(rank as i64)..rank as i64);
                let op = if self.rng.random_bool(0.5) { "Softmax" } else { "LogSoftmax" };
                self.push(op, &[&cur], vec![attr_i("axis", axis)], self.shape.clone());
            }
            6 if rank >= 2 => {
                // A permutation that keeps the batch first, so the output stays row-separable.
                let mut rest: Vec<i64> = (1..rank as i64).collect();
                for i in (1..rest.len()).rev() {
                    rest.swap(i, self.rng.random_range(0..=i));
                }
                let mut perm = vec![0];
                perm.extend(rest);
                let shape = perm.iter().map(|&p| self.shape[p as usize]).collect();
                self.push("Transpose", &[&cur], vec![attr_ints("perm", &perm)], shape);
            }
            7 if rank >= 2 => {
                let axis =
                    self.rng.random_range(1..=rank as i64) - if self.rng.random_bool(0.5) { rank as i64 } else { 0 };
                let a = if axis < 0 { (axis + rank as i64) as usize } else { axis as usize };
                let shape = vec![self.shape[..a].iter().product(), self.shape[a..].iter().product()];
                self.push("Flatten", &[&cur], vec![attr_i("axis", axis)], shape);
            }
            8 if rank >= 2 => {
                // [N, ...] to [N, -1] through the exporters' shape chain.
                let s = self.fresh("shape");
                self.nodes.push(node("Shape", &[&cur], &s, vec![]));
                let i0 = self.init_i64(&[0]);
                let n = self.fresh("n");
                self.nodes.push(node("Gather", &[&s, &i0], &n, vec![attr_i("axis", 0)]));
                let m1 = self.init_i64(&[-1]);
                let t = self.fresh("target");
                self.nodes.push(node("Concat", &[&n, &m1], &t, vec![attr_i("axis", 0)]));
                let shape = vec![self.shape[0], self.shape[1..].iter().product()];
                self.push("Reshape", &[&cur, &t], vec![], shape);
            }
            9 => {
                let axis = self.rng.random_range(1..=rank) as i64;
                let ax = self.init_i64(&[axis]);
                let u = self.fresh("u");
                self.nodes.push(node("Unsqueeze", &[&cur, &ax], &u, vec![]));
                self.push("Squeeze", &[&u, &ax], vec![], self.shape.clone());
            }
            10 if rank >= 2 => {
                let axis = self.rng.random_range(1..rank);
                let mut dims = self.shape.clone();
                dims[axis] = self.rng.random_range(1..4);
                let other = self.init_f32(&dims, -1.0, 1.0);
                let mut shape = self.shape.clone();
                shape[axis] += dims[axis];
                self.push("Concat", &[&cur, &other], vec![attr_i("axis", axis as i64)], shape);
            }
            11 if rank >= 2 => {
                let axis = self.rng.random_range(1..rank);
                let keep = self.rng.random_range(0..2);
                let op = if self.rng.random_bool(0.5) { "ReduceMean" } else { "ReduceSum" };
                let ax = self.init_i64(&[axis as i64]);
                let mut shape = self.shape.clone();
                if keep == 1 {
                    shape[axis] = 1;
                } else {
                    shape.remove(axis);
                }
                if op == "ReduceMean" {
                    self.push(op, &[&cur], vec![attr_ints("axes", &[axis as i64]), attr_i("keepdims", keep)], shape);
                } else {
                    self.push(op, &[&cur, &ax], vec![attr_i("keepdims", keep)], shape);
                }
            }
            12 => {
                let lo = self.init_f32(&[], -0.5, 0.0);
                let hi = self.init_f32(&[], 0.1, 0.6);
                self.push("Clip", &[&cur, &lo, &hi], vec![], self.shape.clone());
            }
            13 if rank == 4 && self.shape[2] >= 3 && self.shape[3] >= 3 => {
                let (c, m) = (self.shape[1], self.rng.random_range(1..4));
                let w = self.init_f32(&[m, c, 3, 3], -1.0, 1.0);
                let b = self.init_f32(&[m], -1.0, 1.0);
                let pad = self.rng.random_range(0..2);
                let attrs = vec![attr_ints("pads", &[pad, pad, pad, pad])];
                let p = pad as usize * 2;
                let shape = vec![self.shape[0], m, self.shape[2] + p - 2, self.shape[3] + p - 2];
                self.push("Conv", &[&cur, &w, &b], attrs, shape);
            }
            14 if rank == 4 && self.shape[2] >= 2 && self.shape[3] >= 2 => {
                let op = ["MaxPool", "AveragePool"][self.rng.random_range(0..2)];
                let attrs = vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[1, 1])];
                let shape = vec![self.shape[0], self.shape[1], self.shape[2] - 1, self.shape[3] - 1];
                self.push(op, &[&cur], attrs, shape);
            }
            15 if rank >= 2 => {
                // Resize of the axes after the batch, by scales.
                let mode = ["nearest", "linear", "cubic"][self.rng.random_range(0..3)];
                let coord = ["half_pixel", "asymmetric", "align_corners"][self.rng.random_range(0..3)];
                let mut scales = vec![1.0f32];
                let mut shape = vec![self.shape[0]];
                for &d in &self.shape[1..] {
                    let s = [0.5f32, 1.0, 1.5, 2.0][self.rng.random_range(0..4)];
                    let out = (s as f64 * d as f64).floor() as usize;
                    let s = if out == 0 { 1.0 } else { s };
                    scales.push(s);
                    shape.push((s as f64 * d as f64).floor() as usize);
                }
                let sc = self.fresh("scales");
                self.inits.push(f32_tensor(&sc, &[scales.len()], &scales));
                let attrs = vec![attr_s("mode", mode), attr_s("coordinate_transformation_mode", coord)];
                self.push("Resize", &[&cur, "", &sc], attrs, shape);
            }
            _ => {
                let op = ["Exp", "Identity", "Dropout"][self.rng.random_range(0..3)];
                let input = if op == "Exp" {
                    // exp of tanh: bounded.
                    let t = self.fresh("tanh");
                    self.nodes.push(node("Tanh", &[&cur], &t, vec![]));
                    t
                } else {
                    cur
                };
                self.push(op, &[&input], vec![], self.shape.clone());
            }
        }
    }
}

#[test]
fn random_graphs_of_registered_ops_match_tract() {
    let mut failures = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    for seed in 0..GRAPHS {
        let mut rng = StdRng::seed_from_u64(seed);
        // Every third graph takes images ([N, C, H, W]) for Conv and the pools.
        let x_dims: Vec<usize> = if seed % 3 == 0 {
            vec![rng.random_range(1..4), rng.random_range(3..7), rng.random_range(3..7)]
        } else {
            (0..rng.random_range(1..4)).map(|_| rng.random_range(1..5)).collect()
        };
        let mut shape = vec![BATCH];
        shape.extend(&x_dims);
        let mut b = Builder { rng, nodes: Vec::new(), inits: Vec::new(), cur: "x".into(), shape, next: 0 };
        let steps = b.rng.random_range(1..7);
        while b.nodes.is_empty() || b.nodes.len() < steps {
            b.step();
        }
        let last = b.cur.clone();
        b.nodes.push(node("Identity", &[&last], "y", vec![]));
        let ops: Vec<&str> = b.nodes.iter().map(|n| n.op_type.as_str()).collect();
        used.extend(ops.iter().map(|o| o.to_string()));
        let what = format!("seed {seed}: x {x_dims:?}, ops {ops:?}");
        let bytes = model(13, &x_dims, b.nodes.clone(), b.inits.clone());
        match compare(&what, &bytes, BATCH, &x_dims) {
            Ok(e) if e <= TOLERANCE => {}
            Ok(e) => failures.push(format!("{what}: error {e:e}")),
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} of {GRAPHS} random graphs failed:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{GRAPHS} random graphs used {} op types: {used:?}", used.len());
    assert!(used.len() >= 30, "the random graphs used only {} op types: {used:?}", used.len());
}
