//! Splitting index ranges over scoped threads. Rules and flags are cheap per item, so
//! chunks are claimed dynamically and results are put back in chunk order.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Chunks of at most this many indices; small enough to balance two cores.
const CHUNK: usize = 1 << 14;

/// Runs `work` on chunks of `0..len` over `threads` threads.
pub fn for_each_chunk(len: usize, threads: usize, work: impl Fn(Range<usize>) + Sync) {
    map_chunks(len, threads, work);
}

/// Runs `work` on chunks of `0..len` over `threads` threads; returns the results in
/// chunk order, whatever thread computed them.
pub fn map_chunks<T: Send>(
    len: usize,
    threads: usize,
    work: impl Fn(Range<usize>) -> T + Sync,
) -> Vec<T> {
    let chunks = len.div_ceil(CHUNK);
    let range = |c: usize| c * CHUNK..((c + 1) * CHUNK).min(len);
    let threads = threads.clamp(1, chunks.max(1));
    if threads == 1 {
        return (0..chunks).map(|c| work(range(c))).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let c = next.fetch_add(1, Ordering::Relaxed);
                        if c >= chunks {
                            return mine;
                        }
                        mine.push((c, work(range(c))));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    done.sort_unstable_by_key(|(c, _)| *c);
    done.into_iter().map(|(_, t)| t).collect()
}
