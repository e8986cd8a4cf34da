//! The CPU's time-stamp counter, for per-node and per-PMD cycle accounting.
//!
//! One of the audited `unsafe` spots of this crate: `_rdtsc` has no preconditions, but the
//! intrinsic is declared `unsafe`.

/// Reads the time-stamp counter (cycles at the nominal frequency).
#[inline(always)]
#[allow(unsafe_code)]
pub fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC reads a counter register; it touches no memory and is available on
        // every x86_64 CPU.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}
