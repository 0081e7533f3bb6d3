//! Ingest benchmarks: parsing + validation + catalog join (no database), and the whole
//! ingest into a fresh SQLite file. Inputs: the committed medium fixture store and, when
//! it is beside the repository, the real UCI Online Retail file.
//!
//! Run: `cargo bench --bench ingest`. Whole-process figures come from
//! `bundleforge bench ingest` (see BENCHMARKS.md).

use std::path::PathBuf;
use std::sync::Arc;

use bundleforge::app;
use bundleforge::config::Settings;
use bundleforge::domain::{Currency, StoreId};
use bundleforge::ingest::{self, CatalogKeys, IngestContext, IngestSources, NoProgress};
use bundleforge::store::SqliteStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn inputs() -> Vec<(&'static str, IngestSources)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let medium = root.join("fixtures/stores/medium");
    let mut v = vec![(
        "fixture_medium",
        IngestSources::from_paths(
            Some(medium.join("orders.csv")),
            Some(medium.join("products.csv")),
            None,
            None,
        ),
    )];
    let uci = root.join("../shared/data/online_retail/online_retail.csv.gz");
    if uci.exists() {
        v.push((
            "online_retail",
            IngestSources::from_paths(Some(uci), None, None, None),
        ));
    }
    v
}

fn parse(files: &IngestSources) -> u64 {
    let ctx = IngestContext {
        default_currency: Currency::USD,
        currency_fixed: false,
    };
    let mut batch = ingest::read(files, &ctx, &NoProgress).expect("readable input");
    let mut keys = CatalogKeys::default();
    keys.add_products(&batch.products);
    ingest::resolve_lines(&mut batch, &keys);
    batch.report.order_lines
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest/parse");
    group.sample_size(10);
    for (name, files) in inputs() {
        let rows = ingest::read(
            &files,
            &IngestContext {
                default_currency: Currency::USD,
                currency_fixed: false,
            },
            &NoProgress,
        )
        .expect("readable input")
        .report
        .rows_read;
        group.throughput(Throughput::Elements(rows));
        group.bench_function(name, |b| b.iter(|| parse(&files)));
    }
    group.finish();
}

fn bench_whole(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let settings = Settings::defaults().expect("defaults");
    let id = StoreId::parse("bench").expect("id");
    let mut group = c.benchmark_group("ingest/whole_sqlite");
    group.sample_size(10);
    for (name, files) in inputs() {
        group.bench_function(name, |b| {
            b.iter_batched(
                || tempfile::tempdir().expect("temp dir"),
                |dir| {
                    runtime.block_on(async {
                        let url = format!("sqlite://{}", dir.path().join("b.sqlite").display());
                        let store = SqliteStore::open(&url).await.expect("open");
                        app::ingest(&store, &id, files.clone(), &settings, Arc::new(NoProgress))
                            .await
                            .expect("ingest")
                    })
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse, bench_whole);
criterion_main!(benches);
