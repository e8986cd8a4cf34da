//! UDP, ICMP and ICMPv6 queries and errors, IPv4 and IPv6, and the dump format.
// Tests stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use conntrack::{tcp_flags as f, ConnTable, CtEvent, CtExec, CtInvalid};
use pipeline::flowkey::ct_state::{
    ESTABLISHED as EST, INVALID as INV, NEW, RELATED as REL, REPLY as RPL, TRACKED as TRK,
};

#[test]
fn udp_request_response() {
    let t = ConnTable::default();
    let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    let req = udp(a, 5353, b, 53);
    let rsp = udp(b, 53, a, 5353);
    // Uncommitted +new leaves nothing behind.
    assert_eq!(t.process(&req, 0, false, 0).state, TRK | NEW);
    assert!(t.is_empty());
    let first = t.process(&req, 0, true, 0);
    assert_eq!((first.state, first.event), (TRK | NEW, CtEvent::Committed));
    // OVS: still +new until the other side answers (udp_single).
    assert_eq!(t.process(&req, 0, true, SEC).state, TRK | NEW);
    let key = first.orig.unwrap();
    assert_eq!(t.get(&key, SEC).unwrap().timeout_secs, 60);
    assert_eq!(t.process(&rsp, 0, true, 2 * SEC).state, TRK | EST | RPL);
    assert_eq!(t.process(&req, 0, true, 3 * SEC).state, TRK | EST);
    assert_eq!(t.get(&key, 3 * SEC).unwrap().timeout_secs, 30); // udp_multiple
    assert_eq!(t.len(), 1);
    assert_eq!(
        t.process(&rsp, 0, true, 34 * SEC).state,
        TRK | NEW,
        "expired"
    );
}

#[test]
fn icmp_echo_request_reply() {
    let t = ConnTable::default();
    let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    // A reply with no request cannot open a connection.
    let stray = t.process(&icmp(b, a, 0, 0, 7), 0, true, 0);
    assert_eq!(stray.event, CtEvent::Invalid(CtInvalid::CannotOpen));
    assert_eq!(
        t.process(&icmp(a, b, 8, 1, 7), 0, true, 0).state,
        TRK | INV,
        "code 1"
    );
    assert_eq!(t.process(&icmp(a, b, 8, 0, 7), 0, true, 0).state, TRK | NEW);
    assert_eq!(
        t.process(&icmp(b, a, 0, 0, 7), 0, true, 0).state,
        TRK | EST | RPL
    );
    assert_eq!(t.process(&icmp(a, b, 8, 0, 7), 0, true, 0).state, TRK | EST);
    // Another identifier is another connection.
    assert_eq!(
        t.process(&icmp(a, b, 8, 0, 8), 0, false, 0).state,
        TRK | NEW
    );
    let e = t.entries(None, 0);
    assert_eq!(
        e[0].to_string(),
        "icmp,orig=(src=10.0.0.1,dst=10.0.0.2,id=7,type=8,code=0),reply=(src=10.0.0.2,dst=10.0.0.1,id=7,type=0,code=0)"
    );
    assert_eq!(e[0].timeout_secs, 30);
    // ct_tp_src/ct_tp_dst of an ICMP connection are its type and code.
    assert_eq!(e[0].orig.tuple_ports(), (8, 0));
}

#[test]
fn icmp_errors_are_related_to_the_flow_they_quote() {
    let t = ConnTable::default();
    let (a, b, router) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2), v4(192, 0, 2, 1));
    let req = udp(a, 5353, b, 53);
    // Unrelated before the flow exists, and never creates an entry.
    let err = icmp_error(router, 3, 3, &req);
    let out = t.process(&err, 0, true, 0);
    assert_eq!(out.state, TRK | INV);
    assert_eq!(out.event, CtEvent::Invalid(CtInvalid::UnrelatedIcmpError));
    assert!(t.is_empty());

    t.process(&req, 0, true, 0);
    t.set_mark(&t.process(&req, 0, false, 0).orig.unwrap(), 9, u32::MAX, 0);
    // The error travels back to the client: the reply direction.
    let out = t.process(&err, 0, true, 0);
    assert_eq!(out.state, TRK | REL | RPL, "{}", out.state_string());
    assert_eq!(out.mark, 9);
    assert_eq!(out.orig.unwrap().sport, 5353);
    // An error about the server's answer travels in the original direction.
    let rsp = udp(b, 53, a, 5353);
    assert_eq!(
        t.process(&icmp_error(router, 11, 0, &rsp), 0, true, 0)
            .state,
        TRK | REL
    );
    // The quoted packet must be one the error's destination sent.
    let mut forged = err;
    forged.dst = v4(10, 9, 9, 9);
    assert_eq!(
        t.process(&forged, 0, true, 0).event,
        CtEvent::Invalid(CtInvalid::BadHeader)
    );
    assert_eq!(t.len(), 1);

    // TCP and ICMP echo quoted too.
    let mut c = Tcp::new(a, 40000, b, 80);
    let syn = c.c2s(f::SYN, 0);
    t.process(&syn, 0, true, 0);
    assert_eq!(
        t.process(&icmp_error(router, 3, 1, &syn), 0, false, 0)
            .state,
        TRK | REL | RPL
    );
    let ping = icmp(a, b, 8, 0, 99);
    t.process(&ping, 0, true, 0);
    assert_eq!(
        t.process(&icmp_error(router, 11, 0, &ping), 0, false, 0)
            .state,
        TRK | REL | RPL
    );
    // An error quoting an error is invalid.
    let nested = icmp_error(router, 3, 0, &icmp_error(b, 3, 0, &req));
    assert_eq!(t.process(&nested, 0, false, 0).state, TRK | INV);
}

#[test]
fn ipv6_udp_echo_and_packet_too_big() {
    let t = ConnTable::default();
    let (a, b, router) = (v6("2001:db8::1"), v6("2001:db8::2"), v6("2001:db8:ffff::1"));
    let req = udp(a, 1000, b, 2000);
    assert_eq!(t.process(&req, 4, true, 0).state, TRK | NEW);
    assert_eq!(
        t.process(&udp(b, 2000, a, 1000), 4, true, 0).state,
        TRK | EST | RPL
    );
    assert_eq!(
        t.process(&icmp(a, b, 128, 0, 1), 4, true, 0).state,
        TRK | NEW
    );
    assert_eq!(
        t.process(&icmp(b, a, 129, 0, 1), 4, true, 0).state,
        TRK | EST | RPL
    );
    // Neighbour solicitation is neither a query nor an error.
    assert_eq!(
        t.process(&icmp(a, b, 135, 0, 0), 4, true, 0).state,
        TRK | INV
    );
    let mut c = Tcp::new(a, 50000, b, 443);
    let syn = c.c2s(f::SYN, 0);
    t.process(&syn, 4, true, 0);
    let big = icmp_error(router, 2, 0, &syn);
    assert_eq!(t.process(&big, 4, false, 0).state, TRK | REL | RPL);
    // ICMPv6 errors about TCP need the whole TCP header quoted, as in OVS.
    let mut short = big;
    if let Some(q) = short.icmp.quoted.as_mut() {
        q.l4_len = 8;
    }
    assert_eq!(t.process(&short, 4, false, 0).state, TRK | INV);
    assert_eq!(t.zone_count(4), 3);
    let mut lines: Vec<String> = t
        .entries(Some(4), 0)
        .iter()
        .map(|e| e.to_string())
        .collect();
    lines.sort();
    assert_eq!(
        lines[0],
        "icmpv6,orig=(src=2001:db8::1,dst=2001:db8::2,id=1,type=128,code=0),reply=(src=2001:db8::2,dst=2001:db8::1,id=1,type=129,code=0),zone=4"
    );
}

#[test]
fn mark_and_label_are_set_on_commit_and_dumped() {
    let t = ConnTable::default();
    let mut c = Tcp::new(v4(10, 0, 0, 1), 40000, v4(10, 0, 0, 2), 80);
    let exec = CtExec {
        zone: 1,
        commit: true,
        set_mark: Some((5, 0xff)),
        set_label: Some((0x1_0000_0000_0000_0000_0000_00ab, u128::MAX)),
        nat: None,
    };
    let out = t.execute(&c.c2s(f::SYN, 0), &exec, 0);
    assert_eq!(
        (out.mark, out.label),
        (5, 0x1_0000_0000_0000_0000_0000_00ab)
    );
    let reply = t.process(&c.s2c(f::SYN | f::ACK, 0), 1, false, 0);
    assert_eq!(reply.mark, 5);
    // Masked updates keep the other bits.
    let key = reply.orig.unwrap();
    assert!(t.set_mark(&key.reverse(), 0x100, 0xf00, 0));
    assert!(t.set_label(&key, 0, 0xff, 0));
    assert_eq!(
        t.get(&key, 0).unwrap().to_string(),
        "tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=80),reply=(src=10.0.0.2,dst=10.0.0.1,sport=80,dport=40000),zone=1,mark=261,labels=0x1000000000000000000000000,protoinfo=(state=ESTABLISHED)"
    );
    // The brief's example.
    t.set_mark(&key, 5, u32::MAX, 0);
    t.set_label(&key, 0, u128::MAX, 0);
    assert_eq!(
        t.get(&key, 0).unwrap().to_string(),
        "tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=80),reply=(src=10.0.0.2,dst=10.0.0.1,sport=80,dport=40000),zone=1,mark=5,protoinfo=(state=ESTABLISHED)"
    );
}

#[test]
fn other_protocols_track_by_addresses() {
    let t = ConnTable::default();
    let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    let mut gre = udp(a, 0, b, 0);
    gre.proto = 47;
    assert_eq!(t.process(&gre, 0, true, 0).state, TRK | NEW);
    let mut back = udp(b, 0, a, 0);
    back.proto = 47;
    assert_eq!(t.process(&back, 0, true, 0).state, TRK | EST | RPL);
    assert_eq!(
        t.entries(None, 0)[0].to_string(),
        "47,orig=(src=10.0.0.1,dst=10.0.0.2,sport=0,dport=0),reply=(src=10.0.0.2,dst=10.0.0.1,sport=0,dport=0)"
    );
}
