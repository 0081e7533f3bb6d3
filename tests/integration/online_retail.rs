//! The real UCI Online Retail file: the reference counts of ../shared/data/README.md.

use bundleforge::app;
use bundleforge::domain::StoreId;
use bundleforge::pipeline::RunRequest;

use crate::support::{TestDb, orders, shared_data};

#[tokio::test]
async fn online_retail_ingest_matches_the_reference_counts() {
    let path = shared_data("online_retail/online_retail.csv.gz");
    assert!(path.exists(), "{} is missing", path.display());
    let db = TestDb::new().await;
    let out = db.ingest_ok("online-retail", orders(path)).await;
    let r = &out.report;
    assert_eq!(r.rows_read, 541_909);
    assert_eq!(r.rows_kept, 527_789);
    assert_eq!(r.order_lines, 517_318);
    assert_eq!(r.baskets, 19_773);
    assert_eq!(r.orders, 19_773);
    assert_eq!(r.products, 3_803);
    assert_eq!(r.lines_merged, 10_471);
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    let dropped: Vec<(&str, u64)> = r.dropped.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        dropped,
        [
            ("adjustment_invoice", 1),
            ("cancellation", 9_288),
            ("price_not_positive", 1_181),
            ("quantity_not_positive", 1_336),
            ("service_code", 2_314)
        ]
    );
    let services: Vec<(&str, u64)> = r
        .dropped_service_codes
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        services,
        [
            ("AMAZONFEE", 2),
            ("BANK CHARGES", 12),
            ("C2", 141),
            ("DOT", 706),
            ("M", 322),
            ("PADS", 3),
            ("POST", 1_126),
            ("S", 2)
        ]
    );

    let s = app::stats(
        &db.store,
        &StoreId::parse("online-retail").unwrap(),
        None,
        &db.settings,
    )
    .await
    .unwrap();
    assert_eq!(s.as_of, "2011-12-09");
    assert_eq!(s.orders_60d, 5_004);
    assert_eq!(serde_json::to_value(s.tier).unwrap(), "large");
    assert_eq!(
        (s.weights.alpha, s.weights.beta, s.weights.gamma),
        (0.2, 0.6, 0.2)
    );
    assert_eq!(s.currency, "GBP");
    assert!(
        s.assumed
            .iter()
            .any(|a| a.field == "cost" && a.count == 3_803)
    );

    // A whole run of phases 0-1 on it: the summary and at least 30 of 40 cells filled
    // (cross-selling takes no alike groups or single products, and the quality rules
    // leave some mix & match cells empty), each empty one with its reason.
    let deps =
        crate::support::services_for(&db, crate::generate::local_model(), db.settings.clone())
            .await;
    let out = app::generate(
        &deps,
        &StoreId::parse("online-retail").unwrap(),
        &RunRequest::default(),
    )
    .await
    .unwrap();
    let run = &out.run;
    assert_eq!(run.as_of, "2011-12-09");
    assert_eq!(serde_json::to_value(run.tier).unwrap(), "large");
    assert_eq!(
        (run.weights.alpha, run.weights.beta, run.weights.gamma),
        (0.2, 0.6, 0.2)
    );
    assert_eq!(run.cells.len(), 40);
    let filled = run.cells.iter().filter(|c| c.candidates > 0).count();
    assert!(filled >= 30, "{:#?}", run.cells);
    assert!(
        run.cells
            .iter()
            .all(|c| (c.candidates == 0) == c.why.is_some())
    );
}
