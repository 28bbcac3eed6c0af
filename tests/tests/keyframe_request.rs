//! A viewer's keyframe request travels up to the publisher, rate-limited: the publisher sends a
//! keyframe only once at the start, so a viewer joining later (when the edge holds no recent
//! keyframe) makes the edge ask upstream; the origin passes it on to the publisher, who answers.

use anyhow::Result;
use cascade_tests::{NodeProc, bin};
use serde_json::Value;

#[tokio::test]
async fn a_late_viewers_keyframe_request_reaches_the_publisher_through_the_relay() -> Result<()> {
    let origin = NodeProc::origin("origin-1")?;
    let edge = NodeProc::edge("edge-1", &origin)?;
    let json = std::env::temp_dir().join(format!("cascade-pli-{}.json", std::process::id()));
    // Two viewers, the second ten seconds after the first; keyframes only when asked (every
    // 1000 s otherwise), so by then the edge's keyframe cache has outgrown its bound.
    let status = std::process::Command::new(bin("cascade-loadgen"))
        .args([
            "run",
            "--quiet",
            "--room",
            "pli",
            "--viewers",
            "2",
            "--ramp",
            "0.1",
        ])
        .args(["--duration", "16", "--keyframe-interval", "1000"])
        .args(["--origin", &origin.url(""), "--edge", &edge.url("")])
        .arg("--json")
        .arg(&json)
        .status()?;
    assert!(status.success(), "loadgen failed");
    let report: Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    let _ = std::fs::remove_file(&json);
    let requests = report["publisher"]["keyframe_requests"]
        .as_u64()
        .unwrap_or(0);
    println!(
        "publisher received {requests} keyframe request(s); viewers {}",
        report["viewers"]
    );
    assert_eq!(
        report["viewers"]["received_video"], 2,
        "the late viewer got video"
    );
    assert!(requests >= 1, "no keyframe request reached the publisher");
    // Rate-limited: a handful, not one per packet or per viewer RTCP report.
    assert!(
        requests <= 10,
        "{requests} keyframe requests reached the publisher"
    );
    Ok(())
}
