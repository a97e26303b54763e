//! Every fixture model's forward pass against onnxruntime's outputs (the oracles) and against tract,
//! on the CPU and the WGSL executors. Tolerance: max abs diff / max abs value <= 1e-5.

mod common;

use common::{gpu, model, read_npz, rel_max_err, root};
use distk_engine::Executor;
use distk_engine::cpu::CpuExecutor;
use distk_engine::wgpu_exec::{ExecOptions, PipelineCache, WgpuExecutor};
use distk_onnx::{OnnxModel, import};
use tract_onnx::prelude::*;

const MODELS: &[&str] = &[
    "keras_mlp",
    "keras_mlp.stock",
    "keras_mlp_mnist",
    "keras_mlp_mnist.stock",
    "keras_cnn",
    "keras_cnn.stock",
    "torch_mlp",
];
const TOLERANCE: f64 = 1e-5;

/// Case name, input shape, input, expected output.
type Case = (String, Vec<usize>, Vec<f32>, Vec<f32>);

fn cases(name: &str) -> Vec<Case> {
    let npz = read_npz(&root().join(format!("tests/fixtures/oracles/forward/{name}.npz")));
    let mut out = Vec::new();
    for case in ["data", "uniform"] {
        let x = &npz[&format!("input_{case}")];
        let y = &npz[&format!("output_{case}")];
        out.push((case.to_string(), x.shape.clone(), x.f32s(), y.f32s()));
    }
    out
}

fn tract_forward(path: &std::path::Path, shape: &[usize], x: &[f32]) -> Vec<f32> {
    // Keras' Flatten chain needs the batch bound for tract to type its Reshape; torch exports name
    // the batch dim of inner values `batch`, which tract cannot unify with a bound size. Bind the
    // batch where tract accepts it, and keep it symbolic otherwise.
    let bound = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, f32::fact(shape).into())
        .and_then(|m| m.into_optimized());
    let typed = match bound {
        Ok(t) => t,
        Err(_) => tract_onnx::onnx().model_for_path(path).unwrap().into_optimized().unwrap(),
    };
    let plan = typed.into_runnable().unwrap();
    let input = Tensor::from_shape(shape, x).unwrap();
    let out = plan.run(tvec!(input.into())).unwrap();
    out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect()
}

#[test]
fn every_fixture_model_matches_onnxruntime_and_tract_on_cpu_and_wgsl() {
    let ctx = gpu();
    let mut cache = PipelineCache::default();
    let mut report = Vec::new();
    for name in MODELS {
        let path = model(&format!("{name}.onnx"));
        let m = OnnxModel::load(&path).unwrap();
        for (case, shape, x, want) in cases(name) {
            let g = import(&m, shape[0]).unwrap().graph;
            let cpu = CpuExecutor::new(g.clone()).run(&[&x]).unwrap().remove(0);
            let gpu = WgpuExecutor::new(ctx.clone(), g, &mut cache).unwrap().run(&[&x]).unwrap().remove(0);
            let tract = tract_forward(&path, &shape, &x);
            let (e_cpu, e_gpu, e_tract) =
                (rel_max_err(&cpu, &want), rel_max_err(&gpu, &want), rel_max_err(&tract, &want));
            report.push(format!("{name:24} {case:8} cpu {e_cpu:.2e}  wgpu {e_gpu:.2e}  tract {e_tract:.2e}"));
            assert!(e_cpu <= TOLERANCE, "{name}/{case}: cpu error {e_cpu:e}");
            assert!(e_gpu <= TOLERANCE, "{name}/{case}: wgpu error {e_gpu:e}");
            assert!(e_tract <= TOLERANCE, "{name}/{case}: tract disagrees with onnxruntime by {e_tract:e}");
            assert!(rel_max_err(&gpu, &tract) <= TOLERANCE, "{name}/{case}: wgpu vs tract");
        }
    }
    println!("max abs error / max abs value against onnxruntime:\n{}", report.join("\n"));
}

#[test]
fn activations_spread_over_several_arena_buffers_give_the_same_outputs() {
    // Buffers of 160 Ki elements (640 KiB) force the CNN's activations into several arena buffers,
    // as a model whose activations exceed one storage binding would be on a real adapter.
    let ctx = gpu();
    let mut cache = PipelineCache::default();
    let m = OnnxModel::load(&model("keras_cnn.onnx")).unwrap();
    for (case, shape, x, want) in cases("keras_cnn") {
        let g = import(&m, shape[0]).unwrap().graph;
        let options = ExecOptions { arena_chunk_elems: Some(160 * 1024), ..Default::default() };
        let mut exec = WgpuExecutor::with_options(ctx.clone(), g, &mut cache, options).unwrap();
        assert!(exec.arena_buffer_count() > 1, "the test must spread the arena");
        let out = exec.run(&[&x]).unwrap().remove(0);
        assert!(rel_max_err(&out, &want) <= TOLERANCE, "keras_cnn/{case} over several arena buffers");
    }
    // One tensor larger than a buffer is named in a clear error.
    let g = import(&m, 4).unwrap().graph;
    let options = ExecOptions { arena_chunk_elems: Some(20_000), ..Default::default() };
    let e = WgpuExecutor::with_options(ctx, g, &mut cache, options).err().unwrap().to_string();
    assert!(e.contains("needs") && e.contains("smaller --batch-size"), "{e}");
}
