//! Admission decided over hand-made snapshots of the cluster; races played out by ordering
//! events by hand.

use super::*;
use AdmissionAction::{Admit, LookUp, Redirect, Refuse};
use AdmissionEvent::{Leave, LookUpFailed, LookedUp};

const CARRIED: Join = Join::Viewer {
    carries_room: true,
    tier: Tier::Best,
};
const NOT_CARRIED: Join = Join::Viewer {
    carries_room: false,
    tier: Tier::Best,
};

fn node(id: &str, role: NodeRole, capacity: u32) -> Admission {
    Admission::new(AdmissionSettings {
        node_id: id.into(),
        role,
        capacity,
        serves_without_store: false,
    })
}

fn edge(id: &str, load: u32, capacity: u32, carries_room: bool) -> Candidate {
    let (role, draining) = (NodeRole::Edge, false);
    Candidate {
        id: id.into(),
        role,
        load,
        capacity,
        draining,
        carries_room,
        tier: Tier::Best,
    }
}

fn origin(id: &str, load: u32, capacity: u32) -> Candidate {
    let role = NodeRole::Origin;
    Candidate {
        role,
        ..edge(id, load, capacity, false)
    }
}

/// Joins `n` viewers of a room this node carries; returns their tickets.
fn fill(a: &mut Admission, n: u32, now: Instant) -> Vec<Ticket> {
    (0..n)
        .map(|_| match a.handle(AdmissionEvent::Join(CARRIED), now)[..] {
            [Admit(t)] => t,
            ref other => panic!("expected an admit, got {other:?}"),
        })
        .collect()
}

fn ticket(actions: &[AdmissionAction]) -> Ticket {
    match actions {
        [LookUp(t)] => *t,
        other => panic!("expected a lookup, got {other:?}"),
    }
}

#[test]
fn a_full_edge_redirects_to_the_least_loaded_edge_with_room_carriers_first() {
    let now = Instant::now();
    let mut a = node("a", NodeRole::Edge, 10);
    fill(&mut a, 10, now);
    let nodes = vec![
        edge("a", 10, 10, true),
        edge("b", 50, 100, false),
        edge("c", 1, 10, false),
        edge("d", 9, 10, true),
        edge("x", 10, 10, true),
    ];
    let t = ticket(&a.handle(AdmissionEvent::Join(CARRIED), now));
    assert_eq!(
        a.handle(LookedUp(t, nodes.clone()), now),
        [Redirect(t, "d".into())]
    );
    // Nobody else with room carries it: least loaded by ratio (c: 10 %, b: 50 %).
    let others: Vec<_> = nodes.into_iter().filter(|n| n.id != "d").collect();
    let t = ticket(&a.handle(AdmissionEvent::Join(CARRIED), now));
    assert_eq!(
        a.handle(LookedUp(t, others), now),
        [Redirect(t, "c".into())]
    );
    assert_eq!(a.load(), 10, "redirects take no slot");
}

#[test]
fn a_full_or_draining_node_refuses_when_no_edge_has_room() {
    let now = Instant::now();
    let mut a = node("a", NodeRole::Edge, 2);
    fill(&mut a, 2, now);
    let nodes = vec![edge("b", 5, 5, true), origin("o", 0, 10)];
    let t = ticket(&a.handle(AdmissionEvent::Join(CARRIED), now));
    let full = Refuse(t, RefuseReason::Full);
    assert_eq!(a.handle(LookedUp(t, nodes.clone()), now), [full]);

    let mut d = node("d", NodeRole::Edge, 10);
    d.handle(AdmissionEvent::Drain, now);
    let t = ticket(&d.handle(AdmissionEvent::Join(CARRIED), now));
    let draining = Refuse(t, RefuseReason::Draining);
    assert_eq!(d.handle(LookedUp(t, nodes), now), [draining]);
}

#[test]
fn the_last_slot_raced_by_two_joins_goes_to_exactly_one() {
    let now = Instant::now();
    // Both joins are decided at once, one after the other.
    let mut a = node("a", NodeRole::Edge, 3);
    fill(&mut a, 2, now);
    let first = a.handle(AdmissionEvent::Join(CARRIED), now);
    let second = a.handle(AdmissionEvent::Join(CARRIED), now);
    assert!(matches!(first[..], [Admit(_)]));
    let t = ticket(&second);
    assert_eq!(
        a.handle(LookedUp(t, vec![]), now),
        [Refuse(t, RefuseReason::Full)]
    );
    assert_eq!(a.load(), 3);

    // Both wait on a lookup (an edge not yet carrying the room), answered in either order.
    for swap in [false, true] {
        let mut a = node("a", NodeRole::Edge, 3);
        fill(&mut a, 2, now);
        let mut tickets = [
            ticket(&a.handle(AdmissionEvent::Join(NOT_CARRIED), now)),
            ticket(&a.handle(AdmissionEvent::Join(NOT_CARRIED), now)),
        ];
        if swap {
            tickets.reverse();
        }
        let nodes = vec![edge("a", 2, 3, false), edge("b", 4, 4, false)];
        let [won, lost] = tickets;
        assert_eq!(a.handle(LookedUp(won, nodes.clone()), now), [Admit(won)]);
        let refused = Refuse(lost, RefuseReason::Full);
        assert_eq!(a.handle(LookedUp(lost, nodes), now), [refused]);
        assert_eq!(a.load(), 3);
    }
}

#[test]
fn a_slot_freed_by_a_leave_admits_the_next_join() {
    let now = Instant::now();
    let mut a = node("a", NodeRole::Edge, 1);
    let [t] = fill(&mut a, 1, now)[..] else {
        panic!("one viewer")
    };
    a.handle(Leave(t), now);
    a.handle(Leave(t), now); // twice: no slot freed twice
    assert_eq!(a.load(), 0);
    fill(&mut a, 1, now);
    assert!(!a.has_room());
}

#[test]
fn an_edge_not_carrying_the_room_sends_viewers_to_one_that_does() {
    let now = Instant::now();
    let mut a = node("a", NodeRole::Edge, 10);
    let nodes = vec![
        edge("b", 9, 10, true),
        edge("c", 3, 10, true),
        edge("d", 0, 10, false),
    ];
    let t = ticket(&a.handle(AdmissionEvent::Join(NOT_CARRIED), now));
    assert_eq!(a.handle(LookedUp(t, nodes), now), [Redirect(t, "c".into())]);
    // Nobody carries it: this edge takes it and will pull the room.
    let t = ticket(&a.handle(AdmissionEvent::Join(NOT_CARRIED), now));
    let nobody = vec![edge("d", 0, 10, false)];
    assert_eq!(a.handle(LookedUp(t, nobody), now), [Admit(t)]);
}

#[test]
fn an_origin_counts_every_session_and_sends_publishers_to_the_least_loaded_origin_when_full() {
    let now = Instant::now();
    let mut o = node("o1", NodeRole::Origin, 2);
    let viewer = o.handle(AdmissionEvent::Join(NOT_CARRIED), now);
    assert!(
        matches!(viewer[..], [Admit(_)]),
        "origins keep their viewers"
    );
    assert_eq!(o.load(), 1, "a viewer takes an origin slot too");
    assert!(matches!(
        o.handle(AdmissionEvent::Join(Join::Publisher), now)[..],
        [Admit(_)]
    ));
    assert_eq!(o.load(), 2);
    let t = ticket(&o.handle(AdmissionEvent::Join(Join::Publisher), now));
    let nodes = vec![
        origin("o2", 4, 5),
        origin("o3", 1, 5),
        edge("e", 0, 100, false),
    ];
    assert_eq!(
        o.handle(LookedUp(t, nodes.clone()), now),
        [Redirect(t, "o3".into())]
    );
    // A full origin sends a new viewer to an edge with room.
    let t = ticket(&o.handle(AdmissionEvent::Join(NOT_CARRIED), now));
    assert_eq!(o.handle(LookedUp(t, nodes), now), [Redirect(t, "e".into())]);
}

#[test]
fn relay_links_are_always_taken_and_counted() {
    let now = Instant::now();
    let mut a = node("a", NodeRole::Edge, 2);
    fill(&mut a, 2, now);
    let [Admit(relay)] = a.handle(AdmissionEvent::Join(Join::Relay), now)[..] else {
        panic!("a relay link is taken by its chosen upstream even when full")
    };
    assert_eq!(a.load(), 3);
    a.handle(AdmissionEvent::Drain, now);
    assert!(matches!(
        a.handle(AdmissionEvent::Join(Join::Relay), now)[..],
        [Admit(_)]
    ));
    a.handle(Leave(relay), now);
    assert_eq!(a.load(), 3);
}

#[test]
fn without_the_store_only_a_node_that_can_serve_anyway_takes_the_viewer() {
    let now = Instant::now();
    let mut a = node("a", NodeRole::Edge, 10);
    let t = ticket(&a.handle(AdmissionEvent::Join(NOT_CARRIED), now));
    let unavailable = Refuse(t, RefuseReason::StoreUnavailable);
    assert_eq!(a.handle(LookUpFailed(t), now), [unavailable]);
    a.settings.serves_without_store = true; // `--upstream`
    let t = ticket(&a.handle(AdmissionEvent::Join(NOT_CARRIED), now));
    assert_eq!(a.handle(LookUpFailed(t), now), [Admit(t)]);
}

#[test]
fn no_interleaving_of_joins_lookups_and_leaves_overfills_a_node() {
    let now = Instant::now();
    let mut a = node("a", NodeRole::Edge, 5);
    let (mut seed, mut pending, mut admitted) = (7_u64, Vec::new(), Vec::new());
    for _ in 0..10_000 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let actions = match (seed >> 33) % 4 {
            0 => a.handle(AdmissionEvent::Join(CARRIED), now),
            1 => a.handle(AdmissionEvent::Join(NOT_CARRIED), now),
            2 if !pending.is_empty() => {
                let t = pending.swap_remove((seed >> 40) as usize % pending.len());
                a.handle(LookedUp(t, vec![edge("b", 0, 5, false)]), now)
            }
            _ if !admitted.is_empty() => {
                let t = admitted.swap_remove((seed >> 40) as usize % admitted.len());
                a.handle(Leave(t), now)
            }
            _ => vec![],
        };
        for action in actions {
            match action {
                LookUp(t) => pending.push(t),
                Admit(t) => admitted.push(t),
                _ => {}
            }
        }
        assert!(a.load() <= 5 && a.load() as usize == admitted.len());
    }
}

#[test]
fn viewers_are_never_sent_to_full_or_draining_edges_nor_to_origins() {
    let now = Instant::now();
    let mut a = node("a", NodeRole::Edge, 10);
    let mut draining = edge("c", 0, 10, true);
    draining.draining = true;
    let nodes = vec![edge("b", 10, 10, true), draining, origin("o", 0, 10)];
    // The carriers cannot take it: this edge does, and will pull the room.
    let t = ticket(&a.handle(AdmissionEvent::Join(NOT_CARRIED), now));
    assert_eq!(a.handle(LookedUp(t, nodes.clone()), now), [Admit(t)]);
    fill(&mut a, 9, now);
    // Full, with only an origin that has room: refused.
    let t = ticket(&a.handle(AdmissionEvent::Join(CARRIED), now));
    let full = Refuse(t, RefuseReason::Full);
    assert_eq!(a.handle(LookedUp(t, nodes), now), [full]);
}

/// A viewer of this hint's tier `tier` for a node that carries the room or not.
fn viewer(carries_room: bool, tier: Tier) -> Join {
    Join::Viewer { carries_room, tier }
}

fn at(tier: Tier, c: Candidate) -> Candidate {
    Candidate { tier, ..c }
}

#[test]
fn a_viewer_matching_this_node_is_served_here_without_a_lookup() {
    let now = Instant::now();
    let mut e = node("e", NodeRole::Edge, 10);
    assert!(matches!(
        e.handle(AdmissionEvent::Join(viewer(true, Tier::Best)), now)[..],
        [Admit(_)]
    ));
    // Carrying the room is not enough when the viewer is nearer to somebody else.
    let t = ticket(&e.handle(AdmissionEvent::Join(viewer(true, Tier::Any)), now));
    // ... but nobody nearer has room: here, as today.
    let far = vec![at(Tier::Best, edge("x", 10, 10, true))];
    assert_eq!(e.handle(LookedUp(t, far), now), [Admit(t)]);
    // An origin with a hint it does not match asks too, and serves when the store is down.
    let mut o = node("o", NodeRole::Origin, 10);
    let t = ticket(&o.handle(AdmissionEvent::Join(viewer(false, Tier::Any)), now));
    assert_eq!(o.handle(LookUpFailed(t), now), [Admit(t)]);
}

#[test]
fn nearer_tiers_win_and_todays_rules_hold_inside_a_tier() {
    let now = Instant::now();
    let mut e = node("e", NodeRole::Edge, 10);
    let nodes = vec![
        at(Tier::Any, edge("far", 0, 10, true)),
        at(Tier::Region, edge("r1", 5, 10, false)),
        at(Tier::Region, edge("r2", 8, 10, true)),
        at(Tier::Best, edge("z-full", 10, 10, true)),
        at(Tier::Best, origin("o", 0, 10)),
    ];
    // This node is far; the zone's only edge is full and an origin is never a viewer's
    // redirect: the region's edge that carries the room, though more loaded.
    let t = ticket(&e.handle(AdmissionEvent::Join(viewer(true, Tier::Any)), now));
    assert_eq!(
        e.handle(LookedUp(t, nodes.clone()), now),
        [Redirect(t, "r2".into())]
    );
    // Nobody in the region carries it: the least loaded of the region anyway (it will pull).
    let uncarried: Vec<_> = nodes.iter().filter(|n| n.id != "r2").cloned().collect();
    let t = ticket(&e.handle(AdmissionEvent::Join(viewer(true, Tier::Any)), now));
    assert_eq!(
        e.handle(LookedUp(t, uncarried), now),
        [Redirect(t, "r1".into())]
    );
    // This node is in the region and does not carry the room: today's rule within the
    // region (r2 carries it), not the far edge, which is less loaded.
    let t = ticket(&e.handle(AdmissionEvent::Join(viewer(false, Tier::Region)), now));
    assert_eq!(
        e.handle(LookedUp(t, nodes.clone()), now),
        [Redirect(t, "r2".into())]
    );
    // ... and with no carrier in the region it pulls the room itself rather than send the
    // viewer out of the region.
    let only_far = vec![at(Tier::Any, edge("far", 0, 10, true))];
    let t = ticket(&e.handle(AdmissionEvent::Join(viewer(false, Tier::Region)), now));
    assert_eq!(e.handle(LookedUp(t, only_far), now), [Admit(t)]);
}

#[test]
fn a_full_node_looks_in_farther_tiers_before_refusing() {
    let now = Instant::now();
    let mut e = node("e", NodeRole::Edge, 1);
    fill(&mut e, 1, now);
    let nodes = vec![
        at(Tier::Best, edge("z-full", 10, 10, true)),
        at(Tier::Any, edge("far", 3, 10, false)),
        at(Tier::Any, edge("far-c", 9, 10, true)),
    ];
    let t = ticket(&e.handle(AdmissionEvent::Join(viewer(true, Tier::Best)), now));
    assert_eq!(
        e.handle(LookedUp(t, nodes.clone()), now),
        [Redirect(t, "far-c".into())]
    );
    let full: Vec<_> = nodes.into_iter().take(1).collect();
    let t = ticket(&e.handle(AdmissionEvent::Join(viewer(true, Tier::Best)), now));
    assert_eq!(
        e.handle(LookedUp(t, full), now),
        [Refuse(t, RefuseReason::Full)]
    );
}

#[test]
fn an_edge_with_room_needs_only_the_carriers_for_a_viewer_of_its_own_tier() {
    let now = Instant::now();
    let mut e = node("e1", NodeRole::Edge, 1);
    assert!(!e.needs_least_loaded(NOT_CARRIED));
    assert!(e.needs_least_loaded(viewer(false, Tier::Region)));
    assert!(e.needs_least_loaded(Join::Publisher));
    // Given only the carriers, it decides as with everyone: a carrier, else here.
    let t = ticket(&e.handle(AdmissionEvent::Join(NOT_CARRIED), now));
    let carriers = vec![edge("e2", 0, 1, true)];
    let got = e.handle(LookedUp(t, carriers), now);
    assert_eq!(got, [Redirect(t, "e2".into())]);
    let t = ticket(&e.handle(AdmissionEvent::Join(NOT_CARRIED), now));
    assert_eq!(e.handle(LookedUp(t, vec![]), now), [Admit(t)]);
    // Full, it needs everyone: it must look for an edge with room.
    assert!(e.needs_least_loaded(NOT_CARRIED));
    let o = node("o1", NodeRole::Origin, 1);
    assert!(o.needs_least_loaded(NOT_CARRIED));
}
