//! A labelled dataset held in memory once, decoded (features as f32, labels as class indices), for
//! training with shuffling. Parquet is read row group by row group, so nothing is held twice.

use std::path::Path;

use anyhow::{Result, bail};

use crate::data::reader::ReadOptions;
use crate::data::{DataReader, FeatureColumns};
use crate::transform::Transforms;

/// Which columns a labelled dataset is read from, and the steps applied as it is read.
#[derive(Clone, Debug)]
pub struct DataColumns {
    /// The features column(s).
    pub features: FeatureColumns,
    /// The label column.
    pub label: String,
    /// Steps applied to every batch (fitted).
    pub transforms: Transforms,
    /// A scalar label is a regression target (MSE/MAE losses), not a class index.
    pub regression: bool,
}

impl DataColumns {
    /// Features and label without steps.
    pub fn plain(features: &str, label: &str) -> Self {
        DataColumns {
            features: FeatureColumns::parse(features),
            label: label.to_string(),
            transforms: Transforms::default(),
            regression: false,
        }
    }
}

/// Rows of features with integer class labels.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Row-major features.
    pub features: Vec<f32>,
    /// One class index per row as f32 (`label_width` 1), or a row of targets (one-hot lists).
    pub labels: Vec<f32>,
    /// Values per row in `labels`.
    pub label_width: usize,
    /// Number of rows.
    pub rows: usize,
    /// Whether `labels` are class indices (else targets: one-hot, soft or regression).
    pub sparse_labels: bool,
    /// Features per row.
    pub width: usize,
}

impl Dataset {
    /// The Keras loss to use when none is given: sparse cross-entropy for integer labels
    /// (binary for a single output), categorical cross-entropy for one-hot lists.
    pub fn default_loss(&self, outputs: usize) -> &'static str {
        default_loss(self.label_width, outputs)
    }

    /// Whether labels are class indices.
    pub fn sparse(&self) -> bool {
        self.sparse_labels
    }

    /// Reads every row of `path`. Checks the width against the model (`expect_width`) and every
    /// label against the model's `classes` (for a single sigmoid output, labels must be 0 or 1).
    pub fn load(path: &Path, columns: &DataColumns, expect_width: usize, classes: usize) -> Result<Self> {
        if !columns.transforms.unfitted().is_empty() {
            bail!("internal: standard steps must be fitted before the data is loaded");
        }
        let label = columns.label.as_str();
        let options = ReadOptions {
            batch: 4096,
            transforms: columns.transforms.clone(),
            label_as_targets: columns.regression,
            ..Default::default()
        };
        let mut reader = DataReader::open_with(path, &columns.features, Some(label), options)?;
        let mut ds = Dataset { width: expect_width, ..Default::default() };
        let total = reader.total_rows();
        while let Some(mut rows) = reader.next_rows()? {
            let (y, label_width, sparse) = checked_labels(&reader, &mut rows, label, expect_width, classes)?;
            if ds.rows == 0
                && let Some(n) = total
            {
                // Sizes from a file's footer, reserved once the first rows have the model's width
                // (a model declaring a huge input is refused by that check, not by an allocation),
                // and only where the memory is there.
                let _ = n.checked_mul(expect_width).map(|v| ds.features.try_reserve(v));
                let _ = n.checked_mul(y.len() / rows.count.max(1)).map(|v| ds.labels.try_reserve(v));
            }
            if ds.rows > 0 && (label_width, sparse) != (ds.label_width, ds.sparse_labels) {
                bail!(
                    "{} column `{label}` holds labels of another form (class indices or target lists) than the parts before it",
                    reader.parts()[rows.part].display()
                );
            }
            ds.label_width = label_width;
            ds.sparse_labels = sparse;
            // Rows held in memory stay within half the memory budget (the model takes the rest).
            let held = ((ds.features.len() + rows.features.len() + ds.labels.len() + y.len()) as u64).saturating_mul(4);
            let limit = distk_engine::memory::budget() / 2;
            if held > limit {
                let size = if limit < 1 << 20 {
                    format!("{:.1} KiB", limit as f64 / 1024.0)
                } else {
                    format!("{:.1} MiB", limit as f64 / f64::from(1 << 20))
                };
                bail!(
                    "`{}` needs more than {size} in memory, half the memory budget (--max-memory): raise --max-memory, or give training data as Parquet (its row groups stream)",
                    path.display()
                );
            }
            ds.features.extend_from_slice(&rows.features);
            ds.labels.extend_from_slice(&y);
            ds.rows += rows.count;
        }
        if ds.rows == 0 {
            bail!("`{}` has no rows", path.display());
        }
        Ok(ds)
    }

    /// Gathers the rows `idx` into `x` (features) and `y` (labels).
    pub fn gather(&self, idx: &[usize], x: &mut Vec<f32>, y: &mut Vec<f32>) {
        x.clear();
        y.clear();
        let lw = self.label_width;
        for &i in idx {
            x.extend_from_slice(&self.features[i * self.width..(i + 1) * self.width]);
            y.extend_from_slice(&self.labels[i * lw..(i + 1) * lw]);
        }
    }
}

/// Checks a batch against the model (its width, the labels' classes or the targets' count) and
/// returns its labels as f32 rows, values per row, and whether they are class indices.
pub fn checked_labels(
    reader: &DataReader,
    rows: &mut crate::data::Rows,
    label: &str,
    expect_width: usize,
    classes: usize,
) -> Result<(Vec<f32>, usize, bool)> {
    if rows.width != expect_width {
        bail!(
            "input width {} (in {}) does not match the model's input ({expect_width} values per row); check --features-col or the model",
            rows.width,
            reader.parts()[rows.part].display()
        );
    }
    if let Some(t) = rows.targets.take() {
        if rows.target_width != classes {
            bail!(
                "{} column `{label}`: {} target value(s) per row, but the model has {classes} outputs: choose a loss that fits the labels (MSE/MAE take one target per output; class indices take a cross-entropy)",
                reader.parts()[rows.part].display(),
                rows.target_width
            );
        }
        return Ok((t, classes, false));
    }
    let max_class = if classes == 1 { 2 } else { classes };
    let labels = rows.labels.take().unwrap_or_default();
    if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l < 0 || l as usize >= max_class) {
        bail!(
            "{}, column `{label}`: label {l} is outside the model's {max_class} classes (0..{})",
            reader.locate(rows, i),
            max_class - 1
        );
    }
    Ok((labels.iter().map(|&l| l as f32).collect(), 1, true))
}

/// The Keras loss to use when none is given, for labels of `label_width` values per row and a
/// model of `outputs` outputs: sparse cross-entropy for class indices (binary for one output),
/// categorical cross-entropy for one-hot rows.
pub fn default_loss(label_width: usize, outputs: usize) -> &'static str {
    match (label_width, outputs) {
        (1, 1) => "binary_crossentropy",
        (1, _) => "sparse_categorical_crossentropy",
        _ => "categorical_crossentropy",
    }
}
