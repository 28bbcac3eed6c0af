//! The HTTP listener's limits on a real node process (`--http-*` flags, SECURITY.md "HTTP
//! listener limits"): slow or idle clients are closed on time, a connection flood over the cap
//! is refused at once, and the node keeps answering health checks and WHIP throughout.

use anyhow::{Context, Result, bail, ensure};
use cascade_tests::{NodeProc, poll};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Half a request head: the final empty line never comes.
const HALF_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";

/// Room for the test's sockets on top of the default soft limit (often 1,024).
fn raise_open_file_limit() {
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("raising RLIMIT_NOFILE");
    assert!(
        limit >= 1_200,
        "RLIMIT_NOFILE is {limit}: 1,000 sockets need more"
    );
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// `n` connections to `addr`, each sent `first` (if any) and then left alone.
async fn open(addr: SocketAddr, n: usize, first: &[u8]) -> Result<Vec<TcpStream>> {
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connection {i}"))?;
        if !first.is_empty() {
            s.write_all(first).await?;
        }
        sockets.push(s);
    }
    Ok(sockets)
}

/// Whether the server has closed `s`: a read returns end of stream or an error (reset). Bytes the
/// server sent are read and dropped.
fn closed(s: &TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match s.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// How many of `sockets` the server has closed so far (`seen` marks them).
fn closed_ones(sockets: &[TcpStream], seen: &mut [bool]) -> usize {
    for (s, seen) in sockets.iter().zip(seen.iter_mut()) {
        if !*seen && closed(s) {
            *seen = true;
        }
    }
    seen.iter().filter(|c| **c).count()
}

/// Polls until every socket is closed; fails after `deadline`, naming how many are left.
async fn all_closed(sockets: &[TcpStream], deadline: Duration) -> Result<Duration> {
    let start = Instant::now();
    let mut seen = vec![false; sockets.len()];
    loop {
        let n = closed_ones(sockets, &mut seen);
        if n == sockets.len() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > deadline {
            bail!(
                "{} of {} connections still open after {deadline:?}",
                sockets.len() - n,
                sockets.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One sample of the node's `/metrics`, `name` being the whole series (with labels).
async fn metric(node: &NodeProc, name: &str) -> Result<f64> {
    let text = client()
        .get(node.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .with_context(|| format!("{name} missing in /metrics"))
}

async fn healthz(node: &NodeProc) -> Result<()> {
    let r = client().get(node.url("/healthz")).send().await?;
    ensure!(r.status() == 200, "/healthz answered {}", r.status());
    ensure!(r.text().await? == "ok\n");
    Ok(())
}

/// A WHIP offer that is not SDP: the node's normal answer is 400.
async fn whip_garbage(node: &NodeProc) -> Result<()> {
    let r = client()
        .post(node.url("/whip/room1"))
        .header("content-type", "application/sdp")
        .body("hello")
        .send()
        .await?;
    ensure!(r.status() == 400, "WHIP answered {}", r.status());
    Ok(())
}

#[tokio::test]
async fn slowloris_connections_are_closed_within_the_header_timeout() -> Result<()> {
    raise_open_file_limit();
    // Long enough that opening 1,000 connections on a slow, shared machine (4 s seen) ends
    // before the first of them times out.
    let header_timeout = Duration::from_secs(8);
    let origin = NodeProc::start(
        "cascade-origin",
        "origin-slowloris",
        &["--http-header-timeout", "8"],
    )?;
    let started = Instant::now();
    let sockets = open(origin.http, 1_000, HALF_HEAD).await?;
    let opened = Instant::now();

    // While all of them hang, the node answers.
    healthz(&origin).await?;
    whip_garbage(&origin).await?;
    let mut seen = vec![false; sockets.len()];
    let closed_early = closed_ones(&sockets, &mut seen);
    ensure!(
        closed_early == 0,
        "{closed_early} slow connections closed before the header timeout \
         ({:?} after the first opened)",
        started.elapsed()
    );

    // Each is closed at its header timeout (counted from its accept), none left behind.
    let took = all_closed(&sockets, header_timeout + Duration::from_secs(3)).await?;
    println!(
        "1000 connections opened in {:?}; all closed {:?} after the last",
        opened - started,
        took
    );
    healthz(&origin).await?;
    whip_garbage(&origin).await?;
    let timed_out = metric(
        &origin,
        "cascade_http_timed_out_connections_total{phase=\"header\"}",
    )
    .await?;
    ensure!(timed_out >= 1_000.0, "{timed_out} header timeouts counted");
    Ok(())
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() -> Result<()> {
    let origin = NodeProc::start(
        "cascade-origin",
        "origin-capped",
        &["--http-max-connections", "50", "--http-header-timeout", "4"],
    )?;
    let started = Instant::now();
    let sockets = open(origin.http, 100, b"").await?;

    // The 50 accepted last are closed at once; the first 50 hold the cap.
    let mut seen = vec![false; sockets.len()];
    poll(
        "the 50 over the cap to be closed",
        Duration::from_secs(2),
        || {
            let n = closed_ones(&sockets, &mut seen);
            async move { Ok((n >= 50).then_some(())) }
        },
    )
    .await?;
    let elapsed = started.elapsed();
    ensure!(
        elapsed < Duration::from_secs(4),
        "refusals took {elapsed:?}, as long as the header timeout"
    );
    let refused: Vec<usize> = (0..sockets.len()).filter(|&i| seen[i]).collect();
    ensure!(
        refused == (50..100).collect::<Vec<_>>(),
        "refused connections {refused:?}, expected the last 50"
    );
    // A newcomer is refused too, while the 50 are open.
    let late = open(origin.http, 1, b"").await?;
    all_closed(&late, Duration::from_secs(2))
        .await
        .context("a connection over the cap")?;

    // Once the held ones time out, the node answers again.
    all_closed(&sockets, Duration::from_secs(4 + 3)).await?;
    poll(
        "/healthz after the flood",
        Duration::from_secs(5),
        || async { Ok(healthz(&origin).await.is_ok().then_some(())) },
    )
    .await?;
    whip_garbage(&origin).await?;
    let refused = metric(&origin, "cascade_http_refused_connections_total").await?;
    ensure!(refused >= 51.0, "{refused} refusals counted");
    Ok(())
}

/// Reads one response to a `GET /healthz` (its body is `ok\n`).
async fn read_healthz(s: &mut TcpStream) -> Result<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(5), async {
        while !got.ends_with(b"\r\n\r\nok\n") {
            let n = s.read(&mut buf).await?;
            ensure!(n > 0, "closed before the response ended: {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
        Ok(())
    })
    .await
    .context("no response within 5 s")??;
    Ok(String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> Result<()> {
    let idle_timeout = Duration::from_secs(3);
    let origin = NodeProc::start(
        "cascade-origin",
        "origin-idle",
        &["--http-header-timeout", "1", "--http-idle-timeout", "3"],
    )?;
    let mut sockets = open(origin.http, 1, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    let response = read_healthz(&mut sockets[0]).await?;
    ensure!(response.starts_with("HTTP/1.1 200"), "{response}");
    let answered = Instant::now();
    let took = all_closed(&sockets, idle_timeout + Duration::from_secs(3)).await?;
    // The idle timeout, not the (shorter) header timeout, ends the wait for a next request.
    ensure!(
        took >= idle_timeout - Duration::from_millis(300),
        "closed {took:?} after its response, before the idle timeout"
    );
    println!(
        "idle connection closed {:?} after its response",
        answered.elapsed()
    );
    let idle = metric(
        &origin,
        "cascade_http_timed_out_connections_total{phase=\"idle\"}",
    )
    .await?;
    ensure!(idle >= 1.0, "{idle} idle timeouts counted");
    Ok(())
}

#[tokio::test]
async fn a_stalled_request_body_is_cut_off_at_the_body_timeout() -> Result<()> {
    let body_timeout = Duration::from_secs(1);
    let origin = NodeProc::start(
        "cascade-origin",
        "origin-body",
        &["--http-body-timeout", "1"],
    )?;
    // A tenth of the promised body, then nothing.
    let mut s = open(
        origin.http,
        1,
        b"POST /whip/room1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\n\
          Content-Length: 1000\r\n\r\nv=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n",
    )
    .await?
    .remove(0);
    let sent = Instant::now();
    let mut got = Vec::new();
    tokio::time::timeout(
        body_timeout + Duration::from_secs(4),
        s.read_to_end(&mut got),
    )
    .await
    .context("the stalled request was neither answered nor closed")??;
    let took = sent.elapsed();
    let response = String::from_utf8_lossy(&got);
    ensure!(response.starts_with("HTTP/1.1 400"), "{response}");
    ensure!(
        took >= body_timeout - Duration::from_millis(300),
        "answered after {took:?}, before the body timeout"
    );
    healthz(&origin).await?;
    Ok(())
}
