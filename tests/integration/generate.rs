//! `generate`, phases 0 and 1, on the small fixture store with the real local model:
//! planted structure is found, runs repeat exactly, phase 0 tasks overlap, and the
//! model's invented ids never reach a candidate.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bundleforge::app::{self, Services};
use bundleforge::domain::{BundleType, Objective, StoreId};
use bundleforge::embed::{EmbedError, Embedder};
use bundleforge::pipeline::RunOutput;
use bundleforge::pipeline::{RunRequest, Variant};
use serde_json::{Value, json};

use crate::mock_llm::{MockLlm, Reply};
use crate::support::{TestDb, repo_root};

pub use crate::support::local_model;

/// The small fixture store in a fresh database, and the ports of a run over it.
async fn small_store(embedder: Arc<dyn Embedder>) -> (TestDb, Services) {
    crate::support::small_fixture(embedder, None).await
}

async fn run(deps: &Services, options: &RunRequest) -> RunOutput {
    match app::generate(deps, &StoreId::parse("small").unwrap(), options).await {
        Ok(out) => out,
        Err(e) => panic!("generate failed: {e}"),
    }
}

fn planted() -> Value {
    let text = std::fs::read_to_string(repo_root().join("fixtures/stores/small/planted.json"))
        .expect("planted.json");
    serde_json::from_str(&text).expect("planted.json is JSON")
}

fn ids(c: &bundleforge::pipeline::CandidateOut) -> HashSet<&str> {
    c.products.iter().map(|p| p.product_id.as_str()).collect()
}

#[tokio::test]
async fn the_generators_find_the_planted_structure() {
    let (_db, deps) = small_store(local_model()).await;
    let out = run(&deps, &RunRequest::default()).await;
    let planted = planted();
    let of = |o: Objective, t: BundleType| {
        out.candidates
            .iter()
            .filter(move |c| c.objective == o && c.bundle_type == t)
    };

    // Every planted complementary pair is a fixed set and an add-on.
    for pair in planted["complementary_pairs"].as_array().unwrap() {
        let (a, b) = (pair["a"].as_str().unwrap(), pair["b"].as_str().unwrap());
        for t in [BundleType::Fixed, BundleType::Addon] {
            assert!(
                of(Objective::IncreaseAov, t)
                    .chain(of(Objective::CrossSell, t))
                    .any(|c| ids(c).contains(a) && ids(c).contains(b)),
                "planted pair {a} + {b} is not a {t} candidate"
            );
        }
    }
    // Consumables are sold in volume tiers.
    let volume: HashSet<&str> = of(Objective::Replenish, BundleType::Volume)
        .flat_map(|c| c.products.iter().map(|p| p.product_id.as_str()))
        .collect();
    let consumables: Vec<&str> = planted["consumables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        consumables.iter().filter(|c| volume.contains(**c)).count() >= 3,
        "consumables {consumables:?}, volume anchors {volume:?}"
    );
    // Slow movers and new launches anchor their objectives; seasonal items theirs.
    for (key, objective) in [
        ("slow_movers", Objective::ClearSlowMovers),
        // New launches are left out here: they have no orders, and this fixture's
        // orders do not pair their categories with their neighbours' (jigsaw puzzles
        // and puzzle accessories: 1 order where chance predicts 1), so nothing
        // justifies a partner yet; a complement prior mined from other stores is what
        // carries them (the cold-start work).
        ("seasonal", Objective::Seasonal),
    ] {
        let anchors: HashSet<&str> = out
            .candidates
            .iter()
            .filter(|c| c.objective == objective)
            .map(|c| c.products[0].product_id.as_str())
            .collect();
        let wanted: Vec<&str> = planted[key]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            wanted.iter().any(|p| anchors.contains(p)),
            "{objective}: anchors {anchors:?} hold none of the planted {key} {wanted:?}"
        );
    }
    // Mix & match groups (where the orders show shoppers mixing) hold alike products:
    // 3–6 of them and a pick smaller than the group.
    let groups: Vec<_> = out
        .candidates
        .iter()
        .filter(|c| c.bundle_type == BundleType::MixMatch)
        .collect();
    for g in groups {
        assert!((3..=6).contains(&g.products.len()), "{g:?}");
        let pick = g.pick.expect("a mix & match group has a pick") as usize;
        assert!((2..g.products.len()).contains(&pick), "{g:?}");
    }
    // Gift cards never become candidates.
    let gift_cards: Vec<&str> = planted["gift_cards"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        out.candidates
            .iter()
            .all(|c| gift_cards.iter().all(|g| !ids(c).contains(g)))
    );
    // Forty cells, each with candidates or the reason it has none (the quality rules
    // empty mix & match and cross-selling's single-product cells here).
    assert_eq!(out.run.cells.len(), 40);
    for cell in &out.run.cells {
        assert_eq!(cell.candidates == 0, cell.why.is_some(), "{cell:?}");
    }
    assert!(out.run.cells.iter().filter(|c| c.candidates > 0).count() >= 20);
    // Scores are within [0, 1] and carry their weights.
    for c in &out.candidates {
        let s = &c.score;
        assert!((0.0..=1.0).contains(&s.total), "{s:?}");
        let again = s.alpha * s.llm + s.beta * s.transactional + s.gamma * s.business;
        assert!((again - s.total).abs() < 1e-9);
    }
    assert_eq!(out.run.tier, bundleforge::stats::Tier::Small);
    assert_eq!(
        (
            out.run.weights.alpha,
            out.run.weights.beta,
            out.run.weights.gamma
        ),
        (0.6, 0.2, 0.2)
    );
}

#[tokio::test]
async fn the_same_input_and_seed_give_the_same_candidates_and_weights_can_be_overridden() {
    let (_db, deps) = small_store(local_model()).await;
    let options = RunRequest::seeded(7);
    let a = run(&deps, &options).await;
    let b = run(&deps, &options).await;
    assert_eq!(
        serde_json::to_string(&a.candidates).unwrap(),
        serde_json::to_string(&b.candidates).unwrap()
    );
    let c = run(
        &deps,
        &RunRequest {
            variant: Variant {
                weights: Some([0.1, 0.8, 0.1]),
                objectives: vec![Objective::CrossSell],
                ..options.variant.clone()
            },
            ..options.clone()
        },
    )
    .await;
    assert!(c.run.weights_overridden);
    assert_eq!(c.run.cells.len(), 5);
    assert!(
        c.candidates
            .iter()
            .all(|x| x.objective == Objective::CrossSell)
    );
    assert!(c.candidates.iter().all(|x| x.score.beta == 0.8));
}

/// A real embedder made slow, so the embeddings task lasts long enough to show what
/// runs beside it.
struct Slow(Arc<dyn Embedder>);

#[async_trait]
impl Embedder for Slow {
    fn model_id(&self) -> &str {
        self.0.model_id()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.0.embed(texts).await
    }
}

#[tokio::test]
async fn phase_0_tasks_run_beside_the_embeddings() {
    let (_db, deps) = small_store(Arc::new(Slow(local_model()))).await;
    let out = run(&deps, &RunRequest::default()).await;
    let task = |name: &str| {
        out.run
            .timings
            .tasks
            .iter()
            .find(|t| t.task == name)
            .unwrap_or_else(|| panic!("no timing for {name}"))
            .clone()
    };
    let embeddings = task("embeddings");
    for name in ["rules", "statistics"] {
        let t = task(name);
        // Had it waited for the embeddings, it would have started after they ended.
        assert!(
            t.start_ms < embeddings.end_ms && embeddings.start_ms < t.end_ms,
            "{name} {t:?} does not overlap embeddings {embeddings:?}"
        );
    }
}

#[tokio::test]
async fn an_invented_id_from_the_model_never_reaches_a_candidate() {
    let mock = MockLlm::start().await;
    mock.respond(|request| {
        let user = request["messages"][1]["content"].as_str().unwrap_or("");
        let offered: Vec<String> = user
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["id"].as_str().map(str::to_owned))
            .collect();
        if user.contains("<products>") {
            let products: Vec<Value> = offered
                .iter()
                .map(|id| json!({"id": id, "tags": ["gift", "cross_sell"]}))
                .collect();
            return Reply::content(&json!({ "products": products }).to_string());
        }
        // Proposals: one real pair with an invented third product, and one set made of
        // an invented product only.
        let a = offered.first().cloned().unwrap_or_default();
        let b = offered.get(1).cloned().unwrap_or_default();
        Reply::content(
            &json!({"bundles": [
                {"type": "fixed", "products": [a, b, "SKU-DOES-NOT-EXIST"], "reason": "together"},
                {"type": "volume", "products": ["SKU-DOES-NOT-EXIST"], "reason": "ghost"}
            ]})
            .to_string(),
        )
    });
    let (db, _) = small_store(local_model()).await;
    let mut settings = bundleforge::config::Settings::defaults().unwrap();
    settings.llm = bundleforge::config::LlmSettings {
        model: "mock".into(),
        ..mock.settings()
    };
    let deps = crate::support::services_for(&db, local_model(), settings).await;
    let out = run(&deps, &RunRequest::default()).await;
    let catalog: HashSet<String> = {
        let text = std::fs::read_to_string(repo_root().join("fixtures/stores/small/products.csv"))
            .unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let headers = r.headers().unwrap().clone();
        let sku = headers.iter().position(|h| h == "Variant SKU").unwrap();
        r.records()
            .filter_map(|x| x.ok())
            .map(|x| x[sku].to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    assert!(!out.candidates.is_empty());
    for c in &out.candidates {
        for p in &c.products {
            assert!(
                catalog.contains(&p.product_id),
                "{} is not in the catalog",
                p.product_id
            );
        }
    }
    // The model was asked (one proposal call per objective) and its sets were used.
    assert_eq!(out.run.classification, bundleforge::domain::TextSource::Llm);
    let asked: Vec<_> = out.run.proposals.iter().filter_map(|p| p.source).collect();
    assert!(asked.len() >= 6, "{:?}", out.run.proposals);
    assert!(
        asked
            .iter()
            .all(|&s| s == bundleforge::domain::TextSource::Llm)
    );
    assert!(out.candidates.iter().any(|c| {
        c.sources
            .contains(&bundleforge::pipeline::model::Source::Llm)
    }));
    let dropped = &out.run.llm.tasks["propose_bundles.v1"].stats.dropped;
    assert!(dropped.unknown_ids >= 8, "{dropped:?}");
}
