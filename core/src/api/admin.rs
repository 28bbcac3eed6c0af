//! The admin surface: who may read the status API and drain the node (SECURITY.md "Admin
//! surface").
//!
//! An **admin credential** is `Authorization: Bearer <token>` (gRPC: `authorization` metadata)
//! holding either
//! - a JWT signed with `--auth-secret` that grants `admin: true` ([`Auth::check_admin`]), what
//!   an operator or a tool is given, or
//! - a cluster credential minted with `--cluster-secret` ([`ClusterKey`]), what nodes show each
//!   other (a node answering `GET /v1/cluster` asks the other nodes for their `/v1/node` with
//!   one, [`Admin::peer_credential`]).
//!
//! What needs one:
//! - **Status** (`/v1/*` reads, `/dashboard`, `/metrics`; gRPC `GetCluster`, `ListRooms`,
//!   `GetRoom`, `GetNode`): only when `--status-public` is false, which is its default once
//!   `--auth-secret` is set ([`status_public_default`]). Over gRPC, a node with a cluster
//!   secret always asks for one, as its gRPC port is for nodes. `/healthz` and `/readyz`
//!   never need one (probes).
//! - **Drain** (`POST /v1/nodes/{id}/drain`, gRPC `DrainNode`): always, except from loopback
//!   while `--drain-from-loopback` is true (the default: the Kubernetes preStop hook curls
//!   `127.0.0.1` without a token). Loopback is judged on the connection's peer address, an
//!   IPv4-mapped IPv6 one (`::ffff:127.0.0.1`, what a `[::]` listener sees) counting as the IPv4
//!   address it maps ([`is_loopback`]). A node with neither secret has no credential to check
//!   and accepts drain from loopback only.
//!
//! No credential, or one that is not valid: 401 (`UNAUTHENTICATED`); a valid token without the
//! `admin` grant (a publisher's or a viewer's): 403 (`PERMISSION_DENIED`).

use crate::api::auth::{Auth, AuthError, bearer_value};
use crate::cluster::credential::ClusterKey;
use crate::error::Error;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long the admin token a node mints for its peers' status API is valid (one per request).
const PEER_TOKEN_TTL: Duration = Duration::from_secs(60);

/// The admin surface's flags, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// `--status-public`: the status API, the dashboard and `/metrics` answer without a token.
    pub status_public: bool,
    /// `--drain-from-loopback`: drain needs no token from a loopback peer.
    pub drain_from_loopback: bool,
    /// `--cors-origin`: the origins (`scheme://host[:port]`) the status API sends CORS headers
    /// to; none: no CORS on the status API.
    pub cors_origins: Vec<String>,
}

impl Default for AdminSettings {
    /// An open node's: status public, drain from loopback, no CORS on the status API.
    fn default() -> Self {
        Self {
            status_public: true,
            drain_from_loopback: true,
            cors_origins: Vec::new(),
        }
    }
}

/// `--status-public` when given, else its default: public on an open server, not once
/// `--auth-secret` is set (a node that checks who publishes should not show anyone its rooms).
pub fn status_public_default(flag: Option<bool>, auth_secret: bool) -> bool {
    flag.unwrap_or(!auth_secret)
}

/// Whether a peer address is this machine's loopback, an IPv4-mapped IPv6 address
/// (`::ffff:127.0.0.1`, as a dual-stack `[::]` listener reports IPv4 peers) included.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// A `--cors-origin` value, checked: `http://` or `https://`, a host, an optional port, no
/// path. Returned without a trailing `/`, as browsers send `Origin`.
///
/// # Errors
///
/// What is wrong with it.
pub fn check_origin(origin: &str) -> Result<String, String> {
    let origin = origin.trim().trim_end_matches('/');
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("{origin:?} is not an origin: expected http://host[:port] or https://...")
        })?;
    if rest.is_empty()
        || rest
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/?#@*,".contains(c))
    {
        return Err(format!(
            "{origin:?} is not an origin: scheme, host and optional port only (no path, no \
             wildcard)"
        ));
    }
    Ok(origin.to_owned())
}

/// Where a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A peer at this address.
    Peer(IpAddr),
    /// In-process (no connection: tests).
    Local,
}

impl From<Option<IpAddr>> for Caller {
    fn from(peer: Option<IpAddr>) -> Self {
        peer.map_or(Caller::Local, Caller::Peer)
    }
}

/// Why a request is refused the admin surface.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No bearer credential.
    #[error(
        "an admin credential is required: Authorization: Bearer <a JWT granting admin, signed \
         with --auth-secret, or a cluster credential>"
    )]
    Missing,
    /// Not a valid admin token nor cluster credential (signature, expiry, format).
    #[error("invalid admin credential: {0}")]
    Invalid(String),
    /// A valid token of this node's `--auth-secret` that does not grant `admin`.
    #[error("the token does not grant admin")]
    NotAdmin,
    /// Drain from elsewhere than loopback on a node with no secret to check a credential with.
    #[error(
        "drain is only accepted from loopback: this node has no --auth-secret or \
         --cluster-secret to check an admin credential with"
    )]
    LoopbackOnly,
}

impl From<AdminError> for Error {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Missing | AdminError::Invalid(_) => Error::Unauthorized(e.to_string()),
            AdminError::NotAdmin | AdminError::LoopbackOnly => Error::Forbidden(e.to_string()),
        }
    }
}

/// The node's admin checks.
#[derive(Debug, Clone, Default)]
pub struct Admin {
    settings: AdminSettings,
    auth: Option<Arc<Auth>>,
    cluster: Option<Arc<ClusterKey>>,
}

impl Admin {
    /// The checks of `settings`, with admin JWTs checked by `auth` (`--auth-secret`) and
    /// cluster credentials by `cluster` (`--cluster-secret`).
    pub fn new(
        settings: AdminSettings,
        auth: Option<Arc<Auth>>,
        cluster: Option<Arc<ClusterKey>>,
    ) -> Self {
        Self {
            settings,
            auth,
            cluster,
        }
    }

    pub fn settings(&self) -> &AdminSettings {
        &self.settings
    }

    /// Whether `authorization` (an `Authorization` header's value) is an admin credential.
    ///
    /// # Errors
    ///
    /// [`AdminError::Missing`], [`AdminError::Invalid`] or [`AdminError::NotAdmin`].
    pub fn verify(&self, authorization: Option<&str>) -> Result<(), AdminError> {
        let token = authorization
            .and_then(bearer_value)
            .ok_or(AdminError::Missing)?;
        if let Some(key) = &self.cluster
            && key.verify(Some(&format!("Bearer {token}"))).is_ok()
        {
            return Ok(());
        }
        match &self.auth {
            Some(auth) => auth.check_admin(token).map_err(|e| match e {
                AuthError::NotAdmin => AdminError::NotAdmin,
                other => AdminError::Invalid(other.to_string()),
            }),
            None if self.cluster.is_some() => Err(AdminError::Invalid(
                "not a cluster credential of this cluster".into(),
            )),
            None => Err(AdminError::Invalid(
                "this node has no --auth-secret or --cluster-secret to check it with".into(),
            )),
        }
    }

    /// Whether a status read over HTTP (`/v1/*`, `/dashboard`, `/metrics`) may be answered.
    ///
    /// # Errors
    ///
    /// As [`Admin::verify`], when the status API is not public.
    pub fn status(&self, authorization: Option<&str>) -> Result<(), AdminError> {
        if self.settings.status_public {
            return Ok(());
        }
        self.verify(authorization)
    }

    /// Whether a status read over gRPC may be answered: as over HTTP, and always with a
    /// credential on a node with a cluster secret (its gRPC port is for nodes).
    ///
    /// # Errors
    ///
    /// As [`Admin::verify`].
    pub fn status_grpc(&self, authorization: Option<&str>) -> Result<(), AdminError> {
        if self.settings.status_public && self.cluster.is_none() {
            return Ok(());
        }
        self.verify(authorization)
    }

    /// Whether `caller` may drain the node.
    ///
    /// # Errors
    ///
    /// [`AdminError::LoopbackOnly`] from elsewhere on a node without secrets, else as
    /// [`Admin::verify`].
    pub fn drain(&self, authorization: Option<&str>, caller: Caller) -> Result<(), AdminError> {
        let local = match caller {
            Caller::Local => true,
            Caller::Peer(ip) => is_loopback(ip),
        };
        if self.settings.drain_from_loopback && local {
            return Ok(());
        }
        if self.auth.is_none() && self.cluster.is_none() {
            return Err(AdminError::LoopbackOnly);
        }
        self.verify(authorization)
    }

    /// The `Authorization` value this node shows other nodes' status API: a fresh cluster
    /// credential, else a fresh admin token of `--auth-secret`, else none (an open cluster).
    pub fn peer_credential(&self) -> Option<String> {
        if let Some(key) = &self.cluster {
            return Some(format!("Bearer {}", key.token()));
        }
        self.auth
            .as_ref()
            .map(|auth| format!("Bearer {}", auth.admin_token(PEER_TOKEN_TTL)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const AUTH_SECRET: &[u8] = b"the auth secret of thirty-two bytes";
    const CLUSTER_SECRET: &[u8] = b"the cluster's secret, thirty-two bytes";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_includes_ipv4_mapped_addresses() {
        for local in [
            "127.0.0.1",
            "127.3.2.1",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:127.9.9.9",
        ] {
            assert!(is_loopback(ip(local)), "{local}");
        }
        for remote in [
            "192.0.2.7",
            "10.0.0.1",
            "0.0.0.0",
            "::",
            "::ffff:192.0.2.7",
            "::ffff:0.0.0.0",
            "2001:db8::1",
            // IPv4-compatible (deprecated), not mapped: not this machine's loopback.
            "::127.0.0.1",
        ] {
            assert!(!is_loopback(ip(remote)), "{remote}");
        }
        assert!(is_loopback(IpAddr::V6(
            Ipv4Addr::LOCALHOST.to_ipv6_mapped()
        )));
        assert!(!is_loopback(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
    }

    #[test]
    fn status_is_public_by_default_only_on_an_open_server() {
        assert!(status_public_default(None, false));
        assert!(!status_public_default(None, true));
        assert!(status_public_default(Some(true), true));
        assert!(!status_public_default(Some(false), false));
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            check_origin("https://ops.example/").unwrap(),
            "https://ops.example"
        );
        assert_eq!(
            check_origin(" http://127.0.0.1:3000 ").unwrap(),
            "http://127.0.0.1:3000"
        );
        for bad in [
            "ops.example",
            "https://",
            "*",
            "https://*.example",
            "https://ops.example/path",
            "https://a.example,https://b.example",
            "ftp://ops.example",
            "https://user@ops.example",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    fn admin(settings: AdminSettings, auth: bool, cluster: bool) -> Admin {
        Admin::new(
            settings,
            auth.then(|| Arc::new(Auth::new(AUTH_SECRET, false).unwrap())),
            cluster.then(|| Arc::new(ClusterKey::new(CLUSTER_SECRET, "node").unwrap())),
        )
    }

    fn closed() -> AdminSettings {
        AdminSettings {
            status_public: false,
            ..AdminSettings::default()
        }
    }

    /// A token of `AUTH_SECRET` with these grants.
    fn token(admin: bool, publish: bool) -> String {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 60;
        let claims =
            serde_json::json!({ "room": "*", "admin": admin, "publish": publish, "exp": exp });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(AUTH_SECRET).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn an_admin_jwt_or_a_cluster_credential_is_accepted() {
        let both = admin(closed(), true, true);
        let bearer = |t: &str| format!("Bearer {t}");
        assert_eq!(both.status(Some(&bearer(&token(true, false)))), Ok(()));
        let peer = both.peer_credential().unwrap();
        assert_eq!(both.status(Some(&peer)), Ok(()));
        assert_eq!(both.status(None), Err(AdminError::Missing));
        assert_eq!(
            both.status(Some(&bearer(&token(false, true)))),
            Err(AdminError::NotAdmin)
        );
        assert!(matches!(
            both.status(Some("Bearer garbage")),
            Err(AdminError::Invalid(_))
        ));
        // Without an auth secret only the cluster credential is one.
        let cluster_only = admin(closed(), false, true);
        assert_eq!(cluster_only.status(Some(&peer)), Ok(()));
        assert!(matches!(
            cluster_only.status(Some(&bearer(&token(true, false)))),
            Err(AdminError::Invalid(_))
        ));
        // Without a cluster secret a node shows its peers a minted admin token.
        let auth_only = admin(closed(), true, false);
        assert_eq!(
            auth_only.status(auth_only.peer_credential().as_deref()),
            Ok(())
        );
        assert_eq!(admin(closed(), false, false).peer_credential(), None);
        // Public: no credential needed over HTTP; over gRPC the cluster secret still asks.
        let public = admin(AdminSettings::default(), true, true);
        assert_eq!(public.status(None), Ok(()));
        assert_eq!(public.status_grpc(None), Err(AdminError::Missing));
        assert_eq!(public.status_grpc(Some(&peer)), Ok(()));
        assert_eq!(
            admin(AdminSettings::default(), false, false).status_grpc(None),
            Ok(())
        );
    }

    #[test]
    fn drain_from_loopback_is_an_option_and_mapped_addresses_are_loopback() {
        let remote = Caller::Peer(ip("192.0.2.7"));
        let mapped = Caller::Peer(ip("::ffff:127.0.0.1"));
        let admin_token = format!("Bearer {}", token(true, false));
        let viewer_token = format!("Bearer {}", token(false, false));

        let default = admin(AdminSettings::default(), true, false);
        assert_eq!(default.drain(None, mapped), Ok(()));
        assert_eq!(default.drain(None, Caller::Local), Ok(()));
        assert_eq!(default.drain(None, remote), Err(AdminError::Missing));
        assert_eq!(default.drain(Some(&admin_token), remote), Ok(()));

        let strict = admin(
            AdminSettings {
                drain_from_loopback: false,
                ..AdminSettings::default()
            },
            true,
            false,
        );
        assert_eq!(strict.drain(None, mapped), Err(AdminError::Missing));
        assert_eq!(
            strict.drain(Some(&viewer_token), mapped),
            Err(AdminError::NotAdmin)
        );
        assert_eq!(strict.drain(Some(&admin_token), mapped), Ok(()));

        // No secret: loopback only, whatever is presented.
        let open = admin(AdminSettings::default(), false, false);
        assert_eq!(open.drain(None, mapped), Ok(()));
        assert_eq!(
            open.drain(Some(&admin_token), remote),
            Err(AdminError::LoopbackOnly)
        );
        let status = |e: AdminError| crate::api::error::HttpError::status(&Error::from(e));
        assert_eq!(status(AdminError::Missing).as_u16(), 401);
        assert_eq!(status(AdminError::Invalid("x".into())).as_u16(), 401);
        assert_eq!(status(AdminError::NotAdmin).as_u16(), 403);
        assert_eq!(status(AdminError::LoopbackOnly).as_u16(), 403);
    }
}
