//! The vhost-user backend of vecswitch, apart from any port: the guest's memory as the
//! frontend shares it ([`guest`], the crate's one `unsafe` module: bounds-checked raw copies
//! between guard pages), split virtqueues ([`ring`]) and packed ones ([`packed`]) walked a
//! burst at a time into a `pipeline::RxSink` or from frames, the protocol handler that
//! a frontend configures ([`device`]), and the guest's kicks for a PMD that sleeps
//! ([`kick`]). The `ports` crate's `vhost` folder makes a port of it
//! (options, control thread, `PortIo`); the rings are fuzzed (`fuzz/`, `vhost_ring` and
//! `vhost_message`) and benchmarked (`benches/benches/vhost.rs`) on their own, as rust-vmm's
//! `virtio-queue` is.
#![deny(unsafe_code)]

pub mod device;
pub mod guest;
pub mod kick;
pub mod packed;
pub mod ring;
