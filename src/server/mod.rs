//! `bundleforge serve`: the HTTP API merchants' dashboards call, and the workers that
//! run its jobs. Jobs live in the database (see [`crate::store::JobQueue`]), so a
//! crash or a restart loses none; the process holds only what a restart may lose (the
//! cancel tokens of the runs it is working on).

pub mod catalog;
pub mod compat;
pub mod connections;
pub mod error;
pub mod extract;
pub mod guard;
pub mod jobs;
pub mod metrics;
pub mod routes;
pub mod runs;
pub mod throttle;
pub mod uploads;
pub mod webhooks;
pub mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::app::Services;
use crate::cancel::CancelToken;
use crate::domain::StoreId;
use error::ApiError;
use extract::ApiPath;

/// What every handler and worker of one process shares.
pub struct AppState {
    pub services: Arc<Services>,
    /// This process, as a job's `worker` names it: host, pid and port.
    pub worker_id: String,
    /// Wakes idle workers when a job is queued here.
    pub work_queued: Notify,
    /// Wakes the webhook applier when one is kept here.
    pub webhook_received: Arc<Notify>,
    /// Cancelled when the server shuts down: workers stop claiming, connections stop
    /// taking requests, and event streams end (they would otherwise hold their
    /// connection, and the shutdown, open for as long as their job lasts).
    pub shutdown: CancelToken,
    running: Mutex<HashMap<String, (CancelToken, Arc<worker::JobProgress>)>>,
    pub metrics: metrics::Metrics,
    /// Requests per token (keyed by the token's hash, or `admin`).
    limiter: governor::DefaultKeyedRateLimiter<String>,
    /// Failed authentications per client address.
    failed_auth: throttle::FailedAuth,
    /// Each store's latest run document as last answered, with what it was made of
    /// ([`runs::latest`]).
    pub latest_documents: Mutex<HashMap<String, (u64, axum::body::Bytes)>>,
}

impl AppState {
    pub fn new(services: Arc<Services>, port: u16) -> AppState {
        let server = &services.settings.server;
        // Both are checked to be at least 1 when the settings load.
        let per_minute = NonZeroU32::new(server.rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(server.rate_limit_burst).unwrap_or(NonZeroU32::MIN);
        let quota = governor::Quota::per_minute(per_minute).allow_burst(burst);
        AppState {
            worker_id: format!("{}:{}:{port}", host_name(), std::process::id()),
            work_queued: Notify::new(),
            webhook_received: Arc::new(Notify::new()),
            shutdown: CancelToken::new(),
            running: Mutex::new(HashMap::new()),
            metrics: metrics::Metrics::default(),
            limiter: governor::RateLimiter::keyed(quota),
            failed_auth: throttle::FailedAuth::default(),
            latest_documents: Mutex::new(HashMap::new()),
            services,
        }
    }

    /// One request of the token `key`: a 429 with `Retry-After` once it is over its
    /// rate.
    fn spend_request(&self, key: &str) -> Result<(), ApiError> {
        use governor::clock::Clock;
        let key = key.to_owned();
        match self.limiter.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                Err(ApiError::too_many_requests(wait))
            }
        }
    }

    fn track(&self, job_id: &str, cancel: CancelToken, progress: Arc<worker::JobProgress>) {
        if let Ok(mut r) = self.running.lock() {
            r.insert(job_id.to_owned(), (cancel, progress));
        }
    }

    fn untrack(&self, job_id: &str) {
        if let Ok(mut r) = self.running.lock() {
            r.remove(job_id);
        }
    }

    /// The cancel token of a run this process is working on.
    fn running_cancel(&self, job_id: &str) -> Option<CancelToken> {
        Some(self.running.lock().ok()?.get(job_id)?.0.clone())
    }

    /// The phases so far of a run this process is working on (fresher than the
    /// heartbeat's copy in the database).
    pub fn running_phases(&self, job_id: &str) -> Option<crate::pipeline::RunProgress> {
        Some(self.running.lock().ok()?.get(job_id)?.1.snapshot())
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The bearer token of a request, if it carries one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The rate limiter's key for the admin token (store tokens go by their hash, which
/// is hex and never this).
const ADMIN_KEY: &str = "admin";

/// Whether `token` is the admin token (compared in constant time: how long a wrong
/// token takes says nothing of the right one).
fn is_admin(state: &AppState, token: &str) -> bool {
    // Trimmed as the start-up check and the bearer are: a secret loaded from a file
    // often ends in a newline.
    let admin = state.services.settings.server.admin_token.expose().trim();
    !admin.is_empty() && bool::from(token.as_bytes().ct_eq(admin.as_bytes()))
}

/// A per-store token as stored: its SHA-256, hex. Lookups go by this hash, so the
/// comparison never touches the token itself.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Who made a request: `admin`, or `token:ID` for a store's token.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// Who a bearer token is.
enum Bearer {
    Admin,
    /// A store's token: the store, the token's id and its hash (its rate limiter key).
    Store {
        store: String,
        token_id: String,
        hash: String,
    },
}

/// The request's bearer token, checked: 401 without one, and for a token that is none
/// of ours (counted as a failed authentication of the caller's address: 429 once it
/// has failed too often). Nothing is spent from a rate here; the caller spends once it
/// knows the request is allowed.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Bearer, ApiError> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError::unauthorized());
    };
    if is_admin(state, token) {
        return Ok(Bearer::Admin);
    }
    let hash = token_hash(token);
    match state.services.store.token_store(&hash).await? {
        Some((store, token_id)) => Ok(Bearer::Store {
            store,
            token_id,
            hash,
        }),
        None => Err(unknown_token(state)),
    }
}

/// A token that is no token of ours: 401, or 429 once the caller's address is over its
/// failed authentications (see [`throttle`]).
fn unknown_token(state: &AppState) -> ApiError {
    let ip = throttle::client_ip();
    match state.failed_auth.fail(ip, std::time::Instant::now()) {
        Some(wait) => ApiError::too_many_failed_authentications(wait),
        None => ApiError::unauthorized(),
    }
}

/// Whether the request may act on `store`: the admin token for every store, a store's
/// own token for it (another store's data is a 403).
async fn authorize_store(
    state: &AppState,
    headers: &HeaderMap,
    store: &StoreId,
) -> Result<Caller, ApiError> {
    match authenticate(state, headers).await? {
        Bearer::Admin => {
            state.spend_request(ADMIN_KEY)?;
            Ok(Caller("admin".into()))
        }
        Bearer::Store {
            store: own,
            token_id,
            hash,
        } if own == store.as_str() => {
            state.spend_request(&hash)?;
            Ok(Caller(format!("token:{token_id}")))
        }
        Bearer::Store { .. } => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token is not for store {:?}", store.as_str()),
        )),
    }
}

/// Any valid token: the admin token, or some store's (for routes that find the store
/// from what they are asked for, and check it with [`authorize_store`] then).
async fn authorize_any(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    bearer_store(state, headers).await.map(|_| ())
}

/// The store a valid store token is for (`None` for the admin token); 401 without a
/// valid token.
async fn bearer_store(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match authenticate(state, headers).await? {
        Bearer::Admin => {
            state.spend_request(ADMIN_KEY)?;
            Ok(None)
        }
        Bearer::Store { store, hash, .. } => {
            state.spend_request(&hash)?;
            Ok(Some(store))
        }
    }
}

/// Admin routes take the admin token only (a store's token is a 403, a token that is
/// none of ours a 401).
async fn authorize_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match authenticate(state, headers).await? {
        Bearer::Admin => state.spend_request(ADMIN_KEY),
        Bearer::Store { .. } => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this route needs the admin token",
        )),
    }
}

/// `POST /v1/admin/stores/{store}/tokens`: a new token for one store, shown once. For
/// a store whose app was uninstalled this is its installation again: the uninstall is
/// lifted (its jobs and webhooks are taken again).
async fn create_token(
    State(state): State<Arc<AppState>>,
    ApiPath(store): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers).await?;
    let store_id = StoreId::parse(&store).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if state.services.store.get_store(&store_id).await?.is_none() {
        return Err(ApiError::not_found(format!("unknown store {store:?}")));
    }
    let token_id = ulid::Ulid::new().to_string();
    // Two ULIDs: 160 random bits from the thread's cryptographic generator.
    let token = format!(
        "bf_{}{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase(),
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    );
    state
        .services
        .store
        .create_token(&token_id, &store_id, &token_hash(&token), now_ms())
        .await?;
    let reinstated = state.services.store.reinstate_store(&store_id).await?;
    if reinstated {
        tracing::info!(store = %store_id, "store installed again: its uninstall is lifted");
    }
    tracing::info!(store = %store_id, token = %token_id, "token created");
    let body = json!({
        "id": token_id, "store": store_id.as_str(), "token": token, "reinstated": reinstated
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `DELETE /v1/admin/tokens/{id}`.
async fn revoke_token(
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers).await?;
    if !state.services.store.revoke_token(&id, now_ms()).await? {
        return Err(ApiError::not_found(format!("no live token {id:?}")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ShopDomainBody {
    #[serde(default)]
    shop_domain: String,
}

/// `PUT /v1/admin/stores/{store}/shop-domain`: the shop a store is, for webhooks.
async fn set_shop_domain(
    State(state): State<Arc<AppState>>,
    ApiPath(store): ApiPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers).await?;
    let store_id = StoreId::parse(&store).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let body: ShopDomainBody = parse_json_body(&state, &body, "the shop domain's")?;
    let Some(domain) = crate::store::shop_domain(&body.shop_domain) else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_input",
            format!(
                "shop_domain: {:?} is not a shop's host name (example.myshopify.com)",
                body.shop_domain
            ),
        ));
    };
    state
        .services
        .store
        .set_shop_domain(&store_id, &domain)
        .await?;
    tracing::info!(store = %store_id, shop = %domain, "shop domain set");
    Ok(axum::Json(json!({"store": store_id.as_str(), "shop_domain": domain})).into_response())
}

/// `GET /v1/admin/shops/{domain}`: which store a shop is (as webhooks resolve it).
async fn shop_store(
    State(state): State<Arc<AppState>>,
    ApiPath(domain): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers).await?;
    let Some(domain) = crate::store::shop_domain(&domain) else {
        return Err(ApiError::bad_request(format!(
            "{domain:?} is not a shop's host name"
        )));
    };
    match state.services.store.store_for_shop(&domain).await? {
        Some(store) => {
            Ok(axum::Json(json!({"shop_domain": domain, "store": store.as_str()})).into_response())
        }
        None => Err(ApiError::not_found(format!("no store is shop {domain}"))),
    }
}

/// A JSON request body, bounded in depth (`server.max_json_depth`); an empty body is
/// the type's default.
pub fn parse_json_body<T: serde::de::DeserializeOwned + Default>(
    state: &AppState,
    body: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let max = state.services.settings.server.max_json_depth;
    if json_depth(body) > max {
        return Err(ApiError::bad_request(format!(
            "{what} JSON body nests deeper than {max} levels (server.max_json_depth)"
        )));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("{what} JSON body: {e}")))
}

/// How deep a JSON text's arrays and objects nest (brackets inside strings do not
/// count). Counted before parsing, so a deep document costs one pass and no stack.
pub fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The API's routes over one process's state (see [`routes::table`]). Each route
/// checks its token and declared length before its body is read, with its own body
/// limit ([`guard`]); every body's waits are bounded.
pub fn router(state: Arc<AppState>) -> Router {
    let server = state.services.settings.server.clone();
    let mut router = Router::new();
    for (doc, handler) in routes::table() {
        let limit = guard::BodyLimit::of(&doc, &server);
        // The last layer runs first: the body's deadline, then the guard, before the
        // limit is set for the extractors.
        let handler = handler
            .route_layer(DefaultBodyLimit::max(limit.as_usize()))
            .route_layer(axum::middleware::from_fn_with_state(
                guard::RouteGuard::new(state.clone(), &doc, limit),
                guard::check_before_body,
            ))
            // Per route: an upload's body must keep coming, any other arrive whole.
            .route_layer(axum::middleware::from_fn_with_state(
                guard::BodyWait::of(state.clone(), &doc),
                guard::limit_body_wait,
            ));
        router = router.route(doc.path, handler);
    }
    router
        .fallback(not_found)
        // After every route: it is set on the routes there are.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(
            guard::BodyLimit::json(&server).as_usize(),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe_request,
        ))
        .with_state(state)
}

/// A method as a metric label: the verbs HTTP defines, else `other` (a client may
/// invent any token, and a label lives as long as the process).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
    ]
    .into_iter()
    .find(|(m, _)| m == method)
    .map_or("other", |(_, label)| label)
}

/// A request's id: the caller's `x-request-id` when it is a sensible one, else a new
/// ULID. Logged with everything the request does and sent back.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| ulid::Ulid::new().to_string())
}

/// Every request: its id and span, CORS for the configured origins, metrics by route
/// template and status, one log line.
async fn observe_request(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let id = request_id(request.headers());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| {
            state
                .services
                .settings
                .server
                .cors_origins
                .iter()
                .any(|a| a == o)
        })
        .map(str::to_owned);
    let preflight = method == axum::http::Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let mut response = if preflight {
        // A browser asking first: allowed origins get the methods and headers we take.
        match origin {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this origin is not in server.cors_origins",
            )
            .into_response(),
        }
    } else {
        let predecessor = request.uri().path().starts_with(compat::PATH_PREFIX);
        let client = request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_canonical());
        let answered = async move { json_error(next.run(request).await, predecessor).await };
        throttle::CLIENT_IP
            .scope(
                client,
                error::REQUEST_ID.scope(id.clone(), answered.instrument(span.clone())),
            )
            .await
    };
    let headers = response.headers_mut();
    if let Some(origin) = &origin
        && let Ok(v) = HeaderValue::from_str(origin)
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("location, retry-after, x-request-id"),
        );
        if preflight {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, PUT, DELETE"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type, x-request-id"),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("x-request-id", v);
    }
    let status = response.status();
    let seconds = started.elapsed().as_secs_f64();
    state.metrics.add(
        metrics::HTTP_REQUESTS,
        &[&route, method_label(&method), status.as_str()],
        1.0,
    );
    state
        .metrics
        .observe(metrics::HTTP_DURATION, &[&route], seconds);
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            ms = (seconds * 1000.0).round(),
            "answered"
        )
    });
    response
}

/// An error answered as text by axum rather than by us (a body over the limit, a
/// body cut short), put in its API's error shape (the predecessor's under its
/// paths), so that every error a caller reads is JSON. Our own errors are JSON
/// already and pass as they are.
async fn json_error(response: Response, predecessor: bool) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Such answers are a line of text; a longer one is not ours to repeat.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut answer = in_shape(ApiError::from_status(status, text), predecessor);
    for (name, value) in &parts.headers {
        if !answer.headers().contains_key(name) && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// `GET /metrics`: this process's counters and histograms, and the queue as the
/// database has it.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let store = &state.services.store;
    let m = &state.metrics;
    m.set(metrics::UP, &[], 1.0);
    match store.jobs_by_state().await {
        Ok(counts) => {
            for job_state in crate::store::JobState::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == job_state.as_str())
                    .map_or(0, |(_, n)| *n);
                m.set(metrics::JOBS, &[job_state.as_str()], n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot count jobs for metrics"),
    }
    if let Ok((depth, age_ms)) = store.queue_depth(now_ms()).await {
        m.set(metrics::QUEUE_DEPTH, &[], depth as f64);
        m.set(metrics::QUEUE_AGE, &[], age_ms.max(0) as f64 / 1000.0);
    }
    let mut response = m.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready when the database answers (with its migrations applied: the queue's table is
/// one) and the embedding model's files are on disk.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let database = state.services.store.queue_depth(now_ms()).await;
    let missing = crate::services::missing_model_files(&state.services.settings);
    let ready = database.is_ok() && missing.is_empty();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        // The probe's caller learns whether, not why: the why is the log's.
        "database": match &database {
            Ok(_) => "ok",
            Err(e) => {
                tracing::warn!(error = %e, "readiness: the database does not answer");
                "unavailable"
            }
        },
        // Open to anyone: the files' names, not where this server keeps them.
        "model_files_missing": missing
            .iter()
            .map(|p| p.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()))
            .collect::<Vec<_>>(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// A route that exists, called with a method it does not take (the router adds the
/// `Allow` header).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let predecessor = uri.path().starts_with(compat::PATH_PREFIX);
    in_shape(ApiError::method_not_allowed(&method), predecessor)
}

/// An error in the shape of the API it answers for: the predecessor's under its paths.
fn in_shape(error: ApiError, predecessor: bool) -> Response {
    if predecessor {
        compat::AppApiError::from(error).into_response()
    } else {
        error.into_response()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the HTTP server stopped: {0}")]
    Serve(std::io::Error),
}

/// Listens on `addr` (port 0: any free port).
pub async fn bind(addr: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_owned(),
            source,
        })
}

/// A running server: its address, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: CancelToken,
    tasks: tokio::task::JoinSet<()>,
}

impl Running {
    /// Stops claiming jobs and accepting requests; running jobs get
    /// `server.shutdown_seconds` to finish, then are cancelled and released.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts the API and `server.workers` job workers on `listener`.
pub fn start(services: Arc<Services>, listener: TcpListener) -> Result<Running, ServerError> {
    let addr = listener.local_addr().map_err(ServerError::Serve)?;
    let state = Arc::new(AppState::new(services, addr.port()));
    let shutdown = state.shutdown.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..state.services.settings.server.workers {
        tasks.spawn(worker::work(state.clone(), shutdown.clone()));
    }
    tasks.spawn({
        let counted = state.clone();
        crate::sync::run(
            state.services.clone(),
            state.webhook_received.clone(),
            shutdown.clone(),
            move |topic, outcome| {
                counted.metrics.add(
                    metrics::WEBHOOKS,
                    &[crate::sync::topic_label(topic), outcome.as_str()],
                    1.0,
                )
            },
        )
    });
    let app = router(state.clone());
    tasks.spawn(connections::serve(
        listener,
        app,
        state.clone(),
        shutdown.clone(),
    ));
    tracing::info!(%addr, worker = %state.worker_id, "serving");
    Ok(Running {
        addr,
        state,
        shutdown,
        tasks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn an_error_axum_answers_as_text_is_put_in_the_json_shape() {
        let text = (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Failed to buffer the request body: length limit exceeded",
        )
            .into_response();
        let answer = json_error(text, false).await;
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(answer.headers()[header::CONTENT_TYPE], "application/json");
        let body = body_json(answer).await;
        assert_eq!(body["error"]["kind"], "too_large", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("length limit")),
            "{body}"
        );

        // An empty 405 under the predecessor's paths: its shape, the Allow header kept.
        let mut empty = StatusCode::METHOD_NOT_ALLOWED.into_response();
        empty
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        let answer = json_error(empty, true).await;
        assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(answer.headers()[header::ALLOW], "GET,HEAD");
        let body = body_json(answer).await;
        assert!(body["error"].is_string(), "{body}");

        // Our own errors are JSON already and pass as they are.
        let ours = ApiError::not_found("no such route").into_response();
        let body = body_json(json_error(ours, true).await).await;
        assert_eq!(body["error"]["kind"], "not_found", "{body}");
    }
}
