//! Connections as `ovs-appctl dpctl/dump-conntrack` prints them (OVS `ct_dpif_format_entry`,
//! not verbose, without statistics):
//! `tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=80),reply=(src=10.0.0.2,dst=10.0.0.1,sport=80,dport=40000),zone=1,mark=5,protoinfo=(state=ESTABLISHED)`.
//! The zone, mark and labels appear only when non-zero; labels print as OVS's `ds_put_hex`
//! does (`0x` and the big-endian value without leading zeros); `protoinfo` only for TCP.

use std::fmt;

use pipeline::flowkey::ipproto;

use crate::key::ConnKey;
use crate::proto::ProtoState;
use crate::shard::Conn;
use crate::tcp::TcpState;
use crate::timeouts::NS_PER_SEC;

/// A copy of one connection, for dumps and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnEntry {
    pub orig: ConnKey,
    pub reply: ConnKey,
    pub zone: u16,
    pub mark: u32,
    pub label: u128,
    /// TCP states of the original and reply directions.
    pub tcp: Option<(TcpState, TcpState)>,
    /// Whole seconds left before it expires.
    pub timeout_secs: u64,
}

impl ConnEntry {
    pub(crate) fn of(conn: &Conn, now_ns: u64) -> ConnEntry {
        ConnEntry {
            orig: conn.orig,
            reply: conn.reply,
            zone: conn.orig.zone,
            mark: conn.mark,
            label: conn.label,
            tcp: match &conn.proto {
                ProtoState::Tcp(t) => Some(t.states()),
                _ => None,
            },
            timeout_secs: conn.expires_ns.saturating_sub(now_ns) / NS_PER_SEC,
        }
    }

    /// The state `dump-conntrack` prints for a TCP connection.
    pub fn tcp_state(&self) -> Option<TcpState> {
        self.tcp.map(|(o, r)| TcpState::coalesced(o, r))
    }
}

/// OVS `ct_dpif_format_ipproto`.
fn proto_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        ipproto::ICMP => "icmp",
        ipproto::ICMPV6 => "icmpv6",
        ipproto::TCP => "tcp",
        ipproto::UDP => "udp",
        ipproto::SCTP => "sctp",
        136 => "udplite",
        33 => "dccp",
        2 => "igmp",
        _ => return None,
    })
}

/// OVS `ct_dpif_format_tuple`.
fn write_tuple(f: &mut fmt::Formatter<'_>, key: &ConnKey) -> fmt::Result {
    write!(f, "src={},dst={}", key.src_ip(), key.dst_ip())?;
    if key.proto == ipproto::ICMP || key.proto == ipproto::ICMPV6 {
        write!(f, ",id={},type={},code=0", key.sport, key.src_icmp_type)
    } else {
        write!(f, ",sport={},dport={}", key.sport, key.dport)
    }
}

impl fmt::Display for ConnEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match proto_name(self.orig.proto) {
            Some(name) => f.write_str(name)?,
            None => write!(f, "{}", self.orig.proto)?,
        }
        f.write_str(",orig=(")?;
        write_tuple(f, &self.orig)?;
        f.write_str("),reply=(")?;
        write_tuple(f, &self.reply)?;
        f.write_str(")")?;
        if self.zone != 0 {
            write!(f, ",zone={}", self.zone)?;
        }
        if self.mark != 0 {
            write!(f, ",mark={}", self.mark)?;
        }
        if self.label != 0 {
            write!(f, ",labels={:#x}", self.label)?;
        }
        if let Some(state) = self.tcp_state() {
            write!(f, ",protoinfo=(state={})", state.name())?;
        }
        Ok(())
    }
}
