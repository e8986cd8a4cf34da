//! The tunnel headers vecswitch reads and writes: VXLAN (RFC 7348) and Geneve (RFC 8926),
//! shaped as `pipeline::wire` (and smoltcp's `src/wire/`): a view `Packet<T: AsRef<[u8]>>`
//! whose `new_checked` validates the lengths once (its accessors never panic, an unchecked
//! view reads 0 past the end), a `field` module of byte ranges, and a `Repr` with `parse` and
//! `emit`. Errors are `pipeline::wire::Error`. The decap and encap of `crate::decap` /
//! `crate::encap` read and write the same bytes with these views' field ranges.

pub mod geneve;
pub mod vxlan;

pub use geneve::{GeneveOption, OptionIter, Packet as GenevePacket, Repr as GeneveRepr};
pub use pipeline::wire::{Error, Field, Result};
pub use vxlan::{Packet as VxlanPacket, Repr as VxlanRepr};

// Reads and writes that cannot panic: out of range they read 0 and write nothing.
pub(crate) use pipeline::wire::{
    read_u16, read_u8, slice, slice_mut, write_bytes, write_u16, write_u8,
};

/// The 24-bit VNI in the first 3 bytes at `at` (both headers put it in bytes 4..7).
#[inline(always)]
pub(crate) fn read_u24(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 3) {
        Some(&[x, y, z]) => u32::from_be_bytes([0, x, y, z]),
        _ => 0,
    }
}

/// Writes the low 24 bits of `v`.
#[inline(always)]
pub(crate) fn write_u24(b: &mut [u8], at: usize, v: u32) {
    let [_, x, y, z] = v.to_be_bytes();
    write_bytes(b, at, &[x, y, z]);
}

/// Largest VNI: both headers carry 24 bits.
pub const MAX_VNI: u32 = 0x00ff_ffff;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_reads_give_zero_and_writes_nothing() {
        let mut b = [1u8, 2, 3];
        assert_eq!((read_u24(&b, 0), read_u24(&b, 1)), (0x0001_0203, 0));
        assert_eq!(
            (read_u16(&b, 1), read_u16(&b, 2), read_u8(&b, 3)),
            (0x0203, 0, 0)
        );
        write_u24(&mut b, 1, 0xffff_ffff);
        write_u16(&mut b, 2, 0xffff);
        assert_eq!(b, [1, 2, 3]);
        write_u24(&mut b, 0, 0xaa_0a0b0c);
        assert_eq!(b, [0x0a, 0x0b, 0x0c]);
        assert!(slice(&b, 2, 9).is_empty());
    }
}
