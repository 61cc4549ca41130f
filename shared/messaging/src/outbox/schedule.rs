//! When the relay runs a round: on a wake, on its poll timer, again at once
//! after a full batch, and after a growing pause when a round failed. Plain
//! state, so it is tested without actix.

use std::time::{Duration, Instant};

use foundation::retry::backoff;

/// Longest pause after failed rounds (before jitter).
pub const RETRY_CAP: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct Schedule {
    /// A round is in flight; a request meanwhile asks for another.
    running: bool,
    requested_again: bool,
    failures_in_a_row: u32,
    resume_at: Option<Instant>,
}

/// What to do after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing until the next wake or poll.
    Idle,
    /// More may be waiting: run another round now.
    RunAgain,
    /// The round failed: try again after this pause.
    RetryIn(Duration),
}

/// How a round went, as the schedule needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub failed: bool,
    /// The round claimed a whole batch.
    pub full: bool,
}

impl Schedule {
    /// A round is asked for (a wake, the poll timer, the retry timer):
    /// `true` if it should start now.
    pub fn request(&mut self, now: Instant) -> bool {
        if self.running {
            self.requested_again = true;
            return false;
        }
        if self.resume_at.is_some_and(|at| now < at) {
            // Backing off: the retry timer will pick the rows up.
            return false;
        }
        self.running = true;
        self.requested_again = false;
        self.resume_at = None;
        true
    }

    /// The round in flight ended.
    pub fn finished(&mut self, outcome: Outcome, now: Instant) -> Next {
        self.running = false;
        if outcome.failed {
            self.failures_in_a_row += 1;
            let delay = backoff(self.failures_in_a_row, RETRY_CAP);
            self.resume_at = Some(now + delay);
            return Next::RetryIn(delay);
        }
        self.failures_in_a_row = 0;
        if self.requested_again || outcome.full {
            Next::RunAgain
        } else {
            Next::Idle
        }
    }

    pub fn failures_in_a_row(&self) -> u32 {
        self.failures_in_a_row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Outcome = Outcome {
        failed: false,
        full: false,
    };
    const FULL: Outcome = Outcome {
        failed: false,
        full: true,
    };
    const FAILED: Outcome = Outcome {
        failed: true,
        full: false,
    };

    #[test]
    fn one_round_at_a_time_and_a_request_meanwhile_runs_another() {
        let (mut schedule, now) = (Schedule::default(), Instant::now());
        assert!(schedule.request(now));
        assert!(!schedule.request(now), "a round is already in flight");
        assert_eq!(schedule.finished(OK, now), Next::RunAgain);
        assert!(schedule.request(now));
        assert_eq!(schedule.finished(OK, now), Next::Idle);
    }

    #[test]
    fn a_full_batch_runs_again_at_once() {
        let (mut schedule, now) = (Schedule::default(), Instant::now());
        assert!(schedule.request(now));
        assert_eq!(schedule.finished(FULL, now), Next::RunAgain);
    }

    #[test]
    fn failures_back_off_longer_and_requests_wait_for_the_pause() {
        let (mut schedule, now) = (Schedule::default(), Instant::now());
        let mut pauses = vec![];
        for _ in 0..3 {
            assert!(schedule.request(now + pauses.iter().sum::<Duration>()));
            let at = now + pauses.iter().sum::<Duration>();
            let Next::RetryIn(pause) = schedule.finished(FAILED, at) else {
                panic!("a failed round is retried");
            };
            assert!(!schedule.request(at), "no round before the pause is over");
            pauses.push(pause);
        }
        assert!(pauses[0] < pauses[2], "{pauses:?} grow");
        assert_eq!(schedule.failures_in_a_row(), 3);

        let after = now + pauses.iter().sum::<Duration>();
        assert!(schedule.request(after));
        assert_eq!(schedule.finished(OK, after), Next::Idle);
        assert_eq!(schedule.failures_in_a_row(), 0);
    }
}
