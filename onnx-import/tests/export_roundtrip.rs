//! Trained values written back into the original bytes: everything outside the initializers'
//! data stays byte-identical (IR 10 torch files included), and tract reads the new values.

use std::collections::HashMap;
use std::path::PathBuf;

use distk_onnx::export::{bytes_outside_initializer_data, replace_initializers};
use distk_onnx::{OnnxModel, import};

fn model(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/models").join(name)
}

#[test]
fn rewritten_models_keep_every_other_byte_and_carry_the_new_values() {
    for name in ["keras_mlp.onnx", "keras_cnn.stock.onnx", "torch_mlp.onnx"] {
        let m = OnnxModel::load(&model(name)).unwrap();
        let g = import(&m, 1).unwrap().graph;
        let mut values = HashMap::new();
        for (i, s) in g.layout.slots.iter().enumerate() {
            values.insert(s.name.clone(), (0..s.len).map(|k| (k + i) as f32 * 0.001).collect::<Vec<f32>>());
        }
        let out = replace_initializers(&m.bytes, &values).unwrap();
        assert_eq!(
            bytes_outside_initializer_data(&out).unwrap(),
            bytes_outside_initializer_data(&m.bytes).unwrap(),
            "{name}"
        );
        let back = OnnxModel::from_bytes(out, name).unwrap();
        let g2 = import(&back, 1).unwrap().graph;
        for s in &g2.layout.slots {
            assert_eq!(
                &g2.initial_params[s.offset..s.offset + s.len],
                values[&s.name].as_slice(),
                "{name}: {}",
                s.name
            );
        }
        // Unchanged values give back the very same file.
        let same: HashMap<String, Vec<f32>> = HashMap::new();
        assert_eq!(replace_initializers(&m.bytes, &same).unwrap(), m.bytes, "{name}");
    }
}
