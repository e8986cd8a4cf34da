//! TCP tracking after Open vSwitch's `lib/conntrack-tcp.c`, itself pf's: each direction keeps
//! the highest sequence number it sent (`seqlo`), the highest the other end may send
//! (`seqhi`: acknowledged + window), its largest window and its window-scale factor, and a
//! state. A segment is valid when its data lies within the window the other end advertised,
//! it is not more than a window behind, and it acknowledges nothing beyond what was sent (Guido
//! van Rooij's algorithm); a RST must also match the sequence exactly (or off by one).
//!
//! Arithmetic is on 32-bit sequence numbers modulo 2^32, as in the C code; every shift is of a
//! 16-bit window by at most 14, so nothing overflows.

use crate::outcome::CtInvalid;
use crate::packet::{tcp_flags as f, TcpSegment};
use crate::proto::Update;
use crate::timeouts::Timeout;

/// TCP states, with the values of OVS's `ct_dpif_tcp_state` (the order matters: the tracker
/// compares them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
#[repr(u8)]
pub enum TcpState {
    #[default]
    Closed = 0,
    Listen,
    SynSent,
    SynRecv,
    Established,
    CloseWait,
    FinWait1,
    Closing,
    LastAck,
    FinWait2,
    TimeWait,
}

impl TcpState {
    /// OVS's name of the state.
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST_ACK",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::TimeWait => "TIME_WAIT",
        }
    }

    /// The state `dump-conntrack` prints for a connection (OVS `coalesce_tcp_state` of the
    /// larger of the two directions' states).
    pub fn coalesced(orig: TcpState, reply: TcpState) -> TcpState {
        match orig.max(reply) {
            TcpState::FinWait2 => TcpState::TimeWait,
            TcpState::SynRecv => TcpState::Established,
            s => s,
        }
    }
}

const MAX_WSCALE: u8 = 14;
/// The peer sent a window-scale option.
const WSCALE_FLAG: u8 = 0x80;
/// Picked up mid-stream: the scale is unknown, assume the largest.
const WSCALE_UNKNOWN: u8 = 0x40;
const WSCALE_MASK: u8 = 0x0f;
/// OVS `MAXACKWINDOW`: 0xffff + 1500 ("an arbitrary fudge factor").
const MAX_ACK_WINDOW: i64 = 0xffff + 1500;

fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn seq_geq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// One direction of a connection (OVS `struct tcp_peer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TcpPeer {
    /// Highest sequence number sent.
    pub(crate) seqlo: u32,
    /// Highest the other end acknowledged plus its window.
    pub(crate) seqhi: u32,
    /// Largest window seen (unscaled).
    pub(crate) max_win: u16,
    /// Window scale with the `WSCALE_*` flags.
    pub(crate) wscale: u8,
    pub(crate) state: TcpState,
}

/// Both directions: `[original, reply]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TcpConn {
    pub(crate) peers: [TcpPeer; 2],
}

/// OVS `tcp_invalid_flags` (from pf's normalizer).
pub(crate) fn invalid_flags(flags: u16) -> bool {
    if flags & f::SYN != 0 {
        if flags & (f::RST | f::FIN) != 0 {
            return true;
        }
    } else if flags & (f::ACK | f::RST) == 0 {
        return true;
    }
    flags & f::ACK == 0 && flags & (f::FIN | f::PSH | f::URG) != 0
}

/// May this segment open a connection? A SYN may, and so may a segment of an established
/// stream (OVS picks those up); a SYN-ACK may not (half-open).
pub(crate) fn valid_new(seg: &TcpSegment) -> bool {
    let syn_ack = f::SYN | f::ACK;
    !invalid_flags(seg.flags) && seg.flags & syn_ack != syn_ack
}

/// True when the segment is a plain SYN (no ACK).
pub(crate) fn is_syn_only(seg: &TcpSegment) -> bool {
    seg.flags & (f::SYN | f::ACK) == f::SYN
}

/// The window scale the segment offers, with the flag (OVS `tcp_get_wscale`).
fn offered_wscale(seg: &TcpSegment) -> u8 {
    match seg.wscale {
        Some(shift) => shift.min(MAX_WSCALE) | WSCALE_FLAG,
        None => 0,
    }
}

impl TcpConn {
    /// The state after the first segment (OVS `tcp_new_conn`).
    pub(crate) fn new(seg: &TcpSegment) -> TcpConn {
        let mut src = TcpPeer {
            seqlo: seg.seq,
            seqhi: seg.seq.wrapping_add(seg.payload_len).wrapping_add(1),
            state: TcpState::SynSent,
            ..TcpPeer::default()
        };
        let mut dst = TcpPeer {
            seqhi: 1,
            max_win: 1,
            state: TcpState::Closed,
            ..TcpPeer::default()
        };
        if seg.flags & f::SYN != 0 {
            src.seqhi = src.seqhi.wrapping_add(1);
            src.wscale = offered_wscale(seg);
        } else {
            src.wscale = WSCALE_UNKNOWN;
            dst.wscale = WSCALE_UNKNOWN;
        }
        src.max_win = seg.window.max(1);
        let sws = src.wscale & WSCALE_MASK;
        if sws != 0 {
            src.max_win = div_ceil_shift(u32::from(src.max_win), sws);
        }
        if seg.flags & f::FIN != 0 {
            src.seqhi = src.seqhi.wrapping_add(1);
        }
        TcpConn { peers: [src, dst] }
    }

    /// Tracks one segment sent in the `reply` direction (OVS `tcp_conn_update`). With
    /// `seq_check` false the window checks pass everything (OVS `tcp_seq_chk=false`).
    pub(crate) fn update(
        &mut self,
        seg: &TcpSegment,
        reply: bool,
        seq_check: bool,
    ) -> (Update, Option<Timeout>) {
        let flags = seg.flags;
        if invalid_flags(flags) {
            return (Update::Invalid(CtInvalid::TcpFlags), None);
        }
        let [orig, rpl] = &mut self.peers;
        let (src, dst) = if reply { (rpl, orig) } else { (orig, rpl) };

        if is_syn_only(seg) {
            if dst.state >= TcpState::FinWait2 && src.state >= TcpState::FinWait2 {
                src.state = TcpState::Closed;
                dst.state = TcpState::Closed;
                return (Update::Reopen, None);
            } else if src.state <= TcpState::SynSent {
                src.state = TcpState::SynSent;
                return (Update::ValidNew, Some(Timeout::TcpFirstPacket));
            }
        }
        track(src, dst, seg, seq_check)
    }

    /// The two directions' states.
    pub(crate) fn states(&self) -> (TcpState, TcpState) {
        let [o, r] = &self.peers;
        (o.state, r.state)
    }
}

/// `ceil(value / 2^shift)` as a window (fits: value is a 16-bit window).
fn div_ceil_shift(value: u32, shift: u8) -> u16 {
    value.div_ceil(1 << shift) as u16
}

/// The sequence tracking proper, once SYN handling is done.
fn track(
    src: &mut TcpPeer,
    dst: &mut TcpPeer,
    seg: &TcpSegment,
    seq_check: bool,
) -> (Update, Option<Timeout>) {
    let flags = seg.flags;
    let no_syn = flags & f::SYN == 0;
    let (mut sws, mut dws) = (0u8, 0u8);
    if src.wscale & WSCALE_FLAG != 0 && dst.wscale & WSCALE_FLAG != 0 && no_syn {
        sws = src.wscale & WSCALE_MASK;
        dws = dst.wscale & WSCALE_MASK;
    } else if src.wscale & WSCALE_UNKNOWN != 0 && dst.wscale & WSCALE_UNKNOWN != 0 && no_syn {
        sws = MAX_WSCALE;
        dws = MAX_WSCALE;
    }

    let mut win = seg.window;
    let orig_seq = seg.seq;
    let mut seq = orig_seq;
    let mut ack = seg.ack;
    let mut end = seq.wrapping_add(seg.payload_len);
    if flags & f::SYN != 0 {
        end = end.wrapping_add(1);
    }
    if flags & f::FIN != 0 {
        end = end.wrapping_add(1);
    }
    let mut check_ackskew = true;

    if src.state < TcpState::SynSent {
        // First packet from this end.
        if flags & f::SYN != 0 && dst.wscale & WSCALE_FLAG != 0 {
            src.wscale = offered_wscale(seg);
            if src.wscale & WSCALE_FLAG != 0 {
                // Remove the scale factor from the initial window.
                sws = src.wscale & WSCALE_MASK;
                win = div_ceil_shift(u32::from(win), sws);
                dws = dst.wscale & WSCALE_MASK;
            } else {
                // The other end offered scaling, this one did not: no scaling either way.
                dst.max_win = (u32::from(dst.max_win) << (dst.wscale & WSCALE_MASK)) as u16;
                dst.wscale = 0;
            }
        }
        src.seqlo = seq;
        src.state = TcpState::SynSent;
        // May need to slide the window (seqhi may be set from a mid-stream pickup).
        let reach = end.wrapping_add((u32::from(dst.max_win) << dws).max(1));
        if src.seqhi == 1 || seq_geq(reach, src.seqhi) {
            src.seqhi = reach;
            check_ackskew = false;
        }
        if win > src.max_win {
            src.max_win = win;
        }
    }

    if flags & f::ACK == 0 {
        // Let it pass the ack skew check.
        ack = dst.seqlo;
    } else if ack == 0 && flags & (f::ACK | f::RST) == (f::ACK | f::RST) {
        // Broken stacks send RST|ACK with no ack number.
        ack = dst.seqlo;
    }

    if seq == end {
        // Ease sequencing restrictions on segments without data.
        seq = src.seqlo;
        end = seq;
    }

    let ackskew = if check_ackskew {
        i64::from(dst.seqlo.wrapping_sub(ack) as i32)
    } else {
        0
    };
    let dst_window = u32::from(dst.max_win) << dws;
    let rst_ok = flags & f::RST == 0
        || orig_seq == src.seqlo
        || orig_seq == src.seqlo.wrapping_add(1)
        || orig_seq.wrapping_add(1) == src.seqlo;
    let in_window = seq_geq(src.seqhi, end)
        && seq_geq(seq, src.seqlo.wrapping_sub(dst_window))
        && ackskew >= -MAX_ACK_WINDOW
        && ackskew <= (MAX_ACK_WINDOW << sws)
        && rst_ok;

    if in_window || !seq_check {
        synchronize(src, dst, win, sws, ack, end);
        if flags & f::SYN != 0 && src.state < TcpState::SynSent {
            src.state = TcpState::SynSent;
        }
        if flags & f::FIN != 0 && src.state < TcpState::Closing {
            src.state = TcpState::Closing;
        }
        if flags & f::ACK != 0 {
            if dst.state == TcpState::SynSent {
                dst.state = TcpState::Established;
            } else if dst.state == TcpState::Closing {
                dst.state = TcpState::FinWait2;
            }
        }
        if flags & f::RST != 0 {
            src.state = TcpState::TimeWait;
            dst.state = TcpState::TimeWait;
        }
        (Update::Valid, Some(timeout_of(src.state, dst.state)))
    } else if (dst.state < TcpState::SynSent
        || dst.state >= TcpState::FinWait2
        || src.state >= TcpState::FinWait2)
        && seq_geq(src.seqhi.wrapping_add(MAX_ACK_WINDOW as u32), end)
        && seq_geq(seq, src.seqlo.wrapping_sub(MAX_ACK_WINDOW as u32))
    {
        // pf's loose rules: SYNs shotgunned before the peer answers, streams picked up after
        // establishment, stray segments right after a close. The timeout is not refreshed, so
        // a flood here cannot keep the entry alive.
        synchronize(src, dst, win, sws, ack, end);
        if flags & f::FIN != 0 && src.state < TcpState::Closing {
            src.state = TcpState::Closing;
        }
        if flags & f::RST != 0 {
            src.state = TcpState::TimeWait;
            dst.state = TcpState::TimeWait;
        }
        (Update::Valid, None)
    } else {
        (Update::Invalid(CtInvalid::TcpWindow), None)
    }
}

/// Updates the windows after an accepted segment.
fn synchronize(src: &mut TcpPeer, dst: &mut TcpPeer, win: u16, sws: u8, ack: u32, end: u32) {
    if src.max_win < win {
        src.max_win = win;
    }
    if seq_gt(end, src.seqlo) {
        src.seqlo = end;
    }
    // Slide the window of what the other end can send.
    let scaled = u32::from(win) << sws;
    if seq_geq(ack.wrapping_add(scaled), dst.seqhi) {
        dst.seqhi = ack.wrapping_add(scaled.max(1));
    }
}

/// The timeout for the states of the two directions (the cascade of `tcp_conn_update`).
fn timeout_of(src: TcpState, dst: TcpState) -> Timeout {
    if src >= TcpState::FinWait2 && dst >= TcpState::FinWait2 {
        Timeout::TcpClosed
    } else if src >= TcpState::Closing && dst >= TcpState::Closing {
        Timeout::TcpFinWait
    } else if src < TcpState::Established || dst < TcpState::Established {
        Timeout::TcpOpening
    } else if src >= TcpState::Closing || dst >= TcpState::Closing {
        Timeout::TcpClosing
    } else {
        Timeout::TcpEstablished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_flag_combinations_are_ovs_ones() {
        assert!(invalid_flags(f::SYN | f::RST));
        assert!(invalid_flags(f::SYN | f::FIN));
        assert!(invalid_flags(0));
        assert!(invalid_flags(f::FIN));
        assert!(invalid_flags(f::RST | f::PSH));
        assert!(!invalid_flags(f::SYN));
        assert!(!invalid_flags(f::SYN | f::ACK));
        assert!(!invalid_flags(f::RST));
        assert!(!invalid_flags(f::FIN | f::ACK | f::PSH));
    }

    #[test]
    fn window_scale_is_taken_off_the_syn_window() {
        let syn = TcpSegment {
            flags: f::SYN,
            seq: 1000,
            window: 64240,
            wscale: Some(7),
            ..TcpSegment::default()
        };
        let c = TcpConn::new(&syn);
        let [o, r] = c.peers;
        assert_eq!(o.wscale, 7 | WSCALE_FLAG);
        assert_eq!(o.max_win, 502); // ceil(64240 / 128)
        assert_eq!(o.seqhi, 1002);
        assert_eq!((r.seqhi, r.max_win, r.state), (1, 1, TcpState::Closed));
    }

    #[test]
    fn coalesced_state_is_what_dump_prints() {
        use TcpState::*;
        assert_eq!(TcpState::coalesced(Established, SynSent), Established);
        assert_eq!(TcpState::coalesced(FinWait2, Closing), TimeWait);
        assert_eq!(TcpState::coalesced(SynRecv, Closed), Established);
    }
}
