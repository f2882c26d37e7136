//! The one table of the resource types Cluster Insight knows: for each, its name in the
//! graph, the names the REST API accepts for it, where the Kubernetes API serves it, where
//! the master gets it from, and one line saying what it is.
//!
//! Everything that needs to know "which kinds exist" reads this table: the master's
//! collector lists the Kubernetes kinds it names, the graph orders resources by it, the
//! REST API resolves `/cluster/resources/TYPE` and writes its home page and `/status` keys
//! from it, and the cluster simulator serves its routes and discovery documents from it.
//! A new kind is one entry here (then its parser and its graph rule in the master).
//!
//! The table is data only: no parsing, no I/O, no dependency.

#![forbid(unsafe_code)]

use std::fmt;

/// A resource type: an index into the table. Types order as the table lists them, which is
/// the order of the graph's resources.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind(u8);

/// Where the Kubernetes API serves a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    /// The API group; empty for the core group (`/api/v1`).
    pub group: &'static str,
    pub version: &'static str,
    pub namespaced: bool,
}

impl Api {
    /// `v1` for the core group, else `GROUP/VERSION`.
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The path prefix of the group's resources: `/api/v1` or `/apis/GROUP/VERSION`.
    pub fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

/// Where the master gets the resources of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Made by the graph builder (the Cluster, the graph's root). It is not a type the REST
    /// API lists on its own.
    Builder,
    /// Listed from the Kubernetes API.
    Kubernetes,
    /// Read from each node's container runtime.
    Runtime,
    /// Not part of the graph: served by the cluster simulator for clients such as kubectl.
    Simulator,
}

/// One row of the table.
#[derive(Debug)]
pub struct KindInfo {
    /// The type's name in the graph (`Pod`), which is also the Kubernetes `kind`.
    pub name: &'static str,
    /// Lower-case plural (`pods`): the Kubernetes resource name, the `/status` key of its
    /// list, and the name the REST API links to.
    pub plural: &'static str,
    /// kubectl's short names (`po`), as the Kubernetes API's discovery announces them.
    pub short_names: &'static [&'static str],
    /// Further names `/cluster/resources/TYPE` accepts besides the name (in any case) and
    /// the plural.
    pub aliases: &'static [&'static str],
    pub api: Option<Api>,
    pub source: Source,
    /// What a resource of this type is, for the home page.
    pub summary: &'static str,
}

const CORE_V1: &str = "v1";

/// The table. Its order is the graph's order of resource types.
static TABLE: [KindInfo; 9] = [
    KindInfo {
        name: "Cluster",
        plural: "clusters",
        short_names: &[],
        aliases: &[],
        api: None,
        source: Source::Builder,
        summary: "the cluster itself, the root of the graph",
    },
    KindInfo {
        name: "Node",
        plural: "nodes",
        short_names: &["no"],
        aliases: &[],
        api: Some(Api {
            group: "",
            version: CORE_V1,
            namespaced: false,
        }),
        source: Source::Kubernetes,
        summary: "nodes",
    },
    KindInfo {
        name: "Pod",
        plural: "pods",
        short_names: &["po"],
        aliases: &[],
        api: Some(Api {
            group: "",
            version: CORE_V1,
            namespaced: true,
        }),
        source: Source::Kubernetes,
        summary: "pods",
    },
    KindInfo {
        name: "Service",
        plural: "services",
        short_names: &["svc"],
        aliases: &[],
        api: Some(Api {
            group: "",
            version: CORE_V1,
            namespaced: true,
        }),
        source: Source::Kubernetes,
        summary: "services",
    },
    KindInfo {
        name: "ReplicationController",
        plural: "replicationcontrollers",
        short_names: &["rc"],
        aliases: &["rcontrollers"],
        api: Some(Api {
            group: "",
            version: CORE_V1,
            namespaced: true,
        }),
        source: Source::Kubernetes,
        summary: "replication controllers",
    },
    KindInfo {
        name: "Container",
        plural: "containers",
        short_names: &[],
        aliases: &[],
        api: None,
        source: Source::Runtime,
        summary: "containers, as their node's runtime inspects them",
    },
    KindInfo {
        name: "Image",
        plural: "images",
        short_names: &[],
        aliases: &[],
        api: None,
        source: Source::Runtime,
        summary: "images, as their node's runtime inspects them",
    },
    KindInfo {
        name: "Process",
        plural: "processes",
        short_names: &[],
        aliases: &[],
        api: None,
        source: Source::Runtime,
        summary: "processes (rows of ps aux)",
    },
    KindInfo {
        name: "Namespace",
        plural: "namespaces",
        short_names: &["ns"],
        aliases: &[],
        api: Some(Api {
            group: "",
            version: CORE_V1,
            namespaced: false,
        }),
        source: Source::Simulator,
        summary: "namespaces",
    },
];

impl Kind {
    pub const CLUSTER: Kind = Kind(0);
    pub const NODE: Kind = Kind(1);
    pub const POD: Kind = Kind(2);
    pub const SERVICE: Kind = Kind(3);
    pub const REPLICATION_CONTROLLER: Kind = Kind(4);
    pub const CONTAINER: Kind = Kind(5);
    pub const IMAGE: Kind = Kind(6);
    pub const PROCESS: Kind = Kind(7);
    pub const NAMESPACE: Kind = Kind(8);

    /// Its row of the table.
    pub fn info(self) -> &'static KindInfo {
        &TABLE[usize::from(self.0)]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Its position in the table (for arrays indexed by kind).
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// How many kinds there are.
    pub const COUNT: usize = TABLE.len();

    /// Every kind, in table order.
    pub fn all() -> impl Iterator<Item = Kind> {
        // The table is far smaller than 256 rows.
        (0..TABLE.len()).map(|i| Kind(i as u8))
    }

    /// The types of the graph's resources, in the graph's order.
    pub fn in_graph() -> impl Iterator<Item = Kind> {
        Kind::all().filter(|k| k.info().source != Source::Simulator)
    }

    /// The kinds the master lists from the Kubernetes API.
    pub fn listed() -> impl Iterator<Item = Kind> {
        Kind::all().filter(|k| k.info().source == Source::Kubernetes && k.info().api.is_some())
    }

    /// The types `/cluster/resources/TYPE` serves.
    pub fn queryable() -> impl Iterator<Item = Kind> {
        Kind::all().filter(|k| matches!(k.info().source, Source::Kubernetes | Source::Runtime))
    }

    /// The kind a graph type is named by exactly (`Pod`).
    pub fn by_name(name: &str) -> Option<Kind> {
        Kind::all().find(|k| k.name() == name)
    }

    /// The queryable type `/cluster/resources/TYPE` names: its name in any case, its plural
    /// or one of its aliases.
    pub fn from_type_name(text: &str) -> Option<Kind> {
        let lower = text.to_ascii_lowercase();
        Kind::queryable().find(|k| {
            let info = k.info();
            info.name.eq_ignore_ascii_case(&lower)
                || info.plural == lower
                || info.aliases.contains(&lower.as_str())
        })
    }

    /// The kind the Kubernetes API serves at `GROUP/VERSION` under `plural`.
    pub fn from_api_resource(group: &str, version: &str, plural: &str) -> Option<Kind> {
        Kind::all().find(|k| {
            let info = k.info();
            info.plural == plural
                && info
                    .api
                    .is_some_and(|api| api.group == group && api.version == version)
        })
    }

    /// The path of the list of every object of the kind: `/api/v1/pods`.
    pub fn list_path(self) -> Option<String> {
        let info = self.info();
        info.api
            .map(|api| format!("{}/{}", api.prefix(), info.plural))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn constants_name_their_rows() {
        for (kind, name) in [
            (Kind::CLUSTER, "Cluster"),
            (Kind::NODE, "Node"),
            (Kind::POD, "Pod"),
            (Kind::SERVICE, "Service"),
            (Kind::REPLICATION_CONTROLLER, "ReplicationController"),
            (Kind::CONTAINER, "Container"),
            (Kind::IMAGE, "Image"),
            (Kind::PROCESS, "Process"),
            (Kind::NAMESPACE, "Namespace"),
        ] {
            assert_eq!(kind.name(), name);
            assert_eq!(Kind::by_name(name), Some(kind));
        }
        assert_eq!(Kind::all().count(), Kind::COUNT);
    }

    #[test]
    fn names_are_unique_and_resolve_to_one_kind() {
        let mut seen = HashSet::new();
        for kind in Kind::all() {
            let info = kind.info();
            for name in [info.name.to_ascii_lowercase(), info.plural.to_string()]
                .into_iter()
                .chain(info.aliases.iter().map(|a| a.to_string()))
                .chain(info.short_names.iter().map(|a| a.to_string()))
            {
                assert!(seen.insert(name.clone()), "{name} names two kinds");
            }
        }
    }

    #[test]
    fn rest_type_names() {
        assert_eq!(Kind::from_type_name("pods"), Some(Kind::POD));
        assert_eq!(Kind::from_type_name("POD"), Some(Kind::POD));
        assert_eq!(
            Kind::from_type_name("rcontrollers"),
            Some(Kind::REPLICATION_CONTROLLER)
        );
        assert_eq!(Kind::from_type_name("Processes"), Some(Kind::PROCESS));
        // The root and what the graph does not show are not types to ask for.
        assert_eq!(Kind::from_type_name("cluster"), None);
        assert_eq!(Kind::from_type_name("namespaces"), None);
        assert_eq!(Kind::from_type_name("widgets"), None);
    }

    #[test]
    fn api_paths() {
        assert_eq!(Kind::POD.list_path().as_deref(), Some("/api/v1/pods"));
        assert_eq!(Kind::CONTAINER.list_path(), None);
        assert_eq!(
            Kind::from_api_resource("", "v1", "replicationcontrollers"),
            Some(Kind::REPLICATION_CONTROLLER)
        );
        assert_eq!(Kind::from_api_resource("apps", "v1", "pods"), None);
        let listed: Vec<&str> = Kind::listed().map(Kind::name).collect();
        assert_eq!(listed, ["Node", "Pod", "Service", "ReplicationController"]);
        let apps = Api {
            group: "apps",
            version: "v1",
            namespaced: true,
        };
        assert_eq!(
            (apps.prefix().as_str(), apps.group_version().as_str()),
            ("/apis/apps/v1", "apps/v1")
        );
    }
}
