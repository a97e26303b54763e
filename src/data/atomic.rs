//! Writing an output file atomically: into a temporary file beside it, renamed over it only when
//! complete, so a failed or interrupted run never leaves a half-written file.

use std::path::Path;

use anyhow::{Context, Result};

/// Runs `write` on a temporary file in `path`'s directory, then renames it to `path`.
pub fn write_atomically(path: &Path, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    write_atomically_with_mode(path, 0o644, write)
}

/// [`write_atomically`] for files only their owner may read (secrets, keys): mode 0600 from the
/// start, never readable by others in between.
pub fn write_private(path: &Path, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    write_atomically_with_mode(path, 0o600, write)
}

/// [`write_private`] for a file that must be new: an existing file (also one that appears while
/// writing) is never replaced.
pub fn write_private_new(path: &Path, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    let tmp = write_temp(path, 0o600, write)?;
    tmp.persist_noclobber(path).map_err(|e| e.error).with_context(|| {
        format!("cannot write `{}` (it exists, or the folder is not writable): choose a new file", path.display())
    })?;
    Ok(())
}

fn write_atomically_with_mode(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
    let tmp = write_temp(path, mode, write)?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// A complete temporary file beside `path` holding what `write` wrote, with `mode`.
fn write_temp(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".distk-").suffix(".tmp").tempfile_in(dir).with_context(|| {
        format!("cannot create a file in `{}` (does the directory exist and is it writable?)", dir.display())
    })?;
    write(tmp.as_file_mut())?;
    tmp.as_file().sync_all().ok();
    // The temporary file is created 0600; widen it only where asked.
    if mode != 0o600 {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode));
    }
    Ok(tmp)
}

/// Temporary files are created 0600; outputs get the usual 0644 (less the umask's effect is not
/// emulated: readable by others, as files written with `File::create` under the default umask).
pub fn make_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644));
}

/// Creates `dir` 0700 when it is missing and leaves an existing one as its owner set it (an
/// operator's folder may be group-shared or not ours to change), warning when others may enter it.
pub fn private_dir_if_missing(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir.is_dir() {
        if let Ok(m) = std::fs::metadata(dir)
            && m.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "note: {} is open to its group or others (mode {:o}); what is below it is private (0700/0600)",
                dir.display(),
                m.permissions().mode() & 0o777
            );
        }
        return Ok(());
    }
    private_dir(dir)
}

/// Creates `dir` (and its parents) and makes it 0700, whatever the umask and whether or not it
/// existed: a folder only its owner may enter (the job server's folders, a job's files).
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private (0700)", dir.display()))
}

/// Makes every folder below `dir` 0700 and every file 0600 (outputs written by code that makes
/// files readable, such as a job's trained model, inside a private folder).
pub fn make_private_tree(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", d.display()))?;
        for entry in std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot make {} private", entry.path().display()))?;
            }
        }
    }
    Ok(())
}
