//! A rehearsal of the Kubernetes lifecycle on this machine, from what the Helm chart renders.
//!
//! `deploy/render-chart.sh` renders `helm/cascade` with its default values (and a drain short
//! enough for a test) through a real `helm template`. The test then plays the kubelet for the
//! origin and edge pods it describes: it runs the container's command (the workspace's
//! `cascade-origin` / `cascade-edge`) with the container's environment resolved the way
//! Kubernetes resolves it (ConfigMap keys, downward API fields, `$(VAR)` references), polls the
//! rendered probes, runs the rendered `preStop` command with the pod's environment, then sends
//! SIGTERM, and holds the process to `terminationGracePeriodSeconds`.
//!
//! Only what a cluster would provide is mapped, to loopback: the pod and host IPs are
//! 127.0.0.1 (so ICE candidates and advertise URLs say 127.0.0.1), each pod's declared TCP
//! ports and its UDP mux port (`udp-mux`, one fixed port per pod that two edges here would
//! both bind) are mapped to free ports, and the variables naming them with it (pods share this
//! machine's loopback, as containers share a host behind port mappings), Service DNS names
//! (`<svc>.<ns>.svc:<port>`) resolve to the pod or the harness's redis-server the Service
//! selects, and the pod name is made up like a controller would. Everything else, including the
//! media UDP ranges (the nodes pick free ports in them), is used as rendered.
//!
//! What it checks, against real processes and real WebRTC peers (`cascade-loadgen`): both pods
//! become ready; viewers on an edge keep receiving every packet while that edge drains
//! (`/readyz` 503, `draining` in `/v1/cluster`, new viewers refused or redirected), and the edge
//! exits 0 after they leave, within the grace period, leaving nothing in Redis; a new edge
//! started from the same pod template becomes ready, joins the placement, and the draining edge
//! redirects new viewers to it, who receive the stream from it without loss. A second run with
//! a short drain holds viewers past it: the edge serves them until the drain deadline, then exits
//! 0 before the grace period would end in SIGKILL.

use anyhow::{Context, Result, anyhow, bail, ensure};
use cascade_tests::{RedisProc, bin, poll};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The drain settings the chart is rendered with: its defaults (120 s drain, 10 s preStop
/// delay) would make a slow test; the relations between them are the chart's own.
const HELM_SETS: &[&str] = &[
    "drain.timeoutSeconds=40",
    "drain.preStopDelaySeconds=2",
    "drain.graceMarginSeconds=5",
];
/// A drain that ends before the viewers leave.
const SHORT_DRAIN_SETS: &[&str] = &[
    "drain.timeoutSeconds=6",
    "drain.preStopDelaySeconds=1",
    "drain.graceMarginSeconds=4",
];
/// What the kubelet gives `status.podIP` and `status.hostIP` here.
const POD_IP: &str = "127.0.0.1";
/// The container port of the UDP mux: a single port, mapped like the TCP ports.
const MUX_PORT: &str = "udp-mux";
/// Variables whose whole value is one of the pod's ports, by protocol (a listen address
/// `0.0.0.0:<port>` is mapped wherever it appears).
const PORT_ENV: &[(&str, &str)] = &[("CASCADE_UDP_MUX_PORT", "UDP")];
const NODE_NAME: &str = "rehearsal-node";
const ROOM: &str = "rehearsal";
const LATE_ROOM: &str = "rehearsal-late";
/// Viewers that watch through the drain, and viewers that arrive while the edge drains.
const VIEWERS: u64 = 3;
const LATE_VIEWERS: u64 = 2;
/// Media the load generator sends: modest, so debug builds on a shared machine keep up.
const MEDIA: &[&str] = &[
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
const STEP: Duration = Duration::from_secs(20);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

// --- the rendered chart -----------------------------------------------------

/// The resources `helm template` rendered.
struct Chart {
    docs: Vec<Value>,
}

impl Chart {
    /// Renders the chart through `deploy/render-chart.sh` (which fetches Helm on first use).
    fn render(sets: &[&str]) -> Result<Self> {
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

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.docs.iter().filter(move |d| d["kind"] == kind)
    }

    fn config_map(&self, name: &str, key: &str) -> Result<String> {
        self.of_kind("ConfigMap")
            .find(|d| d["metadata"]["name"] == name)
            .and_then(|d| d["data"][key].as_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("ConfigMap {name} has no key {key}"))
    }

    /// The pod template of the workload running `component`.
    fn pod_template(&self, component: &str) -> Result<PodTemplate> {
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
            command.len() == 1 && container["args"].is_null(),
            "{component}: expected the command to be just the binary, got {command:?}"
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
            binary: command[0].clone(),
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
struct PodTemplate {
    component: String,
    name_prefix: String,
    namespace: String,
    binary: String,
    grace: Duration,
    pre_stop: Vec<String>,
    container: Value,
}

impl PodTemplate {
    /// Declared TCP ports and the UDP mux port by name (and number), each mapped to a free port
    /// of this machine.
    fn map_ports(&self) -> Result<Vec<PortMap>> {
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
    fn probe(&self, which: &str) -> Result<(String, Value)> {
        let get = &self.container[which]["httpGet"];
        let path = get["path"]
            .as_str()
            .ok_or_else(|| anyhow!("{}: {which} has no httpGet path", self.component))?;
        Ok((path.to_owned(), get["port"].clone()))
    }
}

#[derive(Debug, Clone)]
struct PortMap {
    name: String,
    protocol: String,
    container: u16,
    host: u16,
}

/// A port of `protocol` (TCP or UDP) nothing on this machine's loopback holds right now.
fn free_port(protocol: &str) -> Result<u16> {
    Ok(if protocol == "UDP" {
        std::net::UdpSocket::bind((POD_IP, 0))?.local_addr()?.port()
    } else {
        std::net::TcpListener::bind((POD_IP, 0))?
            .local_addr()?
            .port()
    })
}

/// The value of a [`PORT_ENV`] variable mapped like its port; other values unchanged.
fn map_port_value(name: &str, value: &str, ports: &[PortMap]) -> String {
    let Some((_, protocol)) = PORT_ENV.iter().find(|(n, _)| *n == name) else {
        return value.to_owned();
    };
    ports
        .iter()
        .find(|p| &p.protocol == protocol && value.parse() == Ok(p.container))
        .map_or_else(|| value.to_owned(), |p| p.host.to_string())
}

/// Replaces `from` in `s` where it is not followed by another digit (`:8081` is not `:80810`).
fn replace_addr(s: &str, from: &str, to: &str) -> String {
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
fn expand(value: &str, defined: &BTreeMap<String, String>) -> String {
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

// --- the kubelet's part -------------------------------------------------------

/// A running pod: the container's process with its resolved environment.
struct Pod {
    name: String,
    ports: Vec<PortMap>,
    env: Vec<(String, String)>,
    pre_stop: Vec<String>,
    grace: Duration,
    readiness: (String, u16),
    liveness: (String, u16),
    startup: (String, u16),
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Pod {
    fn host_port(&self, port: &Value) -> Result<u16> {
        self.ports
            .iter()
            .find(|p| match port {
                Value::String(name) => &p.name == name,
                Value::Number(n) => n.as_u64() == Some(u64::from(p.container)),
                _ => false,
            })
            .map(|p| p.host)
            .ok_or_else(|| anyhow!("{}: no declared port {port}", self.name))
    }

    fn url(&self, path: &str) -> String {
        format!("http://{POD_IP}:{}{path}", self.readiness.1)
    }

    fn env(&self, key: &str) -> Result<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| anyhow!("{}: no {key} in its environment", self.name))
    }

    /// What the pod logged, for failure messages.
    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let from = log.len().saturating_sub(25);
        log[from..].join("\n")
    }

    /// Runs the rendered `preStop` command as the kubelet execs it in the container: with the
    /// container's environment, the same argv (its HTTP port mapped like the pod's).
    fn run_pre_stop(&self) -> Result<()> {
        let out = Command::new(&self.pre_stop[0])
            .args(&self.pre_stop[1..])
            .env_clear()
            .envs(self.env.iter().cloned())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .context("running the preStop command")?;
        ensure!(
            out.status.success(),
            "preStop {:?} failed ({}): {}",
            self.pre_stop,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    fn sigterm(&self) -> Result<()> {
        let status = Command::new("sh")
            .args(["-c", &format!("kill -s TERM {}", self.child.id())])
            .status()?;
        ensure!(status.success(), "kill -s TERM {} failed", self.child.id());
        Ok(())
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts pods from the rendered templates, resolving what a cluster would.
struct Kubelet<'a> {
    chart: &'a Chart,
    redis: &'a RedisProc,
    /// Ports of the pods started so far, by component, for Service resolution.
    running: Vec<(String, Vec<PortMap>)>,
    http: reqwest::Client,
}

impl<'a> Kubelet<'a> {
    fn new(chart: &'a Chart, redis: &'a RedisProc) -> Result<Self> {
        Ok(Self {
            chart,
            redis,
            running: Vec::new(),
            http: reqwest::Client::builder().no_proxy().build()?,
        })
    }

    /// The address a Service port leads to here: the harness's Redis, or the first started pod
    /// of the selected component with the target port.
    fn service_target(&self, service: &Value, port: &Value) -> Result<u16> {
        let component = service["spec"]["selector"]["app.kubernetes.io/component"]
            .as_str()
            .unwrap_or_default();
        if component == "redis" {
            return Ok(self.redis.port);
        }
        let target = &port["targetPort"];
        self.running
            .iter()
            .filter(|(c, _)| c == component)
            .flat_map(|(_, ports)| ports)
            .find(|p| match target {
                Value::String(name) => &p.name == name,
                Value::Number(n) => n.as_u64() == Some(u64::from(p.container)),
                _ => false,
            })
            .map(|p| p.host)
            .ok_or_else(|| {
                anyhow!(
                    "Service {} selects no started {component} pod with port {target}",
                    service["metadata"]["name"]
                )
            })
    }

    /// The container's environment as the kubelet resolves it, then mapped onto this machine:
    /// the pod's own addresses to its mapped ports, Service names to what they select.
    fn resolve_env(
        &self,
        t: &PodTemplate,
        pod_name: &str,
        ports: &[PortMap],
    ) -> Result<Vec<(String, String)>> {
        let mut defined = BTreeMap::new();
        let mut env = Vec::new();
        for e in t.container["env"].as_array().into_iter().flatten() {
            let name = e["name"]
                .as_str()
                .ok_or_else(|| anyhow!("env without name"))?;
            let value = if let Some(v) = e["value"].as_str() {
                expand(v, &defined)
            } else if let Some(field) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                match field {
                    "metadata.name" => pod_name.to_owned(),
                    "metadata.namespace" => t.namespace.clone(),
                    "status.podIP" | "status.hostIP" => POD_IP.to_owned(),
                    "spec.nodeName" => NODE_NAME.to_owned(),
                    other => bail!("{name}: downward API field {other} is not rehearsed"),
                }
            } else if let Some(r) = e["valueFrom"]["configMapKeyRef"].as_object() {
                let cm = r["name"].as_str().unwrap_or_default();
                let key = r["key"].as_str().unwrap_or_default();
                self.chart.config_map(cm, key)?
            } else {
                bail!("{name}: source {} is not rehearsed", e["valueFrom"]);
            };
            defined.insert(name.to_owned(), value.clone());
            env.push((name.to_owned(), value));
        }
        for (name, value) in &mut env {
            *value = map_port_value(name, value, ports);
            *value = self.map_addresses(value, ports)?;
            ensure!(
                !value.contains(".svc"),
                "{value:?} names a Service the rehearsal cannot resolve"
            );
        }
        Ok(env)
    }

    /// The pod's addresses (`0.0.0.0:<port>`, `<pod IP>:<port>`) to its mapped ports, and
    /// `<service>.<namespace>.svc[.cluster.local]:<port>` to what the Service selects.
    fn map_addresses(&self, value: &str, ports: &[PortMap]) -> Result<String> {
        let mut v = value.to_owned();
        for p in ports {
            let to = format!("{POD_IP}:{}", p.host);
            v = replace_addr(&v, &format!("0.0.0.0:{}", p.container), &to);
            v = replace_addr(&v, &format!("{POD_IP}:{}", p.container), &to);
        }
        for svc in self.chart.of_kind("Service") {
            let name = svc["metadata"]["name"].as_str().unwrap_or_default();
            let ns = svc["metadata"]["namespace"].as_str().unwrap_or_default();
            for port in svc["spec"]["ports"].as_array().into_iter().flatten() {
                let number = port["port"].as_u64().unwrap_or_default();
                for host in [
                    format!("{name}.{ns}.svc"),
                    format!("{name}.{ns}.svc.cluster.local"),
                ] {
                    let from = format!("{host}:{number}");
                    if v.contains(&from) {
                        let to = format!("{POD_IP}:{}", self.service_target(svc, port)?);
                        v = replace_addr(&v, &from, &to);
                    }
                }
            }
        }
        Ok(v)
    }

    /// Starts pod number `ordinal` of `t` and waits until its startup probe passes.
    async fn start(&mut self, t: &PodTemplate, ordinal: usize) -> Result<Pod> {
        let name = format!("{}{ordinal}", t.name_prefix);
        let ports = t.map_ports()?;
        let env = self.resolve_env(t, &name, &ports)?;
        let pre_stop = t
            .pre_stop
            .iter()
            .map(|a| self.map_addresses(a, &ports))
            .collect::<Result<Vec<_>>>()?;
        let mut child = Command::new(bin(&t.binary))
            .env_clear()
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", t.binary))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped")),
            Box::new(child.stderr.take().expect("piped")),
        ];
        for stream in streams {
            let sink = log.clone();
            let prefix = name.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if std::env::var_os("TEST_NODE_ECHO").is_some() {
                        eprintln!("[{prefix}] {line}");
                    }
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
        }
        let mut pod = Pod {
            name,
            ports: ports.clone(),
            env,
            pre_stop,
            grace: t.grace,
            readiness: (String::new(), 0),
            liveness: (String::new(), 0),
            startup: (String::new(), 0),
            child,
            log,
        };
        for (which, slot) in [
            ("readinessProbe", 0),
            ("livenessProbe", 1),
            ("startupProbe", 2),
        ] {
            let (path, port) = t.probe(which)?;
            let resolved = (path, pod.host_port(&port)?);
            match slot {
                0 => pod.readiness = resolved,
                1 => pod.liveness = resolved,
                _ => pod.startup = resolved,
            }
        }
        self.running.push((t.component.clone(), ports));
        // The startup probe's budget: periodSeconds x failureThreshold.
        let startup = &t.container["startupProbe"];
        let budget = startup["periodSeconds"].as_u64().unwrap_or(10)
            * startup["failureThreshold"].as_u64().unwrap_or(3);
        let (path, port) = pod.startup.clone();
        let what = format!("{}: startup probe GET {path}", pod.name);
        let result = poll(&what, Duration::from_secs(budget), || {
            self.probe_status(port, &path)
        })
        .await;
        if let Err(e) = result {
            bail!("{e:#}\n{} logged:\n{}", pod.name, pod.log_tail());
        }
        Ok(pod)
    }

    /// Starts a pod and waits until its readiness and liveness probes pass.
    async fn start_ready(&mut self, t: &PodTemplate, ordinal: usize) -> Result<Pod> {
        let pod = self.start(t, ordinal).await?;
        self.wait_ready(&pod).await?;
        Ok(pod)
    }

    /// One probe: `Some(status)` when the pod answered.
    async fn probe_status(&self, port: u16, path: &str) -> Result<Option<u16>> {
        let r = self
            .http
            .get(format!("http://{POD_IP}:{port}{path}"))
            .timeout(Duration::from_secs(2))
            .send()
            .await?;
        Ok((200..400)
            .contains(&r.status().as_u16())
            .then_some(r.status().as_u16()))
    }

    async fn status_of(&self, port: u16, path: &str) -> Result<u16> {
        Ok(self
            .http
            .get(format!("http://{POD_IP}:{port}{path}"))
            .timeout(Duration::from_secs(2))
            .send()
            .await?
            .status()
            .as_u16())
    }

    /// Waits until the readiness probe passes, and checks liveness.
    async fn wait_ready(&self, pod: &Pod) -> Result<()> {
        let (path, port) = pod.readiness.clone();
        let what = format!("{}: readiness probe GET {path}", pod.name);
        poll(&what, STEP, || async {
            Ok((self.status_of(port, &path).await? == 200).then_some(()))
        })
        .await?;
        let (path, port) = pod.liveness.clone();
        let live = self.status_of(port, &path).await?;
        ensure!(
            live == 200,
            "{}: liveness GET {path} answered {live}",
            pod.name
        );
        Ok(())
    }

    /// `GET /v1/cluster` from `pod`: node id → state (`ready` or `draining`).
    async fn cluster(&self, pod: &Pod) -> Result<BTreeMap<String, String>> {
        let v: Value = self
            .http
            .get(pod.url("/v1/cluster"))
            .send()
            .await?
            .json()
            .await?;
        Ok(v["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| {
                (
                    n["id"].as_str().unwrap_or_default().to_owned(),
                    n["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }

    /// Polls `/v1/cluster` on `at` until `id` has `state` (`None`: is gone).
    async fn wait_cluster_state(&self, at: &Pod, id: &str, state: Option<&str>) -> Result<()> {
        let what = format!("{id} to be {state:?} in /v1/cluster");
        poll(&what, STEP, || async {
            let nodes = self.cluster(at).await?;
            Ok((nodes.get(id).map(String::as_str) == state).then_some(()))
        })
        .await
    }

    /// A WHEP offer for `room` on `pod`, without following redirects: status and Location.
    async fn whep_once(&self, pod: &Pod, room: &str) -> Result<(u16, Option<String>)> {
        // The node answers placement before it negotiates, so the sections are enough.
        const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n";
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let r = client
            .post(pod.url(&format!("/whep/{room}")))
            .header("content-type", "application/sdp")
            .body(OFFER)
            .send()
            .await?;
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((r.status().as_u16(), location))
    }
}

// --- viewers ------------------------------------------------------------------

/// A `cascade-loadgen run`: one publisher on the origin, viewers on edges.
struct Loadgen {
    child: Child,
    json: PathBuf,
    started: Instant,
}

impl Loadgen {
    fn start(origin: &Pod, edges: &[&Pod], room: &str, viewers: u64, seconds: u32) -> Result<Self> {
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
    async fn finish(mut self, deadline: Duration) -> Result<Value> {
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

fn num(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or(u64::MAX)
}

/// Every viewer connected, stayed connected and received both tracks; no packet lost beyond
/// what the kernel's receive-buffer drops on a starved machine explain (see `loadgen.rs`).
fn check_media(report: &Value, viewers: u64) -> Result<()> {
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

// --- Redis --------------------------------------------------------------------

/// The keys and entries `node` has in Redis under `prefix` (registration, own keys, links of
/// `room`).
async fn redis_entries(
    redis: &RedisProc,
    prefix: &str,
    node: &str,
    room: &str,
) -> Result<Vec<String>> {
    let mut con = redis.connection().await?;
    let mut found: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}node:{node}:*"))
        .query_async(&mut con)
        .await?;
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(format!("{prefix}nodes"))
        .arg(node)
        .query_async(&mut con)
        .await?;
    if score.is_some() {
        found.push(format!("{prefix}nodes[{node}]"));
    }
    let link: bool = redis::cmd("HEXISTS")
        .arg(format!("{prefix}room:{room}:links"))
        .arg(node)
        .query_async(&mut con)
        .await?;
    if link {
        found.push(format!("{prefix}room:{room}:links[{node}]"));
    }
    Ok(found)
}

// --- the rehearsal --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_lifecycle_on_real_processes() -> Result<()> {
    let t0 = Instant::now();
    let chart = Chart::render(HELM_SETS)?;
    let origin_t = chart.pod_template("origin")?;
    let edge_t = chart.pod_template("edge")?;
    let redis = RedisProc::start()?;
    let mut kubelet = Kubelet::new(&chart, &redis)?;
    println!(
        "rendered in {:.1} s; edge grace period {:?}, preStop {:?}",
        t0.elapsed().as_secs_f64(),
        edge_t.grace,
        edge_t.pre_stop
    );

    // 1. Pods become ready.
    let origin = kubelet.start_ready(&origin_t, 0).await?;
    let mut edge = kubelet.start_ready(&edge_t, 0).await?;
    let edge_id = edge.env("CASCADE_NODE_ID")?.to_owned();
    let prefix = edge.env("CASCADE_REDIS_PREFIX")?.to_owned();
    kubelet
        .wait_cluster_state(&origin, &edge_id, Some("ready"))
        .await?;
    println!(
        "{} and {edge_id} ready after {:.1} s",
        origin.name,
        t0.elapsed().as_secs_f64()
    );

    // 2. Viewers watch a room on the edge, through everything that follows (long enough for
    //    steps 3 and 4 on a busy machine: the late viewers need the draining edge up).
    let watching = Loadgen::start(&origin, &[&edge], ROOM, VIEWERS, 30)?;
    poll("the viewers to receive media on the edge", STEP, || async {
        let v: Value = reqwest::get(edge.url("/v1/node")).await?.json().await?;
        let room = v["rooms"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["room"] == ROOM).cloned());
        Ok(room.filter(|r| {
            r["viewers"] == VIEWERS
                && r["tracks"]
                    .as_array()
                    .is_some_and(|ts| ts.iter().all(|t| t["packets_in"].as_u64() > Some(0)))
        }))
    })
    .await?;
    ensure!(
        !redis_entries(&redis, &prefix, &edge_id, ROOM)
            .await?
            .is_empty(),
        "the edge has no entries in Redis under {prefix:?}"
    );

    // 3. Termination as the kubelet does it: preStop, then SIGTERM, within the grace period.
    let terminating = Instant::now();
    edge.run_pre_stop()?;
    let (path, port) = edge.readiness.clone();
    let ready = kubelet.status_of(port, &path).await?;
    ensure!(
        ready == 503,
        "after preStop, readiness {path} answered {ready}"
    );
    let (path, port) = edge.liveness.clone();
    ensure!(
        kubelet.status_of(port, &path).await? == 200,
        "a draining edge must stay live"
    );
    kubelet
        .wait_cluster_state(&origin, &edge_id, Some("draining"))
        .await?;
    // Nowhere to send a new viewer yet: refused, with a time to retry.
    let (status, _) = kubelet.whep_once(&edge, ROOM).await?;
    ensure!(
        status == 503,
        "a new viewer on the only, draining edge got {status}"
    );
    edge.sigterm()?;
    println!(
        "{edge_id}: preStop and SIGTERM done {:.1} s into termination",
        terminating.elapsed().as_secs_f64()
    );

    // 4. A new edge from the same pod template joins the placement.
    let new_edge = kubelet.start_ready(&edge_t, 1).await?;
    let new_id = new_edge.env("CASCADE_NODE_ID")?.to_owned();
    kubelet
        .wait_cluster_state(&origin, &new_id, Some("ready"))
        .await?;
    let advertised = new_edge.env("CASCADE_HTTP_ADVERTISE")?.to_owned();
    let (status, location) = kubelet.whep_once(&edge, ROOM).await?;
    ensure!(
        status == 307 && location.as_deref() == Some(&format!("{advertised}/whep/{ROOM}")),
        "a new viewer on the draining edge got {status} {location:?}, not a redirect to {advertised}"
    );
    // Real viewers of another room sent to the draining edge end up on the new one.
    let late = Loadgen::start(&origin, &[&edge, &new_edge], LATE_ROOM, LATE_VIEWERS, 6)?;
    let late = late.finish(Duration::from_secs(60)).await?;
    check_media(&late, LATE_VIEWERS)?;
    let redirects: Vec<u64> = late["per_viewer"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["redirects"].as_u64().unwrap_or(0))
        .collect();
    ensure!(
        redirects == [1, 0],
        "redirects per late viewer: {redirects:?}"
    );
    let on_new = late["nodes"]
        .as_array()
        .and_then(|ns| {
            ns.iter().find(|n| {
                n["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&new_edge.url("")))
            })
        })
        .map(|n| n["room"]["viewers"].clone());
    ensure!(
        on_new == Some(Value::from(LATE_VIEWERS)),
        "the new edge served {on_new:?} late viewers, not {LATE_VIEWERS}: {}",
        late["nodes"]
    );

    // 5. The draining edge kept its viewers until they left, then exited in time.
    ensure!(
        edge.exited().is_none(),
        "the edge exited while its viewers were watching"
    );
    let watched = watching.finish(Duration::from_secs(60)).await?;
    check_media(&watched, VIEWERS)?;
    let drain_deadline: u64 = edge.env("CASCADE_DRAIN_TIMEOUT")?.parse()?;
    let status = poll("the draining edge to exit", edge.grace, || {
        let s = edge.exited();
        async move { Ok(s) }
    })
    .await
    .with_context(|| format!("{} logged:\n{}", edge.name, edge.log_tail()))?;
    let took = terminating.elapsed();
    ensure!(
        status.success(),
        "the edge exited with {status}:\n{}",
        edge.log_tail()
    );
    ensure!(
        took < edge.grace && took < Duration::from_secs(drain_deadline),
        "the edge took {took:?} (grace {:?}, drain timeout {drain_deadline} s)",
        edge.grace
    );
    println!(
        "{edge_id} exited 0 {:.1} s into termination",
        took.as_secs_f64()
    );
    let left = redis_entries(&redis, &prefix, &edge_id, ROOM).await?;
    ensure!(
        left.is_empty(),
        "the edge left Redis entries behind: {left:?}"
    );
    kubelet
        .wait_cluster_state(&new_edge, &edge_id, None)
        .await?;
    ensure!(
        kubelet
            .cluster(&new_edge)
            .await?
            .get(&new_id)
            .map(String::as_str)
            == Some("ready"),
        "the new edge is not ready in /v1/cluster"
    );
    let (path, port) = new_edge.readiness.clone();
    ensure!(
        kubelet.status_of(port, &path).await? == 200,
        "the new edge is no longer ready"
    );
    println!("rehearsal done in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// `cascade_sent_packets_total` of a node: RTP written to its subscribers.
async fn sent_packets(pod: &Pod) -> Result<u64> {
    let text = reqwest::get(pod.url("/metrics")).await?.text().await?;
    text.lines()
        .find_map(|l| l.strip_prefix("cascade_sent_packets_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .ok_or_else(|| anyhow!("no cascade_sent_packets_total in /metrics"))
}

/// Viewers that do not leave: the edge serves them until the drain deadline, then exits 0
/// before the kubelet's SIGKILL would come, and removes itself from Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_deadline_comes_before_the_grace_period() -> Result<()> {
    let chart = Chart::render(SHORT_DRAIN_SETS)?;
    let origin_t = chart.pod_template("origin")?;
    let edge_t = chart.pod_template("edge")?;
    let redis = RedisProc::start()?;
    let mut kubelet = Kubelet::new(&chart, &redis)?;
    let origin = kubelet.start_ready(&origin_t, 0).await?;
    let mut edge = kubelet.start_ready(&edge_t, 0).await?;
    let edge_id = edge.env("CASCADE_NODE_ID")?.to_owned();
    let prefix = edge.env("CASCADE_REDIS_PREFIX")?.to_owned();
    let drain = Duration::from_secs(edge.env("CASCADE_DRAIN_TIMEOUT")?.parse()?);

    // Viewers that would watch for longer than the drain lasts.
    let _watching = Loadgen::start(&origin, &[&edge], ROOM, VIEWERS, 60)?;
    poll("the viewers to attach on the edge", STEP, || async {
        let v: Value = reqwest::get(edge.url("/v1/node")).await?.json().await?;
        Ok((v["rooms"][0]["viewers"] == VIEWERS).then_some(()))
    })
    .await?;

    let terminating = Instant::now();
    edge.run_pre_stop()?;
    edge.sigterm()?;
    // Until it exits (or the kubelet would SIGKILL it): when did it last send media?
    let mut last_sent = (0, terminating);
    let status = loop {
        if let Some(status) = edge.exited() {
            break status;
        }
        ensure!(
            terminating.elapsed() < edge.grace,
            "the edge outlived its grace period {:?}:\n{}",
            edge.grace,
            edge.log_tail()
        );
        if let Ok(n) = sent_packets(&edge).await
            && n > last_sent.0
        {
            last_sent = (n, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took = terminating.elapsed();
    println!(
        "{edge_id} exited {status} {:.1} s into termination (drain {drain:?}, grace {:?}); \
         media sent until {:.1} s",
        took.as_secs_f64(),
        edge.grace,
        last_sent.1.duration_since(terminating).as_secs_f64()
    );
    ensure!(
        status.success(),
        "the edge exited with {status}:\n{}",
        edge.log_tail()
    );
    ensure!(
        took >= drain,
        "the edge exited after {took:?}, before its drain deadline {drain:?}"
    );
    ensure!(
        took < edge.grace,
        "the edge outlived its grace period: {took:?}"
    );
    ensure!(
        last_sent.1.duration_since(terminating) + Duration::from_millis(1500) >= drain,
        "the edge stopped sending media {:?} into a {drain:?} drain",
        last_sent.1.duration_since(terminating)
    );
    let left = redis_entries(&redis, &prefix, &edge_id, ROOM).await?;
    ensure!(
        left.is_empty(),
        "the edge left Redis entries behind: {left:?}"
    );
    kubelet.wait_cluster_state(&origin, &edge_id, None).await?;
    Ok(())
}

#[test]
fn env_references_expand_like_kubernetes() {
    let defined = BTreeMap::from([("POD_IP".to_owned(), "10.1.2.3".to_owned())]);
    assert_eq!(
        expand("http://$(POD_IP):8081", &defined),
        "http://10.1.2.3:8081"
    );
    assert_eq!(
        expand("$(NOPE)/$$(POD_IP)/$", &defined),
        "$(NOPE)/$(POD_IP)/$"
    );
    assert_eq!(expand("$(POD_IP", &defined), "$(POD_IP");
}

#[test]
fn port_variables_follow_their_port() {
    let ports = [
        PortMap {
            name: "http".into(),
            protocol: "TCP".into(),
            container: 7883,
            host: 41000,
        },
        PortMap {
            name: MUX_PORT.into(),
            protocol: "UDP".into(),
            container: 7883,
            host: 42000,
        },
    ];
    assert_eq!(
        map_port_value("CASCADE_UDP_MUX_PORT", "7883", &ports),
        "42000"
    );
    assert_eq!(map_port_value("CASCADE_UDP_MUX_PORT", "9", &ports), "9");
    assert_eq!(map_port_value("CASCADE_CAPACITY", "7883", &ports), "7883");
}

#[test]
fn addresses_are_replaced_whole() {
    assert_eq!(
        replace_addr(
            "http://127.0.0.1:8081/x 127.0.0.1:80810",
            "127.0.0.1:8081",
            "127.0.0.1:5"
        ),
        "http://127.0.0.1:5/x 127.0.0.1:80810"
    );
}
