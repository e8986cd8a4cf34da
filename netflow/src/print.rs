//! Datagrams as text, in the format of Open vSwitch's `test-netflow` collector (what its
//! NetFlow tests grep), for replay goldens and tests.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::wire::{parse_datagram, WireError};

const TCP_FLAG_NAMES: [&str; 8] = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"];

/// The lines `test-netflow` prints for one datagram: a header line, then one per record.
pub fn describe(datagram: &[u8]) -> Result<Vec<String>, WireError> {
    let (h, records) = parse_datagram(datagram)?;
    let mut out = Vec::with_capacity(records.len() + 1);
    let mut line = format!(
        "header: v5, uptime {}, now {}.{:09}, seq {}, engine {},{}",
        h.sysuptime, h.unix_secs, h.unix_nsecs, h.flow_sequence, h.engine_type, h.engine_id
    );
    if h.sampling_interval != 0 {
        let _ = write!(line, ", interval {}", h.sampling_interval);
    }
    out.push(line);
    for r in records {
        let mut l = format!(
            "seq {}: {} > {}, if {} > {}, {} pkts, {} bytes",
            h.flow_sequence,
            Ipv4Addr::from(r.src_addr),
            Ipv4Addr::from(r.dst_addr),
            r.input,
            r.output,
            r.packets,
            r.octets
        );
        match r.proto {
            6 => {
                let _ = write!(l, ", TCP {} > {}", r.src_port, r.dst_port);
                if r.tcp_flags != 0 {
                    let names: Vec<&str> = TCP_FLAG_NAMES
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| r.tcp_flags & (1 << i) != 0)
                        .map(|(_, n)| *n)
                        .collect();
                    let _ = write!(l, " {}", names.join("|"));
                }
            }
            17 => {
                let _ = write!(l, ", UDP {} > {}", r.src_port, r.dst_port);
            }
            132 => {
                let _ = write!(l, ", SCTP {} > {}", r.src_port, r.dst_port);
            }
            1 => {
                let _ = write!(l, ", ICMP {}:{}", r.dst_port >> 8, r.dst_port & 0xff);
                if r.src_port != 0 {
                    let _ = write!(l, ", src_port={}", r.src_port);
                }
            }
            p => {
                let _ = write!(l, ", proto {p}");
            }
        }
        if r.proto != 6 && r.tcp_flags != 0 {
            let _ = write!(l, ", flags {:x}", r.tcp_flags);
        }
        if r.tos != 0 {
            let _ = write!(l, ", TOS {:x}", r.tos);
        }
        let _ = write!(l, ", time {}...{}", r.first, r.last);
        out.push(l);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Header, Record};

    #[test]
    fn lines_as_ovs_test_netflow_prints_them() {
        let mut d = Vec::new();
        Header {
            count: 2,
            sysuptime: 5,
            unix_secs: 7,
            unix_nsecs: 9,
            flow_sequence: 3,
            engine_type: 2,
            engine_id: 1,
            sampling_interval: 0,
        }
        .emit(&mut d);
        Record {
            src_addr: 0xc0a8_0001,
            dst_addr: 0xc0a8_0002,
            input: 1,
            output: 65535,
            packets: 1,
            octets: 106,
            dst_port: 0x0800,
            proto: 1,
            ..Record::default()
        }
        .emit(&mut d);
        Record {
            src_addr: 0xc0a8_0002,
            dst_addr: 0xc0a8_0001,
            input: 2,
            output: 1,
            packets: 3,
            octets: 180,
            src_port: 80,
            dst_port: 1234,
            tcp_flags: 0x12,
            proto: 6,
            tos: 0xb8,
            first: 10,
            last: 20,
            ..Record::default()
        }
        .emit(&mut d);
        assert_eq!(
            describe(&d).unwrap(),
            vec![
                "header: v5, uptime 5, now 7.000000009, seq 3, engine 2,1",
                "seq 3: 192.168.0.1 > 192.168.0.2, if 1 > 65535, 1 pkts, 106 bytes, ICMP 8:0, time 0...0",
                "seq 3: 192.168.0.2 > 192.168.0.1, if 2 > 1, 3 pkts, 180 bytes, TCP 80 > 1234 syn|ack, TOS b8, time 10...20",
            ]
        );
    }
}
