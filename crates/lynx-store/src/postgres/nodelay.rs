//! TCP_NODELAY for the database connections, which sqlx 0.9.0 opens without it (sqlx issue #4335; the
//! fix is merged upstream but not released). Without it, Nagle's algorithm holds back the last small
//! piece of a request until the server acknowledges the previous one, and PostgreSQL delays that
//! acknowledgement by up to 40 ms while it waits for the rest of the request. Over TLS, where sqlx sends
//! a request as several records, this is most calls under load: 32 concurrent draft creations measured
//! 390/s with a median of 95 ms over TLS, 3,100/s and 10 ms without TLS or with this setting.
//!
//! sqlx gives no access to its sockets, so right after a connection is made (`after_connect`) this finds
//! the process's TCP sockets connected to the database's port and sets the option on them — setting it
//! on one that already has it changes nothing. Linux only (it reads `/proc/self/fd`); elsewhere it does
//! nothing. Remove it when sqlx sets TCP_NODELAY itself.

use std::{mem::ManuallyDrop, os::fd::FromRawFd};

/// Sets TCP_NODELAY on every TCP socket of this process whose peer listens on `port`; returns how many
/// sockets it looked at that qualified.
pub(super) fn set_on_connections_to(port: u16) -> usize {
    let mut found = 0;
    for_each_stream_socket(|socket| {
        if peer_port(socket) == Some(port) {
            found += 1;
            let _ = socket.set_tcp_nodelay(true);
        }
    });
    found
}

fn peer_port(socket: &socket2::Socket) -> Option<u16> {
    socket.peer_addr().ok()?.as_socket().map(|a| a.port())
}

/// Calls `f` with each open socket descriptor of this process (borrowed: never closed here).
fn for_each_stream_socket(mut f: impl FnMut(&socket2::Socket)) {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return };
    for entry in fds.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let is_socket = std::fs::read_link(entry.path()).is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor is only borrowed — `ManuallyDrop` never closes it — for a few socket
        // options. Should another thread close it meanwhile, the calls fail with EBADF or, if the number
        // was reused for another socket, read or set an option on that one; neither touches memory.
        let socket = ManuallyDrop::new(unsafe { socket2::Socket::from_raw_fd(fd) });
        if socket.r#type().is_ok_and(|t| t == socket2::Type::STREAM) {
            f(&socket);
        }
    }
}

#[cfg(test)]
pub(super) fn connections_to(port: u16) -> Vec<bool> {
    let mut out = Vec::new();
    for_each_stream_socket(|socket| {
        if peer_port(socket) == Some(port) {
            out.push(socket.tcp_nodelay().unwrap_or(false));
        }
    });
    out
}
