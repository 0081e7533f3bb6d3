//! Every prompt through the real client against a real model (opt-in:
//! `scripts/test --llm` starts a small local model and sets BUNDLEFORGE_TEST_LLM_URL).
//! A 135M-parameter model picks poor labels but must answer schema-shaped JSON, so this
//! asserts that every task's answer parses and validates, and reports per task its
//! latency and what validation dropped.

use std::time::Instant;

use bundleforge::domain::{BundleType, Objective};
use bundleforge::llm::client::ChatClient;
use bundleforge::llm::prompt::{BundleDoc, ProductDoc};
use bundleforge::llm::provider::{Llm, OpenAiLlm};
use bundleforge::pipeline::RunRequest;

fn product(id: &str, title: &str, category: &str, price: &str) -> ProductDoc {
    ProductDoc {
        id: id.into(),
        title: title.into(),
        category: Some(category.into()),
        tags: vec![],
        price: price.into(),
        description: String::new(),
    }
}

fn catalog() -> Vec<ProductDoc> {
    vec![
        product("p1", "Espresso cup, white porcelain", "Kitchen", "6.50"),
        product("p2", "Single-origin coffee beans 250 g", "Coffee", "9.90"),
        product("p3", "Milk frothing jug", "Kitchen", "14.00"),
        product("p4", "Christmas tree bauble set", "Seasonal", "12.00"),
        product("p5", "Gift card", "Gifts", "25.00"),
        product("p6", "Descaler tablets (refill)", "Care", "5.00"),
    ]
}

fn bundle(id: &str, products: Vec<ProductDoc>) -> BundleDoc {
    BundleDoc {
        id: id.into(),
        objective: Objective::CrossSell,
        bundle_type: BundleType::Fixed,
        products,
        pick: None,
        list_price: "16.40".into(),
        price: Some("14.76".into()),
        discount_pct: Some(10),
        gets_discount_pct: None,
        cap_pct: 20,
        margin_pct: 45,
    }
}

/// `BUNDLEFORGE_TEST_LLM_JSON_MODE` (`object`, `schema` or `none`; default `schema`).
fn json_mode() -> bundleforge::config::JsonMode {
    use bundleforge::config::JsonMode;
    match std::env::var("BUNDLEFORGE_TEST_LLM_JSON_MODE").as_deref() {
        Ok("object") => JsonMode::Object,
        Ok("none") => JsonMode::None,
        _ => JsonMode::Schema,
    }
}

#[tokio::test]
#[ignore = "needs a model endpoint: run scripts/test --llm"]
async fn every_prompt_answers_valid_json_through_a_real_model() {
    let Ok(url) = std::env::var("BUNDLEFORGE_TEST_LLM_URL") else {
        panic!("BUNDLEFORGE_TEST_LLM_URL is not set: run scripts/test --llm");
    };
    let mut settings = bundleforge::config::Settings::defaults().unwrap().llm;
    settings.provider = bundleforge::config::LlmProvider::Openai;
    settings.base_url = url;
    settings.json_mode = json_mode();
    settings.max_tokens = 1024;
    settings.timeout_seconds = 120.0;
    settings.concurrency = 1;
    let llm = OpenAiLlm::new(ChatClient::new(&settings).unwrap(), &settings.model).unwrap();
    let products = catalog();
    let bundles = vec![
        bundle("b1", vec![products[0].clone(), products[1].clone()]),
        bundle("b2", vec![products[1].clone(), products[2].clone()]),
    ];

    let mut rows = Vec::new();
    let started = Instant::now();
    let out = llm.classify(&products).await.expect("classify");
    rows.push((
        "classify_objectives",
        started.elapsed(),
        out.items.len(),
        products.len(),
        out.dropped,
    ));
    let started = Instant::now();
    let out = llm
        .propose(Objective::CrossSell, &products[..2], &products[2..], 3)
        .await
        .expect("propose");
    rows.push((
        "propose_bundles",
        started.elapsed(),
        out.items.len(),
        3,
        out.dropped,
    ));
    let started = Instant::now();
    let out = llm.advise_price(&bundles).await.expect("advise price");
    rows.push((
        "advise_price",
        started.elapsed(),
        out.items.len(),
        bundles.len(),
        out.dropped,
    ));
    let started = Instant::now();
    let out = llm.write_copy(&bundles, "en").await.expect("write copy");
    rows.push((
        "write_copy",
        started.elapsed(),
        out.items.len(),
        bundles.len(),
        out.dropped,
    ));
    let started = Instant::now();
    let out = llm.rate_appeal(&bundles).await.expect("rate appeal");
    rows.push((
        "rate_appeal",
        started.elapsed(),
        out.items.len(),
        bundles.len(),
        out.dropped,
    ));

    println!("task | seconds | valid items / asked | unknown ids | duplicates | invalid entries");
    for (task, elapsed, valid, asked, d) in &rows {
        println!(
            "{task} | {:.2} | {valid} / {asked} | {} | {} | {}",
            elapsed.as_secs_f64(),
            d.unknown_ids,
            d.duplicate_ids,
            d.invalid_entries
        );
    }
    let usage = llm.client().total_usage();
    println!(
        "calls {} · retries {} · repairs {} · tokens {} in, {} out",
        usage.calls, usage.retries, usage.repairs, usage.prompt_tokens, usage.completion_tokens
    );
}

/// A whole `generate` on the small fixture store against the real model: it completes,
/// every product in every bundle is the store's, and every bundle has copy (the
/// model's where it answered validly, else the template, labelled).
#[tokio::test]
#[ignore = "needs a model endpoint: run scripts/test --llm"]
async fn a_whole_generate_runs_against_a_real_model() {
    use bundleforge::app;
    use bundleforge::domain::{StoreId, TextSource};

    let Ok(url) = std::env::var("BUNDLEFORGE_TEST_LLM_URL") else {
        panic!("BUNDLEFORGE_TEST_LLM_URL is not set: run scripts/test --llm");
    };
    let (db, _) = crate::support::small_fixture(crate::generate::local_model(), None).await;
    let mut settings = bundleforge::config::Settings::defaults().unwrap();
    settings.llm.provider = bundleforge::config::LlmProvider::Openai;
    settings.llm.base_url = url;
    settings.llm.json_mode = json_mode();
    settings.llm.max_tokens = 1024;
    settings.llm.timeout_seconds = 300.0;
    settings.llm.concurrency = 1;
    settings.llm.usd_per_million_prompt_tokens = 0.0;
    settings.llm.usd_per_million_completion_tokens = 0.0;
    // The server's context is 4,096 tokens: small batches keep every prompt and its
    // answer inside it. A 135M model on one thread: a few bundles keep the run short.
    settings.llm.classify_batch = 10;
    settings.llm.price_batch = 3;
    settings.llm.copy_batch = 3;
    settings.llm.breaker_failures = 1000;
    settings.pipeline.llm_anchors = 4;
    settings.pipeline.llm_candidates = 12;
    settings.pipeline.llm_bundles = 4;
    settings.optimize.max_bundles = 6;
    let deps = crate::support::services_for(&db, crate::generate::local_model(), settings).await;
    let started = Instant::now();
    let out = app::generate(
        &deps,
        &StoreId::parse("small").unwrap(),
        &RunRequest::default(),
    )
    .await
    .expect("generate");
    let data = deps
        .store
        .load(&StoreId::parse("small").unwrap())
        .await
        .unwrap();
    assert!(!out.bundles.is_empty());
    for b in &out.bundles {
        for p in &b.products {
            assert!(data.products.iter().any(|x| x.variant_id == p.product_id));
        }
        assert!(!b.copy.title.is_empty() && !b.explanation.text.is_empty());
    }
    let by_model = out
        .bundles
        .iter()
        .filter(|b| b.copy.source == TextSource::Llm)
        .count();
    let l = &out.run.llm;
    println!(
        "generate against {}: {} bundles ({} with the model's copy) in {:.1} s; {} calls, {} retries, {} + {} tokens",
        l.model,
        out.bundles.len(),
        by_model,
        started.elapsed().as_secs_f64(),
        l.calls,
        l.retries,
        l.prompt_tokens,
        l.completion_tokens
    );
    // Most calls must have been answered, not failed.
    assert!(l.failures * 2 < l.calls, "{l:#?}");
    for (task, r) in &l.tasks {
        println!(
            "  {task}: {} calls, {} fallback batches, {} fallback items, dropped {:?}",
            r.usage.calls, r.stats.fallback_batches, r.stats.fallback_items, r.stats.dropped
        );
    }
}
