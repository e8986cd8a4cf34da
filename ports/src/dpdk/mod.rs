//! DPDK ports (`type=dpdk dpdk-devargs=net_af_packet0,iface=veth1`), behind the cargo feature
//! `dpdk`: the EAL is initialised once per process ([`eal_init`], default arguments from
//! [`default_eal_args`]), each port hot-plugs its device with `rte_dev_probe`, configures one
//! receive and one transmit queue per `queues` with a mempool of its own, and starts it in
//! promiscuous mode; each queue is one [`DpdkQueue`]. The `PortIo` interface hands frames over
//! as byte slices that the switch copies into its packet pool, so an mbuf's data is copied once
//! on receive and a frame once into a fresh mbuf on transmit (counted as `rx-copies` and
//! `tx-copies`); the mbufs never outlive a burst. A thread that drives a queue becomes a DPDK
//! lcore on its first burst (`rte_thread_register`), so that mbufs come from its per-lcore
//! mempool cache rather than the shared ring. Dropping the last queue of a port stops,
//! closes and (when this port probed it) removes the device, then frees its mempool. This is
//! the only module of vecswitch that calls DPDK, through the raw `dpdk-sys` bindings.
#![allow(unsafe_code)]

pub mod options;

use std::ffi::{c_char, c_int, CStr, CString};
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use dpdk_sys as sys;

use self::options::DpdkOptions;
use crate::{PortError, PortIo, PortLoss, PortLosses, QueueInfo};

/// Most mbufs one `rte_eth_rx_burst` / `rte_eth_tx_burst` call handles (an array on the stack).
const BURST: usize = 64;

/// A DPDK call that failed, naming the step and DPDK's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    /// An EAL argument that cannot be passed to C.
    #[error("dpdk-eal-args: {arg:?}: {reason}")]
    BadArg {
        /// The argument.
        arg: String,
        /// Why.
        reason: String,
    },
    /// `rte_eal_init` refused, or the EAL was already initialised with other arguments.
    #[error("dpdk-eal-args: EAL init with {args:?}: {reason}")]
    Eal {
        /// The arguments given.
        args: Vec<String>,
        /// Why.
        reason: String,
    },
    /// A device step failed.
    #[error("dpdk-devargs: {devargs:?}: {step}: {reason}")]
    Device {
        /// The port's devargs.
        devargs: String,
        /// The step, e.g. `rte_dev_probe`.
        step: String,
        /// DPDK's reason.
        reason: String,
    },
}

/// The arguments the EAL was initialised with, and how that went; set once per process.
static EAL: OnceLock<(Vec<String>, Result<(), DpdkError>)> = OnceLock::new();

/// Ethdev names of the devices a port of this process holds: two ports on one device would
/// configure it twice.
static IN_USE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Numbers mempool names (they are process-wide in DPDK).
static POOL_SEQ: AtomicU32 = AtomicU32::new(0);

/// The EAL arguments used when no port or configuration gave any: no hugepages (`-m 512` MiB
/// of ordinary memory), no PCI scan (devices come by `dpdk-devargs`), no telemetry socket, the
/// main lcore on the first CPU this thread may run on, and no shared files (`--no-shconf`, so
/// no primary-process lock that a second switch or test process would collide with, and no
/// multi-process socket) under a runtime directory named after the process
/// (`--file-prefix=vecswitch-PID`), which stays empty and is removed after initialisation.
/// `--in-memory` would say the same in one word, but DPDK 22.11 refuses it with `--no-huge`.
pub fn default_eal_args() -> Vec<String> {
    let cpu = first_allowed_cpu().unwrap_or(0);
    vec![
        "--no-huge".to_string(),
        "-m".to_string(),
        "512".to_string(),
        "--no-pci".to_string(),
        "--no-telemetry".to_string(),
        "-l".to_string(),
        cpu.to_string(),
        format!("--file-prefix=vecswitch-{}", std::process::id()),
        "--no-shconf".to_string(),
    ]
}

/// Initialises the EAL with `args` (without the program name) unless it already is. DPDK allows
/// one initialisation per process, so the first call decides: a later call with the same
/// arguments returns the first result, one with other arguments is refused. The calling
/// thread's CPU affinity is restored afterwards (the EAL pins it to the main lcore, and threads
/// spawned later would inherit that).
pub fn eal_init(args: &[String]) -> Result<(), DpdkError> {
    let (used, result) = EAL.get_or_init(|| (args.to_vec(), init_eal(args)));
    if used.as_slice() != args {
        return Err(DpdkError::Eal {
            args: args.to_vec(),
            reason: format!("the EAL is already initialised with {used:?}"),
        });
    }
    result.clone()
}

/// The EAL, initialised with [`default_eal_args`] unless something initialised it before.
fn ensure_eal() -> Result<(), DpdkError> {
    match EAL.get() {
        Some((_, result)) => result.clone(),
        None => eal_init(&default_eal_args()),
    }
}

fn first_allowed_cpu() -> Option<usize> {
    // SAFETY: cpu_set_t is plain bits, zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the size and pointer describe `set`, which outlives the call.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return None;
    }
    // SAFETY: CPU_ISSET reads `set` within CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).find(|&c| unsafe { libc::CPU_ISSET(c, &set) })
}

fn init_eal(args: &[String]) -> Result<(), DpdkError> {
    let mut owned = Vec::with_capacity(args.len() + 1);
    for arg in std::iter::once("vecswitch").chain(args.iter().map(String::as_str)) {
        owned.push(CString::new(arg).map_err(|_| DpdkError::BadArg {
            arg: arg.to_string(),
            reason: "contains a NUL byte".to_string(),
        })?);
    }
    // The EAL may keep pointers into argv (and permutes it): both live for the process, which
    // initialises once.
    let owned: &'static [CString] = Vec::leak(owned);
    let argv: &'static mut [*mut c_char] =
        Vec::leak(owned.iter().map(|c| c.as_ptr().cast_mut()).collect());
    let argc = c_int::try_from(argv.len()).map_err(|_| DpdkError::BadArg {
        arg: format!("{} arguments", argv.len()),
        reason: "too many".to_string(),
    })?;

    // SAFETY: cpu_set_t is plain bits, zero is a valid empty set.
    let mut affinity: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let set_size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: the size and pointer describe `affinity`, which outlives the call.
    let saved = unsafe { libc::sched_getaffinity(0, set_size, &mut affinity) } == 0;
    // SAFETY: argc counts the pointers of `argv`, each a NUL-terminated string that lives for
    // the process; this runs once per process (inside the OnceLock).
    let r = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
    if saved {
        // SAFETY: as above; restoring the mask the thread had is always allowed.
        unsafe { libc::sched_setaffinity(0, set_size, &affinity) };
    }
    if r < 0 {
        return Err(DpdkError::Eal {
            args: args.to_vec(),
            reason: strerror(rte_errno()),
        });
    }
    if args
        .iter()
        .any(|a| a == "--no-shconf" || a == "--in-memory")
    {
        // SAFETY: the EAL is initialised; it returns its static NUL-terminated path.
        let dir = unsafe { sys::rte_eal_get_runtime_dir() };
        if !dir.is_null() {
            // SAFETY: non-null and NUL-terminated (above); copied out at once.
            let dir = unsafe { CStr::from_ptr(dir) }
                .to_string_lossy()
                .into_owned();
            // Without shared files the EAL never writes there; `remove_dir` keeps a
            // non-empty directory, so nothing is lost if it did.
            let _ = std::fs::remove_dir(dir);
        }
    }
    Ok(())
}

fn rte_errno() -> c_int {
    // SAFETY: reads the calling thread's rte_errno; no preconditions.
    unsafe { sys::vs_errno() }
}

/// DPDK's text for an errno value (positive or negative).
fn strerror(code: c_int) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
    let text = unsafe { sys::rte_strerror(code.saturating_abs()) };
    if text.is_null() {
        return format!("error {code}");
    }
    // SAFETY: non-null and NUL-terminated (above); copied out at once.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// One started DPDK device with its mempool; stopped, closed and removed when the last queue
/// drops.
struct Device {
    port_id: u16,
    /// The ethdev name (devargs up to the first comma).
    name: String,
    devargs: String,
    /// The PMD's name, e.g. `net_af_packet`.
    driver: String,
    queues: u16,
    rxd: u16,
    txd: u16,
    pool: *mut sys::rte_mempool,
    /// This port hot-plugged the device (so it removes it).
    probed: bool,
    configured: bool,
    started: bool,
}

// SAFETY: the mempool pointer is only used for mempool operations, which DPDK makes safe from
// any thread (the default ring ops are multi-producer/multi-consumer; each lcore has its own
// cache, and every thread doing bursts is its own lcore or uses none, see `Lcore`); each queue
// of the device is driven by one `DpdkQueue`, which `PortIo` gives to one thread at a time.
unsafe impl Send for Device {}
// SAFETY: as above; shared access only reads the port id and names.
unsafe impl Sync for Device {}

impl Device {
    fn err(&self, step: &str, code: c_int) -> DpdkError {
        DpdkError::Device {
            devargs: self.devargs.clone(),
            step: step.to_string(),
            reason: strerror(code),
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let mut device: *mut sys::rte_device = ptr::null_mut();
        // SAFETY: `port_id` is the valid port this Device found; `info` is written by the call.
        unsafe {
            let mut info = sys::rte_eth_dev_info::default();
            if sys::rte_eth_dev_info_get(self.port_id, &mut info) == 0 {
                device = info.device;
            }
        }
        // SAFETY: the port is ours, and no queue uses it any more (this is the last Arc), so
        // no burst runs on it; stop and close are valid in any state after configure.
        unsafe {
            if self.started {
                sys::rte_eth_dev_stop(self.port_id);
            }
            if self.configured || self.probed {
                sys::rte_eth_dev_close(self.port_id);
            }
        }
        if self.probed && !device.is_null() {
            // SAFETY: `device` is the rte_device of the port this Device probed, read above
            // while the port was valid; closing the ethdev does not free the rte_device.
            unsafe { sys::rte_dev_remove(device) };
        }
        if !self.pool.is_null() {
            // SAFETY: the pool was created for this device only; the device is closed, so no
            // queue holds mbufs of it any more.
            unsafe { sys::rte_mempool_free(self.pool) };
        }
        if let Ok(mut used) = IN_USE.lock() {
            used.retain(|n| n != &self.name);
        }
    }
}

/// `LCORE_ID_ANY`: what `rte_lcore_id` says on a thread that is no lcore.
const LCORE_ID_ANY: u32 = u32::MAX;

/// The calling thread's standing as a DPDK lcore. PMD threads are not EAL threads, and only an
/// lcore has a slot in a mempool's per-lcore cache: without one, every mbuf allocation and
/// free goes to the pool's shared ring. So a thread registers (`rte_thread_register`) on its
/// first burst, and the registration is released when the thread ends, which gives the
/// lcore id back for the next PMD thread.
struct Lcore {
    /// Whether bursts on this thread use a per-lcore cache.
    is_lcore: bool,
    /// Whether this thread registered itself (and so unregisters at its end).
    registered: bool,
}

impl Lcore {
    fn new() -> Lcore {
        // SAFETY: reads the EAL's thread-local lcore id; the EAL is initialised before any
        // queue exists, and only queues call this.
        if unsafe { sys::vs_lcore_id() } != LCORE_ID_ANY {
            // An EAL thread (the one that initialised the EAL is the main lcore).
            return Lcore {
                is_lcore: true,
                registered: false,
            };
        }
        // SAFETY: as above; fails (-1) only when every lcore id is taken.
        let ok = unsafe { sys::rte_thread_register() } == 0;
        Lcore {
            is_lcore: ok,
            registered: ok,
        }
    }
}

impl Drop for Lcore {
    fn drop(&mut self) {
        if self.registered {
            // SAFETY: this thread registered itself and is ending; the EAL is never cleaned
            // up while the process runs.
            unsafe { sys::rte_thread_unregister() };
        }
    }
}

thread_local! {
    static LCORE: Lcore = Lcore::new();
}

/// Whether the calling thread is a DPDK lcore, registering it on first use.
fn on_lcore() -> bool {
    LCORE.try_with(|l| l.is_lcore).unwrap_or(false)
}

/// One receive/transmit queue pair of a DPDK port, as a PMD thread drives it.
pub struct DpdkQueue {
    dev: Arc<Device>,
    queue: u16,
    /// Bursts on a thread that could not become an lcore (no mempool cache).
    bursts_without_lcore: u64,
    rx_copies: u64,
    rx_multiseg: u64,
    tx_copies: u64,
    tx_too_long: u64,
    tx_no_mbufs: u64,
    tx_ring_full: u64,
}

impl DpdkOptions {
    /// Opens the port's queues, as `PortSpec::open` does for every kind.
    pub(crate) fn open(&self, name: &str) -> Result<Vec<Box<dyn PortIo>>, PortError> {
        let mut queues: Vec<Box<dyn PortIo>> = Vec::new();
        for q in open(name, self)? {
            queues.push(Box::new(q));
        }
        Ok(queues)
    }
}

/// Opens the DPDK port `port` (the switch's name, for errors): hot-plugs `o.devargs`,
/// configures `o.queues` queue pairs and starts the device. One [`DpdkQueue`] per queue.
pub fn open(port: &str, o: &DpdkOptions) -> Result<Vec<DpdkQueue>, PortError> {
    let invalid = |step: &str, e: DpdkError| PortError::Invalid {
        port: port.to_string(),
        step: step.to_string(),
        reason: e.to_string(),
    };
    ensure_eal().map_err(|e| invalid("initialise the DPDK EAL", e))?;
    let dev = open_device(o).map_err(|e| invalid("open the DPDK device", e))?;
    let dev = Arc::new(dev);
    Ok((0..o.queues)
        .map(|queue| DpdkQueue {
            dev: Arc::clone(&dev),
            queue,
            bursts_without_lcore: 0,
            rx_copies: 0,
            rx_multiseg: 0,
            tx_copies: 0,
            tx_too_long: 0,
            tx_no_mbufs: 0,
            tx_ring_full: 0,
        })
        .collect())
}

fn open_device(o: &DpdkOptions) -> Result<Device, DpdkError> {
    let device_err = |step: &str, reason: String| DpdkError::Device {
        devargs: o.devargs.clone(),
        step: step.to_string(),
        reason,
    };
    let name = o.devargs.split(',').next().unwrap_or_default().to_string();
    let c_devargs = CString::new(o.devargs.as_str())
        .map_err(|_| device_err("parse", "contains a NUL byte".to_string()))?;
    let c_name = CString::new(name.as_str())
        .map_err(|_| device_err("parse", "contains a NUL byte".to_string()))?;
    {
        let mut used = IN_USE
            .lock()
            .map_err(|_| device_err("claim", "a port panicked while opening".to_string()))?;
        if used.contains(&name) {
            return Err(device_err(
                "claim",
                format!("device {name} is already used by another port"),
            ));
        }
        used.push(name.clone());
    }
    let release = |name: &str| {
        if let Ok(mut used) = IN_USE.lock() {
            used.retain(|n| n != name);
        }
    };

    // SAFETY: the EAL is initialised (the caller checked); devargs is NUL-terminated.
    let r = unsafe { sys::rte_dev_probe(c_devargs.as_ptr()) };
    // -EEXIST: probed before (by the EAL arguments, or the PCI scan): use it, leave it plugged.
    let probed = r == 0;
    if r < 0 && r != -libc::EEXIST {
        release(&name);
        return Err(device_err("rte_dev_probe", strerror(r)));
    }
    let mut port_id = 0u16;
    // SAFETY: name is NUL-terminated; port_id is written by the call.
    let r = unsafe { sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut port_id) };
    if r != 0 {
        release(&name);
        return Err(device_err(
            "rte_eth_dev_get_port_by_name",
            format!(
                "no ethdev named {name:?} (the devargs' first word): {}",
                strerror(r)
            ),
        ));
    }
    // From here on, dropping `dev` undoes what was done.
    let mut dev = Device {
        port_id,
        name,
        devargs: o.devargs.clone(),
        driver: String::new(),
        queues: o.queues,
        rxd: o.rxd,
        txd: o.txd,
        pool: ptr::null_mut(),
        probed,
        configured: false,
        started: false,
    };

    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: port_id is valid (found above); `info` is written by the call.
    let r = unsafe { sys::rte_eth_dev_info_get(port_id, &mut info) };
    if r != 0 {
        return Err(dev.err("rte_eth_dev_info_get", r));
    }
    if !info.driver_name.is_null() {
        // SAFETY: the driver's static NUL-terminated name.
        dev.driver = unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned();
    }
    if o.queues > info.max_rx_queues.min(info.max_tx_queues) {
        return Err(device_err(
            "queues",
            format!(
                "queues={}: {} has {} receive and {} transmit queues (net_af_packet takes \
                 qpairs=N in its devargs)",
                o.queues, dev.driver, info.max_rx_queues, info.max_tx_queues
            ),
        ));
    }

    let mut conf = sys::rte_eth_conf::default();
    if o.queues > 1 && info.flow_type_rss_offloads != 0 {
        // Spread flows over the queues with every hash the device offers.
        conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads;
    }
    // SAFETY: valid port, `conf` outlives the call (DPDK copies it).
    let r = unsafe { sys::rte_eth_dev_configure(port_id, o.queues, o.queues, &conf) };
    if r != 0 {
        return Err(dev.err("rte_eth_dev_configure", r));
    }
    dev.configured = true;
    let (mut rxd, mut txd) = (o.rxd, o.txd);
    // SAFETY: valid configured port; both counts are written by the call.
    let r = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &mut rxd, &mut txd) };
    if r != 0 {
        return Err(dev.err("rte_eth_dev_adjust_nb_rx_tx_desc", r));
    }
    (dev.rxd, dev.txd) = (rxd, txd);

    // SAFETY: valid port.
    let socket = unsafe { sys::rte_eth_dev_socket_id(port_id) };
    let socket = if socket < 0 {
        sys::SOCKET_ID_ANY
    } else {
        socket
    };
    // Every descriptor may hold an mbuf, plus bursts in flight; 2^k - 1 suits the ring.
    let want = u32::from(o.queues) * (u32::from(rxd) + u32::from(txd) + 2 * BURST as u32) + 512;
    let mbufs = (want + 1).next_power_of_two() - 1;
    let pool_name = format!("vsw{}", POOL_SEQ.fetch_add(1, Ordering::Relaxed));
    let c_pool = CString::new(pool_name.as_str())
        .map_err(|_| device_err("mempool", "bad name".to_string()))?;
    // SAFETY: the name is NUL-terminated; sizes are in range (cache 256 <= mbufs / 1.5, the
    // data room fits u16).
    dev.pool = unsafe {
        sys::rte_pktmbuf_pool_create(
            c_pool.as_ptr(),
            mbufs,
            256,
            0,
            sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
            socket,
        )
    };
    if dev.pool.is_null() {
        return Err(dev.err(
            &format!("rte_pktmbuf_pool_create({mbufs} mbufs)"),
            rte_errno(),
        ));
    }
    let socket_id = socket as std::ffi::c_uint;
    for q in 0..o.queues {
        // SAFETY: valid configured port, queue < configured count, default queue config
        // (NULL), a live mempool that outlives the port (freed after close).
        let r = unsafe {
            sys::rte_eth_rx_queue_setup(port_id, q, rxd, socket_id, ptr::null(), dev.pool)
        };
        if r != 0 {
            return Err(dev.err(&format!("rte_eth_rx_queue_setup({q})"), r));
        }
        // SAFETY: as above, for transmit.
        let r = unsafe { sys::rte_eth_tx_queue_setup(port_id, q, txd, socket_id, ptr::null()) };
        if r != 0 {
            return Err(dev.err(&format!("rte_eth_tx_queue_setup({q})"), r));
        }
    }
    // SAFETY: valid port with every queue set up.
    let r = unsafe { sys::rte_eth_dev_start(port_id) };
    if r != 0 {
        return Err(dev.err("rte_eth_dev_start", r));
    }
    dev.started = true;
    // SAFETY: valid started port.
    let r = unsafe { sys::rte_eth_promiscuous_enable(port_id) };
    // A switch port must see every destination; a device that cannot do it is unusable.
    if r != 0 && r != -libc::ENOTSUP {
        return Err(dev.err("rte_eth_promiscuous_enable", r));
    }
    Ok(dev)
}

impl PortIo for DpdkQueue {
    fn rx_burst(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        if !on_lcore() {
            self.bursts_without_lcore += 1;
        }
        let mut mbufs = [ptr::null_mut::<sys::rte_mbuf>(); BURST];
        let want = max.min(BURST) as u16;
        // SAFETY: the port is started and this queue is driven by this thread only; the call
        // writes at most `want` pointers into `mbufs`.
        let n =
            unsafe { sys::vs_eth_rx_burst(self.dev.port_id, self.queue, mbufs.as_mut_ptr(), want) };
        let n = usize::from(n).min(BURST);
        let mut handed = 0;
        for &m in &mbufs[..n] {
            // SAFETY: `m` is an mbuf the driver just handed over, owned here until the free
            // below; a single-segment mbuf's data is `data_len` bytes at its data pointer.
            unsafe {
                if sys::vs_pktmbuf_nb_segs(m) != 1 {
                    // Scatter is not configured; a chained frame would need a linear copy.
                    self.rx_multiseg += 1;
                    continue;
                }
                let data = sys::vs_pktmbuf_data(m).cast::<u8>();
                let len = usize::from(sys::vs_pktmbuf_data_len(m));
                f(std::slice::from_raw_parts(data, len));
            }
            handed += 1;
        }
        if n > 0 {
            // SAFETY: the `n` mbufs are ours and no slice into them is alive any more.
            unsafe { sys::vs_pktmbuf_free_bulk(mbufs.as_mut_ptr(), n as u32) };
        }
        self.rx_copies += handed as u64;
        handed
    }

    fn tx_burst(&mut self, frames: &[&[u8]]) -> usize {
        if !on_lcore() {
            self.bursts_without_lcore += 1;
        }
        let mut taken = 0;
        while taken < frames.len() {
            let chunk = &frames[taken..frames.len().min(taken + BURST)];
            let mut mbufs = [ptr::null_mut::<sys::rte_mbuf>(); BURST];
            // The index in `frames` of each filled mbuf, to know what the ring took.
            let mut index = [0usize; BURST];
            // SAFETY: the pool is live; the call fills `chunk.len()` <= BURST pointers or none.
            let r = unsafe {
                sys::vs_pktmbuf_alloc_bulk(self.dev.pool, mbufs.as_mut_ptr(), chunk.len() as u32)
            };
            if r != 0 {
                // Taken and dropped: a full ring is not why they did not go.
                self.tx_no_mbufs += (frames.len() - taken) as u64;
                return frames.len();
            }
            let mut filled = 0;
            for (i, frame) in chunk.iter().enumerate() {
                let m = mbufs[filled];
                // SAFETY: `m` is a fresh mbuf of ours; append returns `len` writable bytes or
                // null when the tailroom is short.
                let dst = match u16::try_from(frame.len()) {
                    Ok(len) => unsafe { sys::vs_pktmbuf_append(m, len) },
                    Err(_) => ptr::null_mut(),
                };
                if dst.is_null() {
                    // Taken and dropped; the mbuf is reused for the next frame.
                    self.tx_too_long += 1;
                    continue;
                }
                // SAFETY: `dst` has frame.len() writable bytes (above), disjoint from `frame`.
                unsafe { ptr::copy_nonoverlapping(frame.as_ptr(), dst.cast::<u8>(), frame.len()) };
                index[filled] = taken + i;
                filled += 1;
            }
            self.tx_copies += filled as u64;
            let spare = chunk.len() - filled;
            if spare > 0 {
                // SAFETY: the mbufs past `filled` were allocated above and hold nothing.
                unsafe { sys::vs_pktmbuf_free_bulk(mbufs[filled..].as_mut_ptr(), spare as u32) };
            }
            // SAFETY: started port, this queue driven by this thread only; `filled` valid
            // mbufs. The driver takes ownership of those it accepts.
            let sent = unsafe {
                sys::vs_eth_tx_burst(
                    self.dev.port_id,
                    self.queue,
                    mbufs.as_mut_ptr(),
                    filled as u16,
                )
            };
            let sent = usize::from(sent).min(filled);
            if sent < filled {
                // The ring is full: free the rest, and report only up to the last frame sent
                // (the caller counts the rest as transmit drops).
                let unsent = filled - sent;
                // SAFETY: the driver did not take these; they are still ours.
                unsafe { sys::vs_pktmbuf_free_bulk(mbufs[sent..].as_mut_ptr(), unsent as u32) };
                self.tx_ring_full += unsent as u64;
                return index[sent];
            }
            taken += chunk.len();
        }
        taken
    }

    fn rx_fd(&self) -> Option<RawFd> {
        None
    }

    fn info(&self) -> QueueInfo {
        QueueInfo {
            kind: "dpdk",
            mode: format!(
                "{} port {} queue {}/{} rxd {} txd {}",
                self.dev.driver,
                self.dev.port_id,
                self.queue,
                self.dev.queues,
                self.dev.rxd,
                self.dev.txd
            ),
        }
    }

    fn losses(&self) -> PortLosses {
        let mut l = PortLosses::default();
        l.add(PortLoss::RxTooLong, self.rx_multiseg);
        l.add(PortLoss::TxTooLong, self.tx_too_long);
        l.add(PortLoss::TxNoBuffers, self.tx_no_mbufs);
        if self.queue == 0 {
            // The device's own counters are per port: counted once, on queue 0.
            let mut stats = sys::rte_eth_stats::default();
            // SAFETY: valid port (held by the Arc); `stats` is written by the call.
            if unsafe { sys::rte_eth_stats_get(self.dev.port_id, &mut stats) } == 0 {
                l.add(PortLoss::RxMissed, stats.imissed);
                l.add(PortLoss::RxNoBuffers, stats.rx_nombuf);
                l.add(PortLoss::RxErrors, stats.ierrors);
                l.add(PortLoss::TxErrors, stats.oerrors);
            }
        }
        l
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut out = vec![
            ("rx-copies", self.rx_copies),
            ("rx-multiseg-dropped", self.rx_multiseg),
            ("tx-copies", self.tx_copies),
            ("tx-too-long", self.tx_too_long),
            ("tx-no-mbufs", self.tx_no_mbufs),
            ("tx-ring-full", self.tx_ring_full),
            ("bursts-without-lcore", self.bursts_without_lcore),
        ];
        if self.queue == 0 {
            // The device's own counters are per port: shown once, on queue 0.
            let mut stats = sys::rte_eth_stats::default();
            // SAFETY: valid port (held by the Arc); `stats` is written by the call.
            if unsafe { sys::rte_eth_stats_get(self.dev.port_id, &mut stats) } == 0 {
                out.extend([
                    ("dev-rx-packets", stats.ipackets),
                    ("dev-tx-packets", stats.opackets),
                    ("dev-rx-missed", stats.imissed),
                    ("dev-rx-errors", stats.ierrors),
                    ("dev-tx-errors", stats.oerrors),
                    ("dev-rx-no-mbufs", stats.rx_nombuf),
                ]);
            } else {
                out.push(("dev-stats-unavailable", 1));
            }
        }
        out
    }
}
