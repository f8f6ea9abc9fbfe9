//! TCP_NODELAY for the database connections, which sqlx 0.9.0 opens without it (sqlx issue #4335; the
//! fix is merged upstream but not released). Without it, Nagle's algorithm holds back the last small
//! piece of a request until the server acknowledges the previous one, and PostgreSQL delays that
//! acknowledgement by up to 40 ms while it waits for the rest of the request. Over TLS, where sqlx sends
//! a request as several records, this is most calls under load: 32 concurrent draft creations measured
//! 390/s with a median of 95 ms over TLS; 2,900/s and 11 ms with this setting (3,100/s without TLS).
//!
//! sqlx gives no access to its sockets, so right after a connection is made (`after_connect`) this finds
//! the process's TCP sockets connected to the database's port and sets the option on them — setting it
//! on one that already has it changes nothing. Linux only (it reads `/proc/self/fd`); elsewhere it does
//! nothing. Remove it when sqlx sets TCP_NODELAY itself.

use std::{mem::ManuallyDrop, os::fd::FromRawFd};

/// Sets TCP_NODELAY on every TCP connection of this process to a server listening on `port`.
pub(super) fn set_on_connections_to(port: u16) {
    for_each_connection_to(port, |socket| {
        let _ = socket.set_tcp_nodelay(true);
    });
}

/// Whether each TCP connection of this process to `port` has TCP_NODELAY.
#[cfg(test)]
pub(super) fn connections_to(port: u16) -> Vec<bool> {
    let mut out = Vec::new();
    for_each_connection_to(port, |socket| out.push(socket.tcp_nodelay().unwrap_or(false)));
    out
}

/// Calls `f` with each of this process's stream sockets whose peer is on `port` (borrowed: never closed here).
fn for_each_connection_to(port: u16, mut f: impl FnMut(&socket2::Socket)) {
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
        let peer_port = socket.peer_addr().ok().and_then(|a| a.as_socket()).map(|a| a.port());
        if socket.r#type().is_ok_and(|t| t == socket2::Type::STREAM) && peer_port == Some(port) {
            f(&socket);
        }
    }
}
