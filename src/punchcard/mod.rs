//! Punchcard, the job server: an HTTPS JSON API (axum over hyper, TLS 1.3/1.2 by rustls with ring)
//! that accepts training jobs from holders of a secret, runs them with the code of
//! `run --workers`, and keeps their records, models and histories in a state directory.

pub mod api;
pub mod client;
pub mod connection_limits;
pub mod job_process;
pub mod jobs;
pub mod paths;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use distk_net::tls::Identity;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio_rustls::TlsAcceptor;

use crate::punchcard::connection_limits::ConnectionLimits;

/// Raises this process's soft limit of open files to its hard limit, so that many idle
/// connections cannot exhaust it at Debian's default soft limit of 1024. Returns the new limit.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one `rlimit` through the valid, exclusive pointer it is given and
    // reads nothing else; RLIMIT_NOFILE is a valid resource on every Unix.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads one `rlimit` through the valid pointer; raising the soft limit
        // up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(limit.rlim_cur)
}

/// Serves `app` over TLS on `listener` until the process ends; connections past `limits` are
/// closed before their handshake.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    identity: &Identity,
    app: axum::Router,
    limits: Arc<ConnectionLimits>,
) -> Result<()> {
    let tls = identity.server_config(&[b"http/1.1"]).context("TLS configuration")?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = limits.admit(peer.ip()) else {
            drop(tcp);
            continue;
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    eprintln!("TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => return,
            };
            let service = TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                // A client that closes its sending side after the request still gets the answer.
                .half_close(true)
                .serve_connection(TokioIo::new(tls), service);
            let _ = conn.await;
        });
    }
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (is the port in use?)"))
}
