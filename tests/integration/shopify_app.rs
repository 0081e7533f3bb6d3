//! The predecessor's Shopify app against the real server: its uploads (CSV strings
//! in JSON, in the column layouts its export writes), its status and progress
//! stream, its recommendations and approvals, with the request and response shapes
//! its front end sends and reads.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{AppOptions, TestApp, spawn_app};

const ADMIN: &str = "app-admin-token-0123456789abcdef0";
const SHOP: &str = "kiln-and-co.myshopify.com";

/// The app's `catalog_joined` export: one row per variant.
const CATALOG_HEADER: &str = "product_id,handle,product_title,product_type,vendor,created_at,published_at,status,tags,collection_title,collection_id,collection_handle,collection_image_src,collection_updated_at,collection_sort_order,collection_published_at,collection_template_suffix,collection_published_scope,collection_body_html,id,title,sku,position,inventory_policy,image_id,barcode,created_at_y,alias,variant_inventory_qty,variant_image_src,image_src,inventory_item_id,inventory_available,inventory_policy.1,inventory_quantity,inventory_Sellable,inventory_TrunoverDays,inventory_OutOfStock,inventory_StockCover,inventory_Status,product_image_src,variant_id,variant_title,variant_sku,variant_available,option1_name,option1_value,image_position,inventory_item_admin_graphql_api_id,price,compare_at_price";
/// Its `products_variants` export: the same variants without prices.
const VARIANTS_HEADER: &str = "product_id,product_title,product_type,vendor,created_at,published_at,status,tags,handle,body_html,template_suffix,Published Scope,Collection,collection_id,collection_handle,collection_title,collection_updated_at,collection_sort_order,collection_image_src,collection_published_at,collection_template_suffix,collection_published_scope,collection_body_html,id,title,sku,position,inventory_policy,image_id,barcode,created_at_y,alias,variant_inventory_qty,variant_image_src,image_src,inventory_item_id,inventory_available,inventory_policy.1,inventory_quantity,inventory_Sellable,inventory_TrunoverDays,inventory_OutOfStock,inventory_StockCover,inventory_Status";
const INVENTORY_HEADER: &str = "inventory_item_id,available,updated_at,admin_graphql_api_id,sku,tracked,requires_shipping,country_code_of_origin,province_code_of_origin,harmonized_system_code,created_at,country_harmonized_system_codes,mid_code";
const ORDERS_HEADER: &str = "order_id,name,createdAt,currencyCode,displayFinancialStatus,displayFulfillmentStatus,subtotalPrice,totalShippingPrice,totalTax,totalPrice,customerEmail,shippingCountryCode,shippingProvince,shippingCity,lineItemId,lineItemName,lineItemQuantity,sku,vendor,variantTitle,productId,productTitle,productType,variantId,originalUnitPrice,discountedTotal,lineItemTotalDiscount,requiresShipping,isGiftCard,taxable,imageUrl";

/// A CSV row in `header`'s layout: the named cells set, the rest empty.
fn row(header: &str, cells: &[(&str, String)]) -> String {
    let given: HashMap<&str, &String> = cells.iter().map(|(k, v)| (*k, v)).collect();
    header
        .split(',')
        .map(|column| {
            let v = given.get(column).map(|v| v.as_str()).unwrap_or("");
            if v.contains(',') {
                format!("\"{v}\"")
            } else {
                v.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A pottery shop: eight products, each one variant.
const PRODUCTS: [(&str, &str, &str); 8] = [
    ("Speckled Stoneware Mug", "Mugs", "24.00"),
    ("Matte Black Espresso Cup", "Mugs", "18.00"),
    ("Glazed Serving Bowl", "Bowls", "42.00"),
    ("Nesting Prep Bowls", "Bowls", "36.00"),
    ("Linen Tea Towel", "Textiles", "14.50"),
    ("Hand-Thrown Teapot", "Teaware", "68.00"),
    ("Ceramic Pour-Over Dripper", "Coffee", "32.00"),
    ("Walnut Coaster Set", "Home", "22.00"),
];

fn catalog_csv() -> String {
    let mut lines = vec![CATALOG_HEADER.to_owned()];
    for (n, (title, kind, price)) in PRODUCTS.iter().enumerate() {
        let n = n + 1;
        let sku = format!("kiln-{n}");
        lines.push(row(
            CATALOG_HEADER,
            &[
                ("product_id", format!("gid://shopify/Product/{}", 1000 + n)),
                ("handle", sku.clone()),
                ("product_title", title.to_string()),
                ("product_type", kind.to_string()),
                ("vendor", "Kiln & Co".into()),
                ("created_at", "2025-06-01 09:00:00".into()),
                ("published_at", "2025-06-01 09:00:00".into()),
                ("status", "active".into()),
                ("tags", "handmade,ceramics".into()),
                ("id", (2000 + n).to_string()),
                ("title", "Default Title".into()),
                ("sku", sku.clone()),
                ("position", "1".into()),
                ("inventory_item_id", (3000 + n).to_string()),
                ("inventory_quantity", "40".into()),
                (
                    "variant_id",
                    format!("gid://shopify/ProductVariant/{}", 2000 + n),
                ),
                ("variant_title", "Default Title".into()),
                ("variant_sku", sku),
                ("variant_available", "True".into()),
                ("price", price.to_string()),
            ],
        ));
    }
    lines.join("\n") + "\n"
}

/// The variants export, with one variant the catalog does not have.
fn variants_csv() -> String {
    let mut lines = vec![VARIANTS_HEADER.to_owned()];
    for (n, (title, kind, _)) in PRODUCTS.iter().enumerate() {
        let n = n + 1;
        lines.push(row(
            VARIANTS_HEADER,
            &[
                ("product_id", format!("gid://shopify/Product/{}", 1000 + n)),
                ("product_title", title.to_string()),
                ("product_type", kind.to_string()),
                ("status", "active".into()),
                ("id", (2000 + n).to_string()),
                ("title", "Default Title".into()),
                ("sku", format!("kiln-{n}")),
            ],
        ));
    }
    lines.push(row(
        VARIANTS_HEADER,
        &[
            ("product_id", "gid://shopify/Product/1999".into()),
            ("product_title", "A Discontinued Jug".into()),
            ("id", "2999".into()),
            ("sku", "kiln-999".into()),
        ],
    ));
    lines.join("\n") + "\n"
}

fn inventory_csv() -> String {
    let mut lines = vec![INVENTORY_HEADER.to_owned()];
    for n in 1..=PRODUCTS.len() {
        lines.push(row(
            INVENTORY_HEADER,
            &[
                ("inventory_item_id", (3000 + n).to_string()),
                ("available", (10 * n).to_string()),
                ("updated_at", "2025-09-01 09:00:00".into()),
                ("sku", format!("kiln-{n}")),
            ],
        ));
    }
    lines.join("\n") + "\n"
}

/// Sixty orders in which the mug goes with the espresso cup, the bowls with each
/// other, and the teapot with the tea towel.
fn orders_csv() -> String {
    let baskets: [&[usize]; 6] = [&[1, 2], &[3, 4], &[6, 5], &[1, 2, 8], &[3, 4, 5], &[7, 1]];
    let mut lines = vec![ORDERS_HEADER.to_owned()];
    for o in 0..60usize {
        let basket = baskets[o % baskets.len()];
        let day = 1 + o % 28;
        for (k, &n) in basket.iter().enumerate() {
            let (title, kind, price) = PRODUCTS[n - 1];
            lines.push(row(
                ORDERS_HEADER,
                &[
                    ("order_id", format!("gid://shopify/Order/{}", 9000 + o)),
                    ("name", format!("#{}", 1001 + o)),
                    ("createdAt", format!("2025-08-{day:02}T12:00:00-00:00")),
                    ("currencyCode", "USD".into()),
                    ("displayFinancialStatus", "PAID".into()),
                    ("customerEmail", format!("customer{}@example.com", o % 17)),
                    (
                        "lineItemId",
                        format!("gid://shopify/LineItem/{}", 80000 + o * 10 + k),
                    ),
                    ("lineItemName", title.to_string()),
                    ("lineItemQuantity", "1".into()),
                    ("sku", format!("kiln-{n}")),
                    ("vendor", "Kiln & Co".into()),
                    ("variantTitle", "Default Title".into()),
                    ("productId", format!("gid://shopify/Product/{}", 1000 + n)),
                    ("productTitle", title.to_string()),
                    ("productType", kind.to_string()),
                    (
                        "variantId",
                        format!("gid://shopify/ProductVariant/{}", 2000 + n),
                    ),
                    ("originalUnitPrice", price.to_string()),
                    ("discountedTotal", price.to_string()),
                    ("lineItemTotalDiscount", "0.0".into()),
                ],
            ));
        }
    }
    lines.join("\n") + "\n"
}

/// A request with a JSON `body` (none if `Null`), as the app's front end sends it:
/// the status and the answer's JSON (`Null` if it is not).
async fn call_json(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.client.request(method, format!("{}{path}", app.url));
    if !body.is_null() {
        req = req.json(&body);
    }
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// [`call_json`] with the admin token.
async fn admin_json(app: &TestApp, method: &str, path: &str, body: Value) -> (u16, Value) {
    call_json(app, method, path, Some(ADMIN), body).await
}

/// The whole progress stream (it ends after `complete` or `error`), as
/// (event, data) pairs.
async fn events(app: &TestApp, id: &str) -> Vec<(String, Value)> {
    let resp = app
        .client
        .get(format!("{}/api/shopify/progress/{id}/stream", app.url))
        .header("Authorization", format!("Bearer {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let text = tokio::time::timeout(Duration::from_secs(180), resp.text())
        .await
        .expect("the progress stream never ended")
        .unwrap();
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
                    .unwrap_or_default()
            };
            let data = serde_json::from_str(&field("data:")).unwrap_or(Value::Null);
            (field("event:"), data)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_predecessors_app_uploads_follows_progress_and_approves_recommendations() {
    let app = spawn_app(AppOptions::default().admin_token(ADMIN)).await;

    // What the app gets wrong, answered in its error shape.
    let single = |csv_type: &str, csv: String| json!({"shopId": SHOP, "csvType": csv_type, "csvData": csv, "runId": "run-0"});
    let (status, body) = call_json(
        &app,
        "POST",
        "/api/shopify/upload",
        None,
        single("orders", orders_csv()),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = admin_json(
        &app,
        "POST",
        "/api/shopify/upload",
        single("customers", "a,b\n1,2\n".into()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("Must be one of"),
        "{body}"
    );
    let (status, body) = admin_json(
        &app,
        "POST",
        "/api/shopify/upload",
        single("orders", "  ".into()),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("csvData"),
        "{body}"
    );

    // The batch: all four CSVs of one run; the shop becomes a store on its way in.
    let (status, batch) = admin_json(
        &app,
        "POST",
        "/api/shopify/upload-batch",
        json!({
            "shopId": SHOP, "runId": "run-1", "currency": "USD",
            "catalogCsv": catalog_csv(), "variantsCsv": variants_csv(),
            "inventoryCsv": inventory_csv(), "ordersCsv": orders_csv(),
        }),
    )
    .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["runId"], "run-1");
    assert_eq!(batch["shopId"], SHOP);
    assert_eq!(batch["status"], "processing", "{batch}");
    let orders_id = batch["ordersUploadId"].as_str().unwrap().to_owned();
    assert_eq!(batch["uploadId"], orders_id.as_str());
    let (status, store) =
        admin_json(&app, "GET", "/v1/stores/kiln-and-co/stats", Value::Null).await;
    assert_eq!(status, 200, "{store}");

    // Each part's own status: rows read and kept.
    let part = |key: &str| batch[key].as_str().unwrap().to_owned();
    let (_, catalog) = admin_json(
        &app,
        "GET",
        &format!("/api/shopify/status/{}", part("catalogUploadId")),
        Value::Null,
    )
    .await;
    assert_eq!(
        (
            catalog["status"].as_str(),
            catalog["total_rows"].as_i64(),
            catalog["processed_rows"].as_i64()
        ),
        (Some("completed"), Some(8), Some(8)),
        "{catalog}"
    );
    assert_eq!(catalog["shop_id"], SHOP);
    // The variants the joined catalog holds already: counted, the stranger named.
    let (_, variants) = admin_json(
        &app,
        "GET",
        &format!("/api/shopify/status/{}", part("variantsUploadId")),
        Value::Null,
    )
    .await;
    assert_eq!(
        (
            variants["status"].as_str(),
            variants["total_rows"].as_i64(),
            variants["processed_rows"].as_i64()
        ),
        (Some("completed"), Some(9), Some(8)),
        "{variants}"
    );
    let message = variants["error_message"].as_str().unwrap();
    assert!(
        message.contains("variants:10") && message.contains("2999"),
        "{message}"
    );
    let (_, inventory) = admin_json(
        &app,
        "GET",
        &format!("/api/shopify/status/{}", part("inventoryUploadId")),
        Value::Null,
    )
    .await;
    assert_eq!(inventory["status"], "completed", "{inventory}");

    // The progress stream: progress events, moving forward, then complete.
    let events = events(&app, &orders_id).await;
    let (last_name, last) = events.last().unwrap();
    assert_eq!(last_name, "complete", "{events:?}");
    assert_eq!(
        (last["status"].as_str(), last["final"].as_bool()),
        (Some("completed"), Some(true)),
        "{last}"
    );
    let bundle_count = last["bundle_count"].as_u64().unwrap();
    assert!(bundle_count > 0, "{last}");
    let progress: Vec<u64> = events
        .iter()
        .filter(|(name, _)| name == "progress")
        .map(|(_, d)| d["progress"].as_u64().unwrap())
        .collect();
    assert!(!progress.is_empty(), "{events:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&100));

    // Status, by the upload id and by the run id.
    for id in [orders_id.as_str(), "run-1"] {
        let (status, body) = admin_json(
            &app,
            "GET",
            &format!("/api/shopify/status/{id}"),
            Value::Null,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["upload_id"], orders_id.as_str());
        assert_eq!(body["status"], "completed", "{body}");
        assert_eq!(body["bundle_count"].as_u64(), Some(bundle_count));
        assert_eq!(body["total_rows"].as_i64(), Some(140), "{body}");
    }
    let (status, body) = admin_json(
        &app,
        "GET",
        "/api/shopify/status/no-such-upload",
        Value::Null,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].is_string());

    // Recommendations, best first, in the app's shape; by domain or by store id.
    let (status, recs) = admin_json(
        &app,
        "GET",
        &format!("/api/shopify/recommendations/{SHOP}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{recs}");
    assert_eq!(recs["shop_id"], SHOP);
    let list = recs["recommendations"].as_array().unwrap();
    assert_eq!(recs["count"].as_u64(), Some(list.len() as u64));
    assert_eq!(list.len() as u64, bundle_count.min(20));
    let scores: Vec<f64> = list
        .iter()
        .map(|r| r["ranking_score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    for r in list {
        assert!(
            ["FBT", "VOLUME", "BOGO"].contains(&r["bundle_type"].as_str().unwrap()),
            "{r}"
        );
        assert!(r["objective"].is_string() && r["id"].is_string(), "{r}");
        let items = r["products"]["items"].as_array().unwrap();
        assert!(!items.is_empty(), "{r}");
        for item in items {
            let variant = item["variant_id"].as_str().unwrap();
            assert!(
                variant.starts_with("gid://shopify/ProductVariant/20"),
                "{item}"
            );
            assert_eq!(item["variant_gid"], variant);
            assert!(item["price"].is_number(), "{item}");
        }
        let pricing = &r["pricing"];
        // The number the app reads is the exact amount in minor units.
        for (number, minor) in [
            ("bundle_price", "bundle_price_minor"),
            ("original_total", "original_total_minor"),
        ] {
            let cents = (pricing[number].as_f64().unwrap() * 100.0).round() as i64;
            assert_eq!(Some(cents), pricing[minor].as_i64(), "{pricing}");
        }
        assert!(pricing["bundle_price_minor"].as_i64() <= pricing["original_total_minor"].as_i64());
        assert!(
            pricing["discount_pct"].as_str().unwrap().ends_with('%'),
            "{pricing}"
        );
        assert_eq!(pricing["currency"], "USD");
        assert!(!r["ai_copy"]["title"].as_str().unwrap().is_empty(), "{r}");
        assert_eq!(r["is_approved"], false);
        assert!(r["created_at"].as_str().unwrap().starts_with("20"), "{r}");
    }
    let (_, by_id) = admin_json(
        &app,
        "GET",
        "/api/shopify/recommendations/kiln-and-co?limit=2",
        Value::Null,
    )
    .await;
    assert_eq!(
        by_id["count"].as_u64(),
        Some(2.min(bundle_count)),
        "{by_id}"
    );
    assert_eq!(by_id["recommendations"][0]["id"], list[0]["id"]);

    // Approve one: it comes back approved, and alone under approved=true.
    let chosen = list[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = admin_json(
        &app,
        "POST",
        &format!("/api/shopify/recommendations/{chosen}/approve?shop_id={SHOP}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"recommendationId": chosen, "status": "approved", "shopId": SHOP})
    );
    let (_, approved) = admin_json(
        &app,
        "GET",
        &format!("/api/shopify/recommendations/{SHOP}?approved=true"),
        Value::Null,
    )
    .await;
    assert_eq!(approved["count"], 1, "{approved}");
    assert_eq!(approved["recommendations"][0]["id"], chosen.as_str());
    assert_eq!(approved["recommendations"][0]["is_approved"], true);
    let (_, rest) = admin_json(
        &app,
        "GET",
        &format!("/api/shopify/recommendations/{SHOP}?approved=false&limit=100"),
        Value::Null,
    )
    .await;
    assert_eq!(rest["count"].as_u64(), Some(bundle_count - 1), "{rest}");
    let (status, body) = admin_json(
        &app,
        "POST",
        &format!("/api/shopify/recommendations/nope/approve?shop_id={SHOP}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("Recommendation not found")),
        "{body}"
    );
    let (status, body) = admin_json(
        &app,
        "POST",
        &format!("/api/shopify/recommendations/{chosen}/approve"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 422, "{body}");

    // A shop's own token sees its shop only.
    let (status, other) = admin_json(
        &app,
        "POST",
        "/api/shopify/upload",
        json!({"shop_id": "other-shop", "csv_type": "products", "csv_data": catalog_csv()}),
    )
    .await;
    assert_eq!(
        (status, other["status"].as_str()),
        (200, Some("completed")),
        "{other}"
    );
    let (status, created) = admin_json(
        &app,
        "POST",
        "/v1/admin/stores/other-shop/tokens",
        Value::Null,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let (status, _) = call_json(
        &app,
        "GET",
        &format!("/api/shopify/recommendations/{SHOP}"),
        Some(&token),
        Value::Null,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call_json(
        &app,
        "GET",
        &format!("/api/shopify/status/{orders_id}"),
        Some(&token),
        Value::Null,
    )
    .await;
    assert_eq!(status, 403);
    let (status, own) = call_json(
        &app,
        "GET",
        "/api/shopify/recommendations/other-shop",
        Some(&token),
        Value::Null,
    )
    .await;
    assert_eq!((status, own["count"].as_u64()), (200, Some(0)), "{own}");
    app.stop().await;
}
