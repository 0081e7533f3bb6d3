//! Plain-text summaries of results, as the CLI prints them without `--json`. They live
//! in the library so every front end words a result the same way, and so the binary
//! only parses and prints.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::app::{ClassifyOutcome, IngestOutcome, RulesOutcome, SimilarOutcome};
use crate::domain::{Money, TextSource};
use crate::pipeline::RunOutput;
use crate::rules::Target;
use crate::stats::StoreStats;

// `write!` into a `String` cannot fail; the results are ignored for that reason.

impl IngestOutcome {
    /// The counts: rows read, kept, rejected and dropped; what was stored.
    pub fn text(&self) -> String {
        let r = &self.report;
        let mut s = String::new();
        let _ = writeln!(s, "store {} ({})", self.store_id, self.currency);
        let _ = writeln!(
            s,
            "rows: {} read, {} kept, {} rejected, {} dropped by filters",
            r.rows_read,
            r.rows_kept,
            r.rejected_total(),
            r.dropped_total()
        );
        for (reason, n) in &r.dropped {
            let _ = writeln!(s, "  dropped {reason}: {n}");
        }
        for (reason, n) in &r.rejected {
            let _ = writeln!(s, "  rejected {reason}: {n}");
        }
        let _ = writeln!(
            s,
            "{}: {} products, {} orders, {} order lines ({} merged), {} baskets",
            if self.checked {
                "checked, nothing stored; an ingest would store"
            } else {
                "stored"
            },
            r.products,
            r.orders,
            r.order_lines,
            r.lines_merged,
            r.baskets
        );
        if r.incomplete_orders > 0 {
            let _ = writeln!(
                s,
                "  {} orders have a rejected line: {} of them were stored already and are kept as they were (not replaced); the others are stored with their valid lines",
                r.incomplete_orders, self.stored_orders_kept
            );
        }
        if r.lines_without_catalog_product > 0 {
            let _ = writeln!(
                s,
                "  {} order lines name products the catalog does not have (kept)",
                r.lines_without_catalog_product
            );
        }
        if r.lines_with_ambiguous_title > 0 {
            let _ = writeln!(
                s,
                "  {} of them name only a title several catalog products share: kept unjoined (give a SKU or variant id)",
                r.lines_with_ambiguous_title
            );
        }
        for f in &self.rejected_files {
            let _ = writeln!(
                s,
                "rejected rows of {} written to {}: {} rejected, {} sent along with their order",
                f.source,
                f.path,
                f.rejected,
                f.rows - f.rejected
            );
        }
        s
    }

    /// The first `limit` row errors, one per line, and how many more there are.
    pub fn errors_text(&self, limit: usize) -> String {
        let r = &self.report;
        let mut s = String::new();
        for e in r.errors.iter().take(limit) {
            let _ = writeln!(s, "{e}");
        }
        if r.error_count > limit as u64 {
            let _ = writeln!(
                s,
                "… and {} more (the JSON report lists them)",
                r.error_count - limit as u64
            );
        }
        s
    }
}

impl StoreStats {
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "store {} ({}), as of {}{}",
            self.store_id,
            self.currency,
            self.as_of,
            self.as_of_source.note()
        );
        let _ = writeln!(
            s,
            "{} orders, {} order lines, {} products; {} baskets ({} with 2+ items, {:.1} items on average)",
            self.orders,
            self.order_lines,
            self.products,
            self.baskets,
            self.multi_item_baskets,
            self.avg_basket_size
        );
        let w = &self.weights;
        let _ = writeln!(
            s,
            "{} orders in the last {} days: {:?} tier, weights α={} β={} γ={}",
            self.orders_60d, self.window_days, self.tier, w.alpha, w.beta, w.gamma
        );
        let _ = writeln!(s, "top sellers:");
        for t in &self.top_sellers {
            let _ = writeln!(s, "  {:>6} units  {}  {}", t.units, t.product_id, t.title);
        }
        let _ = writeln!(s, "slow movers: {}", self.slow_movers.count);
        for p in &self.slow_movers.products {
            let _ = writeln!(
                s,
                "  {}  {}  ({} units in window)",
                p.product_id, p.title, p.units_in_window
            );
        }
        let _ = writeln!(s, "new launches: {}", self.new_launches.count);
        for p in &self.new_launches.products {
            let _ = writeln!(
                s,
                "  {}  {}  (launched {})",
                p.product_id, p.title, p.launched
            );
        }
        let c = &self.stock_cover;
        let _ = writeln!(
            s,
            "stock: {} tracked ({} out, {} low, {} overstock), {} untracked",
            c.tracked, c.out_of_stock, c.low, c.overstock, c.untracked
        );
        if !self.assumed.is_empty() {
            let _ = writeln!(s, "assumed:");
            for a in &self.assumed {
                let _ = writeln!(
                    s,
                    "  {} for {} {}: {}",
                    a.field, a.count, a.applies_to, a.rule
                );
            }
        }
        s
    }
}

impl SimilarOutcome {
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}  {}", self.product.product_id, self.product.title);
        for n in &self.neighbours {
            let _ = writeln!(s, "  {:.3}  {}  {}", n.score, n.product_id, n.title);
        }
        s
    }
}

impl ClassifyOutcome {
    pub fn text(&self) -> String {
        let mut s = String::new();
        for p in &self.products {
            let tags: Vec<&str> = p.tags.iter().map(|t| t.as_str()).collect();
            let _ = writeln!(
                s,
                "{}  {}  [{}] ({})",
                p.product_id,
                p.title,
                tags.join(", "),
                source_name(p.source)
            );
        }
        let _ = writeln!(
            s,
            "{} products: {} classified, {} from cache, {} by the offline fallback; {} unknown ids dropped; {} calls ({} refused, {} failed; {} requests sent), {} tokens (≈ ${:.4}) via {}",
            self.products.len(),
            self.classified,
            self.from_cache,
            self.fallback,
            self.dropped_ids,
            self.calls,
            self.llm.refused,
            self.llm.failures,
            self.llm.sent,
            self.tokens.total,
            self.llm.estimated_cost_usd,
            self.llm.model
        );
        s
    }
}

fn source_name(source: TextSource) -> &'static str {
    match source {
        TextSource::Llm => "llm",
        TextSource::Offline => "offline",
    }
}

impl RulesOutcome {
    pub fn text(&self) -> String {
        let rep = &self.report;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} baskets, {} items",
            self.source, rep.baskets, rep.items
        );
        if rep.baskets_capped > 0 {
            let _ = writeln!(
                s,
                "  {} baskets over {} items left out",
                rep.baskets_capped,
                self.max_basket.unwrap_or(0)
            );
        }
        for a in &rep.attempts {
            let _ = writeln!(s, "  min count {}: {}; raised", a.min_count, a.reason);
        }
        let _ = writeln!(s, "min count {} (minsup {})", rep.min_count, rep.minsup);
        let sizes: Vec<String> = self
            .itemsets_by_size
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        let target = match self.target {
            Target::Frequent => "frequent",
            Target::Closed => "closed",
            Target::Maximal => "maximal",
        };
        let _ = writeln!(
            s,
            "{} {target} itemsets ({})",
            self.itemsets,
            sizes.join(", ")
        );
        let _ = writeln!(
            s,
            "{} rules (confidence >= {})",
            self.rules,
            self.minconf.unwrap_or(0.0)
        );
        let _ = writeln!(
            s,
            "{:.3} s (read {:.3} s, mine {:.3} s), peak memory {}",
            self.seconds,
            self.read_seconds,
            self.mine_seconds,
            self.peak_rss_bytes
                .map_or("unknown".to_owned(), |b| format!("{} MiB", b >> 20))
        );
        s
    }
}

impl RunOutput {
    /// The run in a few lines: window and weights, candidates and empty cells, what
    /// was published, the first five bundles.
    pub fn text(&self) -> String {
        let r = &self.run;
        let mut s = String::new();
        let w = &r.weights;
        let _ = writeln!(
            s,
            "{}: as of {}{}, {} orders in the window ({:?} tier), weights α={} β={} γ={}",
            r.store_id,
            r.as_of,
            r.as_of_source.note(),
            r.orders_in_window,
            r.tier,
            w.alpha,
            w.beta,
            w.gamma
        );
        let e = &r.evidence;
        let _ = writeln!(s, "evidence: {}", e.summary());
        let t = &r.timings;
        let _ = writeln!(
            s,
            "{} candidates in {} of {} cells; {:.2} s (load {:.2}, context {:.2}, candidates {:.2})",
            r.candidates,
            r.cells.iter().filter(|c| c.candidates > 0).count(),
            r.cells.len(),
            t.total_seconds,
            t.load_seconds,
            t.context_seconds,
            t.candidates_seconds
        );
        for c in r.cells.iter().filter(|c| c.candidates == 0) {
            let why = c.why.as_deref().unwrap_or("");
            let _ = writeln!(s, "  empty: {} × {}: {why}", c.objective, c.bundle_type);
        }
        let q = &r.quality;
        let reasons: Vec<String> = q
            .left_out
            .iter()
            .map(|(why, n)| format!("{n} {}", why.as_str()))
            .collect();
        let _ = writeln!(
            s,
            "quality: {} of {} candidates justified; left out {}",
            q.justified,
            q.considered,
            if reasons.is_empty() {
                "none".to_owned()
            } else {
                reasons.join(", ")
            }
        );
        let by = |source: TextSource| {
            self.bundles
                .iter()
                .filter(|b| b.copy.source == source)
                .count()
        };
        let o = &r.optimize;
        let _ = writeln!(
            s,
            "{} bundles published ({} duplicates merged, rejected {:?}, {} on the Pareto front); copy: {} by the model, {} from templates; {} LLM calls ({} refused, {} failed; {} requests sent), {} tokens (≈ ${:.4})",
            r.bundles,
            o.duplicates_merged,
            o.rejected,
            o.pareto_front,
            by(TextSource::Llm),
            by(TextSource::Offline),
            r.llm.calls,
            r.llm.refused,
            r.llm.failures,
            r.llm.sent,
            r.llm.prompt_tokens + r.llm.completion_tokens,
            r.llm.estimated_cost_usd
        );
        for b in self.bundles.iter().take(5) {
            let _ = writeln!(
                s,
                "  {:<18} {:<9} {}  {} → {} ({:.0}% off)",
                b.objective.as_str(),
                b.bundle_type.as_str(),
                b.copy.title,
                Money::new(b.list_price_minor, b.currency),
                Money::new(b.final_price_minor, b.currency),
                b.discount_pct
            );
        }
        s
    }
}

/// "heading" and the paths under it, one per line.
pub fn paths(heading: &str, paths: &[PathBuf]) -> String {
    let mut s = format!("{heading}\n");
    for p in paths {
        let _ = writeln!(s, "  {}", p.display());
    }
    s
}
