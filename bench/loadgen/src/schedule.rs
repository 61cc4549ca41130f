//! The open loop's schedule (as wrk2 does it): `rate` orders per second,
//! order `i` due at `i / rate` after the start, connection `k` of `C` sending
//! orders `k, k + C, k + 2C, ...`. A connection that falls behind sends its
//! next order at once, and that order's latency still counts from when it was
//! due: a stall of the service shows in the figures instead of being hidden
//! by clients that politely waited (coordinated omission).

use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    #[error("the rate must be a positive number of orders per second, got {0}")]
    Rate(f64),
    #[error("at least one connection is needed")]
    NoConnection,
    #[error("{rate}/s for {seconds} s is no order at all: raise the rate or the duration")]
    Empty { rate: f64, seconds: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    connections: u32,
    total: u64,
}

impl Schedule {
    pub fn new(rate: f64, connections: u32, duration: Duration) -> Result<Self, ScheduleError> {
        if !rate.is_finite() || rate <= 0.0 {
            return Err(ScheduleError::Rate(rate));
        }
        if connections == 0 {
            return Err(ScheduleError::NoConnection);
        }
        let total = (rate * duration.as_secs_f64()).floor() as u64;
        if total == 0 {
            return Err(ScheduleError::Empty {
                rate,
                seconds: duration.as_secs_f64(),
            });
        }
        Ok(Self {
            rate,
            connections,
            total,
        })
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// Orders in the whole run.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// When order `i` is due, after the start.
    pub fn due(&self, i: u64) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// The orders connection `k` sends, in order.
    pub fn of_connection(&self, k: u32) -> impl Iterator<Item = u64> + use<> {
        let (step, total) = (u64::from(self.connections), self.total);
        (u64::from(k)..total).step_by(step as usize)
    }

    /// Orders due at or before `elapsed` (all of them once the run is over).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        let due = (elapsed.as_secs_f64() * self.rate).floor() as u64 + 1;
        due.min(self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_times_duration_orders_each_sent_by_exactly_one_connection() {
        let schedule = Schedule::new(1000.0, 7, Duration::from_secs(3)).unwrap();
        assert_eq!(schedule.total(), 3000);

        let mut all: Vec<u64> = (0..7).flat_map(|k| schedule.of_connection(k)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..3000).collect::<Vec<_>>());
    }

    #[test]
    fn orders_are_evenly_spaced_whatever_the_connection() {
        let schedule = Schedule::new(200.0, 4, Duration::from_secs(1)).unwrap();

        assert_eq!(schedule.due(0), Duration::ZERO);
        assert_eq!(schedule.due(1), Duration::from_millis(5));
        assert_eq!(schedule.due(199), Duration::from_millis(995));
        // Connection 3 sends orders 3, 7, 11, ...: every 20 ms, from 15 ms.
        let dues: Vec<Duration> = schedule
            .of_connection(3)
            .take(3)
            .map(|i| schedule.due(i))
            .collect();
        assert_eq!(
            dues,
            [15, 35, 55].map(Duration::from_millis).to_vec(),
            "each connection keeps its share of the rate"
        );
    }

    #[test]
    fn due_by_counts_what_should_have_been_sent() {
        let schedule = Schedule::new(100.0, 2, Duration::from_secs(2)).unwrap();
        assert_eq!(schedule.due_by(Duration::ZERO), 1);
        assert_eq!(schedule.due_by(Duration::from_millis(995)), 100);
        assert_eq!(schedule.due_by(Duration::from_secs(60)), 200);
    }

    #[test]
    fn fractional_rates_and_more_connections_than_orders() {
        let schedule = Schedule::new(2.5, 10, Duration::from_secs(2)).unwrap();
        assert_eq!(schedule.total(), 5);
        assert_eq!(schedule.due(3), Duration::from_millis(1200));
        assert_eq!(schedule.of_connection(9).count(), 0);
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        assert_eq!(
            Schedule::new(0.0, 1, Duration::from_secs(1)),
            Err(ScheduleError::Rate(0.0))
        );
        assert!(Schedule::new(f64::NAN, 1, Duration::from_secs(1)).is_err());
        assert_eq!(
            Schedule::new(10.0, 0, Duration::from_secs(1)),
            Err(ScheduleError::NoConnection)
        );
        assert!(matches!(
            Schedule::new(0.5, 1, Duration::from_secs(1)),
            Err(ScheduleError::Empty { .. })
        ));
    }
}
