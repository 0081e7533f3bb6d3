//! The service against what the open internet sends it: invented labels, bodies
//! without a token, oversized and stalled bodies, slow headers, floods of connections.

use std::time::{Duration, Instant};

use bundleforge::server::webhooks::sign;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ADMIN_TOKEN, AppOptions, TestApp, TestDb, spawn_app};

/// The label values of `family` in a Prometheus text page, one string per series.
fn series<'a>(page: &'a str, family: &str) -> Vec<&'a str> {
    page.lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with('{'))
        .collect()
}

/// An unsigned sender chooses its topic header and any client its method: neither may
/// become a metric label, or each invented value is a series kept for the process's life.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_topics_and_methods_add_no_metric_series() {
    let s = spawn_app(AppOptions::default().webhook_secret("hush")).await;
    for i in 0..40 {
        let topic = format!("invented/topic-{i}");
        let response = s
            .client
            .post(format!("{}/webhooks/shopify", s.url))
            .header("x-shopify-topic", &topic)
            .header("x-shopify-hmac-sha256", "bm90IGEgc2lnbmF0dXJl")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let response = s
            .client
            .request(method, format!("{}/healthz", s.url))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let (status, page, _) = s.raw("GET", "/metrics", None, Vec::new()).await;
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(!page.contains("invented"), "a topic became a label");
    assert!(!page.contains("BREW"), "a method became a label");
    let webhooks = series(&page, "bundleforge_webhooks_total");
    assert!(
        webhooks.iter().any(|l| l.contains("topic=\"other\"")),
        "{webhooks:?}"
    );
    let requests = series(&page, "bundleforge_http_requests_total");
    assert!(
        requests.iter().any(|l| l.contains("method=\"other\"")),
        "{requests:?}"
    );
    assert!(requests.len() < 10, "{requests:#?}");
    s.stop().await;
}

const SECRET: &str = "shpss_hardening_secret";

/// The server's address, for raw sockets.
fn addr(s: &TestApp) -> String {
    s.url.trim_start_matches("http://").to_owned()
}

/// A new connection that has sent `bytes` (a request, whole or in part).
async fn send_raw(s: &TestApp, bytes: &[u8]) -> TcpStream {
    let mut socket = TcpStream::connect(addr(s)).await.unwrap();
    socket.write_all(bytes).await.unwrap();
    socket
}

/// What the server sends until it closes the connection or `within` passes: the text,
/// and whether it closed.
async fn answer(socket: &mut (impl AsyncRead + Unpin), within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + within;
    let closed = loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(0)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            // Reset after its answer: closed all the same.
            Ok(Err(_)) => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

/// The JSON body of a raw answer (`Null` if it has none).
fn json_body(answer: &str) -> Value {
    answer
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null)
}

/// A request's head declaring `length` bytes of body, with `extra` header lines.
fn head(method: &str, path: &str, extra: &str, length: u64) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

/// A body without a valid token costs its headers only: 401 at once, 1 GiB declared
/// and a few bytes sent, on a JSON route, an upload and the predecessor's batch upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_without_a_valid_token_is_answered_401_before_it_is_read() {
    let s = spawn_app(AppOptions::default()).await;
    let not_ours = "Authorization: Bearer bf_not_ours\r\n";
    for (method, path, auth) in [
        ("POST", "/v1/stores/shop/jobs", ""),
        ("PUT", "/v1/stores/shop/catalog", ""),
        ("POST", "/api/shopify/upload-batch", ""),
        ("POST", "/api/shopify/upload", not_ours),
        ("PUT", "/v1/stores/shop/orders", not_ours),
    ] {
        let started = Instant::now();
        let request = head(method, path, auth, 1 << 30) + "{\"shopId\": \"sh";
        let mut socket = send_raw(&s, request.as_bytes()).await;
        let (text, closed) = answer(&mut socket, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 401"), "{method} {path}: {text}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            closed,
            "{method} {path}: the body is not read, the connection closes"
        );
        let body = json_body(&text);
        if path.starts_with("/api/shopify/") {
            assert!(body["error"].is_string(), "{body}");
        } else {
            assert_eq!(body["error"]["kind"], "unauthorized", "{body}");
        }
    }
    // With a valid token the same length is over the route's own limit: 413, before
    // the body is read, naming the setting.
    let admin = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
    for (method, path, setting) in [
        ("POST", "/v1/stores/shop/jobs", "server.max_json_body_kb"),
        ("PUT", "/v1/stores/shop/catalog", "server.max_body_mb"),
        ("POST", "/api/shopify/upload-batch", "server.max_body_mb"),
    ] {
        let mut socket = send_raw(&s, head(method, path, &admin, 4 << 30).as_bytes()).await;
        let (text, _) = answer(&mut socket, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 413"), "{method} {path}: {text}");
        assert!(text.contains(setting), "{method} {path}: {text}");
    }
    s.stop().await;
}

/// A database holding the store `mugs` (its shop: mugs.myshopify.com).
async fn mugs_db() -> TestDb {
    let db = TestDb::new().await;
    let csv = "variant_id,product_id,title,price\nv0,p0,Gift Card Holder,5.00\n";
    db.ingest_ok("mugs", crate::support::catalog(db.file("c.csv", csv)))
        .await;
    db
}

/// A webhook request to `s` with its headers, signed with `signature`.
fn webhook(s: &TestApp, id: &str, signature: &str) -> reqwest::RequestBuilder {
    s.client
        .post(format!("{}/webhooks/shopify", s.url))
        .header("X-Shopify-Topic", "products/update")
        .header("X-Shopify-Shop-Domain", "mugs.myshopify.com")
        .header("X-Shopify-Webhook-Id", id)
        .header("X-Shopify-Hmac-Sha256", signature)
        .header("Content-Type", "application/json")
}

/// `bytes` as a body streamed in `size`-byte pieces, `pause` apart, without a length.
fn paced(bytes: &[u8], size: usize, pause: Duration) -> reqwest::Body {
    let pieces: Vec<Vec<u8>> = bytes.chunks(size).map(<[u8]>::to_vec).collect();
    let stream = futures_util::stream::unfold(pieces.into_iter(), move |mut rest| async move {
        let piece = rest.next()?;
        tokio::time::sleep(pause).await;
        Some((Ok::<_, std::io::Error>(piece), rest))
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_over_their_limit_are_refused_unread_and_signed_ones_are_checked_as_they_stream() {
    let s = spawn_app(
        AppOptions::default()
            .db(mugs_db().await)
            .webhook_secret(SECRET)
            .settings(&[("server.webhook_max_body_kb", "64")]),
    )
    .await;
    // Unsigned, 250 MiB declared and nothing sent: 413 at once.
    let topic = "X-Shopify-Topic: products/update\r\n";
    let request = head("POST", "/webhooks/shopify", topic, 250 << 20);
    let mut socket = send_raw(&s, request.as_bytes()).await;
    let (text, _) = answer(&mut socket, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let body = json_body(&text);
    assert_eq!(body["error"]["kind"], "too_large", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("64 KiB") && m.contains("server.webhook_max_body_kb")),
        "{body}"
    );

    // Streamed without a length and signed: cut off with 413 once past the limit.
    let big = vec![b' '; 200 << 10];
    let resp = webhook(&s, "wh-big", &sign(SECRET, &big))
        .body(paced(&big, 16 << 10, Duration::from_millis(1)))
        .send()
        .await;
    // The server may answer before it has read the rest, or close on it.
    if let Ok(resp) = resp {
        assert_eq!(resp.status().as_u16(), 413);
    }

    // Within the limit, in small pieces: checked as it comes, and kept.
    let product = json!({
        "id": 632910392, "title": "Stoneware Mug", "updated_at": "2026-03-01T10:00:00Z",
        "variants": [{"id": 808950810, "price": "18.00", "sku": "MUG-1"}]
    })
    .to_string();
    let signature = sign(SECRET, product.as_bytes());
    let resp = webhook(&s, "wh-streamed", &signature)
        .body(paced(product.as_bytes(), 16, Duration::from_millis(5)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let accepted: Value = resp.json().await.unwrap();
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    // One byte changed on the way: refused, and nothing kept.
    let tampered = product.replace("Stoneware", "Stonewarf");
    let resp = webhook(&s, "wh-tampered", &signature)
        .body(paced(tampered.as_bytes(), 16, Duration::from_millis(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let kept =
        s.db.count("SELECT COUNT(*) FROM webhooks WHERE webhook_id = 'wh-tampered'")
            .await;
    assert_eq!(kept, 0);
    s.stop().await;
}

/// Half a request line, half the headers, or nothing: 408 once
/// `server.header_timeout_seconds` has passed, and the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_not_complete_in_time_are_answered_408_and_the_connection_closes() {
    let s =
        spawn_app(AppOptions::default().settings(&[("server.header_timeout_seconds", "1")])).await;
    for partial in [
        "GET /healthz HTT",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n",
        "",
    ] {
        let started = Instant::now();
        let mut socket = send_raw(&s, partial.as_bytes()).await;
        let (text, closed) = answer(&mut socket, Duration::from_secs(5)).await;
        let waited = started.elapsed();
        assert!(text.starts_with("HTTP/1.1 408"), "{partial:?}: {text}");
        assert_eq!(json_body(&text)["error"]["kind"], "timeout", "{text}");
        assert!(closed, "{partial:?}: still open after {waited:?}");
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_millis(2500),
            "{partial:?}: answered after {waited:?}"
        );
    }
    // A keep-alive connection idle after its answer is closed without another.
    let mut socket = send_raw(&s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (text, closed) = answer(&mut socket, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(!text.contains(" 408 "), "{text}");
    assert!(closed, "an idle keep-alive connection stays open");
    s.stop().await;
}

/// A body that stops half-way, or trickles a byte at a time, is answered 408 once
/// `server.body_timeout_seconds` has passed, in the shape of the route's API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_or_trickles_is_answered_408() {
    let s =
        spawn_app(AppOptions::default().settings(&[("server.body_timeout_seconds", "1")])).await;
    let admin = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
    for (method, path) in [
        ("POST", "/v1/stores/shop/jobs"),
        ("PUT", "/v1/stores/shop/catalog"),
        ("POST", "/api/shopify/upload"),
    ] {
        let request = head(method, path, &admin, 200) + &" ".repeat(100);
        let started = Instant::now();
        let mut socket = send_raw(&s, request.as_bytes()).await;
        let (text, closed) = answer(&mut socket, Duration::from_secs(6)).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{method} {path}: {text}");
        assert!(text.contains("body_timeout_seconds"), "{text}");
        let body = json_body(&text);
        if path.starts_with("/api/shopify/") {
            assert!(body["error"].is_string(), "{body}");
        } else {
            assert_eq!(body["error"]["kind"], "timeout", "{body}");
        }
        assert!(closed, "{method} {path}: the connection stays open");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{method} {path}"
        );
    }
    // A byte every 200 ms: too little to count as coming.
    let request = head("POST", "/v1/stores/shop/jobs", &admin, 100_000);
    let (mut reader, mut writer) = send_raw(&s, request.as_bytes()).await.into_split();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let (text, _) = answer(&mut reader, Duration::from_secs(6)).await;
    trickle.abort();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(4));
    s.stop().await;
}

/// Sends `body` after `request_head` on a new connection, in `size`-byte pieces half a second
/// apart, and returns what the server answers within ten seconds, with how long that
/// took from the first piece.
async fn paced_request(
    s: &TestApp,
    request_head: &str,
    body: &[u8],
    size: usize,
) -> (String, Duration) {
    let (mut reader, mut writer) = send_raw(s, request_head.as_bytes()).await.into_split();
    let pieces: Vec<Vec<u8>> = body.chunks(size).map(<[u8]>::to_vec).collect();
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        for piece in pieces {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if writer.write_all(&piece).await.is_err() {
                return;
            }
        }
        // Kept open: a closed half would end the request early.
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(writer);
    });
    let (text, _) = answer(&mut reader, Duration::from_secs(10)).await;
    let took = started.elapsed();
    sender.abort();
    (text, took)
}

/// Issue: a JSON body that sent 1 KiB in every `server.body_timeout_seconds` was never
/// cut off, and held its handler for as many periods as it had KiB. A JSON body now
/// has one deadline for the whole of it; an upload, which may be large, still only
/// has to keep coming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_that_keeps_coming_but_is_not_whole_in_time_is_answered_408() {
    let s =
        spawn_app(AppOptions::default().settings(&[("server.body_timeout_seconds", "2")])).await;
    let admin = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
    // 1100 bytes every half second: more than 1 KiB in every period, 6 s in all.
    let json = format!("{{{}}}", " ".repeat(12 * 1100 - 2));
    let request = head("POST", "/v1/stores/shop/jobs", &admin, json.len() as u64);
    let (text, took) = paced_request(&s, &request, json.as_bytes(), 1100).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body = json_body(&text);
    assert_eq!(body["error"]["kind"], "timeout", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("server.body_timeout_seconds")),
        "{body}"
    );
    assert!(took < Duration::from_secs(4), "answered after {took:?}");

    // An upload sent at the same pace, past the same 2 s, is read whole.
    let mut csv = String::from("variant_id,product_id,title,price\n");
    for i in 0.. {
        if csv.len() >= 6 * 1100 {
            break;
        }
        csv.push_str(&format!("v{i},p{i},Stoneware Mug {i},12.00\n"));
    }
    let request = format!(
        "PUT /v1/stores/paced/catalog HTTP/1.1\r\nHost: x\r\n{admin}Connection: close\r\n\
         Content-Length: {}\r\n\r\n",
        csv.len()
    );
    let (text, took) = paced_request(&s, &request, csv.as_bytes(), 1100).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(took > Duration::from_secs(2), "sent in {took:?}");
    s.stop().await;
}

/// 50 half-open connections against a cap of 20: those over the cap are refused at
/// once with a 503 that says so, those under it are shed by the header deadline, and
/// `/healthz` on a fresh connection answers within that deadline and a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_through_a_flood_of_half_open_connections() {
    let header_timeout = 1;
    let s = spawn_app(AppOptions::default().settings(&[
        ("server.header_timeout_seconds", "1"),
        ("server.max_connections", "20"),
    ]))
    .await;
    let mut flood = Vec::new();
    for _ in 0..50 {
        flood.push(send_raw(&s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await);
    }
    let opened = Instant::now();
    let mut refusals = 0;
    let mut healthy = false;
    while opened.elapsed() < Duration::from_secs(header_timeout + 1) {
        let probe = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let mut socket = send_raw(&s, probe).await;
        let (text, _) = answer(&mut socket, Duration::from_secs(2)).await;
        if text.starts_with("HTTP/1.1 200") {
            healthy = true;
            break;
        }
        // At the cap: a refusal that says so, not a hang or a reset.
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("retry-after: 1"),
            "{text}"
        );
        assert_eq!(json_body(&text)["error"]["kind"], "retryable", "{text}");
        refusals += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        healthy,
        "/healthz did not answer within {}s of the flood ({refusals} refusals)",
        header_timeout + 1
    );
    let mut statuses = Vec::new();
    for mut socket in flood {
        let (text, _) = answer(&mut socket, Duration::from_secs(3)).await;
        statuses.push(text.get(..12).unwrap_or_default().to_owned());
    }
    let count = |status: &str| statuses.iter().filter(|got| *got == status).count();
    let (late, refused) = (count("HTTP/1.1 408"), count("HTTP/1.1 503"));
    assert!((1..=20).contains(&late), "{statuses:?}");
    assert_eq!(late + refused, 50, "{statuses:?}");
    s.stop().await;
}
