//! The control socket: a unix stream socket (mode 0600) on which each connection carries one
//! request, a JSON object on one line (`{"argv": [...], "data": "..."}`), and gets one answer
//! line (`{"ok": true, "text": ..., "json": ...}` or `{"ok": false, "error": ...}`). Each
//! connection is read on a short-lived thread of its own; whole requests run one at a time on
//! the control thread, which also does the daemon's upkeep about once a second. A request that is not complete (no newline before the peer closes or before
//! the read timeout), too long, or not JSON changes nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::commands::execute;
use datapath::daemon::Daemon;

/// The default socket path.
pub const DEFAULT_SOCKET: &str = "/run/vecswitch/vecswitch.sock";

/// Longest request line (add-flows carries a whole file).
pub const MAX_REQUEST: u64 = 64 << 20;

/// Clients whose requests are being read at once; more are refused.
pub const MAX_READERS: usize = 32;

/// How long a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the ports' liveness (link up, not taken down) is read again.
const LIVENESS_INTERVAL: Duration = Duration::from_millis(100);
/// How long the control loop keeps polling without sleeping after its last input.
const SPIN_AFTER_INPUT: Duration = Duration::from_micros(200);

/// One request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The verb and its words, as typed after `vecswitch`.
    pub argv: Vec<String>,
    /// File contents the verb needs (`add-flows`).
    #[serde(default)]
    pub data: Option<String>,
}

/// One answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub json: serde_json::Value,
    #[serde(default)]
    pub error: Option<String>,
}

impl Response {
    fn error(e: impl std::fmt::Display) -> Response {
        Response {
            ok: false,
            text: String::new(),
            json: serde_json::Value::Null,
            error: Some(e.to_string()),
        }
    }
}

/// The listening socket; the file goes when it drops.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `path` (creating its directory), refusing when another daemon answers there, and
    /// restricts it to root (0600).
    pub fn bind(path: &Path) -> Result<ControlSocket> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("socket: cannot create {}", dir.display()))?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                bail!("socket: {} is in use by a running daemon", path.display());
            }
            // Left by a daemon that was killed.
            std::fs::remove_file(path)
                .with_context(|| format!("socket: cannot remove stale {}", path.display()))?;
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("socket: cannot bind {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("socket: cannot chmod {}", path.display()))?;
        listener.set_nonblocking(true)?;
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves requests until `stop` is set; upkeep about once a second. Each connection's
    /// request is read on a thread of its own (at most [`MAX_READERS`] at once), so a slow or
    /// stalled client holds up no one; complete requests run here, one at a time, between
    /// rounds of the bridges' OpenFlow connections.
    pub fn serve(&self, daemon: &mut Daemon, stop: &Arc<AtomicBool>) -> Result<()> {
        let (tx, rx) = crossbeam_channel::unbounded::<(Vec<u8>, UnixStream)>();
        let readers = Arc::new(AtomicUsize::new(0));
        let mut last_upkeep = Instant::now();
        let mut last_liveness = Instant::now();
        let mut fds = Vec::new();
        // Set when an OpenFlow connection has input left over from the last round.
        let mut openflow_busy = false;
        let mut last_input = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            fds.clear();
            fds.push(self.listener.as_raw_fd());
            crate::openflow_conn::fds(daemon, &mut fds);
            // Right after input the loop polls without sleeping for a while: a controller's
            // next message (ovs-ofctl's next FLOW_MOD + BARRIER) then finds it awake, without
            // the wake-up of a sleeping thread (tens of µs on this VM), as Open vSwitch's
            // busier main loop does (BENCHMARKS.md, "FLOW_MOD without a bundle").
            let spin = openflow_busy || last_input.elapsed() < SPIN_AFTER_INPUT;
            if ports::sys::poll_readable(&fds, if spin { 0 } else { 20 }).unwrap_or(0) > 0 {
                last_input = Instant::now();
            }
            loop {
                match self.listener.accept() {
                    Ok((stream, _)) => spawn_reader(stream, &tx, &readers),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        eprintln!("vecswitch: control socket accept: {e}");
                        break;
                    }
                }
            }
            let mut served = false;
            while let Ok((line, stream)) = rx.try_recv() {
                serve_one(daemon, &line, stream);
                served = true;
            }
            // A port a request added, deleted or changed is told to the controllers now, as
            // Open vSwitch does when its bridge reconfigures; changes of a port's link are
            // seen by the upkeep below.
            if served {
                crate::openflow_conn::port_changes(daemon);
            }
            // Packet-ins go to the controllers (or are counted unsent), so that the bridges'
            // queues never fill.
            daemon.send_packet_ins();
            daemon.send_flow_removed();
            // Each connection handles a bounded number of messages per round, so requests on
            // this socket are served between the rounds of a flooding controller.
            openflow_busy = crate::openflow_conn::run(daemon, Instant::now());
            // Link changes reach fast-failover groups within a tenth of a second.
            if last_liveness.elapsed() >= LIVENESS_INTERVAL {
                last_liveness = Instant::now();
                daemon.refresh_liveness();
            }
            if last_upkeep.elapsed() >= Duration::from_secs(1) {
                last_upkeep = Instant::now();
                if let Err(e) = daemon.housekeeping() {
                    eprintln!("vecswitch: upkeep: {e:#}");
                }
                crate::openflow_conn::port_changes(daemon);
            }
        }
        Ok(())
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads one request line on a thread of its own and hands it to the control thread. A
/// request that does not arrive whole (the client went away, stalled past the timeout, or sent
/// too much) is dropped without effect; too long gets an error answer.
fn spawn_reader(
    stream: UnixStream,
    tx: &crossbeam_channel::Sender<(Vec<u8>, UnixStream)>,
    readers: &Arc<AtomicUsize>,
) {
    if readers.fetch_add(1, Ordering::AcqRel) >= MAX_READERS {
        readers.fetch_sub(1, Ordering::AcqRel);
        let mut s = stream;
        let _ = reply(
            &mut s,
            &Response::error("request: too many clients at once"),
        );
        return;
    }
    let (tx, readers) = (tx.clone(), readers.clone());
    let spawned = std::thread::Builder::new()
        .name("ctl-reader".into())
        .spawn(move || {
            if let Some(line) = read_request(&stream) {
                let _ = tx.send((line, stream));
            }
            readers.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        eprintln!("vecswitch: control socket: cannot start a reader thread");
    }
}

/// One whole request line, or `None`.
fn read_request(stream: &UnixStream) -> Option<Vec<u8>> {
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(READ_TIMEOUT)).is_err()
    {
        return None;
    }
    let mut line = Vec::new();
    let mut reader = BufReader::new(stream.take(MAX_REQUEST + 1));
    match reader.read_until(b'\n', &mut line) {
        Ok(_) if line.last() == Some(&b'\n') => Some(line),
        Ok(_) if line.len() as u64 > MAX_REQUEST => {
            let mut w = stream.try_clone().ok()?;
            let _ = reply(
                &mut w,
                &Response::error(format!("request: longer than {MAX_REQUEST} bytes")),
            );
            None
        }
        _ => None,
    }
}

/// Runs one whole request and writes the answer.
fn serve_one(daemon: &mut Daemon, line: &[u8], mut stream: UnixStream) {
    let response = match serde_json::from_slice::<Request>(line) {
        Err(e) => Response::error(format!("request: not a valid request: {e}")),
        Ok(req) => match execute(daemon, &req.argv, req.data.as_deref()) {
            Ok(r) => Response {
                ok: true,
                text: r.text,
                json: r.json,
                error: None,
            },
            Err(e) => Response::error(format!("{e:#}")),
        },
    };
    let _ = reply(&mut stream, &response);
}

fn reply(w: &mut UnixStream, r: &Response) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    w.write_all(&bytes)
}
