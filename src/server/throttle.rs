//! Failed authentications by client address: past [`MAX_FAILURES`] in a minute, an
//! address's further failing attempts get 429 for a minute. Only a token that is no
//! token of ours is counted here, so valid credentials are never refused by it, and
//! a caller behind a busy proxy is slowed only in guessing.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

tokio::task_local! {
    /// The address of the client whose request is being answered (`None` when the
    /// server was not given connection info).
    pub static CLIENT_IP: Option<IpAddr>;
}

/// Failed authentications an address may make in [`WINDOW`] before it waits.
pub const MAX_FAILURES: u32 = 50;
/// How long failures are counted together, and how long an address over them waits.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Past this many addresses, those with nothing left to count are dropped (at most once
/// a second: the sweep is over the whole map).
const SWEEP_ABOVE: usize = 4096;
/// Past this many, a new address is not counted: the memory stays bounded whatever the
/// number of addresses guessing.
const MAX_ADDRESSES: usize = 100_000;

/// The address failures are counted under: the client's, or one shared address when the
/// server runs without connection info (all callers then share one allowance, which
/// slows guessing as much and refuses no valid token).
pub fn client_ip() -> IpAddr {
    CLIENT_IP
        .try_with(|ip| *ip)
        .ok()
        .flatten()
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    /// When this window of counting started.
    since: Instant,
    count: u32,
    /// Set once the count went over: failing attempts wait until then.
    blocked_until: Option<Instant>,
}

impl Failures {
    fn new(now: Instant) -> Failures {
        Failures {
            since: now,
            count: 0,
            blocked_until: None,
        }
    }

    /// Whether it still says anything at `now` (a block running, or a window open).
    fn live(&self, now: Instant) -> bool {
        match self.blocked_until {
            Some(until) => now < until,
            None => now.duration_since(self.since) < WINDOW,
        }
    }
}

/// Failed authentications per address, in this process.
#[derive(Debug)]
pub struct FailedAuth {
    by_address: Mutex<HashMap<IpAddr, Failures>>,
    last_sweep: Mutex<Instant>,
}

impl Default for FailedAuth {
    fn default() -> Self {
        FailedAuth {
            by_address: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(Instant::now()),
        }
    }
}

impl FailedAuth {
    /// Counts one failed authentication from `ip` at `now`: `Some(wait)` when the
    /// address is over its allowance, and this attempt is to be answered 429.
    pub fn fail(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        // A panic elsewhere while holding the lock leaves counts that are still counts.
        let mut map = self
            .by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(&ip) {
            if map.len() >= SWEEP_ABOVE {
                self.sweep(&mut map, now);
            }
            if map.len() >= MAX_ADDRESSES {
                return None;
            }
        }
        let f = map.entry(ip).or_insert_with(|| Failures::new(now));
        if !f.live(now) {
            *f = Failures::new(now);
        }
        if let Some(until) = f.blocked_until {
            return Some(until.saturating_duration_since(now));
        }
        f.count = f.count.saturating_add(1);
        if f.count > MAX_FAILURES {
            // Once per block, not per refused attempt: a guesser would fill the log.
            tracing::warn!(client = %ip, failures = f.count, "too many failed authentications: this address's failing attempts get 429 for a minute");
            f.blocked_until = Some(now + WINDOW);
            return Some(WINDOW);
        }
        None
    }

    /// Drops the addresses with nothing left to count, at most once a second.
    fn sweep(&self, map: &mut HashMap<IpAddr, Failures>, now: Instant) {
        let mut last = self
            .last_sweep
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if now.duration_since(*last) < Duration::from_secs(1) {
            return;
        }
        *last = now;
        map.retain(|_, f| f.live(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_its_failures_waits_a_minute_and_others_do_not() {
        let auth = FailedAuth::default();
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(auth.fail(a, start), None, "failure {}", i + 1);
        }
        assert_eq!(auth.fail(a, start), Some(WINDOW));
        let later = start + Duration::from_secs(20);
        assert_eq!(auth.fail(a, later), Some(Duration::from_secs(40)));
        assert_eq!(
            auth.fail(b, later),
            None,
            "another address has its own count"
        );
        // The block over, counting starts again.
        let after = start + WINDOW + Duration::from_secs(1);
        assert_eq!(auth.fail(a, after), None);
    }

    #[test]
    fn failures_spread_over_more_than_a_minute_are_not_added_up() {
        let auth = FailedAuth::default();
        let a = IpAddr::from([10, 0, 0, 1]);
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert_eq!(auth.fail(a, start), None);
        }
        assert_eq!(auth.fail(a, start + WINDOW), None);
    }
}
