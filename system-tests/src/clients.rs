//! Clients placing orders as real ones do, for the tests that break things
//! under load (chaos, cluster): several products, some unfillable, some
//! unknown, half of them with an `Idempotency-Key` that is retried until the
//! outcome is known, and sometimes replayed after a `201`. What every answer
//! was is kept, and checked against the orders stored.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Ledger;

/// Products the clients order and their stock: two scarce (orders get
/// rejected), two plenty.
pub const CATALOGUE: [(&str, i64); 4] = [
    ("c1", 300),
    ("c2", 40),
    ("c3", 1_000_000),
    ("c4", 1_000_000),
];

/// What the clients were told.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Order ids answered `201`.
    pub accepted: HashSet<String>,
    /// Tags of orders answered "nothing was ordered".
    pub refused: Vec<String>,
    /// Tags of orders whose outcome the client never learned.
    pub unknown: Vec<String>,
    /// Replays of a key that gave another order id than the first answer.
    pub replay_mismatches: Vec<String>,
    pub replays: u64,
    /// Every answer (each attempt), by status; `none` for no answer.
    pub by_status: BTreeMap<String, u64>,
    /// When each `201` came.
    pub accepted_at: Vec<Instant>,
    /// When each attempt answered otherwise was sent.
    pub not_accepted_at: Vec<Instant>,
}

impl Outcomes {
    pub fn merge(&mut self, other: Outcomes) {
        self.accepted.extend(other.accepted);
        self.refused.extend(other.refused);
        self.unknown.extend(other.unknown);
        self.replay_mismatches.extend(other.replay_mismatches);
        self.replays += other.replays;
        for (status, count) in other.by_status {
            *self.by_status.entry(status).or_default() += count;
        }
        self.accepted_at.extend(other.accepted_at);
        self.not_accepted_at.extend(other.not_accepted_at);
    }

    /// Answers other than `201` (each attempt counted).
    pub fn not_accepted(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(status, _)| status.as_str() != "201")
            .map(|(_, count)| count)
            .sum()
    }

    /// Attempts sent from `from` on that were answered otherwise than `201`.
    pub fn not_accepted_since(&self, from: Instant) -> usize {
        self.not_accepted_at.iter().filter(|t| **t >= from).count()
    }

    /// The longest time between two `201`s, or between `from` and the first.
    pub fn longest_gap_since(&self, from: Instant) -> Duration {
        let mut times: Vec<_> = self.accepted_at.iter().filter(|t| **t >= from).collect();
        times.sort();
        let mut previous = from;
        let mut longest = Duration::ZERO;
        for time in times {
            longest = longest.max(time.duration_since(previous));
            previous = *time;
        }
        longest
    }
}

/// What one POST told the client.
enum Answer {
    Accepted(String),
    /// "nothing was ordered": a definite no.
    Refused,
    /// No answer, or one that leaves the outcome open.
    Unknown,
}

fn post_order(url: &str, body: &str, key: Option<&str>) -> (Answer, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let mut request = agent.post(url).header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let mut response = match request.send(body) {
        Ok(response) => response,
        Err(_) => return (Answer::Unknown, "none".into()),
    };
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let answer = match status {
        201 => {
            let order: Value = serde_json::from_str(&text).expect("a 201 carries the order");
            Answer::Accepted(order["order_id"].as_str().unwrap().to_string())
        }
        503 if text.contains("nothing was ordered") => Answer::Refused,
        // The service's other 503s, and a proxy's 502 / 503 / 504 (the
        // request may or may not have reached a replica).
        502..=504 => Answer::Unknown,
        other => panic!("POST /create_order answered {other} to a valid order: {text}"),
    };
    (answer, format!("{status}"))
}

/// Clients placing orders until stopped.
pub struct Clients {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    outcomes: Arc<Mutex<Outcomes>>,
}

impl Clients {
    /// `count` clients posting to `order_url` (`.../create_order`); `prefix`
    /// makes their customers' emails and keys unique to this run.
    pub fn start(count: usize, seed: u64, prefix: &str, order_url: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let threads = (0..count)
            .map(|n| {
                let client = Client {
                    rng: fastrand::Rng::with_seed(seed ^ (n as u64 + 1).wrapping_mul(0x9e37_79b9)),
                    tag: format!("{prefix}-c{n}"),
                    key_prefix: format!("{prefix}-{seed}"),
                    url: order_url.to_string(),
                };
                let (stop, outcomes) = (stop.clone(), outcomes.clone());
                std::thread::spawn(move || client.run(&stop, &outcomes))
            })
            .collect();
        Self {
            stop,
            threads,
            outcomes,
        }
    }

    pub fn accepted(&self) -> usize {
        self.outcomes.lock().unwrap().accepted.len()
    }

    /// Orders answered `201` at or after `from`.
    pub fn accepted_since(&self, from: Instant) -> usize {
        let outcomes = self.outcomes.lock().unwrap();
        outcomes.accepted_at.iter().filter(|t| **t >= from).count()
    }

    /// Stops the clients once each has its last order's outcome (or gave
    /// up on it), and returns what they were told.
    pub fn stop(self) -> Outcomes {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().expect("a client thread");
        }
        Arc::into_inner(self.outcomes)
            .expect("the client threads are done")
            .into_inner()
            .unwrap()
    }
}

struct Client {
    rng: fastrand::Rng,
    tag: String,
    key_prefix: String,
    url: String,
}

impl Client {
    fn run(mut self, stop: &AtomicBool, outcomes: &Mutex<Outcomes>) {
        let mut sequence = 0;
        while !stop.load(Ordering::SeqCst) {
            sequence += 1;
            let tag = format!("{}-{sequence}@clients.test", self.tag);
            let rng = &mut self.rng;
            let product = match rng.u8(0..100) {
                0..5 => "nope",
                5..30 => "c1",
                30..45 => "c2",
                45..75 => "c3",
                _ => "c4",
            };
            let quantity = if rng.u8(0..100) < 5 {
                500
            } else {
                rng.u32(1..=3)
            };
            let body = format!(
                r#"{{"product_id":"{product}","quantity":{quantity},"customer_email":"{tag}"}}"#
            );
            let key = rng.bool().then(|| format!("{}-{tag}", self.key_prefix));
            // A keyed order is retried until its outcome is known. Once an
            // attempt's outcome was open, a later "nothing was ordered"
            // speaks only for that attempt: only a 201 settles it then.
            let (mut attempts, mut open) = (0, false);
            let mut statuses = vec![];
            let answer = loop {
                attempts += 1;
                let sent = Instant::now();
                let (answer, status) = post_order(&self.url, &body, key.as_deref());
                statuses.push((status, sent));
                let answer = match answer {
                    Answer::Refused if open => Answer::Unknown,
                    answer => answer,
                };
                open |= matches!(answer, Answer::Unknown);
                let retry = matches!(answer, Answer::Unknown) && key.is_some() && attempts < 240;
                if !retry {
                    break answer;
                }
                std::thread::sleep(Duration::from_millis(500));
            };
            let answered = Instant::now();
            // The client sometimes retries a request that did succeed.
            let replay = match (&answer, &key) {
                (Answer::Accepted(_), Some(key)) if rng.u8(0..100) < 30 => {
                    Some(post_order(&self.url, &body, Some(key)).0)
                }
                _ => None,
            };
            let mut outcomes = outcomes.lock().unwrap();
            for (status, sent) in statuses {
                if status != "201" {
                    outcomes.not_accepted_at.push(sent);
                }
                *outcomes.by_status.entry(status).or_default() += 1;
            }
            match answer {
                Answer::Accepted(id) => {
                    if let Some(Answer::Accepted(again)) = &replay {
                        outcomes.replays += 1;
                        if *again != id {
                            outcomes.replay_mismatches.push(tag);
                        }
                    }
                    outcomes.accepted.insert(id);
                    outcomes.accepted_at.push(answered);
                }
                Answer::Refused => outcomes.refused.push(tag),
                Answer::Unknown => outcomes.unknown.push(tag),
            }
            drop(outcomes);
            // About 8 orders per second per client: a steady load that
            // leaves the system room to catch up after each fault.
            std::thread::sleep(Duration::from_millis(self.rng.u64(50..200)));
        }
    }
}

/// Checks the stored orders against what the clients were told: none
/// answered `201` is missing, none refused is stored, none is stored twice,
/// a replayed key gave the same order, and every stored order was answered
/// `201` or had an unknown outcome. Returns how many of the unknown ones
/// were stored.
pub fn assert_outcomes(ledger: &impl Ledger, outcomes: &Outcomes) -> usize {
    let orders = ledger.stored_orders();
    let stored_ids: HashSet<_> = orders.iter().map(|(id, _)| id.clone()).collect();
    let stored_tags: BTreeMap<_, usize> =
        orders.iter().fold(BTreeMap::new(), |mut tags, (_, tag)| {
            *tags.entry(tag.clone()).or_default() += 1;
            tags
        });
    let lost: Vec<_> = outcomes.accepted.difference(&stored_ids).collect();
    assert!(
        lost.is_empty(),
        "orders answered 201 but not stored: {lost:?}"
    );
    let refused_yet_stored: Vec<_> = outcomes
        .refused
        .iter()
        .filter(|tag| stored_tags.contains_key(*tag))
        .collect();
    assert!(
        refused_yet_stored.is_empty(),
        "orders answered 'nothing was ordered' but stored: {refused_yet_stored:?}"
    );
    let twice: Vec<_> = stored_tags.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "orders stored twice: {twice:?}");
    assert!(
        outcomes.replay_mismatches.is_empty(),
        "a key replayed another order: {:?}",
        outcomes.replay_mismatches
    );
    let unknown_stored = outcomes
        .unknown
        .iter()
        .filter(|tag| stored_tags.contains_key(*tag))
        .count();
    assert_eq!(
        orders.len(),
        outcomes.accepted.len() + unknown_stored,
        "every stored order was answered 201 or had an unknown outcome"
    );
    unknown_stored
}
