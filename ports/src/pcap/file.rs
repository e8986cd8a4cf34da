//! Reading and writing pcap files for pcap ports (replay input, capture output).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::DataLink;

/// One captured frame.
#[derive(Clone, Debug)]
pub struct Frame {
    pub ts_ns: u64,
    pub data: Vec<u8>,
}

/// Reads every frame of an Ethernet pcap file.
pub fn read_pcap(path: &Path) -> Result<Vec<Frame>> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut reader = PcapReader::new(BufReader::new(file))
        .with_context(|| format!("{}: not a pcap file", path.display()))?;
    if reader.header().datalink != DataLink::ETHERNET {
        anyhow::bail!(
            "{}: link type {:?} is not Ethernet",
            path.display(),
            reader.header().datalink
        );
    }
    let mut frames = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.with_context(|| {
            format!(
                "{}: frame {}: truncated file",
                path.display(),
                frames.len() + 1
            )
        })?;
        frames.push(Frame {
            ts_ns: pkt.timestamp.as_nanos() as u64,
            data: pkt.data.into_owned(),
        });
    }
    Ok(frames)
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
