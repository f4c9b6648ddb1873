//! Catalogs of single clients: a client whose own upstream session lists something else than
//! the gateway's shared session — a resource a tool created in its session, or fewer tools
//! because it lacks a capability they need — is listed, and routed by, a catalog built with
//! its own listing of that upstream ([`crate::catalog::Catalog::build`]). Everyone else shares
//! the global catalog, and so does every client of stateless and stdio upstreams, whose one
//! session is everyone's.
//!
//! Such a catalog is rebuilt when the client's own lists change (its session announced it,
//! see `crate::upstream::lists::follow`) and after every rebuild of the global one; the client
//! session is told what changed (`notifications/*/list_changed`), alone; a caller without a
//! session hears it on its `subscriptions/listen` streams. The catalog goes when
//! the client's own sessions close. While no client has one, finding a request's catalog is
//! one atomic load, as before.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
};

use super::Gateway;
use crate::{
    catalog::Catalog,
    sessions::ListChanges,
    upstream::{Listing, Owner},
};

#[derive(Default)]
pub struct OwnCatalogs {
    /// How many owners have one: read without the lock on every request.
    count: AtomicUsize,
    by_owner: Mutex<HashMap<Owner, Arc<Catalog>>>,
}

impl OwnCatalogs {
    fn lock(&self) -> MutexGuard<'_, HashMap<Owner, Arc<Catalog>>> {
        // Inserts, lookups and removals only: a panic cannot leave the map inconsistent.
        self.by_owner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What differs between two catalogs, as `list_changed` notifications.
pub fn changes(old: &Catalog, new: &Catalog) -> ListChanges {
    ListChanges {
        tools: old.tools != new.tools,
        resources: old.resources != new.resources
            || old.resource_templates != new.resource_templates,
        prompts: old.prompts != new.prompts,
    }
}

impl Gateway {
    /// The catalog `owner` sees and is routed by: its own if it has one, else everyone's.
    pub fn catalog_for(&self, owner: &Owner) -> Arc<Catalog> {
        let own = &self.inner.own;
        if own.count.load(Ordering::Acquire) > 0
            && let Some(catalog) = own.lock().get(owner)
        {
            return catalog.clone();
        }
        self.inner.catalog.load_full()
    }

    /// Rebuild `owner`'s catalog from its own listings, and tell its session what changed.
    pub(super) fn refresh_own(&self, owner: &Owner) {
        let before = self.catalog_for(owner);
        let own: Vec<Option<Arc<Listing>>> = self
            .inner
            .upstreams
            .iter()
            .map(|u| u.own_listing(owner))
            .collect();
        let after = if own.iter().all(Option::is_none) {
            None
        } else {
            let (mut catalog, _renamed) =
                Catalog::build(&self.inner.upstreams, &self.inner.gateway_metrics, &own);
            self.inner
                .cache
                .plan_catalog(&mut catalog, &self.inner.upstreams);
            Some(Arc::new(catalog))
        };
        let after = {
            let mut by_owner = self.inner.own.lock();
            let after = match after {
                Some(catalog) => {
                    by_owner.insert(owner.clone(), catalog.clone());
                    catalog
                }
                None => {
                    by_owner.remove(owner);
                    self.inner.catalog.load_full()
                }
            };
            self.inner
                .own
                .count
                .store(by_owner.len(), Ordering::Release);
            after
        };
        let changes = changes(&before, &after);
        if changes.any() {
            tracing::debug!(?changes, "a client's own lists changed");
            self.inner.sessions.tell(owner, changes);
        }
    }

    /// Rebuild every client's own catalog (the global one changed under them).
    pub(super) fn refresh_all_own(&self) {
        if self.inner.own.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let owners: Vec<Owner> = self.inner.own.lock().keys().cloned().collect();
        for owner in owners {
            self.refresh_own(&owner);
        }
    }

    /// Forget `owner`'s catalog (its session ended).
    pub(super) fn drop_own(&self, owner: &Owner) {
        let mut by_owner = self.inner.own.lock();
        by_owner.remove(owner);
        self.inner
            .own
            .count
            .store(by_owner.len(), Ordering::Release);
    }
}
