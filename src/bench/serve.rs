//! `bundleforge bench serve`: the service under a fixed-rate load, the way Shopify
//! and a dashboard would load it. A scratch database gets a generated store; a
//! `serve` process (its own process, as in production) is started on 127.0.0.1;
//! then, for a fixed time, signed webhooks and `GET …/runs/latest` requests go out
//! at fixed rates, first with the server idle and then while generate jobs run
//! back to back with `pipeline.threads = 1`.
//!
//! The load is open-loop: each request has its time in the schedule and its latency
//! counts from that time, so a slow server shows as latency rather than as fewer
//! requests (a client that waits for each answer before the next hides exactly the
//! stalls this bench looks for). Requests that cannot go out because too many are
//! in flight are counted as dropped, not retried.
//!
//! With `hostile`, a third phase runs the busy phase's load and jobs beside hostile
//! clients and a `/healthz` probe, sampling the server's memory (the `hostile` module).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::BenchError;
use crate::app;
use crate::cancel::CancelToken;
use crate::config::Settings;
use crate::domain::StoreId;
use crate::fixtures::FixtureSize;
use crate::ingest::IngestSources;

/// The store the bench generates and loads, and the shop it is.
const STORE: &str = "bench";
const SHOP: &str = "bench.myshopify.com";
/// Products the webhooks create and then keep updating.
const WEBHOOK_PRODUCTS: u64 = 300;
/// Requests in flight at once per stream before further ones count as dropped.
const MAX_IN_FLIGHT: usize = 512;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

mod hostile;
pub use hostile::{HostileClients, HostileCounts, HostileReport, Verdict};

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The `bundleforge` binary whose `serve` is measured.
    pub program: PathBuf,
    /// A config file the server reads as well (`--config`).
    pub config: Option<PathBuf>,
    pub size: FixtureSize,
    /// Length of each load phase.
    pub seconds: f64,
    pub webhook_rate: u32,
    pub get_rate: u32,
    /// Where to keep the server's log (JSON lines); by default it goes with the
    /// scratch directory.
    pub server_log: Option<PathBuf>,
    /// After the idle and busy phases, a hostile one of the same length.
    pub hostile: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServeReport {
    pub cpu: String,
    pub cores: usize,
    pub size: String,
    pub products: u64,
    pub orders: u64,
    pub seconds: f64,
    pub webhook_rate: u32,
    pub get_rate: u32,
    /// The first job (model load, every embedding computed), before any load.
    pub first_job_seconds: f64,
    pub phases: Vec<PhaseReport>,
    /// What only the hostile phase measures (its load, webhooks and jobs are its
    /// phase's, named `hostile`); absent without `hostile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostile: Option<HostileReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// `idle`, `job_running` or `hostile`.
    pub name: String,
    pub webhooks: Latencies,
    pub get_latest: Latencies,
    /// What the applier made of this phase's acknowledged webhooks.
    pub applied: Applied,
    /// Jobs that ran during the load (none when idle).
    pub jobs: JobsDuring,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latencies {
    /// Requests scheduled.
    pub scheduled: u64,
    /// Answered 200.
    pub ok: u64,
    /// Answered otherwise, or not at all within 10 s.
    pub failed: u64,
    /// Never sent: too many in flight.
    pub dropped: u64,
    /// `ok` per second of the phase.
    pub throughput_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latencies {
    /// One line of the bench's text: the phase, the stream, its rate and latencies.
    pub fn line(&self, phase: &str, what: &str) -> String {
        format!(
            "  {:<12} {:<10} {:>6.1}/s  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ok {} failed {} dropped {}\n",
            phase,
            what,
            self.throughput_per_second,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.ok,
            self.failed,
            self.dropped
        )
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    /// Acknowledged and kept by the server.
    pub accepted: u64,
    pub applied: u64,
    pub stale: u64,
    pub ignored: u64,
    pub failed: u64,
    /// From the end of the load until every kept webhook was applied.
    pub settle_seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct JobsDuring {
    pub started: u64,
    pub succeeded: u64,
    /// How the others ended (the last one is cancelled when the load ends).
    pub ended_otherwise: std::collections::BTreeMap<String, u64>,
    /// The first few distinct errors of jobs that failed.
    pub errors: Vec<String>,
    /// Share of the load window with a job running.
    pub busy_fraction: f64,
    /// Median seconds of the jobs that finished during the load.
    pub median_job_seconds: Option<f64>,
}

/// The `serve` process, killed when dropped so a failed bench leaves none behind.
struct ServeProcess {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServeProcess {
    fn failure(&self, what: &str) -> BenchError {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        BenchError::Serve(format!(
            "{what}; the server's last log lines: {}",
            tail.join(" | ")
        ))
    }
}

/// Talks to the server as the merchant's dashboard and Shopify do.
struct Client {
    http: reqwest::Client,
    url: String,
    admin: String,
    secret: String,
}

impl Client {
    async fn admin(&self, method: reqwest::Method, path: &str) -> Result<(u16, Value), String> {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.admin)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| format!("{path}: {e}"))?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    /// `GET /v1/stores/bench/runs/latest`, read to the end: whether it answered 200.
    async fn get_latest(&self) -> bool {
        let sent = self
            .http
            .get(format!("{}/v1/stores/{STORE}/runs/latest", self.url))
            .bearer_auth(&self.admin)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await;
        match sent {
            Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
            Err(_) => false,
        }
    }

    /// One signed webhook: whether it was acknowledged 200.
    async fn webhook(&self, id: u64, topic: &str, body: &Value) -> bool {
        let raw = body.to_string();
        let signature = crate::server::webhooks::sign(&self.secret, raw.as_bytes());
        let sent = self
            .http
            .post(format!("{}/webhooks/shopify", self.url))
            .header("X-Shopify-Topic", topic)
            .header("X-Shopify-Shop-Domain", SHOP)
            .header("X-Shopify-Webhook-Id", format!("bench-{id}"))
            .header("X-Shopify-Hmac-Sha256", signature)
            .header("Content-Type", "application/json")
            .timeout(REQUEST_TIMEOUT)
            .body(raw)
            .send()
            .await;
        match sent {
            Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
            Err(_) => false,
        }
    }

    /// `GET /healthz`: whether it answered 200.
    async fn healthz(&self) -> bool {
        let sent = self
            .http
            .get(format!("{}/healthz", self.url))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await;
        match sent {
            Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
            Err(_) => false,
        }
    }

    /// The size of `/metrics` in bytes: it stays small while every label is from a
    /// closed set, whatever clients invent.
    async fn metrics_bytes(&self) -> Result<u64, String> {
        let resp = self
            .http
            .get(format!("{}/metrics", self.url))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("/metrics: {e}"))?;
        let body = resp.bytes().await.map_err(|e| format!("/metrics: {e}"))?;
        Ok(body.len() as u64)
    }

    /// `bundleforge_webhooks_total` by outcome, summed over topics.
    async fn webhook_outcomes(&self) -> Result<std::collections::BTreeMap<String, u64>, String> {
        let resp = self
            .http
            .get(format!("{}/metrics", self.url))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("/metrics: {e}"))?;
        let text = resp.text().await.map_err(|e| format!("/metrics: {e}"))?;
        Ok(webhook_outcomes(&text))
    }

    async fn trigger_job(&self) -> Result<String, String> {
        let (status, body) = self
            .admin(reqwest::Method::POST, &format!("/v1/stores/{STORE}/jobs"))
            .await?;
        match body["id"].as_str() {
            Some(id) if status == 202 => Ok(id.to_owned()),
            _ => Err(format!("POST …/jobs answered {status}: {body}")),
        }
    }

    async fn job_state(&self, id: &str) -> Result<String, String> {
        let (_, body) = self
            .admin(reqwest::Method::GET, &format!("/v1/jobs/{id}"))
            .await?;
        body["state"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("job {id}: no state in {body}"))
    }

    /// Waits until the job has left `queued` and `running`: its final state.
    async fn job_end(&self, id: &str, limit: Duration) -> Result<String, String> {
        let start = Instant::now();
        loop {
            let state = self.job_state(id).await?;
            if state != "queued" && state != "running" {
                return Ok(state);
            }
            if start.elapsed() > limit {
                return Err(format!("job {id} still {state} after {limit:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Sums `bundleforge_webhooks_total{…,outcome="X"} N` lines by outcome.
fn webhook_outcomes(metrics: &str) -> std::collections::BTreeMap<String, u64> {
    let mut by = std::collections::BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("bundleforge_webhooks_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let outcome = labels
            .split(',')
            .find_map(|l| l.strip_prefix("outcome=\""))
            .map(|o| o.trim_end_matches('"'));
        if let (Some(outcome), Ok(n)) = (outcome, value.trim().parse::<f64>()) {
            *by.entry(outcome.to_owned()).or_insert(0) += n as u64;
        }
    }
    by
}

/// The `seq`th webhook of the bench: mostly product updates (new titles, so their
/// embeddings go stale as a merchant's edits would make them), then new orders and
/// inventory levels, every `updated_at` newer than the last.
fn bench_webhook(seq: u64) -> (&'static str, Value) {
    let at = chrono::DateTime::from_timestamp(1_767_225_600 + seq as i64, 0)
        .unwrap_or_default()
        .to_rfc3339();
    let k = seq % WEBHOOK_PRODUCTS;
    match seq % 10 {
        0..=5 => ("products/update", bench_product(k, seq, &at)),
        6..=8 => {
            let line = |k: u64, qty: u64| {
                json!({"id": seq * 4 + k % 4, "variant_id": 8_000_000_000u64 + k,
                       "product_id": 7_000_000_000u64 + k, "title": format!("Bench Product {k}"),
                       "quantity": qty, "price": format!("{}.00", 10 + k % 40), "sku": format!("BENCH-{k}")})
            };
            let order = json!({
                "id": 6_000_000_000u64 + seq, "name": format!("#B{seq}"),
                "created_at": at, "updated_at": at, "currency": "USD",
                "customer": {"id": 5_000_000 + seq % 997},
                "line_items": [line(k, 1), line((k + 7) % WEBHOOK_PRODUCTS, 2)]
            });
            ("orders/create", order)
        }
        _ => (
            "inventory_levels/update",
            json!({"inventory_item_id": 9_000_000_000u64 + k, "location_id": 1,
                   "available": seq % 50, "updated_at": at}),
        ),
    }
}

fn bench_product(k: u64, seq: u64, at: &str) -> Value {
    json!({
        "id": 7_000_000_000u64 + k, "title": format!("Bench Product {k} rev {seq}"),
        "body_html": "<p>Made for the load bench.</p>", "vendor": "Bench",
        "product_type": format!("Bench Type {}", k % 12), "status": "active",
        "updated_at": at,
        "variants": [{"id": 8_000_000_000u64 + k, "product_id": 7_000_000_000u64 + k,
                      "title": "Default Title", "price": format!("{}.00", 10 + k % 40),
                      "sku": format!("BENCH-{k}"), "inventory_item_id": 9_000_000_000u64 + k,
                      "inventory_quantity": 25}]
    })
}

/// Nearest-rank percentile of sorted milliseconds.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Counts of one stream of requests while they come back.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    latencies_us: std::sync::Mutex<Vec<u64>>,
}

impl Tally {
    fn record(&self, ok: bool, since: tokio::time::Instant) {
        if ok {
            self.ok.fetch_add(1, Ordering::Relaxed);
            let us = since.elapsed().as_micros() as u64;
            if let Ok(mut l) = self.latencies_us.lock() {
                l.push(us);
            }
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn latencies(&self, scheduled: u64, seconds: f64) -> Latencies {
        let mut ms: Vec<f64> = self
            .latencies_us
            .lock()
            .map(|l| l.iter().map(|&us| us as f64 / 1000.0).collect())
            .unwrap_or_default();
        ms.sort_by(f64::total_cmp);
        let ok = self.ok.load(Ordering::Relaxed);
        Latencies {
            scheduled,
            ok,
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            throughput_per_second: ok as f64 / seconds,
            p50_ms: percentile(&ms, 0.50),
            p90_ms: percentile(&ms, 0.90),
            p99_ms: percentile(&ms, 0.99),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// Requests at `rate` per second for `seconds`, each sent at its time in the
/// schedule by `send(n)`; returns once every one has come back.
async fn fixed_rate<F, Fut>(rate: u32, seconds: f64, send: F) -> Latencies
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let tally = Arc::new(Tally::default());
    let scheduled = (f64::from(rate) * seconds).round() as u64;
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let start = tokio::time::Instant::now();
    for n in 0..scheduled {
        let at = start + Duration::from_secs_f64(n as f64 / f64::from(rate.max(1)));
        tokio::time::sleep_until(at).await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            tally.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let request = send(n);
        let tally = tally.clone();
        tasks.spawn(async move {
            let ok = request.await;
            tally.record(ok, at);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    tally.latencies(scheduled, seconds)
}

/// Both streams at once for one phase.
async fn load(
    client: &Arc<Client>,
    options: &ServeOptions,
    seq: &Arc<AtomicU64>,
) -> (Latencies, Latencies) {
    let hooks = {
        let client = client.clone();
        let seq = seq.clone();
        fixed_rate(options.webhook_rate, options.seconds, move |_| {
            let client = client.clone();
            let n = seq.fetch_add(1, Ordering::Relaxed);
            async move {
                let (topic, body) = bench_webhook(n);
                client.webhook(n, topic, &body).await
            }
        })
    };
    let gets = {
        let client = client.clone();
        fixed_rate(options.get_rate, options.seconds, move |_| {
            let client = client.clone();
            async move { client.get_latest().await }
        })
    };
    tokio::join!(hooks, gets)
}

/// Waits until the server has applied every webhook it kept, by its own counts.
async fn settle(
    client: &Client,
    before: &std::collections::BTreeMap<String, u64>,
) -> Result<Applied, String> {
    let started = Instant::now();
    loop {
        let now = client.webhook_outcomes().await?;
        let delta = |k: &str| {
            now.get(k)
                .copied()
                .unwrap_or(0)
                .saturating_sub(before.get(k).copied().unwrap_or(0))
        };
        let applied = Applied {
            accepted: delta("accepted"),
            applied: delta("applied"),
            stale: delta("stale"),
            ignored: delta("ignored"),
            failed: delta("failed"),
            settle_seconds: started.elapsed().as_secs_f64(),
        };
        if applied.applied + applied.stale + applied.ignored + applied.failed >= applied.accepted {
            return Ok(applied);
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "webhooks still unapplied after 10 minutes: {applied:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> Result<u16, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(BenchError::Port)?;
    Ok(listener.local_addr().map_err(BenchError::Port)?.port())
}

/// Starts `serve` on a free port of 127.0.0.1 over `db_url` (a port taken in
/// between makes the process exit, and another is tried).
async fn start_serve(
    options: &ServeOptions,
    db_url: &str,
    dir: &Path,
    admin: &str,
    secret: &str,
) -> Result<ServeProcess, BenchError> {
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let port = free_port()?;
        let log = options
            .server_log
            .clone()
            .unwrap_or_else(|| dir.join("serve.log"));
        let log_file = std::fs::File::create(&log).map_err(|source| BenchError::Write {
            path: log.clone(),
            source,
        })?;
        let mut command = std::process::Command::new(&options.program);
        if let Some(config) = &options.config {
            command.arg("--config").arg(config);
        }
        let child = command
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("BUNDLEFORGE__DATABASE__URL", db_url)
            .env("BUNDLEFORGE__SERVER__ADMIN_TOKEN", admin)
            .env("BUNDLEFORGE__SHOPIFY__WEBHOOK_SECRET", secret)
            .env("BUNDLEFORGE__PIPELINE__THREADS", "1")
            // The bench's own token must not be what limits it.
            .env("BUNDLEFORGE__SERVER__RATE_LIMIT_PER_MINUTE", "100000000")
            .env("BUNDLEFORGE__SERVER__RATE_LIMIT_BURST", "1000000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(|e| {
                BenchError::Serve(format!("cannot start {}: {e}", options.program.display()))
            })?;
        let mut process = ServeProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = process.child.try_wait() {
                break;
            }
            let ready = http
                .get(format!("{}/readyz", process.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(process);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if start.elapsed() >= Duration::from_secs(30) {
            return Err(process.failure("the server did not become ready within 30 s"));
        }
    }
    Err(BenchError::Serve(
        "the server exited at start five times (ports taken?)".into(),
    ))
}

/// The whole bench: set-up, the first job, then the idle and the busy phase, and the
/// hostile one when asked for.
pub async fn serve(options: &ServeOptions, settings: &Settings) -> Result<ServeReport, BenchError> {
    check_options(options)?;
    let dir = tempfile::tempdir().map_err(BenchError::TempDir)?;
    let db_url = format!("sqlite://{}", dir.path().join("serve.sqlite").display());
    let (products, orders) = load_store(options, settings, dir.path(), &db_url).await?;

    let admin = format!("bench-admin-{}", ulid::Ulid::new());
    let secret = format!("bench-secret-{}", ulid::Ulid::new());
    let process = start_serve(options, &db_url, dir.path(), &admin, &secret).await?;
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(MAX_IN_FLIGHT)
            .build()
            .map_err(|e| BenchError::Serve(format!("HTTP client: {e}")))?,
        url: process.url.clone(),
        admin,
        secret,
    });
    let fail = |e: String| process.failure(&e);

    // The webhook products exist before the load updates them.
    let seq = Arc::new(AtomicU64::new(0));
    create_webhook_products(&client, &seq).await.map_err(fail)?;
    let first_job_seconds = first_job(&client).await.map_err(fail)?;
    tracing::info!(first_job_seconds, "bench store ready");

    let mut phases = Vec::new();
    for mixture in [Mixture::Idle, Mixture::JobRunning] {
        let (report, _) = phase(&client, options, &seq, mixture).await.map_err(fail)?;
        phases.push(report);
    }
    let hostile = if options.hostile {
        let pid = process.child.id();
        let (report, hostile) = hostile::run_phase(&client, options, &seq, pid)
            .await
            .map_err(fail)?;
        phases.push(report);
        Some(hostile)
    } else {
        None
    };
    drop(process);
    Ok(ServeReport {
        cpu: cpu_name(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        size: options.size.to_string(),
        products,
        orders,
        seconds: options.seconds,
        webhook_rate: options.webhook_rate,
        get_rate: options.get_rate,
        first_job_seconds,
        phases,
        hostile,
    })
}

/// Refuses options no load can be run with, before anything is set up.
fn check_options(options: &ServeOptions) -> Result<(), BenchError> {
    if !(options.seconds > 0.0 && options.seconds <= 3600.0) {
        return Err(BenchError::BadOptions(
            "seconds must be above 0 and at most 3600",
        ));
    }
    if options.webhook_rate == 0 || options.get_rate == 0 {
        return Err(BenchError::BadOptions(
            "rates must be at least 1 per second",
        ));
    }
    Ok(())
}

/// The store: a generated catalog and a year of orders, written under `dir` and
/// ingested into the scratch database; returns its products and orders.
async fn load_store(
    options: &ServeOptions,
    settings: &Settings,
    dir: &Path,
    db_url: &str,
) -> Result<(u64, u64), BenchError> {
    let generated = crate::fixtures::generate(options.size, 42);
    let store_dir = dir.join("store");
    crate::fixtures::write_store(&generated, &store_dir, true)
        .map_err(|e| BenchError::Serve(format!("cannot write the store: {e}")))?;
    let db = crate::store::open(db_url).await?;
    let outcome = app::ingest(
        db.as_ref(),
        &StoreId::parse(STORE)?,
        IngestSources::from_paths(
            Some(store_dir.join("orders.csv")),
            Some(store_dir.join("products.csv")),
            None,
            None,
        ),
        settings,
        Arc::new(crate::ingest::NoProgress),
    )
    .await?;
    Ok((outcome.report.products, outcome.report.orders))
}

/// Creates the products the load's webhooks then update, and waits until the server
/// has applied them.
async fn create_webhook_products(client: &Client, seq: &AtomicU64) -> Result<(), String> {
    for k in 0..WEBHOOK_PRODUCTS {
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let at = chrono::DateTime::from_timestamp(1_767_225_600 + n as i64, 0)
            .unwrap_or_default()
            .to_rfc3339();
        if !client
            .webhook(n, "products/create", &bench_product(k, n, &at))
            .await
        {
            return Err(format!("products/create {k} was not acknowledged"));
        }
    }
    settle(client, &Default::default()).await?;
    Ok(())
}

/// The first job loads the model and embeds every product; its run is what the GETs
/// read. Returns its seconds.
async fn first_job(client: &Client) -> Result<f64, String> {
    let started = Instant::now();
    let first = client.trigger_job().await?;
    let end = client.job_end(&first, Duration::from_secs(1800)).await?;
    if end != "succeeded" {
        return Err(format!("the first job ended {end}"));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// What runs during a phase beside the signed webhooks and the GETs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mixture {
    /// Nothing else: the server idle.
    Idle,
    /// Generate jobs back to back.
    JobRunning,
    /// Generate jobs back to back, hostile clients and a `/healthz` probe.
    Hostile,
}

impl Mixture {
    fn name(self) -> &'static str {
        match self {
            Mixture::Idle => "idle",
            Mixture::JobRunning => "job_running",
            Mixture::Hostile => "hostile",
        }
    }

    fn runs_jobs(self) -> bool {
        self != Mixture::Idle
    }
}

/// One load phase: with a mixture that runs jobs, generate jobs run back to back under
/// the load (which starts once the first of them runs), and with [`Mixture::Hostile`]
/// hostile traffic beside it; then the wait until the webhooks are applied. The
/// hostile traffic's figures come back with the phase's report.
async fn phase(
    client: &Arc<Client>,
    options: &ServeOptions,
    seq: &Arc<AtomicU64>,
    mixture: Mixture,
) -> Result<(PhaseReport, Option<hostile::HostileTraffic>), String> {
    let before = client.webhook_outcomes().await?;
    let stop = CancelToken::new();
    let keeper = if mixture.runs_jobs() {
        let (running, is_running) = tokio::sync::oneshot::channel();
        let keeper = tokio::spawn(keep_jobs_running(client.clone(), running, stop.clone()));
        // Load only once the phase's first job runs.
        if is_running.await.is_err() {
            let why = match keeper.await {
                Ok(Err(e)) => e,
                _ => "the job keeper stopped".into(),
            };
            return Err(why);
        }
        Some(keeper)
    } else {
        None
    };
    let ((webhooks, get_latest), hostile) = if mixture == Mixture::Hostile {
        let (streams, hostile) = tokio::join!(
            load(client, options, seq),
            hostile::traffic(client, options.seconds)
        );
        (streams, Some(hostile))
    } else {
        (load(client, options, seq).await, None)
    };
    stop.cancel();
    let jobs = match keeper {
        Some(keeper) => keeper.await.map_err(|e| format!("the job keeper: {e}"))??,
        None => JobsDuring::default(),
    };
    let hostile = hostile.transpose()?;
    let applied = settle(client, &before).await?;
    let name = mixture.name();
    tracing::info!(phase = name, "bench phase done");
    let report = PhaseReport {
        name: name.to_owned(),
        webhooks,
        get_latest,
        applied,
        jobs,
    };
    Ok((report, hostile))
}

/// Runs generate jobs back to back until `stop`, saying once the first is running;
/// the one running at `stop` is cancelled. Counts time with a job running from the
/// first one's start.
async fn keep_jobs_running(
    client: Arc<Client>,
    running: tokio::sync::oneshot::Sender<()>,
    stop: CancelToken,
) -> Result<JobsDuring, String> {
    let mut jobs = JobsDuring::default();
    let mut finished = Vec::new();
    let mut busy = Duration::ZERO;
    let mut running = Some(running);
    let mut load_started = None;
    while !stop.is_cancelled() {
        let id = client.trigger_job().await?;
        jobs.started += 1;
        let mut state = client.job_state(&id).await?;
        while state == "queued" {
            tokio::time::sleep(Duration::from_millis(20)).await;
            state = client.job_state(&id).await?;
        }
        let began = Instant::now();
        if let Some(tx) = running.take() {
            load_started = Some(began);
            let _ = tx.send(());
        }
        loop {
            if state != "running" {
                busy += began.elapsed();
                finished.push(began.elapsed().as_secs_f64());
                if state == "succeeded" {
                    jobs.succeeded += 1;
                } else {
                    *jobs.ended_otherwise.entry(state.clone()).or_insert(0) += 1;
                    let (_, doc) = client
                        .admin(reqwest::Method::GET, &format!("/v1/jobs/{id}"))
                        .await?;
                    let error = doc["error"]["message"].as_str().unwrap_or("").to_owned();
                    if jobs.errors.len() < 3 && !jobs.errors.contains(&error) {
                        jobs.errors.push(error);
                    }
                }
                break;
            }
            tokio::select! {
                () = stop.cancelled() => {
                    busy += began.elapsed();
                    let _ = client.admin(reqwest::Method::DELETE, &format!("/v1/jobs/{id}")).await;
                    let end = client.job_end(&id, Duration::from_secs(120)).await?;
                    *jobs.ended_otherwise.entry(end).or_insert(0) += 1;
                    break;
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            state = client.job_state(&id).await?;
        }
    }
    if let Some(at) = load_started {
        jobs.busy_fraction = (busy.as_secs_f64() / at.elapsed().as_secs_f64()).min(1.0);
    }
    finished.sort_by(f64::total_cmp);
    jobs.median_job_seconds = finished.get(finished.len() / 2).copied();
    Ok(jobs)
}

/// The processor's name, as the OS tells it.
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}

impl ServeReport {
    pub fn text(&self) -> String {
        let mut out = format!(
            "serve: {} store ({} products, {} orders) on {} ({} cores); first job {:.2} s\n\
             load per phase: {:.0} s, webhooks {}/s and GET runs/latest {}/s, open loop\n",
            self.size,
            self.products,
            self.orders,
            self.cpu,
            self.cores,
            self.first_job_seconds,
            self.seconds,
            self.webhook_rate,
            self.get_rate
        );
        for p in &self.phases {
            for (what, l) in [("webhooks", &p.webhooks), ("GET latest", &p.get_latest)] {
                out.push_str(&l.line(&p.name, what));
            }
            let a = &p.applied;
            out.push_str(&format!(
                "  {:<12} applied    {} of {} kept ({} stale, {} failed), settled {:.2} s after the load\n",
                p.name,
                a.applied + a.stale + a.ignored,
                a.accepted,
                a.stale,
                a.failed,
                a.settle_seconds
            ));
            if p.jobs.started > 0 {
                out.push_str(&format!(
                    "  {:<12} jobs       {} started, {} succeeded {:?}, a job running {:.0} % of the time, median {}\n",
                    p.name,
                    p.jobs.started,
                    p.jobs.succeeded,
                    p.jobs.ended_otherwise,
                    p.jobs.busy_fraction * 100.0,
                    p.jobs
                        .median_job_seconds
                        .map_or("-".to_owned(), |s| format!("{s:.2} s"))
                ));
            }
        }
        if let Some(hostile) = &self.hostile {
            out.push_str(&hostile.text());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_sum_over_topics_from_the_exposition() {
        let text = "# TYPE bundleforge_webhooks_total counter\n\
            bundleforge_webhooks_total{topic=\"orders/create\",outcome=\"accepted\"} 3\n\
            bundleforge_webhooks_total{topic=\"products/update\",outcome=\"accepted\"} 4\n\
            bundleforge_webhooks_total{topic=\"products/update\",outcome=\"stale\"} 1\n\
            bundleforge_http_requests_total{route=\"/\"} 9\n";
        let by = webhook_outcomes(text);
        assert_eq!(by.get("accepted"), Some(&7));
        assert_eq!(by.get("stale"), Some(&1));
        assert_eq!(by.len(), 2);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let ms: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&ms, 0.5), 50.0);
        assert_eq!(percentile(&ms, 0.99), 99.0);
        assert_eq!(percentile(&ms, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn bench_webhooks_are_ever_newer_and_mostly_product_updates() {
        let topics: Vec<&str> = (0..10).map(|n| bench_webhook(n).0).collect();
        assert_eq!(
            topics.iter().filter(|t| **t == "products/update").count(),
            6
        );
        let at = |n| {
            bench_webhook(n).1["updated_at"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        };
        assert!(at(11) > at(10));
    }
}
