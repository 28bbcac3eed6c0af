//! Per-client limits on WHIP and WHEP offers, so one client cannot take a node's capacity:
//!
//! - a request rate (`--max-requests-per-ip-per-sec`): a token bucket per client holding one
//!   second's worth of requests, refilled continuously; over it, `429` with `Retry-After`
//!   (when the next token is due);
//! - sessions not yet connected (`--max-pending-per-ip`): an offer answered counts until its
//!   session connects (ICE and DTLS done) or ends (the connect timeout closes one that never
//!   connects); over it, `429` with `Retry-After` (the connect timeout, by when one frees).
//!
//! The client is the socket's peer, or, when the peer is a trusted proxy (`--trusted-proxies`),
//! the address that proxy appended to `X-Forwarded-For` ([`client_ip`]): a header from anyone
//! else is ignored, since any client can send one. IPv6 clients are counted by their /64 (one
//! host usually holds a whole /64), IPv4-mapped IPv6 addresses as the IPv4 address.
//!
//! The bookkeeping is a small map behind a mutex, touched once per offer and once when its
//! session connects: never on the media path. Entries of clients with a full bucket and
//! nothing pending are dropped when the map grows.

use crate::rtc::session::SessionHandle;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Clients tracked at once; past it, idle entries are dropped, and a new client is refused
/// while every tracked one is busy.
const MAX_CLIENTS: usize = 65_536;

/// What the per-client limits allow (0 turns a limit off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientLimits {
    /// WHIP/WHEP offers per second per client (and as a burst).
    pub requests_per_sec: u32,
    /// Sessions per client answered but not yet connected.
    pub max_pending: u32,
    /// Proxies whose `X-Forwarded-For` entry names the client.
    pub trusted_proxies: Vec<IpNet>,
}

impl ClientLimits {
    /// Whether any limit applies.
    pub fn is_on(&self) -> bool {
        self.requests_per_sec > 0 || self.max_pending > 0
    }
}

/// Parses `--trusted-proxies`: networks (`10.0.0.0/8`) or single addresses (`192.0.2.7`).
///
/// # Errors
///
/// The first entry that is neither, named.
pub fn parse_proxies(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not an IP network (CIDR) or address"))
        })
        .collect()
}

/// IPv4-mapped IPv6 as IPv4, so a dual-stack listener sees one client as one address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// One `X-Forwarded-For` entry: an address, with or without a port (`[v6]:port`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<IpAddr>().ok()
        })
}

/// The client behind a request from `peer` carrying the `X-Forwarded-For` header values
/// `forwarded_for` (in order). Only a trusted peer's header counts; it is read from the right,
/// each entry having been appended by the hop that received the request from it, and the
/// first address that is not itself a trusted proxy is the client. An entry that is not an
/// address stops the walk at the last trusted hop (the client cannot be told, so the proxy
/// stands for it).
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], proxies: &[IpNet]) -> IpAddr {
    let mut client = canonical(peer);
    if !trusted(client, proxies) {
        return client;
    }
    for entry in forwarded_for.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Some(ip) = parse_entry(entry).map(canonical) else {
            return client;
        };
        client = ip;
        if !trusted(ip, proxies) {
            return ip;
        }
    }
    client
}

/// The key a client is counted under: its address, an IPv6 address's /64.
fn key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// A token bucket: `burst` tokens at most, refilled at `rate` per second; each request takes
/// one. Told the time, so it is tested without a clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at = self.at.max(now);
    }

    /// Takes a token; when there is none, how long until there is one.
    ///
    /// # Errors
    ///
    /// The wait until the next token.
    pub fn take(&mut self, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        self.refill(rate, burst, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }

    /// Whether the bucket has refilled completely (the client may be forgotten).
    pub fn is_full(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        self.refill(rate, burst, now);
        self.tokens >= burst
    }
}

/// Why an offer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the request rate; the next token is due after this.
    Rate(Duration),
    /// Too many of the client's sessions are not connected yet; one frees by this.
    Pending(Duration),
}

impl Refusal {
    /// When to try again.
    pub fn retry_after(&self) -> Duration {
        match self {
            Refusal::Rate(d) | Refusal::Pending(d) => *d,
        }
    }
}

#[derive(Debug)]
struct Client {
    bucket: TokenBucket,
    pending: u32,
}

/// The limits' state: each client's bucket and sessions pending.
#[derive(Debug)]
pub struct ClientLimiter {
    limits: ClientLimits,
    /// How long a session may take to connect: the longest a pending one is held.
    connect_timeout: Duration,
    clients: Mutex<HashMap<IpAddr, Client>>,
}

/// An offer let through: counts as one of its client's pending sessions until dropped (when
/// the session connects or ends, or the offer fails).
#[derive(Debug)]
pub struct PendingGuard {
    limiter: Option<Arc<ClientLimiter>>,
    key: IpAddr,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Some(limiter) = self.limiter.take() {
            let mut clients = limiter.lock();
            if let Some(client) = clients.get_mut(&self.key) {
                client.pending = client.pending.saturating_sub(1);
            }
        }
    }
}

impl ClientLimiter {
    pub fn new(limits: ClientLimits, connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            limits,
            connect_timeout,
            clients: Mutex::default(),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &ClientLimits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Client>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rate(&self) -> (f64, f64) {
        let rate = f64::from(self.limits.requests_per_sec);
        (rate, rate.max(1.0))
    }

    /// Lets an offer from `ip` through, or says why not.
    ///
    /// # Errors
    ///
    /// [`Refusal::Rate`] over the request rate, [`Refusal::Pending`] over the sessions pending.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<PendingGuard, Refusal> {
        if !self.limits.is_on() {
            return Ok(PendingGuard {
                limiter: None,
                key: ip,
            });
        }
        let key = key(ip);
        let (rate, burst) = self.rate();
        let mut clients = self.lock();
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&key) {
            clients.retain(|_, c| c.pending > 0 || !c.bucket.is_full(rate, burst, now));
            if clients.len() >= MAX_CLIENTS {
                return Err(Refusal::Rate(Duration::from_secs(1)));
            }
        }
        let client = clients.entry(key).or_insert_with(|| Client {
            bucket: TokenBucket::full(burst, now),
            pending: 0,
        });
        if self.limits.requests_per_sec > 0 {
            client
                .bucket
                .take(rate, burst, now)
                .map_err(Refusal::Rate)?;
        }
        if self.limits.max_pending > 0 {
            if client.pending >= self.limits.max_pending {
                return Err(Refusal::Pending(self.connect_timeout));
            }
            client.pending += 1;
            return Ok(PendingGuard {
                limiter: Some(self.clone()),
                key,
            });
        }
        Ok(PendingGuard { limiter: None, key })
    }

    /// Sessions of `ip`'s client answered and not yet connected.
    pub fn pending(&self, ip: IpAddr) -> u32 {
        self.lock().get(&key(ip)).map_or(0, |c| c.pending)
    }
}

/// The client an offer came from ([`client_ip`]), put in the request's extensions by [`gate`]
/// for the handlers' logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// A session a WHIP/WHEP answer started, put in the response's extensions by the handler: its
/// client's pending count ([`gate`]) is held until it connects or ends.
#[derive(Debug, Clone)]
pub struct SessionProgress {
    pub connected: tokio_util::sync::CancellationToken,
    pub finished: tokio_util::sync::CancellationToken,
}

impl SessionProgress {
    /// Marks `response` as having started `session`.
    pub fn attach(response: &mut axum::response::Response, session: &SessionHandle) {
        response.extensions_mut().insert(Self {
            connected: session.connected.clone(),
            finished: session.finished.clone(),
        });
    }
}

/// What [`gate`] holds: the limiter and the counters of what it refused.
#[derive(Debug)]
pub struct OfferGate {
    pub limiter: Arc<ClientLimiter>,
    pub refused: crate::obs::metrics::LimitedRequests,
}

/// Middleware on the HTTP router: every WHIP/WHEP offer (`POST /whip/{room}`, `/whep/{room}`)
/// passes the per-client limits first; a `429` with `Retry-After` answers one over them.
/// Requests served without connection info (in-process tests) are not limited.
pub async fn gate(
    axum::extract::State(gate): axum::extract::State<Arc<OfferGate>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::extract::ConnectInfo;
    let offer = request.method() == axum::http::Method::POST
        && crate::api::http::is_endpoint(request.uri().path());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let (Some(peer), true) = (peer, offer) else {
        return next.run(request).await;
    };
    let forwarded: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let proxies = &gate.limiter.limits().trusted_proxies;
    let client = client_ip(peer, &forwarded, proxies);
    if trusted(canonical(peer), proxies) {
        // A geo load balancer's placement hint headers count on this request.
        let marker = crate::api::locality_hint::FromTrustedProxy;
        request.extensions_mut().insert(marker);
    }
    let guard = match gate.limiter.admit(client, Instant::now()) {
        Ok(guard) => guard,
        Err(refusal) => {
            let counter = match refusal {
                Refusal::Rate(_) => &gate.refused.rate,
                Refusal::Pending(_) => &gate.refused.pending,
            };
            counter.inc();
            tracing::debug!(client = %client, ?refusal, path = request.uri().path(), "offer refused by the per-client limits");
            return too_many(refusal);
        }
    };
    request.extensions_mut().insert(ClientAddr(client));
    let response = next.run(request).await;
    if let Some(session) = response.extensions().get::<SessionProgress>().cloned() {
        tokio::spawn(async move {
            tokio::select! {
                _ = session.connected.cancelled() => {}
                _ = session.finished.cancelled() => {}
            }
            drop(guard);
        });
    }
    response
}

/// `429 Too Many Requests` with `Retry-After` (whole seconds, at least 1).
fn too_many(refusal: Refusal) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    let secs = refusal.retry_after().as_secs_f64().ceil().max(1.0) as u64;
    let (code, message) = match refusal {
        Refusal::Rate(_) => (
            "rate_limited",
            "too many WHIP/WHEP requests from this client; retry later",
        ),
        Refusal::Pending(_) => (
            "too_many_pending",
            "too many of this client's sessions have not connected yet; retry later",
        ),
    };
    let body = serde_json::json!({ "code": code, "message": message });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(2.0, t0);
        assert_eq!(b.take(2.0, 2.0, t0), Ok(()));
        assert_eq!(b.take(2.0, 2.0, t0), Ok(()));
        let wait = b.take(2.0, 2.0, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(b.take(2.0, 2.0, t1), Ok(()));
        assert!(b.take(2.0, 2.0, t1).is_err());
        // A long pause refills to the burst, no more.
        let t2 = t1 + Duration::from_secs(60);
        assert!(b.is_full(2.0, 2.0, t2));
        for _ in 0..2 {
            assert_eq!(b.take(2.0, 2.0, t2), Ok(()));
        }
        assert!(b.take(2.0, 2.0, t2).is_err());
        // Time going backwards (an earlier `now`) adds nothing.
        assert!(b.take(2.0, 2.0, t0).is_err());
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxies = parse_proxies(&["10.0.0.0/8".into(), "192.0.2.7".into()]).unwrap();
        let client = |peer: &str, xff: &[&str]| client_ip(ip(peer), xff, &proxies);
        // An untrusted peer's header is ignored: anyone can send one.
        assert_eq!(client("203.0.113.9", &["198.51.100.1"]), ip("203.0.113.9"));
        // A trusted proxy's last entry is the client; entries further left were sent by it.
        assert_eq!(
            client("10.1.2.3", &["1.1.1.1, 198.51.100.1"]),
            ip("198.51.100.1")
        );
        // Chains of trusted proxies are walked, across repeated headers too.
        assert_eq!(
            client("192.0.2.7", &["198.51.100.1, 10.9.9.9", "10.0.0.5"]),
            ip("198.51.100.1")
        );
        // Ports and brackets are accepted; IPv4-mapped IPv6 is IPv4.
        assert_eq!(
            client("10.0.0.1", &["198.51.100.1:4444"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            client("10.0.0.1", &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        assert_eq!(
            client("::ffff:10.0.0.1", &["::ffff:198.51.100.2"]),
            ip("198.51.100.2")
        );
        // No header, or garbage: the last trusted hop stands for the client.
        assert_eq!(client("10.0.0.1", &[]), ip("10.0.0.1"));
        assert_eq!(client("10.0.0.1", &["unknown"]), ip("10.0.0.1"));
        assert_eq!(
            client("10.0.0.1", &["1.1.1.1, garbage, 10.0.0.2"]),
            ip("10.0.0.2")
        );
        // Without trusted proxies, the peer.
        assert_eq!(client_ip(ip("10.0.0.1"), &["1.1.1.1"], &[]), ip("10.0.0.1"));
        assert!(parse_proxies(&["10.0.0.0/33".into()]).is_err());
        assert!(parse_proxies(&["proxy.local".into()]).is_err());
    }

    #[test]
    fn pending_sessions_are_counted_per_client_until_released() {
        let limits = ClientLimits {
            max_pending: 2,
            ..ClientLimits::default()
        };
        let limiter = ClientLimiter::new(limits, Duration::from_secs(5));
        let now = Instant::now();
        let a = limiter.admit(ip("198.51.100.1"), now).unwrap();
        let b = limiter.admit(ip("198.51.100.1"), now).unwrap();
        assert_eq!(
            limiter.admit(ip("198.51.100.1"), now).unwrap_err(),
            Refusal::Pending(Duration::from_secs(5))
        );
        // Another client is not affected; one /64 is one client.
        let _c = limiter.admit(ip("198.51.100.2"), now).unwrap();
        let _d = limiter.admit(ip("2001:db8:1:2::1"), now).unwrap();
        let _e = limiter.admit(ip("2001:db8:1:2::ffff"), now).unwrap();
        assert!(limiter.admit(ip("2001:db8:1:2::5"), now).is_err());
        assert!(limiter.admit(ip("2001:db8:1:3::5"), now).is_ok());
        drop(a);
        assert_eq!(limiter.pending(ip("198.51.100.1")), 1);
        let _f = limiter.admit(ip("198.51.100.1"), now).unwrap();
        drop(b);
        assert_eq!(limiter.pending(ip("198.51.100.1")), 1);
    }

    #[test]
    fn the_rate_refuses_with_the_wait_and_off_means_off() {
        let limits = ClientLimits {
            requests_per_sec: 2,
            ..ClientLimits::default()
        };
        let limiter = ClientLimiter::new(limits, Duration::from_secs(5));
        let now = Instant::now();
        for _ in 0..2 {
            limiter.admit(ip("198.51.100.1"), now).unwrap();
        }
        let refused = limiter.admit(ip("198.51.100.1"), now).unwrap_err();
        assert_eq!(refused, Refusal::Rate(Duration::from_millis(500)));
        assert!(limiter.admit(ip("198.51.100.2"), now).is_ok());
        let later = now + Duration::from_secs(1);
        assert!(limiter.admit(ip("198.51.100.1"), later).is_ok());

        let off = ClientLimiter::new(ClientLimits::default(), Duration::from_secs(5));
        for _ in 0..1000 {
            off.admit(ip("198.51.100.1"), now).unwrap();
        }
        assert_eq!(off.pending(ip("198.51.100.1")), 0);
    }
}
