//! The README and the contract name every type the graph has and every relation it draws,
//! from the table of kinds and the table of rules, so that neither falls behind the code.

use cluster_insight::graph::{Kind, RELATION_RULES};

fn read(file: &str) -> String {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_readme_and_the_contract_list_every_type_and_relation() {
    for file in ["README.md", "docs/contract.md"] {
        let text = read(file);
        for kind in Kind::queryable() {
            let info = kind.info();
            assert!(
                text.contains(&format!("`{}:", info.name)),
                "{file}: no ID of {}",
                info.name
            );
            for name in info.short_names {
                assert!(text.contains(&format!("`{name}`")), "{file}: {name}");
            }
        }
        // Each rule: a table row with the relation, and for every pair of types it joins,
        // a row naming both.
        for rule in RELATION_RULES {
            let relation = rule.relation.as_str();
            let rows: Vec<&str> = text
                .lines()
                .filter(|l| {
                    l.starts_with(&format!("| `{relation}` |"))
                        || l.starts_with(&format!("| {relation} |"))
                })
                .collect();
            assert!(!rows.is_empty(), "{file}: no row for {relation}");
            for from in rule.from.iter().filter(|t| **t != "*") {
                for to in rule.to.iter().filter(|t| **t != "*") {
                    assert!(
                        rows.iter().any(|r| r.contains(from) && r.contains(to)),
                        "{file}: no row for {relation} {from} → {to}"
                    );
                }
                assert!(
                    rows.iter().any(|r| r.contains(from)),
                    "{file}: no row for {relation} from {from}"
                );
            }
        }
    }
}
