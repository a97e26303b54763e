//! The predictions file: one row per input row, `prediction` (list<float32>, the model output) and
//! `predicted_class` (int64: the argmax, or output > 0.5 for a single output).

use std::fs::File;
use std::sync::Arc;

use anyhow::Result;
use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;

/// The class a model output row predicts.
pub fn predicted_class(row: &[f32]) -> i64 {
    if row.len() == 1 {
        return (row[0] > 0.5) as i64;
    }
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as i64
}

/// Streams prediction batches into a Parquet file.
pub struct PredictionWriter<'a> {
    writer: ArrowWriter<&'a mut File>,
    schema: Arc<Schema>,
}

impl<'a> PredictionWriter<'a> {
    /// Starts a file.
    pub fn new(file: &'a mut File) -> Result<Self> {
        let item = Field::new("element", DataType::Float32, false);
        let schema = Arc::new(Schema::new(vec![
            Field::new("prediction", DataType::List(Arc::new(item)), false),
            Field::new("predicted_class", DataType::Int64, false),
        ]));
        Ok(PredictionWriter { writer: ArrowWriter::try_new(file, schema.clone(), None)?, schema })
    }

    /// Appends `rows` rows of `width` outputs each.
    pub fn write(&mut self, outputs: &[f32], width: usize) -> Result<()> {
        let item = Field::new("element", DataType::Float32, false);
        let mut list = ListBuilder::new(Float32Builder::new()).with_field(Arc::new(item));
        let mut classes = Vec::with_capacity(outputs.len() / width.max(1));
        for row in outputs.chunks(width.max(1)) {
            list.values().append_slice(row);
            list.append(true);
            classes.push(predicted_class(row));
        }
        let cols: Vec<ArrayRef> = vec![Arc::new(list.finish()), Arc::new(Int64Array::from(classes))];
        self.writer.write(&RecordBatch::try_new(self.schema.clone(), cols)?)?;
        Ok(())
    }

    /// Finishes the file.
    pub fn finish(self) -> Result<()> {
        self.writer.close()?;
        Ok(())
    }
}
