//! The job server's client (`submit`, `job`): HTTPS over rustls (ring), trusting the server by a
//! pinned SHA-256, a CA file, or on first use (remembered in the user's config directory; a changed
//! certificate is refused). The secret goes in the `Authorization` header only after the server's
//! certificate has been checked.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

use distk_net::auth::read_secret_file;
use distk_net::tls::{Pinned, Trust, hex, parse_sha256, sha256};

use crate::data::atomic::write_atomically;

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// The folder of the user's distk-gpu settings.
pub fn config_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("DISTK_GPU_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(d).join("distk-gpu"));
    }
    let home = std::env::var_os("HOME").context("neither XDG_CONFIG_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".config/distk-gpu"))
}

/// A connection recipe for one job server.
pub struct JobClient {
    host: String,
    port: u16,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    first_use: Option<Arc<Pinned>>,
    secret: String,
    rt: tokio::runtime::Runtime,
}

/// The job server's answer.
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The body when the status is a success, else the server's error as an error.
    pub fn bytes(self) -> Result<Bytes> {
        if self.status.is_success() { Ok(self.body) } else { self.json().map(|_| Bytes::new()) }
    }

    /// The body as JSON when the status is a success, else the server's error as an error.
    pub fn json(self) -> Result<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null);
        if !self.status.is_success() {
            let msg = v.get("error").and_then(|e| e.as_str()).unwrap_or("(no message)");
            bail!("the job server answered {}: {msg}", self.status);
        }
        Ok(v)
    }
}

/// How a client reaches and trusts a job server (`--server`, `--secret-file`, and a pin or a CA).
#[derive(Clone, Debug)]
pub struct ServerAccess {
    /// The job server's https:// URL.
    pub server: String,
    /// File holding the caller's secret.
    pub secret_file: PathBuf,
    /// The SHA-256 of the server's certificate to trust.
    pub server_cert_sha256: Option<String>,
    /// A PEM CA whose certificates to trust.
    pub ca: Option<PathBuf>,
}

impl JobClient {
    /// A client for `args.server` with the secret of `args.secret_file`.
    pub fn new(args: &ServerAccess) -> Result<Self> {
        let rest = args
            .server
            .strip_prefix("https://")
            .ok_or_else(|| {
                anyhow!("--server {}: give an https:// URL, e.g. https://jobs.example.org:8443", args.server)
            })?
            .trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse::<u16>().with_context(|| format!("--server {}: bad port", args.server))?,
            ),
            _ => (rest.trim_matches(['[', ']']).to_string(), 8443),
        };
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .with_context(|| format!("--server {}: cannot resolve {host}", args.server))?
            .next()
            .ok_or_else(|| anyhow!("--server {}: {host} resolves to no address", args.server))?;
        let alpn: &[&[u8]] = &[b"http/1.1"];
        let (tls, first_use) = match (&args.server_cert_sha256, &args.ca) {
            (Some(h), _) => (Trust::Pinned(parse_sha256(h)?).client_config(alpn)?, None),
            (None, Some(ca)) => (Trust::ca_file(ca)?.client_config(alpn)?, None),
            (None, None) => {
                let v = Arc::new(Pinned::first_use());
                (v.client_config(alpn)?, Some(v))
            }
        };
        let secret = read_secret_file(&args.secret_file)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(JobClient { host, port, addr, tls: Arc::new(tls), first_use, secret, rt })
    }

    fn check_first_use(&self) -> Result<()> {
        let Some(v) = &self.first_use else { return Ok(()) };
        let seen = v.seen().ok_or_else(|| anyhow!("no certificate seen"))?;
        let file = config_dir()?.join("known_servers.json");
        let mut known: BTreeMap<String, String> = match std::fs::read(&file) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| format!("{} does not parse", file.display()))?,
            Err(_) => BTreeMap::new(),
        };
        let key = format!("{}:{}", self.host, self.port);
        match known.get(&key) {
            Some(k) if *k == hex(&seen) => Ok(()),
            Some(k) => bail!(
                "the certificate of {key} changed (remembered {k}, now {}): refusing to send the secret. If the server was re-keyed on purpose, remove its entry from {} or pass --server-cert-sha256",
                hex(&seen),
                file.display()
            ),
            None => {
                eprintln!(
                    "warning: trusting {key} on first use (certificate sha256 {}); remembered in {}. Pass --server-cert-sha256 or --ca to check it instead.",
                    hex(&seen),
                    file.display()
                );
                known.insert(key, hex(&seen));
                std::fs::create_dir_all(file.parent().unwrap_or(Path::new(".")))?;
                write_atomically(&file, |f| Ok(serde_json::to_writer_pretty(f, &known)?))
            }
        }
    }

    async fn send_async(
        &self,
        method: Method,
        path: &str,
        body: Body,
        content_type: Option<String>,
        content_length: Option<u64>,
        authenticate: bool,
    ) -> Result<Answer> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("cannot reach the job server at {}", self.addr))?;
        let name = ServerName::try_from(self.host.clone()).map_err(|e| anyhow!("server name {}: {e}", self.host))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| anyhow!("TLS with {}:{} failed: {e}", self.host, self.port))?;
        self.check_first_use()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, format!("{}:{}", self.host, self.port));
        if authenticate {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {}", self.secret));
        }
        if let Some(ct) = content_type {
            req = req.header(hyper::header::CONTENT_TYPE, ct);
        }
        // A declared length lets the server refuse an upload past its limits before reading it.
        if let Some(n) = content_length {
            req = req.header(hyper::header::CONTENT_LENGTH, n);
        }
        let resp = sender.send_request(req.body(body)?).await.context("the job server closed the connection")?;
        let status = resp.status();
        let body = resp.into_body().collect().await.context("reading the job server's answer")?.to_bytes();
        Ok(Answer { status, body })
    }

    /// A request without the secret (tests of the server's authentication).
    pub fn send_unauthenticated(&self, method: Method, path: &str) -> Result<Answer> {
        let b: Body = Full::new(Bytes::new()).map_err(|never| match never {}).boxed_unsync();
        self.rt.block_on(self.send_async(method, path, b, None, None, false))
    }

    /// A request with a small body (or none).
    pub fn send(&self, method: Method, path: &str, body: Vec<u8>) -> Result<Answer> {
        let b: Body = Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync();
        self.rt.block_on(self.send_async(method, path, b, None, None, true))
    }

    /// Submits a job: the spec, the model and optionally a data file, as a streamed multipart body.
    pub fn submit(&self, spec: &str, model: &Path, data: Option<&Path>) -> Result<Answer> {
        let boundary =
            format!("distk-{}", &hex(&sha256(self.secret.as_bytes()))[..8]) + &distk_net::auth::random_secret()?[..16];
        let part = |name: &str, file: Option<&str>, ct: &str| {
            let fname = file.map_or(String::new(), |f| format!("; filename=\"{f}\""));
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{fname}\r\nContent-Type: {ct}\r\n\r\n"
            )
        };
        let mut head = part("spec", None, "application/json").into_bytes();
        head.extend_from_slice(spec.as_bytes());
        head.extend_from_slice(b"\r\n");
        head.extend_from_slice(part("model", Some("model.onnx"), "application/octet-stream").as_bytes());
        let model_bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
        head.extend_from_slice(&model_bytes);
        head.extend_from_slice(b"\r\n");
        let boundary2 = boundary.clone();
        let end_len = format!("--{boundary}--\r\n").len() as u64;
        let mut length = head.len() as u64 + end_len;
        if let Some(d) = data {
            let fname = d.file_name().and_then(|f| f.to_str()).unwrap_or("data.parquet");
            let size = std::fs::metadata(d).with_context(|| format!("cannot read {}", d.display()))?.len();
            length += part("data", Some(fname), "application/octet-stream").len() as u64 + size + 2;
        }
        let rt = &self.rt;
        let stream_body = rt.block_on(async {
            let mut parts: Vec<futures_util::stream::BoxStream<'static, std::io::Result<Frame<Bytes>>>> =
                vec![futures_util::stream::iter([Ok(Frame::data(Bytes::from(head)))]).boxed()];
            if let Some(d) = data {
                let fname = d.file_name().and_then(|f| f.to_str()).unwrap_or("data.parquet").to_string();
                let f = tokio::fs::File::open(d).await.with_context(|| format!("cannot read {}", d.display()))?;
                let p = part("data", Some(&fname), "application/octet-stream");
                parts.push(futures_util::stream::iter([Ok(Frame::data(Bytes::from(p)))]).boxed());
                parts.push(tokio_util::io::ReaderStream::new(f).map(|r| r.map(Frame::data)).boxed());
                parts.push(futures_util::stream::iter([Ok(Frame::data(Bytes::from_static(b"\r\n")))]).boxed());
            }
            let end = format!("--{boundary2}--\r\n");
            parts.push(futures_util::stream::iter([Ok(Frame::data(Bytes::from(end)))]).boxed());
            Ok::<_, anyhow::Error>(futures_util::stream::iter(parts).flatten())
        })?;
        let body: Body = BodyExt::boxed_unsync(StreamBody::new(stream_body));
        rt.block_on(self.send_async(
            Method::POST,
            "/api/jobs",
            body,
            Some(format!("multipart/form-data; boundary={boundary}")),
            Some(length),
            true,
        ))
    }
}
