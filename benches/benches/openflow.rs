//! Benches of the OpenFlow control and slow paths: installing 100k rules as one bundle (parse
//! and apply together, and each half alone), one flow-mod add on top of 100k rules, and the
//! translation of one key through a 3-table resubmit pipeline (the work of one upcall).

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::{bridge_with, install_rule, install_rules, udp4_frame, IP_SRC};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use openflow::{parse_flow, parse_flow_mod, parse_flows_file, FlowMod, FlowModCommand};
use pipeline::{parse_packet, PacketMeta};

const RULES: u32 = 100_000;

fn report(name: &str, items: u64, elapsed: Duration, unit: &str) {
    if items == 0 {
        return; // filtered out on the command line
    }
    let ns = elapsed.as_nanos() as f64 / items as f64;
    println!("{name}: {:.3} M{unit}/s, {ns:.1} ns/{unit}", 1e3 / ns);
}

/// 100k distinct rules over 4 masks into an empty bridge, as one bundle. The bridge (and its
/// 100k rules) is built and dropped outside the timed region.
fn install(c: &mut Criterion) {
    let mut g = c.benchmark_group("openflow-install");
    // Each iteration takes about half a second: flat sampling, 10 samples.
    g.measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .throughput(Throughput::Elements(u64::from(RULES)));
    let text = install_rules(RULES);
    let Ok(specs) = parse_flows_file(&text) else {
        eprintln!("install rules do not parse");
        return;
    };
    let mods: Vec<FlowMod> = specs
        .into_iter()
        .map(|spec| FlowMod {
            command: FlowModCommand::Add,
            spec,
        })
        .collect();

    let (mut n, mut t) = (0u64, Duration::ZERO);
    g.bench_function("parse+apply/100k-rules", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let Ok(bridge) = bridge_with("") else {
                    continue;
                };
                let t0 = Instant::now();
                let r = bridge.add_flows_text(black_box(&text), 0);
                total += t0.elapsed();
                if r.map(|r| r.added) != Ok(RULES as usize) {
                    eprintln!("install failed");
                }
                drop(bridge);
            }
            n += iters * u64::from(RULES);
            t += total;
            total
        })
    });
    report("openflow-install/parse+apply/100k-rules", n, t, "rules");

    let (mut n, mut t) = (0u64, Duration::ZERO);
    g.bench_function("parse-only/100k-rules", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t0 = Instant::now();
                let specs = parse_flows_file(black_box(&text));
                total += t0.elapsed();
                drop(black_box(specs));
            }
            n += iters * u64::from(RULES);
            t += total;
            total
        })
    });
    report("openflow-install/parse-only/100k-rules", n, t, "rules");

    let (mut n, mut t) = (0u64, Duration::ZERO);
    g.bench_function("apply-only/100k-rules", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let Ok(bridge) = bridge_with("") else {
                    continue;
                };
                let t0 = Instant::now();
                let r = bridge.apply(black_box(&mods), 0);
                total += t0.elapsed();
                drop(black_box(r));
                drop(bridge);
            }
            n += iters * u64::from(RULES);
            t += total;
            total
        })
    });
    report("openflow-install/apply-only/100k-rules", n, t, "rules");
    g.finish();
}

/// One add-flow (parse + apply + publish) on a bridge holding 100k rules; the rule is
/// deleted again (untimed) so every iteration starts from the same 100k.
fn flow_mod(c: &mut Criterion) {
    let mut g = c.benchmark_group("openflow-flow-mod");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
        .throughput(Throughput::Elements(1));
    let Ok(bridge) = bridge_with(&install_rules(RULES)) else {
        eprintln!("install rules refused");
        return;
    };
    let text = install_rule(RULES + 7);
    let Ok(del) = parse_flow_mod(&format!("delete_strict {}", strip_actions(&text))) else {
        eprintln!("delete_strict does not parse");
        return;
    };
    let (mut n, mut t) = (0u64, Duration::ZERO);
    g.bench_function("add/on-100k-rules", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t0 = Instant::now();
                let added = parse_flow(black_box(&text)).map(|spec| {
                    bridge.apply(
                        &[FlowMod {
                            command: FlowModCommand::Add,
                            spec,
                        }],
                        0,
                    )
                });
                total += t0.elapsed();
                drop(black_box(added));
                let _ = bridge.apply(std::slice::from_ref(&del), 0);
            }
            n += iters;
            t += total;
            total
        })
    });
    report("openflow-flow-mod/add/on-100k-rules", n, t, "flow-mods");
    println!("  rules now {}", bridge.rules().load().len());
    g.finish();
}

/// The match part of an add-flow rule (what delete_strict takes).
fn strip_actions(rule: &str) -> &str {
    rule.split_once(",actions=").map_or(rule, |(m, _)| m)
}

/// One key through table 0 (in_port → resubmit), table 1 (a /24 among 1000 prefixes: set
/// the destination MAC, resubmit) and table 2 (udp tp_dst among 1000 ports: dec_ttl, output).
fn translate(c: &mut Criterion) {
    let mut g = c.benchmark_group("openflow-translate");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
        .throughput(Throughput::Elements(1));
    let mut rules = String::from("table=0,priority=100,in_port=1,actions=resubmit(,1)\n");
    for i in 0..1000u32 {
        rules.push_str(&format!(
            "table=1,priority=100,ip,nw_dst=10.{}.{}.0/24,actions=mod_dl_dst:02:00:00:00:00:{:02x},resubmit(,2)\n",
            i >> 8,
            i & 0xff,
            i & 0xff
        ));
        rules.push_str(&format!(
            "table=2,priority=100,udp,tp_dst={},actions=dec_ttl,output:2\n",
            i + 1
        ));
    }
    rules.push_str("table=2,priority=0,actions=drop\n");
    let Ok(bridge) = bridge_with(&rules) else {
        eprintln!("resubmit rules refused");
        return;
    };
    let mut meta = PacketMeta::default();
    meta.key.in_port = 1;
    let _ = parse_packet(&udp4_frame(IP_SRC, 0x0a00_0102, 1234, 53), &mut meta);
    let key = meta.key;
    let r = bridge.translate(&key, 0);
    println!("  translation: {:?}", r.actions);
    let (mut n, mut t) = (0u64, Duration::ZERO);
    g.bench_function("3-table-resubmit", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                black_box(bridge.translate(black_box(&key), 0));
            }
            let e = t0.elapsed();
            n += iters;
            t += e;
            e
        })
    });
    report("openflow-translate/3-table-resubmit", n, t, "translations");
    g.finish();
}

criterion_group!(benches, install, flow_mod, translate);
criterion_main!(benches);
