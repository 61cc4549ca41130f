//! What a consumer does while a dependency (the database) is down: pause.
//!
//! RabbitMQ (before 4.3) counts every return of a message toward the
//! queue's delivery limit, so requeueing through an outage would dead-letter
//! good work. The consumers of a service share one [`Gate`] instead: the
//! first delivery that meets the outage closes it, the consumers pause their
//! subscriptions and park what they hold (a fresh, uncounted copy back in the
//! queue), and one probe checks the dependency with backoff and jitter until
//! it answers; then the gate opens and consumption resumes. Through the
//! outage nothing sits unacknowledged in the process, so neither a crash nor
//! a broker restart counts against a message either.

use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use slog::{Logger, info, warn};
use tokio::sync::watch;

use crate::retry::backoff;

/// Checks whether a dependency answers again.
pub type Probe = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest pause between two probes (before jitter): the order service
/// refuses orders while its gate is paused, so a database that is back is
/// noticed within a few seconds; one small write every 2–4 s is no load.
pub const PROBE_CAP: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateState {
    /// Deliveries flow.
    Open,
    /// A dependency is down: deliveries wait, a probe runs.
    Paused,
    /// The service is going away: deliveries taken from now on are left
    /// unsettled, to return to the queue when the subscription closes.
    Stopped,
}

#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    state: watch::Sender<GateState>,
    probe: Probe,
    /// Pauses since the last delivery that went through: a dependency that
    /// answers the probe but fails the work again keeps backing off.
    relapses: AtomicU32,
    pauses: AtomicU64,
    log: Logger,
}

impl Gate {
    pub fn new(probe: Probe, log: Logger) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: watch::channel(GateState::Open).0,
                probe,
                relapses: AtomicU32::new(0),
                pauses: AtomicU64::new(0),
                log,
            }),
        }
    }

    /// A gate whose probe always succeeds, for consumers with no dependency.
    pub fn without_dependency(log: Logger) -> Self {
        Self::new(Arc::new(|| Box::pin(async { Ok(()) })), log)
    }

    pub fn state(&self) -> GateState {
        *self.inner.state.borrow()
    }

    /// How many times the gate has paused since the process started.
    pub fn pauses(&self) -> u64 {
        self.inner.pauses.load(Ordering::Relaxed)
    }

    /// A dependency failed: pause and probe until it answers. Later reports
    /// of the same outage change nothing.
    pub fn report_outage(&self, cause: &dyn Display) {
        let paused = self.inner.state.send_if_modified(|state| {
            let open = *state == GateState::Open;
            if open {
                *state = GateState::Paused;
            }
            open
        });
        if !paused {
            return;
        }
        self.inner.pauses.fetch_add(1, Ordering::Relaxed);
        let relapses = self.inner.relapses.fetch_add(1, Ordering::SeqCst);
        warn!(self.inner.log, "dependency unavailable: consumption paused until it answers";
            "err" => %cause);
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.probe_until_back(relapses).await });
    }

    /// A delivery went through: the dependency is healthy.
    pub fn report_success(&self) {
        self.inner.relapses.store(0, Ordering::Relaxed);
    }

    /// Stops consumption for good: the service is going away.
    pub fn stop(&self) {
        self.inner.state.send_replace(GateState::Stopped);
    }

    /// The state now, then every change.
    pub fn states(&self) -> impl futures_util::Stream<Item = GateState> + use<> {
        let receiver = self.inner.state.subscribe();
        futures_util::stream::unfold((receiver, true), |(mut receiver, first)| async move {
            if !first {
                receiver.changed().await.ok()?;
            }
            let state = *receiver.borrow_and_update();
            Some((state, (receiver, false)))
        })
    }
}

impl Inner {
    async fn probe_until_back(&self, relapses: u32) {
        let since = Instant::now();
        let mut attempt = relapses;
        loop {
            attempt += 1;
            tokio::time::sleep(backoff(attempt, PROBE_CAP)).await;
            if *self.state.borrow() != GateState::Paused {
                return;
            }
            // Bounded: on a network that swallows packets a probe would
            // otherwise wait for TCP to give up, long after the database
            // is back.
            let answer = tokio::time::timeout(PROBE_TIMEOUT, (self.probe)())
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())));
            match answer {
                Ok(()) => {
                    let resumed = self.state.send_if_modified(|state| {
                        let paused = *state == GateState::Paused;
                        if paused {
                            *state = GateState::Open;
                        }
                        paused
                    });
                    if resumed {
                        info!(self.log, "dependency available again: consumption resumed";
                            "paused_ms" => since.elapsed().as_millis() as u64, "probes" => attempt - relapses);
                    }
                    return;
                }
                Err(e) => {
                    // One line every few probes is enough to follow an outage.
                    if (attempt - relapses) % 5 == 1 {
                        warn!(self.log, "dependency still unavailable";
                            "err" => %e, "paused_ms" => since.elapsed().as_millis() as u64);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn scripted_probe(up: Arc<AtomicBool>, calls: Arc<AtomicU32>) -> Probe {
        Arc::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            let up = up.load(Ordering::SeqCst);
            Box::pin(async move { if up { Ok(()) } else { Err("down".to_string()) } })
        })
    }

    fn log() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    async fn wait_for(what: &str, fact: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fact() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn pauses_on_an_outage_and_reopens_once_the_probe_succeeds() {
        // Arrange
        let (up, calls) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU32::new(0)),
        );
        let gate = Gate::new(scripted_probe(up.clone(), calls.clone()), log());

        // Act: an outage, reported twice (two deliveries met it).
        gate.report_outage(&"connection refused");
        gate.report_outage(&"connection refused");
        wait_for("two failed probes", || calls.load(Ordering::SeqCst) >= 2).await;

        // Assert: still paused, and one pause, not two.
        assert_eq!(gate.state(), GateState::Paused);
        assert_eq!(gate.pauses(), 1);

        // Act: the dependency is back.
        up.store(true, Ordering::SeqCst);

        // Assert
        wait_for("the gate to open", || gate.state() == GateState::Open).await;
    }

    #[tokio::test]
    async fn a_stopped_gate_stays_stopped() {
        let gate = Gate::new(
            scripted_probe(Arc::new(AtomicBool::new(false)), Arc::default()),
            log(),
        );
        gate.report_outage(&"down");

        gate.stop();
        gate.report_outage(&"down again");

        assert_eq!(gate.state(), GateState::Stopped);
    }

    #[tokio::test]
    async fn states_start_with_the_current_one_and_follow_each_change() {
        use futures_util::StreamExt;
        let gate = Gate::without_dependency(log());
        let mut states = Box::pin(gate.states());

        assert_eq!(states.next().await, Some(GateState::Open));
        gate.report_outage(&"down");
        assert_eq!(states.next().await, Some(GateState::Paused));
        assert_eq!(states.next().await, Some(GateState::Open));
    }
}
