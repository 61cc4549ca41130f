//! HTTP/1.0 POSTs without a body, accepted as the original service accepted
//! them (`curl -0 -X POST .../create_order`).
//!
//! actix-http refuses an HTTP/1.0 POST that has no `Content-Length` while it
//! parses the request, before any handler or middleware runs (RFC 1945 asks
//! HTTP/1.0 clients for the length), and answers an empty `400`.
//! [`Http10Lengths`] sits between the socket and actix-http and adds
//! `Content-Length: 0` to such a request head, which is what a request
//! without `Content-Length` or `Transfer-Encoding` means in HTTP/1.1 (RFC
//! 9112, 6.3). Nothing else is changed: the connection is passed through
//! untouched from its first HTTP/1.1 request on, and whatever does not parse
//! as a request head is left for actix-http to answer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Larger heads are left to actix-http, which refuses them.
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 96;
const READ_CHUNK: usize = 8 * 1024;
const ADDED_HEADER: &[u8] = b"Content-Length: 0\r\n";

/// A connection whose HTTP/1.0 bodyless POSTs reach actix-http with
/// `Content-Length: 0`; writes go straight to the socket.
pub struct Http10Lengths<T> {
    inner: T,
    /// Read from the socket, not yet examined.
    input: Vec<u8>,
    /// Examined, not yet handed to the reader.
    output: Vec<u8>,
    state: State,
    eof: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next byte starts a request head.
    Head,
    /// This many bytes of a request body come first.
    Body(u64),
    /// Handed on as they come: HTTP/1.1, or something actix-http is to judge.
    PassThrough,
}

/// What the start of the input holds.
#[derive(Debug, PartialEq, Eq)]
enum Examined {
    /// Not a whole head yet.
    Incomplete,
    /// A whole head of `len` bytes; `add_length` when it needs
    /// `Content-Length: 0`; `next` is what follows it.
    Head {
        len: usize,
        add_length: bool,
        next: State,
    },
    /// Not for this layer to judge.
    PassThrough,
}

fn examine(input: &[u8]) -> Examined {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if input.len() <= MAX_HEAD_BYTES => {
            return Examined::Incomplete;
        }
        _ => return Examined::PassThrough,
    };
    if request.version != Some(0) {
        return Examined::PassThrough;
    }
    let mut lengths = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"));
    let has_transfer_encoding = request
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
    let length = match (lengths.next(), lengths.next()) {
        (None, _) => None,
        (Some(one), None) => match std::str::from_utf8(one.value)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            Some(length) => Some(length),
            None => return Examined::PassThrough,
        },
        (Some(_), Some(_)) => return Examined::PassThrough,
    };
    if has_transfer_encoding {
        return Examined::PassThrough;
    }
    match length {
        Some(0) => Examined::Head {
            len,
            add_length: false,
            next: State::Head,
        },
        Some(body) => Examined::Head {
            len,
            add_length: false,
            next: State::Body(body),
        },
        None => Examined::Head {
            len,
            add_length: request.method == Some("POST"),
            next: State::Head,
        },
    }
}

impl<T> Http10Lengths<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            input: Vec::new(),
            output: Vec::new(),
            state: State::Head,
            eof: false,
        }
    }

    /// Moves what can be judged from `input` to `output`; true if it moved
    /// anything.
    fn advance(&mut self) -> bool {
        let before = self.output.len();
        while !self.input.is_empty() {
            match self.state {
                State::PassThrough => self.output.append(&mut self.input),
                State::Body(rest) => {
                    let n = self
                        .input
                        .len()
                        .min(usize::try_from(rest).unwrap_or(usize::MAX));
                    self.output.extend(self.input.drain(..n));
                    self.state = match rest - n as u64 {
                        0 => State::Head,
                        rest => State::Body(rest),
                    };
                }
                State::Head => match examine(&self.input) {
                    Examined::Incomplete => break,
                    Examined::PassThrough => self.state = State::PassThrough,
                    Examined::Head {
                        len,
                        add_length,
                        next,
                    } => {
                        let head: Vec<u8> = self.input.drain(..len).collect();
                        if add_length {
                            // Before the blank line that ends the head.
                            let blank = if head.ends_with(b"\r\n\r\n") { 2 } else { 1 };
                            self.output.extend_from_slice(&head[..len - blank]);
                            self.output.extend_from_slice(ADDED_HEADER);
                            self.output.extend_from_slice(&head[len - blank..]);
                        } else {
                            self.output.extend_from_slice(&head);
                        }
                        self.state = next;
                    }
                },
            }
        }
        self.output.len() > before
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Http10Lengths<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.output.is_empty() {
                let n = this.output.len().min(buf.remaining());
                buf.put_slice(&this.output[..n]);
                this.output.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if this.state == State::PassThrough && this.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if this.advance() {
                continue;
            }
            if this.eof {
                // A head cut short: actix-http sees what came, then the end.
                this.output.append(&mut this.input);
                if this.output.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.eof = true;
            } else {
                this.input.extend_from_slice(read.filled());
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Http10Lengths<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
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
    use tokio::io::AsyncReadExt;

    use super::*;

    /// What actix-http would read from a connection that sent `chunks`.
    async fn seen(chunks: &[&[u8]]) -> String {
        let mut mock = ChunkedReader(chunks.iter().map(|c| c.to_vec()).rev().collect());
        let mut seen = Vec::new();
        Http10Lengths::new(&mut mock)
            .read_to_end(&mut seen)
            .await
            .unwrap();
        String::from_utf8(seen).unwrap()
    }

    /// A socket that hands out its chunks (kept last first) one per read.
    struct ChunkedReader(Vec<Vec<u8>>);

    impl AsyncRead for ChunkedReader {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some(chunk) = self.get_mut().0.pop() {
                buf.put_slice(&chunk);
            }
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn an_http10_post_without_a_length_gets_content_length_zero() {
        let seen = seen(&[b"POST /create_order HTTP/1.0\r\nHost: x\r\n\r\n"]).await;
        assert_eq!(
            seen,
            "POST /create_order HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_head_split_across_reads_is_completed_first() {
        let seen = seen(&[b"POST /create_order HT", b"TP/1.0\r\n", b"\r\n"]).await;
        assert_eq!(
            seen,
            "POST /create_order HTTP/1.0\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn bare_line_feeds_get_the_header_before_the_blank_line() {
        let seen = seen(&[b"POST / HTTP/1.0\nHost: x\n\n"]).await;
        assert_eq!(seen, "POST / HTTP/1.0\nHost: x\nContent-Length: 0\r\n\n");
    }

    #[tokio::test]
    async fn keep_alive_requests_are_each_examined_after_their_bodies() {
        let first = "POST /orders HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 20\r\n\r\n";
        let body = "POST / HTTP/1.0\r\n\r\n"; // a body that looks like a head
        let second = "POST /create_order HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        let third = "GET /products HTTP/1.0\r\n\r\n";
        let sent = format!("{first}{body}x{second}{third}");
        let seen = seen(&[sent.as_bytes()]).await;
        assert_eq!(
            seen,
            format!(
                "{first}{body}x{}Content-Length: 0\r\n\r\n{third}",
                second.strip_suffix("\r\n").unwrap()
            )
        );
    }

    #[tokio::test]
    async fn http11_and_what_does_not_parse_pass_unchanged() {
        for sent in [
            "POST /create_order HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.0\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.0\r\nContent-Length: x\r\n\r\n",
            "POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "nonsense\r\n\r\n",
            "POST / HTTP/1.0\r\n", // cut short
        ] {
            assert_eq!(seen(&[sent.as_bytes()]).await, sent);
        }
    }
}
