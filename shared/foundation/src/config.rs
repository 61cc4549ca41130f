//! Typed settings read from environment variables, with defaults. A malformed
//! value is reported as one clear error naming the variable.

use std::path::{Path, PathBuf};
use std::sync::Arc;

mod logging;

pub use logging::{LogFormat, LogSettings, logging};

/// The defaults are the development account `docker compose` sets up from
/// `.env.example`, so `docker compose up -d postgres rabbitmq` then
/// `cargo run -p order` works as it is.
pub const DEFAULT_DATABASE_URL: &str =
    "postgres://ecommerce:ecommerce-dev@localhost:5432/ecommerce";

#[derive(Debug, thiserror::Error)]
#[error("invalid {var} {value:?}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    /// Already redacted: safe to print.
    pub value: String,
    pub reason: String,
}

/// Source of raw settings; the process environment in production, a map in tests.
pub trait Env {
    fn get(&self, var: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, var: &str) -> Option<String> {
        std::env::var(var).ok()
    }
}

impl Env for std::collections::HashMap<&str, &str> {
    fn get(&self, var: &str) -> Option<String> {
        std::collections::HashMap::get(self, var).map(|v| v.to_string())
    }
}

/// Reads `var`, falling back to `default` when it is unset or blank.
pub fn raw(env: &dyn Env, var: &str, default: &str) -> String {
    env.get(var)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}
/// The values of `sslmode` libpq and sqlx know.
const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// `DATABASE_URL`. TLS is set in the URL as libpq sets it: `sslmode`
/// (`require`: encrypted, the certificate unchecked; `verify-ca`: signed by
/// a trusted CA; `verify-full`: and issued for the host in the URL) and
/// `sslrootcert`, a file of the CA certificates to trust (else Mozilla's
/// public roots). The same URL then works for the migration command and
/// `psql`. A CA file that cannot be read, or one given with an `sslmode`
/// that would not check the certificate against it, is refused here.
pub fn database_url(env: &dyn Env) -> Result<String, ConfigError> {
    const VAR: &str = "DATABASE_URL";
    let value = url_with_scheme(env, VAR, DEFAULT_DATABASE_URL, &["postgres", "postgresql"])?;
    let error = |reason: String| ConfigError {
        var: VAR,
        value: redact_url(&value),
        reason,
    };
    let url = url::Url::parse(&value).expect("checked by url_with_scheme");
    let param = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.into_owned())
    };
    let mode = param("sslmode");
    if let Some(mode) = &mode
        && !SSL_MODES.contains(&mode.as_str())
    {
        return Err(error(format!(
            "sslmode must be one of {}",
            SSL_MODES.join(", ")
        )));
    }
    if let Some(root_cert) = param("sslrootcert") {
        if !matches!(mode.as_deref(), Some("verify-ca" | "verify-full")) {
            return Err(error(
                "sslrootcert is used only with sslmode=verify-ca or sslmode=verify-full (other modes do not check the certificate)".into(),
            ));
        }
        CaBundle::read(Path::new(&root_cert))
            .map_err(|reason| error(format!("sslrootcert: {reason}")))?;
    }
    Ok(value)
}

/// CA certificates (PEM) that a server's certificate must chain to, read
/// once at startup: a file that cannot be read is a configuration error,
/// not a failure at the first connection.
#[derive(Clone)]
pub struct CaBundle {
    path: PathBuf,
    pem: Arc<str>,
}

impl CaBundle {
    /// Reads `path`, which must hold at least one PEM certificate; the
    /// error says why not.
    pub fn read(path: &Path) -> Result<Self, String> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;

        let shown = path.display();
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the CA file {shown}: {e}"))?;
        let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the CA file {shown} is not valid PEM: {e}"))?;
        if certificates.is_empty() {
            return Err(format!("the CA file {shown} holds no PEM certificate"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            pem: pem.into(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The certificates, PEM-encoded.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The certificates, DER-encoded (checked readable by [`Self::read`]).
    pub fn certificates(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;
        CertificateDer::pem_slice_iter(self.pem.as_bytes())
            .filter_map(Result::ok)
            .collect()
    }
}

impl std::fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CaBundle").field(&self.path).finish()
    }
}

/// A positive integer setting, e.g. a prefetch count.
pub fn positive_u16(env: &dyn Env, var: &'static str, default: u16) -> Result<u16, ConfigError> {
    let value = raw(env, var, &default.to_string());
    match value.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError {
            var,
            reason: "expected an integer from 1 to 65535".into(),
            value,
        }),
    }
}

/// An optional secret such as a token: unset or blank means none. Never
/// echoed in errors.
pub fn secret(env: &dyn Env, var: &'static str) -> Result<Option<String>, ConfigError> {
    let Some(value) = env
        .get(var)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    if value.len() < 16 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError {
            var,
            value: "<redacted>".into(),
            reason: "expected at least 16 characters without spaces".into(),
        });
    }
    Ok(Some(value))
}

pub fn url_with_scheme(
    env: &dyn Env,
    var: &'static str,
    default: &str,
    schemes: &[&str],
) -> Result<String, ConfigError> {
    let value = raw(env, var, default);
    let error = |reason: String| ConfigError {
        var,
        value: redact_url(&value),
        reason,
    };
    let url = url::Url::parse(&value).map_err(|e| error(format!("not a URL ({e})")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(error(format!(
            "scheme must be one of {}",
            schemes.join(", ")
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(error("the URL names no host".into()));
    }
    Ok(value)
}

/// What of a URL may be logged: scheme, user, host, port and path (the
/// database or vhost). Never the password, nor the query, which may carry
/// one (`?password=`).
pub fn redact_url(raw: &str) -> String {
    // Not a URL: it may still hold a secret, so show nothing of it.
    let Ok(url) = url::Url::parse(raw) else {
        return "<unparseable URL>".to_string();
    };
    // No authority (`postgres:u:pw@db`): everything after the scheme is one
    // opaque path that may hold the password.
    if url.cannot_be_a_base() {
        return format!("{}:<redacted>", url.scheme());
    }
    let mut redacted = format!("{}://", url.scheme());
    if !url.username().is_empty() {
        redacted.push_str(url.username());
        redacted.push('@');
    }
    redacted.push_str(url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        redacted.push_str(&format!(":{port}"));
    }
    redacted.push_str(url.path());
    redacted
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A file in the temporary directory holding `contents`, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &str) -> Self {
            let path = std::env::temp_dir().join(format!("ca-{}.pem", uuid::Uuid::new_v4()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// PEM-framed: what is checked at startup is that the file can be read
    /// and holds certificates; the TLS handshake checks what they say.
    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_database_ca_is_read_at_startup_and_only_with_a_verifying_sslmode() {
        let ca = TempFile::new(PEM);
        let good = format!(
            "postgres://u:pw@db/x?sslmode=verify-full&sslrootcert={}",
            ca.path()
        );
        let cases = [
            (
                "postgres://u:hunter2@db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"
                    .to_string(),
                "cannot read the CA file /nonexistent/ca.pem",
            ),
            (
                format!(
                    "postgres://u:hunter2@db/x?sslmode=require&sslrootcert={}",
                    ca.path()
                ),
                "only with sslmode=verify-ca or sslmode=verify-full",
            ),
            (
                "postgres://u:hunter2@db/x?sslmode=verify_full".to_string(),
                "sslmode must be one of",
            ),
        ];

        for (url, reason) in &cases {
            let error = database_url(&HashMap::from([("DATABASE_URL", url.as_str())])).unwrap_err();

            assert_eq!(error.var, "DATABASE_URL");
            assert!(error.reason.contains(reason), "{error}");
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
        for url in [good.as_str(), "postgres://u:pw@db/x?sslmode=require"] {
            assert_eq!(
                database_url(&HashMap::from([("DATABASE_URL", url)])).unwrap(),
                url
            );
        }
    }

    #[test]
    fn positive_u16_rejects_zero_and_words() {
        for bad in ["0", "-1", "many", "70000"] {
            let env = HashMap::from([("AMQP_PREFETCH", bad)]);
            assert!(positive_u16(&env, "AMQP_PREFETCH", 10).is_err(), "{bad}");
        }
        let env = HashMap::from([("AMQP_PREFETCH", "7")]);
        assert_eq!(positive_u16(&env, "AMQP_PREFETCH", 10).unwrap(), 7);
    }

    #[test]
    fn secrets_are_optional_long_enough_and_never_echoed() {
        let unset: HashMap<&str, &str> = HashMap::new();
        assert_eq!(secret(&unset, "ADMIN_TOKEN").unwrap(), None);
        let short = HashMap::from([("ADMIN_TOKEN", "hunter2")]);
        let error = secret(&short, "ADMIN_TOKEN").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let good = HashMap::from([("ADMIN_TOKEN", "0123456789abcdef")]);
        assert_eq!(
            secret(&good, "ADMIN_TOKEN").unwrap().as_deref(),
            Some("0123456789abcdef")
        );
    }

    #[test]
    fn redacted_urls_keep_only_scheme_user_host_port_and_path() {
        let cases = [
            (
                "postgres://u:pw@db:5432/x?password=hunter2&sslmode=disable",
                "postgres://u@db:5432/x",
            ),
            (
                "amqp://guest:secret@mq:5672/%2f",
                "amqp://guest@mq:5672/%2f",
            ),
            (
                "amqp://:secret@[::1]:5672/%2f#frag",
                "amqp://[::1]:5672/%2f",
            ),
            ("postgres://db/x", "postgres://db/x"),
            ("postgres:u:hunter2@db", "postgres:<redacted>"),
            ("not a url hunter2", "<unparseable URL>"),
        ];
        for (raw, redacted) in cases {
            assert_eq!(redact_url(raw), redacted, "{raw}");
        }
    }
}

/// Properties over generated settings, 256 cases each (stated so that the
/// unit tests stay fast).
#[cfg(test)]
mod properties {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_positive_u16_is_read_exactly_when_it_is_one_to_65535(value in "[ 0-9+-]{0,7}|.{0,7}") {
            let env = HashMap::from([("AMQP_PREFETCH", value.as_str())]);

            let read = positive_u16(&env, "AMQP_PREFETCH", 9);

            match value.trim() {
                "" => prop_assert_eq!(read.unwrap(), 9),
                set => match set.parse::<u16>() {
                    Ok(n) if n > 0 => prop_assert_eq!(read.unwrap(), n),
                    _ => prop_assert_eq!(read.unwrap_err().var, "AMQP_PREFETCH"),
                },
            }
        }

        #[test]
        fn a_secret_is_never_echoed(value in ".{0,24}") {
            let env = HashMap::from([("ADMIN_TOKEN", value.as_str())]);

            match secret(&env, "ADMIN_TOKEN") {
                Ok(token) => prop_assert_eq!(
                    token.as_deref(),
                    Some(value.trim()).filter(|v| !v.is_empty())
                ),
                Err(e) => prop_assert!(value.trim().len() < 2 || !e.to_string().contains(value.trim())),
            }
        }

        #[test]
        fn any_log_settings_are_read_or_refused_by_name(format in ".{0,8}", level in ".{0,8}") {
            let env = HashMap::from([("LOG_FORMAT", format.as_str()), ("LOG_LEVEL", level.as_str())]);

            if let Err(e) = logging(&env) {
                prop_assert!(e.var == "LOG_FORMAT" || e.var == "LOG_LEVEL");
            }
        }
    }
}
