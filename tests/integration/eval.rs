//! `eval` on the small fixture store: the numbers are computed, the baselines are
//! there, the store's data is never written (only the embedding and classification
//! caches fill, once), and a seed repeats the report.

use crate::support::eval_run;
use bundleforge::domain::{Objective, StoreId};
use bundleforge::eval::{self, EvalOptions};
use bundleforge::pipeline::{OrderScope, PrepareOptions, RunRequest};
use chrono::NaiveDate;

use crate::publish::small_store;

async fn counts(db: &crate::support::TestDb) -> Vec<i64> {
    let mut out = Vec::new();
    for table in [
        "orders",
        "order_lines",
        "products",
        "runs",
        "bundles",
        "embeddings",
        "classifications",
    ] {
        out.push(db.count(&format!("SELECT COUNT(*) FROM {table}")).await);
    }
    out
}

#[tokio::test]
async fn eval_scores_ours_and_the_baselines_without_touching_the_store() {
    let (db, deps) = small_store().await;
    let before = counts(&db).await;
    let options = EvalOptions {
        split: eval::SplitAt::Day(NaiveDate::from_ymd_opt(2026, 4, 30).unwrap()),
        run: eval_run(
            5,
            vec![Objective::CrossSell, Objective::IncreaseAov],
            Some(30),
            false,
        ),
        k: 20,
    };
    let id = StoreId::parse("small").unwrap();
    let (report, out) = eval::evaluate(&deps, &id, &options).await.unwrap();
    let after = counts(&db).await;
    assert_eq!(after[..5], before[..5], "the store's data was written to");
    assert!(after[5] > 0 && after[6] > 0, "the caches were not filled");
    assert!(
        report.train_orders > 500 && report.heldout_orders > 100,
        "{report:?}"
    );
    assert!(
        out.bundles
            .iter()
            .all(|b| options.run.variant.objectives.contains(&b.objective))
    );
    let o = &report.ours.scores;
    assert!(o.bundles > 0 && o.products >= 2);
    assert!((0.0..=1.0).contains(&o.hit) && o.strong_hit <= o.hit);
    let b = &report.baselines;
    assert_eq!(b.random.bundles, 2000);
    assert_eq!(b.top_count_pairs.bundles, 20);
    assert!(b.top_lift_pairs.bundles > 0);
    assert!(report.ours.hit_ci90.low <= o.hit && o.hit <= report.ours.hit_ci90.high);
    assert_eq!(eval::rows(&report).len(), 5);
    assert!(eval::table(&report).contains("top-20 pairs by count"));

    // A small shop: the last 300 training orders only.
    let small_shop = eval::evaluate(
        &deps,
        &id,
        &EvalOptions {
            run: RunRequest {
                prepare: PrepareOptions {
                    orders: OrderScope::Last(300),
                    ..options.run.prepare.clone()
                },
                ..options.run.clone()
            },
            ..options.clone()
        },
    )
    .await
    .unwrap()
    .0;
    assert_eq!(small_shop.train_orders, 300);

    // The same seed gives the same report, and a warm eval writes nothing at all.
    let warm = counts(&db).await;
    let again = eval::evaluate(&deps, &id, &options).await.unwrap().0;
    assert_eq!(counts(&db).await, warm);
    assert_eq!(
        serde_json::to_string(&report).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
}

#[tokio::test]
async fn a_cold_eval_generates_from_the_catalog_alone_beside_nearest_in_meaning() {
    let (db, deps) = small_store().await;
    let before = counts(&db).await;
    let id = StoreId::parse("small").unwrap();
    let options = EvalOptions {
        split: eval::SplitAt::Day(NaiveDate::from_ymd_opt(2026, 4, 30).unwrap()),
        run: eval_run(3, Vec::new(), Some(40), true),
        k: 20,
    };
    let (report, out) = eval::evaluate(&deps, &id, &options).await.unwrap();
    assert_eq!(counts(&db).await[..5], before[..5]);
    // The engine saw no orders; the baselines did.
    assert_eq!(out.run.baskets, 0);
    assert_eq!(
        out.run.evidence.verdict,
        bundleforge::pipeline::evidence::Verdict::None
    );
    assert!(report.train_orders > 500);
    let nearest = report
        .baselines
        .nearest_in_meaning
        .as_ref()
        .expect("a cold eval has the nearest-in-meaning baseline");
    assert_eq!(nearest.bundles, 20);
    assert!(!out.bundles.is_empty());
    assert!(
        out.bundles
            .iter()
            .all(|b| !b.explanation.justification.is_empty())
    );
    // Random sets copy our sizes and picks.
    assert_eq!(report.baselines.random_by_pick.bundles, 2000);
    assert!(report.baselines.random_by_pick.hit >= report.baselines.random.hit);
    assert_eq!(eval::rows(&report).len(), 6);
}

/// `--holdout SHARE`: the last share of the orders by time is held out, and the run
/// trains on the rest only (a held-out order never reaches phase 0).
#[tokio::test]
async fn a_holdout_share_holds_out_the_last_orders_and_trains_on_the_rest() {
    let (db, deps) = small_store().await;
    let id = StoreId::parse("small").unwrap();
    let orders = db.count("SELECT COUNT(*) FROM orders").await as usize;
    let options = EvalOptions {
        split: eval::SplitAt::share(0.25).unwrap(),
        run: eval_run(5, vec![Objective::CrossSell], Some(20), false),
        k: 20,
    };
    let (report, out) = eval::evaluate(&deps, &id, &options).await.unwrap();
    let held = (orders as f64 * 0.25).round() as usize;
    assert_eq!(report.train_orders, orders - held, "{report:?}");
    assert!(report.heldout_orders <= held && report.heldout_orders > held * 9 / 10);
    assert_eq!(report.holdout_share, Some(0.25));
    assert!(out.run.baskets > 0 && out.run.baskets as usize <= report.train_orders);
    assert!(eval::table(&report).contains("the last 25 % of orders held out"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["holdout_share"], 0.25);
}
