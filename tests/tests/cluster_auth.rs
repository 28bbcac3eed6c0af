//! Nodes authenticate each other (`--cluster-secret`): real origin and edge processes whose gRPC
//! port refuses every call without the cluster credential (`UNAUTHENTICATED` on the relay's
//! `DescribeRoom`, `Subscribe` and `PauseLayers` and on the status service), accepts a valid
//! one (and still checks what it carries), and relays a real broadcast (`cascade-loadgen`, WebRTC end to end) from origin to edge as before.

use cascade_proto::relay::v1::relay_client::RelayClient;
use cascade_proto::relay::v1::{
    DescribeRoomRequest, LayerId, PauseLayersRequest, SubscribeRequest,
};
use cascade_proto::status::v1::GetClusterRequest;
use cascade_proto::status::v1::status_client::StatusClient;
use cascade_tests::{
    NodeProc, assert_clean_broadcast, cluster_credential as credential, loadgen_broadcast,
};
use tonic::Code;

const SECRET: &str = "the nodes' own shared secret, 32+ bytes";

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(t) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    request
}

fn node(binary: &str, name: &str, args: &[&str]) -> anyhow::Result<NodeProc> {
    NodeProc::start_with_env(binary, name, args, &[("CASCADE_CLUSTER_SECRET", SECRET)])
}

fn pause_request(link: &str, layers: u32) -> PauseLayersRequest {
    PauseLayersRequest {
        link_id: link.into(),
        room: "stage".into(),
        layers: (0..layers)
            .map(|group| LayerId {
                group,
                rid: "h".into(),
            })
            .collect(),
    }
}

#[tokio::test]
async fn the_grpc_port_answers_only_nodes_of_the_cluster() -> anyhow::Result<()> {
    let origin = node("cascade-origin", "origin-cluster-auth", &[])?;
    let upstream = origin.grpc_url();
    let edge = node(
        "cascade-edge",
        "edge-cluster-auth",
        &["--upstream", &upstream],
    )?;

    let refused = [
        ("no credential", None),
        (
            "another cluster's",
            Some(credential(
                "another cluster's secret, 32+ bytes",
                "cascade-cluster",
                60,
            )),
        ),
        (
            "an expired one",
            Some(credential(SECRET, "cascade-cluster", -3600)),
        ),
        (
            "a token for another audience",
            Some(credential(SECRET, "viewers", 60)),
        ),
        ("not a JWT", Some("not-a-token".to_owned())),
    ];
    let mut relay = RelayClient::connect(origin.grpc_url()).await?;
    let mut status = StatusClient::connect(origin.grpc_url()).await?;
    for (what, token) in &refused {
        let token = token.as_deref();
        let describe = relay
            .describe_room(with_token(
                DescribeRoomRequest {
                    room: "stage".into(),
                },
                token,
            ))
            .await
            .expect_err(what);
        assert_eq!(describe.code(), Code::Unauthenticated, "{what}: {describe}");
        let subscribe = relay
            .subscribe(with_token(
                SubscribeRequest {
                    room: "stage".into(),
                    node_id: "intruder".into(),
                    offer_sdp: "v=0\r\n".into(),
                },
                token,
            ))
            .await
            .expect_err(what);
        assert_eq!(
            subscribe.code(),
            Code::Unauthenticated,
            "{what}: {subscribe}"
        );
        let pause = relay
            .pause_layers(with_token(pause_request("any-link", 1), token))
            .await
            .expect_err(what);
        assert_eq!(pause.code(), Code::Unauthenticated, "{what}: {pause}");
        let cluster = status
            .get_cluster(with_token(GetClusterRequest {}, token))
            .await
            .expect_err(what);
        assert_eq!(cluster.code(), Code::Unauthenticated, "{what}: {cluster}");
    }
    // Refused calls touched nothing: no room was pulled or created.
    assert!(origin.room("stage").await?.is_none());

    // The cluster's credential gets through.
    let good = credential(SECRET, "cascade-cluster", 60);
    let cluster = status
        .get_cluster(with_token(GetClusterRequest {}, Some(&good)))
        .await?
        .into_inner();
    assert!(!cluster.nodes.is_empty());
    // With it, what a call carries is still checked: a link that is not open, too many layers.
    let unknown = relay
        .pause_layers(with_token(pause_request("no-such-link", 1), Some(&good)))
        .await
        .expect_err("no such link");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown}");
    let many = relay
        .pause_layers(with_token(pause_request("no-such-link", 65), Some(&good)))
        .await
        .expect_err("65 layers");
    assert_eq!(many.code(), Code::InvalidArgument, "{many}");

    // A real broadcast: the edge pulls the room from the origin with its credential.
    let json =
        std::env::temp_dir().join(format!("cascade-cluster-auth-{}.json", std::process::id()));
    let out = loadgen_broadcast(&origin, &edge, "stage", 3, &json).output()?;
    assert_clean_broadcast(&out, &json, 3)?;
    Ok(())
}
