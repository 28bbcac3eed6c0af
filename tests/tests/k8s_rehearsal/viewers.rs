//! The viewers: a `cascade-loadgen run` against the pods (one publisher on the origin, viewers
//! on edges), and what its report must show.

use crate::kubelet::Pod;
use anyhow::{Context, Result, ensure};
use cascade_tests::{bin, poll};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Media the load generator sends: modest, so debug builds on a shared machine keep up.
pub(crate) const MEDIA: &[&str] = &[
    "--video-kbps",
    "300",
    "--fps",
    "25",
    "--audio-kbps",
    "32",
    "--keyframe-interval",
    "2",
    "--ramp",
    "10",
];

/// A `cascade-loadgen run`: one publisher on the origin, viewers on edges.
pub(crate) struct Loadgen {
    child: Child,
    json: PathBuf,
    started: Instant,
}

impl Loadgen {
    pub(crate) fn start(
        origin: &Pod,
        edges: &[&Pod],
        room: &str,
        viewers: u64,
        seconds: u32,
    ) -> Result<Self> {
        let json = std::env::temp_dir().join(format!(
            "cascade-rehearsal-{room}-{}.json",
            std::process::id()
        ));
        let pids: Vec<String> = std::iter::once(origin)
            .chain(edges.iter().copied())
            .map(|p| p.child.id().to_string())
            .collect();
        let mut cmd = Command::new(bin("cascade-loadgen"));
        cmd.args(["run", "--origin", &origin.url("")]);
        for e in edges {
            cmd.args(["--edge", &e.url("")]);
        }
        cmd.args(["--room", room, "--viewers", &viewers.to_string()])
            .args(["--duration", &seconds.to_string(), "--quiet"])
            .args(MEDIA)
            .args(["--pids", &pids.join(",")])
            .arg("--json")
            .arg(&json)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        Ok(Self {
            child: cmd.spawn().context("starting cascade-loadgen")?,
            json,
            started: Instant::now(),
        })
    }

    /// Waits for the run to end and returns its report.
    pub(crate) async fn finish(mut self, deadline: Duration) -> Result<Value> {
        let status = poll("cascade-loadgen to finish", deadline, || {
            let r = self.child.try_wait();
            async move { Ok(r?) }
        })
        .await?;
        ensure!(status.success(), "cascade-loadgen failed: {status}");
        let report: Value = serde_json::from_slice(&std::fs::read(&self.json)?)?;
        let _ = std::fs::remove_file(&self.json);
        println!(
            "loadgen {} finished after {:.1} s",
            report["config"]["room"],
            self.started.elapsed().as_secs_f64()
        );
        Ok(report)
    }
}

impl Drop for Loadgen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn num(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or(u64::MAX)
}

/// Every viewer connected, stayed connected and received both tracks; no packet lost beyond
/// what the kernel's receive-buffer drops on a starved machine explain (see `loadgen.rs`).
pub(crate) fn check_media(report: &Value, viewers: u64) -> Result<()> {
    let room = &report["config"]["room"];
    for (key, want) in [
        ("/viewers/started", viewers),
        ("/viewers/connected", viewers),
        ("/viewers/failed", 0),
        ("/viewers/disconnected", 0),
        ("/viewers/received_video", viewers),
        ("/viewers/received_audio", viewers),
    ] {
        ensure!(
            num(report, key) == want,
            "{room}: {key} is not {want}: {}",
            report["viewers"]
        );
    }
    ensure!(
        report["publisher"]["error"].is_null(),
        "{room}: {}",
        report["publisher"]
    );
    let own = num(report, "/loadgen/udp_rcvbuf_drops") + num(report, "/packets/client_drops");
    let servers: u64 = report["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["udp_rcvbuf_drops"].as_u64().unwrap_or(0))
        .sum();
    let explained = own + viewers * servers;
    let mut lost = 0;
    for kind in ["video", "audio"] {
        let t = &report["packets"][kind];
        ensure!(
            num(t, "/expected") > 0,
            "{room} {kind}: nothing expected: {t}"
        );
        lost += num(t, "/lost");
        if explained == 0 {
            for zero in ["lost", "seq_lost", "gap_events", "reordered", "duplicates"] {
                ensure!(t[zero] == 0, "{room} {kind} {zero}: {t}");
            }
        }
    }
    ensure!(
        lost <= explained,
        "{room}: {lost} packets lost, more than the kernel's drops explain ({explained})"
    );
    if explained > 0 {
        println!(
            "{room}: the kernel dropped datagrams (busy machine); {lost} lost, {explained} explained"
        );
    }
    for n in report["nodes"].as_array().into_iter().flatten() {
        for t in n["room"]["tracks"].as_array().into_iter().flatten() {
            ensure!(
                t["queue_drops"] == 0,
                "{room}: a node's queue dropped packets: {n}"
            );
        }
    }
    Ok(())
}
