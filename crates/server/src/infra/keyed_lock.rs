//! Locks by key within this process: work on one key runs one at a time, work on different
//! keys in parallel. Entries go away with their last holder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

impl KeyedLocks {
    /// Waits for `key`'s turn; the turn lasts as long as the guard.
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 1_024 {
                map.retain(|_, w| w.strong_count() > 0);
            }
            match map.get(key).and_then(Weak::upgrade) {
                Some(l) => l,
                None => {
                    let l = Arc::new(AsyncMutex::new(()));
                    map.insert(key.to_owned(), Arc::downgrade(&l));
                    l
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_key_runs_one_at_a_time_and_other_keys_do_not_wait() {
        let locks = Arc::new(KeyedLocks::default());
        let first = locks.lock("a").await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let l = locks.clone();
        let t = tx.clone();
        tokio::spawn(async move {
            let _g = l.lock("a").await;
            let _ = t.send("a");
        });
        let l = locks.clone();
        tokio::spawn(async move {
            let _g = l.lock("b").await;
            let _ = tx.send("b");
        });
        assert_eq!(rx.recv().await, Some("b"), "another key goes ahead");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), rx.recv())
                .await
                .is_err(),
            "the same key waits"
        );
        drop(first);
        assert_eq!(rx.recv().await, Some("a"));
    }
}
