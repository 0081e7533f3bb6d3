//! Shopify webhooks against the real server: signatures, replays, out-of-order
//! updates, and updates that create what we do not hold.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bundleforge::embed::HashingEmbedder;
use bundleforge::server::webhooks::sign;
use serde_json::{Value, json};

use crate::support::{AppOptions, TestApp, TestDb, spawn_app};

const SECRET: &str = "shpss_test_secret";
const ADMIN: &str = "admin-token";

/// Our server over the store `mugs`, taking webhooks signed with `secret`.
async fn start(secret: &str) -> TestApp {
    let db = TestDb::new().await;
    // The store, known by its myshopify name.
    let csv = "variant_id,product_id,title,price\nv0,p0,Gift Card Holder,5.00\n";
    db.ingest_ok("mugs", crate::support::catalog(db.file("c.csv", csv)))
        .await;
    spawn_app(
        AppOptions::default()
            .db(db)
            .admin_token(ADMIN)
            .webhook_secret(secret)
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
    assert_eq!(resp.status().as_u16(), 403, "the admin token only");
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
