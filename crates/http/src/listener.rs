//! [`without_nagle`]: the listener every plaintext face is served from.
//!
//! Streamed answers (`/mcp`'s server-sent events, a chunked body) leave
//! the server as several small writes. With Nagle's algorithm on, the
//! kernel holds each small segment until the one before is acknowledged,
//! and a client with nothing to send back delays that acknowledgement, so
//! one answer can wait on the peer's delayed-ACK timer. `axum::serve`
//! leaves Nagle on; Node's HTTP server and reqwest turn it off, and so do
//! we. The TLS face gets the same from `axum_server`'s `NoDelayAcceptor`.

use axum::serve::{ListenerExt as _, TapIo};
use tokio::net::{TcpListener, TcpStream};

/// `listener` with `TCP_NODELAY` set on every connection it accepts.
pub type NoDelayListener = TapIo<TcpListener, fn(&mut TcpStream)>;

/// Wraps `listener` so that every accepted connection sends small writes
/// at once. A connection whose option cannot be set is served anyway: a
/// missing socket option costs latency, not correctness.
pub fn without_nagle(listener: TcpListener) -> NoDelayListener {
    listener.tap_io(set_nodelay as fn(&mut TcpStream))
}

fn set_nodelay(stream: &mut TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY could not be set on an accepted connection");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener as _;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let bound = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = bound.local_addr().unwrap();
        let mut listener = without_nagle(bound);
        let client = tokio::spawn(TcpStream::connect(address));
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap());
        drop(client.await.unwrap().unwrap());
    }
}
