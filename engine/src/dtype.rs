//! Element types of values, and the typed tensors the executors take as inputs.
//!
//! Every type is *stored* as f32 on both executors (and as f64 in the CPU executor's gradient
//! checks): integers and booleans are exact there within ±2^24 ([`MAX_EXACT_INT`]), which holds
//! every token id of a real vocabulary, every shape, index and count of a model that fits a GPU.
//! A value outside that range is refused where it enters (graph inputs, constants) instead of
//! being rounded. `docs/design-notes.md` says why the engine does not keep integer buffers.

use std::borrow::Cow;

use crate::error::{EngineError, Result};

/// The largest magnitude an integer value may have (2^24: every integer up to it is an f32).
pub const MAX_EXACT_INT: f64 = 16_777_216.0;

/// The element type of a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float.
    #[default]
    F32,
    /// 64-bit signed integer (ONNX's index and shape type).
    I64,
    /// 32-bit signed integer.
    I32,
    /// Boolean, stored as 0 or 1.
    Bool,
}

impl DType {
    /// Whether the type is a float (the only kind gradients flow through).
    pub fn is_float(self) -> bool {
        self == DType::F32
    }

    /// The type's name as numpy spells it.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::I64 => "int64",
            DType::I32 => "int32",
            DType::Bool => "bool",
        }
    }

    /// Whether `x` is a value of this type that the f32 storage holds exactly.
    pub fn holds(self, x: f64) -> bool {
        match self {
            DType::F32 => true,
            DType::I64 | DType::I32 => x.fract() == 0.0 && x.abs() <= MAX_EXACT_INT,
            DType::Bool => x == 0.0 || x == 1.0,
        }
    }
}

/// A typed tensor handed to an executor: its elements in the input's shape.
#[derive(Clone, Copy, Debug)]
pub enum TensorRef<'a> {
    /// float32 elements.
    F32(&'a [f32]),
    /// int64 elements.
    I64(&'a [i64]),
    /// int32 elements.
    I32(&'a [i32]),
    /// Booleans.
    Bool(&'a [bool]),
}

impl<'a> TensorRef<'a> {
    /// The tensor's element type.
    pub fn dtype(&self) -> DType {
        match self {
            TensorRef::F32(_) => DType::F32,
            TensorRef::I64(_) => DType::I64,
            TensorRef::I32(_) => DType::I32,
            TensorRef::Bool(_) => DType::Bool,
        }
    }

    /// Its element count.
    pub fn len(&self) -> usize {
        match self {
            TensorRef::F32(x) => x.len(),
            TensorRef::I64(x) => x.len(),
            TensorRef::I32(x) => x.len(),
            TensorRef::Bool(x) => x.len(),
        }
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as the executors store them (f32), for an input `name` of type `want`: the
    /// types must match, except that a float tensor may feed an integer or boolean input when
    /// every element is one (token ids read from a float column). Integers beyond ±2^24 are refused.
    pub fn to_storage(&self, name: &str, want: DType) -> Result<Cow<'a, [f32]>> {
        let wrong = || {
            EngineError::BadInput(format!(
                "input `{name}` is {}, {} given: convert the column to {} (or cast it in the model)",
                want.name(),
                self.dtype().name(),
                want.name()
            ))
        };
        let out: Cow<'a, [f32]> = match (*self, want) {
            (TensorRef::F32(x), _) => Cow::Borrowed(x),
            (TensorRef::I64(x), DType::I64 | DType::I32) => {
                exact_ints(name, x.iter().map(|&v| v as f64))?;
                Cow::Owned(x.iter().map(|&v| v as f32).collect())
            }
            (TensorRef::I32(x), DType::I64 | DType::I32) => {
                exact_ints(name, x.iter().map(|&v| f64::from(v)))?;
                Cow::Owned(x.iter().map(|&v| v as f32).collect())
            }
            (TensorRef::Bool(x), DType::Bool) => Cow::Owned(x.iter().map(|&v| f32::from(u8::from(v))).collect()),
            _ => return Err(wrong()),
        };
        check_values(|| name.to_string(), want, &out)?;
        Ok(out)
    }
}

/// Refuses integers the f32 storage would round.
fn exact_ints(name: &str, mut values: impl Iterator<Item = f64>) -> Result<()> {
    match values.position(|v| v.abs() > MAX_EXACT_INT) {
        Some(i) => Err(EngineError::BadInput(format!(
            "input `{name}`: element {i} is beyond ±2^24 (16,777,216), the largest integer the engine holds exactly"
        ))),
        None => Ok(()),
    }
}

/// Checks that every element of `data` (f32 storage, or the CPU executor's f64) is a value of
/// `dtype` the storage holds exactly; `name` (for the message) is built only on an error, so the
/// check costs nothing for float values and allocates nothing on a training step.
pub fn check_values<T: Copy + Into<f64>>(name: impl FnOnce() -> String, dtype: DType, data: &[T]) -> Result<()> {
    if dtype.is_float() {
        return Ok(());
    }
    match data.iter().position(|&x| !dtype.holds(x.into())) {
        None => Ok(()),
        Some(i) => Err(EngineError::BadInput(format!(
            "`{}` is {}, but element {i} is {}: {}",
            name(),
            dtype.name(),
            data[i].into(),
            match dtype {
                DType::Bool => "booleans are 0 or 1",
                _ => "integers must be whole and within ±2^24 (16,777,216)",
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_inputs_convert_or_are_refused_with_the_reason() {
        let ids = [3i64, -2, 16_777_216];
        assert_eq!(TensorRef::I64(&ids).to_storage("ids", DType::I64).unwrap().as_ref(), &[3.0, -2.0, 16_777_216.0]);
        let big = [16_777_217i64];
        assert!(TensorRef::I64(&big).to_storage("ids", DType::I64).is_err());
        assert!(TensorRef::F32(&[1.5]).to_storage("ids", DType::I64).unwrap_err().to_string().contains("whole"));
        assert_eq!(TensorRef::F32(&[7.0]).to_storage("ids", DType::I64).unwrap().as_ref(), &[7.0]);
        assert_eq!(TensorRef::Bool(&[true, false]).to_storage("m", DType::Bool).unwrap().as_ref(), &[1.0, 0.0]);
        let e = TensorRef::I64(&ids).to_storage("x", DType::F32).unwrap_err().to_string();
        assert!(e.contains("input `x` is float32, int64 given"), "{e}");
    }
}
