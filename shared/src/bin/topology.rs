//! `topology`: the broker's setup step, run with an account that may
//! configure (compose's `topology` service, the Kubernetes Job) before the
//! services start, and again on every deploy (idempotent).
//!
//! 1. Declares every exchange, queue, binding and dead letter
//!    (`shared::amqp::Topology`) in the vhost of `AMQP_URL`, with
//!    `AMQP_DELIVERY_LIMIT` (default 10). The services declare nothing:
//!    their users may not.
//! 2. For each service whose `<SERVICE>_AMQP_PASSWORD` is set (`ORDER_`,
//!    `PRODUCT_`, `NOTIFICATION_`), creates its user `ecommerce_<service>`
//!    (or sets its password) and gives it exactly what it needs on that
//!    vhost: write to the exchanges it publishes to and its parking
//!    exchange, read its own queues, configure nothing. Through the
//!    management API at `RABBITMQ_MANAGEMENT_URL` (default: the broker's
//!    host, port 15672, plain HTTP), logged in with `AMQP_URL`'s account.
//!    Where users are made otherwise (the Kubernetes operator's `User` and
//!    `Permission`), leave the passwords unset.
//!
//! Exit codes: 0 done, 1 the broker refused or failed, 2 configuration.

use std::process::ExitCode;

use shared::amqp::{Endpoint, ManagementApi, Needs, SERVICES, Topology, user_of};
use shared::config::{self, ConfigError, Env, ProcessEnv};
use slog::{Logger, error, info};

struct Settings {
    broker: Endpoint,
    topology: Topology,
    /// Services to give a user: name and password.
    accounts: Vec<(&'static str, String)>,
    management_url: String,
    vhost: String,
}

fn settings(env: &dyn Env) -> Result<Settings, ConfigError> {
    let amqp_url = config::amqp_url(env)?;
    let broker = Endpoint::new(&amqp_url, config::amqp_ca(env, &amqp_url)?);
    let url = url::Url::parse(&amqp_url).expect("checked by amqp_url");
    // The vhost is the URL's path, percent-decoded; none is `/`.
    let vhost = match url.path().trim_start_matches('/') {
        "" => "/".to_string(),
        path => percent_encoding::percent_decode_str(path)
            .decode_utf8_lossy()
            .into_owned(),
    };
    let management_url = env
        .get("RABBITMQ_MANAGEMENT_URL")
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| format!("http://{}:15672", url.host_str().unwrap_or("localhost")));
    if !management_url.starts_with("http://") {
        return Err(ConfigError {
            var: "RABBITMQ_MANAGEMENT_URL",
            value: config::redact_url(&management_url),
            reason:
                "expected an http:// URL (this command speaks plain HTTP to the management API)"
                    .into(),
        });
    }
    let accounts = SERVICES
        .iter()
        .filter_map(|service| {
            let var = format!("{}_AMQP_PASSWORD", service.to_uppercase());
            let password = env.get(&var).filter(|p| !p.trim().is_empty())?;
            Some((*service, password))
        })
        .collect();
    Ok(Settings {
        broker,
        topology: config::topology(env)?,
        accounts,
        management_url: format!("{}/api", management_url.trim_end_matches('/')),
        vhost,
    })
}

fn main() -> ExitCode {
    let loaded =
        config::logging(&ProcessEnv).and_then(|logging| Ok((logging, settings(&ProcessEnv)?)));
    let (logging, settings) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("topology: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let (log, guard) = shared::telemetry::init("topology", logging);
    let code = match run(&settings, &log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(log, "topology setup failed"; "err" => format!("{e:#}"));
            ExitCode::FAILURE
        }
    };
    drop(log);
    drop(guard);
    code
}

fn run(settings: &Settings, log: &Logger) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(shared::amqp::declare_topology(
        &settings.broker,
        settings.topology,
        log,
    ))?;
    info!(log, "topology declared"; "vhost" => &settings.vhost,
        "delivery_limit" => settings.topology.delivery_limit);
    if settings.accounts.is_empty() {
        return Ok(());
    }
    let api = ManagementApi::new(&settings.management_url, settings.broker.url());
    for (service, password) in &settings.accounts {
        let user = user_of(service);
        let permissions = Needs::of(service).permissions();
        api.put_user(&user, password)?;
        api.set_permissions(&settings.vhost, &user, &permissions)?;
        info!(log, "broker user set up"; "user" => &user, "vhost" => &settings.vhost,
            "write" => &permissions.write, "read" => &permissions.read);
    }
    Ok(())
}
