//! The `--hostile` phase of `bench serve`: the open internet's traffic beside Shopify's
//! and a running job, to see that the service's defences hold without costing its
//! health probe, its memory or a single signed webhook.
//!
//! Beside the signed webhooks and `GET …/runs/latest` of the other phases and generate
//! jobs back to back, hostile clients run for the whole phase, each kind its own loops:
//! connections that send a request a byte at a time and never finish it (the header
//! deadline must shed them), webhooks that declare a 256 MiB body and carry no valid
//! signature (refused before the body is read), webhooks with invented topics and
//! requests with invented methods (no new metric series), and requests with wrong
//! tokens (the failed-authentication throttle). A `/healthz` probe runs at a fixed rate,
//! open loop as the other streams, and the server's resident memory is sampled from
//! `/proc` every 250 ms. The report ends with a verdict per criterion of the soak.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::{
    Client, Latencies, Mixture, PhaseReport, REQUEST_TIMEOUT, SHOP, STORE, ServeOptions,
    fixed_rate, phase,
};
use crate::cancel::CancelToken;
use crate::rng::WideStream;

/// `/healthz` probes per second.
const HEALTHZ_RATE: u32 = 20;
/// Connections held open with requests that never finish.
const SLOW_CONNECTIONS: u64 = 200;
/// How long a slow connection waits between bytes: one to three seconds.
const SLOW_PAUSE_MS: (usize, usize) = (1000, 3000);
/// What a slow connection sends, a byte at a time; then header bytes for ever.
const SLOW_PREFIX: &[u8] =
    b"GET /v1/stores/bench/runs/latest HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
/// The pause before a slow connection the server ended is opened again.
const SLOW_REOPEN: Duration = Duration::from_millis(100);
/// Oversize webhooks: clients at once, the body length they declare and the part of it
/// they send.
const OVERSIZE_CLIENTS: u64 = 8;
const OVERSIZE_DECLARED: u64 = 256 * 1024 * 1024;
const OVERSIZE_SENT: usize = 4096;
/// Clients of each request-driven kind and their pause between requests: together a
/// few hundred hostile requests a second beside the 200 signed webhooks.
const OVERSIZE_PAUSE: Duration = Duration::from_millis(100);
const TOPIC_CLIENTS: u64 = 4;
const TOPIC_PAUSE: Duration = Duration::from_millis(50);
const METHOD_CLIENTS: u64 = 4;
const METHOD_PAUSE: Duration = Duration::from_millis(50);
const TOKEN_CLIENTS: u64 = 2;
const TOKEN_PAUSE: Duration = Duration::from_millis(100);
/// Methods HTTP does not define for this service (and some no one defines).
const INVENTED_METHODS: &[&str] = &["FOO", "PURGE", "BREW", "PROPFIND", "MKCOL", "LINK"];
/// The hostile clients' random streams: fixed, so two runs send the same traffic.
const HOSTILE_SEED: u64 = 0x0b57_11e5;
/// How often the server's memory is read.
const RSS_EVERY: Duration = Duration::from_millis(250);
/// The soak's criteria: `/healthz` p99 under this, and memory within this of idle.
const HEALTHZ_P99_MS: f64 = 50.0;
const RSS_GROWTH_MB: f64 = 300.0;

/// What the hostile phase measured beside its [`PhaseReport`] (which holds the signed
/// webhooks, the GETs, what was applied and the jobs).
#[derive(Debug, Clone, Serialize)]
pub struct HostileReport {
    /// The `/healthz` probe: the figure the soak judges latency by.
    pub healthz: Latencies,
    /// The server's resident memory (MiB) just before the phase, and its largest while
    /// the phase ran (its job included).
    pub idle_rss_mb: f64,
    pub peak_rss_mb: f64,
    /// The size of `/metrics` before and after the phase: every label is from a closed
    /// set, so invented topics and methods add at most a few series.
    pub metrics_bytes_before: u64,
    pub metrics_bytes: u64,
    pub clients: HostileClients,
    /// One per criterion of the soak.
    pub verdicts: Vec<Verdict>,
}

/// What each kind of hostile client sent and was answered.
#[derive(Debug, Clone, Serialize)]
pub struct HostileClients {
    /// Connections sending a request a byte every one to three seconds, never finished;
    /// attempts are connections opened.
    pub slow_headers: HostileCounts,
    /// The longest the server kept one of them open (its header deadline, if it holds).
    pub slow_headers_longest_seconds: f64,
    /// Webhooks declaring 256 MiB without a valid signature, a few KiB of it sent.
    pub oversize_webhooks: HostileCounts,
    /// Webhooks with invented topics, unsigned or signed with another secret.
    pub random_topics: HostileCounts,
    /// Requests with invented methods, on the service's paths and invented ones.
    pub invented_methods: HostileCounts,
    /// Requests with tokens that are none of ours, from one address.
    pub wrong_tokens: HostileCounts,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostileCounts {
    pub attempts: u64,
    /// By HTTP status; or `closed` (the connection ended without one), `timeout` (no
    /// answer within 10 s), `connect_failed`, `open_at_end` (still held when the phase
    /// ended).
    pub statuses: BTreeMap<String, u64>,
}

/// One criterion of the soak and whether the phase met it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub criterion: String,
    pub pass: bool,
    /// The figures it was judged on.
    pub figure: String,
}

/// What the `/healthz` probe and the hostile clients saw, from [`traffic`].
pub(super) struct HostileTraffic {
    pub(super) healthz: Latencies,
    pub(super) clients: HostileClients,
}

/// The hostile phase, with the server's memory (process `pid`) read just before it and
/// sampled throughout; its [`PhaseReport`] goes with the others.
pub(super) async fn run_phase(
    client: &Arc<Client>,
    options: &ServeOptions,
    seq: &Arc<AtomicU64>,
    pid: u32,
) -> Result<(PhaseReport, HostileReport), String> {
    let idle_kb = rss_kb(pid)
        .ok_or_else(|| format!("cannot read the server's memory in /proc/{pid}/status"))?;
    let metrics_bytes_before = client.metrics_bytes().await?;
    let stop = CancelToken::new();
    let sampler = tokio::spawn(peak_rss_kb(pid, stop.clone()));
    let ran = phase(client, options, seq, Mixture::Hostile).await;
    // The sampler stops whatever the phase came to: it must not outlive the bench.
    stop.cancel();
    let peak_kb = sampler
        .await
        .map_err(|e| format!("the memory sampler: {e}"))?;
    let (report, traffic) = ran?;
    let traffic = traffic.ok_or_else(|| "the hostile phase ran no hostile traffic".to_owned())?;
    let metrics_bytes = client.metrics_bytes().await?;
    let idle_rss_mb = idle_kb as f64 / 1024.0;
    let peak_rss_mb = peak_kb.max(idle_kb) as f64 / 1024.0;
    let verdicts = judge(&traffic.healthz, idle_rss_mb, peak_rss_mb, &report);
    Ok((
        report,
        HostileReport {
            healthz: traffic.healthz,
            idle_rss_mb,
            peak_rss_mb,
            metrics_bytes_before,
            metrics_bytes,
            clients: traffic.clients,
            verdicts,
        },
    ))
}

/// The `/healthz` probe and every hostile client, for `seconds`; the clients stop once
/// the probe's last answer is back.
pub(super) async fn traffic(client: &Arc<Client>, seconds: f64) -> Result<HostileTraffic, String> {
    // Their own connections: an attacker shares no connection pool with Shopify.
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let tallies = HostileTallies::default();
    let stop = CancelToken::new();
    let mut tasks = JoinSet::new();
    spawn_raw_clients(&mut tasks, &client.url, &tallies, &stop);
    spawn_request_clients(&mut tasks, &http, &client.url, &tallies, &stop);
    let probe = client.clone();
    let healthz = fixed_rate(HEALTHZ_RATE, seconds, move |_| {
        let probe = probe.clone();
        async move { probe.healthz().await }
    })
    .await;
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    Ok(HostileTraffic {
        healthz,
        clients: tallies.report(),
    })
}

/// The outcomes of one kind of hostile client, counted as they come.
#[derive(Default)]
struct HostileTally {
    attempts: AtomicU64,
    outcomes: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl HostileTally {
    fn attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    fn record(&self, outcome: &str) {
        if let Ok(mut by) = self.outcomes.lock() {
            count_outcome(&mut by, outcome);
        }
    }

    fn counts(&self) -> HostileCounts {
        HostileCounts {
            attempts: self.attempts.load(Ordering::Relaxed),
            statuses: self
                .outcomes
                .lock()
                .map(|by| by.clone())
                .unwrap_or_default(),
        }
    }
}

fn count_outcome(by: &mut BTreeMap<String, u64>, outcome: &str) {
    *by.entry(outcome.to_owned()).or_insert(0) += 1;
}

/// Every kind's tally, shared with its clients.
#[derive(Default)]
struct HostileTallies {
    slow_headers: Arc<HostileTally>,
    /// Milliseconds.
    slow_headers_longest: Arc<AtomicU64>,
    oversize_webhooks: Arc<HostileTally>,
    random_topics: Arc<HostileTally>,
    invented_methods: Arc<HostileTally>,
    wrong_tokens: Arc<HostileTally>,
}

impl HostileTallies {
    fn report(&self) -> HostileClients {
        HostileClients {
            slow_headers: self.slow_headers.counts(),
            slow_headers_longest_seconds: self.slow_headers_longest.load(Ordering::Relaxed) as f64
                / 1000.0,
            oversize_webhooks: self.oversize_webhooks.counts(),
            random_topics: self.random_topics.counts(),
            invented_methods: self.invented_methods.counts(),
            wrong_tokens: self.wrong_tokens.counts(),
        }
    }
}

/// The random stream of the `k`th hostile client.
fn stream_for(k: u64) -> WideStream {
    WideStream::stage(HOSTILE_SEED, k)
}

/// The server's `host:port`, for the clients that speak raw TCP.
fn authority(url: &str) -> &str {
    url.strip_prefix("http://").unwrap_or(url)
}

/// The clients reqwest cannot play: slow headers and oversize bodies sent in part.
fn spawn_raw_clients(
    tasks: &mut JoinSet<()>,
    url: &str,
    tallies: &HostileTallies,
    stop: &CancelToken,
) {
    let addr = authority(url).to_owned();
    for k in 0..SLOW_CONNECTIONS {
        tasks.spawn(slow_headers(
            addr.clone(),
            tallies.slow_headers.clone(),
            tallies.slow_headers_longest.clone(),
            stop.clone(),
            stream_for(k),
        ));
    }
    for k in 0..OVERSIZE_CLIENTS {
        let (addr, mut rng) = (addr.clone(), stream_for(1_000 + k));
        let tally = tallies.oversize_webhooks.clone();
        tasks.spawn(hostile_loop(
            tally,
            stop.clone(),
            OVERSIZE_PAUSE,
            move || {
                let signature = wrong_signature(&mut rng);
                let id = rng.next_u64();
                let addr = addr.clone();
                async move { oversize_webhook(&addr, signature, id).await }
            },
        ));
    }
}

/// The clients that send whole requests: invented topics, invented methods, wrong tokens.
fn spawn_request_clients(
    tasks: &mut JoinSet<()>,
    http: &reqwest::Client,
    url: &str,
    tallies: &HostileTallies,
    stop: &CancelToken,
) {
    for k in 0..TOPIC_CLIENTS {
        let (http, url, mut rng) = (http.clone(), url.to_owned(), stream_for(2_000 + k));
        let tally = tallies.random_topics.clone();
        tasks.spawn(hostile_loop(tally, stop.clone(), TOPIC_PAUSE, move || {
            let first = random_word(&mut rng);
            let topic = format!("{first}/{}", random_word(&mut rng));
            let signature = wrong_signature(&mut rng);
            let id = rng.next_u64();
            let request = random_topic_webhook(&http, &url, &topic, signature, id);
            async move { status_of(request).await }
        }));
    }
    for k in 0..METHOD_CLIENTS {
        let (http, url, mut rng) = (http.clone(), url.to_owned(), stream_for(3_000 + k));
        let tally = tallies.invented_methods.clone();
        tasks.spawn(hostile_loop(tally, stop.clone(), METHOD_PAUSE, move || {
            let method = invented_method(&mut rng);
            let path = hostile_path(&mut rng);
            let request = http.request(method, format!("{url}{path}"));
            async move { status_of(request).await }
        }));
    }
    for k in 0..TOKEN_CLIENTS {
        let (http, url, mut rng) = (http.clone(), url.to_owned(), stream_for(4_000 + k));
        let tally = tallies.wrong_tokens.clone();
        tasks.spawn(hostile_loop(tally, stop.clone(), TOKEN_PAUSE, move || {
            let (method, path) = guarded_route(&mut rng);
            let token = format!("wrong-{}", random_word(&mut rng));
            let request = http
                .request(method, format!("{url}{path}"))
                .bearer_auth(token);
            async move { status_of(request).await }
        }));
    }
}

/// Runs `attempt` again and again, `pause` apart, until `stop`, counting its outcomes;
/// an attempt under way at `stop` is finished and counted.
async fn hostile_loop<F, Fut>(
    tally: Arc<HostileTally>,
    stop: CancelToken,
    pause_between: Duration,
    mut attempt: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    while !stop.is_cancelled() {
        tally.attempt();
        let outcome = attempt().await;
        tally.record(&outcome);
        pause(&stop, pause_between).await;
    }
}

/// Sleeps `how_long`, or less when `stop` comes first.
async fn pause(stop: &CancelToken, how_long: Duration) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(how_long) => {}
    }
}

/// A connection to `addr`, or the outcome to count instead.
async fn connect(addr: &str) -> Result<TcpStream, &'static str> {
    match tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(_)) => Err("connect_failed"),
        Err(_) => Err("timeout"),
    }
}

/// One slow-headers client: a connection at a time, each held with a request that
/// never completes until the server ends it, then the next, until `stop`.
async fn slow_headers(
    addr: String,
    tally: Arc<HostileTally>,
    longest_ms: Arc<AtomicU64>,
    stop: CancelToken,
    mut rng: WideStream,
) {
    while !stop.is_cancelled() {
        tally.attempt();
        let mut stream = match connect(&addr).await {
            Ok(stream) => stream,
            Err(outcome) => {
                tally.record(outcome);
                pause(&stop, SLOW_REOPEN).await;
                continue;
            }
        };
        let opened = Instant::now();
        match dribble(&mut stream, &mut rng, &stop).await {
            Some(outcome) => {
                let held = u64::try_from(opened.elapsed().as_millis()).unwrap_or(u64::MAX);
                longest_ms.fetch_max(held, Ordering::Relaxed);
                tally.record(&outcome);
            }
            None => tally.record("open_at_end"),
        }
        drop(stream);
        pause(&stop, SLOW_REOPEN).await;
    }
}

/// Sends [`SLOW_PREFIX`] and then header bytes, one every one to three seconds, until the
/// server answers or closes: its status, or `closed`; `None` when `stop` came first.
async fn dribble(
    stream: &mut TcpStream,
    rng: &mut WideStream,
    stop: &CancelToken,
) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    let mut sent = 0usize;
    loop {
        let wait = Duration::from_millis(rng.range(SLOW_PAUSE_MS.0, SLOW_PAUSE_MS.1) as u64);
        let read = tokio::select! {
            read = stream.read(&mut buf) => read,
            () = tokio::time::sleep(wait) => {
                let byte = SLOW_PREFIX.get(sent).copied().unwrap_or(b'a');
                if stream.write_all(&[byte]).await.is_err() {
                    return Some("closed".to_owned());
                }
                sent += 1;
                continue;
            }
            () = stop.cancelled() => return None,
        };
        if let Ok(n @ 1..) = read {
            head.extend_from_slice(&buf[..n]);
            if !head.contains(&b'\n') && head.len() < buf.len() {
                continue;
            }
        }
        return Some(outcome_of(&head));
    }
}

/// One webhook declaring a 256 MiB body and no valid signature, of which only the first
/// few KiB are sent: its status (413 expected: refused by its declared length, unread).
async fn oversize_webhook(addr: &str, signature: Option<String>, id: u64) -> String {
    let mut stream = match connect(addr).await {
        Ok(stream) => stream,
        Err(outcome) => return outcome.to_owned(),
    };
    let mut head = format!(
        "POST /webhooks/shopify HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {OVERSIZE_DECLARED}\r\nX-Shopify-Topic: products/update\r\n\
         X-Shopify-Shop-Domain: {SHOP}\r\nX-Shopify-Webhook-Id: hostile-{id}\r\n"
    );
    if let Some(signature) = signature {
        head.push_str(&format!("X-Shopify-Hmac-Sha256: {signature}\r\n"));
    }
    head.push_str("\r\n");
    let mut body = b"{\"id\": 1, \"title\": \"".to_vec();
    body.resize(OVERSIZE_SENT, b'x');
    // The server may answer and close before all of it is written: its answer is read
    // all the same.
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await
    })
    .await;
    read_status(&mut stream).await
}

/// The status of the answer on `stream`, or `closed` (it ended without a status line)
/// or `timeout` (nothing within 10 s).
async fn read_status(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        while !head.contains(&b'\n') && head.len() < buf.len() {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    match (status_line(&head), read) {
        (Some(status), _) => status.to_string(),
        (None, Ok(())) => "closed".to_owned(),
        (None, Err(_)) => "timeout".to_owned(),
    }
}

/// What the first bytes of an answer say: its status, else `closed`.
fn outcome_of(head: &[u8]) -> String {
    status_line(head).map_or_else(|| "closed".to_owned(), |status| status.to_string())
}

/// The status code of an HTTP/1 status line at the start of `head`.
fn status_line(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_ascii_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// A webhook with topic `topic`, unsigned or signed with another secret (401 expected).
fn random_topic_webhook(
    http: &reqwest::Client,
    url: &str,
    topic: &str,
    signature: Option<String>,
    id: u64,
) -> reqwest::RequestBuilder {
    let body = json!({"id": id, "title": "hostile"}).to_string();
    let request = http
        .post(format!("{url}/webhooks/shopify"))
        .header("X-Shopify-Topic", topic)
        .header("X-Shopify-Shop-Domain", SHOP)
        .header("X-Shopify-Webhook-Id", format!("hostile-{id}"))
        .header("Content-Type", "application/json")
        .body(body);
    match signature {
        Some(signature) => request.header("X-Shopify-Hmac-Sha256", signature),
        None => request,
    }
}

/// Sends `request` and reads its answer to the end: its status, or `timeout`/`closed`.
async fn status_of(request: reqwest::RequestBuilder) -> String {
    match request.timeout(REQUEST_TIMEOUT).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            // Read whole, so the connection can serve the next request.
            let _ = resp.bytes().await;
            status.to_string()
        }
        Err(e) if e.is_timeout() => "timeout".to_owned(),
        Err(_) => "closed".to_owned(),
    }
}

/// No signature, one that is not base64, or a well-formed one made with another secret.
fn wrong_signature(rng: &mut WideStream) -> Option<String> {
    match rng.below(3) {
        0 => None,
        1 => Some("not-a-signature".to_owned()),
        _ => {
            let body = random_word(rng);
            Some(crate::server::webhooks::sign(
                "not-the-secret",
                body.as_bytes(),
            ))
        }
    }
}

/// A random lowercase word of 3 to 10 letters.
fn random_word(rng: &mut WideStream) -> String {
    let len = rng.range(3, 10);
    (0..len)
        .map(|_| char::from(b'a' + rng.below(26) as u8))
        .collect()
}

/// A method the service does not take: a known invention or a random uppercase word.
fn invented_method(rng: &mut WideStream) -> reqwest::Method {
    let word = if rng.chance(0.5) {
        (*rng.pick(INVENTED_METHODS)).to_owned()
    } else {
        random_word(rng).to_ascii_uppercase()
    };
    // Uppercase letters always make a method; the fallback is never taken.
    reqwest::Method::from_bytes(word.as_bytes()).unwrap_or(reqwest::Method::PATCH)
}

/// A path: one of the service's routes, or one it does not have.
fn hostile_path(rng: &mut WideStream) -> String {
    match rng.below(6) {
        0 => "/healthz".to_owned(),
        1 => "/webhooks/shopify".to_owned(),
        2 => format!("/v1/stores/{STORE}/jobs"),
        3 => format!("/v1/stores/{STORE}/runs/latest"),
        4 => format!("/v1/jobs/{:x}", rng.next_u64()),
        _ => {
            let first = random_word(rng);
            format!("/{first}/{}", random_word(rng))
        }
    }
}

/// A route that needs a token: the latest run, a new job, a job read or cancelled.
fn guarded_route(rng: &mut WideStream) -> (reqwest::Method, String) {
    let job = format!("{:x}", rng.next_u64());
    match rng.below(4) {
        0 => (
            reqwest::Method::GET,
            format!("/v1/stores/{STORE}/runs/latest"),
        ),
        1 => (reqwest::Method::POST, format!("/v1/stores/{STORE}/jobs")),
        2 => (reqwest::Method::GET, format!("/v1/jobs/{job}")),
        _ => (reqwest::Method::DELETE, format!("/v1/jobs/{job}")),
    }
}

/// The resident memory of process `pid` in KiB.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    vm_rss_kb(&status)
}

/// The `VmRSS:` figure of a `/proc/<pid>/status` text, in KiB.
fn vm_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The largest resident memory of process `pid` in KiB, read every [`RSS_EVERY`] until
/// `stop` (0 when it could never be read).
async fn peak_rss_kb(pid: u32, stop: CancelToken) -> u64 {
    let mut peak = 0u64;
    while !stop.is_cancelled() {
        peak = peak.max(rss_kb(pid).unwrap_or(0));
        pause(&stop, RSS_EVERY).await;
    }
    peak
}

impl Verdict {
    fn new(criterion: String, pass: bool, figure: String) -> Verdict {
        Verdict {
            criterion,
            pass,
            figure,
        }
    }
}

/// The soak's criteria, judged on the hostile phase: the probe's p99 with every probe
/// answered; memory within [`RSS_GROWTH_MB`] of idle; every signed webhook acknowledged,
/// kept once and applied, none failed; a job succeeded and none failed (the one
/// cancelled at the end aside).
fn judge(
    healthz: &Latencies,
    idle_rss_mb: f64,
    peak_rss_mb: f64,
    report: &PhaseReport,
) -> Vec<Verdict> {
    let (w, a, j) = (&report.webhooks, &report.applied, &report.jobs);
    let done = a.applied + a.stale + a.ignored;
    let failed_jobs: u64 = j
        .ended_otherwise
        .iter()
        .filter(|(end, _)| !matches!(end.as_str(), "cancelled" | "succeeded"))
        .map(|(_, n)| n)
        .sum();
    let growth = peak_rss_mb - idle_rss_mb;
    vec![
        Verdict::new(
            format!("/healthz p99 < {HEALTHZ_P99_MS} ms, every probe answered"),
            healthz.ok > 0
                && healthz.p99_ms < HEALTHZ_P99_MS
                && healthz.failed == 0
                && healthz.dropped == 0,
            format!(
                "p99 {:.2} ms, max {:.2} ms; {} ok, {} failed, {} dropped",
                healthz.p99_ms, healthz.max_ms, healthz.ok, healthz.failed, healthz.dropped
            ),
        ),
        Verdict::new(
            format!("peak RSS within {RSS_GROWTH_MB} MB of idle"),
            growth <= RSS_GROWTH_MB,
            format!("idle {idle_rss_mb:.1} MB, peak {peak_rss_mb:.1} MB (+{growth:.1} MB)"),
        ),
        Verdict::new(
            "every signed webhook applied once".to_owned(),
            w.scheduled > 0
                && w.ok == w.scheduled
                && a.accepted == w.ok
                && a.failed == 0
                && done == a.accepted,
            format!(
                "{} of {} acknowledged, {} kept, {} applied ({} stale, {} ignored), {} failed",
                w.ok, w.scheduled, a.accepted, done, a.stale, a.ignored, a.failed
            ),
        ),
        Verdict::new(
            "the job succeeds".to_owned(),
            j.succeeded >= 1 && failed_jobs == 0,
            format!(
                "{} started, {} succeeded, {} failed, ended otherwise {:?}",
                j.started, j.succeeded, failed_jobs, j.ended_otherwise
            ),
        ),
    ]
}

/// `401 × 12, closed × 3`; `none` when empty.
fn histogram_text(by: &BTreeMap<String, u64>) -> String {
    if by.is_empty() {
        return "none".to_owned();
    }
    by.iter()
        .map(|(outcome, n)| format!("{outcome} × {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl HostileReport {
    /// The hostile section of the bench's text, after the phases' lines.
    pub fn text(&self) -> String {
        let mut out = self.healthz.line("hostile", "healthz");
        out.push_str(&format!(
            "  hostile      memory     idle {:.1} MB, peak {:.1} MB (+{:.1} MB)\n",
            self.idle_rss_mb,
            self.peak_rss_mb,
            self.peak_rss_mb - self.idle_rss_mb
        ));
        out.push_str(&format!(
            "  hostile      /metrics   {} bytes before the phase, {} after\n",
            self.metrics_bytes_before, self.metrics_bytes
        ));
        let c = &self.clients;
        for (what, counts) in [
            ("slow headers", &c.slow_headers),
            ("oversize", &c.oversize_webhooks),
            ("topics", &c.random_topics),
            ("methods", &c.invented_methods),
            ("wrong tokens", &c.wrong_tokens),
        ] {
            out.push_str(&format!(
                "  hostile      {what:<12} {} sent: {}\n",
                counts.attempts,
                histogram_text(&counts.statuses)
            ));
        }
        out.push_str(&format!(
            "  hostile      slow-header connections held at most {:.1} s\n",
            c.slow_headers_longest_seconds
        ));
        for v in &self.verdicts {
            let mark = if v.pass { "PASS" } else { "FAIL" };
            out.push_str(&format!("  {mark} {}: {}\n", v.criterion, v.figure));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Applied, JobsDuring};
    use super::*;

    #[test]
    fn a_status_line_gives_its_code_and_anything_else_none() {
        assert_eq!(
            status_line(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 2\r\n"),
            Some(408)
        );
        assert_eq!(status_line(b"HTTP/1.1 413 Payload Too Large"), Some(413));
        assert_eq!(status_line(b"HTTP/1.1 4"), None);
        assert_eq!(status_line(b"garbage 200 ok\r\n"), None);
        assert_eq!(status_line(b""), None);
        assert_eq!(outcome_of(b""), "closed");
        assert_eq!(outcome_of(b"HTTP/1.1 503 Service Unavailable\r\n"), "503");
    }

    #[test]
    fn resident_memory_is_read_from_a_proc_status_text() {
        let status = "Name:\tbundleforge\nVmPeak:\t  912344 kB\nVmRSS:\t  204800 kB\nThreads:\t9\n";
        assert_eq!(vm_rss_kb(status), Some(204_800));
        assert_eq!(vm_rss_kb("Name:\tx\n"), None);
        assert_eq!(vm_rss_kb("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn outcomes_are_counted_by_status_and_shown_in_order() {
        let tally = HostileTally::default();
        for outcome in ["401", "closed", "401", "429"] {
            tally.attempt();
            tally.record(outcome);
        }
        let counts = tally.counts();
        assert_eq!(counts.attempts, 4);
        assert_eq!(counts.statuses.get("401"), Some(&2));
        assert_eq!(
            histogram_text(&counts.statuses),
            "401 × 2, 429 × 1, closed × 1"
        );
        assert_eq!(histogram_text(&BTreeMap::new()), "none");
    }

    #[test]
    fn hostile_words_methods_and_paths_are_well_formed() {
        let mut rng = stream_for(7);
        for _ in 0..200 {
            let word = random_word(&mut rng);
            assert!((3..=10).contains(&word.len()), "{word}");
            assert!(word.bytes().all(|b| b.is_ascii_lowercase()), "{word}");
            let method = invented_method(&mut rng);
            assert!(method.as_str().bytes().all(|b| b.is_ascii_uppercase()));
            assert!(hostile_path(&mut rng).starts_with('/'));
        }
        assert_eq!(authority("http://127.0.0.1:8080"), "127.0.0.1:8080");
    }

    fn latencies(scheduled: u64, ok: u64, p99_ms: f64) -> Latencies {
        Latencies {
            scheduled,
            ok,
            failed: scheduled - ok,
            dropped: 0,
            throughput_per_second: ok as f64 / 60.0,
            p50_ms: p99_ms / 4.0,
            p90_ms: p99_ms / 2.0,
            p99_ms,
            max_ms: p99_ms * 2.0,
        }
    }

    fn hostile_phase(acknowledged: u64, applied: u64, succeeded: u64) -> PhaseReport {
        let mut jobs = JobsDuring {
            started: succeeded + 1,
            succeeded,
            ..JobsDuring::default()
        };
        jobs.ended_otherwise.insert("cancelled".to_owned(), 1);
        PhaseReport {
            name: "hostile".to_owned(),
            webhooks: latencies(12_000, acknowledged, 15.0),
            get_latest: latencies(6_000, 6_000, 8.0),
            applied: Applied {
                accepted: acknowledged,
                applied,
                ..Applied::default()
            },
            jobs,
        }
    }

    #[test]
    fn each_criterion_passes_only_on_its_own_figures() {
        let healthz = latencies(1_200, 1_200, 12.0);
        let good = hostile_phase(12_000, 12_000, 20);
        let verdicts = judge(&healthz, 400.0, 650.0, &good);
        assert_eq!(verdicts.len(), 4);
        assert!(verdicts.iter().all(|v| v.pass), "{verdicts:#?}");

        let slow = latencies(1_200, 1_200, 51.0);
        let passes = |v: Vec<Verdict>| -> Vec<bool> { v.iter().map(|v| v.pass).collect() };
        assert_eq!(
            passes(judge(&slow, 400.0, 650.0, &good)),
            [false, true, true, true]
        );
        assert_eq!(
            passes(judge(&healthz, 400.0, 701.0, &good)),
            [true, false, true, true]
        );
        let lost = hostile_phase(11_999, 11_999, 20);
        assert_eq!(
            passes(judge(&healthz, 400.0, 650.0, &lost)),
            [true, true, false, true]
        );
        let unapplied = hostile_phase(12_000, 11_990, 20);
        assert_eq!(
            passes(judge(&healthz, 400.0, 650.0, &unapplied)),
            [true, true, false, true]
        );
        let no_job = hostile_phase(12_000, 12_000, 0);
        assert_eq!(
            passes(judge(&healthz, 400.0, 650.0, &no_job)),
            [true, true, true, false]
        );
        let mut failed_job = hostile_phase(12_000, 12_000, 3);
        failed_job
            .jobs
            .ended_otherwise
            .insert("failed".to_owned(), 1);
        assert_eq!(
            passes(judge(&healthz, 400.0, 650.0, &failed_job)),
            [true, true, true, false]
        );
        let unanswered = latencies(1_200, 1_199, 12.0);
        assert_eq!(
            passes(judge(&unanswered, 400.0, 650.0, &good)),
            [false, true, true, true]
        );
    }
}
