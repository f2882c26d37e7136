//! The README and the contract name every type the graph has and every relation it draws,
//! from the table of kinds and the table of rules, so that neither falls behind the code; the
//! install paths and the build script name one image.

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

/// One image name, `cluster-insight:VERSION`, built by the build script and run by default by
/// every install path; the 2015 project's Docker Hub name is nowhere.
#[test]
fn every_install_path_runs_the_image_the_build_script_makes() {
    let version = env!("CARGO_PKG_VERSION");
    let image = format!("cluster-insight:{version}");
    let manifest: serde_json::Value = serde_json::from_str(&read("controller.json")).unwrap();
    let mut images = Vec::new();
    for item in manifest["items"].as_array().unwrap() {
        for c in item["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            images.push(c["image"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(images, [image.clone(), image.clone()], "controller.json");
    for (file, default) in [
        ("install.sh", format!("IMAGE={image} ")),
        ("gcp-project-setup.sh", format!("DEFAULT_IMAGE={image}\n")),
        ("Dockerfile.scratch", format!("-t {image} .")),
        ("README.md", format!("docker tag {image} ")),
    ] {
        let text = read(file);
        assert!(
            text.contains(&default),
            "{file} does not default to {image}"
        );
    }
    // The build script names it from Cargo.toml's version.
    let build = read("scripts/build-image.sh");
    assert!(
        build.contains("IMAGE=${1:-cluster-insight:$VERSION}"),
        "build-image.sh"
    );
    for file in [
        "controller.json",
        "install.sh",
        "gcp-project-setup.sh",
        "Dockerfile.scratch",
        "README.md",
        "scripts/build-image.sh",
        "docs/contract.md",
    ] {
        assert!(
            !read(file).contains("kubernetes/cluster-insight"),
            "{file} names the 2015 project's image"
        );
    }
}
