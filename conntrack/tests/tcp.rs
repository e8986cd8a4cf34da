//! TCP tracking through the table: handshake, data, close, reset, window checks, timeouts.
// Tests stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use conntrack::{
    tcp_flags as f, ConnTable, CtConfig, CtEvent, CtInvalid, TcpState, DEFAULT_MAX_CONNS,
};
use pipeline::flowkey::ct_state::{
    ESTABLISHED as EST, INVALID as INV, NEW, REPLY as RPL, TRACKED as TRK,
};

fn conn() -> Tcp {
    Tcp::new(v4(10, 0, 0, 1), 40000, v4(10, 0, 0, 2), 80)
}

/// Runs the three-way handshake, checking each step.
fn handshake(t: &ConnTable, c: &mut Tcp, now: u64) {
    let syn = t.process(&c.c2s(f::SYN, 0), 1, true, now);
    assert_eq!(syn.state, TRK | NEW);
    assert_eq!(syn.event, CtEvent::Committed);
    let syn_ack = t.process(&c.s2c(f::SYN | f::ACK, 0), 1, true, now);
    assert_eq!(syn_ack.state, TRK | EST | RPL, "{}", syn_ack.state_string());
    let ack = t.process(&c.c2s(f::ACK, 0), 1, true, now);
    assert_eq!(ack.state, TRK | EST);
}

fn state_of(t: &ConnTable, c: &Tcp, now: u64) -> Option<TcpState> {
    let key = t.process(&c.clone().c2s(f::ACK, 0), 1, false, now).orig?;
    t.get(&key, now)?.tcp_state()
}

#[test]
fn handshake_data_and_fin_close() {
    let t = ConnTable::default();
    let mut c = conn();
    handshake(&t, &mut c, 0);
    assert_eq!(state_of(&t, &c, 0), Some(TcpState::Established));
    for _ in 0..10 {
        assert_eq!(
            t.process(&c.c2s(f::ACK | f::PSH, 1000), 1, false, SEC)
                .state,
            TRK | EST
        );
        assert_eq!(
            t.process(&c.s2c(f::ACK, 1400), 1, false, SEC).state,
            TRK | EST | RPL
        );
    }
    let key = t
        .process(&c.clone().c2s(f::ACK, 0), 1, false, SEC)
        .orig
        .unwrap();
    assert_eq!(t.get(&key, SEC).unwrap().timeout_secs, 86_400);

    // Client closes, server closes.
    assert_eq!(
        t.process(&c.c2s(f::FIN | f::ACK, 0), 1, false, 2 * SEC)
            .state,
        TRK | EST
    );
    assert_eq!(
        t.process(&c.s2c(f::ACK, 0), 1, false, 2 * SEC).state,
        TRK | EST | RPL
    );
    assert_eq!(t.get(&key, 2 * SEC).unwrap().timeout_secs, 15 * 60); // tcp_fin_wait
    assert_eq!(
        t.process(&c.s2c(f::FIN | f::ACK, 0), 1, false, 3 * SEC)
            .state,
        TRK | EST | RPL
    );
    assert_eq!(
        t.process(&c.c2s(f::ACK, 0), 1, false, 3 * SEC).state,
        TRK | EST
    );
    let e = t.get(&key, 3 * SEC).unwrap();
    assert_eq!(e.tcp, Some((TcpState::FinWait2, TcpState::FinWait2)));
    assert_eq!(e.tcp_state(), Some(TcpState::TimeWait));
    assert_eq!(e.timeout_secs, 30); // tcp_close
                                    // Gone 30 s later: the next packet is a miss (a plain ACK may be picked up as +new).
    let late = t.process(&c.c2s(f::ACK, 0), 1, false, 34 * SEC);
    assert_eq!(late.state, TRK | NEW);
    assert!(t.is_empty());
}

#[test]
fn reset_closes_and_a_bad_reset_is_invalid() {
    let t = ConnTable::default();
    let mut c = conn();
    handshake(&t, &mut c, 0);
    let mut bad = c;
    bad.sseq = bad.sseq.wrapping_add(100_000);
    let out = t.process(&bad.s2c(f::RST, 0), 1, false, SEC);
    assert_eq!(out.state, TRK | INV);
    assert_eq!(out.event, CtEvent::Invalid(CtInvalid::TcpWindow));
    assert_eq!(
        t.process(&c.s2c(f::RST, 0), 1, false, SEC).state,
        TRK | EST | RPL
    );
    let key = t
        .process(&c.clone().c2s(f::ACK, 0), 1, false, SEC)
        .orig
        .unwrap();
    let e = t.get(&key, SEC).unwrap();
    assert_eq!(e.tcp, Some((TcpState::TimeWait, TcpState::TimeWait)));
    assert_eq!(e.timeout_secs, 30);
}

#[test]
fn out_of_window_segments_are_invalid() {
    let t = ConnTable::default();
    let mut c = conn();
    handshake(&t, &mut c, 0);
    // Far beyond what the server's window allows.
    let mut ahead = c;
    ahead.cseq = ahead.cseq.wrapping_add(10_000_000);
    let out = t.process(&ahead.c2s(f::ACK, 100), 1, false, SEC);
    assert_eq!(out.state, TRK | INV);
    assert_eq!(out.event, CtEvent::Invalid(CtInvalid::TcpWindow));
    // Acknowledging data never sent.
    let mut acks_future = c;
    acks_future.sseq = acks_future.sseq.wrapping_add(1_000_000);
    assert_eq!(
        t.process(&acks_future.c2s(f::ACK, 10), 1, false, SEC).state,
        TRK | INV
    );
    // The real stream goes on.
    assert_eq!(
        t.process(&c.c2s(f::ACK, 10), 1, false, SEC).state,
        TRK | EST
    );
    assert_eq!(t.stats().events.invalid, 2);
}

#[test]
fn syn_ack_without_syn_and_bad_flags_are_invalid_and_not_stored() {
    let t = ConnTable::default();
    let mut c = conn();
    let out = t.process(&c.s2c(f::SYN | f::ACK, 0), 1, true, 0);
    assert_eq!(out.state, TRK | INV);
    assert_eq!(out.event, CtEvent::Invalid(CtInvalid::CannotOpen));
    assert_eq!(
        t.process(&c.c2s(f::SYN | f::FIN, 0), 1, true, 0).state,
        TRK | INV
    );
    assert_eq!(t.process(&c.c2s(0, 0), 1, true, 0).state, TRK | INV);
    assert!(t.is_empty());
    // Bad flags on an existing connection are invalid too.
    let mut c = conn();
    handshake(&t, &mut c, 0);
    let out = t.process(&c.c2s(f::SYN | f::RST, 0), 1, true, 0);
    assert_eq!(out.event, CtEvent::Invalid(CtInvalid::TcpFlags));
}

#[test]
fn midstream_pickup_follows_the_config() {
    let mut c = conn();
    c.c2s(f::SYN, 0);
    let ack = c.c2s(f::ACK, 100);
    let ovs = ConnTable::default();
    assert_eq!(ovs.process(&ack, 0, true, 0).state, TRK | NEW);
    assert_eq!(
        ovs.process(&c.s2c(f::ACK, 0), 0, true, 0).state,
        TRK | EST | RPL
    );
    let strict = ConnTable::new(CtConfig {
        tcp_midstream_pickup: false,
        ..CtConfig::default()
    });
    let out = strict.process(&ack, 0, true, 0);
    assert_eq!(out.event, CtEvent::Invalid(CtInvalid::CannotOpen));
    assert!(strict.is_empty());
}

#[test]
fn timeouts_move_with_the_state() {
    let t = ConnTable::default();
    let mut c = conn();
    let syn = c.c2s(f::SYN, 0);
    t.process(&syn, 1, true, 0);
    let key = t.process(&syn, 1, false, 0).orig.unwrap();
    // A retransmitted SYN is still +new and restarts tcp_syn_sent.
    assert_eq!(t.get(&key, 0).unwrap().timeout_secs, 30);
    assert_eq!(t.process(&syn, 1, false, 20 * SEC).state, TRK | NEW);
    assert_eq!(t.get(&key, 20 * SEC).unwrap().timeout_secs, 30);
    // Unanswered, it is gone 30 s after the last SYN: the SYN-ACK finds nothing.
    assert!(t.get(&key, 50 * SEC).is_none());
    assert_eq!(
        t.process(&c.s2c(f::SYN | f::ACK, 0), 1, true, 51 * SEC)
            .state,
        TRK | INV
    );

    // Established lives 24 h from its last packet.
    let t = ConnTable::default();
    let mut c = conn();
    handshake(&t, &mut c, 0);
    let day = 86_400 * SEC;
    assert_eq!(
        t.process(&c.c2s(f::ACK, 1), 1, false, day - SEC).state,
        TRK | EST
    );
    assert_eq!(
        t.process(&c.s2c(f::ACK, 1), 1, false, 2 * day - 2 * SEC)
            .state,
        TRK | EST | RPL
    );
    assert!(t.get(&key, 3 * day).is_none());
}

#[test]
fn a_new_syn_reopens_a_closed_connection() {
    let t = ConnTable::default();
    let mut c = conn();
    handshake(&t, &mut c, 0);
    t.process(&c.c2s(f::FIN | f::ACK, 0), 1, false, SEC);
    t.process(&c.s2c(f::FIN | f::ACK, 0), 1, false, SEC);
    t.process(&c.c2s(f::ACK, 0), 1, false, SEC);
    // The same ports again, a new ISN.
    c.cseq = 777_777;
    c.sseq = 888_888;
    let out = t.process(&c.c2s(f::SYN, 0), 1, true, 2 * SEC);
    assert_eq!(out.state, TRK | NEW);
    assert_eq!(out.event, CtEvent::Committed);
    assert_eq!(t.len(), 1);
    assert_eq!(t.stats().events.reopened, 1);
    assert_eq!(
        t.process(&c.s2c(f::SYN | f::ACK, 0), 1, false, 2 * SEC)
            .state,
        TRK | EST | RPL
    );
    t.check_invariants().unwrap();
}

#[test]
fn window_scaling_lets_large_windows_through() {
    let t = ConnTable::default();
    let mut c = conn();
    c.wscale = Some(7);
    c.window = 64_000;
    handshake(&t, &mut c, 0);
    // The window of a SYN is never scaled: only now does the server advertise 64000 << 7
    // bytes, and 1 MB segments within that window are accepted.
    assert_eq!(
        t.process(&c.s2c(f::ACK, 0), 1, false, SEC).state,
        TRK | EST | RPL
    );
    for _ in 0..4 {
        let out = t.process(&c.c2s(f::ACK, 1_000_000), 1, false, SEC);
        assert_eq!(out.state, TRK | EST);
    }
    // Without scaling the same segment is out of window.
    let t = ConnTable::default();
    let mut c = conn();
    c.window = 64_000;
    handshake(&t, &mut c, 0);
    t.process(&c.c2s(f::ACK, 60_000), 1, false, SEC);
    let out = t.process(&c.c2s(f::ACK, 1_000_000), 1, false, SEC);
    assert_eq!(out.state, TRK | INV);
}

#[test]
fn sequence_check_can_be_turned_off() {
    let t = ConnTable::new(CtConfig {
        tcp_seq_check: false,
        max_conns: DEFAULT_MAX_CONNS,
        ..CtConfig::default()
    });
    let mut c = conn();
    handshake(&t, &mut c, 0);
    c.cseq = c.cseq.wrapping_add(50_000_000);
    assert_eq!(
        t.process(&c.c2s(f::ACK, 100), 1, false, SEC).state,
        TRK | EST
    );
}

#[test]
fn ipv6_handshake() {
    let t = ConnTable::default();
    let mut c = Tcp::new(v6("fd00::1"), 33000, v6("fd00::2"), 443);
    handshake(&t, &mut c, 0);
    assert_eq!(
        t.process(&c.s2c(f::ACK, 500), 1, false, 0).state,
        TRK | EST | RPL
    );
    let e = t.entries(None, 0);
    assert_eq!(
        e[0].to_string(),
        "tcp,orig=(src=fd00::1,dst=fd00::2,sport=33000,dport=443),reply=(src=fd00::2,dst=fd00::1,sport=443,dport=33000),zone=1,protoinfo=(state=ESTABLISHED)"
    );
}
