use super::*;
use cascade_core::config::file::{apply, env_names, example, keys};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/cascade.example.yaml"
);

/// The example file's keys, defaults and comments come from the flags: regenerate its body with
/// `UPDATE_EXAMPLE=1 cargo test -p cascade-cli example` after changing a flag.
#[test]
fn the_example_file_lists_every_flag_with_its_default() {
    // The edge's flags are the origin's and `--upstream`.
    let edge = EdgeArgs::command();
    let body = example(&edge);
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let (header, _) = text
        .split_once("\n# ---\n")
        .expect("the header ends at `# ---`");
    let expected = format!("{header}\n# ---\n{body}");
    if std::env::var_os("UPDATE_EXAMPLE").is_some() {
        std::fs::write(EXAMPLE, &expected).unwrap();
    }
    assert!(text == expected, "stale: rerun with UPDATE_EXAMPLE=1");
    for key in keys(&edge) {
        assert!(
            text.contains(&format!("\n{key}:")) || text.contains(&format!("\n# {key}:")),
            "{key}"
        );
    }
    assert!(
        keys(&OriginArgs::command())
            .iter()
            .all(|k| keys(&edge).contains(k))
    );
    // It is a valid file for both roles, and changes no default.
    for cmd in [OriginArgs::command(), edge] {
        let applied = apply(cmd.clone(), &text, EXAMPLE).unwrap();
        assert_eq!(cmd.get_arguments().count(), applied.get_arguments().count());
        for before in cmd.get_arguments() {
            let after = applied
                .get_arguments()
                .find(|a| a.get_id() == before.get_id())
                .unwrap();
            assert_eq!(
                before.get_default_values(),
                after.get_default_values(),
                "{}",
                before.get_id()
            );
        }
    }
}

#[test]
fn flags_override_the_file_and_the_file_overrides_the_defaults() {
    let cmd = apply(
        OriginArgs::command(),
        "node-id: from-file\ncapacity: 3\nice-servers: stun:a.example,stun:b.example\n",
        "test.yaml",
    )
    .unwrap();
    let matches = cmd
        .try_get_matches_from(["cascade-origin", "--node-id", "from-flag"])
        .unwrap();
    let args = OriginArgs::from_arg_matches(&matches).unwrap();
    assert_eq!(args.node.node_id.as_deref(), Some("from-flag"));
    assert_eq!(args.node.capacity, 3);
    assert_eq!(args.node.ice_servers, ["stun:a.example", "stun:b.example"]);
    assert_eq!(args.node.lease_secs, 10, "a key the file leaves out");
}

#[test]
fn a_file_is_refused_with_the_key_at_fault() {
    let refused = |text: &str| {
        apply(OriginArgs::command(), text, "bad.yaml")
            .unwrap_err()
            .to_string()
    };
    let e = refused("upstream: http://x:9090\n");
    assert!(
        e.contains("key `upstream`") && e.contains("no such flag"),
        "{e}"
    );
    let e = refused("udp-mux: maybe\n");
    assert!(e.contains("key `udp-mux`") && e.contains("maybe"), "{e}");
    let e = refused("lease-secs:\n");
    assert!(
        e.contains("key `lease-secs`") && e.contains("no value"),
        "{e}"
    );
    let e = refused("config: other.yaml\n");
    assert!(e.contains("key `config`"), "{e}");
    let e = refused("- http-listen\n");
    assert!(e.contains("bad.yaml") && e.contains("mapping"), "{e}");
    let e = refused("http-listen: [\n");
    assert!(e.starts_with("config file bad.yaml"), "{e}");
    // An empty file sets nothing.
    apply(OriginArgs::command(), "# nothing yet\n", "empty.yaml").unwrap();
}

/// A flag `--http-listen` is `CASCADE_HTTP_LISTEN`, and the variables a node accepts are the
/// ones its flags (and the CLI's) read.
#[test]
fn secrets_from_the_file_stay_out_of_help() {
    let file = "auth-secret: file-secret-0123456789abcdef0123456789\n\
                redis: redis://user:redis-password@127.0.0.1:6379\n\
                node-id: shown-node\n";
    let mut cmd = apply(OriginArgs::command(), file, "test.yaml").unwrap();
    let help = cmd.render_long_help().to_string();
    assert!(
        help.contains("shown-node"),
        "other file values show as defaults"
    );
    assert!(!help.contains("file-secret"), "{help}");
    assert!(!help.contains("redis-password"), "{help}");
}

#[test]
fn each_node_variable_is_its_flag_name() {
    for cmd in [OriginArgs::command(), EdgeArgs::command()] {
        for arg in cmd.get_arguments() {
            let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
                continue;
            };
            let expected = format!("CASCADE_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(env.to_str(), Some(expected.as_str()));
        }
    }
    let known = env_names(&Cli::command());
    for name in [
        "CASCADE_CONFIG",
        "CASCADE_UPSTREAM",
        "CASCADE_URL",
        "CASCADE_REDIS",
    ] {
        assert!(known.iter().any(|k| k == name), "{name}");
    }
}

/// `deploy/compose.yaml`, as `docker compose` reads it: every service that runs `cascade origin`
/// or `cascade edge` sets only variables its role reads, with values its flags and settings
/// accept (`${VAR:-default}` taken at its default).
#[test]
fn the_compose_files_nodes_start_with_what_it_sets() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/compose.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    doc.apply_merge().unwrap();
    let interpolate = |value: &str| {
        let mut out = String::new();
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = start + rest[start..].find('}').expect("a closed ${...}");
            let inner = &rest[start + 2..end];
            out.push_str(inner.split_once(":-").map(|(_, d)| d).unwrap_or(""));
            rest = &rest[end + 1..];
        }
        out + rest
    };
    let mut roles = vec![];
    for (name, service) in doc["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let command: Vec<&str> = match service.get("command") {
            Some(c) => c
                .as_sequence()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect(),
            None => continue,
        };
        if command.first() != Some(&"cascade") {
            continue;
        }
        let role = command[1];
        let cmd = match role {
            "origin" => OriginArgs::command(),
            "edge" => EdgeArgs::command(),
            other => panic!("{name}: cascade {other} is no role"),
        };
        let variables = env_names(&cmd);
        let mut args = vec![format!("cascade-{role}")];
        for (key, value) in service["environment"].as_mapping().unwrap() {
            let key = key.as_str().unwrap();
            let Some(flag) = key.strip_prefix("CASCADE_") else {
                continue;
            };
            assert!(
                variables.iter().any(|v| v == key),
                "{name}: {key} is read by no flag"
            );
            // An empty entry passes the shell's value through.
            let Some(value) = value.as_str() else {
                continue;
            };
            args.push(format!("--{}", flag.to_ascii_lowercase().replace('_', "-")));
            args.push(interpolate(value));
        }
        let matches = cmd
            .try_get_matches_from(&args)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let config = match role {
            "origin" => OriginArgs::from_arg_matches(&matches)
                .unwrap()
                .into_config(),
            _ => EdgeArgs::from_arg_matches(&matches).unwrap().into_config(),
        };
        config.unwrap_or_else(|e| panic!("{name}: {e}"));
        roles.push(role);
    }
    roles.sort();
    assert_eq!(roles, ["edge", "edge", "origin"]);
}
