//! `controller.json` against the code: its ClusterRole grants exactly what the master
//! lists, kind by kind, from the table of kinds (the manifest suite checks the rest of its
//! policy, offline, with two schemas).

use std::collections::{BTreeMap, BTreeSet};

use cluster_insight::graph::Kind;
use serde_json::Value;

#[test]
fn the_cluster_role_grants_list_and_watch_on_exactly_the_kinds_listed() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/controller.json");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let roles: Vec<&Value> = manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "ClusterRole")
        .collect();
    assert_eq!(roles.len(), 1);
    let mut granted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in roles[0]["rules"].as_array().unwrap() {
        let verbs: Vec<&str> = rule["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(verbs, ["list", "watch"], "{rule}");
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                granted
                    .entry(group.as_str().unwrap().to_string())
                    .or_default()
                    .insert(resource.as_str().unwrap().to_string());
            }
        }
    }
    let mut listed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for kind in Kind::listed() {
        let info = kind.info();
        let api = info.api.unwrap();
        listed
            .entry(api.group.to_string())
            .or_default()
            .insert(info.plural.to_string());
    }
    assert_eq!(granted, listed);
    assert!(!granted.values().any(|r| r.contains("secrets")));
}
