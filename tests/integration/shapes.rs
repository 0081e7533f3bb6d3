//! Each input shape, from small files in its real column layout.

use bundleforge::domain::{Currency, ProductStatus, StoreId};
use bundleforge::ingest::{FileRole, IngestSource, IngestSources};
use bundleforge::store::CatalogStore;

use crate::support::{TestDb, catalog, gzip, orders};

fn sid(s: &str) -> StoreId {
    StoreId::parse(s).unwrap()
}

#[tokio::test]
async fn shopify_order_export_carries_order_fields_forward_and_merges_repeats() {
    let db = TestDb::new().await;
    let csv = "\
Name,Email,Financial Status,Currency,Subtotal,Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku,Lineitem discount,Vendor,Id
#1001,a@example.com,paid,EUR,30.00,2024-03-05 14:22:10 -0500,1,Mug,10.00,MUG-1,0.00,Potter,5001
#1001,a@example.com,,,,,2,Saucer,10.00,SAU-1,1.50,Potter,
#1002,b@example.com,paid,EUR,10.00,2024-03-06 09:00:00 -0500,1,Mug,5.00,MUG-1,0.00,Potter,5002
,,,,,,1,Mug,7.00,MUG-1,0.00,Potter,
";
    let out = db
        .ingest_ok("shop", orders(db.file("orders_export.csv", csv)))
        .await;
    let r = &out.report;
    assert_eq!((r.rows_read, r.rows_kept), (4, 4));
    assert_eq!(
        (r.orders, r.order_lines, r.baskets, r.lines_merged),
        (2, 3, 2, 1)
    );
    // No catalog yet: lines are kept and counted, not dropped.
    assert_eq!(r.lines_without_catalog_product, 3);
    assert_eq!(r.files[0].shape, "Shopify order export CSV");

    let data = db.store.load(&sid("shop")).await.unwrap();
    assert_eq!(data.store.currency, Currency::EUR);
    let o1 = data.orders.iter().find(|o| o.order_id == "5001").unwrap();
    assert_eq!(o1.created_at.to_rfc3339(), "2024-03-05T19:22:10+00:00");
    assert_eq!(o1.customer_key.as_deref(), Some("a@example.com"));
    assert_eq!(o1.lines.len(), 2);
    let discount: i64 = sqlx::query_scalar(
        "SELECT discount_minor FROM order_lines WHERE order_id = '5001' AND ref_sku = 'SAU-1'",
    )
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    assert_eq!(discount, 150);
    // Order 5002: two lines of MUG-1 merged, quantity 2, mean unit price 6.00.
    let (qty, price): (i64, i64) = sqlx::query_as(
        "SELECT quantity, unit_price_minor FROM order_lines WHERE order_id = '5002'",
    )
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    assert_eq!((qty, price), (2, 600));
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM orders WHERE order_id = '5002'")
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    assert_eq!(name.as_deref(), Some("#1002"));
}

#[tokio::test]
async fn shopify_product_export_reads_variants_and_skips_image_rows() {
    let db = TestDb::new().await;
    let csv = "\
Handle,Title,Body (HTML),Vendor,Product Category,Type,Tags,Published,Option1 Name,Option1 Value,Variant SKU,Variant Inventory Tracker,Variant Inventory Qty,Variant Price,Variant Compare At Price,Image Src,Gift Card,Cost per item,Status
green-tea,Green Tea,<p>Fresh <strong>sencha</strong> &amp; more</p>,Leafy,Food > Tea,Tea,\"organic, japan\",TRUE,Size,50g,TEA-50,shopify,12,8.50,10.00,https://x/1.jpg,FALSE,3.10,active
green-tea,,,,,,,,,100g,TEA-100,shopify,3,15.00,,,,,
green-tea,,,,,,,,,,,,,,,https://x/2.jpg,,,
mug,Stoneware Mug,Handmade,Potter,Home > Kitchen,Mugs,,TRUE,Title,Default Title,,,,22.00,,,FALSE,,draft
gift-card,Gift Card,,Shop,,Gift Card,,TRUE,Denomination,$25,GC-25,,,25.00,,,TRUE,,active
";
    let out = db
        .ingest_ok("shop", catalog(db.file("products_export.csv", csv)))
        .await;
    let r = &out.report;
    assert_eq!(r.rows_read, 5);
    assert_eq!(r.rows_kept, 4);
    assert_eq!(r.dropped.get("image_only_row"), Some(&1));
    assert_eq!(r.products, 4);

    let data = db.store.load(&sid("shop")).await.unwrap();
    let by = |id: &str| data.products.iter().find(|p| p.variant_id == id).unwrap();
    let tea = by("TEA-50");
    assert_eq!(tea.product_id, "green-tea");
    assert_eq!(tea.title, "Green Tea");
    assert_eq!(tea.variant_title.as_deref(), Some("50g"));
    assert_eq!(tea.description, "Fresh sencha & more");
    assert_eq!(tea.tags, vec!["organic", "japan"]);
    assert_eq!(tea.category.as_deref(), Some("Food > Tea"));
    assert_eq!(tea.product_type.as_deref(), Some("Tea"));
    assert_eq!(tea.price.minor, 850);
    assert_eq!(tea.compare_at_price.map(|m| m.minor), Some(1000));
    assert_eq!(tea.cost.map(|m| m.minor), Some(310));
    assert_eq!(tea.inventory, Some(12));
    let big = by("TEA-100");
    assert_eq!(
        big.title, "Green Tea",
        "product fields carry to later variant rows"
    );
    assert_eq!(big.cost, None);
    // No SKU: the variant id is Handle + position; no tracker: not tracked.
    let mug = by("mug#1");
    assert_eq!(mug.status, Some(ProductStatus::Draft));
    assert_eq!(mug.inventory, None);
    assert_eq!(mug.variant_title, None);
    assert!(by("GC-25").gift_card);
}

#[tokio::test]
async fn split_products_variants_and_inventory_join_on_their_ids() {
    let db = TestDb::new().await;
    let products = "\
id,title,handle,body_html,vendor,productType,tags,status,createdAt
gid://shopify/Product/1,Green Tea,green-tea,<p>Sencha</p>,Leafy,Tea,\"organic\",ACTIVE,2024-01-10T10:00:00Z
gid://shopify/Product/2,Teapot,teapot,Cast iron,Potter,Teaware,,ACTIVE,2024-02-01T00:00:00Z
";
    let variants = "\
id,product_id,title,sku,price,compare_at_price,inventory_item_id
gid://shopify/ProductVariant/11,gid://shopify/Product/1,50g,TEA-50,8.50,,gid://shopify/InventoryItem/111
gid://shopify/ProductVariant/12,gid://shopify/Product/1,100g,TEA-100,15.00,,gid://shopify/InventoryItem/112
gid://shopify/ProductVariant/21,gid://shopify/Product/2,Default Title,POT-1,40.00,45.00,gid://shopify/InventoryItem/211
gid://shopify/ProductVariant/99,gid://shopify/Product/9,Ghost,GH-1,1.00,,
";
    let levels = "\
inventory_item_id,location_id,available,cost
gid://shopify/InventoryItem/111,gid://shopify/Location/1,5,3.00
gid://shopify/InventoryItem/111,gid://shopify/Location/2,7,
gid://shopify/InventoryItem/211,gid://shopify/Location/1,2,
";
    let files = IngestSources::new([
        IngestSource::file(FileRole::Catalog, db.file("products.csv", products)),
        IngestSource::file(FileRole::Variants, db.file("variants.csv", variants)),
        IngestSource::file(FileRole::Inventory, db.file("inventory_levels.csv", levels)),
    ])
    .unwrap();
    let out = db.ingest_ok("shop", files).await;
    assert_eq!(out.report.products, 3);
    assert_eq!(out.report.rejected.get("unknown_product"), Some(&1));
    let data = db.store.load(&sid("shop")).await.unwrap();
    let by = |id: &str| {
        data.products
            .iter()
            .find(|p| p.variant_id == id)
            .unwrap_or_else(|| panic!("no {id}"))
    };
    let tea = by("gid://shopify/ProductVariant/11");
    assert_eq!(tea.product_id, "gid://shopify/Product/1");
    assert_eq!(tea.inventory, Some(12), "summed over locations");
    assert_eq!(tea.cost.map(|m| m.minor), Some(300));
    assert_eq!(tea.description, "Sencha");
    assert_eq!(tea.variant_title.as_deref(), Some("50g"));
    assert_eq!(tea.status, Some(ProductStatus::Active));
    assert_eq!(
        tea.created_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2024-01-10T10:00:00+00:00")
    );
    // A variant with no inventory level row keeps inventory unknown.
    assert_eq!(by("gid://shopify/ProductVariant/12").inventory, None);
    assert_eq!(by("gid://shopify/ProductVariant/21").inventory, Some(2));
    assert_eq!(by("gid://shopify/ProductVariant/21").variant_title, None);
}

#[tokio::test]
async fn graphql_and_snake_case_order_rows_join_the_catalog() {
    let db = TestDb::new().await;
    let products = "\
id,product_id,title,sku,price
gid://shopify/ProductVariant/11,gid://shopify/Product/1,Green Tea,TEA-50,8.50
gid://shopify/ProductVariant/21,gid://shopify/Product/2,Teapot,POT-1,40.00
";
    db.ingest_ok("shop", catalog(db.file("flat_products.csv", products)))
        .await;

    let gql = "\
orderId,name,createdAt,currencyCode,lineItemQuantity,originalUnitPrice,variantId,sku,productId,productTitle,productType,vendor,customerEmail
gid://shopify/Order/1,#1001,2024-03-05T14:22:10Z,USD,1,8.50,gid://shopify/ProductVariant/11,,,Green Tea,Tea,Leafy,c@example.com
gid://shopify/Order/1,#1001,2024-03-05T14:22:10Z,USD,1,40.00,,POT-1,,Teapot,Teaware,Potter,c@example.com
gid://shopify/Order/2,#1002,2024-03-07T08:00:00Z,USD,2,8.50,,,gid://shopify/Product/1,,Tea,Leafy,d@example.com
";
    let out = db
        .ingest_ok("shop", orders(db.file("gql_orders.csv", gql)))
        .await;
    assert_eq!(
        out.report.files[0].shape,
        "order rows (GraphQL or snake_case names)"
    );
    assert_eq!((out.report.orders, out.report.order_lines), (2, 3));
    assert_eq!(out.report.lines_without_catalog_product, 0);

    let snake = "\
order_id,created_at,quantity,unit_price,sku,title
9001,2024-04-01 10:00:00,1,40.00,,Teapot
9001,2024-04-01 10:00:00,3,8.50,TEA-50,Green Tea
9002,2024-04-02 10:00:00,1,1.00,NOPE,Unknown thing
";
    let out = db
        .ingest_ok("shop", orders(db.file("snake_orders.csv", snake)))
        .await;
    assert_eq!((out.report.orders, out.report.order_lines), (2, 3));
    assert_eq!(out.report.lines_without_catalog_product, 1);
    let data = db.store.load(&sid("shop")).await.unwrap();
    let items = |oid: &str| -> Vec<String> {
        let o = data.orders.iter().find(|o| o.order_id == oid).unwrap();
        let mut v: Vec<String> = o
            .lines
            .iter()
            .map(|l| {
                l.item
                    .map(|i| data.products[i as usize].variant_id.clone())
                    .unwrap_or_default()
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        items("gid://shopify/Order/1"),
        [
            "gid://shopify/ProductVariant/11",
            "gid://shopify/ProductVariant/21"
        ]
    );
    // By product id, and by exact title.
    assert_eq!(
        items("gid://shopify/Order/2"),
        ["gid://shopify/ProductVariant/11"]
    );
    assert_eq!(
        items("9001"),
        [
            "gid://shopify/ProductVariant/11",
            "gid://shopify/ProductVariant/21"
        ]
    );
    assert_eq!(items("9002"), [""]);
}

#[tokio::test]
async fn orders_stored_before_their_catalog_join_it_when_it_arrives() {
    let db = TestDb::new().await;
    let rows = "order_id,created_at,quantity,unit_price,sku\n1,2024-04-01 10:00:00,1,5.00,MUG-1\n";
    let out = db.ingest_ok("shop", orders(db.file("o.csv", rows))).await;
    assert_eq!(out.report.lines_without_catalog_product, 1);
    let products = "id,title,sku,price\nmug,Mug,MUG-1,5.00\n";
    let out = db
        .ingest_ok("shop", catalog(db.file("p.csv", products)))
        .await;
    assert_eq!(out.lines_joined_later, 1);
    let joined = db
        .count("SELECT COUNT(*) FROM order_lines WHERE item_id = 'mug'")
        .await;
    assert_eq!(joined, 1);
}

#[tokio::test]
async fn shopify_rest_json_products_and_orders_are_read() {
    let db = TestDb::new().await;
    let products = r#"{"products": [
      {"id": 632910392, "title": "IPod Nano", "body_html": "<p>It's the <em>small</em> iPod</p>",
       "vendor": "Apple", "product_type": "Cult Products", "handle": "ipod-nano", "status": "active",
       "created_at": "2024-01-10T10:00:00-05:00", "tags": "Emotive, Flash Memory",
       "variants": [
         {"id": 808950810, "product_id": 632910392, "title": "Pink", "price": "199.00", "sku": "IPOD2008PINK",
          "inventory_quantity": 10, "inventory_item_id": 808950810, "compare_at_price": null},
         {"id": 49148385, "product_id": 632910392, "title": "Red", "price": "199.00", "sku": "IPOD2008RED",
          "inventory_quantity": 20, "inventory_management": null}
       ]}]}"#;
    let out = db
        .ingest_ok("json", catalog(db.file("products.json", products)))
        .await;
    assert_eq!(out.report.products, 2);
    assert_eq!(
        out.report.files[0].shape,
        "Shopify Admin REST JSON products"
    );

    let orders_json = r##"{"orders": [
      {"id": 450789469, "name": "#1001", "email": "bob@example.com", "created_at": "2024-03-13T16:09:54-04:00",
       "currency": "CAD", "customer": {"id": 207119551},
       "line_items": [
         {"id": 466157049, "variant_id": 808950810, "product_id": 632910392, "title": "IPod Nano", "quantity": 1, "price": "199.00", "sku": "IPOD2008PINK", "total_discount": "5.00"},
         {"id": 518995019, "variant_id": null, "product_id": null, "title": "Custom engraving", "quantity": 1, "price": "10.00", "sku": ""}
       ]}]}"##;
    let out = db
        .ingest_ok("json", orders(db.file("orders.json", orders_json)))
        .await;
    assert_eq!((out.report.orders, out.report.order_lines), (1, 2));
    assert_eq!(out.report.lines_without_catalog_product, 1);
    let data = db.store.load(&sid("json")).await.unwrap();
    let pink = data
        .products
        .iter()
        .find(|p| p.variant_id == "808950810")
        .unwrap();
    assert_eq!(pink.description, "It's the small iPod");
    assert_eq!(pink.tags, vec!["Emotive", "Flash Memory"]);
    assert_eq!(pink.inventory, Some(10));
    let red = data
        .products
        .iter()
        .find(|p| p.variant_id == "49148385")
        .unwrap();
    assert_eq!(
        red.inventory, None,
        "inventory_management null = not tracked"
    );
    let o = &data.orders[0];
    assert_eq!(o.customer_key.as_deref(), Some("207119551"));
    assert_eq!(o.created_at.to_rfc3339(), "2024-03-13T20:09:54+00:00");
    let cad: String = sqlx::query_scalar("SELECT currency FROM orders")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(cad, "CAD");
}

#[tokio::test]
async fn online_retail_rows_follow_the_canonical_filter_and_derivation_rules() {
    let db = TestDb::new().await;
    let csv = "\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85039a,HEART LIGHT,2,2010-12-01 08:26:00,1.25,17850,United Kingdom
536365,85039A,HEART LIGHT,3,2010-12-01 08:20:00,1.30,17850,United Kingdom
536366,85039A,HEART T-LIGHT,1,2010-12-02 09:00:00,1.25,,United Kingdom
536366,22423,REGENCY CAKESTAND,1,2010-12-02 09:00:00,12.75,,United Kingdom
536367,22423,CAKESTAND REGENCY,1,2010-12-03 09:00:00,12.75,13047,United Kingdom
536367,post,POSTAGE,1,2010-12-03 09:00:00,18.00,13047,United Kingdom
C536368,22423,REGENCY CAKESTAND,-1,2010-12-03 10:00:00,12.75,13047,United Kingdom
536369,22423,REGENCY CAKESTAND,0,2010-12-03 10:00:00,12.75,13047,United Kingdom
536370,22423,REGENCY CAKESTAND,1,2010-12-03 10:00:00,0.00,13047,United Kingdom
A563185,B,Adjust bad debt,1,2011-08-12 14:50:00,11062.06,,United Kingdom
536371,22423,Z OTHER NAME,1,2010-12-04 10:00:00,12.75,13047,United Kingdom
";
    let out = db
        .ingest_ok(
            "uci",
            orders(db.bytes_file("online_retail.csv.gz", &gzip(csv.as_bytes()))),
        )
        .await;
    let r = &out.report;
    assert_eq!(r.rows_read, 11);
    assert_eq!(r.rows_kept, 6);
    let dropped: Vec<(&str, u64)> = r.dropped.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        dropped,
        [
            ("adjustment_invoice", 1),
            ("cancellation", 1),
            ("price_not_positive", 1),
            ("quantity_not_positive", 1),
            ("service_code", 1)
        ]
    );
    assert_eq!(r.dropped_service_codes.get("POST"), Some(&1));
    assert_eq!(
        (r.orders, r.order_lines, r.products, r.lines_merged),
        (4, 5, 2, 1)
    );
    assert_eq!(out.currency, "GBP");

    let data = db.store.load(&sid("uci")).await.unwrap();
    let heart = data
        .products
        .iter()
        .find(|p| p.variant_id == "85039A")
        .unwrap();
    // Two descriptions, HEART LIGHT twice: the most frequent wins.
    assert_eq!(heart.title, "HEART LIGHT");
    assert_eq!(heart.sku.as_deref(), Some("85039A"));
    // Prices 1.25, 1.25, 1.30: median 1.25.
    assert_eq!(heart.price.minor, 125);
    let stand = data
        .products
        .iter()
        .find(|p| p.variant_id == "22423")
        .unwrap();
    // A three-way tie (one each): the lexicographically smallest description.
    assert_eq!(stand.title, "CAKESTAND REGENCY");
    assert_eq!(stand.price.currency, Currency::GBP);
    // The invoice's date is its earliest timestamp; both case variants merged.
    let first = data.orders.iter().find(|o| o.order_id == "536365").unwrap();
    assert_eq!(first.created_at.to_rfc3339(), "2010-12-01T08:20:00+00:00");
    assert_eq!(first.lines.len(), 1);
    assert_eq!(first.lines[0].quantity, 5);
}

#[tokio::test]
async fn online_retail_medians_between_pennies_round_half_up() {
    let db = TestDb::new().await;
    let csv = "\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
1,X1,THING,1,2010-12-01 08:26:00,1.25,1,UK
2,X1,THING,1,2010-12-01 08:26:00,1.30,1,UK
";
    db.ingest_ok("uci", orders(db.file("retail.csv", csv)))
        .await;
    let data = db.store.load(&sid("uci")).await.unwrap();
    // (1.25 + 1.30) / 2 = 1.275 → 1.28
    assert_eq!(data.products[0].price.minor, 128);
}

#[tokio::test]
async fn a_variant_level_app_export_and_inventory_by_location_are_read() {
    let db = TestDb::new().await;
    // Columns in an app's own order, product fields repeated on every variant row.
    let flat = "\
updated_at,option1,tags,product_status,cost,inventory_item_id,compare_at_price,price,sku,variant_title,product_title,product_id,variant_id,vendor,product_type,option2,option3,created_at
2024-05-01T00:00:00Z,50g,\"tea, organic\",active,3.10,ii-11,,8.50,TEA-50,50g,Green Tea,p-1,v-11,Leafy,Tea,,,2024-01-10T10:00:00Z
2024-05-01T00:00:00Z,100g,\"tea, organic\",active,,ii-12,16.00,15.00,TEA-100,100g,Green Tea,p-1,v-12,Leafy,Tea,,,2024-01-10T10:00:00Z
2024-05-02T00:00:00Z,Default Title,,draft,,ii-21,,40.00,POT-1,Default Title,Teapot,p-2,v-21,Potter,Teaware,,,2024-02-01T00:00:00Z
2024-05-02T00:00:00Z,,,active,,,,,NOPRICE,,Kettle,p-3,v-31,Potter,Teaware,,,
";
    let levels = "\
location_id,available,inventory_item_id
loc-1,5,ii-11
loc-2,7,ii-11
loc-1,2,ii-21
loc-2,1,ii-21
loc-2,3,ii-21
";
    let files = IngestSources::new([
        IngestSource::file(FileRole::Catalog, db.file("variants_export.csv", flat)),
        IngestSource::file(FileRole::Inventory, db.file("inventory_levels.csv", levels)),
    ])
    .unwrap();
    let out = db.ingest_ok("shop", files).await;
    let r = &out.report;
    assert_eq!(r.files[0].shape, "variant-level catalog (app export)");
    assert_eq!(r.products, 3);
    assert_eq!(r.rejected.get("missing_value"), Some(&1), "{:?}", r.errors);
    assert_eq!(r.rejected.get("conflicting_duplicate_level"), Some(&1));
    let data = db.store.load(&sid("shop")).await.unwrap();
    let by = |id: &str| data.products.iter().find(|p| p.variant_id == id).unwrap();
    let tea = by("v-11");
    assert_eq!(tea.product_id, "p-1");
    assert_eq!(tea.title, "Green Tea");
    assert_eq!(tea.variant_title.as_deref(), Some("50g"));
    assert_eq!(tea.sku.as_deref(), Some("TEA-50"));
    assert_eq!(tea.price.minor, 850);
    assert_eq!(tea.cost.map(|m| m.minor), Some(310));
    assert_eq!(tea.tags, ["tea", "organic"]);
    assert_eq!(tea.vendor.as_deref(), Some("Leafy"));
    assert_eq!(tea.product_type.as_deref(), Some("Tea"));
    assert_eq!(tea.status, Some(ProductStatus::Active));
    assert_eq!(tea.inventory, Some(12), "summed over locations");
    assert_eq!(by("v-12").compare_at_price.map(|m| m.minor), Some(1600));
    assert_eq!(by("v-12").inventory, None, "no level row: unknown");
    let pot = by("v-21");
    assert_eq!(pot.variant_title, None);
    assert_eq!(pot.status, Some(ProductStatus::Draft));
    // loc-2 was given twice: the later line (3) wins, then 2 + 3.
    assert_eq!(pot.inventory, Some(5));

    // A minimal subset: the id, a title and the price.
    let minimal = "price,title,variant_id\n4.00,Tea Towel,v-9\n";
    let out = db
        .ingest_ok("mini", catalog(db.file("minimal.csv", minimal)))
        .await;
    assert_eq!(out.report.products, 1);
    let data = db.store.load(&sid("mini")).await.unwrap();
    assert_eq!(data.products[0].title, "Tea Towel");
    assert_eq!(data.products[0].product_id, "v-9");
}
