//! Test harness: real node processes on loopback, real browsers through chromedriver.
//!
//! Nodes are started from the workspace's built binaries (`cargo build --bins` first; the
//! README's test command does it) on port 0; the harness reads the addresses they bound from
//! their `listening` log line. Waiting is always a poll with a deadline, never a bare sleep.

pub mod netlab;
pub use netlab::watch_in_lab;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The directory holding the workspace's binaries (`target/debug`), next to the test binary.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .to_path_buf()
}

/// Path of a workspace binary, or a panic telling how to build it.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A node process. Killed (SIGKILL) when dropped.
pub struct NodeProc {
    pub name: String,
    pub child: Child,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    /// The secret the node checks admin credentials with, when it has one: `status` mints
    /// its bearer token from it.
    admin_secret: Option<AdminSecret>,
}

/// What the harness signs its status requests with.
enum AdminSecret {
    /// `--auth-secret`: a JWT granting `admin`.
    Auth(String),
    /// `--cluster-secret` only: a cluster credential.
    Cluster(String),
}

impl AdminSecret {
    /// Reads the secret from the node's flags or environment, `--auth-secret` first.
    fn of(args: &[&str], env: &[(&str, &str)]) -> Option<Self> {
        let find = |flag: &str, var: &str| {
            args.windows(2)
                .find(|w| w[0] == flag)
                .map(|w| w[1].to_owned())
                .or_else(|| {
                    env.iter()
                        .find(|(k, _)| *k == var)
                        .map(|(_, v)| (*v).to_owned())
                })
        };
        find("--auth-secret", "CASCADE_AUTH_SECRET")
            .map(Self::Auth)
            .or_else(|| find("--cluster-secret", "CASCADE_CLUSTER_SECRET").map(Self::Cluster))
    }

    fn token(&self) -> String {
        match self {
            Self::Auth(secret) => {
                let exp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    + 600;
                jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                    &serde_json::json!({ "admin": true, "exp": exp }),
                    &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
                )
                .unwrap()
            }
            Self::Cluster(secret) => cluster_credential(secret, "cascade-cluster", 600),
        }
    }
}

impl NodeProc {
    /// Starts `binary` with `args` (listeners on port 0 unless given) and waits for it to listen.
    pub fn start(binary: &str, name: &str, args: &[&str]) -> Result<Self> {
        Self::start_in(None, binary, name, args)
    }

    /// Like [`NodeProc::start`], inside a network namespace when one is given.
    pub fn start_in(
        netns: Option<&Netns>,
        binary: &str,
        name: &str,
        args: &[&str],
    ) -> Result<Self> {
        Self::start_full(netns, binary, name, args, &[])
    }

    /// Like [`NodeProc::start`], with extra environment variables.
    pub fn start_with_env(
        binary: &str,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        Self::start_full(None, binary, name, args, env)
    }

    fn start_full(
        netns: Option<&Netns>,
        binary: &str,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.name]).arg(bin(binary));
                c
            }
            None => Command::new(bin(binary)),
        };
        // Loopback on port 0, unless the test chose a listen address.
        for flag in ["--http-listen", "--grpc-listen"] {
            if !args.contains(&flag) {
                cmd.args([flag, "127.0.0.1:0"]);
            }
        }
        cmd.args(["--node-id", name]).args(args);
        let mut node = Self::start_command(name, cmd, env)?;
        node.admin_secret = AdminSecret::of(args, env);
        Ok(node)
    }

    /// Starts the node `cmd` runs (given all its flags; nothing is added but `RUST_LOG` and
    /// `env`, and the test's own `CASCADE_*` variables are removed) and waits for it to listen.
    pub fn start_command(name: &str, mut cmd: Command, env: &[(&str, &str)]) -> Result<Self> {
        // A node refuses unknown `CASCADE_*` variables, and the test's own (such as
        // `CASCADE_SCREENSHOT_DIR`) are not the node's configuration.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CASCADE_") {
                cmd.env_remove(key);
            }
        }
        cmd.env(
            "RUST_LOG",
            std::env::var("TEST_NODE_LOG").unwrap_or_else(|_| "info".into()),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let binary = format!("{:?}", cmd.get_program());
        let mut child = cmd.spawn().with_context(|| format!("spawning {binary}"))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        let prefix = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(" listening ") {
                    let _ = tx.send(line.clone());
                }
                if std::env::var_os("TEST_NODE_ECHO").is_some() {
                    eprintln!("[{prefix}] {line}");
                }
                sink.lock().unwrap().push(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| anyhow!("{name} did not start listening within 20 s"))?;
        let field = |key: &str| -> Result<SocketAddr> {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .ok_or_else(|| anyhow!("no {key} in {line:?}"))?
                .parse()
                .with_context(|| format!("parsing {key} in {line:?}"))
        };
        Ok(Self {
            name: name.to_owned(),
            http: field("http=")?,
            grpc: field("grpc=")?,
            child,
            log,
            admin_secret: None,
        })
    }

    pub fn origin(name: &str) -> Result<Self> {
        Self::start("cascade-origin", name, &[])
    }

    pub fn edge(name: &str, upstream: &NodeProc) -> Result<Self> {
        Self::edge_with(name, upstream, &[])
    }

    /// An edge with extra flags.
    pub fn edge_with(name: &str, upstream: &NodeProc, args: &[&str]) -> Result<Self> {
        let url = upstream.grpc_url();
        let mut all = vec!["--upstream", url.as_str()];
        all.extend_from_slice(args);
        Self::start("cascade-edge", name, &all)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// The node's `/v1/node` status.
    /// The node's `/v1/node`, with an admin credential when the node has a secret to check one
    /// (a closed status API answers 401 without it).
    pub async fn status(&self) -> Result<Value> {
        let mut request = reqwest::Client::new().get(self.url("/v1/node"));
        if let Some(secret) = &self.admin_secret {
            request = request.bearer_auth(secret.token());
        }
        Ok(request.send().await?.error_for_status()?.json().await?)
    }

    /// The status entry of `room`, if the node holds it.
    pub async fn room(&self, room: &str) -> Result<Option<Value>> {
        let status = self.status().await?;
        Ok(status["rooms"]
            .as_array()
            .and_then(|rooms| rooms.iter().find(|r| r["room"] == room).cloned()))
    }

    /// Lines the node logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status if the process has exited by itself, without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// A `redis-server` of the test's own on a free loopback port, without persistence. Killed when
/// dropped; [`RedisProc::stop`] and [`RedisProc::restart`] simulate an outage (it comes back
/// empty, on the same port).
pub struct RedisProc {
    pub port: u16,
    child: Option<Child>,
}

impl RedisProc {
    /// Starts one and waits until it answers `PING`.
    pub fn start() -> Result<Self> {
        let mut me = Self {
            port: free_port(),
            child: None,
        };
        me.restart()?;
        Ok(me)
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A client connection for reading what the nodes wrote.
    pub async fn connection(&self) -> Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        Ok(client.get_multiplexed_async_connection().await?)
    }

    /// Kills the server (SIGKILL): an outage, not a shutdown.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port and waits until it answers `PING`.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .args(["--port", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow!(
                    "cannot run redis-server ({e}): install the Debian package redis-server \
                     (scripts/test.sh does)"
                )
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.ping_once() {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "redis-server on port {} exited at start: {status}",
                    self.port
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "redis-server on port {} did not answer PING within 10 s",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ping_once(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A network namespace of the test's own (loopback only), deleted when dropped. Needs root and
/// iproute2; nftables rules inside it can drop packets to test loss.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(tag: &str) -> Result<Self> {
        let name = format!("cascade-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let ns = Self { name };
        let status = Command::new("ip")
            .args(["netns", "add", &ns.name])
            .status()
            .context("running `ip` (Debian package iproute2)")?;
        if !status.success() {
            bail!("`ip netns add {}` failed: loss tests need root", ns.name);
        }
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs a command inside the namespace; returns its stdout, fails on a non-zero exit.
    pub fn exec(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .with_context(|| format!("running {args:?} in {}", self.name))?;
        if !out.status.success() {
            bail!(
                "{args:?} in {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A short load-generator broadcast (500 kbit/s video, 4 s) of `room`, published
/// to `origin` and watched by `viewers` viewers on `edge`, its JSON report
/// written to `json`. Add flags (a token) before running it.
pub fn loadgen_broadcast(
    origin: &NodeProc,
    edge: &NodeProc,
    room: &str,
    viewers: u32,
    json: &std::path::Path,
) -> Command {
    let mut cmd = Command::new(bin("cascade-loadgen"));
    cmd.args(["run", "--origin", &origin.url(""), "--edge", &edge.url("")])
        .args(["--room", room, "--viewers", &viewers.to_string()])
        .args(["--ramp", "10", "--duration", "4", "--video-kbps", "500"])
        .args(["--quiet", "--json"])
        .arg(json);
    cmd
}

/// Checks a finished load-generator run: it exited cleanly, `viewers` viewers
/// connected, and every one received video and audio without loss. Returns the
/// JSON report (read from `json`, which is removed).
pub fn assert_clean_broadcast(
    out: &std::process::Output,
    json: &std::path::Path,
    viewers: u64,
) -> Result<Value> {
    if !out.status.success() {
        bail!("loadgen failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let report: Value = serde_json::from_slice(&std::fs::read(json)?)?;
    let _ = std::fs::remove_file(json);
    assert_eq!(
        report["viewers"]["connected"], viewers,
        "{}",
        report["viewers"]
    );
    for kind in ["video", "audio"] {
        let t = &report["packets"][kind];
        assert!(t["received"].as_u64() > Some(0), "{kind}: {t}");
        assert_eq!(t["lost"], 0, "{kind}: {t}");
    }
    Ok(report)
}

/// A cluster credential as a node mints it: HS256, `sub` the calling node, audience
/// `cascade-cluster`.
pub fn cluster_credential(secret: &str, audience: &str, exp_from_now: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = serde_json::json!({ "sub": "test-client", "aud": audience, "iat": now, "exp": now + exp_from_now });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// Polls `check` every 200 ms until it returns `Some`, or fails after `deadline`.
pub async fn poll<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if start.elapsed() > deadline {
            bail!(
                "timed out after {:?} waiting for {what}{}",
                deadline,
                last_err
                    .map(|e| format!(" (last error: {e:#})"))
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A WebDriver server (chromedriver, geckodriver) in a process group of its own, which the
/// browsers it starts join: dropping it kills them all, even when a failing test never closed
/// its browsers.
struct DriverProc {
    child: Child,
    /// Where it answers: `127.0.0.1:port`, or the client's address in a [`netlab::ClientNet`].
    addr: SocketAddr,
}

impl DriverProc {
    async fn spawn(mut cmd: Command, addr: SocketAddr, what: &str) -> Result<Self> {
        let child = cmd
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {what}"))?;
        let me = Self { child, addr };
        poll(
            &format!("{what} to listen"),
            Duration::from_secs(20),
            || async {
                Ok(reqwest::get(format!("http://{addr}/status"))
                    .await
                    .ok()
                    .map(|_| ()))
            },
        )
        .await?;
        Ok(me)
    }

    async fn session(&self, caps: Value, what: &str) -> Result<fantoccini::Client> {
        let caps: serde_json::Map<String, Value> = serde_json::from_value(caps)?;
        // Only plain HTTP to the driver on loopback, but the builder wants a TLS provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        fantoccini::ClientBuilder::rustls()?
            .capabilities(caps)
            .connect(&format!("http://{}", self.addr))
            .await
            .with_context(|| format!("opening a {what} session"))
    }
}

impl Drop for DriverProc {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chromedriver process, from which browsers are opened.
pub struct Chromedriver {
    driver: DriverProc,
}

/// A TCP port on loopback that nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

impl Chromedriver {
    /// A chromedriver on loopback; its browsers use the machine's network.
    pub async fn start() -> Result<Self> {
        Self::start_in(None).await
    }

    /// A chromedriver whose browsers run in `net` (the network lab), when given: they reach the
    /// nodes only over that client's link.
    pub async fn start_in(net: Option<&netlab::ClientNet>) -> Result<Self> {
        let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]).context(
            "chromedriver not found: install the Debian packages chromium and chromium-driver",
        )?;
        let port = free_port();
        let (mut cmd, addr) = match net {
            Some(net) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &net.ns.name])
                    .arg(driver)
                    // The test talks to it from the host's end of the link.
                    .arg(format!("--allowed-ips={}", net.host_ip));
                (c, SocketAddr::new(net.client_ip.into(), port))
            }
            None => (
                Command::new(driver),
                SocketAddr::from(([127, 0, 0, 1], port)),
            ),
        };
        cmd.arg(format!("--port={port}"));
        let driver = DriverProc::spawn(cmd, addr, "chromedriver").await?;
        Ok(Self { driver })
    }

    /// Opens a headless Chromium with a fake camera and microphone.
    pub async fn browser(&self) -> Result<Browser> {
        self.browser_with(&[]).await
    }

    /// As [`Chromedriver::browser`], treating `origins` (`http://host:port`) as secure: a page
    /// served over plain HTTP from an address other than loopback may use the camera then.
    pub async fn browser_trusting(&self, origins: &[&str]) -> Result<Browser> {
        self.browser_with(&[format!(
            "--unsafely-treat-insecure-origin-as-secure={}",
            origins.join(",")
        )])
        .await
    }

    /// As [`Chromedriver::browser`], with more command-line arguments for Chromium.
    pub async fn browser_with(&self, extra: &[String]) -> Result<Browser> {
        let binary = find(&["/usr/lib/chromium/chromium", "/usr/bin/chromium"])
            .context("chromium not found: install the Debian package chromium")?;
        let profile = tempdir()?;
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                    "--allow-loopback-in-peer-connection",
                    "--autoplay-policy=no-user-gesture-required",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    "--disable-features=WebRtcHideLocalIpsWithMdns",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let mut caps = caps;
        if let Some(args) = caps["goog:chromeOptions"]["args"].as_array_mut() {
            args.extend(extra.iter().map(|a| serde_json::Value::from(a.as_str())));
        }
        let client = self.driver.session(caps, "Chromium").await?;
        Ok(Browser {
            client,
            profile,
            _driver: None,
        })
    }
}

/// A Chromium on loopback publishing VP8 from its fake camera to `room` on `origin`'s publish
/// page, once connected.
pub async fn publish_vp8(driver: &Chromedriver, origin: &NodeProc, room: &str) -> Result<Browser> {
    let publisher = driver.browser().await?;
    publisher
        .open(&origin.url(&format!("/publish.html?room={room}&codec=VP8&autostart=1")))
        .await?;
    publisher.wait_connected(Duration::from_secs(45)).await?;
    Ok(publisher)
}

/// Opens a headless Firefox (Debian's `firefox-esr`) with fake camera and microphone streams,
/// through a geckodriver of its own (geckodriver serves one session at a time).
pub async fn firefox() -> Result<Browser> {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin/geckodriver"));
    let geckodriver = which("geckodriver")
        .or(cargo_bin.filter(|p| p.exists()))
        .context("geckodriver not found: scripts/test.sh installs it with `cargo install`")?;
    let binary = find(&["/usr/bin/firefox-esr", "/usr/bin/firefox"])
        .context("firefox not found: install the Debian package firefox-esr")?;
    let port = free_port();
    let mut cmd = Command::new(geckodriver);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        // Its own Marionette and WebDriver BiDi ports: several run at once.
        .args(["--marionette-port", &free_port().to_string()])
        .args(["--websocket-port", &free_port().to_string()]);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let driver = DriverProc::spawn(cmd, addr, "geckodriver").await?;
    let profile = tempdir()?;
    let caps = serde_json::json!({
        "browserName": "firefox",
        "moz:firefoxOptions": {
            "binary": binary,
            "args": ["-headless", "-profile", profile],
            "prefs": {
                // Fake camera and microphone, no permission prompt, autoplay allowed.
                "media.navigator.streams.fake": true,
                "media.navigator.permission.disabled": true,
                "media.autoplay.default": 0,
                "media.autoplay.blocking_policy": 0,
                // Host candidates on loopback, by their address rather than an mDNS name.
                "media.peerconnection.ice.loopback": true,
                "media.peerconnection.ice.obfuscate_host_addresses": false,
                "network.proxy.type": 0,
                "app.update.disabledForTesting": true,
                "browser.shell.checkDefaultBrowser": false,
            }
        }
    });
    let client = driver.session(caps, "Firefox").await?;
    Ok(Browser {
        client,
        profile,
        _driver: Some(driver),
    })
}

/// This machine's first global IPv4 address (`ip -4 addr show scope global`). Firefox does not
/// connect to loopback ICE candidates, so nodes that Firefox reaches advertise this one. A
/// machine with none (a container with loopback only) gets one on a veth pair of its own
/// (`cascade-ff0`, 10.213.0.1; a veth, since kernels without the `dummy` driver exist), and a
/// default route through it when there is none (needs root, as the network lab does).
pub fn machine_ip() -> Result<std::net::IpAddr> {
    if let Some(ip) = global_ipv4()? {
        return Ok(ip);
    }
    for args in [
        &[
            "link",
            "add",
            "cascade-ff0",
            "type",
            "veth",
            "peer",
            "name",
            "cascade-ff1",
        ][..],
        &["addr", "add", "10.213.0.1/24", "dev", "cascade-ff0"],
        &["link", "set", "cascade-ff0", "up"],
        &["link", "set", "cascade-ff1", "up"],
        // Firefox gathers no host candidate on a machine without a default route.
        &[
            "route",
            "add",
            "default",
            "via",
            "10.213.0.2",
            "dev",
            "cascade-ff0",
            "onlink",
        ],
    ] {
        // Each step may have been done by an earlier test.
        let _ = Command::new("ip").args(args).stderr(Stdio::null()).status();
    }
    global_ipv4()?.context(
        "this machine has no global IPv4 address for Firefox's ICE candidates, and a veth \
         pair could not be added (root needed)",
    )
}

fn global_ipv4() -> Result<Option<std::net::IpAddr>> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .context("running ip (Debian package iproute2)")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .next())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.exists())
    })
}

/// A fresh directory under the system's temporary directory, for this test's files.
pub fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "cascade-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One headless browser: Chromium or Firefox.
pub struct Browser {
    pub client: fantoccini::Client,
    profile: PathBuf,
    /// The geckodriver of a Firefox, which serves it alone.
    _driver: Option<DriverProc>,
}

impl Browser {
    pub async fn open(&self, url: &str) -> Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("opening {url}"))?;
        Ok(())
    }

    /// Evaluates `expr` in the page and returns its JSON value.
    pub async fn eval(&self, expr: &str) -> Result<Value> {
        Ok(self
            .client
            .execute(&format!("return {expr};"), vec![])
            .await?)
    }

    /// Waits until the page's peer connection is connected (the pages set `window.cascade`).
    pub async fn wait_connected(&self, deadline: Duration) -> Result<()> {
        poll(
            "the page's peer connection to connect",
            deadline,
            || async {
                let v = self.eval("window.cascade").await?;
                if v["state"] == "error" {
                    bail!("page error: {}", v["error"]);
                }
                Ok((v["state"] == "connected").then_some(()))
            },
        )
        .await
    }

    /// The watch page's latest stats sample.
    pub async fn stats(&self) -> Result<Value> {
        self.eval("window.cascade.stats").await
    }

    /// Closes the browser without any goodbye to the server (no WHEP DELETE): like a crash.
    pub async fn kill(self) {
        let _ = self.client.close().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Waits until a watch page has decoded video frames and received audio, then until it has
/// decoded `more` frames beyond that. Returns the stats at the end.
pub async fn wait_playing(viewer: &Browser, more: u64, deadline: Duration) -> Result<Value> {
    // The last stats read go into the error: whether video, audio or the connection is missing.
    let last = std::cell::RefCell::new(Value::Null);
    let first = poll("decoded video and received audio", deadline, || async {
        let s = viewer.stats().await?;
        let ok = s["framesDecoded"].as_u64().unwrap_or(0) > 0
            && s["audioPackets"].as_u64().unwrap_or(0) > 0;
        *last.borrow_mut() = s.clone();
        Ok(ok.then_some(s))
    })
    .await
    .with_context(|| format!("the viewer's last stats: {}", last.borrow()))?;
    let base = first["framesDecoded"].as_u64().unwrap_or(0);
    let base_audio = first["audioPackets"].as_u64().unwrap_or(0);
    poll("decoded frames to keep increasing", deadline, || async {
        let s = viewer.stats().await?;
        let ok = s["framesDecoded"].as_u64().unwrap_or(0) >= base + more
            && s["audioPackets"].as_u64().unwrap_or(0) > base_audio;
        *last.borrow_mut() = s.clone();
        Ok(ok.then_some(s))
    })
    .await
    .with_context(|| format!("the viewer's last stats: {}", last.borrow()))
}

/// A `redis-server` started with the test's own arguments: a password, TLS, a replica, or
/// Sentinel mode (`redis-server FILE --sentinel`). `port` is the one it answers on (given in
/// `args` by the caller, as `--port` or `--tls-port`); killed (SIGKILL) when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// A free loopback port for [`RedisServer::start`].
    pub fn free_port() -> u16 {
        free_port()
    }

    /// Runs `redis-server args` and waits until `port` accepts TCP connections.
    pub fn start(port: u16, args: &[&str]) -> Result<Self> {
        let child = Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow!("cannot run redis-server ({e}): install redis-server"))?;
        let mut me = Self {
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = me.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("redis-server {args:?} exited at start: {status}");
            }
            if Instant::now() > deadline {
                bail!("redis-server {args:?} did not listen on {port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(me)
    }

    /// A Sentinel on a free port watching the master `name` at `127.0.0.1:master_port` with
    /// `quorum`, judging it down after `down_after_ms`; its config file lives in `dir`.
    pub fn sentinel(
        dir: &std::path::Path,
        name: &str,
        master_port: u16,
        quorum: u32,
        down_after_ms: u64,
    ) -> Result<Self> {
        let port = free_port();
        let conf = dir.join(format!("sentinel-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {name} 127.0.0.1 {master_port} {quorum}\n\
                 sentinel down-after-milliseconds {name} {down_after_ms}\n\
                 sentinel failover-timeout {name} 5000\n\
                 sentinel parallel-syncs {name} 1\n",
                dir = dir.display()
            ),
        )?;
        let conf = conf.to_str().context("utf-8 temp path")?.to_owned();
        Self::start(port, &[&conf, "--sentinel"])
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// [`loadgen_broadcast`] lasting `duration_s` seconds instead of 4.
pub fn loadgen_broadcast_for(
    origin: &NodeProc,
    edge: &NodeProc,
    room: &str,
    viewers: u32,
    duration_s: u32,
    json: &std::path::Path,
) -> Command {
    let mut cmd = Command::new(bin("cascade-loadgen"));
    cmd.args(["run", "--origin", &origin.url(""), "--edge", &edge.url("")])
        .args(["--room", room, "--viewers", &viewers.to_string()])
        .args(["--ramp", "10", "--duration", &duration_s.to_string()])
        .args(["--video-kbps", "500", "--quiet", "--json"])
        .arg(json);
    cmd
}
