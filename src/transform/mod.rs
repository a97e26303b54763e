//! dist-keras' transformers (seed spec §2.4) as steps over Arrow record batches: each reads one
//! column and appends another, keeping every column, as dist-keras' `transform(dataframe)` does.
//! Steps are written `KIND:INPUT:OUTPUT[:key=value,...]` (`--transform`, `distk-gpu transform
//! --step`), e.g. `min-max:features:features_n:o_max=16` or `one-hot:label:label_1h:output_dim=10`.
//!
//! The documented bugs of the originals are fixed, each said in its step's file.

pub mod binary_label;
pub mod dense;
pub mod label_index;
pub mod min_max;
pub mod one_hot;
pub mod reshape;
pub mod standard;
pub mod values;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use thiserror::Error;

use crate::data::columns::CellError;

/// A step that cannot be parsed or cannot apply to its input column's type.
#[derive(Debug, Error)]
#[error("transform `{step}`: {message}")]
pub struct StepError {
    /// The step as written.
    pub step: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    /// Class index to a one-hot list (`output_dim`).
    OneHot(one_hot::OneHot),
    /// A linear map of `[o_min, o_max]` onto `[n_min, n_max]`.
    MinMax(min_max::MinMax),
    /// `(x - mean) / std`, per element; mean and population std from a first pass unless given.
    Standard(standard::Standard),
    /// A flat row to nested lists of `shape`.
    Reshape(reshape::Reshape),
    /// Spark ML vectors (sparse or dense) or lists to dense `list<float32>`.
    Dense,
    /// Scores to a class index (dist-keras' threshold rule, or plain argmax).
    LabelIndex(label_index::LabelIndex),
    /// `[1, 0]` where the value equals `label`, else `[0, 1]`.
    BinaryLabel(binary_label::BinaryLabel),
}

/// One step: a kind, the column it reads and the column it appends.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// What it does.
    pub kind: StepKind,
    /// The column read.
    pub input: String,
    /// The column appended.
    pub output: String,
    /// The step as written, for messages.
    pub text: String,
}

/// Parses `key=value,...` into a map; a key given twice is refused.
fn parse_args(text: &str, args: &str) -> Result<BTreeMap<String, String>, StepError> {
    let mut map = BTreeMap::new();
    for kv in args.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(StepError { step: text.into(), message: format!("`{kv}` is not key=value") });
        };
        if map.insert(k.trim().to_string(), v.trim().to_string()).is_some() {
            return Err(StepError { step: text.into(), message: format!("`{k}` is given twice") });
        }
    }
    Ok(map)
}

/// The arguments of one step, taken one by one; what is left at the end is refused.
pub struct StepArgs {
    text: String,
    map: BTreeMap<String, String>,
}

impl StepArgs {
    fn error(&self, message: String) -> StepError {
        StepError { step: self.text.clone(), message }
    }

    /// A number argument, or `default` when absent.
    pub fn number(&mut self, key: &str, default: Option<f64>) -> Result<f64, StepError> {
        match self.map.remove(key) {
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| self.error(format!("{key}={v} is not a finite number"))),
            None => default.ok_or_else(|| self.error(format!("needs {key}=..."))),
        }
    }

    /// An optional list of numbers separated by `;` (`mean=0.5;1.5`).
    pub fn numbers(&mut self, key: &str) -> Result<Option<Vec<f64>>, StepError> {
        let Some(v) = self.map.remove(key) else { return Ok(None) };
        v.split(';')
            .map(|x| x.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| self.error(format!("{key}={v} is not a `;`-separated list of finite numbers")))
    }

    /// A positive integer argument.
    pub fn count(&mut self, key: &str) -> Result<usize, StepError> {
        let v = self.map.remove(key).ok_or_else(|| self.error(format!("needs {key}=...")))?;
        v.parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| self.error(format!("{key}={v} is not a positive integer")))
    }

    /// A text argument.
    pub fn text(&mut self, key: &str) -> Option<String> {
        self.map.remove(key)
    }

    fn finish(self) -> Result<(), StepError> {
        match self.map.keys().next() {
            Some(k) => Err(self.error(format!("unknown argument `{k}`"))),
            None => Ok(()),
        }
    }
}

impl Step {
    /// Parses `KIND:INPUT:OUTPUT[:key=value,...]`.
    pub fn parse(text: &str) -> Result<Step, StepError> {
        let fields: Vec<&str> = text.splitn(4, ':').collect();
        let err = |message: String| StepError { step: text.to_string(), message };
        if fields.len() < 3 || fields[1].trim().is_empty() || fields[2].trim().is_empty() {
            return Err(err(
                "write KIND:INPUT:OUTPUT[:key=value,...], e.g. min-max:features:features_n:o_max=16 (kinds: one-hot, min-max, standard, reshape, dense, label-index, binary-label)".into(),
            ));
        }
        let (input, output) = (fields[1].trim().to_string(), fields[2].trim().to_string());
        if input == output {
            return Err(err(format!("the output column must differ from the input `{input}` (steps append a column)")));
        }
        let mut args =
            StepArgs { text: text.to_string(), map: parse_args(text, fields.get(3).copied().unwrap_or(""))? };
        let kind = match fields[0].trim() {
            "one-hot" => StepKind::OneHot(one_hot::OneHot::parse(&mut args)?),
            "min-max" => StepKind::MinMax(min_max::MinMax::parse(&mut args)?),
            "standard" => StepKind::Standard(standard::Standard::parse(&mut args)?),
            "reshape" => StepKind::Reshape(reshape::Reshape::parse(&mut args)?),
            "dense" => StepKind::Dense,
            "label-index" => StepKind::LabelIndex(label_index::LabelIndex::parse(&mut args)?),
            "binary-label" => StepKind::BinaryLabel(binary_label::BinaryLabel::parse(&mut args)?),
            other => {
                return Err(err(format!(
                    "unknown kind `{other}`; kinds: one-hot, min-max, standard, reshape, dense, label-index, binary-label"
                )));
            }
        };
        args.finish()?;
        Ok(Step { kind, input, output, text: text.to_string() })
    }

    /// The type of the appended column for an input of type `input`.
    pub fn output_type(&self, input: &DataType) -> Result<DataType, StepError> {
        let err = |message: String| StepError { step: self.text.clone(), message };
        let shape = crate::data::columns::column_shape(input);
        let scalar = matches!(shape, Some(crate::data::columns::ColumnShape::Scalar));
        let rows = matches!(
            shape,
            Some(crate::data::columns::ColumnShape::List | crate::data::columns::ColumnShape::SparkVector)
        );
        let need = |ok: bool, what: &str| -> Result<(), StepError> {
            if ok { Ok(()) } else { Err(err(format!("column `{}` has type {input}; {what}", self.input))) }
        };
        match &self.kind {
            StepKind::OneHot(_) | StepKind::BinaryLabel(_) => {
                need(scalar, "it needs one number per row")?;
                Ok(values::float_list_type())
            }
            StepKind::MinMax(_) | StepKind::Standard(_) => {
                need(scalar || rows, "it needs numbers, a list or a vector")?;
                Ok(if scalar { DataType::Float64 } else { values::float_list_type() })
            }
            StepKind::Dense => {
                need(rows, "it needs a list or a vector")?;
                Ok(values::float_list_type())
            }
            StepKind::Reshape(r) => {
                need(rows, "it needs a list or a vector")?;
                Ok(r.output_type())
            }
            StepKind::LabelIndex(_) => {
                need(rows, "it needs a list or a vector of scores")?;
                Ok(DataType::Float64)
            }
        }
    }

    /// The step as written, with a fitted `standard` step's mean and std spelled out (exact:
    /// shortest round-trip decimals), so that it can be given again (`--transform`).
    pub fn to_text(&self) -> String {
        match &self.kind {
            StepKind::Standard(standard::Standard { mean: Some(m), std: Some(s) }) => {
                let join = |v: &[f64]| v.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(";");
                format!("standard:{}:{}:mean={},std={}", self.input, self.output, join(m), join(s))
            }
            _ => self.text.clone(),
        }
    }

    /// The appended column for `input`.
    pub fn apply(&self, input: &dyn arrow_array::Array) -> Result<ArrayRef, CellError> {
        match &self.kind {
            StepKind::OneHot(s) => s.apply(input),
            StepKind::MinMax(s) => s.apply(input),
            StepKind::Standard(s) => s.apply(input),
            StepKind::Reshape(s) => s.apply(input),
            StepKind::Dense => dense::apply(input),
            StepKind::LabelIndex(s) => s.apply(input),
            StepKind::BinaryLabel(s) => s.apply(input),
        }
    }
}

/// Steps applied in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transforms(pub Vec<Step>);

impl Transforms {
    /// Parses every `--transform` given; an output named twice is refused.
    pub fn parse(texts: &[String]) -> Result<Transforms, StepError> {
        let steps = texts.iter().map(|t| Step::parse(t)).collect::<Result<Vec<_>, _>>()?;
        for (i, s) in steps.iter().enumerate() {
            if steps[..i].iter().any(|p| p.output == s.output) {
                return Err(StepError {
                    step: s.text.clone(),
                    message: format!("column `{}` is made twice", s.output),
                });
            }
        }
        Ok(Transforms(steps))
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The columns of the source that reading `wanted` needs: those of `wanted` no step makes,
    /// and every step's input no earlier step makes (every step runs on every batch).
    pub fn sources_of(&self, wanted: &[String]) -> Vec<String> {
        let made_before = |i: usize, name: &str| self.0[..i].iter().any(|s| s.output == name);
        let mut need: Vec<String> = Vec::new();
        for (i, step) in self.0.iter().enumerate() {
            if !made_before(i, &step.input) && !need.contains(&step.input) {
                need.push(step.input.clone());
            }
        }
        for w in wanted {
            if !self.0.iter().any(|s| &s.output == w) && !need.contains(w) {
                need.push(w.clone());
            }
        }
        need
    }

    /// The schema after the steps, checking each step's input exists with a type it takes.
    pub fn output_schema(&self, schema: &Schema) -> Result<Arc<Schema>, StepError> {
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        for step in &self.0 {
            let Some(input) = fields.iter().find(|f| f.name() == &step.input) else {
                let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
                return Err(StepError {
                    step: step.text.clone(),
                    message: format!("there is no column `{}` (columns: {})", step.input, names.join(", ")),
                });
            };
            if fields.iter().any(|f| f.name() == &step.output) {
                return Err(StepError {
                    step: step.text.clone(),
                    message: format!("column `{}` exists already; name the output otherwise", step.output),
                });
            }
            let dt = step.output_type(input.data_type())?;
            fields.push(Arc::new(Field::new(&step.output, dt, false)));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// `batch` with every step's column appended. Errors name the step's input column.
    pub fn apply(&self, batch: RecordBatch) -> Result<RecordBatch, (String, CellError)> {
        if self.0.is_empty() {
            return Ok(batch);
        }
        let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for step in &self.0 {
            let Some(i) = fields.iter().position(|f| f.name() == &step.input) else {
                return Err((step.input.clone(), CellError { row: None, message: "is missing".into() }));
            };
            let out = step.apply(columns[i].as_ref()).map_err(|e| (step.input.clone(), e))?;
            fields.push(Arc::new(Field::new(&step.output, out.data_type().clone(), false)));
            columns.push(out);
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| (String::new(), CellError { row: None, message: e.to_string() }))
    }

    /// Every step as text ([`Step::to_text`]).
    pub fn texts(&self) -> Vec<String> {
        self.0.iter().map(Step::to_text).collect()
    }

    /// The `standard` steps without a given mean and std, by index.
    pub fn unfitted(&self) -> Vec<usize> {
        (0..self.0.len()).filter(|&i| matches!(&self.0[i].kind, StepKind::Standard(s) if !s.is_fitted())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_and_bad_ones_say_how_to_write_them() {
        let s = Step::parse("min-max:features:features_n:o_max=16").unwrap();
        assert_eq!((s.input.as_str(), s.output.as_str()), ("features", "features_n"));
        for (text, needle) in [
            ("min-max:features", "write KIND:INPUT:OUTPUT"),
            ("scale:a:b", "unknown kind `scale`"),
            ("one-hot:label:l2", "needs output_dim=..."),
            ("one-hot:label:l2:output_dim=0", "not a positive integer"),
            ("one-hot:label:l2:output_dim=3,bogus=1", "unknown argument `bogus`"),
            ("min-max:a:a", "must differ"),
            ("min-max:a:b:o_max=x", "o_max=x is not a finite number"),
            ("one-hot:l:o:output_dim=99999999", "more classes than a model can have"),
            ("reshape:a:b:shape=100000x100000", "more than 2147483647 values per row"),
        ] {
            let e = Step::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let e = Transforms::parse(&["dense:a:b".into(), "dense:c:b".into()]).unwrap_err().to_string();
        assert!(e.contains("made twice"), "{e}");
    }

    #[test]
    fn sources_follow_the_steps_back() {
        let t = Transforms::parse(&[
            "dense:features:fd".into(),
            "min-max:fd:fn:o_max=16".into(),
            "one-hot:label:l1:output_dim=10".into(),
        ])
        .unwrap();
        let mut s = t.sources_of(&["fn".into(), "l1".into()]);
        s.sort();
        assert_eq!(s, vec!["features", "label"]);
    }
}
