//! Bad input at the HTTP edge of real node processes: every case a clear 4xx with a JSON
//! message, never a crash, and the node keeps serving.

use cascade_tests::NodeProc;
use reqwest::StatusCode;

const MINIMAL_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
    a=rtpmap:96 VP8/90000\r\n";

async fn post(
    url: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_answers_and_the_node_keeps_serving() -> anyhow::Result<()> {
    let origin = NodeProc::origin("origin-1")?;
    let edge = NodeProc::edge("edge-1", &origin)?;
    let whip = origin.url("/whip/room1");
    let whep = edge.url("/whep/room1");

    let cases: Vec<(&str, String, &str, Vec<u8>, StatusCode)> = vec![
        (
            "wrong content type",
            whip.clone(),
            "application/json",
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "no content type",
            whip.clone(),
            "",
            MINIMAL_OFFER.into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "not SDP",
            whip.clone(),
            "application/sdp",
            b"hello".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "binary garbage",
            whip.clone(),
            "application/sdp",
            (0..=255u8).cycle().take(4000).collect(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "SDP without media",
            whip.clone(),
            "application/sdp",
            b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "malformed media line",
            whip.clone(),
            "application/sdp",
            b"v=0\r\nm=video\r\n".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "SDP the stack refuses",
            whip.clone(),
            "application/sdp",
            MINIMAL_OFFER.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "oversized body",
            whip.clone(),
            "application/sdp",
            vec![b'a'; 200 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "bad room name",
            origin.url("/whip/a%20b"),
            "application/sdp",
            MINIMAL_OFFER.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "publish to an edge",
            edge.url("/whip/room1"),
            "application/sdp",
            MINIMAL_OFFER.into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "watch with a send-only offer",
            whep.clone(),
            "application/sdp",
            MINIMAL_OFFER.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "watch a room nobody publishes",
            whep.clone(),
            "application/sdp",
            MINIMAL_OFFER.replace("sendonly", "recvonly").into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "watch on the origin, nobody publishes",
            origin.url("/whep/room1"),
            "application/sdp",
            MINIMAL_OFFER.replace("sendonly", "recvonly").into(),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, url, content_type, body, expected) in cases {
        let (status, text) = post(&url, content_type, body).await;
        assert_eq!(status, expected, "{what}: {text}");
        if status != StatusCode::PAYLOAD_TOO_LARGE {
            let json: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {text}"));
            assert!(
                json["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{what}: {text}"
            );
            assert!(json["code"].is_string(), "{what}: {text}");
        }
        println!("{what}: {status} {text}");
    }

    let client = reqwest::Client::new();
    // Unknown sessions.
    for url in [origin.url("/whip/room1/nope"), edge.url("/whep/room1/nope")] {
        assert_eq!(
            client.delete(&url).send().await?.status(),
            StatusCode::NOT_FOUND,
            "{url}"
        );
    }
    // No trickle ICE: PATCH says so.
    let status = client
        .patch(origin.url("/whip/room1/any"))
        .send()
        .await?
        .status();
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // CORS preflight from another page.
    let preflight = client
        .request(reqwest::Method::OPTIONS, &whip)
        .header("origin", "http://player.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await?;
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()?
        .to_owned();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    // RFC 9725 §4.1: the 200 OK to an OPTIONS request to an endpoint names what it takes,
    // preflight or not (WHEP likewise).
    assert_eq!(preflight.headers()["accept-post"], "application/sdp");
    for endpoint in [whip.clone(), origin.url("/whep/room1")] {
        let options = client
            .request(reqwest::Method::OPTIONS, &endpoint)
            .send()
            .await?;
        assert_eq!(options.status(), StatusCode::OK, "{endpoint}");
        assert_eq!(options.headers()["accept-post"], "application/sdp");
    }

    // Both nodes are still alive and serving.
    for node in [&origin, &edge] {
        assert_eq!(
            reqwest::get(node.url("/healthz")).await?.status(),
            StatusCode::OK
        );
        assert!(
            node.status().await?["rooms"]
                .as_array()
                .is_some_and(|r| r.is_empty())
        );
    }
    Ok(())
}
