//! Placing orders over HTTP: one keep-alive connection per client (a
//! `ureq::Agent` each), the bodies prepared once.

use std::time::Duration;

use anyhow::{Context as _, bail};
use uuid::Uuid;

/// What each order asks for.
#[derive(Debug, Clone)]
pub struct OrderSpec {
    products: Vec<String>,
    bodies: Vec<String>,
    idempotency_keys: bool,
}

impl OrderSpec {
    /// `products` 1: every order is for `product_id`; M: order `i` is for
    /// `<product_id>-<i mod M + 1>`.
    pub fn new(
        product_id: &str,
        products: u32,
        customer_email: Option<&str>,
        idempotency_keys: bool,
    ) -> Self {
        let products = product_ids(product_id, products);
        let bodies = products
            .iter()
            .map(|product| {
                let mut body = serde_json::json!({ "product_id": product, "quantity": 1 });
                if let Some(email) = customer_email {
                    body["customer_email"] = email.into();
                }
                body.to_string()
            })
            .collect();
        Self {
            products,
            bodies,
            idempotency_keys,
        }
    }

    pub fn products(&self) -> &[String] {
        &self.products
    }

    /// The body of order `i`.
    pub fn body(&self, i: u64) -> &str {
        &self.bodies[(i % self.bodies.len() as u64) as usize]
    }

    pub fn idempotency_keys(&self) -> bool {
        self.idempotency_keys
    }
}

/// The product ids of a run: the hot product alone, or `<prefix>-1..M`.
pub fn product_ids(product_id: &str, products: u32) -> Vec<String> {
    match products {
        0 | 1 => vec![product_id.to_string()],
        m => (1..=m).map(|i| format!("{product_id}-{i}")).collect(),
    }
}

/// What an attempt to place an order came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `201`, with the `order_id` of the body when it had one.
    Accepted(Option<Uuid>),
    /// Any other HTTP status.
    Refused(u16),
    /// No HTTP answer.
    Transport(String),
}

pub struct OrderClient {
    agent: ureq::Agent,
    base: String,
    create: String,
}

impl OrderClient {
    pub fn new(order_url: &str) -> Self {
        let base = order_url.trim_end_matches('/').to_string();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .max_idle_connections_per_host(1)
            .build()
            .into();
        Self {
            agent,
            create: format!("{base}/create_order"),
            base,
        }
    }

    /// Opens the keep-alive connection before the clock starts.
    pub fn warm_up(&self) {
        if let Ok(mut response) = self.agent.get(format!("{}/openapi.json", self.base)).call() {
            let _ = response.body_mut().read_to_vec();
        }
    }

    pub fn place(&self, body: &str, with_key: bool) -> Answer {
        let mut request = self
            .agent
            .post(&self.create)
            .header("content-type", "application/json");
        if with_key {
            request = request.header(
                "idempotency-key",
                format!("loadgen-{}", Uuid::new_v4().simple()),
            );
        }
        match request.send(body) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                // Read to the end, or the connection is not reused.
                let text = response.body_mut().read_to_string().unwrap_or_default();
                if status == 201 {
                    Answer::Accepted(order_id(&text))
                } else {
                    Answer::Refused(status)
                }
            }
            Err(e) => Answer::Transport(transport_kind(&e)),
        }
    }
}

fn order_id(body: &str) -> Option<Uuid> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    Uuid::parse_str(value["order_id"].as_str()?).ok()
}

/// A short name for a failure to get an answer, to count failures by kind.
pub fn transport_kind(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Io(e) => e.kind().to_string(),
        ureq::Error::Timeout(_) => "timeout".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::HostNotFound => "host not found".to_string(),
        other => {
            let text = other.to_string();
            text.chars().take(60).collect()
        }
    }
}

/// Fails with a message a person can act on when the order service does not
/// answer `GET /openapi.json` with 200 (its public port serves no probe:
/// those are on its admin listener).
pub fn check_reachable(order_url: &str) -> anyhow::Result<()> {
    let url = format!("{}/openapi.json", order_url.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let response = agent.get(&url).call().with_context(|| {
        format!("the order service is not reachable at {url} (start it, or pass --order-url)")
    })?;
    if response.status() != 200 {
        bail!(
            "the order service answered {} to GET {url}: it is not serving",
            response.status()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_product_or_a_spread_over_m() {
        assert_eq!(product_ids("bench", 1), ["bench"]);
        assert_eq!(product_ids("bench", 3), ["bench-1", "bench-2", "bench-3"]);
    }

    #[test]
    fn bodies_go_round_the_products() {
        let spec = OrderSpec::new("p", 2, None, false);
        assert_eq!(spec.body(0), r#"{"product_id":"p-1","quantity":1}"#);
        assert_eq!(spec.body(1), r#"{"product_id":"p-2","quantity":1}"#);
        assert_eq!(spec.body(2), spec.body(0));
        let with_email = OrderSpec::new("p\"q", 1, Some("a@example.com"), true);
        let body: serde_json::Value = serde_json::from_str(with_email.body(7)).unwrap();
        assert_eq!(body["product_id"], "p\"q");
        assert_eq!(body["customer_email"], "a@example.com");
    }

    #[test]
    fn the_order_id_is_read_from_the_answer() {
        let id = Uuid::now_v7();
        assert_eq!(
            order_id(&format!(r#"{{"order_id":"{id}","status":"pending"}}"#)),
            Some(id)
        );
        assert_eq!(order_id("not json"), None);
        assert_eq!(order_id(r#"{"order_id":"nope"}"#), None);
    }
}
