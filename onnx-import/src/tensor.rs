//! Constant tensors met during import (initializers, Constant nodes, folded shape sub-graphs).
//! Values are held as f64, which represents every f32 and every integer a shape computation uses.

use tract_onnx::pb;

/// ONNX element types this importer reads.
pub mod elem {
    /// float32
    pub const FLOAT: i32 = 1;
    /// uint8
    pub const UINT8: i32 = 2;
    /// int8
    pub const INT8: i32 = 3;
    /// uint16
    pub const UINT16: i32 = 4;
    /// int16
    pub const INT16: i32 = 5;
    /// int32
    pub const INT32: i32 = 6;
    /// int64
    pub const INT64: i32 = 7;
    /// bool
    pub const BOOL: i32 = 9;
    /// float64
    pub const DOUBLE: i32 = 11;

    /// The ONNX name of an element type, for messages.
    pub fn name(t: i32) -> &'static str {
        const NAMES: [&str; 24] = [
            "undefined",
            "float",
            "uint8",
            "int8",
            "uint16",
            "int16",
            "int32",
            "int64",
            "string",
            "bool",
            "float16",
            "double",
            "uint32",
            "uint64",
            "complex64",
            "complex128",
            "bfloat16",
            "float8e4m3fn",
            "float8e4m3fnuz",
            "float8e5m2",
            "float8e5m2fnuz",
            "uint4",
            "int4",
            "float4e2m1",
        ];
        usize::try_from(t).ok().and_then(|i| NAMES.get(i)).copied().unwrap_or("unknown")
    }
}

/// The most elements a constant the importer creates (folds, fills, ranges, added biases) may have:
/// a bound on what a malformed model can make it allocate.
pub const MAX_CREATED_ELEMS: usize = 1 << 26;

/// The element count of `shape`, or why it is not a sane size (it overflows).
pub fn numel(shape: &[usize]) -> Result<usize, String> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(|| format!("shape {shape:?} is too large"))
}

/// Checks that a tensor of `n` elements may be created: at most [`MAX_CREATED_ELEMS`], and at most
/// a quarter of the memory budget (`--max-memory`, `distk_engine::memory`).
pub fn check_len(n: usize) -> Result<usize, String> {
    if n > MAX_CREATED_ELEMS {
        return Err(format!("a tensor of {n} elements is larger than the importer creates ({MAX_CREATED_ELEMS})"));
    }
    let budget = distk_engine::memory::budget();
    if (n as u64).saturating_mul(16) > budget {
        return Err(format!(
            "a tensor of {n} elements takes more than a quarter of the memory budget of {} MiB (--max-memory)",
            budget >> 20
        ));
    }
    Ok(n)
}

/// The element count of a tensor of `shape` about to be created, checked like [`check_len`].
pub fn created_numel(shape: &[usize]) -> Result<usize, String> {
    check_len(numel(shape)?)
}

/// A constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstTensor {
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub data: Vec<f64>,
    /// True for floating-point element types (arithmetic is then not truncated).
    pub is_float: bool,
}

impl ConstTensor {
    /// A scalar.
    pub fn scalar(v: f64, is_float: bool) -> Self {
        ConstTensor { shape: vec![], data: vec![v], is_float }
    }

    /// A 1-d integer tensor.
    pub fn ints(v: &[i64]) -> Self {
        ConstTensor { shape: vec![v.len()], data: v.iter().map(|&x| x as f64).collect(), is_float: false }
    }

    /// The values as i64 (saturating).
    pub fn as_i64(&self) -> Vec<i64> {
        self.data.iter().map(|&x| x as i64).collect()
    }

    /// The values as f32.
    pub fn as_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&x| x as f32).collect()
    }

    /// Decodes an ONNX TensorProto (raw or typed fields). Errors name the tensor.
    pub fn from_proto(t: &pb::TensorProto) -> Result<Self, String> {
        let shape: Vec<usize> = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("tensor `{}` has negative dim {d}", t.name)))
            .collect::<Result<_, _>>()?;
        let n = numel(&shape)?;
        if t.data_location == Some(1) || !t.external_data.is_empty() {
            return Err(format!(
                "tensor `{}` stores its data in an external file; save the model with its weights inside (onnx.save(..., save_as_external_data=False))",
                t.name
            ));
        }
        let raw = &t.raw_data;
        let (data, is_float): (Vec<f64>, bool) = match t.data_type {
            elem::FLOAT => (
                if raw.is_empty() {
                    t.float_data.iter().map(|&x| x as f64).collect()
                } else {
                    raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect()
                },
                true,
            ),
            elem::DOUBLE => (
                if raw.is_empty() {
                    t.double_data.clone()
                } else {
                    raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()
                },
                true,
            ),
            elem::INT64 => (
                if raw.is_empty() {
                    t.int64_data.iter().map(|&x| x as f64).collect()
                } else {
                    raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64).collect()
                },
                false,
            ),
            elem::INT32 => (
                if raw.is_empty() {
                    t.int32_data.iter().map(|&x| x as f64).collect()
                } else {
                    raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect()
                },
                false,
            ),
            elem::INT8 | elem::UINT8 | elem::BOOL => (
                if raw.is_empty() {
                    t.int32_data.iter().map(|&x| x as f64).collect()
                } else if t.data_type == elem::INT8 {
                    raw.iter().map(|&b| b as i8 as f64).collect()
                } else {
                    raw.iter().map(|&b| b as f64).collect()
                },
                false,
            ),
            other => return Err(format!("tensor `{}` has element type {other}, which is not supported", t.name)),
        };
        if data.len() != n {
            return Err(format!("tensor `{}` holds {} values for shape {shape:?}", t.name, data.len()));
        }
        Ok(ConstTensor { shape, data, is_float })
    }
}
