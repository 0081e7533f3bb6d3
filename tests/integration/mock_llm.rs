//! A mock OpenAI-compatible server on a real socket: replies are scripted in order
//! (status, headers, delay, body), and it records when each request arrived, what it
//! asked, and how many were in flight at once, so tests assert timing from what the
//! server saw rather than from wall-clock bounds.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bundleforge::config::{LlmSettings, Settings};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
    body: String,
    /// Sends the body a few bytes at a time with this pause between pieces.
    trickle: Option<Duration>,
}

/// Answers a request from its body when no scripted reply is left.
pub type Responder = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

impl Reply {
    /// A chat completion whose message content is `text`.
    pub fn content(text: &str) -> Reply {
        Reply::completion(json!({"role": "assistant", "content": text}))
    }

    /// A chat completion in which the model refuses.
    pub fn refusal(text: &str) -> Reply {
        Reply::completion(json!({"role": "assistant", "content": null, "refusal": text}))
    }

    fn completion(message: Value) -> Reply {
        let body = json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 0,
            "model": "mock",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        });
        Reply {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            delay: Duration::ZERO,
            body: body.to_string(),
            trickle: None,
        }
    }

    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            delay: Duration::ZERO,
            body: body.to_owned(),
            trickle: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// Headers at once, then the body in 16-byte pieces `pause` apart: a server that
    /// streams slowly.
    pub fn trickle(mut self, pause: Duration) -> Reply {
        self.trickle = Some(pause);
        self
    }
}

#[derive(Default)]
struct MockState {
    script: Mutex<VecDeque<Reply>>,
    /// Replies to embeddings requests before they are answered from the input.
    embedding_faults: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Option<Reply>>,
    responder: Mutex<Option<Responder>>,
    requests: Mutex<Vec<(Instant, Value)>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

pub struct MockLlm {
    pub base_url: String,
    state: Arc<MockState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn chat(State(state): State<Arc<MockState>>, body: String) -> Response {
    let now = Instant::now();
    let n = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(&state.in_flight);
    state.max_in_flight.fetch_max(n, Ordering::SeqCst);
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    state.requests.lock().unwrap().push((now, request.clone()));
    let reply = state.script.lock().unwrap().pop_front();
    let responder = state.responder.lock().unwrap().clone();
    let reply = reply
        .or_else(|| responder.map(|r| r(&request)))
        .or_else(|| state.fallback.lock().unwrap().clone())
        .unwrap_or_else(|| Reply::status(500, r#"{"error": {"message": "no scripted reply"}}"#));
    tokio::time::sleep(reply.delay).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.trickle {
        None => (status, reply.body).into_response(),
        Some(pause) => {
            let pieces: Vec<String> = reply
                .body
                .as_bytes()
                .chunks(16)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            let stream =
                futures_util::stream::unfold(pieces.into_iter(), move |mut rest| async move {
                    let piece = rest.next()?;
                    tokio::time::sleep(pause).await;
                    Some((Ok::<_, std::io::Error>(piece), rest))
                });
            (status, axum::body::Body::from_stream(stream)).into_response()
        }
    };
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

/// Embeddings answered from the input: text i gets [len, 1, 0, 0], listed in reverse
/// order (clients must place vectors by their index).
async fn embeddings(State(state): State<Arc<MockState>>, body: String) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    state
        .requests
        .lock()
        .unwrap()
        .push((Instant::now(), request.clone()));
    if let Some(fault) = state.embedding_faults.lock().unwrap().pop_front() {
        return (StatusCode::from_u16(fault.status).unwrap(), fault.body).into_response();
    }
    let inputs = request["input"].as_array().cloned().unwrap_or_default();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, text)| {
            let len = text.as_str().map_or(0, str::len) as f32;
            json!({"object": "embedding", "index": i, "embedding": [len, 1.0, 0.0, 0.0]})
        })
        .collect();
    let body = json!({
        "object": "list",
        "data": data,
        "model": request["model"],
        "usage": {"prompt_tokens": inputs.len(), "total_tokens": inputs.len()}
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl MockLlm {
    pub async fn start() -> MockLlm {
        let state = Arc::new(MockState::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockLlm {
            base_url: format!("http://{addr}/v1"),
            state,
            server,
        }
    }

    /// Queues replies, answered in order.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// Replies to the next embeddings requests (faults), before normal answers.
    pub fn embedding_faults(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.embedding_faults.lock().unwrap().extend(replies);
    }

    /// The reply once the script is used up.
    pub fn fallback(&self, reply: Reply) {
        *self.state.fallback.lock().unwrap() = Some(reply);
    }

    /// Answers from the request once the script is used up (before the fallback).
    pub fn respond(&self, responder: impl Fn(&Value) -> Reply + Send + Sync + 'static) {
        *self.state.responder.lock().unwrap() = Some(Arc::new(responder));
    }

    /// Every request so far: when it arrived and its JSON body.
    pub fn requests(&self) -> Vec<(Instant, Value)> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Settings pointing at this server, with short timeouts and backoff.
    pub fn settings(&self) -> LlmSettings {
        LlmSettings {
            provider: bundleforge::config::LlmProvider::Openai,
            base_url: self.base_url.clone(),
            api_key: "sk-test".into(),
            timeout_seconds: 5.0,
            backoff_ms: 20,
            backoff_max_ms: 200,
            ..Settings::defaults().unwrap().llm
        }
    }
}
