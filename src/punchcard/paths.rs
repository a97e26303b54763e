//! Data paths a job names are resolved under the server's data root, and only there: no absolute
//! paths, no `..`, no symbolic links anywhere on the way or below a directory of parts (a link
//! could lead out of the root).

use std::path::{Component, Path, PathBuf};

/// Resolves `rel` under `root`, or says why not.
pub fn resolve_under(root: &Path, rel: &str) -> Result<PathBuf, String> {
    if rel.is_empty() {
        return Err("the data path is empty".into());
    }
    let p = Path::new(rel);
    let mut out = root.to_path_buf();
    for c in p.components() {
        match c {
            Component::Normal(part) => {
                out.push(part);
                let meta = std::fs::symlink_metadata(&out)
                    .map_err(|_| format!("`{rel}` does not exist under the server's data root"))?;
                if meta.file_type().is_symlink() {
                    return Err(format!(
                        "`{rel}` goes through a symbolic link; links are not followed under the data root"
                    ));
                }
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("`{rel}` contains `..`; paths stay under the data root")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("`{rel}` is absolute; give a path relative to the server's data root"));
            }
        }
    }
    if out.is_dir() {
        // A Spark output directory: every entry below it must be a plain file or folder.
        no_links_below(&out, rel)?;
    } else if !out.is_file() {
        return Err(format!("`{rel}` is not a file or a directory of part files under the server's data root"));
    }
    Ok(out)
}

fn no_links_below(dir: &Path, rel: &str) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list `{rel}`: {e}"))?;
    for e in entries {
        let e = e.map_err(|e| format!("cannot list `{rel}`: {e}"))?;
        let kind = e.file_type().map_err(|e| format!("cannot list `{rel}`: {e}"))?;
        if kind.is_symlink() {
            return Err(format!(
                "`{rel}` holds a symbolic link ({}); links are not followed under the data root",
                e.file_name().to_string_lossy()
            ));
        }
        if kind.is_dir() {
            no_links_below(&e.path(), rel)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_files_under_the_root_resolve() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/a.parquet"), b"x").unwrap();
        std::fs::write(d.path().parent().unwrap().join("outside.parquet"), b"x").ok();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).unwrap();
        assert_eq!(resolve_under(d.path(), "sub/a.parquet").unwrap(), d.path().join("sub/a.parquet"));
        assert_eq!(resolve_under(d.path(), "./sub/a.parquet").unwrap(), d.path().join("sub/a.parquet"));
        assert!(resolve_under(d.path(), "../outside.parquet").unwrap_err().contains(".."));
        assert!(resolve_under(d.path(), "sub/../../outside.parquet").is_err());
        assert!(resolve_under(d.path(), "/etc/passwd").unwrap_err().contains("absolute"));
        assert!(resolve_under(d.path(), "link").unwrap_err().contains("symbolic link"));
        // A directory of parts resolves; one holding a link anywhere below does not.
        assert_eq!(resolve_under(d.path(), "sub").unwrap(), d.path().join("sub"));
        std::fs::create_dir_all(d.path().join("parts/label=1")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("parts/label=1/part-0.parquet")).unwrap();
        assert!(resolve_under(d.path(), "parts").unwrap_err().contains("holds a symbolic link"));
        assert!(resolve_under(d.path(), "missing").unwrap_err().contains("does not exist"));
        assert!(resolve_under(d.path(), "").is_err());
    }
}
