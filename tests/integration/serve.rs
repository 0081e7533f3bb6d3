//! `bundleforge serve` against the real server on a random port: auth, the job
//! lifecycle, one job per store, cancel; and the durable queue's own rules.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bundleforge::domain::StoreId;
use bundleforge::embed::{Embedder, HashingEmbedder};
use bundleforge::store::{
    JobEnd, JobQueue, JobState, Lease, NewJob, RunRecord, SqliteStore, StoreRegistry, WebhookStore,
};
use serde_json::Value;

use crate::support::{AppOptions, SlowEmbedder, TestApp, TestDb, ingest_dir, repo_root, spawn_app};

/// The harness's admin token; the `serve` processes below are given it too.
const TOKEN: &str = crate::support::ADMIN_TOKEN;

/// Our server over the small fixture store, with `overrides` and the hashing
/// embedder.
async fn start(overrides: &[(&str, &str)]) -> TestApp {
    start_with(overrides, Arc::new(HashingEmbedder::new(64))).await
}

/// As [`start`], with `embedder`.
async fn start_with(overrides: &[(&str, &str)], embedder: Arc<dyn Embedder>) -> TestApp {
    let db = TestDb::new().await;
    ingest_dir(&db, "small", &repo_root().join("fixtures/stores/small")).await;
    spawn_app(
        AppOptions::default()
            .db(db)
            .settings(overrides)
            .embedder(embedder),
    )
    .await
}

/// Polls a job until `done` says so, or panics after a minute.
async fn wait_for(s: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, job) = s.admin("GET", &format!("/v1/jobs/{id}"), "").await;
        assert_eq!(status, 200, "{job}");
        if done(&job) {
            return job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job stuck: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn state(job: &Value) -> &str {
    job["state"].as_str().unwrap_or_default()
}

fn is_api_time(v: &Value) -> bool {
    // 2026-01-02T03:04:05.678Z
    let Some(t) = v.as_str() else { return false };
    let b = t.as_bytes();
    t.len() == 24
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && t.ends_with('Z')
        && chrono::DateTime::parse_from_rfc3339(t).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_health_and_errors_have_one_shape() {
    let s = start(&[]).await;
    let (status, body) = s.admin("GET", "/healthz", "").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body, _) = s.call("GET", "/readyz", None, "").await;
    assert!(status == 200 || status == 503, "{body}");
    assert_eq!(body["database"], "ok");

    for token in [None, Some("wrong")] {
        let (status, body, _) = s.call("POST", "/v1/stores/small/jobs", token, "").await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["kind"], "unauthorized");
        assert!(body["error"]["message"].is_string());
    }
    let (status, body) = s.admin("POST", "/v1/stores/nobody/jobs", "").await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = s
        .admin("POST", "/v1/stores/small/jobs", "{\"max_bundle\": 3}")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_bundle"),
        "{body}"
    );
    let (status, body) = s
        .admin("POST", "/v1/stores/small/jobs", "{\"max_bundles\": 0}")
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = s.admin("GET", "/v1/stores/small/runs/latest", "").await;
    assert_eq!(status, 404, "no run yet: {body}");
    let (status, _) = s.admin("GET", "/v1/jobs/nope", "").await;
    assert_eq!(status, 404);
    let (status, body) = s.admin("GET", "/v1/nowhere", "").await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (404, Some("not_found"))
    );
    s.stop().await;
}

/// A day no order can be dated on would see an empty store and save that empty run as
/// the store's latest: the trigger refuses it as bad input, and nothing is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_as_of_a_day_outside_1970_to_2100_is_refused_and_saves_no_run() {
    let s = start(&[]).await;
    for day in ["1900-01-01", "2200-01-01"] {
        let body = format!("{{\"as_of\": \"{day}\"}}");
        let (status, answer) = s.admin("POST", "/v1/stores/small/jobs", &body).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["error"]["kind"], "bad_input", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("as_of") && message.contains(day),
            "{answer}"
        );
    }
    assert_eq!(s.db.count("SELECT COUNT(*) FROM jobs").await, 0);
    assert_eq!(s.db.count("SELECT COUNT(*) FROM runs").await, 0);
    let (status, answer) = s.admin("GET", "/v1/stores/small/runs/latest", "").await;
    assert_eq!(status, 404, "no run: {answer}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_once_per_store_reports_its_phases_and_saves_its_run_under_its_id() {
    let s = start(&[]).await;
    let (status, job, headers) = s
        .call(
            "POST",
            "/v1/stores/small/jobs",
            Some(TOKEN),
            "{\"max_bundles\": 8, \"seed\": 7}",
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(
        headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/v1/jobs/{id}").as_str())
    );
    assert!(matches!(state(&job), "queued" | "running"), "{job}");
    assert!(is_api_time(&job["created_at"]), "{job}");

    // A second trigger while it is queued or running returns it.
    let (status, again) = s.admin("POST", "/v1/stores/small/jobs", "").await;
    assert_eq!(
        (status, again["id"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );

    let done = wait_for(&s, &id, |j| state(j) == "succeeded" || state(j) == "failed").await;
    assert_eq!(state(&done), "succeeded", "{done}");
    assert_eq!(done["run_id"].as_str(), Some(id.as_str()));
    assert_eq!(done["attempts"], 1);
    assert!(done["error"].is_null());
    assert!(
        is_api_time(&done["started_at"]) && is_api_time(&done["finished_at"]),
        "{done}"
    );
    assert!(
        done["worker"]
            .as_str()
            .is_some_and(|w| w.matches(':').count() >= 2),
        "{done}"
    );
    let phases: Vec<&str> = done["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["state"], "finished", "{p}");
            p["phase"].as_str().unwrap()
        })
        .collect();
    assert_eq!(phases, ["context", "candidates", "optimize", "copy"]);
    // Phase 0's steps, which moved batch by batch, as the job document shows them.
    let products = done["phases"][0]["counts"]["products"].as_u64().unwrap();
    for step in ["embeddings", "classification"] {
        let counted = &done["phases"][0]["steps"][step];
        assert_eq!(
            (counted["done"].as_u64(), counted["total"].as_u64()),
            (Some(products), Some(products)),
            "{step}: {done}"
        );
    }
    let published = done["phases"][2]["counts"]["published"].as_u64().unwrap();
    assert!((1..=8).contains(&published), "{done}");

    let db = &s.db;
    let runs = db
        .count(&format!("SELECT COUNT(*) FROM runs WHERE run_id = '{id}'"))
        .await;
    let bundles = db
        .count(&format!(
            "SELECT COUNT(*) FROM bundles WHERE run_id = '{id}'"
        ))
        .await;
    assert_eq!((runs, bundles as u64), (1, published));

    // The run reads back as `generate --json` prints it, latest and by id.
    let (status, latest) = s.admin("GET", "/v1/stores/small/runs/latest", "").await;
    assert_eq!(status, 200, "{latest}");
    assert_eq!(latest["run"]["run_id"].as_str(), Some(id.as_str()));
    assert!(
        latest["run"]["tier"].is_string() && latest["run"]["weights"].is_object(),
        "{}",
        latest["run"]
    );
    let listed = latest["bundles"].as_array().unwrap();
    assert_eq!(listed.len() as u64, published);
    assert!(
        listed
            .iter()
            .all(|b| b["id"].is_string() && b["products"].is_array())
    );
    let (status, by_id) = s
        .admin("GET", &format!("/v1/stores/small/runs/{id}"), "")
        .await;
    assert_eq!((status, &by_id), (200, &latest));
    let (status, _) = s.admin("GET", "/v1/stores/small/runs/nope", "").await;
    assert_eq!(status, 404);

    // The list of runs, the bundles filtered, the files.
    let (status, runs) = s.admin("GET", "/v1/stores/small/runs", "").await;
    assert_eq!(status, 200, "{runs}");
    assert_eq!(runs["total"], 1);
    assert_eq!(runs["items"][0]["run_id"].as_str(), Some(id.as_str()));
    assert_eq!(runs["items"][0]["bundles"].as_u64(), Some(published));
    let first = &listed[0];
    let objective = first["objective"].as_str().unwrap();
    let (status, only) = s
        .admin(
            "GET",
            &format!("/v1/stores/small/runs/{id}?objective={objective}"),
            "",
        )
        .await;
    assert_eq!(status, 200, "{only}");
    let expected = listed
        .iter()
        .filter(|b| b["objective"] == objective)
        .count();
    assert_eq!(only["bundles"].as_array().unwrap().len(), expected);
    let product = first["products"][0]["product_id"].as_str().unwrap();
    let bundle_type = first["bundle_type"].as_str().unwrap();
    let (_, only) = s
        .admin(
            "GET",
            &format!("/v1/stores/small/runs/latest/bundles?product={product}&type={bundle_type}"),
            "",
        )
        .await;
    let only = only["bundles"].as_array().unwrap();
    assert!(!only.is_empty());
    assert!(only.iter().all(|b| {
        b["bundle_type"] == bundle_type
            && b["products"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["product_id"] == product)
    }));
    let (status, body) = s
        .admin("GET", "/v1/stores/small/runs/latest?objective=upsell", "")
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("increase_aov"),
        "{body}"
    );
    for (file, kind, starts) in [
        ("report.html", "text/html", "<!doctype html>"),
        ("bundles.csv", "text/csv", "id,objective,bundle_type"),
        ("shopify.json", "application/json", "{"),
        ("bundles.json", "application/json", "{"),
    ] {
        let (status, body, headers) = s
            .raw(
                "GET",
                &format!("/v1/stores/small/runs/{id}/{file}"),
                Some(TOKEN),
                Vec::new(),
            )
            .await;
        assert_eq!(status, 200, "{file}");
        let content_type = headers["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{file}: {content_type}");
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.to_ascii_lowercase().starts_with(starts),
            "{file}: {}",
            &text[..40.min(text.len())]
        );
    }

    // With the store free again, a trigger queues a new job.
    let (status, next) = s.admin("POST", "/v1/stores/small/jobs", "").await;
    assert_eq!(status, 202, "{next}");
    assert_ne!(next["id"].as_str(), Some(id.as_str()));
    s.stop().await;
}

/// Issue #40: jobs queued before the one run request, stored in the trigger's flat
/// shape, still run as that body asked; the job shows the run request it became.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_queued_in_the_old_flat_shape_still_runs_as_it_asked() {
    let s = start(&[]).await;
    let id = "01OLDSHAPE0000000000000000".to_owned();
    let old = NewJob {
        job_id: id.clone(),
        store_id: "small".into(),
        request: r#"{"max_bundles":3,"seed":7}"#.into(),
        max_attempts: 3,
        created_at: chrono::Utc::now().timestamp_millis(),
        behind_others: false,
    };
    s.db.store.enqueue_job(&old).await.unwrap();
    let done = wait_for(&s, &id, |j| state(j) == "succeeded" || state(j) == "failed").await;
    assert_eq!(state(&done), "succeeded", "{done}");
    let request = &done["request"];
    assert_eq!(request["variant"]["max_bundles"], 3, "{done}");
    assert_eq!(request["variant"]["seed"], 7, "{done}");
    assert_eq!(request["prepare"]["seed"], 7, "{done}");
    let (status, run) = s
        .admin("GET", &format!("/v1/stores/small/runs/{id}"), "")
        .await;
    assert_eq!(status, 200, "{run}");
    let bundles = run["bundles"].as_array().unwrap().len();
    assert!((1..=3).contains(&bundles), "{bundles} bundles");
    assert_eq!(run["run"]["seed"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_queued_behind_another_is_cancelled_at_once_and_never_runs() {
    let s = start(&[
        ("server.heartbeat_seconds", "1"),
        ("server.lease_seconds", "5"),
    ])
    .await;
    let (_, first) = s.admin("POST", "/v1/stores/small/jobs", "").await;
    let first = first["id"].as_str().unwrap().to_owned();
    let (status, second) = s.admin("POST", "/v1/stores/small/jobs?queue=1", "").await;
    assert_eq!(status, 202, "{second}");
    let second = second["id"].as_str().unwrap().to_owned();
    assert_ne!(first, second);

    // The queued one is cancelled at once and never runs.
    let (status, cancelled) = s.admin("DELETE", &format!("/v1/jobs/{second}"), "").await;
    assert_eq!(status, 202, "{cancelled}");
    assert_eq!(state(&cancelled), "cancelled", "{cancelled}");
    assert!(is_api_time(&cancelled["finished_at"]));

    // The first ends as it would have anyway (this run is quick).
    wait_for(&s, &first, |j| state(j) == "succeeded").await;
    let never =
        s.db.count(&format!(
            "SELECT COUNT(*) FROM runs WHERE run_id = '{second}'"
        ))
        .await;
    assert_eq!(never, 0);
    s.stop().await;
}

/// A server whose embedder is slow, with one second of shutdown grace, and a job of
/// store `small` that has started running.
async fn slow_job_running() -> (TestApp, String) {
    let s = start_with(
        &[("server.shutdown_seconds", "1")],
        Arc::new(SlowEmbedder(HashingEmbedder::new(64))),
    )
    .await;
    let (_, job) = s.admin("POST", "/v1/stores/small/jobs", "").await;
    let id = job["id"].as_str().unwrap().to_owned();
    let running = wait_for(&s, &id, |j| state(j) == "running").await;
    assert!(is_api_time(&running["started_at"]), "{running}");
    (s, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_cancelled_ends_cancelled_and_saves_no_run() {
    let (s, id) = slow_job_running().await;
    let asked = Instant::now();
    let (status, _) = s.admin("DELETE", &format!("/v1/jobs/{id}"), "").await;
    assert_eq!(status, 202);
    let ended = wait_for(&s, &id, |j| state(j) != "running").await;
    assert_eq!(state(&ended), "cancelled", "{ended}");
    assert_eq!(ended["error"]["kind"], "cancelled", "{ended}");
    // The cancel token stops the embedding wait, not the minute it would take.
    assert!(asked.elapsed() < Duration::from_secs(30));
    let runs =
        s.db.count(&format!("SELECT COUNT(*) FROM runs WHERE run_id = '{id}'"))
            .await;
    assert_eq!(runs, 0);
    // The store is free for the next trigger.
    let (status, _) = s.admin("POST", "/v1/stores/small/jobs", "").await;
    assert_eq!(status, 202);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_puts_a_running_job_back_in_the_queue_within_its_grace() {
    let (s, id) = slow_job_running().await;
    let asked = Instant::now();
    let db = s.stop().await;
    let store = &db.store;
    // One second of grace, then the run is cancelled and its lease released.
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "{:?}",
        asked.elapsed()
    );
    let job = store.get_job(&id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Queued, "{job:?}");
    assert_eq!(job.attempts, 1);
    assert_eq!(job.error_kind.as_deref(), Some("retryable"), "{job:?}");
    assert!(
        job.worker.is_none() || job.lease_until.is_none(),
        "still leased: {job:?}"
    );
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(runs, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_token_acts_for_its_store_only_until_revoked() {
    let s = start(&[]).await;
    let csv = "variant_id,product_id,title,price\nv1,p1,Mug,12.00\n";
    s.db.ingest_ok(
        "other",
        crate::support::catalog(s.db.file("other.csv", csv)),
    )
    .await;
    let (status, _, _) = s
        .call("POST", "/v1/admin/stores/small/tokens", None, "")
        .await;
    assert_eq!(status, 401);
    let (status, created) = s.admin("POST", "/v1/admin/stores/small/tokens", "").await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let token_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["store"], "small");
    // Only its hash is stored.
    let stored =
        s.db.count(&format!(
            "SELECT COUNT(*) FROM api_tokens WHERE token_hash = '{token}'"
        ))
        .await;
    assert_eq!(stored, 0);

    let (status, job, _) = s
        .call("POST", "/v1/stores/small/jobs", Some(&token), "")
        .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let (status, _, _) = s
        .call("GET", &format!("/v1/jobs/{id}"), Some(&token), "")
        .await;
    assert_eq!(status, 200);
    // Another store's data, and the admin routes: 403.
    let (status, body, _) = s
        .call("POST", "/v1/stores/other/jobs", Some(&token), "")
        .await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, _, _) = s
        .call("GET", "/v1/stores/other/runs/latest", Some(&token), "")
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = s
        .call("POST", "/v1/admin/stores/small/tokens", Some(&token), "")
        .await;
    assert_eq!(status, 403);
    wait_for(&s, &id, |j| state(j) == "succeeded").await;

    let (status, _) = s
        .admin("DELETE", &format!("/v1/admin/tokens/{token_id}"), "")
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = s
        .call("GET", &format!("/v1/jobs/{id}"), Some(&token), "")
        .await;
    assert_eq!(status, 401, "a revoked token is no token");
    let (status, _) = s
        .admin("DELETE", &format!("/v1/admin/tokens/{token_id}"), "")
        .await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_rate_gets_429_with_retry_after_and_other_tokens_do_not() {
    let s = start(&[
        ("server.rate_limit_per_minute", "1"),
        ("server.rate_limit_burst", "3"),
    ])
    .await;
    let (_, created) = s.admin("POST", "/v1/admin/stores/small/tokens", "").await;
    let token = created["token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let (status, body, _) = s
            .call("GET", "/v1/stores/small/runs/latest", Some(&token), "")
            .await;
        assert_eq!(status, 404, "no run yet, but within the rate: {body}");
    }
    let (status, body, headers) = s
        .call("GET", "/v1/stores/small/runs/latest", Some(&token), "")
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["kind"], "rate_limited");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(body["error"]["details"]["retry_after_seconds"], retry);
    // Each token has its own allowance: the admin's (one request spent above) is not
    // touched by the store token's.
    let (status, _) = s.admin("GET", "/v1/stores/small/runs/latest", "").await;
    assert_eq!(status, 404);
    // A request without a valid token is refused before it costs anything.
    let (status, _, _) = s
        .call("GET", "/v1/stores/small/runs/latest", Some("bf_nope"), "")
        .await;
    assert_eq!(status, 401);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_report_bad_rows_keep_the_valid_ones_and_refuse_an_oversized_body() {
    let s = start(&[("server.max_body_mb", "1")]).await;
    let catalog = "\
variant_id,product_id,title,price,sku
v1,p1,Stoneware Mug,12.00,MUG-1
v2,p2,Espresso Cup,abc,CUP-1
v3,p3,Dinner Plate,9.50,PL-1
";
    let (status, report, _) = s
        .call("PUT", "/v1/stores/shop2/catalog", None, catalog)
        .await;
    assert_eq!(status, 401, "{report}");
    let (status, report) = s.admin("PUT", "/v1/stores/shop2/catalog", catalog).await;
    assert_eq!(status, 200, "{report}");
    // The report `ingest --json` prints, naming the upload, not where it was kept.
    assert_eq!(
        (report["rows_read"].as_u64(), report["rows_kept"].as_u64()),
        (Some(3), Some(2)),
        "{report}"
    );
    assert_eq!(report["store_id"], "shop2");
    let error = &report["errors"][0];
    assert_eq!(
        (error["file"].as_str(), error["line"].as_u64()),
        (Some("catalog"), Some(3)),
        "{report}"
    );
    assert_eq!(error["value"], "abc");
    assert_eq!(report["files"][0]["path"], "catalog");

    // Gzip, and orders, as `ingest` takes them.
    let orders = "\
order_id,created_at,quantity,unit_price,sku
1,2026-01-05 10:00:00,1,12.00,MUG-1
1,2026-01-05 10:00:00,2,9.50,PL-1
2,2026-01-06 10:00:00,1,12.00,MUG-1
3,2026-01-07 10:00:00,one,12.00,MUG-1
";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, orders.as_bytes()).unwrap();
    let (status, report, _) = s
        .call_bytes(
            "PUT",
            "/v1/stores/shop2/orders",
            Some(TOKEN),
            gz.finish().unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["orders"].as_u64(), report["error_count"].as_u64()),
        (Some(2), Some(1)),
        "{report}"
    );
    assert_eq!(report["errors"][0]["file"], "orders");

    // What was valid is there: the catalog, a product by SKU or product id, stats.
    let (status, page) = s
        .admin("GET", "/v1/stores/shop2/products?limit=1", "")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        (page["total"].as_u64(), page["next_offset"].as_u64()),
        (Some(2), Some(1)),
        "{page}"
    );
    assert_eq!(page["items"][0]["variant_id"], "v1");
    let (_, page) = s
        .admin("GET", "/v1/stores/shop2/products?offset=1&limit=1", "")
        .await;
    assert_eq!(page["items"][0]["variant_id"], "v3");
    assert!(page["next_offset"].is_null(), "{page}");
    let (status, _) = s
        .admin("GET", "/v1/stores/shop2/products?limit=0", "")
        .await;
    assert_eq!(status, 400);
    let (status, p) = s.admin("GET", "/v1/stores/shop2/products/MUG-1", "").await;
    assert_eq!((status, p["variant_id"].as_str()), (200, Some("v1")), "{p}");
    let (_, p) = s.admin("GET", "/v1/stores/shop2/products/p3", "").await;
    assert_eq!(p["title"], "Dinner Plate");
    let (status, _) = s.admin("GET", "/v1/stores/shop2/products/v2", "").await;
    assert_eq!(status, 404, "the rejected row was not stored");
    let (status, stats) = s.admin("GET", "/v1/stores/shop2/stats", "").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        (stats["orders"].as_u64(), stats["products"].as_u64()),
        (Some(2), Some(2)),
        "{stats}"
    );

    // Inventory levels the stored catalog cannot join: 422 saying why, naming no
    // temporary file.
    let (status, body) = s
        .admin("PUT", "/v1/stores/shop2/inventory", "colour,size\nred,L\n")
        .await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (422, Some("bad_input")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("inventory"), "{message}");
    let temp = std::env::temp_dir().display().to_string();
    assert!(
        !message.contains(&temp),
        "names where the upload was kept: {message}"
    );

    // Over the limit: 413 naming it, whether the length is declared or streamed. A
    // declared length is refused before the body is read (so over a raw socket: a
    // client library may fail writing the body the server will not read).
    let addr = s.url.trim_start_matches("http://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        write!(
            socket,
            "PUT /v1/stores/shop2/catalog HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            2 * 1024 * 1024
        )
        .unwrap();
        let mut answer = String::new();
        let _ = socket.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("\"too_large\"") && answer.contains("1 MiB"),
        "{answer}"
    );
    let big = vec![b'x'; 1024 * 1024 + 10];
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let resp = s
        .client
        .put(format!("{}/v1/stores/shop2/catalog", s.url))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    // The server may answer before it has read the whole body, or close on it.
    if let Ok(resp) = resp {
        assert_eq!(resp.status().as_u16(), 413);
    }
    let (_, page) = s.admin("GET", "/v1/stores/shop2/products", "").await;
    assert_eq!(page["total"], 2, "nothing of a refused upload is stored");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_catalog_uploads_in_parts_each_read_with_the_stored_others() {
    let s = start(&[]).await;
    let products = "\
id,title,handle,body_html,vendor,productType,tags,status,createdAt
gid://shopify/Product/1,Green Tea,green-tea,<p>Sencha</p>,Leafy,Tea,\"organic\",ACTIVE,2024-01-10T10:00:00Z
gid://shopify/Product/2,Teapot,teapot,Cast iron,Potter,Teaware,,ACTIVE,2024-02-01T00:00:00Z
";
    let variants = "\
id,product_id,title,sku,price,compare_at_price,inventory_item_id
gid://shopify/ProductVariant/11,gid://shopify/Product/1,50g,TEA-50,8.50,,gid://shopify/InventoryItem/111
gid://shopify/ProductVariant/21,gid://shopify/Product/2,Default Title,POT-1,40.00,45.00,gid://shopify/InventoryItem/211
";
    let levels = "\
inventory_item_id,location_id,available,cost
gid://shopify/InventoryItem/111,gid://shopify/Location/1,5,3.00
gid://shopify/InventoryItem/111,gid://shopify/Location/2,7,
";
    let (status, body) = s.admin("PUT", "/v1/stores/split/variants", variants).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upload the catalog first"),
        "{body}"
    );
    // A products file without prices cannot be read alone: it is kept for its variants.
    let (status, body) = s.admin("PUT", "/v1/stores/split/catalog", products).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upload the variants next"),
        "{body}"
    );
    let (status, report) = s.admin("PUT", "/v1/stores/split/variants", variants).await;
    assert_eq!(
        (status, report["products"].as_u64()),
        (200, Some(2)),
        "{report}"
    );
    let (status, report) = s.admin("PUT", "/v1/stores/split/inventory", levels).await;
    assert_eq!(
        (status, report["products"].as_u64()),
        (200, Some(2)),
        "{report}"
    );
    let (_, tea) = s.admin("GET", "/v1/stores/split/products/TEA-50", "").await;
    assert_eq!(tea["inventory"], 12, "{tea}");
    assert_eq!(tea["description"], "Sencha");
    s.stop().await;
}

/// Triggers a job and waits for it to succeed; its run's bundles.
async fn run_job(s: &TestApp, body: &str) -> (String, Vec<Value>) {
    let (status, job) = s.admin("POST", "/v1/stores/small/jobs", body).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let done = wait_for(s, &id, |j| matches!(state(j), "succeeded" | "failed")).await;
    assert_eq!(state(&done), "succeeded", "{done}");
    let (_, run) = s
        .admin("GET", &format!("/v1/stores/small/runs/{id}"), "")
        .await;
    (id, run["bundles"].as_array().unwrap().clone())
}

/// Runs `sql` on the served database, behind the server's back.
async fn sql(s: &TestApp, sql: &str) {
    sqlx::query(sql).execute(s.db.store.pool()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_bundle_is_kept_by_the_next_run_and_a_rejected_one_never_comes_back() {
    let s = start(&[]).await;
    let (first_run, first) = run_job(&s, "{\"max_bundles\": 8, \"seed\": 7}").await;
    assert!(first.len() >= 4, "{} bundles", first.len());
    let top = first[0]["id"].as_str().unwrap().to_owned();
    let last = first[first.len() - 1]["id"].as_str().unwrap().to_owned();

    let path =
        |id: &str, what: &str| format!("/v1/stores/small/runs/{first_run}/bundles/{id}/{what}");
    let (status, body) = s.admin("POST", &path("nope", "approve"), "").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = s
        .admin("POST", &path(&last, "approve"), "{\"by\": \"Ana\"}")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["decision"].as_str(), body["decided_by"].as_str()),
        (Some("approved"), Some("Ana"))
    );
    assert!(is_api_time(&body["decided_at"]), "{body}");
    let (status, body) = s.admin("POST", &path(&top, "reject"), "").await;
    assert_eq!(
        (status, body["decided_by"].as_str()),
        (200, Some("admin")),
        "{body}"
    );
    let (status, _) = s.admin("POST", &path(&top, "reject"), "{\"who\": 1}").await;
    assert_eq!(status, 400, "unknown keys are refused");
    // The run shows each bundle's decision.
    let (_, run) = s
        .admin("GET", &format!("/v1/stores/small/runs/{first_run}"), "")
        .await;
    let shown = |id: &str| {
        run["bundles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == id)
            .unwrap()["decision"]["decision"]
            .clone()
    };
    assert_eq!(
        (shown(&last), shown(&top)),
        (Value::from("approved"), Value::from("rejected"))
    );

    // A run of three: the approved bundle (eighth before) is kept, first; the rejected
    // one is not published.
    let (_, second) = run_job(&s, "{\"max_bundles\": 3, \"seed\": 7}").await;
    assert!(second.len() <= 3);
    assert_eq!(
        second[0]["id"].as_str(),
        Some(last.as_str()),
        "{:?}",
        second.iter().map(|b| &b["id"]).collect::<Vec<_>>()
    );
    let mark = &second[0]["approval"];
    assert_eq!(
        (
            mark["kept"].as_str(),
            mark["approved_in_run"].as_str(),
            mark["decided_by"].as_str()
        ),
        (Some("unchanged"), Some(first_run.as_str()), Some("Ana")),
        "{mark}"
    );
    assert_eq!(
        second[0]["final_price_minor"],
        first[first.len() - 1]["final_price_minor"]
    );
    assert!(
        second.iter().all(|b| b["id"] != top.as_str()),
        "a rejected bundle came back"
    );
    let (_, latest) = s.admin("GET", "/v1/stores/small/runs/latest", "").await;
    assert_eq!(
        latest["run"]["approvals"]["kept_unchanged"], 1,
        "{}",
        latest["run"]["approvals"]
    );

    // Its products' prices change: kept at the new run's price, or dropped saying so.
    let item = first[first.len() - 1]["products"][0]["product_id"]
        .as_str()
        .unwrap()
        .to_owned();
    sql(
        &s,
        &format!("UPDATE products SET price_minor = price_minor + 100 WHERE variant_id = '{item}'"),
    )
    .await;
    let (_, third) = run_job(&s, "{\"max_bundles\": 8, \"seed\": 7}").await;
    let (_, latest) = s.admin("GET", "/v1/stores/small/runs/latest", "").await;
    let report = &latest["run"]["approvals"];
    match third.iter().find(|b| b["id"] == last.as_str()) {
        Some(b) => {
            assert_eq!(b["approval"]["kept"], "repriced", "{b}");
            let changes = b["approval"]["changes"].as_array().unwrap();
            assert!(
                changes
                    .iter()
                    .any(|c| c.as_str().unwrap().starts_with("list price")),
                "{changes:?}"
            );
            assert_eq!(report["kept_repriced"], 1, "{report}");
        }
        None => {
            let why = report["dropped"][0]["reason"].as_str().unwrap_or_default();
            assert!(why.contains("prices changed"), "{report}");
        }
    }

    // Out of stock: dropped, with the reason.
    sql(&s, &format!(
        "UPDATE products SET price_minor = price_minor - 100, inventory = 0 WHERE variant_id = '{item}'"
    ))
    .await;
    let (_, fourth) = run_job(&s, "{\"max_bundles\": 8, \"seed\": 7}").await;
    assert!(fourth.iter().all(|b| b["id"] != last.as_str()));
    let (_, latest) = s.admin("GET", "/v1/stores/small/runs/latest", "").await;
    let report = &latest["run"]["approvals"];
    assert_eq!(
        report["dropped"][0]["bundle_id"].as_str(),
        Some(last.as_str()),
        "{report}"
    );
    assert!(
        report["dropped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("short of stock"),
        "{report}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_events_stream_the_job_in_order_until_it_ends() {
    let s = start(&[]).await;
    let (status, job) = s
        .admin("POST", "/v1/stores/small/jobs", "{\"seed\": 7}")
        .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let resp = s
        .client
        .get(format!("{}/v1/jobs/{id}/events", s.url))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // The stream ends after the job does: read it whole (within a minute).
    let text = tokio::time::timeout(Duration::from_secs(60), resp.text())
        .await
        .expect("the stream ends")
        .unwrap();
    let mut events: Vec<(u64, Value)> = Vec::new();
    for block in text.split("\n\n").filter(|b| b.contains("data:")) {
        let mut event_id = None;
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                event_id = Some(v.trim().parse::<u64>().unwrap());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else if let Some(v) = line.strip_prefix("event:") {
                assert_eq!(v.trim(), "job");
            }
        }
        events.push((event_id.unwrap(), serde_json::from_str(&data).unwrap()));
    }
    assert!(!events.is_empty(), "{text}");
    let rank = |st: &str| {
        ["queued", "running", "succeeded"]
            .iter()
            .position(|x| *x == st)
            .unwrap()
    };
    let mut finished_before = 0;
    for (i, (event_id, job)) in events.iter().enumerate() {
        assert_eq!(*event_id, i as u64, "ids count from 0");
        assert_eq!(job["id"].as_str(), Some(id.as_str()));
        if i > 0 {
            assert!(
                rank(state(job)) >= rank(state(&events[i - 1].1)),
                "states go forward"
            );
        }
        let finished = job["phases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["state"] == "finished")
            .count();
        assert!(finished >= finished_before, "phases only finish: {job}");
        finished_before = finished;
    }
    let last = &events.last().unwrap().1;
    assert_eq!(state(last), "succeeded", "{last}");
    assert_eq!(finished_before, 4);
    // Consecutive events differ: each says something new.
    for pair in events.windows(2) {
        assert_ne!(pair[0].1, pair[1].1);
    }
    s.stop().await;
}

/// Issue: a job's event stream ends only with its job, and a graceful shutdown waits
/// for every answer under way, so a dashboard left open held the shutdown for as long
/// as the job lasted (here: an hour). The stream now ends on shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_job_event_stream_ends_on_shutdown_and_does_not_hold_it() {
    let db = TestDb::new().await;
    ingest_dir(&db, "small", &repo_root().join("fixtures/stores/small")).await;
    // Due in an hour: no worker claims it, and its stream stays open meanwhile.
    let later = NewJob {
        created_at: chrono::Utc::now().timestamp_millis() + 3_600_000,
        ..new_job("later", false)
    };
    db.store.enqueue_job(&later).await.unwrap();
    let s = spawn_app(AppOptions::default().db(db)).await;
    let mut events = s
        .client
        .get(format!("{}/v1/jobs/later/events", s.url))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status().as_u16(), 200);
    let mut seen = String::new();
    while !seen.contains("event: job") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .expect("the first event")
            .unwrap()
            .expect("the stream is open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }

    let asked = Instant::now();
    let db = tokio::time::timeout(Duration::from_secs(10), s.stop())
        .await
        .expect("the shutdown waited on the open event stream");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    // The stream itself has ended.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream is still open");
    let job = db.store.get_job("later").await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Queued, "{job:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid_and_names_every_route_the_server_answers() {
    let s = start(&[]).await;
    let (status, doc, _) = s.call("GET", "/openapi.json", None, "").await;
    assert_eq!(status, 200);
    let spec = oas3::from_json(doc.to_string()).expect("a valid OpenAPI document");
    assert_eq!(spec.validate_version().unwrap().major, 3);
    assert_eq!(doc["openapi"], "3.1.0");
    let operations: Vec<(String, String)> = spec
        .operations()
        .map(|(path, method, _)| (method.as_str().to_ascii_lowercase(), path))
        .collect();
    let routes = bundleforge::server::routes::table();
    assert_eq!(operations.len(), routes.len());
    for (route, _) in &routes {
        assert!(
            operations.contains(&(route.method.to_owned(), route.path.to_owned())),
            "{} {} is not in the document",
            route.method,
            route.path
        );
    }
    // Each documented route is one the server routes (a route it lacks answers the
    // fallback's "no such route").
    for (method, path) in &operations {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let (_, body, _) = s
            .call(&method.to_ascii_uppercase(), &concrete, Some("bf_nope"), "")
            .await;
        assert_ne!(body["error"]["message"], "no such route", "{method} {path}");
    }
    let (status, body, _) = s.call("GET", "/v1/nothing-here", None, "").await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (404, Some("no such route"))
    );
    // The API page lists them too.
    let (status, page, _) = s.raw("GET", "/docs", None, Vec::new()).await;
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("/v1/stores/{store}/runs/{run}/bundles/{id}/approve"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_request_ids_and_cors() {
    let s = start(&[("server.cors_origins", "[\"https://admin.example.com\"]")]).await;
    let (id, _) = run_job(&s, "{\"max_bundles\": 4}").await;
    assert!(!id.is_empty());
    let (status, body, _) = s.raw("GET", "/metrics", None, Vec::new()).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    for needle in [
        "bundleforge_jobs{state=\"succeeded\"} 1",
        "bundleforge_queue_depth 0",
        "bundleforge_jobs_ended_total{state=\"succeeded\"} 1",
        "bundleforge_run_duration_seconds_count 1",
        "bundleforge_phase_duration_seconds_count{phase=\"optimize\"} 1",
        "bundleforge_http_requests_total{route=\"/v1/stores/{store}/jobs\",method=\"POST\",status=\"202\"} 1",
        "bundleforge_http_request_duration_seconds_bucket{route=\"/v1/jobs/{id}\",le=\"+Inf\"}",
        "bundleforge_llm_calls_total{model=",
        "bundleforge_llm_requests_sent_total{model=",
        "bundleforge_llm_refused_total{model=",
        "# TYPE bundleforge_webhooks_total counter",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("bundleforge_"), "{line}");
    }

    // A request id: the caller's, else a new one, sent back.
    let resp = s
        .client
        .get(format!("{}/healthz", s.url))
        .header("x-request-id", "dash-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "dash-42");
    let (_, _, headers) = s.call("GET", "/healthz", None, "").await;
    assert_eq!(headers["x-request-id"].len(), 26, "a ULID");

    // CORS: the configured origin may call, with a preflight; another may not.
    let preflight = |origin: &'static str| {
        s.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/stores/small/jobs", s.url),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            )
            .send()
    };
    let ok = preflight("https://admin.example.com").await.unwrap();
    assert_eq!(ok.status().as_u16(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
    assert!(
        ok.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let resp = s
        .client
        .get(format!("{}/v1/stores/small/runs/latest", s.url))
        .header("Origin", "https://admin.example.com")
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );

    // A body nested deeper than server.max_json_depth: refused before it is parsed.
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let (status, body) = s.admin("POST", "/v1/stores/small/jobs", &deep).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_json_depth"),
        "{body}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_is_its_shop_by_the_domain_set_else_by_its_myshopify_name() {
    let s = start(&[]).await;
    let csv = "variant_id,product_id,title,price\nv1,p1,Mug,12.00\n";
    s.db.ingest_ok(
        "other",
        crate::support::catalog(s.db.file("other.csv", csv)),
    )
    .await;
    let (status, found) = s
        .admin("GET", "/v1/admin/shops/small.myshopify.com", "")
        .await;
    assert_eq!(
        (status, found["store"].as_str()),
        (200, Some("small")),
        "{found}"
    );
    let (status, body) = s
        .admin(
            "PUT",
            "/v1/admin/stores/small/shop-domain",
            "{\"shop_domain\": \"not a domain\"}",
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = s
        .admin(
            "PUT",
            "/v1/admin/stores/small/shop-domain",
            "{\"shop_domain\": \"Boutique.Example.com\"}",
        )
        .await;
    assert_eq!(
        (status, body["shop_domain"].as_str()),
        (200, Some("boutique.example.com")),
        "{body}"
    );
    let (_, found) = s
        .admin("GET", "/v1/admin/shops/boutique.example.com", "")
        .await;
    assert_eq!(found["store"], "small");
    let (status, _) = s
        .admin("GET", "/v1/admin/shops/small.myshopify.com", "")
        .await;
    assert_eq!(status, 404, "a store with a domain set is that shop only");
    let (status, body) = s
        .admin(
            "PUT",
            "/v1/admin/stores/other/shop-domain",
            "{\"shop_domain\": \"boutique.example.com\"}",
        )
        .await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already"),
        "{body}"
    );
    let (status, _) = s
        .admin(
            "PUT",
            "/v1/admin/stores/nobody/shop-domain",
            "{\"shop_domain\": \"x.example.com\"}",
        )
        .await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_that_is_another_store_by_its_name_is_refused_with_409() {
    let s = start(&[]).await;
    let csv = "variant_id,product_id,title,price\nv1,p1,Mug,12.00\n";
    s.db.ingest_ok(
        "other",
        crate::support::catalog(s.db.file("other.csv", csv)),
    )
    .await;
    let set = |store: &str, domain: &str| {
        (
            format!("/v1/admin/stores/{store}/shop-domain"),
            format!("{{\"shop_domain\": \"{domain}\"}}"),
        )
    };
    let (path, body) = set("small", "other.myshopify.com");
    let (status, refused) = s.admin("PUT", &path, &body).await;
    assert_eq!(
        (status, refused["error"]["kind"].as_str()),
        (409, Some("conflict")),
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"other\"")),
        "{refused}"
    );
    // The shop's webhooks stay with the store it is.
    let (_, found) = s
        .admin("GET", "/v1/admin/shops/other.myshopify.com", "")
        .await;
    assert_eq!(found["store"], "other", "{found}");
    // A store's own name is its to set; once `other` has a domain of its own, its
    // name is no shop's and may be given.
    let (path, body) = set("small", "small.myshopify.com");
    let (status, answer) = s.admin("PUT", &path, &body).await;
    assert_eq!(status, 200, "{answer}");
    let (path, body) = set("other", "other-shop.example.com");
    let (status, answer) = s.admin("PUT", &path, &body).await;
    assert_eq!(status, 200, "{answer}");
    let (path, body) = set("small", "other.myshopify.com");
    let (status, answer) = s.admin("PUT", &path, &body).await;
    assert_eq!(status, 200, "{answer}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_id_says_nothing_to_a_caller_who_may_not_see_the_job() {
    let s = start(&[]).await;
    let csv = "variant_id,product_id,title,price\nv1,p1,Mug,12.00\n";
    s.db.ingest_ok(
        "other",
        crate::support::catalog(s.db.file("other.csv", csv)),
    )
    .await;
    let (status, job) = s.admin("POST", "/v1/stores/small/jobs", "").await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    let (_, created) = s.admin("POST", "/v1/admin/stores/other/tokens", "").await;
    let other = created["token"].as_str().unwrap().to_owned();

    // (method, path suffix): the job, its cancel and its event stream.
    for (method, suffix) in [("GET", ""), ("DELETE", ""), ("GET", "/events")] {
        let existing = format!("/v1/jobs/{id}{suffix}");
        let absent = format!("/v1/jobs/{missing}{suffix}");
        // No token, or none of ours: 401 before the job is looked up.
        for token in [None, Some("bf_not_a_token")] {
            let (a, a_body, _) = s.call(method, &existing, token, "").await;
            let (m, m_body, _) = s.call(method, &absent, token, "").await;
            assert_eq!((a, m), (401, 401), "{method} {suffix}: {a_body} {m_body}");
            assert_eq!(a_body, m_body, "{method} {suffix}");
        }
        // Another store's token: the job is as missing as one that is not there.
        let (a, a_body, _) = s.call(method, &existing, Some(&other), "").await;
        let (m, m_body, _) = s.call(method, &absent, Some(&other), "").await;
        assert_eq!((a, m), (404, 404), "{method} {suffix}: {a_body} {m_body}");
        assert_eq!(
            a_body.to_string().replace(&id, missing),
            m_body.to_string(),
            "the same answer but for the id asked"
        );
    }
    let (status, job) = s.admin("GET", &format!("/v1/jobs/{id}"), "").await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(
        job["cancel_requested"].as_bool(),
        Some(false),
        "another store's token cancels nothing: {job}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_past_fifty_a_minute_get_429_and_valid_tokens_never_do() {
    let s = start(&[]).await;
    let page = "/v1/stores/small/runs";
    for i in 0..50 {
        let guess = format!("bf_guess_{i}");
        let (status, body, _) = s.call("GET", page, Some(&guess), "").await;
        assert_eq!(status, 401, "failure {}: {body}", i + 1);
    }
    for guess in ["bf_guess_50", "bf_guess_51"] {
        let (status, body, headers) = s.call("GET", page, Some(guess), "").await;
        assert_eq!(
            (status, body["error"]["kind"].as_str()),
            (429, Some("rate_limited")),
            "{body}"
        );
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    // An admin route counts the same guesses.
    let (status, body, _) = s
        .call(
            "GET",
            "/v1/admin/shops/small.myshopify.com",
            Some("bf_x"),
            "",
        )
        .await;
    assert_eq!(status, 429, "{body}");
    // Valid credentials from the same address are never refused by it.
    let (status, body) = s.admin("GET", page, "").await;
    assert_eq!(status, 200, "{body}");
    let (status, created) = s.admin("POST", "/v1/admin/stores/small/tokens", "").await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let (status, body, _) = s.call("GET", page, Some(&token), "").await;
    assert_eq!(status, 200, "{body}");
    // No token at all is no guess at one: still 401.
    let (status, _, _) = s.call("GET", page, None, "").await;
    assert_eq!(status, 401);
    s.stop().await;
}

#[test]
fn an_admin_token_under_32_characters_is_refused_at_start_up() {
    use bundleforge::config::SettingsBuilder;
    let with = |token: &str| {
        SettingsBuilder::new()
            .unwrap()
            .flag("server.admin_token", token)
            .unwrap()
            .build()
    };
    let err = with("sekrit").unwrap_err().to_string();
    assert!(
        err.contains("server.admin_token") && err.contains("32"),
        "{err}"
    );
    assert!(!err.contains("sekrit"), "the token is never said: {err}");
    with("").expect("empty: no admin token");
    with(TOKEN).expect("the tests' own token is long enough");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_queries_paths_and_methods_answer_in_the_json_error_shape() {
    let s = start(&[]).await;
    let is_json = |headers: &reqwest::header::HeaderMap| {
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"))
    };
    for (path, names) in [
        ("/v1/stores/small/products?limit=abc", "limit"),
        ("/v1/stores/small/products?colour=red", "colour"),
        ("/v1/stores/small/runs/latest?objectve=gift", "objectve"),
        ("/v1/stores/%FF/products", "store"),
        ("/v1/jobs/%FF", "id"),
    ] {
        let (status, body, headers) = s.call("GET", path, Some(TOKEN), "").await;
        assert_eq!(
            (status, body["error"]["kind"].as_str()),
            (400, Some("bad_input")),
            "{path}: {body}"
        );
        assert!(is_json(&headers), "{path}: {headers:?}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(names)),
            "{path}: {body}"
        );
    }
    for (method, path) in [("DELETE", "/healthz"), ("PUT", "/v1/jobs/x")] {
        let (status, body, headers) = s.call(method, path, Some(TOKEN), "").await;
        assert_eq!(
            (status, body["error"]["kind"].as_str()),
            (405, Some("method_not_allowed")),
            "{method} {path}: {body}"
        );
        assert!(is_json(&headers), "{method} {path}");
        assert!(
            headers
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("GET")),
            "{method} {path}: {headers:?}"
        );
    }
    // The predecessor's endpoints refuse in their own shape, `{"error": "…"}`.
    for (method, path, refused) in [
        ("GET", "/api/shopify/recommendations/small?limit=abc", 400),
        ("GET", "/api/shopify/status/%FF", 400),
        ("PUT", "/api/shopify/status/x", 405),
    ] {
        let (status, body, headers) = s.call(method, path, Some(TOKEN), "").await;
        assert_eq!(status, refused, "{method} {path}: {body}");
        assert!(body["error"].is_string(), "{method} {path}: {body}");
        assert!(is_json(&headers), "{method} {path}");
    }
    s.stop().await;
}

fn new_job(id: &str, behind: bool) -> NewJob {
    NewJob {
        job_id: id.into(),
        store_id: "small".into(),
        request: "{}".into(),
        max_attempts: 2,
        created_at: 1_000,
        behind_others: behind,
    }
}

fn run_record(id: &str) -> RunRecord {
    let t = chrono::Utc::now();
    RunRecord {
        run_id: id.into(),
        store_id: "small".into(),
        status: "succeeded".into(),
        started_at: t,
        finished_at: t,
        as_of: t,
        config: "{}".into(),
        timings: "{}".into(),
        counts: "{}".into(),
        summary: "{}".into(),
        report_html: String::new(),
    }
}

#[tokio::test]
async fn the_queue_claims_once_requeues_expired_leases_and_saves_a_run_only_with_its_lease() {
    let db = TestDb::new().await;
    ingest_dir(&db, "small", &repo_root().join("fixtures/stores/small")).await;
    let url = format!("sqlite://{}", db.dir.path().join("test.sqlite").display());
    let other = SqliteStore::open(&url).await.unwrap();
    let q: &dyn JobQueue = &db.store;

    let (a, created) = q.enqueue_job(&new_job("a", false)).await.unwrap();
    assert!(created && a.state == JobState::Queued);
    let (same, created) = q.enqueue_job(&new_job("b", false)).await.unwrap();
    assert!(!created);
    assert_eq!(same.job_id, "a");

    // Two workers on two connections: one claim wins.
    let (w1, w2) = tokio::join!(
        q.claim_job("w1", 2_000, 1_000),
        other.claim_job("w2", 2_000, 1_000)
    );
    let claims: Vec<_> = [w1.unwrap(), w2.unwrap()].into_iter().flatten().collect();
    assert_eq!(claims.len(), 1);
    let holder = claims[0].worker.clone().unwrap();
    assert_eq!(claims[0].attempts, 1);

    // Lease held: renewals go through; a stranger's do not.
    assert_eq!(
        q.renew_lease("a", &holder, 2_500, "[]").await.unwrap(),
        Lease::Held {
            cancel_requested: false
        }
    );
    assert_eq!(
        q.renew_lease("a", "stranger", 2_600, "[]").await.unwrap(),
        Lease::Lost
    );

    // The holder dies: its lease runs out and the job is queued again.
    assert_eq!(q.requeue_expired(2_400).await.unwrap(), 0);
    assert_eq!(q.requeue_expired(2_501).await.unwrap(), 1);
    let job = q.get_job("a").await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.error_kind.as_deref()),
        (JobState::Queued, Some("retryable"))
    );
    // The old holder's late save is refused and leaves no run.
    assert!(
        !q.finish_job_with_run("a", &holder, "[]", 2_600, &run_record("a"), &[])
            .await
            .unwrap()
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM runs WHERE run_id = 'a'")
            .await,
        0
    );

    // Second attempt, then a lost lease again: after max_attempts the job fails.
    let again = q.claim_job("w3", 3_000, 100).await.unwrap().unwrap();
    assert_eq!(again.attempts, 2);
    assert_eq!(q.requeue_expired(3_200).await.unwrap(), 1);
    let failed = q.get_job("a").await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.finished_at, Some(3_200));

    // A claimed job ends once, by its holder, with its run in the same transaction.
    let (c, _) = q.enqueue_job(&new_job("c", false)).await.unwrap();
    assert_eq!(c.job_id, "c");
    let held = q.claim_job("w4", 4_000, 10_000).await.unwrap().unwrap();
    assert!(
        q.finish_job_with_run("c", "w4", "[]", 4_100, &run_record("c"), &[])
            .await
            .unwrap()
    );
    assert_eq!(held.job_id, "c");
    let done = q.get_job("c").await.unwrap().unwrap();
    assert_eq!(
        (done.state, done.run_id.as_deref()),
        (JobState::Succeeded, Some("c"))
    );
    assert!(
        !q.end_job(
            "c",
            "w4",
            &JobEnd::Failed {
                kind: "internal".into(),
                message: "late".into()
            },
            "[]",
            4_200
        )
        .await
        .unwrap()
    );
    assert_eq!(
        q.get_job("c").await.unwrap().unwrap().state,
        JobState::Succeeded
    );
}

/// Issue: a trigger that passed its uninstall check just as the uninstall was applied
/// queued its job after the uninstall had cancelled the store's, and a worker ran it.
/// The claim now cancels a queued job of an uninstalled store instead.
#[tokio::test]
async fn a_job_queued_as_its_store_is_uninstalled_is_cancelled_by_the_claim_not_run() {
    let db = TestDb::new().await;
    ingest_dir(&db, "small", &repo_root().join("fixtures/stores/small")).await;
    let q: &dyn JobQueue = &db.store;
    let small = StoreId::parse("small").unwrap();
    // The uninstall is applied; the trigger's job lands after it.
    db.store.mark_uninstalled(&small, 1_500).await.unwrap();
    let (late, created) = q.enqueue_job(&new_job("late", false)).await.unwrap();
    assert!(created && late.state == JobState::Queued);

    let claimed = q.claim_job("w1", 2_000, 1_000).await.unwrap();
    assert!(claimed.is_none(), "claimed: {claimed:?}");
    let job = q.get_job("late").await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Cancelled, "{job:?}");
    assert_eq!(job.error_kind.as_deref(), Some("cancelled"), "{job:?}");
    assert!(
        job.error_message
            .as_deref()
            .is_some_and(|m| m.contains("uninstalled")),
        "{job:?}"
    );
    assert_eq!((job.attempts, job.finished_at), (0, Some(2_000)), "{job:?}");
    assert_eq!(db.count("SELECT COUNT(*) FROM runs").await, 0);

    // Installed again, its jobs are claimed as ever.
    assert!(db.store.reinstate_store(&small).await.unwrap());
    q.enqueue_job(&new_job("again", false)).await.unwrap();
    let claimed = q.claim_job("w1", 3_000, 1_000).await.unwrap();
    assert_eq!(claimed.map(|j| j.job_id).as_deref(), Some("again"));
}

/// The same race as a worker meets it: a job queued for a store whose app is
/// uninstalled by the time a worker looks ends cancelled, and no run is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_never_runs_a_job_of_a_store_uninstalled_before_its_claim() {
    let db = TestDb::new().await;
    ingest_dir(&db, "small", &repo_root().join("fixtures/stores/small")).await;
    let now = chrono::Utc::now().timestamp_millis();
    let queued = NewJob {
        created_at: now,
        ..new_job("raced", false)
    };
    db.store.enqueue_job(&queued).await.unwrap();
    let small = StoreId::parse("small").unwrap();
    db.store.mark_uninstalled(&small, now).await.unwrap();
    let s = spawn_app(AppOptions::default().db(db)).await;
    let ended = wait_for(&s, "raced", |j| state(j) != "queued").await;
    assert_eq!(state(&ended), "cancelled", "{ended}");
    assert!(
        ended["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("uninstalled")),
        "{ended}"
    );
    assert_eq!(s.db.count("SELECT COUNT(*) FROM runs").await, 0);
    s.stop().await;
}

/// A `bundleforge serve` process on a free port, with its log.
struct ServeProcess {
    child: std::process::Child,
    url: String,
}

fn free_port() -> u16 {
    // Bound and released: another process may take it first, so callers retry.
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

async fn spawn_serve(db_url: &str) -> ServeProcess {
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let port = free_port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bundleforge"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("BUNDLEFORGE__DATABASE__URL", db_url)
            .env("BUNDLEFORGE__SERVER__ADMIN_TOKEN", TOKEN)
            .env("BUNDLEFORGE__SERVER__LEASE_SECONDS", "3")
            .env("BUNDLEFORGE__SERVER__HEARTBEAT_SECONDS", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                break; // the port was taken: try another
            }
            if client.get(format!("{url}/healthz")).send().await.is_ok() {
                return ServeProcess { child, url };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("bundleforge serve did not start");
}

async fn job_state(client: &reqwest::Client, url: &str, id: &str) -> Value {
    let resp = client
        .get(format!("{url}/v1/jobs/{id}"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_run_finishes_the_job_after_a_restart_with_one_run() {
    let db = TestDb::new().await;
    ingest_dir(&db, "medium", &repo_root().join("fixtures/stores/medium")).await;
    let url = format!("sqlite://{}", db.dir.path().join("test.sqlite").display());
    let client = reqwest::Client::new();

    let mut first = spawn_serve(&url).await;
    let resp = client
        .post(format!("{}/v1/stores/medium/jobs", first.url))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let job: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    loop {
        let j = job_state(&client, &first.url, &id).await;
        if state(&j) == "running" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // kill -9 while the run works: no shutdown, no chance to end the job.
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let runs = "SELECT COUNT(*) FROM runs";
    assert_eq!(db.count(runs).await, 0, "a partial run is never visible");

    let mut second = spawn_serve(&url).await;
    let start = Instant::now();
    let ended = loop {
        // Counted before the job is read: a run is visible only with its job's end,
        // so while the job reads unfinished the count before it must be 0.
        let visible = db.count(runs).await;
        let j = job_state(&client, &second.url, &id).await;
        if JobState::parse(state(&j)).is_some_and(|s| s.is_finished()) {
            break j;
        }
        assert_eq!(visible, 0, "no run before its job ends: {j}");
        assert!(start.elapsed() < Duration::from_secs(600), "{j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    match state(&ended) {
        "succeeded" => {
            assert_eq!(
                ended["attempts"], 2,
                "re-run after its lease expired: {ended}"
            );
            assert_eq!(db.count(runs).await, 1);
            let mine = format!("SELECT COUNT(*) FROM runs WHERE run_id = '{id}'");
            assert_eq!(db.count(&mine).await, 1);
        }
        "failed" => {
            assert!(ended["error"]["message"].is_string(), "{ended}");
            assert_eq!(db.count(runs).await, 0);
        }
        other => panic!("{other}: {ended}"),
    }
}

/// What an error of ours tells the caller: a fixed message and the request id, never
/// the database's or the file system's text (that goes to the log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_or_retryable_error_answers_a_fixed_message_and_the_request_id_only() {
    let s = start(&[]).await;
    let (run, _) = run_job(&s, "{\"max_bundles\": 4}").await;
    let path = format!("/v1/stores/small/runs/{run}");
    let ask = |id: &'static str| {
        let url = format!("{}{path}", s.url);
        let request = s
            .client
            .get(url)
            .bearer_auth(TOKEN)
            .header("x-request-id", id);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let ours = |body: &str| {
        let lower = body.to_lowercase();
        [
            "sqlx",
            "sqlite",
            "no such table",
            "does not read back",
            "bundle_id",
            ".sqlite",
            s.db.dir.path().to_str().unwrap(),
            "expected",
        ]
        .iter()
        .find(|t| lower.contains(&t.to_lowercase()))
        .map(|t| (*t).to_owned())
    };

    // A stored bundle that no longer reads: corrupt data is an internal error.
    sql(
        &s,
        &format!("UPDATE bundles SET body = '{{not json' WHERE run_id = '{run}'"),
    )
    .await;
    let (status, body) = ask("probe-internal").await;
    assert_eq!(status, 500, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["kind"], "internal", "{body}");
    assert_eq!(
        v["error"]["details"]["request_id"], "probe-internal",
        "{body}"
    );
    assert_eq!(
        v["error"]["message"],
        "an internal error occurred; the server log has the detail (request id probe-internal)"
    );
    assert_eq!(ours(&body), None, "{body}");

    // A database that fails under us is retryable: the same, with 503 and a retry.
    sql(&s, "DROP TABLE bundles").await;
    let (status, body) = ask("probe-retryable").await;
    assert_eq!(status, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["kind"], "retryable", "{body}");
    assert_eq!(
        v["error"]["details"]["request_id"], "probe-retryable",
        "{body}"
    );
    assert!(
        v["error"]["message"].as_str().is_some_and(|m| m
            .starts_with("a service this request needs is unavailable")
            && m.ends_with("(request id probe-retryable)")),
        "{body}"
    );
    assert_eq!(ours(&body), None, "{body}");
    s.stop().await;
}
