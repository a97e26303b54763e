//! Where a path names its data: the local filesystem or an object store (`s3://bucket/key`).
//! Other object-store and Hadoop schemes are refused with the way out.

use std::path::Path;

use thiserror::Error;

/// A path given on the command line, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local path (anything without a `scheme://` prefix).
    Local,
    /// An S3 object or prefix: `s3://bucket/key` (also `s3a://`, as Spark writes it).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key or prefix inside the bucket, without a leading or trailing `/`.
        key: String,
    },
}

/// A path the storage layer cannot use.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LocationError {
    /// `gs://`, `az://` and the like.
    #[error(
        "`{path}`: {scheme}:// is not supported (only s3:// and local paths are); copy the data to S3 or a local disk first, or serve the bucket through an S3-compatible gateway and give s3:// with AWS_ENDPOINT_URL"
    )]
    UnsupportedScheme {
        /// The path as given.
        path: String,
        /// Its scheme.
        scheme: String,
    },
    /// `hdfs://` and `webhdfs://`.
    #[error(
        "`{path}`: HDFS is not read directly; expose it through an S3 gateway (Ozone's s3g, MinIO, or Hadoop's S3 connector in reverse) and give s3:// with AWS_ENDPOINT_URL, or copy the parts out with `hdfs dfs -get`"
    )]
    Hdfs {
        /// The path as given.
        path: String,
    },
    /// `s3://` without a bucket, or a path that is not UTF-8.
    #[error("`{path}`: {why}")]
    Malformed {
        /// The path as given.
        path: String,
        /// What is wrong.
        why: &'static str,
    },
}

impl Location {
    /// Classifies `path`.
    pub fn parse(path: &Path) -> Result<Location, LocationError> {
        let Some(text) = path.to_str() else {
            return Ok(Location::Local);
        };
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Location::Local);
        };
        if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.') {
            return Ok(Location::Local);
        }
        match scheme.to_ascii_lowercase().as_str() {
            "s3" | "s3a" => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(LocationError::Malformed {
                        path: text.into(),
                        why: "no bucket; write s3://BUCKET/KEY",
                    });
                }
                Ok(Location::S3 { bucket: bucket.to_string(), key: key.trim_matches('/').to_string() })
            }
            "hdfs" | "webhdfs" | "swebhdfs" => Err(LocationError::Hdfs { path: text.into() }),
            "file" => Err(LocationError::Malformed { path: text.into(), why: "give a local path without file://" }),
            other => Err(LocationError::UnsupportedScheme { path: text.into(), scheme: other.to_string() }),
        }
    }

    /// Whether `path` names an object store (a malformed or refused scheme counts as remote, so
    /// that the caller reaches the error).
    pub fn is_remote(path: &Path) -> bool {
        !matches!(Location::parse(path), Ok(Location::Local))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_paths() {
        assert_eq!(Location::parse(Path::new("data/train.parquet")), Ok(Location::Local));
        assert_eq!(Location::parse(Path::new("/abs/part-*.parquet")), Ok(Location::Local));
        assert_eq!(
            Location::parse(Path::new("s3://bkt/a/b/")),
            Ok(Location::S3 { bucket: "bkt".into(), key: "a/b".into() })
        );
        assert_eq!(
            Location::parse(Path::new("s3a://bkt/x.onnx")),
            Ok(Location::S3 { bucket: "bkt".into(), key: "x.onnx".into() })
        );
        assert_eq!(Location::parse(Path::new("s3://bkt")), Ok(Location::S3 { bucket: "bkt".into(), key: "".into() }));
        assert!(matches!(Location::parse(Path::new("s3:///k")), Err(LocationError::Malformed { .. })));
        let gs = Location::parse(Path::new("gs://b/k")).unwrap_err().to_string();
        assert!(gs.contains("gs:// is not supported") && gs.contains("AWS_ENDPOINT_URL"), "{gs}");
        assert!(matches!(Location::parse(Path::new("az://c/k")), Err(LocationError::UnsupportedScheme { .. })));
        assert!(matches!(Location::parse(Path::new("hdfs://nn:8020/x")), Err(LocationError::Hdfs { .. })));
        assert!(Location::is_remote(Path::new("abfss://c@a/k")));
        assert!(!Location::is_remote(Path::new("relative/dir")));
    }
}
