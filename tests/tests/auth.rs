//! Bearer tokens on WHIP and WHEP (`--auth-secret`, `--auth-viewers`): real origin and edge
//! processes that refuse publishers and viewers without a valid token for the room (401 with
//! `WWW-Authenticate: Bearer`, or 403 for a token that does not grant it), and a real broadcast
//! (`cascade-loadgen`, WebRTC end to end) that reaches its viewers with one.

use cascade_tests::{NodeProc, assert_clean_broadcast, loadgen_broadcast};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

const SECRET: &str = "the cluster's shared secret, 32+ bytes long";

fn token(secret: &str, room: &str, grants: &[&str], exp_from_now: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = json!({ "room": room, "exp": now + exp_from_now });
    for grant in grants {
        claims[grant] = json!(true);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// A minimal offer: it gets past the token check and then fails as SDP (400), or a 401/403.
const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

async fn post(url: &str, token: Option<&str>) -> (StatusCode, Option<String>) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/sdp")
        .body(OFFER);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("request");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status(), challenge)
}

fn node(binary: &str, name: &str, args: &[&str]) -> anyhow::Result<NodeProc> {
    NodeProc::start_with_env(
        binary,
        name,
        args,
        &[
            ("CASCADE_AUTH_SECRET", SECRET),
            ("CASCADE_AUTH_VIEWERS", "true"),
        ],
    )
}

#[tokio::test]
async fn only_a_valid_token_for_the_room_publishes_or_watches() -> anyhow::Result<()> {
    let origin = node("cascade-origin", "origin-auth", &[])?;
    let upstream = origin.grpc_url();
    let edge = node("cascade-edge", "edge-auth", &["--upstream", &upstream])?;
    let whip = origin.url("/whip/stage");
    let whep = edge.url("/whep/stage");

    let publisher = token(SECRET, "stage", &["publish"], 600);
    let viewer = token(SECRET, "stage", &["subscribe"], 600);
    let unauthorized = [
        ("no token", None),
        (
            "a forged one",
            Some(token(
                "another secret, also 32+ bytes long",
                "stage",
                &["publish"],
                600,
            )),
        ),
        (
            "an expired one",
            Some(token(SECRET, "stage", &["publish"], -3600)),
        ),
        ("not a JWT", Some("not-a-token".to_owned())),
    ];
    for (what, t) in &unauthorized {
        for url in [&whip, &whep] {
            let (status, challenge) = post(url, t.as_deref()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} at {url}");
            assert!(
                challenge.is_some_and(|c| c.starts_with("Bearer")),
                "{what} at {url}: no Bearer challenge"
            );
        }
    }
    let forbidden = [
        (
            "another room's token",
            &whip,
            token(SECRET, "other", &["publish"], 600),
        ),
        ("a viewer's token", &whip, viewer.clone()),
        (
            "another room's viewer token",
            &whep,
            token(SECRET, "other", &["subscribe"], 600),
        ),
    ];
    for (what, url, t) in &forbidden {
        let (status, _) = post(url, Some(t.as_str())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what} at {url}");
    }
    // Past the check, the offer itself is judged (and refused: it has no media).
    for (url, t) in [(&whip, &publisher), (&whep, &viewer), (&whep, &publisher)] {
        let (status, _) = post(url, Some(t.as_str())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}");
    }

    // A real broadcast with the publisher's token: the viewers get it all.
    let json = std::env::temp_dir().join(format!("cascade-auth-{}.json", std::process::id()));
    let run = |t: Option<&str>| {
        let mut cmd = loadgen_broadcast(&origin, &edge, "stage", 3, &json);
        if let Some(t) = t {
            cmd.args(["--token", t]);
        }
        cmd.output()
    };
    let refused = run(None)?;
    assert!(
        !refused.status.success(),
        "published without a token: {}",
        String::from_utf8_lossy(&refused.stdout)
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let out = run(Some(&publisher))?;
    assert_clean_broadcast(&out, &json, 3)?;
    Ok(())
}
