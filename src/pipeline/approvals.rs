//! A merchant's decisions, applied to a run before it is published: a rejected bundle
//! is never published again; an approved one is kept while it is still valid, instead
//! of being replaced by whatever this run ranks higher.
//!
//! Valid means: the same offer (a bundle's id derives from its objective, type,
//! products and quantities), every product still in the catalog, sellable, in stock
//! and allowed by the store's rules, and a discount inside its objective's range (and
//! the store's ceiling). An approved bundle is published as it was approved while its
//! products' prices stand; when they changed and this run priced the same offer again
//! (within the objective's range, as every run prices), that price is published, with
//! what changed. Otherwise it is dropped, with the reason. `eval` never applies this:
//! a cohort comparison measures the engine, not a merchant's choices.

use std::collections::{HashMap, HashSet};

use super::context::Context;
use super::economics;
use super::optimize::safety::{self, Rejection};
use super::summary::{ApprovalsReport, DroppedApproval, RunOutput};
use super::variant::Variant;
use crate::config::OptimizeSettings;
use crate::domain::{ApprovalMark, Bundle, Money};
use crate::store::{Approval, Decision};

/// Applies `approvals` (a store's, in the order they were made) to `out`.
pub fn apply(
    ctx: &Context,
    variant: &Variant,
    settings: &OptimizeSettings,
    approvals: &[Approval],
    out: &mut RunOutput,
) {
    let mut report = ApprovalsReport::default();
    let rejected: HashSet<&str> = approvals
        .iter()
        .filter(|a| a.decision == Decision::Rejected)
        .map(|a| a.bundle_id.as_str())
        .collect();
    let before = out.bundles.len();
    out.bundles.retain(|b| !rejected.contains(b.id.as_str()));
    report.rejected_left_out = before - out.bundles.len();

    let objectives = variant.objectives();
    let types = variant.bundle_types();
    let index: HashMap<&str, u32> = ctx
        .data
        .products
        .iter()
        .enumerate()
        .map(|(i, p)| (p.variant_id.as_str(), i as u32))
        .collect();
    let mut kept: Vec<Bundle> = Vec::new();
    for a in approvals
        .iter()
        .filter(|a| a.decision == Decision::Approved)
    {
        let drop = |report: &mut ApprovalsReport, reason: String| {
            report.dropped.push(DroppedApproval {
                bundle_id: a.bundle_id.clone(),
                reason,
            })
        };
        let approved = &a.bundle;
        if !objectives.contains(&approved.objective) || !types.contains(&approved.bundle_type) {
            report.out_of_scope += 1;
            continue;
        }
        if kept.iter().any(|k| k.id == approved.id) {
            continue;
        }
        if let Err(reason) = still_valid(ctx, settings, &index, approved) {
            drop(&mut report, reason);
            continue;
        }
        let prices_stand = approved.products.iter().all(|item| {
            ctx.product(index[item.product_id.as_str()]).price.minor == item.unit_price_minor
        });
        let mark = |kept: &str, changes: Vec<String>| ApprovalMark {
            approved_in_run: a.run_id.clone(),
            decided_by: a.decided_by.clone(),
            decided_at: chrono::DateTime::from_timestamp_millis(a.decided_at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
            kept: kept.to_owned(),
            changes,
        };
        let repriced = out.bundles.iter().find(|b| b.id == approved.id);
        match (prices_stand, repriced) {
            (true, _) => {
                let mut b = approved.clone();
                b.approval = Some(mark("unchanged", Vec::new()));
                report.kept_unchanged += 1;
                kept.push(b);
            }
            (false, Some(fresh)) => {
                let mut b = fresh.clone();
                b.approval = Some(mark("repriced", changes(approved, &b)));
                report.kept_repriced += 1;
                kept.push(b);
            }
            (false, None) => drop(
                &mut report,
                format!(
                    "its products' prices changed ({}) and this run does not offer it again: \
                     approve a bundle of this run instead",
                    changes(approved, &approved_at_current_prices(ctx, &index, approved))
                        .join("; ")
                ),
            ),
        }
    }

    if !kept.is_empty() {
        let kept_ids: HashSet<&str> = kept.iter().map(|b| b.id.as_str()).collect();
        let rest: Vec<Bundle> = out
            .bundles
            .drain(..)
            .filter(|b| !kept_ids.contains(b.id.as_str()))
            .collect();
        // The merchant's choices first, then this run's best, up to the run's cap.
        out.bundles = kept;
        out.bundles.extend(rest);
        out.bundles.truncate(settings.max_bundles.max(1));
    }
    out.run.bundles = out.bundles.len();
    out.run.approvals = Some(report);
}

/// Whether an approved bundle may still be sold as it was approved; else why not.
fn still_valid(
    ctx: &Context,
    settings: &OptimizeSettings,
    index: &HashMap<&str, u32>,
    b: &Bundle,
) -> Result<(), String> {
    let mut products = Vec::with_capacity(b.products.len());
    for item in &b.products {
        let Some(&i) = index.get(item.product_id.as_str()) else {
            return Err(format!("{:?} is no longer in the catalog", item.title));
        };
        products.push(i);
    }
    let quantities: Vec<u32> = b.products.iter().map(|i| i.quantity).collect();
    let units = economics::units_sold(b.bundle_type, &quantities, &b.tiers);
    for (pos, &i) in products.iter().enumerate() {
        let title = &b.products[pos].title;
        let need = units.get(pos).copied().unwrap_or(1);
        match safety::check_products(ctx, &[i], &[need]) {
            Ok(_) => {}
            Err(Rejection::OutOfStock) => return Err(format!("{title:?} is short of stock")),
            Err(_) => return Err(format!("{title:?} can no longer be sold")),
        }
        if ctx.rules.never[i as usize] {
            return Err(format!("the store's rules never bundle {title:?}"));
        }
    }
    for (x, &a) in products.iter().enumerate() {
        for &c in &products[x + 1..] {
            if ctx.rules.never_pairs.contains(&(a.min(c), a.max(c))) {
                return Err("the store's rules never sell two of its products together".into());
            }
        }
    }
    let (lo, mut hi) = settings.range(b.objective);
    if let Some(ceiling) = ctx.rules.max_discount_pct {
        hi = hi.min(ceiling);
    }
    // Half a point either way: a stated offer (BOGO, add-on) rounds its whole-bundle
    // discount.
    if b.discount_pct < f64::from(lo) - 0.5 || b.discount_pct > f64::from(hi) + 0.5 {
        return Err(format!(
            "its {:.0}% discount is outside the {lo}–{hi}% that {} allows now",
            b.discount_pct,
            b.objective.as_str()
        ));
    }
    Ok(())
}

/// The approved bundle with its items at today's unit prices (list price only): what
/// the merchant would see changed.
fn approved_at_current_prices(ctx: &Context, index: &HashMap<&str, u32>, b: &Bundle) -> Bundle {
    let mut now = b.clone();
    for item in &mut now.products {
        item.unit_price_minor = ctx.product(index[item.product_id.as_str()]).price.minor;
    }
    let items: Vec<(i64, u32)> = now
        .products
        .iter()
        .map(|i| (i.unit_price_minor, i.quantity))
        .collect();
    now.list_price_minor = economics::as_sold(now.bundle_type, now.pick, &items);
    now
}

/// What differs between an approved bundle and its counterpart now, one line each.
fn changes(approved: &Bundle, now: &Bundle) -> Vec<String> {
    let money = |m: i64| Money::new(m, approved.currency).to_string();
    let mut out = Vec::new();
    for (a, n) in approved.products.iter().zip(&now.products) {
        if a.unit_price_minor != n.unit_price_minor {
            out.push(format!(
                "{}: {} → {}",
                a.title,
                money(a.unit_price_minor),
                money(n.unit_price_minor)
            ));
        }
    }
    if approved.list_price_minor != now.list_price_minor {
        out.push(format!(
            "list price {} → {}",
            money(approved.list_price_minor),
            money(now.list_price_minor)
        ));
    }
    if approved.final_price_minor != now.final_price_minor {
        out.push(format!(
            "price {} → {}",
            money(approved.final_price_minor),
            money(now.final_price_minor)
        ));
    }
    if (approved.discount_pct - now.discount_pct).abs() >= 0.05 {
        out.push(format!(
            "discount {:.1}% → {:.1}%",
            approved.discount_pct, now.discount_pct
        ));
    }
    if approved.gets_discount_pct != now.gets_discount_pct {
        out.push(format!(
            "off what the shopper gets {}% → {}%",
            approved.gets_discount_pct.unwrap_or(0),
            now.gets_discount_pct.unwrap_or(0)
        ));
    }
    out
}
