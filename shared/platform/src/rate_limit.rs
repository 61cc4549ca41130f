//! Per-client rate limits: who the client is (its address, or the address a
//! trusted proxy forwarded), and a GCRA (a token bucket kept as one instant
//! per client) in a table of bounded size. Knows no HTTP framework and no
//! domain: callers pass the peer's address, the `X-Forwarded-For` values and
//! the time.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use slog::{Logger, debug, info};

use foundation::config::{ConfigError, Env};

/// Clients remembered at most by one limiter: about 4 MiB. Past it, the
/// idle ones are forgotten first (they hold a full bucket: forgetting them
/// changes nothing), then those closest to a full bucket.
pub const MAX_CLIENTS: usize = 65_536;

/// The fastest and slowest rates and the largest burst a setting may ask
/// for (below one an hour, a burst's interval outgrows what `Instant`
/// arithmetic takes; no limit needs it).
const MAX_PER_SECOND: f64 = 1_000_000.0;
const MIN_PER_SECOND: f64 = 1.0 / 3600.0;
const MAX_BURST: u32 = 1_000_000;

/// How many requests a client may make: `per_second` on average, `burst`
/// at once after a pause.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

/// A rate limit setting: a [`Rate`] per client, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateLimit {
    Off,
    PerClient(Rate),
}

/// Reads a rate limit from `rate_var` (`off`, or requests per second,
/// minute or hour per client: `10`, `10/s`, `600/min`, `1000/h`) and
/// `burst_var` (requests at once after a pause; by default two seconds'
/// worth, at least 1). Unset or blank: `default`.
pub fn rate_limit(
    env: &dyn Env,
    rate_var: &'static str,
    burst_var: &'static str,
    default: RateLimit,
) -> Result<RateLimit, ConfigError> {
    let burst = match read(env, burst_var) {
        None => None,
        Some(value) => match value.parse::<u32>() {
            Ok(n) if (1..=MAX_BURST).contains(&n) => Some(n),
            _ => {
                return Err(ConfigError {
                    var: burst_var,
                    reason: format!("expected a whole number of requests from 1 to {MAX_BURST}"),
                    value,
                });
            }
        },
    };
    let Some(value) = read(env, rate_var) else {
        return Ok(match (default, burst) {
            (RateLimit::PerClient(rate), Some(burst)) => {
                RateLimit::PerClient(Rate { burst, ..rate })
            }
            (default, _) => default,
        });
    };
    if value.eq_ignore_ascii_case("off") {
        return Ok(RateLimit::Off);
    }
    let per_second = parse_rate(&value).ok_or_else(|| ConfigError {
        var: rate_var,
        reason: format!(
            "expected off, or requests per client as a positive number per second, minute or hour (10, 10/s, 600/min, 1000/h), from 1/h to {MAX_PER_SECOND}/s"
        ),
        value: value.clone(),
    })?;
    Ok(RateLimit::PerClient(Rate {
        per_second,
        burst: burst.unwrap_or_else(|| default_burst(per_second)),
    }))
}

/// Two seconds' worth of requests, at least one.
fn default_burst(per_second: f64) -> u32 {
    (per_second * 2.0).ceil().clamp(1.0, f64::from(MAX_BURST)) as u32
}

fn parse_rate(value: &str) -> Option<f64> {
    let (count, unit) = value.split_once('/').unwrap_or((value, "s"));
    let seconds = match unit.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        _ => return None,
    };
    let count: f64 = count.trim().parse().ok()?;
    let per_second = count / seconds;
    (count.is_finite() && (MIN_PER_SECOND..=MAX_PER_SECOND).contains(&per_second))
        .then_some(per_second)
}

fn read(env: &dyn Env, var: &str) -> Option<String> {
    env.get(var)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// An address range, `10.0.0.0/8` or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
        let network = network.to_canonical();
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {bits}"))?,
        };
        let cidr = Self { network, prefix };
        if mask(network, prefix) != network {
            return Err(format!(
                "{text:?} has bits set past its prefix; did you mean {}/{prefix}?",
                mask(network, prefix)
            ));
        }
        Ok(cidr)
    }

    fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// No proxy is trusted: the client is always the peer.
    pub fn none() -> Self {
        Self::default()
    }

    /// Proxies from a comma-separated list of addresses and CIDR ranges.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(Cidr::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    /// Who sent a request that came from `peer` with the `X-Forwarded-For`
    /// header values `forwarded` (in the order received): the right-most
    /// address not of a trusted proxy, walking from the peer leftwards
    /// through the header only as long as the hop is trusted. Whatever a
    /// client writes in the header itself is left of its own address and
    /// never reached. An entry that is not an address ends the walk at the
    /// trusted proxy that forwarded it.
    pub fn client<'a>(&self, peer: IpAddr, forwarded: impl IntoIterator<Item = &'a str>) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        let hops: Vec<&str> = forwarded
            .into_iter()
            .flat_map(|value| value.split(','))
            .collect();
        for hop in hops.into_iter().rev() {
            match parse_hop(hop) {
                Some(ip) => client = ip,
                None => break,
            }
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(hop)
                .parse::<IpAddr>()
        })
        .ok()?;
    Some(ip.to_canonical())
}

/// Reads `var`: a comma-separated list of addresses and CIDR ranges; unset
/// or blank, none.
pub fn trusted_proxies(env: &dyn Env, var: &'static str) -> Result<TrustedProxies, ConfigError> {
    let Some(value) = read(env, var) else {
        return Ok(TrustedProxies::none());
    };
    TrustedProxies::parse(&value).map_err(|reason| ConfigError {
        var,
        reason: format!(
            "{reason}; expected a comma-separated list of IP addresses and CIDR ranges, e.g. 10.0.0.0/8,192.0.2.7"
        ),
        value: value.clone(),
    })
}

/// What a client is limited as: its IPv4 address, or its IPv6 /64 (a host
/// usually has a whole /64 to choose addresses from).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        v4 @ IpAddr::V4(_) => v4,
        v6 @ IpAddr::V6(_) => mask(v6, 64),
    }
}

/// An address as it may be logged: its IPv4 /24 or IPv6 /48, which tells
/// a network from another without naming a person's machine.
pub fn truncated(ip: IpAddr) -> String {
    match ip.to_canonical() {
        v4 @ IpAddr::V4(_) => format!("{}/24", mask(v4, 24)),
        v6 @ IpAddr::V6(_) => format!("{}/48", mask(v6, 48)),
    }
}

/// A request over its client's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// When the client may send again.
    pub retry_after: Duration,
}

impl Refused {
    /// [`Refused::retry_after`] in whole seconds, rounded up, at least 1:
    /// what `Retry-After` says.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs();
        let rounded = if self.retry_after.subsec_nanos() > 0 {
            secs + 1
        } else {
            secs
        };
        rounded.max(1)
    }
}

/// A [`Rate`] per client, each client's state one instant (GCRA's
/// theoretical arrival time: when its bucket is full again), in a table
/// of at most `max_clients` entries. Thread-safe; cheap when uncontended.
#[derive(Debug)]
pub struct Limiter {
    interval: Duration,
    tolerance: Duration,
    max_clients: usize,
    clients: Mutex<HashMap<IpAddr, Instant>>,
    refused: AtomicU64,
}

impl Limiter {
    pub fn new(rate: Rate, max_clients: usize) -> Self {
        let interval = Duration::from_secs_f64(1.0 / rate.per_second);
        Self {
            interval,
            tolerance: interval * rate.burst.saturating_sub(1),
            max_clients: max_clients.max(1),
            clients: Mutex::default(),
            refused: AtomicU64::new(0),
        }
    }

    /// Takes one request of `client` at `now`, or refuses it (and counts
    /// the refusal) when the client is over its rate.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Refused> {
        let key = client_key(client);
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let full_again = clients.get(&key).copied().filter(|t| *t > now);
        let waited = full_again.map_or(Duration::ZERO, |t| t - now);
        if waited > self.tolerance {
            drop(clients);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Refused {
                retry_after: waited - self.tolerance,
            });
        }
        if full_again.is_none() && !clients.contains_key(&key) && clients.len() >= self.max_clients
        {
            self.make_room(&mut clients, now);
        }
        clients.insert(key, full_again.unwrap_or(now) + self.interval);
        Ok(())
    }

    /// Forgets the clients whose bucket is full again; if that frees less
    /// than a tenth of the table, then those closest to a full bucket too,
    /// so that the next sweep is a tenth of the table's inserts away (each
    /// request then costs O(1) on average, whatever a flood of new
    /// addresses does).
    fn make_room(&self, clients: &mut HashMap<IpAddr, Instant>, now: Instant) {
        clients.retain(|_, full_again| *full_again > now);
        let keep = self.max_clients - self.max_clients.div_ceil(10);
        if clients.len() > keep {
            let mut by_time: Vec<(Instant, IpAddr)> =
                clients.iter().map(|(ip, t)| (*t, *ip)).collect();
            let evict = by_time.len() - keep;
            by_time.select_nth_unstable(evict - 1);
            for (_, ip) in &by_time[..evict] {
                clients.remove(ip);
            }
        }
        if clients.capacity() > 4 * clients.len().max(16) {
            clients.shrink_to(2 * clients.len());
        }
    }

    /// Clients remembered now.
    pub fn clients(&self) -> usize {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Requests refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// A rate limit per client, as a handler checks it: who the client is (the
/// peer, or the address its trusted proxies forwarded) and whether it is
/// over its rate. With the limit off, every request passes and nothing is
/// remembered.
#[derive(Debug)]
pub struct ClientLimit {
    limiter: Option<Limiter>,
    proxies: TrustedProxies,
    log: Logger,
}

impl ClientLimit {
    /// `what` names the limit in the log (`"order intake"`).
    pub fn new(
        limit: RateLimit,
        proxies: TrustedProxies,
        what: &'static str,
        log: &Logger,
    ) -> Self {
        let log = log.new(slog::o!("limit" => what));
        match limit {
            RateLimit::Off => info!(log, "rate limit off"),
            RateLimit::PerClient(rate) => info!(log, "rate limit per client";
                "per_second" => rate.per_second, "burst" => rate.burst,
                "trusted_proxies" => proxies.0.len()),
        }
        Self {
            limiter: match limit {
                RateLimit::Off => None,
                RateLimit::PerClient(rate) => Some(Limiter::new(rate, MAX_CLIENTS)),
            },
            proxies,
            log,
        }
    }

    /// Takes one request from `peer` (unknown: all such requests share one
    /// limit) with the `X-Forwarded-For` values `forwarded`, or refuses it.
    pub fn check<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Refused> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let client = self.proxies.client(peer, forwarded);
        limiter
            .check(client, Instant::now())
            .inspect_err(|refused| {
                // At debug: a flood would otherwise fill the log. The address
                // truncated: enough to tell networks apart.
                debug!(self.log, "refused: over the rate limit";
                "client" => truncated(client), "retry_after_s" => refused.retry_after_secs());
            })
    }

    /// Requests refused so far.
    pub fn refused(&self) -> u64 {
        self.limiter.as_ref().map_or(0, Limiter::refused)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn rate(per_second: f64, burst: u32) -> Rate {
        Rate { per_second, burst }
    }

    #[test]
    fn a_client_gets_its_burst_then_one_request_per_interval() {
        // Arrange: 2 per second, burst 3.
        let limiter = Limiter::new(rate(2.0, 3), 16);
        let client = ip("192.0.2.1");
        let t0 = Instant::now();

        // Act
        let burst: Vec<_> = (0..4).map(|_| limiter.check(client, t0)).collect();
        let too_soon = limiter.check(client, t0 + Duration::from_millis(400));
        let in_time = limiter.check(client, t0 + Duration::from_millis(500));
        let again = limiter.check(client, t0 + Duration::from_millis(500));

        // Assert
        assert_eq!(burst[..3], [Ok(()), Ok(()), Ok(())]);
        assert_eq!(
            burst[3],
            Err(Refused {
                retry_after: Duration::from_millis(500)
            })
        );
        assert_eq!(
            too_soon,
            Err(Refused {
                retry_after: Duration::from_millis(100)
            })
        );
        assert_eq!(in_time, Ok(()));
        assert!(again.is_err());
        assert_eq!(limiter.refused(), 3);
    }

    #[test]
    fn after_a_pause_the_whole_burst_is_back_and_no_more() {
        let limiter = Limiter::new(rate(1.0, 2), 16);
        let client = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..2 {
            limiter.check(client, t0).unwrap();
        }

        let later = t0 + Duration::from_secs(3600);
        let answers: Vec<bool> = (0..3)
            .map(|_| limiter.check(client, later).is_ok())
            .collect();

        assert_eq!(answers, [true, true, false]);
    }

    #[test]
    fn clients_are_limited_apart_and_an_ipv6_client_by_its_slash_64() {
        let limiter = Limiter::new(rate(1.0, 1), 16);
        let t0 = Instant::now();
        limiter.check(ip("192.0.2.1"), t0).unwrap();
        limiter.check(ip("2001:db8:1:2::1"), t0).unwrap();

        assert!(limiter.check(ip("192.0.2.2"), t0).is_ok());
        assert!(limiter.check(ip("::ffff:192.0.2.1"), t0).is_err());
        assert!(limiter.check(ip("2001:db8:1:2:ffff::9"), t0).is_err());
        assert!(limiter.check(ip("2001:db8:1:3::1"), t0).is_ok());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        let after = |ms| {
            Refused {
                retry_after: Duration::from_millis(ms),
            }
            .retry_after_secs()
        };

        assert_eq!(
            [after(1), after(999), after(1000), after(1001)],
            [1, 1, 1, 2]
        );
        assert_eq!(after(0), 1);
    }

    #[test]
    fn a_flood_of_new_addresses_never_grows_the_table_past_its_cap() {
        // Arrange: a table of 100 with 10 clients over their limit.
        let limiter = Limiter::new(rate(1.0, 1), 100);
        let t0 = Instant::now();
        let busy: Vec<IpAddr> = (0..10).map(|i| ip(&format!("198.51.100.{i}"))).collect();
        for client in &busy {
            limiter.check(*client, t0).unwrap();
        }

        // Act: 10,000 new addresses, each once, within 100 ms.
        for i in 0..10_000u32 {
            let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            let now = t0 + Duration::from_micros(10 * u64::from(i));
            assert!(limiter.check(client, now).is_ok(), "a new client is taken");
            assert!(limiter.clients() <= 100, "after {i}: {}", limiter.clients());
        }

        // Assert: a client forgotten in the flood gets a fresh bucket (the
        // cap fails open, never refusing an innocent); once the flood is
        // idle, the next sweep (when the table is full again) forgets it all.
        let after_flood = t0 + Duration::from_millis(100);
        assert!(limiter.check(busy[0], after_flood).is_ok());
        let later = t0 + Duration::from_secs(10);
        let room = 100 - limiter.clients();
        for i in 0..=room {
            limiter
                .check(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i as u32)), later)
                .unwrap();
        }
        assert_eq!(limiter.clients(), room + 1, "only the clients active now");
    }

    #[test]
    fn idle_clients_are_forgotten_before_busy_ones() {
        // Arrange: a table of 10, full: 1 busy client, 9 that went idle.
        let limiter = Limiter::new(rate(1.0, 1), 10);
        let t0 = Instant::now();
        let busy = ip("192.0.2.200");
        for i in 0..9 {
            limiter.check(ip(&format!("192.0.2.{i}")), t0).unwrap();
        }
        let t1 = t0 + Duration::from_secs(2);
        limiter.check(busy, t1).unwrap();

        // Act: a new client at the same instant.
        limiter.check(ip("203.0.113.1"), t1).unwrap();

        // Assert: the busy one is still remembered, and still limited.
        assert_eq!(limiter.clients(), 2);
        assert!(limiter.check(busy, t1).is_err());
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7").unwrap();

        let direct = proxies.client(ip("203.0.113.5"), ["198.51.100.1"]);
        let via_proxy = proxies.client(ip("10.1.2.3"), ["198.51.100.1"]);
        let via_two = proxies.client(ip("10.1.2.3"), ["198.51.100.1, 192.0.2.7"]);
        let no_header = proxies.client(ip("10.1.2.3"), []);

        assert_eq!(
            direct,
            ip("203.0.113.5"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(via_proxy, ip("198.51.100.1"));
        assert_eq!(via_two, ip("198.51.100.1"));
        assert_eq!(no_header, ip("10.1.2.3"));
    }

    #[test]
    fn what_a_client_writes_in_the_header_is_never_believed() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();

        // The client at 198.51.100.1 sent "X-Forwarded-For: 1.2.3.4, 10.9.9.9";
        // the proxy appended its address.
        let client = proxies.client(ip("10.1.2.3"), ["1.2.3.4, 10.9.9.9", "198.51.100.1"]);

        assert_eq!(client, ip("198.51.100.1"));
    }

    #[test]
    fn a_malformed_entry_ends_the_walk_at_the_proxy_that_forwarded_it() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();

        assert_eq!(proxies.client(ip("10.1.2.3"), ["unknown"]), ip("10.1.2.3"));
        assert_eq!(
            proxies.client(ip("10.1.2.3"), ["198.51.100.1, garbage, 10.4.4.4"]),
            ip("10.4.4.4")
        );
        assert_eq!(
            proxies.client(ip("10.1.2.3"), ["198.51.100.1:5555"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            proxies.client(ip("10.1.2.3"), ["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_ranges() {
        let proxies = TrustedProxies::parse("127.0.0.1").unwrap();

        assert!(proxies.contains(ip("::ffff:127.0.0.1")));
        assert_eq!(
            proxies.client(ip("::ffff:127.0.0.1"), ["198.51.100.1"]),
            ip("198.51.100.1")
        );
        assert!(!proxies.contains(ip("::1")));
    }

    #[test]
    fn rate_settings_are_read_with_their_units_and_default_burst() {
        let read = |rate: &str, burst: &str| {
            let env = HashMap::from([("RATE", rate), ("BURST", burst)]);
            rate_limit(&env, "RATE", "BURST", RateLimit::Off)
        };

        assert_eq!(read("off", "").unwrap(), RateLimit::Off);
        assert_eq!(read(" OFF ", "5").unwrap(), RateLimit::Off);
        assert_eq!(read("", "").unwrap(), RateLimit::Off);
        assert_eq!(
            read("10", "").unwrap(),
            RateLimit::PerClient(rate(10.0, 20))
        );
        assert_eq!(
            read("10/s", "3").unwrap(),
            RateLimit::PerClient(rate(10.0, 3))
        );
        assert_eq!(
            read("30/min", "").unwrap(),
            RateLimit::PerClient(rate(0.5, 1))
        );
        assert_eq!(
            read("7200/h", "").unwrap(),
            RateLimit::PerClient(rate(2.0, 4))
        );
    }

    #[test]
    fn the_default_keeps_its_rate_and_takes_a_burst_set_alone() {
        let default = RateLimit::PerClient(rate(10.0, 20));
        let env = HashMap::from([("BURST", "50")]);

        assert_eq!(
            rate_limit(&env, "RATE", "BURST", default).unwrap(),
            RateLimit::PerClient(rate(10.0, 50))
        );
    }

    #[test]
    fn bad_rate_settings_name_their_variable() {
        for (rate, burst, var) in [
            ("0", "", "RATE"),
            ("-1", "", "RATE"),
            ("ten", "", "RATE"),
            ("10/day", "", "RATE"),
            ("NaN", "", "RATE"),
            ("inf", "", "RATE"),
            ("2000000", "", "RATE"),
            ("1e-300", "", "RATE"),
            ("0.5/h", "", "RATE"),
            ("10", "0", "BURST"),
            ("10", "1.5", "BURST"),
            ("off", "lots", "BURST"),
        ] {
            let env = HashMap::from([("RATE", rate), ("BURST", burst)]);

            let error = rate_limit(&env, "RATE", "BURST", RateLimit::Off).unwrap_err();

            assert_eq!(error.var, var, "{rate:?} {burst:?}: {error}");
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_and_ranges_and_bad_ones_name_the_variable() {
        let read = |value: &str| {
            trusted_proxies(
                &HashMap::from([("TRUSTED_PROXIES", value)]),
                "TRUSTED_PROXIES",
            )
        };

        assert!(read("").unwrap().is_empty());
        let proxies = read("10.0.0.0/8, 192.0.2.7 ,fd00::/8").unwrap();
        assert!(proxies.contains(ip("10.255.0.1")));
        assert!(proxies.contains(ip("192.0.2.7")));
        assert!(!proxies.contains(ip("192.0.2.8")));
        assert!(proxies.contains(ip("fd12::1")));
        assert!(!proxies.contains(ip("fe80::1")));
        for bad in ["edge", "10.0.0.0/33", "10.0.0.1/8", "::1/129", "10.0.0.0/x"] {
            let error = read(bad).unwrap_err();
            assert_eq!(error.var, "TRUSTED_PROXIES", "{bad}");
        }
        assert!(
            read("10.0.0.1/8")
                .unwrap_err()
                .reason
                .contains("did you mean 10.0.0.0/8")
        );
    }

    #[test]
    fn logged_addresses_are_truncated() {
        assert_eq!(truncated(ip("198.51.100.77")), "198.51.100.0/24");
        assert_eq!(truncated(ip("2001:db8:1:2::77")), "2001:db8:1::/48");
    }
}
