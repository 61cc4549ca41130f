//! PostgreSQL connections through SeaORM, and what their errors mean to a
//! consumer: an outage to wait out, or a failure of the work itself.

use std::future::Future;
use std::time::Duration;

use sea_orm::sqlx;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, RuntimeErr, Statement,
};
use slog::{Logger, error, info};

use crate::config::redact_url;
use crate::failure::{Classify, FailureKind};
use crate::outage::Probe;
use crate::retry::until_ok_unless;

/// Server-side limits on every connection, so that nothing a cut-off client
/// left behind holds a row lock or a connection for long: a statement runs
/// at most this long, waits this long for a lock, and a session idle inside
/// a transaction is ended after this long.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(15);

/// The longest one unit of database work may take, seen from the client.
/// On a network that swallows packets no server-side timeout fires, and a
/// query would wait until TCP gives up, many minutes later; this turns that
/// into an outage like any other. Longer than [`STATEMENT_TIMEOUT`], so the
/// server's own limits answer first when they can.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs `work` under [`OPERATION_TIMEOUT`].
pub async fn bounded<T, E: From<DbErr>>(work: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    within(OPERATION_TIMEOUT, work).await
}

async fn within<T, E: From<DbErr>>(
    limit: Duration,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    match tokio::time::timeout(limit, work).await {
        Ok(done) => done,
        Err(_) => Err(DbErr::Conn(RuntimeErr::Internal(format!(
            "no answer from the database within {} ms",
            limit.as_millis()
        )))
        .into()),
    }
}

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// Connecting cannot succeed however long one waits.
#[derive(Debug, thiserror::Error)]
#[error(
    "PostgreSQL's certificate is not trusted ({reason}): check sslmode and sslrootcert in DATABASE_URL"
)]
pub struct UntrustedCertificate {
    reason: rustls::Error,
}

/// Connects, retrying with backoff until PostgreSQL answers: an outage is
/// waited out. A server certificate that is not trusted is not an outage
/// but a misconfiguration: it is logged and returned at once.
pub async fn connect(url: &str, log: &Logger) -> Result<DatabaseConnection, UntrustedCertificate> {
    let log = log.new(slog::o!("database_url" => redact_url(url)));
    let options = connect_options(url);
    let connected = until_ok_unless(
        &log,
        "connecting to PostgreSQL",
        || Database::connect(options.clone()),
        |e| untrusted(e).is_some(),
    )
    .await;
    match connected {
        Ok(db) => {
            info!(log, "connected to PostgreSQL");
            Ok(db)
        }
        Err(e) => {
            let refused = UntrustedCertificate {
                reason: untrusted(&e).expect("the only final error").clone(),
            };
            error!(log, "not connecting to PostgreSQL: its certificate is not trusted";
                "dependency" => "postgresql", "err" => %refused);
            Err(refused)
        }
    }
}

use crate::tls::untrusted_database_certificate as untrusted;

/// The pool every service uses: ten sessions, the server-side limits
/// above, and sessions only on a server that takes writes.
///
/// A session that reached a standby is refused when it opens, rather than
/// kept: after a failover or a switchover, a connection that was under way
/// to the old primary's address can land on it once it is back as a
/// standby (seen in the cluster test, through the read-write endpoint), and
/// a pooled session there would fail every write it is given (25006) for
/// as long as the pool keeps it, each failure answered `503` or pausing a
/// consumer again. Refused, it is an outage, and the next session is opened
/// through the endpoint again, to the primary. The same check as libpq's
/// `target_session_attrs=read-write`.
fn connect_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    let tls = crate::tls::tls_only_when_asked(url);
    options
        .max_connections(10)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .map_sqlx_postgres_opts(move |options| {
            tls(options).options([
                ("statement_timeout", millis(STATEMENT_TIMEOUT)),
                ("lock_timeout", millis(LOCK_TIMEOUT)),
                (
                    "idle_in_transaction_session_timeout",
                    millis(IDLE_IN_TRANSACTION_TIMEOUT),
                ),
            ])
        })
        .map_sqlx_postgres_pool_opts(|pool| {
            pool.after_connect(|session, _| Box::pin(refuse_read_only(session)))
        });
    options
}

async fn refuse_read_only(session: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let read_only: String = sqlx::query_scalar("SELECT current_setting('transaction_read_only')")
        .fetch_one(&mut *session)
        .await?;
    if read_only == "on" {
        return Err(sqlx::Error::Protocol(
            "the server takes no writes (a standby, or a read-only database): session refused"
                .into(),
        ));
    }
    Ok(())
}

/// Whether `db` answers and takes writes, for a paused consumer's probe and
/// readiness: a standby answers too, but every write there fails (25006),
/// so it is no more use than a database that is down.
pub fn probe(db: &DatabaseConnection) -> Probe {
    let db = db.clone();
    std::sync::Arc::new(move || {
        let db = db.clone();
        Box::pin(async move {
            let in_recovery = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT pg_is_in_recovery()",
                ))
                .await
                .map_err(|e| e.to_string())?
                .map(|row| row.try_get_by_index::<bool>(0))
                .transpose()
                .map_err(|e| e.to_string())?;
            match in_recovery {
                Some(false) => Ok(()),
                Some(true) => Err("the server is a read-only standby".to_string()),
                None => Err("no answer to the probe".to_string()),
            }
        })
    })
}

/// Whether `db` takes a write, for a paused consumer's probe: a database
/// with a full disk, or one that times out or deadlocks, may answer reads
/// while every write fails, and resuming on a read alone would only fail
/// the deliveries again. Rewrites `service`'s row in `heartbeats`.
pub fn write_probe(db: &DatabaseConnection, service: &'static str) -> Probe {
    let db = db.clone();
    std::sync::Arc::new(move || {
        let db = db.clone();
        Box::pin(async move {
            db.execute_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "INSERT INTO heartbeats (service) VALUES ($1) \
                 ON CONFLICT (service) DO UPDATE SET beaten_at = now()",
                [service.into()],
            ))
            .await
            .map(|_| ())
            .map_err(|e| format!("the heartbeat write failed: {e}"))
        })
    })
}

impl Classify for DbErr {
    fn kind(&self) -> FailureKind {
        failure_kind(self)
    }
}

/// An outage when the database cannot be reached or cannot serve right now;
/// anything else is taken to be about the work at hand.
pub fn failure_kind(error: &DbErr) -> FailureKind {
    let sqlx_error = match error {
        // No session to work in (SeaORM's errors of connecting, acquiring
        // from the pool, pinging): whatever the server said, such as a
        // database that refuses new sessions (55000) or does not exist
        // (3D000), or a refused login, no message caused it.
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return FailureKind::Outage,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return FailureKind::Retry,
    };
    match sqlx_error.as_ref() {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => FailureKind::Outage,
        sqlx::Error::Database(e) => e
            .code()
            .map_or(FailureKind::Retry, |code| sqlstate_kind(&code)),
        _ => FailureKind::Retry,
    }
}

/// Whether the server rolled the transaction back to break a deadlock or a
/// serialization conflict (SQLSTATE class 40): nothing of it was stored,
/// and running it again is the remedy.
pub fn rolled_back_by_server(error: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = error
    else {
        return false;
    };
    match e.as_ref() {
        sqlx::Error::Database(e) => e.code().is_some_and(|code| code.starts_with("40")),
        _ => false,
    }
}

/// SQLSTATE classes of an unavailable server: connection exceptions (08),
/// transaction rollbacks such as deadlocks and serialization failures (40),
/// lock not available (55P03), insufficient resources (53), operator
/// intervention such as a cancelled statement or a shutdown (57), system
/// errors (58), a session ended while idle in a transaction (25P03), and a
/// read-only standby (25006: a connection that reached a former primary
/// through a stale address after a failover; the probe waits until the
/// address leads to the primary again).
fn sqlstate_kind(code: &str) -> FailureKind {
    let outage = matches!(code.get(..2), Some("08" | "40" | "53" | "57" | "58"))
        || matches!(code, "55P03" | "25P03" | "25006");
    if outage {
        FailureKind::Outage
    } else {
        FailureKind::Retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn io_error() -> DbErr {
        DbErr::Conn(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        ))))
    }

    #[test]
    fn unreachable_or_exhausted_databases_are_outages() {
        assert_eq!(failure_kind(&io_error()), FailureKind::Outage);
        assert_eq!(
            failure_kind(&DbErr::ConnectionAcquire(
                sea_orm::error::ConnAcquireErr::Timeout
            )),
            FailureKind::Outage
        );
        let timed_out = DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sqlx::Error::PoolTimedOut)));
        assert_eq!(failure_kind(&timed_out), FailureKind::Outage);
    }

    #[test]
    fn sqlstates_of_an_unavailable_server_are_outages_and_data_errors_are_not() {
        for code in [
            "08006", "57014", "57P01", "57P03", "40001", "40P01", "55P03", "53300", "25P03",
            "25006",
        ] {
            assert_eq!(sqlstate_kind(code), FailureKind::Outage, "{code}");
        }
        for code in ["23505", "23514", "22001", "42P01", "XX000"] {
            assert_eq!(sqlstate_kind(code), FailureKind::Retry, "{code}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn work_that_gets_no_answer_is_an_outage() {
        let never = std::future::pending::<Result<(), DbErr>>();

        let error = within(Duration::from_millis(20), never).await.unwrap_err();

        assert_eq!(failure_kind(&error), FailureKind::Outage, "{error}");
    }

    #[test]
    fn failing_to_get_a_session_is_an_outage_whatever_the_server_said() {
        #[derive(Debug)]
        struct Refused;
        impl std::fmt::Display for Refused {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("database \"shop\" is not currently accepting connections")
            }
        }
        impl std::error::Error for Refused {}
        impl sqlx::error::DatabaseError for Refused {
            fn message(&self) -> &str {
                "database \"shop\" is not currently accepting connections"
            }
            fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
                Some("55000".into())
            }
            fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
                self
            }
            fn kind(&self) -> sqlx::error::ErrorKind {
                sqlx::error::ErrorKind::Other
            }
        }
        let refused = || Arc::new(sqlx::Error::Database(Box::new(Refused)));

        assert_eq!(
            failure_kind(&DbErr::Conn(RuntimeErr::SqlxError(refused()))),
            FailureKind::Outage
        );
        // The same SQLSTATE from a statement is about the statement.
        assert_eq!(
            failure_kind(&DbErr::Exec(RuntimeErr::SqlxError(refused()))),
            FailureKind::Retry
        );
    }

    #[test]
    fn errors_outside_the_connection_are_about_the_work() {
        assert_eq!(
            failure_kind(&DbErr::RecordNotFound("order".into())),
            FailureKind::Retry
        );
        assert_eq!(failure_kind(&DbErr::Type("bad".into())), FailureKind::Retry);
    }
}
