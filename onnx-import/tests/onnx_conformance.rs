//! ONNX's own node test cases (onnx 1.23.2, written by `scripts/onnx_node_cases.py`, which
//! `scripts/setup.sh` runs) imported through the public API and run on the CPU and the WGSL
//! executors, every output compared as numpy's `allclose` does (rtol 1e-3, atol 1e-5; NaN equals
//! NaN, as in `numpy.testing.assert_allclose`, which ONNX's backend tests use).
//!
//! Asserts that no case panics, that every case of `tests/conformance_baseline.txt` passes on both
//! executors, and that every eligible case using only supported ops and only float32 inputs and
//! outputs passes, unless `tests/conformance_known_failures.txt` gives a reason. Writes the report
//! to `target/onnx-conformance.md`; `DISTK_CONFORMANCE_UPDATE=1` writes it to
//! `docs/onnx-conformance.md` with the baseline instead, without failing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use distk_engine::cpu::CpuExecutor;
use distk_engine::wgpu_exec::{GpuContext, PipelineCache, WgpuExecutor, device};
use distk_engine::{DType, Executor, Graph, TensorRef};
use distk_onnx::tensor::ConstTensor;
use distk_onnx::{
    Dim, ImportError, ImportOptions, OnnxModel, import_with, inputs_needed_at_import, supported_ops, unsupported_ops,
};
use prost::Message;
use serde::Deserialize;
use tract_onnx::pb;

const ONNX_VERSION: &str = "1.23.2";
const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-5;
const UPDATE_VAR: &str = "DISTK_CONFORMANCE_UPDATE";
const CASES_VAR: &str = "DISTK_ONNX_NODE_CASES";

#[derive(Deserialize)]
struct Manifest {
    onnx_version: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    /// The op the case tests (`X (expanded)` for a function body in primitive ops).
    op: String,
    op_types: Vec<String>,
    inputs: Vec<Value>,
    outputs: Vec<Value>,
    eligible: bool,
}

#[derive(Deserialize)]
struct Value {
    name: String,
    kind: String,
    dtype: Option<String>,
    file: Option<String>,
}

impl Value {
    /// The engine type the value is fed or returned as, when the engine holds its type.
    fn engine_dtype(&self) -> Option<DType> {
        if self.kind != "tensor" || self.file.is_none() {
            return None;
        }
        match self.dtype.as_deref()? {
            "float32" => Some(DType::F32),
            "int64" => Some(DType::I64),
            "int32" | "int16" | "int8" | "uint16" | "uint8" => Some(DType::I32),
            "bool" => Some(DType::Bool),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match (&self.kind[..], &self.dtype) {
            ("tensor", Some(d)) => d.clone(),
            (kind, _) => format!("a {kind}"),
        }
    }
}

/// What happened to a case on one executor.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Passed,
    /// An input or output of a type the engine does not hold (float64, float16, strings,
    /// sequences, optionals).
    Typed(String),
    Unsupported(Vec<String>),
    Import(String),
    Run(String),
    Wrong(String),
    Panic(String),
}

impl Outcome {
    fn category(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Typed(_) => "a type the engine does not hold",
            Outcome::Unsupported(_) => "unsupported op",
            Outcome::Import(_) => "import error",
            Outcome::Run(_) => "failed at run",
            Outcome::Wrong(_) => "wrong values",
            Outcome::Panic(_) => "PANIC",
        }
    }

    /// One line, for the report.
    fn reason(&self) -> String {
        let r = match self {
            Outcome::Passed => "passed".to_string(),
            Outcome::Typed(s) => format!("a type the engine does not hold: {s}"),
            Outcome::Unsupported(ops) => format!("unsupported op: {}", ops.join(", ")),
            Outcome::Import(s) => format!("import error: {s}"),
            Outcome::Run(s) => format!("failed at run: {s}"),
            Outcome::Wrong(s) => format!("wrong values: {s}"),
            Outcome::Panic(s) => format!("PANIC: {s}"),
        };
        let one_line: String = r.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|");
        if one_line.chars().count() > 300 {
            format!("{}...", one_line.chars().take(300).collect::<String>())
        } else {
            one_line
        }
    }
}

struct CaseResult {
    cpu: Outcome,
    wgsl: Outcome,
}

impl CaseResult {
    fn both(o: Outcome) -> Self {
        CaseResult { cpu: o.clone(), wgsl: o }
    }

    fn passed(&self) -> bool {
        self.cpu == Outcome::Passed && self.wgsl == Outcome::Passed
    }

    fn panicked(&self) -> bool {
        matches!(self.cpu, Outcome::Panic(_)) || matches!(self.wgsl, Outcome::Panic(_))
    }

    fn reason(&self) -> String {
        if self.cpu == self.wgsl {
            self.cpu.reason()
        } else {
            format!("CPU: {}; WGSL: {}", self.cpu.reason(), self.wgsl.reason())
        }
    }
}

/// The message of the last panic (set by the hook this test installs).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, Outcome> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        let msg = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take();
        Outcome::Panic(msg.unwrap_or_else(|| "a panic without message".into()))
    })
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_tensor(path: &Path) -> ConstTensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let proto = pb::TensorProto::decode(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ConstTensor::from_proto(&proto).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The batch size binding the model's symbolic input dims to the fed shapes.
fn batch_of(model: &OnnxModel, inputs: &[ConstTensor]) -> Result<usize, String> {
    let sigs = model.inputs().map_err(|e| e.to_string())?;
    if sigs.len() != inputs.len() {
        return Err(format!("the model has {} inputs, the case feeds {}", sigs.len(), inputs.len()));
    }
    let mut batch = None;
    for (s, t) in sigs.iter().zip(inputs) {
        for (d, &n) in s.dims.iter().zip(&t.shape) {
            if let Dim::Symbolic(name) = d {
                match batch {
                    Some(b) if b != n => {
                        return Err(format!(
                            "symbolic dims of sizes {b} and {n} (`{name}` of `{}`): import binds one batch size",
                            s.name
                        ));
                    }
                    _ => batch = Some(n),
                }
            }
        }
    }
    Ok(batch.unwrap_or(1))
}

/// Max abs error and the first value outside `atol + rtol * |want|` (NaN equals NaN).
fn allclose(got: &[f32], want: &[f32]) -> Result<f64, String> {
    let (mut max_err, mut bad, mut first) = (0.0f64, 0usize, None);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g as f64, w as f64);
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= ATOL + RTOL * w.abs()
        };
        let err = if g.is_nan() != w.is_nan() || (!ok && !g.is_finite()) { f64::INFINITY } else { (g - w).abs() };
        if !err.is_nan() {
            max_err = max_err.max(err);
        }
        if !ok {
            bad += 1;
            first.get_or_insert((i, g, w));
        }
    }
    match first {
        None => Ok(max_err),
        Some((i, g, w)) => Err(format!(
            "{bad} of {} values differ, max abs error {max_err:.3e} (first at {i}: got {g}, expected {w})",
            want.len()
        )),
    }
}

fn compare(graph: &Graph, case: &Case, got: &[Vec<f32>], want: &[ConstTensor]) -> Outcome {
    if got.len() != want.len() {
        return Outcome::Wrong(format!("{} outputs, expected {}", got.len(), want.len()));
    }
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let name = &case.outputs[k].name;
        let shape = graph.shape(graph.outputs[k]);
        if shape != w.shape.as_slice() {
            return Outcome::Wrong(format!("output `{name}` has shape {shape:?}, expected {:?}", w.shape));
        }
        let (got_type, want_type) = (graph.dtype(graph.outputs[k]), case.outputs[k].engine_dtype());
        if Some(got_type) != want_type {
            return Outcome::Wrong(format!(
                "output `{name}` is {}, expected {}",
                got_type.name(),
                case.outputs[k].describe()
            ));
        }
        if let Err(e) = allclose(g, &w.as_f32()) {
            return Outcome::Wrong(format!("output `{name}`: {e}"));
        }
    }
    Outcome::Passed
}

/// A case ready to run: the imported graph, its inputs and the expected outputs.
struct Prepared {
    graph: Graph,
    inputs: Vec<Fed>,
    want: Vec<ConstTensor>,
}

/// One input as the case feeds it, in its own type.
enum Fed {
    F32(Vec<f32>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    Bool(Vec<bool>),
}

impl Fed {
    fn new(t: &ConstTensor, dtype: DType) -> Fed {
        match dtype {
            DType::F32 => Fed::F32(t.as_f32()),
            DType::I64 => Fed::I64(t.as_i64()),
            DType::I32 => Fed::I32(t.data.iter().map(|&x| x as i32).collect()),
            DType::Bool => Fed::Bool(t.data.iter().map(|&x| x != 0.0).collect()),
        }
    }

    fn as_ref(&self) -> TensorRef<'_> {
        match self {
            Fed::F32(v) => TensorRef::F32(v),
            Fed::I64(v) => TensorRef::I64(v),
            Fed::I32(v) => TensorRef::I32(v),
            Fed::Bool(v) => TensorRef::Bool(v),
        }
    }
}

/// The graph and data of a case, or why it stops before running.
fn prepare(dir: &Path, case: &Case) -> Result<Prepared, Outcome> {
    let model = OnnxModel::load(&dir.join("model.onnx")).map_err(|e| Outcome::Import(e.to_string()))?;
    let unsupported = unsupported_ops(&model);
    if !unsupported.is_empty() {
        return Err(Outcome::Unsupported(unsupported.into_iter().map(|u| u.op_type).collect()));
    }
    let typed: Vec<String> = (case.inputs.iter().map(|v| ("input", v)))
        .chain(case.outputs.iter().map(|v| ("output", v)))
        .filter(|(_, v)| v.engine_dtype().is_none())
        .map(|(what, v)| format!("{what} `{}` is {}", v.name, v.describe()))
        .collect();
    if !typed.is_empty() {
        return Err(Outcome::Typed(typed.join(", ")));
    }
    let file = |v: &Value| dir.join(v.file.as_deref().unwrap_or_default());
    let inputs: Vec<ConstTensor> = case.inputs.iter().map(|v| read_tensor(&file(v))).collect();
    let want: Vec<ConstTensor> = case.outputs.iter().map(|v| read_tensor(&file(v))).collect();
    let batch = batch_of(&model, &inputs).map_err(Outcome::Import)?;
    // Inputs that set shapes (axes, a target shape, a depth) are bound at import, as an exporter
    // writes them: the engine's shapes are static.
    let needed = inputs_needed_at_import(&model);
    let bound: Vec<(String, ConstTensor)> = case
        .inputs
        .iter()
        .zip(&inputs)
        .filter(|(v, _)| needed.contains(&v.name))
        .map(|(v, t)| (v.name.clone(), t.clone()))
        .collect();
    let (inputs, fed_values): (Vec<ConstTensor>, Vec<&Value>) =
        inputs.into_iter().zip(&case.inputs).filter(|(_, v)| !needed.contains(&v.name)).unzip();
    let options = ImportOptions { bound_inputs: bound, ..Default::default() };
    let graph = match import_with(&model, batch, &options) {
        Ok(g) => g.graph,
        Err(ImportError::Unsupported(cov)) if !cov.ops.is_empty() => {
            return Err(Outcome::Unsupported(cov.ops.into_iter().map(|u| u.op_type).collect()));
        }
        Err(e) => return Err(Outcome::Import(e.to_string())),
    };
    for (k, (&v, t)) in graph.inputs.iter().zip(&inputs).enumerate() {
        if graph.shape(v) != t.shape.as_slice() {
            return Err(Outcome::Import(format!(
                "input {k} `{}` imported with shape {:?}, the case feeds {:?}",
                fed_values[k].name,
                graph.shape(v),
                t.shape
            )));
        }
    }
    let fed = inputs.iter().zip(&fed_values).map(|(t, v)| Fed::new(t, v.engine_dtype().unwrap_or_default())).collect();
    Ok(Prepared { graph, inputs: fed, want })
}

fn run_case(dir: &Path, case: &Case, ctx: &Arc<GpuContext>, cache: &mut PipelineCache) -> CaseResult {
    let Prepared { graph, inputs, want } = match guarded(|| prepare(dir, case)).and_then(|r| r) {
        Ok(p) => p,
        Err(o) => return CaseResult::both(o),
    };
    let refs: Vec<TensorRef<'_>> = inputs.iter().map(Fed::as_ref).collect();
    let cpu = guarded(|| match CpuExecutor::new(graph.clone()).run_typed(&refs) {
        Ok(out) => compare(&graph, case, &out, &want),
        Err(e) => Outcome::Run(e.to_string()),
    })
    .unwrap_or_else(|o| o);
    let wgsl = guarded(|| match WgpuExecutor::new(ctx.clone(), graph.clone(), cache) {
        Err(e) => Outcome::Run(format!("compiling: {e}")),
        Ok(mut exec) => match exec.run_typed(&refs) {
            Ok(out) => compare(&graph, case, &out, &want),
            Err(e) => Outcome::Run(e.to_string()),
        },
    })
    .unwrap_or_else(|o| o);
    CaseResult { cpu, wgsl }
}

/// Case names of a list file (first word of each line; `#` starts a comment), with the rest.
fn read_list(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((name, rest)) => (name.to_string(), rest.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// Today's date (UTC) as YYYY-MM-DD.
fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn needs_only_supported(case: &Case) -> bool {
    let supported = supported_ops();
    case.op_types.iter().all(|op| supported.contains(&op.as_str()))
}

/// What the test saw, for the report.
struct Run<'a> {
    manifest: &'a Manifest,
    results: &'a BTreeMap<String, CaseResult>,
    known: &'a BTreeMap<String, String>,
    /// Ineligible cases whose import panicked.
    ineligible_panics: &'a [String],
    adapter: &'a str,
    secs: f64,
}

fn report(run: &Run) -> String {
    let Run { manifest, results, known, ineligible_panics, adapter, secs } = *run;
    let eligible: Vec<&Case> = manifest.cases.iter().filter(|c| c.eligible).collect();
    let n = eligible.len();
    let pass =
        |f: fn(&CaseResult) -> &Outcome| eligible.iter().filter(|c| *f(&results[&c.name]) == Outcome::Passed).count();
    let (cpu, wgsl) = (pass(|r| &r.cpu), pass(|r| &r.wgsl));
    let both = eligible.iter().filter(|c| results[&c.name].passed()).count();
    let mut s = String::new();
    let _ = writeln!(s, "# ONNX node conformance\n");
    let _ = writeln!(
        s,
        "Written on {} by `onnx-import/tests/onnx_conformance.rs` from the node test cases of onnx {} \
         (`onnx.backend.test.case.node`, written by `scripts/onnx_node_cases.py`, which `scripts/setup.sh` runs). \
         Each eligible case (its first input and first output are float32) is imported through `distk_onnx::import` \
         and run on the CPU executor and the WGSL executor (here on `{adapter}`); every output is compared with \
         rtol {RTOL:e}, atol {ATOL:e} (numpy `allclose`; NaN equals NaN). The run took {secs:.0} s.\n",
        today(),
        manifest.onnx_version
    );
    let _ = writeln!(
        s,
        "The test fails when a case panics, when a case of `onnx-import/tests/conformance_baseline.txt` (the \
         cases passing on both executors) no longer passes, or when an eligible case that uses only supported \
         ops and float32 inputs and outputs fails without a reason in \
         `onnx-import/tests/conformance_known_failures.txt`. To rewrite this report and the baseline after a change:\n"
    );
    let _ = writeln!(
        s,
        "```sh\nscripts/setup.sh   # the venv with onnx and the cases in target/onnx-node-cases\n\
         DISTK_CONFORMANCE_UPDATE=1 WGPU_BACKEND=vulkan cargo test --release --locked -p distk-onnx --test onnx_conformance\n```\n"
    );
    let _ = writeln!(s, "## Totals\n");
    let _ = writeln!(s, "| | cases |\n|---|---|");
    let _ = writeln!(s, "| node test cases | {} |", manifest.cases.len());
    let _ = writeln!(s, "| eligible | {n} |");
    let _ = writeln!(s, "| passed on the CPU executor | {cpu} / {n} |");
    let _ = writeln!(s, "| passed on the WGSL executor | {wgsl} / {n} |");
    let _ = writeln!(s, "| passed on both | {both} / {n} |\n");

    let _ = writeln!(s, "## Failures by reason\n");
    let _ = writeln!(s, "| reason | CPU | WGSL |\n|---|---|---|");
    let mut by: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for c in &eligible {
        let r = &results[&c.name];
        by.entry(r.cpu.category()).or_default().0 += 1;
        by.entry(r.wgsl.category()).or_default().1 += 1;
    }
    by.remove("passed");
    let mut by: Vec<_> = by.into_iter().collect();
    by.sort_by_key(|(_, (a, b))| std::cmp::Reverse(a + b));
    for (cat, (a, b)) in by {
        let _ = writeln!(s, "| {cat} | {a} | {b} |");
    }

    let _ = writeln!(s, "\n## Unsupported ops\n");
    let _ = writeln!(
        s,
        "Eligible cases whose model uses the op; `alone`: those where it is the only unsupported op and every \
         input and output is of a type the engine holds (what supporting the op would bring to the executors).\n"
    );
    let _ = writeln!(s, "| op | cases | alone |\n|---|---|---|");
    let mut ops: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for c in &eligible {
        if let Outcome::Unsupported(list) = &results[&c.name].cpu {
            let f32_only = c.inputs.iter().chain(&c.outputs).all(|v| v.engine_dtype().is_some());
            for op in list {
                let e = ops.entry(op.as_str()).or_default();
                e.0 += 1;
                e.1 += usize::from(list.len() == 1 && f32_only);
            }
        }
    }
    let mut ops: Vec<_> = ops.into_iter().collect();
    ops.sort_by_key(|(op, (a, b))| (std::cmp::Reverse((*b, *a)), *op));
    for (op, (a, b)) in ops {
        let _ = writeln!(s, "| {op} | {a} | {b} |");
    }

    let _ = writeln!(s, "\n## By op\n");
    let _ = writeln!(s, "The op each case tests (`(expanded)`: its function body in primitive ops).\n");
    let _ = writeln!(s, "| op | eligible | CPU passed | WGSL passed |\n|---|---|---|---|");
    let mut per: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for c in &eligible {
        let r = &results[&c.name];
        let e = per.entry(c.op.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(r.cpu == Outcome::Passed);
        e.2 += usize::from(r.wgsl == Outcome::Passed);
    }
    for (op, (e, a, b)) in per {
        let _ = writeln!(s, "| {op} | {e} | {a} | {b} |");
    }

    let _ = writeln!(s, "\n## Known failures\n");
    let _ = writeln!(
        s,
        "Cases that use only supported ops and float32 inputs and outputs, and fail (from the known-failures file).\n"
    );
    let _ = writeln!(s, "| case | why |\n|---|---|");
    for (name, why) in known {
        let _ = writeln!(s, "| {name} | {why} |");
    }

    let _ = writeln!(s, "\n## Every failure\n");
    let _ = writeln!(s, "| case | op | reason |\n|---|---|---|");
    for c in &eligible {
        let r = &results[&c.name];
        if !r.passed() {
            let _ = writeln!(s, "| {} | {} | {} |", c.name, c.op, r.reason());
        }
    }
    let _ = writeln!(
        s,
        "\nThe {} ineligible cases are imported too (batch 1), only to check that nothing panics: {} panicked.",
        manifest.cases.len() - eligible.len(),
        ineligible_panics.len()
    );
    for p in ineligible_panics {
        let _ = writeln!(s, "- {p}");
    }
    s
}

/// Imports an ineligible case (which cannot run) only to see that import does not panic.
fn import_panics(dir: &Path) -> Option<String> {
    let outcome = guarded(|| {
        if let Ok(model) = OnnxModel::load(&dir.join("model.onnx"))
            && unsupported_ops(&model).is_empty()
        {
            let _ = import_with(&model, 1, &ImportOptions::default());
        }
    });
    outcome.err().map(|o| o.reason())
}

#[test]
fn onnx_node_cases_on_cpu_and_wgsl() {
    let cases_dir =
        std::env::var_os(CASES_VAR).map(PathBuf::from).unwrap_or_else(|| repo_root().join("target/onnx-node-cases"));
    let manifest_path = cases_dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. The ONNX node cases are missing: run scripts/setup.sh (it installs onnx {ONNX_VERSION} \
             in target/py-onnx and writes the cases to target/onnx-node-cases), or set {CASES_VAR}",
            manifest_path.display()
        )
    });
    let manifest: Manifest = serde_json::from_str(&text).expect("manifest.json");
    assert_eq!(
        manifest.onnx_version,
        ONNX_VERSION,
        "the cases in {} come from another onnx version: run scripts/setup.sh",
        cases_dir.display()
    );
    let update = std::env::var(UPDATE_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
    let baseline_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance_baseline.txt");
    let known_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance_known_failures.txt");
    let baseline: Vec<String> = read_list(&baseline_path).into_iter().map(|(n, _)| n).collect();
    let known: BTreeMap<String, String> = read_list(&known_path).into_iter().collect();

    let ctx = Arc::new(device::open(None).unwrap_or_else(|e| panic!("{e} (scripts/setup.sh installs lavapipe)")));
    let adapter = ctx.info.name.clone();
    let mut cache = PipelineCache::default();

    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.to_string());
    }));
    let started = Instant::now();
    let mut results = BTreeMap::new();
    for case in manifest.cases.iter().filter(|c| c.eligible) {
        let t = Instant::now();
        let r = run_case(&cases_dir.join(&case.name), case, &ctx, &mut cache);
        if t.elapsed().as_secs_f64() > 5.0 {
            eprintln!("{}: {:.1} s", case.name, t.elapsed().as_secs_f64());
        }
        results.insert(case.name.clone(), r);
    }
    let secs = started.elapsed().as_secs_f64();
    let ineligible_panics: Vec<String> = (manifest.cases.iter().filter(|c| !c.eligible))
        .filter_map(|c| import_panics(&cases_dir.join(&c.name)).map(|p| format!("{}: {p}", c.name)))
        .collect();
    std::panic::set_hook(previous_hook);

    let run = Run {
        manifest: &manifest,
        results: &results,
        known: &known,
        ineligible_panics: &ineligible_panics,
        adapter: &adapter,
        secs,
    };
    let text = report(&run);
    let passing: Vec<&String> = results.iter().filter(|(_, r)| r.passed()).map(|(n, _)| n).collect();
    let (cpu, wgsl) = (
        results.values().filter(|r| r.cpu == Outcome::Passed).count(),
        results.values().filter(|r| r.wgsl == Outcome::Passed).count(),
    );
    println!(
        "onnx {}: {} eligible cases; passed: CPU {cpu}, WGSL {wgsl}, both {} ({secs:.1} s on `{adapter}`)",
        manifest.onnx_version,
        results.len(),
        passing.len()
    );
    if update {
        let mut b = format!(
            "# The ONNX node test cases (onnx {}) that pass on the CPU and the WGSL executors; written by\n\
             # {UPDATE_VAR}=1 cargo test --release --locked -p distk-onnx --test onnx_conformance\n",
            manifest.onnx_version
        );
        for n in &passing {
            b.push_str(n);
            b.push('\n');
        }
        std::fs::write(&baseline_path, b).expect("write the baseline");
        let doc = repo_root().join("docs/onnx-conformance.md");
        std::fs::write(&doc, &text).expect("write the report");
        println!("wrote {} and {}", doc.display(), baseline_path.display());
        return;
    }
    let out = cases_dir.parent().unwrap_or(&cases_dir).join("onnx-conformance.md");
    if std::fs::write(&out, &text).is_ok() {
        println!("report: {}", out.display());
    }

    let mut problems: Vec<String> = ineligible_panics.iter().map(|p| format!("import panicked: {p}")).collect();
    for (name, r) in &results {
        if r.panicked() {
            problems.push(format!("{name} panicked: {}", r.reason()));
        }
    }
    for name in &baseline {
        match results.get(name) {
            None => problems.push(format!("{name} (baseline) is not an eligible case of onnx {ONNX_VERSION}")),
            Some(r) if !r.passed() => problems.push(format!("{name} passed before (baseline): {}", r.reason())),
            _ => {}
        }
    }
    for case in manifest.cases.iter().filter(|c| c.eligible) {
        let r = &results[&case.name];
        let typed = matches!(r.cpu, Outcome::Typed(_));
        if !r.passed() && !typed && needs_only_supported(case) && !known.contains_key(&case.name) {
            problems.push(format!(
                "{} uses only supported ops and fails: {} (fix it, or list it with a reason in {})",
                case.name,
                r.reason(),
                known_path.display()
            ));
        }
    }
    for name in known.keys() {
        match results.get(name) {
            None => problems.push(format!("{name} (known failures) is not an eligible case of onnx {ONNX_VERSION}")),
            Some(r) if r.passed() => problems.push(format!("{name} passes now: remove it from the known failures")),
            _ => {}
        }
    }
    let new_passes = passing.iter().filter(|n| !baseline.contains(n)).count();
    if new_passes > 0 {
        println!(
            "{new_passes} cases pass that the baseline does not list: run with {UPDATE_VAR}=1 to record them \
             (and the report)"
        );
    }
    assert!(problems.is_empty(), "{} conformance problems:\n{}", problems.len(), problems.join("\n"));
}
