//! Association rules: co-purchase evidence mined from a store's orders.
//!
//! - [`Baskets`]: orders as sets of interned items, from a baskets file or a store.
//! - [`frequent_itemsets`]: FP-Growth over an array FP-tree, parallel over the top
//!   tree's items, deterministic.
//! - [`rules`](assoc::rules): one-item right-hand sides with support, confidence, lift,
//!   leverage and conviction.
//! - [`count_pairs`]: the exact pair path, every pair's co-occurrence in one pass.
//! - [`mine`]: the above under a memory budget: a threshold that would not fit is raised
//!   step by step, and every attempt is reported.
//!
//! Conventions follow arules and Borgelt's tools exactly: frequent iff
//! `count ≥ ⌈minsup × N⌉`, rule support = support(LHS ∪ RHS), confidence compared on
//! integer counts. Synchronous: callers in async code run it on a blocking thread.

mod assoc;
mod baskets;
mod budget;
mod fpgrowth;
mod hash;
mod itemsets;
mod output;
mod pairs;
mod parallel;
pub mod synthetic;
mod threshold;

use serde::Serialize;

use crate::cancel::{CancelToken, Cancelled};
use crate::config::RulesSettings;

pub use assoc::{Rule, RuleMetrics, metrics};
pub use baskets::{Baskets, BasketsError, Separator};
pub use budget::{Budget, Halt};
pub use fpgrowth::{MineParams, frequent_itemsets};
pub use itemsets::{ItemsetIndex, Itemsets, closed_and_maximal};
pub use output::write_json;
pub use pairs::{PairCount, Pairs, count_pairs, set_lift};
pub use threshold::{Fraction, MinSupport, ThresholdError};

/// Which itemsets to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// All frequent itemsets.
    #[default]
    Frequent,
    /// Frequent itemsets no superset of which has the same count.
    Closed,
    /// Frequent itemsets no superset of which is frequent: the largest sets bought
    /// together, good bundle seeds.
    Maximal,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "frequent" | "all" => Ok(Target::Frequent),
            "closed" => Ok(Target::Closed),
            "maximal" => Ok(Target::Maximal),
            other => Err(format!(
                "unknown target {other:?}: use frequent, closed or maximal"
            )),
        }
    }
}

/// What [`mine`] mines.
#[derive(Debug, Clone)]
pub struct MiningOptions {
    pub minsup: MinSupport,
    /// Minimum confidence of rules; `None` = no rules.
    pub minconf: Option<Fraction>,
    pub max_len: Option<usize>,
    pub max_basket: Option<usize>,
    pub target: Target,
    /// Memory for one attempt, the baskets included.
    pub budget_bytes: usize,
    /// Whether the budget is the whole process's (the `rules` command: it is the
    /// process) or this mining's alone (a run inside a process that holds other runs:
    /// its results must not depend on what else the process holds).
    pub budget_covers_process: bool,
    pub threads: usize,
}

/// A threshold that was tried and given up.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub min_count: u64,
    pub reason: String,
}

/// How mining went: what was asked, what was used, and why they differ.
#[derive(Debug, Clone, Serialize)]
pub struct MiningReport {
    /// Baskets in the input.
    pub baskets: u64,
    /// Baskets left out by `max_basket` (not counted in N).
    pub baskets_capped: u64,
    /// N: the baskets mined.
    pub baskets_mined: u64,
    pub items: usize,
    pub min_count_requested: u64,
    pub min_count: u64,
    /// The requested fraction when the threshold was kept; `min_count / N` when raised.
    pub minsup: f64,
    pub threshold_raised: bool,
    /// Thresholds that did not fit the budget, in the order tried.
    pub attempts: Vec<Attempt>,
    pub budget_bytes: usize,
    /// The most the finishing attempt had charged at once.
    pub budget_peak_bytes: usize,
}

/// Frequent itemsets, the target's selection of them, and rules.
#[derive(Debug, Clone)]
pub struct Mined {
    /// Every frequent itemset (rules refer to these by index).
    pub frequent: Itemsets,
    /// Which of them the target keeps; `None` = all.
    pub selected: Option<Vec<bool>>,
    pub rules: Vec<Rule>,
    pub report: MiningReport,
}

impl Mined {
    /// The target's itemsets with their index in `frequent`.
    pub fn itemsets(&self) -> impl Iterator<Item = (usize, &[u32], u32)> + '_ {
        self.frequent
            .iter()
            .enumerate()
            .filter(|(i, _)| self.selected.as_ref().is_none_or(|s| s[*i]))
            .map(|(i, (items, count))| (i, items, count))
    }

    /// Number of the target's itemsets by size (index = size).
    pub fn itemsets_by_size(&self) -> Vec<usize> {
        let mut sizes = Vec::new();
        for (_, items, _) in self.itemsets() {
            if sizes.len() <= items.len() {
                sizes.resize(items.len() + 1, 0);
            }
            sizes[items.len()] += 1;
        }
        sizes
    }

    pub fn itemset_count(&self) -> usize {
        match &self.selected {
            None => self.frequent.len(),
            Some(s) => s.iter().filter(|&&k| k).count(),
        }
    }
}

/// Mines within the memory budget: a threshold whose itemsets or rules would not fit is
/// raised by half (at least by one) and mining starts over, until it fits. It always
/// finishes: at a count above every item's, nothing is frequent.
pub fn mine(baskets: &Baskets, opts: &MiningOptions) -> Mined {
    crate::cancel::never_cancelled(mine_until(baskets, opts, &CancelToken::never()))
}

/// [`mine`], stopping within milliseconds once `cancel` is cancelled.
pub fn mine_until(
    baskets: &Baskets,
    opts: &MiningOptions,
    cancel: &CancelToken,
) -> Result<Mined, Cancelled> {
    let capped = opts.max_basket.map_or(0, |cap| {
        baskets.iter().filter(|b| b.len() > cap).count() as u64
    });
    let n = baskets.len() as u64 - capped;
    let requested = opts.minsup.min_count(n);
    let mut min_count = requested;
    let mut attempts = Vec::new();
    let limit = attempt_budget(opts.budget_bytes, opts.budget_covers_process, baskets);
    loop {
        let budget = Budget::with_cancel(limit, cancel.clone());
        match attempt(baskets, opts, min_count, &budget) {
            Ok((frequent, selected, rules)) => {
                let raised = min_count != requested;
                let minsup = match opts.minsup {
                    MinSupport::Fraction(f) if !raised => f.as_f64(),
                    _ => min_count as f64 / n.max(1) as f64,
                };
                return Ok(Mined {
                    frequent,
                    selected,
                    rules,
                    report: MiningReport {
                        baskets: baskets.len() as u64,
                        baskets_capped: capped,
                        baskets_mined: n,
                        items: baskets.item_count(),
                        min_count_requested: requested,
                        min_count,
                        minsup,
                        threshold_raised: raised,
                        attempts,
                        budget_bytes: opts.budget_bytes,
                        budget_peak_bytes: budget.peak(),
                    },
                });
            }
            Err(Halt::Cancelled) => return Err(Cancelled),
            Err(Halt::OverBudget) => {
                // Above n nothing is frequent and nothing is charged: that attempt fits.
                let next = (min_count + min_count / 2).clamp(min_count + 1, n + 1);
                tracing::warn!(
                    min_count,
                    next,
                    budget_mib = opts.budget_bytes >> 20,
                    "itemsets at this threshold do not fit the memory budget; raising it"
                );
                attempts.push(Attempt {
                    min_count,
                    reason: format!(
                        "over the {} MiB budget",
                        opts.budget_bytes.div_ceil(1 << 20)
                    ),
                });
                min_count = next;
            }
        }
    }
}

/// What an attempt may charge: the budget less what was held before mining (the whole
/// process, the baskets among it, when the budget covers the process; else the
/// baskets) and a sixteenth for what is not charged (allocator slack, the scratch of
/// conditional trees being built). Measured once: memory a failed attempt freed stays
/// with the allocator, and the next attempt reuses it.
fn attempt_budget(budget: usize, covers_process: bool, baskets: &Baskets) -> usize {
    let process = covers_process.then(crate::memory::resident_bytes).flatten();
    let held = process.map_or(baskets.bytes(), |b| b as usize);
    budget.saturating_sub(held).saturating_sub(budget / 16)
}

type Attempted = (Itemsets, Option<Vec<bool>>, Vec<Rule>);

fn attempt(
    baskets: &Baskets,
    opts: &MiningOptions,
    min_count: u64,
    budget: &Budget,
) -> Result<Attempted, Halt> {
    let params = MineParams {
        min_count: min_count.min(u64::from(u32::MAX)) as u32,
        max_len: opts.max_len,
        max_basket: opts.max_basket,
        threads: opts.threads,
    };
    let frequent = frequent_itemsets(baskets, &params, budget)?;
    if frequent.is_empty() || (opts.minconf.is_none() && opts.target == Target::Frequent) {
        return Ok((frequent, None, Vec::new()));
    }
    budget.charge(ItemsetIndex::bytes_for(frequent.len()) + 2 * frequent.len())?;
    let index = ItemsetIndex::build(&frequent);
    let selected = match opts.target {
        Target::Frequent => None,
        target => {
            let (closed, maximal) = closed_and_maximal(&frequent, &index, opts.threads);
            Some(if target == Target::Closed {
                closed
            } else {
                maximal
            })
        }
    };
    let rules = match opts.minconf {
        Some(c) => assoc::rules(&frequent, &index, c, opts.threads, budget)?,
        None => Vec::new(),
    };
    drop(index);
    Ok((frequent, selected, rules))
}

/// The settings' fractions as mining reads them.
impl RulesSettings {
    /// Validated at load, so the fallback is never taken.
    pub fn itemset_minsup(&self) -> Fraction {
        Fraction::from_f64(self.itemset_minsup).unwrap_or(Fraction::ONE)
    }

    pub fn min_confidence(&self) -> Fraction {
        Fraction::from_f64(self.min_confidence).unwrap_or(Fraction::ONE)
    }
}

/// The co-purchase evidence candidate generation uses, at the pipeline's defaults
/// ([`RulesSettings`]): every pair bought together `pair_min_count` times, and itemsets
/// up to `itemset_max_len` at `max(itemset_min_count, ⌈itemset_minsup × N⌉)` with
/// their rules.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub pairs: Pairs,
    pub itemsets: Mined,
}

pub fn evidence(
    baskets: &Baskets,
    settings: &RulesSettings,
    threads: usize,
    cancel: &CancelToken,
) -> Result<Evidence, Cancelled> {
    let budget = settings.memory_budget_mb.saturating_mul(1 << 20);
    let pairs = count_pairs(baskets, settings.pair_min_count, threads);
    cancel.check()?;
    let n = baskets.len() as u64;
    let min_count = settings
        .itemset_minsup()
        .ceil_times(n)
        .max(settings.itemset_min_count);
    let opts = MiningOptions {
        minsup: MinSupport::Count(min_count),
        minconf: Some(settings.min_confidence()),
        max_len: Some(settings.itemset_max_len),
        max_basket: (settings.max_basket > 0).then_some(settings.max_basket),
        target: Target::Frequent,
        budget_bytes: budget,
        budget_covers_process: false,
        threads,
    };
    Ok(Evidence {
        pairs,
        itemsets: mine_until(baskets, &opts, cancel)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(minsup: &str, budget: usize) -> MiningOptions {
        MiningOptions {
            minsup: minsup.parse().unwrap(),
            minconf: Some("0.5".parse().unwrap()),
            max_len: None,
            max_basket: None,
            target: Target::Frequent,
            budget_bytes: budget,
            budget_covers_process: true,
            threads: 2,
        }
    }

    #[test]
    fn an_exploding_threshold_is_raised_until_it_fits() {
        // 40 identical 24-item baskets: at count 2 every one of 2^24 subsets is frequent.
        let big: Vec<String> = (0..24).map(|i| format!("i{i}")).collect();
        let mut lists: Vec<Vec<String>> = vec![big; 40];
        lists.extend((0..2000).map(|i| vec![format!("i{}", i % 30), format!("j{}", i % 7)]));
        let b = Baskets::from_lists(lists);
        let mined = mine(&b, &opts("2", 8 << 20));
        let r = &mined.report;
        assert!(r.threshold_raised);
        assert!(!r.attempts.is_empty());
        assert_eq!(r.attempts[0].min_count, 2);
        assert!(
            r.min_count > 40,
            "the big baskets' subsets must stop being frequent"
        );
        assert!(r.budget_peak_bytes <= 8 << 20);
        // What was mined at the raised threshold is exact at that threshold.
        let exact = mine(&b, &opts(&r.min_count.to_string(), usize::MAX));
        assert_eq!(mined.frequent.len(), exact.frequent.len());
        assert_eq!(mined.rules.len(), exact.rules.len());
    }

    #[test]
    fn a_cancel_stops_mining_within_milliseconds() {
        // 40 identical 30-item baskets: 2^30 subsets at every threshold up to 40, so
        // mining runs attempt after attempt until the cancel.
        let big: Vec<String> = (0..30).map(|i| format!("i{i}")).collect();
        let b = Baskets::from_lists(vec![big; 40]);
        let mut o = opts("2", 256 << 20);
        o.budget_covers_process = false;
        let cancel = CancelToken::new();
        let started = std::time::Instant::now();
        let got = std::thread::scope(|s| {
            let mining = s.spawn(|| mine_until(&b, &o, &cancel).map(|m| m.frequent.len()));
            std::thread::sleep(std::time::Duration::from_millis(100));
            cancel.cancel();
            mining.join().unwrap()
        });
        assert_eq!(got, Err(Cancelled));
        let waited = started.elapsed().as_millis();
        assert!(waited < 600, "mining stopped {waited} ms after start");
    }

    #[test]
    fn a_budget_smaller_than_the_process_still_finishes() {
        let b = Baskets::from_lists([vec!["a", "b"], vec!["a", "b"], vec!["a"]]);
        let mined = mine(&b, &opts("1", 1));
        // Nothing fits, so the threshold rises past every count: no itemsets, no crash.
        assert_eq!(mined.report.min_count, 4);
        assert!(mined.frequent.is_empty() && mined.rules.is_empty());
    }

    #[test]
    fn closed_and_maximal_follow_their_definitions() {
        let b = Baskets::from_lists([vec!["a", "b", "c"], vec!["a", "b"], vec!["a"], vec!["c"]]);
        let mut o = opts("1", usize::MAX);
        o.target = Target::Closed;
        let closed = mine(&b, &o);
        let names = |m: &Mined| {
            let mut v: Vec<String> = m
                .itemsets()
                .map(|(_, items, c)| {
                    let mut l: Vec<&str> = items.iter().map(|&i| b.label(i)).collect();
                    l.sort();
                    format!("{}:{c}", l.join(""))
                })
                .collect();
            v.sort();
            v
        };
        // a:3, c:2, ab:2, abc:1 are closed; b (=ab), ac, bc (=abc) are not.
        assert_eq!(names(&closed), ["a:3", "ab:2", "abc:1", "c:2"]);
        o.target = Target::Maximal;
        assert_eq!(names(&mine(&b, &o)), ["abc:1"]);
    }
}
