//! Pcap files as a [`PortIo`] inside the daemon. The receive side reads an Ethernet capture
//! (pcap or pcapng, [`capture`]) into memory when the port opens and replays its frames in
//! file order, as fast as polled, once or (`loop=true`) forever. The transmit side writes every frame it is given to a new pcap file
//! (microsecond timestamps of the wall clock, one reading per burst) through a 64 KiB buffer
//! that is flushed when a second has passed since the last flush (checked on every `tx_burst`
//! and `poll`), by [`PcapPort::flush`], and when the port drops. The file header comes from
//! `pcap-file`; the 16-byte record headers are written here because `pcap-file`'s writer
//! cannot be flushed without giving up its file.

pub mod capture;
pub mod file;
pub mod options;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pcap_file::pcap::PcapHeader;
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use crate::{PortError, PortIo, PortLoss, PortLosses, QueueInfo};

/// Bytes of a frame the written file keeps (its snap length).
const SNAPLEN: u32 = 65535;
/// Longest the written data may sit in the buffer while the port is polled.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Counters of a pcap port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcapCounters {
    /// Frames replayed from the rx file.
    pub rx_replayed: u64,
    /// Times the replay wrapped around (`loop=true`).
    pub rx_loops: u64,
    /// Frames written to the tx file.
    pub tx_written: u64,
    /// Frames not written because the port has no tx file.
    pub tx_no_file: u64,
    /// Frames not written because the file could not be written.
    pub tx_errors: u64,
}

struct TxFile {
    out: BufWriter<File>,
    path: PathBuf,
    dirty: bool,
    last_flush: Instant,
}

/// A pcap-file port.
pub struct PcapPort {
    /// Every frame of the rx file, back to back; `frames` indexes it.
    data: Vec<u8>,
    frames: Vec<Range<usize>>,
    next: usize,
    looping: bool,
    rx_path: Option<PathBuf>,
    tx: Option<TxFile>,
    counters: PcapCounters,
}

/// A failed file step: what was done to which file, and `pcap-file`'s error.
type StepError = (String, PcapError);

/// The frames of a pcap file, back to back in one buffer.
struct Recording {
    data: Vec<u8>,
    frames: Vec<Range<usize>>,
}

/// Every frame of the Ethernet capture file (pcap or pcapng) at `path`.
fn read_frames(path: &Path) -> Result<Recording, capture::CaptureError> {
    let mut data = Vec::new();
    let mut frames = Vec::new();
    for f in capture::read_capture(path)? {
        let start = data.len();
        data.extend_from_slice(&f.data);
        frames.push(start..data.len());
    }
    Ok(Recording { data, frames })
}

impl PcapPort {
    /// Opens a port replaying `rx` (once, or forever with `looping`) and writing to `tx`
    /// (created or truncated). Errors name `port`, the step and the file.
    pub fn open(
        port: &str,
        rx: Option<&Path>,
        tx: Option<&Path>,
        looping: bool,
    ) -> Result<PcapPort, PortError> {
        let pcap_err = |(step, source)| PortError::Pcap {
            port: port.to_string(),
            step,
            source,
        };
        let Recording { data, frames } = match rx {
            Some(path) => read_frames(path).map_err(|source| PortError::Capture {
                port: port.to_string(),
                source,
            })?,
            None => Recording {
                data: Vec::new(),
                frames: Vec::new(),
            },
        };
        let tx = match tx {
            Some(path) => Some(create_tx(path).map_err(pcap_err)?),
            None => None,
        };
        Ok(PcapPort {
            data,
            frames,
            next: 0,
            looping,
            rx_path: rx.map(Path::to_path_buf),
            tx,
            counters: PcapCounters::default(),
        })
    }

    /// Frames in the rx file.
    pub fn rx_frames(&self) -> usize {
        self.frames.len()
    }

    /// Whether a non-looping replay has handed out every frame.
    pub fn replay_done(&self) -> bool {
        !self.looping && self.next >= self.frames.len()
    }

    /// What the port counted.
    pub fn pcap_counters(&self) -> PcapCounters {
        self.counters
    }

    /// Writes buffered frames to the tx file now.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if let Some(tx) = &mut self.tx {
            tx.out.flush()?;
            tx.dirty = false;
            tx.last_flush = Instant::now();
        }
        Ok(())
    }

    /// Flushes when data waits and a second passed since the last flush.
    fn flush_if_due(&mut self) {
        let Some(tx) = &mut self.tx else { return };
        if tx.dirty && tx.last_flush.elapsed() >= FLUSH_EVERY {
            if tx.out.flush().is_err() {
                self.counters.tx_errors += 1;
            }
            tx.dirty = false;
            tx.last_flush = Instant::now();
        }
    }
}

fn create_tx(path: &Path) -> Result<TxFile, StepError> {
    let step = |what: &str| format!("{what} tx file {}", path.display());
    let file = File::create(path).map_err(|e| (step("create"), PcapError::IoError(e)))?;
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        snaplen: SNAPLEN,
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::Little,
        ..PcapHeader::default()
    };
    header
        .write_to(&mut out)
        .map_err(|e| (step("write the header of"), e))?;
    out.flush()
        .map_err(|e| (step("write the header of"), PcapError::IoError(e)))?;
    Ok(TxFile {
        out,
        path: path.to_path_buf(),
        dirty: false,
        last_flush: Instant::now(),
    })
}

/// The 16-byte little-endian pcap record header of a frame of `len` bytes at `ts`.
fn record_header(ts: Duration, len: usize) -> [u8; 16] {
    let caplen = (len as u64).min(u64::from(SNAPLEN)) as u32;
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&(ts.as_secs() as u32).to_le_bytes());
    h[4..8].copy_from_slice(&ts.subsec_micros().to_le_bytes());
    h[8..12].copy_from_slice(&caplen.to_le_bytes());
    h[12..16].copy_from_slice(&(len as u32).to_le_bytes());
    h
}

impl PortIo for PcapPort {
    fn rx_burst(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < max {
            if self.next >= self.frames.len() {
                if !self.looping || self.frames.is_empty() {
                    break;
                }
                self.next = 0;
                self.counters.rx_loops += 1;
            }
            let range = self.frames[self.next].clone();
            f(&self.data[range]);
            self.next += 1;
            n += 1;
        }
        self.counters.rx_replayed += n as u64;
        n
    }

    fn tx_burst(&mut self, frames: &[&[u8]]) -> usize {
        let Some(tx) = &mut self.tx else {
            // Taken and dropped: a port with no file to write is a sink, not a full ring.
            self.counters.tx_no_file += frames.len() as u64;
            return frames.len();
        };
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut written = 0;
        for frame in frames {
            let caplen = frame.len().min(SNAPLEN as usize);
            let ok = tx
                .out
                .write_all(&record_header(ts, frame.len()))
                .and_then(|()| tx.out.write_all(&frame[..caplen]));
            if ok.is_err() {
                self.counters.tx_errors += (frames.len() - written) as u64;
                break;
            }
            written += 1;
        }
        tx.dirty |= written > 0;
        self.counters.tx_written += written as u64;
        self.flush_if_due();
        // Taken: written, or lost to a write error (counted).
        frames.len()
    }

    fn losses(&self) -> PortLosses {
        let mut l = PortLosses::default();
        l.add(PortLoss::TxErrors, self.counters.tx_errors);
        l.add(PortLoss::TxLinkDown, self.counters.tx_no_file);
        l
    }

    fn poll(&mut self) {
        self.flush_if_due();
    }

    fn rx_fd(&self) -> Option<RawFd> {
        None
    }

    fn info(&self) -> QueueInfo {
        let mut mode = String::new();
        if let Some(rx) = &self.rx_path {
            mode.push_str(&format!(
                "rx {} ({} frames)",
                rx.display(),
                self.frames.len()
            ));
            if self.looping {
                mode.push_str(" looping");
            }
        }
        if let Some(tx) = &self.tx {
            if !mode.is_empty() {
                mode.push_str(", ");
            }
            mode.push_str(&format!("tx {}", tx.path.display()));
        }
        QueueInfo { kind: "pcap", mode }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = self.counters;
        vec![
            ("rx-replayed", c.rx_replayed),
            ("rx-loops", c.rx_loops),
            ("tx-written", c.tx_written),
            ("tx-no-file", c.tx_no_file),
            ("tx-errors", c.tx_errors),
        ]
    }
}

impl Drop for PcapPort {
    fn drop(&mut self) {
        // Nobody is left to tell; what could not be written is lost either way.
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::file::{read_pcap, PcapOut};

    fn frame(i: u8, len: usize) -> Vec<u8> {
        (0..len).map(|j| (j as u8).wrapping_mul(3) ^ i).collect()
    }

    fn rx_all(port: &mut PcapPort, max: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        port.rx_burst(max, &mut |b| out.push(b.to_vec()));
        out
    }

    #[test]
    fn record_header_bytes() {
        let h = record_header(Duration::new(0x0102_0304, 5_006_000), 0x1234);
        assert_eq!(
            h,
            [
                0x04, 0x03, 0x02, 0x01, // seconds
                0x8e, 0x13, 0x00, 0x00, // 5006 microseconds
                0x34, 0x12, 0x00, 0x00, // captured
                0x34, 0x12, 0x00, 0x00, // on the wire
            ]
        );
    }

    #[test]
    fn replays_once_then_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.pcap");
        let frames: Vec<Vec<u8>> = (0..5).map(|i| frame(i, 60 + 10 * i as usize)).collect();
        let mut out = PcapOut::create(&path).unwrap();
        for (i, f) in frames.iter().enumerate() {
            out.write(i as u64 * 1000, f).unwrap();
        }
        drop(out);

        let mut port = PcapPort::open("p", Some(&path), None, false).unwrap();
        assert_eq!(port.rx_frames(), 5);
        assert_eq!(rx_all(&mut port, 3), frames[..3]);
        assert_eq!(rx_all(&mut port, 3), frames[3..]);
        assert!(port.replay_done());
        assert!(rx_all(&mut port, 3).is_empty());
        assert_eq!(port.pcap_counters().rx_replayed, 5);
        // No tx file: taken and dropped, counted.
        assert_eq!(port.tx_burst(&[&frames[0]]), 1, "taken and dropped");
        assert_eq!(port.pcap_counters().tx_no_file, 1);
        assert_eq!(port.rx_fd(), None);
    }

    #[test]
    fn loops_forever_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.pcap");
        let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(i, 64)).collect();
        let mut out = PcapOut::create(&path).unwrap();
        for f in &frames {
            out.write(0, f).unwrap();
        }
        drop(out);
        let mut port = PcapPort::open("p", Some(&path), None, true).unwrap();
        let got = rx_all(&mut port, 8);
        assert_eq!(got.len(), 8);
        for (i, f) in got.iter().enumerate() {
            assert_eq!(f, &frames[i % 3], "frame {i}");
        }
        assert_eq!(port.pcap_counters().rx_loops, 2);
        assert!(!port.replay_done());
    }

    #[test]
    fn written_frames_read_back_byte_exact_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pcap");
        let frames: Vec<Vec<u8>> = (0..40).map(|i| frame(i, 60 + i as usize * 37)).collect();
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        {
            let mut port = PcapPort::open("p", None, Some(&path), false).unwrap();
            let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
            assert_eq!(port.tx_burst(&refs[..25]), 25);
            assert_eq!(port.tx_burst(&refs[25..]), 15);
            assert_eq!(port.pcap_counters().tx_written, 40);
            assert_eq!(
                rx_all(&mut port, 4).len(),
                0,
                "no rx file, nothing to replay"
            );
        }
        let back = read_pcap(&path).unwrap();
        assert_eq!(back.len(), 40);
        for (i, (b, f)) in back.iter().zip(&frames).enumerate() {
            assert_eq!(&b.data, f, "frame {i}");
            assert!(
                b.ts_ns / 1000 >= before.as_micros() as u64 - 1,
                "wall-clock time"
            );
        }
    }

    #[test]
    fn flush_makes_written_frames_visible_while_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pcap");
        let mut port = PcapPort::open("p", None, Some(&path), false).unwrap();
        assert_eq!(read_pcap(&path).unwrap().len(), 0, "header written at open");
        let f = frame(7, 100);
        port.tx_burst(&[&f]);
        port.flush().unwrap();
        let back = read_pcap(&path).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].data, f);
    }

    #[test]
    fn round_trip_through_two_ports() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.pcap");
        let b = dir.path().join("b.pcap");
        let frames: Vec<Vec<u8>> = (0..10).map(|i| frame(i, 1514 - i as usize)).collect();
        {
            let mut w = PcapPort::open("w", None, Some(&a), false).unwrap();
            let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
            w.tx_burst(&refs);
        }
        {
            let mut r = PcapPort::open("r", Some(&a), Some(&b), false).unwrap();
            let got = rx_all(&mut r, 64);
            assert_eq!(got, frames);
            let refs: Vec<&[u8]> = got.iter().map(|f| f.as_slice()).collect();
            assert_eq!(r.tx_burst(&refs), 10);
        }
        let back: Vec<Vec<u8>> = read_pcap(&b).unwrap().into_iter().map(|f| f.data).collect();
        assert_eq!(back, frames);
    }

    #[test]
    fn open_errors_name_the_port_the_step_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pcap");
        let err = PcapPort::open("cap0", Some(&missing), None, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("port \"cap0\": rx file: "), "{err}");
        assert!(err.contains("missing.pcap: cannot read"), "{err}");

        let garbage = dir.path().join("garbage.pcap");
        std::fs::write(&garbage, b"this is not a pcap file at all").unwrap();
        let err = PcapPort::open("cap0", Some(&garbage), None, false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.ends_with("garbage.pcap: not a capture file (neither pcap nor pcapng)"),
            "{err}"
        );

        let no_dir = dir.path().join("nope").join("out.pcap");
        let err = PcapPort::open("cap0", None, Some(&no_dir), false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("create tx file"), "{err}");
    }
}
