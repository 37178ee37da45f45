//! Failed logins, slowed per client address.
//!
//! Every wrong token or login code costs its address one token of a small
//! bucket ([`BURST`] of them, refilled at [`REFILL_PER_SEC`]). Once the
//! bucket runs dry, the address is refused outright (429, with
//! `Retry-After`, the credential not even looked at) for a pause, and each
//! further failure pauses it again for twice as long ([`FIRST_PAUSE`] up to
//! [`MAX_PAUSE`]) until it signs in or stays quiet for ten minutes: a
//! mistyping operator gets a few tries a second, a guesser a try a minute.
//! Other addresses are not touched, and a browser already signed in (its
//! session cookie) is never refused.
//!
//! Memory is bounded: at most [`MAX_ADDRESSES`] buckets are kept (the idle
//! ones go first), and IPv6 addresses share one bucket per /64, since
//! anyone holding one address of a /64 usually holds all of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures an address may make at once.
pub const BURST: f64 = 5.0;
/// Failures an address regains per second.
pub const REFILL_PER_SEC: f64 = 2.0;
/// The pause after the bucket first runs dry.
pub const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause.
pub const MAX_PAUSE: Duration = Duration::from_secs(60);
/// Buckets kept at most.
pub const MAX_ADDRESSES: usize = 4096;
/// An address that failed nothing for this long starts over.
const FORGIVE_AFTER: Duration = Duration::from_secs(600);

/// Who a bucket belongs to: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(u128);

impl From<IpAddr> for Client {
    fn from(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(v4) => Client(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client(u128::from(u32::from(v4))),
                None => Client((u128::from(v6) >> 64) << 64 | 1 << 32),
            },
        }
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// How many times the bucket ran dry (the pause doubles each time).
    strikes: u32,
    blocked_until: Option<Instant>,
    /// The last failure: a long quiet forgives the strikes.
    failed_at: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            tokens: BURST,
            last: now,
            strikes: 0,
            blocked_until: None,
            failed_at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let gained = now.saturating_duration_since(self.last).as_secs_f64() * REFILL_PER_SEC;
        self.tokens = (self.tokens + gained).min(BURST);
        self.last = now;
        if now.saturating_duration_since(self.failed_at) >= FORGIVE_AFTER {
            self.strikes = 0;
        }
    }

    /// Full, not paused, no strikes: nothing worth remembering.
    fn idle(&self, now: Instant) -> bool {
        let mut probe = self.clone();
        probe.refill(now);
        probe.tokens >= BURST && probe.strikes == 0 && self.blocked_until.is_none_or(|u| u <= now)
    }
}

/// The buckets of every address that failed lately.
pub struct Throttle {
    buckets: Mutex<HashMap<Client, Bucket>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new()
    }
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle {
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `client` may present a credential now; if not, how long it
    /// must wait.
    pub fn check(&self, client: Client, now: Instant) -> Result<(), Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match buckets.get(&client).and_then(|b| b.blocked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// `client` presented a wrong credential. Returns the pause it now
    /// serves, if this failure emptied its bucket.
    pub fn failed(&self, client: Client, now: Instant) -> Option<Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(&client) && buckets.len() >= MAX_ADDRESSES {
            make_room(&mut buckets, now);
        }
        let bucket = buckets.entry(client).or_insert_with(|| Bucket::new(now));
        bucket.refill(now);
        bucket.failed_at = now;
        // Once struck out, every failure (until a long quiet or a sign-in)
        // pauses the address again.
        if bucket.strikes == 0 {
            bucket.tokens -= 1.0;
            if bucket.tokens >= 0.0 {
                return None;
            }
        }
        // Pause, twice as long as last time.
        let pause = FIRST_PAUSE
            .saturating_mul(1u32 << bucket.strikes.min(16))
            .min(MAX_PAUSE);
        bucket.strikes = bucket.strikes.saturating_add(1);
        bucket.tokens = 0.0;
        bucket.blocked_until = Some(now + pause);
        Some(pause)
    }

    /// `client` signed in: its strikes are forgotten.
    pub fn succeeded(&self, client: Client) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets.remove(&client);
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.buckets.lock().map_or(0, |b| b.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Frees room for a new address: the idle buckets go; if none is idle, the
/// tenth that failed longest ago (an attacker with many addresses loses
/// its oldest, never the memory bound).
fn make_room(buckets: &mut HashMap<Client, Bucket>, now: Instant) {
    buckets.retain(|_, b| !b.idle(now));
    if buckets.len() < MAX_ADDRESSES {
        return;
    }
    let mut ages: Vec<(Instant, Client)> = buckets.iter().map(|(c, b)| (b.failed_at, *c)).collect();
    ages.sort_unstable_by_key(|(at, _)| *at);
    for (_, client) in ages.into_iter().take(MAX_ADDRESSES / 10 + 1) {
        buckets.remove(&client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(last: u8) -> Client {
        Client::from(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    #[test]
    fn a_few_failures_pass_then_the_address_waits_longer_each_time() {
        let throttle = Throttle::new();
        let t0 = Instant::now();
        let a = v4(1);
        for _ in 0..5 {
            assert_eq!(throttle.check(a, t0), Ok(()));
            assert_eq!(throttle.failed(a, t0), None);
        }
        assert_eq!(throttle.failed(a, t0), Some(Duration::from_secs(1)));
        assert_eq!(throttle.check(a, t0), Err(Duration::from_secs(1)));
        // Another address is not touched.
        assert_eq!(throttle.check(v4(2), t0), Ok(()));
        // After the pause, one try, then a pause twice as long.
        let t1 = t0 + Duration::from_millis(1000);
        assert_eq!(throttle.check(a, t1), Ok(()));
        assert_eq!(throttle.failed(a, t1), Some(Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(throttle.check(a, t2), Ok(()));
        assert_eq!(throttle.failed(a, t2), Some(Duration::from_secs(4)));
        // Up to a minute, no more.
        let mut t = t2;
        let mut pause = Duration::from_secs(4);
        for _ in 0..20 {
            t += pause;
            pause = throttle.failed(a, t).unwrap_or_default();
        }
        assert_eq!(pause, MAX_PAUSE);
        // Ten quiet minutes forgive.
        let later = t + pause + Duration::from_secs(600);
        assert_eq!(throttle.failed(a, later), None);
        // A sign-in forgives.
        throttle.succeeded(a);
        assert_eq!(throttle.check(a, t), Ok(()));
    }

    #[test]
    fn a_sustained_guesser_gets_about_two_a_second_at_first() {
        let throttle = Throttle::new();
        let t0 = Instant::now();
        let a = v4(9);
        let mut let_through = 0;
        // 5,000 tries spread over 10 s.
        for i in 0..5000u64 {
            let now = t0 + Duration::from_millis(i * 2);
            if throttle.check(a, now).is_ok() {
                let_through += 1;
                throttle.failed(a, now);
            }
        }
        assert!((5..=20).contains(&let_through), "{let_through}");
    }

    #[test]
    fn ipv6_shares_a_bucket_per_64_and_mapped_ipv4_is_ipv4() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(Ipv6Addr::LOCALHOST);
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        assert_eq!(Client::from(IpAddr::V6(a)), Client::from(IpAddr::V6(b)));
        assert_ne!(Client::from(IpAddr::V6(a)), Client::from(IpAddr::V6(c)));
        let mapped = Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped();
        assert_eq!(Client::from(IpAddr::V6(mapped)), v4(1));
        // An IPv6 /64 never collides with an IPv4 address.
        assert_ne!(
            Client::from(IpAddr::V6("::".parse().unwrap_or(Ipv6Addr::LOCALHOST))),
            Client::from(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        );
    }

    #[test]
    fn memory_stays_bounded_under_many_addresses() {
        let throttle = Throttle::new();
        let t0 = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 * 3) {
            let client = Client::from(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
            for _ in 0..7 {
                throttle.failed(client, t0);
            }
        }
        assert!(throttle.len() <= MAX_ADDRESSES, "{}", throttle.len());
        // The newest guesser is still held back.
        let last = Client::from(IpAddr::V4(Ipv4Addr::from(
            0x0a00_0000 + MAX_ADDRESSES as u32 * 3 - 1,
        )));
        assert!(throttle.check(last, t0).is_err());
    }
}
