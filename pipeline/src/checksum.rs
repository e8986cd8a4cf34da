//! Internet checksums (RFC 1071), their incremental update (RFC 1624) and the CRC32c of SCTP
//! (RFC 4960 appendix B).
//!
//! Set actions change a few header words of packets whose checksums are already right, so they
//! patch the checksum with [`update16`] / [`update32`] / [`update_bytes`] instead of summing
//! the packet again; the from-scratch functions are for building packets and for tests.
#![forbid(unsafe_code)]

/// One's-complement sum of `data` as big-endian 16-bit words (an odd last byte is padded with
/// zero), added to `init`. Not folded: pass the result to [`fold`].
#[inline]
pub fn sum(data: &[u8], init: u32) -> u32 {
    let mut acc = init as u64;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let mut rest = chunks.remainder();
    if let Some((two, tail)) = rest.split_first_chunk::<2>() {
        acc += u16::from_be_bytes(*two) as u64;
        rest = tail;
    }
    if let Some(&b) = rest.first() {
        acc += (b as u64) << 8;
    }
    // Fold 64 → 32 bits keeping the end-around carries.
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    ((acc & 0xffff_ffff) + (acc >> 32)) as u32
}

/// Folds a 32-bit one's-complement accumulator to 16 bits.
#[inline(always)]
pub fn fold(mut acc: u32) -> u16 {
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The Internet checksum of `data` (the value to store in a zeroed checksum field).
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// The checksum `csum` after a 16-bit word of the covered data changed from `old` to `new`
/// (RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`).
#[inline(always)]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let acc = (!csum as u32) + (!old as u32) + new as u32;
    !fold(acc)
}

/// [`update16`] for a 32-bit field (an IPv4 address, two adjacent words).
#[inline(always)]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let acc =
        (!csum as u32) + (!(old >> 16) & 0xffff) + (!old & 0xffff) + (new >> 16) + (new & 0xffff);
    !fold(acc)
}

/// [`update16`] for a field of any even length (an IPv6 address). `old` and `new` have the
/// same length.
#[inline]
pub fn update_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut acc = !csum as u32;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += !u16::from_be_bytes([o[0], o[1]]) as u32;
        acc += u16::from_be_bytes([n[0], n[1]]) as u32;
        // Keep the accumulator from overflowing on long fields.
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !fold(acc)
}

/// Sum of the IPv4 pseudo-header (RFC 793 / 768) for an L4 segment of `len` bytes.
pub fn pseudo_sum_ipv4(src: u32, dst: u32, proto: u8, len: u32) -> u32 {
    (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto as u32 + len
}

/// Sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
pub fn pseudo_sum_ipv6(src: &[u8; 16], dst: &[u8; 16], proto: u8, len: u32) -> u32 {
    let s = sum(dst, sum(src, 0));
    fold(s) as u32 + (len >> 16) + (len & 0xffff) + proto as u32
}

/// The TCP / UDP / ICMPv6 checksum of `segment` (its checksum field zeroed, or not: pass
/// the segment with the field as it is and compare the result with 0 to verify) given the
/// pseudo-header sum. Note that UDP transmits a computed 0 as `0xffff`.
pub fn l4_checksum(pseudo: u32, segment: &[u8]) -> u16 {
    !fold(sum(segment, fold(pseudo) as u32))
}

/// CRC32c (Castagnoli, reflected 0x82f63b78) lookup table, built at compile time.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC32c of `data` (initial value and final XOR all ones), as SCTP uses it. SCTP stores the
/// result least significant byte first (`crc.to_le_bytes()`), as Linux and Open vSwitch do.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = CRC32C_TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 section 3 example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example() {
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d, 0)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
        // Odd length pads with a zero byte.
        assert_eq!(fold(sum(&[0x12], 0)), 0x1200);
        assert_eq!(fold(sum(&[0x00, 0x01, 0xf2], 0)), 0xf201);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic example header (Wikipedia "IPv4 header checksum"): checksum b861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(checksum(&h), 0);
    }

    #[test]
    fn incremental_matches_recompute() {
        let mut h: Vec<u8> = (0u8..40)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect();
        h[10] = 0;
        h[11] = 0;
        let c = checksum(&h);
        // Change a 16-bit word.
        let old16 = u16::from_be_bytes([h[4], h[5]]);
        h[4..6].copy_from_slice(&0xfffeu16.to_be_bytes());
        let c1 = update16(c, old16, 0xfffe);
        assert_eq!(c1, checksum(&h));
        // A 32-bit field.
        let old32 = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        h[12..16].copy_from_slice(&0x0a00_0001u32.to_be_bytes());
        let c2 = update32(c1, old32, 0x0a00_0001);
        assert_eq!(c2, checksum(&h));
        // A 16-byte field.
        let old: Vec<u8> = h[20..36].to_vec();
        let new = [0xffu8; 16];
        h[20..36].copy_from_slice(&new);
        let c3 = update_bytes(c2, &old, &new);
        assert_eq!(c3, checksum(&h));
    }

    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[]), 0);
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
    }
}
