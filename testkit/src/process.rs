//! The real service binaries as child processes, as a container would run them.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Path of a workspace binary built next to the running test binary (cargo
/// builds every service binary for `cargo test --workspace`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds every service binary",
        path.display()
    );
    path
}

/// Runs `migration up` on the database at `database_url`, as compose's
/// `migrate` service and the Kubernetes Job do; returns how it ended.
pub fn migration_up(database_url: &str) -> std::process::Output {
    Command::new(binary("migration"))
        .arg("up")
        .env("DATABASE_URL", database_url)
        .stdin(Stdio::null())
        .output()
        .expect("running migration up")
}

/// A TCP port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One running service; its stdout and stderr go to a log file that
/// survives restarts. Killed when dropped.
pub struct ServiceProcess {
    name: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    log_path: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    pub fn start(name: &str, env: &[(&str, String)], log_dir: &Path) -> Self {
        let mut process = Self::prepare(name, env, log_dir);
        process.restart();
        process
    }

    /// The process as [`start`](Self::start) would run it, not started yet.
    pub fn prepare(name: &str, env: &[(&str, String)], log_dir: &Path) -> Self {
        Self {
            name: name.to_string(),
            binary: binary(name),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            log_path: log_dir.join(format!("{name}.log")),
            child: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process is running (it may have exited by itself).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().expect("waiting for the child").is_none(),
            None => false,
        }
    }

    /// Forgets a process that exited by itself; returns its exit code.
    pub fn reap(&mut self) -> Option<i32> {
        let child = self.child.as_mut()?;
        let status = child.try_wait().expect("waiting for the child")?;
        self.child = None;
        status.code()
    }

    /// Starts the process again (after a stop or kill), appending to its log.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("opening the service log");
        let child = Command::new(&self.binary)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again (after a stop or kill), appending to its
    /// log; does nothing if it is running.
    pub fn ensure_running(&mut self) {
        self.reap();
        if self.child.is_none() {
            self.restart();
        }
    }

    /// SIGTERM, then waits for the exit; returns the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = crate::wait_until(
            timeout,
            &format!("{} to exit after SIGTERM", self.name),
            || child.try_wait().expect("waiting for the child"),
        );
        status.code()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
