//! Shopify webhooks against the real server: signatures, replays, out-of-order
//! updates, and updates that create what we do not hold.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bundleforge::embed::HashingEmbedder;
use bundleforge::server::webhooks::sign;
use bundleforge::store::{WebhookRecord, WebhookStore};
use bundleforge::sync::kept_body;
use serde_json::{Value, json};

use crate::support::{AppOptions, SlowEmbedder, TestApp, TestDb, ingest_dir, repo_root, spawn_app};

const SECRET: &str = "shpss_test_secret";
const ADMIN: &str = "webhooks-admin-token-0123456789abcdef";

/// Our server over the store `mugs`, taking webhooks signed with `secret`.
async fn start(secret: &str) -> TestApp {
    start_with(secret, &[]).await
}

/// As [`start`], with settings `overrides`.
async fn start_with(secret: &str, overrides: &[(&str, &str)]) -> TestApp {
    serve(mugs_db().await, secret, overrides).await
}

/// A fresh database holding the store `mugs`, known by its myshopify name.
async fn mugs_db() -> TestDb {
    let db = TestDb::new().await;
    let csv = "variant_id,product_id,title,price\nv0,p0,Gift Card Holder,5.00\n";
    db.ingest_ok("mugs", crate::support::catalog(db.file("c.csv", csv)))
        .await;
    db
}

/// Our server over `db`, taking webhooks signed with `secret`.
async fn serve(db: TestDb, secret: &str, overrides: &[(&str, &str)]) -> TestApp {
    spawn_app(
        AppOptions::default()
            .db(db)
            .admin_token(ADMIN)
            .webhook_secret(secret)
            .settings(overrides)
            .embedder(Arc::new(HashingEmbedder::new(32))),
    )
    .await
}

/// Posts a webhook as Shopify does, signed with [`SECRET`] unless `signature` is given.
async fn send(
    s: &TestApp,
    topic: &str,
    id: &str,
    shop: &str,
    body: &Value,
    signature: Option<String>,
) -> (u16, Value) {
    let raw = body.to_string();
    let signature = signature.unwrap_or_else(|| sign(SECRET, raw.as_bytes()));
    let resp = s
        .client
        .post(format!("{}/webhooks/shopify", s.url))
        .header("X-Shopify-Topic", topic)
        .header("X-Shopify-Shop-Domain", shop)
        .header("X-Shopify-Webhook-Id", id)
        .header("X-Shopify-Hmac-Sha256", signature)
        .header("Content-Type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Waits until every kept webhook is applied.
async fn settle(s: &TestApp) {
    let start = Instant::now();
    loop {
        let pending =
            s.db.count("SELECT COUNT(*) FROM webhooks WHERE applied_at IS NULL")
                .await;
        if pending == 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "webhooks not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A kept webhook's outcome and message.
async fn outcome_of(s: &TestApp, id: &str) -> (String, String) {
    sqlx::query_as("SELECT outcome, message FROM webhooks WHERE webhook_id = ?")
        .bind(id)
        .fetch_one(s.db.store.pool())
        .await
        .unwrap()
}

/// The stored title of a variant of `mugs`, if it is held.
async fn title_of(s: &TestApp, variant: &str) -> Option<String> {
    sqlx::query_scalar("SELECT title FROM products WHERE store_id = 'mugs' AND variant_id = ?")
        .bind(variant)
        .fetch_optional(s.db.store.pool())
        .await
        .unwrap()
}

fn product(title: &str, updated_at: &str) -> Value {
    json!({
        "id": 632910392, "title": title, "body_html": "<p>Stoneware</p>", "vendor": "Kiln",
        "product_type": "Mugs", "status": "active", "updated_at": updated_at,
        "variants": [{"id": 808950810, "product_id": 632910392, "title": "Default Title",
                      "price": "18.00", "sku": "MUG-1", "inventory_quantity": 7}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_is_kept_once_and_applied_in_order_with_last_write_winning() {
    let s = start(SECRET).await;
    let shop = "mugs.myshopify.com";
    let v1 = product("Stoneware Mug", "2026-03-01T10:00:00-05:00");

    // A wrong or missing signature: 401, nothing kept.
    let (status, body) = send(
        &s,
        "products/create",
        "w0",
        shop,
        &v1,
        Some(sign("another secret", v1.to_string().as_bytes())),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = send(
        &s,
        "products/create",
        "w0",
        shop,
        &v1,
        Some("not base64!".into()),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(s.db.count("SELECT COUNT(*) FROM webhooks").await, 0);

    // An update for a product we do not hold creates it.
    let (status, body) = send(&s, "products/create", "w1", shop, &v1, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("accepted")),
        "{body}"
    );
    settle(&s).await;
    assert_eq!(outcome_of(&s, "w1").await.0, "applied");
    assert_eq!(
        title_of(&s, "808950810").await.as_deref(),
        Some("Stoneware Mug")
    );

    // A replay of the same webhook id: acknowledged, nothing changes.
    let renamed = product("Renamed By A Replay", "2026-03-09T10:00:00-05:00");
    let (status, body) = send(&s, "products/update", "w1", shop, &renamed, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );
    settle(&s).await;
    assert_eq!(
        title_of(&s, "808950810").await.as_deref(),
        Some("Stoneware Mug")
    );

    // Out of order: the newer update first, then an older retry, which changes nothing.
    let newer = product("Speckled Stoneware Mug", "2026-03-05T10:00:00-05:00");
    let older = product("An Older Title", "2026-03-03T10:00:00-05:00");
    send(&s, "products/update", "w2", shop, &newer, None).await;
    send(&s, "products/update", "w3", shop, &older, None).await;
    settle(&s).await;
    assert_eq!(outcome_of(&s, "w2").await.0, "applied");
    let (outcome, message) = outcome_of(&s, "w3").await;
    assert_eq!(outcome, "stale", "{message}");
    assert_eq!(
        title_of(&s, "808950810").await.as_deref(),
        Some("Speckled Stoneware Mug")
    );

    // An order for the product: stored, joined to it.
    let order = json!({
        "id": 450789469, "name": "#1001", "created_at": "2026-03-06T16:09:54-04:00",
        "updated_at": "2026-03-06T16:09:54-04:00", "currency": "USD",
        "line_items": [{"id": 1, "variant_id": 808950810, "product_id": 632910392,
                        "title": "Speckled Stoneware Mug", "quantity": 2, "price": "18.00", "sku": "MUG-1"}]
    });
    let (status, _) = send(&s, "orders/create", "w4", shop, &order, None).await;
    assert_eq!(status, 200);
    settle(&s).await;
    assert_eq!(outcome_of(&s, "w4").await.0, "applied");
    let lines =
        s.db.count(
            "SELECT COUNT(*) FROM order_lines WHERE store_id = 'mugs' AND order_id = '450789469'",
        )
        .await;
    assert_eq!(lines, 1);

    // A shop no store is: acknowledged and logged, nothing applied.
    let (status, body) = send(
        &s,
        "products/create",
        "w5",
        "stranger.myshopify.com",
        &v1,
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("unknown_shop")),
        "{body}"
    );
    settle(&s).await;
    assert_eq!(outcome_of(&s, "w5").await.0, "ignored");

    // The metrics count webhooks by topic and outcome.
    let text = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("bundleforge_webhooks_total{topic=\"products/update\",outcome=\"stale\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "bundleforge_webhooks_total{topic=\"products/create\",outcome=\"refused\"} 2"
        ),
        "{text}"
    );
    s.stop().await;
}

/// An update without a readable `updated_at` cannot say it is the newer: it is older
/// than any dated one, so it creates what nothing was applied to and overwrites nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_without_updated_at_never_overwrites_a_dated_one() {
    let s = start(SECRET).await;
    let shop = "mugs.myshopify.com";
    let dated = product("Speckled Stoneware Mug", "2026-03-05T10:00:00-05:00");
    send(&s, "products/update", "d1", shop, &dated, None).await;
    settle(&s).await;
    assert_eq!(outcome_of(&s, "d1").await.0, "applied");

    // No updated_at at all, and one that does not read.
    let mut undated = product("An Undated Title", "");
    if let Some(fields) = undated.as_object_mut() {
        fields.remove("updated_at");
    }
    let unreadable = product("An Unreadable Date", "last tuesday");
    send(&s, "products/update", "u1", shop, &undated, None).await;
    send(&s, "products/update", "u2", shop, &unreadable, None).await;
    settle(&s).await;
    for id in ["u1", "u2"] {
        let (outcome, message) = outcome_of(&s, id).await;
        assert_eq!(outcome, "stale", "{id}: {message}");
    }
    assert_eq!(
        title_of(&s, "808950810").await.as_deref(),
        Some("Speckled Stoneware Mug")
    );

    // A newer dated update still applies.
    let newer = product("Glazed Stoneware Mug", "2026-03-06T10:00:00Z");
    send(&s, "products/update", "d2", shop, &newer, None).await;
    settle(&s).await;
    assert_eq!(
        title_of(&s, "808950810").await.as_deref(),
        Some("Glazed Stoneware Mug")
    );

    // A product nothing was applied to: the first undated update creates it, and a
    // second is stale after it (neither can say it is the newer).
    let teapot = |title: &str| {
        json!({
            "id": 632910393, "title": title, "vendor": "Kiln", "product_type": "Teapots",
            "status": "active",
            "variants": [{"id": 808950811, "product_id": 632910393, "title": "Default Title",
                          "price": "32.00", "sku": "POT-1"}]
        })
    };
    send(&s, "products/create", "u3", shop, &teapot("Teapot"), None).await;
    settle(&s).await;
    assert_eq!(outcome_of(&s, "u3").await.0, "applied");
    send(
        &s,
        "products/update",
        "u4",
        shop,
        &teapot("Renamed Teapot"),
        None,
    )
    .await;
    settle(&s).await;
    assert_eq!(outcome_of(&s, "u4").await.0, "stale");
    assert_eq!(title_of(&s, "808950811").await.as_deref(), Some("Teapot"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_webhook_secret_webhooks_are_refused_and_the_server_still_starts() {
    let s = start("").await;
    let (status, body) = send(
        &s,
        "products/create",
        "w1",
        "mugs.myshopify.com",
        &product("Mug", "2026-03-01T10:00:00Z"),
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("webhook_secret"),
        "{body}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_topic_changes_exactly_what_it_names() {
    let s = start(SECRET).await;
    let shop = "mugs.myshopify.com";
    let mut mug = product("Stoneware Mug", "2026-03-01T10:00:00Z");
    mug["variants"][0]["inventory_item_id"] = json!(4242);
    send(&s, "products/create", "p1", shop, &mug, None).await;
    let order = |id: u64, qty: u64, at: &str| {
        json!({
            "id": id, "name": format!("#{id}"), "created_at": at, "updated_at": at,
            "currency": "USD", "email": "bob@example.com", "customer": {"id": 207119551},
            "line_items": [
                {"id": 1, "variant_id": 808950810, "title": "Stoneware Mug", "quantity": qty, "price": "18.00", "sku": "MUG-1"},
                {"id": 2, "variant_id": null, "title": "Gift Card Holder", "quantity": 1, "price": "5.00", "sku": ""}
            ]
        })
    };
    send(
        &s,
        "orders/create",
        "o1",
        shop,
        &order(1001, 2, "2026-03-02T10:00:00Z"),
        None,
    )
    .await;
    send(
        &s,
        "orders/create",
        "o2",
        shop,
        &order(1002, 1, "2026-03-02T11:00:00Z"),
        None,
    )
    .await;
    settle(&s).await;
    let count = |sql: &'static str| s.db.count(sql);
    assert_eq!(
        count("SELECT COUNT(*) FROM orders WHERE store_id = 'mugs'").await,
        2
    );

    // Inventory: the newer level wins, an older one changes nothing.
    let level = |n: i64, at: &str| json!({"inventory_item_id": 4242, "location_id": 1, "available": n, "updated_at": at});
    send(
        &s,
        "inventory_levels/update",
        "i1",
        shop,
        &level(3, "2026-03-03T10:00:00Z"),
        None,
    )
    .await;
    send(
        &s,
        "inventory_levels/update",
        "i2",
        shop,
        &level(9, "2026-03-02T10:00:00Z"),
        None,
    )
    .await;
    settle(&s).await;
    assert_eq!(
        count("SELECT inventory FROM products WHERE variant_id = '808950810'").await,
        3
    );
    assert_eq!(outcome_of(&s, "i2").await.0, "stale");

    // A refund of one mug of order 1001: the line keeps one.
    let refund = json!({"id": 9, "order_id": 1001, "refund_line_items": [
        {"id": 1, "line_item_id": 1, "quantity": 1, "line_item": {"id": 1, "variant_id": 808950810, "sku": "MUG-1"}}
    ]});
    send(&s, "refunds/create", "r1", shop, &refund, None).await;
    settle(&s).await;
    assert_eq!(
        count("SELECT quantity FROM order_lines WHERE order_id = '1001' AND item_id = '808950810'")
            .await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM order_lines WHERE order_id = '1001'").await,
        2
    );

    // A cancellation removes order 1002; an older update retried later cannot bring it back.
    let mut cancelled = order(1002, 1, "2026-03-04T10:00:00Z");
    cancelled["cancelled_at"] = json!("2026-03-04T10:00:00Z");
    send(&s, "orders/cancelled", "c1", shop, &cancelled, None).await;
    send(
        &s,
        "orders/updated",
        "c2",
        shop,
        &order(1002, 1, "2026-03-03T10:00:00Z"),
        None,
    )
    .await;
    settle(&s).await;
    assert_eq!(
        count("SELECT COUNT(*) FROM orders WHERE order_id = '1002'").await,
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM order_lines WHERE order_id = '1002'").await,
        0
    );
    assert_eq!(outcome_of(&s, "c2").await.0, "stale");
    assert_eq!(
        count("SELECT COUNT(*) FROM orders WHERE order_id = '1001'").await,
        1
    );

    // A data request: what we hold on Bob, kept for the merchant.
    let who = json!({"shop_domain": shop, "customer": {"id": 207119551, "email": "bob@example.com"},
                     "orders_requested": [1001], "data_request": {"id": 7}});
    send(&s, "customers/data_request", "d1", shop, &who, None).await;
    settle(&s).await;
    let resp = s
        .client
        .get(format!("{}/v1/admin/webhooks/d1", s.url))
        .header("Authorization", "Bearer none")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "no token of ours");
    let held = webhook_result(&s, "d1").await;
    let orders = held["result"]["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{held}");
    assert_eq!(orders[0]["order_id"], "1001");
    assert_eq!(orders[0]["lines"].as_array().unwrap().len(), 2);

    // Redacting Bob: his identifiers leave the orders, the baskets stay.
    send(&s, "customers/redact", "x1", shop, &json!({"customer": {"id": 207119551, "email": "bob@example.com"}, "orders_to_redact": [1001]}), None).await;
    settle(&s).await;
    assert_eq!(
        count("SELECT COUNT(*) FROM orders WHERE customer_key IS NOT NULL").await,
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM order_lines WHERE order_id = '1001'").await,
        2
    );

    // A deleted product is archived: never bundled again, past lines still join it.
    send(
        &s,
        "products/delete",
        "pd",
        shop,
        &json!({"id": 632910392}),
        None,
    )
    .await;
    settle(&s).await;
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM products WHERE variant_id = '808950810' AND status = 'archived'"
        )
        .await,
        1
    );

    // Uninstalled, then the shop's redaction: everything of the store goes.
    send(
        &s,
        "app/uninstalled",
        "u1",
        shop,
        &json!({"id": 1, "domain": shop}),
        None,
    )
    .await;
    settle(&s).await;
    assert_eq!(
        count("SELECT COUNT(*) FROM stores WHERE store_id = 'mugs' AND uninstalled_at IS NOT NULL")
            .await,
        1
    );
    send(
        &s,
        "shop/redact",
        "sr",
        shop,
        &json!({"shop_id": 1, "shop_domain": shop}),
        None,
    )
    .await;
    settle(&s).await;
    assert_eq!(outcome_of(&s, "sr").await.0, "applied");
    for sql in [
        "SELECT COUNT(*) FROM stores WHERE store_id = 'mugs'",
        "SELECT COUNT(*) FROM products WHERE store_id = 'mugs'",
        "SELECT COUNT(*) FROM orders WHERE store_id = 'mugs'",
        "SELECT COUNT(*) FROM order_lines WHERE store_id = 'mugs'",
        "SELECT COUNT(*) FROM resource_versions WHERE store_id = 'mugs'",
        "SELECT COUNT(*) FROM webhooks WHERE store_id = 'mugs' AND length(body) > 0",
    ] {
        assert_eq!(s.db.count(sql).await, 0, "{sql}");
    }
    s.stop().await;
}

/// `GET /v1/admin/webhooks/{id}` with the admin token.
async fn webhook_result(s: &TestApp, id: &str) -> Value {
    let resp = s
        .client
        .get(format!("{}/v1/admin/webhooks/{id}", s.url))
        .header("Authorization", format!("Bearer {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

/// A burst: the applier takes what is pending as one batch where it can. Whatever
/// the batches, each product ends at its newest update, an older one is stale, an
/// order can name a product created in the same burst, and a bad row fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_updates_ends_at_each_resources_newest_and_a_bad_row_fails_alone() {
    let s = start(SECRET).await;
    let shop = "mugs.myshopify.com";
    let mug = |n: u64, version: u64| {
        json!({
            "id": 7000 + n, "title": format!("Mug {n} v{version}"), "vendor": "Kiln",
            "product_type": "Mugs", "status": "active",
            "updated_at": format!("2026-03-01T10:{version:02}:00Z"),
            "variants": [{"id": 8000 + n, "product_id": 7000 + n, "title": "Default Title",
                          "price": "18.00", "sku": format!("MUG-{n}")}]
        })
    };
    // Four products, five versions each, sent newest-first for odd products and
    // oldest-first for even ones, all at once.
    let mut sends = Vec::new();
    for n in 0..4u64 {
        for k in 0..5u64 {
            let version = if n % 2 == 1 { 5 - k } else { k + 1 };
            sends.push((
                format!("b{n}-{version}"),
                "products/update",
                mug(n, version),
            ));
        }
    }
    let mut broken = mug(9, 1);
    broken["variants"][0]["price"] = json!("eighteen");
    sends.push(("bad".into(), "products/create", broken));
    sends.push((
        "order".into(),
        "orders/create",
        json!({
            "id": 9100, "name": "#9100", "created_at": "2026-03-02T10:00:00Z",
            "updated_at": "2026-03-02T10:00:00Z", "currency": "USD",
            "line_items": [{"id": 1, "variant_id": 8000, "title": "Mug 0", "quantity": 1,
                            "price": "18.00", "sku": "MUG-0"}]
        }),
    ));
    let results = futures_util::future::join_all(
        sends
            .iter()
            .map(|(id, topic, body)| send(&s, topic, id, shop, body, None)),
    )
    .await;
    assert!(
        results.iter().all(|(status, _)| *status == 200),
        "{results:?}"
    );
    settle(&s).await;

    for n in 0..4u64 {
        assert_eq!(
            title_of(&s, &(8000 + n).to_string()).await,
            Some(format!("Mug {n} v5")),
            "product {n}"
        );
        let (outcome, message) = outcome_of(&s, &format!("b{n}-5")).await;
        assert_eq!(outcome, "applied", "{message}");
        for version in 1..5 {
            let (outcome, message) = outcome_of(&s, &format!("b{n}-{version}")).await;
            assert!(
                outcome == "applied" || outcome == "stale",
                "b{n}-{version}: {outcome} {message}"
            );
        }
    }
    let (outcome, message) = outcome_of(&s, "bad").await;
    assert_eq!(outcome, "failed", "{message}");
    assert!(message.contains("price"), "{message}");
    assert_eq!(title_of(&s, "8009").await, None);
    let (outcome, message) = outcome_of(&s, "order").await;
    assert_eq!(outcome, "applied", "{message}");
    assert_eq!(
        s.db.count("SELECT COUNT(*) FROM order_lines WHERE store_id = 'mugs' AND order_id = '9100' AND item_id = '8000'")
            .await,
        1
    );
    s.stop().await;
}

/// A product the reader refuses: the failure the merchant can read names the
/// webhook's document and the value, and no file of ours (none is written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_product_names_its_document_and_no_file_of_ours() {
    let s = start(SECRET).await;
    let shop = "mugs.myshopify.com";
    let mut priced_wrong = product("Stoneware Mug", "2026-03-01T10:00:00Z");
    priced_wrong["variants"][0]["price"] = json!("abc");
    send(
        &s,
        "products/create",
        "bad-price",
        shop,
        &priced_wrong,
        None,
    )
    .await;
    settle(&s).await;
    let mut no_variants = product("Teapot", "2026-03-01T11:00:00Z");
    no_variants["id"] = json!(632910393);
    no_variants["variants"] = json!([]);
    send(
        &s,
        "products/create",
        "no-variants",
        shop,
        &no_variants,
        None,
    )
    .await;
    settle(&s).await;

    let temp = std::env::temp_dir().display().to_string();
    for (id, wants) in [
        (
            "bad-price",
            [
                "product 632910392",
                "product.json",
                "products[0].variants[0].price \"abc\"",
            ],
        ),
        (
            "no-variants",
            ["product 632910393", "product.json", "at least one variant"],
        ),
    ] {
        let seen = webhook_result(&s, id).await;
        assert_eq!(seen["outcome"], "failed", "{seen}");
        let message = seen["message"].as_str().unwrap_or_default();
        for want in wants {
            assert!(message.contains(want), "{id}: {message}");
        }
        assert!(
            !message.contains(&temp) && !message.contains('/'),
            "{id} names a file of ours: {message}"
        );
    }
    assert_eq!(title_of(&s, "808950810").await, None);
    s.stop().await;
}

/// Every column of every table holding `needle` (text and blobs alike, byte for
/// byte), as `table.column (N rows)`.
async fn holders_of(s: &TestApp, needle: &str) -> Vec<String> {
    let pool = s.db.store.pool();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut found = Vec::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(&table)
            .fetch_all(pool)
            .await
            .unwrap();
        for column in columns {
            let sql = format!(
                "SELECT COUNT(*) FROM \"{table}\" \
                 WHERE instr(CAST(\"{column}\" AS BLOB), CAST(? AS BLOB)) > 0"
            );
            let n: i64 = sqlx::query_scalar(&sql)
                .bind(needle)
                .fetch_one(pool)
                .await
                .unwrap();
            if n > 0 {
                found.push(format!("{table}.{column} ({n} rows)"));
            }
        }
    }
    found
}

/// The customer the redaction tests follow: what Shopify sends of them.
const EMAIL: &str = "zenobia.quarrington@example.org";
const FIRST_NAME: &str = "Zenobia";
const LAST_NAME: &str = "Quarrington";
const PHONE: &str = "+16135550142";
const STREET: &str = "12 Wrenfield Lane";
const CUSTOMER_ID: u64 = 6_100_200_300;

/// An order as Shopify sends it, the customer's name, phone and addresses and all;
/// `customer: false` makes it a guest's (their email and phone on the order only).
fn customer_order(id: u64, updated_at: &str, customer: bool) -> Value {
    let address = json!({"first_name": FIRST_NAME, "last_name": LAST_NAME, "address1": STREET,
                         "city": "Ottawa", "zip": "K1A 0B1", "phone": PHONE,
                         "name": format!("{FIRST_NAME} {LAST_NAME}")});
    let mut order = json!({
        "id": id, "name": format!("#{id}"), "created_at": "2026-03-06T16:09:54Z",
        "updated_at": updated_at, "currency": "USD", "email": EMAIL, "contact_email": EMAIL,
        "phone": PHONE, "note": format!("Ring {FIRST_NAME} on arrival"),
        "billing_address": address, "shipping_address": address,
        "line_items": [{"id": 1, "variant_id": 808950810, "product_id": 632910392,
                        "title": "Stoneware Mug", "quantity": 2, "price": "18.00", "sku": "MUG-1",
                        "properties": [{"name": "Engraving", "value": LAST_NAME}]}]
    });
    if customer {
        order["customer"] = json!({"id": CUSTOMER_ID, "email": EMAIL, "phone": PHONE,
                                   "first_name": FIRST_NAME, "last_name": LAST_NAME,
                                   "default_address": address});
    }
    order
}

/// Issue: redaction left the customer in the kept bodies. After `customers/redact`
/// nothing in the database names them, while every webhook's id and outcome stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redacted_customer_is_nowhere_in_the_database_and_a_replay_is_still_recognised() {
    let s = start(SECRET).await;
    let shop = "mugs.myshopify.com";
    send(
        &s,
        "products/create",
        "p1",
        shop,
        &product("Stoneware Mug", "2026-03-01T10:00:00Z"),
        None,
    )
    .await;
    let o1 = customer_order(1001, "2026-03-06T16:09:54Z", true);
    let o1_later = customer_order(1001, "2026-03-07T10:00:00Z", true);
    let guest = customer_order(1002, "2026-03-06T17:00:00Z", false);
    for (id, topic, body) in [
        ("o1", "orders/create", &o1),
        ("o1b", "orders/updated", &o1_later),
        ("o2", "orders/create", &guest),
    ] {
        let (status, answer) = send(&s, topic, id, shop, body, None).await;
        assert_eq!((status, answer["status"].as_str()), (200, Some("accepted")));
    }
    // The same order for a shop no store is: acknowledged, nothing of it kept.
    let (_, answer) = send(
        &s,
        "orders/create",
        "o9",
        "stranger.myshopify.com",
        &o1,
        None,
    )
    .await;
    assert_eq!(answer["status"], "unknown_shop", "{answer}");
    let who = json!({"shop_id": 1, "shop_domain": shop,
                     "customer": {"id": CUSTOMER_ID, "email": EMAIL, "phone": PHONE},
                     "orders_requested": [1001, 1002], "data_request": {"id": 77}});
    send(&s, "customers/data_request", "d1", shop, &who, None).await;
    settle(&s).await;
    for id in ["o1b", "o2", "d1"] {
        let (outcome, message) = outcome_of(&s, id).await;
        assert_eq!(outcome, "applied", "{id}: {message}");
    }
    // Applied, or stale when its newer update came in the same batch.
    let o1_outcome = outcome_of(&s, "o1").await;
    assert!(
        o1_outcome.0 == "applied" || o1_outcome.0 == "stale",
        "{o1_outcome:?}"
    );
    // The guest's order keys them by their email until the redaction: the search
    // below sees what is there.
    assert!(!holders_of(&s, EMAIL).await.is_empty());
    for never in [FIRST_NAME, LAST_NAME, PHONE, STREET] {
        assert_eq!(holders_of(&s, never).await, Vec::<String>::new(), "{never}");
    }

    let redact = json!({"shop_id": 1, "shop_domain": shop,
                        "customer": {"id": CUSTOMER_ID, "email": EMAIL, "phone": PHONE},
                        "orders_to_redact": [1001, 1002]});
    let (status, _) = send(&s, "customers/redact", "x1", shop, &redact, None).await;
    assert_eq!(status, 200);
    settle(&s).await;
    let (outcome, message) = outcome_of(&s, "x1").await;
    assert_eq!(outcome, "applied", "{message}");

    for needle in [
        EMAIL,
        "zenobia.quarrington",
        FIRST_NAME,
        LAST_NAME,
        PHONE,
        "6135550142",
        STREET,
        "Wrenfield",
    ] {
        assert_eq!(
            holders_of(&s, needle).await,
            Vec::<String>::new(),
            "{needle} is still held"
        );
    }
    // The baskets stay, anonymous.
    assert_eq!(
        s.db.count("SELECT COUNT(*) FROM order_lines WHERE store_id = 'mugs'")
            .await,
        2
    );

    // Every webhook is still known by its id: a late replay changes nothing.
    for (id, topic, body) in [
        ("o1", "orders/create", &o1),
        ("d1", "customers/data_request", &who),
        ("x1", "customers/redact", &redact),
    ] {
        let (status, answer) = send(&s, topic, id, shop, body, None).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("duplicate")),
            "{id}: {answer}"
        );
    }
    let (_, answer) = send(
        &s,
        "orders/create",
        "o9",
        "stranger.myshopify.com",
        &o1,
        None,
    )
    .await;
    assert_eq!(answer["status"], "duplicate", "{answer}");
    assert_eq!(
        s.db.count("SELECT COUNT(*) FROM webhooks WHERE applied_at IS NULL")
            .await,
        0
    );
    assert_eq!(outcome_of(&s, "o1").await, o1_outcome);
    assert_eq!(holders_of(&s, EMAIL).await, Vec::<String>::new());
    s.stop().await;
}

/// Keeps a webhook of `mugs` as the receiver does (its kept body), received at `at`,
/// without applying it.
async fn keep(db: &TestDb, id: &str, topic: &str, body: &Value, at: i64) {
    let webhook = WebhookRecord {
        webhook_id: id.to_owned(),
        shop_domain: "mugs.myshopify.com".to_owned(),
        store_id: Some("mugs".to_owned()),
        topic: topic.to_owned(),
        body: kept_body(topic, body.to_string().as_bytes()),
        received_at: at,
    };
    assert!(db.store.record_webhook(&webhook).await.unwrap(), "{id}");
}

/// Issue: a redaction erased the customer from what was applied, but webhooks still
/// waiting to be applied kept them (and brought them back into the orders once
/// applied), and the data requests' answers kept listing their orders. Here the
/// applier reads all of these at once, so those after the redaction are still
/// pending when it is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redaction_reaches_webhooks_not_applied_yet_and_the_data_requests_answers() {
    let db = mugs_db().await;
    let shop = "mugs.myshopify.com";
    let who = json!({"shop_id": 1, "shop_domain": shop,
                     "customer": {"id": CUSTOMER_ID, "email": EMAIL, "phone": PHONE},
                     "orders_requested": [1001, 1002], "data_request": {"id": 77}});
    let redact = json!({"shop_id": 1, "shop_domain": shop,
                        "customer": {"id": CUSTOMER_ID, "email": EMAIL, "phone": PHONE},
                        "orders_to_redact": [1001, 1002]});
    let now = chrono::Utc::now().timestamp_millis();
    let kept = [
        (
            "p1",
            "products/create",
            product("Stoneware Mug", "2026-03-01T10:00:00Z"),
        ),
        (
            "o1",
            "orders/create",
            customer_order(1001, "2026-03-06T16:09:54Z", true),
        ),
        (
            "o2",
            "orders/create",
            customer_order(1002, "2026-03-06T17:00:00Z", false),
        ),
        ("d1", "customers/data_request", who.clone()),
        ("x1", "customers/redact", redact),
        // Pending when the redaction is applied: the guest's order updated, and
        // another data request of theirs.
        (
            "o2b",
            "orders/updated",
            customer_order(1002, "2026-03-08T10:00:00Z", false),
        ),
        ("d2", "customers/data_request", who),
    ];
    for (i, (id, topic, body)) in kept.iter().enumerate() {
        keep(&db, id, topic, body, now + i as i64).await;
    }
    let s = serve(db, SECRET, &[]).await;
    settle(&s).await;
    let (outcome, message) = outcome_of(&s, "x1").await;
    assert_eq!(outcome, "applied", "{message}");

    let customer_id = CUSTOMER_ID.to_string();
    for needle in [
        EMAIL,
        "zenobia.quarrington",
        FIRST_NAME,
        LAST_NAME,
        PHONE,
        "6135550142",
        STREET,
        "Wrenfield",
        customer_id.as_str(),
    ] {
        assert_eq!(
            holders_of(&s, needle).await,
            Vec::<String>::new(),
            "{needle} is still held"
        );
    }
    // The answer given before the redaction lists their orders no more, and the
    // request still pending then gives none.
    for id in ["d1", "d2"] {
        let (_, message) = outcome_of(&s, id).await;
        assert!(!message.contains("order_id"), "{id}: {message}");
    }
    // The pending order still applied, without its customer: the baskets stay.
    let (outcome, message) = outcome_of(&s, "o2b").await;
    assert_eq!(outcome, "applied", "{message}");
    assert_eq!(
        s.db.count("SELECT COUNT(*) FROM orders WHERE store_id = 'mugs' AND customer_key IS NULL")
            .await,
        2
    );
    assert_eq!(
        s.db.count("SELECT COUNT(*) FROM order_lines WHERE store_id = 'mugs'")
            .await,
        2
    );
    s.stop().await;
}

/// The length of a kept webhook's body (0: erased).
async fn body_length(s: &TestApp, id: &str) -> i64 {
    sqlx::query_scalar("SELECT length(body) FROM webhooks WHERE webhook_id = ?")
        .bind(id)
        .fetch_one(s.db.store.pool())
        .await
        .unwrap()
}

/// Bodies go `server.webhook_retention_days` after they were applied; ids and
/// outcomes stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_bodies_expire_after_the_retention_and_their_ids_and_outcomes_stay() {
    let db = mugs_db().await;
    // Two webhooks applied before this server started: nine days ago and one day ago.
    let day = 86_400_000_i64;
    let now = chrono::Utc::now().timestamp_millis();
    for (id, days) in [("old", 9), ("recent", 1)] {
        sqlx::query(
            "INSERT INTO webhooks (webhook_id, shop_domain, store_id, topic, body, received_at, \
             applied_at, outcome, message) \
             VALUES (?, 'mugs.myshopify.com', 'mugs', 'products/update', ?, ?, ?, 'applied', 'applied then')",
        )
        .bind(id)
        .bind(br#"{"id":632910392,"title":"Stoneware Mug"}"#.to_vec())
        .bind(now - days * day)
        .bind(now - days * day + 1000)
        .execute(db.store.pool())
        .await
        .unwrap();
    }
    let s = serve(db, SECRET, &[("server.webhook_retention_days", "7")]).await;
    // The applier sweeps when it starts, then once a minute.
    let started = Instant::now();
    while body_length(&s, "old").await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the old body was not erased"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        body_length(&s, "recent").await > 0,
        "a body inside the retention stays"
    );
    assert_eq!(
        outcome_of(&s, "old").await,
        ("applied".to_owned(), "applied then".to_owned())
    );
    let (status, answer) = send(
        &s,
        "products/update",
        "old",
        "mugs.myshopify.com",
        &product("Stoneware Mug", "2026-03-01T10:00:00Z"),
        None,
    )
    .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    s.stop().await;
}

/// `server.webhook_retention_days = 0`: a body goes as soon as its webhook is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_retention_a_body_goes_as_soon_as_it_is_applied() {
    let s = start_with(SECRET, &[("server.webhook_retention_days", "0")]).await;
    let shop = "mugs.myshopify.com";
    let mug = product("Stoneware Mug", "2026-03-01T10:00:00Z");
    send(&s, "products/create", "w1", shop, &mug, None).await;
    settle(&s).await;
    assert_eq!(outcome_of(&s, "w1").await.0, "applied");
    assert_eq!(
        title_of(&s, "808950810").await.as_deref(),
        Some("Stoneware Mug")
    );
    assert_eq!(body_length(&s, "w1").await, 0);
    let (_, answer) = send(&s, "products/create", "w1", shop, &mug, None).await;
    assert_eq!(answer["status"], "duplicate", "{answer}");
    s.stop().await;
}

/// Polls a job until `done` says so, or panics after a minute.
async fn wait_for_job(s: &TestApp, id: &str, done: impl Fn(&str) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, job) = s.admin("GET", &format!("/v1/jobs/{id}"), "").await;
        assert_eq!(status, 200, "{job}");
        if done(job["state"].as_str().unwrap_or_default()) {
            return job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job stuck: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue: `app/uninstalled` changed nothing. Now the store's tokens stop working, its
/// jobs stop, its webhooks are refused, but the compliance topics still apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninstalled_store_loses_its_tokens_jobs_and_webhooks_but_compliance_still_applies() {
    let db = TestDb::new().await;
    ingest_dir(&db, "small", &repo_root().join("fixtures/stores/small")).await;
    let s = spawn_app(
        AppOptions::default()
            .db(db)
            .admin_token(ADMIN)
            .webhook_secret(SECRET)
            .settings(&[
                ("server.heartbeat_seconds", "1"),
                ("server.lease_seconds", "5"),
            ])
            .embedder(Arc::new(SlowEmbedder(HashingEmbedder::new(32)))),
    )
    .await;
    let shop = "small.myshopify.com";

    // The store's own token works; one job runs (slowly) and one waits behind it.
    let (status, created) = s.admin("POST", "/v1/admin/stores/small/tokens", "").await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let (status, _, _) = s
        .call("GET", "/v1/stores/small/products", Some(&token), "")
        .await;
    assert_eq!(status, 200);
    let (status, running, _) = s
        .call("POST", "/v1/stores/small/jobs", Some(&token), "")
        .await;
    assert_eq!(status, 202, "{running}");
    let running = running["id"].as_str().unwrap().to_owned();
    wait_for_job(&s, &running, |state| state == "running").await;
    let (status, queued, _) = s
        .call("POST", "/v1/stores/small/jobs?queue=1", Some(&token), "")
        .await;
    assert_eq!(status, 202, "{queued}");
    let queued = queued["id"].as_str().unwrap().to_owned();

    let (status, answer) = send(
        &s,
        "app/uninstalled",
        "u1",
        shop,
        &json!({"id": 1, "domain": shop, "email": "owner@example.org"}),
        None,
    )
    .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("accepted")));
    settle(&s).await;
    let (outcome, message) = outcome_of(&s, "u1").await;
    assert_eq!(outcome, "applied", "{message}");

    // The token is revoked; the queued job is cancelled at once, the running one at
    // its next heartbeat.
    let (status, _, _) = s
        .call("GET", "/v1/stores/small/products", Some(&token), "")
        .await;
    assert_eq!(status, 401);
    let (_, job) = s.admin("GET", &format!("/v1/jobs/{queued}"), "").await;
    assert_eq!(job["state"], "cancelled", "{job}");
    let job = wait_for_job(&s, &running, |state| state != "running").await;
    assert_eq!(job["state"], "cancelled", "{job}");
    assert_eq!(
        s.db.count("SELECT COUNT(*) FROM runs WHERE store_id = 'small'")
            .await,
        0
    );

    // No new job, even for the admin.
    let (status, refused) = s.admin("POST", "/v1/stores/small/jobs", "").await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["kind"], "uninstalled", "{refused}");

    // Its webhooks are refused, and nothing of them kept...
    let (status, answer) = send(
        &s,
        "products/update",
        "p-after",
        shop,
        &product("Stoneware Mug", "2026-03-01T10:00:00Z"),
        None,
    )
    .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("refused")),
        "{answer}"
    );
    assert_eq!(
        s.db.count("SELECT COUNT(*) FROM webhooks WHERE webhook_id = 'p-after'")
            .await,
        0
    );
    // ...but for the compliance topics, still verified, kept and applied.
    let redact = json!({"shop_id": 1, "shop_domain": shop,
                        "customer": {"id": 42, "email": "a@example.org"}, "orders_to_redact": []});
    let forged = sign("another secret", redact.to_string().as_bytes());
    let (status, answer) = send(
        &s,
        "customers/redact",
        "x-after",
        shop,
        &redact,
        Some(forged),
    )
    .await;
    assert_eq!(status, 401, "still verified: {answer}");
    let (status, answer) = send(&s, "customers/redact", "x-after", shop, &redact, None).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );
    settle(&s).await;
    let (outcome, message) = outcome_of(&s, "x-after").await;
    assert_eq!(outcome, "applied", "{message}");

    // A new token from the admin installs it again: its webhooks are taken again.
    let (status, created) = s.admin("POST", "/v1/admin/stores/small/tokens", "").await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["reinstated"], true, "{created}");
    let (status, _, _) = s
        .call("GET", "/v1/stores/small/products", Some(&token), "")
        .await;
    assert_eq!(status, 401, "a token the uninstall revoked stays revoked");
    let (_, answer) = send(
        &s,
        "products/update",
        "p-again",
        shop,
        &product("Stoneware Mug", "2026-03-01T10:00:00Z"),
        None,
    )
    .await;
    assert_eq!(answer["status"], "accepted", "{answer}");
    settle(&s).await;
    s.stop().await;
}
