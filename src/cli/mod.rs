//! Command-line front end. Thin by design: arguments → settings → a library call →
//! output. `anyhow` lives here and nowhere else.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use bundleforge::app;
use bundleforge::bench;
use bundleforge::cancel::CancelToken;
use bundleforge::config::{Settings, SettingsBuilder};
use bundleforge::domain::StoreId;
use bundleforge::eval::{self, EvalOptions, SplitAt};
use bundleforge::fixtures::FixtureSize;
use bundleforge::ingest::IngestSources;
use bundleforge::pipeline::{NoObserver, OrderScope, PriorScope, RunObserver, RunRequest, output};
use bundleforge::rules::{self, Fraction, MinSupport, MiningOptions, Separator, Target};
use bundleforge::{render, store, terminal};

mod prior;

#[derive(Parser, Debug)]
#[command(
    name = "bundleforge",
    version,
    about = "Bundles and deals from a store's catalog and orders"
)]
struct Cli {
    /// A TOML config file layered over the embedded defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database URL (overrides BUNDLEFORGE__DATABASE__URL and DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    /// More logging on stderr (-v info, -vv debug). BUNDLEFORGE_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read a store's catalog and/or orders into the database.
    Ingest(IngestArgs),
    /// Summarise a stored store: volume, tier, sellers, slow movers, stock, assumptions.
    Stats(StatsArgs),
    /// A product's nearest neighbours in meaning (local embeddings, exact search).
    Similar(SimilarArgs),
    /// Classify a store's products into objectives through the configured language
    /// model (or the offline provider) and the classification cache.
    Classify(ClassifyArgs),
    /// Generate a store's bundles: context, 40 generators, optimisation and pricing,
    /// copy, storage; writes bundles.json, bundles.csv, shopify.json and report.html.
    Generate(GenerateArgs),
    /// Bundle quality on a temporal holdout: generate on the store as it was at a
    /// cutoff and score against the orders after it, beside baselines.
    Eval(EvalArgs),
    /// Offline A/B cohorts: the control and variants (the seed's six presets, or a
    /// cohorts.toml) on one context per scenario, scored on held-out orders with
    /// paired intervals against the control. `cohorts assign` shows a split.
    Cohorts(CohortsArgs),
    /// Frequent itemsets and association rules (FP-Growth) of a baskets file or a
    /// store's orders. Exact by default: no length limit, no basket cap.
    Rules(RulesArgs),
    /// Set a store's own rules from a TOML file (never-bundle products and categories,
    /// pairs never together, pins, a discount ceiling); `--clear` removes them, no file
    /// shows them.
    StoreRules(StoreRulesArgs),
    /// Approve (or with --reject, reject) bundles of a saved run: a later run keeps an
    /// approved bundle while it is still valid and never publishes a rejected one.
    Approve(ApproveArgs),
    /// The complement prior: what other stores' shoppers buy together, by category.
    #[command(subcommand)]
    Prior(prior::PriorCommand),
    /// Write a seeded synthetic store (products.csv, orders.csv, planted.json).
    Fixtures(FixturesArgs),
    /// The HTTP service: dashboard job triggers on a durable queue, with its workers.
    /// Stops on SIGTERM or Ctrl-C (running jobs get server.shutdown_seconds).
    Serve(ServeArgs),
    /// Measure whole operations (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Args, Debug)]
struct IngestArgs {
    #[arg(long)]
    store: String,
    /// Orders: Shopify order export, order rows, Shopify JSON, or UCI Online Retail.
    #[arg(long, value_name = "FILE")]
    orders: Option<PathBuf>,
    /// Catalog: Shopify product export, a products file, or Shopify JSON.
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// Variants of a split products export (joined on product id).
    #[arg(long, value_name = "FILE")]
    variants: Option<PathBuf>,
    /// Inventory levels of a split export (joined on inventory_item_id).
    #[arg(long, value_name = "FILE")]
    inventory: Option<PathBuf>,
    /// The shop this store is (`example.myshopify.com`), for webhooks; without it
    /// `NAME.myshopify.com` is store NAME.
    #[arg(long, value_name = "DOMAIN", value_parser = shop_domain_arg)]
    shop_domain: Option<String>,
    /// Read and validate the files and print the report; store nothing.
    #[arg(long)]
    check: bool,
    /// Write the rejected rows, as given plus a `rejected_reason` column, to FILE.
    #[arg(long, value_name = "FILE")]
    rejected: Option<PathBuf>,
    /// Replace an existing non-empty --rejected file.
    #[arg(long)]
    force: bool,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct StoreRulesArgs {
    #[arg(long)]
    store: String,
    /// The rules file (TOML); checked whole before it replaces the stored rules.
    #[arg(value_name = "FILE", conflicts_with = "clear")]
    file: Option<PathBuf>,
    /// Remove the store's rules.
    #[arg(long)]
    clear: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ApproveArgs {
    #[arg(long)]
    store: String,
    /// The run's id (`latest` for the store's latest run).
    #[arg(long)]
    run: String,
    /// Bundle ids, comma-separated; every bundle of the run when absent.
    #[arg(long, value_name = "ID,…", value_delimiter = ',')]
    bundles: Vec<String>,
    /// Reject them instead.
    #[arg(long)]
    reject: bool,
    /// Who decides (recorded with the decision).
    #[arg(long, default_value = "cli")]
    by: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct StatsArgs {
    #[arg(long)]
    store: String,
    /// End the windows on this day (YYYY-MM-DD) instead of the latest order.
    #[arg(long, value_name = "DATE", allow_hyphen_values = true, value_parser = calendar_date)]
    as_of: Option<NaiveDate>,
    #[arg(long, default_value_t = 42, allow_negative_numbers = true, value_parser = whole_number::<u64>)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct SimilarArgs {
    #[arg(long)]
    store: String,
    /// A variant id, SKU or product id.
    #[arg(long)]
    product: String,
    #[arg(long, default_value_t = 10, allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    k: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    #[arg(long)]
    store: String,
    /// End every window on this day (YYYY-MM-DD) instead of the latest order.
    #[arg(long, value_name = "DATE", allow_hyphen_values = true, value_parser = calendar_date)]
    as_of: Option<NaiveDate>,
    /// Seed of everything random in a run (cluster seeding); same input + seed = same output.
    #[arg(long, default_value_t = 42, allow_negative_numbers = true, value_parser = whole_number::<u64>)]
    seed: u64,
    /// α,β,γ of score = α·llm + β·transactional + γ·business, instead of the tier's.
    #[arg(long, value_name = "A,B,G", value_parser = parse_weights, allow_hyphen_values = true)]
    weights: Option<[f64; 3]>,
    /// Only these objectives, comma-separated (e.g. cross_sell,increase_aov).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    objectives: Vec<bundleforge::domain::Objective>,
    /// Publish at most N bundles (default optimize.max_bundles, 50).
    #[arg(long, value_name = "N", value_parser = at_least_one, allow_negative_numbers = true)]
    max_bundles: Option<usize>,
    /// Where the files go (bundles.json, bundles.csv, shopify.json, report.html);
    /// default: a new folder under ./runs, never an earlier run's.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace what --out holds (without it, a non-empty --out is an error).
    #[arg(long, requires = "out")]
    force: bool,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct EvalArgs {
    #[arg(long)]
    store: String,
    /// Train on orders dated on or before this day; score against the rest.
    #[arg(long, value_name = "DATE", allow_hyphen_values = true, value_parser = calendar_date, required_unless_present = "holdout")]
    cutoff: Option<NaiveDate>,
    /// Hold out the last SHARE of the orders by time (ties broken by order id), e.g.
    /// 0.25; train on the rest. Works where many orders carry one date.
    #[arg(long, value_name = "SHARE", conflicts_with = "cutoff", allow_hyphen_values = true, value_parser = holdout_share)]
    holdout: Option<SplitAt>,
    /// Only the last N training orders (a small shop).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    max_orders: Option<usize>,
    /// Only these objectives, comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    objectives: Vec<bundleforge::domain::Objective>,
    /// Publish at most N bundles (at least 1).
    #[arg(long, value_name = "N", value_parser = at_least_one, allow_negative_numbers = true)]
    max_bundles: Option<usize>,
    #[arg(long, default_value_t = 42, allow_negative_numbers = true, value_parser = whole_number::<u64>)]
    seed: u64,
    /// Pairs in each top-K baseline.
    #[arg(long, default_value_t = 50, allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    k: usize,
    /// Generate from the catalog alone, as a new store would (the training orders
    /// withheld), beside a nearest-in-meaning baseline.
    #[arg(long, conflicts_with = "max_orders")]
    cold: bool,
    /// Where the run's files and eval.json go (default: a new folder under ./runs).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace what --out holds (without it, a non-empty --out is an error).
    #[arg(long, requires = "out")]
    force: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct CohortsArgs {
    #[command(subcommand)]
    command: Option<CohortsCommand>,
    #[arg(long, required = true)]
    store: Option<String>,
    /// Train on orders dated on or before this day; score against the rest.
    #[arg(long, value_name = "DATE", required = true, allow_hyphen_values = true, value_parser = calendar_date)]
    cutoff: Option<NaiveDate>,
    /// The variants (default: cohorts.toml when the working directory has one, else
    /// the seed's six presets).
    #[arg(long, value_name = "FILE")]
    variants: Option<PathBuf>,
    /// Seed of the runs, the random baselines and the resamples; same input + seed =
    /// same report.
    #[arg(long, default_value_t = 42, allow_negative_numbers = true, value_parser = whole_number::<u64>)]
    seed: u64,
    /// Bootstrap resamples (of the held-out orders and the published product sets).
    #[arg(long, default_value_t = 1000, value_parser = at_least_one)]
    resamples: usize,
    /// Pairs in each top-K baseline (and what novelty is measured against).
    #[arg(long, default_value_t = 50, allow_negative_numbers = true, value_parser = at_least_one)]
    k: usize,
    /// Where cohorts.json and cohorts.html go (default: a new folder under ./runs).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace what `--out DIR` holds.
    #[arg(long, requires = "out")]
    force: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum CohortsCommand {
    /// Assign the store's customers to the arms by a salted hash; prints the split
    /// and its sample-ratio-mismatch check.
    Assign(CohortsAssignArgs),
}

#[derive(Args, Debug)]
struct CohortsAssignArgs {
    /// The store whose customers are assigned.
    #[arg(long, required_unless_present = "stores", conflicts_with = "stores")]
    store: Option<String>,
    /// Assign the stores the database holds instead, by their ids (a split of
    /// merchants rather than of one store's shoppers).
    #[arg(long)]
    stores: bool,
    /// The salt (default: the cohorts file's `salt`).
    #[arg(long)]
    salt: Option<String>,
    #[arg(long, value_name = "FILE")]
    variants: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn at_least_one(raw: &str) -> Result<usize, String> {
    at_least(raw, 1)
}

fn at_least_one_u32(raw: &str) -> Result<u32, String> {
    let n = at_least(raw, 1)?;
    u32::try_from(n).map_err(|_| format!("{raw} is too large"))
}

fn at_least_two(raw: &str) -> Result<usize, String> {
    at_least(raw, 2)
}

fn at_least(raw: &str, min: usize) -> Result<usize, String> {
    match whole_number::<usize>(raw) {
        Ok(n) if n >= min => Ok(n),
        Ok(_) => Err(format!("must be at least {min}")),
        Err(_) if is_negative_integer(raw) => Err(format!("must be at least {min}")),
        Err(e) => Err(e),
    }
}

/// A share as `--holdout` takes it: above 0 and below 1.
fn holdout_share(text: &str) -> Result<SplitAt, String> {
    let share: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number (e.g. 0.25)"))?;
    SplitAt::share(share)
}

/// A day as `--as-of` and `--cutoff` take it: within the years orders can be dated in,
/// as a run request checks it, so a day outside them is refused at its flag.
fn calendar_date(raw: &str) -> Result<NaiveDate, String> {
    let day = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| "not a date: write it as YYYY-MM-DD (2024-03-05)".to_owned())?;
    let years = bundleforge::ingest::YEARS;
    if !years.contains(&chrono::Datelike::year(&day)) {
        return Err(format!(
            "outside the years {}–{} orders can be dated in",
            years.start(),
            years.end()
        ));
    }
    Ok(day)
}

/// A count or a seed: the parse error says what the value must be, not how the
/// digits failed.
fn whole_number<T>(raw: &str) -> Result<T, String>
where
    T: std::str::FromStr<Err = std::num::ParseIntError> + std::fmt::Display + Bounded,
{
    use std::num::IntErrorKind;
    raw.trim().parse::<T>().map_err(|e| match e.kind() {
        IntErrorKind::PosOverflow => format!("too large (at most {})", T::MAX),
        _ if is_negative_integer(raw) => "must be 0 or more".to_owned(),
        _ => "not a whole number".to_owned(),
    })
}

fn is_negative_integer(raw: &str) -> bool {
    raw.trim()
        .strip_prefix('-')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The largest value of the integer types flags take.
trait Bounded {
    const MAX: Self;
}

macro_rules! bounded {
    ($($t:ty),*) => { $(impl Bounded for $t { const MAX: Self = <$t>::MAX; })* };
}
bounded!(u32, u64, usize);

fn parse_weights(raw: &str) -> Result<[f64; 3], String> {
    let parts: Vec<f64> = raw
        .split(',')
        .map(|x| x.trim().parse::<f64>().map_err(|e| format!("{x:?}: {e}")))
        .collect::<Result<_, _>>()?;
    let weights =
        <[f64; 3]>::try_from(parts).map_err(|_| "expected three numbers: A,B,G".to_owned())?;
    bundleforge::config::check_weights("weights", weights).map_err(|e| match e {
        bundleforge::config::ConfigError::Invalid { reason, .. } => reason,
        other => other.to_string(),
    })?;
    Ok(weights)
}

#[derive(Args, Debug)]
struct ClassifyArgs {
    #[arg(long)]
    store: String,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["baskets", "store"])))]
struct RulesArgs {
    /// One basket per line, split on commas if the first line has one, else on
    /// whitespace; labels kept exactly as written; gzip read transparently.
    #[arg(long, value_name = "FILE")]
    baskets: Option<PathBuf>,
    /// A stored store: one basket per order, items by variant id.
    #[arg(long, value_name = "ID")]
    store: Option<String>,
    /// Minimum support: a fraction of the baskets (0.001) or a count (40); an itemset
    /// is frequent iff its count ≥ ⌈minsup × N⌉. Default: rules.itemset_minsup.
    #[arg(long, allow_negative_numbers = true)]
    minsup: Option<MinSupport>,
    /// Minimum rule confidence, compared on counts. Default: rules.min_confidence.
    #[arg(long, allow_negative_numbers = true)]
    minconf: Option<Fraction>,
    /// Force the item separator: comma or whitespace.
    #[arg(long, default_value = "auto")]
    sep: Separator,
    /// Longest itemset (default: no limit).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    max_len: Option<usize>,
    /// Leave out baskets with more than N distinct items (default: none); they are
    /// counted and reported, and not counted in N.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    max_basket: Option<usize>,
    /// frequent, closed or maximal itemsets.
    #[arg(long, default_value = "frequent")]
    target: Target,
    /// Memory budget in MiB (default: rules.memory_budget_mb).
    #[arg(long, value_name = "MIB", allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    budget_mb: Option<usize>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Write the itemsets and rules (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replace FILE (without it, a non-empty --out is an error).
    #[arg(long, requires = "out")]
    force: bool,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address and port to listen on (default server.bind, 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Jobs run at once (default server.workers, 1).
    #[arg(long, value_name = "N", value_parser = at_least_one, allow_negative_numbers = true)]
    workers: Option<usize>,
    /// Log lines as JSON objects (with each request's id) or as text.
    #[arg(long, value_name = "FORMAT", default_value = "json", value_parser = ["json", "text"])]
    log_format: String,
}

#[derive(Args, Debug)]
struct FixturesArgs {
    /// small, medium or large.
    #[arg(long)]
    size: String,
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace what --out holds (without it, a non-empty --out is an error).
    #[arg(long)]
    force: bool,
    #[arg(long, default_value_t = 42, allow_negative_numbers = true, value_parser = whole_number::<u64>)]
    seed: u64,
    /// Plant no complementary pairs: a store whose products are bought together only
    /// by chance.
    #[arg(long)]
    no_complements: bool,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Whole ingest (read, validate, join, store) into a fresh SQLite file, repeated.
    Ingest(BenchIngestArgs),
    /// Similarity search on seeded synthetic vectors (384-d, clustered, normalised).
    Search(BenchSearchArgs),
    /// The all-pairs kNN graph of seeded synthetic vectors.
    Graph(BenchGraphArgs),
    /// Local embedding throughput on a store's product titles.
    Embed(BenchEmbedArgs),
    /// The mining stress case: seeded synthetic baskets with a few hundred
    /// wholesale-sized ones, mined at a low threshold within the memory budget.
    Rules(BenchRulesArgs),
    /// Whole `generate` runs on a stored store, repeated: median time per phase and
    /// task, with the LLM calls and tokens of a run.
    Generate(BenchGenerateArgs),
    /// The service under load: a generated store behind `serve` on 127.0.0.1,
    /// signed webhooks and `GET …/runs/latest` at fixed rates, first idle and then
    /// while generate jobs run back to back with pipeline.threads = 1.
    Serve(BenchServeArgs),
}

#[derive(Args, Debug)]
struct BenchServeArgs {
    /// The generated store: small, medium or large.
    #[arg(long, default_value = "medium")]
    size: String,
    /// Seconds of load in each phase.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Webhooks per second.
    #[arg(long, default_value_t = 200, value_parser = at_least_one_u32)]
    webhook_rate: u32,
    /// `GET …/runs/latest` requests per second.
    #[arg(long, default_value_t = 100, value_parser = at_least_one_u32)]
    get_rate: u32,
    /// Keep the server's log (JSON lines) in this file.
    #[arg(long, value_name = "FILE")]
    server_log: Option<PathBuf>,
    /// Then a hostile phase as long: slow headers, oversize unsigned webhooks, invented
    /// topics and methods and wrong tokens beside the signed webhooks and a running
    /// job, with `/healthz` latency, the server's memory and a verdict per criterion.
    #[arg(long)]
    hostile: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchGenerateArgs {
    #[arg(long)]
    store: String,
    #[arg(long, default_value_t = 5, value_parser = at_least_one, allow_negative_numbers = true)]
    runs: usize,
    #[arg(long, value_name = "DATE", allow_hyphen_values = true, value_parser = calendar_date)]
    as_of: Option<NaiveDate>,
    /// The run's seed (as `generate --seed`).
    #[arg(long, default_value_t = 42, allow_negative_numbers = true, value_parser = whole_number::<u64>)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchRulesArgs {
    #[arg(long, default_value_t = 1_000_000, allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    baskets: usize,
    #[arg(long, default_value_t = 20_000, allow_negative_numbers = true, value_parser = whole_number::<u32>)]
    items: u32,
    /// How many of the baskets are large.
    #[arg(long, default_value_t = 300, allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    large: usize,
    /// Items in each large basket.
    #[arg(long, default_value_t = 200, allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    large_len: usize,
    #[arg(long, default_value = "3", allow_negative_numbers = true)]
    minsup: MinSupport,
    #[arg(long, allow_negative_numbers = true)]
    minconf: Option<Fraction>,
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    max_len: Option<usize>,
    #[arg(long, value_name = "MIB", default_value_t = 2048, allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    budget_mb: usize,
    #[arg(long, default_value_t = 42, allow_negative_numbers = true, value_parser = whole_number::<u64>)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchGraphArgs {
    #[arg(long, default_value_t = 10_000, value_parser = at_least_two, allow_negative_numbers = true)]
    n: usize,
    /// Build the graph from an HNSW index (build + one search per vector) instead of
    /// exact blocked search, with this search breadth; reports recall against exact.
    #[arg(long, value_name = "EF", allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    approximate: Option<usize>,
    #[arg(long, default_value_t = 20, value_parser = at_least_one, allow_negative_numbers = true)]
    k: usize,
    #[arg(long, default_value_t = 384, allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    dim: usize,
    #[arg(long, default_value_t = 3, value_parser = at_least_one, allow_negative_numbers = true)]
    runs: usize,
    #[arg(long, default_value_t = 42, allow_negative_numbers = true, value_parser = whole_number::<u64>)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchEmbedArgs {
    #[arg(long)]
    store: String,
    /// How many products (by id order).
    #[arg(long, default_value_t = 2000, value_parser = at_least_one, allow_negative_numbers = true)]
    limit: usize,
    #[arg(long, default_value_t = 3, value_parser = at_least_one, allow_negative_numbers = true)]
    runs: usize,
    /// Also write the embedded titles, one per line (for a peer to embed the same).
    #[arg(long, value_name = "FILE")]
    write_titles: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchSearchArgs {
    /// Vectors in the index (synthetic).
    #[arg(long, default_value_t = 100_000, value_parser = at_least_one, allow_negative_numbers = true)]
    n: usize,
    /// Use a stored catalog's real embeddings instead of synthetic vectors: every
    /// product is a query (`--n`, `--queries` and `--dim` are then ignored).
    #[arg(long, value_name = "ID")]
    store: Option<String>,
    #[arg(long, default_value_t = 1000, value_parser = at_least_one, allow_negative_numbers = true)]
    queries: usize,
    #[arg(long, default_value_t = 10, value_parser = at_least_one, allow_negative_numbers = true)]
    k: usize,
    #[arg(long, default_value_t = 384, allow_negative_numbers = true, value_parser = whole_number::<usize>)]
    dim: usize,
    /// Timed repetitions; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = at_least_one, allow_negative_numbers = true)]
    runs: usize,
    #[arg(long, default_value_t = 42, allow_negative_numbers = true, value_parser = whole_number::<u64>)]
    seed: u64,
    /// Search breadths for the approximate index (each is one result row).
    #[arg(long, value_delimiter = ',', default_value = "64,128")]
    ef: Vec<usize>,
    /// Skip the approximate index (its build takes tens of seconds at 100k).
    #[arg(long)]
    exact_only: bool,
    /// Also write the data and query vectors as little-endian f32 (for a peer to search
    /// the same vectors): FILE.data.f32 and FILE.queries.f32.
    #[arg(long, value_name = "FILE")]
    save_vectors: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchIngestArgs {
    #[arg(long, value_name = "FILE")]
    orders: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    #[arg(long, default_value_t = 5, value_parser = at_least_one, allow_negative_numbers = true)]
    runs: usize,
    #[arg(long)]
    json: bool,
}

pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    // A server logs what it answers (info) as JSON unless asked for text; commands
    // log warnings as text.
    let (level, json) = match &cli.command {
        Command::Serve(args) => (Some("info"), args.log_format == "json"),
        _ => (None, false),
    };
    init_logging(cli.verbose, level, json);
    let settings = load_settings(&cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(dispatch(cli, settings))
}

fn shop_domain_arg(text: &str) -> Result<String, String> {
    store::shop_domain(text)
        .ok_or_else(|| "not a shop's host name: write it as example.myshopify.com".to_owned())
}

fn init_logging(verbose: u8, level: Option<&str>, json: bool) {
    let default = match (verbose, level) {
        (0, Some(level)) => level,
        (0, None) => "warn",
        (1, _) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BUNDLEFORGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        // One object per line; a request's span (its id, method, route) on each.
        logs.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        logs.init();
    }
}

fn load_settings(cli: &Cli) -> Result<Settings> {
    let mut builder = SettingsBuilder::new()?;
    if let Some(path) = &cli.config {
        builder = builder.file(path)?;
    }
    builder = builder.env(std::env::vars())?;
    if let Some(url) = &cli.database {
        builder = builder.flag("database.url", url)?;
    }
    for w in builder.warnings() {
        tracing::warn!("{w}");
    }
    Ok(builder.build()?)
}

async fn dispatch(cli: Cli, settings: Settings) -> Result<ExitCode> {
    match cli.command {
        Command::Ingest(args) => ingest(args, &settings).await,
        Command::Stats(args) => stats(args, &settings).await,
        Command::Similar(args) => similar(args, &settings).await,
        Command::Classify(args) => classify(args, &settings).await,
        Command::Generate(args) => generate(args, settings).await,
        Command::Eval(args) => eval(args, settings).await,
        Command::Cohorts(args) => cohorts(args, settings).await,
        Command::Rules(args) => rules(args, &settings).await,
        Command::StoreRules(args) => store_rules(args, &settings).await,
        Command::Approve(args) => approve(args, &settings).await,
        Command::Fixtures(args) => fixtures(args),
        Command::Serve(args) => serve(args, settings).await,
        Command::Prior(command) => prior::run(command, &settings).await,
        Command::Bench(BenchCommand::Ingest(args)) => bench_ingest(args, &settings).await,
        Command::Bench(BenchCommand::Search(args)) => bench_search(args, &settings).await,
        Command::Bench(BenchCommand::Graph(args)) => bench_graph(args, &settings),
        Command::Bench(BenchCommand::Embed(args)) => bench_embed(args, &settings).await,
        Command::Bench(BenchCommand::Rules(args)) => bench_rules(args, &settings),
        Command::Bench(BenchCommand::Generate(args)) => bench_generate(args, &settings).await,
        Command::Bench(BenchCommand::Serve(args)) => {
            bench_serve(args, cli.config.clone(), &settings).await
        }
    }
}

fn store_id(raw: &str) -> Result<StoreId> {
    Ok(StoreId::parse(raw)?)
}

/// The process's ports, from the settings (the embedder loads on first use).
async fn services(settings: &Settings) -> Result<app::Services> {
    Ok(app::Services::from_settings(settings.clone()).await?)
}

/// Writes to stdout. A reader that went away (`bundleforge … | head`) is not an
/// error: the rest is not wanted, and the process ends quietly.
fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// One JSON document on stdout with `--json`, else the result's text.
fn print_result(
    json: bool,
    result: &impl serde::Serialize,
    text: impl FnOnce() -> String,
) -> Result<ExitCode> {
    if json {
        write_stdout(&format!("{}\n", serde_json::to_string_pretty(result)?))?;
    } else {
        write_stdout(&text())?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn ingest(args: IngestArgs, settings: &Settings) -> Result<ExitCode> {
    let id = store_id(&args.store)?;
    if let Some(path) = &args.rejected {
        bundleforge::destination::check(path, args.force)?;
    }
    let sources =
        IngestSources::from_paths(args.orders, args.catalog, args.variants, args.inventory);
    // The ingest takes its sources; `--rejected` reads the files again afterwards.
    let reread = sources.clone();
    let progress = Arc::new(terminal::ByteBar::new());
    // A rejected-rows file must be whole: every row for it is kept (on disk).
    let options = app::IngestOptions {
        keep_every_rejected_row: args.rejected.is_some(),
    };
    let mut outcome = if args.check {
        // Nothing is written, not even a new database file.
        let db = store::open_existing(&settings.database.url).await?;
        app::check_ingest_with(db.as_deref(), &id, sources, settings, progress, options).await?
    } else {
        let db = store::open(&settings.database.url).await?;
        let outcome =
            app::ingest_with(db.as_ref(), &id, sources, settings, progress, options).await?;
        if let Some(domain) = &args.shop_domain {
            db.set_shop_domain(&id, domain).await?;
        }
        outcome
    };
    if let Some(path) = &args.rejected {
        outcome.rejected_files =
            bundleforge::ingest::rejected::write(&outcome.report, &reread, path, args.force)?;
    }
    if !args.json {
        eprint!("{}", outcome.errors_text(20));
    }
    print_result(args.json, &outcome, || outcome.text())
}

async fn store_rules(args: StoreRulesArgs, settings: &Settings) -> Result<ExitCode> {
    let id = store_id(&args.store)?;
    let text = match &args.file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None => None,
    };
    let source_name = args
        .file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let change = match (&text, args.clear) {
        (Some(text), _) => app::RulesChange::Set {
            text,
            source_name: &source_name,
        },
        (None, true) => app::RulesChange::Clear,
        (None, false) => app::RulesChange::Show,
    };
    let db = store::open(&settings.database.url).await?;
    let out = app::store_rules(db.as_ref(), &id, change).await?;
    print_result(args.json, &out, || out.text())
}

async fn approve(args: ApproveArgs, settings: &Settings) -> Result<ExitCode> {
    use bundleforge::store::Decision;
    let id = store_id(&args.store)?;
    let decision = if args.reject {
        Decision::Rejected
    } else {
        Decision::Approved
    };
    let bundles: Vec<String> = args
        .bundles
        .iter()
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
        .collect();
    let db = store::open(&settings.database.url).await?;
    let run = (args.run != "latest").then_some(args.run.as_str());
    let recorded = app::decide(db.as_ref(), &id, run, &bundles, decision, &args.by).await?;
    print_result(args.json, &recorded, || {
        let mut text = format!(
            "{}: {} {} bundle(s) of run {}\n",
            id,
            decision.as_str(),
            recorded.len(),
            recorded.first().map_or("-", |a| a.run_id.as_str())
        );
        for a in &recorded {
            text.push_str(&format!("  {}\n", a.bundle_id));
        }
        text
    })
}

async fn stats(args: StatsArgs, settings: &Settings) -> Result<ExitCode> {
    let id = store_id(&args.store)?;
    let db = store::open(&settings.database.url).await?;
    let s = app::stats(db.as_ref(), &id, args.as_of, settings).await?;
    print_result(args.json, &s, || s.text())
}

async fn similar(args: SimilarArgs, settings: &Settings) -> Result<ExitCode> {
    let id = store_id(&args.store)?;
    let services = services(settings).await?;
    let out = app::similar(&services, &id, &args.product, args.k).await?;
    print_result(args.json, &out, || out.text())
}

async fn classify(args: ClassifyArgs, settings: &Settings) -> Result<ExitCode> {
    let id = store_id(&args.store)?;
    let services = services(settings).await?;
    let out = app::classify(&services, &id).await?;
    print_result(args.json, &out, || out.text())
}

async fn eval(args: EvalArgs, settings: Settings) -> Result<ExitCode> {
    let id = store_id(&args.store)?;
    let services = services(&settings).await?;
    let mut run = RunRequest::seeded(args.seed);
    run.variant.objectives = args.objectives;
    run.variant.max_bundles = args.max_bundles;
    if args.cold {
        // A new store: no orders of its own, in the engine or in the prior.
        run.prepare.orders = OrderScope::None;
        run.prepare.prior = PriorScope::NotFromThisStore;
    } else if let Some(n) = args.max_orders {
        run.prepare.orders = OrderScope::Last(n);
    }
    let split = match (args.cutoff, args.holdout) {
        (Some(day), None) => SplitAt::Day(day),
        (None, Some(share)) => share,
        _ => anyhow::bail!("give --cutoff DATE or --holdout SHARE"),
    };
    let options = EvalOptions {
        split,
        run,
        k: args.k.max(1),
    };
    if let Some(dir) = &args.out {
        bundleforge::destination::check(dir, args.force)?;
    }
    let (report, out) = eval::evaluate(&services, &id, &options).await?;
    let dir = output::run_dir(args.out, &format!("{}-eval", id.as_str()), &out.run.run_id);
    let paths = eval::write_files(&dir, args.force, &report, &out)?;
    print_result(args.json, &report, || {
        eval::table(&report) + &render::paths("written to:", &paths)
    })
}

/// The cohorts file asked for, else `./cohorts.toml` when there is one, else the presets.
fn cohorts_file(path: Option<&PathBuf>) -> Result<bundleforge::cohorts::Cohorts> {
    let default = PathBuf::from("cohorts.toml");
    match path {
        Some(p) => Ok(bundleforge::cohorts::Cohorts::from_file(p)?),
        None if default.is_file() => Ok(bundleforge::cohorts::Cohorts::from_file(&default)?),
        None => Ok(bundleforge::cohorts::Cohorts::presets()),
    }
}

async fn cohorts(args: CohortsArgs, settings: Settings) -> Result<ExitCode> {
    use bundleforge::cohorts;
    if let Some(CohortsCommand::Assign(a)) = args.command {
        let file = cohorts_file(a.variants.as_ref())?;
        let Some(salt) = a.salt.or(file.salt.clone()) else {
            anyhow::bail!("--salt: give one (or `salt` in the cohorts file)");
        };
        let services = services(&settings).await?;
        let (split, of) = match &a.store {
            Some(store) => {
                let id = store_id(store)?;
                let data = services.store.load(&id).await?;
                let split = cohorts::assign::assign_store(&data, &salt, &file.arms());
                (split, format!("of store {id}"))
            }
            None => {
                let ids = services.store.store_ids().await?;
                let split = cohorts::assign::assign(
                    ids.iter().map(|id| id.as_str()),
                    &salt,
                    "store",
                    &file.arms(),
                );
                (split, "in the database".to_owned())
            }
        };
        return print_result(a.json, &split, || cohorts::assignment_text(&split, &of));
    }
    let (Some(store), Some(cutoff)) = (args.store, args.cutoff) else {
        anyhow::bail!("--store and --cutoff are required");
    };
    let id = store_id(&store)?;
    let file = cohorts_file(args.variants.as_ref())?;
    if let Some(dir) = &args.out {
        bundleforge::destination::check(dir, args.force)?;
    }
    let services = services(&settings).await?;
    let options = cohorts::CohortOptions {
        cutoff,
        seed: args.seed,
        scenarios: cohorts::Scenario::defaults(),
        resamples: args.resamples,
        k: args.k,
        concurrent_runs: settings.pipeline_threads().clamp(1, 4),
    };
    let bar = terminal::StepBar::new();
    let progress = |done: usize, total: usize, what: &str| bar.step(done, total, what);
    let report = cohorts::run(&services, &id, &file.variants, &options, &progress).await?;
    drop(bar);
    let run_id = ulid::Ulid::new().to_string();
    let dir = output::run_dir(args.out, &format!("{}-cohorts", id.as_str()), &run_id);
    let paths = cohorts::write_files(&dir, args.force, &report)?;
    print_result(args.json, &report, || {
        cohorts::table(&report) + &render::paths("written to:", &paths)
    })
}

async fn serve(args: ServeArgs, mut settings: Settings) -> Result<ExitCode> {
    if let Some(bind) = args.bind {
        bind.parse::<std::net::SocketAddr>().map_err(|_| {
            anyhow::anyhow!("--bind {bind:?} is not an address and port (127.0.0.1:8080)")
        })?;
        settings.server.bind = bind;
    }
    if let Some(workers) = args.workers {
        settings.server.workers = workers;
    }
    settings.share_threads(settings.server.workers);
    let listener = bundleforge::server::bind(&settings.server.bind).await?;
    let services = Arc::new(services(&settings).await?);
    let running = bundleforge::server::start(services, listener)?;
    eprintln!(
        "bundleforge serving on http://{} ({} worker{}); Ctrl-C or SIGTERM stops it",
        running.addr,
        settings.server.workers,
        if settings.server.workers == 1 {
            ""
        } else {
            "s"
        }
    );
    stop_signal().await;
    eprintln!(
        "stopping: no new jobs; running ones get {} s",
        settings.server.shutdown_seconds
    );
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (a service manager) or Ctrl-C.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn generate(args: GenerateArgs, settings: Settings) -> Result<ExitCode> {
    let id = store_id(&args.store)?;
    let services = services(&settings).await?;
    let mut options = RunRequest::seeded(args.seed);
    options.prepare.as_of = args.as_of;
    options.variant.weights = args.weights;
    options.variant.objectives = args.objectives;
    options.variant.max_bundles = args.max_bundles;
    let cancel = CancelToken::new();
    cancel.cancel_on_interrupt();
    let bars = terminal::PhaseBars::new();
    let observer: &dyn RunObserver = if args.json { &NoObserver } else { &bars };
    // Checked before the run, and again when its files are placed.
    if let Some(dir) = &args.out {
        bundleforge::destination::check(dir, args.force)?;
    }
    let mut paths = Vec::new();
    let out = app::generate_placed(&services, &id, &options, observer, &cancel, |out| {
        let dir = output::run_dir(args.out.clone(), id.as_str(), &out.run.run_id);
        let (staged, written) = output::stage_all(&dir, args.force, out, None)?;
        paths = written;
        staged.place()
    })
    .await?;
    tracing::info!(files = paths.len(), "Wrote the run's files");
    print_result(args.json, &out, || {
        let heading = format!("run {} written to:", out.run.run_id);
        out.text() + &render::paths(&heading, &paths)
    })
}

fn fixtures(args: FixturesArgs) -> Result<ExitCode> {
    let size: FixtureSize = args
        .size
        .parse()
        .map_err(|e| anyhow::anyhow!("--size: {e}"))?;
    let generated = bundleforge::fixtures::generate_with(size, args.seed, !args.no_complements);
    bundleforge::fixtures::write_store(&generated, &args.out, args.force)?;
    write_stdout(&format!(
        "wrote a {size} store (seed {}) to {}: products.csv, orders.csv, planted.json\n",
        args.seed,
        args.out.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

async fn rules(args: RulesArgs, settings: &Settings) -> Result<ExitCode> {
    let r = &settings.rules;
    let options = MiningOptions {
        minsup: args
            .minsup
            .unwrap_or(MinSupport::Fraction(r.itemset_minsup())),
        minconf: Some(args.minconf.unwrap_or(r.min_confidence())),
        max_len: args.max_len,
        max_basket: args.max_basket,
        target: args.target,
        budget_bytes: args
            .budget_mb
            .unwrap_or(r.memory_budget_mb)
            .saturating_mul(1 << 20),
        budget_covers_process: true,
        threads: bundleforge::config::thread_count(r.threads),
    };
    let db = match &args.store {
        Some(_) => Some(store::open(&settings.database.url).await?),
        None => None,
    };
    let source = match (&args.baskets, &args.store, &db) {
        (Some(path), _, _) => app::BasketSource::File {
            path: path.clone(),
            sep: args.sep,
        },
        (None, Some(id), Some(db)) => app::BasketSource::Store {
            store: db.as_ref(),
            id: store_id(id)?,
        },
        _ => bail!("give --baskets FILE or --store ID"),
    };
    let spinner = terminal::Spinner::new("mining");
    let out = app::rules(source, options, args.out.clone(), args.force).await;
    drop(spinner);
    let out = out?;
    print_result(args.json, &out, || out.text())
}

/// A bench's error as the library error it wraps: `main`'s hints look errors up by
/// type, and the wrapper would hide them.
fn bench_failure(err: bench::BenchError) -> anyhow::Error {
    use bench::BenchError as E;
    match err {
        E::App(e) => e.into(),
        E::Services(e) => e.into(),
        E::Store(e) => e.into(),
        E::Embed(e) => e.into(),
        E::StoreId(e) => e.into(),
        other => other.into(),
    }
}

async fn bench_serve(
    args: BenchServeArgs,
    config: Option<PathBuf>,
    settings: &Settings,
) -> Result<ExitCode> {
    let size: FixtureSize = args
        .size
        .parse()
        .map_err(|e| anyhow::anyhow!("--size: {e}"))?;
    let options = bench::ServeOptions {
        program: std::env::current_exe().context("cannot find this program to run serve")?,
        config,
        size,
        seconds: args.seconds,
        webhook_rate: args.webhook_rate,
        get_rate: args.get_rate,
        server_log: args.server_log,
        hostile: args.hostile,
    };
    let spinner = terminal::Spinner::new("loading the service");
    let report = bench::serve::serve(&options, settings).await;
    drop(spinner);
    let report = report.map_err(bench_failure)?;
    print_result(args.json, &report, || report.text())
}

async fn bench_ingest(args: BenchIngestArgs, settings: &Settings) -> Result<ExitCode> {
    let options = bench::IngestOptions {
        orders: args.orders,
        catalog: args.catalog,
        runs: args.runs,
    };
    let report = bench::ingest(&options, settings)
        .await
        .map_err(bench_failure)?;
    print_result(args.json, &report, || report.text())
}

async fn bench_search(args: BenchSearchArgs, settings: &Settings) -> Result<ExitCode> {
    let vectors = match &args.store {
        Some(raw) => {
            let id = store_id(raw)?;
            let services = services(settings).await?;
            let vectors = bench::catalog_vectors(&services, &id).await;
            bench::SearchVectors::Catalog(vectors.map_err(bench_failure)?)
        }
        None => bench::SearchVectors::Synthetic {
            n: args.n,
            queries: args.queries,
            dim: args.dim,
            seed: args.seed,
        },
    };
    let options = bench::SearchOptions {
        vectors,
        k: args.k,
        runs: args.runs,
        ef: args.ef,
        exact_only: args.exact_only,
        save_vectors: args.save_vectors,
        threads: settings.index.thread_count(),
    };
    let report = bench::search(&options).map_err(bench_failure)?;
    print_result(args.json, &report, || report.text())
}

fn bench_graph(args: BenchGraphArgs, settings: &Settings) -> Result<ExitCode> {
    let options = bench::GraphOptions {
        n: args.n,
        dim: args.dim,
        seed: args.seed,
        k: args.k,
        runs: args.runs,
        approximate: args.approximate,
        threads: settings.index.thread_count(),
    };
    let report = bench::graph(&options).map_err(bench_failure)?;
    print_result(args.json, &report, || report.text())
}

async fn bench_embed(args: BenchEmbedArgs, settings: &Settings) -> Result<ExitCode> {
    let options = bench::EmbedOptions {
        store: store_id(&args.store)?,
        limit: args.limit,
        runs: args.runs,
        write_titles: args.write_titles,
    };
    let services = services(settings).await?;
    let report = bench::embed(&services, &options)
        .await
        .map_err(bench_failure)?;
    print_result(args.json, &report, || report.text())
}

fn bench_rules(args: BenchRulesArgs, settings: &Settings) -> Result<ExitCode> {
    let options = bench::RulesOptions {
        baskets: rules::synthetic::StressSpec {
            baskets: args.baskets,
            items: args.items,
            large: args.large,
            large_len: args.large_len,
            seed: args.seed,
        },
        minsup: args.minsup,
        minconf: args.minconf,
        max_len: args.max_len,
        budget_bytes: args.budget_mb.saturating_mul(1 << 20),
        threads: bundleforge::config::thread_count(settings.rules.threads),
    };
    let report = bench::rules(&options);
    if args.json {
        write_stdout(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        write_stdout(&report.text().map_err(bench_failure)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn bench_generate(args: BenchGenerateArgs, settings: &Settings) -> Result<ExitCode> {
    let mut request = RunRequest::seeded(args.seed);
    request.prepare.as_of = args.as_of;
    let options = bench::GenerateOptions {
        store: store_id(&args.store)?,
        runs: args.runs,
        request,
    };
    let services = services(settings).await?;
    let report = bench::generate(&services, &options)
        .await
        .map_err(bench_failure)?;
    print_result(args.json, &report, || report.text())
}
