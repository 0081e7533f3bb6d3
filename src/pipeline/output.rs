//! The files of a run: `bundles.json` (the document `generate --json` prints),
//! `bundles.csv`, `shopify.json` (fixed bundles as input for Shopify's bundle API;
//! volume, BOGO, add-on and mix & match as discount definitions) and `report.html`, a
//! self-contained page (no script, no external asset) with the bundles and their score
//! breakdowns, a Pareto scatter plot, counts per objective and type, phase timings and
//! the model's token use and cost. Every text from the merchant or a model is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::summary::{RunOutput, RunSummary};
use crate::destination::{DestinationError, StagedDir};
use crate::domain::{Bundle, BundleType, Justification, Money};

/// A run folder's default place: `runs/LABEL-RUN_ID` under the working directory (with
/// `-N` when that name is taken). Not created: the files are staged beside it.
pub fn default_run_dir(label: &str, run_id: &str) -> PathBuf {
    let parent = Path::new("runs");
    (0..1000)
        .map(|n| {
            if n == 0 {
                parent.join(format!("{label}-{run_id}"))
            } else {
                parent.join(format!("{label}-{run_id}-{n}"))
            }
        })
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .unwrap_or_else(|| parent.join(format!("{label}-{run_id}-{}", std::process::id())))
}

/// Where a run's files go: `dir` when the caller names one, else [`default_run_dir`].
pub fn run_dir(dir: Option<PathBuf>, label: &str, run_id: &str) -> PathBuf {
    dir.unwrap_or_else(|| default_run_dir(label, run_id))
}

/// The four files, named.
fn files(out: &RunOutput, extra_html: Option<&str>) -> [(&'static str, String); 4] {
    [
        (
            "bundles.json",
            serde_json::to_string_pretty(out).unwrap_or_default(),
        ),
        ("bundles.csv", csv(&out.bundles)),
        (
            "shopify.json",
            serde_json::to_string_pretty(&shopify(&out.bundles)).unwrap_or_default(),
        ),
        ("report.html", {
            let mut html = report(out);
            if let Some(extra) = extra_html {
                html = html.replacen("</body>", &format!("{extra}</body>"), 1);
            }
            html
        }),
    ]
}

/// Writes the four files into a folder staged for `dest` ([`StagedDir`]: placed by the
/// caller once everything else has worked) and returns it with the files' final paths.
pub fn stage_all(
    dest: &Path,
    force: bool,
    out: &RunOutput,
    extra_html: Option<&str>,
) -> Result<(StagedDir, Vec<PathBuf>), DestinationError> {
    let staged = StagedDir::new(dest, force)?;
    let mut paths = Vec::new();
    for (name, text) in files(out, extra_html) {
        paths.push(staged.write(name, text.as_bytes())?);
    }
    Ok((staged, paths))
}

/// Writes the four files into `dir` (replacing what is there) and returns their paths.
pub fn write_all(dir: &Path, out: &RunOutput) -> Result<Vec<PathBuf>, DestinationError> {
    let (staged, paths) = stage_all(dir, true, out, None)?;
    staged.place()?.keep();
    Ok(paths)
}

fn money(minor: i64, b: &Bundle) -> String {
    Money::new(minor, b.currency).to_string()
}

/// A text cell a spreadsheet will not run: one starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return (what spreadsheets read as a formula) gets a leading `'`, as
/// OWASP's CSV-injection advice has it. Numbers the engine writes are left as they are.
pub fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// One row per bundle; text cells neutralised ([`cell`]).
pub fn csv(bundles: &[Bundle]) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "id",
        "objective",
        "bundle_type",
        "product_ids",
        "titles",
        "quantities",
        "currency",
        "list_price_minor",
        "final_price_minor",
        "discount_pct",
        "expected_margin_minor",
        "cost_assumed",
        "pareto_rank",
        "score",
        "copy_title",
        "badge",
        "copy_source",
    ]);
    for b in bundles {
        let join = |f: &dyn Fn(&crate::domain::BundleItem) -> String| {
            b.products.iter().map(f).collect::<Vec<_>>().join(";")
        };
        let _ = w.write_record([
            cell(&b.id),
            b.objective.as_str().to_owned(),
            b.bundle_type.as_str().to_owned(),
            cell(&join(&|p| p.product_id.clone())),
            cell(&join(&|p| p.title.clone())),
            join(&|p| p.quantity.to_string()),
            b.currency.to_string(),
            b.list_price_minor.to_string(),
            b.final_price_minor.to_string(),
            format!("{:.2}", b.discount_pct),
            b.expected_margin_minor.to_string(),
            b.cost_assumed.to_string(),
            b.pareto_rank.to_string(),
            format!("{:.4}", b.score.total),
            cell(&b.copy.title),
            cell(&b.copy.badge),
            serde_json::to_value(b.copy.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        ]);
    }
    w.into_inner()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn decimal(minor: i64, b: &Bundle) -> String {
    decimal_text(minor, b.currency)
}

/// An amount in minor units as its decimal text (`1250` USD → `12.50`).
pub fn decimal_text(minor: i64, currency: crate::domain::Currency) -> String {
    let exp = currency.exponent();
    if exp == 0 {
        return minor.to_string();
    }
    let scale = 10i64.pow(exp);
    format!(
        "{}{}.{:0width$}",
        if minor < 0 { "-" } else { "" },
        (minor / scale).abs(),
        (minor % scale).abs(),
        width = exp as usize
    )
}

/// Fixed bundles as bundle-product input (title, components by variant id and SKU,
/// price); every other type as an automatic discount definition.
pub fn shopify(bundles: &[Bundle]) -> Value {
    let items = |b: &Bundle| -> Vec<Value> {
        b.products
            .iter()
            .map(|p| json!({"variantId": p.product_id, "sku": p.sku, "quantity": p.quantity}))
            .collect()
    };
    let mut fixed = Vec::new();
    let mut discounts = Vec::new();
    for b in bundles {
        let pct = (b.discount_pct * 100.0).round() / 100.0;
        match b.bundle_type {
            BundleType::Fixed => fixed.push(json!({
                "bundleId": b.id,
                "title": b.copy.title,
                "description": b.copy.description,
                "components": items(b),
                "price": {"amount": decimal(b.final_price_minor, b), "currencyCode": b.currency.to_string()},
                "compareAtPrice": {"amount": decimal(b.list_price_minor, b), "currencyCode": b.currency.to_string()},
            })),
            BundleType::Volume => discounts.push(json!({
                "bundleId": b.id,
                "type": "volume",
                "title": b.copy.title,
                "items": items(b),
                "tiers": b.tiers.iter().map(|&q| json!({"minimumQuantity": q, "percentage": pct})).collect::<Vec<_>>(),
            })),
            BundleType::Bogo | BundleType::Addon => {
                // Buy the first product, get the rest (or a second of it) at the
                // percentage that gives the bundle's price.
                let (buys, gets): (Vec<Value>, Vec<Value>) = if b.products.len() == 1 {
                    (items(b), items(b))
                } else {
                    let all = items(b);
                    (all[..1].to_vec(), all[1..].to_vec())
                };
                // The offer as priced and as its copy states it.
                let gets_pct = f64::from(b.gets_discount_pct.unwrap_or(0));
                discounts.push(json!({
                    "bundleId": b.id,
                    "type": "buy_x_get_y",
                    "title": b.copy.title,
                    "customerBuys": {"items": buys, "quantity": 1},
                    "customerGets": {"items": gets, "quantity": 1, "percentage": gets_pct.min(100.0)},
                }))
            }
            BundleType::MixMatch => discounts.push(json!({
                "bundleId": b.id,
                "type": "mix_and_match",
                "title": b.copy.title,
                "items": items(b),
                "minimumQuantity": b.pick.unwrap_or(2),
                "percentage": pct,
            })),
        }
    }
    json!({"bundles": fixed, "discounts": discounts})
}

/// HTML-escapes merchant or model text.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The Pareto scatter: expected margin (x) against confidence (the transactional
/// signal, y), front rank 1 filled.
fn scatter(bundles: &[Bundle]) -> String {
    let (w, h, pad) = (560.0, 320.0, 40.0);
    let max_x = bundles
        .iter()
        .map(|b| b.expected_margin_minor as f64)
        .fold(1.0, f64::max);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"Pareto front\">\
         <rect width=\"{w}\" height=\"{h}\" fill=\"#fafafa\" stroke=\"#ddd\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\">expected margin →</text>\
         <text x=\"6\" y=\"14\" font-size=\"11\">confidence ↑</text>",
        w - 130.0,
        h - 8.0
    );
    for b in bundles {
        let x = pad + (b.expected_margin_minor.max(0) as f64 / max_x) * (w - 2.0 * pad);
        let y = h - pad - b.score.transactional.clamp(0.0, 1.0) * (h - 2.0 * pad);
        let fill = if b.pareto_rank == 1 {
            "#1f6feb"
        } else {
            "#ffffff"
        };
        let _ = write!(
            svg,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{fill}\" stroke=\"#1f6feb\"><title>{} (rank {})</title></circle>",
            esc(&b.copy.title),
            b.pareto_rank
        );
    }
    svg.push_str("</svg>");
    svg
}

fn bar(label: &str, value: f64, weight: f64) -> String {
    format!(
        "<div class=\"bar\"><span>{label} {value:.2} × {weight:.1}</span><i style=\"width:{:.0}%\"></i></div>",
        (value.clamp(0.0, 1.0) * 100.0)
    )
}

/// One justification in words, products by title.
pub fn justification_text(j: &Justification, b: &Bundle) -> String {
    let title = |id: &str| {
        b.products
            .iter()
            .find(|p| p.product_id == id)
            .map_or_else(|| id.to_owned(), |p| p.title.clone())
    };
    let titles = |ids: &[String]| ids.iter().map(|i| title(i)).collect::<Vec<_>>().join(" + ");
    match j {
        Justification::CoPurchase {
            products,
            count,
            expected,
            shrunk_lift,
        } => format!(
            "Bought together: {} in {count} orders where chance predicts {expected:.1} (shrunk lift {shrunk_lift:.2}).",
            titles(products)
        ),
        Justification::Complement {
            products,
            similarity,
            category_orders,
            category_lift,
            data_sets,
            prior_categories,
            ..
        } if !data_sets.is_empty() => format!(
            "Complements: {} are kinds of product other stores' shoppers buy together: {} in {category_orders} baskets of {} ({category_lift:.2}× chance; this store's orders can't tell yet; meaning {similarity:.2}).",
            titles(products),
            prior_categories.join(" with "),
            data_sets.join(", ")
        ),
        Justification::Complement {
            products,
            similarity,
            categories,
            source,
            reason,
            ..
        } if source == "model" => format!(
            "Complements: the language model names {} as kinds of product that go together for {} (\"{reason}\"; meaning {similarity:.2}); neither this store's orders nor other stores' baskets can tell yet.",
            categories.join(" with "),
            titles(products)
        ),
        Justification::Complement {
            products,
            similarity,
            categories,
            category_lift,
            source,
            ..
        } => format!(
            "Complements: {} are related in meaning ({similarity:.2}) and orders pair {} ({category_lift:.2}× chance; {source}).",
            titles(products),
            categories.join(" with ")
        ),
        Justification::Proposal {
            products, reason, ..
        } => format!("Proposed by the model: {} — {reason}", titles(products)),
        Justification::Alike {
            products,
            category,
            min_similarity,
            price_low_minor,
            price_high_minor,
            orders_with_pick,
            expected_with_pick,
        } => format!(
            "One kind of thing: {} products of {category}, alike in meaning (≥ {min_similarity:.2}), priced {}–{}; {orders_with_pick} orders already held the pick where chance predicts {expected_with_pick:.1}.",
            products.len(),
            money(*price_low_minor, b),
            money(*price_high_minor, b)
        ),
        Justification::Multiples {
            product,
            orders,
            multi_unit_orders,
            repeat_rate,
        } => format!(
            "Bought in multiples: {} — {multi_unit_orders} of {orders} orders held two or more; repeat rate {:.0}%.",
            title(product),
            repeat_rate * 100.0
        ),
        Justification::Pinned { products } => {
            format!("Pinned by the merchant: {}.", titles(products))
        }
    }
}

/// What the quality rules left out: counts by reason and a few examples.
fn left_out_section(html: &mut String, out: &RunOutput) {
    let q = &out.run.quality;
    let _ = write!(
        html,
        "<h2>Left out for quality</h2><p>{} candidates considered, {} justified; a run publishes \
         fewer bundles rather than fill with these.</p><table><tr><th>reason</th><th>candidates</th></tr>",
        q.considered, q.justified
    );
    for (why, n) in &q.left_out {
        let _ = write!(html, "<tr><td>{}</td><td>{n}</td></tr>", why.as_str());
    }
    html.push_str("</table>");
    if !out.left_out_examples.is_empty() {
        html.push_str("<table><tr><th>objective</th><th>type</th><th>reason</th><th>products</th><th>score</th></tr>");
        for e in &out.left_out_examples {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
                e.objective.as_str(),
                e.bundle_type.as_str(),
                e.reason.as_str(),
                esc(&e.titles.join(" + ")),
                e.score
            );
        }
        html.push_str("</table>");
    }
}

/// The page's head: its title and style sheet; opens the body.
fn head(html: &mut String, r: &RunSummary) {
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>bundleforge run {}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}}\
         table{{border-collapse:collapse;margin:8px 0 20px}}td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left}}\
         .bundle{{border:1px solid #ddd;border-radius:8px;padding:12px;margin:12px 0}}\
         .badge{{background:#1f6feb;color:#fff;border-radius:4px;padding:1px 6px;font-size:12px}}\
         .bar{{position:relative;background:#eee;height:16px;margin:2px 0;width:320px}}\
         .bar i{{position:absolute;left:0;top:0;bottom:0;background:#9ec5fe}}\
         .bar span{{position:relative;z-index:1;font-size:11px;padding-left:4px}}.src{{color:#666;font-size:12px}}</style></head><body>",
        esc(&r.run_id)
    );
}

/// The heading and the run in a few words: store, date, tier, weights, counts and the
/// orders' evidence.
fn overview_section(html: &mut String, r: &RunSummary) {
    let _ = write!(
        html,
        "<h1>Bundles for {}</h1><p>Run <code>{}</code>, as of {}{}, {} orders in the last window: \
         <b>{:?}</b> tier, weights α={} β={} γ={}. {} candidates → {} bundles.</p>\
         <p>Evidence from the orders: {}.</p>",
        esc(&r.store_id),
        esc(&r.run_id),
        esc(&r.as_of),
        esc(r.as_of_source.note()),
        r.orders_in_window,
        r.tier,
        r.weights.alpha,
        r.weights.beta,
        r.weights.gamma,
        r.candidates,
        r.bundles,
        esc(&r.evidence.summary())
    );
}

/// Counts per objective and type, every objective and type shown.
fn counts_section(html: &mut String, bundles: &[Bundle]) {
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for b in bundles {
        *counts
            .entry((b.objective.as_str(), b.bundle_type.as_str()))
            .or_default() += 1;
    }
    html.push_str("<h2>Bundles per objective and type</h2><table><tr><th>objective</th>");
    for t in BundleType::ALL {
        let _ = write!(html, "<th>{}</th>", t.as_str());
    }
    html.push_str("</tr>");
    for o in crate::domain::Objective::ALL {
        let _ = write!(html, "<tr><td>{}</td>", o.as_str());
        for t in BundleType::ALL {
            let _ = write!(
                html,
                "<td>{}</td>",
                counts.get(&(o.as_str(), t.as_str())).copied().unwrap_or(0)
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
}

/// Each phase's duration, and the total.
fn timings_section(html: &mut String, r: &RunSummary) {
    let t = &r.timings;
    let _ = write!(
        html,
        "<h2>Phase timings</h2><table><tr><th>load</th><th>context</th><th>candidates</th><th>optimize</th>\
         <th>copy</th><th>persist</th><th>total</th></tr><tr><td>{:.3} s</td><td>{:.3} s</td><td>{:.3} s</td>\
         <td>{:.3} s</td><td>{:.3} s</td><td>{:.3} s</td><td>{:.3} s</td></tr></table>",
        t.load_seconds,
        t.context_seconds,
        t.candidates_seconds,
        t.optimize_seconds,
        t.copy_seconds,
        t.persist_seconds,
        t.total_seconds
    );
}

/// The model's use: calls, tokens and estimated cost.
fn llm_section(html: &mut String, r: &RunSummary) {
    let l = &r.llm;
    let _ = write!(
        html,
        "<h2>Language model</h2><p>{}: {} calls ({} refused, {} failed; {} requests sent), {} prompt + {} completion tokens, estimated cost ${:.4}{}.</p>",
        esc(&l.model),
        l.calls,
        l.refused,
        l.failures,
        l.sent,
        l.prompt_tokens,
        l.completion_tokens,
        l.estimated_cost_usd,
        if l.breaker_open {
            " (the endpoint failed repeatedly: the rest of the run was offline)"
        } else {
            ""
        }
    );
}

/// One bundle's card: copy, products, prices, score bars, explanation, justifications
/// and the pricing reason.
fn bundle_card(html: &mut String, b: &Bundle) {
    let products: Vec<String> = b
        .products
        .iter()
        .map(|p| {
            format!(
                "<li>{} × {} <span class=\"src\">{} · {}</span></li>",
                p.quantity,
                esc(&p.title),
                esc(&p.product_id),
                esc(&Money::new(p.unit_price_minor, b.currency).to_string())
            )
        })
        .collect();
    let _ = write!(
        html,
        "<div class=\"bundle\" data-bundle-id=\"{}\"><h3>{} <span class=\"badge\">{}</span></h3>\
         <p class=\"src\">{} · {} · Pareto rank {} · copy: {}</p><p>{}</p><ul>{}</ul>\
         <p><s>{}</s> <b>{}</b> ({:.2}% off; expected margin {}{})</p>{}{}{}\
         <p><i>{}</i></p><ul class=\"why\">{}</ul><p class=\"src\">Pricing: {}</p></div>",
        esc(&b.id),
        esc(&b.copy.title),
        esc(&b.copy.badge),
        b.objective.as_str(),
        b.bundle_type.as_str(),
        b.pareto_rank,
        if b.copy.source == crate::domain::TextSource::Llm {
            "model"
        } else {
            "offline template"
        },
        esc(&b.copy.description),
        products.join(""),
        esc(&money(b.list_price_minor, b)),
        esc(&money(b.final_price_minor, b)),
        b.discount_pct,
        esc(&money(b.expected_margin_minor, b)),
        if b.cost_assumed { ", cost assumed" } else { "" },
        bar("llm", b.score.llm, b.score.alpha),
        bar("transactional", b.score.transactional, b.score.beta),
        bar("business", b.score.business, b.score.gamma),
        esc(&b.explanation.text),
        b.explanation
            .justification
            .iter()
            .map(|j| format!("<li>{}</li>", esc(&justification_text(j, b))))
            .collect::<String>(),
        esc(&b.pricing.reason),
    );
}

/// The self-contained HTML report of a run.
pub fn report(out: &RunOutput) -> String {
    let r = &out.run;
    let mut html = String::new();
    head(&mut html, r);
    overview_section(&mut html, r);
    html.push_str("<h2>Pareto front</h2>");
    html.push_str(&scatter(&out.bundles));
    counts_section(&mut html, &out.bundles);
    timings_section(&mut html, r);
    llm_section(&mut html, r);
    html.push_str("<h2>Bundles</h2>");
    for b in &out.bundles {
        bundle_card(&mut html, b);
    }
    left_out_section(&mut html, out);
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
    }

    #[test]
    fn no_text_cell_reads_as_a_formula() {
        let golden = include_str!("../../fixtures/golden/small.bundles.json");
        let mut bundles: Vec<Bundle> = serde_json::from_str(golden).unwrap();
        let hostile = [
            "=HYPERLINK(\"http://evil.example\",\"click\")",
            "+1+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1:A9)",
            "\tTabbed",
            "\rReturned",
        ];
        for (b, text) in bundles.iter_mut().zip(hostile.iter().cycle()) {
            b.id = (*text).to_owned();
            b.copy.title = (*text).to_owned();
            b.copy.badge = (*text).to_owned();
            for p in &mut b.products {
                p.title = (*text).to_owned();
                p.product_id = (*text).to_owned();
            }
        }
        let text = csv(&bundles);
        let mut r = ::csv::Reader::from_reader(text.as_bytes());
        let headers = r.headers().unwrap().clone();
        let mut checked = 0;
        for row in r.records() {
            let row = row.unwrap();
            for name in ["id", "product_ids", "titles", "copy_title", "badge"] {
                let at = headers.iter().position(|h| h == name).unwrap();
                let cell = &row[at];
                assert!(cell.starts_with('\''), "{name}: {cell:?}");
                checked += 1;
            }
            // What the engine computes is not touched.
            let margin = headers
                .iter()
                .position(|h| h == "expected_margin_minor")
                .unwrap();
            assert!(row[margin].parse::<i64>().is_ok());
        }
        assert!(checked >= 5 * 6, "{checked}");
        assert_eq!(cell("Mug & tea"), "Mug & tea");
    }
}
