//! `stats`: volume, tier, lists and every assumption in force.

use bundleforge::app;
use bundleforge::domain::StoreId;
use chrono::NaiveDate;

use crate::support::{TestDb, catalog, orders, repo_root};

#[tokio::test]
async fn assumptions_are_reported_for_what_the_data_does_not_say() {
    let db = TestDb::new().await;
    let products = "id,title,sku,price,cost\na,Mug,A,10.00,4.00\nb,Tea,B,5.00,\n";
    db.ingest_ok("s", catalog(db.file("p.csv", products))).await;
    let rows = "order_id,created_at,quantity,unit_price,sku\n1,2024-01-01,1,10.00,A\n2,2024-03-01,2,5.00,B\n";
    db.ingest_ok("s", orders(db.file("o.csv", rows))).await;
    let s = app::stats(&db.store, &StoreId::parse("s").unwrap(), None, &db.settings)
        .await
        .unwrap();
    let find = |field: &str| {
        s.assumed
            .iter()
            .filter(|a| a.field == field)
            .map(|a| (a.count, a.rule.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(find("cost")[0].0, 1);
    assert!(find("cost")[0].1.contains("0.50"));
    assert_eq!(find("inventory")[0].0, 2);
    assert_eq!(find("status")[0].0, 2);
    assert_eq!(find("launch_date")[0].0, 2);
    assert!(find("launch_date")[0].1.contains("first order date"));
    assert_eq!(find("category")[0].0, 2);
    assert_eq!(find("currency")[0].0, 2);
    assert!(find("currency")[0].1.contains("USD"));
    assert_eq!(s.as_of, "2024-03-01");
}

#[tokio::test]
async fn the_window_ends_at_as_of_and_never_the_wall_clock() {
    let db = TestDb::new().await;
    let small = repo_root().join("fixtures/stores/small");
    db.ingest_ok(
        "small",
        bundleforge::ingest::IngestSources::from_paths(
            Some(small.join("orders.csv")),
            Some(small.join("products.csv")),
            None,
            None,
        ),
    )
    .await;
    let id = StoreId::parse("small").unwrap();
    let s = app::stats(&db.store, &id, None, &db.settings)
        .await
        .unwrap();
    assert_eq!(s.as_of, "2026-06-30");
    assert!(s.orders_60d > 200 && s.orders_60d < 300, "{}", s.orders_60d);
    assert_eq!(serde_json::to_value(s.tier).unwrap(), "small");
    assert_eq!(s.weights.alpha, 0.6);
    // A year earlier: fewer orders in total, a different window.
    let earlier = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap();
    let e = app::stats(&db.store, &id, Some(earlier), &db.settings)
        .await
        .unwrap();
    assert_eq!(e.as_of, "2025-12-31");
    assert!(e.orders < s.orders);
    let json = serde_json::to_value(&s).unwrap();
    for key in [
        "orders",
        "order_lines",
        "products",
        "baskets",
        "multi_item_baskets",
        "avg_basket_size",
        "as_of",
        "orders_60d",
        "tier",
        "weights",
        "top_sellers",
        "slow_movers",
        "new_launches",
        "stock_cover",
        "assumed",
    ] {
        assert!(json.get(key).is_some(), "stats JSON lacks {key}");
    }
    for w in ["alpha", "beta", "gamma"] {
        assert!(json["weights"].get(w).is_some());
    }
}

#[tokio::test]
async fn stats_of_an_unknown_store_say_to_ingest_first() {
    let db = TestDb::new().await;
    let err = app::stats(
        &db.store,
        &StoreId::parse("ghost").unwrap(),
        None,
        &db.settings,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("ingest"), "{err}");
}
