//! Who may publish and watch: bearer tokens on WHIP and WHEP (RFC 9725 §4.5).
//!
//! With `--auth-secret` set, a WHIP request (the `POST` to the endpoint and the `DELETE` of its
//! session) needs `Authorization: Bearer <JWT>`: a token signed with that secret (HS256) whose
//! claims name the room (or `*` for any) and grant `publish`, and that has not expired (`exp`).
//! With `--auth-viewers` too, WHEP requests need one that grants `subscribe` (or `publish`).
//! A platform signs a token per stream and hands it to the encoder (OBS's WHIP "Bearer
//! Token") or the player page; every node of a cluster shares the secret, so a token works on
//! whichever node placement sends the client to. Without a secret everyone may publish and
//! watch, as before (the local demo).
//!
//! A missing or invalid token (bad signature, expired, not a JWT) is 401 with
//! `WWW-Authenticate: Bearer`; a valid token for another room or without the grant is 403.
//!
//! The same secret signs operators' tokens: one with `admin: true` (no room needed) is an
//! admin credential for the status API and drain ([`Auth::check_admin`], used by
//! [`crate::api::admin`]). An admin token does not publish or watch unless it grants that too.

use crate::error::{Error, Result};
use axum::http::{HeaderMap, header};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The shortest secret accepted: HS256 keys shorter than its 256-bit output weaken it
/// (RFC 7518 §3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// What a token grants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The room, or `*` for every room; empty (absent) in an admin-only token.
    #[serde(default)]
    pub room: String,
    /// May publish (WHIP); also allows watching.
    #[serde(default)]
    pub publish: bool,
    /// May watch (WHEP).
    #[serde(default)]
    pub subscribe: bool,
    /// May read the status API and drain the node ([`crate::api::admin`]).
    #[serde(default)]
    pub admin: bool,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Publish,
    Subscribe,
}

/// The node's token checker.
pub struct Auth {
    key: DecodingKey,
    /// Mints the short-lived admin tokens a node shows its peers' status API.
    signing: EncodingKey,
    validation: Validation,
    /// Whether WHEP needs a token too.
    viewers: bool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("viewers", &self.viewers)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// A checker for tokens signed with `secret` (at least [`MIN_SECRET_BYTES`]; the config
    /// checks). `viewers`: whether WHEP needs a token.
    ///
    /// # Errors
    ///
    /// The crypto library refuses the key.
    pub fn new(secret: &[u8], viewers: bool) -> Result<Self, String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        // Clocks of the nodes and of whoever signs tokens differ a little.
        validation.leeway = 30;
        Ok(Self {
            key: DecodingKey::from_secret(secret).map_err(|e| e.to_string())?,
            signing: EncodingKey::from_secret(secret).map_err(|e| e.to_string())?,
            validation,
            viewers,
        })
    }

    /// Whether a request may do `grant` in `room`, from its headers.
    ///
    /// # Errors
    ///
    /// [`AuthError::Missing`] or [`AuthError::Invalid`] without a valid token,
    /// [`AuthError::OtherRoom`] or [`AuthError::NotGranted`] with one that does not grant this.
    pub fn check(&self, headers: &HeaderMap, room: &str, grant: Grant) -> Result<(), AuthError> {
        if grant == Grant::Subscribe && !self.viewers {
            return Ok(());
        }
        let token = bearer(headers).ok_or(AuthError::Missing)?;
        let claims = self.decode(token)?;
        if claims.room != room && claims.room != "*" {
            return Err(AuthError::OtherRoom {
                token: claims.room,
                asked: room.to_owned(),
            });
        }
        let granted = match grant {
            Grant::Publish => claims.publish,
            Grant::Subscribe => claims.subscribe || claims.publish,
        };
        if !granted {
            return Err(AuthError::NotGranted(grant));
        }
        Ok(())
    }

    /// Whether `token` (a bearer token's value) is a valid token granting `admin`.
    ///
    /// # Errors
    ///
    /// [`AuthError::Invalid`] for a token that is not valid, [`AuthError::NotAdmin`] for a
    /// valid one without the grant (a publisher's or viewer's).
    pub fn check_admin(&self, token: &str) -> Result<(), AuthError> {
        if self.decode(token)?.admin {
            Ok(())
        } else {
            Err(AuthError::NotAdmin)
        }
    }

    /// A fresh admin token valid for `ttl`: what a node shows other nodes' status API when it
    /// answers for the cluster and has no cluster secret.
    pub fn admin_token(&self, ttl: std::time::Duration) -> String {
        self.mint(
            Claims {
                room: String::new(),
                publish: false,
                subscribe: false,
                admin: true,
                exp: 0,
            },
            ttl,
        )
    }

    /// A token granting what `claims` grant, expiring `ttl` from now (`claims.exp` is set):
    /// what `cascade token` prints.
    pub fn mint(&self, mut claims: Claims, ttl: std::time::Duration) -> String {
        claims.exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(ttl)
            .as_secs();
        // Encoding an HS256 token with a valid key cannot fail; an empty token is refused by
        // the peer if it ever did.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.signing)
            .unwrap_or_default()
    }

    fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }
}

/// The token of an `Authorization: Bearer <token>` header value (the scheme is
/// case-insensitive, RFC 9110 §11.1), if it is one.
pub fn bearer_value(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The bearer token of a request's headers, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_value)
}

/// Why a request's bearer token does not let it through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("a bearer token is required")]
    Missing,
    /// Forged, expired, malformed, or signed with another secret.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// A valid token for another room.
    #[error("the token is for room {token:?}, not {asked:?}")]
    OtherRoom { token: String, asked: String },
    /// A valid token for this room that does not grant this.
    #[error("the token does not allow {}", match .0 { Grant::Publish => "publishing", Grant::Subscribe => "watching" })]
    NotGranted(Grant),
    /// A valid token without the `admin` grant, where one is needed.
    #[error("the token does not grant admin")]
    NotAdmin,
}

impl From<AuthError> for Error {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Invalid(_) => Error::Unauthorized(e.to_string()),
            AuthError::OtherRoom { .. } | AuthError::NotGranted(_) | AuthError::NotAdmin => {
                Error::Forbidden(e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::HttpError;
    use axum::http::{HeaderValue, StatusCode};

    const SECRET: &[u8] = b"a test secret of thirty-two bytes!";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(secret: &[u8], room: &str, publish: bool, subscribe: bool, exp: u64) -> String {
        let claims = Claims {
            room: room.into(),
            publish,
            subscribe,
            admin: false,
            exp,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    }

    fn bearer(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    /// The headers of a request with a valid token (a minute from expiry) for `room`.
    fn holding(room: &str, publish: bool, subscribe: bool) -> HeaderMap {
        bearer(&format!(
            "Bearer {}",
            token(SECRET, room, publish, subscribe, now() + 60)
        ))
    }

    fn status(r: Result<(), AuthError>) -> StatusCode {
        r.err().map_or(StatusCode::OK, |e| Error::from(e).status())
    }

    #[test]
    fn a_room_token_lets_its_holder_publish_there_only() {
        let auth = Auth::new(SECRET, false).unwrap();
        let t = token(SECRET, "demo", true, false, now() + 60);
        let ok = bearer(&format!("Bearer {t}"));
        assert_eq!(
            status(auth.check(&ok, "demo", Grant::Publish)),
            StatusCode::OK
        );
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let lower = bearer(&format!("bearer {t}"));
        assert_eq!(
            status(auth.check(&lower, "demo", Grant::Publish)),
            StatusCode::OK
        );
        assert_eq!(
            status(auth.check(&ok, "other", Grant::Publish)),
            StatusCode::FORBIDDEN
        );
        let any = holding("*", true, false);
        assert_eq!(
            status(auth.check(&any, "other", Grant::Publish)),
            StatusCode::OK
        );
    }

    #[test]
    fn no_bad_or_stale_token_is_unauthorized() {
        let auth = Auth::new(SECRET, false).unwrap();
        let forged = token(
            b"another secret, thirty-two bytes.",
            "demo",
            true,
            false,
            now() + 60,
        );
        let expired = token(SECRET, "demo", true, false, now() - 3600);
        for headers in [
            HeaderMap::new(),
            bearer("Basic dXNlcjpwYXNz"),
            bearer("Bearer"),
            bearer("Bearer not.a.jwt"),
            bearer(&format!("Bearer {forged}")),
            bearer(&format!("Bearer {expired}")),
        ] {
            let e = auth.check(&headers, "demo", Grant::Publish).unwrap_err();
            assert_eq!(
                Error::from(e.clone()).status(),
                StatusCode::UNAUTHORIZED,
                "{headers:?}: {e}"
            );
        }
    }

    #[test]
    fn viewers_need_a_token_only_when_asked() {
        let open = Auth::new(SECRET, false).unwrap();
        assert!(
            open.check(&HeaderMap::new(), "demo", Grant::Subscribe)
                .is_ok()
        );
        let closed = Auth::new(SECRET, true).unwrap();
        assert_eq!(
            status(closed.check(&HeaderMap::new(), "demo", Grant::Subscribe)),
            StatusCode::UNAUTHORIZED
        );
        let viewer = holding("demo", false, true);
        assert!(closed.check(&viewer, "demo", Grant::Subscribe).is_ok());
        // A viewer's token does not publish; a publisher's also watches.
        assert_eq!(
            status(closed.check(&viewer, "demo", Grant::Publish)),
            StatusCode::FORBIDDEN
        );
        let publisher = holding("demo", true, false);
        assert!(closed.check(&publisher, "demo", Grant::Subscribe).is_ok());
    }

    #[test]
    fn only_a_token_granting_admin_is_an_admin_credential() {
        let auth = Auth::new(SECRET, false).unwrap();
        let minted = auth.admin_token(std::time::Duration::from_secs(60));
        assert_eq!(auth.check_admin(&minted), Ok(()));
        // An admin token names no room: it publishes and watches nothing.
        let admin = bearer(&format!("Bearer {minted}"));
        assert_eq!(
            status(auth.check(&admin, "demo", Grant::Publish)),
            StatusCode::FORBIDDEN
        );
        let publisher = token(SECRET, "*", true, true, now() + 60);
        assert_eq!(auth.check_admin(&publisher), Err(AuthError::NotAdmin));
        assert_eq!(
            Error::from(AuthError::NotAdmin).status(),
            StatusCode::FORBIDDEN
        );
        let other = Auth::new(b"another secret, thirty-two bytes.", false).unwrap();
        let foreign = other.admin_token(std::time::Duration::from_secs(60));
        assert!(matches!(
            auth.check_admin(&foreign),
            Err(AuthError::Invalid(_))
        ));
        assert_eq!(bearer_value("bearer  abc "), Some("abc"));
        assert_eq!(bearer_value("Bearer "), None);
        assert_eq!(bearer_value("Basic abc"), None);
    }
}
