//! Capped exponential backoff with jitter (from `backon`), for operations
//! that must eventually succeed such as reaching PostgreSQL or RabbitMQ.
//! The jitter keeps replicas that lost the same dependency at the same
//! moment from retrying in lockstep.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use slog::{Logger, warn};

/// The first delay of every schedule.
pub const FIRST_DELAY: Duration = Duration::from_millis(200);

/// Delays of 200 ms doubling up to `cap`, each stretched by a random 0–100 %,
/// without end.
pub fn schedule(cap: Duration) -> impl Iterator<Item = Duration> + Send {
    ExponentialBuilder::new()
        .with_min_delay(FIRST_DELAY)
        .with_max_delay(cap)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The delay before retry number `attempt` (1-based) of [`schedule`].
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    let index = attempt.saturating_sub(1).min(32) as usize;
    schedule(cap).nth(index).unwrap_or(cap)
}

/// Runs `op` until it succeeds, logging each failed try with its delay.
pub async fn until_ok<T, E, F, Fut>(log: &Logger, what: &str, op: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    match until_ok_unless(log, what, op, |_| false).await {
        Ok(value) => value,
        Err(_) => unreachable!("no error is final and the schedule never ends"),
    }
}

/// Runs `op` until it succeeds, logging each failed try with its delay,
/// or until it fails with an error that `is_final` says no wait can fix
/// (a certificate not trusted), which is returned.
pub async fn until_ok_unless<T, E, F, Fut>(
    log: &Logger,
    what: &str,
    op: F,
    is_final: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0u32;
    op.retry(
        ExponentialBuilder::new()
            .with_min_delay(FIRST_DELAY)
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times(),
    )
    .when(|e: &E| !is_final(e))
    .notify(|e: &E, delay| {
        attempt += 1;
        warn!(log, "{what} failed, retrying";
            "attempt" => attempt, "retry_in_ms" => delay.as_millis() as u64, "err" => %e);
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_twice_the_cap() {
        let cap = Duration::from_secs(5);
        for attempt in 1..=12u32 {
            let base = FIRST_DELAY
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(cap);
            let delay = backoff(attempt, cap);
            assert!(
                delay >= base && delay < base * 2,
                "attempt {attempt}: {delay:?} outside [{base:?}, {:?})",
                base * 2
            );
        }
        assert!(backoff(u32::MAX, cap) < cap * 2);
    }

    #[test]
    fn jitter_spreads_replicas_apart() {
        let delays: std::collections::BTreeSet<_> = (0..20)
            .map(|_| backoff(3, Duration::from_secs(5)))
            .collect();
        assert!(delays.len() > 1, "twenty replicas all picked {delays:?}");
    }

    #[tokio::test]
    async fn until_ok_retries_until_success() {
        let log = Logger::root(slog::Discard, slog::o!());
        let mut calls = 0;
        let value = until_ok(&log, "flaky", || {
            calls += 1;
            let result = if calls < 2 { Err("not yet") } else { Ok(calls) };
            async move { result }
        })
        .await;
        assert_eq!(value, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn until_ok_unless_stops_at_the_first_final_error() {
        let log = Logger::root(slog::Discard, slog::o!());
        let mut calls = 0;

        let result: Result<(), &str> = until_ok_unless(
            &log,
            "connecting",
            || {
                calls += 1;
                let result = if calls < 3 {
                    Err("refused")
                } else {
                    Err("untrusted")
                };
                async move { result }
            },
            |e| *e == "untrusted",
        )
        .await;

        assert_eq!((result, calls), (Err("untrusted"), 3));
    }
}
