//! The store's one connection to Redis, and how it is replaced: a [`ConnectionManager`]
//! reconnects by itself to the address it was given; this slot replaces the manager when that
//! is not enough — a connection that hangs without dropping ([`REPLACE_AFTER_TIMEOUTS`]), and,
//! under Sentinel, any connection failure or `READONLY` answer, after which the sentinels are
//! asked for the master again, so a promoted replica is found without restarting the node.

use super::REPLACE_AFTER_TIMEOUTS;
use super::target::Target;
use ::redis::RedisError;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// After a failed Sentinel lookup, operations fail at once for this long instead of each
/// asking the sentinels again.
const LOOKUP_BACKOFF: Duration = Duration::from_millis(200);

/// The current manager and what is known about it.
struct Slot {
    con: Option<ConnectionManager>,
    /// Bumped on every replacement, so an error seen on an old manager does not discard a new one.
    generation: u64,
    /// When the last Sentinel lookup failed, and why.
    failed: Option<(Instant, String)>,
}

/// A connection slot; see the [module docs](self).
pub(crate) struct Conn {
    /// Where Redis is, without credentials: for Debug.
    described: String,
    /// The one server of a direct URL.
    direct: Option<::redis::Client>,
    config: ConnectionManagerConfig,
    slot: Mutex<Slot>,
    /// Under Sentinel: its client (it needs `&mut`), so also one lookup at a time.
    sentinel: Option<tokio::sync::Mutex<::redis::sentinel::SentinelClient>>,
    timeouts_in_a_row: AtomicU32,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("redis", &self.described)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// A slot for `target`; a direct one gets its (lazy) manager now, a Sentinel one on the
    /// first operation.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime: the connection manager spawns its task on creation.
    pub(crate) fn new(target: Target, config: ConnectionManagerConfig) -> Result<Self, String> {
        let described = format!("{target:?}");
        let (direct, sentinel, con) = match target {
            Target::Direct(client) => {
                let con = manager(client.clone(), &config)?;
                (Some(client), None, Some(con))
            }
            Target::Sentinel { client, .. } => (None, Some(tokio::sync::Mutex::new(*client)), None),
        };
        Ok(Self {
            described,
            direct,
            config,
            slot: Mutex::new(Slot {
                con,
                generation: 0,
                failed: None,
            }),
            sentinel,
            timeouts_in_a_row: AtomicU32::new(0),
        })
    }

    /// The connection to use now and its generation; under Sentinel, looks the master up when
    /// there is none. Errors are messages for [`RoutingError::Unavailable`](super::RoutingError).
    pub(crate) async fn get(&self) -> Result<(ConnectionManager, u64), String> {
        let seen = {
            let slot = self.lock();
            if let Some(con) = &slot.con {
                return Ok((con.clone(), slot.generation));
            }
            if let Some((at, why)) = &slot.failed
                && at.elapsed() < LOOKUP_BACKOFF
            {
                return Err(why.clone());
            }
            slot.generation
        };
        let Some(sentinel) = &self.sentinel else {
            return Err("Redis: no connection".to_owned());
        };
        let mut sentinel = sentinel.lock().await;
        {
            // Another operation may have looked it up while this one waited.
            let slot = self.lock();
            if slot.generation != seen
                || slot
                    .failed
                    .as_ref()
                    .is_some_and(|(at, _)| at.elapsed() < LOOKUP_BACKOFF)
            {
                return match (&slot.con, &slot.failed) {
                    (Some(con), _) => Ok((con.clone(), slot.generation)),
                    (None, Some((_, why))) => Err(why.clone()),
                    (None, None) => Err("Redis: no connection".to_owned()),
                };
            }
        }
        let found = sentinel.async_get_client().await;
        let mut slot = self.lock();
        slot.generation += 1;
        match found.map_err(|e| e.to_string()).and_then(|c| {
            let addr = c.get_connection_info().addr().to_string();
            manager(c, &self.config).map(|m| (m, addr))
        }) {
            Ok((con, addr)) => {
                tracing::info!(master = %addr, "Redis master found through Sentinel");
                slot.con = Some(con.clone());
                slot.failed = None;
                Ok((con, slot.generation))
            }
            Err(e) => {
                let why = format!("Redis: no master through Sentinel: {e}");
                slot.failed = Some((Instant::now(), why.clone()));
                Err(why)
            }
        }
    }

    /// For a direct URL: one connection attempt and a `PING`, without the manager's retries
    /// (it retries every error, a refused password included, past the operation timeout).
    /// `None` under Sentinel, whose lookup already connects to the master with the credentials.
    pub(crate) async fn probe(&self, timeout: Duration) -> Option<Result<(), RedisError>> {
        let client = self.direct.as_ref()?;
        let config = ::redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        Some(
            async {
                let mut con = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                ::redis::cmd("PING")
                    .query_async::<String>(&mut con)
                    .await
                    .map(drop)
            }
            .await,
        )
    }

    /// An operation finished within its time (with an answer or an error).
    pub(crate) fn answered(&self) {
        self.timeouts_in_a_row.store(0, Ordering::Relaxed);
    }

    /// An operation on `generation` failed with `e`: under Sentinel, a failure that says the
    /// master may have moved drops the manager, so the next operation asks the sentinels.
    pub(crate) fn failed(&self, generation: u64, e: &RedisError) {
        let moved = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"));
        if self.sentinel.is_some() && moved {
            self.discard(generation);
        }
    }

    /// An operation on `generation` got no answer in time. A connection that neither answers
    /// nor drops (hung server, black-holed route) is never replaced by the manager itself,
    /// which reconnects only on a dropped connection.
    pub(crate) fn timed_out(&self, generation: u64) {
        let n = self.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        if self.sentinel.is_some() {
            self.timeouts_in_a_row.store(0, Ordering::Relaxed);
            self.discard(generation);
            return;
        }
        if n < REPLACE_AFTER_TIMEOUTS {
            return;
        }
        if let Some(client) = &self.direct
            && let Ok(fresh) = manager(client.clone(), &self.config)
        {
            let mut slot = self.lock();
            slot.con = Some(fresh);
            slot.generation += 1;
            self.timeouts_in_a_row.store(0, Ordering::Relaxed);
            tracing::debug!("replaced an unresponsive Redis connection");
        }
    }

    fn discard(&self, generation: u64) {
        let mut slot = self.lock();
        if slot.generation == generation && slot.con.is_some() {
            slot.con = None;
            tracing::info!("Redis master unreachable; asking the sentinels again");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn manager(
    client: ::redis::Client,
    config: &ConnectionManagerConfig,
) -> Result<ConnectionManager, String> {
    ConnectionManager::new_lazy_with_config(client, config.clone())
        .map_err(|e| format!("Redis connection: {e}"))
}
