//! Sending datagrams to the collectors: one non-blocking UDP socket per target (IPv4 or IPv6),
//! each target gets every datagram. A collector that is down or unreachable costs a failed
//! `send_to`, counted; nothing waits, and this runs on the control thread, never a PMD.

use std::net::{SocketAddr, UdpSocket};

/// One collector and its counters.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    socket: Option<UdpSocket>,
    pub sent: u64,
    pub send_failures: u64,
    /// The last send error, for `show-netflow`.
    pub last_error: Option<String>,
}

/// Where datagrams go: UDP collectors, or (replay and tests) a capture that keeps each
/// datagram with the target it was for.
#[derive(Debug)]
pub struct Collectors {
    pub targets: Vec<Target>,
    capture: Option<Vec<(SocketAddr, Vec<u8>)>>,
}

fn open(addr: &SocketAddr) -> std::io::Result<UdpSocket> {
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().map_err(std::io::Error::other)?
    } else {
        "[::]:0".parse().map_err(std::io::Error::other)?
    };
    let s = UdpSocket::bind(bind)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

impl Collectors {
    /// UDP sockets for `targets`. A socket that cannot be opened counts every datagram for
    /// its target as a failure (OVS logs and goes on without that collector).
    pub fn udp(targets: &[SocketAddr]) -> Collectors {
        Collectors {
            targets: targets
                .iter()
                .map(|addr| {
                    let (socket, last_error) = match open(addr) {
                        Ok(s) => (Some(s), None),
                        Err(e) => (None, Some(e.to_string())),
                    };
                    Target {
                        addr: *addr,
                        socket,
                        sent: 0,
                        send_failures: 0,
                        last_error,
                    }
                })
                .collect(),
            capture: None,
        }
    }

    /// No sockets: every datagram is kept for [`Collectors::take_captured`].
    pub fn capture(targets: &[SocketAddr]) -> Collectors {
        Collectors {
            targets: targets
                .iter()
                .map(|addr| Target {
                    addr: *addr,
                    socket: None,
                    sent: 0,
                    send_failures: 0,
                    last_error: None,
                })
                .collect(),
            capture: Some(Vec::new()),
        }
    }

    pub fn is_capture(&self) -> bool {
        self.capture.is_some()
    }

    /// Sends `datagram` to every target.
    pub fn send(&mut self, datagram: &[u8]) {
        for t in &mut self.targets {
            if let Some(c) = &mut self.capture {
                c.push((t.addr, datagram.to_vec()));
                t.sent += 1;
                continue;
            }
            let r = match &t.socket {
                Some(s) => s.send_to(datagram, t.addr).map(|_| ()),
                None => Err(std::io::Error::other("no socket")),
            };
            match r {
                Ok(()) => t.sent += 1,
                Err(e) => {
                    t.send_failures += 1;
                    t.last_error = Some(e.to_string());
                }
            }
        }
    }

    /// The captured datagrams, oldest first, with their targets.
    pub fn take_captured(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        self.capture
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_target_gets_the_datagram_and_failures_are_counted() {
        // One IPv4 and one IPv6 collector (IPv6 loopback where the host has it).
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("[::1]:0")
            .or_else(|_| UdpSocket::bind("127.0.0.1:0"))
            .unwrap();
        for s in [&a, &b] {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        }
        let mut c = Collectors::udp(&[a.local_addr().unwrap(), b.local_addr().unwrap()]);
        c.send(b"datagram");
        let mut buf = [0u8; 64];
        for s in [&a, &b] {
            let n = s.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"datagram");
        }
        assert!(c
            .targets
            .iter()
            .all(|t| t.sent == 1 && t.send_failures == 0));

        // An IPv6 target on a host without a route to it fails at once, counted, no wait.
        let mut down = Collectors::udp(&["[2001:db8::1]:2055".parse().unwrap()]);
        let t0 = std::time::Instant::now();
        for _ in 0..3 {
            down.send(b"x");
        }
        assert!(t0.elapsed() < Duration::from_secs(1));
        let t = &down.targets[0];
        assert_eq!(t.sent + t.send_failures, 3);
    }

    #[test]
    fn capture_keeps_one_copy_per_target() {
        let t: Vec<SocketAddr> = vec![
            "127.0.0.1:2055".parse().unwrap(),
            "[::1]:2056".parse().unwrap(),
        ];
        let mut c = Collectors::capture(&t);
        c.send(b"one");
        let got = c.take_captured();
        assert_eq!(got, vec![(t[0], b"one".to_vec()), (t[1], b"one".to_vec())]);
        assert!(c.take_captured().is_empty());
    }
}
