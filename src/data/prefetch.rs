//! Rows decoded ahead of training on a thread of their own: the Parquet decode, the transforms
//! and the label checks of the next batches overlap the training steps on the current block. The
//! rows decoded ahead are bounded (a channel of `capacity` batches plus the one being decoded) and
//! counted, so the streaming memory bound still holds and is measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use anyhow::{Result, anyhow, bail};

use crate::data::dataset::{DataColumns, checked_labels};
use crate::data::reader::DataReader;

/// One decoded batch: features, label values and the row count.
pub struct Decoded {
    /// Row-major features.
    pub features: Vec<f32>,
    /// Label values, `label_width` per row.
    pub y: Vec<f32>,
    /// Rows.
    pub count: usize,
}

/// What the decoding thread checks every batch against.
pub struct Expected {
    /// The model's input width.
    pub width: usize,
    /// The model's classes.
    pub classes: usize,
    /// Label values per row (from the first batch).
    pub label_width: usize,
    /// Whether labels are class indices.
    pub sparse: bool,
}

/// A reader running ahead on its own thread.
pub struct Prefetch {
    rx: Receiver<Result<Decoded>>,
    in_flight: Arc<AtomicUsize>,
}

impl Prefetch {
    /// Starts decoding `reader`'s batches (`read_batch` rows each at most), keeping at most
    /// `capacity` decoded batches waiting besides the one being decoded. The thread ends at the
    /// end of the data, at an error (passed on), or when the `Prefetch` is dropped.
    pub fn start(
        mut reader: DataReader,
        columns: DataColumns,
        expected: Expected,
        read_batch: usize,
        capacity: usize,
    ) -> Result<Prefetch> {
        let (tx, rx) = sync_channel(capacity);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let counter = in_flight.clone();
        std::thread::Builder::new()
            .name("distk-prefetch".into())
            .spawn(move || {
                loop {
                    // The batch being decoded counts as resident from the start.
                    counter.fetch_add(read_batch, Ordering::SeqCst);
                    let decoded = decode_one(&mut reader, &columns, &expected);
                    let count = match &decoded {
                        Ok(Some(d)) => d.count,
                        _ => 0,
                    };
                    counter.fetch_add(count, Ordering::SeqCst);
                    counter.fetch_sub(read_batch, Ordering::SeqCst);
                    let sent = match decoded {
                        Ok(None) => break,
                        Ok(Some(d)) => tx.send(Ok(d)),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            break;
                        }
                    };
                    if sent.is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| anyhow!("cannot start the data prefetch thread: {e}"))?;
        Ok(Prefetch { rx, in_flight })
    }

    /// The next decoded batch, or `None` at the end of the data.
    pub fn next(&self) -> Result<Option<Decoded>> {
        match self.rx.recv() {
            Ok(Ok(d)) => Ok(Some(d)),
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// Rows decoded and not yet consumed (including the batch being decoded).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Marks a batch returned by [`Prefetch::next`] as consumed (copied into the shuffle buffer).
    pub fn consumed(&self, rows: usize) {
        self.in_flight.fetch_sub(rows, Ordering::SeqCst);
    }
}

fn decode_one(reader: &mut DataReader, columns: &DataColumns, e: &Expected) -> Result<Option<Decoded>> {
    let Some(mut rows) = reader.next_rows()? else { return Ok(None) };
    let (y, lw, sparse) = checked_labels(reader, &mut rows, &columns.label, e.width, e.classes)?;
    if lw != e.label_width || sparse != e.sparse {
        bail!("{} gives labels of another form than the first part's", reader.parts()[rows.part].display());
    }
    Ok(Some(Decoded { features: rows.features, y, count: rows.count }))
}
