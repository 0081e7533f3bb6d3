//! Re-ingesting the same data changes nothing; a changed order replaces its lines.

use crate::support::{TestDb, catalog, orders, repo_root};
use bundleforge::ingest::IngestSources;

async fn table_counts(db: &TestDb) -> (i64, i64, i64, i64) {
    (
        db.count("SELECT COUNT(*) FROM stores").await,
        db.count("SELECT COUNT(*) FROM products").await,
        db.count("SELECT COUNT(*) FROM orders").await,
        db.count("SELECT COUNT(*) FROM order_lines").await,
    )
}

#[tokio::test]
async fn re_ingesting_the_same_files_is_idempotent() {
    let db = TestDb::new().await;
    let small = repo_root().join("fixtures/stores/small");
    let files = IngestSources::from_paths(
        Some(small.join("orders.csv")),
        Some(small.join("products.csv")),
        None,
        None,
    );
    let first = db.ingest_ok("small", files.clone()).await;
    let after_first = table_counts(&db).await;
    assert_eq!(after_first.1 as u64, first.report.products);
    assert_eq!(after_first.2 as u64, first.report.orders);
    assert_eq!(after_first.3 as u64, first.report.order_lines);
    let checksum = "SELECT SUM(quantity * unit_price_minor) FROM order_lines";
    let sum_first = db.count(checksum).await;

    let second = db.ingest_ok("small", files).await;
    assert_eq!(table_counts(&db).await, after_first);
    assert_eq!(db.count(checksum).await, sum_first);
    assert_eq!(second.report.order_lines, first.report.order_lines);
}

#[tokio::test]
async fn a_re_ingested_order_replaces_its_lines_whole() {
    let db = TestDb::new().await;
    let v1 = "order_id,created_at,quantity,unit_price,sku\n1,2024-01-01,1,5.00,A\n1,2024-01-01,1,5.00,B\n2,2024-01-02,1,5.00,A\n";
    db.ingest_ok("s", orders(db.file("v1.csv", v1))).await;
    assert_eq!(db.count("SELECT COUNT(*) FROM order_lines").await, 3);
    // Order 1 edited: B removed, A's quantity changed. Order 2 untouched.
    let v2 = "order_id,created_at,quantity,unit_price,sku\n1,2024-01-01,4,5.00,A\n";
    db.ingest_ok("s", orders(db.file("v2.csv", v2))).await;
    assert_eq!(db.count("SELECT COUNT(*) FROM order_lines").await, 2);
    assert_eq!(
        db.count("SELECT quantity FROM order_lines WHERE order_id = '1'")
            .await,
        4
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM orders").await, 2);
}

#[tokio::test]
async fn an_order_with_a_rejected_line_never_replaces_the_stored_one() {
    let db = TestDb::new().await;
    let lines = "SELECT COUNT(*) FROM order_lines WHERE order_id = '1'";
    let v1 = "order_id,created_at,quantity,unit_price,sku\n1,2024-01-01,1,5.00,A\n1,2024-01-01,2,5.00,B\n";
    db.ingest_ok("s", orders(db.file("v1.csv", v1))).await;
    assert_eq!(db.count(lines).await, 2);
    // One line now bad (its price, then its quantity), one still good: order 1 stays
    // as stored, both lines, and the report says so. A new order with a bad line is
    // stored with its good lines.
    for (round, bad) in ["1,2024-01-01,2,five,B", "1,2024-01-01,two,5.00,B"]
        .into_iter()
        .enumerate()
    {
        let v2 = format!(
            "order_id,created_at,quantity,unit_price,sku\n1,2024-01-01,1,5.00,A\n{bad}\n3,2024-01-03,1,5.00,A\n3,2024-01-03,1,x,C\n"
        );
        let out = db.ingest_ok("s", orders(db.file("v2.csv", &v2))).await;
        assert_eq!(db.count(lines).await, 2, "{bad}");
        assert_eq!(
            db.count(
                "SELECT quantity FROM order_lines WHERE order_id = '1' AND line_key LIKE '%B%'"
            )
            .await,
            2
        );
        assert_eq!(out.report.incomplete_orders, 2);
        // Order 3 is new in the first round, stored in the second.
        assert_eq!(out.stored_orders_kept, 1 + round as u64);
        assert!(out.text().contains("kept as they were"), "{}", out.text());
    }
    assert_eq!(
        db.count("SELECT COUNT(*) FROM order_lines WHERE order_id = '3'")
            .await,
        1
    );
    // Both lines bad: kept too, as before.
    let v3 =
        "order_id,created_at,quantity,unit_price,sku\n1,2024-01-01,1,y,A\n1,2024-01-01,2,z,B\n";
    db.ingest_ok("s", orders(db.file("v3.csv", v3))).await;
    assert_eq!(db.count(lines).await, 2);

    // The same rule for Shopify JSON and for UCI Online Retail.
    let json = r#"{"orders": [{"id": 1, "created_at": "2024-01-01T00:00:00Z", "line_items": [
        {"sku": "A", "quantity": 1, "price": "5.00"}, {"sku": "B", "quantity": 1, "price": "bad"}]}]}"#;
    let out = db
        .ingest_ok("s", orders(db.file("orders.json", json)))
        .await;
    assert_eq!(out.stored_orders_kept, 1);
    assert_eq!(db.count(lines).await, 2);
    let uci = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
536365,85123A,HEART,6,12/1/2010 8:26,2.55,17850,United Kingdom\n\
536365,71053,LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n";
    db.ingest_ok("uci", orders(db.file("uci.csv", uci))).await;
    let uci_bad = uci.replace("3.39", "three");
    let out = db
        .ingest_ok("uci", orders(db.file("uci2.csv", &uci_bad)))
        .await;
    assert_eq!(out.stored_orders_kept, 1);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM order_lines WHERE order_id = '536365'")
            .await,
        2
    );
}

#[tokio::test]
async fn ids_come_from_the_input_so_fresh_databases_agree() {
    // Two fresh databases, one of which saw other data first: the same file must give
    // the same ids in both, and those ids must be the file's own, not row numbers.
    let csv = "order_id,created_at,quantity,unit_price,sku\n77,2024-01-01,1,5.00,A\n10,2024-01-02,1,1.00,Z\n";
    let a = TestDb::new().await;
    a.ingest_ok("s", orders(a.file("o.csv", csv))).await;
    let b = TestDb::new().await;
    let other = "order_id,created_at,quantity,unit_price,sku\n5,2023-01-01,1,2.00,Q\n";
    b.ingest_ok("t", orders(b.file("other.csv", other))).await;
    b.ingest_ok("s", orders(b.file("o.csv", csv))).await;
    let ids = |db: &TestDb| {
        let pool = db.store.pool().clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT order_id FROM orders WHERE store_id = 's' ORDER BY order_id",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(ids(&a).await, vec!["10", "77"]);
    assert_eq!(ids(&b).await, ids(&a).await);
}

#[tokio::test]
async fn a_value_a_re_ingested_file_does_not_give_keeps_the_stored_one() {
    let db = TestDb::new().await;
    let full = "variant_id,product_id,title,price,cost,compare_at_price,vendor,product_type,tags,description,inventory\n\
                v1,p1,Mug,12.00,5.00,15.00,Acme,Drinkware,\"kitchen, gift\",A stoneware mug,7\n";
    db.ingest_ok("s", catalog(db.file("full.csv", full))).await;
    // A thinner export (no vendor, type, tags, description or stock) with a bad cost
    // (ignored, row kept) and a blank compare-at price: only the price is news.
    let thin = "variant_id,product_id,title,price,cost,compare_at_price\nv1,p1,Mug,13.00,abc,\n";
    let second = db.ingest_ok("s", catalog(db.file("thin.csv", thin))).await;
    assert_eq!(second.report.rows_kept, 1);
    let stored: String = sqlx::query_scalar(
        "SELECT price_minor || '|' || IFNULL(cost_minor, '-') || '|' || \
         IFNULL(compare_at_minor, '-') || '|' || IFNULL(vendor, '-') || '|' || \
         IFNULL(product_type, '-') || '|' || tags || '|' || description || '|' || \
         IFNULL(inventory, '-') FROM products WHERE variant_id = 'v1'",
    )
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    // The new price; everything else as the first file said.
    assert_eq!(
        stored,
        r#"1300|500|1500|Acme|Drinkware|["kitchen","gift"]|A stoneware mug|7"#
    );
}

#[tokio::test]
async fn an_order_field_a_re_ingest_lacks_keeps_the_stored_one() {
    let db = TestDb::new().await;
    let v1 = "order_id,name,customer_id,created_at,quantity,unit_price,sku\n1,#1001,c9,2024-01-01,1,5.00,A\n";
    db.ingest_ok("s", orders(db.file("v1.csv", v1))).await;
    let v2 = "order_id,created_at,quantity,unit_price,sku\n1,2024-01-01,2,5.00,A\n";
    db.ingest_ok("s", orders(db.file("v2.csv", v2))).await;
    let (name, customer): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT name, customer_key FROM orders WHERE order_id = '1'")
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    assert_eq!(name.as_deref(), Some("#1001"));
    assert!(customer.is_some());
    assert_eq!(
        db.count("SELECT quantity FROM order_lines WHERE order_id = '1'")
            .await,
        2
    );
}
