//! A deadline on the head of every request of a connection.
//!
//! actix-http times out the head of a connection's *first* request only: once a
//! connection has served one request, a second request head trickled in one byte a
//! second is never cut (slowloris on a kept-alive connection). `GuardedStream` wraps
//! each accepted socket and watches the bytes go by: from the first byte of a request
//! until the blank line that ends its head, a timer runs; when it fires, the client
//! gets an empty `408` and the connection is closed, as actix does for a first
//! request. The body has its own deadline (`routes::middleware`), and a handler may
//! take as long as it needs.
//!
//! It also holds the server to its word: after a response that says
//! `connection: close`, the connection is closed within the same deadline even if
//! actix is still waiting to drain the rest of a chunked body that never comes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_rt::net::TcpStream;
use actix_rt::time::{Instant, Sleep, sleep};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where a connection is in its current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests: waiting for the first byte of the next head (actix's
    /// keep-alive timer closes an idle connection).
    Between,
    /// Reading a request head, under the deadline.
    Head,
    /// The head is in: body, handler and response, until the response is written.
    Rest,
}

/// An accepted connection with a deadline on each request head.
pub struct GuardedStream {
    io: TcpStream,
    head_timeout: Duration,
    phase: Phase,
    timer: Pin<Box<Sleep>>,
    /// The head seen so far has more than line breaks.
    seen_text: bool,
    /// The last byte (ignoring `\r`) was a line feed.
    at_line_start: bool,
    /// A response said `connection: close`; the timer bounds how long that takes.
    closing: bool,
}

impl GuardedStream {
    /// Wraps a socket; every request head must arrive within `head_timeout` of its
    /// first byte.
    pub fn new(io: TcpStream, head_timeout: Duration) -> GuardedStream {
        GuardedStream {
            io,
            head_timeout,
            phase: Phase::Between,
            timer: Box::pin(sleep(head_timeout)),
            seen_text: false,
            at_line_start: false,
            closing: false,
        }
    }

    /// Follows the bytes read: starts the deadline at a head's first byte, stops it
    /// at the blank line that ends the head.
    fn saw_read(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        if self.phase == Phase::Between {
            self.phase = Phase::Head;
            self.seen_text = false;
            self.at_line_start = false;
            let deadline = Instant::now() + self.head_timeout;
            self.timer.as_mut().reset(deadline);
        }
        while self.phase == Phase::Head {
            let Some((&byte, rest)) = bytes.split_first() else {
                return;
            };
            bytes = rest;
            match byte {
                b'\r' => {}
                b'\n' if self.at_line_start && self.seen_text => self.phase = Phase::Rest,
                b'\n' => self.at_line_start = true,
                _ => {
                    self.at_line_start = false;
                    self.seen_text = true;
                }
            }
        }
    }

    /// A response going out ends the request (an interim `100 Continue` does not).
    fn saw_write(&mut self, bytes: &[u8], cx: &mut Context<'_>) {
        if self.phase == Phase::Between || bytes.starts_with(b"HTTP/1.1 100 ") {
            return;
        }
        self.phase = Phase::Between;
        let head_end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(bytes.len());
        let head = &bytes[..head_end];
        if head
            .windows(19)
            .any(|w| w.eq_ignore_ascii_case(b"\r\nconnection: close"))
        {
            self.closing = true;
            let deadline = Instant::now() + self.head_timeout;
            self.timer.as_mut().reset(deadline);
            // Registers the waker: actix may not read again before the deadline.
            let _ = self.timer.as_mut().poll(cx);
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closing && this.timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was to close",
            )));
        }
        if this.phase == Phase::Head && this.timer.as_mut().poll(cx).is_ready() {
            // Best effort, like actix for a first request; the connection closes anyway.
            let _ = this.io.try_write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request head did not arrive in time",
            )));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read
            && buf.filled().len() > before
            && !this.closing
        {
            this.saw_read(&buf.filled()[before..]);
            if this.phase == Phase::Head {
                // Registers the waker for the deadline.
                let _ = this.timer.as_mut().poll(cx);
            }
        }
        read
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            this.saw_write(buf, cx);
        }
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            this.saw_write(first, cx);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
