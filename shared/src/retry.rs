//! Capped exponential backoff for operations that must eventually succeed,
//! such as reaching PostgreSQL or RabbitMQ at startup.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use slog::{Logger, warn};

/// Delay before retry number `attempt` (1-based): 200 ms doubling up to `cap`.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(16);
    Duration::from_millis(200)
        .saturating_mul(1 << exponent)
        .min(cap)
}

/// Runs `op` until it succeeds, logging each failed try with its delay.
pub async fn until_ok<T, E, F, Fut>(log: &Logger, what: &str, mut op: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Ok(value) => return value,
            Err(e) => {
                let delay = backoff(attempt, Duration::from_secs(5));
                warn!(log, "{what} failed, retrying";
                    "attempt" => attempt, "retry_in_ms" => delay.as_millis() as u64, "err" => %e);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let cap = Duration::from_secs(5);
        let delays: Vec<u64> = (1..=7)
            .map(|a| backoff(a, cap).as_millis() as u64)
            .collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff(u32::MAX, cap), cap);
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
}
