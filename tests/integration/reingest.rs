//! Re-ingesting a corrupted copy of a stored file (a bad cell, a line cut short, a
//! duplicated header) never removes or changes a stored valid row.

use std::collections::BTreeSet;

use bundleforge::ingest::IngestSources;
use proptest::prelude::*;

use crate::support::TestDb;

/// One order line: SKU index, quantity, price in cents.
type Line = (usize, u8, u32);

/// A valid store: a catalog of SKUs and orders of lines over them.
#[derive(Debug, Clone)]
struct Shop {
    /// (price in cents) per SKU `S0`, `S1`, …
    prices: Vec<u32>,
    /// Per order: its day (1–9) and its lines.
    orders: Vec<(u8, Vec<Line>)>,
}

fn shop() -> impl Strategy<Value = Shop> {
    (2usize..6).prop_flat_map(|n| {
        let line = (0..n, 1u8..6, 100u32..5000);
        let order = (1u8..10, prop::collection::vec(line, 1..4));
        (
            prop::collection::vec(100u32..5000, n),
            prop::collection::vec(order, 1..8),
        )
            .prop_map(|(prices, orders)| Shop { prices, orders })
    })
}

#[derive(Debug, Clone)]
enum Corruption {
    /// Replace a typed cell (row, which of the file's typed columns) with text it
    /// does not accept. (Any text is a valid title or SKU: changing one is an edit.)
    BadCell(usize, usize),
    /// Cut a data line short, keeping this share of its characters (at least one).
    Truncated(usize, f64),
    /// Give a column the header of another.
    DuplicatedHeader(usize, usize),
}

fn corruption() -> impl Strategy<Value = (bool, Corruption)> {
    (
        any::<bool>(),
        prop_oneof![
            (0usize..64, 0usize..5).prop_map(|(r, c)| Corruption::BadCell(r, c)),
            (0usize..64, 0.0f64..0.999).prop_map(|(r, k)| Corruption::Truncated(r, k)),
            (0usize..5, 0usize..5).prop_map(|(a, b)| Corruption::DuplicatedHeader(a, b)),
        ],
    )
}

/// The date is the last column, days 01–09: a date cut short is never a valid date.
fn orders_csv(shop: &Shop) -> String {
    let mut s = String::from("order_id,sku,quantity,unit_price,created_at\n");
    for (i, (day, lines)) in shop.orders.iter().enumerate() {
        for (sku, q, cents) in lines {
            s.push_str(&format!(
                "{},S{sku},{q},{}.{:02},2024-03-0{day}\n",
                i + 1,
                cents / 100,
                cents % 100
            ));
        }
    }
    s
}

fn catalog_csv(shop: &Shop) -> String {
    let mut s = String::from("sku,title,price,vendor,product_type\n");
    for (i, cents) in shop.prices.iter().enumerate() {
        s.push_str(&format!(
            "S{i},Product {i},{}.{:02},Maker,Kind\n",
            cents / 100,
            cents % 100
        ));
    }
    s
}

fn corrupt(csv: &str, c: &Corruption) -> String {
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    let rows = lines.len() - 1;
    match *c {
        Corruption::BadCell(r, col) => {
            let r = 1 + r % rows;
            let mut cells: Vec<String> = lines[r].split(',').map(str::to_owned).collect();
            // Orders: quantity, unit price, date; catalog: price.
            let typed: &[usize] = if lines[0].starts_with("order_id") {
                &[2, 3, 4]
            } else {
                &[2]
            };
            let col = typed[col % typed.len()];
            cells[col] = "#?!".into();
            lines[r] = cells.join(",");
        }
        Corruption::Truncated(r, keep) => {
            let r = 1 + r % rows;
            // Orders end in a date, whose every prefix is invalid: cut anywhere. A
            // catalog ends in free text ("Kind" cut to "Ki" is a valid edit): cut
            // before its last field, so fields are lost.
            let len = if lines[0].starts_with("order_id") {
                lines[r].len()
            } else {
                lines[r].rfind(',').unwrap_or(1) + 1
            };
            let keep = ((len as f64 * keep) as usize).clamp(1, len - 1);
            lines[r].truncate(keep);
        }
        Corruption::DuplicatedHeader(a, b) => {
            let mut cells: Vec<String> = lines[0].split(',').map(str::to_owned).collect();
            let (a, b) = (a % cells.len(), b % cells.len());
            if a != b {
                cells[a] = cells[b].clone();
            }
            lines[0] = cells.join(",");
        }
    }
    lines.join("\n") + "\n"
}

/// Every stored row, as text, for before/after comparison.
async fn stored_rows(db: &TestDb) -> BTreeSet<String> {
    let pool = db.store.pool();
    let mut rows = BTreeSet::new();
    for sql in [
        "SELECT 'order ' || order_id || ' ' || created_at || ' ' || currency FROM orders",
        "SELECT 'line ' || order_id || ' ' || line_key || ' ' || quantity || ' ' || unit_price_minor || ' ' || COALESCE(item_id, '-') FROM order_lines",
        "SELECT 'product ' || variant_id || ' ' || title || ' ' || price_minor || ' ' || COALESCE(vendor, '-') || ' ' || COALESCE(product_type, '-') FROM products",
    ] {
        let found: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
        rows.extend(found);
    }
    rows
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn re_ingesting_a_corrupted_file_never_removes_or_changes_a_stored_valid_row(
        shop in shop(),
        (in_orders, c) in corruption(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (before, after, report) = rt.block_on(async {
            let db = TestDb::new().await;
            let (orders, catalog) = (orders_csv(&shop), catalog_csv(&shop));
            let files = IngestSources::from_paths(Some(db.file("orders.csv", &orders)), Some(db.file("catalog.csv", &catalog)), None, None);
            let first = db.ingest_ok("s", files).await;
            assert_eq!(first.report.rejected_total(), 0, "{:?}", first.report.errors);
            let before = stored_rows(&db).await;
            let files = if in_orders {
                IngestSources::from_paths(Some(db.file("orders2.csv", &corrupt(&orders, &c))), None, None, None)
            } else {
                IngestSources::from_paths(None, Some(db.file("catalog2.csv", &corrupt(&catalog, &c))), None, None)
            };
            // A file may now be unreadable as a whole (a header lost): also fine.
            let report = db.ingest("s", files).await.map(|o| o.report.rejected);
            (before, stored_rows(&db).await, report)
        });
        let lost: Vec<&String> = before.difference(&after).collect();
        prop_assert!(lost.is_empty(), "rows removed or changed: {:?}; report {:?}", lost, report);
    }
}
