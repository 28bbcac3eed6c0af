//! Claims driven against a store fake written here: `SET NX PX` rooms with tokens and node
//! registrations with leases. No sockets, no sleeps: time is an `Instant` moved by hand.

use super::*;
use std::collections::{HashMap, VecDeque};

const LEASE: Duration = Duration::from_secs(10);
const ROOM: &str = "r";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The routing store as claims see it.
#[derive(Default)]
struct Store {
    /// Room → (owner, token, expiry).
    rooms: HashMap<String, (String, ClaimToken, Instant)>,
    /// Node → registration expiry.
    registered: HashMap<String, Instant>,
    /// Every operation fails (the store unreachable).
    down: bool,
    tokens: u32,
}

impl Store {
    fn heartbeat(&mut self, node: &str, now: Instant) {
        self.registered.insert(node.into(), now + LEASE);
    }

    fn held(&mut self, now: Instant) -> Option<(String, ClaimToken)> {
        self.rooms.retain(|_, (_, _, expires)| *expires > now);
        self.rooms.get(ROOM).map(|(o, t, _)| (o.clone(), t.clone()))
    }

    fn grant(&mut self, node: &str, now: Instant) -> ClaimAnswer {
        self.tokens += 1;
        let token = ClaimToken(format!("t{}", self.tokens));
        let entry = (node.to_owned(), token.clone(), now + LEASE);
        self.rooms.insert(ROOM.into(), entry);
        ClaimAnswer::Won(token)
    }

    /// `SET NX PX`, then `room_owner` on refusal.
    fn set_nx(&mut self, node: &str, now: Instant) -> ClaimAnswer {
        match (self.down, self.held(now)) {
            (true, _) => ClaimAnswer::Failed,
            (false, Some((owner, _))) => ClaimAnswer::HeldBy(owner),
            (false, None) => self.grant(node, now),
        }
    }

    /// Compare-owner-and-set.
    fn take_over(&mut self, dead: &str, node: &str, now: Instant) -> ClaimAnswer {
        match (self.down, self.held(now)) {
            (true, _) => ClaimAnswer::Failed,
            (false, Some((owner, _))) if owner != dead => ClaimAnswer::HeldBy(owner),
            (false, _) => self.grant(node, now),
        }
    }

    fn renew(&mut self, token: &ClaimToken, now: Instant) -> ClaimEvent {
        if self.down {
            return ClaimEvent::RenewFailed;
        }
        match self.held(now) {
            Some((_, t)) if t == *token => {
                self.rooms.get_mut(ROOM).expect("held").2 = now + LEASE;
                ClaimEvent::Renewed
            }
            _ => ClaimEvent::RenewLost,
        }
    }

    fn probe(&self, owner: &str, now: Instant) -> OwnerHealth {
        match self.registered.get(owner) {
            Some(expires) if *expires > now => OwnerHealth::Live,
            _ => OwnerHealth::LeaseExpired,
        }
    }
}

/// A node's claim of [`ROOM`] and its driver: every action performed at once against the
/// store, its answer fed back; the outcomes for the join kept.
struct Node {
    id: String,
    claim: Claim,
    outcomes: Vec<ClaimAction>,
}

impl Node {
    fn new(id: &str, tweak: impl FnOnce(&mut ClaimSettings)) -> Self {
        let mut settings = ClaimSettings::new(id, LEASE);
        tweak(&mut settings);
        let claim = Claim::new(settings);
        let (id, outcomes) = (id.to_owned(), Vec::new());
        Self {
            id,
            claim,
            outcomes,
        }
    }

    fn run(&mut self, store: &mut Store, event: ClaimEvent, now: Instant) {
        let mut todo = VecDeque::from(self.claim.handle(event, now));
        while let Some(action) = todo.pop_front() {
            let answer = match action {
                ClaimAction::TryClaim | ClaimAction::Reclaim => {
                    ClaimEvent::Claimed(store.set_nx(&self.id, now))
                }
                ClaimAction::ProbeOwner(owner) => {
                    let health = store.probe(&owner, now);
                    ClaimEvent::OwnerProbed { owner, health }
                }
                ClaimAction::TakeOver(owner) => {
                    ClaimEvent::Claimed(store.take_over(&owner, &self.id, now))
                }
                ClaimAction::Renew(token) => store.renew(&token, now),
                ClaimAction::Release(token) => {
                    if !store.down && store.held(now).is_some_and(|(_, t)| t == token) {
                        store.rooms.remove(ROOM);
                    }
                    continue;
                }
                outcome => {
                    self.outcomes.push(outcome);
                    continue;
                }
            };
            todo.extend(self.claim.handle(answer, now));
        }
    }

    fn owns(&self) -> bool {
        matches!(self.claim.state(), ClaimState::Held(_))
    }
}

#[test]
fn two_nodes_racing_for_a_room_one_wins_and_the_other_is_refused() {
    for a_first in [true, false] {
        let t0 = Instant::now();
        let mut store = Store::default();
        let (mut a, mut b) = (Node::new("a", |_| {}), Node::new("b", |_| {}));
        store.heartbeat("a", t0);
        store.heartbeat("b", t0);
        // Both ask before either hears back; the store serializes the two `SET NX`.
        assert_eq!(
            a.claim.handle(ClaimEvent::Claim, t0),
            [ClaimAction::TryClaim]
        );
        assert_eq!(
            b.claim.handle(ClaimEvent::Claim, t0),
            [ClaimAction::TryClaim]
        );
        let (first, second) = if a_first {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let answer_first = store.set_nx(&first.id, t0);
        let answer_second = store.set_nx(&second.id, t0);
        // Answers come back in the other order.
        second.run(&mut store, ClaimEvent::Claimed(answer_second), t0 + ms(1));
        first.run(&mut store, ClaimEvent::Claimed(answer_first), t0 + ms(2));
        let winner = first.id.clone();
        assert_eq!(first.outcomes, [ClaimAction::Owned]);
        assert_eq!(
            second.outcomes,
            [ClaimAction::Refused(Some(winner.clone()))]
        );
        assert!(a.owns() ^ b.owns(), "exactly one owner");
        assert_eq!(store.held(t0 + ms(3)).map(|(o, _)| o), Some(winner));
    }
}

#[test]
fn a_hung_owner_is_taken_over_once_its_lease_expires_and_gives_the_room_up_on_waking() {
    let t0 = Instant::now();
    let mut store = Store::default();
    let (mut a, mut b) = (Node::new("a", |_| {}), Node::new("b", |_| {}));
    store.heartbeat("a", t0);
    store.heartbeat("b", t0);
    a.run(&mut store, ClaimEvent::Claim, t0 + ms(50));
    assert!(a.owns());
    // `a` renews on time, then hangs (SIGSTOP): no heartbeat, no renewal, though the kernel
    // still accepts connections on its ports.
    let renewed = a.claim.poll_timeout().expect("a renewal is due");
    store.heartbeat("a", renewed);
    a.run(&mut store, ClaimEvent::Tick, renewed + ms(5));
    let hung = renewed + ms(6);
    // A publisher arriving at `b` within the lease is refused: `a` is alive as far as anyone
    // can tell.
    b.run(&mut store, ClaimEvent::Claim, hung + LEASE / 2);
    assert_eq!(b.outcomes, [ClaimAction::Refused(Some("a".into()))]);
    // Its registration has expired, its claim (renewed just after) not yet: `b` takes over,
    // within one lease of the hang.
    let expired = renewed + LEASE;
    assert!(store.held(expired).is_some_and(|(o, _)| o == "a"));
    b.run(&mut store, ClaimEvent::Claim, expired);
    assert_eq!(b.outcomes[1..], [ClaimAction::Owned]);
    assert!(expired <= hung + LEASE);
    // `a` wakes (SIGCONT) long after: its heartbeat registers it again, its renewal
    // (compare-and-extend on its token) fails, and it gives the room up to `b`.
    let woke = hung + LEASE * 3;
    store.heartbeat("b", woke);
    b.run(&mut store, ClaimEvent::Tick, woke);
    store.heartbeat("a", woke);
    a.run(&mut store, ClaimEvent::Tick, woke);
    assert_eq!(
        a.outcomes,
        [ClaimAction::Owned, ClaimAction::GiveUp(Some("b".into()))]
    );
    assert_eq!(a.claim.state(), &ClaimState::Lost(Some("b".into())));
    // It stays given up: later ticks ask the store nothing and take nothing back; `b` owns.
    assert_eq!(a.claim.poll_timeout(), None);
    assert_eq!(a.claim.handle(ClaimEvent::Tick, woke + LEASE), []);
    assert!(b.owns() && !a.owns());
    assert_eq!(store.held(woke + ms(1)).map(|(o, _)| o), Some("b".into()));
    // The room's end releases `a`'s claim: nothing is asked, `b`'s claim stays.
    assert_eq!(a.claim.handle(ClaimEvent::Release, woke + ms(2)), []);
    assert!(a.claim.is_done());
}

#[test]
fn an_owner_whose_lease_runs_is_never_taken_over_whatever_its_ports_do() {
    // `a` crashed, or is cut off from `b` (a partition): `b` cannot tell which, and does not
    // try. Until `a`'s lease runs out, the room is `a`'s.
    let t0 = Instant::now();
    let mut store = Store::default();
    let mut a = Node::new("a", |_| {});
    store.heartbeat("a", t0);
    a.run(&mut store, ClaimEvent::Claim, t0);
    let mut b = Node::new("b", |_| {});
    b.run(&mut store, ClaimEvent::Claim, t0 + ms(100));
    assert_eq!(b.outcomes, [ClaimAction::Refused(Some("a".into()))]);
    b.run(&mut store, ClaimEvent::Claim, t0 + LEASE - ms(1));
    assert_eq!(b.outcomes[1], ClaimAction::Refused(Some("a".into())));
    // Lease over: both entries expired, the room is free to claim.
    b.run(&mut store, ClaimEvent::Claim, t0 + LEASE);
    assert_eq!(b.outcomes[2..], [ClaimAction::Owned]);
}

#[test]
fn a_waking_owner_that_lost_its_lease_to_nobody_claims_the_room_again() {
    // Hung past its lease but nobody wanted the room meanwhile: no split brain to avoid, so
    // the room goes on here under a new token.
    let t0 = Instant::now();
    let mut store = Store::default();
    let mut a = Node::new("a", |_| {});
    store.heartbeat("a", t0);
    a.run(&mut store, ClaimEvent::Claim, t0);
    let woke = t0 + LEASE * 2;
    store.heartbeat("a", woke);
    a.run(&mut store, ClaimEvent::Tick, woke);
    assert!(a.owns());
    assert_eq!(a.outcomes, [ClaimAction::Owned]);
    assert_eq!(store.held(woke).map(|(o, _)| o), Some("a".into()));
}

#[test]
fn a_claim_under_our_own_id_is_a_previous_run_and_is_taken_over() {
    let t0 = Instant::now();
    let mut store = Store::default();
    store.heartbeat("a", t0);
    Node::new("a", |_| {}).run(&mut store, ClaimEvent::Claim, t0);
    let mut restarted = Node::new("a", |_| {});
    restarted.run(&mut store, ClaimEvent::Claim, t0 + ms(500));
    assert_eq!(restarted.outcomes, [ClaimAction::Owned]);
}

#[test]
fn a_claim_is_renewed_every_third_of_a_lease_and_claimed_again_when_the_store_lost_it() {
    let t0 = Instant::now();
    let mut store = Store::default();
    let mut a = Node::new("a", |_| {});
    a.run(&mut store, ClaimEvent::Claim, t0);
    let renew_at = a.claim.poll_timeout().expect("a renewal is due");
    assert_eq!(renew_at, t0 + LEASE / 3);
    assert_eq!(a.claim.handle(ClaimEvent::Tick, renew_at - ms(1)), []);
    a.run(&mut store, ClaimEvent::Tick, renew_at);
    assert_eq!(a.claim.poll_timeout(), Some(renew_at + LEASE / 3));
    let ClaimState::Held(before) = a.claim.state().clone() else {
        panic!("held")
    };
    store.rooms.clear(); // Redis restarted empty
    a.run(&mut store, ClaimEvent::Tick, renew_at + LEASE / 3);
    let ClaimState::Held(after) = a.claim.state().clone() else {
        panic!("held again")
    };
    assert_ne!(before.token, after.token);
    assert_eq!(a.outcomes, [ClaimAction::Owned], "reclaimed quietly");
    assert_eq!(
        store.held(renew_at + LEASE / 3).map(|(_, t)| t),
        Some(after.token)
    );
}

#[test]
fn a_claim_that_cannot_be_renewed_for_a_lease_is_given_up_only_when_told_to() {
    for on_lapse in [Lapse::KeepServing, Lapse::GiveUp] {
        let t0 = Instant::now();
        let mut store = Store::default();
        let mut a = Node::new("a", |s| s.on_lapse = on_lapse);
        a.run(&mut store, ClaimEvent::Claim, t0);
        store.down = true;
        let mut now = t0;
        while now < t0 + LEASE * 2 {
            now = a.claim.poll_timeout().unwrap_or(now + ms(500)).max(now);
            a.run(&mut store, ClaimEvent::Tick, now);
            if !a.owns() {
                break;
            }
        }
        match on_lapse {
            Lapse::KeepServing => assert_eq!(a.outcomes, [ClaimAction::Owned]),
            Lapse::GiveUp => {
                assert_eq!(a.outcomes, [ClaimAction::Owned, ClaimAction::GiveUp(None)]);
                assert_eq!(now, t0 + LEASE, "given up when the lease ran out");
            }
        }
    }
}

#[test]
fn a_claim_won_after_the_room_was_released_is_let_go_at_once() {
    let t0 = Instant::now();
    let mut claim = Claim::new(ClaimSettings::new("a", LEASE));
    assert_eq!(claim.handle(ClaimEvent::Claim, t0), [ClaimAction::TryClaim]);
    assert_eq!(claim.handle(ClaimEvent::Release, t0 + ms(1)), []);
    assert!(!claim.is_done(), "a claim is still out");
    let won = ClaimEvent::Claimed(ClaimAnswer::Won(ClaimToken("t".into())));
    let actions = claim.handle(won, t0 + ms(2));
    assert_eq!(actions, [ClaimAction::Release(ClaimToken("t".into()))]);
    assert!(claim.is_done());
}

#[test]
fn a_lost_claim_that_cannot_be_made_again_is_retried_or_given_up_by_the_lapse_rule() {
    for on_lapse in [Lapse::KeepServing, Lapse::GiveUp] {
        let t0 = Instant::now();
        let mut a = Claim::new(ClaimSettings {
            on_lapse,
            ..ClaimSettings::new("a", LEASE)
        });
        a.handle(ClaimEvent::Claim, t0);
        a.handle(
            ClaimEvent::Claimed(ClaimAnswer::Won(ClaimToken("t".into()))),
            t0,
        );
        let due = t0 + LEASE / 3;
        let renew = ClaimAction::Renew(ClaimToken("t".into()));
        assert_eq!(a.handle(ClaimEvent::Tick, due), [renew]);
        assert_eq!(a.handle(ClaimEvent::RenewLost, due), [ClaimAction::Reclaim]);
        let failed = a.handle(ClaimEvent::Claimed(ClaimAnswer::Failed), due);
        match on_lapse {
            Lapse::KeepServing => {
                assert_eq!(failed, []);
                let retry = a.poll_timeout().expect("a retry is due");
                assert_eq!(retry, due + LEASE / 3);
                assert_eq!(a.handle(ClaimEvent::Tick, retry), [ClaimAction::Reclaim]);
            }
            Lapse::GiveUp => assert_eq!(failed, [ClaimAction::GiveUp(None)]),
        }
    }
}

#[test]
fn an_owner_the_store_cannot_tell_about_refuses_the_join_and_takes_nothing_over() {
    let t0 = Instant::now();
    let mut claim = Claim::new(ClaimSettings::new("b", LEASE));
    assert_eq!(claim.handle(ClaimEvent::Claim, t0), [ClaimAction::TryClaim]);
    let held = ClaimEvent::Claimed(ClaimAnswer::HeldBy("a".into()));
    let probe = ClaimAction::ProbeOwner("a".into());
    assert_eq!(claim.handle(held, t0), [probe]);
    let unknown = ClaimEvent::OwnerProbed {
        owner: "a".into(),
        health: OwnerHealth::Unknown,
    };
    assert_eq!(
        claim.handle(unknown, t0 + ms(1)),
        [ClaimAction::Refused(None)]
    );
    assert!(claim.is_done());
}
