//! Starting the agent when etcd may not be there yet, as flanneld does: keep trying with
//! backoff until etcd answers and holds a network config, then acquire and run normally.
//!
//! ```text
//! loop { Agent::start
//!          ok                         -> done ("etcd reachable ..." if we waited)
//!          etcd unreachable           -> wait   (one line when this state begins)
//!          no <prefix>/config yet     -> wait   (one line when this state begins)
//!          anything else              -> error  (bad config, out of subnets: an operator's job)
//!        sleep backoff (100 ms doubling to settings.backoff_max) or shutdown -> None }
//! ```
//! While waiting, one reminder line every [`STILL_WAITING_EVERY`] says how long and how
//! many attempts; nothing is logged per retry.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Agent, AgentSettings, ControlError};

/// How often a still-waiting agent says so.
pub const STILL_WAITING_EVERY: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// How the wait for etcd goes, published after every failed attempt (for `weft status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartProgress {
    /// Attempts so far.
    pub attempts: u64,
    /// When the first attempt failed (`None`: no attempt failed yet).
    pub waiting_since: Option<std::time::Instant>,
    /// Why the last attempt did not start the agent.
    pub last_error: Option<String>,
}

/// Why the agent is not running yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Unreachable,
    NoNetworkConfig,
}

fn waiting_for(error: &ControlError) -> Option<Waiting> {
    match error {
        ControlError::Etcd { .. } => Some(Waiting::Unreachable),
        ControlError::NoNetworkConfig { .. } => Some(Waiting::NoNetworkConfig),
        _ => None,
    }
}

impl Agent {
    /// [`Agent::start`], retried with backoff while etcd is unreachable or holds no
    /// network config yet (flanneld waits in both cases); other errors return at once.
    /// Returns `Ok(None)` when `shutdown` resolves first, also in the middle of an attempt
    /// (an etcd lease granted by an abandoned attempt holds no key and expires by itself).
    ///
    /// Logs one line when a waiting state begins or changes, one when etcd answers after a
    /// wait, and a reminder every [`STILL_WAITING_EVERY`]; never one per retry.
    pub async fn start_when_ready(
        settings: AgentSettings,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Option<Agent>, ControlError> {
        Agent::start_when_ready_reporting(settings, &watch::Sender::default(), shutdown).await
    }

    /// [`Agent::start_when_ready`], publishing each failed attempt to `progress`.
    pub async fn start_when_ready_reporting(
        settings: AgentSettings,
        progress: &watch::Sender<StartProgress>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Option<Agent>, ControlError> {
        tokio::pin!(shutdown);
        let began = Instant::now();
        let mut state: Option<Waiting> = None;
        let mut backoff = FIRST_BACKOFF;
        let mut attempts: u64 = 0;
        let mut remind_at = began + STILL_WAITING_EVERY;
        loop {
            attempts += 1;
            let attempt = tokio::select! {
                result = Agent::start(settings.clone()) => result,
                _ = &mut shutdown => return Ok(None),
            };
            let error = match attempt {
                Ok(agent) => {
                    if state.is_some() {
                        tracing::info!(
                            attempts,
                            waited = ?began.elapsed(),
                            "etcd answered and holds the network config: starting"
                        );
                    }
                    return Ok(Some(agent));
                }
                Err(e) => e,
            };
            progress.send_modify(|p| {
                p.attempts = attempts;
                p.waiting_since.get_or_insert_with(std::time::Instant::now);
                p.last_error = Some(error.to_string());
            });
            let Some(now) = waiting_for(&error) else {
                return Err(error);
            };
            tracing::debug!(attempts, "not started yet: {error}");
            if state != Some(now) {
                let max = settings.backoff_max;
                match now {
                    Waiting::Unreachable => {
                        tracing::warn!("{error}; waiting for etcd, retrying with backoff up to {max:?}")
                    }
                    Waiting::NoNetworkConfig => {
                        tracing::warn!("{error}; waiting for it, retrying with backoff up to {max:?}")
                    }
                }
                state = Some(now);
            } else if Instant::now() >= remind_at {
                tracing::warn!(attempts, waited = ?began.elapsed(), "still waiting: {error}");
                remind_at = Instant::now() + STILL_WAITING_EVERY;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = &mut shutdown => return Ok(None),
            }
            backoff = (backoff * 2).min(settings.backoff_max.max(FIRST_BACKOFF));
        }
    }
}
