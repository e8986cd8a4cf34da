//! Help for the control verbs, built from [`VERBS`]: `vecswitch help [VERB]` and
//! `vecswitch VERB --help` print it without a daemon; the `help` verb sends the table.

use std::fmt::Write as _;

use crate::commands::VERBS;

/// What every verb takes.
const COMMON: &str = "\
Every verb also takes:
  --json         print the answer as JSON (the same data, for programs)
  --socket PATH  the daemon's control socket (default /run/vecswitch/vecswitch.sock, or
                 $VECSWITCH_SOCKET)";

/// More about the verbs whose arguments need it, by verb.
const DETAILS: &[(&str, &str)] = &[
    (
        "add-br",
        "  local=true|false  whether the bridge gets its LOCAL tap (OpenFlow port LOCAL); default true",
    ),
    (
        "add-port",
        "  IF            the port's name: the interface, socket or file it opens goes in its options
  type=TYPE     afxdp (default), afpacket, tap, generator, pcap, vhost-user, vxlan, geneve
                (dpdk in a build with the dpdk feature)
  KEY=VALUE     ofport=N, vlan=access:N|trunk:A,B|native-tagged:N[:A,B]|native-untagged:N[:A,B],
                mtu_request=N (68..9702; vhost-user 9198; afxdp 3822 without XDP multi-buffer),
                then the type's options (the README's \"Port types\" table):
                afxdp: queues=N xdp-mode=auto|native|generic ring-size=N frames=N
                multi-buffer=true|false
                afpacket: block-size=N blocks=N frame-size=N block-timeout-ms=N
                generator: profile=size=64,flows=100,proto=udp rate=PPS count=N
                pcap: rx=FILE tx=FILE loop=true|false
                vhost-user: socket=PATH mode=server|client queues=N
                vxlan, geneve: remote_ip local_ip key in_key out_key dst_port ttl tos
                df_default csum (OVS's tunnel options)
  A bad option is refused naming it, and nothing is added.",
    ),
    (
        "set-port",
        "  IF                port name
  mtu_request=N     the port's MTU, 68..9702 (vhost-user at most 9198; afxdp at most 3822
                    without XDP multi-buffer: multi-buffer=false, or a kernel that
                    refuses XDP_USE_SG):
                    frames longer than N+18 are dropped both ways (rx-mtu-exceeded,
                    tx-mtu-exceeded); a kernel interface (afxdp, afpacket, tap) is given it;
                    packet buffers grow when N needs more (the PMDs restart)
  mtu_request=[]    clear it: 1500, or a kernel interface's own MTU
  A value the port or its kernel interface refuses changes nothing.",
    ),
    (
        "set-controller",
        "  TARGET...  every target the bridge has from now on (the others close):
             tcp:IP[:PORT]    connect to a controller (port 6653 by default); reconnect
                              after 1, 2, 4, 8 s while it cannot be reached
             ptcp:PORT[:IP]   listen on a TCP port (every address without IP; 0: any port,
                              which show prints)
             punix:PATH       listen on a unix socket (mode 0600), e.g. for ovs-ofctl
  inactivity_probe=MS  a connection silent this long gets an echo request, and is closed
             when silent as long again (default 5000; 0: never; else at least 1000)
  bundle_idle_timeout=S  an OpenFlow bundle without a message this long is discarded, its
             connection told OFPBFC_TIMEOUT (default 10, as Open vSwitch; 1..=86400)
  protocols=OpenFlow10,OpenFlow13  the OpenFlow versions connections offer (default both;
             the highest both sides offer is used; a peer with none of them gets HELLO_FAILED
             and is closed)
  A listener that cannot be bound, or a target or option that does not parse (the error
  names the part), changes nothing. show lists each connection's state, peer, version and
  role.",
    ),
    (
        "set-fail-mode",
        "  standalone  (default) as Open vSwitch: when the bridge has tcp: controllers and none has
              been connected for three inactivity-probe intervals (15 s by default), its rules
              are flushed and NORMAL handles every packet until one connects; ptcp: and
              punix: listeners never cause this. del-controller gives it the default
              rule (priority 0, NORMAL) again
  secure      the rules stay as they are without a controller",
    ),
    (
        "set-datapath-id",
        "  ID        16 hex digits (as ovs-vsctl other-config:datapath-id) or 0x and up to 16
  default   the bridge's LOCAL MAC in the low 48 bits, as Open vSwitch derives it (a bridge
            without LOCAL: a locally administered MAC made from its name)",
    ),
    (
        "add-flow",
        "  FLOW  one rule in ovs-ofctl syntax, e.g. 'priority=100,ip,nw_dst=10.0.0.0/24,actions=output:2'
        A port goes by number, reserved name (LOCAL, NORMAL, ...) or the bridge's name for it
        wherever a port number goes: in_port=veth0, output:veth0, a bare veth0 action,
        resubmit(veth0,1), enqueue:veth0:Q, set_field:veth0->in_port; a name that is not a
        letter followed by letters and digits is quoted: in_port='\"x.y\"'. An unknown name
        is refused naming the field.",
    ),
    (
        "add-flows",
        "  FILE      rules in ovs-ofctl add-flows syntax, one per line ('#' comments); the client
            reads the file and sends its contents
  --bundle  all rules or none, as ovs-ofctl --bundle (a bad line refuses the whole file)",
    ),
    (
        "mod-flows",
        "  FLOW      a filter (as del-flows') and the new actions; cookie=V/MASK selects by
            cookie and keeps the cookies; without a mask (or with a zero one) the rules get
            cookie V (0 if not given), and FLOW is added when it selects no rule, as OVS does
  --strict  change only the rule with exactly this match and priority",
    ),
    (
        "del-flows",
        "  FILTER    the rules to delete (all without it): those at least as specific as its
            match, in table=N (all tables without it), with cookie=V/MASK (-1: all bits),
            with an action that outputs to out_port=PORT, with a group:N action for
            out_group=N (ANY: no filter); priority only with --strict
  --strict  delete only the rule with exactly this match and priority (default 32768)",
    ),
    (
        "dump-flows",
        "  FILTER           as del-flows': any match (the rules at least as specific), table=N,
                   cookie=V/MASK (-1: all bits; a cookie without a mask is refused),
                   out_port=PORT (rules with an action that outputs there; ports by name
                   too), out_group=N (rules with a group:N action; ANY: no filter)
  --no-stats       no cookie (unless set), duration, table (unless not 0) or counters
  --names          ports by name (quoted where OVS quotes); the default on a terminal
  --no-names       ports by number, and names not accepted in FILTER
  --sort[=FIELD]   ascending by FIELD (a match field; priority without one); again for a
                   second key; rules without the field come last
  --rsort[=FIELD]  descending likewise; ties go by priority, highest first
  --json           each rule an object: table, priority, cookie, idle_timeout and
                   hard_timeout when set, duration, packets, bytes, idle_age, hard_age
                   (not with --no-stats), match (field: text as printed, shorthand: true),
                   actions (each as printed), flow (the line)
  The counters line reads as ovs-ofctl's: cookie, duration, table, n_packets, n_bytes,
  idle_timeout, hard_timeout, idle_age (seconds since the last packet, or since the rule
  was made), hard_age (seconds since the last add or modify; shown when it differs from
  the duration). As in OVS, a modify restarts the hard timeout but not the duration or the
  idle timeout.",
    ),
    (
        "add-group",
        "  GROUP  group_id=N,type=all|select|indirect|ff,bucket=...[,bucket=...] (ovs-ofctl syntax);
         a bucket: [weight:N,][watch_port:P,][watch_group:G,]actions=ACTIONS (or just the
         actions). A bucket runs as an action set: push/pop VLAN and dec_ttl, then the field
         writes, then one output, group or resubmit. select picks by a hash of the flow's
         L2-L4 addresses (both directions alike), among live buckets by weight; ff takes the
         first live bucket (watch_port up, or watch_group with a live bucket). A rule may use
         the group as group:N once it exists. Refused naming the field: an existing id, a
         loop, weights outside select, an ff bucket without a watch, watches on
         all/indirect, watch_port:LOCAL, indirect without exactly one bucket. A bucket's
         group:N or watch_group of a group that does not exist is accepted, as OVS does
         (that bucket ends there, or is not live).",
    ),
    (
        "packet-out",
        "  in_port=PORT  the port the frame is as received on: a number or name, LOCAL, or
                CONTROLLER (the default)
  packet=HEX    the frame, at least an Ethernet header
  actions=...   a rule's actions (the rest of the text), plus TABLE (or output:TABLE): through
                the tables from table 0. Runs on a PMD: outputs leave by the ports' transmit
                queues, NORMAL learns, CONTROLLER sends a packet-in; the answer comes once it
                ran. ovs-ofctl's older form IN_PORT ACTIONS HEX... sends each frame.",
    ),
    (
        "add-groups",
        "  FILE  one group mod a line ('#' comments), optionally led by add, modify, add_or_mod
        or delete (none: add); the client reads the file and sends its contents. All or
        none: a bad line (named) changes nothing.",
    ),
    (
        "mod-group",
        "  GROUP  as add-group's; the group must exist. Its rules stay, its creation time is
         kept, its counters restart (as OVS), and its megaflows are revalidated.",
    ),
    (
        "del-groups",
        "  group_id=N  the group to delete (every group without it); the rules whose actions use
              it are deleted too, as OVS does. A group that does not exist is not an error.",
    ),
    (
        "dump-groups",
        "  N       only group N (or group_id=N)
  --json  each group an object: group_id, type, buckets (weight, watch_port, watch_group,
          actions)",
    ),
    (
        "dump-group-stats",
        "  N       only group N (or group_id=N)
  The line reads as ovs-ofctl's: duration, ref_count (rules using the group),
  packet_count, byte_count, then each bucket's counts (every bucket of all and indirect
  groups counts each packet; select and ff only the bucket taken).
  --json  each group an object with the same counts",
    ),
    (
        "dump-megaflows",
        "  BRIDGE      only this bridge's megaflows
  --names     ports by name (in_port(veth0), actions:veth1; LOCAL by the bridge's name),
              as ovs-appctl dpctl/dump-flows --names
  --no-names  ports by OpenFlow number (the default)
  --json      each megaflow an object: match (key: value, or an object of its name=value
              parts), packets, bytes, used (seconds; null: never), flags, actions (each
              as printed), flow (the line)",
    ),
    (
        "set",
        "  batch-size=N          frames per receive burst, 1..=256
  busy-poll=true|false  idle PMDs never sleep
  pmd-sleep-max-us=N    longest idle sleep of a PMD, 1..=1000000 microseconds
  flow-limit=N          most megaflows per PMD, at least 1
  vlan-limit=N          VLAN headers the parser reads (0: no limit), as OVS's vlan-limit
  pmd-cores=A,B,...     the cores PMD threads run on (threads are moved and queues placed again)",
    ),
    (
        "set-netflow",
        "  targets=IP:PORT[,IP:PORT...]  collectors (IPv6 as [ADDR]:PORT); each gets every datagram
  active_timeout=S              seconds between records of a long flow; 0 and -1: 600 (as OVS)
  engine_type=N, engine_id=N    0..255, in every header (default 0)
  add_id_to_interface=true      engine_id's low 7 bits above the port's low 9 in the interfaces
  Again on a bridge with NetFlow: new settings, records kept. A bad value is refused naming it.",
    ),
    (
        "dump-conntrack",
        "  zone=N  only the connections of conntrack zone N",
    ),
    (
        "flush-conntrack",
        "  zone=N  only the connections of conntrack zone N",
    ),
];

/// The verbs an entry's usage documents: the first word of each comma-separated form
/// (`ct-set-maxconns N, ct-get-maxconns`).
fn verbs_of(usage: &str) -> impl Iterator<Item = &str> {
    usage
        .split(", ")
        .filter_map(|form| form.split_whitespace().next())
}

/// Every verb [`VERBS`] documents, in its order.
pub fn verb_names() -> Vec<&'static str> {
    VERBS
        .iter()
        .flat_map(|(usage, _)| verbs_of(usage))
        .collect()
}

/// The help of `verb`: its usage, what it does, its arguments and the common options; `None`
/// for a verb that does not exist.
pub fn verb_help(verb: &str) -> Option<String> {
    let (usage, what) = VERBS
        .iter()
        .find(|(usage, _)| verbs_of(usage).any(|v| v == verb))?;
    let mut text = String::new();
    let forms: Vec<&str> = usage.split(", ").collect();
    for form in &forms {
        let _ = writeln!(text, "usage: vecswitch {form} [--json] [--socket PATH]");
    }
    let _ = writeln!(text, "\n{what}.");
    if let Some((_, details)) = DETAILS.iter().find(|(v, _)| *v == verb) {
        let _ = writeln!(text, "\n{details}");
    }
    let _ = writeln!(text, "\n{COMMON}");
    Some(text)
}

/// Every verb with its one-line description.
pub fn overview() -> String {
    let mut text = String::from(
        "Control verbs (sent to the running daemon; `vecswitch help VERB` for one):\n",
    );
    for (usage, what) in VERBS {
        let _ = writeln!(text, "  {usage}\n      {what}");
    }
    let _ = write!(text, "\n{COMMON}\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_has_help_with_its_usage_and_the_common_options() {
        let names = verb_names();
        assert!(names.len() >= 40, "{names:?}");
        for v in &names {
            let h = verb_help(v).unwrap();
            assert!(h.starts_with("usage: vecswitch "), "{v}: {h}");
            assert!(h.contains(&format!("vecswitch {v}")), "{v}: {h}");
            assert!(h.contains("--socket PATH"), "{v}");
        }
        // Forms that share an entry each get a usage line.
        let h = verb_help("ct-get-maxconns").unwrap();
        assert!(h.contains("usage: vecswitch ct-set-maxconns N "), "{h}");
        assert!(h.contains("usage: vecswitch ct-get-maxconns "), "{h}");
        assert!(verb_help("nosuch").is_none());
        assert!(verb_help("--json").is_none());
    }

    #[test]
    fn details_name_verbs_that_exist() {
        let names = verb_names();
        for (v, _) in DETAILS {
            assert!(names.contains(v), "{v}");
        }
        assert!(verb_help("set").unwrap().contains("batch-size=N"));
        assert!(verb_help("add-flows").unwrap().contains("--bundle"));
        let dump = verb_help("dump-flows").unwrap();
        for opt in [
            "--no-stats",
            "--names",
            "--no-names",
            "--sort[=FIELD]",
            "--rsort[=FIELD]",
            "--json",
            "out_port=",
            "out_group=",
            "cookie=V/MASK",
            "table=N",
            "idle_age",
        ] {
            assert!(dump.contains(opt), "dump-flows help lacks {opt}");
        }
        assert!(verb_help("del-flows").unwrap().contains("--strict"));
        let megaflows = verb_help("dump-megaflows").unwrap();
        for opt in ["--json", "--names", "--no-names"] {
            assert!(megaflows.contains(opt), "dump-megaflows help lacks {opt}");
        }
        assert!(overview().contains("dump-conntrack [zone=N]"));
    }

    #[test]
    fn add_group_help_says_what_is_refused_and_what_is_accepted() {
        use openflow::{parse_group_mod, GroupModCommand};
        let h = verb_help("add-group").unwrap();
        let t = openflow::FlowTables::new();
        // Accepted, as the help says (and as OVS 3.1 does): group:N and watch_group of a
        // group that does not exist.
        for g in [
            "group_id=1,type=all,bucket=actions=group:9",
            "group_id=2,type=ff,bucket=watch_group:9,output:1",
        ] {
            let gm = parse_group_mod(g, GroupModCommand::Add).unwrap();
            t.apply_groups(&[gm], 0)
                .unwrap_or_else(|e| panic!("{g}: {e}"));
        }
        assert!(h.contains("group:N or watch_group of a group that does not exist is accepted"));
        let refused = h
            .split("Refused")
            .nth(1)
            .unwrap()
            .split("A bucket's")
            .next()
            .unwrap();
        assert!(!refused.contains("does not exist"), "{h}");
        // Refused, as it says: a fast-failover bucket without a watch, watch_port:LOCAL.
        for g in [
            "group_id=3,type=ff,bucket=output:1",
            "group_id=3,type=ff,bucket=watch_port:LOCAL,output:1",
        ] {
            let refused = parse_group_mod(g, GroupModCommand::Add)
                .map_err(|e| e.to_string())
                .and_then(|gm| t.apply_groups(&[gm], 0).map_err(|e| e.to_string()));
            assert!(refused.is_err(), "{g}");
        }
        assert!(h.contains("an ff bucket without a watch") && h.contains("watch_port:LOCAL"));
    }
}
