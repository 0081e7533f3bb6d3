//! Day one: a store with a catalog and no orders gets bundles with no extra flag, each
//! justified by meaning, dated by its stored data (never the wall clock), and no
//! multi-unit offer on what shoppers buy one of.

use bundleforge::app;
use bundleforge::domain::{BundleType, StoreId};
use bundleforge::pipeline::RunRequest;
use bundleforge::pipeline::evidence::Verdict;
use bundleforge::stats::AsOfSource;

use crate::support::{TestDb, catalog, local_model, repo_root, services_for};

#[tokio::test]
async fn a_catalog_only_store_gets_justified_bundles_dated_by_its_first_ingest() {
    let db = TestDb::new().await;
    let products = repo_root().join("fixtures/stores/small/products.csv");
    db.ingest_ok("new", catalog(products)).await;
    let settings = bundleforge::config::Settings::defaults().unwrap();
    let deps = services_for(&db, local_model(), settings).await;
    let id = StoreId::parse("new").unwrap();

    let out = app::generate(&deps, &id, &RunRequest::default())
        .await
        .unwrap();
    let run = &out.run;
    // The fixture's catalog has no creation dates: the day of the first ingest.
    assert_eq!(run.as_of_source, AsOfSource::FirstIngest);
    assert_eq!(run.evidence.verdict, Verdict::None);
    assert!(out.bundles.len() >= 5, "{} bundles", out.bundles.len());
    let data = deps.store.load(&id).await.unwrap();
    let mut prices: Vec<i64> = data.products.iter().map(|p| p.price.minor).collect();
    prices.sort_unstable();
    let median = prices[prices.len() / 2];
    for b in &out.bundles {
        assert!(!b.explanation.justification.is_empty(), "{}", b.id);
        let multi_unit = b.bundle_type == BundleType::MixMatch
            || b.bundle_type == BundleType::Volume
            || (b.bundle_type == BundleType::Bogo && b.products.len() == 1);
        if multi_unit {
            // Nothing says shoppers take several: everyday prices, or consumables.
            assert!(
                b.objective == bundleforge::domain::Objective::Replenish
                    || b.products.iter().all(|p| p.unit_price_minor <= median),
                "{}: {:?}",
                b.id,
                b.products
            );
        }
    }

    // The same store again: the same date and the same bundles (nothing read the
    // clock).
    let again = app::generate(&deps, &id, &RunRequest::default())
        .await
        .unwrap();
    assert_eq!(again.run.as_of, run.as_of);
    let ids = |o: &bundleforge::pipeline::RunOutput| -> Vec<String> {
        o.bundles.iter().map(|b| b.id.clone()).collect()
    };
    assert_eq!(ids(&again), ids(&out));

    // Statistics see the store as of the same day.
    let stats = app::stats(&db.store, &id, None, &deps.settings)
        .await
        .unwrap();
    assert_eq!(stats.as_of, run.as_of);
    assert_eq!(stats.slow_movers.count, 0);
    assert_eq!(stats.as_of_source, AsOfSource::FirstIngest);
}
