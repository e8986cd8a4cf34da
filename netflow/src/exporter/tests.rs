//! The rules of OVS's `ofproto/netflow.c`, one test each.

use super::*;
use crate::wire::{parse_datagram, Header, Record};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
/// The exporter's creation time on the pipeline clock.
const BOOT: u64 = 1_000 * S;

fn opts(active_timeout: i64) -> NetflowOptions {
    NetflowOptions {
        targets: vec!["127.0.0.1:2055".parse().unwrap()],
        engine_type: 2,
        engine_id: 1,
        active_timeout,
        add_id_to_interface: false,
    }
}

fn icmp(in_port: u16, src: u32, dst: u32, ty: u16) -> NetflowKey {
    NetflowKey {
        in_port,
        nw_src: src,
        nw_dst: dst,
        nw_tos: 0,
        nw_proto: 1,
        tp_src: ty,
        tp_dst: 0,
    }
}

fn tcp(in_port: u16, sport: u16, dport: u16) -> NetflowKey {
    NetflowKey {
        in_port,
        nw_src: 0xc0a8_0001,
        nw_dst: 0xc0a8_0002,
        nw_tos: 0,
        nw_proto: 6,
        tp_src: sport,
        tp_dst: dport,
    }
}

fn push(packets: u64, bytes: u64, tcp_flags: u16, at: u64) -> FlowStats {
    FlowStats {
        packets,
        bytes,
        tcp_flags,
        first_used_ms: at / MS,
        used_ms: at / MS,
    }
}

fn decode(e: &mut Exporter) -> Vec<(Header, Vec<Record>)> {
    e.take_datagrams()
        .iter()
        .map(|d| parse_datagram(d).unwrap())
        .collect()
}

fn records(e: &mut Exporter) -> Vec<Record> {
    decode(e).into_iter().flat_map(|(_, r)| r).collect()
}

#[test]
fn an_icmp_echo_record_field_by_field() {
    let mut e = Exporter::new(&opts(30), BOOT);
    e.set_wall_offset_ns(1_700_000_000 * S as i128 - BOOT as i128 + 5);
    let k = NetflowKey {
        nw_tos: 0xb9, // DSCP 46, ECN 1: exported as 0xb8
        ..icmp(1, 0xc0a8_0001, 0xc0a8_0002, 8)
    };
    e.flow_update(&k, 2, &push(1, 98, 0, BOOT + 10 * MS), BOOT + 10 * MS);
    e.flow_update(&k, 2, &push(2, 196, 0, BOOT + 1500 * MS), BOOT + 2 * S);
    e.flow_clear(&k, BOOT + 3 * S);
    assert!(e.is_empty());
    assert!(
        e.take_datagrams().is_empty(),
        "sent at the next run, not before"
    );
    e.run(BOOT + 3 * S);
    let d = decode(&mut e);
    assert_eq!(d.len(), 1);
    let (h, r) = &d[0];
    assert_eq!(
        *h,
        Header {
            count: 1,
            sysuptime: 3000,
            unix_secs: 1_700_000_003,
            unix_nsecs: 5,
            flow_sequence: 0,
            engine_type: 2,
            engine_id: 1,
            sampling_interval: 0,
        }
    );
    assert_eq!(
        r[0],
        Record {
            src_addr: 0xc0a8_0001,
            dst_addr: 0xc0a8_0002,
            nexthop: 0,
            input: 1,
            output: 2,
            packets: 3,
            octets: 294,
            first: 10,
            last: 1500,
            src_port: 0,
            dst_port: 8 << 8,
            tcp_flags: 0,
            proto: 1,
            tos: 0xb8,
            ..Record::default()
        }
    );
    // ICMP destination port: type * 256 + code.
    let unreachable = NetflowKey {
        tp_dst: 3,
        ..icmp(1, 1, 2, 3)
    };
    e.flow_update(&unreachable, 2, &push(1, 70, 0, BOOT + 4 * S), BOOT + 4 * S);
    e.flow_clear(&unreachable, BOOT + 4 * S);
    e.run(BOOT + 4 * S);
    let r = records(&mut e);
    assert_eq!((r[0].src_port, r[0].dst_port), (0, 3 * 256 + 3));
}

#[test]
fn a_record_with_no_packets_is_never_sent() {
    let mut e = Exporter::new(&opts(10), BOOT);
    let k = tcp(1, 1234, 80);
    e.flow_update(&k, 2, &push(0, 0, 0, BOOT), BOOT);
    e.run(BOOT + 20 * S);
    e.flow_clear(&k, BOOT + 21 * S);
    e.run(BOOT + 22 * S);
    assert!(e.take_datagrams().is_empty());
    assert_eq!(e.stats().records, 0);
}

#[test]
fn a_new_output_expires_the_record_at_once() {
    // OVS's flow expiration test: flooded before learning, then to port 2.
    let mut e = Exporter::new(&opts(30), BOOT);
    let k = icmp(1, 0xc0a8_0001, 0xc0a8_0002, 8);
    e.flow_update(&k, NF_OUT_FLOOD, &push(1, 106, 0, BOOT), BOOT);
    let t = BOOT + 1001 * MS;
    e.flow_update(&k, 2, &push(1, 106, 0, t), t);
    e.run(t);
    let r = records(&mut e);
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].input, r[0].output, r[0].packets, r[0].octets),
        (1, 65535, 1, 106)
    );
    e.flow_clear(&k, t + S);
    e.run(t + S);
    let r = records(&mut e);
    assert_eq!(
        (r[0].output, r[0].packets, r[0].first, r[0].last),
        (2, 1, 1001, 1001)
    );
}

#[test]
fn tcp_flags_are_ored_since_the_last_export() {
    let mut e = Exporter::new(&opts(10), BOOT);
    let k = tcp(1, 1234, 80);
    e.flow_update(&k, 2, &push(1, 74, 0x02, BOOT), BOOT);
    e.flow_update(&k, 2, &push(3, 200, 0x18, BOOT + S), BOOT + S);
    e.run(BOOT + 11 * S);
    e.flow_update(&k, 2, &push(1, 66, 0x11, BOOT + 12 * S), BOOT + 12 * S);
    e.flow_clear(&k, BOOT + 12 * S);
    e.run(BOOT + 12 * S);
    let flags: Vec<u8> = records(&mut e).iter().map(|r| r.tcp_flags).collect();
    assert_eq!(flags, vec![0x1a, 0x11]);
}

#[test]
fn thirty_records_a_datagram_sent_as_soon_as_full() {
    let mut e = Exporter::new(&opts(600), BOOT);
    for p in 0..31u16 {
        let k = tcp(1, 1000 + p, 80);
        e.flow_update(&k, 2, &push(1, 60, 0, BOOT), BOOT);
        e.flow_clear(&k, BOOT);
    }
    let first = decode(&mut e);
    assert_eq!(
        first.len(),
        1,
        "the full datagram leaves without waiting for run"
    );
    assert_eq!(first[0].0.count, 30);
    // OVS leaves the number of the datagram's last record in the header.
    assert_eq!(first[0].0.flow_sequence, 29);
    e.run(BOOT + S);
    let second = decode(&mut e);
    assert_eq!((second[0].0.count, second[0].0.flow_sequence), (1, 30));
    assert_eq!(e.stats().datagrams, 2);
}

#[test]
fn sixty_four_bit_counters_split_evenly_within_the_sanity_bound() {
    let mut e = Exporter::new(&opts(600), BOOT);
    let k = tcp(1, 1, 2);
    let bytes = 3 * (1u64 << 32) + 12_345;
    let packets = 3_000_001;
    e.flow_update(&k, 2, &push(packets, bytes, 0, BOOT), BOOT);
    e.flow_clear(&k, BOOT);
    e.run(BOOT);
    let r = records(&mut e);
    assert_eq!(r.len(), 4);
    assert_eq!(r.iter().map(|r| u64::from(r.octets)).sum::<u64>(), bytes);
    assert_eq!(r.iter().map(|r| u64::from(r.packets)).sum::<u64>(), packets);
    // Even: no record's bytes per packet differ much from the others'.
    let bpp: Vec<u64> = r
        .iter()
        .map(|r| u64::from(r.octets) / u64::from(r.packets))
        .collect();
    assert!(bpp.iter().all(|&b| b.abs_diff(bpp[0]) <= 1), "{bpp:?}");

    // Beyond 175 * 2^32 bytes: taken for a bug, nothing sent, counted.
    e.flow_update(&k, 2, &push(1, 176 << 32, 0, BOOT), BOOT);
    e.flow_clear(&k, BOOT);
    e.run(BOOT);
    assert!(records(&mut e).is_empty());
    assert_eq!(e.stats().impossible_counters, 1);
    // Exactly at the bound: sent, as 176 records.
    e.flow_update(&k, 2, &push(1000, 175 << 32, 0, BOOT), BOOT);
    e.flow_clear(&k, BOOT);
    e.run(BOOT);
    assert_eq!(records(&mut e).len(), 176);
}

#[test]
fn add_id_to_interface_puts_seven_bits_of_engine_id_above_nine_of_port() {
    let mut o = opts(600);
    o.engine_id = 0x85; // low 7 bits: 5
    o.add_id_to_interface = true;
    let mut e = Exporter::new(&o, BOOT);
    let k = tcp(0xfffe, 1, 2); // from LOCAL
    e.flow_update(&k, NF_OUT_FLOOD, &push(1, 60, 0, BOOT), BOOT);
    e.flow_clear(&k, BOOT);
    e.run(BOOT);
    let (h, r) = decode(&mut e).remove(0);
    assert_eq!(h.engine_id, 0x85);
    assert_eq!(r[0].input, (5 << 9) | (0xfffe & 0x1ff));
    assert_eq!(r[0].output, (5 << 9) | 0x1ff);
}

/// OVS's active expiration test: 60 s of one TCP packet a second each way, active_timeout=10,
/// then 12 s more: one packet flooded before learning, 59 after it one way, 60 the other,
/// the first time kept across the splits.
#[test]
fn active_timeout_splits_sixty_seconds_of_one_packet_a_second() {
    let mut e = Exporter::new(&opts(10), BOOT);
    let fwd = tcp(1, 1234, 80);
    let rev = NetflowKey {
        in_port: 2,
        nw_src: fwd.nw_dst,
        nw_dst: fwd.nw_src,
        tp_src: 80,
        tp_dst: 1234,
        ..fwd
    };
    for n in 0..60u64 {
        let t = BOOT + n * S;
        let out = if n == 0 { NF_OUT_FLOOD } else { 2 };
        e.flow_update(&fwd, out, &push(1, 60, 0x10, t), t);
        e.flow_update(&rev, 1, &push(1, 60, 0x10, t), t);
        e.run(t);
    }
    for n in 60..=72u64 {
        e.run(BOOT + n * S);
    }
    let d = decode(&mut e);
    let r: Vec<Record> = d.iter().flat_map(|(_, r)| r.clone()).collect();
    let sum = |pred: &dyn Fn(&Record) -> bool| -> u32 {
        r.iter().filter(|x| pred(x)).map(|x| x.packets).sum()
    };
    assert_eq!(sum(&|x| x.input == 1 && x.output == 65535), 1);
    assert_eq!(sum(&|x| x.input == 1 && x.output == 2), 59);
    assert_eq!(sum(&|x| x.input == 2 && x.output == 1), 60);
    // Split every 10 s: 6 records a direction (the learning one apart).
    let rev_recs: Vec<&Record> = r.iter().filter(|x| x.input == 2).collect();
    assert_eq!(rev_recs.len(), 6);
    assert!(
        rev_recs.iter().all(|x| x.first == 0),
        "first stays at the start of the flow"
    );
    assert_eq!(rev_recs.last().map(|x| x.last), Some(59_000));
    // Idle since its last expiry: forgotten at the next timeout.
    assert!(e.is_empty());
}

#[test]
fn sysuptime_counts_from_creation_and_records_from_there() {
    let mut e = Exporter::new(&opts(600), BOOT + 5 * S);
    let k = tcp(1, 1, 2);
    e.flow_update(&k, 2, &push(1, 60, 0, BOOT + 6 * S), BOOT + 6 * S);
    e.flow_clear(&k, BOOT + 7 * S);
    e.run(BOOT + 7 * S);
    let (h, r) = decode(&mut e).remove(0);
    assert_eq!((h.sysuptime, r[0].first, r[0].last), (2000, 1000, 1000));
}

#[test]
fn a_changed_active_timeout_restarts_the_schedule() {
    let mut e = Exporter::new(&opts(600), BOOT);
    let k = tcp(1, 1, 2);
    e.flow_update(&k, 2, &push(1, 60, 0, BOOT), BOOT);
    e.run(BOOT + 20 * S);
    assert!(e.take_datagrams().is_empty());
    e.set_options(&opts(10), BOOT + 20 * S);
    e.flow_update(&k, 2, &push(1, 60, 0, BOOT + 21 * S), BOOT + 21 * S);
    e.run(BOOT + 31 * S);
    assert!(
        e.take_datagrams().is_empty(),
        "timeout counts from the reconfiguration"
    );
    e.run(BOOT + 32 * S);
    assert_eq!(records(&mut e)[0].packets, 2);
}
