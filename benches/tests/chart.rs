//! `benches/chart.py` (the SVG charts of the end-to-end bench results) checked by its Python
//! unittest on checked-in results JSON; here so that `cargo test` (and `scripts/test.sh`)
//! runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn chart_script_draws_every_case_and_switch() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let o = Command::new(python)
        .arg(format!("{dir}/test_chart.py"))
        .arg("-v")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{err}");
    assert!(o.status.success(), "test_chart.py failed:\n{err}");
    assert!(err.contains("Ran 3 tests"), "{err}");
}
