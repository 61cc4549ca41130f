//! One run of an expensive read at a time, shared by everyone who asks
//! while it runs: a flood of `/ready` or `/metrics` requests costs one
//! database query and one message to each actor at a time, however many
//! clients send it, so probes and scrapes cannot starve the work itself.

use std::sync::Mutex;

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, WeakShared};

/// The run in progress, if any. Its result is not kept once it finished:
/// the next caller starts a fresh run and sees fresh figures. Only its
/// callers keep a run alive: once every one of them gave up (a probe's
/// timeout, a client that left), the run is dropped, its database
/// connection returned, and the next caller starts afresh rather than
/// resuming a read that began before its own deadlines.
pub struct Coalesced<T: Clone> {
    running: Mutex<Option<WeakShared<BoxFuture<'static, T>>>>,
}

impl<T: Clone> Default for Coalesced<T> {
    fn default() -> Self {
        Self {
            running: Mutex::new(None),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Coalesced<T> {
    /// Joins the run in progress, or starts one with `start`.
    pub async fn run(&self, start: impl FnOnce() -> BoxFuture<'static, T>) -> T {
        let run = {
            let mut running = self
                .running
                .lock()
                .expect("never poisoned: no panics under the lock");
            match running.as_ref().and_then(WeakShared::upgrade) {
                Some(run) if run.peek().is_none() => run,
                _ => {
                    let run = start().shared();
                    *running = run.downgrade();
                    run
                }
            }
        };
        run.await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;

    #[tokio::test]
    async fn callers_during_a_run_share_it_and_a_later_caller_starts_afresh() {
        // Arrange: a read that counts its runs and waits to be let go.
        let coalesced = Arc::new(Coalesced::<usize>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let read = {
            let runs = runs.clone();
            let release = release.clone();
            move || -> BoxFuture<'static, usize> {
                let runs = runs.clone();
                let release = release.clone();
                Box::pin(async move {
                    let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
                    release.notified().await;
                    run
                })
            }
        };

        // Act: 100 callers while one run waits, then one after it ended.
        // A caller joins or starts a run in its first poll, which goes on
        // to count it without yielding; the test's runtime has one thread,
        // so once all have counted, all have joined.
        let asked = Arc::new(AtomicUsize::new(0));
        let ask = || {
            let (coalesced, read, asked) = (coalesced.clone(), read.clone(), asked.clone());
            tokio::spawn(async move {
                let answer = coalesced.run(read);
                asked.fetch_add(1, Ordering::SeqCst);
                answer.await
            })
        };
        let callers: Vec<_> = (0..100).map(|_| ask()).collect();
        until(|| asked.load(Ordering::SeqCst) == 100).await;
        release.notify_waiters();
        let answers = futures_util::future::join_all(callers).await;
        let later = ask();
        until(|| asked.load(Ordering::SeqCst) == 101).await;
        release.notify_waiters();

        // Assert: one run answered all 100; the later caller got its own.
        assert!(answers.into_iter().all(|answer| answer.unwrap() == 1));
        assert_eq!(later.await.unwrap(), 2);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_run_whose_callers_all_gave_up_is_dropped_and_the_next_caller_starts_afresh() {
        // Arrange: a read that never ends, and says when it is dropped.
        struct Dropped(Arc<AtomicUsize>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let coalesced = Coalesced::<usize>::default();
        let (runs, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let read = || -> BoxFuture<'static, usize> {
            let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
            let guard = Dropped(dropped.clone());
            Box::pin(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                run
            })
        };

        // Act: its only caller gives up; another caller comes.
        let gave_up = tokio::time::timeout(Duration::from_millis(10), coalesced.run(read)).await;
        let next = coalesced.run(read);
        futures_util::pin_mut!(next);
        let still_running = next.as_mut().now_or_never().is_none();

        // Assert: the first run was dropped, and the caller started another.
        assert!(gave_up.is_err());
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert!(still_running);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    /// Yields until `fact` holds.
    async fn until(fact: impl Fn() -> bool) {
        while !fact() {
            tokio::task::yield_now().await;
        }
    }
}
