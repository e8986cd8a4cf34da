//! The packet parser, under either VLAN limit: any bytes give a key or a named error, never a
//! panic, and the offsets it records lie inside the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::buffer::NO_OFFSET;
use pipeline::parse::{key_hash, parse_packet_limit, ParseError, VlanLimit};
use pipeline::PacketMeta;

fuzz_target!(|data: &[u8]| {
    for vlans in [VlanLimit::DEFAULT, VlanLimit::MAX] {
        check(data, vlans);
    }
});

fn check(data: &[u8], vlans: VlanLimit) {
    let mut meta = PacketMeta::default();
    let r = parse_packet_limit(data, &mut meta, vlans);
    // The hash is computed on both outcomes, over the key as it was left.
    assert_eq!(
        meta.hash,
        key_hash(&meta.key),
        "hash does not match the key"
    );
    match r {
        Ok(()) => {
            for (name, ofs) in [("l3_ofs", meta.l3_ofs), ("l4_ofs", meta.l4_ofs)] {
                assert!(
                    ofs == NO_OFFSET || (ofs as usize) <= data.len(),
                    "{name} {ofs} is past the end of a {}-byte frame",
                    data.len()
                );
            }
            assert!(
                meta.l4_ofs == NO_OFFSET || (meta.l3_ofs != NO_OFFSET && meta.l4_ofs > meta.l3_ofs),
                "l4_ofs {} without an l3_ofs before it ({})",
                meta.l4_ofs,
                meta.l3_ofs
            );
            // Parsing is a function of the bytes: a second run over a dirty meta agrees.
            let mut again = meta;
            again.key.dl_type ^= 0xffff;
            again.key.tp_src ^= 0xffff;
            again.l4_ofs = 7;
            assert!(
                parse_packet_limit(data, &mut again, vlans).is_ok(),
                "second parse failed"
            );
            assert_eq!(again.key, meta.key, "second parse gave another key");
            assert_eq!((again.l3_ofs, again.l4_ofs), (meta.l3_ofs, meta.l4_ofs));
        }
        Err(e) => {
            assert!((e as usize) < ParseError::NAMES.len());
            let _ = e.name();
        }
    }
}
