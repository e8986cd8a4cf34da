#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Replays every scenario under `pcaps/` and compares the outputs with the reviewed goldens in
//! `pcaps/<scenario>/expected/`. Goldens are rewritten only on request:
//! `VECSWITCH_UPDATE_GOLDEN=1 cargo test -p vecswitch --test replay`.

use std::path::{Path, PathBuf};

use tools::replay::replay;
use tools::scenario::Scenario;

fn scenarios() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("pcaps/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("scenario.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn check(dir: &Path) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let scenario = Scenario::load(dir).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = tempfile::tempdir().unwrap();
    replay(&scenario, out.path()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let expected = dir.join("expected");
    if std::env::var_os("VECSWITCH_UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&expected);
        std::fs::create_dir_all(&expected).unwrap();
        for f in files(out.path()) {
            std::fs::copy(out.path().join(&f), expected.join(&f)).unwrap();
        }
        eprintln!("{name}: golden rewritten");
        return Vec::new();
    }
    let mut problems = Vec::new();
    if !expected.is_dir() {
        return vec![format!("{name}: no expected/ golden (generate it with VECSWITCH_UPDATE_GOLDEN=1, review it, commit it)")];
    }
    let (got, want) = (files(out.path()), files(&expected));
    if got != want {
        problems.push(format!(
            "{name}: output files {got:?} differ from golden files {want:?}"
        ));
    }
    for f in want.iter().filter(|f| got.contains(f)) {
        let a = std::fs::read(out.path().join(f)).unwrap();
        let b = std::fs::read(expected.join(f)).unwrap();
        if a != b {
            let hint = if f.ends_with(".json") {
                format!("\n--- got\n{}", String::from_utf8_lossy(&a))
            } else {
                String::new()
            };
            problems.push(format!("{name}: {f} differs from the golden{hint}"));
        }
    }
    problems
}

#[test]
fn every_scenario_matches_its_golden() {
    let dirs = scenarios();
    assert!(
        dirs.len() >= 7,
        "expected at least 7 scenarios under pcaps/, found {}",
        dirs.len()
    );
    let problems: Vec<String> = dirs.iter().flat_map(|d| check(d)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn replay_is_deterministic() {
    for dir in scenarios() {
        let scenario = Scenario::load(&dir).unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        replay(&scenario, a.path()).unwrap();
        replay(&scenario, b.path()).unwrap();
        for f in files(a.path()) {
            assert_eq!(
                std::fs::read(a.path().join(&f)).unwrap(),
                std::fs::read(b.path().join(&f)).unwrap(),
                "{}: {f} differs between two runs",
                dir.display()
            );
        }
    }
}
