//! The merchant's word on the small fixture store: never-bundle products and
//! categories, pairs never together, a discount ceiling, pins published while valid
//! (and left out of `eval`); a bad rules file changes nothing and names what is wrong.

use std::collections::HashSet;

use crate::support::eval_run;
use bundleforge::app::{self, RulesChange};
use bundleforge::domain::{
    BundleType, Justification, JustificationKind, Objective, ProductStatus, StoreId,
};
use bundleforge::eval::{self, EvalOptions};
use bundleforge::pipeline::RunRequest;
use chrono::NaiveDate;

use crate::publish::small_store;

fn kinds(b: &bundleforge::domain::Bundle) -> Vec<JustificationKind> {
    b.explanation
        .justification
        .iter()
        .map(Justification::kind)
        .collect()
}

#[tokio::test]
async fn the_store_rules_hold_in_a_run_and_pins_are_published_but_not_evaluated() {
    let (db, deps) = small_store().await;
    let id = StoreId::parse("small").unwrap();
    let before = app::generate(&deps, &id, &RunRequest::default())
        .await
        .unwrap();
    let multi: Vec<_> = before
        .bundles
        .iter()
        .filter(|b| b.products.len() >= 2)
        .collect();
    assert!(multi.len() >= 4, "{}", multi.len());
    // Never: the first bundle's anchor; never together: the second's pair; never the
    // category of the third's anchor.
    let never = multi[0].products[0].product_id.clone();
    let pair = [
        multi[1].products[0].product_id.clone(),
        multi[1].products[1].product_id.clone(),
    ];
    let data = deps.store.load(&id).await.unwrap();
    let product = |vid: &str| data.products.iter().find(|p| p.variant_id == vid).unwrap();
    let third = product(&multi[2].products[0].product_id);
    let category = third
        .category
        .clone()
        .or_else(|| third.product_type.clone())
        .expect("the fixture's products have a type");
    // A pin of two products no default bundle holds together.
    let published: HashSet<Vec<String>> = before
        .bundles
        .iter()
        .map(|b| b.products.iter().map(|p| p.product_id.clone()).collect())
        .collect();
    let sellable: Vec<&str> = data
        .products
        .iter()
        .filter(|p| {
            p.inventory.is_none_or(|n| n > 5)
                && p.status.is_none_or(|s| s == ProductStatus::Active)
                && !p.gift_card
                && p.price.minor > 0
                && p.variant_id != never
                && !pair.contains(&p.variant_id)
                && p.category.as_ref().or(p.product_type.as_ref()) != Some(&category)
        })
        .map(|p| p.variant_id.as_str())
        .collect();
    let pin = [
        sellable[0].to_owned(),
        sellable[sellable.len() / 2].to_owned(),
    ];
    assert!(!published.contains(pin.as_slice()));
    let text = format!(
        "never_products = [{never:?}]\nnever_categories = [{category:?}]\n\
         never_pairs = [[{:?}, {:?}]]\nmax_discount_pct = 7\n\n\
         [[pins]]\nproducts = [{:?}, {:?}]\ntype = \"fixed\"\n\n\
         [[pins]]\nproducts = [\"NOT-IN-THE-CATALOG\", {:?}]\n",
        pair[0], pair[1], pin[0], pin[1], pin[1]
    );
    let set = app::store_rules(
        &db.store,
        &id,
        RulesChange::Set {
            text: &text,
            source_name: "rules.toml",
        },
    )
    .await
    .unwrap();
    assert_eq!(set.unknown_ids, vec!["NOT-IN-THE-CATALOG".to_owned()]);

    let after = app::generate(&deps, &id, &RunRequest::default())
        .await
        .unwrap();
    for b in &after.bundles {
        let ids: Vec<&str> = b.products.iter().map(|p| p.product_id.as_str()).collect();
        assert!(!ids.contains(&never.as_str()), "{ids:?}");
        assert!(
            !(ids.contains(&pair[0].as_str()) && ids.contains(&pair[1].as_str())),
            "{ids:?}"
        );
        for vid in &ids {
            let p = product(vid);
            assert_ne!(
                p.category.as_ref().or(p.product_type.as_ref()),
                Some(&category),
                "{vid}"
            );
        }
        assert!(b.discount_pct <= 7.0, "{} at {}%", b.id, b.discount_pct);
    }
    assert!(
        after
            .bundles
            .iter()
            .any(|b| b.pricing.reason.contains("the store's 7% ceiling")),
        "no pricing reason names the ceiling"
    );
    let pinned: Vec<_> = after
        .bundles
        .iter()
        .filter(|b| kinds(b).contains(&JustificationKind::Pinned))
        .collect();
    assert_eq!(pinned.len(), 1, "{:?}", after.run.store_rules);
    assert_eq!(pinned[0].bundle_type, BundleType::Fixed);
    let ids: Vec<String> = pinned[0]
        .products
        .iter()
        .map(|p| p.product_id.clone())
        .collect();
    assert_eq!(ids, pin.to_vec());
    let report = &after.run.store_rules;
    assert!(report.removed.values().sum::<usize>() > 0, "{report:?}");
    assert_eq!(report.pins[0].state, "published");
    assert!(
        report.pins[1].state.contains("NOT-IN-THE-CATALOG"),
        "{}",
        report.pins[1].state
    );

    // eval scores the engine alone: the lists hold, the pin is not there.
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
    let (_, evaluated) = eval::evaluate(&deps, &id, &options).await.unwrap();
    assert!(
        evaluated
            .bundles
            .iter()
            .all(|b| !kinds(b).contains(&JustificationKind::Pinned))
    );
    assert!(evaluated.bundles.iter().all(|b| b.discount_pct <= 7.0));

    // Cleared, the run is the default one again.
    app::store_rules(&db.store, &id, RulesChange::Clear)
        .await
        .unwrap();
    let cleared = app::generate(&deps, &id, &RunRequest::default())
        .await
        .unwrap();
    assert_eq!(cleared.bundles.len(), before.bundles.len());
    assert!(cleared.run.store_rules.rules.is_empty());
}

#[tokio::test]
async fn a_bad_rules_file_names_the_file_line_and_field_and_keeps_the_stored_rules() {
    let (db, _deps) = small_store().await;
    let id = StoreId::parse("small").unwrap();
    let good = "never_products = [\"KT-0069\"]\n";
    app::store_rules(
        &db.store,
        &id,
        RulesChange::Set {
            text: good,
            source_name: "good.toml",
        },
    )
    .await
    .unwrap();
    for (text, needle) in [
        (
            "never_products = [\"a\"]\nmax_discount_pct = \"deep\"\n",
            "bad.toml: line 2, column 20: invalid type",
        ),
        (
            "never_product = [\"a\"]\n",
            "bad.toml: line 1, column 1: unknown field",
        ),
        (
            "max_discount_pct = 95\n",
            "bad.toml: max_discount_pct: 95 is above 90",
        ),
        (
            "[[pins]]\nproducts = [\"a\", \"b\", \"c\", \"d\", \"e\"]\n",
            "bad.toml: pins[0].products: a fixed bundle holds 2–4 products, not 5",
        ),
        (
            "never_pairs = [[\"a\", \"a\"]]\n",
            "bad.toml: never_pairs[0]: pairs \"a\" with itself",
        ),
    ] {
        let err = app::store_rules(
            &db.store,
            &id,
            RulesChange::Set {
                text,
                source_name: "bad.toml",
            },
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains(needle), "{err}");
    }
    let shown = app::store_rules(&db.store, &id, RulesChange::Show)
        .await
        .unwrap();
    assert_eq!(shown.rules.never_products, vec!["KT-0069".to_owned()]);

    let url = format!("sqlite://{}", db.dir.path().join("test.sqlite").display());
    let path = db.file("bad.toml", "max_discount_pct = -3\n");
    let out = crate::support::cli(
        &url,
        &["store-rules", "--store", "small", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml: line 1, column 20"), "{stderr}");
    let out = crate::support::cli(&url, &["store-rules", "--store", "nobody", "--clear"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown store"));
}
