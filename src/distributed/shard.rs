//! Splitting rows into contiguous shards, one per worker.

use std::ops::Range;

use anyhow::{Result, bail};

/// `rows` split into `workers` contiguous ranges whose sizes differ by at most one row (so they are
/// equal to within one batch). Every worker must get at least one full batch.
pub fn contiguous_shards(rows: usize, workers: usize, batch: usize) -> Result<Vec<Range<usize>>> {
    if workers == 0 {
        bail!("--workers must be at least 1");
    }
    if rows < workers * batch {
        bail!(
            "{rows} rows are fewer than {workers} workers x batch size {batch}: every worker needs at least one full batch; use fewer workers or a smaller --batch-size"
        );
    }
    let (base, extra) = (rows / workers, rows % workers);
    let mut start = 0;
    Ok((0..workers)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_row_once_and_are_balanced() {
        let s = contiguous_shards(1437, 4, 32).unwrap();
        assert_eq!(s, vec![0..360, 360..719, 719..1078, 1078..1437]);
        assert!(contiguous_shards(100, 4, 32).unwrap_err().to_string().contains("fewer than 4 workers"));
        assert!(contiguous_shards(10, 0, 1).is_err());
    }
}
