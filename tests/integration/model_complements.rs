//! Complements a configured model names between a store's kinds of product: a catalog
//! the prior knows little of (mugs are in no grocery basket) gets them, each naming the
//! model's reason; the store's own orders, where they can tell, overrule the model; and
//! what the model invents never reaches a bundle.

use bundleforge::app;
use bundleforge::config::Settings;
use bundleforge::domain::{Justification, StoreId};
use bundleforge::pipeline::RunOutput;
use bundleforge::pipeline::RunRequest;
use serde_json::{Value, json};

use crate::mock_llm::{MockLlm, Reply};
use crate::support::{TestDb, catalog, local_model, orders, repo_root, services_for};

const REASON: &str = "Ground coffee is brewed to be drunk from a mug.";

/// The kinds the complement prompt offered: (id, name).
fn kinds_offered(request: &Value) -> Option<Vec<(String, String)>> {
    let user = request["messages"][1]["content"].as_str()?;
    let start = user.find("<kinds>")? + "<kinds>".len();
    let end = user.find("</kinds>")?;
    Some(
        user[start..end]
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| Some((v["id"].as_str()?.to_owned(), v["name"].as_str()?.to_owned())))
            .collect(),
    )
}

/// A model that names coffee with drinkware (plus a pair of invented kinds), and gives
/// valid empty answers to every other task (they fall back offline).
fn names_coffee_with_mugs(request: &Value) -> Reply {
    let user = request["messages"][1]["content"].as_str().unwrap_or("");
    if let Some(kinds) = kinds_offered(request) {
        let id = |name: &str| {
            kinds
                .iter()
                .find(|(_, n)| n == name)
                .map(|(id, _)| id.clone())
                .unwrap_or_default()
        };
        return Reply::content(
            &json!({"pairs": [
                {"a": id("coffee"), "b": id("drinkware"), "reason": REASON},
                {"a": "k-ghost", "b": id("tea"), "reason": "invented"},
            ]})
            .to_string(),
        );
    }
    let key = if user.contains("<products>") {
        "products"
    } else {
        "bundles"
    };
    Reply::content(&json!({ key: [] }).to_string())
}

fn settings(mock: &MockLlm) -> Settings {
    let mut settings = Settings::defaults().unwrap();
    settings.llm = bundleforge::config::LlmSettings {
        model: "mock".into(),
        breaker_failures: 1000,
        tokens_per_minute: 100_000_000,
        ..mock.settings()
    };
    settings
}

async fn generate(db: &TestDb, settings: Settings) -> RunOutput {
    let deps = services_for(db, local_model(), settings).await;
    let id = StoreId::parse("new").unwrap();
    app::generate(&deps, &id, &RunRequest::default())
        .await
        .unwrap()
}

/// Each bundle's complements justified by the model: (products, categories, reason).
fn model_complements(out: &RunOutput) -> Vec<(Vec<String>, Vec<String>, String)> {
    let mut found = Vec::new();
    for b in &out.bundles {
        for j in &b.explanation.justification {
            if let Justification::Complement {
                products,
                categories,
                source,
                reason,
                data_sets,
                ..
            } = j
                && source == "model"
            {
                assert!(data_sets.is_empty(), "{}", b.id);
                found.push((products.clone(), categories.clone(), reason.clone()));
            }
        }
    }
    found
}

#[tokio::test]
async fn a_catalog_only_store_gets_the_model_s_complements_unless_its_orders_say_otherwise() {
    let mock = MockLlm::start().await;
    mock.respond(names_coffee_with_mugs);
    let db = TestDb::new().await;
    let products = repo_root().join("fixtures/stores/small/products.csv");
    db.ingest_ok("new", catalog(products)).await;
    let out = generate(&db, settings(&mock)).await;

    // One call showed the store's kinds, with example titles.
    let asked: Vec<Value> = mock
        .requests()
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| kinds_offered(r).is_some())
        .collect();
    assert_eq!(asked.len(), 1);
    let prompt = asked[0]["messages"][1]["content"].as_str().unwrap();
    assert!(prompt.contains("Kenya AA Ground Coffee 250g"), "{prompt}");
    let summary = out
        .run
        .model_complements
        .as_ref()
        .expect("the model was asked");
    assert!(summary.kinds >= 20, "{}", summary.kinds);
    // The invented kind went nowhere.
    assert_eq!(summary.pairs.len(), 1, "{:?}", summary.pairs);
    assert_eq!(summary.pairs[0].categories, ["coffee", "drinkware"]);

    let found = model_complements(&out);
    assert!(!found.is_empty(), "no bundle used the model's complement");
    for (products, categories, reason) in &found {
        assert_eq!(products.len(), 2);
        let mut c = categories.clone();
        c.sort();
        assert_eq!(c, ["coffee", "drinkware"]);
        assert_eq!(reason, REASON);
    }
    // The report tells the merchandiser where the link comes from.
    for b in &out.bundles {
        for j in &b.explanation.justification {
            if matches!(j, Justification::Complement { source, .. } if source == "model") {
                let text = bundleforge::pipeline::output::justification_text(j, b);
                assert!(
                    text.contains("language model") && text.contains(REASON),
                    "{text}"
                );
            }
        }
    }

    // Offline, nothing is asked and no bundle says the model linked it.
    let offline = generate(&db, Settings::defaults().unwrap()).await;
    assert!(offline.run.model_complements.is_none());
    assert!(model_complements(&offline).is_empty());

    // Orders where coffee and mugs each sell often, never together: the store can
    // tell, and the model's pairing is gone.
    let mut rows = String::from("order_id,created_at,quantity,unit_price,sku\n");
    for i in 0..40 {
        let (sku, price) = if i % 2 == 0 {
            ("CT-0099", "22.99")
        } else {
            ("CT-0081", "53.99")
        };
        rows.push_str(&format!("{i},2026-03-{:02},1,{price},{sku}\n", 1 + i % 28));
    }
    db.ingest_ok("new", orders(db.file("orders.csv", &rows)))
        .await;
    let with_orders = generate(&db, settings(&mock)).await;
    assert!(with_orders.run.model_complements.is_some());
    assert!(
        model_complements(&with_orders).is_empty(),
        "{:?}",
        model_complements(&with_orders)
    );
}
