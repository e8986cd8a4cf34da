#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The systemd unit in `contrib/systemd` is one systemd accepts, and its command line is one
//! the binary accepts.

use std::path::Path;
use std::process::Command;

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let unit = std::fs::read_to_string(repo.join("contrib/systemd/vecswitch.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    assert_eq!(
        exec,
        "/usr/local/bin/vecswitch run --config /etc/vecswitch.toml"
    );
    // verify checks that the command exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vecswitch.service");
    let bin = env!("CARGO_BIN_EXE_vecswitch");
    std::fs::write(&path, unit.replace("/usr/local/bin/vecswitch", bin)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian systemd, installed by scripts/setup.sh) runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // An unknown key or a bad value is only a warning: any output is a failure here.
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    // The binary takes the unit's arguments.
    let help = Command::new(bin).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--config"), "{help}");
}
