//! The supervision tree. `Engine` supervises one `Role` actor per configured role; each
//! role actor hosts its loop (a consumer loop, the HTTP server) as a task and links the
//! actors the loop spawns (the contact shards' factory). A failed role, or a failed child
//! of it, is restarted with backoff: the new incarnation resumes from the committed
//! offsets, so nothing committed is lost and nothing uncommitted is skipped.
//!
//! Shutdown stops the roles in order (ingress first: no new intake; then the consumers,
//! each draining, flushing and committing) and waits for each.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::error::EngineError;
use super::health::RoleBoard;
use crate::metrics::catalog;
use crate::retry::RetryPolicy;

/// Starts one incarnation of a role: runs until the receiver turns true (then drains and
/// returns Ok) or fails. The cell is the role actor, to link child actors to.
pub type RoleStart = Arc<
    dyn Fn(watch::Receiver<bool>, ActorCell) -> BoxFuture<'static, Result<(), EngineError>>
        + Send
        + Sync,
>;

/// How long a role gets to drain, flush and commit when stopped.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// A role that ran this long before failing restarts without the accumulated backoff.
pub const HEALTHY_RUN: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- role

pub struct Role;

pub struct RoleArgs {
    pub name: String,
    pub start: RoleStart,
}

pub enum RoleMsg {
    Exited(Result<(), String>),
}

pub struct RoleState {
    name: String,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    myself: ActorCell,
}

impl Drop for RoleState {
    /// A failed role is dropped without `post_stop`: abort its loop and kill its children
    /// at once, so no stale incarnation writes behind its successor.
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        for child in self.myself.get_children() {
            child.kill();
        }
    }
}

impl Actor for Role {
    type Msg = RoleMsg;
    type State = RoleState;
    type Arguments = RoleArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RoleMsg>,
        args: RoleArgs,
    ) -> Result<RoleState, ActorProcessingErr> {
        let (shutdown, receiver) = watch::channel(false);
        let run = (args.start)(receiver, myself.get_cell());
        let me = myself.clone();
        let task = tokio::spawn(async move {
            let result = run.await.map_err(|e| e.to_string());
            let _ = me.cast(RoleMsg::Exited(result));
        });
        tracing::info!(role = %args.name, "role started");
        Ok(RoleState {
            name: args.name,
            shutdown,
            task: Some(task),
            myself: myself.get_cell(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RoleMsg>,
        message: RoleMsg,
        state: &mut RoleState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RoleMsg::Exited(Ok(())) => {
                state.task = None;
                myself.stop(Some("finished".into()));
                Ok(())
            }
            RoleMsg::Exited(Err(error)) => {
                state.task = None;
                Err(format!("role {} failed: {error}", state.name).into())
            }
        }
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<RoleMsg>,
        event: SupervisionEvent,
        state: &mut RoleState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(_, error) => {
                Err(format!("role {}: a child actor failed: {error}", state.name).into())
            }
            _ => Ok(()),
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RoleMsg>,
        state: &mut RoleState,
    ) -> Result<(), ActorProcessingErr> {
        let _ = state.shutdown.send(true);
        if let Some(task) = state.task.take() {
            if tokio::time::timeout(STOP_TIMEOUT, task).await.is_err() {
                tracing::error!(role = %state.name, "role did not drain in time");
            }
        }
        tracing::info!(role = %state.name, "role stopped");
        Ok(())
    }
}

// ---------------------------------------------------------------- engine

pub struct Engine;

pub struct EngineArgs {
    /// Roles in start order; they stop in this order too (ingress first).
    pub roles: Vec<(String, RoleStart)>,
    /// Where the engine reports each role's condition (the readiness probe reads it).
    pub board: RoleBoard,
}

pub enum EngineMsg {
    Restart(String),
    /// Stops every role in order and answers when all have stopped.
    Shutdown(RpcReplyPort<()>),
    /// Names of the roles running now.
    Running(RpcReplyPort<Vec<String>>),
}

struct Running {
    actor: ActorRef<RoleMsg>,
    started: Instant,
}

pub struct EngineState {
    order: Vec<String>,
    specs: HashMap<String, RoleStart>,
    running: HashMap<String, Running>,
    failures: HashMap<String, u32>,
    stopping: bool,
    board: RoleBoard,
}

impl Engine {
    async fn spawn_role(
        myself: &ActorRef<EngineMsg>,
        state: &mut EngineState,
        name: &str,
    ) -> Result<(), ActorProcessingErr> {
        let start = state.specs[name].clone();
        let (actor, _) = Actor::spawn_linked(
            None,
            Role,
            RoleArgs {
                name: name.to_string(),
                start,
            },
            myself.get_cell(),
        )
        .await?;
        state.running.insert(
            name.to_string(),
            Running {
                actor,
                started: Instant::now(),
            },
        );
        let failures = state.failures.get(name).copied().unwrap_or(0);
        state.board.started(name, failures);
        Ok(())
    }
}

impl Actor for Engine {
    type Msg = EngineMsg;
    type State = EngineState;
    type Arguments = EngineArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<EngineMsg>,
        args: EngineArgs,
    ) -> Result<EngineState, ActorProcessingErr> {
        let mut state = EngineState {
            order: args.roles.iter().map(|(n, _)| n.clone()).collect(),
            specs: args.roles.into_iter().collect(),
            running: HashMap::new(),
            failures: HashMap::new(),
            stopping: false,
            board: args.board,
        };
        for name in state.order.clone() {
            // Every role's restart count exists from the start, at 0: an alert's
            // `increase()` then sees the first restart too.
            catalog::ACTOR_RESTARTS
                .counter(&[name.clone().into()])
                .increment(0);
            Engine::spawn_role(&myself, &mut state, &name).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<EngineMsg>,
        message: EngineMsg,
        state: &mut EngineState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EngineMsg::Restart(name) => {
                if !state.stopping && !state.running.contains_key(&name) {
                    tracing::info!(role = %name, "restarting role");
                    Engine::spawn_role(&myself, state, &name).await?;
                }
            }
            EngineMsg::Shutdown(reply) => {
                state.stopping = true;
                for name in state.order.clone() {
                    if let Some(running) = state.running.remove(&name) {
                        let _ = running.actor.stop_and_wait(None, Some(STOP_TIMEOUT)).await;
                    }
                }
                let _ = reply.send(());
                myself.stop(None);
            }
            EngineMsg::Running(reply) => {
                let mut names: Vec<String> = state.running.keys().cloned().collect();
                names.sort();
                let _ = reply.send(names);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<EngineMsg>,
        event: SupervisionEvent,
        state: &mut EngineState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, detail) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, error.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        let Some(name) = state
            .running
            .iter()
            .find(|(_, r)| r.actor.get_id() == cell.get_id())
            .map(|(n, _)| n.clone())
        else {
            return Ok(());
        };
        let running = state.running.remove(&name).expect("found above");
        if state.stopping {
            return Ok(());
        }
        let failures = state.failures.entry(name.clone()).or_insert(0);
        if running.started.elapsed() >= HEALTHY_RUN {
            *failures = 0;
        }
        *failures += 1;
        state.board.failed(&name, *failures);
        // The n-th restart in a row waits the n-th delay of the restart policy.
        let backoff = RetryPolicy::RESTARTS.delay(*failures);
        tracing::error!(role = %name, %detail, ?backoff, "role exited; restarting");
        catalog::ACTOR_RESTARTS
            .counter(&[name.clone().into()])
            .increment(1);
        myself.send_after(backoff, move || EngineMsg::Restart(name));
        Ok(())
    }
}
