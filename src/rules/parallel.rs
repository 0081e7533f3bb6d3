//! Scoped threads for the miners. Work is claimed dynamically (the cost of an item or
//! a chunk is uneven), and results are put back in a fixed order so that output does
//! not depend on the number of threads or on timing.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `work(t)` for t in `0..threads`, each on its own thread (inline when one), and
/// returns the results in `t` order. A panic in a worker is resumed here.
pub fn on_threads<T: Send>(threads: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if threads <= 1 {
        return vec![work(0)];
    }
    std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || work(t))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Runs `work(i)` for every i in `order` over `threads` threads, each claiming the next
/// index when done; returns (i, result) pairs sorted by i.
pub fn claim_each<T: Send>(
    order: &[usize],
    threads: usize,
    work: impl Fn(usize) -> T + Sync,
) -> Vec<(usize, T)> {
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = on_threads(threads.clamp(1, order.len().max(1)), |_| {
        let mut mine = Vec::new();
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            mine.push((i, work(i)));
        }
        mine
    })
    .into_iter()
    .flatten()
    .collect();
    done.sort_unstable_by_key(|(i, _)| *i);
    done
}

/// Chunks of at most this many indices; small enough to balance two cores.
const CHUNK: usize = 1 << 14;

/// Runs `work` on chunks of `0..len` over `threads` threads; returns the results in
/// chunk order.
pub fn map_chunks<T: Send>(
    len: usize,
    threads: usize,
    work: impl Fn(Range<usize>) -> T + Sync,
) -> Vec<T> {
    let chunks: Vec<usize> = (0..len.div_ceil(CHUNK)).collect();
    claim_each(&chunks, threads, |c| {
        work(c * CHUNK..((c + 1) * CHUNK).min(len))
    })
    .into_iter()
    .map(|(_, t)| t)
    .collect()
}

/// Runs `work` on chunks of `0..len` over `threads` threads.
pub fn for_each_chunk(len: usize, threads: usize, work: impl Fn(Range<usize>) + Sync) {
    map_chunks(len, threads, work);
}
