//! The memory budget of one mining attempt. Mining charges what it keeps (the FP-tree,
//! conditional trees while they live, itemsets and rules as they are produced); when a
//! charge would pass the limit, the attempt stops and the caller raises the threshold.
//! The budget also carries the run's cancel token: every thread already asks it at
//! each charge and each conditional tree, which is where a cancel is noticed too.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::cancel::CancelToken;

/// Why an attempt stopped before the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// It went over its memory budget: raise the threshold and try again.
    OverBudget,
    /// The run was cancelled: stop.
    Cancelled,
}

#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    exceeded: AtomicBool,
    cancel: CancelToken,
}

impl Budget {
    pub fn new(limit_bytes: usize) -> Budget {
        Budget::with_cancel(limit_bytes, CancelToken::never())
    }

    pub fn with_cancel(limit_bytes: usize, cancel: CancelToken) -> Budget {
        Budget {
            limit: limit_bytes,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            exceeded: AtomicBool::new(false),
            cancel,
        }
    }

    /// Charges `bytes`; fails once this or another thread has passed the limit.
    pub fn charge(&self, bytes: usize) -> Result<(), Halt> {
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

    /// Fails once any thread has passed the limit, so that all threads stop early, or
    /// once the run is cancelled.
    pub fn check(&self) -> Result<(), Halt> {
        if self.cancel.is_cancelled() {
            Err(Halt::Cancelled)
        } else if self.exceeded.load(Ordering::Relaxed) {
            Err(Halt::OverBudget)
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
