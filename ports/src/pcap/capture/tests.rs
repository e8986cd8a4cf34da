use super::*;

/// A classic pcap file: magic written in `order`, link type, records (sec, frac, data, snap).
fn pcap(order: Order, nanos: bool, linktype: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let w32 = |v: &mut Vec<u8>, x: u32| match order {
        Order::Little => v.extend_from_slice(&x.to_le_bytes()),
        Order::Big => v.extend_from_slice(&x.to_be_bytes()),
    };
    let w16 = |v: &mut Vec<u8>, x: u16| match order {
        Order::Little => v.extend_from_slice(&x.to_le_bytes()),
        Order::Big => v.extend_from_slice(&x.to_be_bytes()),
    };
    let mut v = Vec::new();
    w32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    w16(&mut v, 2);
    w16(&mut v, 4);
    w32(&mut v, 0);
    w32(&mut v, 0);
    w32(&mut v, 64); // snap length: the records below may be longer
    w32(&mut v, linktype);
    for (sec, frac, data) in records {
        w32(&mut v, *sec);
        w32(&mut v, *frac);
        w32(&mut v, data.len() as u32);
        w32(&mut v, data.len() as u32);
        v.extend_from_slice(data);
    }
    v
}

/// A pcapng block of `kind` with `body` (padded to 4 bytes), in `order`.
fn block(order: Order, kind: u32, body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    b.resize(body.len().div_ceil(4) * 4, 0);
    let len = (b.len() + 12) as u32;
    let w = |x: u32| match order {
        Order::Little => x.to_le_bytes(),
        Order::Big => x.to_be_bytes(),
    };
    let mut v = Vec::new();
    v.extend_from_slice(&w(kind));
    v.extend_from_slice(&w(len));
    v.extend_from_slice(&b);
    v.extend_from_slice(&w(len));
    v
}

fn le_or_be(order: Order, parts: &[&dyn Fn(Order) -> Vec<u8>]) -> Vec<u8> {
    parts.iter().flat_map(|p| p(order)).collect()
}

fn u16b(order: Order, x: u16) -> Vec<u8> {
    match order {
        Order::Little => x.to_le_bytes().to_vec(),
        Order::Big => x.to_be_bytes().to_vec(),
    }
}

fn u32b(order: Order, x: u32) -> Vec<u8> {
    match order {
        Order::Little => x.to_le_bytes().to_vec(),
        Order::Big => x.to_be_bytes().to_vec(),
    }
}

fn shb(order: Order) -> Vec<u8> {
    let mut body = u32b(order, 0x1a2b_3c4d);
    body.extend(u16b(order, 1));
    body.extend(u16b(order, 0));
    body.extend_from_slice(&[0xff; 8]); // section length unknown
    block(order, SHB, &body)
}

/// An interface description with `options` (code, value).
fn idb(order: Order, linktype: u16, options: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = u16b(order, linktype);
    body.extend(u16b(order, 0));
    body.extend(u32b(order, 0));
    for (code, value) in options {
        body.extend(u16b(order, *code));
        body.extend(u16b(order, value.len() as u16));
        body.extend_from_slice(value);
        body.resize(body.len().div_ceil(4) * 4, 0);
    }
    if !options.is_empty() {
        body.extend(u32b(order, 0));
    }
    block(order, IDB, &body)
}

fn epb(order: Order, iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
    let mut body = u32b(order, iface);
    body.extend(u32b(order, (ts >> 32) as u32));
    body.extend(u32b(order, ts as u32));
    body.extend(u32b(order, data.len() as u32));
    body.extend(u32b(order, data.len() as u32));
    body.extend_from_slice(data);
    block(order, EPB, &body)
}

fn frames(v: &[Frame]) -> Vec<(u64, Vec<u8>)> {
    v.iter().map(|f| (f.ts_ns, f.data.clone())).collect()
}

#[test]
fn classic_pcap_in_both_byte_orders_and_resolutions_keeps_file_order() {
    let long = [7u8; 100];
    for order in [Order::Little, Order::Big] {
        // The second record is older than the first and longer than the snap length; the
        // third has a microsecond field past a second: all read as tshark reads them.
        let f = pcap(
            order,
            false,
            1,
            &[
                (10, 5, b"one"),
                (9, 999_999, &long),
                (11, 1_500_000, b"three"),
            ],
        );
        assert_eq!(
            frames(&parse_capture(&f).unwrap()),
            vec![
                (10_000_005_000, b"one".to_vec()),
                (9_999_999_000, long.to_vec()),
                (12_500_000_000, b"three".to_vec()),
            ],
            "{order:?}"
        );
        let f = pcap(order, true, 1, &[(10, 5, b"ns")]);
        assert_eq!(
            frames(&parse_capture(&f).unwrap()),
            vec![(10_000_000_005, b"ns".to_vec())]
        );
    }
}

#[test]
fn classic_pcap_errors_say_what_and_where() {
    let good = pcap(Order::Little, false, 1, &[(1, 0, b"abcd"), (2, 0, b"efgh")]);
    let cut = |n: usize| parse_capture(&good[..good.len() - n]).unwrap_err();
    assert_eq!(cut(2), broken("record", 2, "truncated: 2 of its 4 bytes"));
    assert_eq!(
        cut(10),
        broken("record", 2, "truncated: 10 of the 16 header bytes")
    );
    assert_eq!(
        parse_capture(&good[..20]).unwrap_err(),
        broken("record", 0, "shorter than the 24 bytes of a pcap header")
    );
    let wifi = pcap(Order::Little, false, 105, &[]);
    assert_eq!(
        parse_capture(&wifi).unwrap_err(),
        ParseError::LinkType {
            linktype: 105,
            interface: None
        }
    );
    let mut huge = pcap(Order::Little, false, 1, &[(1, 0, b"x")]);
    huge[32..36].copy_from_slice(&300_000u32.to_le_bytes());
    assert_eq!(
        parse_capture(&huge).unwrap_err(),
        broken("record", 1, "captured length 300000 is over 262144")
    );
    assert_eq!(
        parse_capture(b"GET / HTTP/1.1").unwrap_err(),
        ParseError::NotACapture
    );
    assert_eq!(parse_capture(b"ab").unwrap_err(), ParseError::NotACapture);
}

#[test]
fn pcapng_reads_every_section_interface_and_packet_block() {
    let ns = vec![9u8]; // if_tsresol: 10^-9
    let mut f = Vec::new();
    // Section 1, little-endian: a nanosecond interface, a name-resolution block to skip, an
    // enhanced packet and a simple one (which takes the previous timestamp).
    f.extend(shb(Order::Little));
    f.extend(idb(Order::Little, 1, &[(9, ns)]));
    f.extend(block(Order::Little, 4, &[0; 4]));
    f.extend(epb(Order::Little, 0, 1_700_000_000_123_456_789, b"first"));
    let mut spb = u32b(Order::Little, 6);
    spb.extend_from_slice(b"simple");
    f.extend(block(Order::Little, SPB, &spb));
    // Section 2, big-endian: interfaces start again; the second one, microseconds with an
    // offset of 10 s, has an enhanced packet and an obsolete packet block.
    f.extend(le_or_be(
        Order::Big,
        &[&shb, &|o| idb(o, 1, &[]), &|o| {
            idb(o, 1, &[(14, 10u64.to_be_bytes().to_vec())])
        }],
    ));
    f.extend(epb(Order::Big, 1, 5_000_001, b"third"));
    let mut old = u16b(Order::Big, 1);
    old.extend(u16b(Order::Big, 0));
    old.extend(u32b(Order::Big, 0));
    old.extend(u32b(Order::Big, 7_000_000));
    old.extend(u32b(Order::Big, 6));
    old.extend(u32b(Order::Big, 6));
    old.extend_from_slice(b"fourth");
    f.extend(block(Order::Big, OBSOLETE_PB, &old));
    assert_eq!(
        frames(&parse_capture(&f).unwrap()),
        vec![
            (1_700_000_000_123_456_789, b"first".to_vec()),
            (1_700_000_000_123_456_789, b"simple".to_vec()),
            (15_000_001_000, b"third".to_vec()),
            (17_000_000_000, b"fourth".to_vec()),
        ]
    );
}

#[test]
fn pcapng_errors_say_what_and_where() {
    let mut f = shb(Order::Little);
    f.extend(idb(Order::Little, 1, &[]));
    f.extend(idb(Order::Little, 113, &[]));
    let good = [f.clone(), epb(Order::Little, 0, 1, b"ok")].concat();
    assert_eq!(parse_capture(&good).unwrap().len(), 1);
    assert_eq!(
        parse_capture(&[f.clone(), epb(Order::Little, 1, 1, b"x")].concat()).unwrap_err(),
        ParseError::LinkType {
            linktype: 113,
            interface: Some(1)
        }
    );
    assert_eq!(
        parse_capture(&[f.clone(), epb(Order::Little, 2, 1, b"x")].concat()).unwrap_err(),
        broken(
            "block",
            4,
            "packet on interface 2, but the section describes 2"
        )
    );
    assert_eq!(
        parse_capture(&good[..good.len() - 3]).unwrap_err(),
        broken("block", 4, "truncated: 33 of its 36 bytes")
    );
    let mut bad_trailer = good.clone();
    let n = bad_trailer.len();
    bad_trailer[n - 4] ^= 4;
    assert_eq!(
        parse_capture(&bad_trailer).unwrap_err(),
        broken("block", 4, "its trailing length differs from its length")
    );
}

#[test]
fn errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("vxs-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.pcap");
    let e = read_capture(&missing).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{e}"
    );
    let text = dir.join("text.pcap");
    std::fs::write(&text, "hello world").unwrap();
    assert_eq!(
        read_capture(&text).unwrap_err().to_string(),
        format!(
            "{}: not a capture file (neither pcap nor pcapng)",
            text.display()
        )
    );
    let wifi = dir.join("wifi.pcap");
    std::fs::write(&wifi, pcap(Order::Little, false, 105, &[])).unwrap();
    assert_eq!(
        read_capture(&wifi).unwrap_err().to_string(),
        format!(
            "{}: link type 105 (IEEE 802.11) is not Ethernet (1)",
            wifi.display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A capture rewritten as pcapng by Wireshark's `editcap` (and as nanosecond pcap) reads back
/// to the same frames and timestamps.
#[test]
fn editcap_pcapng_and_nanosecond_pcap_read_back_the_same() {
    let dir = std::env::temp_dir().join(format!("vxs-editcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("in.pcap");
    let records: Vec<(u32, u32, Vec<u8>)> = (0..5u8)
        .map(|i| {
            (
                1_700_000_000 + u32::from(i),
                1000 * u32::from(i),
                vec![i; 60 + usize::from(i)],
            )
        })
        .collect();
    let refs: Vec<(u32, u32, &[u8])> = records
        .iter()
        .map(|(s, f, d)| (*s, *f, d.as_slice()))
        .collect();
    std::fs::write(&src, pcap(Order::Little, false, 1, &refs)).unwrap();
    let want = read_capture(&src).unwrap();
    assert_eq!(want.len(), 5);
    for (format, name) in [("pcapng", "out.pcapng"), ("nsecpcap", "out-ns.pcap")] {
        let out = dir.join(name);
        let status = std::process::Command::new("editcap")
            .args(["-F", format])
            .arg(&src)
            .arg(&out)
            .status()
            .expect("editcap (Debian wireshark-common, installed with tshark) runs");
        assert!(status.success(), "editcap -F {format}");
        assert_eq!(read_capture(&out).unwrap(), want, "{format}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every truncation and many random byte flips of valid files give frames or an error, never
/// a panic.
#[test]
fn damaged_files_never_panic() {
    let mut ng = shb(Order::Little);
    ng.extend(idb(Order::Little, 1, &[(9, vec![0x89])]));
    ng.extend(epb(Order::Little, 0, 12345, b"payload"));
    let mut spb = u32b(Order::Little, 3);
    spb.extend_from_slice(b"abc");
    ng.extend(block(Order::Little, SPB, &spb));
    let classic = pcap(Order::Big, true, 1, &[(1, 2, b"frame one"), (3, 4, b"two")]);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for file in [ng, classic] {
        for n in 0..=file.len() {
            let _ = parse_capture(&file[..n]);
        }
        for _ in 0..20_000 {
            let mut f = file.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % f.len();
                f[at] = (seed >> 32) as u8;
            }
            let _ = parse_capture(&f);
        }
    }
}
