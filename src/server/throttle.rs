//! Failed authentications by client address: past [`MAX_FAILURES`] in a minute, an
//! address's further failing attempts get 429 for a minute. Only a token that is no
//! token of ours is counted here, so valid credentials are never refused by it, and
//! a caller behind a busy proxy is slowed only in guessing.
//!
//! An IPv6 client is counted by its /64 (one subscriber's network: it may pick any
//! address in it), an IPv4 client by its address (an IPv4-mapped IPv6 address is
//! that IPv4 address). Past [`MAX_ADDRESSES`] counted at once, the failures of every
//! address not counted yet are counted together, as one address: rotating addresses
//! does not escape the count, and the memory stays bounded.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
/// Past this many, a new address is counted in the shared overflow count.
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

/// What an address is counted by: an IPv4 address whole (an IPv4-mapped IPv6 one as
/// that IPv4 address), an IPv6 address by its /64.
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
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

    /// Counts one failure at `now`: the wait when over the allowance, and whether this
    /// failure is the one that went over it.
    fn add(&mut self, now: Instant) -> (Option<Duration>, bool) {
        if !self.live(now) {
            *self = Failures::new(now);
        }
        if let Some(until) = self.blocked_until {
            return (Some(until.saturating_duration_since(now)), false);
        }
        self.count = self.count.saturating_add(1);
        if self.count > MAX_FAILURES {
            self.blocked_until = Some(now + WINDOW);
            return (Some(WINDOW), true);
        }
        (None, false)
    }
}

/// The counts: per address, and one for every address that came once the map was full.
#[derive(Debug, Default)]
struct Counts {
    by_address: HashMap<IpAddr, Failures>,
    overflow: Option<Failures>,
}

/// Failed authentications per address, in this process.
#[derive(Debug)]
pub struct FailedAuth {
    counts: Mutex<Counts>,
    last_sweep: Mutex<Instant>,
}

impl Default for FailedAuth {
    fn default() -> Self {
        FailedAuth {
            counts: Mutex::new(Counts::default()),
            last_sweep: Mutex::new(Instant::now()),
        }
    }
}

impl FailedAuth {
    /// Counts one failed authentication from `ip` at `now`: `Some(wait)` when the
    /// address (or, past [`MAX_ADDRESSES`], every address not counted on its own) is
    /// over its allowance, and this attempt is to be answered 429.
    pub fn fail(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let key = counted_as(ip);
        // A panic elsewhere while holding the lock leaves counts that are still counts.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let Counts {
            by_address,
            overflow,
        } = &mut *counts;
        if !by_address.contains_key(&key) && by_address.len() >= SWEEP_ABOVE {
            self.sweep(by_address, now);
        }
        let shared = !by_address.contains_key(&key) && by_address.len() >= MAX_ADDRESSES;
        let failures = if shared {
            overflow.get_or_insert_with(|| Failures::new(now))
        } else {
            by_address.entry(key).or_insert_with(|| Failures::new(now))
        };
        let (wait, went_over) = failures.add(now);
        if went_over {
            // Once per block, not per refused attempt: a guesser would fill the log.
            if shared {
                tracing::warn!(client = %ip, addresses = MAX_ADDRESSES, "too many failed authentications from addresses past those counted one by one: their failing attempts get 429 for a minute");
            } else {
                tracing::warn!(client = %ip, counted_as = %key, failures = MAX_FAILURES + 1, "too many failed authentications: this address's failing attempts get 429 for a minute");
            }
        }
        wait
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

    /// Issue: past the cap, a new address was not counted at all, so an attacker
    /// rotating addresses was never slowed.
    #[test]
    fn past_the_address_cap_new_addresses_share_one_allowance() {
        let auth = FailedAuth::default();
        let start = Instant::now();
        let nth = |i: usize| IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i as u32));
        for i in 0..MAX_ADDRESSES {
            assert_eq!(auth.fail(nth(i), start), None);
        }
        // Each new address adds to one count, which blocks them together.
        for i in 0..MAX_FAILURES as usize {
            assert_eq!(auth.fail(nth(MAX_ADDRESSES + i), start), None, "new {i}");
        }
        let rotated = nth(MAX_ADDRESSES + MAX_FAILURES as usize);
        assert_eq!(auth.fail(rotated, start), Some(WINDOW));
        assert_eq!(auth.fail(nth(2 * MAX_ADDRESSES), start), Some(WINDOW));
        // An address counted on its own keeps its own allowance.
        assert_eq!(auth.fail(nth(0), start), None);
        // Once the counted ones have expired, the sweep makes room again: a new
        // address is counted on its own.
        let later = start + WINDOW + Duration::from_secs(2);
        assert_eq!(auth.fail(rotated, later), None);
        let counts = auth.counts.lock().unwrap();
        assert!(counts.by_address.contains_key(&rotated));
        assert!(counts.by_address.len() < MAX_ADDRESSES);
    }

    /// Issue: an IPv6 client has a /64 of addresses to pick from, one per attempt.
    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let auth = FailedAuth::default();
        let start = Instant::now();
        let in_64 = |host: u64| {
            IpAddr::V6(Ipv6Addr::from(
                (0x2001_0db8_0001_0002u128 << 64) | u128::from(host),
            ))
        };
        for i in 0..u64::from(MAX_FAILURES) {
            assert_eq!(auth.fail(in_64(i * 7919 + 1), start), None, "failure {i}");
        }
        assert_eq!(auth.fail(in_64(u64::MAX), start), Some(WINDOW));
        let next_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(
            auth.fail(next_64, start),
            None,
            "another /64 has its own count"
        );

        let v4 = IpAddr::from([192, 0, 2, 7]);
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert_eq!(auth.fail(v4, start), None);
        }
        assert_eq!(auth.fail(mapped, start), Some(WINDOW));
        // An IPv4 address is counted whole: its neighbour is another client.
        assert_eq!(auth.fail(IpAddr::from([192, 0, 2, 8]), start), None);
    }
}
