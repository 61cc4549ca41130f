//! What the TLS errors of both clients mean. PostgreSQL (sqlx) and RabbitMQ
//! (lapin) connect through one TLS stack, rustls; a server certificate that
//! rustls refuses (signed by a CA not trusted, issued for another host,
//! expired) is a misconfiguration, not an outage: waiting does not fix it,
//! so a service says so and exits instead of retrying (README, "TLS"), and
//! so does `migration wait`. Here, below both the services and the
//! migration command; `foundation::tls` is this module.

use std::error::Error;

use sea_orm_migration::sea_orm::sqlx::postgres::{PgConnectOptions, PgSslMode};
use sea_orm_migration::sea_orm::{DbErr, RuntimeErr};

/// TLS to PostgreSQL only when asked for, by `sslmode` in the URL (or
/// libpq's `PGSSLMODE`). Otherwise sqlx, as libpq, tries TLS first
/// (`prefer`): against a server with TLS on it encrypts without checking
/// whom it talks to, which protects little and costs a quarter of intake's
/// throughput on this machine (bench/BENCHMARKS.md, "TLS to PostgreSQL").
/// Encryption worth having checks the certificate: `sslmode=verify-full`.
///
/// To apply inside the one `map_sqlx_postgres_opts` of a connection's
/// options (SeaORM keeps only the last function given).
pub fn tls_only_when_asked(url: &str) -> impl Fn(PgConnectOptions) -> PgConnectOptions + use<> {
    let plaintext = !asks_for_tls_mode(url) && std::env::var_os("PGSSLMODE").is_none();
    move |options| {
        if plaintext {
            options.ssl_mode(PgSslMode::Disable)
        } else {
            options
        }
    }
}

/// Whether `url` has an `sslmode` parameter.
fn asks_for_tls_mode(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("sslmode"))
    })
}

/// rustls' refusal of PostgreSQL's certificate, if that is why `error`.
pub fn untrusted_database_certificate(error: &DbErr) -> Option<&rustls::Error> {
    match error {
        DbErr::Conn(RuntimeErr::SqlxError(e)) => untrusted_certificate(&**e),
        _ => None,
    }
}

/// rustls' refusal of the server's certificate, when `error` is one or has
/// one beneath it (through `source()`, and inside `std::io::Error`s, whose
/// `source()` skips the error they wrap).
pub fn untrusted_certificate<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(refused @ rustls::Error::InvalidCertificate(_)) =
            error.downcast_ref::<rustls::Error>()
        {
            return Some(refused);
        }
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn Error + 'static)),
            None => error.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CertificateError;

    #[derive(Debug, thiserror::Error)]
    #[error("connecting failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_refused_certificate_is_found_beneath_io_errors_and_sources() {
        let refused = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let error = Outer(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            refused.clone(),
        ));

        let found = untrusted_certificate(&error);

        assert_eq!(found, Some(&refused));
    }

    #[test]
    fn only_a_url_with_sslmode_asks_for_tls() {
        assert!(asks_for_tls_mode("postgres://u:pw@db/x?sslmode=require"));
        assert!(asks_for_tls_mode("postgres://db/x?a=1&sslmode=disable"));
        assert!(!asks_for_tls_mode("postgres://u:pw@db/x"));
        assert!(!asks_for_tls_mode(
            "postgres://db/x?application_name=sslmode"
        ));
    }

    #[test]
    fn other_tls_and_io_errors_are_not_about_the_certificate() {
        let cases = [
            Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
            Outer(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::DecryptError,
            )),
        ];
        for error in cases {
            assert_eq!(untrusted_certificate(&error), None, "{error:?}");
        }
    }
}
