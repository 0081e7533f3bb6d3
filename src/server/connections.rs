//! The connections the API is served on: the accept loop, the cap on connections open
//! at once, and what a slow or idle client is told.
//!
//! Each connection is HTTP/1.1 with keep-alive, read by hyper with a deadline on its
//! request headers (`server.header_timeout_seconds`, from the connection's start or its
//! previous answer). hyper only closes a connection whose headers are late; we answer
//! 408 first when the client had begun a request (or never sent one), and close an
//! idle keep-alive connection without a word. Past `server.max_connections` open at
//! once, a new connection is answered 503 with `Retry-After` and closed, so the
//! process's file handles stay bounded and the slow connections holding the slots are
//! shed by the header deadline; `/healthz` answers again within it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;

use super::error::ApiError;
use super::{AppState, metrics};
use crate::cancel::CancelToken;

/// How long writing a refusal (408, 503) may take.
const ANSWER_WRITE: Duration = Duration::from_secs(1);
/// How long a refused connection then waits for the client to close first: a socket
/// closed with unread bytes is reset, and a reset can lose the answer on its way.
const LINGER: Duration = Duration::from_millis(500);
/// Connections over the cap answered at once; past this one is closed without a word
/// (each answer holds its socket for up to [`ANSWER_WRITE`] + [`LINGER`]).
const MAX_REFUSALS: usize = 64;
/// At most one log line per this long about refused connections or failed accepts:
/// a flood would otherwise fill the log.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What every connection of one server shares.
#[derive(Clone)]
struct Shared {
    app: Router,
    http: http1::Builder,
    state: Arc<AppState>,
    stop: CancelToken,
    /// The whole answer to a request whose headers came too late.
    late_headers: Bytes,
}

/// Serves `app` on `listener` until `stop`, then lets each connection finish the
/// answer under way and returns once every connection is closed.
pub async fn serve(listener: TcpListener, app: Router, state: Arc<AppState>, stop: CancelToken) {
    let server = &state.services.settings.server;
    let max = server.max_connections;
    let header_timeout = server.header_timeout_seconds;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(header_timeout))
        .keep_alive(true);
    let late = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
        format!(
            "the request's headers were not complete within {header_timeout} s \
             (server.header_timeout_seconds)"
        ),
    );
    let busy = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "retryable",
        format!(
            "this server has {max} connections open, as many as it serves \
             (server.max_connections): retry shortly"
        ),
    );
    let over_capacity = raw_answer(&busy, Some(1));
    let shared = Shared {
        app,
        http,
        state: state.clone(),
        stop: stop.clone(),
        late_headers: raw_answer(&late, None),
    };
    let slots = Arc::new(Semaphore::new(max as usize));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let (mut refused, mut failed) = (Throttled::default(), Throttled::default());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file handles, or a connection gone before it was taken: wait
                // a moment rather than spin, and keep serving the connections open.
                if let Some(times) = failed.due() {
                    tracing::warn!(error = %e, times, "cannot accept connections");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Answers are small and written whole: no reason to hold them back.
        let _ = stream.set_nodelay(true);
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                tokio::spawn(connection(stream, remote, shared.clone(), slot));
            }
            Err(_) => {
                state
                    .metrics
                    .add(metrics::CONNECTIONS_SHED, &["over_capacity"], 1.0);
                if let Some(times) = refused.due() {
                    tracing::warn!(
                        client = %remote, times, max_connections = max,
                        "connections refused: as many are open as server.max_connections"
                    );
                }
                refuse(stream, &refusals, over_capacity.clone());
            }
        }
    }
    // New connections now meet a closed port; the open ones finish their answers.
    drop(listener);
    let _ = slots.acquire_many(max).await;
}

/// Counts events and says when one is due to be logged (the first, then at most one
/// per [`LOG_EVERY`], with how many came since).
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    count: u64,
}

impl Throttled {
    fn due(&mut self) -> Option<u64> {
        self.count += 1;
        if self.last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.count))
    }
}

/// One connection, served until it closes; `slot` is its place under the cap.
async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    shared: Shared,
    slot: OwnedSemaphorePermit,
) {
    // Requests whose headers were read whole: before the first, a late one is answered.
    let requests = Arc::new(AtomicU64::new(0));
    let service = {
        let (requests, app) = (requests.clone(), shared.app.clone());
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            requests.fetch_add(1, Ordering::Relaxed);
            // The client's address: failed authentications are counted by it.
            request.extensions_mut().insert(ConnectInfo(remote));
            app.clone().oneshot(request)
        })
    };
    let mut conn = shared.http.serve_connection(TokioIo::new(stream), service);
    let stopping = shared.stop.cancelled();
    tokio::pin!(stopping);
    let mut asked_to_stop = false;
    let served = loop {
        tokio::select! {
            served = &mut conn => break served,
            () = &mut stopping, if !asked_to_stop => {
                asked_to_stop = true;
                // The answer under way goes out; no further request is taken.
                Pin::new(&mut conn).graceful_shutdown();
            }
        }
    };
    let Err(e) = served else {
        return;
    };
    if !e.is_timeout() {
        tracing::debug!(error = %e, client = %remote, "a connection ended in an error");
        return;
    }
    let parts = conn.into_parts();
    // Nothing more is served here: the slot is free while the answer goes out.
    drop(slot);
    if requests.load(Ordering::Relaxed) > 0 && parts.read_buf.is_empty() {
        // Idle between requests: closing says all there is to say, and an answer
        // could be taken for that of a request the client is sending just now.
        return;
    }
    shared
        .state
        .metrics
        .add(metrics::CONNECTIONS_SHED, &["header_timeout"], 1.0);
    tracing::info!(client = %remote, "request headers not complete in time: answered 408");
    answer_and_close(parts.io.into_inner(), &shared.late_headers).await;
}

/// A connection over the cap: answered 503 and closed, or just closed when too many
/// refusals are being written already.
fn refuse(stream: TcpStream, refusals: &Arc<Semaphore>, answer: Bytes) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        answer_and_close(stream, &answer).await;
        drop(permit);
    });
}

/// Writes `answer` and closes, waiting a moment for the client to close first.
async fn answer_and_close(mut stream: TcpStream, answer: &[u8]) {
    let written = tokio::time::timeout(ANSWER_WRITE, async {
        stream.write_all(answer).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// A whole HTTP/1.1 answer in the API's error shape that closes its connection, for
/// where there is no request to answer through the router.
fn raw_answer(error: &ApiError, retry_after: Option<u64>) -> Bytes {
    let body = error.body().to_string();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n",
        error.status.as_u16(),
        error.status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if let Some(seconds) = retry_after {
        answer.push_str(&format!("retry-after: {seconds}\r\n"));
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Bytes::from(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_answer_is_one_whole_http_message_in_the_error_shape() {
        let error = ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", "late");
        let answer = raw_answer(&error, Some(1));
        let text = std::str::from_utf8(&answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{head}"
        );
        assert!(head.contains("connection: close") && head.contains("retry-after: 1"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["kind"], "timeout");
    }

    #[test]
    fn a_flood_of_events_is_logged_once_per_period_with_its_count() {
        let mut t = Throttled::default();
        assert_eq!(t.due(), Some(1));
        assert_eq!(t.due(), None);
        assert_eq!(t.due(), None);
        t.last = Instant::now().checked_sub(LOG_EVERY);
        assert_eq!(t.due(), Some(3));
    }
}
