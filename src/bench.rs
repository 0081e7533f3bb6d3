//! Whole-operation benchmarks, the work behind `bundleforge bench`. Each bench is
//! plain options in, a report out: the report serialises to the JSON the command
//! prints and renders the text it prints, so the CLI only parses and prints, and
//! anything else (a service, a script, a test) measures the same way.
//!
//! Reports are read by scripts (`benches/peers`, BENCHMARKS.md), so their shapes are
//! held fixed: where a report was first printed from a `serde_json::json!` map, which
//! sorts its keys, its struct lists its fields in that sorted order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::pipeline::RunRequest;
use serde::Serialize;

use crate::app::{self, AppError, Services};
use crate::config::Settings;
use crate::domain::{InvalidStoreId, StoreId};
use crate::embed::EmbedError;
use crate::index::{self, ExactIndex, HnswIndex, HnswParams, Matrix, recall_at_k, synthetic};
use crate::ingest::IngestSources;
use crate::rules::synthetic::StressSpec;
use crate::rules::{self, Attempt, Fraction, MinSupport, MiningOptions, Target};
use crate::services::ServicesError;
use crate::store::StoreError;

pub mod serve;
pub use serve::{ServeOptions, ServeReport};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Options no measurement can be made with (no runs, nothing to search).
    #[error("invalid bench options: {0}")]
    BadOptions(&'static str),
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Services(#[from] ServicesError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    StoreId(#[from] InvalidStoreId),
    #[error("cannot create a temporary directory")]
    TempDir(#[source] std::io::Error),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot render the report: {0}")]
    Render(#[from] serde_json::Error),
    #[error("cannot find a free port on 127.0.0.1")]
    Port(#[source] std::io::Error),
    /// The measured server did not start or answer as it should.
    #[error("bench serve: {0}")]
    Serve(String),
}

fn write_file(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), BenchError> {
    std::fs::write(path, bytes).map_err(|source| BenchError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Little-endian f32s, no header (numpy's `fromfile(path, "<f4")` reads them).
fn write_f32(path: &Path, values: &[f32]) -> Result<(), BenchError> {
    let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
    write_file(path, bytes)
}

/// The vectors a search bench searches.
#[derive(Debug, Clone)]
pub enum SearchVectors {
    /// Seeded clustered vectors, and queries near them.
    Synthetic {
        n: usize,
        queries: usize,
        dim: usize,
        seed: u64,
    },
    /// A catalog's embeddings (see [`catalog_vectors`]); every product is also a query.
    Catalog(Matrix),
}

#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub vectors: SearchVectors,
    pub k: usize,
    /// Timed repetitions; the median is reported.
    pub runs: usize,
    /// Search breadths for the approximate index, one result each.
    pub ef: Vec<usize>,
    /// Skip the approximate index (its build dominates at large n).
    pub exact_only: bool,
    /// Also write the data and queries as `BASE.data.f32` and `BASE.queries.f32`, for a
    /// peer to search the same vectors.
    pub save_vectors: Option<PathBuf>,
    pub threads: usize,
}

/// One index at one search breadth.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    pub method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ef: Option<usize>,
    pub recall: f64,
    pub qps: f64,
    pub build_seconds: f64,
    pub search_seconds: f64,
    pub threads: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchReport {
    pub n: usize,
    pub queries: usize,
    pub k: usize,
    pub dim: usize,
    pub kernels: &'static str,
    pub results: Vec<SearchResult>,
}

/// A stored catalog's embeddings, as `generate` computes them (cached vectors reused).
pub async fn catalog_vectors(services: &Services, id: &StoreId) -> Result<Matrix, BenchError> {
    let catalog = services.store.load(id).await?;
    let embedder = services.embedder().await?;
    let (vectors, _) = crate::embed::embed_products(
        embedder.as_ref(),
        services.store.as_ref(),
        &catalog.products,
        services.settings.embed.description_chars,
    )
    .await?;
    Ok(vectors)
}

/// Exact search, then the approximate index at each breadth, scored against exact.
pub fn search(options: &SearchOptions) -> Result<SearchReport, BenchError> {
    let synthetic_empty = matches!(
        options.vectors,
        SearchVectors::Synthetic { n: 0, .. } | SearchVectors::Synthetic { queries: 0, .. }
    );
    if synthetic_empty || options.k == 0 || options.runs == 0 {
        return Err(BenchError::BadOptions(
            "n, queries, k and runs must be at least 1",
        ));
    }
    let (data, queries) = match &options.vectors {
        SearchVectors::Synthetic {
            n,
            queries,
            dim,
            seed,
        } => {
            let data = synthetic::clustered(*n, *dim, 200, *seed);
            let queries = synthetic::queries_near(&data, *queries, 0.3, seed + 1);
            (data, queries)
        }
        SearchVectors::Catalog(vectors) => (vectors.clone(), vectors.clone()),
    };
    if let Some(base) = &options.save_vectors {
        write_f32(&base.with_extension("data.f32"), data.as_slice())?;
        write_f32(&base.with_extension("queries.f32"), queries.as_slice())?;
    }
    let (k, threads) = (options.k, options.threads);
    let (n, dim) = (data.rows(), data.dim());
    let started = Instant::now();
    let exact = ExactIndex::new(data);
    let build_seconds = started.elapsed().as_secs_f64();
    let mut times = Vec::with_capacity(options.runs);
    let mut truth = Vec::new();
    for _ in 0..options.runs {
        let started = Instant::now();
        truth = exact.search_batch(&queries, k, threads);
        times.push(started.elapsed().as_secs_f64());
    }
    let secs = crate::stats::median(&mut times).unwrap_or(0.0);
    let mut results = vec![SearchResult {
        method: "exact",
        ef: None,
        recall: recall_at_k(&truth, &truth, k),
        qps: queries.rows() as f64 / secs,
        build_seconds,
        search_seconds: secs,
        threads,
    }];
    if !options.exact_only {
        let started = Instant::now();
        let hnsw = HnswIndex::build(exact.data().clone(), HnswParams::default(), threads);
        let build_seconds = started.elapsed().as_secs_f64();
        for &ef in &options.ef {
            let mut times = Vec::with_capacity(options.runs);
            let mut got = Vec::new();
            for _ in 0..options.runs {
                let started = Instant::now();
                got = hnsw.search_batch(&queries, k, ef, threads);
                times.push(started.elapsed().as_secs_f64());
            }
            let secs = crate::stats::median(&mut times).unwrap_or(0.0);
            results.push(SearchResult {
                method: "approximate",
                ef: Some(ef),
                recall: recall_at_k(&truth, &got, k),
                qps: queries.rows() as f64 / secs,
                build_seconds,
                search_seconds: secs,
                threads,
            });
        }
    }
    Ok(SearchReport {
        n,
        queries: queries.rows(),
        k,
        dim,
        kernels: index::metric::kernels().name,
        results,
    })
}

impl SearchReport {
    /// One line per result.
    pub fn text(&self) -> String {
        self.results
            .iter()
            .map(|r| {
                format!(
                    "{:<12}{:>7} n={} queries={} k={}: recall@{} {:.3}, {:.0} queries/s ({:.3} s), build {:.2} s, {} threads\n",
                    r.method,
                    r.ef.map(|e| format!("ef={e}")).unwrap_or_default(),
                    self.n,
                    self.queries,
                    self.k,
                    self.k,
                    r.recall,
                    r.qps,
                    r.search_seconds,
                    r.build_seconds,
                    r.threads
                )
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct GraphOptions {
    /// Seeded synthetic vectors: how many, of what dimension.
    pub n: usize,
    pub dim: usize,
    pub seed: u64,
    pub k: usize,
    pub runs: usize,
    /// Also build the graph from an HNSW index searched at this breadth, scored
    /// against the exact graph.
    pub approximate: Option<usize>,
    pub threads: usize,
}

/// Fields in sorted order (see the module note).
#[derive(Debug, Clone, Serialize)]
pub struct GraphReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate: Option<ApproximateGraph>,
    pub dim: usize,
    pub edges: usize,
    pub k: usize,
    pub kernels: &'static str,
    pub n: usize,
    /// The median over the runs.
    pub seconds: f64,
    pub threads: usize,
}

/// The graph via HNSW: one build, then one search per vector.
#[derive(Debug, Clone, Serialize)]
pub struct ApproximateGraph {
    pub build_seconds: f64,
    pub ef: usize,
    pub recall: f64,
    /// Build and searches together.
    pub seconds: f64,
}

/// The all-pairs kNN graph, exact (and optionally via HNSW).
pub fn graph(options: &GraphOptions) -> Result<GraphReport, BenchError> {
    let GraphOptions {
        n,
        dim,
        seed,
        k,
        runs,
        approximate,
        threads,
    } = *options;
    if n < 2 || k == 0 || runs == 0 {
        return Err(BenchError::BadOptions(
            "n must be at least 2, k and runs at least 1",
        ));
    }
    let data = synthetic::clustered(n, dim, 200, seed);
    let mut times = Vec::new();
    let mut edges = 0;
    let mut graph = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        graph = index::knn_graph(&data, k, None, threads);
        times.push(started.elapsed().as_secs_f64());
        edges = graph.iter().map(Vec::len).sum::<usize>();
    }
    let approximate = approximate.map(|ef| {
        let started = Instant::now();
        let hnsw = HnswIndex::build(data.clone(), HnswParams::default(), threads);
        let build_seconds = started.elapsed().as_secs_f64();
        // One more than k, since each vector finds itself first.
        let found = hnsw.search_batch(&data, k + 1, ef.max(k + 1), threads);
        let approx: Vec<_> = found
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                row.into_iter()
                    .filter(|nb| nb.id as usize != i)
                    .take(k)
                    .collect::<Vec<_>>()
            })
            .collect();
        ApproximateGraph {
            build_seconds,
            ef,
            recall: recall_at_k(&graph, &approx, k),
            seconds: started.elapsed().as_secs_f64(),
        }
    });
    Ok(GraphReport {
        approximate,
        dim,
        edges,
        k,
        kernels: index::metric::kernels().name,
        n,
        seconds: crate::stats::median(&mut times).unwrap_or(0.0),
        threads,
    })
}

impl GraphReport {
    pub fn text(&self) -> String {
        let mut out = format!(
            "knn graph n={} k={}: {:.3} s ({} edges), {} threads\n",
            self.n, self.k, self.seconds, self.edges, self.threads
        );
        if let Some(a) = &self.approximate {
            out.push_str(&format!(
                "  via HNSW (ef {}): {:.3} s (build {:.3} s), recall@{} {:.4}\n",
                a.ef, a.seconds, a.build_seconds, self.k, a.recall
            ));
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct EmbedOptions {
    pub store: StoreId,
    /// The first products by id.
    pub limit: usize,
    pub runs: usize,
    /// Also write the embedded titles, one a line, for a peer to embed the same.
    pub write_titles: Option<PathBuf>,
}

/// Fields in sorted order (see the module note).
#[derive(Debug, Clone, Serialize)]
pub struct EmbedReport {
    pub batch_size: usize,
    pub model: String,
    pub per_second: f64,
    /// The median over the runs.
    pub seconds: f64,
    pub threads: usize,
    pub titles: usize,
}

/// The configured embedder's throughput on a store's product titles.
pub async fn embed(services: &Services, options: &EmbedOptions) -> Result<EmbedReport, BenchError> {
    if options.runs == 0 || options.limit == 0 {
        return Err(BenchError::BadOptions("runs and limit must be at least 1"));
    }
    let data = services.store.load(&options.store).await?;
    let titles: Vec<String> = data
        .products
        .iter()
        .take(options.limit)
        .map(|p| p.display_title())
        .collect();
    if let Some(path) = &options.write_titles {
        let mut text = titles.join("\n");
        text.push('\n');
        write_file(path, text)?;
    }
    let embedder = services.embedder().await?;
    // One untimed pass warms the model's allocations.
    embedder.embed(&titles).await?;
    let mut times = Vec::new();
    for _ in 0..options.runs {
        let started = Instant::now();
        embedder.embed(&titles).await?;
        times.push(started.elapsed().as_secs_f64());
    }
    let secs = crate::stats::median(&mut times).unwrap_or(0.0);
    let settings = &services.settings.embed;
    Ok(EmbedReport {
        batch_size: settings.batch_size,
        model: embedder.model_id().to_owned(),
        per_second: titles.len() as f64 / secs,
        seconds: secs,
        threads: settings.threads,
        titles: titles.len(),
    })
}

impl EmbedReport {
    pub fn text(&self) -> String {
        format!(
            "embedded {} titles in {:.3} s: {:.0} per second (batch {}, threads {})\n",
            self.titles, self.seconds, self.per_second, self.batch_size, self.threads
        )
    }
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub orders: Option<PathBuf>,
    pub catalog: Option<PathBuf>,
    pub runs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub runs: usize,
    pub rows_read: u64,
    pub order_lines: u64,
    pub products: u64,
    pub seconds_min: f64,
    pub seconds_median: f64,
    pub seconds_max: f64,
    pub read_seconds_median: f64,
    pub write_seconds_median: f64,
}

/// Whole ingests (read, validate, join, store), each into a fresh SQLite file so no
/// run finds an earlier one's rows.
pub async fn ingest(
    options: &IngestOptions,
    settings: &Settings,
) -> Result<IngestReport, BenchError> {
    let id = StoreId::parse("bench")?;
    let mut total = Vec::new();
    let mut read = Vec::new();
    let mut write = Vec::new();
    let mut last = None;
    for run in 0..options.runs {
        let dir = tempfile::tempdir().map_err(BenchError::TempDir)?;
        let url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
        let db = crate::store::open(&url).await?;
        let sources =
            IngestSources::from_paths(options.orders.clone(), options.catalog.clone(), None, None);
        let started = Instant::now();
        let outcome = app::ingest(
            db.as_ref(),
            &id,
            sources,
            settings,
            Arc::new(crate::ingest::NoProgress),
        )
        .await?;
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(run, secs, "Bench run finished");
        total.push(secs);
        read.push(outcome.read_seconds);
        write.push(outcome.write_seconds);
        last = Some(outcome.report);
    }
    let Some(last) = last else {
        return Err(BenchError::BadOptions("runs must be at least 1"));
    };
    Ok(IngestReport {
        runs: options.runs,
        rows_read: last.rows_read,
        order_lines: last.order_lines,
        products: last.products,
        seconds_min: total.iter().copied().fold(f64::INFINITY, f64::min),
        seconds_max: total.iter().copied().fold(0.0, f64::max),
        seconds_median: crate::stats::median(&mut total).unwrap_or(0.0),
        read_seconds_median: crate::stats::median(&mut read).unwrap_or(0.0),
        write_seconds_median: crate::stats::median(&mut write).unwrap_or(0.0),
    })
}

impl IngestReport {
    pub fn text(&self) -> String {
        format!(
            "ingest: {} rows, {} order lines, {} products; median {:.3} s (read {:.3} s, write {:.3} s) over {} runs [min {:.3}, max {:.3}]\n",
            self.rows_read,
            self.order_lines,
            self.products,
            self.seconds_median,
            self.read_seconds_median,
            self.write_seconds_median,
            self.runs,
            self.seconds_min,
            self.seconds_max
        )
    }
}

/// The mining stress case: frequent itemsets of seeded synthetic baskets.
#[derive(Debug, Clone)]
pub struct RulesOptions {
    pub baskets: StressSpec,
    pub minsup: MinSupport,
    pub minconf: Option<Fraction>,
    pub max_len: Option<usize>,
    pub budget_bytes: usize,
    pub threads: usize,
}

/// Fields in sorted order (see the module note).
#[derive(Debug, Clone, Serialize)]
pub struct RulesReport {
    pub attempts: Vec<Attempt>,
    pub baskets: usize,
    pub budget_bytes: usize,
    pub budget_peak_bytes: usize,
    pub generate_seconds: f64,
    pub itemsets: usize,
    /// Keyed by size as text, in text order ("10" before "2"), as the first
    /// reports printed them.
    pub itemsets_by_size: BTreeMap<String, usize>,
    pub large_basket_items: usize,
    pub large_baskets: usize,
    pub min_count: u64,
    pub min_count_requested: u64,
    pub mine_seconds: f64,
    pub occurrences: usize,
    pub peak_rss_bytes: Option<u64>,
    pub rules: usize,
    pub threshold_raised: bool,
}

/// Generates the baskets, then mines them within the budget, as `rules` does (the
/// budget covers the process, and the threshold rises until the itemsets fit).
pub fn rules(options: &RulesOptions) -> RulesReport {
    let started = Instant::now();
    let baskets = rules::synthetic::stress_baskets(&options.baskets);
    let generate_seconds = started.elapsed().as_secs_f64();
    let mining = MiningOptions {
        minsup: options.minsup,
        minconf: options.minconf,
        max_len: options.max_len,
        max_basket: None,
        target: Target::Frequent,
        budget_bytes: options.budget_bytes,
        budget_covers_process: true,
        threads: options.threads,
    };
    let started = Instant::now();
    let mined = rules::mine(&baskets, &mining);
    let mine_seconds = started.elapsed().as_secs_f64();
    let itemsets_by_size = mined
        .itemsets_by_size()
        .into_iter()
        .enumerate()
        .filter(|&(_, n)| n > 0)
        .map(|(size, n)| (size.to_string(), n))
        .collect();
    let report = &mined.report;
    RulesReport {
        attempts: report.attempts.clone(),
        baskets: baskets.len(),
        budget_bytes: report.budget_bytes,
        budget_peak_bytes: report.budget_peak_bytes,
        generate_seconds,
        itemsets: mined.frequent.len(),
        itemsets_by_size,
        large_basket_items: options.baskets.large_len,
        large_baskets: options.baskets.large,
        min_count: report.min_count,
        min_count_requested: report.min_count_requested,
        mine_seconds,
        occurrences: baskets.occurrences(),
        peak_rss_bytes: crate::memory::peak_resident_bytes(),
        rules: mined.rules.len(),
        threshold_raised: report.threshold_raised,
    }
}

impl RulesReport {
    /// Its JSON, pretty: the stress case is read by its numbers.
    pub fn text(&self) -> Result<String, BenchError> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub store: StoreId,
    /// At least one run is made; the report shows the number asked for.
    pub runs: usize,
    /// The run each of them is.
    pub request: RunRequest,
}

/// Fields in sorted order (see the module note).
#[derive(Debug, Clone, Serialize)]
pub struct GenerateReport {
    pub baskets: u64,
    pub bundles: usize,
    pub candidates: usize,
    pub cells_with_candidates: usize,
    pub llm_calls_first_run: u64,
    pub llm_model: String,
    pub llm_tokens_first_run: u64,
    /// Per phase (`load` … `persist`, `total`) and per task of a run.
    pub median_seconds: BTreeMap<&'static str, f64>,
    pub products: usize,
    pub runs: usize,
    pub store: String,
}

/// Whole `generate` runs, each saved as a real run is: the median time of each phase
/// and task, and the counts and model use of the first run.
pub async fn generate(
    services: &Services,
    options: &GenerateOptions,
) -> Result<GenerateReport, BenchError> {
    let mut phases: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let first = generate_once(services, options, 0, &mut phases).await?;
    for run in 1..options.runs {
        generate_once(services, options, run, &mut phases).await?;
    }
    let median_seconds = phases
        .into_iter()
        .map(|(name, mut seconds)| (name, crate::stats::median(&mut seconds).unwrap_or(0.0)))
        .collect();
    Ok(GenerateReport {
        baskets: first.baskets,
        bundles: first.bundles,
        candidates: first.candidates,
        cells_with_candidates: first.cells.iter().filter(|c| c.candidates > 0).count(),
        llm_calls_first_run: first.llm.calls,
        llm_model: first.llm.model,
        llm_tokens_first_run: first.llm.prompt_tokens + first.llm.completion_tokens,
        median_seconds,
        products: first.products,
        runs: options.runs,
        store: options.store.as_str().to_owned(),
    })
}

/// One run, its phase and task times added to `phases`.
async fn generate_once(
    services: &Services,
    options: &GenerateOptions,
    run: usize,
    phases: &mut BTreeMap<&'static str, Vec<f64>>,
) -> Result<crate::pipeline::RunSummary, BenchError> {
    let out = app::generate(services, &options.store, &options.request).await?;
    let t = &out.run.timings;
    for (name, seconds) in [
        ("load", t.load_seconds),
        ("context", t.context_seconds),
        ("candidates", t.candidates_seconds),
        ("optimize", t.optimize_seconds),
        ("copy", t.copy_seconds),
        ("persist", t.persist_seconds),
        ("total", t.total_seconds),
    ] {
        phases.entry(name).or_default().push(seconds);
    }
    for task in &t.tasks {
        phases
            .entry(task.task)
            .or_default()
            .push((task.end_ms - task.start_ms) / 1000.0);
    }
    tracing::info!(run, seconds = t.total_seconds, "Run finished");
    Ok(out.run)
}

impl GenerateReport {
    pub fn text(&self) -> String {
        let mut out = format!(
            "{}: {} products, {} baskets, {} candidates; median of {} runs:\n",
            self.store, self.products, self.baskets, self.candidates, self.runs
        );
        for (phase, seconds) in &self.median_seconds {
            out.push_str(&format!("  {phase:<18} {seconds:.3} s\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Value` holds its keys sorted, so a report that serialises the same as its
    /// `Value` lists its keys sorted at every level.
    fn keys_sorted(report: &impl Serialize) -> bool {
        let direct = serde_json::to_string(report).unwrap();
        let sorted = serde_json::to_string(&serde_json::to_value(report).unwrap()).unwrap();
        direct == sorted
    }

    #[test]
    fn graph_report_keeps_its_keys_and_text() {
        let options = GraphOptions {
            n: 60,
            dim: 8,
            seed: 1,
            k: 3,
            runs: 2,
            approximate: Some(16),
            threads: 1,
        };
        let report = graph(&options).unwrap();
        assert_eq!(report.edges, 60 * 3);
        assert!(keys_sorted(&report));
        let text = report.text();
        assert!(text.starts_with("knn graph n=60 k=3: "), "{text}");
        assert!(text.contains("\n  via HNSW (ef 16): "), "{text}");
        let too_few = GraphOptions { n: 1, ..options };
        assert!(matches!(graph(&too_few), Err(BenchError::BadOptions(_))));
    }

    #[test]
    fn rules_report_keeps_its_keys_and_its_text_is_its_json() {
        let report = rules(&RulesOptions {
            baskets: StressSpec {
                baskets: 2_000,
                items: 300,
                large: 4,
                large_len: 12,
                seed: 7,
            },
            minsup: MinSupport::Count(5),
            minconf: None,
            max_len: Some(3),
            budget_bytes: 256 << 20,
            threads: 1,
        });
        assert!(keys_sorted(&report));
        assert_eq!(report.baskets, 2_000);
        let text = report.text().unwrap();
        assert_eq!(text, serde_json::to_string_pretty(&report).unwrap() + "\n");
    }

    #[test]
    fn search_report_lines_name_each_method() {
        let report = search(&SearchOptions {
            vectors: SearchVectors::Synthetic {
                n: 200,
                queries: 10,
                dim: 8,
                seed: 3,
            },
            k: 5,
            runs: 1,
            ef: vec![16, 32],
            exact_only: false,
            save_vectors: None,
            threads: 1,
        })
        .unwrap();
        assert_eq!((report.n, report.queries, report.dim), (200, 10, 8));
        let text = report.text();
        let lines: Vec<&str> = text.lines().map(|l| &l[..19]).collect();
        assert_eq!(
            lines,
            [
                "exact              ",
                "approximate   ef=16",
                "approximate   ef=32"
            ]
        );
    }
}
