//! Non-blocking byte streams and listeners, TCP or unix, behind one type each. A unix
//! listener's file is created with mode 0600 and removed when the listener goes.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::target::Target;

/// One connection's socket.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Connects to an active target within `timeout`, then makes the socket non-blocking.
    pub fn connect(target: &Target, timeout: Duration) -> io::Result<Stream> {
        match target {
            Target::Tcp(addr) => {
                let s = TcpStream::connect_timeout(addr, timeout)?;
                s.set_nonblocking(true)?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an active target",
            )),
        }
    }

    /// The peer, for `show`.
    pub fn peer(&self) -> String {
        match self {
            Stream::Tcp(s) => s
                .peer_addr()
                .map_or_else(|_| "tcp:?".into(), |a| format!("tcp:{a}")),
            Stream::Unix(_) => "unix".into(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// A listening socket of a passive target.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds a passive target. A unix path with a live listener behind it is refused; one
    /// left by a process that died is replaced.
    pub fn bind(target: &Target) -> io::Result<Listener> {
        let l = match target {
            Target::Ptcp(addr) => Listener::Tcp(TcpListener::bind(addr)?),
            Target::Punix(path) => Listener::Unix(bind_unix(path)?, path.clone()),
            Target::Tcp(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a passive target",
                ))
            }
        };
        match &l {
            Listener::Tcp(t) => t.set_nonblocking(true)?,
            Listener::Unix(u, _) => u.set_nonblocking(true)?,
        }
        Ok(l)
    }

    /// The TCP port bound (a `ptcp:0` target gets one from the kernel).
    pub fn local_port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(t) => t.local_addr().ok().map(|a| a.port()),
            Listener::Unix(..) => None,
        }
    }

    /// The next waiting connection, non-blocking, or `None`.
    pub fn accept(&self) -> io::Result<Option<Stream>> {
        let r = match self {
            Listener::Tcp(t) => t.accept().map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }),
            Listener::Unix(u, _) => u.accept().map(|(s, _)| Stream::Unix(s)),
        };
        match r {
            Ok(s) => {
                match &s {
                    Stream::Tcp(t) => t.set_nonblocking(true)?,
                    Stream::Unix(u) => u.set_nonblocking(true)?,
                }
                Ok(Some(s))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(t) => t.as_raw_fd(),
            Listener::Unix(u, _) => u.as_raw_fd(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}
