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
        for rule in RELATION_RULES {
            let relation = rule.relation.as_str();
            assert!(
                text.contains(&format!("| `{relation}` |"))
                    || text.contains(&format!("| {relation} |")),
                "{file}: no row for {relation}"
            );
        }
    }
}
