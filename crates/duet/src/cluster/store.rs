//! What duet keeps in Redis, and the only code that talks to it. Every call is bounded
//! ([`COMMAND_TIMEOUT`]) and a broken connection is replaced on the next call, so a
//! stopped or restarted Redis costs a node a failed call, never a stuck one.
//!
//! ```text
//!  duet:alive:<node>   "1", expires after DEAD_AFTER unless the node beats again
//!  duet:room:<room>    the node that owns the room (no expiry: the owner's liveness says
//!                      whether it still holds; another node takes it over when it died)
//!  duet:keys           a fingerprint of the nodes' shared keys (a node with other keys refuses to start)
//! ```
//!
//! Nothing else is stored: who is in a room, calls and held sessions stay in the owner's
//! hub, so losing Redis loses no state a node cannot rebuild on its next beat.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use duet_signal::RoomName;
use redis::aio::{MultiplexedConnection, PubSub};
use redis::{AsyncConnectionConfig, Client, Script};

use super::liveness::DEAD_AFTER;
use super::wire::NodeId;

/// Longest wait for Redis to answer (or to accept a connection).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// The room's owner: `me` takes it when it is free or its owner's alive key is gone.
const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] and redis.call('EXISTS', 'duet:alive:' .. owner) == 1 then
  return owner
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
";

/// A node's beat: it is alive for ARGV[2] ms more; it keeps the rooms after the `|`
/// marker (taking any that are free or whose owner died) and frees those before it that
/// are still its own. Returns the rooms it kept that a living node holds now.
const BEAT: &str = r"
local me = ARGV[1]
redis.call('SET', 'duet:alive:' .. me, '1', 'PX', ARGV[2])
local lost = {}
local keeping = false
for i = 3, #ARGV do
  local room = ARGV[i]
  if room == '|' then
    keeping = true
  else
    local key = 'duet:room:' .. room
    local owner = redis.call('GET', key)
    if not keeping then
      if owner == me then redis.call('DEL', key) end
    elseif owner == me then
    elseif owner and redis.call('EXISTS', 'duet:alive:' .. owner) == 1 then
      table.insert(lost, room)
    else
      redis.call('SET', key, me)
    end
  end
end
return lost
";

/// The first fingerprint stored wins; every node is told the one stored.
const FINGERPRINT: &str = r"
redis.call('SET', 'duet:keys', ARGV[1], 'NX')
return redis.call('GET', 'duet:keys')
";

/// One node's handle on Redis.
#[derive(Debug)]
pub struct Store {
    client: Client,
    node: NodeId,
    /// The connection commands go over, replaced when one fails.
    connection: Mutex<Option<MultiplexedConnection>>,
    claim: Script,
    beat: Script,
}

/// `url` as it may be shown in logs and errors: a password in it is replaced by `***`.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

fn room_key(room: &RoomName) -> String {
    format!("duet:room:{}", room.as_str())
}

impl Store {
    /// A handle for `url` (`redis://[user:password@]host:port/db`, `unix:///path`);
    /// nothing is connected yet.
    pub fn new(url: &str, node: NodeId) -> anyhow::Result<Self> {
        let client = Client::open(url)
            .with_context(|| format!("--redis {:?} is not a Redis URL", without_password(url)))?;
        Ok(Self {
            client,
            node,
            connection: Mutex::new(None),
            claim: Script::new(CLAIM),
            beat: Script::new(BEAT),
        })
    }

    async fn connection(&self) -> anyhow::Result<MultiplexedConnection> {
        if let Some(connection) = self.connection.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(connection);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let connection = tokio::time::timeout(
            COMMAND_TIMEOUT * 2,
            self.client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .context("Redis did not accept a connection in time")?
        .context("connect to Redis")?;
        *self.connection.lock().unwrap_or_else(|p| p.into_inner()) = Some(connection.clone());
        Ok(connection)
    }

    /// Runs `f` on the connection within [`COMMAND_TIMEOUT`]; a failure drops the
    /// connection so the next call makes a new one.
    async fn run<T, F>(&self, what: &str, f: impl FnOnce(MultiplexedConnection) -> F) -> anyhow::Result<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.connection().await?;
        let result = match tokio::time::timeout(COMMAND_TIMEOUT, f(connection)).await {
            Ok(Ok(value)) => return Ok(value),
            // Kept as the error itself (not a context around it), for `publish` to look at.
            Ok(Err(e)) => {
                tracing::debug!("Redis: {what}: {e}");
                anyhow::Error::new(e)
            }
            Err(_) => anyhow::anyhow!("Redis did not answer {what} within {COMMAND_TIMEOUT:?}"),
        };
        *self.connection.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Err(result)
    }

    /// The node that owns `room`: this one if it was free or its owner died.
    pub async fn claim(&self, room: &RoomName) -> anyhow::Result<NodeId> {
        let owner: String = self
            .run("claim a room", |mut c| async move {
                self.claim.key(room_key(room)).arg(&*self.node).invoke_async(&mut c).await
            })
            .await?;
        Ok(if owner == *self.node { self.node.clone() } else { owner.into() })
    }

    /// This node is alive; it keeps `keep` and frees `release`. Returns the rooms of
    /// `keep` that another living node owns now (they must move there).
    pub async fn beat(&self, keep: &[RoomName], release: &[RoomName]) -> anyhow::Result<Vec<RoomName>> {
        let lost: Vec<String> = self
            .run("beat", |mut c| async move {
                let mut call = self.beat.prepare_invoke();
                call.arg(&*self.node).arg(DEAD_AFTER.as_millis() as u64);
                release.iter().for_each(|room| {
                    call.arg(room.as_str());
                });
                call.arg("|");
                keep.iter().for_each(|room| {
                    call.arg(room.as_str());
                });
                call.invoke_async(&mut c).await
            })
            .await?;
        Ok(lost.iter().filter_map(|room| RoomName::new(room).ok()).collect())
    }

    /// Draining: this node's rooms are free and it is no longer alive.
    pub async fn leave(&self, rooms: &[RoomName]) -> anyhow::Result<()> {
        self.beat(&[], rooms).await?;
        let alive = format!("duet:alive:{}", self.node);
        self.run("leave", |mut c| async move { redis::cmd("DEL").arg(alive).query_async(&mut c).await }).await
    }

    /// Publishes each `(channel, text)` in order, in one round trip; returns how many
    /// subscribers heard each. A connection found broken before Redis could run them
    /// (Redis restarted) is replaced and the batch sent again, twice at most (sealed
    /// texts: what was heard the first time is refused by its receivers as a replay); a
    /// timeout is not retried, as Redis may still run the batch (a paused Redis does,
    /// once it continues).
    pub async fn publish(&self, messages: &[(&str, String)]) -> anyhow::Result<Vec<u64>> {
        let mut attempts = 0;
        loop {
            let result = self
                .run("publish", |mut c| async move {
                    let mut pipe = redis::pipe();
                    for (channel, text) in messages {
                        pipe.cmd("PUBLISH").arg(*channel).arg(text);
                    }
                    pipe.query_async(&mut c).await
                })
                .await;
            let unsent = result
                .as_ref()
                .err()
                .and_then(|e| e.downcast_ref::<redis::RedisError>())
                .is_some_and(|e| e.is_connection_dropped() || e.is_connection_refusal());
            attempts += 1;
            if !unsent || attempts == 3 {
                return result;
            }
            tokio::time::sleep(COMMAND_TIMEOUT / 10).await;
        }
    }

    /// The fingerprint the cluster's nodes share: `mine` if this node is the first.
    pub async fn fingerprint(&self, mine: &str) -> anyhow::Result<String> {
        self.run("compare keys", |mut c| async move {
            Script::new(FINGERPRINT).arg(mine).invoke_async(&mut c).await
        })
        .await
    }

    /// A new subscription to `channels`.
    pub async fn subscribe(&self, channels: &[String]) -> anyhow::Result<PubSub> {
        let subscribe = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            for channel in channels {
                pubsub.subscribe(channel).await?;
            }
            redis::RedisResult::Ok(pubsub)
        };
        tokio::time::timeout(COMMAND_TIMEOUT * 2, subscribe)
            .await
            .context("Redis did not take a subscription in time")?
            .context("subscribe on Redis")
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn a_password_in_the_redis_url_never_reaches_a_log() {
        assert_eq!(without_password("redis://:hunter2@10.0.0.5:6379/0"), "redis://:***@10.0.0.5:6379/0");
        assert_eq!(without_password("redis://duet:p@ss@redis.lan/1"), "redis://duet:***@redis.lan/1");
        assert_eq!(without_password("redis://10.0.0.5:6379/0"), "redis://10.0.0.5:6379/0");
        assert_eq!(without_password("not a url"), "not a url");
    }
}
