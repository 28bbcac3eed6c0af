//! A WHEP viewer's region and zone hint, for placement (`crate::cluster::locality`).
//!
//! Two sources, the first found wins:
//!
//! 1. The query parameters `region` and `zone` (`POST /whep/{room}?region=eu-west&zone=a`),
//!    set by the player. Taken from anyone: a hint only steers which edge serves the viewer,
//!    among edges any client may reach by posting to them directly (their URLs are in every
//!    redirect), so a false one gains a client nothing it could not have anyway.
//! 2. The headers `X-Cascade-Region` and `X-Cascade-Zone`, set by a geo load balancer in front
//!    of the nodes: read only on requests from `--trusted-proxies` peers, as `X-Forwarded-For`
//!    is (`crate::api::client_limits`), so that a header hint means the balancer's reading of
//!    where the client is, not whatever the client wrote.
//!
//! A malformed value (not a label value, `crate::cluster::locality::label`) is a
//! `400`; an empty one is no hint. A viewer redirected elsewhere follows the `Location`
//! straight to that node, past the balancer, so a hint that came in headers is carried into
//! the redirect's query string ([`Hint::redirect_query`]).

use crate::cluster::locality::Locality;
use crate::error::{Error, Result};
use axum::http::HeaderMap;

/// The header a geo load balancer puts the client's region in.
pub const REGION_HEADER: &str = "x-cascade-region";
/// The header a geo load balancer puts the client's zone in.
pub const ZONE_HEADER: &str = "x-cascade-zone";

/// A request's peer is one of `--trusted-proxies`: put in the request's extensions by the
/// offer gate (`crate::api::client_limits::gate`), so its hint headers count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FromTrustedProxy;

/// A viewer's hint and where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hint {
    /// The region and zone (both `None`: no hint).
    pub near: Locality,
    /// Whether it came from a trusted proxy's headers (not from the query).
    pub from_headers: bool,
}

impl Hint {
    /// Reads the hint of a WHEP request: its query string, else (from a trusted proxy only)
    /// its headers.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] for a malformed region or zone, naming which.
    pub fn read(query: Option<&str>, headers: &HeaderMap, trusted_proxy: bool) -> Result<Self> {
        let param = |name: &str| {
            query.unwrap_or("").split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (key == name).then_some(value)
            })
        };
        let (region, zone) = (param("region"), param("zone"));
        let from_headers = region.is_none() && zone.is_none() && trusted_proxy;
        let (region, zone) = if from_headers {
            (
                header(headers, REGION_HEADER)?,
                header(headers, ZONE_HEADER)?,
            )
        } else {
            (region, zone)
        };
        let near = Locality::parse(region, zone)
            .map_err(|m| Error::BadRequest(format!("placement hint: {m}")))?;
        let from_headers = from_headers && !near.is_empty();
        Ok(Self { near, from_headers })
    }

    /// The query string to redirect this viewer with: `query` as it came, plus the hint when
    /// it came from headers (which the node redirected to would not see).
    pub fn redirect_query(&self, query: Option<&str>) -> Option<String> {
        let mut parts: Vec<String> = query
            .filter(|q| !q.is_empty())
            .map(str::to_owned)
            .into_iter()
            .collect();
        if self.from_headers {
            let Locality { region, zone } = &self.near;
            parts.extend(region.iter().map(|r| format!("region={r}")));
            parts.extend(zone.iter().map(|z| format!("zone={z}")));
        }
        (!parts.is_empty()).then(|| parts.join("&"))
    }
}

/// The hint as a handler's argument: a malformed one answers `400` before the handler runs.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Hint {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let trusted = parts.extensions.get::<FromTrustedProxy>().is_some();
        Self::read(parts.uri.query(), &parts.headers, trusted).map_err(|e| e.into_response())
    }
}

/// A hint header's value; one that is not visible ASCII is malformed.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| Error::BadRequest(format!("placement hint: {name} is not text")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, axum::http::HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn the_query_wins_headers_count_only_from_a_trusted_proxy() {
        let none = HeaderMap::new();
        let h = Hint::read(Some("layer=low&region=eu-west&zone=a"), &none, false).unwrap();
        assert_eq!(h.near, Locality::parse(Some("eu-west"), Some("a")).unwrap());
        assert!(!h.from_headers);
        assert_eq!(
            h.redirect_query(Some("layer=low&region=eu-west&zone=a"))
                .as_deref(),
            Some("layer=low&region=eu-west&zone=a")
        );
        let geo = headers(&[(REGION_HEADER, b"us-east"), (ZONE_HEADER, b"b")]);
        // An untrusted peer's headers are ignored.
        assert_eq!(Hint::read(None, &geo, false).unwrap(), Hint::default());
        // A trusted proxy's count, and go along into a redirect.
        let h = Hint::read(Some("layer=low"), &geo, true).unwrap();
        assert_eq!(h.near, Locality::parse(Some("us-east"), Some("b")).unwrap());
        assert_eq!(
            h.redirect_query(Some("layer=low")).as_deref(),
            Some("layer=low&region=us-east&zone=b")
        );
        // The query still wins over them.
        let h = Hint::read(Some("region=eu-west"), &geo, true).unwrap();
        assert_eq!(h.near.region.as_deref(), Some("eu-west"));
        assert_eq!(h.near.zone, None);
        // No hint at all.
        let h = Hint::read(None, &none, true).unwrap();
        assert_eq!(h, Hint::default());
        assert_eq!(h.redirect_query(None), None);
        assert_eq!(Hint::read(Some("region="), &none, false).unwrap(), h);
    }

    #[test]
    fn malformed_hints_are_bad_requests_never_panics() {
        let none = HeaderMap::new();
        for q in [
            "region=-eu",
            "zone=a%20b",
            "region=-x",
            "region=a+b",
            "zone=%ff%fe",
            &format!("region={}", "r".repeat(200)),
        ] {
            let e = Hint::read(Some(q), &none, false).unwrap_err();
            assert!(matches!(e, Error::BadRequest(_)), "{q}: {e:?}");
        }
        let bad = headers(&[(REGION_HEADER, b"\xff\xfe")]);
        assert!(matches!(
            Hint::read(None, &bad, true),
            Err(Error::BadRequest(_))
        ));
        let bad = headers(&[(ZONE_HEADER, b"zone a")]);
        assert!(matches!(
            Hint::read(None, &bad, true),
            Err(Error::BadRequest(_))
        ));
        // Odd query strings that carry no hint are fine.
        for q in ["", "&&", "=", "region", "regionx=1", "layer=low&"] {
            let h = Hint::read(Some(q), &none, false);
            assert!(h.is_ok_and(|h| h.near.is_empty()), "{q}");
        }
    }
}
