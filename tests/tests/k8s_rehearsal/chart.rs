//! The Helm chart as `helm template` renders it, read the way the kubelet reads a pod spec:
//! the pod templates of the origin and edge workloads, their ports (mapped to free ports of
//! this machine), ConfigMap keys, and Kubernetes' `$(VAR)` expansion.

use anyhow::{Context, Result, anyhow, ensure};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// What the kubelet gives `status.podIP` and `status.hostIP` here.
pub(crate) const POD_IP: &str = "127.0.0.1";
/// The container port of the UDP mux: a single port, mapped like the TCP ports.
pub(crate) const MUX_PORT: &str = "udp-mux";
/// Variables whose whole value is one of the pod's ports, by protocol (a listen address
/// `0.0.0.0:<port>` is mapped wherever it appears).
pub(crate) const PORT_ENV: &[(&str, &str)] = &[
    ("CASCADE_UDP_MUX_PORT", "UDP"),
    ("CASCADE_ICE_TCP_PORT", "TCP"),
];

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The resources `helm template` rendered.
pub(crate) struct Chart {
    docs: Vec<Value>,
}

impl Chart {
    /// Renders the chart through `deploy/render-chart.sh` (which fetches Helm on first use).
    pub(crate) fn render(sets: &[&str]) -> Result<Self> {
        let root = workspace_root();
        let out = std::env::temp_dir().join(format!("cascade-rehearsal-{}", std::process::id()));
        let mut cmd = Command::new(root.join("deploy/render-chart.sh"));
        cmd.arg(&out)
            .arg("-f")
            .arg(root.join("helm/cascade/ci/default-values.yaml"));
        for set in sets {
            cmd.args(["--set", set]);
        }
        let status = cmd.status().context("running deploy/render-chart.sh")?;
        ensure!(status.success(), "deploy/render-chart.sh failed: {status}");
        let text = std::fs::read_to_string(out.join("all.yaml"))?;
        let _ = std::fs::remove_dir_all(&out);
        let mut docs = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc).context("parsing helm template output")?;
            if !value.is_null() {
                docs.push(value);
            }
        }
        Ok(Self { docs })
    }

    pub(crate) fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.docs.iter().filter(move |d| d["kind"] == kind)
    }

    pub(crate) fn config_map(&self, name: &str, key: &str) -> Result<String> {
        self.of_kind("ConfigMap")
            .find(|d| d["metadata"]["name"] == name)
            .and_then(|d| d["data"][key].as_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("ConfigMap {name} has no key {key}"))
    }

    /// A key of a rendered Secret, decoded.
    pub(crate) fn secret(&self, name: &str, key: &str) -> Result<String> {
        use base64::Engine;
        let doc = self
            .of_kind("Secret")
            .find(|d| d["metadata"]["name"] == name)
            .ok_or_else(|| anyhow!("no Secret {name} rendered"))?;
        if let Some(v) = doc["stringData"][key].as_str() {
            return Ok(v.to_owned());
        }
        let encoded = doc["data"][key]
            .as_str()
            .ok_or_else(|| anyhow!("Secret {name} has no key {key}"))?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded)?;
        Ok(String::from_utf8(bytes)?)
    }

    /// The pod template of the workload running `component`.
    pub(crate) fn pod_template(&self, component: &str) -> Result<PodTemplate> {
        let workload = self
            .docs
            .iter()
            .filter(|d| d["kind"] == "Deployment" || d["kind"] == "StatefulSet")
            .find(|d| {
                d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
                    == component
            })
            .ok_or_else(|| anyhow!("the chart renders no {component} workload"))?;
        let spec = &workload["spec"]["template"]["spec"];
        let container = spec["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == component))
            .ok_or_else(|| anyhow!("no container named {component}"))?
            .clone();
        ensure!(
            spec["initContainers"].is_null() && container["envFrom"].is_null(),
            "the rehearsal covers pods without init containers and envFrom (the default values)"
        );
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let command = strings(&container["command"]);
        ensure!(
            command == ["cascade", component] && container["args"].is_null(),
            "{component}: expected the command to be `cascade {component}`, got {command:?}"
        );
        let pre_stop = strings(&container["lifecycle"]["preStop"]["exec"]["command"]);
        ensure!(!pre_stop.is_empty(), "{component}: no preStop exec command");
        let name = workload["metadata"]["name"].as_str().unwrap_or_default();
        Ok(PodTemplate {
            component: component.to_owned(),
            // What a controller names pods: `<statefulset>-0`, `<deployment>-<hash>-<suffix>`.
            name_prefix: if workload["kind"] == "StatefulSet" {
                format!("{name}-")
            } else {
                format!("{name}-5c9f7d-")
            },
            namespace: workload["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned(),
            command,
            grace: Duration::from_secs(
                spec["terminationGracePeriodSeconds"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("{component}: no terminationGracePeriodSeconds"))?,
            ),
            pre_stop,
            container,
        })
    }
}

/// What the test needs from one rendered pod template.
pub(crate) struct PodTemplate {
    pub(crate) component: String,
    pub(crate) name_prefix: String,
    pub(crate) namespace: String,
    /// The container's command: the binary, then its arguments.
    pub(crate) command: Vec<String>,
    pub(crate) grace: Duration,
    pub(crate) pre_stop: Vec<String>,
    pub(crate) container: Value,
}

impl PodTemplate {
    /// Declared TCP ports and the UDP mux port by name (and number), each mapped to a free port
    /// of this machine.
    pub(crate) fn map_ports(&self) -> Result<Vec<PortMap>> {
        let mut out = Vec::new();
        for p in self.container["ports"].as_array().into_iter().flatten() {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            let name = p["name"].as_str().unwrap_or_default();
            if protocol != "TCP" && name != MUX_PORT {
                continue; // the media UDP range: used as rendered
            }
            let container_port = p["containerPort"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| anyhow!("bad containerPort in {p}"))?;
            out.push(PortMap {
                name: name.to_owned(),
                protocol: protocol.to_owned(),
                container: container_port,
                host: free_port(protocol)?,
            });
        }
        Ok(out)
    }

    /// A probe's `httpGet` path and (container) port.
    pub(crate) fn probe(&self, which: &str) -> Result<(String, Value)> {
        let get = &self.container[which]["httpGet"];
        let path = get["path"]
            .as_str()
            .ok_or_else(|| anyhow!("{}: {which} has no httpGet path", self.component))?;
        Ok((path.to_owned(), get["port"].clone()))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PortMap {
    pub(crate) name: String,
    pub(crate) protocol: String,
    pub(crate) container: u16,
    pub(crate) host: u16,
}

/// A port of `protocol` (TCP or UDP) nothing on this machine's loopback holds right now.
pub(crate) fn free_port(protocol: &str) -> Result<u16> {
    Ok(if protocol == "UDP" {
        std::net::UdpSocket::bind((POD_IP, 0))?.local_addr()?.port()
    } else {
        std::net::TcpListener::bind((POD_IP, 0))?
            .local_addr()?
            .port()
    })
}

/// The value of a [`PORT_ENV`] variable mapped like its port; other values unchanged.
pub(crate) fn map_port_value(name: &str, value: &str, ports: &[PortMap]) -> String {
    let Some((_, protocol)) = PORT_ENV.iter().find(|(n, _)| *n == name) else {
        return value.to_owned();
    };
    ports
        .iter()
        .find(|p| &p.protocol == protocol && value.parse() == Ok(p.container))
        .map_or_else(|| value.to_owned(), |p| p.host.to_string())
}

/// Replaces `from` in `s` where it is not followed by another digit (`:8081` is not `:80810`).
pub(crate) fn replace_addr(s: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(from) {
        let after = &rest[i + from.len()..];
        out.push_str(&rest[..i]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Kubernetes' `$(VAR)` expansion: references to variables defined earlier are replaced,
/// `$$` escapes a `$`, anything else stays as written.
pub(crate) fn expand(value: &str, defined: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(inner) = tail.strip_prefix("$(")
            && let Some(end) = inner.find(')')
            && let Some(v) = defined.get(&inner[..end])
        {
            out.push_str(v);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}
