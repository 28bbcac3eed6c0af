//! What the Redis tests share: a `redis-server` of their own per test, entries to write, a
//! poll with a deadline.
//!
//! The tests need `redis-server` (Debian package `redis-server`, or `REDIS_SERVER=/path`);
//! without it they fail with a message saying so.

// Each test file uses some of these.
#![allow(dead_code)]

use cascade_core::cluster::routing::{Link, NodeInfo, Role};
use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on 127.0.0.1, without persistence, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

pub fn redis_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("REDIS_SERVER") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file());
    match on_path {
        Some(p) => p,
        None if PathBuf::from("/usr/bin/redis-server").is_file() => "/usr/bin/redis-server".into(),
        None => panic!(
            "redis-server not found on PATH or at /usr/bin/redis-server: these tests need a real \
             Redis. Install the Debian package (apt-get install redis-server; scripts/test.sh \
             does) or set REDIS_SERVER=/path/to/redis-server"
        ),
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// True when something on `port` answers `PING` with `+PONG`.
pub fn answers_ping(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

impl RedisServer {
    pub fn start() -> Self {
        // A port found free can be taken before redis-server binds it: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start_on(free_port()) {
                Ok(server) => return server,
                Err(e) => last = e,
            }
        }
        panic!("could not start redis-server: {last}");
    }

    pub fn start_on(port: u16) -> Self {
        Self::try_start_on(port).unwrap_or_else(|e| panic!("could not start redis-server: {e}"))
    }

    pub fn try_start_on(port: u16) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "cascade-redis-{}-{port}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let binary = redis_server_binary();
        let child = Command::new(&binary)
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let mut server = Self {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if answers_ping(port) {
                return Ok(server);
            }
            if let Some(status) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("redis-server on port {port} exited: {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {port} did not answer PING in 15 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills it (SIGKILL: no goodbye on its connections' side beyond the kernel's reset).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A new process on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        let dir = std::mem::take(&mut self.dir);
        *self = Self::start_on(self.port);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Sends SIGSTOP or SIGCONT: a server that holds its connections open and answers nothing.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    }

    /// A plain connection for looking at the keys.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("raw connection")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn node(id: &str, role: Role) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        role,
        http_url: format!("http://127.0.0.1:1/{id}"),
        grpc_url: format!("http://127.0.0.1:2/{id}"),
        capacity: 10,
        load: 0,
        draining: false,
        version: "test".into(),
        heartbeat_unix_ms: None,
        cpu_percent: None,
        region: None,
        zone: None,
    }
}

pub fn link(room: &str, edge: &str, upstream: &str) -> Link {
    Link {
        room: room.into(),
        edge_id: edge.into(),
        upstream_id: upstream.into(),
    }
}

pub fn ids(nodes: &[NodeInfo]) -> Vec<&str> {
    nodes.iter().map(|n| n.id.as_str()).collect()
}

/// Polls `check` every 20 ms until it holds; panics with `what` after `within`. Returns the time
/// it took.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Redis's count of the commands it ran (those inside scripts included), from `INFO stats`.
pub fn commands_processed(raw: &mut redis::Connection) -> u64 {
    let stats: String = redis::cmd("INFO").arg("stats").query(raw).unwrap();
    stats
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("total_commands_processed in INFO stats")
}
