//! Mutual TLS on the gRPC port (`--grpc-tls-cert`, `--grpc-tls-key`, `--grpc-tls-ca`): real
//! origin and edge processes with certificates of one test CA. The edge pulls the room over an
//! `https://` upstream and a real broadcast (`cascade-loadgen`, WebRTC end to end) reaches its
//! viewers; a client without a certificate, with one of another CA, or speaking plain HTTP/2
//! never reaches the service; a node given only part of the TLS flags refuses to start.

use cascade_proto::relay::v1::DescribeRoomRequest;
use cascade_proto::relay::v1::relay_client::RelayClient;
use cascade_tests::{NodeProc, assert_clean_broadcast, bin, cluster_credential, loadgen_broadcast};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const SECRET: &str = "the nodes' own shared secret, 32+ bytes";

/// A CA and the PEM files of certificates it signed, in a temporary directory.
struct Pki {
    dir: PathBuf,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

impl Pki {
    fn new(tag: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("cascade-pki-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("cascade test CA {tag}"));
        std::fs::write(dir.join("ca.pem"), ca_params.self_signed(&ca_key)?.pem())?;
        Ok(Self {
            dir,
            ca_params,
            ca_key,
        })
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A certificate for `name`, valid for loopback as server and as client: `(cert, key)`.
    fn issue(&self, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer)?;
        let (cert_path, key_path) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        Ok((cert_path, key_path))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn tls_node(
    binary: &str,
    name: &str,
    pki: &Pki,
    extra: &[&str],
) -> anyhow::Result<(NodeProc, String)> {
    let (cert, key) = pki.issue(name)?;
    let ca = pki.ca();
    let mut args = vec![
        "--grpc-tls-cert",
        s(&cert),
        "--grpc-tls-key",
        s(&key),
        "--grpc-tls-ca",
        s(&ca),
    ];
    args.extend_from_slice(extra);
    let node =
        NodeProc::start_with_env(binary, name, &args, &[("CASCADE_CLUSTER_SECRET", SECRET)])?;
    let url = format!("https://127.0.0.1:{}", node.grpc.port());
    Ok((node, url))
}

/// A `DescribeRoom` call with the cluster credential, over `channel`. The broadcast has ended
/// by the time it is made, so NOT_FOUND is the service's own answer: the call got past TLS and
/// the credential check.
async fn describe(channel: Channel) -> Result<(), tonic::Status> {
    let token = cluster_credential(SECRET, "cascade-cluster", 60);
    let mut request = tonic::Request::new(DescribeRoomRequest {
        room: "stage".into(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    RelayClient::new(channel)
        .describe_room(request)
        .await
        .map(|_| ())
        .or_else(|status| match status.code() {
            Code::NotFound => Ok(()),
            _ => Err(status),
        })
}

/// Connects with `tls` and makes one authenticated call; a failure at either step is returned
/// as the status the caller sees.
async fn call(url: &str, tls: Option<ClientTlsConfig>) -> Result<(), tonic::Status> {
    let mut endpoint = Endpoint::from_shared(url.to_owned()).unwrap();
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    let channel = endpoint
        .connect_timeout(std::time::Duration::from_secs(3))
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    describe(channel).await
}

#[tokio::test]
async fn nodes_relay_over_mutual_tls_and_strangers_cannot_connect() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = Pki::new("cluster")?;
    let (origin, origin_url) = tls_node("cascade-origin", "origin-tls", &pki, &[])?;
    let (edge, _) = tls_node(
        "cascade-edge",
        "edge-tls",
        &pki,
        &["--upstream", &origin_url],
    )?;

    // A real broadcast: the edge pulls the room over https:// with its certificate.
    let json = std::env::temp_dir().join(format!("cascade-grpc-tls-{}.json", std::process::id()));
    let out = loadgen_broadcast(&origin, &edge, "stage", 3, &json).output()?;
    assert_clean_broadcast(&out, &json, 3)?;

    // A client with a certificate of the cluster's CA and the credential gets an answer.
    let ca = Certificate::from_pem(std::fs::read(pki.ca())?);
    let (cert, key) = pki.issue("good-client")?;
    let good = ClientTlsConfig::new()
        .ca_certificate(ca.clone())
        .identity(Identity::from_pem(
            std::fs::read(cert)?,
            std::fs::read(key)?,
        ));
    call(&origin_url, Some(good)).await?;

    // Strangers never reach the service: the interceptor would answer UNAUTHENTICATED, these
    // do not get that far. Under TLS 1.3 the server checks the client's certificate after the
    // client has finished its side of the handshake, so a refused certificate shows up as the
    // connection closing under the first request (CANCELLED) as often as a handshake error.
    let stranger_pki = Pki::new("stranger")?;
    let (cert, key) = stranger_pki.issue("stranger")?;
    let refused =
        [
            (
                "no client certificate",
                origin_url.clone(),
                Some(ClientTlsConfig::new().ca_certificate(ca.clone())),
            ),
            (
                "a certificate of another CA",
                origin_url.clone(),
                Some(ClientTlsConfig::new().ca_certificate(ca.clone()).identity(
                    Identity::from_pem(std::fs::read(cert)?, std::fs::read(key)?),
                )),
            ),
            ("plain HTTP/2", origin.grpc_url(), None),
        ];
    for (what, url, tls) in refused {
        let status = call(&url, tls).await.expect_err(what);
        assert!(
            matches!(
                status.code(),
                Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
            ),
            "{what}: {status}"
        );
    }
    Ok(())
}

#[test]
fn a_node_with_part_of_the_tls_flags_does_not_start() -> anyhow::Result<()> {
    let pki = Pki::new("partial")?;
    let (cert, _) = pki.issue("partial")?;
    let out = std::process::Command::new(bin("cascade-origin"))
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .args(["--grpc-tls-cert", s(&cert), "--grpc-tls-ca", s(&pki.ca())])
        .env_remove("CASCADE_GRPC_TLS_KEY")
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--grpc-tls-key"), "{stderr}");
    Ok(())
}
