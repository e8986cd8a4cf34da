//! Execution of datapath actions over one megaflow's group of packets.
//!
//! Actions run one at a time over the whole group (outer loop actions, inner loop packets),
//! each on the packet as the earlier actions left it. Set actions patch the bytes, the
//! checksums (incrementally, RFC 1624) and `meta.key`, so later actions and recirculation see
//! the new values. A packet's fate is written to its `next` slot: [`Next::CONSUMED`] once the
//! original was queued for output, the recirculation next index, or a drop with an
//! [`ExecDrop`] reason. While a packet is still being worked on, its slot holds the
//! `no-output` drop, which is therefore its fate when nothing else happens to it.
#![forbid(unsafe_code)]

use std::sync::Arc;

use crate::buffer::{PacketId, PacketMeta, NO_OFFSET};
use crate::checksum::{crc32c, update16, update32, update_bytes};
use crate::dpaction::{DpAction, ExecDrop, Fragments, MAX_RECIRCS};
use crate::flowkey::{
    ethertype, ipproto, FRAG_LATER, VLAN_PCP_MASK, VLAN_PCP_SHIFT, VLAN_PRESENT, VLAN_VID_MASK,
};
use crate::graph::{Ctx, Next, MAX_BATCH};
use crate::packet_in::{PacketIn, PacketInContext};
use crate::parse::{key_hash, parse_packet_limit, VlanLimit};
use crate::txq::count_port;

/// Where execution sends packets that leave through something other than a port.
#[derive(Clone, Copy, Debug)]
pub struct ExecTargets {
    /// The executing node's drop-reason index of [`ExecDrop::NoOutput`]; the other
    /// [`ExecDrop`] reasons follow it in order (`drop_base + ExecDrop::X as u16`).
    pub drop_base: u16,
    /// The executing node's next index for recirculation, if it has one.
    pub recirc_next: Option<u16>,
    /// The parser's VLAN limit: `PushVlan` / `PopVlan` keep the key as the parser would read
    /// the new frame.
    pub vlans: VlanLimit,
}

/// Executes `actions` on every packet of `pkts` and writes each packet's fate to `next`.
///
/// - `Output(port)`: every output but the last transmits a copy ([`crate::PacketPool::clone_packet`];
///   with no free frame the copy is lost and counted in [`crate::TxQueues::no_buffers`]); the last one
///   moves the original ([`Next::CONSUMED`], also when the port has no queue: the queue frees
///   and counts it).
/// - `Controller` queues a packet-in with the packet as it is at that point (its first
///   `max_len` bytes) and the packet goes on; when nothing after it sends the packet, it is
///   freed there, sent ([`Next::CONSUMED`]) rather than dropped, as Open vSwitch counts a
///   packet its datapath gave to userspace.
/// - `Recirc(id)` ends the list: actions after it are ignored, and every `Output` before it
///   sends a copy. It sets `key.recirc_id`, refreshes `meta.hash` and sends the packet to
///   `targets.recirc_next` (none → `bad-header`).
/// - A set on a header the packet does not have, `PushVlan` without headroom, `PopVlan` /
///   `SetVlan*` without a tag drop as `bad-header`; `DecTtl` / `SetIpTtl`
///   semantics follow OVS (`DecTtl` at TTL 0 or 1 drops as `ttl-exceeded`, is a no-op on
///   non-IP packets). `SetTpSrc` / `SetTpDst` on a later IP fragment (it has no L4 header)
///   leave it as it is, as OVS does.
/// - A packet never output, recirculated or dropped otherwise drops as `no-output`.
pub fn execute(
    actions: &[DpAction],
    cx: &mut Ctx<'_>,
    pkts: &[PacketId],
    next: &mut [Next],
    targets: ExecTargets,
) {
    let n = pkts.len().min(next.len());
    let (pkts, next) = (&pkts[..n], &mut next[..n]);
    // The common megaflow: one output to a port that exists. The whole group moves to its
    // queue with one port lookup.
    if let [DpAction::Output(port)] = actions {
        if let Some(q) = cx.tx.index_of(*port) {
            cx.tx.enqueue_all_at(q, pkts);
            next.fill(Next::CONSUMED);
            return;
        }
    }
    let drop_as = |d: ExecDrop| Next::drop(targets.drop_base + d as u16);
    let alive = drop_as(ExecDrop::NoOutput);
    next.iter_mut().for_each(|x| *x = alive);

    let end = actions
        .iter()
        .position(is_terminal)
        .map_or(actions.len(), |t| t + 1);
    let actions = &actions[..end];
    let mover = if actions.last().is_some_and(is_terminal) {
        None
    } else {
        actions.iter().rposition(|a| {
            matches!(
                a,
                DpAction::Output(_) | DpAction::Clone(_) | DpAction::Controller(_)
            )
        })
    };

    // Fragments a `ct()` released, after the action at that index.
    let mut released = Vec::new();
    for (ai, action) in actions.iter().enumerate() {
        match *action {
            DpAction::Output(port) => {
                let queue = cx.tx.index_of(port);
                let moves = mover == Some(ai);
                for (&p, nx) in pkts.iter().zip(next.iter_mut()) {
                    if *nx != alive {
                        continue;
                    }
                    let Some(pkt) = copy_or_move(cx, p, moves) else {
                        continue;
                    };
                    if moves {
                        *nx = Next::CONSUMED;
                    }
                    match queue {
                        Some(q) => cx.tx.enqueue_at(q, pkt),
                        None => {
                            // Frees the packet and counts it as no-such-port.
                            cx.tx.enqueue(port, pkt, cx.pool);
                        }
                    }
                }
            }
            DpAction::Controller(ref to) => {
                let sent = pkts.iter().zip(next.iter()).filter(|(_, nx)| **nx == alive);
                to.queue
                    .push_all(sent.map(|(&p, _)| packet_in(cx, p, &to.context)));
                if mover == Some(ai) {
                    for (&p, nx) in pkts.iter().zip(next.iter_mut()) {
                        if *nx == alive {
                            cx.pool.free(p);
                            *nx = Next::CONSUMED;
                        }
                    }
                }
            }
            DpAction::Recirc(id) => {
                for (&p, nx) in pkts.iter().zip(next.iter_mut()) {
                    if *nx != alive {
                        continue;
                    }
                    *nx = match targets.recirc_next {
                        Some(r) => {
                            let m = cx.pool.meta_mut(p);
                            if m.recircs >= MAX_RECIRCS {
                                drop_as(ExecDrop::RecircTooDeep)
                            } else {
                                m.recircs += 1;
                                m.key.recirc_id = id;
                                m.hash = key_hash(&m.key);
                                Next::to(r)
                            }
                        }
                        None => drop_as(ExecDrop::BadHeader),
                    };
                }
            }
            DpAction::Ct(ref tracker) => {
                let mut ids = [PacketId::default(); MAX_BATCH];
                let mut at = [0u16; MAX_BATCH];
                let mut n = 0;
                for (i, (&p, nx)) in pkts.iter().zip(next.iter()).enumerate() {
                    if *nx == alive && n < MAX_BATCH {
                        ids[n] = p;
                        at[n] = i as u16;
                        n += 1;
                    }
                }
                let mut drops = [None; MAX_BATCH];
                let mut frags = Fragments::default();
                tracker
                    .0
                    .track(cx.pool, &ids[..n], cx.now_ns, &mut drops[..n], &mut frags);
                for (&i, d) in at[..n].iter().zip(&drops[..n]) {
                    if let (Some(d), Some(nx)) = (d, next.get_mut(usize::from(i))) {
                        *nx = drop_as(*d);
                    }
                }
                if !frags.is_empty() {
                    // Held fragments leave the group; released ones wait for the group's
                    // actions to end, then run the rest of the list (OVS appends them to
                    // the batch after conntrack).
                    for &h in &frags.held {
                        let h = usize::from(h);
                        if let (Some(&p), Some(&i)) = (ids[..n].get(h), at.get(h)) {
                            cx.pool.free(p);
                            next[usize::from(i)] = Next::CONSUMED;
                        }
                    }
                    if !frags.released.is_empty() {
                        released.push((ai, frags.released));
                    }
                }
            }
            DpAction::Drop(reason) => {
                for nx in next.iter_mut().filter(|x| **x == alive) {
                    *nx = drop_as(reason);
                }
            }
            DpAction::Clone(ref sub) => clone(sub, cx, pkts, next, targets, mover == Some(ai)),
            DpAction::TunnelPush(ref header) => {
                // Later actions other than outputs act on the outer frame: read it again.
                let reread = actions[ai + 1..]
                    .iter()
                    .any(|a| !matches!(a, DpAction::Output(_) | DpAction::Drop(_)));
                let t0 = crate::cycles::now();
                // Counted once for the group: packets taken, packets and inner bytes sent.
                let (mut taken, mut sent, mut bytes) = (0u64, 0u64, 0u64);
                for (&p, nx) in pkts.iter().zip(next.iter_mut()) {
                    if *nx != alive {
                        continue;
                    }
                    taken += 1;
                    let inner_len = u64::from(cx.pool.meta(p).len);
                    match header.0.push(cx.pool, p) {
                        Ok(()) => {
                            sent += 1;
                            bytes += inner_len;
                            if reread {
                                reparse(cx, p, targets.vlans);
                            }
                        }
                        Err(d) => {
                            if d == ExecDrop::TunnelTooBig {
                                answer_too_big(cx, header, p);
                            }
                            *nx = drop_as(d);
                        }
                    }
                }
                cx.tx.encapsulated += sent;
                if header.0.port() != 0 && sent != 0 {
                    count_port(&mut cx.tx.tunnel_tx, header.0.port(), sent, bytes);
                }
                cx.tx.encap.calls += 1;
                cx.tx.encap.vectors += taken;
                cx.tx.encap.cycles += crate::cycles::now().wrapping_sub(t0);
            }
            DpAction::PushVlan { tpid, tci } => {
                for (&p, nx) in pkts.iter().zip(next.iter_mut()) {
                    if *nx == alive && !push_vlan(cx, p, tpid, tci, targets.vlans) {
                        *nx = drop_as(ExecDrop::BadHeader);
                    }
                }
            }
            DpAction::PopVlan => {
                for (&p, nx) in pkts.iter().zip(next.iter_mut()) {
                    if *nx == alive && !pop_vlan(cx, p, targets.vlans) {
                        *nx = drop_as(ExecDrop::BadHeader);
                    }
                }
            }
            ref set => {
                for (&p, nx) in pkts.iter().zip(next.iter_mut()) {
                    if *nx != alive {
                        continue;
                    }
                    let (data, meta) = cx.pool.data_and_meta_mut(p);
                    if let Err(d) = set_field(set, data, meta) {
                        *nx = drop_as(d);
                    }
                }
            }
        }
    }
    for (ai, pkts) in released {
        run_released(&actions[ai + 1..], cx, &pkts, targets);
    }
}

/// Runs the fragments a `ct()` released ([`Fragments::released`]) through `rest`, the
/// actions after it, as [`clone`] runs copies: they are packets of their own, so each one's
/// fate is [`settle`]d.
fn run_released(
    rest: &[DpAction],
    cx: &mut Ctx<'_>,
    pkts: &[(PacketId, Option<ExecDrop>)],
    targets: ExecTargets,
) {
    let inner = ExecTargets {
        drop_base: 0,
        ..targets
    };
    for chunk in pkts.chunks(MAX_BATCH) {
        let mut ids = [PacketId::default(); MAX_BATCH];
        let mut n = 0;
        for &(id, drop) in chunk {
            match drop {
                Some(d) => settle(cx, id, Next::drop(d as u16)),
                None => {
                    ids[n] = id;
                    n += 1;
                }
            }
        }
        let mut fates = [Next::CONSUMED; MAX_BATCH];
        execute(rest, cx, &ids[..n], &mut fates[..n], inner);
        for (&id, &fate) in ids[..n].iter().zip(&fates[..n]) {
            settle(cx, id, fate);
        }
    }
}

/// The end of a packet the actions made (a clone's copy, a released fragment), which no
/// slot of the group holds, given its `fate` (drop reasons numbered from 0): recirculated,
/// it goes to [`crate::TxQueues::recirc`]; dropped, it is freed and counted in
/// [`crate::TxQueues::clone_drops`]; sent, nothing is left to do.
fn settle(cx: &mut Ctx<'_>, id: PacketId, fate: Next) {
    if fate.next_index().is_some() {
        cx.tx.recirc.push(id);
    } else if let Some(reason) = fate.drop_reason() {
        cx.pool.free(id);
        if let Some(c) = cx.tx.clone_drops.get_mut(usize::from(reason)) {
            *c += 1;
        }
    }
}

/// Sends the answer `header` has for packet `p`, too big for its tunnel, out of the port `p`
/// came in on (counted in [`crate::TxQueues::too_big_answers`]), with `p`'s receive time as
/// every frame a packet causes has.
fn answer_too_big(cx: &mut Ctx<'_>, header: &crate::Header, p: PacketId) {
    let (data, meta) = (cx.pool.data(p), cx.pool.meta(p));
    let Some(frame) = header.0.too_big_reply(data, meta) else {
        return;
    };
    let (in_port, rx_ns) = (meta.key.in_port, meta.rx_ns);
    if let Ok(id) = cx.pool.alloc_with(&frame) {
        cx.pool.meta_mut(id).rx_ns = rx_ns;
        cx.tx.too_big_answers += 1;
        // As from a router beyond the tunnel: in by the tunnel port, through the bridge's
        // rules (NORMAL untags it for an access port). Without a tunnel port, straight back.
        match header.0.port() {
            0 => {
                cx.tx.enqueue(in_port, id, cx.pool);
            }
            tunnel => cx.tx.arrivals.push((tunnel, id)),
        }
    }
}

/// Whether `a` ends an action list (the actions after it are ignored).
fn is_terminal(a: &DpAction) -> bool {
    matches!(a, DpAction::Recirc(_) | DpAction::Drop(_))
}

/// The packet-in of packet `p` as it is now: the whole packet, whatever the action's
/// `max_len`, as a switch that buffers nothing sends it (OpenFlow 1.3.5 §7.2.7; Open vSwitch
/// does the same).
fn packet_in(cx: &Ctx<'_>, p: PacketId, context: &Arc<PacketInContext>) -> PacketIn {
    let data = cx.pool.data(p);
    PacketIn {
        context: context.clone(),
        key: cx.pool.meta(p).key,
        total_len: data.len() as u32,
        data: data.to_vec(),
    }
}

/// The packet itself when it `moves`, else a copy of it; `None`, counted in `no_buffers`,
/// when no frame is free for the copy.
#[inline(always)]
fn copy_or_move(cx: &mut Ctx<'_>, p: PacketId, moves: bool) -> Option<PacketId> {
    if moves {
        return Some(p);
    }
    let copy = cx.pool.clone_packet(p);
    if copy.is_none() {
        cx.tx.no_buffers += 1;
    }
    copy
}

/// [`DpAction::Clone`]: runs `sub` on a copy of each packet still alive, or, when `moves`
/// (nothing after it outputs), on the packet itself, whose fate is then the copy's. A copy
/// that `sub` drops is freed and counted in [`crate::TxQueues::clone_drops`]; one that
/// cannot be made is counted in `no_buffers`. A copy that `sub` recirculates goes to
/// [`crate::TxQueues::recirc`].
fn clone(
    sub: &[DpAction],
    cx: &mut Ctx<'_>,
    pkts: &[PacketId],
    next: &mut [Next],
    targets: ExecTargets,
    moves: bool,
) {
    let alive = Next::drop(targets.drop_base + ExecDrop::NoOutput as u16);
    let inner = ExecTargets {
        drop_base: 0,
        ..targets
    };
    // The common tunnel output: the last action, every packet still alive, and drop reasons
    // numbered as the executor's own. The packets themselves run `sub`, their fates are its.
    if moves && targets.drop_base == 0 && next.iter().all(|x| *x == alive) {
        execute(sub, cx, pkts, next, inner);
        return;
    }
    let mut ids = [PacketId::default(); MAX_BATCH];
    let mut owner = [0u16; MAX_BATCH];
    let mut n = 0;
    for (i, (&p, nx)) in pkts.iter().zip(next.iter()).enumerate() {
        if *nx != alive || n == MAX_BATCH {
            continue;
        }
        let Some(pkt) = copy_or_move(cx, p, moves) else {
            continue;
        };
        ids[n] = pkt;
        owner[n] = i as u16;
        n += 1;
    }
    let mut fates = [Next::CONSUMED; MAX_BATCH];
    execute(sub, cx, &ids[..n], &mut fates[..n], inner);
    for ((&id, &i), &fate) in ids[..n].iter().zip(&owner[..n]).zip(&fates[..n]) {
        if !moves {
            // A copy: recirculated by the switch, or dropped and counted.
            settle(cx, id, fate);
            continue;
        }
        // The packet itself: its fate is the copy's.
        next[usize::from(i)] = match (fate.next_index(), fate.drop_reason()) {
            (Some(_), _) => fate,
            (None, Some(reason)) => Next::drop(targets.drop_base + reason),
            (None, None) => Next::CONSUMED,
        };
    }
}

/// True when executing `actions` over a group has the same effect as executing them over
/// each of its packets in turn: no output makes a copy (copies take frames from the pool
/// in an order that depends on the grouping). Every other action touches only its own
/// packet, and each queue receives the group's packets in their order either way.
pub fn packets_independent(actions: &[DpAction]) -> bool {
    let outputs = actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                DpAction::Output(_) | DpAction::Clone(_) | DpAction::Controller(_)
            )
        })
        .count();
    let terminal = actions.iter().any(is_terminal);
    outputs == 0 || (outputs == 1 && !terminal)
}

/// A checked mutable view of `N` bytes at `at`.
#[inline(always)]
fn field<const N: usize>(d: &mut [u8], at: usize) -> Option<&mut [u8; N]> {
    d.get_mut(at..)?.first_chunk_mut::<N>()
}

#[inline(always)]
fn rd16(d: &mut [u8], at: usize) -> Option<u16> {
    field::<2>(d, at).map(|f| u16::from_be_bytes(*f))
}

/// Rewrites the 16-bit checksum at `at` with `f`; absent bytes are left alone (the parser
/// guaranteed them for every offset recorded in the metadata).
#[inline(always)]
fn fix_csum(d: &mut [u8], at: usize, f: impl FnOnce(u16) -> u16) {
    if let Some(c) = field::<2>(d, at) {
        *c = f(u16::from_be_bytes(*c)).to_be_bytes();
    }
}

/// Applies an L3 pseudo-header change to the L4 checksum: TCP, UDP (a zero "no checksum"
/// stays zero, a computed zero is sent as 0xffff) and ICMPv6. ICMP and SCTP have no
/// pseudo-header and later fragments have no L4 header.
fn fix_l4_pseudo(d: &mut [u8], m: &PacketMeta, f: impl FnOnce(u16) -> u16) {
    if m.l4_ofs == NO_OFFSET || m.key.nw_frag & FRAG_LATER != 0 {
        return;
    }
    let l4 = m.l4_ofs as usize;
    match m.key.nw_proto {
        ipproto::TCP => fix_csum(d, l4 + 16, f),
        ipproto::UDP => fix_udp_csum(d, l4, f),
        ipproto::ICMPV6 if m.key.dl_type == ethertype::IPV6 => fix_csum(d, l4 + 2, f),
        _ => {}
    }
}

fn fix_udp_csum(d: &mut [u8], l4: usize, f: impl FnOnce(u16) -> u16) {
    if let Some(c) = field::<2>(d, l4 + 6) {
        let old = u16::from_be_bytes(*c);
        if old != 0 {
            let new = match f(old) {
                0 => 0xffff,
                x => x,
            };
            *c = new.to_be_bytes();
        }
    }
}

fn l3_of(m: &PacketMeta, dl_type: u16) -> Result<usize, ExecDrop> {
    if m.key.dl_type == dl_type && m.l3_ofs != NO_OFFSET {
        Ok(m.l3_ofs as usize)
    } else {
        Err(ExecDrop::BadHeader)
    }
}

/// Offset of byte `at` of an ARP packet's body (Ethernet / IPv4 ARP, whose addresses the
/// parser read); `bad-header` otherwise.
fn arp_at(m: &PacketMeta, at: usize) -> Result<usize, ExecDrop> {
    Ok(l3_of(m, ethertype::ARP)? + at)
}

/// Applies one action that neither changes the packet length nor its fate (sets, TTL).
fn set_field(a: &DpAction, d: &mut [u8], m: &mut PacketMeta) -> Result<(), ExecDrop> {
    const BAD: ExecDrop = ExecDrop::BadHeader;
    match *a {
        DpAction::SetEthSrc(mac) => {
            *field::<6>(d, 6).ok_or(BAD)? = mac;
            m.key.dl_src = mac;
        }
        DpAction::SetEthDst(mac) => {
            *field::<6>(d, 0).ok_or(BAD)? = mac;
            m.key.dl_dst = mac;
        }
        DpAction::SetIpv4Src(ip) => {
            set_ipv4_addr(d, m, 12, ip)?;
            m.key.nw_src = ip;
        }
        DpAction::SetIpv4Dst(ip) => {
            set_ipv4_addr(d, m, 16, ip)?;
            m.key.nw_dst = ip;
        }
        DpAction::SetIpv6Src(ip) => {
            set_ipv6_addr(d, m, 8, ip)?;
            m.key.ipv6_src = ip;
        }
        DpAction::SetIpv6Dst(ip) => {
            set_ipv6_addr(d, m, 24, ip)?;
            m.key.ipv6_dst = ip;
        }
        DpAction::SetIpv6Label(label) => {
            // Version (4 bits), traffic class (8), flow label (20); no header checksum.
            let l3 = l3_of(m, ethertype::IPV6)?;
            let w = field::<4>(d, l3).ok_or(BAD)?;
            let label = label & 0x000f_ffff;
            *w = ((u32::from_be_bytes(*w) & !0x000f_ffff) | label).to_be_bytes();
            m.key.ipv6_label = label;
        }
        DpAction::SetIpDscp(dscp) => set_tos(d, m, (m.key.nw_tos & 0x03) | (dscp & 0xfc))?,
        DpAction::SetIpEcn(ecn) => set_tos(d, m, (m.key.nw_tos & 0xfc) | (ecn & 0x03))?,
        DpAction::SetIpTtl(ttl) => set_ttl(d, m, ttl)?,
        DpAction::DecTtl => {
            if !m.key.is_ip() {
                return Ok(());
            }
            let l3 = m.l3_ofs as usize;
            let at = if m.key.dl_type == ethertype::IPV4 {
                8
            } else {
                7
            };
            let ttl = *d.get(l3 + at).ok_or(BAD)?;
            if ttl <= 1 {
                return Err(ExecDrop::TtlExceeded);
            }
            set_ttl(d, m, ttl - 1)?;
        }
        DpAction::SetTpSrc(port) => {
            if set_port(d, m, 0, port)? {
                m.key.tp_src = port;
            }
        }
        DpAction::SetTpDst(port) => {
            if set_port(d, m, 2, port)? {
                m.key.tp_dst = port;
            }
        }
        DpAction::SetIcmpType(t) => {
            if set_icmp(d, m, 0xff00, (t as u16) << 8)? {
                m.key.tp_src = t as u16;
            }
        }
        DpAction::SetIcmpCode(c) => {
            if set_icmp(d, m, 0x00ff, c as u16)? {
                m.key.tp_dst = c as u16;
            }
        }
        DpAction::SetNdTarget(target) => {
            let (l4, _) = nd_of(d, m)?;
            let f = field::<16>(d, l4 + 8).ok_or(BAD)?;
            let old = *f;
            *f = target;
            fix_csum(d, l4 + 2, |c| update_bytes(c, &old, &target));
            m.key.nd_target = target;
        }
        DpAction::SetNdSll(mac) => {
            if set_nd_lladdr(d, m, ND_OPT_SOURCE_LLADDR, mac)? {
                m.key.arp_sha = mac;
            }
        }
        DpAction::SetNdTll(mac) => {
            if set_nd_lladdr(d, m, ND_OPT_TARGET_LLADDR, mac)? {
                m.key.arp_tha = mac;
            }
        }
        DpAction::SetVlanVid(vid) => {
            set_tci(d, m, VLAN_VID_MASK, vid & VLAN_VID_MASK)?;
        }
        DpAction::SetVlanPcp(pcp) => {
            set_tci(
                d,
                m,
                VLAN_PCP_MASK,
                ((pcp as u16) << VLAN_PCP_SHIFT) & VLAN_PCP_MASK,
            )?;
        }
        DpAction::SetArpOp(op) => {
            *field::<2>(d, arp_at(m, 6)?).ok_or(BAD)? = op.to_be_bytes();
            m.key.nw_proto = op as u8;
        }
        DpAction::SetArpSha(mac) => {
            *field::<6>(d, arp_at(m, 8)?).ok_or(BAD)? = mac;
            m.key.arp_sha = mac;
        }
        DpAction::SetArpSpa(ip) => {
            *field::<4>(d, arp_at(m, 14)?).ok_or(BAD)? = ip.to_be_bytes();
            m.key.nw_src = ip;
        }
        DpAction::SetArpTha(mac) => {
            *field::<6>(d, arp_at(m, 18)?).ok_or(BAD)? = mac;
            m.key.arp_tha = mac;
        }
        DpAction::SetArpTpa(ip) => {
            *field::<4>(d, arp_at(m, 24)?).ok_or(BAD)? = ip.to_be_bytes();
            m.key.nw_dst = ip;
        }
        // Handled by `execute` itself.
        DpAction::Output(_)
        | DpAction::PushVlan { .. }
        | DpAction::PopVlan
        | DpAction::Controller(_)
        | DpAction::Recirc(_)
        | DpAction::Clone(_)
        | DpAction::TunnelPush(_)
        | DpAction::Ct(_)
        | DpAction::Drop(_) => {}
    }
    Ok(())
}

fn set_ipv4_addr(d: &mut [u8], m: &PacketMeta, at: usize, new: u32) -> Result<(), ExecDrop> {
    let l3 = l3_of(m, ethertype::IPV4)?;
    let f = field::<4>(d, l3 + at).ok_or(ExecDrop::BadHeader)?;
    let old = u32::from_be_bytes(*f);
    *f = new.to_be_bytes();
    fix_csum(d, l3 + 10, |c| update32(c, old, new));
    fix_l4_pseudo(d, m, |c| update32(c, old, new));
    Ok(())
}

fn set_ipv6_addr(d: &mut [u8], m: &PacketMeta, at: usize, new: [u8; 16]) -> Result<(), ExecDrop> {
    let l3 = l3_of(m, ethertype::IPV6)?;
    let f = field::<16>(d, l3 + at).ok_or(ExecDrop::BadHeader)?;
    let old = *f;
    *f = new;
    // With a routing header still to visit, the pseudo-header holds the final destination,
    // not this one (RFC 8200 section 8.1; OVS `packet_rh_present`).
    if at == 8 || !routing_pending(d, m) {
        fix_l4_pseudo(d, m, |c| update_bytes(c, &old, &new));
    }
    Ok(())
}

/// True when the IPv6 extension headers before L4 include a routing header with segments left.
fn routing_pending(d: &[u8], m: &PacketMeta) -> bool {
    let l3 = m.l3_ofs as usize;
    let Some(&first) = d.get(l3 + 6) else {
        return false;
    };
    let (mut nh, mut at) = (first, l3 + 40);
    // The parser validated the chain up to l4_ofs; each step advances at least 8 bytes.
    while at < m.l4_ofs as usize {
        let Some(h) = crate::parse::view::<4>(d, at) else {
            return false;
        };
        let len = match nh {
            ipproto::ROUTING if h[3] != 0 => return true,
            ipproto::HOPOPTS | ipproto::ROUTING | ipproto::DSTOPTS => (h[1] as usize + 1) * 8,
            ipproto::FRAGMENT => 8,
            crate::parse::IPPROTO_AH => (h[1] as usize + 2) * 4,
            _ => return false,
        };
        nh = h[0];
        at += len;
    }
    false
}

/// Writes the whole TOS / traffic class byte.
fn set_tos(d: &mut [u8], m: &mut PacketMeta, tos: u8) -> Result<(), ExecDrop> {
    if m.key.dl_type == ethertype::IPV4 {
        let l3 = l3_of(m, ethertype::IPV4)?;
        let w = field::<2>(d, l3).ok_or(ExecDrop::BadHeader)?;
        let old = u16::from_be_bytes(*w);
        let new = (old & 0xff00) | tos as u16;
        *w = new.to_be_bytes();
        fix_csum(d, l3 + 10, |c| update16(c, old, new));
    } else {
        // Version (4 bits), traffic class (8), flow label (20); no header checksum.
        let l3 = l3_of(m, ethertype::IPV6)?;
        let w = field::<4>(d, l3).ok_or(ExecDrop::BadHeader)?;
        let old = u32::from_be_bytes(*w);
        *w = ((old & !0x0ff0_0000) | (tos as u32) << 20).to_be_bytes();
    }
    m.key.nw_tos = tos;
    Ok(())
}

fn set_ttl(d: &mut [u8], m: &mut PacketMeta, ttl: u8) -> Result<(), ExecDrop> {
    if m.key.dl_type == ethertype::IPV4 {
        let l3 = l3_of(m, ethertype::IPV4)?;
        // TTL shares its checksum word with the protocol.
        let w = field::<2>(d, l3 + 8).ok_or(ExecDrop::BadHeader)?;
        let old = u16::from_be_bytes(*w);
        let new = (old & 0x00ff) | (ttl as u16) << 8;
        *w = new.to_be_bytes();
        fix_csum(d, l3 + 10, |c| update16(c, old, new));
    } else {
        let l3 = l3_of(m, ethertype::IPV6)?;
        *d.get_mut(l3 + 7).ok_or(ExecDrop::BadHeader)? = ttl;
    }
    m.key.nw_ttl = ttl;
    Ok(())
}

/// Writes a TCP / UDP / SCTP port (`at` 0 for source, 2 for destination); false when the
/// packet is a later fragment, which has no L4 header (it is left as it is).
fn set_port(d: &mut [u8], m: &PacketMeta, at: usize, port: u16) -> Result<bool, ExecDrop> {
    let proto = m.key.nw_proto;
    let ports = m.key.is_ip() && matches!(proto, ipproto::TCP | ipproto::UDP | ipproto::SCTP);
    let Some(l4) = l4_header(m, ports)? else {
        return Ok(false);
    };
    let f = field::<2>(d, l4 + at).ok_or(ExecDrop::BadHeader)?;
    let old = u16::from_be_bytes(*f);
    *f = port.to_be_bytes();
    match proto {
        ipproto::TCP => fix_csum(d, l4 + 16, |c| update16(c, old, port)),
        ipproto::UDP => fix_udp_csum(d, l4, |c| update16(c, old, port)),
        _ => sctp_recompute(d, m)?,
    }
    Ok(true)
}

/// The offset of the L4 header that an action writes, when the packet is of the protocol
/// (`is_proto`; `bad-header` if not); `None` for a later fragment, which has no L4 header:
/// nothing to rewrite, and the fragment goes on (as in Open vSwitch), so that the datagram's
/// later fragments are not lost.
fn l4_header(m: &PacketMeta, is_proto: bool) -> Result<Option<usize>, ExecDrop> {
    if !is_proto {
        return Err(ExecDrop::BadHeader);
    }
    if m.key.nw_frag & FRAG_LATER != 0 {
        return Ok(None);
    }
    if m.l4_ofs == NO_OFFSET {
        return Err(ExecDrop::BadHeader);
    }
    Ok(Some(m.l4_ofs as usize))
}

/// Replaces the `mask` bits of an ICMP or ICMPv6 message's type-and-code word with `bits`,
/// fixing its checksum (the word is not in ICMPv6's pseudo-header); false when the packet is
/// a later fragment, which has no ICMP header (left as it is, as [`set_port`] does).
fn set_icmp(d: &mut [u8], m: &PacketMeta, mask: u16, bits: u16) -> Result<bool, ExecDrop> {
    let icmp = match m.key.dl_type {
        ethertype::IPV4 => m.key.nw_proto == ipproto::ICMP,
        ethertype::IPV6 => m.key.nw_proto == ipproto::ICMPV6,
        _ => false,
    };
    let Some(l4) = l4_header(m, icmp)? else {
        return Ok(false);
    };
    let w = field::<2>(d, l4).ok_or(ExecDrop::BadHeader)?;
    let old = u16::from_be_bytes(*w);
    let new = (old & !mask) | bits;
    *w = new.to_be_bytes();
    fix_csum(d, l4 + 2, |c| update16(c, old, new));
    Ok(true)
}

/// ND option types of the link-layer addresses (RFC 4861 section 4.6.1).
const ND_OPT_SOURCE_LLADDR: u8 = 1;
const ND_OPT_TARGET_LLADDR: u8 = 2;

/// The ICMPv6 header's offset and the end of the IPv6 payload of a neighbour solicitation or
/// advertisement (its 24 fixed bytes there); `bad-header` otherwise.
fn nd_of(d: &[u8], m: &PacketMeta) -> Result<(usize, usize), ExecDrop> {
    const BAD: ExecDrop = ExecDrop::BadHeader;
    let l3 = l3_of(m, ethertype::IPV6)?;
    if m.key.nw_proto != ipproto::ICMPV6 || m.l4_ofs == NO_OFFSET || m.key.nw_frag & FRAG_LATER != 0
    {
        return Err(BAD);
    }
    let l4 = m.l4_ofs as usize;
    let len = d.get(l3 + 4..l3 + 6).ok_or(BAD)?;
    let end = (l3 + 40 + u16::from_be_bytes([len[0], len[1]]) as usize).min(d.len());
    if !matches!(d.get(l4), Some(135 | 136)) || end < l4 + 24 {
        return Err(BAD);
    }
    Ok((l4, end))
}

/// Writes `mac` into the first link-layer address option of length 1 (8 bytes) of an ND
/// message when that option is of `kind`, fixing the ICMPv6 checksum (as Open vSwitch's
/// `odp_set_nd`: "a packet can only contain one SLL or TLL option"); true when written. The
/// walk stops at an option of length 0 or one running past the payload.
fn set_nd_lladdr(d: &mut [u8], m: &PacketMeta, kind: u8, mac: [u8; 6]) -> Result<bool, ExecDrop> {
    let (l4, end) = nd_of(d, m)?;
    let mut at = l4 + 24;
    while let Some(&[t, n]) = d.get(at..end).and_then(|o| o.first_chunk::<2>()) {
        let n = n as usize * 8;
        if n == 0 || at + n > end {
            break;
        }
        if n == 8 && (t == ND_OPT_SOURCE_LLADDR || t == ND_OPT_TARGET_LLADDR) {
            if t != kind {
                return Ok(false);
            }
            let f = field::<6>(d, at + 2).ok_or(ExecDrop::BadHeader)?;
            let old = *f;
            *f = mac;
            fix_csum(d, l4 + 2, |c| update_bytes(c, &old, &mac));
            return Ok(true);
        }
        at += n;
    }
    Ok(false)
}

/// Recomputes the SCTP CRC32c over the whole SCTP packet (to the end of the IP payload, the
/// Ethernet padding excluded). The CRC has no incremental form.
fn sctp_recompute(d: &mut [u8], m: &PacketMeta) -> Result<(), ExecDrop> {
    let l3 = m.l3_ofs as usize;
    let l4 = m.l4_ofs as usize;
    let end = if m.key.dl_type == ethertype::IPV4 {
        l3 + rd16(d, l3 + 2).ok_or(ExecDrop::BadHeader)? as usize
    } else {
        l3 + 40 + rd16(d, l3 + 4).ok_or(ExecDrop::BadHeader)? as usize
    };
    *field::<4>(d, l4 + 8).ok_or(ExecDrop::BadHeader)? = [0; 4];
    let crc = crc32c(d.get(l4..end).ok_or(ExecDrop::BadHeader)?);
    *field::<4>(d, l4 + 8).ok_or(ExecDrop::BadHeader)? = crc.to_le_bytes();
    Ok(())
}

/// Replaces the `mask` bits of the outermost VLAN TCI with `bits`.
fn set_tci(d: &mut [u8], m: &mut PacketMeta, mask: u16, bits: u16) -> Result<(), ExecDrop> {
    if !m.key.has_vlan() {
        return Err(ExecDrop::BadHeader);
    }
    let f = field::<2>(d, 14).ok_or(ExecDrop::BadHeader)?;
    *f = ((u16::from_be_bytes(*f) & !mask) | bits).to_be_bytes();
    m.key.vlan_tci = (m.key.vlan_tci & !mask) | bits;
    Ok(())
}

/// Inserts a VLAN header after the MAC addresses, using the headroom. False: the frame is
/// shorter than an Ethernet header, or there is no headroom.
fn push_vlan(cx: &mut Ctx<'_>, p: PacketId, tpid: u16, tci: u16, vlans: VlanLimit) -> bool {
    let m = cx.pool.meta(p);
    if m.len < 14 {
        return false;
    }
    let tags = m.key.has_vlan() as usize + (m.key.vlan2_tci & VLAN_PRESENT != 0) as usize;
    let Ok(d) = cx.pool.push_front(p, 4) else {
        return false;
    };
    d.copy_within(4..16, 0);
    // The present bit of the key is the DEI bit on the wire: always sent as 0.
    let tci = tci & !VLAN_PRESENT;
    let Some(tag) = field::<4>(d, 12) else {
        return false;
    };
    let [t0, t1] = tpid.to_be_bytes();
    let [c0, c1] = tci.to_be_bytes();
    *tag = [t0, t1, c0, c1];
    if tags >= vlans.headers() {
        // The innermost header the key holds goes past the limit: it becomes the EtherType.
        reparse(cx, p, vlans);
        return true;
    }
    let k = &mut cx.pool.meta_mut(p).key;
    if k.has_vlan() {
        k.vlan2_tci = k.vlan_tci;
    }
    k.vlan_tpid = tpid;
    k.vlan_tci = tci | VLAN_PRESENT;
    true
}

/// Removes the outermost VLAN header. False: there is none.
fn pop_vlan(cx: &mut Ctx<'_>, p: PacketId, vlans: VlanLimit) -> bool {
    if !cx.pool.meta(p).key.has_vlan() {
        return false;
    }
    let d = cx.pool.data_mut(p);
    if d.len() < 18 {
        return false;
    }
    d.copy_within(0..12, 4);
    if cx.pool.pull_front(p, 4).is_err() {
        return false;
    }
    let k = &cx.pool.meta(p).key;
    if k.dl_type == ethertype::VLAN || k.dl_type == ethertype::QINQ {
        // A header past the limit comes within it, and what follows it is read now.
        reparse(cx, p, vlans);
        return true;
    }
    let inner_tpid = rd16(cx.pool.data_mut(p), 12).unwrap_or(0);
    let k = &mut cx.pool.meta_mut(p).key;
    k.vlan_tci = k.vlan2_tci;
    k.vlan2_tci = 0;
    k.vlan_tpid = if k.has_vlan() { inner_tpid } else { 0 };
    true
}

/// Reads the key again from the frame, where a VLAN push or pop changed more of it than the
/// tags. A header that was never read may be malformed: the key then holds what the parser
/// read before it, and the packet goes on, as in OVS.
fn reparse(cx: &mut Ctx<'_>, p: PacketId, vlans: VlanLimit) {
    let (data, meta) = cx.pool.data_and_meta_mut(p);
    let _ = parse_packet_limit(data, meta, vlans);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::PacketPool;
    use crate::flowkey::{FRAG_ANY, VLAN_VID_MASK};
    use crate::parse::tests::*;
    use crate::txq::TxQueues;

    const TARGETS: ExecTargets = ExecTargets {
        drop_base: 0,
        recirc_next: Some(0),
        vlans: VlanLimit::MAX,
    };

    struct Rig {
        pool: PacketPool,
        tx: TxQueues,
        pkts: Vec<PacketId>,
        next: Vec<Next>,
    }

    impl Rig {
        fn out(&self, port: u32) -> Vec<Vec<u8>> {
            self.tx
                .queue(port)
                .map(|q| q.iter().map(|&p| self.pool.data(p).to_vec()).collect())
                .unwrap_or_default()
        }
    }

    /// Parses `frames` into a pool with queues for ports 1-3 and runs `actions` over them.
    fn run_with(
        actions: &[DpAction],
        frames: &[Vec<u8>],
        pool_frames: u32,
        targets: ExecTargets,
    ) -> Rig {
        let mut pool = PacketPool::new(pool_frames);
        let mut tx = TxQueues::new(&[1, 2, 3]);
        let pkts: Vec<PacketId> = frames
            .iter()
            .map(|f| {
                let id = pool.alloc_with(f).unwrap();
                let (d, m) = pool.data_and_meta_mut(id);
                parse_packet_limit(d, m, targets.vlans).unwrap();
                id
            })
            .collect();
        let mut next = vec![Next::to(99); pkts.len()];
        let mut cx = Ctx {
            pool: &mut pool,
            tx: &mut tx,
            now_ns: 0,
        };
        execute(actions, &mut cx, &pkts, &mut next, targets);
        Rig {
            pool,
            tx,
            pkts,
            next,
        }
    }

    fn run(actions: &[DpAction], frames: &[Vec<u8>]) -> Rig {
        run_with(actions, frames, 64, TARGETS)
    }

    /// Runs `actions` then `Output(1)` on one frame: the transmitted bytes and metadata, or
    /// the drop. Checks that the key the actions maintained is the key of the new bytes.
    fn apply(actions: &[DpAction], frame: &[u8]) -> Result<(Vec<u8>, PacketMeta), ExecDrop> {
        apply_limit(actions, frame, VlanLimit::MAX)
    }

    /// [`apply`] with the parser reading `vlans` VLAN headers.
    fn apply_limit(
        actions: &[DpAction],
        frame: &[u8],
        vlans: VlanLimit,
    ) -> Result<(Vec<u8>, PacketMeta), ExecDrop> {
        let mut all = actions.to_vec();
        all.push(DpAction::Output(1));
        let targets = ExecTargets { vlans, ..TARGETS };
        let rig = run_with(&all, &[frame.to_vec()], 64, targets);
        if let Some(r) = rig.next[0].drop_reason() {
            let d = [
                ExecDrop::NoOutput,
                ExecDrop::TtlExceeded,
                ExecDrop::NoSuchPort,
                ExecDrop::NoBuffers,
                ExecDrop::BadHeader,
            ][r as usize];
            return Err(d);
        }
        assert_eq!(rig.next[0], Next::CONSUMED);
        let out = rig.out(1);
        assert_eq!(out.len(), 1);
        let meta = *rig.pool.meta(rig.pkts[0]);
        let reparsed = parsed_limit(&out[0], vlans).unwrap();
        assert_eq!(
            meta.key, reparsed.key,
            "key kept by the actions vs re-parsed"
        );
        assert_eq!(
            (meta.l3_ofs, meta.l4_ofs),
            (reparsed.l3_ofs, reparsed.l4_ofs)
        );
        assert_checksums(&out[0]);
        Ok((out[0].clone(), meta))
    }

    fn ok_apply(actions: &[DpAction], frame: &[u8]) -> Vec<u8> {
        match apply(actions, frame) {
            Ok((b, _)) => b,
            Err(d) => panic!("dropped: {}", d.name()),
        }
    }

    fn frames_v4() -> Vec<Vec<u8>> {
        vec![
            udp4_frame(),
            tcp4_frame(),
            fill_checksums(eth(
                ethertype::IPV4,
                &ipv4(ipproto::ICMP, &[0x94, 4, 0, 0], 0, &icmp(8, 0, b"abcd")),
            )),
            fill_checksums(eth(
                ethertype::IPV4,
                &ipv4(ipproto::SCTP, &[], 0, &sctp(9, 10, b"chunkdata...")),
            )),
            fill_checksums(eth_tagged(
                &[(ethertype::VLAN, 5)],
                ethertype::IPV4,
                &ipv4(ipproto::UDP, &[], 0x2000, &udp(1, 2, b"first fragment")),
            )),
        ]
    }

    fn frames_v6() -> Vec<Vec<u8>> {
        vec![
            tcp6_frame(),
            fill_checksums(eth(
                ethertype::IPV6,
                &ipv6(ipproto::UDP, &udp(3, 4, b"v6 udp")),
            )),
            fill_checksums(eth(
                ethertype::IPV6,
                &ipv6(ipproto::ICMPV6, &icmp(128, 0, b"ping")),
            )),
            fill_checksums(eth(
                ethertype::IPV6,
                &ipv6(ipproto::SCTP, &sctp(9, 10, b"chunk")),
            )),
            {
                let mut p = vec![ipproto::UDP, 0, 1, 4, 0, 0, 0, 0];
                p.extend_from_slice(&udp(7, 8, b"after hop-by-hop"));
                fill_checksums(eth(ethertype::IPV6, &ipv6(ipproto::HOPOPTS, &p)))
            },
        ]
    }

    #[test]
    fn set_ethernet_addresses() {
        let out = ok_apply(
            &[DpAction::SetEthSrc([1; 6]), DpAction::SetEthDst([2; 6])],
            &arp_frame(),
        );
        assert_eq!(&out[..12], &[[2u8; 6], [1; 6]].concat()[..]);
        assert_eq!(&out[12..], &arp_frame()[12..]);
    }

    #[test]
    fn set_ipv4_addresses_fix_checksums() {
        for f in frames_v4() {
            let m = ok(&f);
            let out = ok_apply(
                &[
                    DpAction::SetIpv4Src(0x0102_0304),
                    DpAction::SetIpv4Dst(0xfffe_fdfc),
                ],
                &f,
            );
            let l3 = m.l3_ofs as usize;
            assert_eq!(
                &out[l3 + 12..l3 + 20],
                &[1, 2, 3, 4, 0xff, 0xfe, 0xfd, 0xfc]
            );
        }
    }

    #[test]
    fn udp_zero_checksum_stays_zero() {
        let mut f = udp4_frame();
        f[40..42].fill(0);
        let out = ok_apply(&[DpAction::SetIpv4Src(1), DpAction::SetTpDst(99)], &f);
        assert_eq!(&out[40..42], &[0, 0]);
        // A computed zero is sent as 0xffff.
        let mut d = [0u8, 0, 0, 0, 0, 0, 0x12, 0x34];
        fix_udp_csum(&mut d, 0, |_| 0);
        assert_eq!(&d[6..], &[0xff, 0xff]);
    }

    #[test]
    fn later_fragment_only_fixes_the_ip_header() {
        let f = fill_checksums(eth(
            ethertype::IPV4,
            &ipv4(ipproto::UDP, &[], 100, &udp(7, 8, b"not a header")),
        ));
        assert_eq!(ok(&f).key.nw_frag, FRAG_ANY | FRAG_LATER);
        let out = ok_apply(&[DpAction::SetIpv4Dst(0x0a0a_0a0a)], &f);
        assert_eq!(&out[34..], &f[34..]);
        // A later fragment has no L4 header: an L4 rewrite leaves it as it is and the
        // fragment goes on (as in OVS, so a port-rewriting rule does not lose the rest of a
        // fragmented datagram).
        let out = ok_apply(&[DpAction::SetTpSrc(1), DpAction::SetTpDst(2)], &f);
        assert_eq!(out, f);
    }

    #[test]
    fn set_ipv6_addresses_fix_checksums() {
        for f in frames_v6() {
            let out = ok_apply(
                &[
                    DpAction::SetIpv6Src([0xaa; 16]),
                    DpAction::SetIpv6Dst([0x55; 16]),
                ],
                &f,
            );
            assert_eq!(&out[22..38], &[0xaa; 16]);
            assert_eq!(&out[38..54], &[0x55; 16]);
        }
    }

    #[test]
    fn ipv6_dst_with_pending_routing_header_keeps_l4_checksum() {
        let mut p = vec![ipproto::UDP, 2, 4, 1, 0, 0, 0, 0];
        p.extend_from_slice(&IP6_A); // the final destination
        p.extend_from_slice(&udp(7, 8, b"x"));
        let f = fill_checksums(eth(ethertype::IPV6, &ipv6(ipproto::ROUTING, &p)));
        let l4 = ok(&f).l4_ofs as usize;
        let rig = run(
            &[DpAction::SetIpv6Dst([0x55; 16]), DpAction::Output(1)],
            std::slice::from_ref(&f),
        );
        let out = &rig.out(1)[0];
        assert_eq!(&out[38..54], &[0x55; 16]);
        assert_eq!(&out[l4 + 6..l4 + 8], &f[l4 + 6..l4 + 8]);
        // Segments left 0: the destination is final, the checksum follows it.
        let mut f0 = f.clone();
        f0[54 + 3] = 0;
        let f0 = fill_checksums(f0);
        ok_apply(&[DpAction::SetIpv6Dst([0x55; 16])], &f0);
    }

    #[test]
    fn set_tos_and_ttl() {
        for f in frames_v4().into_iter().chain(frames_v6()) {
            let out = ok_apply(
                &[
                    DpAction::SetIpDscp(0x28),
                    DpAction::SetIpEcn(2),
                    DpAction::SetIpTtl(17),
                ],
                &f,
            );
            let m = ok(&out);
            assert_eq!((m.key.nw_tos, m.key.nw_ttl), (0x2a, 17));
            if m.key.dl_type == ethertype::IPV6 {
                // Label untouched.
                assert_eq!(m.key.ipv6_label, 0x1_2345);
            }
            let out = ok_apply(&[DpAction::DecTtl], &f);
            assert_eq!(ok(&out).key.nw_ttl, 63);
        }
    }

    #[test]
    fn set_icmp_type_and_code_fix_the_checksum() {
        let v4 = fill_checksums(eth(
            ethertype::IPV4,
            &ipv4(ipproto::ICMP, &[], 0, &icmp(8, 0, b"ping")),
        ));
        let v6 = &frames_v6()[2];
        for f in [&v4, v6] {
            let out = ok_apply(&[DpAction::SetIcmpType(3), DpAction::SetIcmpCode(9)], f);
            assert_checksums(&out);
            let m = ok(&out);
            assert_eq!((m.key.tp_src, m.key.tp_dst), (3, 9));
            let l4 = m.l4_ofs as usize;
            // Nothing else changed.
            assert_eq!(out[..l4], f[..l4]);
            assert_eq!(out[l4 + 4..], f[l4 + 4..]);
        }
        // Not ICMP: the action cannot apply.
        assert_eq!(
            apply(&[DpAction::SetIcmpType(3)], &udp4_frame()).err(),
            Some(ExecDrop::BadHeader)
        );
        // A later fragment has no ICMP header: left as it is.
        let later = fill_checksums(eth(
            ethertype::IPV4,
            &ipv4(ipproto::ICMP, &[], 0x0001, &icmp(8, 0, b"ping")),
        ));
        assert_eq!(ok_apply(&[DpAction::SetIcmpCode(1)], &later), later);
    }

    #[test]
    fn set_ipv6_label_keeps_the_traffic_class() {
        for f in frames_v6() {
            let out = ok_apply(&[DpAction::SetIpv6Label(0xf_abcd)], &f);
            assert_checksums(&out);
            let m = ok(&out);
            assert_eq!((m.key.ipv6_label, m.key.nw_tos), (0xf_abcd, 0xb9));
        }
        assert_eq!(
            apply(&[DpAction::SetIpv6Label(1)], &udp4_frame()).err(),
            Some(ExecDrop::BadHeader)
        );
    }

    /// An ND link-layer address option: `kind`, `len` in units of 8 bytes, bytes from `fill`.
    fn nd_opt(kind: u8, len: u8, fill: u8) -> Vec<u8> {
        let mut o = vec![kind, len];
        o.resize(len.max(1) as usize * 8, fill);
        o
    }

    #[test]
    fn set_nd_writes_the_first_link_layer_option_of_its_kind() {
        const T: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99];
        // What translation writes on each: a solicitation has `nd_sll`, an advertisement
        // `nd_tll`.
        let set = |ty: u8| {
            [
                DpAction::SetNdTarget(T),
                if ty == 135 {
                    DpAction::SetNdSll(MAC_B)
                } else {
                    DpAction::SetNdTll(MAC_A)
                },
            ]
        };
        // (message type, options, where each written address is expected: option index)
        type Case<'a> = (u8, Vec<&'a [u8]>, Option<usize>);
        let sll = nd_opt(1, 1, 0x11);
        let tll = nd_opt(2, 1, 0x22);
        let nonce = nd_opt(14, 1, 0x33);
        let wide_tll = nd_opt(2, 2, 0x44);
        let cases: [Case; 6] = [
            (135, vec![&sll], Some(0)),
            (135, vec![], None),
            (135, vec![&nonce, &sll], Some(1)),
            (136, vec![&tll], Some(0)),
            // The first link-layer option is a source address: nothing written.
            (136, vec![&sll, &tll], None),
            // A 16-byte target address option is not Ethernet's: passed over.
            (136, vec![&wide_tll, &tll], Some(1)),
        ];
        for (ty, opts, written) in cases {
            let f = nd_frame(ty, &opts.concat());
            let out = ok_apply(&set(ty), &f);
            assert_checksums(&out);
            let m = ok(&out);
            assert_eq!(m.key.nd_target, T);
            let l4 = m.l4_ofs as usize;
            let mut want = f.clone();
            want[l4 + 8..l4 + 24].copy_from_slice(&T);
            if let Some(i) = written {
                let at = l4 + 24 + opts[..i].iter().map(|o| o.len()).sum::<usize>() + 2;
                want[at..at + 6].copy_from_slice(if ty == 135 { &MAC_B } else { &MAC_A });
            }
            // Everything but the checksum is as predicted.
            want[l4 + 2..l4 + 4].copy_from_slice(&out[l4 + 2..l4 + 4]);
            assert_eq!(out, want, "type {ty}, options {opts:?}");
        }
    }

    #[test]
    fn set_nd_stops_at_a_bad_option_and_needs_neighbour_discovery() {
        // An option of length 0 ends the walk: the address after it is not written. (The
        // parser drops such a frame; the action is checked on its own.)
        let mut f = nd_frame(135, &[nd_opt(14, 1, 0x33), nd_opt(1, 1, 0x11)].concat());
        let m = ok(&f);
        let l4 = m.l4_ofs as usize;
        f[l4 + 25] = 0;
        let mut meta = m;
        let before = f.clone();
        set_field(&DpAction::SetNdSll(MAC_B), &mut f, &mut meta).unwrap();
        assert_eq!(f, before);
        // An option running past the payload: not written either.
        f[l4 + 25] = 3;
        let before = f.clone();
        set_field(&DpAction::SetNdSll(MAC_B), &mut f, &mut meta).unwrap();
        assert_eq!(f, before);
        // With the nonce's length right, the address is written.
        f[l4 + 25] = 1;
        set_field(&DpAction::SetNdSll(MAC_B), &mut f, &mut meta).unwrap();
        assert_eq!(f[l4 + 34..l4 + 40], MAC_B);
        // Not a solicitation or advertisement.
        for a in [
            DpAction::SetNdTarget([1; 16]),
            DpAction::SetNdSll(MAC_B),
            DpAction::SetNdTll(MAC_B),
        ] {
            assert_eq!(
                apply(std::slice::from_ref(&a), &frames_v6()[2]).err(),
                Some(ExecDrop::BadHeader)
            );
            assert_eq!(apply(&[a], &udp4_frame()).err(), Some(ExecDrop::BadHeader));
        }
    }

    #[test]
    fn dec_ttl_at_one_drops() {
        let mut f = udp4_frame();
        f[22] = 1;
        let f = fill_checksums(f);
        assert_eq!(
            apply(&[DpAction::DecTtl], &f).err(),
            Some(ExecDrop::TtlExceeded)
        );
        let mut f6 = tcp6_frame();
        f6[21] = 0;
        assert_eq!(
            apply(&[DpAction::DecTtl], &f6).err(),
            Some(ExecDrop::TtlExceeded)
        );
        f6[21] = 2;
        assert_eq!(ok(&ok_apply(&[DpAction::DecTtl], &f6)).key.nw_ttl, 1);
        // Non-IP: no-op.
        assert_eq!(ok_apply(&[DpAction::DecTtl], &arp_frame()), arp_frame());
    }

    #[test]
    fn set_ports_fix_checksums() {
        for f in frames_v4().into_iter().chain(frames_v6()) {
            let m = ok(&f);
            let r = apply(&[DpAction::SetTpSrc(4242), DpAction::SetTpDst(8080)], &f);
            if m.key.nw_proto == ipproto::ICMP || m.key.nw_proto == ipproto::ICMPV6 {
                assert_eq!(r.err(), Some(ExecDrop::BadHeader));
                continue;
            }
            let (out, meta) = r.unwrap();
            let l4 = m.l4_ofs as usize;
            assert_eq!(&out[l4..l4 + 4], &[0x10, 0x92, 0x1f, 0x90]);
            assert_eq!((meta.key.tp_src, meta.key.tp_dst), (4242, 8080));
        }
    }

    #[test]
    fn sets_on_absent_headers_are_bad_header() {
        let arp = arp_frame();
        for a in [
            DpAction::SetIpv4Src(1),
            DpAction::SetIpv6Dst([1; 16]),
            DpAction::SetIpDscp(8),
            DpAction::SetIpTtl(3),
            DpAction::SetTpSrc(1),
            DpAction::SetVlanVid(1),
            DpAction::SetVlanPcp(1),
            DpAction::PopVlan,
        ] {
            assert_eq!(
                apply(std::slice::from_ref(&a), &arp).err(),
                Some(ExecDrop::BadHeader),
                "{a:?}"
            );
        }
        assert_eq!(
            apply(&[DpAction::SetIpv4Src(1)], &tcp6_frame()).err(),
            Some(ExecDrop::BadHeader)
        );
        assert_eq!(
            apply(&[DpAction::SetIpv6Src([1; 16])], &udp4_frame()).err(),
            Some(ExecDrop::BadHeader)
        );
    }

    #[test]
    fn vlan_push_and_pop_keep_the_key_the_vlan_limit_reads() {
        let one = VlanLimit::DEFAULT;
        let f = udp4_frame();
        let push = |tpid, tci| DpAction::PushVlan { tpid, tci };
        // Within the limit: the IP fields stay.
        let (tagged, m) = apply_limit(&[push(ethertype::VLAN, 5)], &f, one).unwrap();
        assert_eq!((m.key.dl_type, m.l4_ofs), (ethertype::IPV4, 38));
        // A second header: the inner TPID is the EtherType and the IP fields go.
        let (qinq, m) = apply_limit(&[push(ethertype::QINQ, 6)], &tagged, one).unwrap();
        assert_eq!(
            (m.key.vlan_tpid, m.key.vlan_tci, m.key.vlan2_tci),
            (ethertype::QINQ, 6 | VLAN_PRESENT, 0)
        );
        assert_eq!(
            (m.key.dl_type, m.key.nw_src, m.key.tp_src),
            (ethertype::VLAN, 0, 0)
        );
        assert_eq!((m.l3_ofs, m.l4_ofs), (18, NO_OFFSET));
        // Popping it brings them back.
        let (back, m) = apply_limit(&[DpAction::PopVlan], &qinq, one).unwrap();
        assert_eq!(back, tagged);
        assert_eq!(
            (m.key.vlan_tci, m.key.dl_type),
            (5 | VLAN_PRESENT, ethertype::IPV4)
        );
        assert_eq!(m.key.tp_dst, ok(&f).key.tp_dst);
        assert_eq!(
            ok_apply(&[push(ethertype::QINQ, 6), DpAction::PopVlan], &tagged),
            tagged
        );
        // A header the parser never read may be malformed: the packet still goes out.
        let mut bad = qinq.clone();
        bad.truncate(18 + 4 + 10);
        let rig = run_with(
            &[DpAction::PopVlan, DpAction::Output(1)],
            &[bad],
            64,
            ExecTargets {
                vlans: one,
                ..TARGETS
            },
        );
        assert_eq!(rig.next[0], Next::CONSUMED);
        assert_eq!(rig.pool.meta(rig.pkts[0]).key.dl_type, ethertype::IPV4);
    }

    #[test]
    fn vlan_push_pop_and_set() {
        let f = udp4_frame();
        let (tagged, m) = apply(
            &[DpAction::PushVlan {
                tpid: ethertype::VLAN,
                tci: 0x2064,
            }],
            &f,
        )
        .unwrap();
        assert_eq!(&tagged[12..18], &[0x81, 0, 0x20, 0x64, 0x08, 0x00]);
        assert_eq!(m.key.vlan_tci, 0x2064 | VLAN_PRESENT);
        assert_eq!((m.l3_ofs, m.l4_ofs), (18, 38));

        let (qinq, m) = apply(
            &[DpAction::PushVlan {
                tpid: ethertype::QINQ,
                tci: 7,
            }],
            &tagged,
        )
        .unwrap();
        assert_eq!(
            &qinq[12..22],
            &[0x88, 0xa8, 0, 7, 0x81, 0, 0x20, 0x64, 8, 0]
        );
        assert_eq!(
            (m.key.vlan_tpid, m.key.vlan2_tci),
            (ethertype::QINQ, 0x2064 | VLAN_PRESENT)
        );

        // A third header: the key keeps the outer two, the third TPID is the EtherType.
        let third = DpAction::PushVlan {
            tpid: ethertype::VLAN,
            tci: 1,
        };
        let (three, m) = apply(std::slice::from_ref(&third), &qinq).unwrap();
        assert_eq!(
            (m.key.vlan_tci, m.key.vlan2_tci, m.key.dl_type),
            (1 | VLAN_PRESENT, 7 | VLAN_PRESENT, ethertype::VLAN)
        );
        assert_eq!((m.key.nw_proto, m.l4_ofs), (0, NO_OFFSET));
        // Popping it reads the IP header again.
        assert_eq!(ok_apply(&[third, DpAction::PopVlan], &qinq), qinq);
        assert_eq!(apply(&[DpAction::PopVlan], &three).unwrap().0, qinq);

        // Pop the outer: back to the single tag, tpid from the inner header.
        let (popped, m) = apply(&[DpAction::PopVlan], &qinq).unwrap();
        assert_eq!(popped, tagged);
        assert_eq!(m.key.vlan_tpid, ethertype::VLAN);
        assert_eq!(ok_apply(&[DpAction::PopVlan, DpAction::PopVlan], &qinq), f);

        // Push then pop in one list restores the frame.
        let push = DpAction::PushVlan {
            tpid: ethertype::QINQ,
            tci: 0xffff,
        };
        assert_eq!(ok_apply(&[push.clone(), DpAction::PopVlan], &f), f);
        let (out, m) = apply(&[push], &f).unwrap();
        // The present bit is not a wire bit: DEI goes out as 0.
        assert_eq!(&out[14..16], &[0xef, 0xff]);
        assert_eq!(m.key.vlan_tci, 0xffff);

        let out = ok_apply(
            &[DpAction::SetVlanVid(0xabc), DpAction::SetVlanPcp(5)],
            &tagged,
        );
        assert_eq!(&out[14..16], &[0xaa, 0xbc]);
        let k = ok(&out).key;
        assert_eq!((k.vlan_tci & VLAN_VID_MASK, k.vlan_tci >> 13), (0xabc, 5));
        assert_eq!(
            ok_apply(
                &[DpAction::SetVlanVid(0x064), DpAction::SetVlanPcp(1)],
                &tagged
            ),
            tagged
        );
    }

    #[test]
    fn outputs_clone_then_move() {
        let f = udp4_frame();
        let rig = run(
            &[
                DpAction::Output(1),
                DpAction::SetIpv4Dst(0x0b0b_0b0b),
                DpAction::Output(2),
                DpAction::SetEthDst([9; 6]),
                DpAction::Output(3),
            ],
            &[f.clone(), f.clone()],
        );
        assert_eq!(rig.next, vec![Next::CONSUMED; 2]);
        let (o1, o2, o3) = (rig.out(1), rig.out(2), rig.out(3));
        assert_eq!(o1, vec![f.clone(), f.clone()]);
        assert_eq!(ok(&o2[0]).key.nw_dst, 0x0b0b_0b0b);
        assert_eq!(o2[0][..6], MAC_B);
        assert_eq!(o3[0][..6], [9; 6]);
        for o in o2.iter().chain(&o3) {
            assert_checksums(o);
        }
        // The originals went to port 3 itself.
        assert_eq!(rig.tx.queue(3).unwrap(), &rig.pkts);
        assert_eq!(rig.pool.available(), 64 - 6);
    }

    #[test]
    fn no_output_missing_port_and_no_buffers() {
        let f = udp4_frame();
        let rig = run(&[DpAction::SetIpTtl(3)], std::slice::from_ref(&f));
        assert_eq!(rig.next, vec![Next::drop(ExecDrop::NoOutput as u16)]);
        let rig = run(&[], std::slice::from_ref(&f));
        assert_eq!(rig.next, vec![Next::drop(ExecDrop::NoOutput as u16)]);

        // Port 7 has no queue: copy and original are freed and counted by the queues.
        let rig = run(
            &[DpAction::Output(7), DpAction::Output(7)],
            std::slice::from_ref(&f),
        );
        assert_eq!(rig.next, vec![Next::CONSUMED]);
        assert_eq!(rig.tx.no_such_port, 2);
        assert_eq!(rig.pool.available(), 64);

        // A pool of one frame: no copy possible, the original still goes out.
        let rig = run_with(
            &[DpAction::Output(1), DpAction::Output(2)],
            std::slice::from_ref(&f),
            1,
            TARGETS,
        );
        assert_eq!(rig.next, vec![Next::CONSUMED]);
        assert_eq!(rig.tx.no_buffers, 1);
        assert_eq!((rig.out(1).len(), rig.out(2).len()), (0, 1));
    }

    #[test]
    fn single_output_moves_the_group_in_order() {
        let f = udp4_frame();
        let rig = run(&[DpAction::Output(2)], &[f.clone(), f.clone(), f.clone()]);
        assert_eq!(rig.next, vec![Next::CONSUMED; 3]);
        assert_eq!(rig.tx.queue(2).unwrap(), &rig.pkts);
        assert_eq!(rig.pool.available(), 64 - 3);
        // To a port without a queue: each packet is freed and counted, as before.
        let rig = run(&[DpAction::Output(9)], &[f.clone(), f]);
        assert_eq!(rig.next, vec![Next::CONSUMED; 2]);
        assert_eq!(rig.tx.no_such_port, 2);
        assert_eq!(rig.pool.available(), 64);
    }

    #[test]
    fn independence_of_packets() {
        use DpAction::*;
        assert!(packets_independent(&[]));
        assert!(packets_independent(&[Output(1)]));
        assert!(packets_independent(&[SetIpv4Dst(1), DecTtl, Output(1)]));
        assert!(packets_independent(&[SetIpTtl(3), Recirc(1)]));
        assert!(!packets_independent(&[Output(1), Output(2)]));
        assert!(!packets_independent(&[Output(1), Recirc(1)]));
        assert!(!packets_independent(&[
            Output(1),
            Controller(to_controller(9))
        ]));
        assert!(packets_independent(&[
            SetTpDst(1),
            Controller(to_controller(9))
        ]));
    }

    /// A `controller` action with its own queue, sending `max_len` bytes.
    fn to_controller(max_len: u16) -> crate::dpaction::ToController {
        crate::dpaction::ToController {
            context: Arc::new(crate::packet_in::PacketInContext {
                table_id: 3,
                cookie: 0xc0de,
                max_len,
                in_port: 7,
                ..Default::default()
            }),
            queue: Arc::new(crate::packet_in::PacketInQueue::default()),
        }
    }

    #[test]
    fn controller_queues_the_packet_as_it_is_there_and_the_packet_goes_on() {
        let (f, g) = (udp4_frame(), tcp4_frame());
        let to = to_controller(20);
        let rig = run_with(
            &[
                DpAction::Output(1),
                DpAction::SetTpDst(0x4242),
                DpAction::Controller(to.clone()),
                DpAction::Output(2),
            ],
            &[f.clone(), g.clone()],
            8,
            TARGETS,
        );
        assert_eq!(rig.next, vec![Next::CONSUMED; 2]);
        assert_eq!((rig.out(1).len(), rig.out(2).len()), (2, 2));
        let pins = to.queue.take();
        assert_eq!(pins.len(), 2);
        for (pin, frame) in pins.iter().zip([&f, &g]) {
            assert_eq!(pin.total_len as usize, frame.len());
            assert_eq!(pin.data.len(), frame.len(), "all of it, max_len 20 or not");
            assert_eq!(pin.data[..20], frame[..20]);
            assert_eq!(pin.key.tp_dst, 0x4242, "the key as the set left it");
            assert_eq!((pin.context.table_id, pin.context.cookie), (3, 0xc0de));
        }
        // Alone, or last: the packet is sent to the controller, freed, not dropped.
        for actions in [
            vec![DpAction::Controller(to.clone())],
            vec![DpAction::Output(1), DpAction::Controller(to.clone())],
        ] {
            let rig = run_with(&actions, std::slice::from_ref(&f), 8, TARGETS);
            assert_eq!(rig.next, vec![Next::CONSUMED]);
            let outs = rig.out(1).len();
            assert_eq!(rig.pool.available(), 8 - outs, "{actions:?}");
            let pin = to.queue.take();
            assert_eq!(pin.len(), 1);
            assert_eq!(pin[0].data, f);
        }
        // A full queue loses the packet-in, counted, and nothing else.
        let small = crate::dpaction::ToController {
            queue: Arc::new(crate::packet_in::PacketInQueue::with_capacity(1)),
            ..to_controller(u16::MAX)
        };
        let rig = run_with(
            &[DpAction::Controller(small.clone()), DpAction::Output(1)],
            &[f.clone(), g.clone()],
            8,
            TARGETS,
        );
        assert_eq!(rig.out(1).len(), 2);
        assert_eq!((small.queue.queued(), small.queue.overflows()), (1, 1));
        assert_eq!(small.queue.take()[0].data, f);
    }

    #[test]
    fn recirc_and_drop_base() {
        let f = udp4_frame();
        let targets = ExecTargets {
            drop_base: 3,
            recirc_next: Some(1),
            vlans: VlanLimit::MAX,
        };
        let rig = run_with(
            &[
                DpAction::SetTpDst(1),
                DpAction::Recirc(77),
                DpAction::Output(1),
            ],
            std::slice::from_ref(&f),
            8,
            targets,
        );
        assert_eq!(rig.next, vec![Next::to(1)]);
        let m = rig.pool.meta(rig.pkts[0]);
        assert_eq!((m.key.recirc_id, m.key.tp_dst), (77, 1));
        assert_eq!(m.hash, key_hash(&m.key));
        assert!(rig.out(1).is_empty());

        let no_recirc = ExecTargets {
            drop_base: 3,
            recirc_next: None,
            vlans: VlanLimit::MAX,
        };
        let rig = run_with(
            &[DpAction::Recirc(1)],
            std::slice::from_ref(&f),
            8,
            no_recirc,
        );
        assert_eq!(rig.next, vec![Next::drop(3 + ExecDrop::BadHeader as u16)]);
        let rig = run_with(&[DpAction::Output(9)], &[vec![0; 20]], 8, targets);
        assert_eq!(rig.next, vec![Next::CONSUMED]);
    }

    #[test]
    fn group_with_mixed_packets() {
        let frames = vec![udp4_frame(), arp_frame(), tcp4_frame()];
        let rig = run(
            &[
                DpAction::SetIpv4Src(5),
                DpAction::DecTtl,
                DpAction::Output(1),
            ],
            &frames,
        );
        assert_eq!(
            rig.next,
            vec![
                Next::CONSUMED,
                Next::drop(ExecDrop::BadHeader as u16),
                Next::CONSUMED
            ]
        );
        let out = rig.out(1);
        assert_eq!(out.len(), 2);
        for o in &out {
            assert_checksums(o);
            assert_eq!((ok(o).key.nw_src, ok(o).key.nw_ttl), (5, 63));
        }
    }

    /// A header of `len` bytes of `fill`, refused (as the tunnels' is) when it does not fit.
    struct Fill {
        bytes: Vec<u8>,
    }

    impl crate::PushHeader for Fill {
        fn template(&self) -> &[u8] {
            &self.bytes
        }
        fn checksummed(&self) -> bool {
            false
        }
        fn push(&self, pool: &mut PacketPool, id: PacketId) -> Result<(), ExecDrop> {
            let f = pool
                .push_front(id, self.bytes.len())
                .map_err(|_| ExecDrop::TunnelNoHeadroom)?;
            f[..self.bytes.len()].copy_from_slice(&self.bytes);
            Ok(())
        }
        fn describe(&self) -> String {
            format!("fill({})", self.bytes.len())
        }
    }

    fn push(byte: u8, len: usize) -> DpAction {
        DpAction::TunnelPush(crate::Header(std::sync::Arc::new(Fill {
            bytes: vec![byte; len],
        })))
    }

    #[test]
    fn a_clone_works_on_a_copy_and_the_packet_goes_on_as_it_was() {
        let frames = frames_v4();
        let plain = frames[0].clone();
        let rig = run(
            &[
                DpAction::Clone(Box::new([push(0xaa, 14), DpAction::Output(2)])),
                DpAction::Output(1),
            ],
            &frames[..1],
        );
        assert_eq!(rig.next[0], Next::CONSUMED);
        assert_eq!(rig.out(1), vec![plain.clone()]);
        let pushed = rig.out(2);
        assert_eq!(pushed.len(), 1);
        assert_eq!(&pushed[0][..14], &[0xaa; 14]);
        assert_eq!(&pushed[0][14..], &plain[..]);
        assert_eq!(rig.tx.encapsulated, 1);
    }

    #[test]
    fn a_last_clone_moves_the_packet_and_its_drop_is_the_packets() {
        let frames = frames_v4();
        // Nothing after the clone: the original is pushed, no copy is made.
        let rig = run(
            &[DpAction::Clone(Box::new([
                push(0xbb, 8),
                DpAction::Output(3),
            ]))],
            &frames[..2],
        );
        assert_eq!(rig.next, vec![Next::CONSUMED; 2]);
        assert_eq!(rig.out(3).len(), 2);
        assert_eq!(rig.pool.available(), 64 - 2);
        // A clone that drops: the packet drops with its reason.
        let miss = DpAction::Clone(Box::new([DpAction::Drop(ExecDrop::TunnelNeighMiss)]));
        let rig = run(std::slice::from_ref(&miss), &frames[..1]);
        assert_eq!(rig.next[0], Next::drop(ExecDrop::TunnelNeighMiss as u16));
        // Output before it: the copy drops, counted, and its frame is free again.
        let rig = run(&[miss, DpAction::Output(1)], &frames[..1]);
        assert_eq!(rig.next[0], Next::CONSUMED);
        assert_eq!(rig.tx.clone_drops[ExecDrop::TunnelNeighMiss as usize], 1);
        assert_eq!(rig.pool.available(), 64 - 1);
    }

    #[test]
    fn a_header_without_room_drops_and_a_drop_ends_the_list() {
        let frames = frames_v4();
        let rig = run(
            &[push(0xcc, crate::HEADROOM + 1), DpAction::Output(1)],
            &frames[..1],
        );
        assert_eq!(rig.next[0], Next::drop(ExecDrop::TunnelNoHeadroom as u16));
        assert!(rig.out(1).is_empty());
        let rig = run(
            &[DpAction::Drop(ExecDrop::TunnelNoRoute), DpAction::Output(1)],
            &frames[..1],
        );
        assert_eq!(rig.next[0], Next::drop(ExecDrop::TunnelNoRoute as u16));
        assert!(rig.out(1).is_empty());
        // After a push, a set acts on the outer frame: the key was read again.
        let rig = run(
            &[DpAction::Clone(Box::new([
                DpAction::TunnelPush(crate::Header(std::sync::Arc::new(Fill {
                    bytes: frames[0][..34].to_vec(),
                }))),
                DpAction::SetEthDst([2, 0, 0, 0, 0, 9]),
                DpAction::Output(2),
            ]))],
            &frames[..1],
        );
        let out = rig.out(2);
        assert_eq!(&out[0][..6], &[2, 0, 0, 0, 0, 9]);
        assert_eq!(&out[0][34..], &frames[0][..]);
        assert!(!packets_independent(&[
            DpAction::Clone(Box::new([DpAction::Output(2)])),
            DpAction::Output(1)
        ]));
    }

    /// A header no packet fits, with an answer for each.
    struct NeverFits;

    impl crate::PushHeader for NeverFits {
        fn template(&self) -> &[u8] {
            &[]
        }
        fn checksummed(&self) -> bool {
            false
        }
        fn push(&self, _: &mut PacketPool, _: PacketId) -> Result<(), ExecDrop> {
            Err(ExecDrop::TunnelTooBig)
        }
        fn too_big_reply(&self, frame: &[u8], _: &PacketMeta) -> Option<Vec<u8>> {
            Some(frame[..20].to_vec())
        }
        fn describe(&self) -> String {
            "never-fits".into()
        }
    }

    #[test]
    fn a_packet_too_big_for_its_tunnel_is_answered_on_its_own_port() {
        let frames = frames_v4();
        let mut pool = PacketPool::new(8);
        let mut tx = TxQueues::new(&[1, 2]);
        let id = pool.alloc_with(&frames[0]).unwrap();
        let (d, m) = pool.data_and_meta_mut(id);
        parse_packet_limit(d, m, VlanLimit::MAX).unwrap();
        m.key.in_port = 2;
        m.rx_ns = 1_700_000_000_000_000_000;
        let mut next = [Next::CONSUMED];
        let mut cx = Ctx {
            pool: &mut pool,
            tx: &mut tx,
            now_ns: 0,
        };
        let push = DpAction::TunnelPush(crate::Header(std::sync::Arc::new(NeverFits)));
        execute(
            &[DpAction::Clone(Box::new([push, DpAction::Output(1)]))],
            &mut cx,
            &[id],
            &mut next,
            TARGETS,
        );
        assert_eq!(next[0], Next::drop(ExecDrop::TunnelTooBig as u16));
        assert_eq!(tx.too_big_answers, 1);
        assert!(tx.queue(1).unwrap().is_empty());
        let back = tx.queue(2).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(pool.data(back[0]), &frames[0][..20]);
        // Received when the packet it answers was (a replay writes it with that timestamp).
        assert_eq!(pool.meta(back[0]).rx_ns, 1_700_000_000_000_000_000);
    }

    /// A `ct()` that holds every fragment until it has seen three, then releases copies of
    /// them: the first two to go on, the third refused.
    struct HoldThree(std::sync::Mutex<Vec<Vec<u8>>>);

    impl crate::Track for HoldThree {
        fn track(
            &self,
            pool: &mut PacketPool,
            pkts: &[PacketId],
            _now_ns: u64,
            _drops: &mut [Option<ExecDrop>],
            frags: &mut Fragments,
        ) {
            let mut held = self.0.lock().unwrap();
            for (i, &p) in pkts.iter().enumerate() {
                if pool.meta(p).key.nw_frag == 0 {
                    pool.meta_mut(p).key.ct_state = 0x21;
                    continue;
                }
                held.push(pool.data(p).to_vec());
                frags.held.push(i as u16);
                if held.len() == 3 {
                    for (n, f) in held.drain(..).enumerate() {
                        let id = pool.alloc_with(&f).unwrap();
                        let (d, m) = pool.data_and_meta_mut(id);
                        parse_packet_limit(d, m, VlanLimit::MAX).unwrap();
                        m.key.ct_state = 0x21;
                        let drop = (n == 2).then_some(ExecDrop::CtRefused);
                        frags.released.push((id, drop));
                    }
                }
            }
        }
        fn describe(&self) -> String {
            "ct(hold)".to_string()
        }
    }

    #[test]
    fn ct_holds_fragments_and_runs_the_released_ones_through_the_rest() {
        let ct = DpAction::Ct(crate::Tracker(std::sync::Arc::new(HoldThree(
            Default::default(),
        ))));
        let frag = |off: u16| eth(ethertype::IPV4, &ipv4(17, &[], off, &[off as u8; 16]));
        let whole = eth(ethertype::IPV4, &ipv4(17, &[], 0, &udp(1, 2, b"x")));
        let frames = [frag(0x2000), whole.clone(), frag(0x2002), frag(4)];
        // Then an output: the whole packet first (the group's actions), then the released
        // fragments in their order; the refused one is dropped and counted.
        let rig = run(&[ct.clone(), DpAction::Output(2)], &frames);
        assert_eq!(
            rig.next,
            [
                Next::CONSUMED,
                Next::CONSUMED,
                Next::CONSUMED,
                Next::CONSUMED
            ]
        );
        assert_eq!(
            rig.out(2),
            [whole.clone(), frames[0].clone(), frames[2].clone()]
        );
        assert_eq!(rig.tx.clone_drops[ExecDrop::CtRefused as usize], 1);
        // Held fragments went back to the pool: what is left is the queue.
        assert_eq!(rig.pool.available(), 64 - 3);
        // Then a recirculation: the released ones go to the switch's recirculation queue.
        let rig = run(&[ct, DpAction::Recirc(7)], &frames);
        assert_eq!(rig.next[1], Next::to(0));
        assert_eq!(rig.tx.recirc.len(), 2);
        assert!(rig
            .tx
            .recirc
            .iter()
            .all(|&p| rig.pool.meta(p).key.recirc_id == 7));
    }
}
