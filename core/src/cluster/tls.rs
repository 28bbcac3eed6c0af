//! Mutual TLS on the gRPC port: `--grpc-tls-cert`, `--grpc-tls-key`, `--grpc-tls-ca`.
//!
//! With the three set, a node's gRPC server speaks only TLS and asks every client for a
//! certificate signed by the CA (a client without one cannot complete the handshake), and the
//! node connects to `https://` upstreams presenting its own certificate and checking theirs
//! against the same CA. The relay's `Subscribe` carries the DTLS fingerprints of the link's
//! media; TLS keeps anyone on the path from reading or swapping them. The cluster credential
//! (`crate::cluster::credential`) still rides on every call: TLS says the peer holds a
//! certificate of the cluster's CA, the token says it knows the cluster secret.

use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// How long a TLS handshake on the gRPC port may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The node's certificate and key, and the CA its peers' certificates must chain to.
#[derive(Clone)]
pub struct GrpcTls {
    identity: Identity,
    ca: Certificate,
}

/// The key stays out of logs: only the fact that TLS is configured is printed.
impl std::fmt::Debug for GrpcTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrpcTls { .. }")
    }
}

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    /// A file holds no PEM block of the expected kind.
    #[error("{path} holds no PEM {what}")]
    NoPem { path: String, what: &'static str },
    /// rustls refused the certificate, key or CA.
    #[error("{0}")]
    Invalid(String),
}

impl GrpcTls {
    /// Loads PEM files: the node's certificate chain, its private key, and the CA bundle.
    ///
    /// # Errors
    ///
    /// A file that cannot be read or holds no PEM block of its kind, or a certificate and key
    /// that rustls refuses together.
    pub fn load(cert: &str, key: &str, ca: &str) -> Result<Arc<Self>, TlsError> {
        let read = |path: &str, what: &'static str, marker: &str| {
            let bytes = std::fs::read(path).map_err(|e| TlsError::Read {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            if !String::from_utf8_lossy(&bytes).contains(marker) {
                return Err(TlsError::NoPem {
                    path: path.to_owned(),
                    what,
                });
            }
            Ok(bytes)
        };
        let tls = Self {
            identity: Identity::from_pem(
                read(cert, "certificate", "-----BEGIN CERTIFICATE")?,
                read(key, "private key", "PRIVATE KEY-----")?,
            ),
            ca: Certificate::from_pem(read(ca, "CA certificate", "-----BEGIN CERTIFICATE")?),
        };
        // Build both sides once, so a bad pair fails at start and not on the first call.
        install_crypto_provider();
        tonic::transport::Server::builder()
            .tls_config(tls.server())
            .map_err(|e| TlsError::Invalid(format!("certificate or key refused: {e}")))?;
        Ok(Arc::new(tls))
    }

    /// The gRPC server's side: present the node's certificate, require a client certificate
    /// signed by the CA.
    pub fn server(&self) -> ServerTlsConfig {
        install_crypto_provider();
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
            .timeout(HANDSHAKE_TIMEOUT)
    }

    /// A relay client's side: present the node's certificate, trust only the CA; the
    /// upstream's certificate must name the host of its URL.
    pub fn client(&self) -> ClientTlsConfig {
        install_crypto_provider();
        ClientTlsConfig::new()
            .identity(self.identity.clone())
            .ca_certificate(self.ca.clone())
            .timeout(HANDSHAKE_TIMEOUT)
    }
}

/// rustls needs one process-wide crypto provider when more than one is compiled in (the
/// workspace's HTTP clients bring aws-lc-rs, tonic's TLS ring); the nodes use ring.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
