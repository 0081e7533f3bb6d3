//! The complement prior: a grocery catalog with no orders gets the complements other
//! stores' shoppers buy together, each naming its data set; without the prior it gets
//! none of them; and a store's own orders, where they can tell, overrule it.

use bundleforge::app;
use bundleforge::config::Settings;
use bundleforge::domain::{Justification, StoreId};
use bundleforge::pipeline::RunOutput;
use bundleforge::pipeline::RunRequest;

use crate::support::{TestDb, catalog, local_model, orders, repo_root, services_for};

/// The product pairs of bundles justified by the prior, each sorted.
fn prior_pairs(out: &RunOutput) -> Vec<Vec<String>> {
    let mut pairs = Vec::new();
    for b in &out.bundles {
        for j in &b.explanation.justification {
            if let Justification::Complement {
                products,
                source,
                data_sets,
                prior_categories,
                ..
            } = j
                && source == "prior"
            {
                assert_eq!(data_sets, &["Groceries"], "{}", b.id);
                assert_eq!(prior_categories.len(), 2, "{}", b.id);
                let mut p = products.clone();
                p.sort();
                pairs.push(p);
            }
        }
    }
    pairs
}

async fn generate(db: &TestDb, settings: Settings) -> RunOutput {
    let deps = services_for(db, local_model(), settings).await;
    let id = StoreId::parse("grocer").unwrap();
    app::generate(&deps, &id, &RunRequest::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_grocery_catalog_gets_the_prior_s_complements_and_its_orders_overrule_them() {
    let db = TestDb::new().await;
    // A hand-written grocery catalog (fixtures/stores/grocery): no orders, no dates.
    let products = repo_root().join("fixtures/stores/grocery/products.csv");
    db.ingest_ok("grocer", catalog(products)).await;
    let out = generate(&db, Settings::defaults().unwrap()).await;
    let used: Vec<(&str, bool)> = out
        .run
        .prior
        .iter()
        .map(|s| (s.name.as_str(), s.used))
        .collect();
    assert_eq!(used, [("Groceries", true), ("Online Retail", false)]);
    let why = out.run.prior[1].left_out.as_deref().unwrap_or_default();
    assert!(why.contains("cover"), "{why}");
    let pairs = prior_pairs(&out);
    assert!(pairs.len() >= 4, "{pairs:?}");
    let pair = |a: &str, b: &str| vec![a.to_owned(), b.to_owned()];
    assert!(
        pairs.contains(&pair("g12", "g13")),
        "detergent and softener: {pairs:?}"
    );
    assert!(
        pairs.contains(&pair("g7", "g9")),
        "beer and wine: {pairs:?}"
    );

    // Without the prior, meaning alone pairs none of them.
    let mut off = Settings::defaults().unwrap();
    off.prior.enabled = false;
    let without = generate(&db, off).await;
    assert!(without.run.prior.is_empty());
    assert!(prior_pairs(&without).is_empty());

    // Orders where beer and wine each sell often, never together: the store's own
    // evidence decides, and the prior's pairing of them is gone.
    let mut rows = String::from("order_id,created_at,quantity,unit_price,sku\n");
    for i in 0..40 {
        let (sku, price) = if i % 2 == 0 {
            ("G7", "9.99")
        } else {
            ("G9", "11.50")
        };
        rows.push_str(&format!("{i},2026-03-{:02},1,{price},{sku}\n", 1 + i % 28));
        rows.push_str(&format!("{i},2026-03-{:02},1,1.99,G17\n", 1 + i % 28));
    }
    db.ingest_ok("grocer", orders(db.file("orders.csv", &rows)))
        .await;
    let with_orders = generate(&db, Settings::defaults().unwrap()).await;
    let pairs = prior_pairs(&with_orders);
    assert!(!pairs.contains(&pair("g7", "g9")), "{pairs:?}");
    // Where the orders can't tell (detergent never sold), the prior still speaks.
    assert!(pairs.contains(&pair("g12", "g13")), "{pairs:?}");
}
