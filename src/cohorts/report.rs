//! The comparison for people: a text table (per scenario, each variant against the
//! control, then the baselines and the verdict) and `cohorts.html`, a self-contained
//! page (no script, no external asset) with the same table, intervals included, and two
//! plots: strong hit per variant and scenario with its interval, and each variant's
//! paired difference from the control with a line at zero. Names from a cohorts file
//! are escaped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::assign::Assignment;
use super::{CohortsReport, ScenarioBaselines, VariantReport, VariantScenario};
use crate::destination::{DestinationError, StagedDir};
use crate::domain::Money;
use crate::pipeline::output::esc;

fn bounds(b: [f64; 2]) -> String {
    format!("{:.3}–{:.3}", b[0], b[1])
}

/// The scenario names, in their order.
fn scenario_names(r: &CohortsReport) -> Vec<&str> {
    r.variants
        .first()
        .map(|v| v.scenarios.iter().map(|s| s.name.as_str()).collect())
        .unwrap_or_default()
}

/// The comparison table a person reads.
pub fn table(r: &CohortsReport) -> String {
    let mut out = format!(
        "cohorts: store {}, cutoff {}, {} held-out orders, {} resamples, seed {}\n",
        r.store_id, r.cutoff, r.heldout_orders, r.resamples, r.seed
    );
    for (i, name) in scenario_names(r).iter().enumerate() {
        let orders = r.variants[0].scenarios[i].orders;
        let _ = writeln!(out, "\n{name} ({orders} training orders)");
        let _ = writeln!(
            out,
            "  {:<10} {:>7} {:>6} {:>13} {:>6} {:>13} {:>8} {:>7} {:>7} {:>8} {:>21}",
            "variant",
            "bundles",
            "hit",
            "(90 %)",
            "strong",
            "(90 %)",
            "lift",
            "R@10",
            "novel",
            "by_pick",
            "strong vs control"
        );
        for v in &r.variants {
            let s = &v.scenarios[i];
            let vs = if v.control {
                "—".to_owned()
            } else {
                let d = &s.vs_control.strong_hit;
                format!(
                    "{:+.3} [{:+.3},{:+.3}]",
                    d.difference, d.interval[0], d.interval[1]
                )
            };
            let _ = writeln!(
                out,
                "  {:<10} {:>7} {:>6.3} {:>13} {:>6.3} {:>13} {:>8.2} {:>7.3} {:>7.3} {:>8.3} {:>21}",
                v.name,
                s.bundles,
                s.hit,
                bounds(s.intervals.hit),
                s.strong_hit,
                bounds(s.intervals.strong_hit),
                s.median_lift,
                s.recall_at.get("10").copied().unwrap_or(0.0),
                s.novelty,
                s.by_pick.strong_hit,
                vs
            );
        }
        if let Some(b) = r.baselines.get(*name) {
            for (label, sc) in [
                ("random", &b.random),
                ("top count", &b.top_count_pairs),
                ("top lift", &b.top_lift_pairs),
            ] {
                let _ = writeln!(
                    out,
                    "  {:<10} {:>7} {:>6.3} {:>13} {:>6.3} {:>13} {:>8.2}",
                    label, sc.bundles, sc.hit, "", sc.strong_hit, "", sc.median_lift
                );
            }
        }
    }
    out.push('\n');
    for v in &r.verdict {
        out.push_str(&v.text);
        out.push('\n');
    }
    out
}

/// A split as text: the units, each arm's count and share against its expected
/// share, and the sample-ratio check. `of` says whose units they are.
pub fn assignment_text(split: &Assignment, of: &str) -> String {
    let mut t = format!(
        "{} {}s {of} under salt {:?}\n",
        split.total, split.unit, split.salt
    );
    if split.orders_without_customer > 0 {
        let _ = writeln!(
            t,
            "  ({} orders name no customer: not assigned)",
            split.orders_without_customer
        );
    }
    for arm in &split.arms {
        let _ = writeln!(
            t,
            "  {:<10} {:>8} {:>7.2} % (expected {:.2} %)",
            arm.name,
            arm.count,
            arm.share * 100.0,
            arm.expected_share * 100.0
        );
    }
    let _ = writeln!(
        t,
        "sample ratio: chi-square {:.2} ({} df), p = {:.4}: {}",
        split.srm.chi_square,
        split.srm.degrees_of_freedom,
        split.srm.p_value,
        if !split.srm.checkable {
            "too few units for the check (every arm should expect 5 or more)"
        } else if split.srm.mismatch {
            "MISMATCH (the split is not what its shares say)"
        } else {
            "balanced"
        }
    );
    t
}

/// One row of a forest plot: a point and, where known, its interval.
struct Point {
    group: String,
    label: String,
    value: f64,
    interval: Option<[f64; 2]>,
    /// A baseline (grey, no interval) rather than a variant.
    baseline: bool,
}

/// A forest plot: a row per point, grouped, over `[lo, hi]` on x; `zero` draws a line
/// at 0 (for differences).
fn forest(title: &str, points: &[Point], lo: f64, hi: f64, zero: bool) -> String {
    let (w, label_w, pad, row_h) = (720.0, 190.0, 16.0, 18.0);
    let mut groups: Vec<&str> = Vec::new();
    for p in points {
        if groups.last() != Some(&p.group.as_str()) {
            groups.push(&p.group);
        }
    }
    let h = 40.0 + (points.len() + groups.len()) as f64 * row_h + 24.0;
    let span = (hi - lo).max(1e-9);
    let x = |v: f64| label_w + (v.clamp(lo, hi) - lo) / span * (w - label_w - pad);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h:.0}\" role=\"img\" aria-label=\"{t}\">\
         <rect width=\"{w}\" height=\"{h:.0}\" fill=\"#fafafa\" stroke=\"#ddd\"/>\
         <text x=\"8\" y=\"18\" font-size=\"13\" font-weight=\"600\">{t}</text>",
        t = esc(title)
    );
    // Axis ticks at a round step.
    let axis_y = h - 20.0;
    let step = tick_step(span);
    let mut v = (lo / step).ceil() * step;
    while v <= hi + step * 1e-6 {
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"30\" x2=\"{x:.1}\" y2=\"{axis_y:.1}\" stroke=\"#eee\"/>\
             <text x=\"{x:.1}\" y=\"{ty:.1}\" font-size=\"10\" text-anchor=\"middle\">{label}</text>",
            x = x(v),
            ty = axis_y + 14.0,
            label = format_tick(v, step)
        );
        v += step;
    }
    if zero && lo < 0.0 && hi > 0.0 {
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"30\" x2=\"{x:.1}\" y2=\"{axis_y:.1}\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>",
            x = x(0.0)
        );
    }
    let mut y = 40.0;
    let mut group = "";
    for p in points {
        if p.group != group {
            group = &p.group;
            let _ = write!(
                svg,
                "<text x=\"8\" y=\"{:.1}\" font-size=\"11\" font-weight=\"600\">{}</text>",
                y + 4.0,
                esc(group)
            );
            y += row_h;
        }
        let colour = if p.baseline { "#888" } else { "#1f6feb" };
        let _ = write!(
            svg,
            "<g data-scenario=\"{}\" data-label=\"{}\"><text x=\"20\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            esc(&p.group),
            esc(&p.label),
            y + 4.0,
            esc(&p.label)
        );
        if let Some([a, b]) = p.interval {
            let _ = write!(
                svg,
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/>",
                x(a),
                x(b)
            );
        }
        let shape = if p.baseline {
            format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"7\" height=\"7\" fill=\"{colour}\">",
                x(p.value) - 3.5,
                y - 3.5
            )
        } else {
            format!(
                "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{colour}\">",
                x(p.value)
            )
        };
        let tip = match p.interval {
            Some([a, b]) => format!("{}: {:.3} ({a:.3} to {b:.3})", p.label, p.value),
            None => format!("{}: {:.3}", p.label, p.value),
        };
        let close = if p.baseline { "</rect>" } else { "</circle>" };
        let _ = write!(svg, "{shape}<title>{}</title>{close}</g>", esc(&tip));
        y += row_h;
    }
    svg.push_str("</svg>");
    svg
}

/// A round step (1, 2, 2.5 or 5 times a power of ten) giving four to ten ticks over
/// `span`.
fn tick_step(span: f64) -> f64 {
    let raw = span / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| span / s <= 10.0)
        .unwrap_or(10.0 * power)
}

fn format_tick(v: f64, step: f64) -> String {
    let decimals =
        (-step.log10().floor()).max(0.0) as usize + usize::from(step.to_string().contains("25"));
    let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

fn cell(value: f64, interval: [f64; 2]) -> String {
    format!(
        "{value:.3} <span class=\"ci\">{:.3}–{:.3}</span>",
        interval[0], interval[1]
    )
}

fn difference_cell(d: &super::Difference) -> String {
    let class = if d.interval[0] > 0.0 {
        "up"
    } else if d.interval[1] < 0.0 {
        "down"
    } else {
        "flat"
    };
    format!(
        "<span class=\"{class}\">{:+.3}</span> <span class=\"ci\">{:+.3} to {:+.3}</span>",
        d.difference, d.interval[0], d.interval[1]
    )
}

fn margin(s: &VariantScenario) -> String {
    let m = &s.hit_margin;
    if m.bundles == 0 {
        return "—".into();
    }
    let assumed = if m.cost_assumed_share > 0.0 {
        format!(
            " <span class=\"ci\">{:.0} % cost assumed</span>",
            m.cost_assumed_share * 100.0
        )
    } else {
        String::new()
    };
    format!(
        "{} <span class=\"ci\">each, {} in all</span>{assumed}",
        Money::new(m.mean_minor, m.currency),
        Money::new(m.total_minor, m.currency)
    )
}

/// The self-contained HTML page of a comparison.
pub fn html(r: &CohortsReport) -> String {
    let mut html = String::new();
    write_head(&mut html, r);
    write_intro(&mut html, r);
    write_verdict(&mut html, r);
    write_variants(&mut html, r);
    let names = scenario_names(r);
    write_plots(&mut html, r, &names);
    for (i, name) in names.iter().enumerate() {
        write_scenario_table(&mut html, r, i, name);
    }
    write_legend(&mut html);
    html.push_str("</body></html>");
    html
}

/// The page's head: its title and the one style sheet (the page loads nothing).
fn write_head(html: &mut String, r: &CohortsReport) {
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>bundleforge cohorts: {store}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}}\
         table{{border-collapse:collapse;margin:8px 0 20px}}td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}}\
         td.n{{text-align:right;white-space:nowrap}}td:first-child{{white-space:nowrap}}tr.control td{{background:#f3f7ff}}tr.baseline td{{color:#666}}\
         .ci{{color:#777;font-size:12px}}.up{{color:#0a7a2f;font-weight:600}}.down{{color:#b42318;font-weight:600}}.flat{{color:#444}}\
         .verdict li{{margin:4px 0}}</style></head><body>",
        store = esc(&r.store_id)
    );
}

/// The heading and what the comparison was: cutoff, held-out orders, resamples, seed.
fn write_intro(html: &mut String, r: &CohortsReport) {
    let _ = write!(
        html,
        "<h1>Offline A/B cohorts for {}</h1>\
         <p>Trained on orders up to {} and scored on the {} orders after it. Intervals are 90 %, \
         from {} bootstrap resamples of the held-out orders (seed {}); a variant's difference from \
         the control is paired: both are scored on the same resamples. Top-K pairs: K = {}.</p>",
        esc(&r.store_id),
        esc(&r.cutoff),
        r.heldout_orders,
        r.resamples,
        r.seed,
        r.k
    );
}

/// The verdict first, one line per scenario: what a reader came for.
fn write_verdict(html: &mut String, r: &CohortsReport) {
    html.push_str("<h2>Verdict</h2><ul class=\"verdict\">");
    for v in &r.verdict {
        let _ = write!(
            html,
            "<li data-scenario=\"{}\">{}</li>",
            esc(&v.scenario),
            esc(&v.text)
        );
    }
    html.push_str("</ul>");
}

/// What each variant is: its weights, candidate sources, objectives and bundle types.
fn write_variants(html: &mut String, r: &CohortsReport) {
    html.push_str(
        "<h2>Variants</h2><table><tr><th>variant</th><th>what it is</th><th>weights α β γ</th>\
         <th>candidate sources</th><th>objectives</th><th>bundle types</th></tr>",
    );
    for v in &r.variants {
        let weights = match v.weights.as_array() {
            Some(w) => w
                .iter()
                .map(|x| format!("{:.2}", x.as_f64().unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join(" "),
            None => "the tier's".to_owned(),
        };
        let sources: Vec<&str> = [
            (v.sources.co_purchase, "co-purchase"),
            (v.sources.meaning, "meaning"),
            (v.sources.model, "model"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        let list = |items: Vec<&str>| {
            if items.is_empty() {
                "all".to_owned()
            } else {
                items.join(", ")
            }
        };
        let _ = write!(
            html,
            "<tr data-variant=\"{}\"{}><td><b>{}</b>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&v.name),
            if v.control { " class=\"control\"" } else { "" },
            esc(&v.name),
            if v.control { " (control)" } else { "" },
            esc(&v.description),
            weights,
            sources.join(", "),
            list(v.objectives.iter().map(|o| o.as_str()).collect()),
            list(v.bundle_types.iter().map(|t| t.as_str()).collect()),
        );
    }
    html.push_str("</table>");
}

/// The two forest plots: strong hit with its interval, then the paired difference
/// from the control on an axis symmetric about zero.
fn write_plots(html: &mut String, r: &CohortsReport, names: &[&str]) {
    let (strong, diffs) = plot_points(r, names);
    html.push_str("<h2>Strong hit per variant and scenario</h2>");
    html.push_str(&forest(
        "strong hit, 90 % interval (squares: baselines)",
        &strong,
        0.0,
        1.0,
        false,
    ));
    let reach = diffs
        .iter()
        .flat_map(|p| {
            let [a, b] = p.interval.unwrap_or([p.value, p.value]);
            [a.abs(), b.abs(), p.value.abs()]
        })
        .fold(0.05_f64, f64::max);
    let step = tick_step(2.0 * reach);
    let reach = (reach / step).ceil() * step;
    html.push_str("<h2>Difference from the control</h2>");
    html.push_str(&forest(
        "strong hit minus the control's, paired 90 % interval",
        &diffs,
        -reach,
        reach,
        true,
    ));
}

/// The plots' points, scenario by scenario: every variant's strong hit (then the
/// baselines'), and every non-control variant's difference from the control.
fn plot_points(r: &CohortsReport, names: &[&str]) -> (Vec<Point>, Vec<Point>) {
    let mut strong = Vec::new();
    let mut diffs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for v in &r.variants {
            let s = &v.scenarios[i];
            strong.push(Point {
                group: (*name).to_owned(),
                label: v.name.clone(),
                value: s.strong_hit,
                interval: Some(s.intervals.strong_hit),
                baseline: false,
            });
            if !v.control {
                let d = &s.vs_control.strong_hit;
                diffs.push(Point {
                    group: (*name).to_owned(),
                    label: v.name.clone(),
                    value: d.difference,
                    interval: Some(d.interval),
                    baseline: false,
                });
            }
        }
        if let Some(b) = r.baselines.get(*name) {
            for (label, sc) in [
                ("random sets", &b.random),
                (&*format!("top-{} pairs by count", r.k), &b.top_count_pairs),
                (&*format!("top-{} pairs by lift", r.k), &b.top_lift_pairs),
            ] {
                strong.push(Point {
                    group: (*name).to_owned(),
                    label: label.to_owned(),
                    value: sc.strong_hit,
                    interval: None,
                    baseline: true,
                });
            }
        }
    }
    (strong, diffs)
}

/// One scenario's table: a row per variant, then the baselines.
fn write_scenario_table(html: &mut String, r: &CohortsReport, i: usize, name: &str) {
    let orders = r.variants.first().map_or(0, |v| v.scenarios[i].orders);
    let _ = write!(
        html,
        "<h2>Scenario {} <span class=\"ci\">{} training orders</span></h2>\
         <table data-scenario=\"{}\"><tr><th>variant</th><th>weights α β γ</th><th>bundles</th><th>hit</th>\
         <th>strong hit</th><th>median lift</th><th>by pick: strong hit</th><th>recall@5 / 10 / 50</th>\
         <th>novelty</th><th>margin of hits</th><th>vs control: hit</th><th>vs control: strong hit</th>\
         <th>vs control: median lift</th></tr>",
        esc(name),
        orders,
        esc(name)
    );
    for v in &r.variants {
        write_scenario_row(html, v, i);
    }
    if let Some(b) = r.baselines.get(name) {
        write_baseline_rows(html, r, b);
    }
    html.push_str("</table>");
}

/// One variant's row of scenario `i`: its scores with their intervals, and its
/// paired differences from the control ("control" on the control's own row).
fn write_scenario_row(html: &mut String, v: &VariantReport, i: usize) {
    let s = &v.scenarios[i];
    let recall = |k: &str| s.recall_at.get(k).copied().unwrap_or(0.0);
    let vs = |d: &super::Difference| {
        if v.control {
            "control".to_owned()
        } else {
            difference_cell(d)
        }
    };
    let _ = write!(
        html,
        "<tr data-variant=\"{}\"{}><td><b>{}</b></td>\
         <td class=\"n\">{:.2} {:.2} {:.2}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.3}</td>\
         <td class=\"n\">{:.3} / {:.3} / {:.3}</td><td class=\"n\">{:.3} <span class=\"ci\">{} hits</span></td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        esc(&v.name),
        if v.control { " class=\"control\"" } else { "" },
        esc(&v.name),
        s.weights[0],
        s.weights[1],
        s.weights[2],
        s.bundles,
        cell(s.hit, s.intervals.hit),
        cell(s.strong_hit, s.intervals.strong_hit),
        format_args!(
            "{:.2} <span class=\"ci\">{:.2}–{:.2}</span>",
            s.median_lift, s.intervals.median_lift[0], s.intervals.median_lift[1]
        ),
        s.by_pick.strong_hit,
        recall("5"),
        recall("10"),
        recall("50"),
        s.novelty,
        s.novel_hits,
        margin(s),
        vs(&s.vs_control.hit),
        vs(&s.vs_control.strong_hit),
        vs(&s.vs_control.median_lift),
    );
}

/// The baselines' rows of a scenario table (greyed; no intervals, no comparison).
fn write_baseline_rows(html: &mut String, r: &CohortsReport, b: &ScenarioBaselines) {
    for (label, sc) in [
        ("random sets", &b.random),
        ("random sets, by pick", &b.random_by_pick),
        (&*format!("top-{} pairs by count", r.k), &b.top_count_pairs),
        (&*format!("top-{} pairs by lift", r.k), &b.top_lift_pairs),
    ] {
        let _ = write!(
            html,
            "<tr class=\"baseline\"><td>{}</td><td></td><td class=\"n\">{}</td><td class=\"n\">{:.3}</td>\
         <td class=\"n\">{:.3}</td><td class=\"n\">{:.2}</td><td colspan=\"7\"></td></tr>",
            esc(label),
            sc.bundles,
            sc.hit,
            sc.strong_hit,
            sc.median_lift
        );
    }
}

/// What the columns mean, for a reader who has not read `eval`.
fn write_legend(html: &mut String) {
    html.push_str(
        "<h2>What the columns mean</h2><p>A bundle <b>hits</b> when all its products appear together in a \
         held-out order; it <b>strongly hits</b> when they do in at least two and its held-out lift is at \
         least 2. <b>By pick</b> scores a mix &amp; match group as shoppers use it (at least <i>pick</i> of \
         the group in one order). <b>Recall@K</b>: for the scenario's 100 best-selling products, the share \
         of the partners bought with each in at least two held-out orders that the variant's bundles offer \
         among their first K partners. <b>Novelty</b>: the share of hits with a pair outside the top-K count \
         pairs, which any \"frequently bought together\" widget would show anyway. <b>Margin of hits</b>: \
         the expected margin of the bundles that hit, at their published price.</p>",
    );
}

/// Writes `cohorts.json` and `cohorts.html` into a folder staged for `dest` and places
/// it; returns the files' paths.
pub fn write_files(
    dest: &Path,
    force: bool,
    report: &CohortsReport,
) -> Result<Vec<PathBuf>, DestinationError> {
    let staged = StagedDir::new(dest, force)?;
    let json = serde_json::to_string_pretty(report).unwrap_or_default();
    let paths = vec![
        staged.write("cohorts.json", json.as_bytes())?,
        staged.write("cohorts.html", html(report).as_bytes())?,
    ];
    staged.place()?.keep();
    Ok(paths)
}
