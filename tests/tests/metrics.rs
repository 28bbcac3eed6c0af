//! `/metrics` during a real broadcast: a `redis-server`, an origin and an edge as processes,
//! `cascade-loadgen` publishing to the origin and watching on the edge with real WebRTC. The
//! counters rise between two scrapes, the join histogram counts every viewer, and every metric
//! the Grafana dashboard (`deploy/grafana/cascade-dashboard.json`) queries is in the scrape.

use anyhow::{Context, Result};
use cascade_tests::{NodeProc, RedisProc, bin, poll};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(40);
const VIEWERS: u32 = 3;

/// One scrape, parsed: sample values by their full text before the value (name and labels), and
/// the declared type of each metric family.
struct Scrape {
    samples: HashMap<String, f64>,
    types: HashMap<String, String>,
    text: String,
}

impl Scrape {
    fn parse(text: String) -> Self {
        let mut samples = HashMap::new();
        let mut types = HashMap::new();
        for line in text.lines() {
            if let Some(decl) = line.strip_prefix("# TYPE ") {
                let mut parts = decl.split_whitespace();
                if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                    types.insert(name.to_owned(), kind.to_owned());
                }
            } else if !line.starts_with('#')
                && let Some((series, value)) = line.rsplit_once(' ')
                && let Ok(value) = value.parse()
            {
                samples.insert(series.to_owned(), value);
            }
        }
        Self {
            samples,
            types,
            text,
        }
    }

    /// The value of a series, written as in the exposition (`name` or `name{label="v"}`).
    fn value(&self, series: &str) -> Option<f64> {
        self.samples.get(series).copied()
    }

    /// Metric names that have at least one sample.
    fn names(&self) -> BTreeSet<&str> {
        self.samples
            .keys()
            .map(|s| s.split('{').next().unwrap_or(s))
            .collect()
    }

    /// Whether the metric name `name`, as a PromQL expression names it, is exposed: a sample
    /// name, where `_bucket`, `_sum` and `_count` belong to a family declared a histogram.
    fn exposes(&self, name: &str) -> bool {
        if !self.names().contains(name) {
            return false;
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix)
                && self.types.get(base).is_some_and(|t| t == "histogram")
            {
                return true;
            }
        }
        // Otherwise it must not be a histogram's series under another name.
        !name.ends_with("_bucket")
    }
}

async fn scrape(node: &NodeProc) -> Result<Scrape> {
    let text = reqwest::get(node.url("/metrics")).await?.text().await?;
    Ok(Scrape::parse(text))
}

/// PromQL's functions, aggregations and keywords are followed by `(` or are in this list; what
/// is left of an expression once strings, label matchers, ranges and label lists are removed
/// are metric names.
const KEYWORDS: [&str; 6] = ["and", "or", "unless", "bool", "offset", "inf"];
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects.
fn metric_names(expr: &str) -> Vec<String> {
    // Strings, `{label matchers}` and `[ranges]` (Grafana's `$__rate_interval` is one) go.
    let mut outside = String::new();
    let (mut braces, mut brackets) = (0i32, 0i32);
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                while let Some(s) = chars.next() {
                    if s == '\\' {
                        chars.next();
                    } else if s == c {
                        break;
                    }
                }
                outside.push(' ');
            }
            '{' => braces += 1,
            '}' => {
                braces -= 1;
                outside.push(' ');
            }
            '[' => brackets += 1,
            ']' => {
                brackets -= 1;
                outside.push(' ');
            }
            _ if braces == 0 && brackets == 0 => outside.push(c),
            _ => {}
        }
    }
    // Words and parentheses; numbers, durations and Grafana variables are dropped.
    #[derive(PartialEq)]
    enum Token {
        Word(String),
        Open,
        Close,
    }
    let chars: Vec<char> = outside.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '(' || c == ')' {
            tokens.push(if c == '(' { Token::Open } else { Token::Close });
            i += 1;
        } else if c.is_ascii_digit() || c == '.' || c == '$' {
            i += 1;
            while i < chars.len() && (ident(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else if ident(c) {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            i += 1;
        }
    }
    // `by (le, op)` and the like: the clause and its label list go.
    let mut kept = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(token) = iter.next() {
        if let Token::Word(word) = &token
            && LABEL_LISTS.contains(&word.as_str())
        {
            if iter.peek() == Some(&Token::Open) {
                for t in iter.by_ref() {
                    if t == Token::Close {
                        break;
                    }
                }
            }
            continue;
        }
        kept.push(token);
    }
    // A word followed by "(" is a function or an aggregation.
    let mut names = Vec::new();
    for (i, token) in kept.iter().enumerate() {
        if let Token::Word(word) = token
            && kept.get(i + 1) != Some(&Token::Open)
            && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
        {
            names.push(word.clone());
        }
    }
    names
}

#[test]
fn promql_names_are_found_and_only_them() {
    let expr = r#"histogram_quantile(0.99, sum by (le, op) (rate(cascade_routing_duration_seconds_bucket{instance=~"$instance", op!="a b"}[$__rate_interval]))) / on(instance) group_left(node) (8 * sum without (x) (cascade_sent_bytes_total offset 5m)) > bool 0 or vector(1) and process_resident_memory_bytes"#;
    assert_eq!(
        metric_names(expr),
        [
            "cascade_routing_duration_seconds_bucket",
            "cascade_sent_bytes_total",
            "process_resident_memory_bytes"
        ]
    );
    assert!(metric_names("sum(rate(x{a=\"}\"}[1m]))") == ["x"]);
    assert!(metric_names("").is_empty());
}

/// Every PromQL expression of the dashboard: panel targets and query variables.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(e)) = map.get("expr") {
                    out.push(e.clone());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&dashboard["panels"], &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] == "query" {
            let q = var["query"]["query"]
                .as_str()
                .or(var["query"].as_str())
                .unwrap_or("");
            // label_values(metric, label): the metric is the expression.
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(',').map(|(m, _)| m))
                .unwrap_or(q);
            out.push(inner.to_owned());
        }
    }
    out
}

struct LoadGen(Child);

impl Drop for LoadGen {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn metrics_rise_during_a_broadcast_and_the_dashboard_queries_only_exposed_names() -> Result<()>
{
    let dashboard_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/grafana/cascade-dashboard.json");
    let dashboard: Value = serde_json::from_slice(
        &std::fs::read(&dashboard_path).with_context(|| dashboard_path.display().to_string())?,
    )?;
    // Importable anywhere: every panel's data source is the dashboard's data source variable.
    let vars: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(vars.contains(&"DS_PROMETHEUS"), "{vars:?}");
    for panel in dashboard["panels"].as_array().context("panels")? {
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "${DS_PROMETHEUS}",
                "{}",
                panel["title"]
            );
        }
    }

    let redis = RedisProc::start()?;
    let url = redis.url();
    let common = ["--redis", url.as_str(), "--lease-secs", "3"];
    let origin = NodeProc::start("cascade-origin", "origin-m", &common)?;
    let edge = NodeProc::start("cascade-edge", "edge-m", &common)?;
    let _media = LoadGen(
        Command::new(bin("cascade-loadgen"))
            .args(["run", "--origin", &origin.url(""), "--edge", &edge.url("")])
            .args(["--room", "metrics", "--viewers", &VIEWERS.to_string()])
            .args(["--ramp", "1", "--duration", "60"])
            .args(["--video-kbps", "300", "--fps", "15", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning cascade-loadgen")?,
    );

    // Every viewer has had media: the edge's join histogram counts them all.
    let first_edge = poll("every viewer's join in the histogram", DEADLINE, || async {
        let m = scrape(&edge).await?;
        let joins = m
            .value("cascade_join_duration_seconds_count")
            .unwrap_or(0.0);
        Ok((joins >= f64::from(VIEWERS)).then_some(m))
    })
    .await?;
    let first_origin = scrape(&origin).await?;
    // Each of those joins also timed from its connection being up to its first media packet.
    assert_eq!(
        first_edge.value("cascade_join_connected_to_media_seconds_count"),
        first_edge.value("cascade_join_duration_seconds_count"),
    );
    assert_eq!(
        first_edge.value("cascade_viewers"),
        Some(f64::from(VIEWERS))
    );
    assert_eq!(first_origin.value("cascade_publishers"), Some(1.0));
    assert_eq!(first_edge.value("cascade_rooms"), Some(1.0));
    assert_eq!(
        first_origin.value("cascade_relay_links{direction=\"downstream\"}"),
        Some(1.0)
    );
    assert_eq!(
        first_edge.value("cascade_relay_links{direction=\"upstream\"}"),
        Some(1.0)
    );
    // The relay link is the origin's one subscriber.
    assert!(
        first_origin
            .value("cascade_join_duration_seconds_count")
            .unwrap_or(0.0)
            >= 1.0
    );
    for m in [&first_edge, &first_origin] {
        assert!(
            m.value("cascade_routing_duration_seconds_count{op=\"heartbeat\"}")
                .unwrap_or(0.0)
                >= 1.0,
            "Redis heartbeats timed:\n{}",
            m.text
        );
        assert_eq!(
            m.value("cascade_routing_errors_total{op=\"heartbeat\"}"),
            Some(0.0)
        );
        assert!(m.value("process_cpu_seconds_total").unwrap_or(0.0) > 0.0);
        assert!(m.value("process_resident_memory_bytes").unwrap_or(0.0) > 1e6);
    }

    // The second scrape: media kept flowing through both nodes.
    for (node, first) in [(&edge, &first_edge), (&origin, &first_origin)] {
        poll(
            &format!("{}'s packet counters to rise", node.name),
            DEADLINE,
            || async {
                let now = scrape(node).await?;
                let rose = |name| now.value(name).unwrap_or(0.0) > first.value(name).unwrap_or(0.0);
                Ok((rose("cascade_received_packets_total")
                    && rose("cascade_received_bytes_total")
                    && rose("cascade_sent_packets_total")
                    && rose("cascade_sent_bytes_total")
                    && rose("process_cpu_seconds_total"))
                .then_some(()))
            },
        )
        .await?;
    }
    // Receiver reports flow both ways on every peer connection: with no loss on loopback, the
    // loss counters exist and stay near zero.
    let edge_now = scrape(&edge).await?;
    for direction in ["ingress", "egress"] {
        let lost = edge_now
            .value(&format!(
                "cascade_lost_packets_total{{direction=\"{direction}\"}}"
            ))
            .with_context(|| format!("{direction} loss missing:\n{}", edge_now.text))?;
        let packets = edge_now.value("cascade_sent_packets_total").unwrap_or(0.0);
        assert!(lost <= packets / 100.0, "{direction}: {lost} of {packets}");
    }

    // Every metric the dashboard queries is exposed by the nodes.
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 15, "{exprs:?}");
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric in {expr:?}");
        used.extend(names);
    }
    let origin_now = scrape(&origin).await?;
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !edge_now.exposes(n) || !origin_now.exposes(n))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, which the nodes do not expose:\n{}",
        edge_now.text
    );
    println!("dashboard metrics, all exposed: {used:?}");
    Ok(())
}
