//! How nodes prove to each other that they belong to the cluster: `--cluster-secret`.
//!
//! Every gRPC call a node makes to another (the relay's `DescribeRoom` and `Subscribe`, the
//! status service) carries `authorization: Bearer <JWT>`: a token signed with the cluster
//! secret (HS256), naming the calling node (`sub`), for the audience `cascade-cluster`, valid for
//! [`TOKEN_TTL`]. The gRPC server of a node with the secret checks it on every call before the
//! call reaches a service ([`ClusterKey::check`] as a tonic interceptor): without a valid one
//! the call gets `UNAUTHENTICATED` and touches nothing.
//!
//! The cluster secret is not the `--auth-secret` viewers' and publishers' tokens are signed
//! with: a WHIP token is no cluster credential (different key, and the audience is checked),
//! so a publisher's encoder cannot pull other rooms over the relay service.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

/// The shortest cluster secret accepted (HS256's key, RFC 7518 §3.2).
pub const MIN_CLUSTER_SECRET_BYTES: usize = 32;

/// How long a minted token is valid. Tokens are minted per call, so this only bounds how
/// long a token seen on the wire could be replayed.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);

/// Leeway for the clocks of two nodes.
const LEEWAY_SECS: u64 = 30;

const AUDIENCE: &str = "cascade-cluster";

#[derive(Debug, Serialize, Deserialize)]
struct ClusterClaims {
    /// The calling node's id.
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
}

/// The cluster secret's keys: mints this node's credential and checks others'.
pub struct ClusterKey {
    node_id: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterKey")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Why a call's credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The call has no `authorization: Bearer` credential.
    #[error("no cluster credential (authorization: Bearer <token>)")]
    Missing,
    /// The credential is not a valid token of this cluster (signature, audience, expiry).
    #[error("invalid cluster credential: {0}")]
    Invalid(String),
}

impl ClusterKey {
    /// The keys of `secret` (at least [`MIN_CLUSTER_SECRET_BYTES`]), for node `node_id`.
    ///
    /// # Errors
    ///
    /// A secret that is too short, or one the crypto library refuses.
    pub fn new(secret: &[u8], node_id: &str) -> Result<Self, String> {
        if secret.len() < MIN_CLUSTER_SECRET_BYTES {
            return Err(format!(
                "must be at least {MIN_CLUSTER_SECRET_BYTES} bytes (it is {})",
                secret.len()
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = LEEWAY_SECS;
        Ok(Self {
            node_id: node_id.to_owned(),
            encoding: EncodingKey::from_secret(secret).map_err(|e| e.to_string())?,
            decoding: DecodingKey::from_secret(secret).map_err(|e| e.to_string())?,
            validation,
        })
    }

    /// A fresh credential naming this node, valid for [`TOKEN_TTL`].
    pub fn token(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = ClusterClaims {
            sub: self.node_id.clone(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + TOKEN_TTL.as_secs(),
        };
        // Encoding an HS256 token with a valid key cannot fail; an empty token is refused by
        // the peer if it ever did.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// The calling node named by a credential (`authorization: Bearer <token>`), if valid.
    ///
    /// # Errors
    ///
    /// No credential, or one that is not a valid token of this cluster.
    pub fn verify(&self, authorization: Option<&str>) -> Result<String, CredentialError> {
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(CredentialError::Missing)?;
        jsonwebtoken::decode::<ClusterClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims.sub)
            .map_err(|e| CredentialError::Invalid(e.to_string()))
    }

    /// A server-side check of each incoming call (a tonic interceptor): `UNAUTHENTICATED`
    /// without a valid credential.
    ///
    /// # Errors
    ///
    /// `UNAUTHENTICATED`, saying why.
    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        match self.verify(header) {
            Ok(_) => Ok(request),
            Err(e) => Err(Status::unauthenticated(e.to_string())),
        }
    }
}

/// The client side: adds this node's credential to each call, when the cluster has a secret.
#[derive(Debug, Clone, Default)]
pub struct Credential(pub Option<Arc<ClusterKey>>);

impl tonic::service::Interceptor for Credential {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(key) = &self.0 {
            let value = MetadataValue::try_from(format!("Bearer {}", key.token()))
                .map_err(|_| Status::internal("cluster credential not representable"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// A server-side interceptor: checks every call against `key`, or lets every call through
/// when the cluster has no secret.
pub fn server_check(
    key: Option<Arc<ClusterKey>>,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |request| match &key {
        Some(key) => key.check(request),
        None => Ok(request),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_node_accepts_a_credential_of_its_cluster_only() {
        let a = ClusterKey::new(SECRET, "edge-1").unwrap();
        let b = ClusterKey::new(SECRET, "origin-1").unwrap();
        let bearer = format!("Bearer {}", a.token());
        assert_eq!(b.verify(Some(&bearer)).unwrap(), "edge-1");

        let other = ClusterKey::new(b"another cluster's secret, 32 byte", "x").unwrap();
        let theirs = format!("Bearer {}", other.token());
        assert!(matches!(
            b.verify(Some(&theirs)),
            Err(CredentialError::Invalid(_))
        ));
        assert_eq!(b.verify(None), Err(CredentialError::Missing));
        assert!(matches!(
            b.verify(Some("Bearer not-a-jwt")),
            Err(CredentialError::Invalid(_))
        ));
        assert_eq!(b.verify(Some(&a.token())), Err(CredentialError::Missing));
    }

    #[test]
    fn a_viewer_token_signed_with_the_same_bytes_is_no_cluster_credential() {
        // Same secret, but no cluster audience: as a WHIP/WHEP token would be.
        #[derive(Serialize)]
        struct Viewer {
            room: String,
            subscribe: bool,
            exp: u64,
        }
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 60;
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Viewer {
                room: "*".into(),
                subscribe: true,
                exp,
            },
            &EncodingKey::from_secret(SECRET).unwrap(),
        )
        .unwrap();
        let key = ClusterKey::new(SECRET, "origin").unwrap();
        assert!(key.verify(Some(&format!("Bearer {token}"))).is_err());
    }

    #[test]
    fn short_secrets_are_refused_and_keys_keep_out_of_debug() {
        assert!(
            ClusterKey::new(b"short", "n")
                .unwrap_err()
                .contains("32 bytes")
        );
        let key = ClusterKey::new(SECRET, "n").unwrap();
        assert!(!format!("{key:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn the_interceptors_agree() {
        use tonic::service::Interceptor;
        let key = Arc::new(ClusterKey::new(SECRET, "edge").unwrap());
        let check = server_check(Some(key.clone()));
        assert_eq!(
            check(Request::new(())).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let signed = Credential(Some(key)).call(Request::new(())).unwrap();
        assert!(check(signed).is_ok());
        assert!(server_check(None)(Request::new(())).is_ok());
    }
}
