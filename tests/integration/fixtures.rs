//! The committed fixture stores are exactly what the generator makes.

use bundleforge::fixtures::{FixtureSize, generate};

use crate::support::repo_root;

#[test]
fn committed_small_and_medium_stores_match_the_generator() {
    for (size, dir) in [
        (FixtureSize::Small, "small"),
        (FixtureSize::Medium, "medium"),
    ] {
        let g = generate(size, 42);
        let root = repo_root().join("fixtures/stores").join(dir);
        let read = |f: &str| std::fs::read_to_string(root.join(f)).expect("fixture file");
        assert!(
            read("products.csv") == g.products_csv,
            "{dir}/products.csv is stale: regenerate with `bundleforge fixtures --size {dir} --out fixtures/stores/{dir} --force`"
        );
        assert!(
            read("orders.csv") == g.orders_csv,
            "{dir}/orders.csv is stale"
        );
    }
}
