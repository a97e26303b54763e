//! Reading rows from Parquet or CSV as a stream of batches. Features come from one list column
//! (`list<float32>` as in the fixtures) or from several scalar columns; labels from an integer
//! column. Every error names the file, the column and, for bad values, the row.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

/// Which columns hold the features.
#[derive(Clone, Debug)]
pub struct FeatureColumns(pub Vec<String>);

impl FeatureColumns {
    /// Parses `--features-col`: one name, or a comma-separated list of scalar columns.
    pub fn parse(spec: &str) -> Self {
        FeatureColumns(spec.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
    }
}

/// A batch of rows.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// Number of rows.
    pub count: usize,
    /// Features per row.
    pub width: usize,
    /// Row-major features, `count * width` values.
    pub features: Vec<f32>,
    /// Labels, when an integer label column was asked for.
    pub labels: Option<Vec<i64>>,
    /// Targets, when the label column is a list (one-hot or soft targets): `count * target_width`.
    pub targets: Option<Vec<f32>>,
    /// Values per row in `targets`.
    pub target_width: usize,
    /// Index of the first row in the file.
    pub first_row: usize,
}

enum Source {
    Parquet { reader: ParquetRecordBatchReader, features: Vec<usize>, label: Option<usize> },
    Csv { reader: csv::Reader<File>, features: Vec<usize>, names: Vec<String>, label: Option<usize>, batch: usize },
}

/// A stream of [`Rows`] from a file.
pub struct DataReader {
    path: PathBuf,
    source: Source,
    feature_names: Vec<String>,
    label_name: Option<String>,
    next_row: usize,
    total_rows: Option<usize>,
}

fn is_csv(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

impl DataReader {
    /// Opens `path` for reading batches of `batch` rows, with features from `features` and, when
    /// `label` is given, labels from that column.
    pub fn open(path: &Path, features: &FeatureColumns, label: Option<&str>, batch: usize) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open data file `{}`", path.display()))?;
        if is_csv(path) {
            Self::open_csv(path, file, features, label, batch)
        } else {
            Self::open_parquet(path, file, features, label, batch)
        }
    }

    fn open_parquet(
        path: &Path,
        file: File,
        features: &FeatureColumns,
        label: Option<&str>,
        batch: usize,
    ) -> Result<Self> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
            anyhow!(
                "`{}` is not a readable Parquet file ({e}); give a .parquet file, or a .csv file with a header row",
                path.display()
            )
        })?;
        let schema = builder.schema().clone();
        let total_rows = usize::try_from(builder.metadata().file_metadata().num_rows()).ok();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let find = |name: &str| -> Result<usize> {
            names.iter().position(|n| n == name).ok_or_else(|| {
                anyhow!(
                    "`{}` has no column `{name}` (columns: {}); choose one with --features-col / --label-col",
                    path.display(),
                    names.join(", ")
                )
            })
        };
        let feat_idx: Vec<usize> = features.0.iter().map(|n| find(n)).collect::<Result<_>>()?;
        for &i in &feat_idx {
            let dt = schema.field(i).data_type();
            let ok = match dt {
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                    feat_idx.len() == 1 && is_number(f.data_type())
                }
                other => is_number(other),
            };
            if !ok {
                bail!(
                    "column `{}` of `{}` has type {dt}; features must be one list<float32> column or several numeric columns",
                    names[i],
                    path.display()
                );
            }
        }
        let label_idx = match label {
            Some(l) => {
                let i = find(l)?;
                let dt = schema.field(i).data_type();
                let ok = match dt {
                    DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                        is_number(f.data_type())
                    }
                    other => is_integer(other),
                };
                if !ok {
                    bail!(
                        "label column `{l}` of `{}` has type {dt}; labels must be integer class indices or a list of targets (one-hot)",
                        path.display()
                    );
                }
                Some(i)
            }
            None => None,
        };
        let mut roots = feat_idx.clone();
        roots.extend(label_idx);
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots.clone());
        let reader = builder.with_projection(mask).with_batch_size(batch.max(1)).build()?;
        // After projection, columns keep their relative order.
        let mut sorted = roots.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let pos = |i: usize| sorted.iter().position(|&x| x == i).unwrap_or(0);
        Ok(DataReader {
            path: path.to_path_buf(),
            source: Source::Parquet {
                reader,
                features: feat_idx.iter().map(|&i| pos(i)).collect(),
                label: label_idx.map(pos),
            },
            feature_names: features.0.clone(),
            label_name: label.map(str::to_string),
            next_row: 0,
            total_rows,
        })
    }

    fn open_csv(path: &Path, file: File, features: &FeatureColumns, label: Option<&str>, batch: usize) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(file);
        let names: Vec<String> = reader
            .headers()
            .with_context(|| format!("`{}` has no readable CSV header row", path.display()))?
            .iter()
            .map(|s| s.trim().to_string())
            .collect();
        // Columns are looked up by name: a repeated name would silently read the first one twice.
        for (j, name) in names.iter().enumerate() {
            if let Some(first) = names[..j].iter().position(|n| n == name) {
                bail!(
                    "`{}` names the column `{name}` twice (columns {} and {}); give every column its own name",
                    path.display(),
                    first + 1,
                    j + 1
                );
            }
        }
        // The fixtures' CSV form: f0..fN-1, or the named columns.
        let wanted: Vec<String> = if features.0.len() == 1 && !names.contains(&features.0[0]) {
            names
                .iter()
                .filter(|n| n.len() > 1 && n.starts_with('f') && n[1..].chars().all(|c| c.is_ascii_digit()))
                .cloned()
                .collect()
        } else {
            features.0.clone()
        };
        if wanted.is_empty() {
            bail!(
                "`{}` has no column `{}` and no f0..fN-1 columns (columns: {}); choose them with --features-col a,b,c",
                path.display(),
                features.0.join(","),
                names.join(", ")
            );
        }
        let find = |name: &str| -> Result<usize> {
            names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| anyhow!("`{}` has no column `{name}` (columns: {})", path.display(), names.join(", ")))
        };
        let feat_idx = wanted.iter().map(|n| find(n)).collect::<Result<Vec<_>>>()?;
        let label_idx = label.map(find).transpose()?;
        Ok(DataReader {
            path: path.to_path_buf(),
            source: Source::Csv { reader, features: feat_idx, names, label: label_idx, batch: batch.max(1) },
            feature_names: wanted,
            label_name: label.map(str::to_string),
            next_row: 0,
            total_rows: None,
        })
    }

    /// Rows in the file, where the format says so without reading it (Parquet).
    pub fn total_rows(&self) -> Option<usize> {
        self.total_rows
    }

    /// The next batch, or `None` at the end.
    pub fn next_rows(&mut self) -> Result<Option<Rows>> {
        let rows = match &mut self.source {
            Source::Parquet { reader, features, label } => {
                let Some(batch) = reader.next() else { return Ok(None) };
                let batch = batch.with_context(|| format!("reading `{}`", self.path.display()))?;
                let (features, label) = (features.clone(), *label);
                self.rows_from_arrow(&batch, &features, label)?
            }
            Source::Csv { reader, features, names, label, batch } => {
                let mut rows = Rows { width: features.len(), first_row: self.next_row, ..Default::default() };
                let mut labels = Vec::new();
                let mut record = csv::StringRecord::new();
                while rows.count < *batch {
                    let more = reader
                        .read_record(&mut record)
                        .with_context(|| format!("reading `{}`", self.path.display()))?;
                    if !more {
                        break;
                    }
                    let row = self.next_row + rows.count;
                    for &i in features.iter() {
                        let cell = record.get(i).unwrap_or("").trim();
                        let v: f32 = cell.parse().map_err(|_| {
                            anyhow!(
                                "`{}` row {row}, column `{}`: `{cell}` is not a number",
                                self.path.display(),
                                names[i]
                            )
                        })?;
                        rows.features.push(v);
                    }
                    if let Some(l) = label {
                        let cell = record.get(*l).unwrap_or("").trim();
                        let v: i64 = cell.parse().map_err(|_| {
                            anyhow!(
                                "`{}` row {row}, column `{}`: `{cell}` is not an integer class index",
                                self.path.display(),
                                names[*l]
                            )
                        })?;
                        labels.push(v);
                    }
                    rows.count += 1;
                }
                if rows.count == 0 {
                    return Ok(None);
                }
                rows.labels = label.map(|_| labels);
                rows
            }
        };
        self.check_finite(&rows)?;
        self.next_row += rows.count;
        Ok(Some(rows))
    }

    fn check_finite(&self, rows: &Rows) -> Result<()> {
        if let Some(i) = rows.features.iter().position(|v| !v.is_finite()) {
            let (row, col) = (rows.first_row + i / rows.width.max(1), i % rows.width.max(1));
            let column = if self.feature_names.len() == 1 {
                format!("`{}` (element {col})", self.feature_names[0])
            } else {
                format!("`{}`", self.feature_names[col])
            };
            bail!(
                "`{}` row {row}, column {column}: value {} is not finite; clean or impute the data first",
                self.path.display(),
                rows.features[i]
            );
        }
        Ok(())
    }

    fn rows_from_arrow(&self, batch: &RecordBatch, features: &[usize], label: Option<usize>) -> Result<Rows> {
        let n = batch.num_rows();
        let first_row = self.next_row;
        let mut rows = Rows { count: n, first_row, ..Default::default() };
        if features.len() == 1 && is_list(batch.column(features[0]).data_type()) {
            let name = self.feature_names[0].clone();
            rows.features.reserve(n * 64);
            rows.width = self.list_rows(batch.column(features[0]), &name, first_row, &mut rows.features)?;
        } else {
            rows.width = features.len();
            let mut cols = Vec::new();
            for (k, &f) in features.iter().enumerate() {
                let mut v = Vec::with_capacity(n);
                push_numbers(batch.column(f), &mut v)
                    .map_err(|e| anyhow!("`{}` column `{}`: {e}", self.path.display(), self.feature_names[k]))?;
                cols.push(v);
            }
            rows.features = (0..n).flat_map(|r| cols.iter().map(move |c| c[r])).collect();
        }
        if let Some(l) = label
            && is_list(batch.column(l).data_type())
        {
            let name = self.label_name.clone().unwrap_or_default();
            let mut t = Vec::with_capacity(n * 10);
            rows.target_width = self.list_rows(batch.column(l), &name, first_row, &mut t)?;
            rows.targets = Some(t);
        } else if let Some(l) = label {
            let col = batch.column(l);
            let name = self.label_name.clone().unwrap_or_default();
            if col.null_count() > 0 {
                let r = (0..n).find(|&r| col.is_null(r)).unwrap_or(0);
                bail!("`{}` row {}, column `{name}`: the label is null", self.path.display(), first_row + r);
            }
            let cast = arrow_cast_int(col).map_err(|e| anyhow!("`{}` column `{name}`: {e}", self.path.display()))?;
            rows.labels = Some(cast);
        }
        Ok(rows)
    }
}

impl DataReader {
    /// Appends every row of a list column to `out`; returns the row width (equal for all rows).
    fn list_rows(&self, col: &ArrayRef, name: &str, first_row: usize, out: &mut Vec<f32>) -> Result<usize> {
        let mut width = None;
        for r in 0..col.len() {
            if col.is_null(r) {
                bail!("`{}` row {}, column `{name}`: the value is null", self.path.display(), first_row + r);
            }
            let item: ArrayRef = match col.data_type() {
                DataType::List(_) => col.as_list::<i32>().value(r),
                DataType::LargeList(_) => col.as_list::<i64>().value(r),
                _ => col.as_fixed_size_list().value(r),
            };
            let before = out.len();
            push_numbers(&item, out).map_err(|e| anyhow!("`{}` column `{name}`: {e}", self.path.display()))?;
            let w = out.len() - before;
            match width {
                None => width = Some(w),
                Some(x) if x != w => {
                    bail!(
                        "`{}` row {}, column `{name}`: {w} values where earlier rows have {x}",
                        self.path.display(),
                        first_row + r
                    )
                }
                _ => {}
            }
        }
        Ok(width.unwrap_or(0))
    }
}

fn is_list(dt: &DataType) -> bool {
    matches!(dt, DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _))
}

fn is_number(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Float32
            | DataType::Float64
            | DataType::Int64
            | DataType::Int32
            | DataType::Int16
            | DataType::Int8
            | DataType::UInt8
    )
}

fn push_numbers(a: &ArrayRef, out: &mut Vec<f32>) -> Result<()> {
    if a.null_count() > 0 {
        bail!("contains null values");
    }
    match a.data_type() {
        DataType::Float32 => out.extend_from_slice(a.as_primitive::<Float32Type>().values()),
        DataType::Float64 => out.extend(a.as_primitive::<Float64Type>().values().iter().map(|&x| x as f32)),
        DataType::Int64 => out.extend(a.as_primitive::<Int64Type>().values().iter().map(|&x| x as f32)),
        DataType::Int32 => out.extend(a.as_primitive::<Int32Type>().values().iter().map(|&x| x as f32)),
        other => bail!("has element type {other}; expected float32"),
    }
    Ok(())
}

fn arrow_cast_int(a: &ArrayRef) -> Result<Vec<i64>> {
    use arrow_array::types::*;
    Ok(match a.data_type() {
        DataType::Int64 => a.as_primitive::<Int64Type>().values().to_vec(),
        DataType::Int32 => a.as_primitive::<Int32Type>().values().iter().map(|&x| x as i64).collect(),
        DataType::Int16 => a.as_primitive::<Int16Type>().values().iter().map(|&x| x as i64).collect(),
        DataType::Int8 => a.as_primitive::<Int8Type>().values().iter().map(|&x| x as i64).collect(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().values().iter().map(|&x| x as i64).collect(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().values().iter().map(|&x| x as i64).collect(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().values().iter().map(|&x| x as i64).collect(),
        other => bail!("has type {other}; labels must be integers"),
    })
}

fn is_integer(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int64
            | DataType::Int32
            | DataType::Int16
            | DataType::Int8
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_header_naming_a_column_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dup.csv");
        std::fs::write(&path, "f0,f0,f2,label\n1,2,3,0\n").unwrap();
        let err = DataReader::open(&path, &FeatureColumns::parse("features"), Some("label"), 4).err().unwrap();
        let msg = format!("{err:#}");
        assert!(msg.contains("names the column `f0` twice (columns 1 and 2)"), "{msg}");
        // Distinct names still read.
        std::fs::write(&path, "f0,f1,f2,label\n1,2,3,0\n").unwrap();
        let mut r = DataReader::open(&path, &FeatureColumns::parse("features"), Some("label"), 4).unwrap();
        let rows = r.next_rows().unwrap().unwrap();
        assert_eq!(rows.features, vec![1.0, 2.0, 3.0]);
    }
}
