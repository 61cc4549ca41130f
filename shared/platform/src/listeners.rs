//! The sockets a service serves on, bound before anything else so that
//! probes are answered while the service waits for its database.

use std::net::{SocketAddr, TcpListener};

use anyhow::Context as _;

use crate::config::ServiceSettings;

/// The sockets a service serves on: the public API, and apart from it the
/// admin listener with `/health`, `/ready` and `/metrics`, for probes and
/// Prometheus only (the edge and the users' Service never route to it).
pub struct Listeners {
    pub public: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    pub fn bind(settings: &ServiceSettings) -> anyhow::Result<Self> {
        let bind = |addr: SocketAddr, var: &str| {
            TcpListener::bind(addr).with_context(|| format!("binding {var} {addr}"))
        };
        Ok(Self {
            public: bind(settings.http_addr, "HTTP_ADDR")?,
            admin: bind(settings.admin_addr, "ADMIN_ADDR")?,
        })
    }
}
