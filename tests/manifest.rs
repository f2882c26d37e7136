//! `controller.json` against the code: the master's ClusterRole grants exactly what the
//! master lists, kind by kind, from the table of kinds, and the token it projects for
//! minions is where the master looks, for the audience minions accept (the manifest suite
//! checks the rest of its policy, offline, with two schemas).

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
        .filter(|i| i["kind"] == "ClusterRole" && i["metadata"]["name"] == "cluster-insight-reader")
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

#[test]
fn the_master_finds_the_token_it_is_given_for_minions() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/controller.json");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let master = manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "Deployment")
        .unwrap();
    let pod = &master["spec"]["template"]["spec"];
    let mount = pod["containers"][0]["volumeMounts"][0]["mountPath"]
        .as_str()
        .unwrap();
    let token = &pod["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"];
    let file = format!("{mount}/{}", token["path"].as_str().unwrap());
    assert_eq!(file, cluster_insight::config::MINION_TOKEN_FILE);
    assert_eq!(token["audience"], cluster_insight::auth::MINION_AUDIENCE);
}
