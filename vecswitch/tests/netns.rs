#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `tools::netns` against the real kernel: attaching named namespaces and process
//! namespaces through veth pairs, detaching, refusing bad requests by field, and (with a Linux
//! bridge standing in for the switch) ping, TCP and UDP between two attachments, which also
//! tests the traffic helpers in `common`. Needs root and skips with a message otherwise; every
//! test makes its own namespaces, removed by drop guards, so they run in parallel.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{is_root, ping, run, tcp_transfer, udp_exchange, TestNs};
use ports::sys::if_index;
use serde_json::Value;
use tools::netns::{
    attach_veth, detach_veth, format_mac, host_if_name, ns_exec, AttachSpec, Attachment, NsTarget,
};

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: netns tests need root (namespaces and veth pairs)");
            return;
        }
    };
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A process in a network namespace of its own (`unshare -n sleep 30`), killed and reaped on
/// drop.
struct NsProcess(Child);

impl NsProcess {
    fn start() -> NsProcess {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "30"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("unshare: {e}"));
        let me = NsProcess(child);
        // Until unshare has run, the child is still in our namespace.
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let theirs = format!("/proc/{}/ns/net", me.pid());
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(&theirs).ok().as_ref() == Some(&own) {
            assert!(Instant::now() < deadline, "unshare -n did not take effect");
            std::thread::sleep(Duration::from_millis(10));
        }
        me
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Linux bridge standing in for the switch, deleted on drop.
struct Bridge(String);

impl Bridge {
    fn new() -> Bridge {
        let name = format!(
            "vxbr{}x{}",
            std::process::id() % 100_000,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        run(&["ip", "link", "add", &name, "type", "bridge"]);
        let me = Bridge(name);
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", me.0),
            "1",
        );
        run(&["ip", "link", "set", &me.0, "up"]);
        me
    }

    fn add(&self, port: &str) {
        run(&["ip", "link", "set", port, "master", &self.0]);
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}

/// Deletes an attachment's pair on drop unless the test detached it already.
struct Attached(Attachment);

impl Drop for Attached {
    fn drop(&mut self) {
        if if_index(&self.0.host_if).is_some() {
            let _ = detach_veth(&self.0.host_if);
        }
    }
}

fn attach(spec: &AttachSpec) -> Attached {
    Attached(attach_veth(spec).unwrap_or_else(|e| panic!("attach: {e}")))
}

/// `ip -j -d addr show dev IF` (in `ns`, or here when `None`) as JSON.
fn link_json(ns: Option<&NsTarget>, ifname: &str) -> Option<Value> {
    let args = ["ip", "-j", "-d", "addr", "show", "dev", ifname];
    let out = match ns {
        Some(t) => ns_exec(t, &args).unwrap(),
        None => Command::new(args[0]).args(&args[1..]).output().unwrap(),
    };
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.get(0).cloned()
}

fn is_up(link: &Value) -> bool {
    link["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f.as_str() == Some("UP"))
}

fn has_addr(link: &Value, addr: &str, prefix: u64) -> bool {
    link["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["local"].as_str() == Some(addr) && a["prefixlen"].as_u64() == Some(prefix))
}

/// Whether `ethtool -k IF` reports TX checksumming off.
fn tx_csum_off(ns: Option<&NsTarget>, ifname: &str) -> bool {
    let args = ["ethtool", "-k", ifname];
    let out = match ns {
        Some(t) => ns_exec(t, &args).unwrap(),
        None => Command::new(args[0]).args(&args[1..]).output().unwrap(),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == "tx-checksumming: off")
}

/// Polls `cond` for up to 5 s.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn attach_into_a_named_namespace_configures_both_ends_and_detach_removes_them() {
    require_root!();
    let ns = TestNs::new();
    let mac = [0x02, 0x56, 0x53, 0x00, 0x00, 0x01];
    let spec = AttachSpec {
        ip: Some("10.88.0.2/24".into()),
        mac: Some(mac),
        name: Some("ctr0".into()),
        ..AttachSpec::new(ns.target.clone())
    };
    let a = attach(&spec);
    assert_eq!(a.0.ns_if, "ctr0");
    assert_eq!(a.0.netns, ns.name);
    assert_eq!(a.0.mac, mac);
    assert_eq!(a.0.ip.as_deref(), Some("10.88.0.2/24"));
    assert_eq!(a.0.host_if, host_if_name(&ns.target, "ctr0"));

    let inside = link_json(Some(&ns.target), "ctr0").expect("ctr0 inside the namespace");
    assert!(is_up(&inside), "{inside}");
    assert_eq!(inside["address"].as_str(), Some(format_mac(&mac).as_str()));
    assert!(has_addr(&inside, "10.88.0.2", 24), "{inside}");
    assert_eq!(inside["linkinfo"]["info_kind"].as_str(), Some("veth"));
    assert!(tx_csum_off(Some(&ns.target), "ctr0"));
    // Not visible here: it lives in the namespace.
    assert!(link_json(None, "ctr0").is_none());

    let host = link_json(None, &a.0.host_if).expect("host end");
    assert!(is_up(&host), "{host}");
    assert!(host["addr_info"].as_array().unwrap().is_empty(), "{host}");
    assert!(tx_csum_off(None, &a.0.host_if));
    let v6 = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", a.0.host_if);
    assert_eq!(std::fs::read_to_string(v6).unwrap().trim(), "1");

    detach_veth(&a.0.host_if).unwrap();
    assert!(link_json(None, &a.0.host_if).is_none(), "host end gone");
    assert!(
        link_json(Some(&ns.target), "ctr0").is_none(),
        "namespace end gone"
    );
    let e = detach_veth(&a.0.host_if).unwrap_err().to_string();
    assert!(
        e.starts_with("host_if: ") && e.contains(&a.0.host_if),
        "{e}"
    );
}

#[test]
fn defaults_are_eth0_a_derived_host_name_and_the_kernel_mac() {
    require_root!();
    let ns = TestNs::new();
    let a = attach(&AttachSpec::new(ns.target.clone()));
    assert_eq!(a.0.ns_if, "eth0");
    assert_eq!(a.0.host_if, host_if_name(&ns.target, "eth0"));
    assert_eq!(a.0.ip, None);
    let inside = link_json(Some(&ns.target), "eth0").unwrap();
    assert!(is_up(&inside));
    assert_eq!(
        inside["address"].as_str(),
        Some(format_mac(&a.0.mac).as_str())
    );
    assert!(
        inside["addr_info"].as_array().unwrap().is_empty(),
        "{inside}"
    );
}

#[test]
fn attach_by_pid_enters_the_process_namespace_and_goes_when_it_exits() {
    require_root!();
    let mut proc = NsProcess::start();
    let target = NsTarget::Pid(proc.pid());
    let spec = AttachSpec {
        ip: Some("10.89.0.2/24".into()),
        ..AttachSpec::new(target.clone())
    };
    let a = attach(&spec);
    assert_eq!(a.0.netns, format!("pid:{}", proc.pid()));
    let inside = link_json(Some(&target), "eth0").expect("eth0 in the process's namespace");
    assert!(is_up(&inside));
    assert!(has_addr(&inside, "10.89.0.2", 24), "{inside}");
    assert!(tx_csum_off(Some(&target), "eth0"));
    assert!(is_up(&link_json(None, &a.0.host_if).unwrap()));

    // The container exits: its namespace goes, and with it both ends of the pair.
    let _ = proc.0.kill();
    let _ = proc.0.wait();
    assert!(
        eventually(|| if_index(&a.0.host_if).is_none()),
        "host end outlived the process"
    );
    let e = attach_veth(&spec).unwrap_err().to_string();
    assert!(e.starts_with("pid: "), "{e}");
}

#[test]
fn two_attachments_on_a_bridge_ping_and_carry_tcp_and_udp() {
    require_root!();
    let (na, nb) = (TestNs::new(), TestNs::new());
    let br = Bridge::new();
    let a = attach(&AttachSpec {
        ip: Some("10.90.0.1/24".into()),
        ..AttachSpec::new(na.target.clone())
    });
    let b = attach(&AttachSpec {
        ip: Some("10.90.0.2/24".into()),
        ..AttachSpec::new(nb.target.clone())
    });
    assert_ne!(a.0.host_if, b.0.host_if);
    br.add(&a.0.host_if);
    br.add(&b.0.host_if);

    assert!(ping(&na.target, "10.90.0.2", 3), "a pings b");
    assert!(ping(&nb.target, "10.90.0.1", 1), "b pings a");
    let n = 4 << 20;
    assert_eq!(
        tcp_transfer(&nb.target, "10.90.0.2", &na.target, n).unwrap(),
        n
    );
    assert_eq!(
        tcp_transfer(&na.target, "10.90.0.1", &nb.target, 100_000).unwrap(),
        100_000
    );
    assert_eq!(
        udp_exchange(&nb.target, "10.90.0.2", &na.target, 50).unwrap(),
        50
    );

    // The helpers can fail: with b detached nothing answers.
    detach_veth(&b.0.host_if).unwrap();
    assert!(!ping(&na.target, "10.90.0.2", 1));
    assert!(tcp_transfer(&na.target, "10.90.0.1", &nb.target, 1000).is_err());
}

#[test]
fn bad_requests_are_refused_by_field() {
    let missing = NsTarget::Name(format!("vxt-missing-{}", std::process::id()));
    let check = |spec: &AttachSpec, field: &str, what: &str| {
        let e = attach_veth(spec).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{field}: ")) && e.contains(what),
            "{e}"
        );
    };
    check(&AttachSpec::new(missing.clone()), "netns", "vxt-missing-");
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let pid: u32 = pid_max.trim().parse().unwrap();
    check(&AttachSpec::new(NsTarget::Pid(pid)), "pid", pid_max.trim());
    check(
        &AttachSpec::new(NsTarget::Pid(std::process::id())),
        "pid",
        "own network namespace",
    );
    check(
        &AttachSpec::new(NsTarget::Name("a/b".into())),
        "netns",
        "'/'",
    );
    if !is_root() {
        eprintln!("SKIP: the rest needs root (a namespace to attach to)");
        return;
    }
    let ns = TestNs::new();
    let base = AttachSpec::new(ns.target.clone());
    check(
        &AttachSpec {
            mac: Some([0x01, 0, 0x5e, 0, 0, 1]),
            ..base.clone()
        },
        "mac",
        "multicast",
    );
    check(
        &AttachSpec {
            ip: Some("10.0.0.1/40".into()),
            ..base.clone()
        },
        "ip",
        "40",
    );
    check(
        &AttachSpec {
            ip: Some("10.0.0.1".into()),
            ..base.clone()
        },
        "ip",
        "prefix",
    );
    check(
        &AttachSpec {
            name: Some("a-name-much-too-long".into()),
            ..base.clone()
        },
        "name",
        "a-name-much-too-long",
    );
    check(
        &AttachSpec {
            host_name: Some("bad name".into()),
            ..base.clone()
        },
        "host_name",
        "bad name",
    );
    // Nothing was created by the refusals.
    assert!(if_index(&host_if_name(&ns.target, "eth0")).is_none());

    // Collisions: the same attachment twice, then the same name inside under another host name.
    let first = attach(&base);
    check(&base, "host_name", &first.0.host_if);
    let other_host = format!("vxo{}", std::process::id() % 100_000);
    check(
        &AttachSpec {
            host_name: Some(other_host.clone()),
            ..base.clone()
        },
        "name",
        "eth0",
    );
    assert!(if_index(&other_host).is_none());
    assert!(link_json(None, &first.0.host_if).is_some(), "first intact");
}

#[test]
fn a_failure_after_creating_the_pair_deletes_it_again() {
    require_root!();
    // TestNs turns IPv6 off, so the kernel refuses an IPv6 address after the pair exists.
    let ns = TestNs::new();
    let spec = AttachSpec {
        ip: Some("fd00:90::2/64".into()),
        ..AttachSpec::new(ns.target.clone())
    };
    let e = attach_veth(&spec).unwrap_err().to_string();
    assert!(e.starts_with("set address: "), "{e}");
    assert!(if_index(&host_if_name(&ns.target, "eth0")).is_none());
    assert!(link_json(Some(&ns.target), "eth0").is_none());
}

#[test]
fn detach_refuses_what_is_not_a_veth() {
    require_root!();
    let br = Bridge::new();
    let e = detach_veth(&br.0).unwrap_err().to_string();
    assert!(
        e.starts_with("host_if: ") && e.contains("bridge") && e.contains("not a veth"),
        "{e}"
    );
    assert!(if_index(&br.0).is_some(), "the bridge is still there");
    let e = detach_veth("a/b").unwrap_err().to_string();
    assert!(e.starts_with("host_if: "), "{e}");
}

#[test]
fn ipv6_addresses_are_usable_at_once_and_the_helpers_speak_ipv6() {
    require_root!();
    let (na, nb) = (TestNs::with_ipv6(), TestNs::with_ipv6());
    let br = Bridge::new();
    let a = attach(&AttachSpec {
        ip: Some("fd00:91::1/64".into()),
        ..AttachSpec::new(na.target.clone())
    });
    let b = attach(&AttachSpec {
        ip: Some("fd00:91::2/64".into()),
        ..AttachSpec::new(nb.target.clone())
    });
    // `nodad`: no tentative period in which the address cannot be bound.
    let inside = link_json(Some(&na.target), "eth0").unwrap();
    assert!(has_addr(&inside, "fd00:91::1", 64), "{inside}");
    let ours = inside["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["local"].as_str() == Some("fd00:91::1"))
        .unwrap();
    assert!(ours.get("tentative").is_none(), "{ours}");
    br.add(&a.0.host_if);
    br.add(&b.0.host_if);
    assert!(ping(&na.target, "fd00:91::2", 2));
    assert_eq!(
        tcp_transfer(&nb.target, "fd00:91::2", &na.target, 1 << 20).unwrap(),
        1 << 20
    );
    assert_eq!(
        udp_exchange(&na.target, "fd00:91::1", &nb.target, 20).unwrap(),
        20
    );
}
