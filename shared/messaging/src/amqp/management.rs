//! RabbitMQ's management API (the `rabbitmq_management` plugin), for what
//! AMQP cannot do: users and their permissions (the `topology` command),
//! queue figures (the tests).

use std::time::Duration;

use anyhow::{Context as _, bail};
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use foundation::config::CaBundle;

/// The user and password in an AMQP URL, which the management API takes too.
fn account_of(amqp_url: &str) -> (String, String) {
    let url = url::Url::parse(amqp_url)
        .unwrap_or_else(|_| url::Url::parse("amqp://localhost").expect("a URL"));
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8_lossy()
            .into_owned()
    };
    (
        decode(url.username()),
        decode(url.password().unwrap_or_default()),
    )
}

/// RabbitMQ's management API at `base` (`http://host:15672/api`), logged in
/// with an AMQP URL's account.
/// Over `https://`, its certificate is checked against the CA given with
/// [`ManagementApi::trusting`], else Mozilla's public roots.
#[derive(Debug, Clone)]
pub struct ManagementApi {
    base: String,
    user: String,
    authorization: String,
    agent: ureq::Agent,
}

impl ManagementApi {
    pub fn new(base: &str, amqp_url: &str) -> Self {
        use base64::Engine as _;
        let (user, password) = account_of(amqp_url);
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self {
            base: base.trim_end_matches('/').to_string(),
            user,
            authorization: format!("Basic {token}"),
            agent: agent(None),
        }
    }

    /// Trusts only the CA certificates of `ca` (the broker's own CA, as for
    /// `amqps://`).
    pub fn trusting(mut self, ca: &CaBundle) -> Self {
        let roots: Vec<Certificate<'static>> = ca
            .certificates()
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect();
        self.agent = agent(Some(RootCerts::new_with_certs(&roots)));
        self
    }

    /// The user it logs in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Creates `user` with `password`, or sets the password of the one that
    /// exists; no tags, so it cannot use the management API itself.
    pub fn put_user(&self, user: &str, password: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "password": password, "tags": "" }).to_string();
        self.call("PUT", &format!("/users/{}", segment(user)), Some(&body))
    }

    /// Sets `user`'s permissions on `vhost`, replacing what it had there.
    pub fn set_permissions(
        &self,
        vhost: &str,
        user: &str,
        permissions: &contracts::topology::Permissions,
    ) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "configure": permissions.configure,
            "write": permissions.write,
            "read": permissions.read,
        })
        .to_string();
        self.call(
            "PUT",
            &format!("/permissions/{}/{}", segment(vhost), segment(user)),
            Some(&body),
        )
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<()> {
        self.json(method, path, body).map(|_| ())
    }

    pub fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<serde_json::Value> {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", &self.authorization)
            .header("content-type", "application/json")
            .body(body.unwrap_or("").to_string())?;
        let mut response = self.agent.run(request).with_context(|| {
            format!(
                "RabbitMQ management API {method} {path} (is the rabbitmq_management plugin on?)"
            )
        })?;
        if !response.status().is_success() {
            bail!(
                "RabbitMQ management API {method} {path} answered {}",
                response.status()
            );
        }
        let text = response.body_mut().read_to_string()?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// Messages in `queue` of `vhost`, ready and unacknowledged (the API's
    /// figures lag the queue by a few seconds). An error while the API does
    /// not know them (it leaves them out for a moment after a queue's
    /// leader moved, say): unknown is not empty.
    pub fn queue_totals(&self, vhost: &str, queue: &str) -> anyhow::Result<QueueTotals> {
        let queue = self.json("GET", &format!("/queues/{}/{queue}", segment(vhost)), None)?;
        let count = |field: &str| {
            queue[field]
                .as_u64()
                .with_context(|| format!("the management API gives no {field} for the queue"))
        };
        Ok(QueueTotals {
            ready: count("messages_ready")?,
            unacked: count("messages_unacknowledged")?,
            acked: queue["message_stats"]["ack"].as_u64().unwrap_or(0),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueTotals {
    pub ready: u64,
    pub unacked: u64,
    /// Deliveries acknowledged since the queue was declared.
    pub acked: u64,
}

/// A name as one segment of an API path (the vhost `/` is `%2F`).
fn segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn agent(roots: Option<RootCerts>) -> ureq::Agent {
    let mut tls = TlsConfig::builder().provider(TlsProvider::Rustls);
    if let Some(roots) = roots {
        tls = tls.root_certs(roots);
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .tls_config(tls.build())
        .build()
        .into()
}
