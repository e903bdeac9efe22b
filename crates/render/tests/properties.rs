//! Properties over generated `platform:` sections, checked on the rendered
//! text (parsed back), not on the model it came from:
//!
//! - a bundle `check` accepts never renders a write in shadow or assist;
//! - rendering is deterministic (byte-identical twice, bundle recompiled);
//! - a higher phase never grants less than a lower one unless the bundle
//!   carries the `phase-narrows` warning.
//!
//! "Grants" is judged by an evaluator written here from Kubernetes' and
//! Vault's documented matching rules, over a fixed set of concrete requests,
//! independently of the engine's own coverage check. The generators are
//! checked to reach every outcome: refused, accepted, accepted with warning.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::cell::Cell;

use clearance_engine::{Bundle, BundleSource, Phase, SourceFile};
use clearance_render::{Rendered, render_agent};
use proptest::{
    prelude::*,
    sample::subsequence,
    test_runner::{Config, TestRunner},
};
use serde_json::Value;

const BASE: &str = r#"policy_owner: p@example.com
agents:
  bot: { owner: o@example.com, phase: shadow, credential_scope: k8s:sa/agents/bot, domains: [inside] }
tools:
  kubectl:
    get: { impact: read }
"#;

const POLICY: &str = "permit (principal, action, resource);\n";

fn compile(platform: &str) -> Result<Bundle, clearance_engine::BundleErrors> {
    Bundle::compile(&BundleSource {
        config: SourceFile {
            path: "clearance.yaml".into(),
            text: format!("{BASE}{platform}"),
        },
        policies: vec![SourceFile {
            path: "policies/p.cedar".into(),
            text: POLICY.into(),
        }],
        revision: Some("r".into()),
    })
}

// ---- generators: YAML text of a platform: section -------------------------

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

fn quoted(items: Vec<&str>) -> Vec<String> {
    items.into_iter().map(|i| format!("\"{i}\"")).collect()
}

/// Mostly what `check` accepts at `phase`, sometimes what it refuses.
fn rbac_rule(phase: Phase) -> BoxedStrategy<String> {
    let early = phase <= Phase::Assist;
    let groups = subsequence(vec!["", "apps", "*"], 1..=2);
    let resources = prop_oneof![
        8 => subsequence(vec!["pods", "deployments", "deployments/scale", "*/scale"], 1..=3),
        1 => subsequence(vec!["pods", "secrets", "*"], 1..=2),
    ];
    let all = vec!["get", "list", "watch", "patch", "update", "delete"];
    let verbs = if early {
        prop_oneof![
            9 => subsequence(vec!["get", "list", "watch"], 1..=3),
            1 => subsequence(all.clone(), 1..=3),
        ]
        .boxed()
    } else {
        subsequence(all, 1..=3).boxed()
    };
    let named_verbs = if early {
        vec!["get"]
    } else {
        vec!["get", "patch", "update", "delete"]
    };
    let verbs_and_names = prop_oneof![
        3 => verbs.prop_map(|v| (v, Vec::new())),
        1 => (
            subsequence(named_verbs.clone(), 1..=named_verbs.len()),
            subsequence(vec!["a", "b"], 1..=2)
        ),
        1 => (Just(vec!["list"]), Just(vec!["a"])),
    ];
    (groups, resources, verbs_and_names)
        .prop_map(|(g, r, (v, n))| {
            let names = if n.is_empty() {
                String::new()
            } else {
                format!(", resourceNames: {}", list(&quoted(n)))
            };
            format!(
                "{{ apiGroups: {}, resources: {}, verbs: {}{names} }}",
                list(&quoted(g)),
                list(&quoted(r)),
                list(&quoted(v))
            )
        })
        .boxed()
}

fn egress_rule(_phase: Phase) -> BoxedStrategy<String> {
    let to = prop_oneof![
        3 => Just("namespace: monitoring"),
        3 => Just("namespace: db"),
        3 => Just("cidr: 10.0.0.0/8"),
        3 => Just("cidr: 10.20.0.0/16"),
        1 => Just("cidr: 0.0.0.0/0"),
    ];
    (to, subsequence(vec!["443", "9090"], 0..=2))
        .prop_map(|(to, ports)| {
            let ports: Vec<String> = ports.into_iter().map(str::to_owned).collect();
            format!("{{ {to}, ports: {} }}", list(&ports))
        })
        .boxed()
}

fn vault_grant(phase: Phase) -> BoxedStrategy<String> {
    let ttl = prop_oneof![Just("1m"), Just("5m"), Just("1h")];
    let max_ttl = prop_oneof![Just("1h"), Just("4h")];
    let writes = if phase <= Phase::Assist {
        prop_oneof![9 => Just(vec![]), 1 => Just(vec!["update"])].boxed()
    } else {
        prop_oneof![Just(vec![]), Just(vec!["update"]), Just(vec!["create"])].boxed()
    };
    let caps =
        (subsequence(vec!["read", "list"], 1..=2), writes).prop_map(|(mut reads, writes)| {
            reads.extend(writes);
            reads
        });
    let paths = (
        proptest::option::of(caps.clone()),
        proptest::option::of(subsequence(vec!["read", "deny"], 1..=1)),
        proptest::option::of(caps),
    );
    (ttl, max_ttl, paths)
        .prop_map(|(ttl, max_ttl, (domain, all, creds))| {
            let mut paths = Vec::new();
            for (path, caps) in [
                ("secret/data/{domain}/*", domain),
                ("secret/*", all),
                ("db/creds/x", creds),
            ] {
                if let Some(caps) = caps {
                    paths.push(format!("\"{path}\": {}", list(&quoted(caps))));
                }
            }
            format!(
                "{{ ttl: {ttl}, max_ttl: {max_ttl}, paths: {{ {} }} }}",
                paths.join(", ")
            )
        })
        .boxed()
}

/// Each phase named or not; named phases list 0..3 items (or one value).
fn phases(
    item: fn(Phase) -> BoxedStrategy<String>,
    indent: &str,
    shadow_required: bool,
    single: bool,
) -> impl Strategy<Value = String> {
    let indent = indent.to_owned();
    let entry = move |phase: Phase| {
        if single {
            item(phase).prop_map(|i| vec![i]).boxed()
        } else {
            proptest::collection::vec(item(phase), 0..3).boxed()
        }
    };
    let first = if shadow_required {
        entry(Phase::Shadow).prop_map(Some).boxed()
    } else {
        proptest::option::of(entry(Phase::Shadow)).boxed()
    };
    // Half the time, phases build on the phase below (a named phase repeats
    // what the last named one granted; a single value is named once), which
    // is how a bundle that widens is written; otherwise phases are drawn
    // independently, which mostly narrows somewhere.
    let phases = (
        first,
        proptest::option::of(entry(Phase::Assist)),
        proptest::option::of(entry(Phase::Remediate)),
        proptest::option::of(entry(Phase::Autonomous)),
    );
    (phases, any::<bool>()).prop_map(move |((a, b, c, d), cumulative)| {
        let mut out = String::new();
        let mut below: Vec<String> = Vec::new();
        for (phase, items) in Phase::ALL.into_iter().zip([a, b, c, d]) {
            let Some(mut items) = items else { continue };
            if cumulative {
                if single && !out.is_empty() {
                    continue;
                }
                below.extend(items);
                items = below.clone();
            }
            let value = if single {
                items.into_iter().next().unwrap_or_default()
            } else {
                list(&items)
            };
            out.push_str(&format!("{indent}{phase}: {value}\n"));
        }
        out
    })
}

fn platform() -> impl Strategy<Value = String> {
    (
        phases(rbac_rule, "      ", false, false),
        phases(egress_rule, "    ", false, false),
        phases(vault_grant, "      ", true, true),
    )
        .prop_map(|(k8s, egress, vault)| {
            let mut out = String::from("platform:\n  kubernetes:\n    phases:\n");
            out.push_str(if k8s.is_empty() { "      {}\n" } else { &k8s });
            out.push_str("  egress:\n");
            out.push_str(if egress.is_empty() {
                "    {}\n"
            } else {
                &egress
            });
            out.push_str("  vault:\n    phases:\n");
            out.push_str(&vault);
            out
        })
}

// ---- an evaluator of the rendered text ------------------------------------

fn file<'a>(rendered: &'a Rendered, name: &str) -> &'a str {
    &rendered
        .files
        .iter()
        .find(|f| f.path.ends_with(name))
        .unwrap_or_else(|| panic!("no {name}"))
        .text
}

fn documents(text: &str) -> Vec<Value> {
    text.split("\n---\n")
        .skip(1)
        .map(|doc| serde_saphyr::from_str::<Value>(doc).unwrap())
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The Role's rules as (groups, resources, verbs, names).
type Rule = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

fn role_rules(rendered: &Rendered) -> Vec<Rule> {
    let docs = documents(file(rendered, "role-inside.yaml"));
    let role = docs.iter().find(|d| d["kind"] == "Role").unwrap();
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                strings(&r["apiGroups"]),
                strings(&r["resources"]),
                strings(&r["verbs"]),
                strings(&r["resourceNames"]),
            )
        })
        .collect()
}

/// Kubernetes' RBAC authorizer on one concrete request.
fn rbac_allows(
    rules: &[Rule],
    group: &str,
    resource: &str,
    verb: &str,
    name: Option<&str>,
) -> bool {
    rules.iter().any(|(groups, resources, verbs, names)| {
        let resource_ok = resources.iter().any(|r| {
            r == "*"
                || r == resource
                || r.strip_prefix("*/")
                    .is_some_and(|sub| resource.split_once('/').is_some_and(|(_, s)| s == sub))
        });
        groups.iter().any(|g| g == "*" || g == group)
            && resource_ok
            && verbs.iter().any(|v| v == "*" || v == verb)
            && (names.is_empty() || name.is_some_and(|n| names.iter().any(|x| x == n)))
    })
}

const GROUPS: [&str; 3] = ["", "apps", "batch"];
const RESOURCES: [&str; 6] = [
    "pods",
    "deployments",
    "deployments/scale",
    "secrets",
    "jobs",
    "pods/log",
];
const VERBS: [&str; 8] = [
    "get", "list", "watch", "patch", "update", "delete", "create", "escalate",
];
const NAMES: [Option<&str>; 4] = [None, Some("a"), Some("b"), Some("c")];

/// Egress rules (DNS aside) as (namespace or cidr, ports).
fn egress_rules(rendered: &Rendered) -> Vec<(Option<String>, Option<String>, Vec<i64>)> {
    let docs = documents(file(rendered, "networkpolicy.yaml"));
    docs[0]["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1) // DNS, always first
        .map(|rule| {
            let peer = &rule["to"][0];
            let namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                .as_str()
                .map(str::to_owned);
            let cidr = peer["ipBlock"]["cidr"].as_str().map(str::to_owned);
            let ports = rule["ports"]
                .as_array()
                .map(|ps| ps.iter().filter_map(|p| p["port"].as_i64()).collect())
                .unwrap_or_default();
            (namespace, cidr, ports)
        })
        .collect()
}

fn in_cidr(ip: [u8; 4], cidr: &str) -> bool {
    let (address, prefix) = cidr.split_once('/').unwrap();
    let octets: Vec<u32> = address.split('.').map(|o| o.parse().unwrap()).collect();
    let net = octets.iter().fold(0u32, |acc, o| (acc << 8) | o);
    let ip = u32::from_be_bytes(ip);
    let prefix: u32 = prefix.parse().unwrap();
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    ip & mask == net & mask
}

/// A destination: a pod in a namespace, or an address; and a port.
enum Destination {
    Pod(&'static str),
    Address([u8; 4]),
}

const DESTINATIONS: [Destination; 5] = [
    Destination::Pod("monitoring"),
    Destination::Pod("db"),
    Destination::Address([10, 20, 1, 1]),
    Destination::Address([10, 1, 1, 1]),
    Destination::Address([192, 168, 1, 1]),
];

fn egress_allows(
    rules: &[(Option<String>, Option<String>, Vec<i64>)],
    to: &Destination,
    port: i64,
) -> bool {
    rules.iter().any(|(namespace, cidr, ports)| {
        let to_ok = match to {
            Destination::Pod(ns) => namespace.as_deref() == Some(ns),
            Destination::Address(ip) => cidr.as_deref().is_some_and(|c| in_cidr(*ip, c)),
        };
        to_ok && (ports.is_empty() || ports.contains(&port))
    })
}

/// Vault: (path pattern, capabilities) from the HCL, and the TTLs.
fn vault(rendered: &Rendered) -> (Vec<(String, Vec<String>)>, i64, i64) {
    let body: hcl::Body = hcl::from_str(file(rendered, "vault-policy.hcl")).unwrap();
    let paths = body
        .blocks()
        .map(|block| {
            let path = block.labels()[0].as_str().to_owned();
            let caps = block
                .body()
                .attributes()
                .find(|a| a.key() == "capabilities")
                .map(|a| match a.expr() {
                    hcl::Expression::Array(items) => items
                        .iter()
                        .filter_map(|i| match i {
                            hcl::Expression::String(s) => Some(s.clone()),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default();
            (path, caps)
        })
        .collect();
    let role: Value = serde_json::from_str(file(rendered, "vault-role.json")).unwrap();
    (
        paths,
        role["token_ttl"].as_i64().unwrap(),
        role["token_max_ttl"].as_i64().unwrap(),
    )
}

/// What Vault does with one policy: the most specific pattern matching
/// `path` (the path itself, else the longest glob) alone decides.
fn vault_allows(paths: &[(String, Vec<String>)], path: &str, capability: &str) -> bool {
    let matches = |pattern: &str| {
        pattern == path
            || pattern
                .strip_suffix('*')
                .is_some_and(|p| path.starts_with(p))
    };
    let rule = paths.iter().find(|(p, _)| p == path).or_else(|| {
        paths
            .iter()
            .filter(|(p, _)| matches(p))
            .max_by_key(|(p, _)| p.len())
    });
    rule.is_some_and(|(_, caps)| {
        !caps.iter().any(|c| c == "deny") && caps.iter().any(|c| c == capability)
    })
}

const VAULT_PATHS: [&str; 4] = ["secret/data/inside/x", "secret/other", "db/creds/x", "kv/y"];
const VAULT_CAPS: [&str; 4] = ["read", "list", "update", "create"];

/// The first thing `low` grants that `high` does not.
fn lost(low: &Rendered, high: &Rendered) -> Option<String> {
    let (low_rules, high_rules) = (role_rules(low), role_rules(high));
    for group in GROUPS {
        for resource in RESOURCES {
            for verb in VERBS {
                for name in NAMES {
                    if rbac_allows(&low_rules, group, resource, verb, name)
                        && !rbac_allows(&high_rules, group, resource, verb, name)
                    {
                        return Some(format!("rbac {group}/{resource} {verb} {name:?}"));
                    }
                }
            }
        }
    }
    let (low_egress, high_egress) = (egress_rules(low), egress_rules(high));
    for to in &DESTINATIONS {
        for port in [443, 9090, 22] {
            if egress_allows(&low_egress, to, port) && !egress_allows(&high_egress, to, port) {
                return Some(format!("egress port {port}"));
            }
        }
    }
    let ((low_paths, low_ttl, low_max), (high_paths, high_ttl, high_max)) =
        (vault(low), vault(high));
    if high_ttl < low_ttl || high_max < low_max {
        return Some("vault ttl".into());
    }
    for path in VAULT_PATHS {
        for cap in VAULT_CAPS {
            if vault_allows(&low_paths, path, cap) && !vault_allows(&high_paths, path, cap) {
                return Some(format!("vault {cap} {path}"));
            }
        }
    }
    None
}

#[test]
fn generated_platform_sections_keep_the_three_properties() {
    let (refused, quiet, warned) = (Cell::new(0), Cell::new(0), Cell::new(0));
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::with_cases(768)
    });
    runner
        .run(&platform(), |section| {
            let Ok(bundle) = compile(&section) else {
                refused.set(refused.get() + 1);
                return Ok(());
            };
            let narrows = bundle.warnings().iter().any(|w| w.code == "phase-narrows");
            if narrows {
                warned.set(warned.get() + 1);
            } else {
                quiet.set(quiet.get() + 1);
            }
            let again = compile(&section).unwrap();
            let mut renders = Vec::new();
            for phase in Phase::ALL {
                let rendered = render_agent(&bundle, "bot", phase).unwrap();
                prop_assert_eq!(&rendered, &render_agent(&again, "bot", phase).unwrap());
                if phase <= Phase::Assist {
                    for (_, _, verbs, _) in role_rules(&rendered) {
                        prop_assert!(
                            verbs
                                .iter()
                                .all(|v| ["get", "list", "watch"].contains(&v.as_str())),
                            "{phase} renders verbs {verbs:?}\n{section}"
                        );
                    }
                    for (path, caps) in vault(&rendered).0 {
                        prop_assert!(
                            caps.iter()
                                .all(|c| ["read", "list", "deny"].contains(&c.as_str())),
                            "{phase} renders {caps:?} on {path}\n{section}"
                        );
                    }
                }
                renders.push(rendered);
            }
            if !narrows {
                for pair in renders.windows(2) {
                    let loss = lost(&pair[0], &pair[1]);
                    prop_assert!(
                        loss.is_none(),
                        "{} grants less than {} ({loss:?}) and check did not warn\n{section}",
                        pair[1].phase,
                        pair[0].phase
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    let (refused, quiet, warned) = (refused.get(), quiet.get(), warned.get());
    assert!(
        refused > 20 && quiet > 20 && warned > 20,
        "the generator must reach every outcome: {refused} refused, {quiet} accepted, {warned} warned"
    );
}

#[test]
fn the_evaluator_sees_a_narrowing_the_bundle_warns_about() {
    // Guards the property: if `lost` never found anything, the monotonicity
    // check above would pass vacuously.
    let section = "platform:\n  kubernetes:\n    phases:\n      shadow: [ { apiGroups: [\"\"], resources: [pods], verbs: [get, list] } ]\n      assist: [ { apiGroups: [\"\"], resources: [pods], verbs: [get] } ]\n  egress: {}\n  vault:\n    phases:\n      shadow: { ttl: 5m, max_ttl: 1h, paths: {} }\n";
    let bundle = compile(section).unwrap();
    assert!(bundle.warnings().iter().any(|w| w.code == "phase-narrows"));
    let low = render_agent(&bundle, "bot", Phase::Shadow).unwrap();
    let high = render_agent(&bundle, "bot", Phase::Assist).unwrap();
    assert_eq!(lost(&low, &high).as_deref(), Some("rbac /pods list None"));
}

/// Vault applies the most specific pattern matching a path: a phase whose
/// own narrower pattern grants less than its glob takes away what the
/// glob of the phase below gave there. The bundle warns of it, and the
/// evaluator sees it.
#[test]
fn a_more_specific_vault_pattern_that_grants_less_is_a_narrowing() {
    let section = "platform:\n  kubernetes:\n    phases:\n      shadow: [ { apiGroups: [\"\"], resources: [pods], verbs: [get] } ]\n  egress: {}\n  vault:\n    phases:\n      shadow: { ttl: 5m, max_ttl: 1h, paths: {} }\n      remediate: { ttl: 5m, max_ttl: 1h, paths: { \"secret/*\": [read] } }\n      autonomous: { ttl: 5m, max_ttl: 1h, paths: { \"secret/*\": [read], \"secret/data/inside/*\": [list] } }\n";
    let bundle = compile(section).unwrap();
    let warning = bundle
        .warnings()
        .iter()
        .find(|w| w.code == "phase-narrows")
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        warning.contains("`read` on `secret/data/inside/*` is not granted any more"),
        "{warning}"
    );
    let low = render_agent(&bundle, "bot", Phase::Remediate).unwrap();
    let high = render_agent(&bundle, "bot", Phase::Autonomous).unwrap();
    assert_eq!(
        lost(&low, &high).as_deref(),
        Some("vault read secret/data/inside/x")
    );
}
