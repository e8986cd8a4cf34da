//! Finds the system DPDK with `pkg-config libdpdk`, links it, binds the few `rte_*` functions
//! and types vecswitch uses (bindgen, allowlisted so the build stays quick), and compiles the C
//! shim that exports DPDK's static-inline fast-path functions.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=csrc/wrapper.h");
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    // Emits the -l/-L link lines.
    let lib = match pkg_config::Config::new()
        .atleast_version("21.11")
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => panic!(
            "DPDK not found by pkg-config ({e}); install it (Debian: apt-get install \
             libdpdk-dev clang) or build without the `dpdk` feature"
        ),
    };

    // The full cflags, not only the include paths: DPDK's headers need `-include
    // rte_config.h` and the -march it was built with (its inline functions use SSE4.2).
    let pkg_config = std::env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let cflags = match Command::new(&pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => panic!(
            "pkg-config --cflags libdpdk: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("run {pkg_config}: {e}"),
    };
    let cflags: Vec<String> = cflags.split_whitespace().map(str::to_string).collect();

    let mut shim = cc::Build::new();
    shim.file("csrc/shim.c").include("csrc").warnings(false);
    for path in &lib.include_paths {
        shim.include(path);
    }
    // In order: `-include FILE` stays two adjacent words.
    for flag in &cflags {
        shim.flag(flag);
    }
    shim.compile("vecswitch_dpdk_shim");

    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".to_string()));
    let bindings = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .clang_args(&cflags)
        .clang_arg("-Icsrc")
        .allowlist_function("vs_.*")
        .allowlist_function("rte_eal_init")
        .allowlist_function("rte_eal_cleanup")
        .allowlist_function("rte_thread_register")
        .allowlist_function("rte_thread_unregister")
        .allowlist_function("rte_eal_get_runtime_dir")
        .allowlist_function("rte_strerror")
        .allowlist_function("rte_dev_probe")
        .allowlist_function("rte_dev_remove")
        .allowlist_function("rte_eth_dev_get_port_by_name")
        .allowlist_function("rte_eth_dev_info_get")
        .allowlist_function("rte_eth_dev_socket_id")
        .allowlist_function("rte_eth_dev_configure")
        .allowlist_function("rte_eth_dev_adjust_nb_rx_tx_desc")
        .allowlist_function("rte_eth_rx_queue_setup")
        .allowlist_function("rte_eth_tx_queue_setup")
        .allowlist_function("rte_eth_dev_start")
        .allowlist_function("rte_eth_dev_stop")
        .allowlist_function("rte_eth_dev_close")
        .allowlist_function("rte_eth_promiscuous_enable")
        .allowlist_function("rte_eth_dev_is_valid_port")
        .allowlist_function("rte_eth_stats_get")
        .allowlist_function("rte_pktmbuf_pool_create")
        .allowlist_function("rte_mempool_free")
        .allowlist_type("rte_eth_conf")
        .allowlist_type("rte_eth_dev_info")
        .allowlist_type("rte_eth_stats")
        .allowlist_var("RTE_MBUF_DEFAULT_BUF_SIZE")
        .allowlist_var("RTE_PKTMBUF_HEADROOM")
        .allowlist_var("RTE_MAX_ETHPORTS")
        .allowlist_var("SOCKET_ID_ANY")
        // Only ever behind pointers on the Rust side; their layouts (bitfields, unions,
        // alignment attributes) need not be reproduced.
        .opaque_type("rte_mbuf")
        .opaque_type("rte_mempool")
        .opaque_type("rte_device")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate();
    let bindings = match bindings {
        Ok(b) => b,
        Err(e) => panic!("bindgen on csrc/wrapper.h: {e}"),
    };
    if let Err(e) = bindings.write_to_file(out.join("bindings.rs")) {
        panic!("write bindings.rs: {e}");
    }
}
