//! Helpers shared by the integration tests: fixture paths, the .npz reader, comparisons.
#![allow(dead_code)]

pub mod mutate;
pub mod onnx_pb;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use distk_engine::wgpu_exec::{GpuContext, device};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A bundled model.
pub fn model(name: &str) -> PathBuf {
    root().join("examples/models").join(name)
}

/// A bundled dataset.
pub fn data(name: &str) -> PathBuf {
    root().join("examples/data").join(name)
}

/// `distk-gpu evaluate MODEL --data DATA --device DEVICE --json`, checked to print exactly one JSON
/// object, parsed.
pub fn evaluate_json(model: &Path, data: &Path, device: &str) -> serde_json::Value {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_distk-gpu"))
        .arg("evaluate")
        .arg(model)
        .arg("--data")
        .arg(data)
        .args(["--device", device, "--json"])
        .output()
        .expect("run distk-gpu");
    assert!(o.status.success(), "evaluate failed: {}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.trim().lines().count(), 1, "one JSON object: {out}");
    serde_json::from_str(out.trim()).unwrap()
}

/// A numpy array from an .npz: shape and values as f64.
#[derive(Clone, Debug)]
pub struct NpArray {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl NpArray {
    pub fn f32s(&self) -> Vec<f32> {
        self.data.iter().map(|&x| x as f32).collect()
    }
}

fn parse_npy(bytes: &[u8]) -> NpArray {
    assert_eq!(&bytes[..6], b"\x93NUMPY", "not an npy file");
    let major = bytes[6];
    let (hlen, start) = if major == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).unwrap();
    let descr = header.split("'descr':").nth(1).unwrap().split('\'').nth(1).unwrap().to_string();
    assert!(header.contains("'fortran_order': False"), "fortran order arrays are not supported");
    let shape_txt = header.split("'shape':").nth(1).unwrap();
    let shape_txt = &shape_txt[shape_txt.find('(').unwrap() + 1..shape_txt.find(')').unwrap()];
    let shape: Vec<usize> =
        shape_txt.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    let body = &bytes[start + hlen..];
    let data: Vec<f64> = match descr.as_str() {
        "<f4" => body.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
        "<f8" => body.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect(),
        "<i8" => body.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
        "<i4" => body.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
        other => panic!("npy dtype {other} not supported"),
    };
    assert_eq!(data.len(), shape.iter().product::<usize>().max(1).min(data.len().max(1)));
    NpArray { shape, data }
}

/// Reads every array of an .npz file.
pub fn read_npz(path: &Path) -> HashMap<String, NpArray> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let mut out = HashMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().trim_end_matches(".npy").to_string();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        out.insert(name, parse_npy(&bytes));
    }
    out
}

/// max |a - b| / max |b|: the error measure the tolerances are stated in.
pub fn rel_max_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "length differs");
    let scale = want.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs())).max(1e-30);
    let diff = got.iter().zip(want).fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs()));
    diff / scale
}

/// One GPU device shared by the tests of a binary (lavapipe in CI).
pub fn gpu() -> Arc<GpuContext> {
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| Arc::new(device::open(None).expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)")))
        .clone()
}
