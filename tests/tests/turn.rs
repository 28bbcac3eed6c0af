//! Viewers that can reach the edge only through a TURN server: the edge announces one (coturn,
//! Debian package `coturn`) in its WHEP answers' and `OPTIONS`' `Link` headers (RFC 9725 section
//! 4.6) with TURN REST credentials minted from `--turn-secret`; the watch page gathers a relay
//! candidate with them and plays through it. The viewer's Chromium runs in a network namespace
//! of its own (`cascade_tests::netlab`) that drops every UDP datagram (the server is reached
//! over TCP), or every one not to or from the server's port (over UDP); the edge's ICE-TCP port
//! is closed.

use anyhow::{Context, Result, bail};
use cascade_tests::netlab::ClientNet;
use cascade_tests::{Chromedriver, NodeProc, free_port, publish_vp8, tempdir, wait_playing};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(45);
const TURN_SECRET: &str = "a secret the nodes share with coturn";

/// A coturn server on `ip:port` (UDP and TCP) with TURN REST API authentication, and TLS on
/// `tls.0` with the certificate and key files `tls.1` when given; killed when dropped.
struct Coturn(Child);

impl Coturn {
    fn start(ip: &str, port: u16, tls: Option<(u16, &Path)>) -> Result<Self> {
        let mut cmd = Command::new("turnserver");
        cmd.args(["-n", "--no-cli", "--no-dtls", "--fingerprint"])
            .args(["--listening-ip", ip, "--relay-ip", ip])
            .args(["--listening-port", &port.to_string()])
            .args(["--min-port", "49152", "--max-port", "65535"])
            .args(["--use-auth-secret", "--static-auth-secret", TURN_SECRET])
            .args(["--realm", "cascade.test", "--no-stdout-log"])
            .args(["--log-file", "/dev/null", "--pidfile", "/dev/null"]);
        let ready = match tls {
            Some((tls_port, dir)) => {
                cmd.args(["--tls-listening-port", &tls_port.to_string()])
                    .arg("--cert")
                    .arg(dir.join("cert.pem"))
                    .arg("--pkey")
                    .arg(dir.join("key.pem"));
                tls_port
            }
            None => {
                cmd.arg("--no-tls");
                port
            }
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("running turnserver: install the Debian package coturn")?;
        let mut me = Self(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((ip, ready)).is_err() {
            if let Ok(Some(status)) = me.0.try_wait() {
                bail!("turnserver exited at start: {status}");
            }
            if Instant::now() > deadline {
                bail!("turnserver did not listen on {ip}:{ready} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(me)
    }
}

/// A self-signed certificate for `ip` and its key, as `cert.pem` and `key.pem` in `dir`.
fn self_signed(dir: &Path, ip: &str) -> Result<()> {
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=turn.cascade.test"])
        .args(["-addext", &format!("subjectAltName=IP:{ip}")])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running openssl")?;
    anyhow::ensure!(status.success(), "openssl req failed: {status}");
    Ok(())
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_viewer_without_udp_plays_through_the_announced_turn_server_over_tcp() -> Result<()> {
    plays_through_turn(Transport::Tcp).await
}

/// A viewer whose network drops all UDP plays through the TURN server over TLS (`turns:`), as
/// from a network that lets out only TLS.
#[tokio::test]
async fn a_viewer_without_udp_plays_through_the_turn_server_over_tls() -> Result<()> {
    plays_through_turn(Transport::Tls).await
}

/// A viewer whose network lets UDP through to the TURN server only (not to the edge) plays
/// through the server over UDP.
#[tokio::test]
async fn a_viewer_with_udp_to_the_turn_server_only_plays_through_it_over_udp() -> Result<()> {
    plays_through_turn(Transport::Udp).await
}

/// How the viewer reaches the TURN server.
#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Udp,
    Tcp,
    Tls,
}

async fn plays_through_turn(transport: Transport) -> Result<()> {
    let net = ClientNet::create(match transport {
        Transport::Udp => "turnudp",
        Transport::Tcp => "noudp",
        Transport::Tls => "turntls",
    })?;
    let host = net.host_ip.to_string();
    let turn_port = free_port();
    let tls_port = free_port();
    let certs = tempdir()?;
    let _turn = match transport {
        Transport::Tls => {
            self_signed(certs.as_path(), &host)?;
            Coturn::start(&host, turn_port, Some((tls_port, certs.as_path())))?
        }
        _ => Coturn::start(&host, turn_port, None)?,
    };
    let origin = NodeProc::origin("origin-1")?;
    let turn = match transport {
        Transport::Udp => format!("turn:{host}:{turn_port}?transport=udp"),
        Transport::Tcp => format!("turn:{host}:{turn_port}?transport=tcp"),
        Transport::Tls => format!("turns:{host}:{tls_port}?transport=tcp"),
    };
    let upstream = origin.grpc_url();
    let edge = NodeProc::start_with_env(
        "cascade-edge",
        "edge-1",
        &[
            "--upstream",
            &upstream,
            "--http-listen",
            "0.0.0.0:0",
            "--advertise-ip",
            &host,
            "--ice-servers",
            &turn,
            // Closed, so the viewer's one way in is the TURN server.
            "--ice-tcp-port",
            "off",
        ],
        &[("CASCADE_TURN_SECRET", TURN_SECRET)],
    )?;

    // Asked before the offer, the endpoint names the TURN server with fresh credentials.
    let options = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, edge.url("/whep/noudp"))
        .send()
        .await?;
    let links: Vec<String> = options
        .headers()
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert!(
        links.len() == 1
            && links[0].starts_with(&format!("<{turn}>; rel=\"ice-server\""))
            && links[0].contains(":cascade\"; credential=\"")
            && !links[0].contains(TURN_SECRET),
        "{links:?}"
    );

    let driver = Chromedriver::start().await?;
    let _publisher = publish_vp8(&driver, &origin, "noudp").await?;

    match transport {
        Transport::Udp => net.block_udp_except(turn_port)?,
        Transport::Tcp | Transport::Tls => net.block_udp()?,
    }
    let lab = Chromedriver::start_in(Some(&net)).await?;
    let viewer = match transport {
        // The server's certificate is self-signed.
        Transport::Tls => {
            lab.browser_with(&["--ignore-certificate-errors".into()])
                .await?
        }
        _ => lab.browser().await?,
    };
    viewer
        .open(&format!(
            "http://{host}:{}/watch.html?room=noudp&autostart=1",
            edge.http.port()
        ))
        .await?;
    let stats = wait_playing(&viewer, 30, DEADLINE).await?;
    assert_eq!(
        stats["candidateType"], "relay",
        "the media came through the TURN server: {stats}"
    );
    // The edge counts its viewer as relayed.
    let sessions = edge.status().await?["sessions"].clone();
    assert_eq!(
        (
            sessions["relayed"].as_u64(),
            sessions["udp"].as_u64(),
            sessions["tcp"].as_u64()
        ),
        (Some(1), Some(0), Some(0)),
        "{sessions}"
    );
    let _ = std::fs::remove_dir_all(&certs);
    Ok(())
}
