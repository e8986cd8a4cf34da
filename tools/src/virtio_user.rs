//! `vecswitch attach BRIDGE --virtio-user NAME`: what a DPDK container needs to attach to the
//! switch without the kernel. The switch side is a `vhost-user` port on a unix socket; the
//! container side is DPDK's `net_virtio_user` device on the same socket. This module builds
//! both halves: the `add-port` arguments for the daemon and the EAL arguments (socket, memory
//! options that work on this machine, a file prefix of its own) for the container, so that
//! what `attach` prints is exactly what the tests run.

use std::path::{Path, PathBuf};

use serde::Serialize;

use ports::vhost::MAX_QUEUE_PAIRS;
use ports::VhostUserMode;

/// Where `attach --virtio-user` puts the sockets unless told otherwise (beside the daemon's
/// control socket).
pub const DEFAULT_SOCKET_DIR: &str = "/run/vecswitch";

/// Memory each container's DPDK asks for, in MiB (`-m`): enough for testpmd's default pools.
const MEMORY_MB: u32 = 512;

/// A refused `attach --virtio-user`, naming the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VirtioUserError {
    #[error("virtio-user: port name {0:?}: use 1 to 15 letters, digits, '-' or '_'")]
    BadName(String),
    #[error("virtio-user: mode {0:?}: expected server or client")]
    BadMode(String),
    #[error("virtio-user: queues {0}: must be 1..={MAX_QUEUE_PAIRS}")]
    BadQueues(u16),
}

/// One container's attachment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VirtioUser {
    /// The switch port's name (also the container's DPDK file prefix).
    pub port: String,
    /// The vhost-user socket.
    pub socket: PathBuf,
    /// Who listens: `server` (the switch, the default) or `client` (the container, with
    /// `server=1`; the switch reconnects, so either side may restart).
    #[serde(serialize_with = "mode_name")]
    pub mode: VhostUserMode,
    /// Whether the container uses hugepages (`--single-file-segments`, so its memory can be
    /// shared) instead of `--no-huge`.
    pub hugepages: bool,
    /// Queue pairs (the port's `queues=`, the device's `queues=`).
    pub queues: u16,
    /// The container's device uses packed rings (`packed_vq=1`); split rings otherwise.
    pub packed: bool,
}

fn mode_name<S: serde::Serializer>(m: &VhostUserMode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.name())
}

impl VirtioUser {
    /// Checks the name, mode and queue count; the socket is `DIR/NAME.sock`.
    pub fn new(
        port: &str,
        socket_dir: &Path,
        mode: &str,
        hugepages: bool,
        queues: u16,
    ) -> Result<VirtioUser, VirtioUserError> {
        let ok = !port.is_empty()
            && port.len() <= 15
            && port
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(VirtioUserError::BadName(port.to_string()));
        }
        let mode = match mode {
            "server" => VhostUserMode::Server,
            "client" => VhostUserMode::Client,
            m => return Err(VirtioUserError::BadMode(m.to_string())),
        };
        if !(1..=MAX_QUEUE_PAIRS).contains(&queues) {
            return Err(VirtioUserError::BadQueues(queues));
        }
        Ok(VirtioUser {
            port: port.to_string(),
            socket: socket_dir.join(format!("{port}.sock")),
            mode,
            hugepages,
            queues,
            packed: false,
        })
    }

    /// The `add-port BRIDGE NAME ...` options for the daemon.
    pub fn port_options(&self) -> Vec<String> {
        vec![
            "type=vhost-user".to_string(),
            format!("socket={}", self.socket.display()),
            format!("mode={}", self.mode.name()),
            format!("queues={}", self.queues),
        ]
    }

    /// The container's DPDK EAL arguments: no PCI scan, memory it can share with the switch,
    /// a file prefix of its own (so two containers' runtime files do not collide), and the
    /// virtio-user device on the socket (`server=1` when the container listens).
    pub fn eal_args(&self) -> Vec<String> {
        let mut a = vec!["--no-pci".to_string()];
        if self.hugepages {
            // Without it, virtio-user cannot share its memory ("Failed to set memory table").
            a.push("--single-file-segments".to_string());
        } else {
            // memfd-backed: needs no hugepages at all.
            a.push("--no-huge".to_string());
        }
        a.push("-m".to_string());
        a.push(MEMORY_MB.to_string());
        a.push(format!("--file-prefix=vecswitch-{}", self.port));
        let server = match self.mode {
            VhostUserMode::Client => ",server=1",
            VhostUserMode::Server => "",
        };
        a.push(format!(
            "--vdev=net_virtio_user0,path={},queues={}{packed}{server}",
            self.socket.display(),
            self.queues,
            packed = if self.packed { ",packed_vq=1" } else { "" },
        ));
        a
    }

    /// A whole command for a container that runs dpdk-testpmd (interactive); another DPDK
    /// application takes the same EAL arguments.
    pub fn testpmd_command(&self) -> Vec<String> {
        let mut c = vec!["dpdk-testpmd".to_string()];
        c.extend(self.eal_args());
        c.push("--".to_string());
        c.push("-i".to_string());
        if self.queues > 1 {
            c.push(format!("--rxq={}", self.queues));
            c.push(format!("--txq={}", self.queues));
        }
        if !self.hugepages {
            // testpmd's default pool does not fit -m 512 without hugepages.
            c.push("--total-num-mbufs=16384".to_string());
        }
        c
    }
}

/// Quotes `argv` for a POSIX shell, for printing.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=,./:".contains(&b))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_mode_uses_the_socket_without_server_1_and_no_hugepages() {
        let v = VirtioUser::new("vu0", Path::new("/run/vs"), "server", false, 1).unwrap();
        assert_eq!(v.socket, PathBuf::from("/run/vs/vu0.sock"));
        assert_eq!(
            v.port_options(),
            [
                "type=vhost-user",
                "socket=/run/vs/vu0.sock",
                "mode=server",
                "queues=1"
            ]
        );
        assert_eq!(
            v.eal_args(),
            [
                "--no-pci",
                "--no-huge",
                "-m",
                "512",
                "--file-prefix=vecswitch-vu0",
                "--vdev=net_virtio_user0,path=/run/vs/vu0.sock,queues=1"
            ]
        );
        assert_eq!(
            shell_line(&v.testpmd_command()),
            "dpdk-testpmd --no-pci --no-huge -m 512 --file-prefix=vecswitch-vu0 \
             --vdev=net_virtio_user0,path=/run/vs/vu0.sock,queues=1 -- -i --total-num-mbufs=16384"
        );
    }

    #[test]
    fn client_mode_asks_the_container_to_listen_and_hugepages_share_one_file() {
        let mut v = VirtioUser::new("c-1", Path::new("/tmp"), "client", true, 2).unwrap();
        v.packed = true;
        let eal = v.eal_args();
        assert!(eal.contains(&"--single-file-segments".to_string()));
        assert!(!eal.contains(&"--no-huge".to_string()));
        assert_eq!(
            eal.last().map(String::as_str),
            Some("--vdev=net_virtio_user0,path=/tmp/c-1.sock,queues=2,packed_vq=1,server=1")
        );
        assert!(v.port_options().contains(&"mode=client".to_string()));
        assert!(v.port_options().contains(&"queues=2".to_string()));
        assert!(shell_line(&v.testpmd_command()).ends_with("-- -i --rxq=2 --txq=2"));
    }

    #[test]
    fn bad_names_and_modes_are_refused_by_field() {
        for bad in ["", "a/b", "x y", "sixteen-chars-xx", "é"] {
            assert_eq!(
                VirtioUser::new(bad, Path::new("/tmp"), "server", false, 1),
                Err(VirtioUserError::BadName(bad.to_string()))
            );
        }
        let e = VirtioUser::new("vu0", Path::new("/tmp"), "both", false, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "virtio-user: mode \"both\": expected server or client"
        );
        for q in [0, 17] {
            let e = VirtioUser::new("vu0", Path::new("/tmp"), "server", false, q).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("virtio-user: queues {q}: must be 1..=16")
            );
        }
    }

    #[test]
    fn shell_line_quotes_what_the_shell_would_split() {
        let argv = ["a b".to_string(), "it's".to_string(), "--x=1".to_string()];
        assert_eq!(shell_line(&argv), r"'a b' 'it'\''s' --x=1");
    }
}
