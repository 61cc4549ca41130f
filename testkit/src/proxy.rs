//! A TCP proxy a test can cut or black-hole, to take a dependency away from
//! a service without touching the shared server (other tests keep using it).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    /// Open connections are dropped, new ones closed at once: the server
    /// looks down (connection reset).
    Cut,
    /// Connections stay open and nothing gets through: the server looks
    /// unreachable on a broken network (no answer, no error).
    Hold,
}

pub struct TcpProxy {
    port: u16,
    mode: Arc<watch::Sender<Mode>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TcpProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let mode = Arc::new(watch::channel(Mode::Forward).0);
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let modes = mode.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the proxy");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("a proxy port");
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                loop {
                    let (client, _) = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok(accepted) => accepted,
                            Err(_) => continue,
                        },
                        _ = &mut stop => return,
                    };
                    tokio::spawn(relay(client, upstream, modes.subscribe()));
                }
            });
        });
        Self {
            port: port_rx.recv().expect("the proxy's port"),
            mode,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Lets nothing through and answers nothing, keeping connections open.
    pub fn hold(&self) {
        self.mode.send_replace(Mode::Hold);
    }

    /// Forwards again. Connections held meanwhile are dropped, as a network
    /// that comes back after the peers gave up on them.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Forward);
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if *mode.borrow_and_update() == Mode::Forward {
        let Ok(mut server) = TcpStream::connect(upstream).await else {
            return;
        };
        tokio::select! {
            _ = copy_bidirectional(&mut client, &mut server) => return,
            _ = mode.wait_for(|mode| *mode != Mode::Forward) => {}
        }
        // Dropping `server` here would answer the client with an error.
        if *mode.borrow() == Mode::Hold {
            let _ = mode.wait_for(|mode| *mode != Mode::Hold).await;
        }
        return;
    }
    if *mode.borrow() == Mode::Hold {
        let _ = mode.wait_for(|mode| *mode != Mode::Hold).await;
    }
    // Cut (or held until now): closing the client refuses it.
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
