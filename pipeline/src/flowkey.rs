//! The flow key: every header field the classifier can match, in one fixed 192-byte layout.
//!
//! The key is `#[repr(C)]` with no implicit padding so that it can be viewed as 24 `u64`
//! words. Masks are keys too (a set bit means "this bit was consulted"), so masking, hashing
//! and comparing are word loops with no per-field code. Addresses and ports are stored in host
//! byte order as numbers (10.0.0.1 is `0x0a00_0001`); MAC addresses and IPv6 addresses as
//! bytes in wire order.
//!
//! Room is reserved from the start for what later graph nodes fill in: tunnel metadata
//! (`tun_*`, Geneve options as raw TLV bytes), the recirculation id and the connection
//! tracking state (`ct_*`, with the connection's original-direction tuple in the last words,
//! after the packet's own headers). Register and `metadata` fields of OpenFlow live in the translation
//! context, not here: the datapath never sees them (as in Open vSwitch).

use bytemuck::{Pod, Zeroable};

/// Number of 64-bit words in a [`FlowKey`].
pub const KEY_WORDS: usize = 30;

/// The words a parser writes: from `dl_dst` up to (not including) `ct_nw_src`. The words
/// before are metadata (tunnel, recirculation, conntrack, in_port) and so are the words after
/// (the connection's original-direction tuple): a packet keeps them when parsed again.
pub const PACKET_WORDS: core::ops::Range<usize> = L2_WORD..CT_TUPLE_WORD;
/// First word of the packet's own headers.
const L2_WORD: usize = core::mem::offset_of!(FlowKey, dl_dst) / 8;
/// First word of the conntrack original-direction tuple.
pub const CT_TUPLE_WORD: usize = core::mem::offset_of!(FlowKey, ct_nw_src) / 8;
const _: () = assert!(core::mem::offset_of!(FlowKey, dl_dst) % 8 == 0);
const _: () = assert!(core::mem::offset_of!(FlowKey, ct_nw_src) % 8 == 0);

/// Bytes of Geneve option TLVs a key can carry.
pub const TUN_OPTS_LEN: usize = 32;

/// `vlan_tci` bit meaning "a VLAN header is present" (OVS uses the CFI bit the same way).
pub const VLAN_PRESENT: u16 = 0x1000;
/// VLAN id bits of a TCI.
pub const VLAN_VID_MASK: u16 = 0x0fff;
/// Priority code point bits of a TCI.
pub const VLAN_PCP_MASK: u16 = 0xe000;
/// Shift of the PCP inside a TCI.
pub const VLAN_PCP_SHIFT: u16 = 13;

/// `nw_frag` bit: the packet is a fragment (first or later).
pub const FRAG_ANY: u8 = 0x01;
/// `nw_frag` bit: the packet is a later fragment (offset != 0); its L4 fields are zero.
pub const FRAG_LATER: u8 = 0x02;

/// `tun_flags` bit: a tunnel header was present (the packet was decapsulated).
pub const TUN_FLAG_PRESENT: u16 = 0x0001;
/// `tun_flags` bit: the outer UDP checksum was set.
pub const TUN_FLAG_CSUM: u16 = 0x0002;
/// `tun_flags` bit: the outer IPv4 header had DF set.
pub const TUN_FLAG_DF: u16 = 0x0004;
/// `tun_flags` bit: the Geneve header had the O bit set (an OAM packet, not tenant data).
pub const TUN_FLAG_OAM: u16 = 0x0008;
/// `tun_flags` bit: a Geneve option marked critical (top bit of its type) was present.
pub const TUN_FLAG_CRITICAL: u16 = 0x0010;

/// Conntrack state bits (`ct_state`), with Open vSwitch's values.
pub mod ct_state {
    pub const NEW: u8 = 0x01;
    pub const ESTABLISHED: u8 = 0x02;
    pub const RELATED: u8 = 0x04;
    pub const REPLY: u8 = 0x08;
    pub const INVALID: u8 = 0x10;
    pub const TRACKED: u8 = 0x20;
    pub const SRC_NAT: u8 = 0x40;
    pub const DST_NAT: u8 = 0x80;
}

/// Ethertypes the parser knows.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const IPV6: u16 = 0x86dd;
    /// Frames with a length field instead of a type (802.3) get this `dl_type`, as in OVS.
    pub const NONE: u16 = 0x05ff;
}

/// IP protocol numbers the parser knows.
pub mod ipproto {
    pub const HOPOPTS: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ICMPV6: u8 = 58;
    pub const NONE: u8 = 59;
    pub const DSTOPTS: u8 = 60;
    pub const SCTP: u8 = 132;
}

/// Every field the classifier can match. See the module documentation for the conventions.
///
/// ARP reuses fields as Open vSwitch does: `nw_proto` holds the opcode (low byte), `nw_src` /
/// `nw_dst` the sender / target protocol addresses and `arp_sha` / `arp_tha` the hardware
/// addresses. ICMP and ICMPv6 put type and code in `tp_src` / `tp_dst`; neighbour discovery
/// puts the source / target link-layer options in `arp_sha` / `arp_tha`.
#[derive(Clone, Copy, Pod, Zeroable, PartialEq, Eq, Hash, Debug, Default)]
#[repr(C)]
pub struct FlowKey {
    pub tun_id: u64,
    pub tun_src: u32,
    pub tun_dst: u32,
    pub tun_flags: u16,
    pub tun_tp_src: u16,
    pub tun_tp_dst: u16,
    pub tun_tos: u8,
    pub tun_ttl: u8,
    /// Geneve options as they were on the wire (class, type, length, data), zero padded;
    /// when they are longer than this (`tun_opts_len` past `TUN_OPTS_LEN`), the digest under
    /// which `tunnels::OptionStore` keeps them.
    pub tun_opts: [u8; TUN_OPTS_LEN],
    pub tun_opts_len: u8,
    pub ct_state: u8,
    pub ct_zone: u16,
    pub recirc_id: u32,
    pub in_port: u32,
    pub ct_mark: u32,
    pub ct_label: [u8; 16],
    pub dl_dst: [u8; 6],
    pub dl_src: [u8; 6],
    pub dl_type: u16,
    /// TPID of the outer VLAN header (0x8100 or 0x88a8), 0 without VLAN.
    pub vlan_tpid: u16,
    /// Outer VLAN TCI with [`VLAN_PRESENT`] set when a header is there.
    pub vlan_tci: u16,
    /// Inner VLAN TCI of a QinQ frame, with [`VLAN_PRESENT`].
    pub vlan2_tci: u16,
    pub nw_src: u32,
    pub nw_dst: u32,
    pub ipv6_src: [u8; 16],
    pub ipv6_dst: [u8; 16],
    pub ipv6_label: u32,
    pub nw_proto: u8,
    /// The whole IPv4 TOS / IPv6 traffic class byte: DSCP in the high 6 bits, ECN in the low 2.
    pub nw_tos: u8,
    pub nw_ttl: u8,
    /// [`FRAG_ANY`] / [`FRAG_LATER`] bits.
    pub nw_frag: u8,
    pub tp_src: u16,
    pub tp_dst: u16,
    pub tcp_flags: u16,
    pub arp_sha: [u8; 6],
    pub arp_tha: [u8; 6],
    pub _pad: [u8; 2],
    pub nd_target: [u8; 16],
    /// The original-direction tuple of the packet's connection, set by `ct()` as OVS's
    /// `ct_nw_src` .. `ct_tp_dst` (the packet's own tuple when it has no connection yet, all
    /// zero when untracked or invalid). ICMP puts the query's type and code in the ports.
    /// IPv4 connections use `ct_nw_*`, IPv6 ones `ct_ipv6_*`.
    pub ct_nw_src: u32,
    pub ct_nw_dst: u32,
    pub ct_ipv6_src: [u8; 16],
    pub ct_ipv6_dst: [u8; 16],
    pub ct_tp_src: u16,
    pub ct_tp_dst: u16,
    pub ct_nw_proto: u8,
    pub _pad2: [u8; 3],
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == KEY_WORDS * 8);
const _: () = assert!(core::mem::align_of::<FlowKey>() == 8);

/// `a == b` as XOR/OR over all words, no early exit (the compiler vectorises it).
#[inline(always)]
fn same_words(a: &FlowKey, b: &FlowKey) -> bool {
    let (a, b) = (a.words(), b.words());
    let mut diff = 0u64;
    for i in 0..KEY_WORDS {
        diff |= a[i] ^ b[i];
    }
    diff == 0
}

/// [`same_words`] compiled for AVX2. One of the audited `unsafe` spots of this crate.
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)]
fn same_avx2(a: &FlowKey, b: &FlowKey) -> bool {
    #[target_feature(enable = "avx2")]
    fn inner(a: &FlowKey, b: &FlowKey) -> bool {
        same_words(a, b)
    }
    // SAFETY: only called after `is_x86_feature_detected!("avx2")` said the CPU has AVX2;
    // the function touches nothing but its two references.
    unsafe { inner(a, b) }
}

impl FlowKey {
    /// The Geneve options the key holds itself: all of them when they fit, else none (they
    /// are kept by digest, see `tun_opts`).
    pub fn tun_opts_inline(&self) -> &[u8] {
        self.tun_opts
            .get(..usize::from(self.tun_opts_len))
            .unwrap_or_default()
    }

    /// The key as 64-bit words, for masking, hashing and comparing.
    #[inline(always)]
    pub fn words(&self) -> &[u64; KEY_WORDS] {
        bytemuck::cast_ref(self)
    }

    /// Bit `i` set for every word `i` that is not zero (the words a mask touches).
    pub fn nonzero_words(&self) -> u32 {
        self.words()
            .iter()
            .enumerate()
            .filter(|(_, w)| **w != 0)
            .fold(0, |a, (i, _)| a | 1 << i)
    }

    /// Mutable word view.
    #[inline(always)]
    pub fn words_mut(&mut self) -> &mut [u64; KEY_WORDS] {
        bytemuck::cast_mut(self)
    }

    /// Whole-key equality, branch-free (the EMC's compare): one pass of XOR and OR over the
    /// words with AVX2 where the CPU has it (checked at run time, one cached flag), else the
    /// same loop in SSE2. AVX2 halves the instructions of the EMC hit path's largest step.
    #[inline(always)]
    pub fn same_as(&self, other: &FlowKey) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                return same_avx2(self, other);
            }
        }
        same_words(self, other)
    }

    /// A key with every bit set: as a mask, "exact match on everything".
    pub fn all_ones() -> FlowKey {
        let mut k = FlowKey::zeroed();
        k.words_mut().iter_mut().for_each(|w| *w = u64::MAX);
        k
    }

    /// `self & mask`, word by word.
    #[inline(always)]
    pub fn masked(&self, mask: &FlowKey) -> FlowKey {
        let mut out = FlowKey::zeroed();
        let (a, m) = (self.words(), mask.words());
        for (i, o) in out.words_mut().iter_mut().enumerate() {
            *o = a[i] & m[i];
        }
        out
    }

    /// OR another key (mask) into this one.
    pub fn or_assign(&mut self, other: &FlowKey) {
        let o = *other.words();
        for (w, x) in self.words_mut().iter_mut().zip(o) {
            *w |= x;
        }
    }

    /// True when no bit is set.
    pub fn is_zero(&self) -> bool {
        self.words().iter().all(|w| *w == 0)
    }

    /// A fast 32-bit hash of the whole key (used by the exact-match cache).
    #[inline(always)]
    pub fn hash(&self) -> u32 {
        hash_words(self.words().iter().copied())
    }

    /// Clears the conntrack original-direction tuple (`ct_nw_src` .. `ct_nw_proto`).
    #[inline(always)]
    pub fn clear_ct_tuple(&mut self) {
        self.words_mut()[CT_TUPLE_WORD..].fill(0);
    }

    /// True when the VLAN header is present.
    pub fn has_vlan(&self) -> bool {
        self.vlan_tci & VLAN_PRESENT != 0
    }

    /// True for IPv4 and IPv6 packets.
    pub fn is_ip(&self) -> bool {
        self.dl_type == ethertype::IPV4 || self.dl_type == ethertype::IPV6
    }
}

/// Mixes a sequence of words into a 32-bit hash (multiply-xorshift per word; good enough
/// dispersion for power-of-two tables, and a handful of cycles per word).
#[inline(always)]
pub fn hash_words(words: impl Iterator<Item = u64>) -> u32 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for w in words {
        h = (h ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 32;
    }
    (h ^ (h >> 29)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_sees_every_bit_of_every_word() {
        let mut a = FlowKey::zeroed();
        for (i, w) in a.words_mut().iter_mut().enumerate() {
            *w = 0x0123_4567_89ab_cdef_u64.rotate_left(i as u32);
        }
        let b = a;
        assert!(a.same_as(&b) && same_words(&a, &b));
        for word in 0..KEY_WORDS {
            for bit in [0, 17, 63] {
                let mut c = a;
                c.words_mut()[word] ^= 1 << bit;
                assert!(!a.same_as(&c), "word {word} bit {bit}");
                assert!(!same_words(&a, &c), "word {word} bit {bit}");
            }
        }
    }

    #[test]
    fn masking_keeps_only_mask_bits() {
        let key = FlowKey {
            nw_src: 0x0a00_0001,
            tp_dst: 80,
            ..FlowKey::default()
        };
        let mask = FlowKey {
            nw_src: 0xffff_ff00,
            ..FlowKey::default()
        };
        let m = key.masked(&mask);
        assert_eq!(m.nw_src, 0x0a00_0000);
        assert_eq!(m.tp_dst, 0);
        assert!(!m.is_zero());
        assert!(FlowKey::default().is_zero());
    }

    #[test]
    fn hash_differs_on_any_field() {
        let a = FlowKey::default();
        let b = FlowKey {
            tp_src: 1,
            ..FlowKey::default()
        };
        assert_ne!(a.hash(), b.hash());
    }
}
