//! WHIP and WHEP signalling over HTTP: POST an SDP offer, follow a redirect to another node if
//! told, take the `201 Created` answer and session `Location`, DELETE it at the end.

use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Client, StatusCode, Url};
use std::time::Duration;

/// Redirects followed at most for one offer.
const MAX_REDIRECTS: usize = 4;

/// Why an offer got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("invalid URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("HTTP request to {url} failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: StatusCode,
        body: String,
    },
    #[error("{url} answered {status} without a usable Location header")]
    NoLocation { url: String, status: StatusCode },
    #[error("more than {MAX_REDIRECTS} redirects from {url}")]
    TooManyRedirects { url: String },
}

impl SignalError {
    /// A short, stable description for counting failures by kind.
    pub fn kind(&self) -> String {
        match self {
            SignalError::Url { .. } => "invalid URL".into(),
            SignalError::Http { source, .. } if source.is_timeout() => "HTTP timeout".into(),
            SignalError::Http { source, .. } if source.is_connect() => "HTTP connect error".into(),
            SignalError::Http { .. } => "HTTP error".into(),
            SignalError::Status { status, body, .. } => {
                let body: String = body.chars().take(80).collect();
                format!("HTTP {}: {body}", status.as_u16())
            }
            SignalError::NoLocation { .. } => "no Location header".into(),
            SignalError::TooManyRedirects { .. } => "too many redirects".into(),
        }
    }
}

/// An accepted offer.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The SDP answer.
    pub answer: String,
    /// The session's URL, for DELETE.
    pub location: Url,
    /// Redirects followed to get there.
    pub redirects: usize,
}

/// The HTTP client all signalling goes through: no proxy (the targets are local nodes), no
/// automatic redirects (we follow them ourselves, keeping the offer), bounded times; with
/// `token`, every request carries it as a bearer token (RFC 9725 §4.5).
pub fn client(token: Option<&str>) -> anyhow::Result<Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| anyhow::anyhow!("--token: not a valid HTTP header value"))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(Client::builder()
        .default_headers(headers)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()?)
}

pub fn parse_url(url: &str) -> Result<Url, SignalError> {
    Url::parse(url).map_err(|e| SignalError::Url {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

/// POSTs `offer` to `url` (a WHIP or WHEP endpoint), following 307/308 redirects.
pub async fn post_offer(client: &Client, url: Url, offer: &str) -> Result<Accepted, SignalError> {
    let mut url = url;
    for redirects in 0..=MAX_REDIRECTS {
        let response = client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/sdp")
            .body(offer.to_owned())
            .send()
            .await
            .map_err(|source| SignalError::Http {
                url: url.to_string(),
                source,
            })?;
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| url.join(v).ok());
        match status {
            StatusCode::CREATED => {
                let location = location.ok_or_else(|| SignalError::NoLocation {
                    url: url.to_string(),
                    status,
                })?;
                let answer = response.text().await.map_err(|source| SignalError::Http {
                    url: url.to_string(),
                    source,
                })?;
                return Ok(Accepted {
                    answer,
                    location,
                    redirects,
                });
            }
            StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => {
                url = location.ok_or_else(|| SignalError::NoLocation {
                    url: url.to_string(),
                    status,
                })?;
            }
            _ => {
                let body = response.text().await.unwrap_or_default();
                return Err(SignalError::Status {
                    url: url.to_string(),
                    status,
                    body: body.trim().chars().take(300).collect(),
                });
            }
        }
    }
    Err(SignalError::TooManyRedirects {
        url: url.to_string(),
    })
}

/// Ends a session (`DELETE` on its location). Errors are the caller's to report or ignore.
pub async fn delete(client: &Client, location: &Url) -> Result<StatusCode, SignalError> {
    client
        .delete(location.clone())
        .send()
        .await
        .map(|r| r.status())
        .map_err(|source| SignalError::Http {
            url: location.to_string(),
            source,
        })
}

/// Whether `url` names this machine (loopback): the load generator refuses anything else
/// unless told otherwise, so a typo cannot aim it at someone's server.
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3/whep/x",
            "http://localhost:1",
            "http://[::1]:9000/",
        ] {
            assert!(is_loopback(&parse_url(ok).unwrap()), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "http://[2001:db8::1]/",
            "http://192.168.1.1",
        ] {
            assert!(!is_loopback(&parse_url(bad).unwrap()), "{bad}");
        }
        assert!(parse_url("not a url").is_err());
    }
}
