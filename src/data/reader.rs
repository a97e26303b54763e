//! Reading rows as a stream of batches from the parts of a dataset (see [`crate::data::parts`]):
//! Parquet, CSV and Arrow IPC files, Spark part directories, globs and standard input. Features come
//! from one list or Spark ML vector column, or from several scalar columns; labels from an integer
//! or integral float column (class indices) or a list/vector column (one-hot or soft targets).
//! Hive partition values (`label=3/`) read as columns. Every error names the file, the column and,
//! for bad values, the row group and row.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::data::columns::{self, CellError, ColumnShape};
use crate::data::parts::{self, Part, PartFormat};

/// Which columns hold the features.
#[derive(Clone, Debug)]
pub struct FeatureColumns(pub Vec<String>);

impl FeatureColumns {
    /// Parses `--features-col`: one name, or a comma-separated list of scalar columns.
    pub fn parse(spec: &str) -> Self {
        FeatureColumns(spec.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
    }
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

/// Where a wanted column's values come from in a part.
#[derive(Clone, Debug)]
enum Column {
    /// A column of the file (index after projection).
    File(usize),
    /// A hive partition folder's value.
    Partition(String),
}

/// The wanted columns of an Arrow-decoded part.
#[derive(Clone, Debug)]
struct ArrowColumns {
    features: Vec<Column>,
    label: Option<Column>,
    feature_names: Vec<String>,
    label_name: String,
}

enum PartReader {
    Parquet {
        reader: ParquetRecordBatchReader,
        columns: ArrowColumns,
    },
    Ipc {
        batches: Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>>>,
        columns: ArrowColumns,
        pending: Option<(RecordBatch, usize)>,
    },
    Csv {
        reader: csv::Reader<File>,
        features: Vec<CsvColumn>,
        label: Option<CsvColumn>,
    },
}

/// A CSV value: a cell of the row, or a partition value.
#[derive(Clone, Debug)]
enum CsvColumn {
    Cell(usize, String),
    Partition(String, String),
}

/// What is known of a part before it is read.
#[derive(Clone, Debug, Default)]
struct PartInfo {
    /// Rows, where the footer says so (Parquet, Arrow files).
    rows: Option<usize>,
    /// First row of each row group (Parquet).
    row_group_starts: Vec<usize>,
}

/// A stream of [`Rows`] from a dataset.
pub struct DataReader {
    spec: PathBuf,
    parts: Vec<Part>,
    infos: Vec<PartInfo>,
    features: FeatureColumns,
    label: Option<String>,
    batch: usize,
    current: Option<(usize, PartReader)>,
    next_part: usize,
    next_row: usize,
    width: Option<(usize, usize)>,
}

impl DataReader {
    /// Opens the dataset `path` names (a file, a part directory, a glob or `-`) for reading
    /// batches of `batch` rows, with features from `features` and, when `label` is given, labels
    /// from that column. Parquet parts are checked (columns and types) before anything is read.
    pub fn open(path: &Path, features: &FeatureColumns, label: Option<&str>, batch: usize) -> Result<Self> {
        let parts = parts::resolve(path)?;
        let mut infos = Vec::with_capacity(parts.len());
        for part in &parts {
            infos.push(match (part.format, &part.path) {
                (PartFormat::Parquet, Some(p)) => {
                    let builder = parquet_builder(p)?;
                    let schema = builder.schema().clone();
                    check_arrow_columns(part, &schema, features, label)?;
                    let mut starts = Vec::new();
                    let mut rows = 0usize;
                    for rg in builder.metadata().row_groups() {
                        starts.push(rows);
                        rows += usize::try_from(rg.num_rows()).unwrap_or(0);
                    }
                    PartInfo { rows: Some(rows), row_group_starts: starts }
                }
                _ => PartInfo::default(),
            });
        }
        let mut reader = DataReader {
            spec: path.to_path_buf(),
            parts,
            infos,
            features: features.clone(),
            label: label.map(str::to_string),
            batch: batch.max(1),
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

    /// The parts read, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The dataset as given on the command line, for messages.
    pub fn spec(&self) -> &Path {
        &self.spec
    }

    /// Names the row `offset` of `rows` for a message: "`file` row group G, row R" (row within the file).
    pub fn locate(&self, rows: &Rows, offset: usize) -> String {
        self.locate_in(rows.part, rows.first_row + offset)
    }

    fn locate_in(&self, part: usize, row: usize) -> String {
        let name = self.parts.get(part).map(Part::display).unwrap_or_default();
        match self.infos.get(part).map(|i| &i.row_group_starts) {
            Some(starts) if !starts.is_empty() => {
                let g = starts.partition_point(|&s| s <= row).saturating_sub(1);
                format!("`{name}` row group {g}, row {row}")
            }
            _ => format!("`{name}` row {row}"),
        }
    }

    fn advance_part(&mut self) -> Result<bool> {
        self.current = None;
        if self.next_part >= self.parts.len() {
            return Ok(false);
        }
        let i = self.next_part;
        self.next_part += 1;
        self.next_row = 0;
        let part = &self.parts[i];
        let label = self.label.as_deref();
        let reader = match (part.format, &part.path) {
            (PartFormat::Parquet, Some(p)) => {
                let builder = parquet_builder(p)?;
                let schema = builder.schema().clone();
                let (roots, columns) = arrow_columns(part, &schema, &self.features, label)?;
                let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
                let reader = builder
                    .with_projection(mask)
                    .with_batch_size(self.batch)
                    .build()
                    .with_context(|| format!("reading `{}`", p.display()))?;
                PartReader::Parquet { reader, columns }
            }
            (PartFormat::ArrowFile, Some(p)) => {
                let file = File::open(p).with_context(|| format!("cannot open data file `{}`", p.display()))?;
                let r = arrow_ipc::reader::FileReader::try_new(BufReader::new(file), None)
                    .map_err(|e| anyhow!("`{}` is not a readable Arrow IPC file ({e})", p.display()))?;
                let (_, columns) = arrow_columns(part, &r.schema(), &self.features, label)?;
                PartReader::Ipc { batches: Box::new(r), columns, pending: None }
            }
            (PartFormat::ArrowStream, path) => {
                let input: Box<dyn std::io::Read> = match path {
                    Some(p) => {
                        Box::new(File::open(p).with_context(|| format!("cannot open data file `{}`", p.display()))?)
                    }
                    None => Box::new(std::io::stdin()),
                };
                let r = arrow_ipc::reader::StreamReader::try_new(BufReader::new(input), None)
                    .map_err(|e| anyhow!("{} is not a readable Arrow IPC stream ({e})", part.display()))?;
                let (_, columns) = arrow_columns(part, &r.schema(), &self.features, label)?;
                PartReader::Ipc { batches: Box::new(r), columns, pending: None }
            }
            (PartFormat::Csv, Some(p)) => open_csv(part, p, &self.features, label)?,
            (_, None) => bail!("only an Arrow IPC stream can come from standard input"),
        };
        self.current = Some((i, reader));
        Ok(true)
    }

    /// The next batch, or `None` at the end.
    pub fn next_rows(&mut self) -> Result<Option<Rows>> {
        loop {
            let Some((part, reader)) = &mut self.current else {
                if !self.advance_part()? {
                    return Ok(None);
                }
                continue;
            };
            let part = *part;
            let first_row = self.next_row;
            // Reading errors (I/O, corrupt pages) as text, decoding errors as cells: both are named
            // with their place once `reader`'s borrow ends.
            let decoded: Result<Option<Result<Rows, DecodeError>>, String> = match reader {
                PartReader::Parquet { reader, columns } => match reader.next() {
                    None => Ok(None),
                    Some(Err(e)) => Err(e.to_string()),
                    Some(Ok(b)) => Ok(Some(decode_arrow(&b, columns))),
                },
                PartReader::Ipc { batches, columns, pending } => {
                    let mut failed = None;
                    if pending.is_none() {
                        match batches.next() {
                            None => {}
                            Some(Err(e)) => failed = Some(e.to_string()),
                            Some(Ok(b)) => *pending = Some((b, 0)),
                        }
                    }
                    match (failed, pending.take()) {
                        (Some(e), _) => Err(e),
                        (None, None) => Ok(None),
                        (None, Some((b, at))) => {
                            let n = (b.num_rows() - at).min(self.batch);
                            let slice = b.slice(at, n);
                            if at + n < b.num_rows() {
                                *pending = Some((b, at + n));
                            }
                            Ok(Some(decode_arrow(&slice, columns)))
                        }
                    }
                }
                PartReader::Csv { reader, features, label } => {
                    read_csv_rows(reader, features, label.as_ref(), self.batch).map_err(|e| e.to_string())
                }
            };
            let decoded = decoded.map_err(|e| anyhow!("reading {}: {e}", self.locate_in(part, first_row)))?;
            let Some(decoded) = decoded else {
                self.current = None;
                continue;
            };
            let mut rows = decoded.map_err(|e| self.cell_error(part, first_row, e))?;
            if rows.count == 0 {
                continue;
            }
            rows.part = part;
            rows.first_row = first_row;
            self.check_rows(&rows)?;
            self.next_row += rows.count;
            return Ok(Some(rows));
        }
    }

    fn cell_error(&self, part: usize, first_row: usize, e: DecodeError) -> anyhow::Error {
        match e.cell.row {
            Some(r) => anyhow!("{}, column `{}`: {}", self.locate_in(part, first_row + r), e.column, e.cell.message),
            None => anyhow!("{} column `{}` {}", self.parts[part].display(), e.column, e.cell.message),
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
            let column = if self.features.0.len() == 1 {
                format!("`{}` (element {col})", self.features.0[0])
            } else {
                format!("`{}`", self.features.0.get(col).cloned().unwrap_or_default())
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

fn check_arrow_columns(part: &Part, schema: &Schema, features: &FeatureColumns, label: Option<&str>) -> Result<()> {
    arrow_columns(part, schema, features, label).map(|_| ())
}

/// Finds the wanted columns in `schema` (or the part's partition values) and checks their types.
/// Returns the file's column indices to read and where each wanted column is after projection.
fn arrow_columns(
    part: &Part,
    schema: &Schema,
    features: &FeatureColumns,
    label: Option<&str>,
) -> Result<(Vec<usize>, ArrowColumns)> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    enum Found {
        File(usize),
        Partition(String),
    }
    let find = |name: &str| -> Result<Found> {
        if let Some(i) = names.iter().position(|n| *n == name) {
            return Ok(Found::File(i));
        }
        if let Some((_, v)) = part.partition.iter().find(|(k, _)| k == name) {
            return Ok(Found::Partition(v.clone()));
        }
        let mut all: Vec<&str> = names.clone();
        all.extend(part.partition.iter().map(|(k, _)| k.as_str()));
        bail!(
            "{} has no column `{name}` (columns: {}); choose one with --features-col / --label-col",
            quoted(part),
            all.join(", ")
        )
    };
    let partition_number = |name: &str, v: &str| -> Result<()> {
        if columns::partition_array(v, 0).is_none() {
            bail!("{}: partition folder `{name}={v}` is not a number; it cannot be a feature or label", quoted(part));
        }
        Ok(())
    };
    let mut feats = Vec::new();
    for name in &features.0 {
        match find(name)? {
            Found::File(i) => {
                let dt = schema.field(i).data_type();
                let ok = match columns::column_shape(dt) {
                    Some(ColumnShape::Scalar) => true,
                    Some(_) => features.0.len() == 1,
                    None => false,
                };
                if !ok {
                    bail!(
                        "column `{name}` of {} has type {dt}; features must be one list or Spark ML vector column, or several number columns",
                        quoted(part)
                    );
                }
                feats.push(Found::File(i));
            }
            Found::Partition(v) => {
                partition_number(name, &v)?;
                feats.push(Found::Partition(v));
            }
        }
    }
    let lab = match label {
        None => None,
        Some(l) => Some(match find(l)? {
            Found::File(i) => {
                let dt = schema.field(i).data_type();
                if columns::column_shape(dt).is_none() {
                    bail!(
                        "label column `{l}` of {} has type {dt}; labels must be class indices (integers or whole floats), or a list or vector of targets (one-hot)",
                        quoted(part)
                    );
                }
                Found::File(i)
            }
            Found::Partition(v) => {
                if columns::parse_class_index(&v).is_none() {
                    bail!("{}: partition folder `{l}={v}` is not a class index", quoted(part));
                }
                Found::Partition(v)
            }
        }),
    };
    let mut roots: Vec<usize> =
        feats.iter().chain(lab.iter()).filter_map(|f| if let Found::File(i) = f { Some(*i) } else { None }).collect();
    roots.sort_unstable();
    roots.dedup();
    // After projection, columns keep their relative order.
    let to_column = |f: Found| match f {
        Found::File(i) => Column::File(roots.iter().position(|&x| x == i).unwrap_or(0)),
        Found::Partition(v) => Column::Partition(v),
    };
    let columns = ArrowColumns {
        features: feats.into_iter().map(to_column).collect(),
        label: lab.map(to_column),
        feature_names: features.0.clone(),
        label_name: label.unwrap_or_default().to_string(),
    };
    // Arrow IPC readers do not project: their batches keep every column.
    let columns = if part.format == PartFormat::Parquet {
        columns
    } else {
        let unproject = |c: Column| match c {
            Column::File(k) => Column::File(roots[k]),
            other => other,
        };
        ArrowColumns {
            features: columns.features.into_iter().map(unproject).collect(),
            label: columns.label.map(unproject),
            ..columns
        }
    };
    Ok((roots, columns))
}

fn quoted(part: &Part) -> String {
    match &part.path {
        Some(p) => format!("`{}`", p.display()),
        None => part.display(),
    }
}

/// Decodes a record batch into rows.
fn decode_arrow(batch: &RecordBatch, columns: &ArrowColumns) -> Result<Rows, DecodeError> {
    let n = batch.num_rows();
    let column = |c: &Column| -> ArrayRef {
        match c {
            Column::File(i) => batch.column(*i).clone(),
            // Checked to be a number when the part was opened; a null column otherwise.
            Column::Partition(v) => columns::partition_array(v, n)
                .unwrap_or_else(|| arrow_array::new_null_array(&arrow_schema::DataType::Float64, n)),
        }
    };
    let mut rows = Rows { count: n, ..Default::default() };
    let names = |k: usize| columns.feature_names.get(k).cloned().unwrap_or_default();
    if columns.features.len() == 1 && column(&columns.features[0]).data_type().is_nested() {
        let col = column(&columns.features[0]);
        rows.features.reserve(n * 64);
        rows.width = columns::push_rows(col.as_ref(), &mut rows.features)
            .map_err(|cell| DecodeError { column: names(0), cell })?
            .unwrap_or(0);
    } else {
        rows.width = columns.features.len();
        let mut cols = Vec::with_capacity(rows.width);
        for (k, c) in columns.features.iter().enumerate() {
            let mut v = Vec::with_capacity(n);
            columns::push_numbers(column(c).as_ref(), &mut v).map_err(|cell| DecodeError { column: names(k), cell })?;
            cols.push(v);
        }
        rows.features = Vec::with_capacity(n * rows.width);
        for r in 0..n {
            rows.features.extend(cols.iter().map(|c| c[r]));
        }
    }
    if let Some(l) = &columns.label {
        let col = column(l);
        let name = columns.label_name.clone();
        if col.data_type().is_nested() {
            let mut t = Vec::with_capacity(n * 10);
            rows.target_width = columns::push_rows(col.as_ref(), &mut t)
                .map_err(|cell| DecodeError { column: name, cell })?
                .unwrap_or(0);
            rows.targets = Some(t);
        } else {
            rows.labels =
                Some(columns::class_indices(col.as_ref()).map_err(|cell| DecodeError { column: name, cell })?);
        }
    }
    Ok(rows)
}

fn open_csv(part: &Part, path: &Path, features: &FeatureColumns, label: Option<&str>) -> Result<PartReader> {
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
    let find = |name: &str| -> Result<CsvColumn> {
        if let Some(i) = names.iter().position(|n| n == name) {
            return Ok(CsvColumn::Cell(i, name.to_string()));
        }
        if let Some((_, v)) = part.partition.iter().find(|(k, _)| k == name) {
            return Ok(CsvColumn::Partition(name.to_string(), v.clone()));
        }
        bail!("`{}` has no column `{name}` (columns: {})", path.display(), names.join(", "))
    };
    let features = wanted.iter().map(|n| find(n)).collect::<Result<Vec<_>>>()?;
    let label = label.map(find).transpose()?;
    Ok(PartReader::Csv { reader, features, label })
}

fn read_csv_rows(
    reader: &mut csv::Reader<File>,
    features: &[CsvColumn],
    label: Option<&CsvColumn>,
    batch: usize,
) -> Result<Option<Result<Rows, DecodeError>>> {
    let mut rows = Rows { width: features.len(), ..Default::default() };
    let mut labels = Vec::new();
    let mut record = csv::StringRecord::new();
    let cell = |record: &csv::StringRecord, c: &CsvColumn| -> (String, String) {
        match c {
            CsvColumn::Cell(i, name) => (record.get(*i).unwrap_or("").trim().to_string(), name.clone()),
            CsvColumn::Partition(name, v) => (v.clone(), name.clone()),
        }
    };
    while rows.count < batch {
        if !reader.read_record(&mut record)? {
            break;
        }
        let row = rows.count;
        for c in features {
            let (text, name) = cell(&record, c);
            match text.parse::<f32>() {
                Ok(v) => rows.features.push(v),
                Err(_) => {
                    return Ok(Some(Err(DecodeError {
                        column: name,
                        cell: CellError { row: Some(row), message: format!("`{text}` is not a number") },
                    })));
                }
            }
        }
        if let Some(c) = label {
            let (text, name) = cell(&record, c);
            match columns::parse_class_index(&text) {
                Some(v) => labels.push(v),
                None => {
                    return Ok(Some(Err(DecodeError {
                        column: name,
                        cell: CellError { row: Some(row), message: format!("`{text}` is not an integer class index") },
                    })));
                }
            }
        }
        rows.count += 1;
    }
    if rows.count == 0 {
        return Ok(None);
    }
    rows.labels = label.map(|_| labels);
    Ok(Some(Ok(rows)))
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
