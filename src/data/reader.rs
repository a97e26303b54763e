//! Reading rows as a stream of batches from the parts of a dataset (see [`crate::data::parts`]):
//! Parquet, CSV and Arrow IPC files, Spark part directories, globs and standard input.
//!
//! Every part becomes Arrow record batches: the file's columns (Parquet projected to what is
//! needed; CSV cells parsed as numbers), then the hive partition values (`label=3/`) as columns,
//! then the `--transform` steps' columns. Features come from one list or Spark ML vector column
//! or several number columns of that view; labels from an integer or integral float column (class
//! indices) or a list/vector column (one-hot or soft targets). Every error names the file, the
//! column and, for bad values, the row group and row.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::data::columns::{self, CellError, ColumnShape};
use crate::data::decoder_guard::guarded;
use crate::data::parts::{self, Part, PartFormat};
use crate::transform::Transforms;

/// Which columns hold the features.
#[derive(Clone, Debug)]
pub struct FeatureColumns(pub Vec<String>);

impl FeatureColumns {
    /// Parses `--features-col`: one name, or a comma-separated list of scalar columns.
    pub fn parse(spec: &str) -> Self {
        FeatureColumns(spec.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
    }
}

/// How to read: batch size, steps, and whether every column is kept (for `transform`).
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Rows per batch (at most).
    pub batch: usize,
    /// Steps applied to every batch.
    pub transforms: Transforms,
    /// Keep every column of the source (else only those the features, label and steps need).
    pub keep_all_columns: bool,
    /// Columns kept besides those (`predict --keep-cols`); each must exist.
    pub keep_columns: Vec<String>,
    /// Read a scalar label column as float targets (regression) instead of class indices.
    pub label_as_targets: bool,
    /// Read only these units, in this order (else every part whole, in order).
    pub units: Option<Vec<Unit>>,
}

/// A unit of reading: a Parquet row group, or a whole part of another format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    /// The part.
    pub part: usize,
    /// The row group within it (Parquet).
    pub row_group: Option<usize>,
}

/// A batch of rows, all from one part.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// Number of rows.
    pub count: usize,
    /// Features per row.
    pub width: usize,
    /// Row-major features, `count * width` values.
    pub features: Vec<f32>,
    /// Labels, when a scalar label column was asked for.
    pub labels: Option<Vec<i64>>,
    /// Targets, when the label column is a list or vector (one-hot or soft targets): `count * target_width`.
    pub targets: Option<Vec<f32>>,
    /// Values per row in `targets`.
    pub target_width: usize,
    /// Index of the part the rows come from.
    pub part: usize,
    /// Index of the first row within its part.
    pub first_row: usize,
}

/// A record batch of one part, with partition values and step columns appended.
#[derive(Clone, Debug)]
pub struct PartBatch {
    /// Index of the part.
    pub part: usize,
    /// Index of the first row within its part.
    pub first_row: usize,
    /// The columns.
    pub batch: RecordBatch,
}

enum Source {
    Parquet(ParquetRecordBatchReader),
    Ipc {
        batches: Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>,
        pending: Option<(RecordBatch, usize)>,
        /// The file's columns to keep (IPC readers do not project).
        keep: Vec<usize>,
    },
    Csv {
        reader: csv::Reader<File>,
        columns: Vec<CsvColumn>,
    },
}

/// A CSV column read: its index in the record and whether it must hold numbers.
#[derive(Clone, Debug)]
struct CsvColumn {
    index: usize,
    name: String,
    /// Read as numbers (features, labels, step inputs): a cell that is not one is an error.
    numeric: bool,
    /// The type of a pass-through column, inferred from the part's first batch (Int64, Float64,
    /// else Utf8), as Spark's `inferSchema` does.
    inferred: Option<DataType>,
}

/// A part being read and what to take from it.
struct OpenPart {
    index: usize,
    source: Source,
    /// Partition values appended as columns.
    partition: Vec<(String, String)>,
    /// The feature columns in this part (the CSV `f0..fN` form resolves per file).
    features: Vec<String>,
}

/// What is known of a part before it is read.
#[derive(Clone, Debug, Default)]
struct PartInfo {
    /// The Parquet footer, parsed once (a part is opened once per row group when streaming).
    metadata: Option<ArrowReaderMetadata>,
    /// Rows, where the footer says so (Parquet).
    rows: Option<usize>,
    /// First row of each row group (Parquet).
    row_group_starts: Vec<usize>,
    /// Rows of each row group (Parquet).
    row_group_rows: Vec<usize>,
}

/// A stream of [`Rows`] (or [`PartBatch`]es) from a dataset.
pub struct DataReader {
    parts: Vec<Part>,
    infos: Vec<PartInfo>,
    features: FeatureColumns,
    label: Option<String>,
    options: ReadOptions,
    current: Option<OpenPart>,
    /// What is read, in order.
    order: Vec<Unit>,
    next_part: usize,
    next_row: usize,
    width: Option<(usize, usize)>,
}

impl DataReader {
    /// Opens the dataset `path` names (a file, a part directory, a glob or `-`) for reading
    /// batches of `batch` rows, with features from `features` and, when `label` is given, labels
    /// from that column.
    pub fn open(path: &Path, features: &FeatureColumns, label: Option<&str>, batch: usize) -> Result<Self> {
        Self::open_with(path, features, label, ReadOptions { batch, ..Default::default() })
    }

    /// [`DataReader::open`] with steps and column options. Parquet parts are checked (columns,
    /// types, steps) before anything is read.
    pub fn open_with(
        path: &Path,
        features: &FeatureColumns,
        label: Option<&str>,
        options: ReadOptions,
    ) -> Result<Self> {
        if features.0.is_empty() && !options.keep_all_columns {
            bail!("--features-col names no column; give one column, or several separated by commas");
        }
        let parts = parts::resolve(path)?;
        let mut infos = Vec::with_capacity(parts.len());
        for part in &parts {
            infos.push(match (part.format, &part.path) {
                (PartFormat::Parquet, Some(p)) => {
                    let builder = parquet_builder(p)?;
                    let schema = builder.schema().clone();
                    plan(part, &schema, features, label, &options)?;
                    let (mut starts, mut sizes) = (Vec::new(), Vec::new());
                    let mut rows = 0usize;
                    for rg in builder.metadata().row_groups() {
                        starts.push(rows);
                        let n = usize::try_from(rg.num_rows()).unwrap_or(0);
                        sizes.push(n);
                        rows = rows.saturating_add(n);
                    }
                    PartInfo {
                        metadata: Some(ArrowReaderMetadata::try_new(builder.metadata().clone(), Default::default())?),
                        rows: Some(rows),
                        row_group_starts: starts,
                        row_group_rows: sizes,
                    }
                }
                _ => PartInfo::default(),
            });
        }
        let order = match &options.units {
            Some(u) => {
                if let Some(bad) = u.iter().find(|u| {
                    u.part >= parts.len() || u.row_group.is_some_and(|g| g >= infos[u.part].row_group_starts.len())
                }) {
                    bail!("internal: no unit {bad:?} in `{}`", path.display());
                }
                u.clone()
            }
            None => (0..parts.len()).map(|part| Unit { part, row_group: None }).collect(),
        };
        let mut reader = DataReader {
            order,
            parts,
            infos,
            features: features.clone(),
            label: label.map(str::to_string),
            options: ReadOptions { batch: options.batch.max(1), ..options },
            current: None,
            next_part: 0,
            next_row: 0,
            width: None,
        };
        // Open the first part now, so that a bad header or column fails before any work.
        reader.advance_part()?;
        Ok(reader)
    }

    /// Rows in the dataset, where every part's footer says so (Parquet).
    pub fn total_rows(&self) -> Option<usize> {
        self.infos.iter().map(|i| i.rows).sum()
    }

    /// Every unit of reading with its rows: each row group of a Parquet part, each other part
    /// whole (rows unknown).
    pub fn units(&self) -> Vec<(Unit, Option<usize>)> {
        let mut out = Vec::new();
        for (part, info) in self.infos.iter().enumerate() {
            if info.row_group_rows.is_empty() {
                out.push((Unit { part, row_group: None }, info.rows));
            } else {
                for (g, &n) in info.row_group_rows.iter().enumerate() {
                    out.push((Unit { part, row_group: Some(g) }, Some(n)));
                }
            }
        }
        out
    }

    /// The parts read, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Names the row `offset` of `rows` for a message: "`file` row group G, row R" (row within the file).
    pub fn locate(&self, rows: &Rows, offset: usize) -> String {
        self.locate_in(rows.part, rows.first_row + offset)
    }

    /// Names row `row` of part `part` for a message.
    pub fn locate_in(&self, part: usize, row: usize) -> String {
        let name = self.parts.get(part).map(Part::display).unwrap_or_default();
        let name = if self.parts.get(part).is_some_and(|p| p.path.is_some()) { format!("`{name}`") } else { name };
        match self.infos.get(part).map(|i| &i.row_group_starts) {
            Some(starts) if !starts.is_empty() => {
                let g = starts.partition_point(|&s| s <= row).saturating_sub(1);
                format!("{name} row group {g}, row {row}")
            }
            _ => format!("{name} row {row}"),
        }
    }

    fn advance_part(&mut self) -> Result<bool> {
        self.current = None;
        let Some(&unit) = self.order.get(self.next_part) else {
            return Ok(false);
        };
        self.next_part += 1;
        let index = unit.part;
        self.next_row = unit.row_group.map_or(0, |g| self.infos[index].row_group_starts[g]);
        let part = &self.parts[index];
        let label = self.label.as_deref();
        let options = &self.options;
        let (source, plan) = match (part.format, &part.path) {
            (PartFormat::Parquet, Some(p)) => {
                let builder = match &self.infos[index].metadata {
                    Some(m) => {
                        let file = File::open(p).with_context(|| format!("cannot open data file `{}`", p.display()))?;
                        ParquetRecordBatchReaderBuilder::new_with_metadata(file, m.clone())
                    }
                    None => parquet_builder(p)?,
                };
                let schema = builder.schema().clone();
                let plan = plan(part, &schema, &self.features, label, options)?;
                let roots: Vec<usize> = schema
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| plan.file_columns.contains(f.name()))
                    .map(|(i, _)| i)
                    .collect();
                let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
                let builder = match unit.row_group {
                    Some(g) => builder.with_row_groups(vec![g]),
                    None => builder,
                };
                let reader = builder
                    .with_projection(mask)
                    .with_batch_size(options.batch)
                    .build()
                    .with_context(|| format!("reading `{}`", p.display()))?;
                (Source::Parquet(reader), plan)
            }
            (PartFormat::ArrowFile, Some(p)) => {
                let file = File::open(p).with_context(|| format!("cannot open data file `{}`", p.display()))?;
                // arrow-ipc panics on some damaged files: a panic is the file's error.
                let r = guarded(|| arrow_ipc::reader::FileReader::try_new(BufReader::new(file), None))
                    .map_err(|panic| anyhow!("`{}` is damaged: its Arrow IPC decoder stopped ({panic})", p.display()))?
                    .map_err(|e| anyhow!("`{}` is not a readable Arrow IPC file ({e})", p.display()))?;
                ipc_source(r, part, &self.features, label, options)?
            }
            (PartFormat::ArrowStream, path) => {
                let input: Box<dyn std::io::Read + Send> = match path {
                    Some(p) => {
                        Box::new(File::open(p).with_context(|| format!("cannot open data file `{}`", p.display()))?)
                    }
                    None => Box::new(std::io::stdin()),
                };
                let r = guarded(|| arrow_ipc::reader::StreamReader::try_new(BufReader::new(input), None))
                    .map_err(|panic| anyhow!("{} is damaged: its Arrow IPC decoder stopped ({panic})", part.display()))?
                    .map_err(|e| anyhow!("{} is not a readable Arrow IPC stream ({e})", part.display()))?;
                ipc_source(r, part, &self.features, label, options)?
            }
            (PartFormat::Csv, Some(p)) => open_csv(part, p, &self.features, label, options)?,
            (_, None) => bail!("only an Arrow IPC stream can come from standard input"),
        };
        self.current = Some(OpenPart { index, source, partition: plan.partition, features: plan.features });
        Ok(true)
    }

    /// The next record batch (source columns, partition values and step columns), or `None` at
    /// the end.
    pub fn next_batch(&mut self) -> Result<Option<PartBatch>> {
        loop {
            let Some(open) = &mut self.current else {
                if !self.advance_part()? {
                    return Ok(None);
                }
                continue;
            };
            let part = open.index;
            let first_row = self.next_row;
            let batch = self.options.batch;
            // Reading errors as text, cell errors as cells: both are named with their place once
            // `open`'s borrow ends.
            let raw: Result<Option<RecordBatch>, ReadError> = match &mut open.source {
                // The third-party decoders may panic on damaged data: a panic is the data's error.
                Source::Parquet(reader) => guarded(|| reader.next())
                    .map_err(|panic| ReadError::Io(format!("the data is damaged: its decoder stopped ({panic})")))
                    .and_then(|r| r.transpose().map_err(|e| ReadError::Io(e.to_string()))),
                Source::Ipc { batches, pending, keep } => {
                    let mut failed = None;
                    if pending.is_none() {
                        match guarded(|| batches.next()) {
                            Err(panic) => failed = Some(format!("the data is damaged: its decoder stopped ({panic})")),
                            Ok(None) => {}
                            Ok(Some(Err(e))) => failed = Some(e.to_string()),
                            Ok(Some(Ok(b))) => *pending = Some((b, 0)),
                        }
                    }
                    match (failed, pending.take()) {
                        (Some(e), _) => Err(ReadError::Io(e)),
                        (None, None) => Ok(None),
                        (None, Some((b, at))) => {
                            let n = (b.num_rows() - at).min(batch);
                            let slice = b.slice(at, n);
                            if at + n < b.num_rows() {
                                *pending = Some((b, at + n));
                            }
                            slice.project(keep).map(Some).map_err(|e| ReadError::Io(e.to_string()))
                        }
                    }
                }
                Source::Csv { reader, columns } => read_csv_batch(reader, columns, batch),
            };
            let raw = match raw {
                Ok(r) => r,
                Err(ReadError::Io(e)) => bail!("reading {}: {e}", self.locate_in(part, first_row)),
                Err(ReadError::Cell(e)) => return Err(self.cell_error(part, first_row, e)),
            };
            let Some(raw) = raw else {
                self.current = None;
                continue;
            };
            if raw.num_rows() == 0 {
                continue;
            }
            let partition = self.current.as_ref().map(|o| o.partition.clone()).unwrap_or_default();
            let with_partition = append_partition(raw, &partition).map_err(|e| anyhow!("{e}"))?;
            let view = self
                .options
                .transforms
                .apply(with_partition)
                .map_err(|(column, cell)| self.cell_error(part, first_row, DecodeError { column, cell }))?;
            self.next_row += view.num_rows();
            return Ok(Some(PartBatch { part, first_row, batch: view }));
        }
    }

    /// The next batch of rows, or `None` at the end.
    pub fn next_rows(&mut self) -> Result<Option<Rows>> {
        Ok(self.next_rows_and_batch()?.map(|(rows, _)| rows))
    }

    /// The next batch of rows with the record batch they were decoded from (for the columns
    /// kept beside predictions).
    pub fn next_rows_and_batch(&mut self) -> Result<Option<(Rows, PartBatch)>> {
        let Some(b) = self.next_batch()? else { return Ok(None) };
        let features = self.current_features(b.part);
        let mut rows = decode(&b.batch, &features, self.label.as_deref(), self.options.label_as_targets)
            .map_err(|e| self.cell_error(b.part, b.first_row, e))?;
        rows.part = b.part;
        rows.first_row = b.first_row;
        self.check_rows(&rows)?;
        Ok(Some((rows, b)))
    }

    fn current_features(&self, part: usize) -> Vec<String> {
        match &self.current {
            Some(open) if open.index == part => open.features.clone(),
            _ => self.features.0.clone(),
        }
    }

    fn cell_error(&self, part: usize, first_row: usize, e: DecodeError) -> anyhow::Error {
        match e.cell.row {
            Some(r) => anyhow!("{}, column `{}`: {}", self.locate_in(part, first_row + r), e.column, e.cell.message),
            None => anyhow!("{}: column `{}` {}", self.locate_in(part, first_row), e.column, e.cell.message),
        }
    }

    fn check_rows(&mut self, rows: &Rows) -> Result<()> {
        match self.width {
            None => self.width = Some((rows.width, rows.part)),
            Some((w, p)) if w != rows.width => bail!(
                "{} has {} feature values per row where {} has {w}; every part of a dataset must have the same width",
                self.parts[rows.part].display(),
                rows.width,
                self.parts[p].display()
            ),
            _ => {}
        }
        if let Some(i) = rows.features.iter().position(|v| !v.is_finite()) {
            let (row, col) = (i / rows.width.max(1), i % rows.width.max(1));
            let names = self.current_features(rows.part);
            let column = if names.len() == 1 {
                format!("`{}` (element {col})", names[0])
            } else {
                format!("`{}`", names.get(col).cloned().unwrap_or_default())
            };
            bail!(
                "{}, column {column}: value {} is not finite; clean or impute the data first",
                self.locate(rows, row),
                rows.features[i]
            );
        }
        if let Some(t) = &rows.targets
            && let Some(i) = t.iter().position(|v| !v.is_finite())
        {
            bail!(
                "{}, column `{}`: a target is not finite",
                self.locate(rows, i / rows.target_width.max(1)),
                self.label.as_deref().unwrap_or_default()
            );
        }
        Ok(())
    }
}

enum ReadError {
    Io(String),
    Cell(DecodeError),
}

/// A decoding failure and the column it is in.
struct DecodeError {
    column: String,
    cell: CellError,
}

fn parquet_builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).with_context(|| format!("cannot open data file `{}`", path.display()))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        anyhow!(
            "`{}` is not a readable Parquet file ({e}); give Parquet, CSV with a header row, or Arrow IPC",
            path.display()
        )
    })
}

/// An Arrow IPC reader (file or stream) as a source: its columns checked, the kept ones chosen.
fn ipc_source(
    reader: impl arrow_array::RecordBatchReader + Send + 'static,
    part: &Part,
    features: &FeatureColumns,
    label: Option<&str>,
    options: &ReadOptions,
) -> Result<(Source, Plan)> {
    let schema = reader.schema();
    let plan = plan(part, &schema, features, label, options)?;
    let keep = column_indices(&schema, &plan.file_columns);
    Ok((Source::Ipc { batches: Box::new(reader), pending: None, keep }, plan))
}

/// The indices of `names` in `schema`, in the schema's order.
fn column_indices(schema: &Schema, names: &[String]) -> Vec<usize> {
    schema.fields().iter().enumerate().filter(|(_, f)| names.contains(f.name())).map(|(i, _)| i).collect()
}

/// What to read from a part.
struct Plan {
    /// The file's columns to read.
    file_columns: Vec<String>,
    /// The partition values to append.
    partition: Vec<(String, String)>,
    /// The feature column names.
    features: Vec<String>,
}

/// Spark's folder name for a null partition value.
const HIVE_NULL: &str = "__HIVE_DEFAULT_PARTITION__";

/// The type of a partition value's column.
fn partition_type(value: &str) -> DataType {
    if value == HIVE_NULL {
        DataType::Float64
    } else if value.parse::<i64>().is_ok() {
        DataType::Int64
    } else if value.parse::<f64>().is_ok() {
        DataType::Float64
    } else {
        DataType::Utf8
    }
}

fn append_partition(batch: RecordBatch, partition: &[(String, String)]) -> Result<RecordBatch, ArrowError> {
    if partition.is_empty() {
        return Ok(batch);
    }
    let n = batch.num_rows();
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
    for (k, v) in partition {
        let col: ArrayRef = match partition_type(v) {
            _ if v == HIVE_NULL => arrow_array::new_null_array(&DataType::Float64, n),
            DataType::Utf8 => Arc::new(StringArray::from(vec![v.as_str(); n])),
            _ => columns::partition_array(v, n).unwrap_or_else(|| Arc::new(Float64Array::from(vec![f64::NAN; n]))),
        };
        // Nullable: Spark's __HIVE_DEFAULT_PARTITION__ folder holds nulls.
        fields.push(Arc::new(Field::new(k, col.data_type().clone(), true)));
        cols.push(col);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
}

/// Checks that `schema` (the file's), the part's partition values and the steps give the
/// features and label with usable types; says which file columns and partition values to read.
fn plan(
    part: &Part,
    schema: &Schema,
    features: &FeatureColumns,
    label: Option<&str>,
    options: &ReadOptions,
) -> Result<Plan> {
    let file_names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut wanted: Vec<String> = features.0.clone();
    wanted.extend(label.map(str::to_string));
    wanted.extend(options.keep_columns.iter().cloned());
    let sources = options.transforms.sources_of(&wanted);
    let keep = |name: &str| options.keep_all_columns || sources.iter().any(|s| s == name);
    let file_columns: Vec<String> = file_names.iter().filter(|n| keep(n)).map(|n| n.to_string()).collect();
    let partition: Vec<(String, String)> =
        part.partition.iter().filter(|(k, _)| keep(k) && !file_names.contains(&k.as_str())).cloned().collect();
    let mut fields: Vec<Arc<Field>> =
        schema.fields().iter().filter(|f| file_columns.contains(f.name())).cloned().collect();
    fields.extend(partition.iter().map(|(k, v)| Arc::new(Field::new(k, partition_type(v), false))));
    let view = options.transforms.output_schema(&Schema::new(fields)).map_err(|e| anyhow!("{}: {e}", quoted(part)))?;
    check_view(part, &view, &features.0, label)?;
    let own: Vec<String> = file_names.iter().map(|n| n.to_string()).collect();
    check_kept(part, &view, &options.keep_columns, &all_columns(part, &own, &options.transforms))?;
    Ok(Plan { file_columns, partition, features: features.0.clone() })
}

/// Checks the features and label in the columns a part gives (after partition values and steps).
fn check_view(part: &Part, view: &Schema, features: &[String], label: Option<&str>) -> Result<()> {
    let find = |name: &str| -> Result<&Field> {
        view.fields().iter().find(|f| f.name() == name).map(|f| f.as_ref()).ok_or_else(|| {
            let names: Vec<&str> = view.fields().iter().map(|f| f.name().as_str()).collect();
            let mut all: Vec<&str> = names;
            all.extend(
                part.partition.iter().map(|(k, _)| k.as_str()).filter(|k| !view.fields().iter().any(|f| f.name() == k)),
            );
            anyhow!(
                "{} has no column `{name}` (columns: {}); choose one with --features-col / --label-col",
                quoted(part),
                all.join(", ")
            )
        })
    };
    for name in features {
        let f = find(name)?;
        let dt = f.data_type();
        let ok = match columns::column_shape(dt) {
            Some(ColumnShape::Scalar) => true,
            Some(_) => features.len() == 1,
            None => false,
        };
        if !ok {
            bail!(
                "column `{name}` of {} has type {dt}; features must be one list or Spark ML vector column, or several number columns",
                quoted(part)
            );
        }
    }
    if let Some(l) = label {
        let dt = find(l)?.data_type();
        if columns::column_shape(dt).is_none() {
            bail!(
                "label column `{l}` of {} has type {dt}; labels must be class indices (integers or whole floats), or a list or vector of targets (one-hot)",
                quoted(part)
            );
        }
    }
    Ok(())
}

/// Checks the columns kept beside predictions; `all` names every column the part has.
fn check_kept(part: &Part, view: &Schema, keep: &[String], all: &[String]) -> Result<()> {
    for name in keep {
        if view.field_with_name(name).is_err() {
            bail!("{} has no column `{name}` to keep (columns: {})", quoted(part), all.join(", "));
        }
    }
    Ok(())
}

/// Every column a part offers: its own, its partition values', the steps'.
fn all_columns(part: &Part, own: &[String], transforms: &Transforms) -> Vec<String> {
    let mut all = own.to_vec();
    all.extend(part.partition.iter().map(|(k, _)| k.clone()).filter(|k| !own.contains(k)));
    all.extend(transforms.0.iter().map(|s| s.output.clone()));
    all
}

fn quoted(part: &Part) -> String {
    match &part.path {
        Some(p) => format!("`{}`", p.display()),
        None => part.display(),
    }
}

/// Decodes the features and label of a record batch into rows.
fn decode(
    batch: &RecordBatch,
    features: &[String],
    label: Option<&str>,
    label_as_targets: bool,
) -> Result<Rows, DecodeError> {
    let n = batch.num_rows();
    let column = |name: &str| -> Result<ArrayRef, DecodeError> {
        batch.column_by_name(name).cloned().ok_or_else(|| DecodeError {
            column: name.to_string(),
            cell: CellError { row: None, message: "is missing from this part".into() },
        })
    };
    let mut rows = Rows { count: n, ..Default::default() };
    let first = column(&features[0])?;
    if features.len() == 1 && first.data_type().is_nested() {
        rows.features.reserve(n * 64);
        rows.width = columns::push_rows(first.as_ref(), &mut rows.features)
            .map_err(|cell| DecodeError { column: features[0].clone(), cell })?
            .unwrap_or(0);
    } else {
        rows.width = features.len();
        let mut cols = Vec::with_capacity(rows.width);
        for name in features {
            let mut v = Vec::with_capacity(n);
            columns::push_numbers(column(name)?.as_ref(), &mut v)
                .map_err(|cell| DecodeError { column: name.clone(), cell })?;
            cols.push(v);
        }
        rows.features = Vec::with_capacity(n * rows.width);
        for r in 0..n {
            rows.features.extend(cols.iter().map(|c| c[r]));
        }
    }
    if let Some(l) = label {
        let col = column(l)?;
        let err = |cell| DecodeError { column: l.to_string(), cell };
        if col.data_type().is_nested() {
            let mut t = Vec::with_capacity(n * 10);
            rows.target_width = columns::push_rows(col.as_ref(), &mut t).map_err(err)?.unwrap_or(0);
            rows.targets = Some(t);
        } else if label_as_targets {
            let v = columns::scalars(col.as_ref()).map_err(err)?;
            rows.targets = Some(v.into_iter().map(|x| x as f32).collect());
            rows.target_width = 1;
        } else {
            rows.labels = Some(columns::class_indices(col.as_ref()).map_err(err)?);
        }
    }
    Ok(rows)
}

fn open_csv(
    part: &Part,
    path: &Path,
    features: &FeatureColumns,
    label: Option<&str>,
    options: &ReadOptions,
) -> Result<(Source, Plan)> {
    let file = File::open(path).with_context(|| format!("cannot open data file `{}`", path.display()))?;
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
    // The fixtures' CSV form: f0..fN-1 when the one features column named is absent.
    let produced = |n: &str| options.transforms.0.iter().any(|s| s.output == n);
    let feature_names: Vec<String> = if features.0.len() == 1
        && !names.contains(&features.0[0])
        && !produced(&features.0[0])
        && !part.partition.iter().any(|(k, _)| *k == features.0[0])
    {
        // f0, f1, ... in numeric order, every index from 0 present, never the label.
        let mut numbered: Vec<(usize, String)> = names
            .iter()
            .filter(|n| Some(n.as_str()) != label)
            .filter_map(|n| n.strip_prefix('f').and_then(|d| d.parse::<usize>().ok()).map(|i| (i, n.clone())))
            .collect();
        numbered.sort();
        if let Some((k, (i, _))) = numbered.iter().enumerate().find(|(k, (i, _))| k != i) {
            bail!(
                "`{}` has f-numbered columns with a gap or repeat (f{k} expected, f{i} found); name the features with --features-col a,b,c",
                path.display()
            );
        }
        let f: Vec<String> = numbered.into_iter().map(|(_, n)| n).collect();
        if f.is_empty() {
            bail!(
                "`{}` has no column `{}` and no f0..fN-1 columns (columns: {}); choose them with --features-col a,b,c",
                path.display(),
                features.0.join(","),
                names.join(", ")
            );
        }
        f
    } else {
        features.0.clone()
    };
    let mut wanted = feature_names.clone();
    wanted.extend(label.map(str::to_string));
    wanted.extend(options.keep_columns.iter().cloned());
    let sources = options.transforms.sources_of(&wanted);
    let columns: Vec<CsvColumn> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| options.keep_all_columns || sources.contains(n))
        .map(|(index, n)| {
            let kept = options.keep_columns.contains(n);
            CsvColumn { index, name: n.clone(), numeric: sources.contains(n) && !kept, inferred: None }
        })
        .collect();
    // Numbers for what is decoded; pass-through columns are typed from the first batch (Utf8 in
    // this provisional schema, which only the steps' and the features' checks read).
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(&c.name, if c.numeric { DataType::Float64 } else { DataType::Utf8 }, false))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let partition: Vec<(String, String)> = part
        .partition
        .iter()
        .filter(|(k, _)| (options.keep_all_columns || sources.contains(k)) && !names.contains(k))
        .cloned()
        .collect();
    let mut view_fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    view_fields.extend(partition.iter().map(|(k, v)| Arc::new(Field::new(k, partition_type(v), false))));
    let view = options
        .transforms
        .output_schema(&Schema::new(view_fields))
        .map_err(|e| anyhow!("`{}`: {e}", path.display()))?;
    check_view(part, &view, &feature_names, label)?;
    check_kept(part, &view, &options.keep_columns, &all_columns(part, &names, &options.transforms))?;
    Ok((Source::Csv { reader, columns }, Plan { file_columns: Vec::new(), partition, features: feature_names }))
}

fn read_csv_batch(
    reader: &mut csv::Reader<File>,
    columns: &mut [CsvColumn],
    batch: usize,
) -> Result<Option<RecordBatch>, ReadError> {
    let mut numbers: Vec<Vec<f64>> = columns.iter().map(|_| Vec::new()).collect();
    let mut texts: Vec<Vec<String>> = columns.iter().map(|_| Vec::new()).collect();
    let mut record = csv::StringRecord::new();
    let mut count = 0;
    while count < batch {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(ReadError::Io(e.to_string())),
        }
        for (k, c) in columns.iter().enumerate() {
            let cell = record.get(c.index).unwrap_or("").trim();
            if c.numeric {
                match cell.parse::<f64>() {
                    Ok(v) => numbers[k].push(v),
                    Err(_) => {
                        return Err(ReadError::Cell(DecodeError {
                            column: c.name.clone(),
                            cell: CellError { row: Some(count), message: format!("`{cell}` is not a number") },
                        }));
                    }
                }
            } else {
                texts[k].push(cell.to_string());
            }
        }
        count += 1;
    }
    if count == 0 {
        return Ok(None);
    }
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (k, c) in columns.iter_mut().enumerate() {
        let array: ArrayRef = if c.numeric {
            Arc::new(Float64Array::from(std::mem::take(&mut numbers[k])))
        } else {
            let cells = std::mem::take(&mut texts[k]);
            let ty = c.inferred.get_or_insert_with(|| infer_type(&cells)).clone();
            typed_cells(&cells, &ty).map_err(|row| {
                ReadError::Cell(DecodeError {
                    column: c.name.clone(),
                    cell: CellError {
                        row: Some(row),
                        message: format!("`{}` is not of the column's type {ty} (from the first rows)", cells[row]),
                    },
                })
            })?
        };
        fields.push(Field::new(&c.name, array.data_type().clone(), false));
        arrays.push(array);
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(count)),
    )
    .map(Some)
    .map_err(|e| ReadError::Io(e.to_string()))
}

/// The type of a pass-through CSV column: Int64 if every cell is an integer, Float64 if a
/// number, else Utf8.
fn infer_type(cells: &[String]) -> DataType {
    if cells.iter().all(|c| c.parse::<i64>().is_ok()) {
        DataType::Int64
    } else if cells.iter().all(|c| c.parse::<f64>().is_ok()) {
        DataType::Float64
    } else {
        DataType::Utf8
    }
}

/// The cells as an array of `ty`, or the first row that does not parse.
fn typed_cells(cells: &[String], ty: &DataType) -> Result<ArrayRef, usize> {
    Ok(match ty {
        DataType::Int64 => Arc::new(arrow_array::Int64Array::from(
            cells.iter().enumerate().map(|(r, c)| c.parse::<i64>().map_err(|_| r)).collect::<Result<Vec<_>, _>>()?,
        )),
        DataType::Float64 => Arc::new(Float64Array::from(
            cells.iter().enumerate().map(|(r, c)| c.parse::<f64>().map_err(|_| r)).collect::<Result<Vec<_>, _>>()?,
        )),
        _ => Arc::new(StringArray::from(cells.to_vec())),
    })
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

    #[test]
    fn steps_apply_on_the_fly_to_csv_and_name_the_bad_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(&path, "id,a,b,label\nx,0,16,1\ny,8,4,0\nz,16,0,3\n").unwrap();
        let transforms =
            Transforms::parse(&["min-max:a:a_n:o_max=16".into(), "one-hot:label:label_1h:output_dim=3".into()])
                .unwrap();
        let options = ReadOptions { batch: 2, transforms, ..Default::default() };
        let mut r = DataReader::open_with(&path, &FeatureColumns::parse("a_n,b"), Some("label_1h"), options).unwrap();
        let rows = r.next_rows().unwrap().unwrap();
        assert_eq!(rows.features, vec![0.0, 16.0, 0.5, 4.0]);
        assert_eq!(rows.targets.unwrap(), vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
        let e = r.next_rows().unwrap_err().to_string();
        assert!(e.contains("d.csv` row 2, column `label`: class 3 is outside 0..2"), "{e}");
    }

    #[test]
    fn csv_pass_through_columns_keep_their_type_and_f_columns_go_in_numeric_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(&path, "name,f1,f0,count,label\na1,2,1,7,0\nb2,4,3,8,1\n").unwrap();
        let options =
            ReadOptions { batch: 10, keep_columns: vec!["name".into(), "count".into()], ..Default::default() };
        let mut r = DataReader::open_with(&path, &FeatureColumns::parse("features"), Some("label"), options).unwrap();
        let (rows, batch) = r.next_rows_and_batch().unwrap().unwrap();
        // f0 before f1 whatever the header order; the label is never a feature.
        assert_eq!(rows.features, vec![1.0, 2.0, 3.0, 4.0]);
        let schema = batch.batch.schema();
        assert_eq!(schema.field_with_name("name").unwrap().data_type(), &DataType::Utf8);
        assert_eq!(schema.field_with_name("count").unwrap().data_type(), &DataType::Int64);
        // A gap in the numbering is refused.
        std::fs::write(&path, "f0,f2,label\n1,2,0\n").unwrap();
        let e =
            DataReader::open(&path, &FeatureColumns::parse("features"), Some("label"), 4).err().unwrap().to_string();
        assert!(e.contains("f1 expected, f2 found"), "{e}");
        // No features column named at all.
        let e = DataReader::open(&path, &FeatureColumns::parse(" , "), Some("label"), 4).err().unwrap().to_string();
        assert!(e.contains("--features-col names no column"), "{e}");
    }

    fn write_ipc(path: &Path, cols: Vec<(&str, ArrayRef)>) {
        let batch = RecordBatch::try_from_iter(cols).unwrap();
        let mut w = arrow_ipc::writer::FileWriter::try_new(File::create(path).unwrap(), &batch.schema()).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
    }

    #[test]
    fn an_ipc_column_a_step_replaces_is_not_read_in_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.arrow");
        // A stale `scaled` column beside the one the step makes from `a`.
        write_ipc(
            &path,
            vec![
                ("a", Arc::new(Float64Array::from(vec![0.0, 16.0])) as ArrayRef),
                ("scaled", Arc::new(Float64Array::from(vec![-7.0, -7.0])) as ArrayRef),
                ("label", Arc::new(arrow_array::Int64Array::from(vec![0, 1])) as ArrayRef),
            ],
        );
        let transforms = Transforms::parse(&["min-max:a:scaled:o_max=16".into()]).unwrap();
        let options = ReadOptions { batch: 8, transforms, ..Default::default() };
        let mut r = DataReader::open_with(&path, &FeatureColumns::parse("scaled"), Some("label"), options).unwrap();
        assert_eq!(r.next_rows().unwrap().unwrap().features, vec![0.0, 1.0]);
    }

    #[test]
    fn spark_null_partitions_read_as_null_and_empty_parts_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("label=__HIVE_DEFAULT_PARTITION__");
        std::fs::create_dir(&part).unwrap();
        std::fs::write(part.join("part-0.csv"), "f0,f1\n1,2\n").unwrap();
        std::fs::write(part.join("part-1.csv"), "").unwrap();
        let mut r = DataReader::open(dir.path(), &FeatureColumns::parse("features"), Some("label"), 8).unwrap();
        assert_eq!(r.parts().len(), 1, "the empty part is skipped");
        let e = r.next_rows().unwrap_err().to_string();
        assert!(e.contains("column `label`: the label is null"), "{e}");
    }
}
