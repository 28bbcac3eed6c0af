//! The kubelet's part: starting a pod from a rendered template (its environment resolved as
//! Kubernetes resolves it, then mapped onto this machine), polling its probes, running its
//! `preStop` command and signalling it; and what the test asks the running nodes over HTTP.

use crate::STEP;
use crate::chart::{Chart, POD_IP, PodTemplate, PortMap, expand, map_port_value, replace_addr};
use anyhow::{Context, Result, anyhow, bail, ensure};
use cascade_tests::{RedisProc, bin, poll};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) const NODE_NAME: &str = "rehearsal-node";

/// A running pod: the container's process with its resolved environment.
pub(crate) struct Pod {
    pub(crate) name: String,
    pub(crate) ports: Vec<PortMap>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) pre_stop: Vec<String>,
    pub(crate) grace: Duration,
    pub(crate) readiness: (String, u16),
    pub(crate) liveness: (String, u16),
    pub(crate) startup: (String, u16),
    pub(crate) child: Child,
    pub(crate) log: Arc<Mutex<Vec<String>>>,
}

impl Pod {
    pub(crate) fn host_port(&self, port: &Value) -> Result<u16> {
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

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{POD_IP}:{}{path}", self.readiness.1)
    }

    pub(crate) fn env(&self, key: &str) -> Result<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| anyhow!("{}: no {key} in its environment", self.name))
    }

    /// What the pod logged, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let from = log.len().saturating_sub(25);
        log[from..].join("\n")
    }

    /// Runs the rendered `preStop` command as the kubelet execs it in the container: with the
    /// container's environment, the same argv (its HTTP port mapped like the pod's).
    pub(crate) fn run_pre_stop(&self) -> Result<()> {
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

    pub(crate) fn sigterm(&self) -> Result<()> {
        let status = Command::new("sh")
            .args(["-c", &format!("kill -s TERM {}", self.child.id())])
            .status()?;
        ensure!(status.success(), "kill -s TERM {} failed", self.child.id());
        Ok(())
    }

    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
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
pub(crate) struct Kubelet<'a> {
    chart: &'a Chart,
    redis: &'a RedisProc,
    /// Ports of the pods started so far, by component, for Service resolution.
    running: Vec<(String, Vec<PortMap>)>,
    http: reqwest::Client,
}

impl<'a> Kubelet<'a> {
    pub(crate) fn new(chart: &'a Chart, redis: &'a RedisProc) -> Result<Self> {
        Ok(Self {
            chart,
            redis,
            running: Vec::new(),
            http: reqwest::Client::builder().no_proxy().build()?,
        })
    }

    /// The address a Service port leads to here: the harness's Redis, or the first started pod
    /// of the selected component with the target port.
    pub(crate) fn service_target(&self, service: &Value, port: &Value) -> Result<u16> {
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
    pub(crate) fn resolve_env(
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
                    // Copied from the node onto the pod at binding (Kubernetes 1.33+); the
                    // rehearsal's node has no topology labels, like kind's, and the kubelet
                    // gives a missing label as empty.
                    f if f.starts_with("metadata.labels['topology.kubernetes.io/") => String::new(),
                    other => bail!("{name}: downward API field {other} is not rehearsed"),
                }
            } else if let Some(r) = e["valueFrom"]["configMapKeyRef"].as_object() {
                let cm = r["name"].as_str().unwrap_or_default();
                let key = r["key"].as_str().unwrap_or_default();
                self.chart.config_map(cm, key)?
            } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
                let secret = r["name"].as_str().unwrap_or_default();
                let key = r["key"].as_str().unwrap_or_default();
                self.chart.secret(secret, key)?
            } else {
                bail!("{name}: source {} is not rehearsed", e["valueFrom"]);
            };
            defined.insert(name.to_owned(), value.clone());
            env.push((name.to_owned(), value));
        }
        for (name, value) in &mut env {
            *value = map_port_value(name, value, ports);
            *value = self.map_addresses(value, ports)?;
            // The harness's redis-server stands in for the bundled Redis pod, which would run
            // with the Secret's generated password; it has none, so the URL's is dropped.
            if name == "CASCADE_REDIS"
                && let Some((scheme, rest)) = value.split_once("://")
                && let Some((_, host)) = rest.rsplit_once('@')
            {
                *value = format!("{scheme}://{host}");
            }
            ensure!(
                !value.contains(".svc"),
                "{value:?} names a Service the rehearsal cannot resolve"
            );
        }
        Ok(env)
    }

    /// The pod's addresses (`0.0.0.0:<port>`, `<pod IP>:<port>`) to its mapped ports, and
    /// `<service>.<namespace>.svc[.cluster.local]:<port>` to what the Service selects.
    pub(crate) fn map_addresses(&self, value: &str, ports: &[PortMap]) -> Result<String> {
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
    pub(crate) async fn start(&mut self, t: &PodTemplate, ordinal: usize) -> Result<Pod> {
        let name = format!("{}{ordinal}", t.name_prefix);
        let ports = t.map_ports()?;
        let env = self.resolve_env(t, &name, &ports)?;
        let pre_stop = t
            .pre_stop
            .iter()
            .map(|a| self.map_addresses(a, &ports))
            .collect::<Result<Vec<_>>>()?;
        let mut child = Command::new(bin(&t.command[0]))
            .args(&t.command[1..])
            .env_clear()
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", t.command.join(" ")))?;
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
    pub(crate) async fn start_ready(&mut self, t: &PodTemplate, ordinal: usize) -> Result<Pod> {
        let pod = self.start(t, ordinal).await?;
        self.wait_ready(&pod).await?;
        Ok(pod)
    }

    /// One probe: `Some(status)` when the pod answered.
    pub(crate) async fn probe_status(&self, port: u16, path: &str) -> Result<Option<u16>> {
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

    pub(crate) async fn status_of(&self, port: u16, path: &str) -> Result<u16> {
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
    pub(crate) async fn wait_ready(&self, pod: &Pod) -> Result<()> {
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
    pub(crate) async fn cluster(&self, pod: &Pod) -> Result<BTreeMap<String, String>> {
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
    pub(crate) async fn wait_cluster_state(
        &self,
        at: &Pod,
        id: &str,
        state: Option<&str>,
    ) -> Result<()> {
        let what = format!("{id} to be {state:?} in /v1/cluster");
        poll(&what, STEP, || async {
            let nodes = self.cluster(at).await?;
            Ok((nodes.get(id).map(String::as_str) == state).then_some(()))
        })
        .await
    }

    /// A WHEP offer for `room` on `pod`, without following redirects: status and Location.
    pub(crate) async fn whep_once(&self, pod: &Pod, room: &str) -> Result<(u16, Option<String>)> {
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
