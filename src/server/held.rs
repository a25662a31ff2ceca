//! Runs held in memory by run id under a byte budget, least recently used dropped first: the
//! bookkeeping the run cache and the compare cache share. Each entry has its own lock, so
//! callers for one run wait for one build while other runs are served.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What an entry tells the budget.
pub trait Weighed: Default + Send + 'static {
    fn bytes(&self) -> usize;
    fn last_used(&self) -> Instant;
}

pub type Entry<T> = Arc<tokio::sync::Mutex<T>>;

pub struct Held<T> {
    runs: Mutex<HashMap<String, Entry<T>>>,
    /// Bytes the entries may hold before the least recently used are dropped.
    budget: AtomicUsize,
}

impl<T: Weighed> Default for Held<T> {
    fn default() -> Self {
        Self {
            runs: Mutex::default(),
            budget: AtomicUsize::new(super::run_cache::DEFAULT_CACHE_BYTES),
        }
    }
}

impl<T: Weighed> Held<T> {
    pub fn set_budget(&self, bytes: usize) {
        self.budget.store(bytes, Ordering::Relaxed);
    }

    /// Bytes held now (entries being built or read are not counted).
    pub fn bytes(&self) -> usize {
        let map = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        map.values()
            .filter_map(|e| e.try_lock().ok().map(|c| c.bytes()))
            .sum()
    }

    /// The run's entry, a new empty one if none.
    pub fn entry(&self, run_id: &str) -> Entry<T> {
        let mut map = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(run_id.to_string()).or_default().clone()
    }

    /// Forgets every run (a test, or a caller that knows the sources changed under it).
    pub fn clear(&self) {
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Drops the least recently used entries (never `keep`, never one in use) while over
    /// the budget; `keep` is locked by the caller, so its size is passed in.
    pub fn evict(&self, keep: &str, keep_bytes: usize) {
        let budget = self.budget.load(Ordering::Relaxed);
        let mut map = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let mut sizes: Vec<(String, usize, Instant)> = map
                .iter()
                .filter(|(id, _)| id.as_str() != keep)
                .filter_map(|(id, e)| {
                    e.try_lock()
                        .ok()
                        .map(|c| (id.clone(), c.bytes(), c.last_used()))
                })
                .collect();
            let used: usize = sizes.iter().map(|s| s.1).sum::<usize>() + keep_bytes;
            if used <= budget {
                return;
            }
            sizes.sort_by_key(|s| s.2);
            match sizes.first() {
                Some((id, _, _)) => {
                    map.remove(id);
                }
                None => return,
            }
        }
    }
}
