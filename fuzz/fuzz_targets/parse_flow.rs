//! The rule language: any UTF-8 text gives a rule or an error naming a field, never a panic;
//! a rule that parses prints (Display) to text that parses back to the same rule, and that
//! text is a fixed point of printing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::{parse_bundle_file, parse_flow, parse_flow_mod, parse_flows_file};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_flow(text) {
        Ok(spec) => {
            let printed = spec.to_string();
            let back = match parse_flow(&printed) {
                Ok(b) => b,
                Err(e) => panic!("{text:?} printed as {printed:?}, which does not parse: {e}"),
            };
            assert_eq!(
                back, spec,
                "{text:?} printed as {printed:?} parses to another rule"
            );
            assert_eq!(
                back.to_string(),
                printed,
                "printing {printed:?} is not stable"
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    // Whole files and bundle lines go through the same parser; they must not panic either.
    if let Err(e) = parse_flows_file(text) {
        let _ = e.to_string();
    }
    if let Err(e) = parse_bundle_file(text) {
        let _ = e.to_string();
    }
    if let Err(e) = parse_flow_mod(text) {
        let _ = e.to_string();
    }
});
