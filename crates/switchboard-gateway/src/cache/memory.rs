//! The in-process store: a map bounded in entries and bytes, each entry with its expiry, the
//! least recently used evicted first.
//!
//! One mutex around a `HashMap` and a `BTreeMap` of use order: every operation is a few map
//! operations under the lock, and no lock is held while a result is cloned or serialized. Only
//! calls of cached tools come here, so the lock is not on the path of any other call. Expired
//! entries are dropped when looked up, and otherwise age out of the use order like any other.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use rmcp::model::CallToolResult;

use super::key::Key;

/// The store. Limits are checked on every insert.
pub struct Memory {
    lru: Mutex<Lru>,
    max_entries: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<Key, Entry>,
    /// Use order: the smallest tick is the least recently used.
    order: BTreeMap<u64, Key>,
    tick: u64,
    bytes: usize,
}

struct Entry {
    result: Arc<CallToolResult>,
    expires: Instant,
    bytes: usize,
    tick: u64,
}

/// Entries and bytes held, for `/ready` and the gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub entries: usize,
    pub bytes: usize,
}

impl Memory {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            lru: Mutex::default(),
            max_entries,
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        // Every operation leaves the maps consistent before it can panic (allocation only).
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The result stored under `key`, unless it expired by `now`.
    pub fn get(&self, key: &Key, now: Instant) -> Option<Arc<CallToolResult>> {
        let mut lru = self.lock();
        let (expires, used) = lru.entries.get(key).map(|e| (e.expires, e.tick))?;
        if expires <= now {
            lru.remove(key);
            return None;
        }
        lru.order.remove(&used);
        lru.tick += 1;
        let tick = lru.tick;
        lru.order.insert(tick, *key);
        let entry = lru.entries.get_mut(key)?;
        entry.tick = tick;
        Some(entry.result.clone())
    }

    /// Keep `result` (`bytes` long as JSON) under `key` for `ttl` from `now`, evicting the least
    /// recently used entries to stay within the limits. The size after.
    pub fn put(
        &self,
        key: Key,
        result: Arc<CallToolResult>,
        bytes: usize,
        ttl: Duration,
        now: Instant,
    ) -> Size {
        let mut lru = self.lock();
        lru.remove(&key);
        lru.tick += 1;
        let tick = lru.tick;
        lru.order.insert(tick, key);
        lru.bytes += bytes;
        lru.entries.insert(
            key,
            Entry {
                result,
                expires: now + ttl,
                bytes,
                tick,
            },
        );
        while lru.entries.len() > self.max_entries || lru.bytes > self.max_bytes {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            lru.remove(&oldest);
        }
        lru.size()
    }

    pub fn size(&self) -> Size {
        self.lock().size()
    }
}

impl Lru {
    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.tick);
            self.bytes -= entry.bytes;
        }
    }

    fn size(&self) -> Size {
        Size {
            entries: self.entries.len(),
            bytes: self.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::ContentBlock;

    use super::*;
    use crate::cache::key::Partition;

    fn key(n: u32) -> Key {
        Key::new(
            "u",
            "t",
            Partition::Shared,
            serde_json::json!({ "n": n }).as_object(),
        )
    }

    fn result(text: &str) -> Arc<CallToolResult> {
        Arc::new(CallToolResult::success(vec![ContentBlock::text(text)]))
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn entries_expire_after_their_ttl() {
        let memory = Memory::new(10, 1000);
        let now = Instant::now();
        memory.put(key(1), result("one"), 10, Duration::from_secs(1), now);
        assert!(
            memory
                .get(&key(1), now + Duration::from_millis(999))
                .is_some()
        );
        assert!(memory.get(&key(1), now + Duration::from_secs(1)).is_none());
        assert_eq!(
            memory.size(),
            Size {
                entries: 0,
                bytes: 0
            }
        );
    }

    #[test]
    fn the_least_recently_used_go_first_when_over_entries_or_bytes() {
        let memory = Memory::new(2, 1000);
        let now = Instant::now();
        memory.put(key(1), result("one"), 10, MINUTE, now);
        memory.put(key(2), result("two"), 10, MINUTE, now);
        // Using 1 makes 2 the least recently used.
        assert!(memory.get(&key(1), now).is_some());
        let size = memory.put(key(3), result("three"), 10, MINUTE, now);
        assert_eq!(
            size,
            Size {
                entries: 2,
                bytes: 20
            }
        );
        assert!(memory.get(&key(2), now).is_none());
        assert!(memory.get(&key(1), now).is_some() && memory.get(&key(3), now).is_some());

        let memory = Memory::new(100, 25);
        memory.put(key(1), result("one"), 10, MINUTE, now);
        memory.put(key(2), result("two"), 10, MINUTE, now);
        let size = memory.put(key(3), result("three"), 10, MINUTE, now);
        assert_eq!(
            size,
            Size {
                entries: 2,
                bytes: 20
            }
        );
        assert!(memory.get(&key(1), now).is_none());
    }

    #[test]
    fn storing_a_key_again_replaces_it_without_counting_it_twice() {
        let memory = Memory::new(10, 1000);
        let now = Instant::now();
        memory.put(key(1), result("old"), 10, MINUTE, now);
        let size = memory.put(key(1), result("new"), 12, MINUTE, now);
        assert_eq!(
            size,
            Size {
                entries: 1,
                bytes: 12
            }
        );
        let stored = memory.get(&key(1), now).expect("stored");
        assert_eq!(
            stored.content[0].as_text().map(|t| t.text.as_str()),
            Some("new")
        );
    }
}
