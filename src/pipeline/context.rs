//! Phase 0: everything the candidate generators read, prepared at once. Embeddings
//! (through their cache) lead to the similarity graph and, with the offline provider,
//! to classification; co-purchase evidence and store statistics need only the orders,
//! so they run beside the embeddings on blocking threads. Each task records when it
//! started and ended, so the overlap is visible in the run summary.
//!
//! Per product it derives signals (velocity, days of cover, unit margin, age, repeat
//! rate) and data tags (`bestseller`, `slow_mover`, `overstock`, `new_launch`,
//! `high_margin`, `consumable`) beside the model's objectives. With assumed costs every
//! margin *percentage* is the same, so `high_margin` ranks the absolute unit margin.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use tokio::task::JoinHandle;

use super::error::PipelineError;
use super::evidence::{CategoryLinks, StoreEvidence, orders_holding};
use super::model::{CoPurchase, DataTag, ProductSignals, co_purchase};
use super::observe::{Clock, Phase, PhaseScope, RunObserver, Step, StepReport, TaskTiming};
use super::request::{OrderScope, PrepareOptions, PriorScope};
use crate::cancel::{CancelToken, Cancelled};
use crate::config::Settings;
use crate::domain::{Money, Objective, Product, ProductObservations, StoreId, TextSource};
use crate::index::{GraphMethod, Matrix, Neighbour, clusters, neighbour_graph};
use crate::llm::gateway::{Classification, Gateway, LlmReport};
use crate::llm::offline::OfflineLlm;
use crate::llm::prompt::ProductDoc;
use crate::prior::named::{self, NamedComplements};
use crate::prior::{ComplementPrior, PriorMatch};
use crate::rules::{self, Baskets, Evidence};
use crate::services::Services;
use crate::stats::{self, Assumption, Tier, Weights};
use crate::store::{Approval, StoreData};
use crate::store_rules::{ResolvedRules, StoreRules};

/// Everything Phase 1 reads. Item ids in `evidence` are product indices.
pub struct Context {
    pub data: StoreData,
    pub as_of: DateTime<Utc>,
    /// Where `as_of` came from (a store without orders dates itself by its catalog).
    pub as_of_source: stats::AsOfSource,
    pub orders_in_window: u64,
    pub tier: Tier,
    pub weights: Weights,
    pub assumed: Vec<Assumption>,
    pub signals: Vec<ProductSignals>,
    /// The merchant's category, or a derived cluster label (`cluster-07`).
    pub categories: Vec<String>,
    pub vectors: Matrix,
    /// Each product's nearest products by meaning, its own variants left out.
    pub neighbours: Vec<Vec<Neighbour>>,
    pub evidence: Evidence,
    /// Co-purchase partners of each product: (other, count), strongest counts first.
    pub partners: Vec<Vec<(u32, u32)>>,
    /// Baskets before `as_of` (N of the lift formula).
    pub baskets: u64,
    /// Frequent itemsets of three or more products (sorted ids, count), most frequent
    /// first; `itemsets_of[i]` indexes those holding product i.
    pub itemsets: Vec<(Vec<u32>, u32)>,
    pub itemsets_of: Vec<Vec<usize>>,
    pub itemset_counts: HashMap<Vec<u32>, u32>,
    /// Orders holding pairs of categories, for complements (see `justify`).
    pub category_links: CategoryLinks,
    /// The complement prior, mapped onto this store's products, and the shrunk lift
    /// its links need (`prior.min_lift`).
    pub prior: PriorMatch,
    pub prior_min_lift: f64,
    /// Pairs of the store's categories a configured model named as going together
    /// (empty offline).
    pub model_complements: NamedComplements,
    /// Basket indices holding each product (up to `as_of`), ascending.
    pub orders_holding: Vec<Vec<u32>>,
    /// What the orders say about what goes together: strong, weak or none.
    pub store_evidence: StoreEvidence,
    /// The median price of eligible products (0 without any): high-ticket is relative
    /// to it.
    pub median_price_minor: i64,
    /// The merchant's rules in force (configuration and the store's own, merged) as
    /// written, and over the catalog.
    pub store_rules: StoreRules,
    pub rules: ResolvedRules,
    /// The store's decisions on earlier runs' bundles, in the order they were made.
    pub approvals: Vec<Approval>,
    /// Shrinkage settings of the transactional signal (see `candidates::scoring`).
    pub prior_count: f64,
    pub support_half: f64,
    pub low_cover_days: u32,
    pub classification_source: TextSource,
    /// Phase 0's model calls (classification), for the run reports.
    pub llm: LlmReport,
    /// Instants of every phase's tasks are measured from the start of `prepare`.
    pub clock: Clock,
    pub load_seconds: f64,
    pub context_seconds: f64,
    pub timings: Vec<TaskTiming>,
}

impl Context {
    pub fn product(&self, i: u32) -> &Product {
        &self.data.products[i as usize]
    }

    /// Co-purchase evidence of a whole set: the pair count, or the itemset's count when it
    /// is frequent (else 0: too rare to count).
    pub fn co_purchase(&self, products: &[u32]) -> CoPurchase {
        let counts: Vec<u32> = products.iter().map(|&i| self.item_count(i)).collect();
        let count = match products {
            [a, b] => self.pair_count(*a, *b),
            _ => {
                let mut key = products.to_vec();
                key.sort_unstable();
                self.itemset_counts.get(&key).copied().unwrap_or(0)
            }
        };
        co_purchase(count, &counts, self.baskets, self.prior_count)
    }

    /// Co-purchase count of two products (0 below the pair threshold).
    pub fn pair_count(&self, a: u32, b: u32) -> u32 {
        self.partners[a as usize]
            .iter()
            .find(|&&(o, _)| o == b)
            .map_or(0, |&(_, c)| c)
    }

    /// Orders containing product `i`.
    pub fn item_count(&self, i: u32) -> u32 {
        self.evidence
            .pairs
            .item_counts
            .get(i as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Cosine of two products' embeddings.
    pub fn similarity(&self, a: u32, b: u32) -> f32 {
        crate::index::metric::kernels()
            .dot(self.vectors.row(a as usize), self.vectors.row(b as usize))
    }
}

/// Catalog fields derived from orders (Online Retail's title and price), derived
/// again from the source rows up to `bound`: what an ingest of only those rows gives.
fn derive_catalog_at(data: &mut StoreData, observed: &[ProductObservations], bound: DateTime<Utc>) {
    let by_variant: HashMap<&str, &ProductObservations> = observed
        .iter()
        .map(|o| (o.variant_id.as_str(), o))
        .collect();
    for p in &mut data.products {
        let Some(obs) = by_variant.get(p.variant_id.as_str()) else {
            continue;
        };
        // No row by then: the product did not exist yet, and `scoped` drops it.
        if let Some(fields) = obs.derive(Some(bound), p.price.currency.exponent()) {
            p.title = fields.title;
            p.price = Money::new(fields.price_minor, p.price.currency);
        }
    }
}

/// The store as of `bound` (inclusive): the products that existed then and the orders
/// up to it, of which only the last `N` with [`OrderScope::Last`] and none with
/// [`OrderScope::None`]. A product existed if it was created by then, or — without a
/// creation date — if its first order came by then or it was never ordered (a catalog
/// item the data can't date). Lines are re-pointed at the kept products' positions.
fn scoped(mut data: StoreData, bound: Option<DateTime<Utc>>, orders: OrderScope) -> StoreData {
    if let Some(bound) = bound {
        let n = data.products.len();
        let mut first_ordered: Vec<Option<DateTime<Utc>>> = vec![None; n];
        // Orders are sorted by time: the first seen is the first.
        for o in &data.orders {
            for l in &o.lines {
                if let Some(slot) = l.item.and_then(|i| first_ordered.get_mut(i as usize)) {
                    slot.get_or_insert(o.created_at);
                }
            }
        }
        let keep: Vec<bool> = data
            .products
            .iter()
            .zip(&first_ordered)
            .map(|(p, first)| match p.created_at {
                Some(t) => t <= bound,
                None => first.is_none_or(|t| t <= bound),
            })
            .collect();
        data.orders.retain(|o| o.created_at <= bound);
        if keep.iter().any(|&k| !k) {
            let mut position = vec![None; n];
            let mut next = 0u32;
            for (i, &k) in keep.iter().enumerate() {
                if k {
                    position[i] = Some(next);
                    next += 1;
                }
            }
            let mut k = keep.iter();
            data.products.retain(|_| k.next().copied().unwrap_or(false));
            for o in &mut data.orders {
                for l in &mut o.lines {
                    l.item = l
                        .item
                        .and_then(|i| position.get(i as usize).copied().flatten());
                }
            }
        }
    }
    match orders {
        OrderScope::All => {}
        OrderScope::Last(n) => {
            let skip = data.orders.len().saturating_sub(n);
            data.orders.drain(..skip);
        }
        OrderScope::None => data.orders.clear(),
    }
    data
}

/// The median price of the eligible products (0 when there are none).
fn median_price(data: &StoreData, signals: &[ProductSignals]) -> i64 {
    let mut prices: Vec<i64> = data
        .products
        .iter()
        .zip(signals)
        .filter(|(_, s)| s.eligible)
        .map(|(p, _)| p.price.minor)
        .collect();
    prices.sort_unstable();
    prices.get(prices.len() / 2).copied().unwrap_or(0)
}

/// The baskets of the orders up to `as_of`, one per order, items by product index.
fn basket_index(data: &StoreData, as_of: DateTime<Utc>) -> Baskets {
    Baskets::from_ids(
        data.products.len() as u32,
        data.baskets_until(as_of).collect(),
    )
}

/// One category per product: the merchant's own, else a cluster of its embedding,
/// about √(n/2) clusters for n products without one.
fn categories(products: &[Product], vectors: &Matrix, seed: u64) -> Vec<String> {
    let own = products.iter().map(Product::own_category).collect();
    clusters::label_missing(own, vectors, seed, |missing| {
        ((missing as f64 / 2.0).sqrt().round() as usize).clamp(1, 64)
    })
}

/// Whether a product may never be in a bundle: a gift card, or a restricted term at the
/// start of a word of its category, type, tags or title ("alcohol" catches "Alcoholic
/// Beverages"). The root of a taxonomy path is skipped: Shopify files all food under
/// "Food, Beverages & Tobacco", which says nothing about tea.
fn restricted(p: &Product, settings: &Settings) -> bool {
    if p.gift_card {
        return true;
    }
    let category = p.category.as_deref().unwrap_or("");
    let segments: Vec<&str> = category.split('>').collect();
    let category = if segments.len() > 1 {
        segments[1..].join(" ")
    } else {
        category.to_owned()
    };
    let mut words = String::from(" ");
    for part in [
        category.as_str(),
        p.product_type.as_deref().unwrap_or(""),
        &p.tags.join(" "),
        &p.title,
    ] {
        for w in part
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            words.push_str(w);
            words.push(' ');
        }
    }
    settings.pipeline.restricted_categories.iter().any(|r| {
        let term: Vec<String> = r
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        !term.is_empty() && words.contains(&format!(" {}", term.join(" ")))
    })
}

/// Per-product signals and data tags, without the model's objectives.
fn product_signals(
    data: &StoreData,
    as_of: DateTime<Utc>,
    settings: &Settings,
) -> Vec<ProductSignals> {
    let window = settings.scoring.window_days;
    let st = &settings.stats;
    let metrics = stats::product_metrics(data, as_of, window);
    let start = as_of - Duration::days(i64::from(window));
    // Without orders in the window nothing is known to sell slowly (a new store).
    let selling = data.orders_until(as_of).any(|o| o.created_at > start);
    let ratio = settings.assumptions.cost_ratio;

    // Repeat purchase: per product, buyers with ≥ 2 orders (when customers are known).
    let n = data.products.len();
    let mut buyers: Vec<HashMap<&str, u32>> = vec![HashMap::new(); n];
    let mut orders = vec![0u32; n];
    let mut multi_unit = vec![0u32; n];
    for o in data.orders_until(as_of) {
        for l in &o.lines {
            let Some(i) = l.item else { continue };
            let i = i as usize;
            orders[i] += 1;
            multi_unit[i] += u32::from(l.quantity >= 2);
            if let Some(c) = &o.customer_key {
                *buyers[i].entry(c.as_str()).or_default() += 1;
            }
        }
    }

    let mut out: Vec<ProductSignals> = data
        .products
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let m = &metrics[i];
            let (cost, cost_assumed) = match &p.cost {
                Some(c) if c.currency == p.price.currency => (c.minor, false),
                _ => ((p.price.minor as f64 * ratio).round() as i64, true),
            };
            let repeat_rate = if buyers[i].len() >= 3 {
                let again = buyers[i].values().filter(|&&k| k >= 2).count();
                again as f64 / buyers[i].len() as f64
            } else if orders[i] > 0 {
                f64::from(multi_unit[i]) / f64::from(orders[i])
            } else {
                0.0
            };
            ProductSignals {
                units_window: m.units_window,
                velocity: m.velocity,
                days_of_cover: m.days_of_cover,
                unit_cost_minor: cost,
                cost_assumed,
                unit_margin_minor: p.price.minor - cost,
                age_days: m.launched.map(|t| (as_of - t).num_days()),
                repeat_rate,
                orders: orders[i],
                multi_unit_orders: multi_unit[i],
                eligible: stats::sellable(p) && p.price.minor > 0 && !restricted(p, settings),
                data_tags: Vec::new(),
                objectives: Vec::new(),
            }
        })
        .collect();

    // Bestsellers: the top tenth by units in the window (at least one sold).
    let mut by_units: Vec<usize> = (0..n).filter(|&i| out[i].units_window > 0).collect();
    by_units.sort_by(|&a, &b| {
        out[b]
            .units_window
            .cmp(&out[a].units_window)
            .then(a.cmp(&b))
    });
    let best = by_units.len().div_ceil(10);
    for &i in by_units.iter().take(best) {
        out[i].data_tags.push(DataTag::Bestseller);
    }
    // High margin: the top fifth by absolute unit margin among eligible products.
    let mut by_margin: Vec<usize> = (0..n).filter(|&i| out[i].eligible).collect();
    by_margin.sort_by(|&a, &b| {
        out[b]
            .unit_margin_minor
            .cmp(&out[a].unit_margin_minor)
            .then(a.cmp(&b))
    });
    let top = by_margin.len().div_ceil(5);
    for &i in by_margin.iter().take(top) {
        out[i].data_tags.push(DataTag::HighMargin);
    }
    for (i, s) in out.iter_mut().enumerate() {
        let m = &metrics[i];
        if selling && m.is_slow_mover(start, st.slow_mover_max_units) {
            s.data_tags.push(DataTag::SlowMover);
        }
        if selling
            && s.days_of_cover
                .is_some_and(|d| d > f64::from(st.overstock_cover_days))
            && data.products[i].inventory.unwrap_or(0) > 0
        {
            s.data_tags.push(DataTag::Overstock);
        }
        if m.is_new_launch(as_of, st.new_launch_days) {
            s.data_tags.push(DataTag::NewLaunch);
        }
        if s.orders >= 3 && s.repeat_rate >= settings.pipeline.consumable_repeat_rate {
            s.data_tags.push(DataTag::Consumable);
        }
    }
    out
}

/// Co-purchase partners per product from the counted pairs, strongest first.
fn partners_of(pairs: &rules::Pairs, n: usize) -> Vec<Vec<(u32, u32)>> {
    let mut out: Vec<Vec<(u32, u32)>> = vec![Vec::new(); n];
    for p in &pairs.pairs {
        if (p.a as usize) < n && (p.b as usize) < n {
            out[p.a as usize].push((p.b, p.count));
            out[p.b as usize].push((p.a, p.count));
        }
    }
    for list in &mut out {
        list.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    }
    out
}

/// The complement prior mapped onto the store's products: each used source's
/// categories embedded (through the cache) and every product matched by meaning.
async fn match_prior(
    services: &Services,
    embedder: &dyn crate::embed::Embedder,
    (data, store_categories): (&StoreData, &[String]),
    vectors: &Matrix,
    scope: PriorScope,
    cancel: &CancelToken,
) -> Result<PriorMatch, PipelineError> {
    let settings = &services.settings.prior;
    if !settings.enabled {
        return Ok(PriorMatch::default());
    }
    let prior = ComplementPrior::load(&settings.file)?;
    let mut leave_out: HashMap<String, String> = settings
        .exclude
        .iter()
        .map(|name| (name.clone(), "excluded by prior.exclude".to_owned()))
        .collect();
    if scope == PriorScope::NotFromThisStore {
        let titles: Vec<String> = data.products.iter().map(|p| p.display_title()).collect();
        for name in prior.mined_from(titles.iter().map(String::as_str)) {
            leave_out
                .entry(name)
                .or_insert_with(|| "mined from this store's own orders".to_owned());
        }
    }
    let mut category_vectors = Vec::new();
    for s in prior
        .sources
        .iter()
        .filter(|s| !leave_out.contains_key(&s.name))
    {
        let texts: Vec<Vec<String>> = s.categories.iter().map(|c| c.texts()).collect();
        let flat: Vec<String> = texts.iter().flatten().cloned().collect();
        let (rows, _) =
            crate::embed::embed_texts_until(embedder, services.store.as_ref(), &flat, cancel)
                .await?;
        // A category is the mean of its texts' vectors.
        let mut m = Matrix::zeros(texts.len(), rows.dim());
        let mut r = 0;
        for (c, t) in texts.iter().enumerate() {
            let row = m.row_mut(c);
            for _ in t {
                for (x, y) in row.iter_mut().zip(rows.row(r)) {
                    *x += y;
                }
                r += 1;
            }
        }
        m.normalise_rows();
        category_vectors.push(m);
    }
    let matched = PriorMatch::build(
        &prior,
        &leave_out,
        &category_vectors,
        vectors,
        store_categories,
        settings.min_similarity,
    );
    for (i, p) in data.products.iter().enumerate() {
        let categories = matched.categories_of(i as u32);
        if !categories.is_empty() {
            tracing::debug!(product = %p.display_title(), ?categories, "mapped onto the prior");
        }
    }
    Ok(matched)
}

/// The configured model's complements between the store's kinds of product: one call,
/// when `prior.ask_model` is on and a model is configured.
async fn ask_complements(
    gateway: &Gateway,
    settings: &Settings,
    data: &StoreData,
    categories: &[String],
    signals: &[ProductSignals],
    cancel: &CancelToken,
) -> Result<NamedComplements, PipelineError> {
    if !settings.prior.ask_model || !gateway.has_model() {
        return Ok(NamedComplements::default());
    }
    let (kinds, names) = named::kinds(
        data,
        categories,
        |i| signals.get(i).is_some_and(|s| s.eligible),
        |i| signals.get(i).map_or(0, |s| s.units_window),
    );
    if kinds.is_empty() {
        return Ok(NamedComplements::default());
    }
    let answer = cancel
        .guard(gateway.name_complements(&kinds, named::max_pairs(kinds.len())))
        .await??;
    Ok(NamedComplements::from_pairs(&names, &answer.value))
}

/// Phase 0 for one store: the store as of `options.as_of`, read and prepared. The
/// context is plain data: share it (`Arc`) between any number of runs.
pub async fn prepare(
    services: &Services,
    store_id: &StoreId,
    options: &PrepareOptions,
    observer: &dyn RunObserver,
    cancel: &CancelToken,
) -> Result<Context, PipelineError> {
    prepare_from(services, store_id, None, options, observer, cancel).await
}

/// Phase 0 over a store already read (`CatalogStore::load`): a caller preparing several
/// contexts of one store (`eval`, a cohort's scenarios) reads it once.
pub async fn prepare_loaded(
    services: &Services,
    data: StoreData,
    options: &PrepareOptions,
    observer: &dyn RunObserver,
    cancel: &CancelToken,
) -> Result<Context, PipelineError> {
    let store_id = data.store.id.clone();
    prepare_from(services, &store_id, Some(data), options, observer, cancel).await
}

/// What phase 0's steps share: the services and settings, what to prepare, the clock
/// every task is timed by and the token that stops them.
struct Prep<'a> {
    services: &'a Services,
    settings: Arc<Settings>,
    options: &'a PrepareOptions,
    clock: Clock,
    cancel: &'a CancelToken,
}

/// The store as phase 0 reads it: its data as of the bound, the merchant's rules in
/// force and their decisions on earlier runs' bundles.
struct Loaded {
    data: StoreData,
    store_rules: StoreRules,
    approvals: Vec<Approval>,
}

/// The co-purchase task's result: baskets, evidence (unless cancelled) and timing.
type RulesOut = (u64, Result<Evidence, Cancelled>, TaskTiming);
/// The statistics task's result: the store's summary, per-product signals and timing.
type StatsOut = (Option<stats::StoreStats>, Vec<ProductSignals>, TaskTiming);
/// The graph task's result: neighbours, categories and timing.
type GraphOut = (Vec<Vec<Neighbour>>, Vec<String>, TaskTiming);

/// What phase 0's parallel tasks produced, each task's timing beside it.
struct Gathered {
    embedder: Arc<dyn crate::embed::Embedder>,
    gateway: Gateway,
    vectors: Matrix,
    classification: Classification,
    baskets: u64,
    evidence: Evidence,
    summary: Option<stats::StoreStats>,
    signals: Vec<ProductSignals>,
    neighbours: Vec<Vec<Neighbour>>,
    categories: Vec<String>,
    embed_timing: TaskTiming,
    classify_timing: TaskTiming,
    rules_timing: TaskTiming,
    stats_timing: TaskTiming,
    graph_timing: TaskTiming,
}

impl Prep<'_> {
    /// The store read (or taken as loaded) with the merchant's rules and decisions,
    /// then cut to the day it is prepared as of.
    async fn load(
        &self,
        store_id: &StoreId,
        loaded: Option<StoreData>,
    ) -> Result<Loaded, PipelineError> {
        let (services, cancel) = (self.services, self.cancel);
        let mut data = match loaded {
            Some(data) => data,
            None => cancel.guard(services.store.load(store_id)).await??,
        };
        let own_rules = match cancel.guard(services.store.store_rules(store_id)).await?? {
            Some(text) => StoreRules::parse(&text, &format!("store {store_id}'s stored rules"))
                .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?,
            None => StoreRules::default(),
        };
        let store_rules = self.settings.store_rules.merged(&own_rules);
        // The merchant's decisions on earlier runs' bundles, for a run that honours them.
        let approvals = cancel.guard(services.store.approvals(store_id)).await??;
        let bound = self.options.as_of.map(stats::end_of_day);
        if let Some(bound) = bound {
            let observed = services.store.product_observations(store_id);
            derive_catalog_at(&mut data, &cancel.guard(observed).await??, bound);
        }
        Ok(Loaded {
            data: scoped(data, bound, self.options.orders),
            store_rules,
            approvals,
        })
    }

    /// Co-purchase evidence from the orders, on a blocking thread.
    fn spawn_rules(&self, data: &Arc<StoreData>, as_of: DateTime<Utc>) -> JoinHandle<RulesOut> {
        let clock = self.clock;
        let (data, settings, cancel) = (data.clone(), self.settings.clone(), self.cancel.clone());
        tokio::task::spawn_blocking(move || {
            let started = clock.ms();
            let baskets = basket_index(&data, as_of);
            let threads = settings.threads_for(settings.rules.threads);
            let evidence = rules::evidence(&baskets, &settings.rules, threads, &cancel);
            (baskets.len() as u64, evidence, clock.task("rules", started))
        })
    }

    /// Store statistics and per-product signals, on a blocking thread.
    fn spawn_statistics(
        &self,
        data: &Arc<StoreData>,
        as_of: DateTime<Utc>,
    ) -> JoinHandle<StatsOut> {
        let (clock, as_of_day) = (self.clock, self.options.as_of);
        let (data, settings) = (data.clone(), self.settings.clone());
        tokio::task::spawn_blocking(move || {
            let started = clock.ms();
            let summary = stats::compute(&data, as_of_day, &settings);
            let signals = product_signals(&data, as_of, &settings);
            (summary, signals, clock.task("statistics", started))
        })
    }

    /// The similarity graph and each product's category (its own or a cluster's), on a
    /// blocking thread.
    fn spawn_graph(
        &self,
        data: &Arc<StoreData>,
        vectors: &Matrix,
    ) -> JoinHandle<Result<GraphOut, Cancelled>> {
        let (clock, seed) = (self.clock, self.options.seed);
        let (data, settings, vectors) = (data.clone(), self.settings.clone(), vectors.clone());
        let cancel = self.cancel.clone();
        tokio::task::spawn_blocking(move || {
            let started = clock.ms();
            // A product's own variants are not its neighbours.
            let mut family: HashMap<&str, u32> = HashMap::new();
            let groups: Vec<u32> = data
                .products
                .iter()
                .map(|p| {
                    let next = family.len() as u32;
                    *family.entry(p.product_id.as_str()).or_insert(next)
                })
                .collect();
            let method = GraphMethod::choose(
                settings.index.method.as_str(),
                vectors.rows(),
                settings.index.exact_up_to,
                settings.index.ef_search,
            );
            let graph = neighbour_graph(
                &vectors,
                settings.index.graph_k,
                Some(&groups),
                method,
                settings.threads_for(settings.index.threads),
                &cancel,
            )?;
            let categories = categories(&data.products, &vectors, seed);
            Ok::<_, Cancelled>((graph, categories, clock.task("similarity_graph", started)))
        })
    }

    /// Phase 0's gateway to the model and the products classified by objective,
    /// told to `phase` batch by batch.
    async fn classify(
        &self,
        embedder: &Arc<dyn crate::embed::Embedder>,
        data: &StoreData,
        vectors: &Matrix,
        phase: &PhaseScope<'_>,
    ) -> Result<(Gateway, Classification, TaskTiming), PipelineError> {
        let started = self.clock.ms();
        let offline = OfflineLlm::over_catalog(embedder.clone(), &data.products, vectors);
        // The command's model budget runs from the start of phase 0.
        let gateway = self.services.gateway(offline, self.clock.0);
        let docs: Vec<ProductDoc> = data.products.iter().map(ProductDoc::from_product).collect();
        let classifying = StepReport::new(phase, Step::Classification);
        let progress = |done: u64, total: u64| classifying.report(done, total);
        let classification = self
            .cancel
            .guard(gateway.classify_with(self.services.store.as_ref(), &docs, &progress))
            .await??;
        Ok((
            gateway,
            classification,
            self.clock.task("classification", started),
        ))
    }

    /// The parallel part of phase 0: co-purchase evidence and statistics on blocking
    /// threads beside the embeddings; then the graph (blocking) beside classification;
    /// then every task awaited. Embeddings and classification tell `phase` how they go.
    async fn gather(
        &self,
        data: &Arc<StoreData>,
        as_of: DateTime<Utc>,
        phase: &PhaseScope<'_>,
    ) -> Result<Gathered, PipelineError> {
        let embedder = self.services.embedder().await?;

        // Orders only: co-purchase evidence and statistics, on blocking threads.
        let rules_task = self.spawn_rules(data, as_of);
        let stats_task = self.spawn_statistics(data, as_of);

        // Embeddings, then the graph and clusters (blocking) and classification.
        let started = self.clock.ms();
        let embedding = StepReport::new(phase, Step::Embeddings);
        let progress = |done: usize, total: usize| embedding.report(done as u64, total as u64);
        let (vectors, _) = crate::embed::embed_products_reporting(
            embedder.as_ref(),
            self.services.store.as_ref(),
            &data.products,
            self.settings.embed.description_chars,
            self.cancel,
            &progress,
        )
        .await?;
        let embed_timing = self.clock.task("embeddings", started);
        let graph_task = self.spawn_graph(data, &vectors);
        let (gateway, classification, classify_timing) =
            self.classify(&embedder, data, &vectors, phase).await?;

        let join =
            |e: tokio::task::JoinError| PipelineError::Internal(format!("a task failed: {e}"));
        let (baskets, evidence, rules_timing) = rules_task.await.map_err(join)?;
        let (summary, signals, stats_timing) = stats_task.await.map_err(join)?;
        let (neighbours, categories, graph_timing) = graph_task.await.map_err(join)??;
        let evidence = evidence?;
        self.cancel.check()?;
        Ok(Gathered {
            embedder,
            gateway,
            vectors,
            classification,
            baskets,
            evidence,
            summary,
            signals,
            neighbours,
            categories,
            embed_timing,
            classify_timing,
            rules_timing,
            stats_timing,
            graph_timing,
        })
    }

    /// The complement prior mapped onto the store and the configured model's
    /// complements, both at once; with the prior's and the model's timings.
    async fn prior_and_complements(
        &self,
        data: &StoreData,
        g: &Gathered,
    ) -> Result<(PriorMatch, NamedComplements, TaskTiming, TaskTiming), PipelineError> {
        let clock = self.clock;
        let started = clock.ms();
        let prior = async {
            let prior = match_prior(
                self.services,
                g.embedder.as_ref(),
                (data, &g.categories),
                &g.vectors,
                self.options.prior,
                self.cancel,
            )
            .await;
            (prior, clock.task("prior", started))
        };
        let named = async {
            let named = ask_complements(
                &g.gateway,
                &self.settings,
                data,
                &g.categories,
                &g.signals,
                self.cancel,
            )
            .await;
            (named, clock.task("model_complements", started))
        };
        let ((prior, prior_timing), (model_complements, named_timing)) = tokio::join!(prior, named);
        Ok((prior?, model_complements?, prior_timing, named_timing))
    }
}

/// Each product's objectives from its classification (a consumable by its words or by
/// the model is one, even without repeat data); returns who classified: the model when
/// it classified any product.
fn apply_classification(
    signals: &mut [ProductSignals],
    classification: Classification,
) -> TextSource {
    let source = if classification
        .products
        .iter()
        .any(|t| t.source == TextSource::Llm)
    {
        TextSource::Llm
    } else {
        TextSource::Offline
    };
    for (s, t) in signals.iter_mut().zip(classification.products) {
        s.objectives = t.tags;
        // A consumable by its words or by the model is one, even without repeat data.
        if s.objectives.contains(&Objective::Replenish) && !s.has(DataTag::Consumable) {
            s.data_tags.push(DataTag::Consumable);
        }
    }
    source
}

/// The frequent itemsets of three or more products, as the context keeps them.
struct FrequentSets {
    itemsets: Vec<(Vec<u32>, u32)>,
    itemsets_of: Vec<Vec<usize>>,
    itemset_counts: HashMap<Vec<u32>, u32>,
}

/// The evidence's frequent itemsets of three or more products (sorted ids), most
/// frequent first, indexed by the products of `n` they hold.
fn frequent_sets(evidence: &Evidence, n: usize) -> FrequentSets {
    let mut itemsets: Vec<(Vec<u32>, u32)> = evidence
        .itemsets
        .frequent
        .iter()
        .filter(|(items, _)| items.len() >= 3)
        .map(|(items, count)| {
            let mut items = items.to_vec();
            items.sort_unstable();
            (items, count)
        })
        .collect();
    itemsets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut itemsets_of: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, (items, _)) in itemsets.iter().enumerate() {
        for &i in items {
            if let Some(list) = itemsets_of.get_mut(i as usize) {
                list.push(k);
            }
        }
    }
    let itemset_counts = itemsets.iter().cloned().collect();
    FrequentSets {
        itemsets,
        itemsets_of,
        itemset_counts,
    }
}

/// Phase 0 itself: the store read (unless `loaded`) and scoped, the parallel tasks
/// gathered, the prior and the model's complements, then the context assembled.
#[tracing::instrument(skip_all, fields(store = %store_id))]
async fn prepare_from(
    services: &Services,
    store_id: &StoreId,
    loaded: Option<StoreData>,
    options: &PrepareOptions,
    observer: &dyn RunObserver,
    cancel: &CancelToken,
) -> Result<Context, PipelineError> {
    let clock = Clock(Instant::now());
    let phase = PhaseScope::start(observer, Phase::Context, None);
    let prep = Prep {
        services,
        settings: services.settings.clone(),
        options,
        clock,
        cancel,
    };
    let Loaded {
        data,
        store_rules,
        approvals,
    } = prep.load(store_id, loaded).await?;
    let load_seconds = clock.ms() / 1000.0;
    let (as_of, as_of_source) = stats::resolve_as_of_with_source(&data, options.as_of)
        .ok_or_else(|| PipelineError::NoOrders(data.store.id.to_string()))?;
    let data = Arc::new(data);
    let mut g = prep.gather(&data, as_of, &phase).await?;
    let (prior, model_complements, prior_timing, named_timing) =
        prep.prior_and_complements(&data, &g).await?;
    let summary = g
        .summary
        .ok_or_else(|| PipelineError::NoOrders(data.store.id.to_string()))?;

    let source = apply_classification(&mut g.signals, g.classification);
    let partners = partners_of(&g.evidence.pairs, data.products.len());
    let sets = frequent_sets(&g.evidence, data.products.len());
    let category_links = CategoryLinks::build(&data, as_of, &g.categories);
    let orders_holding = orders_holding(&data, as_of);
    let store_evidence = StoreEvidence::of(&g.evidence.pairs);
    let median_price_minor = median_price(&data, &g.signals);
    let rules = ResolvedRules::resolve(&store_rules, &data.products, |i| {
        g.signals.get(i).is_some_and(|s| s.eligible)
    });
    let data = Arc::try_unwrap(data).unwrap_or_else(|shared| (*shared).clone());
    let mut timings = vec![
        g.embed_timing,
        prior_timing,
        named_timing,
        g.classify_timing,
        g.rules_timing,
        g.stats_timing,
        g.graph_timing,
    ];
    timings.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    let context_seconds = clock.ms() / 1000.0 - load_seconds;
    phase.finish(vec![
        ("products", data.products.len() as u64),
        ("baskets", g.baskets),
        ("pairs", g.evidence.pairs.pairs.len() as u64),
    ]);
    let settings = &prep.settings;
    Ok(Context {
        as_of,
        as_of_source,
        orders_in_window: summary.orders_60d,
        tier: summary.tier,
        weights: summary.weights,
        assumed: summary.assumed,
        signals: g.signals,
        categories: g.categories,
        vectors: g.vectors,
        neighbours: g.neighbours,
        evidence: g.evidence,
        partners,
        baskets: g.baskets,
        itemsets: sets.itemsets,
        itemsets_of: sets.itemsets_of,
        itemset_counts: sets.itemset_counts,
        category_links,
        prior,
        prior_min_lift: settings.prior.min_lift,
        model_complements,
        orders_holding,
        store_evidence,
        median_price_minor,
        store_rules,
        rules,
        approvals,
        prior_count: settings.pipeline.prior_count,
        support_half: settings.pipeline.support_half,
        low_cover_days: settings.stats.low_cover_days,
        classification_source: source,
        llm: g.gateway.report(),
        clock,
        load_seconds,
        context_seconds,
        timings,
        data,
    })
}
