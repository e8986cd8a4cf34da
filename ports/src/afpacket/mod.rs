//! AF_PACKET ports over `libc`: an [`AfPacketPort`] is two packet sockets bound to one
//! interface. The receive socket (`ETH_P_ALL`, `PACKET_IGNORE_OUTGOING`, promiscuous by
//! default) has a `TPACKET_V3` ring of large blocks that the kernel retires when full or after
//! `block_timeout_ms`; `rx_burst` walks retired blocks and hands each back as soon as its last
//! packet was seen. The transmit socket (protocol 0, so it receives nothing) has a `TPACKET_V2`
//! ring of fixed frames with `PACKET_QDISC_BYPASS` and `PACKET_LOSS`; `tx_burst` copies into
//! free frames and kicks the kernel with one `sendto` per burst. Two sockets because the ring
//! version is per socket and V3's block ring suits receive while V2's frame ring suits
//! transmit. The kernel takes VLAN tags out of received frames (veth and most NICs offload
//! them); `rx_burst` puts them back so that the caller sees the frame as it was on the wire.
//! What the kernel did on veth (6.18) is checked by `vecswitch/tests/afpacket.rs`.
#![allow(unsafe_code)]

pub mod options;
pub mod port;
mod ring;

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::sys::{if_index, Mmap};
use ring::{
    RxRing, TpacketReq, TpacketReq3, TxRing, TP_STATUS_CSUMNOTREADY, TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
};

const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_TX_RING: libc::c_int = 13;
const PACKET_LOSS: libc::c_int = 14;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_MR_PROMISC: u16 = 1;
const TPACKET_V2: libc::c_int = 1;
const TPACKET_V3: libc::c_int = 2;
const ETH_P_ALL: u16 = 0x0003;
const ETH_P_8021Q: u16 = 0x8100;

/// Errors of opening an AF_PACKET port and reading its statistics (control plane; the burst
/// calls count instead).
#[derive(Debug, thiserror::Error)]
pub enum AfPacketError {
    /// The named interface does not exist (or the name cannot be one).
    #[error("interface {ifname:?}: no such interface")]
    NoSuchInterface {
        /// The name asked for.
        ifname: String,
    },
    /// A configuration value was refused.
    #[error("{field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A system call or socket option failed.
    #[error("interface {ifname:?}: {what}: {source}")]
    Sys {
        /// The interface of the port.
        ifname: String,
        /// The call or option that failed, e.g. `setsockopt(PACKET_RX_RING)`.
        what: &'static str,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
}

/// Port configuration.
#[derive(Clone, Debug)]
pub struct AfPacketConfig {
    /// Bytes per receive block; a power of two, at least 4096 and at least `frame_size`.
    pub block_size: u32,
    /// Receive blocks in the ring.
    pub block_count: u32,
    /// Bytes per transmit frame (and the nominal receive frame size the V3 request needs); a
    /// power of two from 256 to 65536. Packets longer than `frame_size - 32` are not sent.
    pub frame_size: u32,
    /// Milliseconds after which the kernel retires a partly filled receive block: the
    /// latency at rates that do not fill a block sooner. 1 (the default) is the least the
    /// kernel's timer takes; at a rate that fills blocks sooner it costs nothing.
    pub block_timeout_ms: u32,
    /// Transmit frames in the ring; a multiple of 32.
    pub tx_frames: u32,
    /// Hand transmitted packets straight to the driver (`PACKET_QDISC_BYPASS`).
    pub qdisc_bypass: bool,
    /// Receive frames for every destination (`PACKET_MR_PROMISC`, undone when the socket
    /// closes).
    pub promiscuous: bool,
}

impl Default for AfPacketConfig {
    fn default() -> AfPacketConfig {
        AfPacketConfig {
            block_size: 1 << 20,
            block_count: 8,
            frame_size: 2048,
            block_timeout_ms: 1,
            tx_frames: 512,
            qdisc_bypass: true,
            promiscuous: true,
        }
    }
}

impl AfPacketConfig {
    fn validate(&self) -> Result<(), AfPacketError> {
        let bad = |field, reason| Err(AfPacketError::Config { field, reason });
        if !(256..=65536).contains(&self.frame_size) || !self.frame_size.is_power_of_two() {
            return bad("frame_size", "must be a power of two from 256 to 65536");
        }
        if self.block_size < 4096
            || !self.block_size.is_power_of_two()
            || self.block_size < self.frame_size
        {
            return bad(
                "block_size",
                "must be a power of two, at least 4096 and at least frame_size",
            );
        }
        if self.block_count == 0
            || u64::from(self.block_size) * u64::from(self.block_count) > 1 << 31
        {
            return bad(
                "block_count",
                "must be at least 1 and the ring at most 2 GiB",
            );
        }
        if self.block_timeout_ms == 0 {
            return bad(
                "block_timeout_ms",
                "must be at least 1 (0 means the kernel's guess)",
            );
        }
        if self.tx_frames == 0 || !self.tx_frames.is_multiple_of(32) || self.tx_frames > 1 << 16 {
            return bad("tx_frames", "must be a multiple of 32 from 32 to 65536");
        }
        Ok(())
    }
}

/// Kernel receive counters (`PACKET_STATISTICS`, `struct tpacket_stats_v3`), summed since the
/// port opened (the kernel resets them on every read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AfPacketStats {
    /// Packets that reached the socket, including the dropped ones (`tp_packets`).
    pub packets: u64,
    /// Packets dropped, e.g. because every block was full (`tp_drops`).
    pub drops: u64,
    /// Times the ring froze because every block was with user space (`tp_freeze_q_cnt`).
    pub freeze_q_cnt: u64,
}

/// Counters of what the burst calls skipped or did (hot path, no `Result`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Received packets not handed out because the capture was shorter than the packet.
    pub rx_truncated: u64,
    /// Received packets whose checksum was not yet filled in (`TP_STATUS_CSUMNOTREADY`),
    /// handed out as they are.
    pub rx_csum_not_ready: u64,
    /// Received packets whose VLAN tag the kernel had taken out and `rx_burst` put back.
    pub rx_vlan_restored: u64,
    /// Receive blocks given back unread because their headers pointed outside the block.
    pub rx_bad_blocks: u64,
    /// Packets `tx_burst` dropped because they do not fit a frame.
    pub tx_too_long: u64,
    /// `tx_burst` calls that stopped because no frame was free.
    pub tx_ring_full: u64,
    /// `sendto` kicks issued.
    pub tx_kicks: u64,
    /// Kicks that failed (`EAGAIN`, `ENOBUFS`, ...); the frames stay queued for the next one.
    pub tx_kick_errors: u64,
}

/// An AF_PACKET port on one interface.
pub struct AfPacketPort {
    // Rings before sockets: unmap, then close.
    rx: RxRing,
    tx: TxRing,
    rx_fd: OwnedFd,
    tx_fd: OwnedFd,
    ifname: String,
    ifindex: u32,
    /// Where a frame gets its VLAN tag back; sized for the largest packet a block holds.
    scratch: Vec<u8>,
    counters: PortCounters,
    stats: AfPacketStats,
}

/// A new `AF_PACKET`/`SOCK_RAW` socket with protocol 0: it receives nothing until bound with a
/// protocol, so no packet is queued before the ring exists.
fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(fd, SOL_PACKET, opt, value)`.
fn setsockopt<T>(fd: &OwnedFd, opt: libc::c_int, value: &T) -> io::Result<()> {
    crate::sys::setsockopt(fd, libc::SOL_PACKET, opt, value)
}

/// Binds a packet socket to `ifindex` for `protocol` (host order; 0 receives nothing).
fn bind(fd: &OwnedFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: `sockaddr_ll` is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: `addr` is a valid `sockaddr_ll` of the length passed.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `struct packet_mreq`.
#[repr(C)]
struct PacketMreq {
    mr_ifindex: i32,
    mr_type: u16,
    mr_alen: u16,
    mr_address: [u8; 8],
}

impl AfPacketPort {
    /// Opens a port on `ifname`: the receive socket with its mapped V3 ring, bound with
    /// `ETH_P_ALL`, and the transmit socket with its mapped V2 ring.
    pub fn open(ifname: &str, config: &AfPacketConfig) -> Result<AfPacketPort, AfPacketError> {
        config.validate()?;
        let ifindex = if_index(ifname).ok_or_else(|| AfPacketError::NoSuchInterface {
            ifname: ifname.to_string(),
        })?;
        let sys = |what: &'static str| {
            move |source| AfPacketError::Sys {
                ifname: ifname.to_string(),
                what,
                source,
            }
        };

        let rx_fd = packet_socket().map_err(sys("socket(AF_PACKET) for rx"))?;
        setsockopt(&rx_fd, PACKET_VERSION, &TPACKET_V3)
            .map_err(sys("setsockopt(PACKET_VERSION, TPACKET_V3)"))?;
        let req3 = TpacketReq3 {
            tp_block_size: config.block_size,
            tp_block_nr: config.block_count,
            tp_frame_size: config.frame_size,
            tp_frame_nr: config.block_count * (config.block_size / config.frame_size),
            tp_retire_blk_tov: config.block_timeout_ms,
            ..TpacketReq3::default()
        };
        setsockopt(&rx_fd, PACKET_RX_RING, &req3).map_err(sys("setsockopt(PACKET_RX_RING)"))?;
        let rx_len = config.block_size as usize * config.block_count as usize;
        let rx_map = Mmap::ring(&rx_fd, rx_len, 0).map_err(sys("mmap(rx ring)"))?;
        setsockopt(&rx_fd, PACKET_IGNORE_OUTGOING, &1 as &libc::c_int)
            .map_err(sys("setsockopt(PACKET_IGNORE_OUTGOING)"))?;
        if config.promiscuous {
            let mreq = PacketMreq {
                mr_ifindex: ifindex as i32,
                mr_type: PACKET_MR_PROMISC,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setsockopt(&rx_fd, PACKET_ADD_MEMBERSHIP, &mreq)
                .map_err(sys("setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)"))?;
        }
        bind(&rx_fd, ifindex, ETH_P_ALL).map_err(sys("bind(rx, ETH_P_ALL)"))?;

        let tx_fd = packet_socket().map_err(sys("socket(AF_PACKET) for tx"))?;
        setsockopt(&tx_fd, PACKET_VERSION, &TPACKET_V2)
            .map_err(sys("setsockopt(PACKET_VERSION, TPACKET_V2)"))?;
        // A malformed frame is skipped instead of stalling the ring.
        setsockopt(&tx_fd, PACKET_LOSS, &1 as &libc::c_int)
            .map_err(sys("setsockopt(PACKET_LOSS)"))?;
        if config.qdisc_bypass {
            setsockopt(&tx_fd, PACKET_QDISC_BYPASS, &1 as &libc::c_int)
                .map_err(sys("setsockopt(PACKET_QDISC_BYPASS)"))?;
        }
        let per_block = 32;
        let req = TpacketReq {
            tp_block_size: config.frame_size * per_block,
            tp_block_nr: config.tx_frames / per_block,
            tp_frame_size: config.frame_size,
            tp_frame_nr: config.tx_frames,
        };
        setsockopt(&tx_fd, PACKET_TX_RING, &req).map_err(sys("setsockopt(PACKET_TX_RING)"))?;
        let tx_len = config.frame_size as usize * config.tx_frames as usize;
        let tx_map = Mmap::ring(&tx_fd, tx_len, 0).map_err(sys("mmap(tx ring)"))?;
        bind(&tx_fd, ifindex, 0).map_err(sys("bind(tx)"))?;

        Ok(AfPacketPort {
            rx: RxRing::new(
                rx_map,
                config.block_size as usize,
                config.block_count as usize,
            ),
            tx: TxRing::new(tx_map, config.frame_size as usize, config.tx_frames),
            rx_fd,
            tx_fd,
            ifname: ifname.to_string(),
            ifindex,
            scratch: vec![0; config.block_size as usize + 4],
            counters: PortCounters::default(),
            stats: AfPacketStats::default(),
        })
    }

    /// Hands up to `max` received frames to `f`, byte for byte as they were on the wire (VLAN
    /// tag included), and returns how many. The slice lives only for the call of `f`. Never
    /// blocks: a frame shows up once its block is retired, at the latest `block_timeout_ms`
    /// after it arrived.
    pub fn rx_burst(&mut self, max: u32, mut f: impl FnMut(&[u8])) -> u32 {
        let counters = &mut self.counters;
        let scratch = &mut self.scratch;
        let mut bad = 0;
        let mut handed = 0;
        self.rx.burst(max, &mut bad, |p| {
            if p.data.len() < p.wire_len as usize {
                counters.rx_truncated += 1;
                return;
            }
            if p.status & TP_STATUS_CSUMNOTREADY != 0 {
                counters.rx_csum_not_ready += 1;
            }
            if p.status & TP_STATUS_VLAN_VALID != 0 && p.data.len() >= 12 {
                let tpid = if p.status & TP_STATUS_VLAN_TPID_VALID != 0 && p.vlan_tpid != 0 {
                    p.vlan_tpid
                } else {
                    ETH_P_8021Q
                };
                let len = p.data.len() + 4;
                if let Some(out) = scratch.get_mut(..len) {
                    out[..12].copy_from_slice(&p.data[..12]);
                    out[12..14].copy_from_slice(&tpid.to_be_bytes());
                    out[14..16].copy_from_slice(&p.vlan_tci.to_be_bytes());
                    out[16..].copy_from_slice(&p.data[12..]);
                    counters.rx_vlan_restored += 1;
                    handed += 1;
                    f(out);
                } else {
                    counters.rx_truncated += 1;
                }
                return;
            }
            handed += 1;
            f(p.data);
        });
        self.counters.rx_bad_blocks += bad;
        handed
    }

    /// Queues `packets` from the front until the ring is full, then kicks the kernel once.
    /// Returns how many it took; the caller keeps the rest for the next burst. A packet longer
    /// than [`Self::max_tx_len`] is taken and dropped (counted in `tx_too_long`).
    pub fn tx_burst(&mut self, packets: &[&[u8]]) -> u32 {
        let max = self.tx.max_packet();
        let mut taken = 0u32;
        let mut full = false;
        for p in packets {
            if p.len() > max {
                self.counters.tx_too_long += 1;
            } else if !self.tx.put(p) {
                full = true;
                break;
            }
            taken += 1;
        }
        if full {
            self.counters.tx_ring_full += 1;
        }
        // A full ring may hold frames an earlier kick failed to send: kick then too.
        if taken > 0 || full {
            self.kick();
        }
        taken
    }

    /// Asks the kernel to send every queued frame, without waiting.
    fn kick(&mut self) {
        self.counters.tx_kicks += 1;
        // SAFETY: a zero-length send with no buffer and no address only tells the kernel to
        // walk the tx ring.
        let ret = unsafe {
            libc::sendto(
                self.tx_fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if ret < 0 {
            self.counters.tx_kick_errors += 1;
        }
    }

    /// Transmit frames the kernel has not given back yet. Walks the whole ring: for draining
    /// before shutdown and for tests, not for every iteration of a PMD loop.
    pub fn tx_in_flight(&mut self) -> u32 {
        let n = self.tx.in_flight();
        if n > 0 {
            self.kick();
        }
        n
    }

    /// The longest packet `tx_burst` sends (`frame_size - 32`).
    pub fn max_tx_len(&self) -> usize {
        self.tx.max_packet()
    }

    /// Kernel receive counters summed since the port opened.
    pub fn stats(&mut self) -> Result<AfPacketStats, AfPacketError> {
        let mut st = [0u32; 3];
        let mut len = size_of::<[u32; 3]>() as libc::socklen_t;
        // SAFETY: `st` is writable for `len` bytes (`struct tpacket_stats_v3` is three `u32`)
        // and `len` is a valid in/out length.
        let ret = unsafe {
            libc::getsockopt(
                self.rx_fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                st.as_mut_ptr() as *mut libc::c_void,
                &mut len,
            )
        };
        if ret < 0 {
            return Err(AfPacketError::Sys {
                ifname: self.ifname.clone(),
                what: "getsockopt(PACKET_STATISTICS)",
                source: io::Error::last_os_error(),
            });
        }
        self.stats.packets += u64::from(st[0]);
        self.stats.drops += u64::from(st[1]);
        self.stats.freeze_q_cnt += u64::from(st[2]);
        Ok(self.stats)
    }

    /// What the burst calls counted.
    pub fn counters(&self) -> PortCounters {
        self.counters
    }

    /// The interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The receive socket, for `poll(2)` when the caller wants to sleep instead of spin.
    pub fn rx_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.rx_fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert!(AfPacketConfig::default().validate().is_ok());
    }

    #[test]
    fn bad_config_names_the_field() {
        let cases: [(&str, AfPacketConfig); 5] = [
            (
                "frame_size",
                AfPacketConfig {
                    frame_size: 1000,
                    ..AfPacketConfig::default()
                },
            ),
            (
                "block_size",
                AfPacketConfig {
                    block_size: 2048,
                    frame_size: 4096,
                    ..AfPacketConfig::default()
                },
            ),
            (
                "block_count",
                AfPacketConfig {
                    block_count: 0,
                    ..AfPacketConfig::default()
                },
            ),
            (
                "block_timeout_ms",
                AfPacketConfig {
                    block_timeout_ms: 0,
                    ..AfPacketConfig::default()
                },
            ),
            (
                "tx_frames",
                AfPacketConfig {
                    tx_frames: 100,
                    ..AfPacketConfig::default()
                },
            ),
        ];
        for (want, config) in cases {
            match AfPacketPort::open("lo", &config) {
                Err(AfPacketError::Config { field, .. }) => assert_eq!(field, want),
                Err(e) => panic!("{want}: unexpected error {e}"),
                Ok(_) => panic!("{want}: accepted"),
            }
        }
    }

    #[test]
    fn impossible_interface_names_are_no_such_interface() {
        for name in ["", "a-name-much-too-long-for-linux", "nul\0inside"] {
            assert!(matches!(
                AfPacketPort::open(name, &AfPacketConfig::default()),
                Err(AfPacketError::NoSuchInterface { ifname }) if ifname == name
            ));
        }
    }
}
