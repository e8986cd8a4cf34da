//! The underlay route table, after Open vSwitch's `lib/ovs-router.c`: for the remote VTEP of
//! a tunnel, which bridge to send from, from which source address, and through which next
//! hop (a gateway, or the remote itself when it is on link). Routes are IPv4 or IPv6. Each
//! bridge address gives a *connected* route to its network (OVS lists those it caches from
//! the system as `Cached:`); `route-add` gives *user* routes. The longest prefix wins; at
//! equal length a user route wins over a connected one, and of two connected routes the one
//! of the bridge configured first. Writers serialise on a mutex, rebuild the whole table and
//! publish it with [`ArcSwap`], so a lookup never waits; the
//! [`generation`](RouteTable::generation) moves with every change that may alter a lookup.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;

use super::prefix::{masked, BridgeAddr, Prefix, PrefixError};

/// Where a route comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// The network of a bridge address.
    Connected,
    /// Added with `route-add`.
    User,
}

impl RouteKind {
    /// The label of `show-routes`, Open vSwitch's: `Cached` for connected routes.
    pub const fn label(self) -> &'static str {
        match self {
            RouteKind::Connected => "Cached",
            RouteKind::User => "User",
        }
    }
}

/// A refused route change, naming the field at fault. The table is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("unexpected argument \"{0}\"")]
    Unexpected(String),
    #[error("prefix: \"{value}\": {reason}")]
    BadPrefix { value: String, reason: PrefixError },
    #[error("{field}: \"{value}\" is not an IP address")]
    BadAddress { field: &'static str, value: String },
    #[error("{field}: {addr} is not of the family of {prefix}")]
    FamilyMismatch {
        field: &'static str,
        addr: IpAddr,
        prefix: Prefix,
    },
    #[error("gateway: {gateway} is not on a connected network of {bridge}")]
    GatewayUnreachable { gateway: IpAddr, bridge: String },
    #[error("gateway: {gateway} is an address of {bridge} itself")]
    GatewayIsLocal { gateway: IpAddr, bridge: String },
    #[error(
        "src: {src} is not an address of {bridge} on the network of {prefix} or of its gateway"
    )]
    SourceNotLocal {
        src: IpAddr,
        bridge: String,
        prefix: Prefix,
    },
    #[error("bridge: {bridge} has no address on the network of {prefix}; give a gateway, or src=")]
    NoSource { bridge: String, prefix: Prefix },
    #[error("prefix: a user route to {0} exists; route-del it first")]
    Duplicate(Prefix),
    #[error("prefix: no user route to {0}")]
    NotFound(Prefix),
    #[error(
        "prefix: {prefix} is the connected route of {bridge}; it goes with the bridge's address"
    )]
    Connected { prefix: Prefix, bridge: String },
}

/// A `route-add` request: `PREFIX BRIDGE [GW] [src=IP]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub prefix: Prefix,
    pub bridge: String,
    pub gateway: Option<IpAddr>,
    /// The source address to use; without it, the bridge address on the network of the
    /// prefix, else of the gateway (the longest such network).
    pub src: Option<IpAddr>,
}

impl RouteSpec {
    /// Parses the words after `route-add`: `PREFIX BRIDGE [GW] [src=IP]`, the last two in
    /// either order.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<RouteSpec, RouteError> {
        let mut words = args.iter().map(AsRef::as_ref);
        let prefix = parse_prefix(words.next())?;
        let bridge = words
            .next()
            .filter(|b| !b.is_empty())
            .ok_or(RouteError::Missing("bridge"))?
            .to_string();
        let (mut gateway, mut src) = (None, None);
        for w in words {
            if let Some(v) = w.strip_prefix("src=") {
                if src.is_some() {
                    return Err(RouteError::Unexpected(w.to_string()));
                }
                src = Some(parse_ip("src", v)?);
            } else if gateway.is_none() {
                gateway = Some(parse_ip("gateway", w)?);
            } else {
                return Err(RouteError::Unexpected(w.to_string()));
            }
        }
        Ok(RouteSpec {
            prefix,
            bridge,
            gateway,
            src,
        })
    }
}

/// Parses the words after `route-del`: `PREFIX`.
pub fn parse_route_del<S: AsRef<str>>(args: &[S]) -> Result<Prefix, RouteError> {
    let mut words = args.iter().map(AsRef::as_ref);
    let prefix = parse_prefix(words.next())?;
    match words.next() {
        Some(w) => Err(RouteError::Unexpected(w.to_string())),
        None => Ok(prefix),
    }
}

fn parse_prefix(word: Option<&str>) -> Result<Prefix, RouteError> {
    let w = word.ok_or(RouteError::Missing("prefix"))?;
    w.parse().map_err(|reason| RouteError::BadPrefix {
        value: w.to_string(),
        reason,
    })
}

fn parse_ip(field: &'static str, v: &str) -> Result<IpAddr, RouteError> {
    v.parse().map_err(|_| RouteError::BadAddress {
        field,
        value: v.to_string(),
    })
}

/// A route as `show-routes` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    pub prefix: Prefix,
    pub bridge: String,
    pub gateway: Option<IpAddr>,
    /// The source address: the one asked for with `src=`, or the bridge address chosen.
    /// `None` only on an inactive route that was not given one.
    pub src: Option<IpAddr>,
    pub kind: RouteKind,
    /// False: a user route whose gateway or source the bridge's addresses no longer give
    /// (they changed after `route-add`); lookups skip it until they give it again.
    pub active: bool,
}

impl fmt::Display for RouteInfo {
    /// One line of `show-routes`:
    /// `User: 10.0.0.0/8 dev br-phy GW 172.31.1.254 SRC 172.31.1.1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} dev {}",
            self.kind.label(),
            self.prefix,
            self.bridge
        )?;
        if let Some(gw) = self.gateway {
            write!(f, " GW {gw}")?;
        }
        if let Some(src) = self.src {
            write!(f, " SRC {src}")?;
        }
        if !self.active {
            f.write_str(" inactive")?;
        }
        Ok(())
    }
}

/// Where to send a packet to a remote VTEP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// The bridge to send from.
    pub bridge: Arc<str>,
    /// The source address of the outer header.
    pub src: IpAddr,
    /// The address whose MAC the neighbour table gives: the gateway, or the remote itself.
    pub next_hop: IpAddr,
    pub gateway: Option<IpAddr>,
    /// The route that matched.
    pub prefix: Prefix,
    pub kind: RouteKind,
}

/// A route of a published table.
#[derive(Clone, Debug)]
struct Route {
    prefix: Prefix,
    bridge: Arc<str>,
    gateway: Option<IpAddr>,
    src: Option<IpAddr>,
    kind: RouteKind,
    active: bool,
}

impl Route {
    fn info(&self) -> RouteInfo {
        RouteInfo {
            prefix: self.prefix,
            bridge: self.bridge.to_string(),
            gateway: self.gateway,
            src: self.src,
            kind: self.kind,
            active: self.active,
        }
    }
}

/// Longest-prefix match over one family: a hash map of networks per prefix length present,
/// longest first. A lookup probes at most one map per distinct length.
#[derive(Debug, Default)]
struct Lpm {
    by_len: Vec<(u8, HashMap<IpAddr, usize>)>,
}

impl Lpm {
    /// Maps `prefix` to route `index` unless it is mapped already (the earlier route wins).
    fn insert(&mut self, prefix: Prefix, index: usize) {
        let len = prefix.prefix_len();
        let at = match self.by_len.iter().position(|(l, _)| *l <= len) {
            Some(i) if self.by_len.get(i).is_some_and(|(l, _)| *l == len) => i,
            Some(i) => {
                self.by_len.insert(i, (len, HashMap::new()));
                i
            }
            None => {
                self.by_len.push((len, HashMap::new()));
                self.by_len.len() - 1
            }
        };
        if let Some((_, map)) = self.by_len.get_mut(at) {
            map.entry(prefix.addr()).or_insert(index);
        }
    }

    fn lookup(&self, dst: IpAddr) -> Option<usize> {
        self.by_len
            .iter()
            .find_map(|(len, map)| map.get(&masked(dst, *len)).copied())
    }
}

/// What the writers keep: the inputs the published table is built from.
#[derive(Debug, Default)]
struct Config {
    /// Each bridge's addresses, bridges in the order first configured.
    bridges: Vec<(Arc<str>, Vec<BridgeAddr>)>,
    /// User routes, in the order added.
    user: Vec<(RouteSpec, Arc<str>)>,
}

impl Config {
    fn addresses(&self, bridge: &str) -> &[BridgeAddr] {
        self.bridges
            .iter()
            .find(|(b, _)| &**b == bridge)
            .map_or(&[], |(_, a)| a.as_slice())
    }

    /// The bridge's name as the table shares it.
    fn bridge_name(&self, bridge: &str) -> Arc<str> {
        self.bridges
            .iter()
            .map(|(b, _)| b)
            .chain(self.user.iter().map(|(_, b)| b))
            .find(|b| &***b == bridge)
            .map_or_else(|| Arc::from(bridge), Arc::clone)
    }
}

/// The published table: every route in the order lookups consider them, and an index.
#[derive(Debug, Default)]
struct Snapshot {
    routes: Vec<Route>,
    v4: Lpm,
    v6: Lpm,
    bridges: Vec<(Arc<str>, Vec<BridgeAddr>)>,
}

impl Snapshot {
    fn build(config: &Config) -> Snapshot {
        let mut routes: Vec<Route> = Vec::new();
        for (bridge, addrs) in &config.bridges {
            for a in addrs {
                let prefix = a.subnet();
                // Two addresses on one network: the first is the source, as the kernel's
                // primary address is.
                if routes
                    .iter()
                    .any(|r| r.prefix == prefix && r.bridge == *bridge)
                {
                    continue;
                }
                routes.push(Route {
                    prefix,
                    bridge: Arc::clone(bridge),
                    gateway: None,
                    src: Some(a.ip()),
                    kind: RouteKind::Connected,
                    active: true,
                });
            }
        }
        for (spec, bridge) in &config.user {
            let resolved = resolve(spec, config.addresses(bridge));
            routes.push(Route {
                prefix: spec.prefix,
                bridge: Arc::clone(bridge),
                gateway: spec.gateway,
                src: resolved.as_ref().ok().copied().or(spec.src),
                kind: RouteKind::User,
                active: resolved.is_ok(),
            });
        }
        // Lookup order; the sort is stable, so insertion order breaks the remaining ties.
        routes.sort_by_key(|r| {
            (
                !r.prefix.is_ipv4(),
                Reverse(r.prefix.prefix_len()),
                r.kind != RouteKind::User,
            )
        });
        let (mut v4, mut v6) = (Lpm::default(), Lpm::default());
        for (i, r) in routes.iter().enumerate().filter(|(_, r)| r.active) {
            let lpm = if r.prefix.is_ipv4() { &mut v4 } else { &mut v6 };
            lpm.insert(r.prefix, i);
        }
        Snapshot {
            routes,
            v4,
            v6,
            bridges: config.bridges.clone(),
        }
    }

    fn lookup(&self, dst: IpAddr) -> Option<NextHop> {
        let lpm = if dst.is_ipv4() { &self.v4 } else { &self.v6 };
        let r = self.routes.get(lpm.lookup(dst)?)?;
        Some(NextHop {
            bridge: Arc::clone(&r.bridge),
            src: r.src?,
            next_hop: r.gateway.unwrap_or(dst),
            gateway: r.gateway,
            prefix: r.prefix,
            kind: r.kind,
        })
    }
}

/// The source address of a user route on a bridge with `addrs`, checking its gateway and
/// `src=` as Open vSwitch does (`ovs_router_insert__`, `verify_prefsrc`): the gateway must be
/// on one of the bridge's networks; the source is the bridge address on the network of the
/// prefix, else of the gateway (the longest network, the first address of it).
fn resolve(spec: &RouteSpec, addrs: &[BridgeAddr]) -> Result<IpAddr, RouteError> {
    let prefix = spec.prefix;
    for (field, addr) in [("gateway", spec.gateway), ("src", spec.src)] {
        if let Some(addr) = addr.filter(|a| a.is_ipv4() != prefix.is_ipv4()) {
            return Err(RouteError::FamilyMismatch {
                field,
                addr,
                prefix,
            });
        }
    }
    let on_link = |ip: IpAddr| {
        addrs
            .iter()
            .filter(|a| a.subnet().contains(ip))
            .min_by_key(|a| Reverse(a.prefix_len()))
    };
    if let Some(gateway) = spec.gateway {
        if addrs.iter().any(|a| a.ip() == gateway) {
            return Err(RouteError::GatewayIsLocal {
                gateway,
                bridge: spec.bridge.clone(),
            });
        }
        if on_link(gateway).is_none() {
            return Err(RouteError::GatewayUnreachable {
                gateway,
                bridge: spec.bridge.clone(),
            });
        }
    }
    match spec.src {
        Some(src) => {
            let serves = |a: &BridgeAddr| {
                let net = a.subnet();
                net.contains(prefix.addr()) || spec.gateway.is_some_and(|g| net.contains(g))
            };
            if addrs.iter().any(|a| a.ip() == src && serves(a)) {
                Ok(src)
            } else {
                Err(RouteError::SourceNotLocal {
                    src,
                    bridge: spec.bridge.clone(),
                    prefix,
                })
            }
        }
        None => on_link(prefix.addr())
            .or_else(|| spec.gateway.and_then(on_link))
            .map(BridgeAddr::ip)
            .ok_or_else(|| RouteError::NoSource {
                bridge: spec.bridge.clone(),
                prefix,
            }),
    }
}

/// The route table of the underlay, shared by threads: lookups read the published table
/// without a lock; changes rebuild and republish it. Clones share one table.
#[derive(Debug, Clone, Default)]
pub struct RouteTable(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    config: Mutex<Config>,
    current: ArcSwap<Snapshot>,
    generation: AtomicU64,
}

impl RouteTable {
    pub fn new() -> RouteTable {
        RouteTable::default()
    }

    /// A number that moves whenever a lookup may answer differently: a route added or
    /// deleted, a bridge's addresses changed. Read it before looking up; when it has moved,
    /// look up again.
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// Where to send to `dst`: the longest active prefix that holds it, or `None`.
    pub fn lookup(&self, dst: IpAddr) -> Option<NextHop> {
        self.0.current.load().lookup(dst)
    }

    /// Sets the addresses of `bridge` (in order: the first on a network is its source),
    /// replacing those it had; an empty list forgets the bridge. Connected routes follow, and
    /// user routes through the bridge are checked again: those whose gateway or source the
    /// new addresses do not give become inactive, those they give again active.
    pub fn set_bridge_addresses(&self, bridge: &str, addrs: &[BridgeAddr]) {
        let mut config = self.config();
        let at = config.bridges.iter().position(|(b, _)| &**b == bridge);
        match (at, addrs.is_empty()) {
            (Some(i), true) => {
                config.bridges.remove(i);
            }
            (Some(i), false) => {
                if let Some((_, old)) = config.bridges.get_mut(i) {
                    if old.as_slice() == addrs {
                        return;
                    }
                    *old = addrs.to_vec();
                }
            }
            (None, true) => return,
            (None, false) => {
                let name = config.bridge_name(bridge);
                config.bridges.push((name, addrs.to_vec()));
            }
        }
        self.publish(&config);
    }

    /// The addresses configured on `bridge`.
    pub fn bridge_addresses(&self, bridge: &str) -> Vec<BridgeAddr> {
        self.0
            .current
            .load()
            .bridges
            .iter()
            .find(|(b, _)| &**b == bridge)
            .map_or_else(Vec::new, |(_, a)| a.clone())
    }

    /// The IP addresses of `bridge`, for [`NeighTable::snoop`](super::NeighTable::snoop).
    pub fn local_ips(&self, bridge: &str) -> Vec<IpAddr> {
        self.bridge_addresses(bridge)
            .iter()
            .map(BridgeAddr::ip)
            .collect()
    }

    /// Adds a user route (`route-add`); returns it as `show-routes` lists it. Refused, with
    /// the table unchanged, when a user route to the same prefix exists, when the gateway is
    /// not on a network of the bridge, or when the bridge has no address to send from.
    pub fn add(&self, spec: RouteSpec) -> Result<RouteInfo, RouteError> {
        let mut config = self.config();
        if config.user.iter().any(|(s, _)| s.prefix == spec.prefix) {
            return Err(RouteError::Duplicate(spec.prefix));
        }
        let src = resolve(&spec, config.addresses(&spec.bridge))?;
        let info = RouteInfo {
            prefix: spec.prefix,
            bridge: spec.bridge.clone(),
            gateway: spec.gateway,
            src: Some(src),
            kind: RouteKind::User,
            active: true,
        };
        let name = config.bridge_name(&spec.bridge);
        config.user.push((spec, name));
        self.publish(&config);
        Ok(info)
    }

    /// Deletes the user route to `prefix` (`route-del`); returns it. Connected routes go
    /// with their bridge address, not here.
    pub fn del(&self, prefix: Prefix) -> Result<RouteInfo, RouteError> {
        let mut config = self.config();
        let Some(i) = config.user.iter().position(|(s, _)| s.prefix == prefix) else {
            let connected = self
                .0
                .current
                .load()
                .routes
                .iter()
                .find(|r| r.kind == RouteKind::Connected && r.prefix == prefix)
                .map(|r| r.bridge.to_string());
            return Err(match connected {
                Some(bridge) => RouteError::Connected { prefix, bridge },
                None => RouteError::NotFound(prefix),
            });
        };
        let info = self
            .0
            .current
            .load()
            .routes
            .iter()
            .find(|r| r.kind == RouteKind::User && r.prefix == prefix)
            .map(Route::info);
        let (spec, _) = config.user.remove(i);
        self.publish(&config);
        Ok(info.unwrap_or(RouteInfo {
            prefix,
            bridge: spec.bridge,
            gateway: spec.gateway,
            src: spec.src,
            kind: RouteKind::User,
            active: false,
        }))
    }

    /// Every route, IPv4 first, each family in the order lookups consider them: longest
    /// prefix first, a user route before a connected one of the same prefix.
    pub fn routes(&self) -> Vec<RouteInfo> {
        self.0
            .current
            .load()
            .routes
            .iter()
            .map(Route::info)
            .collect()
    }

    /// The text of `show-routes`, Open vSwitch's `ovs/route/show`: a `Route Table:` line,
    /// then one line per route as [`RouteInfo`] displays it.
    pub fn show_text(&self) -> String {
        let mut out = String::from("Route Table:\n");
        for r in &self.0.current.load().routes {
            out.push_str(&r.info().to_string());
            out.push('\n');
        }
        out
    }

    fn publish(&self, config: &Config) {
        self.0.current.store(Arc::new(Snapshot::build(config)));
        // After the store: whoever reads the new generation finds the new table.
        self.0.generation.fetch_add(1, Ordering::AcqRel);
    }

    // A poisoned mutex only means a writer panicked; the config it guards is replaced whole
    // or not at all by each change, so keep using it.
    fn config(&self) -> MutexGuard<'_, Config> {
        self.0.config.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pfx(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn addrs(list: &[&str]) -> Vec<BridgeAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn spec(words: &str) -> RouteSpec {
        RouteSpec::parse(&words.split_whitespace().collect::<Vec<_>>()).unwrap()
    }

    /// br-phy on 172.31.1.1/24, as OVS-DPDK's documentation sets up its VTEP.
    fn table() -> RouteTable {
        let t = RouteTable::new();
        t.set_bridge_addresses("br-phy", &addrs(&["172.31.1.1/24"]));
        t
    }

    fn hop(t: &RouteTable, dst: &str) -> Option<(String, IpAddr, IpAddr)> {
        t.lookup(ip(dst))
            .map(|h| (h.bridge.to_string(), h.src, h.next_hop))
    }

    #[test]
    fn connected_routes_come_from_bridge_addresses() {
        let t = RouteTable::new();
        assert_eq!(t.lookup(ip("172.31.1.2")), None);
        let g = t.generation();
        t.set_bridge_addresses(
            "br-phy",
            &addrs(&["172.31.1.1/24", "172.31.1.9/24", "2001:db8:1::1/64"]),
        );
        assert_ne!(t.generation(), g);
        let h = t.lookup(ip("172.31.1.2")).unwrap();
        assert_eq!(
            h,
            NextHop {
                bridge: Arc::from("br-phy"),
                src: ip("172.31.1.1"),
                next_hop: ip("172.31.1.2"),
                gateway: None,
                prefix: pfx("172.31.1.0/24"),
                kind: RouteKind::Connected,
            }
        );
        assert_eq!(
            hop(&t, "2001:db8:1::2"),
            Some(("br-phy".into(), ip("2001:db8:1::1"), ip("2001:db8:1::2")))
        );
        assert_eq!(t.lookup(ip("172.31.2.1")), None);
        assert_eq!(
            t.show_text(),
            "Route Table:\n\
             Cached: 172.31.1.0/24 dev br-phy SRC 172.31.1.1\n\
             Cached: 2001:db8:1::/64 dev br-phy SRC 2001:db8:1::1\n"
        );
        assert_eq!(t.local_ips("br-phy")[1], ip("172.31.1.9"));
        // The same addresses again change nothing; none forgets the bridge.
        let g = t.generation();
        t.set_bridge_addresses(
            "br-phy",
            &addrs(&["172.31.1.1/24", "172.31.1.9/24", "2001:db8:1::1/64"]),
        );
        assert_eq!(t.generation(), g);
        t.set_bridge_addresses("br-phy", &[]);
        assert_eq!(t.lookup(ip("172.31.1.2")), None);
        assert!(t.routes().is_empty());
        assert!(t.local_ips("br-phy").is_empty());
    }

    #[test]
    fn gateway_routes_resolve_to_the_gateway() {
        let t = table();
        let info = t.add(spec("10.0.0.0/8 br-phy 172.31.1.254")).unwrap();
        assert_eq!(
            info.to_string(),
            "User: 10.0.0.0/8 dev br-phy GW 172.31.1.254 SRC 172.31.1.1"
        );
        let h = t.lookup(ip("10.1.2.3")).unwrap();
        assert_eq!(
            (h.next_hop, h.gateway, h.src, h.kind),
            (
                ip("172.31.1.254"),
                Some(ip("172.31.1.254")),
                ip("172.31.1.1"),
                RouteKind::User
            )
        );
        // A default route, and a host route on link without a gateway.
        t.add(spec("0.0.0.0/0 br-phy 172.31.1.253")).unwrap();
        t.add(spec("172.31.1.7/32 br-phy")).unwrap();
        assert_eq!(hop(&t, "8.8.8.8").unwrap().2, ip("172.31.1.253"));
        assert_eq!(hop(&t, "172.31.1.7").unwrap().2, ip("172.31.1.7"));
        assert_eq!(
            t.show_text(),
            "Route Table:\n\
             User: 172.31.1.7/32 dev br-phy SRC 172.31.1.1\n\
             Cached: 172.31.1.0/24 dev br-phy SRC 172.31.1.1\n\
             User: 10.0.0.0/8 dev br-phy GW 172.31.1.254 SRC 172.31.1.1\n\
             User: 0.0.0.0/0 dev br-phy GW 172.31.1.253 SRC 172.31.1.1\n"
        );
    }

    #[test]
    fn longest_prefix_wins_whatever_the_order_added() {
        let t = table();
        t.set_bridge_addresses("br-b", &addrs(&["192.168.0.1/24"]));
        t.add(spec("10.1.2.0/24 br-b 192.168.0.2")).unwrap();
        t.add(spec("0.0.0.0/0 br-phy 172.31.1.254")).unwrap();
        t.add(spec("10.1.0.0/16 br-phy 172.31.1.253")).unwrap();
        t.add(spec("10.1.2.3/32 br-phy 172.31.1.252")).unwrap();
        t.add(spec("10.0.0.0/8 br-b 192.168.0.3")).unwrap();
        let via = |dst: &str| hop(&t, dst).map(|(b, _, nh)| (b, nh.to_string()));
        assert_eq!(
            via("10.1.2.3"),
            Some(("br-phy".into(), "172.31.1.252".into()))
        );
        assert_eq!(via("10.1.2.4"), Some(("br-b".into(), "192.168.0.2".into())));
        assert_eq!(
            via("10.1.9.9"),
            Some(("br-phy".into(), "172.31.1.253".into()))
        );
        assert_eq!(via("10.9.9.9"), Some(("br-b".into(), "192.168.0.3".into())));
        assert_eq!(
            via("11.0.0.1"),
            Some(("br-phy".into(), "172.31.1.254".into()))
        );
        assert_eq!(
            via("192.168.0.77"),
            Some(("br-b".into(), "192.168.0.77".into()))
        );
        // IPv4 routes never answer for IPv6, not even the default one.
        assert_eq!(t.lookup(ip("2001:db8::1")), None);
        let lens: Vec<u8> = t.routes().iter().map(|r| r.prefix.prefix_len()).collect();
        assert_eq!(lens, [32, 24, 24, 24, 16, 8, 0]);
    }

    /// Equal prefixes: a user route wins over a connected one (in OVS, by its higher
    /// priority); of two bridges on one network, the first configured wins.
    #[test]
    fn ties_between_equal_prefixes() {
        let t = table();
        t.set_bridge_addresses("br-b", &addrs(&["172.31.1.100/24", "192.168.0.1/24"]));
        assert_eq!(hop(&t, "172.31.1.5").unwrap().0, "br-phy");
        t.add(spec("172.31.1.0/24 br-b 192.168.0.254")).unwrap();
        assert_eq!(
            hop(&t, "172.31.1.5"),
            Some(("br-b".into(), ip("172.31.1.100"), ip("192.168.0.254")))
        );
        let shown: Vec<String> = t.routes().iter().map(|r| r.to_string()).collect();
        assert_eq!(
            shown[..3],
            [
                "User: 172.31.1.0/24 dev br-b GW 192.168.0.254 SRC 172.31.1.100",
                "Cached: 172.31.1.0/24 dev br-phy SRC 172.31.1.1",
                "Cached: 172.31.1.0/24 dev br-b SRC 172.31.1.100",
            ]
        );
        t.del(pfx("172.31.1.0/24")).unwrap();
        assert_eq!(hop(&t, "172.31.1.5").unwrap().0, "br-phy");
    }

    #[test]
    fn src_is_checked_or_chosen_like_ovs() {
        let t = RouteTable::new();
        t.set_bridge_addresses(
            "br0",
            &addrs(&[
                "192.168.9.2/24",
                "192.168.9.3/24",
                "10.0.0.1/8",
                "10.1.1.1/16",
            ]),
        );
        // OVS's tests/ovs-router.at "route/add with src - ipv4".
        t.add(spec("192.168.9.11/32 br0 src=192.168.9.3")).unwrap();
        t.add(spec("192.168.10.12/32 br0 192.168.9.1 src=192.168.9.3"))
            .unwrap();
        assert_eq!(
            t.add(spec("192.168.10.16/32 br0 192.168.9.1 src=192.168.9.200")),
            Err(RouteError::SourceNotLocal {
                src: ip("192.168.9.200"),
                bridge: "br0".into(),
                prefix: pfx("192.168.10.16/32"),
            })
        );
        assert_eq!(
            t.add(spec("192.168.10.17/32 br0 192.168.11.1 src=192.168.9.3")),
            Err(RouteError::GatewayUnreachable {
                gateway: ip("192.168.11.1"),
                bridge: "br0".into()
            })
        );
        assert_eq!(
            t.add(spec("192.168.10.18/32 br0 src=192.168.9.3")),
            Err(RouteError::SourceNotLocal {
                src: ip("192.168.9.3"),
                bridge: "br0".into(),
                prefix: pfx("192.168.10.18/32"),
            })
        );
        assert_eq!(hop(&t, "192.168.9.11").unwrap().1, ip("192.168.9.3"));
        assert_eq!(hop(&t, "192.168.10.12").unwrap().1, ip("192.168.9.3"));
        // Without src=, the address of the longest network holding the destination.
        t.add(spec("10.1.2.0/24 br0")).unwrap();
        t.add(spec("10.2.0.0/16 br0")).unwrap();
        assert_eq!(hop(&t, "10.1.2.3").unwrap().1, ip("10.1.1.1"));
        assert_eq!(hop(&t, "10.2.0.1").unwrap().1, ip("10.0.0.1"));
        // Else of the network holding the gateway.
        t.add(spec("172.16.0.0/12 br0 192.168.9.1")).unwrap();
        assert_eq!(hop(&t, "172.16.0.1").unwrap().1, ip("192.168.9.2"));
    }

    #[test]
    fn refusals_name_the_field_and_leave_the_table_unchanged() {
        let t = table();
        t.set_bridge_addresses("br-b", &addrs(&["192.168.0.1/24"]));
        t.add(spec("10.0.0.0/8 br-phy 172.31.1.254")).unwrap();
        let before = (t.routes(), t.generation());
        let refused = [
            (
                "10.0.0.0/8 br-b 192.168.0.254",
                RouteError::Duplicate(pfx("10.0.0.0/8")),
            ),
            (
                "10.0.0.1/8 br-phy 172.31.1.253",
                RouteError::Duplicate(pfx("10.0.0.0/8")),
            ),
            (
                "11.0.0.0/8 br-phy 192.168.0.254",
                RouteError::GatewayUnreachable {
                    gateway: ip("192.168.0.254"),
                    bridge: "br-phy".into(),
                },
            ),
            (
                "11.0.0.0/8 br-phy 172.31.1.1",
                RouteError::GatewayIsLocal {
                    gateway: ip("172.31.1.1"),
                    bridge: "br-phy".into(),
                },
            ),
            (
                "11.0.0.0/8 br-phy",
                RouteError::NoSource {
                    bridge: "br-phy".into(),
                    prefix: pfx("11.0.0.0/8"),
                },
            ),
            (
                "11.0.0.0/8 br-none 172.31.1.254",
                RouteError::GatewayUnreachable {
                    gateway: ip("172.31.1.254"),
                    bridge: "br-none".into(),
                },
            ),
            (
                "11.0.0.0/8 br-phy 2001:db8::1",
                RouteError::FamilyMismatch {
                    field: "gateway",
                    addr: ip("2001:db8::1"),
                    prefix: pfx("11.0.0.0/8"),
                },
            ),
            (
                "2001:db8::/32 br-phy src=172.31.1.1",
                RouteError::FamilyMismatch {
                    field: "src",
                    addr: ip("172.31.1.1"),
                    prefix: pfx("2001:db8::/32"),
                },
            ),
        ];
        for (words, err) in refused {
            assert_eq!(t.add(spec(words)), Err(err), "{words}");
        }
        assert_eq!(
            t.del(pfx("172.31.1.0/24")),
            Err(RouteError::Connected {
                prefix: pfx("172.31.1.0/24"),
                bridge: "br-phy".into()
            })
        );
        assert_eq!(
            t.del(pfx("10.0.0.0/16")),
            Err(RouteError::NotFound(pfx("10.0.0.0/16")))
        );
        assert_eq!((t.routes(), t.generation()), before);
    }

    #[test]
    fn parse_refusals_name_the_field() {
        let parse = |s: &str| RouteSpec::parse(&s.split_whitespace().collect::<Vec<_>>());
        assert_eq!(parse(""), Err(RouteError::Missing("prefix")));
        assert_eq!(parse("10.0.0.0/8"), Err(RouteError::Missing("bridge")));
        assert_eq!(
            parse("10.0.0.0/33 br0"),
            Err(RouteError::BadPrefix {
                value: "10.0.0.0/33".into(),
                reason: PrefixError::Length(32)
            })
        );
        assert_eq!(
            parse("10.0.0.0/8 br0 gw"),
            Err(RouteError::BadAddress {
                field: "gateway",
                value: "gw".into()
            })
        );
        assert_eq!(
            parse("10.0.0.0/8 br0 src=1.2.3"),
            Err(RouteError::BadAddress {
                field: "src",
                value: "1.2.3".into()
            })
        );
        assert_eq!(
            parse("10.0.0.0/8 br0 1.1.1.1 1.1.1.2"),
            Err(RouteError::Unexpected("1.1.1.2".into()))
        );
        assert_eq!(
            parse("10.0.0.0/8 br0 src=1.1.1.1 src=1.1.1.2"),
            Err(RouteError::Unexpected("src=1.1.1.2".into()))
        );
        let s = parse("10.0.0.7/8 br0 src=1.1.1.1 1.1.1.254").unwrap();
        assert_eq!(
            s,
            RouteSpec {
                prefix: pfx("10.0.0.0/8"),
                bridge: "br0".into(),
                gateway: Some(ip("1.1.1.254")),
                src: Some(ip("1.1.1.1")),
            }
        );
        assert_eq!(parse_route_del(&["10.0.0.0/8"]), Ok(pfx("10.0.0.0/8")));
        assert_eq!(
            parse_route_del(&["10.0.0.0/8", "br0"]),
            Err(RouteError::Unexpected("br0".into()))
        );
        assert_eq!(
            parse_route_del::<&str>(&[]),
            Err(RouteError::Missing("prefix"))
        );
        assert_eq!(
            RouteError::GatewayUnreachable {
                gateway: ip("192.168.0.254"),
                bridge: "br-phy".into()
            }
            .to_string(),
            "gateway: 192.168.0.254 is not on a connected network of br-phy"
        );
    }

    #[test]
    fn delete_restores_the_shorter_match() {
        let t = table();
        t.add(spec("0.0.0.0/0 br-phy 172.31.1.254")).unwrap();
        t.add(spec("10.0.0.0/8 br-phy 172.31.1.253")).unwrap();
        assert_eq!(hop(&t, "10.0.0.1").unwrap().2, ip("172.31.1.253"));
        let g = t.generation();
        let gone = t.del(pfx("10.0.0.0/8")).unwrap();
        assert_eq!(gone.gateway, Some(ip("172.31.1.253")));
        assert_ne!(t.generation(), g);
        assert_eq!(hop(&t, "10.0.0.1").unwrap().2, ip("172.31.1.254"));
        t.del(pfx("0.0.0.0/0")).unwrap();
        assert_eq!(t.lookup(ip("10.0.0.1")), None);
        assert_eq!(t.routes().len(), 1);
    }

    #[test]
    fn user_routes_follow_address_changes() {
        let t = table();
        t.add(spec("10.0.0.0/8 br-phy 172.31.1.254")).unwrap();
        // The address moves to another network: the gateway is off link, the route inactive.
        t.set_bridge_addresses("br-phy", &addrs(&["172.31.2.1/24"]));
        assert_eq!(t.lookup(ip("10.0.0.1")), None);
        assert_eq!(
            t.show_text(),
            "Route Table:\n\
             Cached: 172.31.2.0/24 dev br-phy SRC 172.31.2.1\n\
             User: 10.0.0.0/8 dev br-phy GW 172.31.1.254 inactive\n"
        );
        // Back again: the route is used again, with the new source.
        t.set_bridge_addresses("br-phy", &addrs(&["172.31.2.1/24", "172.31.1.5/24"]));
        assert_eq!(
            hop(&t, "10.0.0.1"),
            Some(("br-phy".into(), ip("172.31.1.5"), ip("172.31.1.254")))
        );
        // An inactive user route still shadows nothing: the connected one answers.
        t.add(spec("172.31.2.0/24 br-phy 172.31.1.254")).unwrap();
        t.set_bridge_addresses("br-phy", &addrs(&["172.31.2.1/24"]));
        assert_eq!(hop(&t, "172.31.2.9").unwrap().2, ip("172.31.2.9"));
        // A route added before its bridge had addresses is refused, not kept inactive.
        assert!(t.add(spec("11.0.0.0/8 br-new 10.9.9.9")).is_err());
    }

    #[test]
    fn readers_see_whole_tables_while_a_writer_changes_them() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RouteTable>();
        let t = table();
        t.add(spec("0.0.0.0/0 br-phy 172.31.1.254")).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (t, stop) = (t.clone(), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    loop {
                        // Always some route: the default one never goes.
                        let h = t.lookup(ip("10.1.2.3")).unwrap();
                        assert!(h.next_hop == ip("172.31.1.254") || h.next_hop == ip("172.31.1.9"));
                        n += 1;
                        if stop.load(Ordering::Relaxed) {
                            return n;
                        }
                    }
                })
            })
            .collect();
        for _ in 0..200 {
            t.add(spec("10.0.0.0/8 br-phy 172.31.1.9")).unwrap();
            t.del(pfx("10.0.0.0/8")).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        assert_eq!(t.generation(), 2 + 400);
    }
}
