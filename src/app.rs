//! Use cases, shared by the CLI and (later) the HTTP service and cohorts: each takes
//! the process's [`Services`] (or the one port it needs) and returns plain data, so
//! every front end prints or serves the same thing.

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use serde::Serialize;

use crate::cancel::CancelToken;
use crate::config::Settings;
use crate::destination::DestinationError;
use crate::domain::{self, StoreId};
use crate::ingest::{
    self, CatalogKeys, CountSink, IngestContext, IngestReport, IngestSink, IngestSources,
    KeepRejected, OrderChunk, Progress,
};
use crate::pipeline::{self, RunObserver, RunOutput, RunRequest};
use crate::rules;
pub use crate::services::Services;
use crate::stats::{self, StoreStats};
use crate::store::{IngestWriter, Store, StoreError, WriteSummary};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    #[error("store {store} has no product with id or SKU {product:?}")]
    UnknownProduct { store: String, product: String },
    #[error(transparent)]
    Ingest(#[from] ingest::IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("store {0} has no orders: ingest orders first")]
    NoOrders(String),
    #[error("store {store} has no run {run:?}")]
    UnknownRun { store: String, run: String },
    #[error("run {run} has no bundle {bundle:?}")]
    UnknownBundle { run: String, bundle: String },
    #[error(transparent)]
    Llm(#[from] crate::llm::gateway::GatewayError),
    #[error(transparent)]
    LlmSetup(#[from] crate::llm::provider::TaskError),
    #[error(transparent)]
    Pipeline(#[from] pipeline::PipelineError),
    #[error(transparent)]
    Calibration(#[from] crate::eval::EvalError),
    #[error(transparent)]
    StoreRules(#[from] crate::store_rules::StoreRulesError),
    #[error(transparent)]
    Output(#[from] DestinationError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            AppError::Embed(e) => e.kind(),
            AppError::UnknownProduct { .. }
            | AppError::NoOrders(_)
            | AppError::UnknownRun { .. }
            | AppError::UnknownBundle { .. } => ErrorKind::NotFound,
            AppError::Ingest(_) | AppError::StoreRules(_) => ErrorKind::BadInput,
            AppError::Store(e) => e.kind(),
            AppError::Pipeline(e) => e.kind(),
            AppError::Calibration(e) => e.kind(),
            AppError::Output(e) => e.kind(),
            AppError::Llm(e) => e.kind(),
            AppError::LlmSetup(e) => e.kind(),
            AppError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// `generate` with nobody watching and no cancel button.
pub async fn generate(
    services: &Services,
    store_id: &StoreId,
    request: &RunRequest,
) -> Result<RunOutput, AppError> {
    let never = CancelToken::never();
    generate_with(services, store_id, request, &pipeline::NoObserver, &never).await
}

/// `generate`: phase 0, one run, and the run saved (only once it finished).
#[tracing::instrument(skip_all, fields(store = %store_id))]
pub async fn generate_with(
    services: &Services,
    store_id: &StoreId,
    request: &RunRequest,
    observer: &dyn RunObserver,
    cancel: &CancelToken,
) -> Result<RunOutput, AppError> {
    let (ctx, mut out) = produce(services, store_id, request, observer, cancel).await?;
    save_run(services, &ctx, &mut out).await?;
    Ok(out)
}

/// `generate` with files: once the run is done, `place` writes its files and puts
/// them in place; only then is the run saved, and a failed save takes the files back.
/// A failure anywhere leaves no run, and never a saved run without its files.
#[tracing::instrument(skip_all, fields(store = %store_id))]
pub async fn generate_placed(
    services: &Services,
    store_id: &StoreId,
    request: &RunRequest,
    observer: &dyn RunObserver,
    cancel: &CancelToken,
    place: impl FnOnce(&RunOutput) -> Result<crate::destination::Placed, DestinationError>,
) -> Result<RunOutput, AppError> {
    let (ctx, mut out) = produce(services, store_id, request, observer, cancel).await?;
    let placed = place(&out)?;
    // Dropped on an error, `placed` puts back what was there.
    save_run(services, &ctx, &mut out).await?;
    placed.keep();
    Ok(out)
}

/// Phase 0 and one run, not saved: for a caller that saves it its own way (a job
/// saves it with the job's end, in one transaction).
pub async fn produce_run(
    services: &Services,
    store_id: &StoreId,
    request: &RunRequest,
    observer: &dyn RunObserver,
    cancel: &CancelToken,
) -> Result<RunOutput, AppError> {
    Ok(produce(services, store_id, request, observer, cancel)
        .await?
        .1)
}

/// Phase 0 and one run, not saved.
async fn produce(
    services: &Services,
    store_id: &StoreId,
    request: &RunRequest,
    observer: &dyn RunObserver,
    cancel: &CancelToken,
) -> Result<(Arc<pipeline::Context>, RunOutput), AppError> {
    request.validate().map_err(pipeline::PipelineError::from)?;
    // Calibration runs first, on the store's own split; the run then uses its weights.
    let (calibration, weights) =
        crate::eval::calibrate(services, store_id, request, cancel).await?;
    let mut variant = request.variant.clone();
    if weights.is_some() {
        variant.weights = weights;
    }
    let ctx =
        Arc::new(pipeline::prepare(services, store_id, &request.prepare, observer, cancel).await?);
    let mut out = pipeline::run(&ctx, &variant, services, observer, cancel).await?;
    out.run.calibration = calibration;
    if let Some(id) = &request.run_id {
        out = out.with_id(id.clone());
    }
    cancel.check().map_err(pipeline::PipelineError::from)?;
    Ok((ctx, out))
}

async fn save_run(
    services: &Services,
    ctx: &pipeline::Context,
    out: &mut RunOutput,
) -> Result<(), AppError> {
    let started = ctx.clock.ms();
    pipeline::persist::save(services.store.as_ref(), out).await?;
    out.run.timings.persist_seconds = (ctx.clock.ms() - started) / 1000.0;
    out.run
        .timings
        .tasks
        .push(ctx.clock.span("persist", "store", started));
    out.run.timings.total_seconds += out.run.timings.persist_seconds;
    Ok(())
}

/// A merchant's decision on bundles of a saved run (`approve`, and the API's
/// approve / reject): `bundles` empty means every bundle of the run. Every id must be
/// a bundle of that run; nothing is recorded otherwise.
pub async fn decide(
    store: &dyn Store,
    store_id: &StoreId,
    run_id: Option<&str>,
    bundles: &[String],
    decision: crate::store::Decision,
    decided_by: &str,
) -> Result<Vec<crate::store::Approval>, AppError> {
    let Some(run) = store.stored_run(store_id, run_id).await? else {
        return Err(AppError::UnknownRun {
            store: store_id.to_string(),
            run: run_id.unwrap_or("latest").to_owned(),
        });
    };
    let chosen: Vec<&domain::Bundle> = if bundles.is_empty() {
        run.bundles.iter().collect()
    } else {
        let mut chosen = Vec::with_capacity(bundles.len());
        for wanted in bundles {
            match run.bundles.iter().find(|b| &b.id == wanted) {
                Some(b) => chosen.push(b),
                None => {
                    return Err(AppError::UnknownBundle {
                        run: run.run_id.clone(),
                        bundle: wanted.clone(),
                    });
                }
            }
        }
        chosen
    };
    let decided_at = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::with_capacity(chosen.len());
    for bundle in chosen {
        let approval = crate::store::Approval {
            store_id: store_id.to_string(),
            bundle_id: bundle.id.clone(),
            decision,
            run_id: run.run_id.clone(),
            bundle: bundle.clone(),
            decided_by: decided_by.to_owned(),
            decided_at,
        };
        store.put_approval(&approval).await?;
        out.push(approval);
    }
    tracing::info!(store = %store_id, run = %run.run_id, bundles = out.len(), decision = decision.as_str(), "decision recorded");
    Ok(out)
}

/// What an ingest did, as `ingest --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct IngestOutcome {
    pub store_id: String,
    pub currency: String,
    #[serde(flatten)]
    pub report: IngestReport,
    /// True for `ingest --check`: read and validated, nothing stored.
    pub checked: bool,
    /// The rejected-rows files written (`ingest --rejected`).
    pub rejected_files: Vec<ingest::rejected::RejectedFile>,
    /// Earlier lines without a catalog product that this ingest's catalog joined.
    pub lines_joined_later: u64,
    /// Orders with a rejected line the store had already: kept as they were stored.
    pub stored_orders_kept: u64,
    pub read_seconds: f64,
    pub write_seconds: f64,
}

/// How an ingest keeps what it rejects, beyond the report's counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct IngestOptions {
    /// Keep every row for the rejected-rows file (on disk, as found), for a caller
    /// that writes that file (`ingest::rejected::write`); else the report keeps the
    /// first `ingest.max_rejected_rows_kept` and counts the rest.
    pub keep_every_rejected_row: bool,
}

impl IngestOptions {
    fn keep(self, settings: &Settings) -> KeepRejected {
        if self.keep_every_rejected_row {
            KeepRejected::All
        } else {
            KeepRejected::First(settings.ingest.max_rejected_rows_kept)
        }
    }
}

/// Reads, validates, joins and stores one ingest, in one transaction.
pub async fn ingest(
    store: &dyn Store,
    store_id: &StoreId,
    sources: IngestSources,
    settings: &Settings,
    progress: Arc<dyn Progress>,
) -> Result<IngestOutcome, AppError> {
    let options = IngestOptions::default();
    ingest_with(store, store_id, sources, settings, progress, options).await
}

/// An ingest's parts on their way from the reading thread to the writing task.
enum IngestPart {
    Begin {
        data_currency: Option<domain::Currency>,
        lines: u64,
    },
    Products(Vec<domain::Product>, Vec<domain::ProductObservations>),
    Orders(OrderChunk),
}

/// Hands each part over a bounded channel: the read waits while the write catches up,
/// so at most a few chunks are in memory at once.
struct ChannelSink(tokio::sync::mpsc::Sender<IngestPart>);

impl ChannelSink {
    fn send(&self, part: IngestPart) -> Result<(), ingest::IngestError> {
        self.0
            .blocking_send(part)
            .map_err(|_| ingest::IngestError::Stopped)
    }
}

impl IngestSink for ChannelSink {
    fn begin(
        &mut self,
        data_currency: Option<domain::Currency>,
        lines: u64,
    ) -> Result<(), ingest::IngestError> {
        self.send(IngestPart::Begin {
            data_currency,
            lines,
        })
    }

    fn products(
        &mut self,
        products: Vec<domain::Product>,
        observations: Vec<domain::ProductObservations>,
    ) -> Result<(), ingest::IngestError> {
        self.send(IngestPart::Products(products, observations))
    }

    fn orders(&mut self, chunk: OrderChunk) -> Result<(), ingest::IngestError> {
        self.send(IngestPart::Orders(chunk))
    }
}

/// [`ingest`], keeping rejected rows as `options` says. The read runs on a blocking
/// thread and hands the catalog and then chunks of orders to this task, which writes
/// each as it comes in the ingest's one transaction: memory stays bounded whatever
/// the row count. `read_seconds` is the read and check of every row;
/// `write_seconds` the rest (orders finished, joined and written).
#[tracing::instrument(skip_all, fields(store = %store_id))]
pub async fn ingest_with(
    store: &dyn Store,
    store_id: &StoreId,
    sources: IngestSources,
    settings: &Settings,
    progress: Arc<dyn Progress>,
    options: IngestOptions,
) -> Result<IngestOutcome, AppError> {
    let keep = options.keep(settings);
    let existing = store.get_store(store_id).await?;
    let known = store.catalog_keys(store_id).await?;
    let ctx = ingest_context(existing.as_ref(), settings);
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let read_ctx = ctx.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let mut sink = ChannelSink(tx);
        ingest::read_into(
            &sources,
            &read_ctx,
            keep,
            Some(known),
            progress.as_ref(),
            &mut sink,
        )
    });
    let mut writer: Option<Box<dyn IngestWriter>> = None;
    let mut record: Option<domain::Store> = None;
    let mut read_seconds = 0.0;
    // The read hands over its start, then the catalog, then chunks of orders.
    let written: Result<(), AppError> = async {
        while let Some(part) = rx.recv().await {
            match (part, writer.as_mut()) {
                (
                    IngestPart::Begin {
                        data_currency,
                        lines,
                    },
                    None,
                ) => {
                    read_seconds = started.elapsed().as_secs_f64();
                    let r =
                        store_record(store_id, existing.as_ref(), data_currency, &ctx, settings);
                    writer = Some(store.begin_ingest(&r, lines).await?);
                    record = Some(r);
                }
                (IngestPart::Products(products, observations), Some(w)) => {
                    w.products(&products, &observations).await?;
                }
                (IngestPart::Orders(chunk), Some(w)) => {
                    w.orders(&chunk.orders, &chunk.incomplete).await?;
                }
                _ => {
                    return Err(AppError::Internal(
                        "an ingest's parts came out of order".into(),
                    ));
                }
            }
        }
        Ok(())
    }
    .await;
    // A failed write stops the read: its next hand-over fails.
    drop(rx);
    let read = reader
        .await
        .map_err(|e| AppError::Internal(format!("ingest worker failed: {e}")))?;
    written?;
    let report = read?;
    let (Some(writer), Some(store_record)) = (writer, record) else {
        return Err(AppError::Internal(
            "an ingest read ended without its start".into(),
        ));
    };
    let WriteSummary {
        lines_joined_later,
        stored_orders_kept,
        ..
    } = writer.commit().await?;
    let write_seconds = started.elapsed().as_secs_f64() - read_seconds;
    tracing::info!(
        rows_read = report.rows_read,
        rows_kept = report.rows_kept,
        read_seconds,
        write_seconds,
        "Ingest stored"
    );
    Ok(IngestOutcome {
        store_id: store_id.to_string(),
        currency: store_record.currency.to_string(),
        report,
        checked: false,
        rejected_files: Vec::new(),
        lines_joined_later,
        stored_orders_kept,
        read_seconds,
        write_seconds,
    })
}

/// Reads and validates one ingest as [`ingest`] would, and writes nothing: the report
/// of what an ingest would keep, reject and drop. Lines join the store's catalog when
/// there is a stored store (`store`), else only the files' own.
pub async fn check_ingest(
    store: Option<&dyn Store>,
    store_id: &StoreId,
    sources: IngestSources,
    settings: &Settings,
    progress: Arc<dyn Progress>,
) -> Result<IngestOutcome, AppError> {
    let options = IngestOptions::default();
    check_ingest_with(store, store_id, sources, settings, progress, options).await
}

/// [`check_ingest`], keeping rejected rows as `options` says.
pub async fn check_ingest_with(
    store: Option<&dyn Store>,
    store_id: &StoreId,
    sources: IngestSources,
    settings: &Settings,
    progress: Arc<dyn Progress>,
    options: IngestOptions,
) -> Result<IngestOutcome, AppError> {
    let keep = options.keep(settings);
    let (existing, known) = match store {
        Some(store) => (
            store.get_store(store_id).await?,
            store.catalog_keys(store_id).await?,
        ),
        None => (None, CatalogKeys::default()),
    };
    let ctx = ingest_context(existing.as_ref(), settings);
    let started = Instant::now();
    let read_ctx = ctx.clone();
    // Parsing is CPU work: keep it off the async workers.
    let (report, data_currency) = tokio::task::spawn_blocking(move || {
        let mut sink = CountSink::default();
        let report = ingest::read_into(
            &sources,
            &read_ctx,
            keep,
            Some(known),
            progress.as_ref(),
            &mut sink,
        )?;
        Ok::<_, ingest::IngestError>((report, sink.data_currency))
    })
    .await
    .map_err(|e| AppError::Internal(format!("ingest worker failed: {e}")))??;
    let read_seconds = started.elapsed().as_secs_f64();
    let record = store_record(store_id, existing.as_ref(), data_currency, &ctx, settings);
    Ok(IngestOutcome {
        store_id: store_id.to_string(),
        currency: record.currency.to_string(),
        report,
        checked: true,
        rejected_files: Vec::new(),
        lines_joined_later: 0,
        stored_orders_kept: 0,
        read_seconds,
        write_seconds: 0.0,
    })
}

/// What the reader needs to know of the store: its currency, and whether it stands.
fn ingest_context(existing: Option<&domain::Store>, settings: &Settings) -> IngestContext {
    IngestContext {
        default_currency: existing.map_or_else(|| settings.store_currency(), |s| s.currency),
        currency_fixed: existing.is_some(),
    }
}

/// The store's row as an ingest writes it: an existing store keeps its currency and
/// locale; a new one takes the currency its data states, else the configured one.
fn store_record(
    store_id: &StoreId,
    existing: Option<&domain::Store>,
    data_currency: Option<domain::Currency>,
    ctx: &IngestContext,
    settings: &Settings,
) -> domain::Store {
    domain::Store {
        id: store_id.clone(),
        currency: existing
            .map(|s| s.currency)
            .or(data_currency)
            .unwrap_or(ctx.default_currency),
        locale: existing
            .map(|s| s.locale.clone())
            .unwrap_or_else(|| settings.store.locale.clone()),
    }
}

/// Statistics of a stored store as of a day (default: its latest order).
pub async fn stats(
    store: &dyn Store,
    store_id: &StoreId,
    as_of: Option<NaiveDate>,
    settings: &Settings,
) -> Result<StoreStats, AppError> {
    let data = store.load(store_id).await?;
    let settings = settings.clone();
    let id = store_id.to_string();
    tokio::task::spawn_blocking(move || stats::compute(&data, as_of, &settings))
        .await
        .map_err(|e| AppError::Internal(format!("stats worker failed: {e}")))?
        .ok_or(AppError::NoOrders(id))
}

/// What `store-rules` is asked to do with a store's rules.
#[derive(Debug, Clone, Copy)]
pub enum RulesChange<'a> {
    /// Replace them with a rules file's text (`source_name` names it in errors).
    Set {
        text: &'a str,
        source_name: &'a str,
    },
    Clear,
    Show,
}

/// A store's rules after `store-rules`.
#[derive(Debug, Clone, Serialize)]
pub struct StoreRulesOutcome {
    pub store_id: String,
    /// `set`, `cleared` or `shown`.
    pub action: &'static str,
    pub rules: crate::store_rules::StoreRules,
    /// Ids the rules name that the store's catalog lacks (kept: the products may come;
    /// a pin of one is not published until then).
    pub unknown_ids: Vec<String>,
}

impl StoreRulesOutcome {
    pub fn text(&self) -> String {
        let r = &self.rules;
        let mut s = format!(
            "{}: rules {} — {} products and {} categories never bundled, {} pairs never together, {} pins, discount ceiling {}\n",
            self.store_id,
            self.action,
            r.never_products.len(),
            r.never_categories.len(),
            r.never_pairs.len(),
            r.pins.len(),
            r.max_discount_pct
                .map_or_else(|| "none".to_owned(), |d| format!("{d}%")),
        );
        if !self.unknown_ids.is_empty() {
            s.push_str(&format!(
                "not in the catalog (yet): {}\n",
                self.unknown_ids.join(", ")
            ));
        }
        s
    }
}

/// Sets, clears or shows a store's own rules (see [`crate::store_rules`]); a rules
/// file is checked whole before anything is stored.
pub async fn store_rules(
    store: &dyn Store,
    store_id: &StoreId,
    change: RulesChange<'_>,
) -> Result<StoreRulesOutcome, AppError> {
    use crate::store_rules::StoreRules;
    let (action, rules) = match change {
        RulesChange::Set { text, source_name } => {
            let rules = StoreRules::parse(text, source_name)?;
            store.put_store_rules(store_id, Some(text)).await?;
            ("set", rules)
        }
        RulesChange::Clear => {
            store.put_store_rules(store_id, None).await?;
            ("cleared", StoreRules::default())
        }
        RulesChange::Show => {
            let rules = match store.store_rules(store_id).await? {
                Some(text) => StoreRules::parse(&text, &format!("store {store_id}'s stored rules"))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                None => StoreRules::default(),
            };
            ("shown", rules)
        }
    };
    let keys = store.catalog_keys(store_id).await?;
    let unknown_ids = rules
        .ids()
        .into_iter()
        .filter(|id| !keys.knows(id))
        .map(str::to_owned)
        .collect();
    Ok(StoreRulesOutcome {
        store_id: store_id.to_string(),
        action,
        rules,
        unknown_ids,
    })
}

/// A product as `similar` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProductRefOut {
    pub product_id: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NeighbourOut {
    pub product_id: String,
    pub title: String,
    pub score: f32,
}

/// `similar`: a product's nearest neighbours in meaning.
#[derive(Debug, Clone, Serialize)]
pub struct SimilarOutcome {
    pub product: ProductRefOut,
    pub neighbours: Vec<NeighbourOut>,
    pub embedded: usize,
    pub from_cache: usize,
}

/// The `k` products closest in meaning to `product` (a variant id, SKU or product id),
/// leaving out the product itself and its own variants.
pub async fn similar(
    services: &Services,
    store_id: &StoreId,
    product: &str,
    k: usize,
) -> Result<SimilarOutcome, AppError> {
    let (store, settings) = (services.store.as_ref(), services.settings.as_ref());
    let data = store.load(store_id).await?;
    let target = data
        .products
        .iter()
        .position(|p| p.variant_id == product)
        .or_else(|| {
            data.products
                .iter()
                .position(|p| p.sku.as_deref() == Some(product))
        })
        .or_else(|| data.products.iter().position(|p| p.product_id == product))
        .ok_or_else(|| AppError::UnknownProduct {
            store: store_id.to_string(),
            product: product.to_owned(),
        })?;
    let embedder = services.embedder().await?;
    let (matrix, stats) = crate::embed::embed_products(
        embedder.as_ref(),
        store,
        &data.products,
        settings.embed.description_chars,
    )
    .await?;
    let family = &data.products[target].product_id;
    let siblings = data
        .products
        .iter()
        .filter(|p| &p.product_id == family)
        .count();
    let query = matrix.slice_rows(target..target + 1);
    let index = crate::index::ExactIndex::new(matrix);
    let hits = index.search_batch(&query, k + siblings, 1);
    let neighbours = hits
        .into_iter()
        .next()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| &data.products[n.id as usize].product_id != family)
        .take(k)
        .map(|n| {
            let p = &data.products[n.id as usize];
            NeighbourOut {
                product_id: p.variant_id.clone(),
                title: p.display_title(),
                score: n.score,
            }
        })
        .collect();
    let p = &data.products[target];
    Ok(SimilarOutcome {
        product: ProductRefOut {
            product_id: p.variant_id.clone(),
            title: p.display_title(),
        },
        neighbours,
        embedded: stats.embedded,
        from_cache: stats.from_cache,
    })
}

/// Where `rules` reads baskets from.
pub enum BasketSource<'s> {
    File {
        path: std::path::PathBuf,
        sep: rules::Separator,
    },
    /// A stored store's orders, one basket per order.
    Store { store: &'s dyn Store, id: StoreId },
}

/// What `rules` found, as `rules --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct RulesOutcome {
    pub source: String,
    pub target: rules::Target,
    /// The target's itemsets: all frequent ones, or the closed or maximal ones.
    pub itemsets: usize,
    /// Itemsets by size: `{"1": 120, "2": 300}`.
    pub itemsets_by_size: std::collections::BTreeMap<usize, usize>,
    pub rules: usize,
    pub minconf: Option<f64>,
    pub max_len: Option<usize>,
    pub max_basket: Option<usize>,
    #[serde(flatten)]
    pub report: rules::MiningReport,
    /// Order lines whose product is not in the catalog (store input only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_without_product: Option<u64>,
    pub read_seconds: f64,
    pub mine_seconds: f64,
    /// Reading and mining.
    pub seconds: f64,
    /// The process's peak resident memory so far (Linux; `null` elsewhere).
    pub peak_rss_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(transparent)]
    Baskets(#[from] rules::BasketsError),
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Output(#[from] DestinationError),
}

/// Frequent itemsets and rules of a baskets file or a store's orders; with `out`, also
/// writes them (see [`rules::write_json`]).
pub async fn rules(
    source: BasketSource<'_>,
    options: rules::MiningOptions,
    out: Option<std::path::PathBuf>,
    force: bool,
) -> Result<RulesOutcome, RulesError> {
    let started = Instant::now();
    // Before the mining: a long run must not end on a file it may not replace.
    if let Some(path) = &out {
        crate::destination::check(path, force)?;
    }
    let (baskets, label, unmatched) = match &source {
        BasketSource::File { path, sep } => {
            let (owned, sep) = (path.clone(), *sep);
            let baskets = tokio::task::spawn_blocking(move || rules::Baskets::read(&owned, sep))
                .await
                .map_err(|e| AppError::Internal(format!("reader failed: {e}")))??;
            (baskets, path.display().to_string(), None)
        }
        BasketSource::Store { store, id } => {
            let data = store.load(id).await.map_err(AppError::from)?;
            if data.orders.is_empty() {
                return Err(AppError::NoOrders(id.to_string()).into());
            }
            let (baskets, unmatched) = rules::Baskets::from_store(&data);
            (baskets, format!("store {id}"), Some(unmatched))
        }
    };
    let read_seconds = started.elapsed().as_secs_f64();
    let mined_at = Instant::now();
    let minconf = options.minconf.map(|c| c.as_f64());
    let (max_len, max_basket) = (options.max_len, options.max_basket);
    let target = options.target;
    let (baskets, mined) = tokio::task::spawn_blocking(move || {
        let mined = rules::mine(&baskets, &options);
        (baskets, mined)
    })
    .await
    .map_err(|e| AppError::Internal(format!("miner failed: {e}")))?;
    let mine_seconds = mined_at.elapsed().as_secs_f64();
    let seconds = started.elapsed().as_secs_f64();
    if let Some(path) = out {
        crate::destination::write_file(&path, force, |file| {
            rules::write_json(file, &baskets, &mined)
        })?;
    }
    Ok(RulesOutcome {
        source: label,
        target,
        itemsets: mined.itemset_count(),
        itemsets_by_size: mined
            .itemsets_by_size()
            .into_iter()
            .enumerate()
            .filter(|&(_, n)| n > 0)
            .collect(),
        rules: mined.rules.len(),
        minconf,
        max_len,
        max_basket,
        report: mined.report,
        lines_without_product: unmatched,
        read_seconds,
        mine_seconds,
        seconds,
        peak_rss_bytes: crate::memory::peak_resident_bytes(),
    })
}

/// One product's objectives, as `classify --json` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifiedOut {
    pub product_id: String,
    pub title: String,
    pub tags: Vec<domain::Objective>,
    pub source: domain::TextSource,
}

/// Tokens a run used.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Tokens {
    pub prompt: u64,
    pub completion: u64,
    pub total: u64,
}

/// What `classify` did, as `classify --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifyOutcome {
    pub products: Vec<ClassifiedOut>,
    /// Products classified in this run (not from the cache).
    pub classified: usize,
    pub from_cache: usize,
    /// Products the offline provider classified because the model failed them.
    pub fallback: usize,
    /// Ids in the model's answers that no prompt offered.
    pub dropped_ids: usize,
    pub calls: u64,
    pub tokens: Tokens,
    /// The whole usage report: per task, retries, fallbacks, estimated cost.
    pub llm: crate::llm::gateway::LlmReport,
    pub seconds: f64,
}

/// The language-model layer over a store's catalog: the offline provider with the
/// catalog's embeddings, behind the process's model client, its calls within the
/// budget from `started` (the command's start).
pub async fn llm_gateway(
    services: &Services,
    products: &[domain::Product],
    started: Instant,
) -> Result<crate::llm::gateway::Gateway, AppError> {
    let embedder = services.embedder().await?;
    let (matrix, _) = crate::embed::embed_products(
        embedder.as_ref(),
        services.store.as_ref(),
        products,
        services.settings.embed.description_chars,
    )
    .await?;
    let offline = crate::llm::offline::OfflineLlm::over_catalog(embedder, products, &matrix);
    Ok(services.gateway(offline, started))
}

/// `classify`: every product's objectives through the configured provider and the
/// classification cache; products the model fails on are classified offline.
#[tracing::instrument(skip_all, fields(store = %store_id))]
pub async fn classify(
    services: &Services,
    store_id: &StoreId,
) -> Result<ClassifyOutcome, AppError> {
    let started = Instant::now();
    let store = services.store.as_ref();
    let data = store.load(store_id).await?;
    let gateway = llm_gateway(services, &data.products, started).await?;
    let docs: Vec<crate::llm::prompt::ProductDoc> = data
        .products
        .iter()
        .map(crate::llm::prompt::ProductDoc::from_product)
        .collect();
    let result = gateway.classify(store, &docs).await?;
    let report = gateway.report();
    let products = data
        .products
        .iter()
        .zip(result.products)
        .map(|(p, t)| ClassifiedOut {
            product_id: p.variant_id.clone(),
            title: p.display_title(),
            tags: t.tags,
            source: t.source,
        })
        .collect();
    Ok(ClassifyOutcome {
        products,
        classified: result.classified,
        from_cache: result.from_cache,
        fallback: result.fallback,
        dropped_ids: result.dropped_ids,
        calls: report.calls,
        tokens: Tokens {
            prompt: report.prompt_tokens,
            completion: report.completion_tokens,
            total: report.prompt_tokens + report.completion_tokens,
        },
        llm: report,
        seconds: started.elapsed().as_secs_f64(),
    })
}
