//! URL helpers: passwords never printed, a database or vhost swapped in.

use anyhow::{Context as _, bail};
use url::Url;

/// `url` with its password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "<unparsable URL>".to_string(),
    }
}

/// The same server with another database (`postgres://.../name`).
pub fn with_database(database_url: &str, name: &str) -> anyhow::Result<String> {
    let mut url = parse(database_url, "--database-url")?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// The broker of `amqp_url` with the vhost `vhost` (its own path is ignored).
pub fn with_vhost(amqp_url: &str, vhost: &str) -> anyhow::Result<String> {
    let mut url = parse(amqp_url, "--amqp-url")?;
    if !vhost
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        bail!("vhost name {vhost:?} would need escaping");
    }
    url.set_path(&format!("/{vhost}"));
    Ok(url.to_string())
}

/// User and password of an AMQP URL (guest/guest when it has none), which
/// the management API also takes.
pub fn credentials(amqp_url: &str) -> anyhow::Result<(String, String)> {
    let url = parse(amqp_url, "--amqp-url")?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let user = match url.username() {
        "" => "guest".to_string(),
        user => decode(user),
    };
    let password = url.password().map(decode).unwrap_or_else(|| "guest".into());
    Ok((user, password))
}

/// `s` escaped for one segment of a URL path.
pub fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn parse(url: &str, flag: &str) -> anyhow::Result<Url> {
    let parsed =
        Url::parse(url).with_context(|| format!("{flag} {:?} is not a URL", redact(url)))?;
    if !parsed.has_host() {
        bail!("{flag} {} names no host", redact(url));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/shop"),
            "postgres://app:***@db:5432/shop"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(redact("http://127.0.0.1:5002"), "http://127.0.0.1:5002");
        assert_eq!(redact("not a url"), "<unparsable URL>");
    }

    #[test]
    fn another_database_on_the_same_server() {
        assert_eq!(
            with_database(
                "postgres://postgres@127.0.0.1:5432/ecommerce?sslmode=disable",
                "scratch_1"
            )
            .unwrap(),
            "postgres://postgres@127.0.0.1:5432/scratch_1?sslmode=disable"
        );
        assert!(with_database("nonsense", "x").is_err());
    }

    #[test]
    fn another_vhost_on_the_same_broker() {
        assert_eq!(
            with_vhost("amqp://guest:guest@127.0.0.1:5672/%2f", "loadgen-1").unwrap(),
            "amqp://guest:guest@127.0.0.1:5672/loadgen-1"
        );
        assert_eq!(
            with_vhost("amqp://guest:guest@127.0.0.1:5672", "v").unwrap(),
            "amqp://guest:guest@127.0.0.1:5672/v"
        );
        assert!(with_vhost("amqp://h", "a/b").is_err());
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_segment("guest"), "guest");
        assert_eq!(path_segment("a/b c@"), "a%2Fb%20c%40");
    }

    #[test]
    fn credentials_come_from_the_amqp_url() {
        assert_eq!(
            credentials("amqp://bench:p%40ss@127.0.0.1:5672").unwrap(),
            ("bench".to_string(), "p@ss".to_string())
        );
        assert_eq!(
            credentials("amqp://127.0.0.1:5672").unwrap(),
            ("guest".to_string(), "guest".to_string())
        );
    }
}
