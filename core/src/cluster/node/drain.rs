//! Drain: the driver of the node's drain machine ([`crate::cluster::decide::drain`]). No new
//! sessions, the current ones kept until they leave or the deadline passes, then shutdown.
//!
//! The machine hears of every session joining or leaving (`SessionsChanged`, sent by
//! `track_session` under the node's lock, so in order), of `drain()` and of its deadline.
//! Refusing new sessions is done at once, by whoever fed the event; announcing the drain and
//! shutting down are done in order by one task, started with the drain, so that the
//! announcement is written before the shutdown removes the node's routing entries.

use super::Node;
use crate::cluster::decide::drain::{Drain, DrainAction, DrainEvent};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The drain machine, and the queue of its slow actions (its receiving end goes to the
/// drain's task when the drain starts).
#[derive(Debug)]
pub(super) struct DrainDriver {
    machine: Drain,
    actions: mpsc::UnboundedSender<DrainAction>,
    queued: Option<mpsc::UnboundedReceiver<DrainAction>>,
}

impl DrainDriver {
    pub(super) fn new(timeout: Duration) -> Self {
        let (actions, queued) = mpsc::unbounded_channel();
        Self {
            machine: Drain::new(timeout),
            actions,
            queued: Some(queued),
        }
    }
}

impl Node {
    /// Starts draining (idempotent): the node takes no new sessions, tells the routing store,
    /// keeps its sessions until they leave or `drain_timeout` passes, then shuts down (which
    /// removes its routing entries). Returns false when it was already draining.
    pub fn drain(self: &Arc<Self>) -> bool {
        let timeout = self.config.drain_timeout;
        let sessions = self.state().sessions.len();
        let (queued, deadline) = {
            let mut driver = self.drain_driver();
            if !self.drain_locked(&mut driver, DrainEvent::DrainRequested) {
                return false;
            }
            (driver.queued.take(), driver.machine.poll_timeout())
        };
        tracing::info!(sessions, timeout_secs = timeout.as_secs(), "draining");
        if let Some(queued) = queued {
            tokio::spawn(self.clone().drain_task(queued, deadline));
        }
        true
    }

    fn drain_driver(&self) -> std::sync::MutexGuard<'_, DrainDriver> {
        self.drain.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Feeds the drain machine one event. Refusing new sessions is done here and now; the
    /// other actions go, in order, to the drain's task.
    pub(super) fn drain_event(&self, event: DrainEvent) {
        self.drain_locked(&mut self.drain_driver(), event);
    }

    /// [`Node::drain_event`] under the drain's lock; whether the machine called for anything.
    fn drain_locked(&self, driver: &mut DrainDriver, event: DrainEvent) -> bool {
        let actions = driver.machine.handle(event, Instant::now());
        let any = !actions.is_empty();
        for action in actions {
            match action {
                DrainAction::RefuseNewSessions => {
                    self.draining.cancel();
                    self.admission.drain();
                }
                action => {
                    let _ = driver.actions.send(action);
                }
            }
        }
        any
    }

    /// Carries out the drain's slow actions in order, and ticks the machine at its deadline.
    async fn drain_task(
        self: Arc<Self>,
        mut actions: mpsc::UnboundedReceiver<DrainAction>,
        mut deadline: Option<Instant>,
    ) {
        loop {
            let tick = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let action = tokio::select! {
                action = actions.recv() => action,
                () = tick => {
                    deadline = None;
                    self.drain_event(DrainEvent::Tick);
                    continue;
                }
                () = self.shutdown.cancelled() => return,
            };
            match action {
                Some(DrainAction::AnnounceDraining) => {
                    // Leave placement now rather than at the next heartbeat.
                    let info = self.info();
                    if let Err(e) = self.routing.heartbeat(&info, self.config.lease).await {
                        tracing::warn!(error = %e, "could not announce draining");
                    }
                }
                Some(DrainAction::Shutdown) => {
                    match self.state().sessions.len() {
                        0 => tracing::info!("drained: no sessions left"),
                        left => tracing::info!(
                            sessions = left,
                            "drain deadline passed; closing sessions"
                        ),
                    }
                    self.shutdown.cancel();
                    return;
                }
                Some(DrainAction::RefuseNewSessions) | None => return,
            }
        }
    }
}
