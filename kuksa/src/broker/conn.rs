//! The broker's accepted connections, wrapped so that stopping the broker ends them all at
//! once: a stopped (or dropped) broker makes every read and write fail, hyper drops the
//! connection and closes the socket, and each client sees its calls and streams end with an
//! error — as when a real broker dies — instead of a graceful drain that never ends while a
//! subscription is open.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::watch;
use tonic::transport::server::Connected;

pub(crate) enum Io {
    Tcp(TcpStream),
    Unix(UnixStream),
}

pub(crate) struct Conn {
    io: Io,
    /// Completes when the broker stops (or its handle is dropped).
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
    dead: bool,
}

impl Conn {
    pub(crate) fn new(io: Io, mut stop: watch::Receiver<bool>) -> Conn {
        Conn {
            io,
            stopped: Box::pin(async move {
                // An error means the handle is gone: stopped as well.
                let _ = stop.wait_for(|s| *s).await;
            }),
            dead: false,
        }
    }

    /// Whether the broker stopped; registers the waker for that otherwise.
    fn killed(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.dead && self.stopped.as_mut().poll(cx).is_ready() {
            self.dead = true;
        }
        self.dead
    }
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "the test broker stopped")
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.killed(cx) {
            return Poll::Ready(Err(stopped()));
        }
        match &mut this.io {
            Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Io::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.killed(cx) {
            return Poll::Ready(Err(stopped()));
        }
        match &mut this.io {
            Io::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Io::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.killed(cx) {
            return Poll::Ready(Err(stopped()));
        }
        match &mut this.io {
            Io::Tcp(s) => Pin::new(s).poll_flush(cx),
            Io::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.io {
            Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Io::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}
