//! The OpenAI-compatible chat client: one place that deals with a model endpoint being
//! slow, rate-limited, down, or answering something other than JSON.
//!
//! - async-openai speaks the protocol (`byot` requests, so any server's extensions fit);
//!   its own transport is replaced by one that retries nothing and turns every non-2xx
//!   answer into an [`HttpFailure`] carrying the status and `Retry-After`, so the retry
//!   policy lives here, in one place.
//! - Every call waits for a concurrency slot, then for the requests/min and tokens/min
//!   limiters (governor), then runs under a timeout.
//! - Timeouts, transport errors, 429 and 5xx are retried with exponential backoff and
//!   jitter (a 429's `Retry-After` is a floor on the wait); other 4xx are not.
//! - An answer that is not JSON (after stripping a markdown fence) is re-asked once,
//!   with the answer and the parse error.
//! - After `breaker_failures` calls in a row fail, the breaker opens: every later call
//!   fails at once and the caller falls back offline. After `breaker_cooldown_seconds`
//!   one probe call goes through (half-open): its success closes the breaker, its
//!   failure opens it for another cool-down. One client serves a whole process, so
//!   its limits and breaker are the account's, not a run's.
//! - A command's calls share a budget (`llm.task_budget_seconds`, from the command's
//!   start, in its [`UsageBook`]): retries, re-asks, waits for a slot and breaker
//!   probes included; once it is spent, calls fail at once and the caller falls back
//!   offline. An answer slower than a few seconds is said in the log.
//! - Usage is booked twice: in the client's own book (the process) and in the
//!   caller's [`UsageBook`] (a run), so concurrent runs each report their own calls.
//!   A call is counted once in `calls` and then by what became of it: `refused` when
//!   the breaker or the budget stopped it before any request went out, `failures`
//!   when requests went out and it failed all the same; `sent` counts the requests
//!   themselves (retries and re-asks included), what the endpoint saw.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::answer::{AnswerError, parse_json};
use super::prompt::{Rendered, Task};
use crate::config::{JsonMode, LlmSettings};
use crate::error::ErrorKind;

const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// The longest a `Retry-After` makes a call wait: a server asking for more gets its
/// retries sooner, and the caller's fallback if it keeps refusing.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// An answer this slow is said in the log (what the command is waiting for).
const SLOW_ANSWER: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the model endpoint failed {0} calls in a row: calls go offline until it recovers")]
    BreakerOpen(u32),
    #[error("the model endpoint answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the model endpoint: {0}")]
    Transport(String),
    #[error("the model's answer is not valid JSON, even when asked again: {0}")]
    InvalidJson(String),
    #[error("the model refused: {0}")]
    Refused(String),
    #[error(
        "the model calls' budget of {0:?} for this command is spent (llm.task_budget_seconds): the rest is answered offline"
    )]
    BudgetSpent(Duration),
    #[error("the model's answer is larger than {0} bytes: ignored")]
    AnswerTooLarge(usize),
    #[error("invalid LLM setting: {0}")]
    Setting(String),
}

impl LlmError {
    /// Whether asking again later may help: an endpoint down, slow or over its rate
    /// is retryable; a bad answer, a spent budget or a wrong setting is not.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LlmError::BreakerOpen(_) | LlmError::Timeout(_) | LlmError::Transport(_) => {
                ErrorKind::Retryable
            }
            LlmError::Http { status, .. } if *status == 429 || *status >= 500 => {
                ErrorKind::Retryable
            }
            LlmError::Http { .. }
            | LlmError::InvalidJson(_)
            | LlmError::Refused(_)
            | LlmError::BudgetSpent(_)
            | LlmError::AnswerTooLarge(_)
            | LlmError::Setting(_) => ErrorKind::Internal,
        }
    }
}

/// The most bytes read of one answer. A chat answer of `max_tokens` tokens is a few
/// kilobytes; reading an endless or enormous body would cost memory and time the
/// command's budget does not have.
pub const MAX_ANSWER_BYTES: usize = 2 << 20;
/// The most bytes of an error answer kept for the message.
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// An answer cut off at [`MAX_ANSWER_BYTES`], as the transport saw it.
#[derive(Debug, thiserror::Error)]
#[error("answer larger than {0} bytes")]
struct TooLarge(usize);

/// Reads a response's body up to `limit` bytes: `Ok(None)` past it.
async fn read_bounded(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// A 2xx answer with its body read (bounded) and handed on whole.
async fn bounded_answer(mut response: reqwest::Response) -> Result<reqwest::Response, OpenAIError> {
    let Some(body) = read_bounded(&mut response, MAX_ANSWER_BYTES)
        .await
        .map_err(OpenAIError::Reqwest)?
    else {
        return Err(OpenAIError::Boxed(Box::new(TooLarge(MAX_ANSWER_BYTES))));
    };
    let mut builder = http::Response::builder()
        .status(response.status())
        .version(response.version());
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers().clone();
    }
    let rebuilt = builder
        .body(body)
        .map_err(|e| OpenAIError::Boxed(Box::new(e)))?;
    Ok(reqwest::Response::from(rebuilt))
}

/// A non-2xx answer, as the transport saw it.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}")]
pub struct HttpFailure {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

/// Calls, requests, retries and tokens, per task and for the run. A call is one
/// question the engine asked; `calls` = answered + `refused` + `failures`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Calls asked of the client, whatever became of them.
    pub calls: u64,
    /// HTTP requests that went out: first tries, retries and re-asks.
    pub sent: u64,
    /// Calls stopped before any request went out: the breaker was open, or the
    /// command's budget was spent. (A model answering with a refusal was sent to:
    /// that call is one of the `failures`.)
    pub refused: u64,
    /// Requests that were retried (timeouts, 429, 5xx, transport errors).
    pub retries: u64,
    /// Re-asks after an answer that was not JSON.
    pub repairs: u64,
    /// Calls whose requests went out and that failed all the same (after retries).
    pub failures: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.calls += other.calls;
        self.sent += other.sent;
        self.refused += other.refused;
        self.retries += other.retries;
        self.repairs += other.repairs;
        self.failures += other.failures;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

/// Usage per task (by prompt version, and `embeddings`), shared by whoever books into
/// it: a client's process-wide book, or one run's.
#[derive(Debug, Default)]
pub struct UsageBook {
    tasks: Mutex<HashMap<&'static str, Usage>>,
    /// Some call was refused because the breaker was open.
    met_breaker: AtomicBool,
    /// When the command's model calls must be done by, and the budget that set it.
    deadline: Option<(Instant, Duration)>,
    /// The budget ran out (said once in the log).
    spent: AtomicBool,
}

impl UsageBook {
    /// A book whose calls (retries, re-asks and waits for a slot included) all end by
    /// `started + budget`.
    pub fn until(started: Instant, budget: Duration) -> UsageBook {
        UsageBook {
            deadline: Some((started + budget, budget)),
            ..UsageBook::default()
        }
    }

    fn note_spent(&self, budget: Duration) {
        if !self.spent.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                budget_seconds = budget.as_secs_f64(),
                "the model calls' budget for this command is spent: the rest is answered offline"
            );
        }
    }

    pub fn record(&self, label: &'static str, usage: &Usage) {
        if let Ok(mut book) = self.tasks.lock() {
            book.entry(label).or_default().add(usage);
        }
    }

    pub fn snapshot(&self) -> HashMap<&'static str, Usage> {
        self.tasks.lock().map(|u| u.clone()).unwrap_or_default()
    }

    pub fn total(&self) -> Usage {
        let mut total = Usage::default();
        for u in self.snapshot().values() {
            total.add(u);
        }
        total
    }

    /// Whether a call booked here met an open breaker.
    pub fn met_open_breaker(&self) -> bool {
        self.met_breaker.load(Ordering::Relaxed)
    }
}

/// The circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Breaker {
    Closed,
    /// Failing fast since this instant.
    Open(Instant),
    /// One probe call is in flight after the cool-down.
    Probing,
}

pub struct ChatClient {
    openai: Client<OpenAIConfig>,
    model: String,
    json_mode: JsonMode,
    max_tokens: u32,
    temperature: f64,
    timeout: Duration,
    max_retries: u32,
    backoff: Duration,
    backoff_max: Duration,
    requests: DefaultDirectRateLimiter,
    tokens: DefaultDirectRateLimiter,
    token_burst: u32,
    slots: Semaphore,
    breaker_failures: u32,
    breaker_cooldown: Duration,
    failures_in_a_row: AtomicU32,
    breaker: Mutex<Breaker>,
    usage: UsageBook,
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct TokenUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// Whether a failed request is worth another try (after at least the given wait).
enum Retry {
    After(Option<Duration>, LlmError),
    Never(LlmError),
}

impl ChatClient {
    pub fn new(settings: &LlmSettings) -> Result<ChatClient, LlmError> {
        let base = if settings.base_url.trim().is_empty() {
            OPENAI_BASE_URL
        } else {
            settings.base_url.trim().trim_end_matches('/')
        };
        let mut config = OpenAIConfig::new()
            .with_api_base(base)
            .with_api_key(settings.api_key.expose().to_owned());
        if !settings.org.is_empty() {
            config = config.with_org_id(settings.org.clone());
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| LlmError::Setting(format!("HTTP client: {e}")))?;
        let transport = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = http.clone();
            async move {
                let request = factory.build().await?;
                let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
                if response.status().is_success() {
                    return bounded_answer(response).await;
                }
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    // Seconds; an HTTP date is not understood and the backoff applies.
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .and_then(|s| Duration::try_from_secs_f64(s).ok());
                let mut response = response;
                let body = match read_bounded(&mut response, MAX_ERROR_BODY_BYTES).await {
                    Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                    _ => String::new(),
                };
                Err(OpenAIError::Boxed(Box::new(HttpFailure {
                    status,
                    retry_after,
                    body,
                })))
            }
        });
        let openai = Client::with_config(config).with_http_service(transport);
        let nonzero = |n: u32, key: &str| {
            NonZeroU32::new(n).ok_or_else(|| LlmError::Setting(format!("{key} must be at least 1")))
        };
        let json_mode = settings.json_mode;
        Ok(ChatClient {
            openai,
            model: settings.model.clone(),
            json_mode,
            max_tokens: settings.max_tokens,
            temperature: settings.temperature,
            timeout: Duration::try_from_secs_f64(settings.timeout_seconds)
                .map_err(|e| LlmError::Setting(format!("llm.timeout_seconds: {e}")))?,
            max_retries: settings.max_retries,
            backoff: Duration::from_millis(settings.backoff_ms),
            backoff_max: Duration::from_millis(settings.backoff_max_ms.max(settings.backoff_ms)),
            requests: RateLimiter::direct(Quota::per_minute(nonzero(
                settings.requests_per_minute,
                "llm.requests_per_minute",
            )?)),
            tokens: RateLimiter::direct(Quota::per_minute(nonzero(
                settings.tokens_per_minute,
                "llm.tokens_per_minute",
            )?)),
            token_burst: settings.tokens_per_minute,
            slots: Semaphore::new(settings.concurrency.max(1)),
            breaker_failures: settings.breaker_failures.max(1),
            breaker_cooldown: Duration::try_from_secs_f64(settings.breaker_cooldown_seconds)
                .map_err(|e| LlmError::Setting(format!("llm.breaker_cooldown_seconds: {e}")))?,
            failures_in_a_row: AtomicU32::new(0),
            breaker: Mutex::new(Breaker::Closed),
            usage: UsageBook::default(),
        })
    }

    fn breaker_state(&self) -> Breaker {
        self.breaker.lock().map_or(Breaker::Closed, |b| *b)
    }

    /// Whether the breaker is open or half-open (calls fail fast, or one probe is out).
    pub fn breaker_open(&self) -> bool {
        self.breaker_state() != Breaker::Closed
    }

    /// Lets a call through, or refuses it while the breaker is open; after the
    /// cool-down the first caller becomes the probe (`Ok(true)`).
    fn admit(&self) -> Result<bool, LlmError> {
        let refused = || LlmError::BreakerOpen(self.failures_in_a_row.load(Ordering::Relaxed));
        let Ok(mut state) = self.breaker.lock() else {
            return Ok(false);
        };
        match *state {
            Breaker::Closed => Ok(false),
            Breaker::Open(since) if since.elapsed() >= self.breaker_cooldown => {
                tracing::info!("the model endpoint's cool-down is over: sending one probe call");
                *state = Breaker::Probing;
                Ok(true)
            }
            Breaker::Open(_) | Breaker::Probing => Err(refused()),
        }
    }

    /// Usage so far per task (by prompt version) and for `embeddings`, process-wide.
    pub fn usage(&self) -> HashMap<&'static str, Usage> {
        self.usage.snapshot()
    }

    /// Usage of all tasks so far, process-wide.
    pub fn total_usage(&self) -> Usage {
        self.usage.total()
    }

    /// Counts a finished call towards the breaker and the usage books. A failed call
    /// that sent nothing was refused; one that sent something failed.
    fn finish<T>(
        &self,
        label: &'static str,
        probe: bool,
        mut usage: Usage,
        result: Result<T, LlmError>,
        run: Option<&UsageBook>,
    ) -> Result<T, LlmError> {
        if result.is_err() {
            if usage.sent == 0 {
                usage.refused = 1;
            } else {
                usage.failures = 1;
            }
        }
        match &result {
            Ok(_) => {
                self.failures_in_a_row.store(0, Ordering::Relaxed);
                if let Ok(mut state) = self.breaker.lock()
                    && *state != Breaker::Closed
                {
                    tracing::info!("the model endpoint answered again: breaker closed");
                    *state = Breaker::Closed;
                }
            }
            Err(LlmError::BreakerOpen(_)) => {
                if let Some(run) = run {
                    run.met_breaker.store(true, Ordering::Relaxed);
                }
            }
            Err(e) => {
                let n = self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                if let Ok(mut state) = self.breaker.lock() {
                    let trips = match *state {
                        Breaker::Closed => n >= self.breaker_failures,
                        Breaker::Probing => probe,
                        Breaker::Open(_) => false,
                    };
                    if trips {
                        tracing::warn!(
                            failures = n,
                            error = %e,
                            cooldown_seconds = self.breaker_cooldown.as_secs_f64(),
                            "the model endpoint keeps failing: calls go offline until the cool-down ends"
                        );
                        *state = Breaker::Open(Instant::now());
                    }
                }
            }
        }
        self.book(label, &usage, run);
        result
    }

    /// Books usage in the client's book and, when given, the run's.
    fn book(&self, label: &'static str, usage: &Usage, run: Option<&UsageBook>) {
        self.usage.record(label, usage);
        if let Some(run) = run {
            run.record(label, usage);
        }
    }

    /// Embeddings of `inputs` from `model`, in order, through the same limits,
    /// retries and breaker as chat calls.
    pub async fn embeddings(
        &self,
        model: &str,
        dimensions: usize,
        inputs: &[String],
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        #[derive(Deserialize)]
        struct EmbeddingResponse {
            data: Vec<EmbeddingItem>,
            usage: Option<TokenUsage>,
        }
        #[derive(Deserialize)]
        struct EmbeddingItem {
            index: usize,
            embedding: Vec<f32>,
        }
        let mut usage = Usage {
            calls: 1,
            ..Usage::default()
        };
        let mut body = json!({"model": model, "input": inputs, "encoding_format": "float"});
        // Only the text-embedding-3 models take a size; older ones reject the field.
        if model.starts_with("text-embedding-3") {
            body["dimensions"] = json!(dimensions);
        }
        let estimate = (inputs.iter().map(String::len).sum::<usize>() / 4) as u32 + 1;
        let probe = match self.admit() {
            Ok(probe) => probe,
            Err(e) => return self.finish("embeddings", false, usage, Err(e), None),
        };
        let result = self
            .send("embeddings", estimate, probe, &mut usage, || async {
                self.openai
                    .embeddings()
                    .create_byot::<_, EmbeddingResponse>(&body)
                    .await
            })
            .await
            .and_then(|response| {
                if let Some(t) = &response.usage {
                    usage.prompt_tokens += t.prompt_tokens;
                }
                let mut vectors: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
                for item in response.data {
                    if let Some(slot) = vectors.get_mut(item.index) {
                        *slot = Some(item.embedding);
                    }
                }
                vectors
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        LlmError::Transport(format!(
                            "the embeddings answer does not cover all {} inputs",
                            inputs.len()
                        ))
                    })
            });
        self.finish("embeddings", probe, usage, result, None)
    }

    /// Sends the prompt and returns the answer's JSON object. `schema` is sent as a
    /// JSON schema when `json_mode` is `schema`.
    pub async fn json(
        &self,
        task: Task,
        prompt: &Rendered,
        schema: Option<&Value>,
    ) -> Result<Value, LlmError> {
        self.json_booked(task, prompt, schema, None).await
    }

    /// [`ChatClient::json`], booked in a run's usage book as well as the client's.
    pub async fn json_into(
        &self,
        task: Task,
        prompt: &Rendered,
        schema: Option<&Value>,
        run: &UsageBook,
    ) -> Result<Value, LlmError> {
        self.json_booked(task, prompt, schema, Some(run)).await
    }

    async fn json_booked(
        &self,
        task: Task,
        prompt: &Rendered,
        schema: Option<&Value>,
        run: Option<&UsageBook>,
    ) -> Result<Value, LlmError> {
        let mut usage = Usage {
            calls: 1,
            ..Usage::default()
        };
        let label = task.prompt_version();
        // The command's budget: spent, the call is not made; running out mid-call, it
        // ends there (the endpoint was too slow: that counts towards the breaker).
        let deadline = run.and_then(|r| r.deadline);
        if let (Some(run), Some((at, budget))) = (run, deadline)
            && Instant::now() >= at
        {
            run.note_spent(budget);
            // Refused without a request: booked, but it says nothing of the
            // endpoint's health, so the breaker does not hear of it.
            usage.refused = 1;
            self.book(label, &usage, Some(run));
            return Err(LlmError::BudgetSpent(budget));
        }
        let (probe, result) = match self.admit() {
            Ok(probe) => {
                let call = self.json_inner(task, prompt, schema, probe, &mut usage);
                let result = match deadline {
                    Some((at, budget)) => {
                        match tokio::time::timeout_at(tokio::time::Instant::from_std(at), call)
                            .await
                        {
                            Ok(r) => r,
                            Err(_) => {
                                if let Some(run) = run {
                                    run.note_spent(budget);
                                }
                                Err(LlmError::BudgetSpent(budget))
                            }
                        }
                    }
                    None => call.await,
                };
                (probe, result)
            }
            Err(e) => (false, Err(e)),
        };
        self.finish(label, probe, usage, result, run)
    }

    async fn json_inner(
        &self,
        task: Task,
        prompt: &Rendered,
        schema: Option<&Value>,
        probe: bool,
        usage: &mut Usage,
    ) -> Result<Value, LlmError> {
        let mut messages = vec![
            json!({"role": "system", "content": prompt.system}),
            json!({"role": "user", "content": prompt.user}),
        ];
        let first = self.complete(task, &messages, schema, probe, usage).await?;
        let bad = match parse_json(&first) {
            Ok(v) => return Ok(v),
            Err(AnswerError::NotJson(e) | AnswerError::WrongShape(e)) => e,
        };
        // One re-ask: the model sees its answer and why it was rejected.
        usage.repairs += 1;
        tracing::debug!(task = task.prompt_version(), error = %bad, "answer is not JSON; asking again");
        messages.push(json!({"role": "assistant", "content": first}));
        messages.push(json!({"role": "user", "content": format!(
            "That answer is not a valid JSON object ({bad}). Answer again with only the JSON object, complete, and nothing else."
        )}));
        let second = self.complete(task, &messages, schema, probe, usage).await?;
        parse_json(&second).map_err(|e| LlmError::InvalidJson(e.to_string()))
    }

    /// One chat completion with limits, timeout and retries; returns its text.
    async fn complete(
        &self,
        task: Task,
        messages: &[Value],
        schema: Option<&Value>,
        probe: bool,
        usage: &mut Usage,
    ) -> Result<String, LlmError> {
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": false,
        });
        match (self.json_mode, schema) {
            (JsonMode::Schema, Some(schema)) => {
                body["response_format"] = json!({"type": "json_schema", "json_schema": {
                    "name": task.prompt_version().replace('.', "_"),
                    "schema": schema,
                }});
            }
            (JsonMode::None, _) => {}
            _ => body["response_format"] = json!({"type": "json_object"}),
        }
        // About four characters a token, plus the answer's allowance.
        let chars: usize = messages
            .iter()
            .filter_map(|m| m["content"].as_str())
            .map(str::len)
            .sum();
        let estimate = (chars / 4) as u32 + self.max_tokens;
        let response = self
            .send(task.prompt_version(), estimate, probe, usage, || async {
                self.openai
                    .chat()
                    .create_byot::<_, ChatResponse>(&body)
                    .await
            })
            .await?;
        if let Some(t) = &response.usage {
            usage.prompt_tokens += t.prompt_tokens;
            usage.completion_tokens += t.completion_tokens;
        }
        let Some(message) = response.choices.into_iter().next().map(|c| c.message) else {
            return Err(LlmError::InvalidJson("the answer has no choices".into()));
        };
        if let Some(refusal) = message.refusal.filter(|r| !r.trim().is_empty()) {
            return Err(LlmError::Refused(refusal));
        }
        Ok(message.content.unwrap_or_default())
    }

    /// One request under the concurrency bound, the rate limits and the timeout,
    /// retried by the policy; `estimate` is its token cost for the tokens/min limit.
    /// Only the breaker's probe goes on while the breaker is not closed.
    async fn send<T, F>(
        &self,
        label: &'static str,
        estimate: u32,
        probe: bool,
        usage: &mut Usage,
        request: impl Fn() -> F,
    ) -> Result<T, LlmError>
    where
        F: std::future::Future<Output = Result<T, OpenAIError>>,
    {
        let open = || LlmError::BreakerOpen(self.failures_in_a_row.load(Ordering::Relaxed));
        let refused = || !probe && self.breaker_open();
        if refused() {
            return Err(open());
        }
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| LlmError::Setting(e.to_string()))?;
        let mut attempt = 0u32;
        loop {
            self.requests.until_ready().await;
            if let Some(n) = NonZeroU32::new(estimate.min(self.token_burst)) {
                // n never exceeds the burst, so capacity is always sufficient.
                let _ = self.tokens.until_n_ready(n).await;
            }
            if refused() {
                return Err(open());
            }
            // Counted as it goes out, so a request the budget or the timeout cuts
            // short is still one the endpoint saw.
            usage.sent += 1;
            // Said in the log when an answer is slow to come, so a wait is never silent.
            let call = tokio::time::timeout(self.timeout, request());
            tokio::pin!(call);
            let answered = tokio::select! {
                r = &mut call => r,
                () = tokio::time::sleep(SLOW_ANSWER) => {
                    tracing::info!(
                        call = label,
                        attempt,
                        timeout_seconds = self.timeout.as_secs_f64(),
                        "waiting for the model endpoint to answer"
                    );
                    call.await
                }
            };
            let (after, error) = match answered {
                Ok(Ok(answer)) => return Ok(answer),
                Err(_) => (None, LlmError::Timeout(self.timeout)),
                Ok(Err(e)) => match classify(e) {
                    Retry::After(after, error) => (after, error),
                    Retry::Never(error) => return Err(error),
                },
            };
            if attempt >= self.max_retries {
                return Err(error);
            }
            let wait = self
                .backoff_for(attempt)
                .max(after.unwrap_or_default().min(MAX_RETRY_AFTER));
            tracing::debug!(
                call = label,
                attempt,
                error = %error,
                wait_ms = wait.as_millis() as u64,
                "retrying"
            );
            usage.retries += 1;
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// Exponential backoff with jitter: half the step plus a random part of the other
    /// half, so that parallel callers do not retry in lockstep.
    fn backoff_for(&self, attempt: u32) -> Duration {
        let step = self
            .backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.backoff_max);
        step / 2 + step.mul_f64(crate::rng::unseeded_unit() / 2.0)
    }
}

/// Which failures are worth another try: timeouts, transport errors, 429 and 5xx.
fn classify(error: OpenAIError) -> Retry {
    match error {
        OpenAIError::Boxed(boxed) if boxed.is::<TooLarge>() => {
            Retry::Never(LlmError::AnswerTooLarge(MAX_ANSWER_BYTES))
        }
        OpenAIError::Boxed(boxed) => match boxed.downcast::<HttpFailure>() {
            Ok(f) => {
                let error = LlmError::Http {
                    status: f.status,
                    body: super::answer::clean_text(&f.body, 300),
                };
                if f.status == 429 || f.status >= 500 {
                    Retry::After(f.retry_after, error)
                } else {
                    Retry::Never(error)
                }
            }
            Err(other) => Retry::After(None, LlmError::Transport(other.to_string())),
        },
        OpenAIError::Reqwest(e) => Retry::After(None, LlmError::Transport(e.to_string())),
        // A 2xx whose body is not the expected object: the server is in trouble.
        OpenAIError::JSONDeserialize(e, _) => Retry::After(
            None,
            LlmError::Transport(format!("unreadable response: {e}")),
        ),
        other => Retry::Never(LlmError::Transport(other.to_string())),
    }
}
