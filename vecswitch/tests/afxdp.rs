#![allow(clippy::panic, clippy::unwrap_used)]
//! AF_XDP ports against a real veth pair whose far end lives in a throw-away network
//! namespace. Needs root (CI runs as root); skips with a message otherwise or when the kernel
//! has no AF_XDP. Run with `--test-threads=1`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{frame, hex, is_root, python, run, VethNs, ETHERTYPE};
use pipeline::buffer::{FRAME_SIZE, HEADROOM};
use pipeline::{PacketId, PacketPool};
use pipeline::{RxSink, Sent};
use ports::afxdp::port::JOINED_OWN_FRAMES;
use ports::afxdp::{
    detach_stale, BindMode, RxDesc, Umem, XdpMode, XdpModeRequest, XskConfig, XskError, XskPort,
};
use ports::{AfXdpQueue, PortIo};

fn is_test_frame(bytes: &[u8]) -> bool {
    bytes.len() >= 18 && bytes[12..14] == ETHERTYPE.to_be_bytes()
}

/// Sends frames `0..n` from `peer` inside the namespace through an AF_PACKET socket.
fn send_from_ns(ns: &str, peer: &str, n: u32) {
    let hex: Vec<String> = (0..n).map(|i| hex(&frame(i))).collect();
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('{peer}',0))\n\
         for h in {hex:?}:\n    s.send(bytes.fromhex(h))\n"
    );
    run(&["ip", "netns", "exec", ns, python(), "-c", &script]);
}

/// Opens a port or, when the kernel has no AF_XDP at all, returns `None` (skip).
fn open_or_skip(ifname: &str, config: &XskConfig) -> Option<XskPort> {
    match XskPort::open(ifname, 0, config) {
        Ok(p) => Some(p),
        Err(XskError::Sys { what, source })
            if what == "socket(AF_XDP)" && source.raw_os_error() == Some(libc_eafnosupport()) =>
        {
            eprintln!("SKIP: AF_XDP sockets cannot be created here: {source}");
            None
        }
        Err(e) => panic!("open {ifname}: {e}"),
    }
}

fn libc_eafnosupport() -> i32 {
    97 // EAFNOSUPPORT on Linux
}

/// Receives test frames until `n` arrived or 3 s passed; recycles every frame.
fn receive(port: &mut XskPort, n: usize) -> Vec<(RxDesc, Vec<u8>)> {
    let mut got = Vec::new();
    let mut descs = Vec::with_capacity(64);
    let deadline = Instant::now() + Duration::from_secs(3);
    while got.len() < n && Instant::now() < deadline {
        port.poll();
        descs.clear();
        if port.rx_burst(&mut descs, 64) == 0 {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        for d in &descs {
            let bytes = port.packet(d.addr, d.len).to_vec();
            if is_test_frame(&bytes) {
                got.push((*d, bytes));
            }
            port.recycle(d.addr);
        }
    }
    got
}

fn xdp_attached(ifname: &str) -> bool {
    let out = Command::new("ip")
        .args(["-d", "link", "show", "dev", ifname])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.contains("xdp")
}

/// True once no XDP program is attached to `ifname`, waiting up to 2 s: a child process that
/// another test forks in parallel holds copies of our fds between its fork and exec.
fn xdp_detached(ifname: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while xdp_attached(ifname) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: AF_XDP tests need root");
            return;
        }
    };
}

#[test]
fn receives_frames_with_correct_bytes_at_the_pipeline_headroom() {
    require_root!();
    let env = VethNs::new(1);
    let host = &env.hosts[0];
    assert!(!xdp_attached(host), "fresh veth has no XDP program");
    let Some(mut port) = open_or_skip(host, &XskConfig::default()) else {
        return;
    };
    let mode = port.mode();
    eprintln!("veth mode with defaults: {mode:?}");
    assert_eq!(mode.xdp, Some(XdpMode::Driver), "veth has native XDP");
    assert!(!mode.zero_copy, "veth is copy mode only");
    assert!(mode.need_wakeup);
    assert!(
        xdp_attached(host),
        "program attached while the port is open"
    );

    send_from_ns(&env.ns, &env.peers[0], 60);
    let got = receive(&mut port, 60);
    assert_eq!(got.len(), 60, "all frames received");
    for (i, (d, bytes)) in got.iter().enumerate() {
        assert_eq!(bytes, &frame(i as u32), "frame {i} bytes");
        assert_eq!(
            d.addr as usize % FRAME_SIZE,
            HEADROOM,
            "packet starts at HEADROOM"
        );
    }
    let stats = port.stats().unwrap_or_else(|e| panic!("stats: {e}"));
    assert_eq!(stats.rx_dropped, 0);
    assert_eq!(stats.rx_invalid_descs, 0);
    // Every frame is back: free list plus what the fill ring holds.
    assert_eq!(port.counters().foreign_frames, 0);

    drop(port);
    assert!(xdp_detached(host), "dropping the port detaches the program");
}

#[test]
fn transmits_frames_that_the_namespace_receives() {
    require_root!();
    let env = VethNs::new(1);
    let host = &env.hosts[0];
    let Some(mut port) = open_or_skip(host, &XskConfig::default()) else {
        return;
    };
    let n = 100u32;
    let script = format!(
        "import socket,sys\n\
         s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons({ETHERTYPE}))\n\
         s.bind(('{peer}',0))\ns.settimeout(3)\nprint('ready',flush=True)\nc=0\n\
         try:\n    while c<{n}:\n        f,a=s.recvfrom(4096)\n        if a[0]!='{peer}': continue\n        print(f.hex(),flush=True)\n        c+=1\n\
         except socket.timeout:\n    pass\nprint('done',flush=True)\n",
        peer = env.peers[0]
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", &env.ns, python(), "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn receiver: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = BufReader::new(stdout).lines();
    assert_eq!(
        lines.next().and_then(|l| l.ok()).as_deref(),
        Some("ready"),
        "receiver started"
    );

    let frames: Vec<Vec<u8>> = (0..n).map(frame).collect();
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(3);
    while (sent < frames.len() || port.tx_in_flight() > 0) && Instant::now() < deadline {
        let batch: Vec<&[u8]> = frames[sent..]
            .iter()
            .take(32)
            .map(|f| f.as_slice())
            .collect();
        sent += port.tx_burst(&batch) as usize;
        port.poll();
    }
    assert_eq!(sent, n as usize, "all frames queued");
    assert_eq!(port.tx_in_flight(), 0, "all transmissions completed");

    let received: Vec<String> = lines
        .map_while(|l| l.ok())
        .take_while(|l| l != "done")
        .collect();
    let _ = child.wait();
    assert_eq!(received.len(), n as usize, "namespace received every frame");
    for (i, h) in received.iter().enumerate() {
        assert_eq!(h, &hex(&frame(i as u32)), "frame {i} bytes");
    }
    let stats = port.stats().unwrap_or_else(|e| panic!("stats: {e}"));
    assert_eq!(stats.tx_invalid_descs, 0);
    assert_eq!(port.counters().tx_no_room + port.counters().tx_too_long, 0);
    assert_eq!(port.counters().wakeup_errors, 0);
}

#[test]
fn generic_mode_when_asked_and_zero_copy_refused_on_veth() {
    require_root!();
    let env = VethNs::new(1);
    let host = &env.hosts[0];
    let generic = XskConfig {
        xdp_mode: XdpModeRequest::Generic,
        ..XskConfig::default()
    };
    let Some(mut port) = open_or_skip(host, &generic) else {
        return;
    };
    assert_eq!(port.mode().xdp, Some(XdpMode::Generic));
    assert!(!port.mode().zero_copy);
    send_from_ns(&env.ns, &env.peers[0], 12);
    let got = receive(&mut port, 12);
    assert_eq!(got.len(), 12);
    assert_eq!(got[11].1, frame(11));
    drop(port);
    assert!(xdp_detached(host));

    let zc = XskConfig {
        bind_mode: BindMode::ZeroCopy,
        ..XskConfig::default()
    };
    match XskPort::open(host, 0, &zc) {
        Ok(_) => panic!("veth granted zero-copy; update the module doc"),
        Err(e) => eprintln!("zero-copy on veth: {e}"),
    }
    assert!(xdp_detached(host), "a failed open leaves no program");
    let copy = XskConfig {
        bind_mode: BindMode::Copy,
        need_wakeup: false,
        ..XskConfig::default()
    };
    let port = XskPort::open(host, 0, &copy).unwrap_or_else(|e| panic!("copy: {e}"));
    assert!(!port.mode().zero_copy && !port.mode().need_wakeup);
}

#[test]
fn shared_umem_across_two_veths() {
    require_root!();
    let env = VethNs::new(2);
    let umem = Umem::new(4096).unwrap_or_else(|e| panic!("umem: {e}"));
    let config = XskConfig::default();
    let mut a = match XskPort::open_in(&env.hosts[0], 0, &config, &umem, 0..2048, None) {
        Ok(p) => p,
        Err(e) => panic!("port a: {e}"),
    };
    // Overlapping frames, and sharing with a port of another UMEM, are refused with the
    // field named.
    let overlap = XskPort::open_in(&env.hosts[1], 0, &config, &umem, 2000..3000, Some(&a));
    assert!(matches!(
        overlap,
        Err(XskError::Config {
            field: "frames",
            ..
        })
    ));
    let elsewhere = XskPort::open(&env.hosts[1], 0, &config)
        .unwrap_or_else(|e| panic!("port on its own UMEM: {e}"));
    let foreign = XskPort::open_in(
        &env.hosts[0],
        1,
        &config,
        &umem,
        2048..4096,
        Some(&elsewhere),
    );
    assert!(matches!(
        foreign,
        Err(XskError::Config { field: "share", .. })
    ));
    drop(elsewhere);

    // With no port named, the socket shares the UMEM's live port (a).
    let mut b = XskPort::open_in(&env.hosts[1], 0, &config, &umem, 2048..4096, None)
        .unwrap_or_else(|e| panic!("port b (XDP_SHARED_UMEM): {e}"));
    assert!(b.mode().shared_umem && !a.mode().shared_umem);
    eprintln!("shared umem second socket: {:?}", b.mode());

    send_from_ns(&env.ns, &env.peers[0], 10);
    send_from_ns(&env.ns, &env.peers[1], 10);
    let got_a = receive(&mut a, 10);
    let got_b = receive(&mut b, 10);
    assert_eq!(got_a.len(), 10);
    assert_eq!(got_b.len(), 10);
    for (i, ((da, ba), (db, bb))) in got_a.iter().zip(&got_b).enumerate() {
        assert_eq!(ba, &frame(i as u32));
        assert_eq!(bb, &frame(i as u32));
        assert!(da.addr < 2048 * FRAME_SIZE as u64, "a uses its own frames");
        assert!(db.addr >= 2048 * FRAME_SIZE as u64, "b uses its own frames");
    }
    // A frame of a's range is not b's to send.
    assert_eq!(b.tx_frames(&[got_a[0].0]), 0);
    assert_eq!(b.counters().foreign_frames, 1);
    drop(b);
    drop(a);
    assert!(xdp_detached(&env.hosts[0]) && xdp_detached(&env.hosts[1]));
}

/// Child half of `sigkill_leaves_nothing_behind`: hold a port until killed.
#[test]
#[ignore = "helper, started by sigkill_leaves_nothing_behind"]
fn helper_hold_port() {
    let Ok(ifname) = std::env::var("VXS_HOLD_IF") else {
        return;
    };
    let port = XskPort::open(&ifname, 0, &XskConfig::default());
    println!("holding {}", port.is_ok());
    std::thread::sleep(Duration::from_secs(30));
    drop(port);
}

#[test]
fn sigkill_leaves_nothing_behind_and_the_next_open_works() {
    require_root!();
    let env = VethNs::new(1);
    let host = &env.hosts[0];
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let mut child = Command::new(exe)
        .args(["--exact", "helper_hold_port", "--ignored", "--nocapture"])
        .env("VXS_HOLD_IF", host)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn helper: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let holding = BufReader::new(stdout)
        .lines()
        .map_while(|l| l.ok())
        .find(|l| l.starts_with("holding"));
    assert_eq!(
        holding.as_deref(),
        Some("holding true"),
        "helper opened the port"
    );
    assert!(xdp_attached(host));
    let _ = child.kill(); // SIGKILL: no destructor runs
    let _ = child.wait();

    // The link died with the process: no program, nothing for detach_stale to do.
    let deadline = Instant::now() + Duration::from_secs(2);
    while xdp_attached(host) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!xdp_attached(host), "SIGKILL left an XDP program behind");
    detach_stale(host).unwrap_or_else(|e| panic!("detach_stale: {e}"));

    // The next start binds the same queue (retrying EBUSY while the kernel frees the old
    // socket) and receives.
    let mut port = XskPort::open(host, 0, &XskConfig::default())
        .unwrap_or_else(|e| panic!("reopen after SIGKILL: {e}"));
    send_from_ns(&env.ns, &env.peers[0], 5);
    assert_eq!(receive(&mut port, 5).len(), 5);
}

/// Generator half of `measure_rx_rate`: transmit 64-byte frames from a port for a while.
#[test]
#[ignore = "helper, started by measure_rx_rate inside the namespace"]
fn helper_blast() {
    let Ok(ifname) = std::env::var("VXS_BLAST_IF") else {
        return;
    };
    let mut port = XskPort::open(&ifname, 0, &XskConfig::default())
        .unwrap_or_else(|e| panic!("blast port: {e}"));
    let f = frame(0);
    let batch: Vec<&[u8]> = (0..64).map(|_| f.as_slice()).collect();
    let end = Instant::now() + Duration::from_secs(4);
    let mut sent = 0u64;
    while Instant::now() < end {
        sent += u64::from(port.tx_burst(&batch));
        port.poll();
    }
    println!("sent {sent}");
}

/// Not a gate (veth throughput says little, see ENVIRONMENT.md): prints the rx rate of one
/// port fed by an AF_XDP generator in the namespace. `cargo test --release ... --ignored
/// measure_rx_rate --nocapture`.
#[test]
#[ignore = "measurement, run by hand"]
fn measure_rx_rate() {
    require_root!();
    let env = VethNs::new(1);
    let mut port = XskPort::open(&env.hosts[0], 0, &XskConfig::default())
        .unwrap_or_else(|e| panic!("open: {e}"));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let exe = exe.to_string_lossy().into_owned();
    let child = Command::new("ip")
        .args(["netns", "exec", &env.ns, &exe, "--exact", "helper_blast"])
        .args(["--ignored", "--nocapture"])
        .env("VXS_BLAST_IF", &env.peers[0])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn generator: {e}"));
    let mut descs = Vec::with_capacity(64);
    let start = Instant::now();
    let (mut count, mut measured_from, mut base) = (0u64, None, 0u64);
    while start.elapsed() < Duration::from_secs(4) {
        descs.clear();
        let n = port.rx_burst(&mut descs, 64);
        for d in &descs {
            port.recycle(d.addr);
        }
        count += u64::from(n);
        if measured_from.is_none() && start.elapsed() > Duration::from_secs(1) {
            measured_from = Some(Instant::now());
            base = count;
        }
        port.refill();
    }
    let secs = measured_from.map_or(1.0, |t| t.elapsed().as_secs_f64());
    let out = child
        .wait_with_output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let sent = String::from_utf8_lossy(&out)
        .lines()
        .find(|l| l.starts_with("sent"))
        .map(str::to_string);
    eprintln!(
        "rx {:.3} Mpps over {secs:.1} s (total {count}, generator {sent:?}); stats {:?} {:?}",
        (count - base) as f64 / secs / 1e6,
        port.stats().ok(),
        port.counters()
    );
    assert!(count > 0);
}

/// A receive burst's sink over a pool, as the switch's: lends frames, takes packets back.
struct PoolSink<'a> {
    pool: &'a mut PacketPool,
    got: Vec<PacketId>,
}

impl RxSink for PoolSink<'_> {
    fn push(&mut self, frame: &[u8]) {
        if let Ok(id) = self.pool.alloc_with(frame) {
            self.got.push(id);
        }
    }
    fn room(&mut self) -> Option<&mut [u8]> {
        None
    }
    fn commit(&mut self, _len: usize) {}
    fn pool_addr(&self) -> Option<usize> {
        Some(self.pool.memory_addr())
    }
    fn lend(&mut self) -> Option<PacketId> {
        self.pool.lend()
    }
    fn adopt(&mut self, id: PacketId, data_off: usize, len: usize) {
        self.pool.adopt(id, data_off, len).unwrap();
        self.got.push(id);
    }
    fn give_back(&mut self, id: PacketId) {
        self.pool.free(id);
    }
}

#[test]
fn queues_in_a_pools_umem_pass_frames_without_copies_and_give_every_frame_back() {
    require_root!();
    let env = VethNs::new(2);
    const POOL: u32 = 4096;
    let umem = Umem::map(POOL + 4 * JOINED_OWN_FRAMES).unwrap_or_else(|e| panic!("{e}"));
    let memory = umem.pool_memory(POOL).unwrap_or_else(|e| panic!("{e}"));
    let mut pool = PacketPool::over(memory, POOL).unwrap();
    let config = XskConfig::default();
    let open = |host: &str| {
        AfXdpQueue::open(host, host, 0, &config).unwrap_or_else(|e| panic!("open {host}: {e}"))
    };
    let (mut a, mut b) = (open(&env.hosts[0]), open(&env.hosts[1]));
    for q in [&mut a, &mut b] {
        assert!(q
            .join_pool(&umem, &mut pool)
            .unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(q.joined_pool(), Some(pool.memory_addr()));
        assert!(q.info().mode.contains("pmd-pool"), "{}", q.info().mode);
    }
    // Joining again is a no-op; nothing was lent yet.
    assert!(a.join_pool(&umem, &mut pool).unwrap());
    assert_eq!(common::counter(&a, "reopens"), 1);
    assert_eq!(pool.available(), POOL as usize);

    // The first bursts lend half a fill ring each.
    let burst = |q: &mut AfXdpQueue, pool: &mut PacketPool| {
        let mut sink = PoolSink {
            pool,
            got: Vec::new(),
        };
        q.rx_burst_into(64, &mut sink);
        sink.got
    };
    assert!(burst(&mut a, &mut pool).is_empty() && burst(&mut b, &mut pool).is_empty());
    let lent = a.pool_frames_held() + b.pool_frames_held();
    assert_eq!(lent, config.ring_size as usize);
    assert_eq!(pool.available(), POOL as usize - lent);

    // Frames arrive in pool frames, as the kernel wrote them.
    send_from_ns(&env.ns, &env.peers[0], 20);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while got.len() < 20 && Instant::now() < deadline {
        for id in burst(&mut a, &mut pool) {
            if is_test_frame(pool.data(id)) {
                got.push(id);
            } else {
                pool.free(id);
            }
        }
        a.poll();
    }
    assert_eq!(got.len(), 20);
    for (i, &id) in got.iter().enumerate() {
        assert_eq!(pool.data(id), &frame(i as u32)[..]);
        assert_eq!(pool.meta(id).data_off as usize, HEADROOM);
    }
    assert_eq!(common::counter(&a, "rx-zero-copy"), 20);

    // Sent on b as they are: b keeps them until the kernel completes them.
    let rx = common::FrameReceiver::start(Some(&env.ns), &env.peers[1], ETHERTYPE, 20, None);
    let sent = b.tx_packets(&pool, &got);
    assert_eq!(
        sent,
        Sent {
            count: 20,
            kept: true
        }
    );
    assert_eq!(common::counter(&b, "tx-zero-copy"), 20);
    b.poll();
    let heard = rx.finish();
    assert_eq!(heard.len(), 20, "the peer got every frame");
    for (i, h) in heard.iter().enumerate() {
        assert_eq!(h, &hex(&frame(i as u32)));
    }
    // A packet of another pool is copied into b's own frames.
    let mut other = PacketPool::new(4);
    let id = other.alloc_with(&frame(99)).unwrap();
    assert_eq!(
        b.tx_packets(&other, &[id]),
        Sent {
            count: 1,
            kept: false
        }
    );

    // Completions come back at b's next burst; leaving returns the rest (fill rings).
    let deadline = Instant::now() + Duration::from_secs(3);
    while b.pool_frames_held() > config.ring_size as usize / 2 && Instant::now() < deadline {
        b.poll();
        burst(&mut b, &mut pool);
    }
    assert_eq!(b.pool_frames_held(), config.ring_size as usize / 2);
    a.leave_pool(&mut pool);
    b.leave_pool(&mut pool);
    assert_eq!(pool.available(), POOL as usize, "every frame is back");
    assert_eq!(a.joined_pool(), None);
    assert_eq!(a.info().mode, "closed", "until a PMD takes it on");
    assert!(a.rx_fd().is_none());
    // On memory of its own, the queue receives again (by copy).
    a.open_alone();
    assert!(!a.info().mode.contains("pmd-pool"), "{}", a.info().mode);
    send_from_ns(&env.ns, &env.peers[0], 3);
    let mut copied = 0;
    let deadline = Instant::now() + Duration::from_secs(3);
    while copied < 3 && Instant::now() < deadline {
        copied += burst(&mut a, &mut pool)
            .into_iter()
            .filter(|&id| {
                let ours = is_test_frame(pool.data(id));
                pool.free(id);
                ours
            })
            .count();
    }
    assert_eq!(copied, 3);
    assert_eq!(common::counter(&a, "stray-frames"), 0);

    // A queue that left its pool and is refused by the next one (its UMEM has no frames left
    // for the queue's own) stays closed until it is opened alone, as the PMD then does.
    assert!(a.join_pool(&umem, &mut pool).unwrap());
    a.leave_pool(&mut pool);
    let full = Umem::map(POOL).unwrap_or_else(|e| panic!("{e}"));
    let mut full_pool = PacketPool::over(full.pool_memory(POOL).unwrap(), POOL).unwrap();
    let e = a.join_pool(&full, &mut full_pool).unwrap_err().to_string();
    assert!(e.contains("no frames left"), "{e}");
    assert_eq!(a.info().mode, "closed");
    a.open_alone();
    assert!(a.rx_fd().is_some(), "{}", a.info().mode);
}
