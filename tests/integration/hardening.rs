//! The service against what the open internet sends it.

use crate::support::{AppOptions, spawn_app};

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
