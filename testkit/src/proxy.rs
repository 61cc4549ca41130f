//! A TCP proxy a test can cut or black-hole, to take a dependency away from
//! a service without touching the shared server (other tests keep using it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt, copy_bidirectional};
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
    stall_next: Arc<AtomicBool>,
    stalled: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
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
        let (stall_next, stalled) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (stall, stalls) = (Arc::clone(&stall_next), Arc::clone(&stalled));
        let refused = Arc::new(AtomicU64::new(0));
        let refusals = Arc::clone(&refused);
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
                    if stall.swap(false, Ordering::SeqCst) {
                        tokio::spawn(stall_after_amqp_open(client, upstream, stalls.clone()));
                    } else {
                        tokio::spawn(relay(client, upstream, modes.subscribe(), refusals.clone()));
                    }
                }
            });
        });
        Self {
            port: port_rx.recv().expect("the proxy's port"),
            mode,
            stall_next,
            stalled,
            refused,
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

    /// The next connection (to RabbitMQ) is forwarded until it is open
    /// (the server's `Connection.Open-Ok`), then the client hears nothing
    /// more, for as long as the proxy lives: a broker that accepted the
    /// connection and stalls while the client sets up. Later connections
    /// are forwarded as the mode says.
    pub fn stall_next_amqp_connection(&self) {
        self.stall_next.store(true, Ordering::SeqCst);
    }

    /// How many new connections were refused while cut: a client trying
    /// again and again (a pool, a probe) shows here.
    pub fn refused_connections(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// How many connections stalled that way.
    pub fn stalled_amqp_connections(&self) -> u64 {
        self.stalled.load(Ordering::SeqCst)
    }
}

/// AMQP 0-9-1 frames: type, channel (u16), payload size (u32), payload,
/// end octet; a method payload starts with its class and method ids.
const FRAME_HEADER: usize = 7;
const METHOD_FRAME: u8 = 1;
const CONNECTION_OPEN_OK: [u8; 4] = [0, 10, 0, 41];

async fn stall_after_amqp_open(client: TcpStream, upstream: SocketAddr, stalled: Arc<AtomicU64>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // What the client says still reaches the server (its heartbeats keep
    // the server from closing the connection).
    tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    'open: loop {
        let read = match server_read.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        pending.extend_from_slice(&chunk[..read]);
        // Whole frames go through, one at a time, up to Open-Ok.
        while pending.len() >= FRAME_HEADER {
            let size = u32::from_be_bytes(pending[3..7].try_into().unwrap()) as usize;
            let end = FRAME_HEADER + size + 1;
            if pending.len() < end {
                break;
            }
            let frame: Vec<u8> = pending.drain(..end).collect();
            if client_write.write_all(&frame).await.is_err() {
                return;
            }
            let open_ok =
                frame[0] == METHOD_FRAME && frame[FRAME_HEADER..].starts_with(&CONNECTION_OPEN_OK);
            if open_ok {
                break 'open;
            }
        }
    }
    stalled.fetch_add(1, Ordering::SeqCst);
    // Both sockets stay open, and nothing more is answered.
    let _held = (server_read, client_write);
    std::future::pending::<()>().await
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    refused: Arc<AtomicU64>,
) {
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
    if *mode.borrow() == Mode::Cut {
        refused.fetch_add(1, Ordering::SeqCst);
    }
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
