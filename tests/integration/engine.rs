//! The engine's shape: one prepared context shared by several variants, eval equal to
//! a fresh store's generate, cancellation mid-phase that leaves nothing behind, and one
//! model client whose limits hold across runs at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bundleforge::app;
use bundleforge::cancel::CancelToken;
use bundleforge::config::Settings;
use bundleforge::domain::{self, Order, OrderLine, ProductRef, StoreId};
use bundleforge::embed::HashingEmbedder;
use bundleforge::eval::{self, EvalOptions};
use bundleforge::ingest::IngestBatch;
use bundleforge::pipeline::{
    self, Phase, PipelineError, PrepareOptions, Recorder, RunEvent, RunObserver, RunProgress,
    RunRequest, Step, Variant,
};
use bundleforge::store::{CatalogStore, StoreData};
use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::mock_llm::{MockLlm, Reply};
use crate::support::{TestDb, ingest_dir, local_model, repo_root, services_for};

fn bundles_json(out: &pipeline::RunOutput) -> String {
    serde_json::to_string(&out.bundles).unwrap()
}

#[tokio::test]
async fn three_variants_share_one_context_and_each_equals_its_own_generate() {
    let (_db, services) = crate::support::small_fixture(local_model(), None).await;
    let id = StoreId::parse("small").unwrap();
    let seed = 42;
    let recorder = Recorder::default();
    let never = CancelToken::never();
    let prepare_options = PrepareOptions {
        seed,
        ..PrepareOptions::default()
    };
    let ctx = Arc::new(
        pipeline::prepare(&services, &id, &prepare_options, &recorder, &never)
            .await
            .unwrap(),
    );
    for weights in [None, Some([1.0, 0.0, 0.0]), Some([0.0, 1.0, 0.0])] {
        let variant = Variant {
            weights,
            seed,
            ..Variant::default()
        };
        let shared = pipeline::run(&ctx, &variant, &services, &recorder, &never)
            .await
            .unwrap();
        let alone = app::generate(
            &services,
            &id,
            &RunRequest {
                variant: Variant {
                    weights,
                    ..RunRequest::seeded(seed).variant
                },
                ..RunRequest::seeded(seed)
            },
        )
        .await
        .unwrap();
        assert!(!shared.bundles.is_empty());
        assert_eq!(
            bundles_json(&shared),
            bundles_json(&alone),
            "weights {weights:?}"
        );
        assert_eq!(shared.run.weights, alone.run.weights);
    }
    let events = recorder.events();
    let started = |phase: Phase| {
        events
            .iter()
            .filter(|e| matches!(e, RunEvent::Started { phase: p, .. } if *p == phase))
            .count()
    };
    assert_eq!(started(Phase::Context), 1, "phase 0 ran once");
    for phase in [Phase::Candidates, Phase::Optimize, Phase::Copy] {
        assert_eq!(started(phase), 3, "{phase:?} once per variant");
    }
    // Cells are reported as they finish, up to all 40.
    assert!(events.iter().any(|e| matches!(
        e,
        RunEvent::Progress {
            phase: Phase::Candidates,
            done: 40,
            total: 40
        }
    )));
}

/// Phase 0 tells how its embeddings and classification go, batch by batch, so that a
/// dashboard following a long preparation moves; a job's phases fold the steps in.
#[tokio::test]
async fn phase_0_reports_its_embeddings_and_classification_batch_by_batch() {
    let db = TestDb::new().await;
    ingest_dir(&db, "small", &repo_root().join("fixtures/stores/small")).await;
    let mut settings = Settings::defaults().unwrap();
    // Small batches, so the small store's catalog takes many of each.
    settings.embed.batch_size = 4;
    settings.llm.classify_batch = 4;
    let embedder = Arc::new(HashingEmbedder::new(64).with_batch_size(4));
    let services = services_for(&db, embedder, settings).await;
    let id = StoreId::parse("small").unwrap();
    let recorder = Recorder::default();
    let ctx = pipeline::prepare(
        &services,
        &id,
        &PrepareOptions::default(),
        &recorder,
        &CancelToken::never(),
    )
    .await
    .unwrap();
    let products = ctx.data.products.len() as u64;
    assert!(products > 8, "more than two batches: {products}");
    let events = recorder.events();
    for step in [Step::Embeddings, Step::Classification] {
        let told: Vec<(u64, u64)> = events
            .iter()
            .filter_map(|e| match e {
                RunEvent::StepProgress {
                    phase: Phase::Context,
                    step: s,
                    done,
                    total,
                } if *s == step => Some((*done, *total)),
                _ => None,
            })
            .collect();
        assert!(told.len() > 2, "{step:?} told once per batch: {told:?}");
        assert!(told.iter().all(|&(_, total)| total == products), "{told:?}");
        assert!(
            told.windows(2).all(|w| w[0].0 < w[1].0),
            "{step:?} only moves forward: {told:?}"
        );
        assert_eq!(told.last().map(|t| t.0), Some(products), "{step:?}");
    }
    // Both steps are told between the phase's start and its end.
    let index = |wanted: fn(&RunEvent) -> bool| events.iter().position(wanted).unwrap();
    let started = index(|e| {
        matches!(
            e,
            RunEvent::Started {
                phase: Phase::Context,
                ..
            }
        )
    });
    let finished = index(|e| {
        matches!(
            e,
            RunEvent::Finished {
                phase: Phase::Context,
                ..
            }
        )
    });
    let first_step = index(|e| matches!(e, RunEvent::StepProgress { .. }));
    assert!(started < first_step && first_step < finished);

    // As a job stores them: phase 0 with each step done to its total.
    let mut phases = RunProgress::default();
    for e in &events {
        phases.record(e);
    }
    let context = &phases.0[0];
    assert_eq!(context.phase, Phase::Context);
    for step in ["embeddings", "classification"] {
        let s = context.steps[step];
        assert_eq!((s.done, s.total), (products, products), "{step}");
    }
}

/// The store's data as an ingest as it was on `day`: the products that existed (created
/// by then; without a creation date, first ordered by then or never ordered) and the
/// orders up to its end.
fn as_of(data: &StoreData, day: NaiveDate) -> IngestBatch {
    let end = bundleforge::stats::end_of_day(day);
    let mut first = vec![None; data.products.len()];
    for o in &data.orders {
        for l in &o.lines {
            if let Some(i) = l.item {
                first[i as usize].get_or_insert(o.created_at);
            }
        }
    }
    let products = data
        .products
        .iter()
        .zip(&first)
        .filter(|(p, f)| match p.created_at {
            Some(t) => t <= end,
            None => f.is_none_or(|t| t <= end),
        })
        .map(|(p, _)| p.clone())
        .collect();
    let orders = data
        .orders
        .iter()
        .filter(|o| o.created_at <= end)
        .map(|o| Order {
            order_id: o.order_id.clone(),
            name: None,
            created_at: o.created_at,
            customer_key: o.customer_key.clone(),
            currency: data.store.currency,
            currency_assumed: o.currency_assumed,
            lines: o
                .lines
                .iter()
                .filter_map(|l| {
                    let p = &data.products[l.item? as usize];
                    Some(OrderLine {
                        product: ProductRef {
                            variant_id: Some(p.variant_id.clone()),
                            ..ProductRef::default()
                        },
                        item_id: Some(p.variant_id.clone()),
                        quantity: l.quantity,
                        unit_price_minor: l.unit_price_minor,
                        discount_minor: l.discount_minor,
                    })
                })
                .collect(),
        })
        .collect();
    IngestBatch {
        products,
        observations: Vec::new(),
        orders,
        data_currency: Some(data.store.currency),
        ..Default::default()
    }
}

#[tokio::test]
async fn eval_at_a_cutoff_gives_what_generate_gives_on_the_store_as_it_was_then() {
    let (db, services) = crate::support::small_fixture(local_model(), None).await;
    let id = StoreId::parse("small").unwrap();
    let cutoff = NaiveDate::from_ymd_opt(2026, 4, 30).unwrap();
    let options = EvalOptions {
        split: eval::SplitAt::Day(cutoff),
        run: RunRequest::seeded(42),
        k: 50,
    };
    let (_, evaluated) = eval::evaluate(&services, &id, &options).await.unwrap();

    let data = db.store.load(&id).await.unwrap();
    let then = as_of(&data, cutoff);
    assert!(
        then.products.len() < data.products.len(),
        "the cutoff should leave out products launched after it"
    );
    let fresh = TestDb::new().await;
    let meta = domain::Store {
        id: id.clone(),
        currency: data.store.currency,
        locale: data.store.locale.clone(),
    };
    fresh.store.write_ingest(&meta, &then).await.unwrap();
    let fresh_services = services_for(&fresh, local_model(), Settings::defaults().unwrap()).await;
    let generated = app::generate(
        &fresh_services,
        &id,
        &RunRequest {
            prepare: PrepareOptions {
                as_of: Some(cutoff),
                ..RunRequest::seeded(42).prepare
            },
            ..RunRequest::seeded(42)
        },
    )
    .await
    .unwrap();
    assert!(!generated.bundles.is_empty());
    assert_eq!(bundles_json(&evaluated), bundles_json(&generated));
}

/// An Online Retail-shaped file (no catalog: titles and prices come from the rows) whose
/// descriptions and prices change over the quarter, as (date, csv row) pairs.
fn drifting_retail_rows() -> Vec<(NaiveDate, String)> {
    let start = NaiveDate::from_ymd_opt(2011, 1, 3).unwrap();
    let mut rows = Vec::new();
    for invoice in 0..240u32 {
        let day = start + chrono::Days::new(u64::from(invoice * 88 / 240));
        let late = invoice >= 120;
        for k in 0..4u32 {
            let code = (invoice * 7 + k * 5) % 24;
            // Product 0 is renamed and dearer in the second half; the rest keep theirs.
            let (name, pence) = match (code, late) {
                (0, false) => ("RED HEART LANTERN".to_owned(), 250),
                (0, true) => ("HEART LANTERN RED".to_owned(), 295),
                (c, _) => (format!("GIFT ITEM {c}"), 100 + 10 * c + (invoice % 3)),
            };
            rows.push((
                day,
                format!(
                    "{},{:05},{name},{},{day} 10:{:02}:00,{}.{:02},{},United Kingdom",
                    600_000 + invoice,
                    10_000 + code,
                    1 + k,
                    invoice % 60,
                    pence / 100,
                    pence % 100,
                    17_000 + invoice % 50
                ),
            ));
        }
    }
    rows
}

#[tokio::test]
async fn at_a_cutoff_catalog_fields_derived_from_orders_come_from_the_orders_up_to_it() {
    let rows = drifting_retail_rows();
    let cutoff = NaiveDate::from_ymd_opt(2011, 2, 10).unwrap();
    let header =
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country";
    let write = |db: &TestDb, name: &str, keep: &dyn Fn(NaiveDate) -> bool| {
        let lines: Vec<&str> = rows
            .iter()
            .filter(|(d, _)| keep(*d))
            .map(|(_, r)| r.as_str())
            .collect();
        let path = db.dir.path().join(name);
        std::fs::write(&path, format!("{header}\n{}\n", lines.join("\n"))).unwrap();
        path
    };
    let whole = TestDb::new().await;
    let all = write(&whole, "all.csv", &|_| true);
    whole.ingest_ok("retail", crate::support::orders(all)).await;
    let early = TestDb::new().await;
    let upto = write(&early, "early.csv", &|d| d <= cutoff);
    early
        .ingest_ok("retail", crate::support::orders(upto))
        .await;

    let id = StoreId::parse("retail").unwrap();
    let settings = Settings::defaults().unwrap();
    let whole_services =
        services_for(&whole, Arc::new(HashingEmbedder::new(64)), settings.clone()).await;
    let early_services = services_for(&early, Arc::new(HashingEmbedder::new(64)), settings).await;
    let at = PrepareOptions {
        as_of: Some(cutoff),
        ..PrepareOptions::default()
    };
    let (none, never) = (&pipeline::NoObserver, &CancelToken::never());
    let then = pipeline::prepare(&whole_services, &id, &at, none, never)
        .await
        .unwrap();
    let fresh = pipeline::prepare(&early_services, &id, &at, none, never)
        .await
        .unwrap();
    let fields = |data: &StoreData| -> Vec<(String, String, i64)> {
        data.products
            .iter()
            .map(|p| (p.variant_id.clone(), p.title.clone(), p.price.minor))
            .collect()
    };
    assert_eq!(fields(&then.data), fields(&fresh.data));
    // Over the whole file product 0 takes its later name and a dearer median price,
    // so the fields at the cutoff are not the stored ones: the test can fail.
    let stored = whole.store.load(&id).await.unwrap();
    let lantern = |data: &StoreData| {
        let p = data
            .products
            .iter()
            .find(|p| p.variant_id == "10000")
            .unwrap();
        (p.title.clone(), p.price.minor)
    };
    assert_eq!(lantern(&then.data), ("RED HEART LANTERN".to_owned(), 250));
    let (title, price) = lantern(&stored);
    assert!(
        title == "HEART LANTERN RED" && price > 250,
        "{title} {price}"
    );

    // A catalog ingest replaces the derived entry: its fields then stand at any cutoff.
    let catalog = whole.dir.path().join("catalog.csv");
    std::fs::write(
        &catalog,
        "Handle,Title,Variant SKU,Variant Price\nlantern,Heart Lantern,10000,3.10\n",
    )
    .unwrap();
    whole
        .ingest_ok(
            "retail",
            bundleforge::ingest::IngestSources::from_paths(None, Some(catalog), None, None),
        )
        .await;
    let again = pipeline::prepare(&whole_services, &id, &at, none, never)
        .await
        .unwrap();
    let lantern = again
        .data
        .products
        .iter()
        .find(|p| p.sku.as_deref() == Some("10000"))
        .unwrap();
    assert_eq!(
        (lantern.title.as_str(), lantern.price.minor),
        ("Heart Lantern", 310)
    );
}

/// Cancels the run when `when` first matches an event, and remembers the instant.
struct CancelOn {
    token: CancelToken,
    when: fn(&RunEvent) -> bool,
    at: Mutex<Option<Instant>>,
    events: Recorder,
}

impl RunObserver for CancelOn {
    fn event(&self, event: &RunEvent) {
        self.events.event(event);
        if (self.when)(event) && !self.token.is_cancelled() {
            if let Ok(mut at) = self.at.lock() {
                *at = Some(Instant::now());
            }
            self.token.cancel();
        }
    }
}

impl CancelOn {
    fn new(when: fn(&RunEvent) -> bool) -> CancelOn {
        CancelOn {
            token: CancelToken::new(),
            when,
            at: Mutex::new(None),
            events: Recorder::default(),
        }
    }

    fn cancelled_at(&self) -> Instant {
        self.at.lock().unwrap().expect("the run was cancelled")
    }
}

#[tokio::test]
async fn a_run_cancelled_in_phase_1_stops_at_once_and_saves_nothing() {
    // A large synthetic store, one thread and every eligible product an anchor with
    // many partners: phase 1 takes seconds.
    let db = TestDb::new().await;
    let dir = db.dir.path().join("large");
    let store = bundleforge::fixtures::generate(bundleforge::fixtures::FixtureSize::Large, 3);
    bundleforge::fixtures::write_store(&store, &dir, true).unwrap();
    ingest_dir(&db, "large", &dir).await;
    let mut settings = Settings::defaults().unwrap();
    settings.pipeline.threads = 1;
    settings.pipeline.anchors_per_objective = 3000;
    settings.pipeline.partners_per_anchor = 40;
    let services = services_for(&db, Arc::new(HashingEmbedder::new(64)), settings).await;
    let observer = CancelOn::new(|e| {
        matches!(
            e,
            RunEvent::Progress {
                phase: Phase::Candidates,
                done: 2,
                ..
            }
        )
    });
    let result = app::generate_with(
        &services,
        &StoreId::parse("large").unwrap(),
        &RunRequest::default(),
        &observer,
        &observer.token,
    )
    .await;
    let latency = observer.cancelled_at().elapsed();
    eprintln!("cancelled after 2 of 40 cells; returned {latency:?} later");
    match result {
        Err(app::AppError::Pipeline(PipelineError::Cancelled(_))) => {}
        other => panic!("expected Cancelled, got {:?}", other.map(|o| o.run.run_id)),
    }
    assert!(latency < Duration::from_millis(500), "{latency:?}");
    let events = observer.events.events();
    assert!(
        !events.iter().any(|e| matches!(
            e,
            RunEvent::Finished {
                phase: Phase::Candidates,
                ..
            }
        )),
        "phase 1 finished although it was cancelled"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM runs").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM bundles").await, 0);
}

/// Whether the request's prompt opens with `start` (each task's prompt has its own).
fn is_task(request: &Value, start: &str) -> bool {
    request["messages"].as_array().is_some_and(|m| {
        m.iter()
            .any(|m| m["content"].as_str().is_some_and(|c| c.starts_with(start)))
    })
}

/// Valid, empty answers: every item falls back offline, no call fails.
fn empty_answers(request: &Value) -> Reply {
    let key = if is_task(request, "Classify each product") {
        "products"
    } else if is_task(request, "The kinds of product") {
        "pairs"
    } else {
        "bundles"
    };
    Reply::content(&json!({ key: [] }).to_string())
}

fn mock_settings(mock: &MockLlm, concurrency: usize) -> Settings {
    let mut settings = Settings::defaults().unwrap();
    settings.llm = bundleforge::config::LlmSettings {
        model: "mock".into(),
        concurrency,
        breaker_failures: 1000,
        // Only the concurrency bound shapes these runs, not the account's token rate
        // nor the command's budget (a loaded debug build can take longer than the
        // default to reach the copy wave, which would then be answered offline).
        tokens_per_minute: 100_000_000,
        task_budget_seconds: 3600.0,
        ..mock.settings()
    };
    settings
}

#[tokio::test]
async fn a_run_cancelled_in_the_copy_wave_stops_at_once_and_saves_nothing() {
    let mock = MockLlm::start().await;
    mock.respond(|request| empty_answers(request).delay(Duration::from_secs(1)));
    let db = TestDb::new().await;
    ingest_dir(&db, "medium", &repo_root().join("fixtures/stores/medium")).await;
    let services = services_for(&db, local_model(), mock_settings(&mock, 8)).await;
    let observer = CancelOn::new(|e| {
        matches!(
            e,
            RunEvent::Started {
                phase: Phase::Copy,
                ..
            }
        )
    });
    // Cancel a little after the copy calls went out.
    let token = observer.token.clone();
    let delayed = CancelToken::new();
    let (id, options) = (StoreId::parse("medium").unwrap(), RunRequest::default());
    let result = {
        let run = app::generate_with(&services, &id, &options, &observer, &delayed);
        let trigger = async {
            token.cancelled().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            delayed.cancel();
            Instant::now()
        };
        tokio::join!(run, trigger)
    };
    let (result, cancelled_at) = result;
    let latency = cancelled_at.elapsed();
    assert!(
        matches!(
            result,
            Err(app::AppError::Pipeline(PipelineError::Cancelled(_)))
        ),
        "expected Cancelled, got {:?}",
        result.as_ref().map(|r| r.run.run_id.clone())
    );
    assert!(latency < Duration::from_millis(500), "{latency:?}");
    let copy_calls = mock
        .requests()
        .iter()
        .filter(|(_, r)| is_task(r, "Write shop copy"))
        .count();
    assert!(copy_calls > 0, "the copy wave had started");
    assert_eq!(db.count("SELECT COUNT(*) FROM runs").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM bundles").await, 0);
}

#[tokio::test]
async fn two_runs_at_once_share_the_model_accounts_concurrency() {
    let mock = MockLlm::start().await;
    mock.respond(|request| empty_answers(request).delay(Duration::from_millis(150)));
    let (db, _) = crate::support::small_fixture(local_model(), None).await;
    let services = services_for(&db, local_model(), mock_settings(&mock, 4)).await;
    let id = StoreId::parse("small").unwrap();
    let a = RunRequest::seeded(1);
    let b = RunRequest::seeded(2);
    let (ra, rb) = tokio::join!(
        app::generate(&services, &id, &a),
        app::generate(&services, &id, &b)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(mock.requests().len() >= 16, "{}", mock.requests().len());
    assert_eq!(mock.max_in_flight(), 4, "never more than 4, and 4 reached");
    // Each run reports its own calls; the requests they sent are what the server saw.
    assert!(ra.run.llm.calls > 0 && rb.run.llm.calls > 0);
    assert_eq!(
        ra.run.llm.sent + rb.run.llm.sent,
        mock.requests().len() as u64
    );
}

#[tokio::test]
async fn a_run_whose_files_cannot_be_written_is_not_stored() {
    let (db, services) = crate::support::small_fixture(local_model(), None).await;
    let id = StoreId::parse("small").unwrap();
    let never = CancelToken::never();
    let result = app::generate_placed(
        &services,
        &id,
        &RunRequest::default(),
        &bundleforge::pipeline::NoObserver,
        &never,
        |_| {
            Err(bundleforge::destination::DestinationError::Io {
                path: "runs/full-disk".into(),
                source: std::io::Error::other("no space left on device"),
            })
        },
    )
    .await;
    let err = result.expect_err("the files failed");
    assert!(err.to_string().contains("no space left"), "{err}");
    assert_eq!(db.count("SELECT COUNT(*) FROM runs").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM bundles").await, 0);

    // Placed files whose run then cannot be stored are taken back.
    let dest = db.dir.path().join("placed");
    let url = format!("sqlite://{}", db.dir.path().join("test.sqlite").display());
    let result = app::generate_placed(
        &services,
        &id,
        &RunRequest::default(),
        &bundleforge::pipeline::NoObserver,
        &never,
        |out| {
            let (staged, _) =
                bundleforge::pipeline::output::stage_all(&dest, false, out, None)?;
            let placed = staged.place()?;
            assert!(dest.join("bundles.json").is_file());
            // The database goes read-only under the run's feet.
            std::thread::spawn({
                let url = url.clone();
                move || {
                    let rt = tokio::runtime::Runtime::new().unwrap();
                    rt.block_on(async {
                        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                        sqlx::query("CREATE TRIGGER no_runs BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, 'disk full'); END")
                            .execute(&pool)
                            .await
                            .unwrap();
                    });
                }
            })
            .join()
            .unwrap();
            Ok(placed)
        },
    )
    .await;
    assert!(result.is_err());
    assert!(
        !dest.exists(),
        "the files of a run that was not stored are gone"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM runs").await, 0);
}

#[tokio::test]
async fn an_endpoint_that_never_answers_costs_the_budget_not_minutes() {
    let mock = MockLlm::start().await;
    // Accepts every request and never answers (within any test's patience).
    mock.fallback(Reply::content("{}").delay(Duration::from_secs(600)));
    let (db, offline) = crate::support::small_fixture(local_model(), None).await;
    let id = StoreId::parse("small").unwrap();
    // The catalog's embeddings cached first: what is timed below is the model's part.
    app::classify(&offline, &id).await.unwrap();
    let mut settings = Settings::defaults().unwrap();
    let budget = 3.0;
    settings.llm = bundleforge::config::LlmSettings {
        model: "mock".into(),
        task_budget_seconds: budget,
        // The defaults a merchant has: a minute per call and three retries.
        timeout_seconds: 60.0,
        max_retries: 3,
        ..mock.settings()
    };
    let services = services_for(&db, local_model(), settings).await;
    let limit = Duration::from_secs_f64(budget + 5.0);

    let started = Instant::now();
    let classified = app::classify(&services, &id).await.unwrap();
    let took = started.elapsed();
    assert!(took < limit, "classify took {took:?}");
    assert!(!mock.requests().is_empty(), "the model was asked");
    assert_eq!(classified.fallback, classified.products.len());
    assert!(
        classified
            .products
            .iter()
            .all(|p| p.source == domain::TextSource::Offline)
    );

    let started = Instant::now();
    let out = app::generate(&services, &id, &RunRequest::default())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took < limit, "generate took {took:?}");
    assert!(!out.bundles.is_empty());
    assert_eq!(out.run.classification, domain::TextSource::Offline);
    for b in &out.bundles {
        assert_eq!(b.copy.source, domain::TextSource::Offline, "{}", b.id);
    }
    // Every batch asked fell back, and the report says why (the budget ran out, or
    // the breaker its time-outs opened refused the call).
    assert!(
        out.run.llm.failures > 0 || out.run.llm.breaker_open,
        "{:?}",
        out.run.llm
    );
    for (task, t) in &out.run.llm.tasks {
        assert_eq!(t.stats.fallback_batches, t.stats.batches, "{task}");
    }
}
