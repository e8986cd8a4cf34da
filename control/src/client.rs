//! The control socket's client side: what `vecswitch VERB ...` runs.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

use crate::socket::{Request, Response};

/// Sends one request and returns the daemon's answer (an error answer is `Ok` with
/// `ok: false`; `Err` means the daemon could not be reached or answered garbage).
pub fn request(socket: &Path, argv: &[String], data: Option<String>) -> Result<Response> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the daemon at {} (is `vecswitch run` running? --socket sets the path)",
            socket.display()
        )
    })?;
    // Reconfiguration waits for the PMDs and may open ports (AF_XDP binds retry for seconds).
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut line = serde_json::to_vec(&Request {
        argv: argv.to_vec(),
        data,
    })?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .context("reading the daemon's answer")?;
    if answer.is_empty() {
        return Err(anyhow!(
            "the daemon closed the connection without answering"
        ));
    }
    serde_json::from_str(&answer).context("the daemon's answer is not valid")
}

/// Sends a request and turns an error answer into `Err` (for programs that chain verbs).
pub fn call(socket: &Path, argv: &[&str]) -> Result<Response> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let r = request(socket, &argv, None)?;
    if r.ok {
        Ok(r)
    } else {
        Err(anyhow!("{}", r.error.unwrap_or_default()))
    }
}
