//! S3 through the `object_store` crate: a client configured from the AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP` ...) and, for what they leave unset, the shared AWS
//! configuration files; and the few whole-object operations distk-gpu needs (head, list,
//! download to a file, upload of a file, multipart above 10 MB).
//!
//! Each operation runs on its own small tokio runtime in its own thread, so it can be called
//! from synchronous code and from inside another runtime alike.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use thiserror::Error;
use tokio::io::AsyncWriteExt;

use super::aws_profile::settings_from_files;

/// An S3 operation that failed.
#[derive(Debug, Error)]
pub enum S3Error {
    /// The client could not be configured (a bad endpoint URL, no region ...).
    #[error(
        "s3://{bucket}: cannot configure the S3 client: {reason}; set AWS_REGION, AWS_ENDPOINT_URL (and AWS_ALLOW_HTTP=true for an http:// endpoint) and credentials in the environment or ~/.aws"
    )]
    Config {
        /// The bucket.
        bucket: String,
        /// Why, in one line.
        reason: String,
    },
    /// A request failed.
    #[error(
        "s3://{bucket}/{key}: {what} failed: {reason} (endpoint and credentials come from AWS_ENDPOINT_URL, AWS_ALLOW_HTTP=true for http://, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws)"
    )]
    Request {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The operation.
        what: &'static str,
        /// Why, in one line.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Local {
        /// The local path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime for the request could not start.
    #[error("cannot start the runtime for S3 requests: {0}")]
    Runtime(std::io::Error),
}

/// A client for one bucket.
#[derive(Clone)]
pub struct Bucket {
    name: String,
    store: Arc<dyn ObjectStore>,
}

/// Runs `make` to completion on a fresh runtime in a fresh thread (so that it works from
/// inside another runtime too).
pub fn block_on<T, E, F>(make: impl FnOnce() -> F + Send) -> Result<T, E>
where
    T: Send,
    E: Send + From<S3Error>,
    F: Future<Output = Result<T, E>>,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| E::from(S3Error::Runtime(e)))?;
                rt.block_on(make())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// One line for an error whose chain repeats itself (object_store nests each layer's message in
/// the next): S3's own error code and message when the server sent one, else the innermost cause.
pub fn condense(e: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        chain.push(c.to_string());
        cur = c.source();
    }
    let between = |text: &str, open: &str, close: &str| -> Option<String> {
        let start = text.find(open)? + open.len();
        let len = text[start..].find(close)?;
        Some(text[start..start + len].to_string())
    };
    for text in &chain {
        if let Some(code) = between(text, "<Code>", "</Code>") {
            let message = between(text, "<Message>", "</Message>").unwrap_or_default();
            return format!("{code} ({message})");
        }
    }
    let innermost = chain.last().cloned().unwrap_or_default();
    let status =
        chain.iter().find_map(|t| between(t, "status code: ", ":").or_else(|| between(t, "status code: ", "\n")));
    let mut line = match status {
        Some(s) if !innermost.contains(&s) => format!("{innermost} (HTTP {s})"),
        _ => innermost,
    };
    if let Some(retries) = chain.iter().find_map(|t| between(t, "after ", " retries")) {
        line.push_str(&format!(", after {retries} retries"));
    }
    line.replace('\n', " ")
}

impl Bucket {
    /// A client for `bucket` configured from the environment, then the AWS files. Must be
    /// created inside the runtime that uses it (its connections belong to that runtime).
    pub fn open(bucket: &str) -> Result<Bucket, S3Error> {
        // reqwest's TLS takes the process's rustls provider: ring, the one distk-gpu uses
        // everywhere (installing fails harmlessly when one is installed already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env();
        let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
        let files = settings_from_files();
        let region_known = set("AWS_REGION") || set("AWS_DEFAULT_REGION") || files.contains_key("aws_region");
        for (key, value) in files {
            // Credentials are one unit: a key id in the environment takes none from the files
            // (a file's session token beside the environment's key would be rejected).
            let in_env = match key {
                "aws_region" => set("AWS_REGION") || set("AWS_DEFAULT_REGION"),
                "aws_endpoint" => set("AWS_ENDPOINT_URL") || set("AWS_ENDPOINT"),
                _ => set("AWS_ACCESS_KEY_ID"),
            };
            if !in_env && let Ok(k) = key.parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(k, value);
            }
        }
        if !region_known {
            builder = builder.with_region("us-east-1");
        }
        let retry =
            object_store::RetryConfig { max_retries: 4, retry_timeout: Duration::from_secs(60), ..Default::default() };
        let store = builder
            .with_bucket_name(bucket)
            .with_retry(retry)
            .build()
            .map_err(|e| S3Error::Config { bucket: bucket.to_string(), reason: condense(&e) })?;
        Ok(Bucket { name: bucket.to_string(), store: Arc::new(store) })
    }

    /// `key` as object_store's path, taken as written (not percent-encoded again: listed keys
    /// such as Spark's escaped partition folders come back exactly as they were stored).
    fn path(&self, key: &str) -> Result<ObjectPath, S3Error> {
        ObjectPath::parse(key).map_err(|e| S3Error::Request {
            bucket: self.name.clone(),
            key: key.to_string(),
            what: "naming",
            reason: format!("not a usable key ({e}); a key has no empty, `.` or `..` parts"),
        })
    }

    fn failed(&self, key: &str, what: &'static str) -> impl FnOnce(object_store::Error) -> S3Error {
        let (bucket, key) = (self.name.clone(), key.to_string());
        move |e| S3Error::Request { bucket, key, what, reason: condense(&e) }
    }

    /// Fails when the bucket cannot be listed (missing, no access, no endpoint): a check before
    /// work whose output goes to `key`. Reads one page at most.
    pub async fn probe(&self, key: &str) -> Result<(), S3Error> {
        let p = if key.is_empty() { None } else { Some(self.path(key)?) };
        match self.store.list(p.as_ref()).next().await {
            Some(Err(e)) => Err(self.failed(key, "LIST")(e)),
            _ => Ok(()),
        }
    }

    /// The object `key`'s metadata, or `None` when there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, S3Error> {
        if key.is_empty() {
            return Ok(None);
        }
        match self.store.head(&self.path(key)?).await {
            Ok(m) => Ok(Some(m)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed(key, "HEAD")(e)),
        }
    }

    /// Every object below `prefix` (a folder: `prefix/...`), recursively.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, S3Error> {
        let p = if prefix.is_empty() { None } else { Some(self.path(prefix)?) };
        self.store.list(p.as_ref()).try_collect().await.map_err(self.failed(prefix, "LIST"))
    }

    /// Downloads `key` into the new file `local`.
    pub async fn download(&self, key: &str, local: &Path) -> Result<(), S3Error> {
        let io = |source| S3Error::Local { path: local.display().to_string(), source };
        let got = self.store.get(&self.path(key)?).await.map_err(self.failed(key, "GET"))?;
        let mut stream = got.into_stream();
        let mut file = tokio::fs::File::create(local).await.map_err(io)?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(self.failed(key, "GET"))?;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(())
    }

    /// Downloads several objects at once: (key, local file) pairs.
    pub async fn download_all(&self, pairs: Vec<(String, std::path::PathBuf)>) -> Result<(), S3Error> {
        futures_util::stream::iter(pairs)
            .map(|(key, local)| async move { self.download(&key, &local).await })
            .buffer_unordered(8)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Uploads the file `local` as `key`: one PUT up to 10 MB, a multipart upload above (aborted
    /// on failure); the object appears whole or not at all.
    pub async fn upload(&self, local: &Path, key: &str) -> Result<(), S3Error> {
        let io = |source| S3Error::Local { path: local.display().to_string(), source };
        let mut file = tokio::fs::File::open(local).await.map_err(io)?;
        let mut writer = object_store::buffered::BufWriter::new(self.store.clone(), self.path(key)?);
        let failed = |e: std::io::Error| S3Error::Request {
            bucket: self.name.clone(),
            key: key.to_string(),
            what: "PUT",
            reason: condense(&e),
        };
        if let Err(e) = tokio::io::copy(&mut file, &mut writer).await {
            let _ = writer.abort().await;
            return Err(failed(e));
        }
        // A failed shutdown has aborted its multipart upload itself (abort would panic here).
        writer.shutdown().await.map_err(failed)?;
        Ok(())
    }
}
