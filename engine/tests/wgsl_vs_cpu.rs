//! Every registered op's WGSL lowering against its CPU reference, on the cases each op registers
//! (random shapes and values, sizes of 1, odd sizes, sizes that are not multiples of the tile),
//! plus the executor-level cases: every matrix-product tile shape and a grid past 65,535
//! workgroups. Tolerance: max abs diff / max abs value <= 1e-5 (f32; sums run in a different
//! order on the two sides).

use std::sync::{Arc, Mutex, OnceLock};

use distk_engine::cpu::CpuExecutor;
use distk_engine::ops::matmul::operand_shapes;
use distk_engine::ops::{CaseData, CaseRng, OpCase};
use distk_engine::wgpu_exec::matmul::ALL_TILES;
use distk_engine::wgpu_exec::{ExecOptions, GpuContext, PipelineCache, WgpuExecutor, device};
use distk_engine::{BinaryOp, Executor, Graph, GraphBuilder, MatMul, Op};

const TOLERANCE: f64 = 1e-5;

fn gpu() -> (Arc<GpuContext>, &'static Mutex<PipelineCache>) {
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    static CACHE: OnceLock<Mutex<PipelineCache>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        Arc::new(device::open(None).expect("a wgpu adapter (lavapipe: apt-get install mesa-vulkan-drivers)"))
    });
    (ctx.clone(), CACHE.get_or_init(|| Mutex::new(PipelineCache::default())))
}

fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs())).max(1e-20);
    got.iter().zip(want).fold(0.0f64, |m, (&a, &b)| {
        if a.is_nan() && b.is_nan() || a == b { m } else { m.max((a as f64 - b as f64).abs()) }
    }) / scale
}

/// Runs `graph` on both executors with `inputs` and compares every output.
fn check_with(what: &str, graph: Graph, inputs: &[Vec<f32>], options: ExecOptions) {
    let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
    let want = CpuExecutor::new(graph.clone()).run(&refs).unwrap();
    let (ctx, cache) = gpu();
    let mut exec =
        WgpuExecutor::with_options(ctx, graph, &mut cache.lock().unwrap_or_else(|e| e.into_inner()), options).unwrap();
    let got = exec.run(&refs).unwrap();
    assert_eq!(got.len(), want.len(), "{what}: output count");
    for (g, w) in got.iter().zip(&want) {
        let e = rel_err(g, w);
        assert!(e <= TOLERANCE, "{what}: relative error {e:e}");
    }
}

/// The one-node graph of a case, and the values of its graph inputs.
fn case_graph(case: &OpCase, rng: &mut CaseRng) -> (Graph, Vec<Vec<f32>>) {
    let mut b = GraphBuilder::new();
    let mut ids = Vec::new();
    let mut feeds = Vec::new();
    for (i, input) in case.inputs.iter().enumerate() {
        let n: usize = input.shape.iter().product();
        let data = match &input.data {
            CaseData::Uniform(lo, hi) => (0..n).map(|_| rng.uniform(*lo, *hi)).collect(),
            CaseData::Values(v) => v.clone(),
        };
        if input.param {
            ids.push(b.param(&format!("p{i}"), input.shape.clone(), data, true).unwrap());
        } else {
            ids.push(b.typed_input(&format!("x{i}"), input.shape.clone(), input.dtype));
            feeds.push(data);
        }
    }
    let ys = b.node_outputs("op", case.op.clone(), &ids).unwrap_or_else(|e| panic!("{:?}: {e}", case.op));
    for y in ys {
        b.output(y);
    }
    (b.finish(), feeds)
}

#[test]
fn every_registered_op_matches_the_cpu_reference() {
    let mut rng = CaseRng::new(1);
    let cases = Op::all_cases(&mut rng);
    for case in &cases {
        let shapes: Vec<&Vec<usize>> = case.inputs.iter().map(|i| &i.shape).collect();
        let (g, feeds) = case_graph(case, &mut rng);
        check_with(&format!("{:?} on {shapes:?}", case.op), g, &feeds, ExecOptions::default());
    }
    eprintln!("{} cases of {} ops", cases.len(), Op::VARIANTS.len());
}

#[test]
fn every_registered_op_has_cases() {
    let cases = Op::all_cases(&mut CaseRng::new(2));
    for variant in Op::VARIANTS {
        assert!(cases.iter().any(|c| c.op.variant() == *variant), "op {variant} registers no test case");
    }
}

#[test]
fn matmul_every_tile_shape_on_odd_and_tile_straddling_sizes() {
    let mut rng = CaseRng::new(3);
    // (batch A, batch B, m, k, n), each run with every tile shape the executor can pick: sizes of 1,
    // odd sizes, and sizes below, at and above every tile.
    type Dims = (Vec<usize>, Vec<usize>, usize, usize, usize);
    let mut cases: Vec<Dims> = vec![
        (vec![], vec![], 1, 1, 1),
        (vec![], vec![], 257, 131, 257),
        (vec![], vec![], 65, 77, 200),
        (vec![], vec![], 33, 19, 40),
        (vec![], vec![], 7, 5, 9),
        (vec![], vec![], 128, 784, 256),
        (vec![3], vec![], 17, 33, 13),
        (vec![2, 3], vec![2, 3], 9, 16, 31),
        (vec![], vec![4], 5, 8, 3),
        // Longer than one dispatch's inner loop on CPU adapters: split over K and accumulated.
        (vec![], vec![], 2, 20_000, 3),
    ];
    for _ in 0..12 {
        cases.push((vec![], vec![], rng.size(1, 199), rng.size(1, 149), rng.size(1, 199)));
    }
    for (ba, bb, m, k, n) in cases {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (sa, sb) = operand_shapes((&ba, &bb), (m, k, n), (ta, tb));
            let alpha = if ta { 0.5 } else { 1.0 };
            let case =
                OpCase::uniform(MatMul { trans_a: ta, trans_b: tb, alpha }, &[sa.clone(), sb.clone()], -1.0, 1.0)
                    .with_params(&[false, true]);
            let (g, x) = case_graph(&case, &mut rng);
            for tile in ALL_TILES {
                let what = format!("matmul {sa:?} x {sb:?} (trans {ta} {tb}) tile {tile:?}");
                check_with(&what, g.clone(), &x, ExecOptions { matmul_tile: Some(tile), ..Default::default() });
            }
        }
    }
}

#[test]
fn elementwise_grid_spills_past_65535_workgroups() {
    // 4099 x 4097 outputs (more than 65,535 * 256) need a 2-D grid of workgroups; the inputs are small
    // so the whole graph stays within lavapipe's 128 MiB binding limit.
    let mut rng = CaseRng::new(4);
    let case = OpCase::uniform(BinaryOp::Sub, &[vec![4099, 1], vec![1, 4097]], -1.0, 1.0);
    let (g, x) = case_graph(&case, &mut rng);
    check_with("broadcast sub over a 2-D grid", g, &x, ExecOptions::default());
}

#[test]
fn reshapes_alias_computed_values_and_copy_inputs() {
    let mut rng = CaseRng::new(5);
    let mut b = GraphBuilder::new();
    let x = b.input("x", vec![4, 6]);
    let r = b.node("r", distk_engine::Reshape { shape: vec![2, 12] }.into(), &[x]).unwrap();
    let e = b.node("e", distk_engine::UnaryOp::Exp.into(), &[r]).unwrap();
    let r2 = b.node("r2", distk_engine::Reshape { shape: vec![24] }.into(), &[e]).unwrap();
    b.output(r2);
    let feed = (0..24).map(|_| rng.uniform(-1.0, 1.0)).collect();
    check_with("reshape chain", b.finish(), &[feed], ExecOptions::default());
}
