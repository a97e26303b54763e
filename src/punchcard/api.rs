//! The HTTPS JSON API of the job server. Every call carries `Authorization: Bearer <secret>`; a
//! caller sees only the jobs of its identity; one job runs per secret at a time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use distk_net::auth::{Secrets, random_secret};
use distk_net::tls::{hex, sha256};
use distk_onnx::OnnxModel;
use tokio::io::AsyncWriteExt;

use crate::distributed::ps::RunProgress;
use crate::job_spec::JobSpec;
use crate::punchcard::job_process::{self, CHECKPOINT_DIR, JobEnd, JobLaunch, JobLimits, JobProcess};
use crate::punchcard::jobs::{JobRecord, JobRequest, JobState, JobStore, now};
use crate::punchcard::paths::resolve_under;
use crate::runtime::DeviceChoice;
use crate::trainers::TrainerKind;

/// A job in progress.
struct Running {
    id: String,
    process: Arc<JobProcess>,
    progress: Arc<Mutex<RunProgress>>,
}

/// What the handlers share.
pub struct Inner {
    store: JobStore,
    running: HashMap<String, Running>,
    /// Secrets with an upload in progress.
    uploading: HashMap<String, String>,
}

impl Inner {
    fn uploads_of(&self, identity: &str) -> usize {
        self.uploading.values().filter(|who| *who == identity).count()
    }
}

/// The server's configuration and state.
pub struct Api {
    inner: Mutex<Inner>,
    secrets: Secrets,
    data_root: Option<PathBuf>,
    max_workers: u32,
    max_upload: u64,
    device: DeviceChoice,
    adapter: Option<usize>,
    limits: JobLimits,
    max_uploads_per_identity: usize,
    max_stored_per_identity: u64,
}

/// How the server runs jobs.
pub struct ApiConfig {
    /// Folder under which jobs may name their data.
    pub data_root: Option<PathBuf>,
    /// Most local workers a job may ask for.
    pub max_workers: u32,
    /// Largest upload in bytes.
    pub max_upload: u64,
    /// Where jobs train.
    pub device: DeviceChoice,
    /// The adapter jobs train on.
    pub adapter: Option<usize>,
    /// Each job process's limits.
    pub limits: JobLimits,
    /// Most uploads one identity may send at once (one per secret in any case).
    pub max_uploads_per_identity: usize,
    /// Most bytes the jobs of one identity may keep on the server.
    pub max_stored_per_identity: u64,
}

impl Api {
    /// A server over `store`.
    pub fn new(store: JobStore, secrets: Secrets, config: ApiConfig) -> Self {
        Api {
            inner: Mutex::new(Inner { store, running: HashMap::new(), uploading: HashMap::new() }),
            secrets,
            data_root: config.data_root,
            max_workers: config.max_workers,
            max_upload: config.max_upload,
            device: config.device,
            adapter: config.adapter,
            limits: config.limits,
            max_uploads_per_identity: config.max_uploads_per_identity,
            max_stored_per_identity: config.max_stored_per_identity,
        }
    }

    /// Takes up the jobs a stopped server left running: each resumes from its checkpoint folder
    /// (every commit its parameter server acknowledged is kept), or, without one, is marked failed.
    pub fn resume_interrupted(self: &Arc<Self>) {
        let interrupted: Vec<JobRecord> =
            self.lock().store.jobs.values().filter(|r| !r.state.is_final()).cloned().collect();
        for mut r in interrupted {
            let dir = self.lock().store.job_dir(&r.id);
            if r.cancel_requested {
                // Its owner cancelled it before the server stopped: it stays cancelled.
                (r.state, r.finished) = (JobState::Cancelled, Some(now()));
                r.has_model = dir.join("trained.onnx").exists();
                r.error = Some("cancelled; the job server stopped before the job had ended".into());
                if let Err(e) = self.lock().store.save(&r) {
                    eprintln!("job {}: cannot save its record: {e:#}", r.id);
                }
                continue;
            }
            let launch = std::fs::read(dir.join(job_process::LAUNCH_FILE))
                .ok()
                .and_then(|b| serde_json::from_slice::<JobLaunch>(&b).ok())
                .filter(|_| distk_net::durable::snapshot_path(&dir.join(CHECKPOINT_DIR)).exists());
            let Some(mut launch) = launch else {
                r.state = JobState::Failed;
                r.error =
                    Some("the job server stopped before the job's first checkpoint: nothing of it was kept".into());
                r.finished = Some(now());
                if let Err(e) = self.lock().store.save(&r) {
                    eprintln!("job {}: cannot save its record: {e:#}", r.id);
                }
                continue;
            };
            // The job goes on under this server's limits and device, not those it started with.
            (launch.resume, launch.server_pid) = (true, std::process::id());
            (launch.limits, launch.device, launch.adapter) = (self.limits, self.device.name().into(), self.adapter);
            r.resumes += 1;
            match self.launch(&r, &launch) {
                Ok(()) => eprintln!("job {} ({}) of {}: resumed from its checkpoint", r.id, r.name, r.owner),
                Err(e) => {
                    eprintln!("job {}: cannot resume it: {}", r.id, e.1);
                    (r.state, r.error, r.finished) = (
                        JobState::Failed,
                        Some(format!("the restarted server could not resume it: {}", e.1)),
                        Some(now()),
                    );
                    if let Err(e) = self.lock().store.save(&r) {
                        eprintln!("job {}: cannot save its record: {e:#}", r.id);
                    }
                }
            }
        }
    }

    /// Saves `record` as running and starts its process; the process's end is recorded.
    fn launch(self: &Arc<Self>, record: &JobRecord, launch: &JobLaunch) -> Result<(), ApiError> {
        let id = record.id.clone();
        let progress = Arc::new(Mutex::new(record.progress.clone()));
        let dir = self.lock().store.job_dir(&id);
        job_process::write_launch(&dir, launch).map_err(|e| internal(format!("{e:#}")))?;
        let mut inner = self.lock();
        // One job per secret, checked again under the lock that records the job as running.
        running_conflict(&inner, &record.secret_id)?;
        inner.store.save(record).map_err(internal)?;
        let (api, secret_id, id2, progress2) = (self.clone(), record.secret_id.clone(), id.clone(), progress.clone());
        let process = job_process::start(&dir, launch.limits, progress.clone(), move |end| {
            api.finish(&id2, &secret_id, &progress2, end)
        });
        let process = match process {
            Ok(p) => p,
            Err(e) => {
                let mut r = record.clone();
                (r.state, r.error, r.finished) = (JobState::Failed, Some(format!("{e:#}")), Some(now()));
                let _ = inner.store.save(&r);
                return Err(internal(format!("{e:#}")));
            }
        };
        inner.running.insert(record.secret_id.clone(), Running { id, process, progress });
        Ok(())
    }

    /// Records how job `id` ended and frees its secret.
    fn finish(&self, id: &str, secret_id: &str, progress: &Mutex<RunProgress>, end: JobEnd) {
        // Nothing else touches the folder of a job in `running`: the slow work goes outside the lock.
        let dir = self.lock().store.job_dir(id);
        // The trained model and history were written readable; the job's folder is private.
        if let Err(e) = crate::data::atomic::make_private_tree(&dir) {
            eprintln!("job {id}: {e:#}");
        }
        {
            let mut inner = self.lock();
            if inner.running.get(secret_id).is_some_and(|run| run.id == id) {
                inner.running.remove(secret_id);
            }
            let Some(mut r) = inner.store.jobs.get(id).cloned() else { return };
            (r.state, r.error) = (end.state, end.error);
            r.progress = progress.lock().unwrap_or_else(|p| p.into_inner()).clone();
            r.finished = Some(now());
            r.has_model = dir.join("trained.onnx").exists();
            if let Err(e) = inner.store.save(&r) {
                eprintln!("job {id}: cannot save its record: {e:#}");
            }
            eprintln!(
                "job {id} ({}): {:?}{}",
                r.name,
                r.state,
                r.error.as_ref().map_or(String::new(), |e| format!(": {e}"))
            );
        }
        // Once the end is recorded, the job is not resumed: its snapshots and log only take room.
        let checkpoints = dir.join(CHECKPOINT_DIR);
        if checkpoints.exists()
            && let Err(e) = std::fs::remove_dir_all(&checkpoints)
        {
            eprintln!("job {id}: cannot remove {}: {e}", checkpoints.display());
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An error answered as `{"error": ...}` with a status.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// The caller's identity and secret fingerprint.
struct Caller {
    identity: String,
    secret_id: String,
}

fn authenticate(api: &Api, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let unauthorized = || {
        ApiError(StatusCode::UNAUTHORIZED, "missing or unknown secret: send `Authorization: Bearer <secret>`".into())
    };
    let value = headers.get(header::AUTHORIZATION).ok_or_else(unauthorized)?;
    let secret = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or_else(unauthorized)?.trim();
    let identity = api.secrets.identify(secret.as_bytes()).ok_or_else(unauthorized)?;
    Ok(Caller { identity: identity.to_string(), secret_id: hex(&sha256(secret.as_bytes()))[..16].to_string() })
}

fn with_live_progress(inner: &Inner, mut r: JobRecord) -> JobRecord {
    if let Some(run) = inner.running.values().find(|run| run.id == r.id) {
        r.progress = run.progress.lock().unwrap_or_else(|p| p.into_inner()).clone();
    }
    r
}

fn own_job(inner: &Inner, caller: &Caller, id: &str) -> Result<JobRecord, ApiError> {
    match inner.store.jobs.get(id) {
        Some(r) if r.owner == caller.identity => Ok(with_live_progress(inner, r.clone())),
        _ => Err(ApiError(StatusCode::NOT_FOUND, format!("no job `{id}` of yours"))),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The most bytes of request headers (names and values) a request may have: a secret and a few
/// ordinary headers need well under 1 KiB.
pub const MAX_HEADER_BYTES: usize = 16 << 10;

/// Answers 431 to a request whose headers exceed [`MAX_HEADER_BYTES`], before any handler (and
/// before the secret is looked at).
async fn limit_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let bytes: usize = request.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if bytes > MAX_HEADER_BYTES {
        return ApiError(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request's headers have {bytes} bytes, at most {MAX_HEADER_BYTES}"),
        )
        .into_response();
    }
    next.run(request).await
}

/// The router (uploads are limited by the handler, which counts every field against the limit).
pub fn router(api: Arc<Api>) -> axum::Router {
    axum::Router::new()
        .route("/api/jobs", post(submit).get(list))
        .route("/api/jobs/{id}", get(status).delete(delete))
        .route("/api/jobs/{id}/model", get(model))
        .route("/api/jobs/{id}/history", get(history))
        .route("/api/jobs/{id}/cancel", post(cancel))
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(limit_headers))
        .with_state(api)
}

async fn list(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Json<Vec<JobRecord>>, ApiError> {
    let caller = authenticate(&api, &headers)?;
    let inner = api.lock();
    let jobs = inner
        .store
        .jobs
        .values()
        .filter(|r| r.owner == caller.identity)
        .map(|r| with_live_progress(&inner, r.clone()))
        .collect();
    Ok(Json(jobs))
}

async fn status(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<JobRecord>, ApiError> {
    let caller = authenticate(&api, &headers)?;
    Ok(Json(own_job(&api.lock(), &caller, &id)?))
}

async fn file_response(path: PathBuf, content_type: &'static str, what: &str) -> Result<Response, ApiError> {
    let f = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError(StatusCode::NOT_FOUND, format!("the job has no {what} (yet)")))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(f));
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// Streams file `name` of the caller's job `id`.
async fn job_file(
    api: &Api,
    headers: &HeaderMap,
    id: &str,
    name: &str,
    content_type: &'static str,
    what: &str,
) -> Result<Response, ApiError> {
    let caller = authenticate(api, headers)?;
    let dir = {
        let inner = api.lock();
        own_job(&inner, &caller, id)?;
        inner.store.job_dir(id)
    };
    file_response(dir.join(name), content_type, what).await
}

async fn model(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    job_file(&api, &headers, &id, "trained.onnx", "application/octet-stream", "trained model").await
}

async fn history(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    job_file(&api, &headers, &id, "history.json", "application/json", "history").await
}

async fn cancel(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<(StatusCode, Json<JobRecord>), ApiError> {
    let caller = authenticate(&api, &headers)?;
    let mut inner = api.lock();
    let mut r = own_job(&inner, &caller, &id)?;
    match inner.running.values().find(|run| run.id == id) {
        Some(run) => {
            run.process.cancel();
            // Kept in the record, so that a server restarted before the job ends does not resume it.
            r.cancel_requested = true;
            inner.store.save(&r).map_err(internal)?;
            Ok((StatusCode::ACCEPTED, Json(r)))
        }
        None => Err(ApiError(StatusCode::CONFLICT, format!("job `{id}` is not running (it is {:?})", r.state))),
    }
}

async fn delete(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    let caller = authenticate(&api, &headers)?;
    let mut inner = api.lock();
    let r = own_job(&inner, &caller, &id)?;
    if !r.state.is_final() {
        return Err(ApiError(StatusCode::CONFLICT, format!("job `{id}` is {:?}: cancel it first", r.state)));
    }
    inner.store.delete(&id).map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

fn running_conflict(inner: &Inner, secret_id: &str) -> Result<(), ApiError> {
    if let Some(run) = inner.running.get(secret_id) {
        let name = inner.store.jobs.get(&run.id).map_or("", |r| r.name.as_str());
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("job `{}` ({name}) is running under this secret; wait for it or cancel it", run.id),
        ));
    }
    Ok(())
}

/// Bytes read past the upload limit before giving up on a clean answer: reading the rest of a
/// slightly oversized body lets the client see the 413 instead of a reset connection.
const DRAIN_BYTES: u64 = 64 << 20;

/// How long an upload may send nothing before it is refused (408): a client that stops sending
/// in the middle of a body must not hold its connection and upload slot for ever.
const UPLOAD_STALL: std::time::Duration = std::time::Duration::from_secs(60);

fn stalled() -> ApiError {
    ApiError(
        StatusCode::REQUEST_TIMEOUT,
        format!("the upload sent nothing for {} s and was dropped", UPLOAD_STALL.as_secs()),
    )
}

/// The most bytes a job spec may have (it is JSON of a few hundred bytes; it is held in memory).
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

/// Streams a field to `path` (or, with `path` None, into memory), counting every uploaded byte
/// against `limit`. Past the limit the rest is read and dropped (up to [`DRAIN_BYTES`]) and 413 is
/// answered.
async fn save_field(
    field: &mut axum::extract::multipart::Field<'_>,
    path: Option<&std::path::Path>,
    total: &mut u64,
    limit: u64,
    limit_name: &str,
) -> Result<Vec<u8>, ApiError> {
    let mut file = match path {
        // Uploads are the user's data: readable by the server's user alone.
        Some(p) => Some(
            tokio::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(p)
                .await
                .map_err(internal)?,
        ),
        None => None,
    };
    let mut kept = Vec::new();
    let too_large = || ApiError(StatusCode::PAYLOAD_TOO_LARGE, format!("the upload exceeds {limit_name}"));
    while let Some(chunk) =
        tokio::time::timeout(UPLOAD_STALL, field.chunk()).await.map_err(|_| stalled())?.map_err(upload_error)?
    {
        *total += chunk.len() as u64;
        if *total > limit {
            file = None;
            if *total > limit + DRAIN_BYTES {
                return Err(too_large());
            }
            continue;
        }
        match file.as_mut() {
            Some(f) => f.write_all(&chunk).await.map_err(internal)?,
            None => kept.extend_from_slice(&chunk),
        }
    }
    if *total > limit {
        // Read what is left of the body so the answer reaches the client.
        return Err(too_large());
    }
    if let Some(mut f) = file {
        f.flush().await.map_err(internal)?;
    }
    Ok(kept)
}

fn upload_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(status, "the upload exceeds the server's --max-upload-mb".into())
    } else {
        // A body that ends early or breaks off is the client's fault, not the server's.
        let status = if status.is_server_error() { StatusCode::BAD_REQUEST } else { status };
        ApiError(status, format!("the upload is not valid multipart/form-data: {}", e.body_text()))
    }
}

/// An upload in progress under a secret: the secret and a share of its identity's uploads are
/// held until it ends.
struct UploadSlot {
    api: Arc<Api>,
    secret_id: String,
}

impl UploadSlot {
    /// Takes the slot of `caller`, answering 409 while the secret has a job or an upload running
    /// and 429 while its identity has its most uploads in progress.
    fn take(api: &Arc<Api>, caller: &Caller) -> Result<Self, ApiError> {
        let mut inner = api.lock();
        running_conflict(&inner, &caller.secret_id)?;
        if inner.uploading.contains_key(&caller.secret_id) {
            return Err(ApiError(
                StatusCode::CONFLICT,
                "a job is being uploaded under this secret; one job runs per secret".into(),
            ));
        }
        if inner.uploads_of(&caller.identity) >= api.max_uploads_per_identity {
            return Err(ApiError(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{} uploads of `{}` are in progress, the most this server takes at once; retry when one ends",
                    api.max_uploads_per_identity, caller.identity
                ),
            ));
        }
        inner.uploading.insert(caller.secret_id.clone(), caller.identity.clone());
        Ok(UploadSlot { api: api.clone(), secret_id: caller.secret_id.clone() })
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        self.api.lock().uploading.remove(&self.secret_id);
    }
}

/// Bytes under `path` (files and folders, links not followed).
fn folder_bytes(path: &std::path::Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            std::fs::read_dir(path).map_or(0, |d| d.flatten().map(|e| folder_bytes(&e.path())).sum())
        }
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// Reads and drops what is left of a refused body (at most 4 GiB, for at most 30 s), so that the
/// client, still sending, reads the answer instead of a reset connection.
fn drain_in_background(body: Body) {
    tokio::spawn(async move {
        use http_body_util::BodyExt;
        let mut body = body;
        let mut read = 0u64;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while read < 4 << 30 {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
                _ => break,
            }
        }
    });
}

async fn submit(State(api): State<Arc<Api>>, request: axum::extract::Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    // Every refusal before the body is read drains it, so that the client reads the answer.
    let refuse = |body: Body, e: ApiError| {
        drain_in_background(body);
        Err(e)
    };
    // A caller without a valid secret gets its 401 at once: no reading on its behalf.
    let caller = authenticate(&api, &parts.headers)?;
    let slot = match UploadSlot::take(&api, &caller) {
        Ok(s) => s,
        Err(e) => return refuse(body, e),
    };
    // What this upload may add: the upload limit, and what is left of the identity's storage.
    let folders = {
        let inner = api.lock();
        let of_caller = inner.store.jobs.values().filter(|r| r.owner == caller.identity);
        of_caller.map(|r| inner.store.job_dir(&r.id)).collect::<Vec<_>>()
    };
    let stored = tokio::task::spawn_blocking(move || folders.iter().map(|d| folder_bytes(d)).sum::<u64>())
        .await
        .map_err(internal)?;
    let room = api.max_stored_per_identity.saturating_sub(stored);
    let storage_full = || {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the jobs of `{}` keep {} on this server, at most {} MiB (--max-stored-mb-per-identity): \
                 delete jobs that have ended with `distk-gpu job delete ID`",
                caller.identity,
                size_text(stored),
                api.max_stored_per_identity >> 20
            ),
        )
    };
    if room == 0 {
        return refuse(body, storage_full());
    }
    // A declared length past the limits is refused before the body is read.
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // Multipart framing around the spec, model and data (boundaries and part headers), which the
    // limits do not count.
    const FRAMING: u64 = 16 << 10;
    if let Some(n) = declared {
        if n > api.max_upload + FRAMING {
            let e = ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the upload of {} exceeds the server's limit of {} MiB (--max-upload-mb)",
                    size_text(n),
                    api.max_upload >> 20
                ),
            );
            return refuse(body, e);
        }
        if n > room + FRAMING {
            return refuse(body, storage_full());
        }
    }
    let request = axum::extract::Request::from_parts(parts, body);
    let mut multipart = Multipart::from_request(request, &api)
        .await
        .map_err(|e| bad(format!("send the job as multipart/form-data: {}", e.body_text())))?;
    let id = random_secret().map_err(internal)?[..16].to_string();
    let dir = api.lock().store.job_dir(&id);
    crate::data::atomic::private_dir(&dir).map_err(internal)?;
    // The folder goes unless the job is launched, also when this handler is dropped mid-upload.
    let mut folder = FolderGuard(Some(dir.clone()));
    let limit = api.max_upload.min(room);
    let result = receive(&api, &caller, &id, &dir, &mut multipart, limit).await;
    drop(slot);
    if result.is_ok() {
        folder.0 = None;
    }
    result.map(IntoResponse::into_response)
}

/// Removes a job folder when dropped, unless disarmed (`.0 = None`).
struct FolderGuard(Option<PathBuf>);

impl Drop for FolderGuard {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// `bytes` in MiB with one decimal, or in KiB below 1 MiB.
fn size_text(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    }
}

async fn receive(
    api: &Arc<Api>,
    caller: &Caller,
    id: &str,
    dir: &std::path::Path,
    multipart: &mut Multipart,
    limit: u64,
) -> Result<(StatusCode, Json<JobRecord>), ApiError> {
    let (mut request, mut model, mut upload): (Option<JobRequest>, Option<PathBuf>, Option<PathBuf>) =
        (None, None, None);
    let mut total = 0u64;
    let mut spec_error = None;
    let upload_limit = if limit < api.max_upload {
        format!("what is left of your storage on this server, {} (--max-stored-mb-per-identity)", size_text(limit))
    } else {
        format!("the server's limit of {} MiB (--max-upload-mb)", api.max_upload >> 20)
    };
    while let Some(mut field) = tokio::time::timeout(UPLOAD_STALL, multipart.next_field())
        .await
        .map_err(|_| stalled())?
        .map_err(upload_error)?
    {
        match field.name().unwrap_or("") {
            "spec" => {
                // The spec is held in memory: its own small limit, apart from the upload limit.
                let mut spec_bytes = 0u64;
                let text =
                    save_field(&mut field, None, &mut spec_bytes, MAX_SPEC_BYTES, "the job spec's limit of 1 MiB")
                        .await?;
                total += spec_bytes;
                match serde_json::from_slice::<JobRequest>(&text) {
                    Ok(r) => request = Some(r),
                    Err(e) => spec_error = Some(format!("the job spec is not valid JSON for a job: {e}")),
                }
            }
            "model" => {
                let p = dir.join("model.onnx");
                save_field(&mut field, Some(&p), &mut total, limit, &upload_limit).await?;
                model = Some(p);
            }
            "data" => {
                let ext = field
                    .file_name()
                    .and_then(|f| std::path::Path::new(f).extension())
                    .and_then(|e| e.to_str())
                    .map(|e| e.to_ascii_lowercase())
                    .filter(|e| e == "parquet" || e == "csv")
                    .ok_or_else(|| bad("the uploaded data must be a .parquet or .csv file"))?;
                let p = dir.join(format!("data.{ext}"));
                save_field(&mut field, Some(&p), &mut total, limit, &upload_limit).await?;
                upload = Some(p);
            }
            other => return Err(bad(format!("unexpected form field `{other}` (expected spec, model, data)"))),
        }
    }
    if let Some(e) = spec_error {
        return Err(bad(e));
    }
    let request = request.ok_or_else(|| bad("the form has no `spec` field"))?;
    let model = model.ok_or_else(|| bad("the form has no `model` field (the ONNX file)"))?;
    if !valid_name(&request.name) {
        return Err(bad("the job name must be 1-64 letters, digits, `-`, `_` or `.`"));
    }
    if request.workers == 0 || request.workers > api.max_workers {
        return Err(bad(format!("workers must be 1 to {} on this server", api.max_workers)));
    }
    let kind = request.trainer.trainer.unwrap_or(TrainerKind::Adag);
    if kind == TrainerKind::Single {
        return Err(bad("jobs run a parameter server: choose a trainer other than `single`"));
    }
    let under_root = |rel: &str| -> Result<PathBuf, ApiError> {
        let root = api
            .data_root
            .as_ref()
            .ok_or_else(|| bad("this server has no --data-root: upload the data with the job"))?;
        resolve_under(root, rel).map_err(bad)
    };
    let data = match (&upload, &request.data) {
        (Some(p), None) => p.clone(),
        (None, Some(rel)) => under_root(rel)?,
        (Some(_), Some(_)) => return Err(bad("give either an uploaded `data` file or a `data` path, not both")),
        (None, None) => return Err(bad("the job has no data: upload a file or name one under the data root")),
    };
    let validation = request.validation_data.as_deref().map(under_root).transpose()?;
    OnnxModel::load(&model).map_err(|e| bad(format!("the model is not usable: {e}")))?;
    JobSpec::resolve(&request.job, &request.trainer, kind).map_err(|e| bad(format!("{e:#}")))?;

    let record = JobRecord {
        id: id.to_string(),
        name: request.name.clone(),
        owner: caller.identity.clone(),
        secret_id: caller.secret_id.clone(),
        state: JobState::Running,
        error: None,
        progress: RunProgress::default(),
        created: now(),
        started: Some(now()),
        finished: None,
        has_model: false,
        resumes: 0,
        cancel_requested: false,
        request: request.clone(),
    };
    let launch = JobLaunch {
        model,
        data,
        validation,
        request: request.clone(),
        device: api.device.name().to_string(),
        adapter: api.adapter,
        resume: false,
        limits: api.limits,
        server_pid: std::process::id(),
    };
    api.launch(&record, &launch)?;
    eprintln!(
        "job {id} ({}) of {}: started with {} workers, trainer {}",
        request.name,
        caller.identity,
        request.workers,
        kind.name()
    );
    Ok((StatusCode::CREATED, Json(record)))
}
