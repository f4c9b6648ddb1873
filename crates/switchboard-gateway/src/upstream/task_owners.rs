//! Who started each task of an upstream that does not keep clients apart (a stdio program, a
//! stateless upstream, one configured `shared_session`): such an upstream keeps the tasks of
//! every gateway client in one place and would show each the others'. The gateway writes down
//! the owner of each task it starts there and shows an owner only its own (`tasks/get`,
//! `tasks/result`, `tasks/cancel`, `tasks/list`); another's task is "unknown", as a made-up id
//! is, and its status notifications go to the client session that started it. The record
//! lives in this process: through another replica such a task is unknown too.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use super::Owner;

/// Tasks remembered at most; past it, expired records go first, then the oldest.
const MAX_TASKS: usize = 10_000;
/// How long a task is remembered when the upstream gives it no `ttl`.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// The longest a task is remembered, whatever its `ttl`.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Default)]
pub struct TaskOwners(Mutex<HashMap<String, (Owner, Instant)>>);

impl TaskOwners {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Owner, Instant)>> {
        // Inserts and removes only: a panic cannot leave the map inconsistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Task `id` (the upstream's) was started by `owner` and lives `ttl_ms` (its `ttl`).
    pub fn record(&self, id: &str, owner: &Owner, ttl_ms: Option<u64>) {
        let ttl = ttl_ms
            .map_or(DEFAULT_TTL, Duration::from_millis)
            .min(MAX_TTL);
        let now = Instant::now();
        let mut tasks = self.lock();
        if tasks.len() >= MAX_TASKS {
            tasks.retain(|_, (_, until)| *until > now);
        }
        if tasks.len() >= MAX_TASKS
            && let Some(oldest) = tasks
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(id, _)| id.clone())
        {
            tasks.remove(&oldest);
        }
        tasks.insert(id.to_owned(), (owner.clone(), now + ttl));
    }

    /// Who started task `id`, while it has not expired.
    pub fn owner(&self, id: &str) -> Option<Owner> {
        self.lock()
            .get(id)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(owner, _)| owner.clone())
    }

    /// Whether `owner` started task `id` (and it has not expired).
    pub fn owns(&self, id: &str, owner: &Owner) -> bool {
        self.owner(id).as_ref() == Some(owner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn each_owner_has_only_its_own_tasks() {
        let owners = TaskOwners::default();
        let alice = Owner::Session(Arc::from("a"));
        let bob = Owner::Session(Arc::from("b"));
        owners.record("t1", &alice, Some(60_000));
        assert!(owners.owns("t1", &alice));
        assert!(!owners.owns("t1", &bob));
        assert!(!owners.owns("t2", &alice), "never started");
        owners.record("t3", &bob, Some(0));
        assert!(!owners.owns("t3", &bob), "expired");
    }

    #[test]
    fn the_record_is_bounded() {
        let owners = TaskOwners::default();
        for i in 0..MAX_TASKS + 5 {
            owners.record(&format!("t{i}"), &Owner::Anonymous, Some(60_000 + i as u64));
        }
        assert_eq!(owners.lock().len(), MAX_TASKS);
        assert!(owners.owns(&format!("t{}", MAX_TASKS + 4), &Owner::Anonymous));
        assert!(
            !owners.owns("t0", &Owner::Anonymous),
            "the oldest went first"
        );
    }
}
