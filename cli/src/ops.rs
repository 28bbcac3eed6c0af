//! The operator's commands: `status`, `rooms`, `room`, `sessions`, `session close`, `drain`, as clients of any node's status
//! API (`--url` or `CASCADE_URL`). `--json` prints the API's JSON instead of tables.
//! `--token` (`CASCADE_ADMIN_TOKEN`) is sent as `Authorization: Bearer` with every request.

use anyhow::{Context, Result, bail};
use cascade_core::api::status::{
    ClusterReport, NodeDetail, RoomReport, RoomsReport, SessionsReport,
};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// An HTTP client of one node's API.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// A client of the node at `url`, sending `token` (an admin credential) with each request.
    pub fn new(url: &str, token: Option<&[u8]>) -> Result<Self> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--url must be an http:// or https:// URL of a Cascade node, not {url:?}");
        }
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let mut value = reqwest::header::HeaderValue::from_bytes(
                &[b"Bearer ".as_slice(), token.trim_ascii()].concat(),
            )
            .map_err(|_| anyhow::anyhow!("--token: not a valid HTTP header value"))?;
            // Kept out of reqwest's Debug output.
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()?;
        Ok(Self { base, http })
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: &str) -> Result<serde_json::Value> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the Cascade node at {url}"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .with_context(|| format!("reading the answer of {url}"))?;
        let value: serde_json::Value = serde_json::from_str(&body)
            .with_context(|| format!("{url} answered {status} with something that is not JSON"))?;
        if !status.is_success() {
            bail!(
                "{url} answered {status}: {} ({})",
                value["message"].as_str().unwrap_or(&body),
                value["code"].as_str().unwrap_or("no code")
            );
        }
        Ok(value)
    }

    /// `GET {base}{path}` as JSON; an error names the URL.
    pub async fn get(&self, path: &str) -> Result<serde_json::Value> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(&url), &url).await
    }

    async fn get_as<T: DeserializeOwned>(&self, path: &str) -> Result<(serde_json::Value, T)> {
        let value = self.get(path).await?;
        let typed = serde_json::from_value(value.clone())
            .with_context(|| format!("unexpected answer from {}{path}", self.base))?;
        Ok((value, typed))
    }
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn kbps(bps: Option<u64>) -> String {
    bps.map_or_else(|| "-".to_owned(), |b| format!("{} kb/s", b / 1000))
}

/// `rows` (the first one the heading) in columns as wide as their widest cell.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// The node table.
pub fn nodes_table(cluster: &ClusterReport) -> String {
    let mut rows = vec![
        [
            "NODE", "ROLE", "REGION", "ZONE", "STATE", "LOAD", "VIEWERS", "ROOMS", "INGRESS",
            "EGRESS", "VERSION", "HTTP",
        ]
        .map(str::to_owned),
    ];
    for n in &cluster.nodes {
        rows.push([
            n.id.clone(),
            n.role.as_str().to_owned(),
            or_dash(n.region.as_deref()),
            or_dash(n.zone.as_deref()),
            if n.reachable {
                format!("{:?}", n.state).to_lowercase()
            } else {
                "unreachable".to_owned()
            },
            format!("{}/{}", n.load, n.capacity),
            or_dash(n.viewers),
            or_dash(n.rooms),
            kbps(n.ingress_bps),
            kbps(n.egress_bps),
            n.version.clone(),
            n.http_url.clone(),
        ]);
    }
    let mut out = table(&rows);
    let t = &cluster.totals;
    let _ = writeln!(
        out,
        "{} nodes ({} origins, {} edges), {} rooms, {} viewers",
        t.nodes, t.origins, t.edges, t.rooms, t.viewers
    );
    out
}

/// A room's header line and its relay tree, the origin at the root.
pub fn room_tree(room: &RoomReport) -> String {
    let viewers: BTreeMap<&str, Option<usize>> = room
        .viewers
        .iter()
        .map(|v| (v.node.as_str(), v.viewers))
        .collect();
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for link in &room.links {
        children
            .entry(link.upstream.as_str())
            .or_default()
            .push(link.edge.as_str());
    }
    let tracks: Vec<String> = room
        .tracks
        .iter()
        .map(|t| format!("{} {}", t.codec, kbps(t.bitrate_bps)))
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "room {}: {} viewers, up {}, tracks: {}",
        room.room,
        room.viewers_total,
        room.age_seconds
            .map_or_else(|| "?".to_owned(), |s| format!("{s} s")),
        if tracks.is_empty() {
            "none".to_owned()
        } else {
            tracks.join(", ")
        }
    );
    let link_rate: BTreeMap<&str, (Option<u64>, &[String])> = room
        .links
        .iter()
        .map(|l| (l.edge.as_str(), (l.bitrate_bps, &l.paused_layers[..])))
        .collect();
    let label = |node: &str| {
        let v = viewers.get(node).copied().flatten();
        let who = match v {
            Some(1) => format!("{node} (1 viewer"),
            Some(n) => format!("{node} ({n} viewers"),
            None => format!("{node} (unreachable"),
        };
        match link_rate.get(node) {
            Some((rate, [])) => format!("{who}, link {})", kbps(*rate)),
            Some((rate, paused)) => {
                format!("{who}, link {}, paused {})", kbps(*rate), paused.join(" "))
            }
            None => format!("{who})"),
        }
    };
    let _ = writeln!(out, "{} [origin]", label(&room.origin));
    fn walk(
        out: &mut String,
        node: &str,
        prefix: &str,
        children: &BTreeMap<&str, Vec<&str>>,
        label: &dyn Fn(&str) -> String,
        depth: usize,
    ) {
        // Links are leases written by each edge: a stale cycle must not loop forever.
        if depth > 32 {
            return;
        }
        let kids = children.get(node).map_or(&[][..], |k| &k[..]);
        for (i, kid) in kids.iter().enumerate() {
            let last = i + 1 == kids.len();
            let _ = writeln!(
                out,
                "{prefix}{}{}",
                if last { "└── " } else { "├── " },
                label(kid)
            );
            let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
            walk(out, kid, &deeper, children, label, depth + 1);
        }
    }
    walk(&mut out, &room.origin, "", &children, &label, 0);
    // Links whose upstream is not in the tree (its lease is being replaced).
    for link in &room.links {
        let mut up = link.upstream.as_str();
        let mut reached = false;
        for _ in 0..=room.links.len() {
            if up == room.origin {
                reached = true;
                break;
            }
            match room.links.iter().find(|l| l.edge == up) {
                Some(l) => up = &l.upstream,
                None => break,
            }
        }
        if !reached {
            let _ = writeln!(
                out,
                "  ? {} ← {} (not under the origin)",
                label(&link.edge),
                link.upstream
            );
        }
    }
    out
}

pub async fn status(api: &Api, json: bool) -> Result<()> {
    let (cluster_json, cluster) = api.get_as::<ClusterReport>("/v1/cluster").await?;
    let (rooms_json, rooms) = api.get_as::<RoomsReport>("/v1/rooms").await?;
    if json {
        return print_json(&serde_json::json!({ "cluster": cluster_json, "rooms": rooms_json }));
    }
    print!("{}", nodes_table(&cluster));
    for room in &rooms.rooms {
        println!();
        print!("{}", room_tree(room));
    }
    Ok(())
}

pub async fn rooms(api: &Api, json: bool) -> Result<()> {
    let (value, rooms) = api.get_as::<RoomsReport>("/v1/rooms").await?;
    if json {
        return print_json(&value);
    }
    if rooms.rooms.is_empty() {
        println!("no rooms");
    }
    for (i, room) in rooms.rooms.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", room_tree(room));
    }
    Ok(())
}

pub async fn room(api: &Api, room: &str, json: bool) -> Result<()> {
    let (value, report) = api
        .get_as::<RoomReport>(&format!("/v1/rooms/{room}"))
        .await?;
    if json {
        return print_json(&value);
    }
    print!("{}", room_tree(&report));
    Ok(())
}

/// Finds the room's origin through the cluster API and asks it to end the room (with the admin
/// token, or from the origin's own machine).
pub async fn close_room(api: &Api, room: &str, json: bool) -> Result<()> {
    let (_, report) = api
        .get_as::<RoomReport>(&format!("/v1/rooms/{room}"))
        .await?;
    let (_, origin) = api
        .get_as::<NodeDetail>(&format!("/v1/nodes/{}", report.origin))
        .await?;
    let url = format!(
        "{}/v1/rooms/{room}",
        origin.summary.http_url.trim_end_matches('/')
    );
    let value = api.send(api.http.delete(&url), &url).await?;
    if json {
        return print_json(&value);
    }
    println!(
        "room {room} closed by {}: its publisher and viewers are disconnected",
        value["closed_by"].as_str().unwrap_or("its origin")
    );
    Ok(())
}

/// The sessions of the node at `--url`.
pub async fn sessions(api: &Api, json: bool) -> Result<()> {
    let (value, report) = api.get_as::<SessionsReport>("/v1/sessions").await?;
    if json {
        return print_json(&value);
    }
    let mut rows = vec![["SESSION", "ROOM", "KIND", "CONNECTED"].map(str::to_owned)];
    rows.extend(report.sessions.iter().map(|s| {
        [
            s.id.clone(),
            s.room.clone(),
            format!("{:?}", s.kind).to_lowercase(),
            s.connected.to_string(),
        ]
    }));
    print!("{}", table(&rows));
    Ok(())
}

/// Ends one session of the node at `--url` (with the admin token, or from its machine).
pub async fn close_session(api: &Api, id: &str, json: bool) -> Result<()> {
    let url = format!("{}/v1/sessions/{id}", api.base);
    let value = api.send(api.http.delete(&url), &url).await?;
    if json {
        return print_json(&value);
    }
    println!(
        "{} session {id} of room {} closed",
        value["kind"].as_str().unwrap_or("the"),
        value["room"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// Finds the node through the cluster API and asks it to drain (with the admin token, or from
/// the node's own machine, which its drain endpoint accepts from loopback by default).
pub async fn drain(api: &Api, node: &str, json: bool) -> Result<()> {
    let (_, detail) = api
        .get_as::<NodeDetail>(&format!("/v1/nodes/{node}"))
        .await?;
    let url = format!(
        "{}/v1/nodes/{}/drain",
        detail.summary.http_url.trim_end_matches('/'),
        detail.summary.id
    );
    let value = api.send(api.http.post(&url), &url).await?;
    if json {
        return print_json(&value);
    }
    if value["already_draining"] == true {
        println!("{} was already draining", detail.summary.id);
    } else {
        println!(
            "{} is draining: no new sessions; it exits when its sessions leave or after {} s",
            detail.summary.id, value["drain_timeout_seconds"]
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_core::api::status::{LinkReport, NodeViewers};

    #[test]
    fn the_tree_hangs_edges_under_their_upstream() {
        let v = |n: &str, c| NodeViewers {
            node: n.into(),
            viewers: Some(c),
        };
        let l = |e: &str, u: &str| LinkReport {
            edge: e.into(),
            upstream: u.into(),
            bitrate_bps: Some(1_000),
            paused_layers: if e == "c" {
                vec!["h".into(), "m".into()]
            } else {
                vec![]
            },
        };
        let room = RoomReport {
            room: "r".into(),
            origin: "o".into(),
            age_seconds: Some(3),
            tracks: vec![],
            links: vec![l("a", "o"), l("b", "o"), l("c", "a")],
            viewers: vec![v("o", 0), v("a", 1), v("b", 2), v("c", 3)],
            viewers_total: 6,
        };
        let tree = room_tree(&room);
        assert_eq!(
            tree,
            "room r: 6 viewers, up 3 s, tracks: none\n\
             o (0 viewers) [origin]\n\
             ├── a (1 viewer, link 1 kb/s)\n\
             │   └── c (3 viewers, link 1 kb/s, paused h m)\n\
             └── b (2 viewers, link 1 kb/s)\n"
        );
    }
}
