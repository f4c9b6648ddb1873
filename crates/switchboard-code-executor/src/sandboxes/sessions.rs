//! Sessions across several sandboxes: a session's interpreter and files live on the sandbox
//! that created it, so every call naming it must go there.
//!
//! - **Creation** picks a sandbox as an execution does (most free interpreters), and moves on
//!   to another when the first had no room: unreachable, full (503), or this caller holds as
//!   many sessions there as one caller may (429). The last refusal is returned when none has
//!   room.
//! - **Routes.** The code-executor remembers which sandbox holds each session, per owner, in
//!   a map of at most [`MAX_ROUTES`] entries (the least recently used goes first). A route is
//!   forgotten when the session is closed, when it ends during a run, and when its sandbox
//!   says it is unknown (404) or ended (410).
//! - **A miss** (a forgotten route, a restart of this service, another replica's session)
//!   asks every sandbox `GET /sessions/{id}` as the owner, at once, and remembers the one that
//!   answers 200.
//! - **Never elsewhere.** A session's call is never retried on another sandbox: its state is
//!   on that one only.
//!
//! A route is only a hint: the sandbox decides who may use a session (the owner header), so a
//! route shared by mistake would reach nothing.

use std::{collections::HashMap, future::Future, sync::Arc};

use switchboard_protocol::sandbox::{
    ClosedSession, CreateSessionRequest, ExecuteRequest, ExecutionResult, FileList, SessionFile,
    SessionInfo,
};

use super::{Backend, InFlight, Sandboxes};
use crate::client::{ClientError, Download, Owner, SandboxClient};

/// Routes kept at most. Each is a few hundred bytes; a forgotten one costs one lookup.
const MAX_ROUTES: usize = 10_000;

/// Which sandbox (its URL) holds each session of each owner.
#[derive(Default)]
pub(super) struct Routes {
    by_session: HashMap<(Owner, String), Route>,
    /// Ticks on every use, to find the least recently used route.
    clock: u64,
}

struct Route {
    url: String,
    used: u64,
}

impl Routes {
    fn get(&mut self, owner: &Owner, id: &str) -> Option<String> {
        self.clock += 1;
        let clock = self.clock;
        let route = self.by_session.get_mut(&(owner.clone(), id.to_owned()))?;
        route.used = clock;
        Some(route.url.clone())
    }

    fn remember(&mut self, owner: &Owner, id: &str, url: &str) {
        self.clock += 1;
        let key = (owner.clone(), id.to_owned());
        if self.by_session.len() >= MAX_ROUTES && !self.by_session.contains_key(&key) {
            // A scan, but only when full, and far cheaper than the sandbox call that follows.
            let oldest = self
                .by_session
                .iter()
                .min_by_key(|(_, route)| route.used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.by_session.remove(&oldest);
            }
        }
        self.by_session.insert(
            key,
            Route {
                url: url.to_owned(),
                used: self.clock,
            },
        );
    }

    fn forget(&mut self, owner: &Owner, id: &str) {
        self.by_session.remove(&(owner.clone(), id.to_owned()));
    }
}

/// Which sandbox a session's call needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// The one where the session lives.
    Live,
    /// That one, or one that remembers the session ended: a close is answered there ("had
    /// already ended", not an error).
    LiveOrEnded,
}

/// Whether a sandbox refused to create a session for want of room: it is full (503), or the
/// caller has as many there as one caller may (429). Another sandbox may have room: each
/// sandbox's caps protect its own interpreters, so with several sandboxes a caller may hold
/// that many on each.
fn full(error: &ClientError) -> bool {
    error.not_run() || matches!(error, ClientError::Refused { status: 429, .. })
}

impl Sandboxes {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        match self.inner.routes.lock() {
            Ok(routes) => routes,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A new session for `owner`, on the sandbox an execution would go to.
    pub async fn create_session(
        &self,
        owner: &Owner,
        request: &CreateSessionRequest,
    ) -> Result<SessionInfo, ClientError> {
        let op =
            move |client: SandboxClient| async move { client.create_session(owner, request).await };
        let (backend, info) = self.on_any(op, full).await?;
        self.routes()
            .remember(owner, &info.session_id, backend.url());
        Ok(info)
    }

    /// Run `request` in session `id`, on its sandbox.
    pub async fn execute_in_session(
        &self,
        owner: &Owner,
        id: &str,
        request: &ExecuteRequest,
    ) -> Result<ExecutionResult, ClientError> {
        let result = self
            .on_session(owner, id, Needs::Live, move |client| async move {
                client.execute(request, Some(owner)).await
            })
            .await?;
        if result.session_ended.is_some() {
            self.routes().forget(owner, id);
        }
        Ok(result)
    }

    /// Close session `id`; where it was is forgotten whatever the answer.
    pub async fn close_session(
        &self,
        owner: &Owner,
        id: &str,
    ) -> Result<ClosedSession, ClientError> {
        let closed = self
            .on_session(owner, id, Needs::LiveOrEnded, move |client| async move {
                client.close_session(owner, id).await
            })
            .await;
        self.routes().forget(owner, id);
        closed
    }

    /// Write a file into session `id`'s /work.
    pub async fn put_file(
        &self,
        owner: &Owner,
        id: &str,
        name: &str,
        content: Vec<u8>,
    ) -> Result<SessionFile, ClientError> {
        self.on_session(owner, id, Needs::Live, move |client| async move {
            client.put_file(owner, id, name, content).await
        })
        .await
    }

    /// The files of session `id`'s /work.
    pub async fn list_files(&self, owner: &Owner, id: &str) -> Result<FileList, ClientError> {
        self.on_session(owner, id, Needs::Live, move |client| async move {
            client.list_files(owner, id).await
        })
        .await
    }

    /// A file of session `id`'s /work.
    pub async fn get_file(
        &self,
        owner: &Owner,
        id: &str,
        name: &str,
    ) -> Result<Download, ClientError> {
        self.on_session(owner, id, Needs::Live, move |client| async move {
            client.get_file(owner, id, name).await
        })
        .await
    }

    /// Run `op` on the sandbox that holds session `id`, once.
    async fn on_session<T, F, Fut>(
        &self,
        owner: &Owner,
        id: &str,
        needs: Needs,
        op: F,
    ) -> Result<T, ClientError>
    where
        F: FnOnce(SandboxClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let backend = self.holder(owner, id, needs).await?;
        let result = {
            let _counted = InFlight::enter(&backend.in_flight);
            op(backend.client.clone()).await
        };
        match &result {
            Err(error) if error.session_gone() => self.routes().forget(owner, id),
            Err(
                error @ (ClientError::Unreachable { .. }
                | ClientError::Broken { .. }
                | ClientError::Timeout { .. }),
            ) => backend.fail(error),
            _ => {}
        }
        result
    }

    /// The sandbox that holds session `id` of `owner`: the remembered one, else the one of
    /// all that says it has it.
    async fn holder(
        &self,
        owner: &Owner,
        id: &str,
        needs: Needs,
    ) -> Result<Arc<Backend>, ClientError> {
        if id.is_empty() || id == "." || id == ".." {
            // Not an id any sandbox gives, and no URL segment of its own.
            return Err(ClientError::Refused {
                status: 404,
                message: format!("there is no session {id:?}; create one with create_session"),
            });
        }
        let remembered = self.routes().get(owner, id);
        if let Some(url) = remembered
            && let Some(backend) = self.backends().get(&url).cloned()
        {
            return Ok(backend);
        }
        self.find(owner, id, needs).await
    }

    /// Ask every sandbox whether it holds session `id` for `owner`; remember the one that
    /// does (or, when `needs` allows, return one that says it ended). When none does: a sandbox's "ended" (410, it says why) if one said so, else a
    /// failure to ask one (the session may be there), else "unknown" (404).
    async fn find(
        &self,
        owner: &Owner,
        id: &str,
        needs: Needs,
    ) -> Result<Arc<Backend>, ClientError> {
        let all = self.snapshot();
        let answers =
            futures::future::join_all(all.iter().map(|b| b.client.session(owner, id))).await;
        let (mut ended, mut unasked, mut unknown) = (None, None, None);
        for (backend, answer) in all.iter().zip(answers) {
            match answer {
                Ok(_) => {
                    self.routes().remember(owner, id, backend.url());
                    return Ok(backend.clone());
                }
                Err(ClientError::Refused { status: 410, .. }) if needs == Needs::LiveOrEnded => {
                    return Ok(backend.clone());
                }
                Err(error @ ClientError::Refused { status: 410, .. }) => ended = Some(error),
                Err(error @ ClientError::Refused { status: 404, .. }) => unknown = Some(error),
                Err(error) => unasked = Some(error),
            }
        }
        Err(ended
            .or(unasked)
            .or(unknown)
            .unwrap_or_else(|| self.none_usable()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::Caller;

    fn owner(name: &str) -> Owner {
        Owner::from(&Caller(name.to_owned()))
    }

    #[test]
    fn routes_are_per_owner_and_bounded() {
        let mut routes = Routes::default();
        routes.remember(&owner("a"), "s1", "http://one");
        assert_eq!(routes.get(&owner("a"), "s1").as_deref(), Some("http://one"));
        assert_eq!(routes.get(&owner("b"), "s1"), None);
        routes.forget(&owner("b"), "s1");
        assert!(routes.get(&owner("a"), "s1").is_some());
        routes.forget(&owner("a"), "s1");
        assert_eq!(routes.get(&owner("a"), "s1"), None);

        for i in 0..MAX_ROUTES {
            routes.remember(&owner("a"), &i.to_string(), "http://one");
        }
        // "0" is the oldest, unless used since.
        assert!(routes.get(&owner("a"), "0").is_some());
        routes.remember(&owner("a"), "new", "http://two");
        assert_eq!(routes.by_session.len(), MAX_ROUTES);
        assert!(routes.get(&owner("a"), "0").is_some());
        assert_eq!(routes.get(&owner("a"), "1"), None);
        assert_eq!(
            routes.get(&owner("a"), "new").as_deref(),
            Some("http://two")
        );
    }
}
