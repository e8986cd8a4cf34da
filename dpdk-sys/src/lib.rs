//! Raw bindings to the system DPDK (22.11 on Debian 12, found by `pkg-config libdpdk`):
//! bindgen's output for the EAL, ethdev, mbuf and mempool calls vecswitch uses, plus the `vs_*`
//! functions of a C shim that export DPDK's static-inline fast path (`rte_eth_rx_burst`,
//! `rte_pktmbuf_alloc`, `rte_pktmbuf_mtod`, `rte_errno`, ...) as real symbols. Everything here
//! is `unsafe` to call; the safe wrapper is `datapath::ports::dpdk`.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::pedantic
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
