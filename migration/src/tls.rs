//! What the TLS errors of both clients mean. PostgreSQL (sqlx) and RabbitMQ
//! (lapin) connect through one TLS stack, rustls; a server certificate that
//! rustls refuses (signed by a CA not trusted, issued for another host,
//! expired) is a misconfiguration, not an outage: waiting does not fix it,
//! so a service says so and exits instead of retrying (README, "TLS"), and
//! so does `migration wait`. Here, below both the services and the
//! migration command; `shared::tls` is this module.

use std::error::Error;

use sea_orm_migration::sea_orm::{DbErr, RuntimeErr};

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
