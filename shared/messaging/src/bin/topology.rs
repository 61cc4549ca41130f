//! `topology`: the broker's setup step, run with an account that may
//! configure (compose's `topology` service, the Kubernetes Job) before the
//! services start, and again on every deploy (idempotent).
//!
//! 1. Declares every exchange, queue, binding and dead letter
//!    (`messaging::amqp::Topology`) in the vhost of `AMQP_URL`, with
//!    `AMQP_DELIVERY_LIMIT` (default 10). The services declare nothing:
//!    their users may not.
//! 2. For each service whose `<SERVICE>_AMQP_PASSWORD` is set (`ORDER_`,
//!    `PRODUCT_`, `NOTIFICATION_`), creates its user `ecommerce_<service>`
//!    (or sets its password) and gives it exactly what it needs on that
//!    vhost: write to the exchanges it publishes to and its parking
//!    exchange, read its own queues, configure nothing. Through the
//!    management API at `RABBITMQ_MANAGEMENT_URL` (default: the broker's
//!    host, port 15672, plain HTTP; over `https://` the certificate is
//!    checked against `AMQP_CA_FILE` when set), logged in with `AMQP_URL`'s
//!    account. Where users are made otherwise, leave the passwords unset.
//!
//! Exit codes: 0 done, 1 the broker refused or failed, 2 configuration.

use std::process::ExitCode;

use contracts::topology::{Needs, SERVICES, user_of};
use foundation::config::{CaBundle, ConfigError, Env, ProcessEnv, logging, redact_url};
use messaging::amqp::{Endpoint, ManagementApi, Topology};
use messaging::config;
use slog::{Logger, error, info};

struct Settings {
    broker: Endpoint,
    /// `AMQP_CA_FILE`, trusted by the management API's client too.
    ca: Option<CaBundle>,
    topology: Topology,
    /// Services to give a user: name and password.
    accounts: Vec<(&'static str, String)>,
    management_url: String,
    vhost: String,
}

fn settings(env: &dyn Env) -> Result<Settings, ConfigError> {
    let amqp_url = config::amqp_url(env)?;
    let ca = config::amqp_ca(env, &amqp_url)?;
    let broker = Endpoint::new(&amqp_url, ca.clone());
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
    if !(management_url.starts_with("http://") || management_url.starts_with("https://")) {
        return Err(ConfigError {
            var: "RABBITMQ_MANAGEMENT_URL",
            value: redact_url(&management_url),
            reason: "expected an http:// or https:// URL, e.g. http://rabbitmq:15672".into(),
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
        ca,
        topology: config::topology(env)?,
        accounts,
        management_url: format!("{}/api", management_url.trim_end_matches('/')),
        vhost,
    })
}

fn main() -> ExitCode {
    let loaded = logging(&ProcessEnv).and_then(|logging| Ok((logging, settings(&ProcessEnv)?)));
    let (logging, settings) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("topology: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let (log, guard) = foundation::telemetry::init("topology", logging);
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
    runtime.block_on(messaging::amqp::declare_topology(
        &settings.broker,
        settings.topology,
        log,
    ))?;
    info!(log, "topology declared"; "vhost" => &settings.vhost,
        "delivery_limit" => settings.topology.delivery_limit);
    if settings.accounts.is_empty() {
        return Ok(());
    }
    let mut api = ManagementApi::new(&settings.management_url, settings.broker.url());
    if let Some(ca) = &settings.ca {
        api = api.trusting(ca);
    }
    for (service, password) in &settings.accounts {
        let user = user_of(service);
        let permissions = Needs::of(service).permissions();
        patiently(log, || api.put_user(&user, password))?;
        patiently(log, || {
            api.set_permissions(&settings.vhost, &user, &permissions)
        })?;
        info!(log, "broker user set up"; "user" => &user, "vhost" => &settings.vhost,
            "write" => &permissions.write, "read" => &permissions.read);
    }
    Ok(())
}

/// Runs `call`, again a few times if it fails: the management API may start
/// a moment after the AMQP listener. Its last error after about a minute.
fn patiently(log: &Logger, call: impl Fn() -> anyhow::Result<()>) -> anyhow::Result<()> {
    const ATTEMPTS: u32 = 20;
    let mut attempt = 1;
    loop {
        match call() {
            Ok(()) => return Ok(()),
            Err(e) if attempt < ATTEMPTS => {
                info!(log, "waiting for the management API"; "err" => format!("{e:#}"));
                std::thread::sleep(std::time::Duration::from_secs(3));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
