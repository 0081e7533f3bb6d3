//! Frequent itemsets, stored flat, and an index to find an itemset's count by content.

use std::sync::atomic::{AtomicBool, Ordering};

use super::hash::hash_items;
use super::parallel::for_each_chunk;

/// Itemsets with their counts. Within an itemset, items are in one canonical order
/// (descending frequency, ties by id), so any subset of it is stored in the same order
/// as the subsequence it is.
#[derive(Debug, Clone, Default)]
pub struct Itemsets {
    pub(super) items: Vec<u32>,
    pub(super) ends: Vec<usize>,
    pub(super) counts: Vec<u32>,
}

impl Itemsets {
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn items(&self, i: usize) -> &[u32] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.items[start..self.ends[i]]
    }

    pub fn count(&self, i: usize) -> u32 {
        self.counts[i]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u32], u32)> + '_ {
        (0..self.len()).map(|i| (self.items(i), self.counts[i]))
    }

    /// `by_size[k]` = number of itemsets of k items (`by_size[0]` is 0).
    pub fn by_size(&self) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut start = 0;
        for &end in &self.ends {
            let k = end - start;
            if sizes.len() <= k {
                sizes.resize(k + 1, 0);
            }
            sizes[k] += 1;
            start = end;
        }
        sizes
    }

    /// Heap bytes held, for the memory budget.
    pub fn bytes(&self) -> usize {
        self.items.capacity() * 4 + self.ends.capacity() * 8 + self.counts.capacity() * 4
    }

    /// The itemsets for which `keep` is true, in the same order.
    pub fn filter(&self, keep: &[bool]) -> Itemsets {
        let mut out = Itemsets::default();
        for (i, &k) in keep.iter().enumerate() {
            if k {
                out.push(self.items(i), self.counts[i]);
            }
        }
        out
    }

    pub(super) fn push(&mut self, items: &[u32], count: u32) {
        self.items.extend_from_slice(items);
        self.ends.push(self.items.len());
        self.counts.push(count);
    }

    /// Appends `other`, mapping its items through `map`.
    pub(super) fn append_mapped(&mut self, other: &Itemsets, map: &[u32]) {
        let base = self.items.len();
        self.items
            .extend(other.items.iter().map(|&r| map[r as usize]));
        self.ends.extend(other.ends.iter().map(|&e| e + base));
        self.counts.extend_from_slice(&other.counts);
    }
}

/// Open-addressing table from an itemset's content to its position in [`Itemsets`]:
/// four bytes a slot, where a map of boxed keys would copy every itemset.
pub struct ItemsetIndex<'a> {
    sets: &'a Itemsets,
    slots: Vec<u32>,
    mask: usize,
}

const EMPTY: u32 = u32::MAX;

impl<'a> ItemsetIndex<'a> {
    pub fn build(sets: &'a Itemsets) -> ItemsetIndex<'a> {
        let capacity = (sets.len() * 2).next_power_of_two().max(16);
        let mask = capacity - 1;
        let mut slots = vec![EMPTY; capacity];
        for i in 0..sets.len() {
            let mut slot = hash_items(sets.items(i)) as usize & mask;
            while slots[slot] != EMPTY {
                slot = (slot + 1) & mask;
            }
            slots[slot] = i as u32;
        }
        ItemsetIndex { sets, slots, mask }
    }

    /// Bytes the table itself holds.
    pub fn bytes_for(len: usize) -> usize {
        (len * 2).next_power_of_two().max(16) * 4
    }

    pub fn find(&self, items: &[u32]) -> Option<usize> {
        let mut slot = hash_items(items) as usize & self.mask;
        loop {
            let at = self.slots[slot];
            if at == EMPTY {
                return None;
            }
            if self.sets.items(at as usize) == items {
                return Some(at as usize);
            }
            slot = (slot + 1) & self.mask;
        }
    }

    /// Count of the itemset with exactly these items (in canonical order).
    pub fn count_of(&self, items: &[u32]) -> Option<u32> {
        self.find(items).map(|i| self.sets.count(i))
    }
}

/// Which frequent itemsets are closed (no superset has the same count) and maximal
/// (no superset is frequent). Checking supersets with one more item suffices: counts
/// only fall as items are added. Under a length limit, itemsets of the maximal length
/// have no mined supersets and count as maximal.
pub fn closed_and_maximal(
    sets: &Itemsets,
    index: &ItemsetIndex<'_>,
    threads: usize,
) -> (Vec<bool>, Vec<bool>) {
    let not_closed: Vec<AtomicBool> = (0..sets.len()).map(|_| AtomicBool::new(false)).collect();
    let not_maximal: Vec<AtomicBool> = (0..sets.len()).map(|_| AtomicBool::new(false)).collect();
    for_each_chunk(sets.len(), threads, |range| {
        let mut subset = Vec::new();
        for i in range {
            let items = sets.items(i);
            if items.len() < 2 {
                continue;
            }
            for skip in 0..items.len() {
                subset.clear();
                subset.extend_from_slice(&items[..skip]);
                subset.extend_from_slice(&items[skip + 1..]);
                if let Some(sub) = index.find(&subset) {
                    not_maximal[sub].store(true, Ordering::Relaxed);
                    if sets.count(sub) == sets.count(i) {
                        not_closed[sub].store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    });
    let closed = not_closed
        .iter()
        .map(|f| !f.load(Ordering::Relaxed))
        .collect();
    let maximal = not_maximal
        .iter()
        .map(|f| !f.load(Ordering::Relaxed))
        .collect();
    (closed, maximal)
}
