//! How far apart two cores are: the round trip of one cache line bounced between a thread
//! pinned to each (a write on one side, seen and answered by the other), in nanoseconds.
//!
//! On this machine (a VM) the answer is bimodal: about 80 ns when the host runs the two
//! vCPUs near each other (one shared L3) and about 330 ns when it does not, and the host
//! moves them when a vCPU idles. Every vhost-user loop number follows it (BENCHMARKS.md), so
//! the bench scripts print it beside each sample.
//!
//! `coreping [CORE_A CORE_B [ROUND_TRIPS]]` (default 0 1 1000000).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The bounced value, alone on its cache line.
#[repr(align(128))]
struct Line(AtomicU64);

fn pin(core: usize) -> Result<(), String> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(format!("cannot pin a thread to core {core}"))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64, name: &str| -> u64 {
        args.get(i).map_or(default, |s| {
            s.parse().unwrap_or_else(|_| {
                eprintln!("coreping: {name} must be a number, got {s:?}");
                std::process::exit(2);
            })
        })
    };
    let a = arg(0, 0, "CORE_A") as usize;
    let b = arg(1, 1, "CORE_B") as usize;
    let trips = arg(2, 1_000_000, "ROUND_TRIPS").max(1);
    let line = Arc::new(Line(AtomicU64::new(0)));
    let other = Arc::clone(&line);
    let answer = std::thread::spawn(move || -> Result<(), String> {
        pin(a)?;
        for i in 0..trips {
            while other.0.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            other.0.store(2 * i + 2, Ordering::Release);
        }
        Ok(())
    });
    if let Err(e) = pin(b) {
        eprintln!("coreping: {e}");
        std::process::exit(1);
    }
    let start = Instant::now();
    for i in 0..trips {
        line.0.store(2 * i + 1, Ordering::Release);
        while line.0.load(Ordering::Acquire) != 2 * i + 2 {
            if answer.is_finished() {
                break;
            }
            std::hint::spin_loop();
        }
    }
    let elapsed = start.elapsed();
    match answer.join() {
        Ok(Ok(())) => println!(
            "{:.1} ns round trip between cores {a} and {b}",
            elapsed.as_nanos() as f64 / trips as f64
        ),
        Ok(Err(e)) => {
            eprintln!("coreping: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("coreping: the answering thread panicked");
            std::process::exit(1);
        }
    }
}
