//! The memory budget of one mining attempt. Mining charges what it keeps (the FP-tree,
//! conditional trees while they live, itemsets and rules as they are produced); when a
//! charge would pass the limit, the attempt stops and the caller raises the threshold.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The attempt went over its memory budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget;

#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    exceeded: AtomicBool,
}

impl Budget {
    pub fn new(limit_bytes: usize) -> Budget {
        Budget {
            limit: limit_bytes,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            exceeded: AtomicBool::new(false),
        }
    }

    /// Charges `bytes`; fails once this or another thread has passed the limit.
    pub fn charge(&self, bytes: usize) -> Result<(), OverBudget> {
        let now = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
        if now > self.limit {
            self.exceeded.store(true, Ordering::Relaxed);
        }
        self.check()
    }

    pub fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Fails once any thread has passed the limit, so that all threads stop early.
    pub fn check(&self) -> Result<(), OverBudget> {
        if self.exceeded.load(Ordering::Relaxed) {
            Err(OverBudget)
        } else {
            Ok(())
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The most charged at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}
