//! One binary and a config file, as an operator starts nodes: `cascade origin --config FILE`
//! serves as the file says, flags and `CASCADE_*` variables override the file, a wrong key stops
//! the node naming it, and the old binary names still run the roles.

use anyhow::Result;
use cascade_tests::{NodeProc, bin, free_port};
use std::path::PathBuf;
use std::process::Command;

fn write_config(tag: &str, text: &str) -> Result<PathBuf> {
    let path =
        std::env::temp_dir().join(format!("cascade-config-{tag}-{}.yaml", std::process::id()));
    std::fs::write(&path, text)?;
    Ok(path)
}

fn cascade(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("cascade"));
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CASCADE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

async fn node_id(node: &NodeProc) -> Result<String> {
    let status = node.status().await?;
    Ok(status["node"]["id"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_node_started_with_only_a_config_file_serves_as_configured() -> Result<()> {
    let port = free_port();
    let file = write_config(
        "only",
        &format!(
            "# An origin as an operator would write it.\n\
             http-listen: 127.0.0.1:{port}\n\
             grpc-listen: 127.0.0.1:0\n\
             node-id: from-file\n\
             capacity: 7\n\
             cors-origin:\n  - https://ops.example\n  - https://noc.example\n"
        ),
    )?;
    let path = file.to_str().unwrap();

    let node = NodeProc::start_command("from-file", cascade(&["origin", "--config", path]), &[])?;
    assert_eq!(node.http.port(), port, "the file's http-listen");
    let status = node.status().await?;
    assert_eq!(status["node"]["id"], "from-file");
    assert_eq!(status["node"]["capacity"], 7);
    // The list key reached the flag: the status API answers a listed browser origin's preflight.
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, node.url("/v1/node"))
        .header("Origin", "https://noc.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await?;
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://noc.example"
    );
    drop(node);

    // The environment overrides the file; the file is found through CASCADE_CONFIG too.
    let env_node = NodeProc::start_command(
        "from-env",
        cascade(&["origin", "--http-listen", "127.0.0.1:0"]),
        &[("CASCADE_CONFIG", path), ("CASCADE_NODE_ID", "from-env")],
    )?;
    assert_eq!(node_id(&env_node).await?, "from-env");
    assert_eq!(env_node.status().await?["node"]["capacity"], 7);

    // A flag overrides both, under the old binary name too.
    let flag_node = NodeProc::start_command(
        "from-flag",
        {
            let mut c = Command::new(bin("cascade-origin"));
            c.args([
                "--config",
                path,
                "--http-listen",
                "127.0.0.1:0",
                "--node-id",
                "from-flag",
            ]);
            c
        },
        &[("CASCADE_NODE_ID", "from-env")],
    )?;
    assert_eq!(node_id(&flag_node).await?, "from-flag");
    let _ = std::fs::remove_file(file);
    Ok(())
}

#[test]
fn a_wrong_key_or_value_stops_the_node_naming_the_key_and_the_file() -> Result<()> {
    for (tag, text, key, says) in [
        (
            "unknown",
            "htp-listen: 127.0.0.1:0\n",
            "htp-listen",
            "no such flag",
        ),
        (
            "bad",
            "capacity: lots\n",
            "capacity",
            "invalid value 'lots'",
        ),
        ("list", "node-id: [a, b]\n", "node-id", "not a list"),
    ] {
        let file = write_config(tag, text)?;
        let out = cascade(&["edge", "--config", file.to_str().unwrap()])
            .args(["--upstream", "http://127.0.0.1:1"])
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{tag}: started: {stderr}");
        assert!(
            stderr.contains(&format!("key `{key}`"))
                && stderr.contains(file.to_str().unwrap())
                && stderr.contains(says),
            "{tag}: {stderr}"
        );
        let _ = std::fs::remove_file(file);
    }
    let out = cascade(&["origin", "--config", "/nonexistent/cascade.yaml"]).output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cascade.yaml"));
    // A mistyped variable stops the node too, listing the ones that exist.
    let out = cascade(&["origin"])
        .env("CASCADE_HTTP_LISTNE", "127.0.0.1:0")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("CASCADE_HTTP_LISTNE") && stderr.contains("CASCADE_CONFIG"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn the_one_binary_documents_its_roles_and_version() -> Result<()> {
    let text = |args: &[&str]| -> Result<String> {
        let out = cascade(args).output()?;
        assert!(out.status.success(), "{args:?}");
        Ok(String::from_utf8(out.stdout)?)
    };
    let version = text(&["--version"])?;
    assert_eq!(
        version.trim(),
        format!("cascade {}", env!("CARGO_PKG_VERSION"))
    );
    let help = text(&["--help"])?;
    for word in ["origin", "edge", "demo", "token", "status", "drain"] {
        assert!(help.contains(word), "cascade --help lacks {word}: {help}");
    }
    let origin = text(&["origin", "--help"])?;
    for word in [
        "--config",
        "--http-listen",
        "CASCADE_HTTP_LISTEN",
        "--auth-secret",
    ] {
        assert!(origin.contains(word), "origin --help lacks {word}");
    }
    assert!(text(&["edge", "--help"])?.contains("--upstream"));
    assert!(text(&["origin", "--version"])?.contains(env!("CARGO_PKG_VERSION")));
    let alias = Command::new(bin("cascade-edge")).arg("--help").output()?;
    assert!(String::from_utf8(alias.stdout)?.contains("--upstream"));
    Ok(())
}
