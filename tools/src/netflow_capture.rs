//! What a replay's NetFlow sent, written for goldens and for tshark and nfdump: every
//! datagram as the UDP frame that would carry it to its collector (`netflow.pcap`, from
//! 127.0.0.1 or ::1, source port 32768) and as `test-netflow`'s text (`netflow.txt`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use pipeline::wire::{FrameBuilder, Ipv4Repr, Ipv6Repr};
use ports::pcap::file::PcapOut;

/// The exporter's UDP port in the frames written.
pub const EXPORT_PORT: u16 = 32768;

/// The frame that carries `datagram` to `target`.
pub fn datagram_frame(target: SocketAddr, datagram: &[u8]) -> Result<Vec<u8>> {
    let b = FrameBuilder::ethernet([2, 0, 0, 0, 0, 0xfe], [2, 0, 0, 0, 0, 0xff]);
    let b = match target.ip() {
        IpAddr::V4(dst) => b.ipv4(Ipv4Repr::new(Ipv4Addr::LOCALHOST, dst)),
        IpAddr::V6(dst) => b.ipv6(Ipv6Repr::new(Ipv6Addr::LOCALHOST, dst)),
    };
    b.udp(EXPORT_PORT, target.port())
        .build(datagram)
        .map_err(|e| anyhow!("netflow frame: {e:?}"))
}

/// Writes `<out>/netflow.pcap` and `<out>/netflow.txt` of `sent` (time, target, datagram).
pub fn write(out: &Path, sent: &[(u64, SocketAddr, Vec<u8>)]) -> Result<()> {
    let mut pcap = PcapOut::create(&out.join("netflow.pcap"))?;
    let mut text = String::new();
    for (ts, target, d) in sent {
        pcap.write(*ts, &datagram_frame(*target, d)?)?;
        text.push_str(&format!("to {target}\n"));
        for line in netflow::print::describe(d).map_err(|e| anyhow!("netflow: {e:?}"))? {
            text.push_str(&line);
            text.push('\n');
        }
    }
    std::fs::write(out.join("netflow.txt"), text)
        .with_context(|| format!("{}: cannot write netflow.txt", out.display()))
}
