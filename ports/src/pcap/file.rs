//! Reading capture files (pcap or pcapng, see `capture`) and writing pcap files, for pcap
//! ports (replay input, capture output).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;

pub use super::capture::Frame;

/// Reads every frame of an Ethernet capture file (pcap or pcapng), in file order.
pub fn read_pcap(path: &Path) -> Result<Vec<Frame>> {
    Ok(super::capture::read_capture(path)?)
}

/// Writes frames to a pcap file (microsecond timestamps, Ethernet), deterministically.
pub struct PcapOut {
    writer: PcapWriter<BufWriter<File>>,
}

impl PcapOut {
    pub fn create(path: &Path) -> Result<PcapOut> {
        let file =
            File::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            snaplen: 65535,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(BufWriter::new(file), header)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(PcapOut { writer })
    }

    pub fn write(&mut self, ts_ns: u64, data: &[u8]) -> Result<()> {
        let pkt = PcapPacket::new(Duration::from_nanos(ts_ns), data.len() as u32, data);
        self.writer.write_packet(&pkt)?;
        Ok(())
    }
}
