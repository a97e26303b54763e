//! What a `--data` argument names: one file, a directory of part files as Spark writes it
//! (`part-*.parquet` beside `_SUCCESS`, `.crc` and committer files, with hive-style `col=value`
//! partition folders), a glob, or `-` for an Arrow IPC stream on standard input.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// How a part is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartFormat {
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values with a header row.
    Csv,
    /// An Arrow IPC file (`ARROW1`, as Feather v2).
    ArrowFile,
    /// An Arrow IPC stream (a file, or standard input).
    ArrowStream,
}

/// One file of a dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// The file; `None` for standard input.
    pub path: Option<PathBuf>,
    /// Its encoding.
    pub format: PartFormat,
    /// Values of the hive-style partition folders above it (`label=3` gives `("label", "3")`).
    pub partition: Vec<(String, String)>,
}

impl Part {
    /// The file's name for messages.
    pub fn display(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "standard input".to_string(),
        }
    }
}

/// The parts `spec` names, in a stable order (by path).
pub fn resolve(spec: &Path) -> Result<Vec<Part>> {
    if spec.as_os_str() == "-" {
        return Ok(vec![Part { path: None, format: PartFormat::ArrowStream, partition: Vec::new() }]);
    }
    let text = spec.to_string_lossy();
    if !spec.exists() && text.contains(['*', '?', '[']) {
        return resolve_glob(&text);
    }
    let meta = std::fs::metadata(spec).with_context(|| format!("cannot open data file `{}`", spec.display()))?;
    if meta.is_dir() {
        let mut parts = Vec::new();
        collect_dir(spec, &mut Vec::new(), &mut parts)?;
        if parts.is_empty() {
            bail!(
                "directory `{}` holds no data files (expected part files such as part-00000-*.parquet or *.csv; names starting with `_` or `.` are skipped)",
                spec.display()
            );
        }
        check_same_partition_keys(spec, &parts)?;
        return Ok(parts);
    }
    Ok(vec![Part { path: Some(spec.to_path_buf()), format: sniff(spec)?, partition: Vec::new() }])
}

fn resolve_glob(pattern: &str) -> Result<Vec<Part>> {
    let paths = glob::glob(pattern).with_context(|| format!("`{pattern}` is not a valid glob pattern"))?;
    let mut parts = Vec::new();
    for p in paths {
        let p = p.with_context(|| format!("reading the files of `{pattern}`"))?;
        if p.is_file() && !hidden(&p) {
            parts.push(Part { format: sniff(&p)?, partition: partition_of(&p), path: Some(p) });
        }
    }
    if parts.is_empty() {
        bail!("no data file matches `{pattern}`");
    }
    parts.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(parts)
}

/// Hadoop's rule: names starting with `_` or `.` are metadata (`_SUCCESS`, `_committed_*`,
/// `_temporary`, `.part-*.crc`).
fn hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('_') || n.starts_with('.'))
}

fn collect_dir(dir: &Path, partition: &mut Vec<(String, String)>, out: &mut Vec<Part>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list `{}`", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list `{}`", dir.display()))?;
    entries.sort();
    for path in entries {
        if hidden(&path) {
            continue;
        }
        if path.is_dir() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let Some((key, value)) = name.split_once('=') else {
                bail!(
                    "`{}` is a folder that is not a partition folder (`column=value`); give the files or a glob instead",
                    path.display()
                );
            };
            partition.push((key.to_string(), unescape_partition_value(value)));
            collect_dir(&path, partition, out)?;
            partition.pop();
        } else if std::fs::metadata(&path).map(|m| m.len() > 0).unwrap_or(true) {
            // Spark writes an empty file for an empty CSV partition: no rows, no header.
            out.push(Part { format: sniff(&path)?, path: Some(path), partition: partition.clone() });
        }
    }
    Ok(())
}

/// Partition values from the `col=value` folders of a path (for globs).
fn partition_of(path: &Path) -> Vec<(String, String)> {
    path.parent()
        .map(|p| {
            p.components()
                .filter_map(|c| {
                    c.as_os_str().to_str()?.split_once('=').map(|(k, v)| (k.to_string(), unescape_partition_value(v)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Spark escapes partition values like URLs (`%2F` for `/`); `__HIVE_DEFAULT_PARTITION__` is null.
fn unescape_partition_value(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_same_partition_keys(dir: &Path, parts: &[Part]) -> Result<()> {
    let keys = |p: &Part| p.partition.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    let first = keys(&parts[0]);
    for p in &parts[1..] {
        let k = keys(p);
        if k != first {
            bail!(
                "`{}` mixes partition folders: `{}` is under ({}) where `{}` is under ({})",
                dir.display(),
                p.display(),
                k.join(", "),
                parts[0].display(),
                first.join(", ")
            );
        }
    }
    Ok(())
}

/// The format of a file: by extension, else by its first bytes.
fn sniff(path: &Path) -> Result<PartFormat> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
    if name.ends_with(".csv") || name.ends_with(".csv.gz") {
        if name.ends_with(".gz") {
            bail!("`{}` is compressed CSV; decompress it or write Parquet", path.display());
        }
        return Ok(PartFormat::Csv);
    }
    if name.ends_with(".parquet") {
        return Ok(PartFormat::Parquet);
    }
    let mut head = [0u8; 8];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("cannot open data file `{}`", path.display()))?;
    let head = &head[..n];
    Ok(if head.starts_with(b"PAR1") {
        PartFormat::Parquet
    } else if head.starts_with(b"ARROW1") {
        PartFormat::ArrowFile
    } else if head.starts_with(&[0xff, 0xff, 0xff, 0xff]) {
        PartFormat::ArrowStream
    } else if name.ends_with(".arrow") || name.ends_with(".feather") || name.ends_with(".ipc") {
        bail!(
            "`{}` is not an Arrow IPC file or stream (its first bytes are neither `ARROW1` nor a stream message)",
            path.display()
        )
    } else {
        bail!(
            "cannot tell the format of `{}`: it is not Parquet (no `PAR1` magic), not Arrow IPC, and not named *.csv",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_spark_directory_lists_its_parts_and_partition_values() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("out.parquet");
        touch(&root.join("_SUCCESS"), b"");
        touch(&root.join("_committed_123"), b"");
        touch(&root.join("_temporary/0/x.parquet"), b"PAR1");
        touch(&root.join("label=1/part-00001-a.snappy.parquet"), b"PAR1");
        touch(&root.join("label=1/.part-00001-a.snappy.parquet.crc"), b"crc");
        touch(&root.join("label=0/part-00000-a.snappy.parquet"), b"PAR1");
        touch(&root.join("label=0/part-00002-a"), b"PAR1....");
        let parts = resolve(&root).unwrap();
        let names: Vec<String> =
            parts.iter().map(|p| p.path.as_ref().unwrap().strip_prefix(&root).unwrap().display().to_string()).collect();
        assert_eq!(
            names,
            ["label=0/part-00000-a.snappy.parquet", "label=0/part-00002-a", "label=1/part-00001-a.snappy.parquet"]
        );
        assert!(parts.iter().all(|p| p.format == PartFormat::Parquet));
        assert_eq!(parts[2].partition, vec![("label".to_string(), "1".to_string())]);
    }

    #[test]
    fn an_empty_directory_and_mixed_partitions_are_refused() {
        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("_SUCCESS"), b"");
        let e = resolve(d.path()).unwrap_err().to_string();
        assert!(e.contains("holds no data files"), "{e}");
        touch(&d.path().join("a=1/part-0.parquet"), b"PAR1");
        touch(&d.path().join("part-1.parquet"), b"PAR1");
        let e = resolve(d.path()).unwrap_err().to_string();
        assert!(e.contains("mixes partition folders"), "{e}");
    }

    #[test]
    fn globs_stdin_and_unknown_formats() {
        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("a.csv"), b"f0,label\n");
        touch(&d.path().join("b.csv"), b"f0,label\n");
        touch(&d.path().join("c.txt"), b"hello");
        let parts = resolve(&d.path().join("*.csv")).unwrap();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.format == PartFormat::Csv));
        let e = resolve(&d.path().join("*.json")).unwrap_err().to_string();
        assert!(e.contains("no data file matches"), "{e}");
        let e = resolve(&d.path().join("c.txt")).unwrap_err().to_string();
        assert!(e.contains("cannot tell the format"), "{e}");
        assert_eq!(resolve(Path::new("-")).unwrap()[0].format, PartFormat::ArrowStream);
        assert_eq!(unescape_partition_value("a%2Fb"), "a/b");
    }
}
