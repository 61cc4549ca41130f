//! The RabbitMQ management API: the broker's version, and the scratch vhost
//! of the raw figures.

use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;

pub struct Management {
    base: String,
    authorization: String,
    agent: ureq::Agent,
}

impl Management {
    /// `management_url` is `http://host:15672`; the credentials are those of
    /// `amqp_url`.
    pub fn new(management_url: &str, amqp_url: &str) -> anyhow::Result<Self> {
        let (user, password) = crate::urls::credentials(amqp_url)?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Self {
            base: format!("{}/api", management_url.trim_end_matches('/')),
            authorization: format!("Basic {token}"),
            agent,
        })
    }

    fn call(
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
            .body(body.unwrap_or("").to_string())
            .with_context(|| format!("building {method} {}{path}", self.base))?;
        let mut response = self.agent.run(request).with_context(|| {
            format!(
                "the RabbitMQ management API is not reachable at {} (is RabbitMQ up with the \
                 rabbitmq_management plugin? pass --management-url)",
                self.base
            )
        })?;
        let status = response.status();
        if !status.is_success() {
            bail!(
                "RabbitMQ management API {method} {path} answered {status}{}",
                if status.as_u16() == 401 {
                    " (the user and password of --amqp-url are used)"
                } else {
                    ""
                }
            );
        }
        let text = response.body_mut().read_to_string()?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// The broker's version, from `/api/overview`.
    pub fn version(&self) -> anyhow::Result<String> {
        let overview = self.call("GET", "/overview", None)?;
        Ok(overview["rabbitmq_version"]
            .as_str()
            .unwrap_or("unknown")
            .to_string())
    }

    pub fn create_vhost(&self, vhost: &str, user: &str) -> anyhow::Result<()> {
        self.call("PUT", &format!("/vhosts/{vhost}"), None)?;
        self.call(
            "PUT",
            &format!("/permissions/{vhost}/{}", crate::urls::path_segment(user)),
            Some(r#"{"configure":".*","write":".*","read":".*"}"#),
        )?;
        Ok(())
    }

    pub fn delete_vhost(&self, vhost: &str) -> anyhow::Result<()> {
        self.call("DELETE", &format!("/vhosts/{vhost}"), None)
            .map(|_| ())
    }
}
