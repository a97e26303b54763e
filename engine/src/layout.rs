//! The flat parameter layout: every parameter tensor at an offset aligned to 256 bytes, in the order
//! the model declares them. The layout is the same on every adapter, on the wire and in checkpoints.

/// Alignment of every parameter tensor's offset, in bytes.
pub const PARAM_ALIGN_BYTES: usize = 256;

const ALIGN_ELEMS: usize = PARAM_ALIGN_BYTES / std::mem::size_of::<f32>();

/// Where one parameter tensor sits.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSlot {
    /// The tensor's name (the ONNX initializer name).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Offset in f32 elements from the buffer's start (a multiple of 64).
    pub offset: usize,
    /// Number of elements.
    pub len: usize,
    /// Whether an optimizer updates it (false for state such as BatchNorm running statistics).
    pub trainable: bool,
}

/// The layout of all parameters in one flat f32 buffer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamLayout {
    /// The slots, in declaration order.
    pub slots: Vec<ParamSlot>,
}

impl ParamLayout {
    /// Appends a tensor and returns its slot index.
    pub fn push(&mut self, name: &str, shape: Vec<usize>, trainable: bool) -> usize {
        let offset = self.total_len();
        let len = shape.iter().product();
        self.slots.push(ParamSlot { name: name.to_string(), shape, offset, len, trainable });
        self.slots.len() - 1
    }

    /// Lays the slots out again: trainable tensors first, then state, each group in declaration
    /// order, every offset aligned.
    pub fn assign_offsets(&mut self) {
        let mut at = 0;
        for trainable in [true, false] {
            for s in self.slots.iter_mut().filter(|s| s.trainable == trainable) {
                s.offset = at;
                at = (at + s.len).div_ceil(ALIGN_ELEMS) * ALIGN_ELEMS;
            }
        }
    }

    /// Length of the flat buffer in elements (the end of the last tensor, rounded up to the alignment).
    pub fn total_len(&self) -> usize {
        self.slots.iter().map(|s| (s.offset + s.len).div_ceil(ALIGN_ELEMS) * ALIGN_ELEMS).max().unwrap_or(0)
    }

    /// Length of the trainable prefix of the flat buffer, in elements.
    pub fn trainable_len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.trainable)
            .map(|s| (s.offset + s.len).div_ceil(ALIGN_ELEMS) * ALIGN_ELEMS)
            .max()
            .unwrap_or(0)
    }

    /// Number of parameter values (without padding).
    pub fn value_count(&self) -> usize {
        self.slots.iter().map(|s| s.len).sum()
    }

    /// The slot of a tensor by name.
    pub fn find(&self, name: &str) -> Option<&ParamSlot> {
        self.slots.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_aligned_to_256_bytes() {
        let mut l = ParamLayout::default();
        l.push("w", vec![3, 5], true);
        l.push("b", vec![5], true);
        l.push("c", vec![64], false);
        let offs: Vec<usize> = l.slots.iter().map(|s| s.offset).collect();
        assert_eq!(offs, vec![0, 64, 128]);
        assert_eq!(l.total_len(), 192);
        assert_eq!(l.value_count(), 84);
    }

    #[test]
    fn trainable_tensors_come_first() {
        let mut l = ParamLayout::default();
        l.push("state", vec![10], false);
        l.push("w", vec![70], true);
        l.push("b", vec![5], true);
        l.assign_offsets();
        let offs: Vec<usize> = l.slots.iter().map(|s| s.offset).collect();
        assert_eq!(offs, vec![192, 0, 128]);
        assert_eq!(l.trainable_len(), 192);
        assert_eq!(l.total_len(), 256);
    }
}
