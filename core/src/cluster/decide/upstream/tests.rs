//! An edge's upstream driven by hand: the routing store's answers and the links' fates are
//! scripted, time is an `Instant` moved by hand.

use super::*;
use UpstreamAction::{ChooseUpstream, Connect, EndRoom, MarkSourcesLost};
use UpstreamEvent::{LinkBroke, LinkUp, Start, Tick};

const TIMEOUT: Duration = Duration::from_secs(20);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn edge(configured: Option<&str>) -> Upstream {
    Upstream::new(UpstreamSettings {
        node_id: "e2".into(),
        configured: configured.map(Into::into),
        failover_timeout: TIMEOUT,
    })
}

fn source(id: &str) -> Source {
    let url = format!("http://{id}:9");
    Source { id: id.into(), url }
}

/// The driver's answer when placement chose `id` for a room owned by `o`.
fn chosen(id: &str) -> UpstreamEvent {
    let owner = "o".into();
    UpstreamEvent::Candidates(Candidates::Chosen {
        owner,
        source: source(id),
    })
}

fn unavailable() -> UpstreamEvent {
    UpstreamEvent::Candidates(Candidates::Unavailable("o is not registered".into()))
}

fn choose(avoid: &[&str]) -> Vec<UpstreamAction> {
    let avoid = avoid.iter().map(|s| s.to_string()).collect();
    vec![ChooseUpstream { avoid }]
}

#[test]
fn failover_goes_to_a_parent_edge_and_back_to_the_origin_when_it_returns() {
    let t0 = Instant::now();
    let mut up = edge(None);
    assert_eq!(up.handle(Start, t0), choose(&[]));
    assert_eq!(up.handle(chosen("o"), t0), [Connect(source("o"))]);
    assert_eq!(up.handle(LinkUp("o".into()), t0 + ms(30)), []);
    assert_eq!(up.state(), &UpstreamState::Linked("o".into()));
    assert_eq!(up.poll_timeout(), None);

    // The origin's link breaks; the origin has no free slot now, so placement picks e1, an
    // edge that carries the room.
    let t1 = t0 + Duration::from_secs(60);
    assert_eq!(up.handle(LinkBroke("o".into()), t1), [MarkSourcesLost]);
    assert_eq!(up.poll_timeout(), Some(t1 + RETRY_MIN));
    assert_eq!(up.handle(Tick, t1 + ms(99)), []);
    assert_eq!(up.handle(Tick, t1 + ms(100)), choose(&["o"]));
    assert_eq!(
        up.handle(chosen("e1"), t1 + ms(101)),
        [Connect(source("e1"))]
    );
    assert_eq!(up.handle(LinkUp("e1".into()), t1 + ms(150)), []);
    assert_eq!(up.state(), &UpstreamState::Linked("e1".into()));

    // The parent edge goes away while the origin restarts: no source for a moment, then the
    // origin is back and chosen again (the avoid list was cleared when e1's link came up).
    let t2 = t1 + Duration::from_secs(60);
    assert_eq!(up.handle(LinkBroke("e1".into()), t2), [MarkSourcesLost]);
    assert_eq!(up.handle(Tick, t2 + ms(100)), choose(&["e1"]));
    assert_eq!(up.handle(unavailable(), t2 + ms(100)), []);
    assert_eq!(up.poll_timeout(), Some(t2 + ms(300)), "then waits 200 ms");
    assert_eq!(up.handle(Tick, t2 + ms(300)), choose(&["e1"]));
    assert_eq!(up.handle(chosen("o"), t2 + ms(301)), [Connect(source("o"))]);
    assert_eq!(up.handle(LinkUp("o".into()), t2 + ms(340)), []);
    assert_eq!(up.state(), &UpstreamState::Linked("o".into()));
}

#[test]
fn attempts_back_off_from_100_ms_to_1_s_and_the_room_ends_at_the_failover_timeout() {
    let t0 = Instant::now();
    let mut up = edge(None);
    up.handle(Start, t0);
    up.handle(chosen("o"), t0);
    up.handle(LinkUp("o".into()), t0);
    let since = t0 + Duration::from_secs(5);
    up.handle(LinkBroke("o".into()), since);
    let (mut attempts, mut now, mut last) = (Vec::new(), since, Vec::new());
    while let Some(at) = up.poll_timeout() {
        now = at;
        last = up.handle(Tick, now);
        if last == choose(&["o"]) {
            attempts.push(now - since);
            // The origin's registry entry is gone: every attempt fails at once.
            assert_eq!(up.handle(unavailable(), now), []);
        }
    }
    let gaps: Vec<_> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(attempts[0], ms(100));
    assert_eq!(gaps[..4], [ms(200), ms(400), ms(800), ms(1000)]);
    assert!(gaps[4..].iter().all(|g| *g == ms(1000)));
    assert_eq!(last, [EndRoom(EndReason::FailoverTimeout)]);
    assert_eq!(now, since + TIMEOUT);
    assert_eq!(
        up.handle(LinkUp("o".into()), now),
        [],
        "a late link is ignored"
    );
}

#[test]
fn edges_whose_links_break_during_failover_are_avoided_but_the_owner_never_is() {
    let t0 = Instant::now();
    let mut up = edge(None);
    up.handle(Start, t0);
    up.handle(chosen("e1"), t0);
    up.handle(LinkUp("e1".into()), t0);
    up.handle(LinkBroke("e1".into()), t0);
    assert_eq!(up.handle(Tick, t0 + ms(100)), choose(&["e1"]));
    assert_eq!(
        up.handle(chosen("e3"), t0 + ms(100)),
        [Connect(source("e3"))]
    );
    assert_eq!(up.handle(LinkBroke("e3".into()), t0 + ms(120)), []);
    assert_eq!(up.handle(Tick, t0 + ms(320)), choose(&["e1", "e3"]));
    // A driver that still picks an avoided edge is not followed; the owner always may be.
    assert_eq!(up.handle(chosen("e3"), t0 + ms(320)), []);
    assert_eq!(up.handle(Tick, t0 + ms(720)), choose(&["e1", "e3"]));
    assert_eq!(up.handle(chosen("o"), t0 + ms(720)), [Connect(source("o"))]);
}

#[test]
fn a_room_that_cannot_get_its_first_link_ends_at_once() {
    let t0 = Instant::now();
    let not_published = [EndRoom(EndReason::NotPublished)];
    let mut up = edge(None);
    up.handle(Start, t0);
    let none = UpstreamEvent::Candidates(Candidates::NoOwner);
    assert_eq!(up.handle(none, t0), not_published);

    let mut up = edge(None);
    up.handle(Start, t0);
    let own = UpstreamEvent::Candidates(Candidates::Chosen {
        owner: "e2".into(),
        source: source("e2"),
    });
    assert_eq!(up.handle(own, t0), not_published, "the owner is this node");

    let mut up = edge(None);
    up.handle(Start, t0);
    up.handle(chosen("o"), t0);
    let failed = EndReason::NoUpstream("relay link to o failed".into());
    assert_eq!(up.handle(LinkBroke("o".into()), t0), [EndRoom(failed)]);
    assert_eq!(up.poll_timeout(), None);
}

#[test]
fn a_configured_upstream_is_connected_without_the_store_and_retried_on_failover() {
    let t0 = Instant::now();
    let url = "http://up:9";
    let configured = Source {
        id: url.into(),
        url: url.into(),
    };
    let mut up = edge(Some(url));
    assert_eq!(up.handle(Start, t0), [Connect(configured.clone())]);
    // The link names the node behind the URL.
    up.handle(LinkUp("e1".into()), t0);
    assert_eq!(up.state(), &UpstreamState::Linked("e1".into()));
    assert_eq!(up.handle(LinkBroke("e1".into()), t0), [MarkSourcesLost]);
    assert_eq!(up.handle(Tick, t0 + ms(100)), [Connect(configured)]);
}

#[test]
fn the_room_ending_ends_the_upstream_whatever_it_was_doing() {
    let t0 = Instant::now();
    let mut up = edge(None);
    up.handle(Start, t0);
    let over = [EndRoom(EndReason::Over)];
    assert_eq!(up.handle(UpstreamEvent::RoomOver, t0), over);
    assert_eq!(up.handle(chosen("o"), t0), [], "a stale answer");
    assert_eq!(up.state(), &UpstreamState::Ended(EndReason::Over));
}
