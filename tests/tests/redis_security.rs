//! Redis with credentials and TLS: real `redis-server` processes with `requirepass` and an ACL
//! user, and one serving TLS only with a certificate of a test CA. An origin and an edge that
//! find each other only through that Redis relay a real broadcast (`cascade-loadgen`); a node
//! given a wrong password stops at start with a message naming `--redis`; the password reaches
//! no log line.

use anyhow::{Context, Result, bail};
use cascade_tests::{NodeProc, RedisServer, assert_clean_broadcast, bin, loadgen_broadcast, poll};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = "admin-pw-7c1e9f";
const USER_PASSWORD: &str = "cascade-pw-41d2b8";

fn node(binary: &str, name: &str, url: &str, extra: &[&str]) -> Result<NodeProc> {
    let mut args = vec!["--redis", url, "--lease-secs", "3"];
    args.extend_from_slice(extra);
    NodeProc::start(binary, name, &args)
}

/// A Redis with a default-user password and an ACL user `cascade` with its own password.
async fn redis_with_acl_user() -> Result<RedisServer> {
    let port = RedisServer::free_port();
    let redis = RedisServer::start(
        port,
        &[
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            ADMIN_PASSWORD,
        ],
    )?;
    let admin = redis::Client::open(format!("redis://:{ADMIN_PASSWORD}@127.0.0.1:{port}"))?;
    let mut con = poll(
        "Redis accepting the admin password",
        Duration::from_secs(10),
        || {
            let admin = admin.clone();
            async move { Ok(Some(admin.get_multiplexed_async_connection().await?)) }
        },
    )
    .await?;
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "cascade",
            "on",
            format!(">{USER_PASSWORD}").as_str(),
            "~*",
            "&*",
            "+@all",
        ])
        .query_async(&mut con)
        .await?;
    Ok(redis)
}

#[tokio::test]
async fn nodes_route_through_a_redis_with_an_acl_user_and_never_log_its_password() -> Result<()> {
    let redis = redis_with_acl_user().await?;
    let url = format!("redis://cascade:{USER_PASSWORD}@127.0.0.1:{}/0", redis.port);
    let origin = node("cascade-origin", "o-acl", &url, &[])?;
    let edge = node("cascade-edge", "e-acl", &url, &[])?;

    let json = std::env::temp_dir().join(format!("redis-acl-{}.json", std::process::id()));
    let out = loadgen_broadcast(&origin, &edge, "acl-room", 2, &json).output()?;
    assert_clean_broadcast(&out, &json, 2)?;

    // The edge found the room's origin in that Redis (it has no --upstream), and both nodes'
    // registrations are there, written as the ACL user.
    let client = redis::Client::open(url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    for id in ["o-acl", "e-acl"] {
        let info: Option<String> = redis::cmd("GET")
            .arg(format!("cascade:node:{id}:info"))
            .query_async(&mut con)
            .await?;
        assert!(
            info.is_some_and(|i| i.contains(&format!("\"{id}\""))),
            "{id} is registered in Redis"
        );
    }

    for n in [&origin, &edge] {
        let log = n.log();
        assert!(
            log.iter().any(|l| l.contains("routing through Redis")),
            "{}: {log:#?}",
            n.name
        );
        let leaked: Vec<_> = log.iter().filter(|l| l.contains(USER_PASSWORD)).collect();
        assert!(
            leaked.is_empty(),
            "{} logged the password: {leaked:#?}",
            n.name
        );
    }
    Ok(())
}

/// Runs `binary` until it exits (or 20 s pass): `(exited with success, stderr)`.
fn run_to_exit(binary: &str, args: &[&str]) -> Result<(Option<bool>, String)> {
    let mut child = Command::new(bin(binary))
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {binary}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status.success());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output()?;
    Ok((status, String::from_utf8_lossy(&out.stderr).into_owned()))
}

#[tokio::test]
async fn a_wrong_password_stops_the_node_at_start_naming_redis() -> Result<()> {
    let redis = redis_with_acl_user().await?;
    let wrong = "not-the-password-93af";
    for url in [
        format!("redis://cascade:{wrong}@127.0.0.1:{}", redis.port),
        format!("redis://:{wrong}@127.0.0.1:{}", redis.port),
    ] {
        for binary in ["cascade-origin", "cascade-edge"] {
            let (success, stderr) = run_to_exit(binary, &["--redis", &url])?;
            assert_eq!(
                success,
                Some(false),
                "{binary} must exit with an error: {stderr}"
            );
            assert!(
                stderr.contains("--redis") && stderr.contains("refused the credentials"),
                "{binary}: {stderr}"
            );
            assert!(
                !stderr.contains(wrong),
                "{binary} printed the password: {stderr}"
            );
        }
    }
    // A URL that cannot be read stops it too, before any connection.
    let (success, stderr) = run_to_exit(
        "cascade-origin",
        &["--redis", &format!("redis+sentinel://:{wrong}@127.0.0.1:1")],
    )?;
    assert_eq!(success, Some(false), "{stderr}");
    assert!(
        stderr.contains("--redis") && stderr.contains("master"),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong), "{stderr}");
    Ok(())
}

/// A CA and a loopback server certificate signed by it, as PEM files in a temporary directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("cascade-redis-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "cascade test Redis CA");
        std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key)?.pem())?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "redis");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &Issuer::from_params(&ca, &ca_key))?;
        std::fs::write(dir.join("redis.pem"), cert.pem())?;
        std::fs::write(dir.join("redis.key"), key.serialize_pem())?;
        Ok(Self { dir })
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn nodes_route_through_redis_over_tls_with_a_private_ca() -> Result<()> {
    let pki = Pki::new()?;
    let port = RedisServer::free_port();
    let redis = match RedisServer::start(
        port,
        &[
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--tls-cert-file",
            &pki.path("redis.pem"),
            "--tls-key-file",
            &pki.path("redis.key"),
            "--tls-ca-cert-file",
            &pki.path("ca.pem"),
            "--tls-auth-clients",
            "no",
            "--requirepass",
            USER_PASSWORD,
        ],
    ) {
        Ok(r) => r,
        Err(e) => bail!("redis-server without TLS support? {e:#}"),
    };
    let url = format!("rediss://:{USER_PASSWORD}@127.0.0.1:{}", redis.port);
    let ca = pki.path("ca.pem");
    let origin = node("cascade-origin", "o-tls", &url, &["--redis-ca", &ca])?;
    let edge = node("cascade-edge", "e-tls", &url, &["--redis-ca", &ca])?;
    let json = std::env::temp_dir().join(format!("redis-tls-{}.json", std::process::id()));
    let out = loadgen_broadcast(&origin, &edge, "tls-room", 2, &json).output()?;
    assert_clean_broadcast(&out, &json, 2)?;
    for n in [&origin, &edge] {
        assert!(
            !n.log().iter().any(|l| l.contains(USER_PASSWORD)),
            "{}",
            n.name
        );
    }

    // Without the CA the server's certificate is not trusted: the node does not route
    // (it starts, as with an unreachable Redis, and its heartbeat fails).
    let stranger = node("cascade-origin", "o-noca", &url, &[])?;
    poll("a failed heartbeat logged", Duration::from_secs(15), || {
        let failed = stranger
            .log()
            .iter()
            .any(|l| l.contains("heartbeat failed"));
        async move { Ok(failed.then_some(())) }
    })
    .await?;
    Ok(())
}
