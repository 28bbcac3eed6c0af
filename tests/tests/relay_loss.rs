//! Loss on the relay link is repaired: in a network namespace of the test's own, nftables drops
//! 3 % of the packets the origin sends (its media ports), and viewers on the edge still receive
//! every packet, because the edge NACKs what the link lost and the origin retransmits it. The
//! nodes' `/metrics` count it: NACKs sent by the edge, received and answered by the origin.

use cascade_tests::{Netns, NodeProc, bin};
use serde_json::Value;

#[tokio::test]
async fn packets_lost_on_the_relay_link_are_recovered_by_nack() -> anyhow::Result<()> {
    let ns = Netns::create("loss")?;
    let origin = NodeProc::start_in(
        Some(&ns),
        "cascade-origin",
        "origin-1",
        &["--udp-ports", "42000-42199"],
    )?;
    let upstream = origin.grpc_url();
    let edge = NodeProc::start_in(
        Some(&ns),
        "cascade-edge",
        "edge-1",
        &["--upstream", &upstream],
    )?;

    ns.exec(&["nft", "add", "table", "inet", "cascade_loss"])?;
    ns.exec(&[
        "nft",
        "add",
        "chain",
        "inet",
        "cascade_loss",
        "out",
        "{ type filter hook output priority 0 ; }",
    ])?;
    ns.exec(&[
        "nft",
        "add",
        "rule",
        "inet",
        "cascade_loss",
        "out",
        "udp",
        "sport",
        "42000-42199",
        "numgen",
        "random",
        "mod",
        "100",
        "<",
        "3",
        "counter",
        "drop",
    ])?;

    let report_path =
        std::env::temp_dir().join(format!("cascade-loss-{}.json", std::process::id()));
    let status = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(bin("cascade-loadgen"))
        .args([
            "run",
            "--quiet",
            "--room",
            "loss",
            "--viewers",
            "3",
            "--duration",
            "12",
        ])
        .args(["--origin", &origin.url(""), "--edge", &edge.url("")])
        .arg("--json")
        .arg(&report_path)
        .status()?;
    assert!(status.success(), "loadgen failed");
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path)?)?;
    let _ = std::fs::remove_file(&report_path);

    let ruleset = ns.exec(&["nft", "list", "table", "inet", "cascade_loss"])?;
    let dropped: u64 = ruleset
        .split("counter packets ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("drop counter in the ruleset");

    // The nodes listen inside the namespace: scrape them from there.
    let counter = |node: &NodeProc, name: &str| -> anyhow::Result<f64> {
        let text = ns.exec(&["curl", "-sS", "--max-time", "10", &node.url("/metrics")])?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("{name} missing in {}'s metrics:\n{text}", node.name))
    };
    let nacks_sent = counter(&edge, "cascade_nacks_sent_total")?;
    let nacks_received = counter(&origin, "cascade_nacks_received_total")?;
    let retransmitted = counter(&origin, "cascade_retransmitted_packets_total")?;
    let lost = counter(&edge, "cascade_lost_packets_total{direction=\"ingress\"}")?;
    let viewer_nacks = counter(&edge, "cascade_nacks_received_total")?;
    let viewer_resent = counter(&edge, "cascade_retransmitted_packets_total")?;
    let refused = counter(&edge, "cascade_retransmits_refused_total")?;
    println!(
        "metrics: edge sent {nacks_sent} NACKs, origin received {nacks_received} and retransmitted \
         {retransmitted} packets; edge reported {lost} packets lost on ingress; viewers sent the \
         edge {viewer_nacks} NACKs, it resent {viewer_resent} packets and refused {refused}"
    );

    let video = &report["packets"]["video"];
    let audio = &report["packets"]["audio"];
    println!(
        "link drops: {dropped}; video expected {} lost {} ({}%) duplicates {}; audio expected {} lost {} ({}%)",
        video["expected"],
        video["lost"],
        video["loss_pct"],
        video["duplicates"],
        audio["expected"],
        audio["lost"],
        audio["loss_pct"]
    );
    assert_eq!(report["viewers"]["connected"], 3, "{}", report["viewers"]);
    let expected = video["expected"].as_u64().unwrap_or(0);
    assert!(expected > 2000, "too little video to measure: {expected}");
    // 3 % of the link's packets were dropped: dozens per viewer stream.
    assert!(dropped > 50, "the loss rule dropped only {dropped} packets");
    // What reaches viewers is (almost) whole: at least 10x less loss than the link had.
    let loss_pct = video["loss_pct"].as_f64().unwrap_or(100.0);
    if loss_pct >= 0.3 {
        // For the diagnosis: what the nodes said beyond the routine.
        for node in [&origin, &edge] {
            for line in node.log().iter().filter(|l| !l.contains(" INFO ")) {
                println!("{}: {line}", node.name);
            }
        }
        println!("report: {}", report["packets"]);
    }
    assert!(
        loss_pct < 0.3,
        "viewers lost {loss_pct}% of video despite NACK"
    );
    assert!(nacks_sent > 0.0, "the edge counted no NACK sent");
    assert!(nacks_received > 0.0, "the origin counted no NACK received");
    // Each NACK names one or more packets; most are answered from the send buffer.
    assert!(
        retransmitted >= nacks_received / 2.0,
        "{retransmitted} retransmissions for {nacks_received} NACKs"
    );
    Ok(())
}
