//! `RateLimiter`: paces all client tasks of a run to a global target rate.
//!
//! Each caller reserves the next free slot (slots are `1/rate` apart) and sleeps until it.
//! Slots are never banked for more than one period: after an idle stretch (every client
//! blocked on slow requests) the clients do not burst to catch up, which would turn a
//! recovering cluster's backlog into a load spike unrelated to the test.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A global pacing limiter shared by all client tasks.
#[derive(Debug)]
pub struct RateLimiter {
    period: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `ops_per_s` must be positive and finite; values are clamped to [0.001, 1e6].
    pub fn new(ops_per_s: f64) -> RateLimiter {
        let rate = if ops_per_s.is_finite() {
            ops_per_s.clamp(0.001, 1e6)
        } else {
            1e6
        };
        RateLimiter {
            period: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(None),
        }
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Waits for this caller's slot.
    pub async fn acquire(&self) {
        let slot = {
            let now = Instant::now();
            // A poisoned lock only means another task panicked mid-update of an Instant;
            // the value is still a valid instant.
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let slot = match *next {
                Some(t) if t > now => t,
                _ => now,
            };
            *next = Some(slot + self.period);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn paces_concurrent_callers_to_the_rate() {
        let lim = Arc::new(RateLimiter::new(100.0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let lim = lim.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..20 {
                    lim.acquire().await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 200 slots 10 ms apart, the first at t=0.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(1990), "{took:?}");
        assert!(took <= Duration::from_millis(2010), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_burst_after_idle() {
        let lim = RateLimiter::new(10.0);
        lim.acquire().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();
        for _ in 0..3 {
            lim.acquire().await;
        }
        // First immediately, then two periods: no saved-up slots from the idle 5 s.
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }

    #[test]
    fn clamps_bad_rates() {
        assert_eq!(RateLimiter::new(0.0).period(), Duration::from_secs(1000));
        assert_eq!(
            RateLimiter::new(f64::NAN).period(),
            Duration::from_micros(1)
        );
    }
}
