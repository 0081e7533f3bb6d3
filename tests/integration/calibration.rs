//! Weights calibrated per store: `generate` on a store with enough orders first runs
//! each candidate weighting on the store's own split and keeps the best; a store with
//! too few orders, a request with its own weights, and a catalog-only run are not
//! calibrated and say why.

use bundleforge::app;
use bundleforge::config::Settings;
use bundleforge::domain::StoreId;
use bundleforge::pipeline::{OrderScope, RunRequest};

use crate::support::{local_model, services_for, small_fixture};

/// The default settings with calibration on.
fn calibrating() -> Settings {
    let mut settings = Settings::defaults().unwrap();
    settings.quality.calibrate = true;
    settings
}

/// The small fixture's orders are generated from planted co-purchase pairs: the
/// weighting that leans on meaning alone (A) finds fewer of them than the best one.
/// Calibration must see that on the store's own held-out orders, keep the best by its
/// rule, and weight the run by it.
#[tokio::test]
async fn calibration_picks_the_weighting_that_scores_best_on_the_stores_own_split() {
    let (db, _) = small_fixture(local_model(), None).await;
    let services = services_for(&db, local_model(), calibrating()).await;
    let id = StoreId::parse("small").unwrap();
    let orders = db.count("SELECT COUNT(*) FROM orders").await as usize;
    let out = app::generate(&services, &id, &RunRequest::seeded(42))
        .await
        .unwrap();
    let c = &out.run.calibration;
    assert!(c.used, "{c:?}");
    let held = (orders as f64 * 0.25).round() as usize;
    assert!(
        c.holdout_orders <= held && c.holdout_orders > held * 9 / 10,
        "{c:?}"
    );
    let names: Vec<&str> = c.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["tier", "A", "B", "C", "D", "E"]);
    let chosen = c
        .variants
        .iter()
        .find(|v| Some(&v.name) == c.chosen.as_ref())
        .expect("the chosen variant is among those scored");
    for v in &c.variants {
        assert!(
            (v.strong_hit, v.coverage) <= (chosen.strong_hit, chosen.coverage),
            "{} beat the chosen {}: {c:?}",
            v.name,
            chosen.name
        );
        assert!(v.interval[0] <= v.strong_hit && v.strong_hit <= v.interval[1]);
    }
    let language_only = &c.variants[1];
    assert!(
        chosen.strong_hit > language_only.strong_hit,
        "the planted pairs are co-purchase: {c:?}"
    );
    let w = out.run.weights;
    assert_eq!(
        [w.alpha, w.beta, w.gamma],
        chosen.weights,
        "the run uses the chosen weights"
    );
    let json = serde_json::to_value(&out.run).unwrap();
    assert_eq!(json["calibration"]["used"], true);
    assert_eq!(json["calibration"]["chosen"], chosen.name.as_str());
}

#[tokio::test]
async fn a_store_under_the_minimum_a_given_weighting_and_a_catalog_only_run_are_not_calibrated() {
    let (db, _) = small_fixture(local_model(), None).await;
    let id = StoreId::parse("small").unwrap();
    let mut settings = calibrating();
    settings.quality.calibrate_min_orders = 1_000_000;
    let services = services_for(&db, local_model(), settings).await;
    let out = app::generate(&services, &id, &RunRequest::seeded(42))
        .await
        .unwrap();
    let c = &out.run.calibration;
    assert!(!c.used && c.variants.is_empty());
    assert!(
        c.reason.contains("fewer than quality.calibrate_min_orders"),
        "{c:?}"
    );
    assert!(!out.run.weights_overridden);

    let services = services_for(&db, local_model(), calibrating()).await;
    let mut given = RunRequest::seeded(42);
    given.variant.weights = Some([0.5, 0.3, 0.2]);
    let out = app::generate(&services, &id, &given).await.unwrap();
    assert_eq!(out.run.calibration.reason, "the run's weights were given");
    assert_eq!(out.run.weights.alpha, 0.5);

    let mut cold = RunRequest::seeded(42);
    cold.prepare.orders = OrderScope::None;
    let out = app::generate(&services, &id, &cold).await.unwrap();
    assert_eq!(out.run.calibration.reason, "a run from the catalog alone");

    let off = services_for(&db, local_model(), Settings::defaults().unwrap()).await;
    let out = app::generate(&off, &id, &RunRequest::seeded(42))
        .await
        .unwrap();
    assert_eq!(out.run.calibration.reason, "off (quality.calibrate)");
}
