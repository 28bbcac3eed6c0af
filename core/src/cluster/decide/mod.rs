//! The cluster's decisions as plain state machines: no sockets, no store, no clock.
//!
//! Each machine is told the time (`now`, an [`std::time::Instant`]) with every input, takes
//! one event at a time, and returns the actions it decided on; the async node is the driver
//! that performs them (store writes, probes, relay links, shutdown) and feeds the answers back
//! as events. Every machine has the same surface:
//!
//! - `handle(&mut self, event, now) -> Vec<Action>`: one input, the actions it calls for, in
//!   order. An action that asks something (a store write, a probe, a lookup) is answered by
//!   exactly one event later; answers that arrive after the machine moved on are ignored
//!   (or undone, when they won something).
//! - `poll_timeout(&self) -> Option<Instant>`: when the driver should send the machine's
//!   `Tick` event next (`None`: nothing is waiting on time).
//!
//! The machines, one concept each:
//!
//! - [`claims`]: a node's room claims in the routing store: claim, take-over of a dead
//!   owner, renewal, reclaim, release, giving a room up.
//! - [`upstream`]: an edge's upstream for one relayed room: choice, link, failover with
//!   backoff, the failover timeout.
//! - [`drain`]: serving, draining until the sessions leave or the deadline, stopped.
//! - [`admission`]: whether a new session is taken here, sent elsewhere or refused, with a
//!   slot reserved for each one taken.
//!
//! They import nothing but `std` and nothing from each other: no layer of the crate, not even
//! the rest of [`crate::cluster`]. The node ([`crate::cluster::node`]) drives them.

pub mod admission;
pub mod claims;
pub mod drain;
pub mod upstream;
