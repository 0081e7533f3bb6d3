//! FP-Growth over an array-based FP-tree.
//!
//! Items are ranked by descending frequency and each basket becomes the ascending list
//! of its frequent items' ranks. Sorting those lists lexicographically lets the tree be
//! built with a stack and no child lookups: baskets sharing a prefix are adjacent, so a
//! new basket only descends from the deepest node it shares with the one before. Nodes
//! are numbered in that (pre)order, which keeps each item's nodes, and the prefix paths
//! above them, in lexicographic order too: a conditional tree's paths come out sorted
//! unless dropping infrequent items reorders them.
//!
//! The conditional trees of the top tree's items are independent, so threads claim
//! them, most expensive first, and results are put back in rank order: the output is
//! the same for any number of threads.

use super::baskets::Baskets;
use super::budget::{Budget, Halt};
use super::itemsets::Itemsets;
use super::parallel::claim_each;

/// What to mine.
#[derive(Debug, Clone, Copy)]
pub struct MineParams {
    pub min_count: u32,
    /// Longest itemset to report; `None` = no limit.
    pub max_len: Option<usize>,
    /// Baskets with more distinct items than this are left out; `None` = none.
    pub max_basket: Option<usize>,
    pub threads: usize,
}

/// All frequent itemsets of the baskets that `params.max_basket` keeps.
pub fn frequent_itemsets(
    baskets: &Baskets,
    params: &MineParams,
    budget: &Budget,
) -> Result<Itemsets, Halt> {
    let min = params.min_count.max(1);
    let kept = |b: &[u32]| params.max_basket.is_none_or(|cap| b.len() <= cap);

    let mut counts = vec![0u32; baskets.item_count()];
    for basket in baskets.iter().filter(|b| kept(b)) {
        for &i in basket {
            counts[i as usize] += 1;
        }
    }
    let mut rank_to_item: Vec<u32> = (0..counts.len() as u32)
        .filter(|&i| counts[i as usize] >= min)
        .collect();
    rank_to_item.sort_unstable_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
    let mut item_to_rank = vec![u32::MAX; counts.len()];
    for (rank, &item) in rank_to_item.iter().enumerate() {
        item_to_rank[item as usize] = rank as u32;
    }
    let n_frequent = rank_to_item.len();
    if n_frequent == 0 {
        return Ok(Itemsets::default());
    }

    let tree = {
        let mut flat = Vec::new();
        let mut paths = Vec::new();
        for basket in baskets.iter().filter(|b| kept(b)) {
            let start = flat.len();
            flat.extend(
                basket
                    .iter()
                    .map(|&i| item_to_rank[i as usize])
                    .filter(|&r| r != u32::MAX),
            );
            if flat.len() > start {
                flat[start..].sort_unstable();
                paths.push(Path::new(start, flat.len() - start, 1));
            }
        }
        let scratch = flat.capacity() * 4 + paths.capacity() * 12;
        budget.charge(scratch)?;
        sort_paths(&flat, &mut paths);
        let tree = FpTree::build(n_frequent, &flat, &paths);
        budget.release(scratch);
        tree
    };
    budget.charge(tree.bytes())?;

    // Cost of an item's conditional base: the length of all the paths above its nodes.
    let mut depth = vec![0u32; tree.item.len()];
    for node in 1..tree.item.len() {
        depth[node] = depth[tree.parent[node] as usize] + 1;
    }
    let mut order: Vec<usize> = (0..n_frequent).collect();
    let cost = |x: usize| -> u64 {
        tree.nodes(x)
            .iter()
            .map(|&n| u64::from(depth[n as usize]))
            .sum()
    };
    let costs: Vec<u64> = (0..n_frequent).map(cost).collect();
    order.sort_unstable_by_key(|&x| (std::cmp::Reverse(costs[x]), x));
    drop(depth);

    let top_labels: Vec<u32> = (0..n_frequent as u32).collect();
    let max_len = params.max_len.unwrap_or(usize::MAX).max(1);
    let parts = claim_each(&order, params.threads, |x| {
        let mut miner = Miner {
            min,
            max_len,
            budget,
            out: Sink::new(budget),
            prefix: Vec::new(),
        };
        miner.item(&tree, &top_labels, x).map(|()| miner.out.blocks)
    });
    // Once the budget is exceeded, every item still to go stops at its first itemset.
    let parts: Vec<(usize, Vec<Itemsets>)> = parts
        .into_iter()
        .map(|(x, mined)| mined.map(|blocks| (x, blocks)))
        .collect::<Result<_, _>>()?;

    // Each block is freed once copied, so the copy adds no more than a block to what
    // the blocks were charged (pages of `all` become resident as they are written).
    let blocks = || parts.iter().flat_map(|(_, b)| b);
    let mut all = Itemsets::default();
    all.items
        .reserve_exact(blocks().map(|b| b.items.len()).sum());
    all.ends.reserve_exact(blocks().map(|b| b.len()).sum());
    all.counts.reserve_exact(blocks().map(|b| b.len()).sum());
    for block in parts.into_iter().flat_map(|(_, b)| b) {
        all.append_mapped(&block, &rank_to_item);
    }
    budget.release(tree.bytes());
    Ok(all)
}

/// A weighted path: `len` items of a flat buffer from `start`.
#[derive(Debug, Clone, Copy)]
struct Path {
    start: u32,
    len: u32,
    weight: u32,
}

impl Path {
    fn new(start: usize, len: usize, weight: u32) -> Path {
        Path {
            start: start as u32,
            len: len as u32,
            weight,
        }
    }

    fn of<'f>(&self, flat: &'f [u32]) -> &'f [u32] {
        &flat[self.start as usize..(self.start + self.len) as usize]
    }
}

fn sort_paths(flat: &[u32], paths: &mut [Path]) {
    if !paths.is_sorted_by(|a, b| a.of(flat) <= b.of(flat)) {
        paths.sort_unstable_by(|a, b| a.of(flat).cmp(b.of(flat)));
    }
}

/// An FP-tree over local items `0..n`; node 0 is the root.
struct FpTree {
    item: Vec<u32>,
    count: Vec<u32>,
    parent: Vec<u32>,
    /// Item `i`'s nodes are `by_item[first[i]..first[i + 1]]`, in node order.
    first: Vec<u32>,
    by_item: Vec<u32>,
    support: Vec<u32>,
}

impl FpTree {
    /// Builds the tree of lexicographically sorted paths over items `0..n_items`.
    fn build(n_items: usize, flat: &[u32], paths: &[Path]) -> FpTree {
        let mut item = vec![u32::MAX];
        let mut count = vec![0u32];
        let mut parent = vec![0u32];
        let mut stack: Vec<u32> = Vec::new();
        let mut prev: &[u32] = &[];
        for p in paths {
            let path = p.of(flat);
            let common = prev.iter().zip(path).take_while(|(a, b)| a == b).count();
            stack.truncate(common);
            for &node in &stack {
                count[node as usize] += p.weight;
            }
            for &it in &path[common..] {
                let id = item.len() as u32;
                parent.push(stack.last().copied().unwrap_or(0));
                item.push(it);
                count.push(p.weight);
                stack.push(id);
            }
            prev = path;
        }

        let mut first = vec![0u32; n_items + 1];
        for &it in &item[1..] {
            first[it as usize + 1] += 1;
        }
        for i in 0..n_items {
            first[i + 1] += first[i];
        }
        let mut fill = first.clone();
        let mut by_item = vec![0u32; item.len() - 1];
        let mut support = vec![0u32; n_items];
        for node in 1..item.len() {
            let it = item[node] as usize;
            by_item[fill[it] as usize] = node as u32;
            fill[it] += 1;
            support[it] += count[node];
        }
        FpTree {
            item,
            count,
            parent,
            first,
            by_item,
            support,
        }
    }

    fn n_items(&self) -> usize {
        self.support.len()
    }

    fn nodes(&self, item: usize) -> &[u32] {
        &self.by_item[self.first[item] as usize..self.first[item + 1] as usize]
    }

    /// One path from the root: then every subset's count is its deepest node's.
    fn is_chain(&self) -> bool {
        (1..self.parent.len()).all(|n| self.parent[n] as usize == n - 1)
    }

    fn bytes(&self) -> usize {
        (self.item.capacity()
            + self.count.capacity()
            + self.parent.capacity()
            + self.first.capacity()
            + self.by_item.capacity()
            + self.support.capacity())
            * 4
    }

    /// The tree of item `x`'s prefix paths, keeping the items frequent among them.
    /// Returns the tree and its items' labels (global ranks).
    fn conditional(&self, x: usize, labels: &[u32], min: u32) -> Option<(FpTree, Vec<u32>)> {
        let mut counts = vec![0u32; x];
        for &node in self.nodes(x) {
            let w = self.count[node as usize];
            let mut p = self.parent[node as usize] as usize;
            while p != 0 {
                counts[self.item[p] as usize] += w;
                p = self.parent[p] as usize;
            }
        }
        let mut remap = vec![u32::MAX; x];
        let mut child_labels = Vec::new();
        for (i, &c) in counts.iter().enumerate() {
            if c >= min {
                remap[i] = child_labels.len() as u32;
                child_labels.push(labels[i]);
            }
        }
        if child_labels.is_empty() {
            return None;
        }
        let mut flat = Vec::new();
        let mut paths = Vec::with_capacity(self.nodes(x).len());
        for &node in self.nodes(x) {
            let start = flat.len();
            let mut p = self.parent[node as usize] as usize;
            while p != 0 {
                let r = remap[self.item[p] as usize];
                if r != u32::MAX {
                    flat.push(r);
                }
                p = self.parent[p] as usize;
            }
            if flat.len() > start {
                flat[start..].reverse();
                paths.push(Path::new(
                    start,
                    flat.len() - start,
                    self.count[node as usize],
                ));
            }
        }
        sort_paths(&flat, &mut paths);
        Some((
            FpTree::build(child_labels.len(), &flat, &paths),
            child_labels,
        ))
    }
}

/// Itemsets as they are found, in blocks that never grow: a growing vector would leave
/// each smaller copy behind in the allocator, memory the budget never saw. A block is
/// charged when it is allocated; blocks start small (most items yield a handful of
/// itemsets) and double up to a fixed size.
struct Sink<'b> {
    blocks: Vec<Itemsets>,
    budget: &'b Budget,
}

const FIRST_BLOCK_SETS: usize = 64;
const MAX_BLOCK_SETS: usize = 1 << 16;
/// Item slots per itemset slot in a block.
const ITEMS_PER_SET: usize = 8;

impl<'b> Sink<'b> {
    fn new(budget: &'b Budget) -> Sink<'b> {
        Sink {
            blocks: Vec::new(),
            budget,
        }
    }

    fn emit(&mut self, ranks: &[u32], count: u32) -> Result<(), Halt> {
        let full = self.blocks.last().is_none_or(|b| {
            b.counts.len() == b.counts.capacity()
                || b.items.len() + ranks.len() > b.items.capacity()
        });
        if full {
            let sets = self.blocks.last().map_or(FIRST_BLOCK_SETS, |b| {
                (b.counts.capacity() * 2).min(MAX_BLOCK_SETS)
            });
            let items = (sets * ITEMS_PER_SET).max(ranks.len());
            self.budget.charge(items * 4 + sets * 12)?;
            self.blocks.push(Itemsets {
                items: Vec::with_capacity(items),
                ends: Vec::with_capacity(sets),
                counts: Vec::with_capacity(sets),
            });
        }
        let Some(block) = self.blocks.last_mut() else {
            return Ok(());
        };
        let start = block.items.len();
        block.push(ranks, count);
        block.items[start..].sort_unstable();
        Ok(())
    }
}

struct Miner<'b> {
    min: u32,
    max_len: usize,
    budget: &'b Budget,
    out: Sink<'b>,
    /// Global ranks of the itemset being extended.
    prefix: Vec<u32>,
}

impl Miner<'_> {
    /// Reports prefix ∪ {x} and everything that extends it within x's conditional tree.
    fn item(&mut self, tree: &FpTree, labels: &[u32], x: usize) -> Result<(), Halt> {
        self.budget.check()?;
        self.prefix.push(labels[x]);
        self.out.emit(&self.prefix, tree.support[x])?;
        if self.prefix.len() < self.max_len
            && x > 0
            && let Some((child, child_labels)) = tree.conditional(x, labels, self.min)
        {
            let bytes = child.bytes();
            self.budget.charge(bytes)?;
            let mined = self.tree(&child, &child_labels);
            self.budget.release(bytes);
            mined?;
        }
        self.prefix.pop();
        Ok(())
    }

    fn tree(&mut self, tree: &FpTree, labels: &[u32]) -> Result<(), Halt> {
        if tree.is_chain() {
            return self.chain(tree, labels, 1);
        }
        for x in (0..tree.n_items()).rev() {
            self.item(tree, labels, x)?;
        }
        Ok(())
    }

    /// Every subset of a single path, with the count of its deepest node.
    fn chain(&mut self, tree: &FpTree, labels: &[u32], from: usize) -> Result<(), Halt> {
        for node in from..tree.item.len() {
            self.prefix.push(labels[tree.item[node] as usize]);
            self.out.emit(&self.prefix, tree.count[node])?;
            if self.prefix.len() < self.max_len {
                self.chain(tree, labels, node + 1)?;
            }
            self.prefix.pop();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Every itemset with its count, by brute force over all subsets of each basket.
    fn brute_force(baskets: &[Vec<u32>], min: u32, max_len: usize) -> BTreeMap<Vec<u32>, u32> {
        let mut counts: BTreeMap<Vec<u32>, u32> = BTreeMap::new();
        for b in baskets {
            let mut b = b.clone();
            b.sort_unstable();
            b.dedup();
            for mask in 1u32..(1 << b.len()) {
                let set: Vec<u32> = (0..b.len())
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| b[i])
                    .collect();
                if set.len() <= max_len {
                    *counts.entry(set).or_default() += 1;
                }
            }
        }
        counts.retain(|_, c| *c >= min);
        counts
    }

    fn to_baskets(baskets: &[Vec<u32>]) -> Baskets {
        Baskets::from_lists(
            baskets
                .iter()
                .map(|b| b.iter().map(|i| i.to_string()).collect::<Vec<_>>()),
        )
    }

    fn mined(
        baskets: &[Vec<u32>],
        min: u32,
        max_len: Option<usize>,
        threads: usize,
    ) -> BTreeMap<Vec<u32>, u32> {
        let b = to_baskets(baskets);
        let params = MineParams {
            min_count: min,
            max_len,
            max_basket: None,
            threads,
        };
        let sets = frequent_itemsets(&b, &params, &Budget::new(usize::MAX)).unwrap();
        sets.iter()
            .map(|(items, c)| {
                let mut labels: Vec<u32> =
                    items.iter().map(|&i| b.label(i).parse().unwrap()).collect();
                labels.sort_unstable();
                (labels, c)
            })
            .collect()
    }

    fn random_baskets(seed: u64, n: usize, items: u32, max_len: usize) -> Vec<Vec<u32>> {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..n)
            .map(|_| {
                let len = 1 + (next() as usize % max_len);
                // Skewed towards low ids, so that some items are frequent.
                (0..len)
                    .map(|_| {
                        ((next() % u64::from(items)) * (next() % u64::from(items))
                            / u64::from(items)) as u32
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_random_baskets() {
        for seed in 1..=20 {
            let baskets = random_baskets(seed, 200, 14, 9);
            for min in [1, 3, 10, 40] {
                let want = brute_force(&baskets, min, usize::MAX);
                assert_eq!(mined(&baskets, min, None, 1), want, "seed {seed} min {min}");
                assert_eq!(mined(&baskets, min, None, 2), want, "seed {seed} min {min}");
            }
            let want = brute_force(&baskets, 2, 3);
            assert_eq!(
                mined(&baskets, 2, Some(3), 2),
                want,
                "seed {seed} max_len 3"
            );
        }
    }

    #[test]
    fn output_does_not_depend_on_threads() {
        let baskets = random_baskets(7, 2_000, 40, 12);
        let b = to_baskets(&baskets);
        let run = |threads| {
            let params = MineParams {
                min_count: 5,
                max_len: None,
                max_basket: None,
                threads,
            };
            let s = frequent_itemsets(&b, &params, &Budget::new(usize::MAX)).unwrap();
            (s.items, s.ends, s.counts)
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn a_small_budget_stops_the_attempt() {
        let baskets = random_baskets(3, 2_000, 40, 12);
        let b = to_baskets(&baskets);
        let params = MineParams {
            min_count: 2,
            max_len: None,
            max_basket: None,
            threads: 2,
        };
        assert_eq!(
            frequent_itemsets(&b, &params, &Budget::new(100_000)).unwrap_err(),
            Halt::OverBudget
        );
    }

    #[test]
    fn the_basket_cap_leaves_long_baskets_out() {
        let baskets = [vec![1, 2], vec![1, 2], vec![1, 2, 3, 4, 5]];
        let b = to_baskets(&baskets);
        let params = MineParams {
            min_count: 1,
            max_len: None,
            max_basket: Some(4),
            threads: 1,
        };
        let s = frequent_itemsets(&b, &params, &Budget::new(usize::MAX)).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.counts.iter().max(), Some(&2));
    }
}
