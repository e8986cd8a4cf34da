//! Traffic checks between network namespaces, for `vecswitch demo` and the tests: ping, a TCP
//! transfer checked by SHA-256, and a UDP echo exchange. The endpoints are small Python
//! scripts run inside the namespaces (Debian's `/usr/bin/python3`), so the traffic comes from
//! the namespaces' own kernel stacks as a container's would.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::netns::{ns_command, ns_exec, NsTarget};

/// Debian's `python3`, else the first on PATH.
pub fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Whether all `count` pings from `ns` to `addr` are answered (`ping -c COUNT`, 0.2 s apart,
/// 2 s for each reply).
pub fn ping(ns: &NsTarget, addr: &str, count: u32) -> Result<bool> {
    let count = count.to_string();
    let out = ns_exec(
        ns,
        &[
            "ping", "-n", "-q", "-c", &count, "-i", "0.2", "-W", "2", addr,
        ],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(out.status.success() && text.contains(&format!(" {count} received")))
}

/// A child process killed and reaped on drop, so a failed check leaves no server behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a Python server script in `ns`; it prints its port on the first line.
fn start_server(ns: &NsTarget, script: &str) -> Result<(Reaped, BufReader<ChildStdout>, u16)> {
    let mut child = Reaped(
        ns_command(ns, python())?
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("start the server")?,
    );
    let mut stdout = BufReader::new(child.0.stdout.take().context("server stdout")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    match line.trim().parse() {
        Ok(port) => Ok((child, stdout, port)),
        Err(_) => {
            let mut err = String::new();
            if let Some(mut e) = child.0.stderr.take() {
                let _ = child.0.wait();
                let _ = e.read_to_string(&mut err);
            }
            bail!("server did not start: {line:?} {err}")
        }
    }
}

/// Runs a Python client script in `ns` and returns its stdout; fails with its stderr.
fn run_client(ns: &NsTarget, script: &str) -> Result<String> {
    let out = ns_exec(ns, &[python(), "-c", script])?;
    if !out.status.success() {
        bail!("client failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn family(ip: &str) -> &'static str {
    if ip.contains(':') {
        "socket.AF_INET6"
    } else {
        "socket.AF_INET"
    }
}

/// Sends `bytes` random bytes over one TCP connection from `client_ns` to a server on
/// `server_ip` in `server_ns`, and returns the byte count the server received once it equals
/// `bytes` and the SHA-256 of what arrived equals that of what was sent (random data, so a
/// reordered or corrupted stream cannot match by accident). Every socket has a 20 s timeout.
pub fn tcp_transfer(
    server_ns: &NsTarget,
    server_ip: &str,
    client_ns: &NsTarget,
    bytes: usize,
) -> Result<usize> {
    let af = family(server_ip);
    let server = format!(
        "import socket,hashlib\n\
         s=socket.socket({af},socket.SOCK_STREAM)\n\
         s.bind(('{server_ip}',0))\ns.listen(1)\ns.settimeout(20)\n\
         print(s.getsockname()[1],flush=True)\n\
         c,_=s.accept()\nc.settimeout(20)\nh=hashlib.sha256()\nn=0\n\
         while True:\n    b=c.recv(65536)\n    if not b: break\n    h.update(b)\n    n+=len(b)\n\
         print(n,h.hexdigest(),flush=True)\nc.close()\n"
    );
    let (mut child, mut stdout, port) = start_server(server_ns, &server)?;
    let client = format!(
        "import socket,hashlib,os\n\
         d=os.urandom({bytes})\n\
         c=socket.socket({af},socket.SOCK_STREAM)\nc.settimeout(20)\n\
         c.connect(('{server_ip}',{port}))\nc.sendall(d)\nc.shutdown(socket.SHUT_WR)\n\
         c.recv(1)\n\
         print(len(d),hashlib.sha256(d).hexdigest())\n"
    );
    let sent = run_client(client_ns, &client)?;
    let mut got = String::new();
    stdout.read_line(&mut got)?;
    let _ = child.0.wait();
    let (sent, got) = (sent.trim(), got.trim());
    let n: usize = got
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("server reported {got:?}"))?;
    if n != bytes || sent != got {
        bail!("sent {sent:?}, the server received {got:?}");
    }
    Ok(n)
}

/// Sends `count` UDP datagrams (distinct numbered payloads of 16 to 1015 bytes) from
/// `client_ns` to an echo server on `server_ip` in `server_ns`, one at a time, and returns how
/// many came back byte-identical within 2 s each.
pub fn udp_exchange(
    server_ns: &NsTarget,
    server_ip: &str,
    client_ns: &NsTarget,
    count: usize,
) -> Result<usize> {
    let af = family(server_ip);
    let server = format!(
        "import socket\n\
         s=socket.socket({af},socket.SOCK_DGRAM)\ns.bind(('{server_ip}',0))\ns.settimeout(5)\n\
         print(s.getsockname()[1],flush=True)\n\
         try:\n    while True:\n        d,a=s.recvfrom(4096)\n        if d==b'bye': break\n        \
         s.sendto(d,a)\nexcept socket.timeout:\n    pass\n"
    );
    let (_child, _stdout, port) = start_server(server_ns, &server)?;
    let client = format!(
        "import socket\n\
         c=socket.socket({af},socket.SOCK_DGRAM)\nc.settimeout(2)\nok=0\n\
         for i in range({count}):\n    m=b'vecswitch %06d ' % i + bytes(range(256))*4\n    \
         m=m[:16+(i*37)%1000]\n    c.sendto(m,('{server_ip}',{port}))\n    \
         try:\n        d,_=c.recvfrom(4096)\n        ok+=d==m\n    except socket.timeout:\n        pass\n\
         c.sendto(b'bye',('{server_ip}',{port}))\nprint(ok)\n"
    );
    let out = run_client(client_ns, &client)?;
    out.trim()
        .parse()
        .map_err(|_| anyhow!("client printed {out:?}"))
}
