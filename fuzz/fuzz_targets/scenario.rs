//! Scenario files: arbitrary text through `Scenario::parse` must give a scenario or an error,
//! never a panic, and the error must render.
#![no_main]

use std::path::Path;

use tools::scenario::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Scenario::parse(text, Path::new("."), Path::new("s.toml")) {
        Ok(s) => {
            assert!(!s.ports.is_empty(), "a scenario without ports was accepted");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
