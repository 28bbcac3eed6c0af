//! The Redis the simulated cluster shares: a `redis-server` of the run's own on a free loopback
//! port (no persistence), or one given by URL, and what its `INFO` says about the load.
//!
//! Only plain values leave this module: [`InfoSample`] (counters read once) and
//! [`RedisLoad`] (two samples' difference over the wall time between them).

use serde::Serialize;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the Redis of a run could not be had or read.
#[derive(Debug, thiserror::Error)]
pub enum RedisServerError {
    #[error("cannot run redis-server ({0}): install the Debian package redis-server")]
    Spawn(std::io::Error),
    #[error("redis-server on port {port} did not answer PING within {within:?}")]
    NoAnswer { port: u16, within: Duration },
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// A `redis-server` child process, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    /// Starts one on a free loopback port with `--save "" --appendonly no` and waits until it
    /// answers `PING`.
    pub async fn start() -> Result<Self, RedisServerError> {
        let port = free_port().map_err(RedisServerError::Spawn)?;
        let child = Command::new("redis-server")
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .args(["--port", &port.to_string(), "--maxclients", "20000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(RedisServerError::Spawn)?;
        let server = Self { port, child };
        let within = Duration::from_secs(10);
        let deadline = Instant::now() + within;
        loop {
            if let Ok(mut con) = connect(&server.url()).await
                && redis::cmd("PING")
                    .query_async::<String>(&mut con)
                    .await
                    .is_ok()
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(RedisServerError::NoAnswer { port, within });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now (bound and released; another process could take it in
/// between, which a start then reports as a server that never answered).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A plain connection for `INFO` and `FLUSHALL`, apart from the nodes' own.
pub async fn connect(url: &str) -> Result<redis::aio::MultiplexedConnection, RedisServerError> {
    let client = redis::Client::open(url)?;
    Ok(client.get_multiplexed_async_connection().await?)
}

/// Empties the server (a run given a Redis by URL starts from nothing, as a spawned one does).
pub async fn flush(con: &mut redis::aio::MultiplexedConnection) -> Result<(), RedisServerError> {
    redis::cmd("FLUSHALL").query_async::<()>(con).await?;
    Ok(())
}

/// The counters of one `INFO all`, at one time.
#[derive(Debug, Clone)]
pub struct InfoSample {
    pub at: Instant,
    /// `total_commands_processed`: commands run, those inside scripts included (an `EVALSHA`
    /// counts once, and so does each command its script calls).
    pub commands: u64,
    /// `used_cpu_sys + used_cpu_user`, seconds.
    pub cpu_s: f64,
    /// `used_memory`, bytes.
    pub used_memory: u64,
    pub connected_clients: u64,
    /// `INFO commandstats`: calls per command, those run inside scripts included.
    pub calls: BTreeMap<String, u64>,
}

/// Reads `INFO all` now.
pub async fn sample(
    con: &mut redis::aio::MultiplexedConnection,
) -> Result<InfoSample, RedisServerError> {
    let text: String = redis::cmd("INFO").arg("all").query_async(con).await?;
    Ok(parse_info(&text, Instant::now()))
}

/// The counters [`InfoSample`] keeps, from `INFO` text; missing fields read as zero.
pub fn parse_info(text: &str, at: Instant) -> InfoSample {
    let mut fields = BTreeMap::new();
    let mut calls = BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.trim_end().split_once(':') else {
            continue;
        };
        if let Some(command) = key.strip_prefix("cmdstat_") {
            // cmdstat_get:calls=12,usec=34,...
            let n = value
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            calls.insert(command.to_owned(), n);
        } else {
            fields.insert(key, value);
        }
    }
    let int = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let float = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    InfoSample {
        at,
        commands: int("total_commands_processed"),
        cpu_s: float("used_cpu_sys") + float("used_cpu_user"),
        used_memory: int("used_memory"),
        connected_clients: int("connected_clients"),
        calls,
    }
}

/// What Redis did between two samples.
#[derive(Debug, Clone, Serialize)]
pub struct RedisLoad {
    /// Commands run per second (`total_commands_processed`): an `EVALSHA` counts once, and so
    /// does each command its script calls.
    pub ops_per_sec: f64,
    /// `EVALSHA` calls per second: the scripts clients ran, each one round trip.
    pub evalsha_per_sec: f64,
    /// Redis's CPU (user + system) over the wall time; 100 = one core busy.
    pub cpu_pct: f64,
    /// `used_memory` at the end, MiB.
    pub memory_mib: f64,
    pub connected_clients: u64,
    /// Calls per second of each command seen, those inside scripts included.
    pub per_command: BTreeMap<String, f64>,
}

impl RedisLoad {
    pub fn between(a: &InfoSample, b: &InfoSample) -> Self {
        let wall = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
        let per_command: BTreeMap<String, f64> = b
            .calls
            .iter()
            .map(|(cmd, n)| {
                let before = a.calls.get(cmd).copied().unwrap_or(0);
                (cmd.clone(), n.saturating_sub(before) as f64 / wall)
            })
            .filter(|(_, rate)| *rate > 0.0)
            .collect();
        // INFO itself is counted: two per interval, negligible.
        Self {
            ops_per_sec: b.commands.saturating_sub(a.commands) as f64 / wall,
            evalsha_per_sec: per_command.get("evalsha").copied().unwrap_or(0.0),
            cpu_pct: (b.cpu_s - a.cpu_s).max(0.0) / wall * 100.0,
            memory_mib: b.used_memory as f64 / (1024.0 * 1024.0),
            connected_clients: b.connected_clients,
            per_command,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Stats\r\ntotal_commands_processed:1000\r\n\
        # CPU\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.5\r\n# Memory\r\nused_memory:1048576\r\n\
        # Commandstats\r\ncmdstat_evalsha:calls=300,usec=900,usec_per_call=3.00\r\n\
        cmdstat_get:calls=50,usec=10\r\n";

    #[test]
    fn info_text_parses_and_two_samples_make_rates() {
        let t0 = Instant::now();
        let a = parse_info(INFO, t0);
        assert_eq!(a.commands, 1000);
        assert_eq!(a.calls["evalsha"], 300);
        let later = INFO
            .replace("processed:1000", "processed:3000")
            .replace("calls=300", "calls=1300")
            .replace("used_cpu_user:2.5", "used_cpu_user:3.5");
        let b = parse_info(&later, t0 + Duration::from_secs(2));
        let load = RedisLoad::between(&a, &b);
        assert_eq!(load.ops_per_sec, 1000.0);
        assert_eq!(load.evalsha_per_sec, 500.0);
        assert_eq!(load.cpu_pct, 50.0);
        assert_eq!(load.memory_mib, 1.0);
    }

    #[test]
    fn garbage_info_reads_as_zeros() {
        let s = parse_info(
            "garbage\n:\ncmdstat_x:calls=nope\nused_memory:-1",
            Instant::now(),
        );
        assert_eq!(s.commands, 0);
        assert_eq!(s.used_memory, 0);
        assert_eq!(s.calls["x"], 0);
    }
}
