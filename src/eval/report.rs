//! The evaluation's report: our scores (whole, by pick, by objective and type, with
//! intervals), the baselines beside them, repeated sets; as JSON, a text table and a
//! section of the run's HTML report.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::baselines::Baselines;
use super::score::{Interval, Scores};
use crate::domain;
use crate::pipeline::{self, RunOutput};

#[derive(Debug, Clone, Serialize)]
pub struct Ours {
    #[serde(flatten)]
    pub scores: Scores,
    pub hit_ci90: Interval,
    pub strong_hit_ci90: Interval,
    pub median_lift_ci90: Interval,
    pub by_objective: BTreeMap<String, Scores>,
    pub by_type: BTreeMap<String, Scores>,
    /// Every bundle as its offer is used (see the module note).
    pub by_pick: Scores,
    pub by_pick_by_objective: BTreeMap<String, Scores>,
    pub by_pick_by_type: BTreeMap<String, Scores>,
    /// Bundles whose product set an earlier bundle already has.
    pub repeated_sets: Repeated,
    /// Share of published bundles with an empty justification (must be 0).
    pub unjustified_share: f64,
}

/// Repeated product sets, in all and where they were.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Repeated {
    pub total: usize,
    pub by_objective: BTreeMap<String, usize>,
    pub by_type: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub store_id: String,
    /// The last day of training: the cutoff, or the day of the last training order.
    pub cutoff: String,
    /// The share of the orders held out, for a split by share (`--holdout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_share: Option<f64>,
    pub train_orders: usize,
    pub heldout_orders: usize,
    pub k: usize,
    pub seed: u64,
    pub ours: Ours,
    pub baselines: Baselines,
}

/// Bundles repeating an earlier bundle's product set: by product (sizes and colours of
/// one are one), except mix & match groups, whose variants are the choice.
pub fn repeated(
    products: &[domain::Product],
    index: &HashMap<&str, u32>,
    bundles: &[domain::Bundle],
) -> Repeated {
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    let mut r = Repeated::default();
    for b in bundles {
        let mut key: Vec<String> = b
            .products
            .iter()
            .map(
                |p| match (b.bundle_type, index.get(p.product_id.as_str())) {
                    (domain::BundleType::MixMatch, _) | (_, None) => p.product_id.clone(),
                    (_, Some(&i)) => products[i as usize].product_id.clone(),
                },
            )
            .collect();
        key.sort();
        key.dedup();
        if !seen.insert(key) {
            r.total += 1;
            *r.by_objective
                .entry(b.objective.as_str().to_owned())
                .or_default() += 1;
            *r.by_type
                .entry(b.bundle_type.as_str().to_owned())
                .or_default() += 1;
        }
    }
    r
}

/// Writes an evaluation's run files (the report with its "Quality on held-out orders"
/// section) and `eval.json` into `dest`, whole (see [`crate::destination`]); returns
/// their paths.
pub fn write_files(
    dest: &std::path::Path,
    force: bool,
    report: &EvalReport,
    out: &RunOutput,
) -> Result<Vec<std::path::PathBuf>, crate::destination::DestinationError> {
    let (staged, mut paths) =
        pipeline::output::stage_all(dest, force, out, Some(&html_section(report)))?;
    paths.push(
        staged.write(
            "eval.json",
            serde_json::to_string_pretty(report)
                .unwrap_or_default()
                .as_bytes(),
        )?,
    );
    staged.place()?.keep();
    Ok(paths)
}

/// The report's rows: ours and the three baselines, in order, with their labels.
pub fn rows(r: &EvalReport) -> Vec<(String, &Scores)> {
    vec![
        ("bundleforge".to_owned(), &r.ours.scores),
        ("random sets".to_owned(), &r.baselines.random),
        (
            "random sets, by pick".to_owned(),
            &r.baselines.random_by_pick,
        ),
        (
            format!("top-{} pairs by count", r.k),
            &r.baselines.top_count_pairs,
        ),
        (
            format!("top-{} pairs by lift (count ≥ 5)", r.k),
            &r.baselines.top_lift_pairs,
        ),
    ]
    .into_iter()
    .chain(
        r.baselines
            .nearest_in_meaning
            .as_ref()
            .map(|s| (format!("top-{} nearest in meaning", r.k), s)),
    )
    .collect()
}

/// The report as a plain-text table.
pub fn table(r: &EvalReport) -> String {
    let split = match r.holdout_share {
        Some(share) => format!(
            "the last {:.0} % of orders held out (training through {})",
            share * 100.0,
            r.cutoff
        ),
        None => format!("cutoff {}", r.cutoff),
    };
    let mut out = format!(
        "{}: {split}, {} training orders, {} held out\n{:<34} {:>7} {:>6} {:>7} {:>12} {:>9}\n",
        r.store_id,
        r.train_orders,
        r.heldout_orders,
        "",
        "bundles",
        "hit",
        "strong",
        "median lift",
        "products"
    );
    for (label, s) in rows(r) {
        out.push_str(&format!(
            "{label:<34} {:>7} {:>6.3} {:>7.3} {:>12.2} {:>9}\n",
            s.bundles, s.hit, s.strong_hit, s.median_lift, s.products
        ));
    }
    let o = &r.ours;
    out.push_str(&format!(
        "bundleforge 90% intervals: hit {:.3}–{:.3}, strong {:.3}–{:.3}, median lift {:.2}–{:.2}\n",
        o.hit_ci90.low,
        o.hit_ci90.high,
        o.strong_hit_ci90.low,
        o.strong_hit_ci90.high,
        o.median_lift_ci90.low,
        o.median_lift_ci90.high
    ));
    let p = &o.by_pick;
    out.push_str(&format!(
        "bundleforge by pick: {} bundles, hit {:.3}, strong {:.3}, median lift {:.2}, {} products; \
         {} repeated product sets, {:.3} unjustified\n",
        p.bundles,
        p.hit,
        p.strong_hit,
        p.median_lift,
        p.products,
        o.repeated_sets.total,
        o.unjustified_share
    ));
    for (label, by) in [
        ("objective", &o.by_objective),
        ("type", &o.by_type),
        ("pick, objective", &o.by_pick_by_objective),
        ("pick, type", &o.by_pick_by_type),
    ] {
        for (k, s) in by {
            out.push_str(&format!(
                "  by {label} {k:<20} {:>5} bundles, hit {:.3}, strong {:.3}, median lift {:.2}, {} products\n",
                s.bundles, s.hit, s.strong_hit, s.median_lift, s.products
            ));
        }
    }
    out
}

/// The report as an HTML section for the run's report page.
pub fn html_section(r: &EvalReport) -> String {
    let esc = crate::pipeline::output::esc;
    let mut html = format!(
        "<h2>Quality on held-out orders</h2><p>Cutoff {}: {} training orders, {} held-out orders. \
         A set hits when its products are bought together in a held-out order; it strongly \
         hits in two or more with held-out lift ≥ 2.</p><table><tr><th></th><th>sets</th>\
         <th>hit</th><th>strong hit</th><th>median lift</th><th>products</th></tr>",
        esc(&r.cutoff),
        r.train_orders,
        r.heldout_orders
    );
    for (label, s) in rows(r) {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.2}</td><td>{}</td></tr>",
            esc(&label),
            s.bundles,
            s.hit,
            s.strong_hit,
            s.median_lift,
            s.products
        ));
    }
    let p = &r.ours.by_pick;
    html.push_str(&format!(
        "<tr><td>bundleforge, by pick</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.2}</td><td>{}</td></tr>",
        p.bundles, p.hit, p.strong_hit, p.median_lift, p.products
    ));
    html.push_str("</table>");
    html.push_str(&format!(
        "<p>By pick: a mix &amp; match group counts when an order holds at least its pick. \
         Repeated product sets: {}; bundles without a justification: {:.1}%.</p>",
        r.ours.repeated_sets.total,
        r.ours.unjustified_share * 100.0
    ));
    html
}
