//! How many threads a stage may use.

/// What a `threads` setting means: that many, or every core when it is 0.
pub fn thread_count(threads: usize) -> usize {
    if threads > 0 {
        threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}
