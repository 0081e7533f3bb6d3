//! What a request must pass before its body is read, and how long its body may keep it
//! waiting.
//!
//! Every route that needs a bearer token checks it here, before the handler's
//! extractors read anything, so a body without a valid token costs its headers only
//! and is answered 401 before any parse. A declared length over the route's limit is
//! answered 413 here as well: webhooks are small (`server.webhook_max_body_kb`),
//! uploads large (`server.max_body_mb`), every other JSON body small
//! (`server.max_json_body_kb`). The route's own handler still decides which stores
//! the token may act for (403) and spends its rate.
//!
//! While a handler reads a body, it must keep coming. An upload (a file, or the
//! predecessor's CSVs in JSON) may be large and its link slow: it must send at least
//! [`MIN_PROGRESS_BYTES`] in every `server.body_timeout_seconds`. Every other body is
//! small: it must arrive whole within `server.body_timeout_seconds` of the handler
//! first waiting for it (1 KiB per period would otherwise hold a handler for as many
//! periods as the body has KiB). Past either, the request ends with 408 and the
//! connection closes. A webhook's handler holds its body to one deadline of its own.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body as AxumBody, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

use super::compat::PATH_PREFIX;
use super::error::ApiError;
use super::routes::{Auth, Body, RouteDoc};
use super::{AppState, authenticate, in_shape};
use crate::config::ServerSettings;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
/// What a body must send within `server.body_timeout_seconds` to earn another period.
pub const MIN_PROGRESS_BYTES: usize = 1024;

/// How large a route's body may be, and the setting that says so.
#[derive(Debug, Clone)]
pub struct BodyLimit {
    pub bytes: u64,
    /// The limit as the setting gives it (`2048 KiB`, `256 MiB`).
    shown: String,
    setting: &'static str,
    /// What the caller may do about it, after the limit in the message.
    hint: &'static str,
}

impl BodyLimit {
    /// The limit of `route`: webhooks small, uploads (files, and the predecessor's
    /// CSVs in JSON) large, every other body small.
    pub fn of(route: &RouteDoc, server: &ServerSettings) -> BodyLimit {
        match (route.auth, route.body) {
            (Auth::ShopifySignature, _) => BodyLimit {
                bytes: (server.webhook_max_body_kb as u64).saturating_mul(KIB),
                shown: format!("{} KiB", server.webhook_max_body_kb),
                setting: "server.webhook_max_body_kb",
                hint: "",
            },
            (_, Body::File) => BodyLimit {
                bytes: (server.max_body_mb as u64).saturating_mul(MIB),
                shown: format!("{} MiB", server.max_body_mb),
                setting: "server.max_body_mb",
                hint: ": split the file, or gzip it",
            },
            (_, Body::JsonFiles(_, files)) => {
                let mb = server.max_body_mb.saturating_mul(files.max(1));
                BodyLimit {
                    bytes: (mb as u64).saturating_mul(MIB),
                    shown: format!("{mb} MiB"),
                    setting: "server.max_body_mb",
                    hint: ": send the files one at a time",
                }
            }
            (_, Body::Json(_) | Body::None) => BodyLimit::json(server),
        }
    }

    /// The limit of a JSON body (and of a route that takes none).
    pub fn json(server: &ServerSettings) -> BodyLimit {
        BodyLimit {
            bytes: (server.max_json_body_kb as u64).saturating_mul(KIB),
            shown: format!("{} KiB", server.max_json_body_kb),
            setting: "server.max_json_body_kb",
            hint: "",
        }
    }

    /// For axum's extractors that buffer a body (`DefaultBodyLimit`).
    pub fn as_usize(&self) -> usize {
        usize::try_from(self.bytes).unwrap_or(usize::MAX)
    }

    fn refusal(&self) -> ApiError {
        ApiError::too_large(self.bytes, &self.shown, self.setting, self.hint)
    }
}

/// The length a request declares, if it declares one that reads.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What one route checks before its handler runs: its state for
/// [`check_before_body`].
#[derive(Clone)]
pub struct RouteGuard {
    state: Arc<AppState>,
    auth: Auth,
    limit: BodyLimit,
    /// Under the predecessor's paths: refused in its error shape.
    predecessor: bool,
}

impl RouteGuard {
    pub fn new(state: Arc<AppState>, route: &RouteDoc, limit: BodyLimit) -> RouteGuard {
        RouteGuard {
            state,
            auth: route.auth,
            limit,
            predecessor: route.path.starts_with(PATH_PREFIX),
        }
    }

    /// A token first (401 says nothing of the body), then the declared length.
    async fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if matches!(self.auth, Auth::Store | Auth::Admin) {
            // Any valid token passes here; the handler knows which stores it may act
            // for. A token that is none of ours is counted against the address here,
            // once.
            authenticate(&self.state, headers).await.map(|_| ())?;
        }
        if declared_length(headers).is_some_and(|n| n > self.limit.bytes) {
            return Err(self.limit.refusal());
        }
        Ok(())
    }
}

/// A route's checks before its body is read (see the module's comment): a refusal
/// leaves the body unread, and hyper closes the connection rather than read it.
pub async fn check_before_body(
    State(guard): State<RouteGuard>,
    request: Request,
    next: Next,
) -> Response {
    let checked = guard.check(request.headers()).await;
    match checked {
        Ok(()) => next.run(request).await,
        Err(refusal) => in_shape(refusal, guard.predecessor),
    }
}

/// How long one route's body may keep its handler waiting: the state of
/// [`limit_body_wait`].
#[derive(Clone)]
pub struct BodyWait {
    state: Arc<AppState>,
    /// One deadline for the whole body, rather than one per [`MIN_PROGRESS_BYTES`].
    whole: bool,
}

impl BodyWait {
    /// The wait of `route`: uploads keep coming, every other body arrives whole (a
    /// webhook's handler sets its own deadline, and answers it in its own words).
    pub fn of(state: Arc<AppState>, route: &RouteDoc) -> BodyWait {
        let whole = matches!(route.body, Body::Json(_) | Body::None)
            && !matches!(route.auth, Auth::ShopifySignature);
        BodyWait { state, whole }
    }
}

/// Bounds how long a request body may keep its handler waiting (see the module's
/// comment): a handler reading a stalled body gets an error (whatever it makes of it),
/// and the caller a 408 in its API's error shape, after which the connection closes.
pub async fn limit_body_wait(
    State(wait): State<BodyWait>,
    request: Request,
    next: Next,
) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let seconds = wait.state.services.settings.server.body_timeout_seconds;
    let predecessor = request.uri().path().starts_with(PATH_PREFIX);
    let stalled = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        AxumBody::new(TimedBody {
            inner: body,
            limit: Duration::from_secs(seconds),
            whole: wait.whole,
            wait: None,
            waiting: false,
            progress: 0,
            stalled: stalled.clone(),
        })
    });
    let response = next.run(request).await;
    if !stalled.load(Ordering::Acquire) {
        return response;
    }
    let refusal = if wait.whole {
        tracing::info!(
            seconds,
            "the request body did not arrive whole in time: answered 408"
        );
        ApiError::body_deadline(seconds)
    } else {
        tracing::info!(seconds, "the request body stalled: answered 408");
        ApiError::body_timeout(seconds)
    };
    let mut answer = in_shape(refusal, predecessor);
    // Part of the body may still be on its way: the connection cannot take another
    // request.
    answer
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    answer
}

/// The error a stalled body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled: next to nothing came for {} s", .0.as_secs())]
pub struct BodyStalled(Duration);

/// A request body that must send [`MIN_PROGRESS_BYTES`] within `limit` of the reader
/// starting to wait for it, again and again (or, `whole`, all of it within `limit` of
/// the reader first waiting): past `limit`, it ends in [`BodyStalled`] and marks
/// `stalled`.
struct TimedBody {
    inner: AxumBody,
    limit: Duration,
    /// One deadline for the whole body: bytes never earn a new period.
    whole: bool,
    /// The deadline of the period under way, kept between periods so that a body of
    /// many chunks resets one timer rather than making one per chunk.
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether a period is under way (its deadline set).
    waiting: bool,
    /// Bytes come in the period under way.
    progress: usize,
    stalled: Arc<AtomicBool>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.stalled.load(Ordering::Acquire) {
            return Poll::Ready(Some(Err(axum::Error::new(BodyStalled(this.limit)))));
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            match &frame {
                Some(Ok(f)) => {
                    this.progress += f.data_ref().map_or(0, Bytes::len);
                    // A trickle does not earn a new period; enough bytes do, unless
                    // the whole body has one.
                    if this.progress >= MIN_PROGRESS_BYTES && !this.whole {
                        this.progress = 0;
                        this.waiting = false;
                    }
                }
                // The end, or an error: nothing more to wait for.
                _ => this.waiting = false,
            }
            return Poll::Ready(frame);
        }
        if !this.waiting {
            this.waiting = true;
            let deadline = tokio::time::Instant::now() + this.limit;
            match this.wait.as_mut() {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => this.wait = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let Some(sleep) = this.wait.as_mut() else {
            return Poll::Pending;
        };
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.stalled.store(true, Ordering::Release);
        Poll::Ready(Some(Err(axum::Error::new(BodyStalled(this.limit)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that never sends anything.
    struct Silent;

    impl HttpBody for Silent {
        type Data = Bytes;
        type Error = axum::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_body_that_sends_nothing_ends_in_an_error_and_marks_itself_stalled() {
        let stalled = Arc::new(AtomicBool::new(false));
        let body = AxumBody::new(TimedBody {
            inner: AxumBody::new(Silent),
            limit: Duration::from_millis(50),
            whole: false,
            wait: None,
            waiting: false,
            progress: 0,
            stalled: stalled.clone(),
        });
        let read = axum::body::to_bytes(body, 1024).await;
        assert!(read.is_err());
        assert!(stalled.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn a_trickle_does_not_keep_a_body_alive() {
        let stalled = Arc::new(AtomicBool::new(false));
        // A byte every 20 ms, for ever.
        let trickle = futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), ()))
        });
        let body = AxumBody::new(TimedBody {
            inner: AxumBody::from_stream(trickle),
            limit: Duration::from_millis(200),
            whole: false,
            wait: None,
            waiting: false,
            progress: 0,
            stalled: stalled.clone(),
        });
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            axum::body::to_bytes(body, usize::MAX),
        )
        .await
        .expect("the trickle was cut off");
        assert!(read.is_err());
        assert!(stalled.load(Ordering::Acquire));
    }

    /// Issue: a JSON body sending 1 KiB per period was never cut off. With one
    /// deadline for the whole body, it is; without, the same body keeps going.
    #[tokio::test]
    async fn a_body_with_one_deadline_is_cut_off_however_much_each_period_brings() {
        // 1100 bytes every 50 ms, for ever: enough for every 200 ms period.
        let steady = || {
            futures_util::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 1100])), ()))
            })
        };
        for whole in [true, false] {
            let stalled = Arc::new(AtomicBool::new(false));
            let body = AxumBody::new(TimedBody {
                inner: AxumBody::from_stream(steady()),
                limit: Duration::from_millis(200),
                whole,
                wait: None,
                waiting: false,
                progress: 0,
                stalled: stalled.clone(),
            });
            let read = tokio::time::timeout(
                Duration::from_secs(2),
                axum::body::to_bytes(body, usize::MAX),
            )
            .await;
            if whole {
                let read = read.expect("the body was cut off");
                assert!(read.is_err());
                assert!(stalled.load(Ordering::Acquire));
            } else {
                assert!(read.is_err(), "a body that keeps coming is read on");
                assert!(!stalled.load(Ordering::Acquire));
            }
        }
    }

    #[tokio::test]
    async fn a_body_that_comes_in_time_is_read_whole() {
        let stalled = Arc::new(AtomicBool::new(false));
        let body = AxumBody::new(TimedBody {
            inner: AxumBody::from("hello"),
            limit: Duration::from_secs(3),
            whole: false,
            wait: None,
            waiting: false,
            progress: 0,
            stalled: stalled.clone(),
        });
        let read = axum::body::to_bytes(body, 1024).await.unwrap();
        assert_eq!(&read[..], b"hello");
        assert!(!stalled.load(Ordering::Acquire));
    }
}
