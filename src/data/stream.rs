//! Training rows streamed from Parquet instead of held in memory: each epoch reads its row groups
//! (in a seeded order when shuffling) into a bounded shuffle buffer, permutes each buffer-full
//! with the same seeded order the in-memory path uses, and hands out batches. With one block
//! (the buffer holds every row), an epoch's order is exactly the in-memory one; resident rows stay
//! at most the buffer plus one read batch whatever the dataset's size.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::data::dataset::{DataColumns, checked_labels};
use crate::data::reader::{DataReader, ReadOptions, Unit};
use crate::training::epoch::epoch_order;
use crate::training::epochs::{RowSource, SourceShape};

/// How rows are streamed.
#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    /// Rows held for shuffling (a block).
    pub shuffle_buffer: usize,
    /// Shuffle row groups and rows every epoch.
    pub shuffle: bool,
    /// Seed of the shuffling.
    pub seed: u64,
}

/// Whether `path` should be streamed: its rows are known from Parquet footers and their decoded
/// features (`width` f32 per row) exceed `max_bytes`.
pub fn too_large_for_memory(path: &Path, columns: &DataColumns, width: usize, max_bytes: u64) -> Result<bool> {
    // Only Parquet says its rows up front; standard input can be read only once.
    let parts = crate::data::parts::resolve(path)?;
    if parts.iter().any(|p| p.format != crate::data::parts::PartFormat::Parquet) {
        return Ok(false);
    }
    let reader = DataReader::open_with(path, &columns.features, Some(&columns.label), read_options(columns, 1, None))?;
    Ok(match reader.total_rows() {
        // Streamed also past half the memory budget (--max-memory), whatever --in-memory-max-bytes says.
        Some(rows) => {
            let limit = max_bytes.min(distk_engine::memory::budget() / 2);
            (rows as u64).saturating_mul(width as u64 + 1).saturating_mul(4) > limit
        }
        None => false,
    })
}

fn read_options(columns: &DataColumns, batch: usize, units: Option<Vec<Unit>>) -> ReadOptions {
    ReadOptions {
        batch,
        transforms: columns.transforms.clone(),
        label_as_targets: columns.regression,
        units,
        ..Default::default()
    }
}

/// Rows streamed from a dataset's row groups.
pub struct StreamedRows {
    path: PathBuf,
    columns: DataColumns,
    width: usize,
    classes: usize,
    options: StreamOptions,
    units: Vec<Unit>,
    /// Rows of the epoch.
    pub rows: usize,
    /// Label values per row.
    pub label_width: usize,
    /// Whether labels are class indices.
    pub sparse: bool,
    reader: Option<DataReader>,
    /// For a worker's share of a file with fewer row groups than workers: its rows, counted in
    /// file order over the whole file.
    row_range: Option<std::ops::Range<usize>>,
    /// Rows read so far this epoch (for `row_range`).
    read_in_epoch: usize,
    epoch: usize,
    block: u64,
    x: Vec<f32>,
    y: Vec<f32>,
    block_rows: usize,
    order: Vec<usize>,
    at: usize,
    /// The most rows held at once (the buffer and the batch being read into it).
    pub peak_resident_rows: usize,
}

impl StreamedRows {
    /// Prepares streaming `path` (Parquet parts with footers): lists its row groups and reads
    /// the first batch to learn the labels' form.
    pub fn open(
        path: &Path,
        columns: &DataColumns,
        width: usize,
        classes: usize,
        options: StreamOptions,
    ) -> Result<Self> {
        Self::open_shard(path, columns, width, classes, options, None)
    }

    /// [`StreamedRows::open`] for worker `i` of `n` (`shard`: `(i, n, batch)`): it reads only its
    /// own row groups, assigned so that row counts balance (largest first, each to the worker with
    /// the fewest rows); with fewer row groups than workers, each worker takes a contiguous range
    /// of rows. Every worker must get at least `batch` rows.
    pub fn open_shard(
        path: &Path,
        columns: &DataColumns,
        width: usize,
        classes: usize,
        options: StreamOptions,
        shard: Option<(usize, usize, usize)>,
    ) -> Result<Self> {
        if options.shuffle_buffer == 0 {
            bail!("--shuffle-buffer must be at least 1 row");
        }
        let mut probe =
            DataReader::open_with(path, &columns.features, Some(&columns.label), read_options(columns, 1, None))?;
        let mut units = Vec::new();
        let mut rows = 0usize;
        for (unit, n) in probe.units() {
            let Some(n) = n else {
                bail!(
                    "{} cannot be streamed (its rows are not known before reading: CSV or Arrow IPC); convert it to Parquet, or raise --in-memory-max-bytes",
                    probe.parts()[unit.part].display()
                );
            };
            if n > 0 {
                units.push(unit);
                rows = rows.saturating_add(n);
            }
        }
        let Some(mut first) = probe.next_rows()? else { bail!("`{}` has no rows", path.display()) };
        let (_, label_width, sparse) = checked_labels(&probe, &mut first, &columns.label, width, classes)?;
        let mut row_range = None;
        if let Some((i, n, batch)) = shard {
            let sizes: Vec<usize> = probe.units().into_iter().filter_map(|(_, r)| r.filter(|&r| r > 0)).collect();
            if units.len() >= n {
                let mine = assign_units(&sizes, n)[i].clone();
                rows = mine.iter().map(|&k| sizes[k]).sum();
                units = mine.into_iter().map(|k| units[k]).collect();
                if rows < batch {
                    bail!(
                        "worker {i} of {n} gets {rows} rows, less than one batch ({batch}); use fewer workers or a smaller --batch-size"
                    );
                }
            } else {
                let range = crate::distributed::shard::contiguous_shards(rows, n, batch)?[i].clone();
                rows = range.len();
                row_range = Some(range);
            }
        }
        Ok(StreamedRows {
            path: path.to_path_buf(),
            columns: columns.clone(),
            width,
            classes,
            options,
            units,
            rows,
            label_width,
            sparse,
            reader: None,
            row_range,
            read_in_epoch: 0,
            epoch: 0,
            block: 0,
            x: Vec::new(),
            y: Vec::new(),
            block_rows: 0,
            order: Vec::new(),
            at: 0,
            peak_resident_rows: 0,
        })
    }

    /// Reads the next block into the buffer and orders it; false at the end of the epoch.
    fn fill(&mut self) -> Result<bool> {
        self.x.clear();
        self.y.clear();
        self.block_rows = 0;
        let Some(reader) = self.reader.as_mut() else { return Ok(false) };
        while self.block_rows < self.options.shuffle_buffer {
            let Some(mut rows) = reader.next_rows()? else {
                self.reader = None;
                break;
            };
            // The buffer and the batch just read are both held here.
            self.peak_resident_rows = self.peak_resident_rows.max(self.block_rows + rows.count);
            let (y, lw, sparse) = checked_labels(reader, &mut rows, &self.columns.label, self.width, self.classes)?;
            if lw != self.label_width || sparse != self.sparse {
                bail!("{} gives labels of another form than the first part's", reader.parts()[rows.part].display());
            }
            // A worker's row range: only its rows of the batch (file order).
            let (from, to) = match &self.row_range {
                Some(r) => {
                    let start = self.read_in_epoch;
                    (r.start.clamp(start, start + rows.count) - start, r.end.clamp(start, start + rows.count) - start)
                }
                None => (0, rows.count),
            };
            self.read_in_epoch += rows.count;
            self.x.extend_from_slice(&rows.features[from * self.width..to * self.width]);
            self.y.extend_from_slice(&y[from * lw..to * lw]);
            self.block_rows += to - from;
            self.peak_resident_rows = self.peak_resident_rows.max(self.block_rows);
            if self.row_range.as_ref().is_some_and(|r| self.read_in_epoch >= r.end) {
                self.reader = None;
                break;
            }
        }
        if self.block_rows == 0 {
            return Ok(false);
        }
        // Block 0 takes exactly the in-memory order's seed; later blocks their own.
        let seed = self.options.seed.wrapping_add(self.block.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        self.order = epoch_order(self.block_rows, self.options.shuffle, seed, self.epoch);
        self.at = 0;
        self.block += 1;
        Ok(true)
    }
}

impl RowSource for StreamedRows {
    fn shape(&self) -> SourceShape {
        SourceShape {
            rows: self.rows,
            label_width: self.label_width,
            sparse: self.sparse,
            streamed: true,
            peak_resident_rows: self.peak_resident_rows,
        }
    }

    fn begin_epoch(&mut self, epoch: usize) -> Result<usize> {
        let mut units = self.units.clone();
        // A row range counts rows in file order: its units are read in order.
        if self.options.shuffle && units.len() > 1 && self.row_range.is_none() {
            let mut rng = rand::rngs::StdRng::seed_from_u64(self.options.seed ^ 0x005e_ed0f_b10c ^ epoch as u64);
            units.shuffle(&mut rng);
        }
        let batch = self.options.shuffle_buffer.min(8192);
        self.reader = Some(DataReader::open_with(
            &self.path,
            &self.columns.features,
            Some(&self.columns.label),
            read_options(&self.columns, batch, Some(units)),
        )?);
        self.epoch = epoch;
        self.read_in_epoch = 0;
        self.block = 0;
        self.order.clear();
        self.at = 0;
        Ok(self.rows)
    }

    fn next_batch(&mut self, batch: usize, x: &mut Vec<f32>, y: &mut Vec<f32>) -> Result<usize> {
        x.clear();
        y.clear();
        let (w, lw) = (self.width, self.label_width);
        let mut n = 0;
        while n < batch {
            if self.at == self.order.len() && !self.fill()? {
                break;
            }
            while n < batch && self.at < self.order.len() {
                let i = self.order[self.at];
                x.extend_from_slice(&self.x[i * w..(i + 1) * w]);
                y.extend_from_slice(&self.y[i * lw..(i + 1) * lw]);
                self.at += 1;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Unit indices per worker: the largest first, each to the worker with the fewest rows so far
/// (the lowest index on ties); each worker's units in file order.
pub fn assign_units(sizes: &[usize], workers: usize) -> Vec<Vec<usize>> {
    let mut by_size: Vec<usize> = (0..sizes.len()).collect();
    by_size.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut out = vec![Vec::new(); workers];
    let mut load = vec![0usize; workers];
    for k in by_size {
        let w = (0..workers).min_by_key(|&w| (load[w], w)).unwrap_or(0);
        out[w].push(k);
        load[w] += sizes[k];
    }
    for units in &mut out {
        units.sort_unstable();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{Float32Builder, ListBuilder};
    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// `rows` rows whose one feature is their index, in row groups of `group` rows.
    fn write(path: &Path, rows: usize, group: usize) {
        let mut list = ListBuilder::new(Float32Builder::new());
        for i in 0..rows {
            list.values().append_value(i as f32);
            list.append(true);
        }
        let cols: Vec<ArrayRef> = vec![Arc::new(list.finish()), Arc::new(Int64Array::from(vec![1i64; rows]))];
        let batch = RecordBatch::try_from_iter(["features", "label"].into_iter().zip(cols)).unwrap();
        let props = WriterProperties::builder().set_max_row_group_row_count(Some(group)).build();
        let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn every_row_once_per_epoch_through_a_small_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.parquet");
        write(&path, 30, 10);
        let cols = DataColumns::plain("features", "label");
        let options = StreamOptions { shuffle_buffer: 7, shuffle: true, seed: 5 };
        let mut s = StreamedRows::open(&path, &cols, 1, 2, options).unwrap();
        assert_eq!((s.rows, s.label_width, s.sparse), (30, 1, true));
        let mut orders = Vec::new();
        for epoch in 0..2 {
            assert_eq!(s.begin_epoch(epoch).unwrap(), 30);
            let (mut x, mut y) = (Vec::new(), Vec::new());
            let mut seen = Vec::new();
            loop {
                let n = s.next_batch(4, &mut x, &mut y).unwrap();
                if n == 0 {
                    break;
                }
                assert_eq!((x.len(), y.len()), (n, n));
                seen.extend(x.iter().map(|&v| v as usize));
            }
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..30).collect::<Vec<_>>(), "epoch {epoch}");
            assert_ne!(seen, (0..30).collect::<Vec<_>>(), "shuffled");
            orders.push(seen);
        }
        assert_ne!(orders[0], orders[1], "another order each epoch");
        // The buffer (7) plus at most one read batch (7) were ever held.
        assert!(s.peak_resident_rows <= 14, "{}", s.peak_resident_rows);
    }

    #[test]
    fn workers_get_balanced_row_groups_or_row_ranges() {
        assert_eq!(assign_units(&[10, 10, 10, 5, 5], 2), vec![vec![0, 2], vec![1, 3, 4]]);
        let dir = tempfile::tempdir().unwrap();
        let cols = DataColumns::plain("features", "label");
        let options = StreamOptions { shuffle_buffer: 100, shuffle: false, seed: 0 };
        let read_all = |s: &mut StreamedRows| {
            s.begin_epoch(0).unwrap();
            let (mut x, mut y, mut seen) = (Vec::new(), Vec::new(), Vec::new());
            while s.next_batch(3, &mut x, &mut y).unwrap() > 0 {
                seen.extend(x.iter().map(|&v| v as usize));
            }
            seen
        };
        // Three row groups of 10 for two workers: 20 and 10 rows, every row once.
        let path = dir.path().join("three.parquet");
        write(&path, 30, 10);
        let mut all = Vec::new();
        for i in 0..2 {
            let mut s = StreamedRows::open_shard(&path, &cols, 1, 2, options, Some((i, 2, 4))).unwrap();
            let seen = read_all(&mut s);
            assert_eq!(seen.len(), s.rows);
            all.extend(seen);
        }
        all.sort_unstable();
        assert_eq!(all, (0..30).collect::<Vec<_>>());
        // One row group for three workers: contiguous row ranges.
        let path = dir.path().join("one.parquet");
        write(&path, 30, 100);
        let mut ranges = Vec::new();
        for i in 0..3 {
            let mut s = StreamedRows::open_shard(&path, &cols, 1, 2, options, Some((i, 3, 4))).unwrap();
            ranges.push(read_all(&mut s));
        }
        assert_eq!(ranges, vec![(0..10).collect::<Vec<_>>(), (10..20).collect(), (20..30).collect()]);
    }
}
