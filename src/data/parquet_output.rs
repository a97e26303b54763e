//! Writing record batches as Parquet, atomically: one file, or a directory with one part per
//! input part (`part-00000.parquet` ... and `_SUCCESS`, as Spark reads it back). Nothing appears
//! at the output path until everything is written; a failure leaves nothing behind.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;

enum Target {
    File(tempfile::NamedTempFile),
    Dir(tempfile::TempDir),
}

/// A Parquet output being written.
pub struct ParquetOutput {
    path: PathBuf,
    target: Target,
    writer: Option<(usize, ArrowWriter<File>)>,
    schema: Option<SchemaRef>,
    rows: usize,
}

impl ParquetOutput {
    /// Starts writing `path`: one file, or with `per_part` a directory of parts. An existing
    /// directory is refused (a file is replaced, as before).
    pub fn create(path: &Path, per_part: bool) -> Result<Self> {
        if path.is_dir() {
            bail!("`{}` is a directory already; remove it or choose another output", path.display());
        }
        if per_part && path.exists() {
            bail!(
                "`{}` exists; a directory input writes a directory of parts there: remove it or choose another output",
                path.display()
            );
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let fail =
            || format!("cannot create a file in `{}` (does the directory exist and is it writable?)", dir.display());
        let target = if per_part {
            Target::Dir(tempfile::Builder::new().prefix(".distk-").tempdir_in(dir).with_context(fail)?)
        } else {
            Target::File(tempfile::Builder::new().prefix(".distk-").suffix(".tmp").tempfile_in(dir).with_context(fail)?)
        };
        Ok(ParquetOutput { path: path.to_path_buf(), target, writer: None, schema: None, rows: 0 })
    }

    /// Appends `batch`, read from input part `part` (a new output part starts when it changes).
    pub fn write(&mut self, part: usize, batch: &RecordBatch) -> Result<()> {
        match &self.schema {
            None => self.schema = Some(batch.schema()),
            Some(s) if s.fields() != batch.schema().fields() => bail!(
                "input part {part} gives other columns or types than the first part ({:?} vs {:?}); write the parts separately",
                batch.schema().fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect::<Vec<_>>(),
                s.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect::<Vec<_>>()
            ),
            _ => {}
        }
        let start_new = match (&self.target, &self.writer) {
            (_, None) => true,
            (Target::Dir(_), Some((p, _))) => *p != part,
            (Target::File(_), Some(_)) => false,
        };
        if start_new {
            if let Some((_, w)) = self.writer.take() {
                w.close()?;
            }
            let file = match &self.target {
                Target::File(f) => f.reopen()?,
                Target::Dir(d) => File::create(d.path().join(format!("part-{part:05}.parquet")))?,
            };
            self.writer = Some((part, ArrowWriter::try_new(file, batch.schema(), None)?));
        }
        if let Some((_, w)) = &mut self.writer {
            w.write(batch)?;
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Closes the output and moves it into place.
    pub fn finish(mut self) -> Result<()> {
        if let Some((_, w)) = self.writer.take() {
            w.close()?;
        }
        let cannot = || format!("cannot write `{}`", self.path.display());
        match self.target {
            Target::File(f) => {
                f.as_file().sync_all().ok();
                crate::data::atomic::make_readable(f.path());
                f.persist(&self.path).map_err(|e| e.error).with_context(cannot)?;
            }
            Target::Dir(d) => {
                File::create(d.path().join("_SUCCESS")).with_context(cannot)?;
                let tmp = d.keep();
                if let Err(e) = std::fs::rename(&tmp, &self.path) {
                    let _ = std::fs::remove_dir_all(&tmp);
                    return Err(e).with_context(cannot);
                }
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o755));
            }
        }
        Ok(())
    }
}
