//! Bad input: a clear message naming file, row and field; every valid row kept.

use bundleforge::app::AppError;
use bundleforge::ingest::{FileRole, IngestError, IngestSource, IngestSources};
use bundleforge::store::CatalogStore;

use crate::support::{TestDb, catalog, error_line, orders};

fn ingest_error(result: Result<bundleforge::app::IngestOutcome, AppError>) -> String {
    match result {
        Ok(_) => panic!("expected the ingest to fail"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn an_empty_file_is_named_as_empty() {
    let db = TestDb::new().await;
    let path = db.file("empty.csv", "");
    let msg = ingest_error(db.ingest("s", orders(path)).await);
    assert!(msg.contains("empty.csv") && msg.contains("empty"), "{msg}");
    let path = db.file("blank.csv", "\n\n  \n");
    let msg = ingest_error(db.ingest("s", orders(path)).await);
    assert!(msg.contains("blank.csv: the file is empty"), "{msg}");
}

#[tokio::test]
async fn an_unrecognised_file_lists_the_shapes_and_their_columns() {
    let db = TestDb::new().await;
    let path = db.file("mystery.csv", "foo,bar\n1,2\n");
    let msg = ingest_error(db.ingest("s", orders(path)).await);
    assert!(msg.contains("mystery.csv"), "{msg}");
    assert!(msg.contains("foo, bar"), "names the file's columns: {msg}");
    for needed in [
        "UCI Online Retail",
        "Shopify order export CSV",
        "Lineitem quantity",
        "Shopify product export CSV",
        "Variant Price",
        "inventory_item_id",
        "Shopify Admin REST JSON",
    ] {
        assert!(msg.contains(needed), "missing {needed:?} in: {msg}");
    }
}

#[tokio::test]
async fn a_file_given_in_the_wrong_role_says_which_role_it_needs() {
    let db = TestDb::new().await;
    let path = db.file("products.csv", "Handle,Title,Variant Price\nmug,Mug,5.00\n");
    let msg = ingest_error(db.ingest("s", orders(path)).await);
    assert!(
        msg.contains("Shopify product export CSV")
            && msg.contains("read as the catalog file")
            && !msg.contains("--"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_missing_required_column_names_the_accepted_spellings() {
    let db = TestDb::new().await;
    // Order rows without any price column.
    let path = db.file(
        "orders.csv",
        "Name,Created at,Lineitem quantity,Lineitem sku\n#1,2024-01-01,1,A\n",
    );
    let msg = ingest_error(db.ingest("s", orders(path)).await);
    assert!(msg.contains("orders.csv"), "{msg}");
    assert!(msg.contains("unit price"), "{msg}");
    assert!(
        msg.contains("lineitemprice") && msg.contains("originalunitprice"),
        "{msg}"
    );
}

#[tokio::test]
async fn bad_rows_are_reported_with_file_line_column_and_value_and_valid_rows_kept() {
    let db = TestDb::new().await;
    let csv = "\
order_id,created_at,quantity,unit_price,sku
1,2024-01-01 10:00:00,1,5.00,A
2,yesterday,1,5.00,B
3,2024-01-02 10:00:00,two,5.00,C
4,2024-01-03 10:00:00,1,-5.00,D
5,2024-01-04 10:00:00,1,five,E
6,2024-01-05 10:00:00,1,5.00,
7,2024-01-06 10:00:00,1,5.00,G
";
    let out = db.ingest_ok("s", orders(db.file("orders.csv", csv))).await;
    let r = &out.report;
    assert_eq!((r.rows_read, r.rows_kept), (7, 2));
    assert_eq!(r.orders, 2);
    let counts: Vec<(&str, u64)> = r.rejected.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        counts,
        [
            ("bad_date", 1),
            ("bad_price", 1),
            ("bad_quantity", 1),
            ("negative_price", 1),
            ("no_product_reference", 1)
        ]
    );
    assert!(
        error_line(&out, "yesterday")
            .contains("orders.csv:3: created_at \"yesterday\": not a date and time (accepted:")
    );
    assert!(
        error_line(&out, "two").ends_with("orders.csv:4: quantity \"two\": not a whole number")
    );
    assert!(
        error_line(&out, "-5.00")
            .ends_with("orders.csv:5: unit_price \"-5.00\": a price cannot be negative")
    );
    assert!(
        error_line(&out, "five")
            .ends_with("orders.csv:6: unit_price \"five\": not a decimal amount")
    );
    assert!(error_line(&out, "names no product").contains("orders.csv:7:"));
}

#[tokio::test]
async fn non_utf8_bytes_reject_the_row_and_name_the_byte() {
    let db = TestDb::new().await;
    let mut bytes =
        b"order_id,created_at,quantity,unit_price,title\n1,2024-01-01,1,5.00,Caf".to_vec();
    bytes.push(0xE9); // Latin-1 'é'
    bytes.extend_from_slice(b" Mug\n2,2024-01-02,1,5.00,Tea\n");
    let out = db
        .ingest_ok("s", orders(db.bytes_file("latin1.csv", &bytes)))
        .await;
    assert_eq!(out.report.rows_kept, 1);
    assert_eq!(out.report.rejected.get("not_utf8"), Some(&1));
    let line = error_line(&out, "UTF-8");
    assert!(line.contains("latin1.csv:2: title"), "{line}");
    assert!(line.contains("0xe9"), "{line}");
}

#[tokio::test]
async fn conflicting_duplicates_of_a_catalog_id_keep_the_later_row_and_name_both_lines() {
    let db = TestDb::new().await;
    let csv = "\
Handle,Title,Variant SKU,Variant Price
mug,Mug,MUG-1,5.00
cup,Cup,MUG-1,6.00
bowl,Bowl,BOWL-1,7.00
bowl,Bowl,BOWL-1,7.00
";
    let out = db
        .ingest_ok("s", catalog(db.file("products.csv", csv)))
        .await;
    let r = &out.report;
    assert_eq!(r.rejected.get("conflicting_duplicate_id"), Some(&1));
    assert_eq!(r.dropped.get("identical_duplicate"), Some(&1));
    assert_eq!(r.products, 2);
    let line = error_line(&out, "same catalog id");
    assert!(line.contains("products.csv:2:"), "{line}");
    assert!(line.contains("line 3 wins"), "{line}");
    let title: String = sqlx::query_scalar("SELECT title FROM products WHERE variant_id = 'MUG-1'")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(title, "Cup");
}

#[tokio::test]
async fn negative_and_unparseable_catalog_prices_are_rejected_and_bad_optional_values_ignored() {
    let db = TestDb::new().await;
    let csv = "\
Handle,Title,Variant SKU,Variant Price,Cost per item,Variant Inventory Qty,Status
a,A,A1,-3.00,,,
b,B,B1,abc,,,
c,C,C1,4.00,n/a,lots,sold
";
    let out = db
        .ingest_ok("s", catalog(db.file("products.csv", csv)))
        .await;
    let r = &out.report;
    assert_eq!(r.rejected.get("negative_price"), Some(&1));
    assert_eq!(r.rejected.get("bad_price"), Some(&1));
    assert_eq!(r.products, 1);
    for key in ["bad_cost", "bad_inventory", "bad_status"] {
        assert_eq!(r.ignored_values.get(key), Some(&1), "{key}");
    }
    assert!(error_line(&out, "n/a").contains("products.csv:4: Cost per item \"n/a\""));
}

#[tokio::test]
async fn malformed_json_names_the_line() {
    let db = TestDb::new().await;
    let path = db.file("orders.json", "{\"orders\": [\n {\"id\": 1,\n}\n");
    let msg = ingest_error(db.ingest("s", orders(path)).await);
    assert!(msg.contains("orders.json:3"), "{msg}");
    assert!(msg.contains("not valid JSON"), "{msg}");
}

#[tokio::test]
async fn json_records_with_bad_fields_are_named_by_path() {
    let db = TestDb::new().await;
    let json = r#"{"orders": [
      {"id": 1, "created_at": "2024-01-01T00:00:00Z", "line_items": [{"sku": "A", "quantity": 1, "price": "x"}, {"sku": "B", "quantity": 1, "price": "2.00"}]},
      {"id": 2, "created_at": "not a date", "line_items": [{"sku": "A", "quantity": 1, "price": "1.00"}]}
    ]}"#;
    let out = db
        .ingest_ok("s", orders(db.file("orders.json", json)))
        .await;
    assert_eq!(out.report.orders, 1);
    assert_eq!(out.report.rows_kept, 1);
    assert!(error_line(&out, "\"x\"").contains("orders.json: orders[0].line_items[0].price"));
    assert!(error_line(&out, "not a date").contains("orders[1].created_at"));
}

#[tokio::test]
async fn usage_errors_say_what_to_pass() {
    let db = TestDb::new().await;
    let msg = ingest_error(db.ingest("s", IngestSources::default()).await);
    assert!(
        msg.contains("orders file") && msg.contains("catalog file") && !msg.contains("--"),
        "{msg}"
    );
    let variants = db.file("v.csv", "id,product_id,price\n1,2,3\n");
    let msg = ingest_error(
        db.ingest(
            "s",
            IngestSources::new([
                IngestSource::file(FileRole::Variants, variants),
                IngestSource::file(
                    FileRole::Orders,
                    db.file("o.csv", "order_id,created_at,quantity,unit_price,sku\n"),
                ),
            ])
            .unwrap(),
        )
        .await,
    );
    assert!(msg.contains("as the catalog"), "{msg}");
    let missing = db.dir.path().join("nope.csv");
    let err = db.ingest("s", orders(missing)).await.err().unwrap();
    assert!(
        matches!(err, AppError::Ingest(IngestError::Io { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("nope.csv"));
}

#[tokio::test]
async fn control_and_bidi_override_characters_never_reach_a_stored_title() {
    let db = TestDb::new().await;
    let csv = "Handle,Title,Variant SKU,Variant Price\n\
a,\"Mug\u{0}\u{1b}[2J\",A1,4.00\n\
b,\"Tea \u{202E}gpj.exe\u{202C} tin\",B1,5.00\n\
c,Plain kettle,C1,6.00\n";
    let out = db
        .ingest_ok("s", catalog(db.file("products.csv", csv)))
        .await;
    assert_eq!(out.report.products, 3);
    assert_eq!(
        out.report.ignored_values.get("control_characters_removed"),
        Some(&2)
    );
    let data = db
        .store
        .load(&bundleforge::domain::StoreId::parse("s").unwrap())
        .await
        .unwrap();
    let mut titles: Vec<&str> = data.products.iter().map(|p| p.title.as_str()).collect();
    titles.sort();
    assert_eq!(titles, ["Mug[2J", "Plain kettle", "Tea gpj.exe tin"]);
}

#[tokio::test]
async fn a_placeholder_date_is_rejected_with_its_row_and_moves_no_window() {
    let db = TestDb::new().await;
    let csv = "\
order_id,created_at,quantity,unit_price,sku
1,2026-03-01 10:00:00,1,4.00,A1
2,9999-12-31,1,4.00,A1
3,0000-01-01,1,4.00,B1
4,next tuesday,1,4.00,B1
5,2026-03-02 10:00:00,1,5.00,B1
";
    let out = db.ingest_ok("s", orders(db.file("orders.csv", csv))).await;
    assert_eq!(out.report.rejected.get("bad_date"), Some(&3));
    assert_eq!(out.report.orders, 2);
    let line = error_line(&out, "9999-12-31");
    assert!(
        line.contains("orders.csv:3") && line.contains("outside 1970–2100"),
        "{line}"
    );
    let line = error_line(&out, "next tuesday");
    assert!(line.contains("accepted: 2024-03-05 14:22:10"), "{line}");
    let stats = bundleforge::stats::compute(
        &db.store
            .load(&bundleforge::domain::StoreId::parse("s").unwrap())
            .await
            .unwrap(),
        None,
        &db.settings,
    )
    .unwrap();
    assert_eq!(stats.as_of, "2026-03-02");
}

#[tokio::test]
async fn a_crlf_file_reports_the_same_line_numbers_as_an_lf_file() {
    let db = TestDb::new().await;
    let lf = "order_id,created_at,quantity,unit_price,sku\n\
1,2026-03-01,1,4.00,A1\n\
2,2026-03-01,x,4.00,A1\n\
3,2026-03-01,1,4.00,A1\n\
4,2026-03-01,y,4.00,A1\n";
    let crlf = lf.replace('\n', "\r\n");
    for (name, text) in [("lf.csv", lf.to_owned()), ("crlf.csv", crlf)] {
        let out = db.ingest_ok("s", orders(db.file(name, &text))).await;
        let x = error_line(&out, "\"x\"");
        let y = error_line(&out, "\"y\"");
        assert!(x.contains(&format!("{name}:3:")), "{x}");
        assert!(y.contains(&format!("{name}:5:")), "{y}");
    }
}

#[tokio::test]
async fn a_decimal_comma_file_is_read_as_one_and_says_so() {
    let db = TestDb::new().await;
    // A European export: decimal commas, grouping points, day-first dates.
    let csv = "\
order_id,created_at,quantity,unit_price,sku,currency
1,13/01/2025 10:00,1,\"0,99\",A,EUR
1,13/01/2025 10:00,2,\"12,50\",B,EUR
2,01/03/2025 09:00,1,\"1.234,56\",C,EUR
3,02/03/2025 09:00,1,12.50,A,EUR
4,02/03/2025 09:00,1,\"2,5 €\",A,EUR
";
    let out = db.ingest_ok("eu", orders(db.file("eu.csv", csv))).await;
    let f = &out.report.files[0];
    assert_eq!(
        f.conventions.decimal_mark,
        bundleforge::domain::DecimalMark::Comma
    );
    assert_eq!(
        f.conventions.decimal_mark_from.as_deref(),
        Some("line 2: \"0,99\"")
    );
    assert_eq!(
        f.conventions.slash_dates,
        Some(bundleforge::ingest::DateOrder::DayFirst)
    );
    assert_eq!(
        f.conventions.slash_dates_from.as_deref(),
        Some("line 2: \"13/01/2025 10:00\"")
    );
    let price = |order: &str, sku: &str| {
        let pool = db.store.pool().clone();
        let (order, sku) = (order.to_owned(), sku.to_owned());
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT unit_price_minor FROM order_lines WHERE order_id = ? AND ref_sku = ?",
            )
            .bind(order)
            .bind(sku)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(price("1", "A").await, 99);
    assert_eq!(price("1", "B").await, 1250);
    assert_eq!(price("2", "C").await, 123_456);
    assert_eq!(price("4", "A").await, 250);
    // 01/03/2025 is the first of March in a day-first file.
    let data = db
        .store
        .load(&bundleforge::domain::StoreId::parse("eu").unwrap())
        .await
        .unwrap();
    let o2 = data.orders.iter().find(|o| o.order_id == "2").unwrap();
    assert_eq!(o2.created_at.to_rfc3339(), "2025-03-01T09:00:00+00:00");
    // "12.50" in a decimal-comma file is not an amount: rejected, with the reason.
    assert_eq!(out.report.rejected.get("bad_price"), Some(&1));
    let e = error_line(&out, "eu.csv:5:");
    assert!(
        e.contains("\"12.50\"") && e.contains("three digits") && e.contains("','"),
        "{e}"
    );
}

#[tokio::test]
async fn amounts_are_exact_in_the_stores_currency() {
    let db = TestDb::new().await;
    let csv = "\
order_id,created_at,quantity,unit_price,sku
1,2025-01-13,1,12.345,A
2,2025-01-13,1,€12,A
3,2025-01-13,1,¥500,A
4,2025-01-13,1,\"1,23,456\",A
5,2025-01-13,1,\"1,234.50\",A
6,2025-01-13,1,$3.10,A
7,1/13/2025,1,3.10,A
";
    let out = db.ingest_ok("us", orders(db.file("us.csv", csv))).await;
    let r = &out.report;
    assert_eq!(r.rejected.get("bad_price"), Some(&4), "{:?}", r.errors);
    assert_eq!(r.orders, 3);
    let reason = |line: u32| error_line(&out, &format!("us.csv:{line}:"));
    assert!(
        reason(2).contains("USD has 2 decimals, the amount has 3"),
        "{}",
        reason(2)
    );
    assert!(
        reason(3).contains("marked €, but the store's prices are in USD"),
        "{}",
        reason(3)
    );
    assert!(reason(4).contains("marked ¥"), "{}", reason(4));
    assert!(reason(5).contains("three digits"), "{}", reason(5));
    let f = &r.files[0];
    assert_eq!(
        f.conventions.decimal_mark,
        bundleforge::domain::DecimalMark::Point
    );
    assert_eq!(
        f.conventions.slash_dates,
        Some(bundleforge::ingest::DateOrder::MonthFirst)
    );

    // A UCI-shaped file written with decimal commas is read at its real prices.
    let uci = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,HEART,6,01/12/2010 08:26,\"2,55\",17850,United Kingdom
536365,71053,LANTERN,6,01/12/2010 08:26,\"3,39\",17850,United Kingdom
536366,71053,LANTERN,6,13/12/2010 08:26,\"3,39\",17850,United Kingdom
";
    let out = db.ingest_ok("uci", orders(db.file("uci.csv", uci))).await;
    assert_eq!(out.report.rejected_total(), 0, "{:?}", out.report.errors);
    let data = db
        .store
        .load(&bundleforge::domain::StoreId::parse("uci").unwrap())
        .await
        .unwrap();
    let heart = data
        .products
        .iter()
        .find(|p| p.variant_id == "85123A")
        .unwrap();
    assert_eq!(heart.price.minor, 255);
    let first = data.orders.iter().find(|o| o.order_id == "536365").unwrap();
    assert_eq!(first.created_at.to_rfc3339(), "2010-12-01T08:26:00+00:00");
}

#[tokio::test]
async fn quantities_and_amounts_past_their_ceilings_are_rejected_not_wrapped() {
    let db = TestDb::new().await;
    let csv = "\
order_id,created_at,quantity,unit_price,sku
1,2025-01-13,9223372036854775807,5.00,A
2,2025-01-13,1000001,5.00,A
3,2025-01-13,1000000,99999999999.99,A
4,2025-01-13,2,99999999999999999999,A
5,2025-01-13,1000000,9999999999.99,A
6,2025-01-13,1000000,9999999999.99,A
";
    let files = IngestSources::from_paths(
        Some(db.file("big.csv", csv)),
        Some(db.file("catalog.csv", "sku,title,price\nA,Thing,5.00\n")),
        None,
        None,
    );
    let out = db.ingest_ok("s", files).await;
    let r = &out.report;
    assert_eq!(
        r.rejected.get("quantity_too_large"),
        Some(&2),
        "{:?}",
        r.errors
    );
    assert_eq!(r.rejected.get("bad_price"), Some(&2), "{:?}", r.errors);
    let e = error_line(&out, "big.csv:2:");
    assert!(e.contains("more than 1000000 units"), "{e}");
    let e = error_line(&out, "big.csv:5:");
    assert!(
        e.contains("too large") && !e.contains("not a decimal"),
        "{e}"
    );
    // The two lines at the ceilings sum past i64 only if arithmetic wraps.
    let stats = bundleforge::app::stats(
        &db.store,
        &bundleforge::domain::StoreId::parse("s").unwrap(),
        None,
        &bundleforge::config::Settings::defaults().unwrap(),
    )
    .await
    .unwrap();
    let top = &stats.top_sellers[0];
    assert_eq!(top.units, 2_000_000);
    assert_eq!(top.revenue_minor, 2 * 1_000_000 * 999_999_999_999);
}

#[tokio::test]
async fn non_utf8_bytes_in_an_optional_column_are_ignored_and_the_row_kept() {
    let db = TestDb::new().await;
    let mut orders_csv =
        b"order_id,created_at,quantity,unit_price,sku,title\n1,2024-01-01,1,5.00,MUG-1,Caf"
            .to_vec();
    orders_csv.push(0xE9);
    orders_csv.extend_from_slice(b" Mug\n");
    let mut catalog_csv =
        b"Handle,Title,Body (HTML),Vendor,Variant SKU,Variant Price\nmug,Mug,<p>Caf".to_vec();
    catalog_csv.push(0xE9);
    catalog_csv.extend_from_slice(b"</p>,Potter,MUG-1,5.00\n");
    let files = IngestSources::from_paths(
        Some(db.bytes_file("orders.csv", &orders_csv)),
        Some(db.bytes_file("products.csv", &catalog_csv)),
        None,
        None,
    );
    let out = db.ingest_ok("s", files).await;
    let r = &out.report;
    assert_eq!(r.rejected_total(), 0, "{:?}", r.errors);
    assert_eq!((r.rows_kept, r.orders, r.products), (2, 1, 1));
    assert_eq!(r.ignored_values.get("not_utf8"), Some(&2));
    let line = error_line(&out, "products.csv:2:");
    assert!(
        line.contains("Body (HTML)") && line.contains("value ignored, row kept"),
        "{line}"
    );
    let data = db
        .store
        .load(&bundleforge::domain::StoreId::parse("s").unwrap())
        .await
        .unwrap();
    assert_eq!(data.products[0].vendor.as_deref(), Some("Potter"));
    assert_eq!(data.products[0].description, "");
    assert!(
        data.orders[0].lines[0].item.is_some(),
        "the line joined its product"
    );
}

#[tokio::test]
async fn endless_and_enormous_inputs_end_with_an_error_not_the_machine() {
    let db = TestDb::new().await;
    // No line ever ends.
    let msg = ingest_error(db.ingest("s", orders("/dev/zero".into())).await);
    assert!(
        msg.contains("/dev/zero") && msg.contains("longer than 8 MiB"),
        "{msg}"
    );
    // A 9 MiB title from a small gzip: the row is refused before it is held whole.
    let mut csv = b"order_id,created_at,quantity,unit_price,title\n1,2024-01-01,1,5.00,Tea\n2,2024-01-01,1,5.00,".to_vec();
    csv.extend(std::iter::repeat_n(b'A', 9 << 20));
    csv.extend_from_slice(b"\n");
    let gz = crate::support::gzip(&csv);
    assert!(gz.len() < 100 << 10);
    let msg = ingest_error(
        db.ingest("s", orders(db.bytes_file("bomb.csv.gz", &gz)))
            .await,
    );
    assert!(
        msg.contains("bomb.csv.gz") && msg.contains("row at line 3"),
        "{msg}"
    );
    // One value over the per-value limit rejects its row; the others are kept.
    let mut csv = b"order_id,created_at,quantity,unit_price,title\n1,2024-01-01,1,5.00,Tea\n2,2024-01-01,1,5.00,\"".to_vec();
    csv.extend(std::iter::repeat_n(b'B', 2 << 20));
    csv.extend_from_slice(b"\"\n3,2024-01-01,1,5.00,Mug\n");
    let out = db
        .ingest_ok("s", orders(db.bytes_file("long.csv", &csv)))
        .await;
    assert_eq!(out.report.rejected.get("value_too_long"), Some(&1));
    assert_eq!(out.report.orders, 2);
    let e = error_line(&out, "long.csv:3:");
    assert!(e.contains("longer than 1024 KiB"), "{e}");
}

#[tokio::test]
async fn semicolon_and_tab_separated_files_are_read_as_such() {
    let db = TestDb::new().await;
    let semi = "order_id;created_at;quantity;unit_price;sku\n1;13/01/2025;2;\"12,50\";A\n1;13/01/2025;1;3,00;B\n";
    let out = db.ingest_ok("eu", orders(db.file("semi.csv", semi))).await;
    assert_eq!(out.report.rejected_total(), 0, "{:?}", out.report.errors);
    assert_eq!(out.report.order_lines, 2);
    assert_eq!(out.report.files[0].conventions.separator, ";");
    let tab = "order_id\tcreated_at\tquantity\tunit_price\tsku\n2\t2025-01-13\t1\t4.50\tA\n";
    let out = db.ingest_ok("eu", orders(db.file("tab.tsv", tab))).await;
    assert_eq!(out.report.rejected_total(), 0, "{:?}", out.report.errors);
    assert_eq!(out.report.files[0].conventions.separator, "\t");
    assert_eq!(
        db.count("SELECT SUM(quantity * unit_price_minor) FROM order_lines")
            .await,
        2 * 1250 + 300 + 450
    );
}

#[tokio::test]
async fn a_duplicated_header_and_a_short_row_are_named_as_such() {
    let db = TestDb::new().await;
    let dup = "order_id,sku,quantity,unit_price,created_at,SKU\n1,A,1,5.00,2024-01-05,B\n";
    let msg = ingest_error(db.ingest("s", orders(db.file("dup.csv", dup))).await);
    assert!(
        msg.contains("dup.csv") && msg.contains("\"sku\" appears twice (columns 2 and 6)"),
        "{msg}"
    );
    // A line cut short, and one with a separator inside an unquoted title.
    let csv = "order_id,title,quantity,unit_price,created_at\n1,Mug,1,5.00,2024-01-05\n2,Mug,1\n3,Mug, large,1,5.00,2024-01-05\n";
    let out = db.ingest_ok("s", orders(db.file("short.csv", csv))).await;
    assert_eq!(out.report.rejected.get("wrong_field_count"), Some(&2));
    assert!(error_line(&out, "short.csv:3:").contains("the row has 3 fields, the header has 5"));
    assert!(error_line(&out, "short.csv:4:").contains("the row has 6 fields"));
    assert_eq!(out.report.orders, 1);
}

#[tokio::test]
async fn a_line_naming_a_title_two_products_share_stays_unjoined_and_says_so() {
    let db = TestDb::new().await;
    let catalog_csv = "sku,title,price\nTB-1,Tote Bag,10.00\nTB-2,Tote Bag,12.00\nMUG,Mug,8.00\n";
    let orders_csv = "order_id,created_at,quantity,unit_price,title\n1,2024-01-05,1,10.00,Tote Bag\n1,2024-01-05,1,8.00,Mug\n";
    // Orders first, catalog later (the stored lines' join), and both at once.
    db.ingest_ok("later", orders(db.file("o.csv", orders_csv)))
        .await;
    db.ingest_ok("later", catalog(db.file("c.csv", catalog_csv)))
        .await;
    let files = IngestSources::from_paths(
        Some(db.file("o2.csv", orders_csv)),
        Some(db.file("c2.csv", catalog_csv)),
        None,
        None,
    );
    let out = db.ingest_ok("once", files).await;
    assert_eq!(out.report.lines_with_ambiguous_title, 1);
    assert!(
        out.text().contains("several catalog products share"),
        "{}",
        out.text()
    );
    for store in ["later", "once"] {
        let joined = db
            .count(&format!(
                "SELECT COUNT(*) FROM order_lines WHERE store_id = '{store}' AND item_id IS NOT NULL"
            ))
            .await;
        assert_eq!(joined, 1, "{store}: only the mug joins");
    }
}

#[tokio::test]
async fn an_order_dated_far_after_the_rest_of_its_file_is_rejected() {
    let db = TestDb::new().await;
    let mut csv = String::from("order_id,created_at,quantity,unit_price,sku\n");
    for i in 1..=30 {
        csv.push_str(&format!("{i},2024-03-{:02},1,5.00,A\n", i % 28 + 1));
    }
    csv.push_str("99,2094-03-05,1,5.00,A\n");
    let out = db.ingest_ok("s", orders(db.file("typo.csv", &csv))).await;
    assert_eq!(out.report.rejected.get("date_far_ahead_of_file"), Some(&1));
    assert_eq!(out.report.orders, 30);
    let e = error_line(&out, "order 99");
    assert!(
        e.contains("2094-03-05") && e.contains("latest 2024-03-28"),
        "{e}"
    );
    // A small store's quiet year is not a typo.
    let two = "order_id,created_at,quantity,unit_price,sku\n1,2023-01-05,1,5.00,A\n2,2024-06-05,1,5.00,A\n";
    let out = db.ingest_ok("t", orders(db.file("two.csv", two))).await;
    assert_eq!(out.report.orders, 2);
}

#[tokio::test]
async fn a_json_value_past_the_per_value_limit_rejects_its_record_as_a_csv_one_does() {
    let db = TestDb::new().await;
    let long = "B".repeat(2 << 20);
    let orders_json = format!(
        r#"{{"orders": [
      {{"id": 1, "created_at": "2024-01-01T00:00:00Z", "line_items": [
        {{"sku": "A", "quantity": 1, "price": "2.00", "title": "{long}"}},
        {{"sku": "B", "quantity": 1, "price": "3.00"}}]}},
      {{"id": 2, "created_at": "2024-01-01T00:00:00Z", "line_items": [
        {{"sku": "A", "quantity": 1, "price": "2.00"}}]}}
    ]}}"#
    );
    let out = db
        .ingest_ok("s", orders(db.file("orders.json", &orders_json)))
        .await;
    assert_eq!(
        out.report.rejected.get("value_too_long"),
        Some(&1),
        "{:?}",
        out.report.errors
    );
    assert_eq!((out.report.orders, out.report.rows_kept), (2, 2));
    let e = error_line(&out, "orders[0].line_items[0].title");
    assert!(
        e.contains("orders.json: orders[0].line_items[0].title \"BBBB")
            && e.contains("longer than 1024 KiB"),
        "{e}"
    );

    // A product's description: the product and its variants go, the others stay.
    let products_json = format!(
        r#"{{"products": [
      {{"id": 7, "title": "Mug", "body_html": "<p>{long}</p>",
        "variants": [{{"id": 71, "price": "5.00"}}, {{"id": 72, "price": "6.00"}}]}},
      {{"id": 8, "title": "Tea", "variants": [{{"id": 81, "price": "4.00"}}]}}
    ]}}"#
    );
    let out = db
        .ingest_ok("s", catalog(db.file("products.json", &products_json)))
        .await;
    assert_eq!(
        out.report.rejected.get("value_too_long"),
        Some(&2),
        "{:?}",
        out.report.errors
    );
    assert_eq!(out.report.products, 1);
    let e = error_line(&out, "products[0].body_html");
    assert!(
        e.contains("products.json: products[0].body_html") && e.contains("longer than 1024 KiB"),
        "{e}"
    );
}

#[tokio::test]
async fn a_sign_after_the_currency_is_a_negative_price_in_csv_and_json() {
    let db = TestDb::new().await;
    let csv = "\
order_id,created_at,quantity,unit_price,sku
1,2025-01-13,1,-3.00,A
2,2025-01-13,1,$-3.00,A
3,2025-01-13,1,USD -3,A
4,2025-01-13,1,-$3.00,A
5,2025-01-13,1,$3.00,A
6,2025-01-13,1,USD 3,A
";
    let out = db.ingest_ok("s", orders(db.file("signs.csv", csv))).await;
    let r = &out.report;
    assert_eq!(r.rejected.get("negative_price"), Some(&4), "{:?}", r.errors);
    assert_eq!(r.orders, 2);
    for line in 2..=5 {
        let e = error_line(&out, &format!("signs.csv:{line}:"));
        assert!(e.contains("cannot be negative"), "{e}");
    }

    let json = r#"{"orders": [
      {"id": 11, "created_at": "2025-01-13T00:00:00Z", "line_items": [{"sku": "A", "quantity": 1, "price": "$-3.00"}]},
      {"id": 12, "created_at": "2025-01-13T00:00:00Z", "line_items": [{"sku": "A", "quantity": 1, "price": "USD -3"}]},
      {"id": 13, "created_at": "2025-01-13T00:00:00Z", "line_items": [{"sku": "A", "quantity": 1, "price": "-$3.00"}]},
      {"id": 14, "created_at": "2025-01-13T00:00:00Z", "line_items": [{"sku": "A", "quantity": 1, "price": "$3.00"}]}
    ]}"#;
    let out = db.ingest_ok("j", orders(db.file("signs.json", json))).await;
    let r = &out.report;
    assert_eq!(r.rejected.get("negative_price"), Some(&3), "{:?}", r.errors);
    assert_eq!(r.orders, 1);

    // Nothing below zero was stored.
    for store in ["s", "j"] {
        let data = db
            .store
            .load(&bundleforge::domain::StoreId::parse(store).unwrap())
            .await
            .unwrap();
        assert!(!data.orders.is_empty(), "{store}");
        assert!(
            data.orders
                .iter()
                .flat_map(|o| &o.lines)
                .all(|l| l.unit_price_minor >= 0),
            "{store}"
        );
    }
}

/// Many bad rows: the counts stay exact, the report keeps only the first rows for the
/// rejected-rows file, and a rejected-rows file still gets every one, in line order —
/// a row judged after the read, and the valid row sent along with its order, too.
#[tokio::test]
async fn many_rejected_rows_are_counted_exactly_kept_bounded_and_all_written_to_the_file() {
    use bundleforge::ingest::rejected::{self, RejectedError};
    const BAD: u64 = 50_000;
    const KEPT: usize = 25;
    let mut db = TestDb::new().await;
    assert_eq!(
        db.settings.ingest.max_rejected_rows_kept,
        rejected::DEFAULT_MAX_REJECTED_ROWS_KEPT
    );
    db.settings.ingest.max_rejected_rows_kept = KEPT;
    // Order 1's first row is valid and comes along; its last row, at the end, has a
    // price read only once the order is whole. Between them, one order per row with a
    // quantity that is no number.
    let mut csv =
        String::from("order_id,created_at,quantity,unit_price,sku\n1,2024-01-01,1,5.00,A\n");
    for i in 0..BAD {
        csv.push_str(&format!("{},2024-01-02,x{i},5.00,B\n", i + 2));
    }
    csv.push_str("1,2024-01-01,1,ten,C\n");
    let path = db.bytes_file("bad.csv.gz", &crate::support::gzip(csv.as_bytes()));

    let out = db.ingest_ok("s", orders(path.clone())).await;
    let r = &out.report;
    assert_eq!(r.rejected.get("bad_quantity"), Some(&BAD));
    assert_eq!(r.rejected.get("bad_price"), Some(&1));
    assert_eq!(r.error_count, BAD + 1);
    assert_eq!(r.errors.len(), bundleforge::ingest::MAX_REPORTED_ERRORS);
    assert_eq!((r.rows_read, r.rows_kept, r.orders), (BAD + 2, 1, 1));
    // Rows for the file: the rejected ones and the valid one sent along.
    assert_eq!(r.rejected_rows.listed().len(), KEPT);
    let not_listed = BAD + 2 - KEPT as u64;
    assert_eq!(r.rejected_rows_not_listed, not_listed);
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["rejected_rows_not_listed"], not_listed);
    assert!(json.get("errors").is_some() && json.get("rejected_rows").is_none());
    // A file of the first rows only would not be whole: refused, nothing written.
    let dest = db.dir.path().join("fix.csv");
    let refused = rejected::write(r, &orders(path.clone()), &dest, false);
    assert!(
        matches!(refused, Err(RejectedError::NotAllKept { .. })),
        "{refused:?}"
    );
    assert!(!dest.exists());

    // Every row kept, as `ingest --rejected` asks: the file holds them all.
    let options = bundleforge::app::IngestOptions {
        keep_every_rejected_row: true,
    };
    let id = bundleforge::domain::StoreId::parse("t").unwrap();
    let out = bundleforge::app::ingest_with(
        &db.store,
        &id,
        orders(path.clone()),
        &db.settings,
        std::sync::Arc::new(bundleforge::ingest::NoProgress),
        options,
    )
    .await
    .unwrap();
    let r = &out.report;
    assert_eq!(r.rejected.get("bad_quantity"), Some(&BAD));
    assert_eq!((r.rows_kept, r.orders), (1, 1));
    assert_eq!(r.rejected_rows_not_listed, 0);
    assert!(r.rejected_rows.keeps_all() && r.rejected_rows.listed().is_empty());
    let files = rejected::write(r, &orders(path), &dest, false).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!((files[0].rows, files[0].rejected), (BAD + 2, BAD + 1));
    let text = std::fs::read_to_string(&dest).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, BAD + 3);
    assert_eq!(
        lines[0],
        "order_id,created_at,quantity,unit_price,sku,rejected_reason"
    );
    assert_eq!(lines[1], "1,2024-01-01,1,5.00,A,");
    for (i, l) in lines[2..lines.len() - 1].iter().enumerate() {
        let want = format!(
            "{},2024-01-02,x{i},5.00,B,quantity: not a whole number",
            i + 2
        );
        assert_eq!(*l, want);
    }
    let last = lines[lines.len() - 1];
    assert!(
        last.starts_with("1,2024-01-01,1,ten,C,unit_price: "),
        "{last}"
    );
}
