//! The predictions file: one row per input row, the kept input columns, `prediction` (list<float32>, the model output) and
//! `predicted_class` (int64: the argmax, or output > 0.5 for a single output).

use std::sync::Arc;

use anyhow::Result;
use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

/// The class a model output row predicts: the argmax (the first of equals), or for one output
/// whether it is above 0.5 (a probability).
pub fn predicted_class(row: &[f32]) -> i64 {
    predicted_class_at(row, 0.5)
}

/// [`predicted_class`] with the one-output threshold given: 0.5 for a probability, 0 for a logit.
pub fn predicted_class_at(row: &[f32], threshold: f32) -> i64 {
    if row.len() == 1 {
        return (row[0] > threshold) as i64;
    }
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as i64
}

/// A batch of predictions: the kept input columns (`keep`, passed through), then `prediction`
/// (list<float32>) and `predicted_class` (int64), for `rows` rows of `width` outputs.
pub fn prediction_batch(keep: &RecordBatch, outputs: &[f32], width: usize, threshold: f32) -> Result<RecordBatch> {
    let item = Arc::new(Field::new("element", DataType::Float32, false));
    let mut list = ListBuilder::new(Float32Builder::new()).with_field(item.clone());
    let mut classes = Vec::with_capacity(outputs.len() / width.max(1));
    for row in outputs.chunks(width.max(1)) {
        list.values().append_slice(row);
        list.append(true);
        classes.push(predicted_class_at(row, threshold));
    }
    let mut fields: Vec<Arc<Field>> = keep.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new("prediction", DataType::List(item), false)));
    fields.push(Arc::new(Field::new("predicted_class", DataType::Int64, false)));
    let mut cols: Vec<ArrayRef> = keep.columns().to_vec();
    cols.push(Arc::new(list.finish()));
    cols.push(Arc::new(Int64Array::from(classes)));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// The one-output threshold of `model`: 0.5 when it ends in a Sigmoid (its output is a
/// probability), 0 otherwise (a logit, as PyTorch's binary models end).
pub fn single_output_threshold(model: &distk_onnx::OnnxModel) -> f32 {
    let g = model.graph();
    let last = g.output.first().and_then(|out| g.node.iter().find(|n| n.output.contains(&out.name)));
    if last.is_some_and(|n| n.op_type == "Sigmoid") { 0.5 } else { 0.0 }
}
