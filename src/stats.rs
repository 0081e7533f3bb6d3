//! Store statistics: order volume and its weight tier, per-product velocity, stock
//! cover and launch dates, and every assumption in force.
//!
//! Every window ends at `as_of`: the store's latest order unless the caller names a
//! date, never the wall clock, so the same data gives the same answer on any day. The
//! window is the `window_days` × 24 h before that instant (an order exactly at the start
//! is outside it). Orders after `as_of` are ignored altogether.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::Serialize;

use crate::config::{Settings, StatsSettings};
use crate::domain::ProductStatus;
use crate::domain::StoreData;

/// How much order data a store has, which sets how much each signal counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Small,
    Medium,
    Large,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Weights {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
}

impl Weights {
    pub fn from_array(w: [f64; 3]) -> Self {
        Weights {
            alpha: w[0],
            beta: w[1],
            gamma: w[2],
        }
    }
}

/// The tier for an order count in the window, and its configured weights.
pub fn tier_for(orders_in_window: u64, settings: &Settings) -> (Tier, Weights) {
    let s = &settings.scoring;
    if orders_in_window < s.medium_tier_from {
        (Tier::Small, Weights::from_array(s.small_weights))
    } else if orders_in_window < s.large_tier_from {
        (Tier::Medium, Weights::from_array(s.medium_weights))
    } else {
        (Tier::Large, Weights::from_array(s.large_weights))
    }
}

/// Where a run's date came from (`run.as_of_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AsOfSource {
    /// `--as-of DATE`.
    Given,
    /// The store's latest order.
    LatestOrder,
    /// No orders: the catalog's latest product timestamp.
    LatestProduct,
    /// No orders and no product timestamps: the end of the day of the store's first
    /// ingest (stored then, so runs stay reproducible).
    FirstIngest,
}

impl AsOfSource {
    /// How a summary says where the date came from ("" for the usual sources).
    pub fn note(self) -> &'static str {
        match self {
            AsOfSource::Given | AsOfSource::LatestOrder => "",
            AsOfSource::LatestProduct => " (no orders: the catalog's latest product)",
            AsOfSource::FirstIngest => " (no orders: the day of the store's first ingest)",
        }
    }
}

/// The date a run or the statistics see the store as of, and where it came from: the
/// given day, else the latest order, else — a store without orders — the catalog's
/// latest product timestamp, else the day of the store's first ingest. The last two
/// are the one place a date comes from outside the orders; both are stored data, never
/// the wall clock.
pub fn resolve_as_of_with_source(
    data: &StoreData,
    as_of: Option<NaiveDate>,
) -> Option<(DateTime<Utc>, AsOfSource)> {
    if let Some(d) = as_of {
        return Some((end_of_day(d), AsOfSource::Given));
    }
    if let Some(t) = data.orders.iter().map(|o| o.created_at).max() {
        return Some((t, AsOfSource::LatestOrder));
    }
    if let Some(t) = data.products.iter().filter_map(|p| p.created_at).max() {
        return Some((t, AsOfSource::LatestProduct));
    }
    data.first_ingest
        .map(|t| (end_of_day(t.date_naive()), AsOfSource::FirstIngest))
}

/// The median of `values` (the mean of the middle two for an even count; sorts them);
/// `None` for none.
pub fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        n if n % 2 == 1 => Some(values[n / 2]),
        n => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// The last second of a day, UTC: "as of a day" includes all of it.
pub fn end_of_day(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN)) + chrono::Duration::seconds(86_399)
}

/// What the engine knows of one product at `as_of`.
#[derive(Debug, Clone, Default)]
pub struct ProductMetrics {
    pub units_window: i64,
    pub orders_window: u64,
    pub revenue_window_minor: i64,
    pub units_total: i64,
    pub first_sold: Option<DateTime<Utc>>,
    pub last_sold: Option<DateTime<Utc>>,
    /// The launch date, or the first order date when the data has none.
    pub launched: Option<DateTime<Utc>>,
    pub launch_assumed: bool,
    /// Units per day over the window.
    pub velocity: f64,
    /// Inventory ÷ velocity; `None` when untracked, infinite when nothing sold.
    pub days_of_cover: Option<f64>,
}

impl ProductMetrics {
    /// On sale since before the window began, and at most `max_units` sold in it.
    pub fn is_slow_mover(&self, window_start: DateTime<Utc>, max_units: u64) -> bool {
        self.launched.is_some_and(|t| t <= window_start) && self.units_window <= max_units as i64
    }

    /// Launched in the `days` before `as_of` (never after it).
    pub fn is_new_launch(&self, as_of: DateTime<Utc>, days: u32) -> bool {
        let since = as_of - Duration::days(i64::from(days));
        self.launched.is_some_and(|t| t > since && t <= as_of)
    }
}

/// Whether a product is on sale at all: active (or with no status) and not a gift card.
/// The one rule that statistics, eligibility and the guard share.
pub fn sellable(p: &crate::domain::Product) -> bool {
    !p.gift_card && matches!(p.status, None | Some(ProductStatus::Active))
}

/// Per-product metrics, indexed like `data.products`.
pub fn product_metrics(
    data: &StoreData,
    as_of: DateTime<Utc>,
    window_days: u32,
) -> Vec<ProductMetrics> {
    let start = as_of - Duration::days(i64::from(window_days));
    let mut m = vec![ProductMetrics::default(); data.products.len()];
    for order in data.orders_until(as_of) {
        let in_window = order.created_at > start;
        for line in &order.lines {
            let Some(i) = line.item else { continue };
            let pm = &mut m[i as usize];
            pm.units_total = pm.units_total.saturating_add(line.quantity);
            pm.first_sold = Some(
                pm.first_sold
                    .map_or(order.created_at, |t| t.min(order.created_at)),
            );
            pm.last_sold = Some(
                pm.last_sold
                    .map_or(order.created_at, |t| t.max(order.created_at)),
            );
            if in_window {
                pm.units_window = pm.units_window.saturating_add(line.quantity);
                pm.orders_window += 1;
                // Ingest bounds quantities and amounts; saturating keeps a sum of
                // millions of such lines from wrapping.
                let line_revenue = line
                    .quantity
                    .saturating_mul(line.unit_price_minor)
                    .saturating_sub(line.discount_minor);
                pm.revenue_window_minor = pm.revenue_window_minor.saturating_add(line_revenue);
            }
        }
    }
    for (pm, p) in m.iter_mut().zip(&data.products) {
        match p.created_at {
            Some(t) => pm.launched = Some(t),
            None => {
                pm.launched = pm.first_sold;
                pm.launch_assumed = true;
            }
        }
        pm.velocity = pm.units_window as f64 / f64::from(window_days.max(1));
        pm.days_of_cover = p.inventory.map(|inv| {
            if inv <= 0 {
                0.0
            } else if pm.velocity > 0.0 {
                inv as f64 / pm.velocity
            } else {
                f64::INFINITY
            }
        });
    }
    m
}

#[derive(Debug, Clone, Serialize)]
pub struct StoreStats {
    pub store_id: String,
    pub currency: String,
    pub orders: u64,
    pub order_lines: u64,
    pub products: u64,
    pub baskets: u64,
    pub multi_item_baskets: u64,
    pub avg_basket_size: f64,
    /// The day the windows end on (`YYYY-MM-DD`), and the exact instant.
    pub as_of: String,
    pub as_of_time: String,
    /// Where the day came from (see [`resolve_as_of_with_source`]).
    pub as_of_source: AsOfSource,
    pub window_days: u32,
    pub orders_60d: u64,
    pub tier: Tier,
    pub weights: Weights,
    pub top_sellers: Vec<SellerEntry>,
    pub slow_movers: ProductList<SlowMoverEntry>,
    pub new_launches: ProductList<LaunchEntry>,
    pub stock_cover: StockCover,
    pub assumed: Vec<Assumption>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProductList<T> {
    /// How many products qualify; `products` lists the first few.
    pub count: u64,
    pub products: Vec<T>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SellerEntry {
    pub product_id: String,
    pub title: String,
    pub units: i64,
    pub orders: u64,
    pub revenue_minor: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlowMoverEntry {
    pub product_id: String,
    pub title: String,
    pub units_in_window: i64,
    pub last_sold: Option<String>,
    pub inventory: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LaunchEntry {
    pub product_id: String,
    pub title: String,
    pub launched: String,
    pub launch_assumed: bool,
    pub units_in_window: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StockCover {
    pub tracked: u64,
    pub untracked: u64,
    pub out_of_stock: u64,
    /// Tracked, in stock, with fewer days of cover than `low_cover_days`.
    pub low: u64,
    /// Tracked, in stock, with more days of cover than `overstock_cover_days` (or no sales
    /// of it while the store sells others).
    pub overstock: u64,
    pub low_cover_days: u32,
    pub overstock_cover_days: u32,
    /// Median days of cover of tracked, in-stock products that sold in the window.
    pub median_days: Option<f64>,
}

/// A fact the data did not give and the rule that stands in for it.
#[derive(Debug, Clone, Serialize)]
pub struct Assumption {
    pub field: &'static str,
    /// How many products (or orders, for currency) it applies to.
    pub count: u64,
    pub applies_to: &'static str,
    pub rule: String,
}

fn date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// Computes the statistics. `None` when the store has no orders and no date was given.
pub fn compute(
    data: &StoreData,
    as_of: Option<NaiveDate>,
    settings: &Settings,
) -> Option<StoreStats> {
    let (as_of, as_of_source) = resolve_as_of_with_source(data, as_of)?;
    let st = &settings.stats;
    let window = settings.scoring.window_days;
    let start = as_of - Duration::days(i64::from(window));
    let metrics = product_metrics(data, as_of, window);

    let counts = OrderCounts::tally(data, as_of, start);
    let (tier, weights) = tier_for(counts.in_window, settings);
    let top_sellers = top_sellers(data, &metrics, st.list_limit);
    let slow_movers = slow_movers(data, &metrics, start, counts.in_window, st);
    let new_launches = new_launches(data, &metrics, as_of, st);
    let cover = stock_cover(data, &metrics, counts.in_window, st);
    let assumed = assumptions(data, &metrics, counts.currency_assumed, settings);

    Some(StoreStats {
        store_id: data.store.id.to_string(),
        currency: data.store.currency.to_string(),
        orders: counts.orders,
        order_lines: counts.lines,
        products: data.products.len() as u64,
        baskets: counts.baskets,
        multi_item_baskets: counts.multi,
        avg_basket_size: if counts.baskets == 0 {
            0.0
        } else {
            (counts.lines as f64 / counts.baskets as f64 * 100.0).round() / 100.0
        },
        as_of: date(as_of),
        as_of_time: as_of.to_rfc3339(),
        as_of_source,
        window_days: window,
        orders_60d: counts.in_window,
        tier,
        weights,
        top_sellers,
        slow_movers,
        new_launches,
        stock_cover: cover,
        assumed,
    })
}

/// The order counts `compute` reports, tallied in one pass over the orders up to
/// `as_of`.
struct OrderCounts {
    orders: u64,
    lines: u64,
    baskets: u64,
    multi: u64,
    /// Orders after the window's start: what sets the tier.
    in_window: u64,
    /// Orders whose currency was assumed (an assumption to report).
    currency_assumed: u64,
}

impl OrderCounts {
    /// One pass over the orders placed by `as_of`; `start` opens the window.
    fn tally(data: &StoreData, as_of: DateTime<Utc>, start: DateTime<Utc>) -> Self {
        let mut orders = 0u64;
        let mut lines = 0u64;
        let mut baskets = 0u64;
        let mut multi = 0u64;
        let mut in_window = 0u64;
        let mut currency_assumed = 0u64;
        for o in data.orders_until(as_of) {
            orders += 1;
            lines += o.lines.len() as u64;
            baskets += u64::from(!o.lines.is_empty());
            multi += u64::from(o.lines.len() >= 2);
            in_window += u64::from(o.created_at > start);
            currency_assumed += u64::from(o.currency_assumed);
        }
        OrderCounts {
            orders,
            lines,
            baskets,
            multi,
            in_window,
            currency_assumed,
        }
    }
}

/// The best sellers of the window (units, then revenue, then variant id), the first
/// `limit` of them.
fn top_sellers(data: &StoreData, metrics: &[ProductMetrics], limit: usize) -> Vec<SellerEntry> {
    let mut sellers: Vec<usize> = (0..data.products.len())
        .filter(|&i| metrics[i].units_window > 0)
        .collect();
    sellers.sort_by(|&a, &b| {
        metrics[b]
            .units_window
            .cmp(&metrics[a].units_window)
            .then(
                metrics[b]
                    .revenue_window_minor
                    .cmp(&metrics[a].revenue_window_minor),
            )
            .then(
                data.products[a]
                    .variant_id
                    .cmp(&data.products[b].variant_id),
            )
    });
    sellers
        .iter()
        .take(limit)
        .map(|&i| SellerEntry {
            product_id: data.products[i].variant_id.clone(),
            title: data.products[i].display_title(),
            units: metrics[i].units_window,
            orders: metrics[i].orders_window,
            revenue_minor: metrics[i].revenue_window_minor,
        })
        .collect()
}

/// Sellable products on sale since before the window that sold little in it, the
/// most stock first.
fn slow_movers(
    data: &StoreData,
    metrics: &[ProductMetrics],
    start: DateTime<Utc>,
    in_window: u64,
    st: &StatsSettings,
) -> ProductList<SlowMoverEntry> {
    // Without orders in the window nothing is known to sell slowly (a new store).
    let mut slow: Vec<usize> = (0..data.products.len())
        .filter(|&i| {
            in_window > 0
                && sellable(&data.products[i])
                && metrics[i].is_slow_mover(start, st.slow_mover_max_units)
        })
        .collect();
    slow.sort_by(|&a, &b| {
        let inv = |i: usize| data.products[i].inventory.unwrap_or(0);
        inv(b)
            .cmp(&inv(a))
            .then(metrics[a].units_window.cmp(&metrics[b].units_window))
            .then(metrics[a].last_sold.cmp(&metrics[b].last_sold))
            .then(
                data.products[a]
                    .variant_id
                    .cmp(&data.products[b].variant_id),
            )
    });
    ProductList {
        count: slow.len() as u64,
        products: slow
            .iter()
            .take(st.list_limit)
            .map(|&i| SlowMoverEntry {
                product_id: data.products[i].variant_id.clone(),
                title: data.products[i].display_title(),
                units_in_window: metrics[i].units_window,
                last_sold: metrics[i].last_sold.map(date),
                inventory: data.products[i].inventory,
            })
            .collect(),
    }
}

/// Sellable products launched in the last `new_launch_days`, the newest first.
fn new_launches(
    data: &StoreData,
    metrics: &[ProductMetrics],
    as_of: DateTime<Utc>,
    st: &StatsSettings,
) -> ProductList<LaunchEntry> {
    let mut launches: Vec<usize> = (0..data.products.len())
        .filter(|&i| {
            sellable(&data.products[i]) && metrics[i].is_new_launch(as_of, st.new_launch_days)
        })
        .collect();
    launches.sort_by(|&a, &b| {
        metrics[b].launched.cmp(&metrics[a].launched).then(
            data.products[a]
                .variant_id
                .cmp(&data.products[b].variant_id),
        )
    });
    ProductList {
        count: launches.len() as u64,
        products: launches
            .iter()
            .take(st.list_limit)
            .map(|&i| LaunchEntry {
                product_id: data.products[i].variant_id.clone(),
                title: data.products[i].display_title(),
                launched: metrics[i].launched.map(date).unwrap_or_default(),
                launch_assumed: metrics[i].launch_assumed,
                units_in_window: metrics[i].units_window,
            })
            .collect(),
    }
}

/// Stock cover over the tracked products: out of stock, low, overstocked, and the
/// median days of cover of those in stock that sold.
fn stock_cover(
    data: &StoreData,
    metrics: &[ProductMetrics],
    in_window: u64,
    st: &StatsSettings,
) -> StockCover {
    let mut cover = StockCover {
        tracked: 0,
        untracked: 0,
        out_of_stock: 0,
        low: 0,
        overstock: 0,
        low_cover_days: st.low_cover_days,
        overstock_cover_days: st.overstock_cover_days,
        median_days: None,
    };
    let mut days: Vec<f64> = Vec::new();
    for (p, m) in data.products.iter().zip(metrics) {
        match (p.inventory, m.days_of_cover) {
            (Some(inv), Some(d)) => {
                cover.tracked += 1;
                if inv <= 0 {
                    cover.out_of_stock += 1;
                } else if d < f64::from(st.low_cover_days) {
                    cover.low += 1;
                } else if in_window > 0 && d > f64::from(st.overstock_cover_days) {
                    // Cover is only known where the store sells at all.
                    cover.overstock += 1;
                }
                if inv > 0 && d.is_finite() {
                    days.push(d);
                }
            }
            _ => cover.untracked += 1,
        }
    }
    cover.median_days = median(&mut days);
    cover
}

/// Every assumption in force, in a fixed order: each fact the data did not give, how
/// often, and the rule that stands in for it (none listed that applies to nothing).
fn assumptions(
    data: &StoreData,
    metrics: &[ProductMetrics],
    currency_assumed: u64,
    settings: &Settings,
) -> Vec<Assumption> {
    let count =
        |f: &dyn Fn(usize) -> bool| (0..data.products.len()).filter(|&i| f(i)).count() as u64;
    let mut assumed = Vec::new();
    let mut add = |field, count: u64, applies_to, rule: String| {
        if count > 0 {
            assumed.push(Assumption {
                field,
                count,
                applies_to,
                rule,
            });
        }
    };
    add(
        "cost",
        count(&|i| data.products[i].cost.is_none()),
        "products",
        format!(
            "cost = price × {:.2} (assumptions.cost_ratio); margins marked assumed",
            settings.assumptions.cost_ratio
        ),
    );
    add(
        "inventory",
        count(&|i| data.products[i].inventory.is_none()),
        "products",
        "not tracked: passes stock checks, no stock cover or overstock".into(),
    );
    add(
        "status",
        count(&|i| data.products[i].status.is_none()),
        "products",
        "active".into(),
    );
    add(
        "launch_date",
        count(&|i| metrics[i].launch_assumed && metrics[i].first_sold.is_some()),
        "products",
        "the product's first order date".into(),
    );
    add(
        "launch_date",
        count(&|i| metrics[i].launched.is_none()),
        "products",
        "unknown (never sold, no launch date): not a new launch, not a slow mover".into(),
    );
    add(
        "category",
        count(&|i| data.products[i].category.is_none() && data.products[i].product_type.is_none()),
        "products",
        "none (derived from embedding clusters when bundles are generated)".into(),
    );
    add(
        "currency",
        currency_assumed,
        "orders",
        format!("the store's currency, {}", data.store.currency),
    );
    assumed
}

/// P(X ≥ k) for X ~ Poisson(λ), summed from k upward (the terms fall once past λ, and
/// a tail sum keeps its precision where one minus the head would not).
pub fn poisson_at_least(k: u32, lambda: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    if f64::from(k) <= lambda {
        // The head is the small side here.
        let mut term = (-lambda).exp();
        let mut head = term;
        for i in 1..k {
            term *= lambda / f64::from(i);
            head += term;
        }
        return (1.0 - head).clamp(0.0, 1.0);
    }
    // ln P(X = k) = k ln λ − λ − ln k!
    let ln_fact = ln_factorial(k);
    let mut term = (f64::from(k) * lambda.ln() - lambda - ln_fact).exp();
    let mut tail = 0.0;
    let mut i = k;
    while term > tail * 1e-12 && i < k + 10_000 {
        tail += term;
        i += 1;
        term *= lambda / f64::from(i);
    }
    tail.min(1.0)
}

/// ln k!: summed up to 20, Stirling's series beyond (error under 1e-10 there).
fn ln_factorial(k: u32) -> f64 {
    if k <= 20 {
        return (2..=k).map(|i| f64::from(i).ln()).sum();
    }
    let k = f64::from(k);
    k * k.ln() - k + 0.5 * (2.0 * std::f64::consts::PI * k).ln() + 1.0 / (12.0 * k)
        - 1.0 / (360.0 * k.powi(3))
}

/// P(at least `k` of independent events with probabilities `p`) (Poisson binomial).
pub fn at_least(p: &[f64], k: usize) -> f64 {
    // dist[j] = P(exactly j so far).
    let mut dist = vec![0.0f64; p.len() + 1];
    dist[0] = 1.0;
    for (n, &q) in p.iter().enumerate() {
        for j in (0..=n + 1).rev() {
            let stay = dist[j] * (1.0 - q);
            let step = if j > 0 { dist[j - 1] * q } else { 0.0 };
            dist[j] = stay + step;
        }
    }
    dist[k.min(p.len())..].iter().sum()
}

/// `x` rounded to `digits` decimals (for figures shown to people).
pub fn round_to(x: f64, digits: i32) -> f64 {
    let s = 10f64.powi(digits);
    (x * s).round() / s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_switch_exactly_at_their_boundaries() {
        let s = Settings::defaults().unwrap();
        assert_eq!(tier_for(0, &s).0, Tier::Small);
        assert_eq!(tier_for(299, &s).0, Tier::Small);
        assert_eq!(tier_for(300, &s).0, Tier::Medium);
        assert_eq!(tier_for(1199, &s).0, Tier::Medium);
        assert_eq!(tier_for(1200, &s).0, Tier::Large);
        assert_eq!(
            tier_for(1200, &s).1,
            Weights {
                alpha: 0.2,
                beta: 0.6,
                gamma: 0.2
            }
        );
        assert_eq!(
            tier_for(10, &s).1,
            Weights {
                alpha: 0.6,
                beta: 0.2,
                gamma: 0.2
            }
        );
    }

    #[test]
    fn the_poisson_tail_matches_its_sums() {
        // P(X ≥ 4 | λ = 1.6) = 1 − e^−1.6 (1 + 1.6 + 1.28 + 0.682667)
        let head = (-1.6f64).exp() * (1.0 + 1.6 + 1.28 + 1.6f64.powi(3) / 6.0);
        assert!((poisson_at_least(4, 1.6) - (1.0 - head)).abs() < 1e-12);
        // Far in the tail: P(X = 30 | λ = 2) = 2^30 e^−2 / 30! ≈ 5.48e-25, and the
        // terms after it add about 7 %.
        let p = poisson_at_least(30, 2.0);
        assert!(p > 5.8e-25 && p < 5.9e-25, "{p}");
        assert_eq!(poisson_at_least(0, 3.0), 1.0);
        // Stirling beyond 20 matches the sum.
        for k in [21u32, 50, 400] {
            let sum: f64 = (2..=k).map(|i| f64::from(i).ln()).sum();
            assert!((ln_factorial(k) - sum).abs() < 1e-8 * sum, "{k}");
        }
        assert_eq!(poisson_at_least(2, 0.0), 0.0);
        // Below the mean the head is summed: P(X ≥ 1 | λ = 5) = 1 − e^−5.
        assert!((poisson_at_least(1, 5.0) - (1.0 - (-5.0f64).exp())).abs() < 1e-12);
        assert!((poisson_at_least(3, 5.0) - (1.0 - (-5.0f64).exp() * 18.5)).abs() < 1e-12);
    }
}
