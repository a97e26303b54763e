//! Import never panics on damaged models: the fixture models (Keras, PyTorch, BatchNorm exports)
//! with bytes flipped, runs overwritten and tails cut off, and with their decoded graphs altered
//! (dims, attribute values, input names, op types), go through `import` and `inspect` under
//! `catch_unwind`; every outcome must be a value or an error. Deterministic and bounded: a fixed
//! seed and a fixed number of mutations per model.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use distk_onnx::{ImportOptions, OnnxModel, import_with, inspect};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tract_onnx::pb;

/// Byte-level mutations per model.
const BYTE_MUTATIONS: usize = 150;
/// Structural (decoded-graph) mutations per model.
const GRAPH_MUTATIONS: usize = 150;

/// The fixture models: the repository's examples and test fixtures, and the shared fixtures
/// beside the repository when they are there; identical files once.
fn fixture_models() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs =
        [root.join("examples/models"), root.join("tests/fixtures/models"), root.join("../shared/fixtures/models")];
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "onnx")) {
            let bytes = std::fs::read(&p).unwrap();
            if !out.iter().any(|(_, b)| *b == bytes) {
                out.push((p.display().to_string(), bytes));
            }
        }
    }
    out
}

/// How far a damaged model got.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Refused as not an ONNX model.
    NotOnnx,
    /// Decoded, then refused by the import.
    Refused,
    /// Imported.
    Imported,
}

/// Runs everything the importer offers on `bytes`; `Err` carries a panic's message.
fn exercise(bytes: Vec<u8>) -> Result<Outcome, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let Ok(m) = OnnxModel::from_bytes(bytes, "mutated.onnx") else { return Outcome::NotOnnx };
        let _ = inspect(&m);
        let _ = import_with(&m, 2, &ImportOptions { add_missing_biases: true, ..Default::default() });
        let mut imported = true;
        for batch in [1, 3] {
            imported &= import_with(&m, batch, &ImportOptions::default()).is_ok();
        }
        if imported { Outcome::Imported } else { Outcome::Refused }
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn mutate_bytes(rng: &mut StdRng, bytes: &[u8]) -> (String, Vec<u8>) {
    let mut b = bytes.to_vec();
    let at = rng.random_range(0..b.len());
    match rng.random_range(0..4) {
        0 => {
            let bit = rng.random_range(0..8);
            b[at] ^= 1 << bit;
            (format!("bit {bit} of byte {at} flipped"), b)
        }
        1 => {
            b.truncate(at);
            (format!("cut at {at}"), b)
        }
        2 => {
            let len = rng.random_range(1..=16).min(b.len() - at);
            let v: u8 = rng.random();
            b[at..at + len].fill(v);
            (format!("{len} bytes at {at} set to {v:#x}"), b)
        }
        _ => {
            let len = rng.random_range(1..=64).min(b.len() - at);
            let chunk = b[at..at + len].to_vec();
            let to = rng.random_range(0..b.len());
            b.splice(to..to, chunk);
            (format!("{len} bytes from {at} repeated at {to}"), b)
        }
    }
}

/// Values that break naive arithmetic.
fn nasty(rng: &mut StdRng) -> i64 {
    [0, -1, 1, 2, -2, 7, i64::MAX, i64::MIN, 1 << 32, -(1 << 40), 1 << 62][rng.random_range(0..11)]
}

fn mutate_graph(rng: &mut StdRng, bytes: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut m = pb::ModelProto::decode(bytes).ok()?;
    let g = m.graph.as_mut()?;
    let what = match rng.random_range(0..7) {
        0 if !g.initializer.is_empty() => {
            let t = rng.random_range(0..g.initializer.len());
            let dims = &mut g.initializer[t].dims;
            if dims.is_empty() {
                dims.push(nasty(rng));
            } else {
                let d = rng.random_range(0..dims.len());
                dims[d] = nasty(rng);
            }
            format!("a dim of initializer {t} changed")
        }
        1 if !g.node.is_empty() => {
            let n = rng.random_range(0..g.node.len());
            let node = &mut g.node[n];
            let v = nasty(rng);
            match node.attribute.first_mut() {
                Some(a) => {
                    a.i = v;
                    a.f = v as f32;
                    a.ints.iter_mut().for_each(|x| *x = v);
                    if a.ints.is_empty() {
                        a.ints.push(v);
                    }
                }
                None => node.attribute.push(pb::AttributeProto {
                    name: "axis".into(),
                    r#type: 2,
                    i: v,
                    ..Default::default()
                }),
            }
            format!("an attribute of node {n} set to {v}")
        }
        2 if g.node.len() > 1 => {
            let (a, b) = (rng.random_range(0..g.node.len()), rng.random_range(0..g.node.len()));
            let name = g.node[b].output.first().cloned().unwrap_or_default();
            if let Some(i) = g.node[a].input.first_mut() {
                *i = name;
            }
            format!("input 0 of node {a} rewired to the output of node {b}")
        }
        3 if !g.node.is_empty() => {
            let n = rng.random_range(0..g.node.len());
            let ops: Vec<&str> = distk_onnx::supported_ops();
            let op = ops[rng.random_range(0..ops.len())];
            g.node[n].op_type = op.into();
            format!("node {n} turned into {op}")
        }
        4 if !g.node.is_empty() => {
            let n = rng.random_range(0..g.node.len());
            let i = rng.random_range(0..=g.node[n].input.len());
            if i < g.node[n].input.len() {
                g.node[n].input[i].clear();
            } else {
                g.node[n].input.push("x_extra".into());
            }
            format!("an input of node {n} removed or added")
        }
        5 if !g.input.is_empty() => {
            use pb::tensor_shape_proto::dimension::Value;
            let v = nasty(rng);
            let dims = g.input[0]
                .r#type
                .as_mut()
                .and_then(|t| match t.value.as_mut() {
                    Some(pb::type_proto::Value::TensorType(t)) => t.shape.as_mut(),
                    _ => None,
                })
                .map(|s| &mut s.dim);
            if let Some(d) = dims.and_then(|d| d.last_mut()) {
                d.value = Some(Value::DimValue(v));
            }
            format!("the last dim of the graph input set to {v}")
        }
        _ => {
            let v = rng.random_range(1..25);
            for o in &mut m.opset_import {
                o.version = v;
            }
            format!("opset set to {v}")
        }
    };
    Some((what, m.encode_to_vec()))
}

#[test]
fn damaged_fixture_models_never_panic_the_importer() {
    let models = fixture_models();
    assert!(models.len() >= 5, "found only {} fixture models", models.len());
    // The tests report panics themselves; keep the default hook from printing each one.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut panics = Vec::new();
    let mut tried = 0;
    let mut outcomes = [0usize; 3];
    for (path, bytes) in &models {
        let mut rng = StdRng::seed_from_u64(bytes.len() as u64);
        assert_eq!(exercise(bytes.clone()), Ok(Outcome::Imported), "{path} as it is");
        for _ in 0..BYTE_MUTATIONS {
            let (what, b) = mutate_bytes(&mut rng, bytes);
            tried += 1;
            match exercise(b) {
                Ok(o) => outcomes[o as usize] += 1,
                Err(msg) => panics.push(format!("{path}: {what}: {msg}")),
            }
        }
        for _ in 0..GRAPH_MUTATIONS {
            let Some((what, b)) = mutate_graph(&mut rng, bytes) else { continue };
            tried += 1;
            match exercise(b) {
                Ok(o) => outcomes[o as usize] += 1,
                Err(msg) => panics.push(format!("{path}: {what}: {msg}")),
            }
        }
    }
    std::panic::set_hook(hook);
    let [not_onnx, refused, imported] = outcomes;
    eprintln!("{tried} damaged models: {not_onnx} not ONNX, {refused} refused by the import, {imported} imported");
    assert!(tried > 1000, "only {tried} mutations tried");
    // The mutations must reach the importer, not only the protobuf decoder.
    assert!(refused + imported > tried / 2, "{not_onnx} of {tried} damaged models did not even decode");
    assert!(refused > tried / 10, "only {refused} of {tried} damaged models were refused by the import");
    assert!(
        panics.is_empty(),
        "{} of {tried} damaged models panicked the importer:\n{}",
        panics.len(),
        panics.join("\n")
    );
}
