//! The STUN and TURN servers a node tells its WHIP and WHEP clients about (RFC 9725 section
//! 4.6): `Link: <turn:host:3478?transport=tcp>; rel="ice-server"; username=...; credential=...;
//! credential-type="password"`, on the `201` of every offer and on `OPTIONS` of the endpoint
//! (what a client asks before it makes its offer, since the node takes no trickled candidates).
//!
//! A client on a network without UDP reaches the node through a TURN server over TCP or TLS.
//! TURN credentials are either one static pair (`--turn-username`, `--turn-password`) or, with
//! `--turn-secret`, minted per answer the way TURN servers' REST API expects (coturn's
//! `use-auth-secret`): the username is the expiry time in Unix seconds and `:cascade`, the
//! credential the Base64 HMAC-SHA1 of the username under the shared secret, so they expire by
//! themselves and the secret never leaves the node.

use base64::Engine;
use hmac::{Hmac, Mac};

/// How a TURN server is told who the client is.
#[derive(Clone, Default)]
pub enum TurnCredentials {
    /// None configured: only STUN servers may be announced.
    #[default]
    None,
    /// The same username and password for everyone.
    Static { username: String, password: String },
    /// Minted per answer from a secret shared with the TURN server, valid for `ttl_secs`.
    Rest { secret: Vec<u8>, ttl_secs: u64 },
}

impl std::fmt::Debug for TurnCredentials {
    // Not derived: passwords and secrets stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Static { username, .. } => write!(f, "Static({username}, <redacted>)"),
            Self::Rest { ttl_secs, .. } => write!(f, "Rest(<redacted>, ttl {ttl_secs} s)"),
        }
    }
}

/// The ICE servers announced to clients.
#[derive(Debug, Clone, Default)]
pub struct IceServers {
    urls: Vec<String>,
    credentials: TurnCredentials,
}

impl IceServers {
    /// Checks `urls` (`stun:`, `stuns:`, `turn:` or `turns:` URIs, RFC 7064/7065) against
    /// `credentials`: a TURN server needs credentials, and nothing may break the `Link` header.
    pub fn new(urls: Vec<String>, credentials: TurnCredentials) -> Result<Self, String> {
        for url in &urls {
            let scheme = url.split(':').next().unwrap_or_default();
            if !matches!(scheme, "stun" | "stuns" | "turn" | "turns")
                || url.len() <= scheme.len() + 1
            {
                return Err(format!(
                    "{url:?} is not a stun:, stuns:, turn: or turns: URI (e.g. turn:turn.example.com:3478?transport=tcp)"
                ));
            }
            if url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>\",;".contains(c))
            {
                return Err(format!(
                    "{url:?} holds a character a Link header cannot carry"
                ));
            }
            if scheme.starts_with("turn") && matches!(credentials, TurnCredentials::None) {
                return Err(format!(
                    "{url:?} is a TURN server: give --turn-secret, or --turn-username and --turn-password"
                ));
            }
        }
        Ok(Self { urls, credentials })
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// The `Link` header values for an answer given at `now_unix` (seconds).
    pub fn links(&self, now_unix: u64) -> Vec<String> {
        let turn = match &self.credentials {
            TurnCredentials::None => None,
            TurnCredentials::Static { username, password } => {
                Some((username.clone(), password.clone()))
            }
            TurnCredentials::Rest { secret, ttl_secs } => {
                Some(rest_credentials(secret, now_unix + ttl_secs))
            }
        };
        self.urls
            .iter()
            .map(|url| match (&turn, url.starts_with("turn")) {
                (Some((username, credential)), true) => format!(
                    "<{url}>; rel=\"ice-server\"; username=\"{}\"; credential=\"{}\"; \
                     credential-type=\"password\"",
                    quoted(username),
                    quoted(credential)
                ),
                _ => format!("<{url}>; rel=\"ice-server\""),
            })
            .collect()
    }
}

/// A TURN REST API username and credential valid until `expiry` (Unix seconds).
pub fn rest_credentials(secret: &[u8], expiry: u64) -> (String, String) {
    let username = format!("{expiry}:cascade");
    // HMAC takes a key of any length.
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

/// `s` inside a quoted-string (RFC 9110): backslash before `"` and `\`.
fn quoted(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_servers_need_nothing_and_turn_servers_need_credentials() {
        let stun =
            IceServers::new(vec!["stun:stun.example.net".into()], TurnCredentials::None).unwrap();
        assert_eq!(
            stun.links(0),
            ["<stun:stun.example.net>; rel=\"ice-server\""]
        );
        let e = IceServers::new(
            vec!["turn:turn.example.net?transport=tcp".into()],
            TurnCredentials::None,
        )
        .unwrap_err();
        assert!(e.contains("--turn-secret"), "{e}");
        for bad in [
            "http://x",
            "turn:",
            "turn:a b",
            "stun:x>; rel=evil",
            "turn:x,stun:y",
        ] {
            assert!(
                IceServers::new(vec![bad.into()], TurnCredentials::None).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn static_credentials_are_announced_quoted() {
        let s = IceServers::new(
            vec!["turn:t.example.net:3478?transport=udp".into()],
            TurnCredentials::Static {
                username: "u".into(),
                password: "p\"w".into(),
            },
        )
        .unwrap();
        assert_eq!(
            s.links(0),
            [
                "<turn:t.example.net:3478?transport=udp>; rel=\"ice-server\"; username=\"u\"; \
              credential=\"p\\\"w\"; credential-type=\"password\""
            ]
        );
        assert!(!format!("{s:?}").contains("p\"w"));
    }

    /// The TURN REST API's credential: Base64 HMAC-SHA1 of the username under the secret, as
    /// coturn computes it (`use-auth-secret`).
    #[test]
    fn rest_credentials_are_an_hmac_of_the_expiry() {
        let (username, credential) = rest_credentials(b"north", 1_700_000_000);
        assert_eq!(username, "1700000000:cascade");
        // echo -n 1700000000:cascade | openssl dgst -sha1 -hmac north -binary | base64
        assert_eq!(credential, "1uvpAyGDf5/TTtia2yeEz5Uwsgk=");
        let s = IceServers::new(
            vec!["turns:t.example.net:5349?transport=tcp".into()],
            TurnCredentials::Rest {
                secret: b"north".to_vec(),
                ttl_secs: 100,
            },
        )
        .unwrap();
        assert!(s.links(1_699_999_900)[0].contains("username=\"1700000000:cascade\""));
        assert!(!format!("{s:?}").contains("north"));
    }
}
