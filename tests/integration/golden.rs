//! Golden outputs: the `bundles` array of a seed-42 run with the offline model on the
//! small and medium fixtures and on Online Retail, committed under `fixtures/golden/`.
//! A refactoring must leave them byte-identical; a change that is meant to move them
//! regenerates them (`BUNDLEFORGE_BLESS=1 cargo test --test integration golden`) in a
//! commit of its own that says why.
//!
//! Embeddings and cosines come from SIMD code (ONNX Runtime's and ours) chosen at run
//! time, so the bytes are only comparable on a machine with the kernels the files were
//! written with (`fixtures/golden/kernels`). Elsewhere the test still checks every
//! bundle's id, products, quantities and prices, which no last-bit difference moves.

use std::path::PathBuf;

use bundleforge::app::{self, Services};
use bundleforge::domain::{Bundle, StoreId};
use bundleforge::pipeline::RunRequest;

use crate::support::{TestDb, local_model, repo_root, shared_data};

fn golden_dir() -> PathBuf {
    repo_root().join("fixtures/golden")
}

fn kernels_here() -> String {
    bundleforge::index::metric::kernels().name.to_owned()
}

/// A bundle's id, products with quantities, list and final price.
type OfferKey = (String, Vec<(String, u32)>, i64, i64);

/// What no floating-point difference can move: the offer itself.
fn offers(bundles: &[Bundle]) -> Vec<OfferKey> {
    bundles
        .iter()
        .map(|b| {
            (
                b.id.clone(),
                b.products
                    .iter()
                    .map(|p| (p.product_id.clone(), p.quantity))
                    .collect(),
                b.list_price_minor,
                b.final_price_minor,
            )
        })
        .collect()
}

/// Compares a run's bundles with the committed file (or writes it when blessing).
pub fn check_golden(name: &str, bundles: &[Bundle]) {
    let text = serde_json::to_string_pretty(bundles).expect("bundles serialise") + "\n";
    let path = golden_dir().join(format!("{name}.bundles.json"));
    let kernels_path = golden_dir().join("kernels");
    if std::env::var_os("BUNDLEFORGE_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("golden dir");
        std::fs::write(&path, &text).expect("write golden");
        std::fs::write(&kernels_path, kernels_here() + "\n").expect("write kernels");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with BUNDLEFORGE_BLESS=1)", path.display()));
    let blessed_on = std::fs::read_to_string(&kernels_path).unwrap_or_default();
    if blessed_on.trim() == kernels_here() {
        if text != want {
            let at = text
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{name}: bundles differ from {} from line {}:\n got: {}\nwant: {}",
                path.display(),
                at + 1,
                text.lines().nth(at).unwrap_or(""),
                want.lines().nth(at).unwrap_or("")
            );
        }
    } else {
        let golden: Vec<Bundle> = serde_json::from_str(&want).expect("golden parses");
        assert_eq!(
            offers(bundles),
            offers(&golden),
            "{name}: offers differ from {} (written with {} kernels, these are {})",
            path.display(),
            blessed_on.trim(),
            kernels_here()
        );
    }
}

/// A fixture store ingested into a fresh database, and a run's ports over it.
async fn fixture_store(name: &str) -> (TestDb, Services) {
    let db = TestDb::new().await;
    crate::support::ingest_dir(&db, name, &repo_root().join("fixtures/stores").join(name)).await;
    let deps = deps_for(&db).await;
    (db, deps)
}

pub async fn deps_for(db: &TestDb) -> Services {
    crate::support::services_for(db, local_model(), db.settings.clone()).await
}

pub fn golden_options() -> RunRequest {
    RunRequest::seeded(42)
}

async fn golden_run(name: &str) {
    let (_db, deps) = fixture_store(name).await;
    let out = app::generate(&deps, &StoreId::parse(name).unwrap(), &golden_options())
        .await
        .unwrap_or_else(|e| panic!("generate {name}: {e}"));
    // One offer per product set, whatever its type.
    let mut sets = std::collections::HashSet::new();
    for b in &out.bundles {
        let mut set: Vec<&str> = b.products.iter().map(|p| p.product_id.as_str()).collect();
        set.sort_unstable();
        set.dedup();
        assert!(sets.insert(set.clone()), "{name}: {set:?} is offered twice");
    }
    check_golden(name, &out.bundles);
}

#[tokio::test]
async fn small_fixture_bundles_match_the_golden_file() {
    golden_run("small").await;
}

#[tokio::test]
async fn medium_fixture_bundles_match_the_golden_file() {
    golden_run("medium").await;
}

#[tokio::test]
async fn online_retail_bundles_match_the_golden_file() {
    let db = TestDb::new().await;
    db.ingest_ok(
        "online-retail",
        crate::support::orders(shared_data("online_retail/online_retail.csv.gz")),
    )
    .await;
    let deps = deps_for(&db).await;
    let out = app::generate(
        &deps,
        &StoreId::parse("online-retail").unwrap(),
        &golden_options(),
    )
    .await
    .expect("generate online-retail");
    check_golden("online-retail", &out.bundles);
}
