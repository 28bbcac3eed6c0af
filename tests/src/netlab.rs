//! The network lab: a client of the test gets a network of its own, so that one viewer can
//! watch over a slow, lossy or UDP-less link while the others watch over loopback.
//!
//! A [`ClientNet`] is a network namespace joined to the host by a veth pair on a /30 of
//! `10.203.0.0/16`: the host's end (`host_ip`) is an address of the machine, which the nodes
//! listen on and advertise; the client's end (`client_ip`) is where its browser or load generator
//! runs. Shaping is applied where real links shape: a `tbf` token bucket on the host's end
//! limits what reaches the client, nftables `numgen random` rules in the namespace drop a share
//! of its incoming UDP, and a rule can drop all of its UDP. `netem` is not used (these machines
//! may not have it). Needs root, iproute2 (`ip`, `tc`) and nftables.

use crate::Netns;
use anyhow::{Context, Result, bail};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

/// Which /30 the next [`ClientNet`] of this process takes.
static NEXT: AtomicU8 = AtomicU8::new(0);

/// One client's own network, joined to the host by a veth pair. Removed when dropped.
pub struct ClientNet {
    pub ns: Netns,
    /// The veth end in the host's namespace.
    host_if: String,
    /// The host's address on the link: nodes listen on and advertise it.
    pub host_ip: Ipv4Addr,
    /// The client's address.
    pub client_ip: Ipv4Addr,
}

fn run(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {args:?}"))?;
    if !out.status.success() {
        bail!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl ClientNet {
    /// A new namespace `tag`, with a veth pair to the host and a default route through it.
    pub fn create(tag: &str) -> Result<Self> {
        let index = NEXT.fetch_add(1, Ordering::Relaxed);
        // /30 number `subnet` of 10.203.0.0/16, apart per process so parallel test binaries
        // do not collide.
        let subnet = (std::process::id() % 256) as u16 * 64 + u16::from(index % 64);
        let base = u32::from(Ipv4Addr::new(10, 203, 0, 0)) + u32::from(subnet) * 4;
        let host_ip = Ipv4Addr::from(base + 1);
        let client_ip = Ipv4Addr::from(base + 2);
        let ns = Netns::create(tag)?;
        // Interface names are at most 15 bytes.
        let host_if = format!("cl{}h{index}", std::process::id() % 100_000);
        let client_if = format!("cl{}c{index}", std::process::id() % 100_000);
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        run(&[
            "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &client_if,
        ])?;
        let me = Self {
            ns,
            host_if,
            host_ip,
            client_ip,
        };
        run(&["ip", "link", "set", &client_if, "netns", &me.ns.name])?;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{host_ip}/30"),
            "dev",
            &me.host_if,
        ])?;
        run(&["ip", "link", "set", &me.host_if, "up"])?;
        me.ns.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{client_ip}/30"),
            "dev",
            &client_if,
        ])?;
        me.ns.exec(&["ip", "link", "set", &client_if, "up"])?;
        me.ns
            .exec(&["ip", "route", "add", "default", "via", &host_ip.to_string()])?;
        Ok(me)
    }

    /// Limits what reaches the client to `kbit` kbit/s (a `tbf` token bucket on the host's
    /// end, 200 ms of queue), as a slow access link does; replaces an earlier limit.
    pub fn rate_limit(&self, kbit: u32) -> Result<()> {
        let _ = Command::new("tc")
            .args(["qdisc", "del", "dev", &self.host_if, "root"])
            .output();
        run(&[
            "tc",
            "qdisc",
            "add",
            "dev",
            &self.host_if,
            "root",
            "tbf",
            "rate",
            &format!("{kbit}kbit"),
            "burst",
            "16kb",
            "latency",
            "200ms",
        ])
    }

    /// Lifts the rate limit.
    pub fn unlimited(&self) -> Result<()> {
        run(&["tc", "qdisc", "del", "dev", &self.host_if, "root"])
    }

    /// Drops `percent` % of the UDP datagrams reaching the client, at random (nftables
    /// `numgen random`); replaces earlier loss.
    pub fn random_loss(&self, percent: u32) -> Result<()> {
        self.rules(
            &format!("meta l4proto udp numgen random mod 100 < {percent} drop"),
            None,
        )
    }

    /// Drops every UDP datagram to and from the client (DNS aside, the client has no other
    /// use for UDP here): a network that allows only TCP.
    pub fn block_udp(&self) -> Result<()> {
        let rule = "meta l4proto udp drop";
        self.rules(rule, Some(rule))
    }

    /// Drops every UDP datagram to and from the client but those to and from `port` (a TURN
    /// server's): a network whose firewall lets UDP through to one service only.
    pub fn block_udp_except(&self, port: u16) -> Result<()> {
        self.rules(
            &format!("meta l4proto udp udp sport != {port} drop"),
            Some(&format!("meta l4proto udp udp dport != {port} drop")),
        )
    }

    /// Removes every loss and blocking rule.
    pub fn clear_rules(&self) -> Result<()> {
        let _ = self
            .ns
            .exec(&["nft", "delete", "table", "inet", "cascade_lab"]);
        Ok(())
    }

    /// Replaces the namespace's rules with one input rule `input`, and the output rule
    /// `output` if any.
    fn rules(&self, input: &str, output: Option<&str>) -> Result<()> {
        self.clear_rules()?;
        self.ns
            .exec(&["nft", "add", "table", "inet", "cascade_lab"])?;
        for (chain, hook) in [("in", "input"), ("out", "output")] {
            self.ns.exec(&[
                "nft",
                "add",
                "chain",
                "inet",
                "cascade_lab",
                chain,
                &format!("{{ type filter hook {hook} priority 0 ; }}"),
            ])?;
        }
        for (chain, rule) in [("in", Some(input)), ("out", output)] {
            let Some(rule) = rule else { continue };
            let mut args = vec!["nft", "add", "rule", "inet", "cascade_lab", chain];
            args.extend(rule.split_whitespace());
            self.ns.exec(&args)?;
        }
        Ok(())
    }
}

impl Drop for ClientNet {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; the namespace goes with `Netns`.
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

impl crate::NodeProc {
    /// A node of `binary` that a client in `net` reaches (`cascade_tests::netlab`): it listens
    /// on every address and advertises the host's end of the client's link, which nodes on
    /// loopback reach too (it is an address of this machine). `args` come first.
    pub fn for_lab(binary: &str, name: &str, net: &ClientNet, args: &[&str]) -> Result<Self> {
        let host = net.host_ip.to_string();
        let mut all = args.to_vec();
        all.extend(["--http-listen", "0.0.0.0:0", "--advertise-ip", &host]);
        Self::start(binary, name, &all)
    }
}

/// A Chromium of `lab` (a chromedriver in `net`) watching `room` on `edge`'s watch page, at
/// the host's end of the client's link.
pub async fn watch_in_lab(
    lab: &crate::Chromedriver,
    net: &ClientNet,
    edge: &crate::NodeProc,
    room: &str,
) -> Result<crate::Browser> {
    let viewer = lab.browser().await?;
    viewer
        .open(&format!(
            "http://{}:{}/watch.html?room={room}&autostart=1",
            net.host_ip,
            edge.http.port()
        ))
        .await?;
    Ok(viewer)
}
