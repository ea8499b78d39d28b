//! Rate limiting behind a small interface: fixed windows counted per key. In process now;
//! a Redis implementation (INCR + PEXPIRE) slots in behind the same trait for scale-out.
//! Keys never contain raw email addresses: callers hash them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// The outcome of counting one hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Hits in the current window, this one included.
    pub count: u32,
    /// Whether this hit is within the limit.
    pub allowed: bool,
    /// Time until the window resets.
    pub retry_after: Duration,
}

#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one hit on `key` in a window of `window`, allowing `limit` per window.
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Hit;
}

/// Counters in this process's memory.
#[derive(Default)]
pub struct InMemoryRateLimiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Past this many keys, expired windows are swept on the next hit.
const SWEEP_AT: usize = 10_000;

#[async_trait]
impl RateLimiter for InMemoryRateLimiter {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Hit {
        let now = Instant::now();
        let mut map = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() >= SWEEP_AT {
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = map.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        Hit {
            count: entry.1,
            allowed: entry.1 <= limit,
            retry_after: window.saturating_sub(now.duration_since(entry.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hits_past_the_limit_are_refused_until_the_window_resets() {
        let rl = InMemoryRateLimiter::default();
        let w = Duration::from_millis(200);
        for i in 1..=3 {
            let h = rl.hit("k", 3, w).await;
            assert!(h.allowed, "hit {i}");
            assert_eq!(h.count, i);
        }
        let h = rl.hit("k", 3, w).await;
        assert!(!h.allowed);
        assert!(h.retry_after <= w);
        assert!(rl.hit("other", 3, w).await.allowed, "keys are independent");
        tokio::time::sleep(w).await;
        assert!(rl.hit("k", 3, w).await.allowed);
    }
}
