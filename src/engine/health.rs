//! What the supervisor knows of its roles, for the readiness probe: a role is ready while it
//! runs, unless it keeps failing (a restart loop is not health, even between restarts).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures in a row after which a role counts as looping until it runs this long.
const LOOPING_AFTER: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleCondition {
    Running,
    /// Exited and waiting for its restart.
    Restarting,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleHealth {
    pub role: String,
    pub condition: RoleCondition,
    /// Failures since the role last ran healthily.
    pub failures_in_a_row: u32,
    pub ready: bool,
}

struct Entry {
    condition: RoleCondition,
    failures_in_a_row: u32,
    since: Instant,
}

/// Shared by the supervisor (writer) and the HTTP surface (reader).
#[derive(Clone, Default)]
pub struct RoleBoard {
    roles: Arc<Mutex<BTreeMap<String, Entry>>>,
    healthy_run: Duration,
}

impl RoleBoard {
    /// `healthy_run`: how long a role must run after failing in a row to count as recovered.
    pub fn new(healthy_run: Duration) -> Self {
        RoleBoard {
            roles: Arc::default(),
            healthy_run,
        }
    }

    fn set(&self, role: &str, condition: RoleCondition, failures_in_a_row: u32) {
        let mut roles = self.roles.lock().expect("the role board is never poisoned");
        roles.insert(
            role.to_string(),
            Entry {
                condition,
                failures_in_a_row,
                since: Instant::now(),
            },
        );
    }

    pub fn started(&self, role: &str, failures_in_a_row: u32) {
        self.set(role, RoleCondition::Running, failures_in_a_row);
    }

    pub fn failed(&self, role: &str, failures_in_a_row: u32) {
        self.set(role, RoleCondition::Restarting, failures_in_a_row);
    }

    pub fn snapshot(&self) -> Vec<RoleHealth> {
        let roles = self.roles.lock().expect("the role board is never poisoned");
        roles
            .iter()
            .map(|(role, entry)| RoleHealth {
                role: role.clone(),
                condition: entry.condition,
                failures_in_a_row: entry.failures_in_a_row,
                ready: entry.condition == RoleCondition::Running
                    && (entry.failures_in_a_row < LOOPING_AFTER
                        || entry.since.elapsed() >= self.healthy_run),
            })
            .collect()
    }

    /// Every role runs and none is looping (and there is at least one).
    pub fn ready(&self) -> bool {
        let roles = self.snapshot();
        !roles.is_empty() && roles.iter().all(|r| r.ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_is_ready_while_it_runs_and_not_while_it_loops() {
        let board = RoleBoard::new(Duration::from_millis(50));
        assert!(!board.ready(), "no role has started yet");
        board.started("engine", 0);
        board.started("http", 0);
        assert!(board.ready());
        board.failed("engine", 1);
        assert!(!board.ready(), "a role waiting for its restart");
        board.started("engine", 1);
        assert!(board.ready(), "one failure is not a loop");
        board.failed("engine", 3);
        board.started("engine", 3);
        assert!(!board.ready(), "the third restart in a row is a loop");
        let engine = &board.snapshot()[0];
        assert_eq!(
            (engine.role.as_str(), engine.condition, engine.ready),
            ("engine", RoleCondition::Running, false)
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(board.ready(), "it ran long enough to count as recovered");
    }
}
