//! A bound on how long a client may take to send a request, whatever it
//! sends and however it frames it.
//!
//! actix-http times the head of a connection's first request only, and no
//! body at all; handlers time the bodies they read ([`super::read_json_body`]),
//! but after such a handler's answer actix-http goes on reading a chunked
//! body to its end, and so it does for a body no handler reads. A client
//! sending a byte now and then would hold its connection for ever.
//! [`RequestDeadline`] sits between the socket and actix-http and fails the
//! connection when bytes keep arriving longer than its limit after the first
//! byte of a request not yet answered: it is the backstop; handlers answer
//! first, in JSON, when they can.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection on which a request must arrive within `limit` of its first
/// byte. The clock starts with the first byte read after an answer (any
/// write), so an idle keep-alive connection or a slow handler costs nothing.
pub struct RequestDeadline<T> {
    inner: T,
    limit: Duration,
    /// When the first byte since the last answer came.
    unanswered_since: Option<Instant>,
}

impl<T> RequestDeadline<T> {
    pub fn new(inner: T, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            unanswered_since: None,
        }
    }

    fn answered(&mut self, written: usize) {
        if written > 0 {
            self.unanswered_since = None;
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for RequestDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() == before {
            return Poll::Ready(Ok(()));
        }
        // Checked only as bytes come: a client that sent its request and
        // waits for a slow answer is never cut off.
        let since = *this.unanswered_since.get_or_insert_with(Instant::now);
        if since.elapsed() > this.limit {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the request did not arrive within {} ms",
                    this.limit.as_millis()
                ),
            )));
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for RequestDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.answered(written);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        this.answered(written);
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    const LIMIT: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn a_request_trickling_past_the_limit_fails_the_connection() {
        // Arrange
        let (mut client, server) = duplex(64);
        let mut server = RequestDeadline::new(server, LIMIT);
        let mut byte = [0u8; 1];

        // Act: a byte now, another after the limit.
        client.write_all(b"P").await.unwrap();
        server.read_exact(&mut byte).await.unwrap();
        tokio::time::sleep(LIMIT * 2).await;
        client.write_all(b"O").await.unwrap();
        let late = server.read_exact(&mut byte).await;

        // Assert
        assert_eq!(late.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn an_answer_restarts_the_clock() {
        // Arrange
        let (mut client, server) = duplex(64);
        let mut server = RequestDeadline::new(server, LIMIT);
        let mut byte = [0u8; 1];

        // Act: a request, its answer after a while, the next request later.
        client.write_all(b"1").await.unwrap();
        server.read_exact(&mut byte).await.unwrap();
        tokio::time::sleep(LIMIT * 2).await;
        server.write_all(b"answer").await.unwrap();
        tokio::time::sleep(LIMIT * 2).await;
        client.write_all(b"2").await.unwrap();

        // Assert
        server.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"2");
    }
}
