//! Cancellation of a run: one token per run, cheap to clone, checked between phases,
//! inside every CPU loop that can run long (as an atomic load) and raced against
//! every model call (dropping a request future aborts its HTTP call). The sync cores
//! (`index`, `rules`) take `&CancelToken` too: it is plain data, not a pipeline type.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

/// The run was cancelled; nothing of it was persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the run was cancelled")]
pub struct Cancelled;

/// The flag answers the checks in hot loops with one atomic load (the token's own
/// `is_cancelled` takes a lock); the token wakes the tasks awaiting a cancel.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    token: CancellationToken,
}

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// A token that is never cancelled (for callers with no cancel button).
    pub fn never() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancelled: `cancel.check()?` between steps.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// Cancels the token on Ctrl-C (SIGINT) for the rest of the process; needs a tokio
    /// runtime.
    pub fn cancel_on_interrupt(&self) {
        let token = self.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                token.cancel();
            }
        });
    }

    /// Resolves when the token is cancelled.
    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    /// Runs `work` unless the token is cancelled first; a cancel drops `work` (and
    /// with it any request in flight).
    pub async fn guard<T>(
        &self,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, Cancelled> {
        tokio::select! {
            biased;
            _ = self.token.cancelled() => Err(Cancelled),
            out = work => Ok(out),
        }
    }
}

/// The value of work run under [`CancelToken::never`], which cannot be cancelled: lets
/// a plain function share the body of its cancellable `_until` twin.
pub fn never_cancelled<T>(result: Result<T, Cancelled>) -> T {
    match result {
        Ok(value) => value,
        Err(Cancelled) => unreachable!("a token that is never cancelled was cancelled"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancel_stops_pending_work_and_checks() {
        let token = CancelToken::new();
        assert!(token.check().is_ok());
        let t = token.clone();
        let pending = tokio::spawn(async move {
            t.guard(tokio::time::sleep(std::time::Duration::from_secs(30)))
                .await
        });
        token.cancel();
        assert_eq!(pending.await.unwrap(), Err(Cancelled));
        assert_eq!(token.check(), Err(Cancelled));
        assert_eq!(CancelToken::never().guard(async { 7 }).await, Ok(7));
    }
}
