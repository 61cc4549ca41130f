//! What the figures were measured on: cores, load, versions, commit.

use std::process::Command;

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    /// `nproc`: the cores this process may use.
    pub cores: Option<u32>,
    /// `/proc/loadavg` (1, 5, 15 minutes) when the run started and ended.
    pub load_average_start: Option<[f64; 3]>,
    pub load_average_end: Option<[f64; 3]>,
    pub postgresql: Option<String>,
    pub rabbitmq: Option<String>,
    pub rustc: Option<String>,
    pub git_commit: Option<String>,
    /// Uncommitted changes in the work tree when the run started.
    pub git_dirty: Option<bool>,
    pub loadgen: String,
}

impl Machine {
    /// Everything that needs no server; the server versions are filled in
    /// by the phases that connect.
    pub fn read() -> Self {
        Self {
            cores: output("nproc", &[])
                .and_then(|s| s.parse().ok())
                .or_else(|| {
                    std::thread::available_parallelism()
                        .ok()
                        .and_then(|n| u32::try_from(n.get()).ok())
                }),
            load_average_start: load_average(),
            load_average_end: None,
            postgresql: None,
            rabbitmq: None,
            rustc: output("rustc", &["--version"]),
            git_commit: output("git", &["rev-parse", "HEAD"]),
            git_dirty: output("git", &["status", "--porcelain", "--untracked-files=no"])
                .map(|s| !s.is_empty()),
            loadgen: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// The first line a command prints, trimmed; `None` if it cannot run or fails.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn load_average() -> Option<[f64; 3]> {
    parse_load_average(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

/// `0.52 0.58 0.59 1/467 12345` → `[0.52, 0.58, 0.59]`.
pub fn parse_load_average(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_average_is_the_first_three_fields() {
        assert_eq!(
            parse_load_average("0.52 0.58 0.59 1/467 12345\n"),
            Some([0.52, 0.58, 0.59])
        );
        assert_eq!(parse_load_average("0.52 x"), None);
        assert_eq!(parse_load_average(""), None);
    }
}
