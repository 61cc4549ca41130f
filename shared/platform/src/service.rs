//! What every service's `main` does: read settings, set up logging, build
//! and run the service, and turn failures into one clear line and a
//! non-zero exit code.

use std::future::Future;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

use actix::{Actor, Addr, Recipient};
use actix_http::HttpService;
use actix_service::{IntoServiceFactory as _, ServiceFactoryExt as _, fn_service, map_config};
use actix_web::dev::{AppConfig, Server};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use slog::{Logger, error, info};

use foundation::config::{ConfigError, Env, ProcessEnv};
use messaging::amqp::{AmqpPublisher, Endpoint};

use crate::config::{HttpLimits, ServiceSettings};
use crate::http::{Http10Lengths, RequestDeadline, observe};
use crate::listeners::Listeners;
use crate::metrics::Metrics;
use foundation::health::ServiceHealth;
use foundation::telemetry;
use messaging::consumer::{ConsumerContext, ConsumerStats, DRAIN_TIMEOUT, Drain};
use messaging::outbox::Outbox;
use messaging::outbox::relay::{OutboxRelay, RelaySettings};

/// A built service, ready to serve: its HTTP server and consumers.
pub trait Service: Sized {
    fn running(&self) -> &Running;
    fn into_running(self) -> Running;

    /// The port the HTTP server listens on (the one bound, with port 0).
    fn port(&self) -> u16 {
        self.running().port
    }

    /// The port of the admin listener: `/health`, `/ready`, `/metrics`.
    fn admin_port(&self) -> u16 {
        self.running().admin_port
    }

    fn health(&self) -> ServiceHealth {
        self.running().consumers.health.clone()
    }

    /// The counters of the service's consumer of `queue`.
    ///
    /// # Panics
    /// When the service consumes no queue of that name: a test waiting on
    /// counters nobody keeps would only time out.
    fn consumer_stats(&self, queue: &str) -> Arc<ConsumerStats> {
        let mut by_queue = self.running().consumers.stats.by_queue();
        by_queue.remove(queue).unwrap_or_else(|| {
            panic!(
                "no consumer of {queue}; the service consumes {:?}",
                by_queue.keys()
            )
        })
    }

    /// Serves until told to stop; an error means the service failed.
    fn run_until_stopped(self) -> impl Future<Output = anyhow::Result<()>> {
        self.into_running().serve()
    }
}

/// Runs the service `name`: settings from `load`, then `build`, then serve.
/// SIGTERM or SIGINT while it is still starting (waiting for its database,
/// say) stops it cleanly too: exit code 0, as an orchestrator expects.
pub async fn run<S, A, Load, Build, Fut>(name: &'static str, load: Load, build: Build) -> ExitCode
where
    Load: FnOnce(&dyn Env) -> Result<S, ConfigError>,
    Build: FnOnce(S, Logger) -> Fut,
    Fut: Future<Output = anyhow::Result<A>>,
    A: Service,
{
    let loaded = foundation::config::logging(&ProcessEnv)
        .and_then(|logging| Ok((logging, load(&ProcessEnv)?)));
    let (logging, settings) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{name}: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let (log, guard) = telemetry::init(name, logging);
    let result = async {
        let built = tokio::select! {
            built = build(settings, log.clone()) => Some(built?),
            _ = terminated() => None,
        };
        match built {
            Some(service) => service.run_until_stopped().await,
            None => {
                info!(log, "told to stop while starting");
                Ok(())
            }
        }
    }
    .await;
    let code = match result {
        Ok(()) => {
            info!(log, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!(log, "stopped with an error"; "err" => format!("{e:#}"));
            ExitCode::FAILURE
        }
    };
    // Flush buffered log records before the process exits.
    drop(log);
    drop(guard);
    code
}

/// Resolves on SIGTERM or SIGINT.
async fn terminated() {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = sigterm.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Connects to PostgreSQL (waiting for it), binds both listeners, and
/// waits, answering `/health` and `/ready` on the admin one, until the
/// database has every migration this build knows ([`crate::schema`]); the
/// listeners are then the service's own to serve on ([`Running::start`]).
///
/// Then checks that the database role may do what `service` does
/// ([`migration::access`]): a role without a grant it needs is a
/// misconfiguration, which no waiting fixes, and the service stops, naming
/// each missing privilege.
pub async fn connect_when_schema_is_current(
    service: &'static str,
    settings: &ServiceSettings,
    log: &Logger,
) -> anyhow::Result<(DatabaseConnection, Listeners)> {
    let db = foundation::db::connect(&settings.database_url, log).await?;
    let listeners = Listeners::bind(settings)?;
    crate::schema::wait_until_current(&db, &listeners, log).await?;
    let missing = foundation::db::bounded(migration::access::missing(&db, service))
        .await
        .context("checking the database role's privileges")?;
    if !missing.is_empty() {
        let role = migration::access::role_of(service);
        anyhow::bail!(
            "the database role lacks {} (`migration up` grants them to {role}; is DATABASE_URL {service}'s own account?)",
            missing.join(", ")
        );
    }
    Ok((db, listeners))
}

/// Starts the outbox relay of `service`, publishing to `broker` on one
/// connection (opened on the first publish).
pub fn start_relay(
    db: &DatabaseConnection,
    service: &'static str,
    broker: impl Into<Endpoint>,
    settings: RelaySettings,
    log: &Logger,
) -> Addr<OutboxRelay> {
    let publisher = AmqpPublisher::new(broker, &format!("{service}-publisher"), log);
    OutboxRelay::new(
        Outbox::new(db.clone(), service),
        Arc::new(publisher),
        settings,
        log.clone(),
    )
    .start()
}

/// A service serving HTTP, with the consumers to drain when it stops.
pub struct Running {
    server: Server,
    admin: Server,
    port: u16,
    admin_port: u16,
    consumers: ConsumerContext,
    drains: Vec<Recipient<Drain>>,
}

impl Running {
    /// Serves on the public listener what `configure` registers (routes
    /// and their data), behind the shared HTTP edge: request ids, metrics
    /// and access lines ([`observe`]); and `/health`, `/ready` and
    /// `/metrics` on the admin listener. `limits` bound how long a client
    /// may take and how many are served at once.
    pub fn start<F>(
        listeners: Listeners,
        limits: HttpLimits,
        consumers: &ConsumerContext,
        metrics: &Metrics,
        drains: Vec<Recipient<Drain>>,
        log: &Logger,
        configure: F,
    ) -> anyhow::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        let Listeners {
            public: listener,
            admin,
        } = listeners;
        let addr = listener.local_addr()?;
        let port = addr.port();
        let admin_addr = admin.local_addr()?;
        let admin = admin_server(admin, limits, consumers, metrics)?;
        let metrics_data = web::Data::new(metrics.clone());
        let log_data = web::Data::new(log.clone());
        let limits_data = web::Data::new(limits);
        // actix-web's HttpServer, put together from its parts so that
        // Http10Lengths can sit between the socket and the HTTP/1 parser.
        let builder =
            actix_server::Server::build().max_concurrent_connections(limits.max_connections.into());
        let shutdown = builder.graceful_shutdown_signal();
        let server = builder
            .listen("http", listener, move || {
                let app = App::new()
                    .wrap(from_fn(observe))
                    .app_data(metrics_data.clone())
                    .app_data(log_data.clone())
                    .app_data(limits_data.clone())
                    .configure(configure.clone())
                    .into_factory()
                    .map_err(|e: actix_web::Error| e.error_response());
                let shutdown = shutdown.clone();
                // A request whose handler cannot time it (a chunked body
                // after the answer, a body nobody reads, the head of a later
                // request) is timed on the connection.
                let deadline = limits.head_timeout + limits.body_timeout;
                fn_service(move |stream: tokio::net::TcpStream| async move {
                    let peer = stream.peer_addr().ok();
                    // As HttpServer: small answers are not held back.
                    let _ = stream.set_nodelay(true);
                    Ok((
                        Http10Lengths::new(RequestDeadline::new(stream, deadline)),
                        peer,
                    ))
                })
                .and_then(
                    HttpService::build()
                        // Idle keep-alive connections close when the server
                        // stops, as HttpServer arranges it.
                        .graceful_shutdown_signal(move || {
                            let shutdown = shutdown.clone();
                            async move { shutdown.notified().await }
                        })
                        .client_request_timeout(limits.head_timeout)
                        .keep_alive(limits.keep_alive)
                        .client_disconnect_timeout(std::time::Duration::from_secs(1))
                        // A client that closes its side has gone (nginx
                        // giving up on a slow answer does so): its request
                        // is dropped rather than finished for nobody, so an
                        // order still waiting for its commit is given up.
                        .h1_allow_half_closed(false)
                        .local_addr(addr)
                        .h1(map_config(app, move |_| AppConfig::default())),
                )
            })?
            // Requests in flight get a few seconds to finish on SIGTERM.
            .shutdown_timeout(5)
            .run();
        info!(log, "listening"; "http_addr" => %addr, "port" => port, "admin_addr" => %admin_addr);
        Ok(Self {
            server,
            admin,
            port,
            admin_port: admin_addr.port(),
            consumers: consumers.clone(),
            drains,
        })
    }

    /// Serves until SIGTERM or SIGINT, or until the service can no longer
    /// work (its health failed: a domain actor died); then stops taking
    /// requests, drains the consumers (their deliveries in hand are settled,
    /// the rest return to the queue) and answers an error if the service
    /// failed, so the process exits non-zero and its orchestrator restarts it.
    async fn serve(self) -> anyhow::Result<()> {
        let Running {
            mut server,
            admin,
            consumers: ConsumerContext { health, .. },
            drains,
            ..
        } = self;
        // Probes keep their answers while the service drains.
        let admin_handle = admin.handle();
        let admin = actix_web::rt::spawn(admin);
        let handle = server.handle();
        let failure = tokio::select! {
            served = &mut server => {
                served?;
                None
            }
            reason = health.failed() => Some(reason),
        };
        if failure.is_some() {
            // The server future runs the server: it must be polled while it stops.
            let (_, served) = futures_util::future::join(handle.stop(true), server).await;
            served?;
        }
        let drain = || Drain {
            timeout: DRAIN_TIMEOUT,
        };
        futures_util::future::join_all(drains.iter().map(|consumer| consumer.send(drain()))).await;
        admin_handle.stop(true).await;
        admin.await.context("the admin listener")??;
        match failure {
            Some(reason) => Err(anyhow::anyhow!("the service failed: {reason}")),
            None => Ok(()),
        }
    }
}

/// The admin listener: one worker, a few connections, `/health`, `/ready`
/// and `/metrics` (whose reads are coalesced: see [`foundation::coalesce`]).
fn admin_server(
    listener: TcpListener,
    limits: HttpLimits,
    consumers: &ConsumerContext,
    metrics: &Metrics,
) -> anyhow::Result<Server> {
    let health = web::Data::new(consumers.health.clone());
    let readiness = web::Data::new(consumers.readiness.clone());
    let context = web::Data::new(consumers.clone());
    let metrics = web::Data::new(metrics.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(health.clone())
            .app_data(readiness.clone())
            .app_data(context.clone())
            .app_data(metrics.clone())
            .configure(crate::http::admin_routes)
    })
    .workers(1)
    .max_connections(ADMIN_MAX_CONNECTIONS)
    .client_request_timeout(limits.head_timeout)
    .keep_alive(limits.keep_alive)
    // The public server's signal handling stops the service; this one is
    // stopped after the drain.
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .context("serving the admin listener")?
    .run();
    Ok(server)
}

/// Connections the admin listener serves at once: a probe, a scraper or
/// two, and an operator; a flood waits in the backlog.
const ADMIN_MAX_CONNECTIONS: usize = 64;

impl Service for Running {
    fn running(&self) -> &Running {
        self
    }

    fn into_running(self) -> Running {
        self
    }
}
