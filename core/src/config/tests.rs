use super::*;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,
}

fn config(args: &[&str]) -> Result<NodeConfig, String> {
    let mut argv = vec!["test"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    cli.node
        .into_config(Role::Edge, Some("http://127.0.0.1:9090".into()))
        .map_err(|e| e.to_string())
}

#[test]
fn defaults_work_on_a_laptop() {
    let c = config(&[]).unwrap();
    assert_eq!(c.node.http_listen.port(), 8080);
    assert_eq!(c.node.media.bind_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert!(c.node.media.udp_ports.is_none());
    assert!(c.node.node_id.starts_with("edge-"));
}

#[test]
fn port_ranges() {
    assert_eq!(parse_port_range("0"), Ok(None));
    assert_eq!(parse_port_range("40000-40010"), Ok(Some((40000, 40010))));
    for bad in ["40010-40000", "x-y", "40000", "0-10", "1-70000"] {
        assert!(parse_port_range(bad).is_err(), "{bad}");
    }
}

#[test]
fn errors_name_the_key() {
    let e = config(&["--udp-ports", "9-1"]).unwrap_err();
    assert!(
        e.contains("--udp-ports") && e.contains("CASCADE_UDP_PORTS"),
        "{e}"
    );
    let e = config(&["--node-id", "a b"]).unwrap_err();
    assert!(e.contains("--node-id"), "{e}");
    let e = config(&["--advertise-ip", "0.0.0.0"]).unwrap_err();
    assert!(e.contains("--advertise-ip"), "{e}");
    let e = config(&["--http-listen", "nope"]).unwrap_err();
    assert!(e.contains("--http-listen"), "{e}");
    let e = config(&["--redis", "not a url"]).unwrap_err();
    assert!(e.contains("--redis") && e.contains("CASCADE_REDIS"), "{e}");
    let e = config(&["--otlp-endpoint", "collector:4317"]).unwrap_err();
    assert!(e.contains("CASCADE_OTLP_ENDPOINT"), "{e}");
    let e = config(&["--lease-secs", "0"]).unwrap_err();
    assert!(e.contains("--lease-secs"), "{e}");
}

#[test]
fn auth_needs_a_long_enough_secret_and_keeps_it_out_of_logs() {
    assert!(config(&[]).unwrap().auth.is_none());
    let e = config(&["--auth-secret", "short"]).unwrap_err();
    assert!(e.contains("--auth-secret") && e.contains("32 bytes"), "{e}");
    let e = config(&["--auth-viewers", "true"]).unwrap_err();
    assert!(e.contains("--auth-viewers"), "{e}");
    let secret = "0123456789abcdef0123456789abcdef";
    let c = config(&["--auth-secret", secret, "--auth-viewers", "true"]).unwrap();
    assert!(c.auth.is_some());
    assert!(c.node.credential.0.is_none());
    assert!(
        !format!("{c:?}").contains(secret),
        "the secret shows in {c:?}"
    );
}

#[test]
fn http_limits_default_and_are_checked() {
    assert_eq!(config(&[]).unwrap().http, HttpLimits::default());
    let c = config(&[
        "--http-header-timeout",
        "2",
        "--http-idle-timeout",
        "5",
        "--http-body-timeout",
        "3",
        "--http-max-connections",
        "50",
    ])
    .unwrap();
    assert_eq!(
        c.http,
        HttpLimits {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(3),
            max_connections: 50,
        }
    );
    for (flag, env, value) in [
        (
            "--http-max-connections",
            "CASCADE_HTTP_MAX_CONNECTIONS",
            "0",
        ),
        ("--http-header-timeout", "CASCADE_HTTP_HEADER_TIMEOUT", "0"),
        ("--http-idle-timeout", "CASCADE_HTTP_IDLE_TIMEOUT", "0"),
        ("--http-body-timeout", "CASCADE_HTTP_BODY_TIMEOUT", "0"),
        (
            "--http-header-timeout",
            "CASCADE_HTTP_HEADER_TIMEOUT",
            "3601",
        ),
    ] {
        let e = config(&[flag, value]).unwrap_err();
        assert!(e.contains(flag) && e.contains(env), "{e}");
    }
}

#[test]
fn admission_flags_default_and_are_checked() {
    let c = config(&[]).unwrap();
    assert_eq!(c.node.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.clients, ClientLimits::default());
    let c = config(&[
        "--connect-timeout",
        "2",
        "--max-requests-per-ip-per-sec",
        "10",
        "--max-pending-per-ip",
        "3",
        "--trusted-proxies",
        "10.0.0.0/8,192.0.2.7",
    ])
    .unwrap();
    assert_eq!(c.node.connect_timeout, Duration::from_secs(2));
    assert_eq!(c.clients.requests_per_sec, 10);
    assert_eq!(c.clients.max_pending, 3);
    assert_eq!(c.clients.trusted_proxies.len(), 2);
    let e = config(&["--connect-timeout", "0"]).unwrap_err();
    assert!(e.contains("CASCADE_CONNECT_TIMEOUT"), "{e}");
    let e = config(&["--trusted-proxies", "10.0.0.0/8,nope"]).unwrap_err();
    assert!(e.contains("--trusted-proxies") && e.contains("nope"), "{e}");
}

#[test]
fn redis_urls_with_passwords_are_checked_and_never_shown() {
    let c = config(&[
        "--redis",
        "redis+sentinel://:hunter2@127.0.0.1:26379/mymaster",
    ])
    .unwrap();
    assert!(!format!("{:?}", c.routing).contains("hunter2"));
    let c = config(&["--redis", "redis://u:hunter2@127.0.0.1:6379/1"]).unwrap();
    let shown = format!("{:?}", c.routing);
    assert!(
        !shown.contains("hunter2") && shown.contains("u:***@"),
        "{shown}"
    );
    for bad in [
        "redis+sentinel://:hunter2@127.0.0.1:26379",
        "memcached://:hunter2@h",
        "redis+sentinel://:hunter2@h:1/m?x=1",
    ] {
        let e = config(&["--redis", bad]).unwrap_err();
        assert!(e.contains("--redis") && !e.contains("hunter2"), "{e}");
    }
    let e = config(&["--redis-ca", "/nonexistent/ca.pem"]).unwrap_err();
    assert!(e.contains("--redis-ca"), "{e}");
}

#[test]
fn an_edge_needs_an_upstream_or_redis() {
    let cli = Cli::try_parse_from(["test"]).unwrap();
    let e = cli.node.check_edge_source(&None).unwrap_err().to_string();
    assert!(
        e.contains("--upstream") && e.contains("--redis") && e.contains("CASCADE_REDIS"),
        "{e}"
    );
    let cli = Cli::try_parse_from(["test", "--redis", "redis://127.0.0.1:1"]).unwrap();
    cli.node.check_edge_source(&None).unwrap();
    let c = cli.node.into_config(Role::Edge, None).unwrap();
    assert_eq!(c.routing.redis.as_deref(), Some("redis://127.0.0.1:1"));
    assert_eq!(c.routing.redis_prefix, "cascade:");
    assert_eq!(c.node.drain_timeout, Duration::from_secs(30));
    assert_eq!(c.node.heartbeat(), Duration::from_secs(10) / 3);
    let cli = Cli::try_parse_from(["test"]).unwrap();
    cli.node
        .check_edge_source(&Some("http://127.0.0.1:9090".into()))
        .unwrap();
}

#[test]
fn the_admin_surface_closes_with_auth_and_needs_a_secret_to_close() {
    let secret = "0123456789abcdef0123456789abcdef";
    let open = config(&[]).unwrap().admin;
    assert!(open.status_public && open.drain_from_loopback);
    assert!(open.cors_origins.is_empty());
    assert!(
        !config(&["--auth-secret", secret])
            .unwrap()
            .admin
            .status_public
    );
    let c = config(&["--auth-secret", secret, "--status-public", "true"]).unwrap();
    assert!(c.admin.status_public);
    let c = config(&[
        "--cluster-secret",
        secret,
        "--status-public",
        "false",
        "--drain-from-loopback",
        "false",
        "--cors-origin",
        "https://a.example/",
        "--cors-origin",
        "http://b.example:8080",
    ])
    .unwrap();
    assert!(!c.admin.status_public && !c.admin.drain_from_loopback);
    assert_eq!(
        c.admin.cors_origins,
        ["https://a.example", "http://b.example:8080"]
    );
    for (args, key) in [
        (&["--status-public", "false"][..], "CASCADE_STATUS_PUBLIC"),
        (
            &["--drain-from-loopback", "false"][..],
            "CASCADE_DRAIN_FROM_LOOPBACK",
        ),
        (&["--cors-origin", "a.example"][..], "CASCADE_CORS_ORIGIN"),
        (&["--status-public", "maybe"][..], "--status-public"),
    ] {
        let e = config(args).unwrap_err();
        assert!(e.contains(key), "{args:?}: {e}");
    }
}

#[test]
fn turn_servers_need_one_kind_of_credentials() {
    let e = config(&["--ice-servers", "turn:t.example:3478"]).unwrap_err();
    assert!(
        e.contains("--ice-servers") && e.contains("--turn-secret"),
        "{e}"
    );
    let c = config(&[
        "--ice-servers",
        "stun:s.example,turn:t.example:3478?transport=tcp",
        "--turn-secret",
        "shh",
    ])
    .unwrap();
    let links = c.ice_servers.links(0);
    assert_eq!(links.len(), 2);
    assert!(links[1].contains("username=\"86400:cascade\""), "{links:?}");
    assert!(!format!("{:?}", c.ice_servers).contains("shh"));
    let e = config(&[
        "--turn-secret",
        "shh",
        "--turn-username",
        "u",
        "--turn-password",
        "p",
    ])
    .unwrap_err();
    assert!(e.contains("--turn-secret"), "{e}");
    let e = config(&["--turn-username", "u"]).unwrap_err();
    assert!(e.contains("--turn-username"), "{e}");
}

#[test]
fn the_ice_tcp_port_is_a_port_or_off() {
    assert_eq!(config(&[]).unwrap().node.media.ice_tcp_port, Some(0));
    let c = config(&["--ice-tcp-port", "7881"]).unwrap();
    assert_eq!(c.node.media.ice_tcp_port, Some(7881));
    assert_eq!(
        config(&["--ice-tcp-port", "off"])
            .unwrap()
            .node
            .media
            .ice_tcp_port,
        None
    );
    for bad in ["70000", "tcp", ""] {
        let e = config(&["--ice-tcp-port", bad]).unwrap_err();
        assert!(
            e.contains("--ice-tcp-port") && e.contains("CASCADE_ICE_TCP_PORT"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn region_and_zone_are_checked_labels_and_empty_is_none() {
    let c = config(&["--region", "eu-west", "--zone", "eu-west-1a"]).unwrap();
    assert_eq!(c.node.locality.region.as_deref(), Some("eu-west"));
    assert_eq!(c.node.locality.zone.as_deref(), Some("eu-west-1a"));
    // The chart sets both variables, empty when the cluster has no topology labels.
    let c = config(&["--region", "", "--zone", ""]).unwrap();
    assert!(c.node.locality.is_empty());
    assert!(config(&[]).unwrap().node.locality.is_empty());
    let e = config(&["--region", "eu west"]).unwrap_err();
    assert!(
        e.contains("--region") && e.contains("CASCADE_REGION"),
        "{e}"
    );
    let e = config(&["--zone", &"z".repeat(64)]).unwrap_err();
    assert!(e.contains("--zone") && e.contains("CASCADE_ZONE"), "{e}");
}
