//! Command-line front end. Thin by design: arguments → settings → a library call →
//! output. `anyhow` lives here and nowhere else.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use bundleforge::app;
use bundleforge::config::{Settings, SettingsBuilder};
use bundleforge::domain::StoreId;
use bundleforge::fixtures::FixtureSize;
use bundleforge::ingest::{IngestFiles, Progress};
use bundleforge::rules::{self, Fraction, MinSupport, MiningOptions, Separator, Target};
use bundleforge::stats::StoreStats;
use bundleforge::store;

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
    /// Bundle quality on a temporal holdout: generate on the orders up to a cutoff (in
    /// a scratch store) and score against the orders after it, beside baselines.
    Eval(EvalArgs),
    /// Frequent itemsets and association rules (FP-Growth) of a baskets file or a
    /// store's orders. Exact by default: no length limit, no basket cap.
    Rules(RulesArgs),
    /// Write a seeded synthetic store (products.csv, orders.csv, planted.json).
    Fixtures(FixturesArgs),
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
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct StatsArgs {
    #[arg(long)]
    store: String,
    /// End the windows on this day (YYYY-MM-DD) instead of the latest order.
    #[arg(long, value_name = "DATE")]
    as_of: Option<NaiveDate>,
    #[arg(long, default_value_t = 42)]
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
    #[arg(long, default_value_t = 10)]
    k: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    #[arg(long)]
    store: String,
    /// End every window on this day (YYYY-MM-DD) instead of the latest order.
    #[arg(long, value_name = "DATE")]
    as_of: Option<NaiveDate>,
    /// Seed of everything random in a run (cluster seeding); same input + seed = same output.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// α,β,γ of score = α·llm + β·transactional + γ·business, instead of the tier's.
    #[arg(long, value_name = "A,B,G", value_parser = parse_weights)]
    weights: Option<[f64; 3]>,
    /// Only these objectives, comma-separated (e.g. cross_sell,increase_aov).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    objectives: Vec<bundleforge::domain::Objective>,
    /// Publish at most N bundles (default optimize.max_bundles, 50).
    #[arg(long, value_name = "N")]
    max_bundles: Option<usize>,
    /// Where the files go (bundles.json, bundles.csv, shopify.json, report.html);
    /// default: a new folder under ./runs, never an earlier run's.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct EvalArgs {
    #[arg(long)]
    store: String,
    /// Train on orders dated on or before this day; score against the rest.
    #[arg(long, value_name = "DATE")]
    cutoff: NaiveDate,
    /// Only the last N training orders (a small shop).
    #[arg(long, value_name = "N")]
    max_orders: Option<usize>,
    /// Only these objectives, comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    objectives: Vec<bundleforge::domain::Objective>,
    #[arg(long, value_name = "N")]
    max_bundles: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Pairs in each top-K baseline.
    #[arg(long, default_value_t = 50)]
    k: usize,
    /// Where the run's files and eval.json go (default: a new folder under ./runs).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn parse_weights(raw: &str) -> Result<[f64; 3], String> {
    let parts: Vec<f64> = raw
        .split(',')
        .map(|x| x.trim().parse::<f64>().map_err(|e| format!("{x:?}: {e}")))
        .collect::<Result<_, _>>()?;
    <[f64; 3]>::try_from(parts).map_err(|_| "expected three numbers: A,B,G".to_owned())
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
    #[arg(long)]
    minsup: Option<MinSupport>,
    /// Minimum rule confidence, compared on counts. Default: rules.min_confidence.
    #[arg(long)]
    minconf: Option<Fraction>,
    /// Force the item separator: comma or whitespace.
    #[arg(long, default_value = "auto")]
    sep: Separator,
    /// Longest itemset (default: no limit).
    #[arg(long, value_name = "N")]
    max_len: Option<usize>,
    /// Leave out baskets with more than N distinct items (default: none); they are
    /// counted and reported, and not counted in N.
    #[arg(long, value_name = "N")]
    max_basket: Option<usize>,
    /// frequent, closed or maximal itemsets.
    #[arg(long, default_value = "frequent")]
    target: Target,
    /// Memory budget in MiB (default: rules.memory_budget_mb).
    #[arg(long, value_name = "MIB")]
    budget_mb: Option<usize>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Write the itemsets and rules (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct FixturesArgs {
    /// small, medium or large.
    #[arg(long)]
    size: String,
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
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
}

#[derive(Args, Debug)]
struct BenchGenerateArgs {
    #[arg(long)]
    store: String,
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long, value_name = "DATE")]
    as_of: Option<NaiveDate>,
    /// The run's seed (as `generate --seed`).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchRulesArgs {
    #[arg(long, default_value_t = 1_000_000)]
    baskets: usize,
    #[arg(long, default_value_t = 20_000)]
    items: u32,
    /// How many of the baskets are large.
    #[arg(long, default_value_t = 300)]
    large: usize,
    /// Items in each large basket.
    #[arg(long, default_value_t = 200)]
    large_len: usize,
    #[arg(long, default_value = "3")]
    minsup: MinSupport,
    #[arg(long)]
    minconf: Option<Fraction>,
    #[arg(long, value_name = "N")]
    max_len: Option<usize>,
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    budget_mb: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchGraphArgs {
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// Build the graph from an HNSW index (build + one search per vector) instead of
    /// exact blocked search, with this search breadth; reports recall against exact.
    #[arg(long, value_name = "EF")]
    approximate: Option<usize>,
    #[arg(long, default_value_t = 20)]
    k: usize,
    #[arg(long, default_value_t = 384)]
    dim: usize,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchEmbedArgs {
    #[arg(long)]
    store: String,
    /// How many products (by id order).
    #[arg(long, default_value_t = 2000)]
    limit: usize,
    #[arg(long, default_value_t = 3)]
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
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Use a stored catalog's real embeddings instead of synthetic vectors: every
    /// product is a query (`--n`, `--queries` and `--dim` are then ignored).
    #[arg(long, value_name = "ID")]
    store: Option<String>,
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    #[arg(long, default_value_t = 10)]
    k: usize,
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Timed repetitions; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value_t = 42)]
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
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long)]
    json: bool,
}

pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let settings = load_settings(&cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(dispatch(cli, settings))
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BUNDLEFORGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
        Command::Rules(args) => rules(args, &settings).await,
        Command::Fixtures(args) => fixtures(args),
        Command::Bench(BenchCommand::Ingest(args)) => bench_ingest(args, &settings).await,
        Command::Bench(BenchCommand::Search(args)) => bench_search(args, &settings).await,
        Command::Bench(BenchCommand::Graph(args)) => bench_graph(args, &settings),
        Command::Bench(BenchCommand::Embed(args)) => bench_embed(args, &settings).await,
        Command::Bench(BenchCommand::Rules(args)) => bench_rules(args, &settings),
        Command::Bench(BenchCommand::Generate(args)) => bench_generate(args, settings).await,
    }
}

fn store_id(raw: &str) -> Result<StoreId> {
    Ok(StoreId::parse(raw)?)
}

/// An indicatif bar over the bytes of the file being read (drawn only on a terminal).
struct BarProgress(ProgressBar);

impl BarProgress {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        BarProgress(bar)
    }
}

impl Progress for BarProgress {
    fn start(&self, label: &str, total_bytes: u64) {
        self.0.reset();
        self.0.set_length(total_bytes);
        self.0.set_message(format!("reading {label}"));
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

async fn ingest(args: IngestArgs, settings: &Settings) -> Result<ExitCode> {
    let id = store_id(&args.store)?;
    let db = store::open(&settings.database.url).await?;
    let files = IngestFiles {
        orders: args.orders,
        catalog: args.catalog,
        variants: args.variants,
        inventory: args.inventory,
    };
    let outcome = app::ingest(
        db.as_ref(),
        &id,
        files,
        settings,
        Arc::new(BarProgress::new()),
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
        return Ok(ExitCode::SUCCESS);
    }
    let r = &outcome.report;
    println!("store {} ({})", outcome.store_id, outcome.currency);
    println!(
        "rows: {} read, {} kept, {} rejected, {} dropped by filters",
        r.rows_read,
        r.rows_kept,
        r.rejected_total(),
        r.dropped_total()
    );
    for (reason, n) in &r.dropped {
        println!("  dropped {reason}: {n}");
    }
    for (reason, n) in &r.rejected {
        println!("  rejected {reason}: {n}");
    }
    println!(
        "stored: {} products, {} orders, {} order lines ({} merged), {} baskets",
        r.products, r.orders, r.order_lines, r.lines_merged, r.baskets
    );
    if r.lines_without_catalog_product > 0 {
        println!(
            "  {} order lines name products the catalog does not have (kept)",
            r.lines_without_catalog_product
        );
    }
    for e in r.errors.iter().take(20) {
        eprintln!("{e}");
    }
    if r.error_count > 20 {
        eprintln!("… and {} more (see --json)", r.error_count - 20);
    }
    Ok(ExitCode::SUCCESS)
}

async fn stats(args: StatsArgs, settings: &Settings) -> Result<ExitCode> {
    let id = store_id(&args.store)?;
    let db = store::open(&settings.database.url).await?;
    let s = app::stats(db.as_ref(), &id, args.as_of, settings).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print_stats(&s);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_stats(s: &StoreStats) {
    println!("store {} ({}), as of {}", s.store_id, s.currency, s.as_of);
    println!(
        "{} orders, {} order lines, {} products; {} baskets ({} with 2+ items, {:.1} items on average)",
        s.orders, s.order_lines, s.products, s.baskets, s.multi_item_baskets, s.avg_basket_size
    );
    println!(
        "{} orders in the last {} days: {:?} tier, weights α={} β={} γ={}",
        s.orders_60d, s.window_days, s.tier, s.weights.alpha, s.weights.beta, s.weights.gamma
    );
    println!("top sellers:");
    for t in &s.top_sellers {
        println!("  {:>6} units  {}  {}", t.units, t.product_id, t.title);
    }
    println!("slow movers: {}", s.slow_movers.count);
    for p in &s.slow_movers.products {
        println!(
            "  {}  {}  ({} units in window)",
            p.product_id, p.title, p.units_in_window
        );
    }
    println!("new launches: {}", s.new_launches.count);
    for p in &s.new_launches.products {
        println!("  {}  {}  (launched {})", p.product_id, p.title, p.launched);
    }
    let c = &s.stock_cover;
    println!(
        "stock: {} tracked ({} out, {} low, {} overstock), {} untracked",
        c.tracked, c.out_of_stock, c.low, c.overstock, c.untracked
    );
    if !s.assumed.is_empty() {
        println!("assumed:");
        for a in &s.assumed {
            println!("  {} for {} {}: {}", a.field, a.count, a.applies_to, a.rule);
        }
    }
}

async fn similar(args: SimilarArgs, settings: &Settings) -> Result<ExitCode> {
    let id = store_id(&args.store)?;
    let services = services(settings).await?;
    let out = app::similar(&services, &id, &args.product, args.k).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}  {}", out.product.product_id, out.product.title);
    for n in &out.neighbours {
        println!("  {:.3}  {}  {}", n.score, n.product_id, n.title);
    }
    Ok(ExitCode::SUCCESS)
}

async fn eval(args: EvalArgs, settings: Settings) -> Result<ExitCode> {
    use bundleforge::eval::{self, EvalOptions};
    use bundleforge::pipeline;
    let id = store_id(&args.store)?;
    let services = services(&settings).await?;
    let options = EvalOptions {
        cutoff: args.cutoff,
        max_orders: args.max_orders,
        objectives: args.objectives,
        max_bundles: args.max_bundles,
        seed: args.seed,
        k: args.k.max(1),
    };
    let (report, out) = eval::evaluate(&services, &id, &options).await?;
    let dir = match args.out {
        Some(dir) => dir,
        None => pipeline::output::new_run_dir(
            std::path::Path::new("runs"),
            &format!("{}-eval", id.as_str()),
            &out.run.run_id,
        )?,
    };
    let mut paths =
        pipeline::output::write_all_with(&dir, &out, Some(&eval::html_section(&report)))?;
    let eval_path = dir.join("eval.json");
    std::fs::write(&eval_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", eval_path.display()))?;
    paths.push(eval_path);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", eval::table(&report));
    print_paths("written to:", &paths);
    Ok(ExitCode::SUCCESS)
}

fn print_paths(heading: &str, paths: &[PathBuf]) {
    println!("{heading}");
    for p in paths {
        println!("  {}", p.display());
    }
}

async fn generate(args: GenerateArgs, settings: Settings) -> Result<ExitCode> {
    use bundleforge::pipeline;
    let id = store_id(&args.store)?;
    let services = services(&settings).await?;
    let options = app::GenerateOptions {
        as_of: args.as_of,
        seed: args.seed,
        weights: args.weights,
        objectives: args.objectives,
        max_bundles: args.max_bundles,
        run_id: None,
    };
    let cancel = bundleforge::cancel::CancelToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let bars = PhaseBars::new();
    let observer: &dyn pipeline::RunObserver = if args.json {
        &pipeline::NoObserver
    } else {
        &bars
    };
    let out = app::generate_with(&services, &id, &options, observer, &cancel).await?;
    let dir = match args.out {
        Some(dir) => dir,
        None => pipeline::output::new_run_dir(
            std::path::Path::new("runs"),
            id.as_str(),
            &out.run.run_id,
        )?,
    };
    let paths = pipeline::output::write_all(&dir, &out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        tracing::info!(dir = %dir.display(), "Wrote the run's files");
        return Ok(ExitCode::SUCCESS);
    }
    let r = &out.run;
    println!(
        "{}: as of {}, {} orders in the window ({:?} tier), weights α={} β={} γ={}",
        r.store_id,
        r.as_of,
        r.orders_in_window,
        r.tier,
        r.weights.alpha,
        r.weights.beta,
        r.weights.gamma
    );
    println!(
        "{} candidates in {} of {} cells; {:.2} s (load {:.2}, context {:.2}, candidates {:.2})",
        r.candidates,
        r.cells.iter().filter(|c| c.candidates > 0).count(),
        r.cells.len(),
        r.timings.total_seconds,
        r.timings.load_seconds,
        r.timings.context_seconds,
        r.timings.candidates_seconds
    );
    for c in r.cells.iter().filter(|c| c.candidates == 0) {
        println!(
            "  empty: {} × {}: {}",
            c.objective,
            c.bundle_type,
            c.why.as_deref().unwrap_or("")
        );
    }
    let o = &r.optimize;
    println!(
        "{} bundles published ({} duplicates merged, rejected {:?}, {} on the Pareto front); copy: {} by the model, {} from templates; {} LLM calls, {} tokens (≈ ${:.4})",
        r.bundles,
        o.duplicates_merged,
        o.rejected,
        o.pareto_front,
        out.bundles
            .iter()
            .filter(|b| b.copy.source == bundleforge::domain::TextSource::Llm)
            .count(),
        out.bundles
            .iter()
            .filter(|b| b.copy.source == bundleforge::domain::TextSource::Offline)
            .count(),
        r.llm.calls,
        r.llm.prompt_tokens + r.llm.completion_tokens,
        r.llm.estimated_cost_usd
    );
    for b in out.bundles.iter().take(5) {
        println!(
            "  {:<18} {:<9} {}  {} → {} ({:.0}% off)",
            b.objective.as_str(),
            b.bundle_type.as_str(),
            b.copy.title,
            bundleforge::domain::Money::new(b.list_price_minor, b.currency),
            bundleforge::domain::Money::new(b.final_price_minor, b.currency),
            b.discount_pct
        );
    }
    print_paths(&format!("run {} written to:", r.run_id), &paths);
    Ok(ExitCode::SUCCESS)
}

async fn bench_generate(args: BenchGenerateArgs, settings: Settings) -> Result<ExitCode> {
    use std::collections::BTreeMap;
    let id = store_id(&args.store)?;
    let services = services(&settings).await?;
    let options = app::GenerateOptions {
        as_of: args.as_of,
        seed: args.seed,
        ..app::GenerateOptions::default()
    };
    let mut phases: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut first = None;
    for run in 0..args.runs.max(1) {
        let out = app::generate(&services, &id, &options).await?;
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
        if first.is_none() {
            first = Some(out.run);
        }
    }
    let medians: BTreeMap<&str, f64> = phases
        .iter_mut()
        .map(|(k, v)| (*k, bundleforge::stats::median(v).unwrap_or(0.0)))
        .collect();
    let run = first.context("no run")?;
    let report = serde_json::json!({
        "store": args.store,
        "runs": args.runs,
        "products": run.products,
        "baskets": run.baskets,
        "candidates": run.candidates,
        "bundles": run.bundles,
        "cells_with_candidates": run.cells.iter().filter(|c| c.candidates > 0).count(),
        "llm_model": run.llm.model,
        "llm_calls_first_run": run.llm.calls,
        "llm_tokens_first_run": run.llm.prompt_tokens + run.llm.completion_tokens,
        "median_seconds": medians,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} products, {} baskets, {} candidates; median of {} runs:",
            args.store, run.products, run.baskets, run.candidates, args.runs
        );
        for (k, v) in &medians {
            println!("  {k:<18} {v:.3} s");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn classify(args: ClassifyArgs, settings: &Settings) -> Result<ExitCode> {
    let id = store_id(&args.store)?;
    let services = services(settings).await?;
    let out = app::classify(&services, &id).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    for p in &out.products {
        let tags: Vec<&str> = p.tags.iter().map(|t| t.as_str()).collect();
        println!(
            "{}  {}  [{}] ({})",
            p.product_id,
            p.title,
            tags.join(", "),
            match p.source {
                bundleforge::domain::TextSource::Llm => "llm",
                bundleforge::domain::TextSource::Offline => "offline",
            }
        );
    }
    println!(
        "{} products: {} classified, {} from cache, {} by the offline fallback; {} unknown ids dropped; {} calls, {} tokens (≈ ${:.4}) via {}",
        out.products.len(),
        out.classified,
        out.from_cache,
        out.fallback,
        out.dropped_ids,
        out.calls,
        out.tokens.total,
        out.llm.estimated_cost_usd,
        out.llm.model
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct SearchResult {
    method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ef: Option<usize>,
    recall: f64,
    qps: f64,
    build_seconds: f64,
    search_seconds: f64,
    threads: usize,
}

#[derive(serde::Serialize)]
struct BenchSearchReport {
    n: usize,
    queries: usize,
    k: usize,
    dim: usize,
    kernels: &'static str,
    results: Vec<SearchResult>,
}

async fn bench_search(mut args: BenchSearchArgs, settings: &Settings) -> Result<ExitCode> {
    use bundleforge::index::{ExactIndex, HnswIndex, HnswParams, recall_at_k, synthetic};
    if args.n == 0 || args.queries == 0 || args.k == 0 || args.runs == 0 {
        bail!("--n, --queries, --k and --runs must be at least 1");
    }
    let threads = settings.index.thread_count();
    let (data, queries) = match &args.store {
        Some(raw) => {
            let id = store_id(raw)?;
            let db = store::open(&settings.database.url).await?;
            let catalog = db.load(&id).await?;
            let embedder = load_embedder(settings).await?;
            let (m, _) = bundleforge::embed::embed_products(
                embedder.as_ref(),
                db.as_ref(),
                &catalog.products,
                settings.embed.description_chars,
            )
            .await?;
            args.n = m.rows();
            args.queries = m.rows();
            args.dim = m.dim();
            (m.clone(), m)
        }
        None => {
            let data = synthetic::clustered(args.n, args.dim, 200, args.seed);
            let queries = synthetic::queries_near(&data, args.queries, 0.3, args.seed + 1);
            (data, queries)
        }
    };
    if let Some(base) = &args.save_vectors {
        write_f32(&base.with_extension("data.f32"), data.as_slice())?;
        write_f32(&base.with_extension("queries.f32"), queries.as_slice())?;
    }
    let started = Instant::now();
    let exact = ExactIndex::new(data);
    let build_seconds = started.elapsed().as_secs_f64();
    let mut times = Vec::with_capacity(args.runs);
    let mut truth = Vec::new();
    for _ in 0..args.runs {
        let started = Instant::now();
        truth = exact.search_batch(&queries, args.k, threads);
        times.push(started.elapsed().as_secs_f64());
    }
    let secs = bundleforge::stats::median(&mut times).unwrap_or(0.0);
    let mut results = vec![SearchResult {
        method: "exact",
        ef: None,
        recall: recall_at_k(&truth, &truth, args.k),
        qps: args.queries as f64 / secs,
        build_seconds,
        search_seconds: secs,
        threads,
    }];
    if !args.exact_only {
        let started = Instant::now();
        let hnsw = HnswIndex::build(exact.data().clone(), HnswParams::default(), threads);
        let build_seconds = started.elapsed().as_secs_f64();
        for &ef in &args.ef {
            let mut times = Vec::with_capacity(args.runs);
            let mut got = Vec::new();
            for _ in 0..args.runs {
                let started = Instant::now();
                got = hnsw.search_batch(&queries, args.k, ef, threads);
                times.push(started.elapsed().as_secs_f64());
            }
            let secs = bundleforge::stats::median(&mut times).unwrap_or(0.0);
            results.push(SearchResult {
                method: "approximate",
                ef: Some(ef),
                recall: recall_at_k(&truth, &got, args.k),
                qps: args.queries as f64 / secs,
                build_seconds,
                search_seconds: secs,
                threads,
            });
        }
    }
    let report = BenchSearchReport {
        n: args.n,
        queries: args.queries,
        k: args.k,
        dim: args.dim,
        kernels: bundleforge::index::metric::kernels().name,
        results,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for r in &report.results {
            println!(
                "{:<12}{:>7} n={} queries={} k={}: recall@{} {:.3}, {:.0} queries/s ({:.3} s), build {:.2} s, {} threads",
                r.method,
                r.ef.map(|e| format!("ef={e}")).unwrap_or_default(),
                report.n,
                report.queries,
                report.k,
                report.k,
                r.recall,
                r.qps,
                r.search_seconds,
                r.build_seconds,
                r.threads
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The process's ports, from the settings (the embedder loads on first use).
async fn services(settings: &Settings) -> Result<app::Services> {
    Ok(app::Services::from_settings(settings.clone()).await?)
}

/// The configured embedder; loading the model is CPU work, so it runs off the async workers.
async fn load_embedder(settings: &Settings) -> Result<Arc<dyn bundleforge::embed::Embedder>> {
    let settings = settings.clone();
    Ok(tokio::task::spawn_blocking(move || {
        bundleforge::services::embedder_from_settings(&settings)
    })
    .await
    .context("model loader failed")??)
}

/// A bar per phase of a run on stderr (drawn only on a terminal): cells, priced
/// bundles, copy batches.
struct PhaseBars {
    multi: indicatif::MultiProgress,
    bars: std::sync::Mutex<std::collections::HashMap<bundleforge::pipeline::Phase, ProgressBar>>,
}

impl PhaseBars {
    fn new() -> Self {
        PhaseBars {
            multi: indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stderr(),
            ),
            bars: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl bundleforge::pipeline::RunObserver for PhaseBars {
    fn event(&self, event: &bundleforge::pipeline::RunEvent) {
        use bundleforge::pipeline::RunEvent;
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match event {
            RunEvent::Started { phase, total } => {
                let bar = match total {
                    Some(n) => {
                        let bar = self.multi.add(ProgressBar::new(*n));
                        bar.set_style(
                            ProgressStyle::with_template("{msg:<12} [{bar:30}] {pos}/{len}")
                                .unwrap_or_else(|_| ProgressStyle::default_bar())
                                .progress_chars("=> "),
                        );
                        bar
                    }
                    None => {
                        let bar = self.multi.add(ProgressBar::new_spinner());
                        bar.enable_steady_tick(std::time::Duration::from_millis(120));
                        bar
                    }
                };
                bar.set_message(phase.as_str());
                bars.insert(*phase, bar);
            }
            RunEvent::Progress { phase, done, total } => {
                if let Some(bar) = bars.get(phase) {
                    bar.set_length(*total);
                    bar.set_position(*done);
                }
            }
            RunEvent::Finished {
                phase,
                seconds,
                counts,
            } => {
                if let Some(bar) = bars.remove(phase) {
                    let counts: Vec<String> =
                        counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
                    bar.set_style(
                        ProgressStyle::with_template("{msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.finish_with_message(format!(
                        "{:<12} {seconds:.2} s: {}",
                        phase.as_str(),
                        counts.join(", ")
                    ));
                }
            }
        }
    }
}

fn write_f32(path: &std::path::Path, values: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn bench_graph(args: BenchGraphArgs, settings: &Settings) -> Result<ExitCode> {
    use bundleforge::index::{knn_graph, synthetic};
    if args.n < 2 || args.k == 0 || args.runs == 0 {
        bail!("--n must be at least 2, --k and --runs at least 1");
    }
    let threads = settings.index.thread_count();
    let data = synthetic::clustered(args.n, args.dim, 200, args.seed);
    let mut times = Vec::new();
    let mut edges = 0;
    let mut graph = Vec::new();
    for _ in 0..args.runs {
        let started = Instant::now();
        graph = knn_graph(&data, args.k, None, threads);
        times.push(started.elapsed().as_secs_f64());
        edges = graph.iter().map(Vec::len).sum::<usize>();
    }
    let secs = bundleforge::stats::median(&mut times).unwrap_or(0.0);
    let mut report = serde_json::json!({
        "n": args.n, "k": args.k, "dim": args.dim, "threads": threads,
        "kernels": bundleforge::index::metric::kernels().name,
        "seconds": secs, "edges": edges,
    });
    if let Some(ef) = args.approximate {
        use bundleforge::index::{HnswIndex, HnswParams, recall_at_k};
        let started = Instant::now();
        let hnsw = HnswIndex::build(data.clone(), HnswParams::default(), threads);
        let build = started.elapsed().as_secs_f64();
        let found = hnsw.search_batch(&data, args.k + 1, ef.max(args.k + 1), threads);
        let approx: Vec<_> = found
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                row.into_iter()
                    .filter(|n| n.id as usize != i)
                    .take(args.k)
                    .collect::<Vec<_>>()
            })
            .collect();
        let total = started.elapsed().as_secs_f64();
        report["approximate"] = serde_json::json!({
            "ef": ef, "build_seconds": build, "seconds": total,
            "recall": recall_at_k(&graph, &approx, args.k),
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "knn graph n={} k={}: {:.3} s ({} edges), {} threads",
            args.n, args.k, secs, edges, threads
        );
        if let Some(a) = report.get("approximate") {
            println!(
                "  via HNSW (ef {}): {:.3} s (build {:.3} s), recall@{} {:.4}",
                a["ef"],
                a["seconds"].as_f64().unwrap_or(0.0),
                a["build_seconds"].as_f64().unwrap_or(0.0),
                args.k,
                a["recall"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn bench_embed(args: BenchEmbedArgs, settings: &Settings) -> Result<ExitCode> {
    if args.runs == 0 || args.limit == 0 {
        bail!("--runs and --limit must be at least 1");
    }
    let id = store_id(&args.store)?;
    let db = store::open(&settings.database.url).await?;
    let data = db.load(&id).await?;
    let titles: Vec<String> = data
        .products
        .iter()
        .take(args.limit)
        .map(|p| p.display_title())
        .collect();
    if let Some(path) = &args.write_titles {
        let mut text = titles.join("\n");
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let embedder = load_embedder(settings).await?;
    // One untimed pass warms the model's allocations.
    embedder.embed(&titles).await?;
    let mut times = Vec::new();
    for _ in 0..args.runs {
        let started = Instant::now();
        embedder.embed(&titles).await?;
        times.push(started.elapsed().as_secs_f64());
    }
    let secs = bundleforge::stats::median(&mut times).unwrap_or(0.0);
    let report = serde_json::json!({
        "titles": titles.len(), "seconds": secs, "per_second": titles.len() as f64 / secs,
        "batch_size": settings.embed.batch_size, "threads": settings.embed.threads,
        "model": embedder.model_id(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "embedded {} titles in {:.3} s: {:.0} per second (batch {}, threads {})",
            titles.len(),
            secs,
            titles.len() as f64 / secs,
            settings.embed.batch_size,
            settings.embed.threads
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn fixtures(args: FixturesArgs) -> Result<ExitCode> {
    let size: FixtureSize = args
        .size
        .parse()
        .map_err(|e| anyhow::anyhow!("--size: {e}"))?;
    let generated = bundleforge::fixtures::generate(size, args.seed);
    bundleforge::fixtures::write_store(&generated, &args.out)
        .with_context(|| format!("cannot write the store to {}", args.out.display()))?;
    println!(
        "wrote a {size} store (seed {}) to {}: products.csv, orders.csv, planted.json",
        args.seed,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct BenchIngestResult {
    runs: usize,
    rows_read: u64,
    order_lines: u64,
    products: u64,
    seconds_min: f64,
    seconds_median: f64,
    seconds_max: f64,
    read_seconds_median: f64,
    write_seconds_median: f64,
}

async fn bench_ingest(args: BenchIngestArgs, settings: &Settings) -> Result<ExitCode> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let mut total = Vec::new();
    let mut read = Vec::new();
    let mut write = Vec::new();
    let mut last = None;
    for run in 0..args.runs {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
        let db = store::open(&url).await?;
        let files = IngestFiles {
            orders: args.orders.clone(),
            catalog: args.catalog.clone(),
            ..Default::default()
        };
        let id = store_id("bench")?;
        let started = Instant::now();
        let outcome = app::ingest(
            db.as_ref(),
            &id,
            files,
            settings,
            Arc::new(bundleforge::ingest::NoProgress),
        )
        .await?;
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(run, secs, "Bench run finished");
        total.push(secs);
        read.push(outcome.read_seconds);
        write.push(outcome.write_seconds);
        last = Some(outcome);
    }
    let Some(last) = last else { bail!("no runs") };
    let result = BenchIngestResult {
        runs: args.runs,
        rows_read: last.report.rows_read,
        order_lines: last.report.order_lines,
        products: last.report.products,
        seconds_min: total.iter().copied().fold(f64::INFINITY, f64::min),
        seconds_max: total.iter().copied().fold(0.0, f64::max),
        seconds_median: bundleforge::stats::median(&mut total).unwrap_or(0.0),
        read_seconds_median: bundleforge::stats::median(&mut read).unwrap_or(0.0),
        write_seconds_median: bundleforge::stats::median(&mut write).unwrap_or(0.0),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "ingest: {} rows, {} order lines, {} products; median {:.3} s (read {:.3} s, write {:.3} s) over {} runs [min {:.3}, max {:.3}]",
            result.rows_read,
            result.order_lines,
            result.products,
            result.seconds_median,
            result.read_seconds_median,
            result.write_seconds_median,
            result.runs,
            result.seconds_min,
            result.seconds_max
        );
    }
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
    let spinner = ProgressBar::new_spinner().with_message("mining");
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let out = app::rules(source, options, args.out.clone()).await;
    spinner.finish_and_clear();
    let out = out?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rep = &out.report;
    println!(
        "{}: {} baskets, {} items",
        out.source, rep.baskets, rep.items
    );
    if rep.baskets_capped > 0 {
        println!(
            "  {} baskets over {} items left out",
            rep.baskets_capped,
            out.max_basket.unwrap_or(0)
        );
    }
    for a in &rep.attempts {
        println!("  min count {}: {}; raised", a.min_count, a.reason);
    }
    println!("min count {} (minsup {})", rep.min_count, rep.minsup);
    let sizes: Vec<String> = out
        .itemsets_by_size
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    let target = match out.target {
        Target::Frequent => "frequent",
        Target::Closed => "closed",
        Target::Maximal => "maximal",
    };
    println!("{} {target} itemsets ({})", out.itemsets, sizes.join(", "));
    println!(
        "{} rules (confidence >= {})",
        out.rules,
        out.minconf.unwrap_or(0.0)
    );
    println!(
        "{:.3} s (read {:.3} s, mine {:.3} s), peak memory {}",
        out.seconds,
        out.read_seconds,
        out.mine_seconds,
        out.peak_rss_bytes
            .map_or("unknown".to_owned(), |b| format!("{} MiB", b >> 20))
    );
    Ok(ExitCode::SUCCESS)
}

fn bench_rules(args: BenchRulesArgs, settings: &Settings) -> Result<ExitCode> {
    let spec = rules::synthetic::StressSpec {
        baskets: args.baskets,
        items: args.items,
        large: args.large,
        large_len: args.large_len,
        seed: args.seed,
    };
    let started = Instant::now();
    let baskets = rules::synthetic::stress_baskets(&spec);
    let generate_seconds = started.elapsed().as_secs_f64();
    let options = MiningOptions {
        minsup: args.minsup,
        minconf: args.minconf,
        max_len: args.max_len,
        max_basket: None,
        target: Target::Frequent,
        budget_bytes: args.budget_mb.saturating_mul(1 << 20),
        budget_covers_process: true,
        threads: bundleforge::config::thread_count(settings.rules.threads),
    };
    let started = Instant::now();
    let mined = rules::mine(&baskets, &options);
    let mine_seconds = started.elapsed().as_secs_f64();
    let by_size: std::collections::BTreeMap<usize, usize> = mined
        .itemsets_by_size()
        .into_iter()
        .enumerate()
        .filter(|&(_, n)| n > 0)
        .collect();
    let report = serde_json::json!({
        "baskets": baskets.len(),
        "large_baskets": args.large,
        "large_basket_items": args.large_len,
        "occurrences": baskets.occurrences(),
        "min_count_requested": mined.report.min_count_requested,
        "min_count": mined.report.min_count,
        "threshold_raised": mined.report.threshold_raised,
        "attempts": mined.report.attempts,
        "itemsets": mined.frequent.len(),
        "itemsets_by_size": by_size,
        "rules": mined.rules.len(),
        "budget_bytes": mined.report.budget_bytes,
        "budget_peak_bytes": mined.report.budget_peak_bytes,
        "generate_seconds": generate_seconds,
        "mine_seconds": mine_seconds,
        "peak_rss_bytes": bundleforge::memory::peak_resident_bytes(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report:#}");
    }
    Ok(ExitCode::SUCCESS)
}
