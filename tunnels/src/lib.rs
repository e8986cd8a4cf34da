//! VXLAN (RFC 7348) and Geneve (RFC 8926) tunnels for vecswitch, sent and received as Open
//! vSwitch's userspace "native tunneling" does: the VTEP address lives on a bridge, and the
//! [`underlay`] module says, for a remote VTEP, which bridge to send from, with which source
//! address, and to which next-hop MAC.
#![forbid(unsafe_code)]

pub mod underlay;
