//! `intake --flood URL`: clients that send `GET URL` back to back while
//! intake is measured (the admin listener's `/ready` and `/metrics`, say),
//! to show what probe and scrape traffic costs intake.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The flooding clients, running until [`Flood::stop`].
pub struct Flood {
    urls: Vec<String>,
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Tally>>,
    started: Instant,
}

/// Answers by status; `0` counts requests with no answer.
type Tally = BTreeMap<u16, u64>;

impl Flood {
    /// `clients` threads, each on its own keep-alive connection, client `k`
    /// asking for `urls[k % urls.len()]`.
    pub fn start(urls: &[String], clients: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients as usize)
            .map(|k| {
                let (url, stop) = (urls[k % urls.len()].clone(), stop.clone());
                std::thread::spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(10)))
                        .build()
                        .into();
                    let mut tally = Tally::new();
                    while !stop.load(Ordering::Relaxed) {
                        let status = match agent.get(&url).call() {
                            Ok(mut response) => {
                                // Read to the end, or the connection is not reused.
                                let _ = response.body_mut().read_to_vec();
                                response.status().as_u16()
                            }
                            Err(_) => 0,
                        };
                        *tally.entry(status).or_default() += 1;
                    }
                    tally
                })
            })
            .collect();
        Self {
            urls: urls.to_vec(),
            stop,
            clients,
            started: Instant::now(),
        }
    }

    /// Stops the clients; one line saying what they sent and got.
    pub fn stop(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64();
        let clients = self.clients.len();
        let mut total = Tally::new();
        for client in self.clients {
            for (status, n) in client.join().unwrap_or_default() {
                *total.entry(status).or_default() += n;
            }
        }
        let requests: u64 = total.values().sum();
        let answers = total
            .iter()
            .map(|(status, n)| match status {
                0 => format!("no answer {n}"),
                status => format!("{status} {n}"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "flood: {clients} clients sent {requests} requests to {} ({:.0}/s; {answers})",
            self.urls.join(" "),
            requests as f64 / elapsed.max(f64::EPSILON)
        )
    }
}
