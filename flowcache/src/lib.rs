//! Flow caches of vecswitch: the per-PMD exact-match cache (EMC), the megaflow cache (tuple
//! space search over masked keys) and the `classify` node that cascades EMC → megaflow →
//! upcall, as Open vSwitch's dpif-netdev does.
#![forbid(unsafe_code)]
