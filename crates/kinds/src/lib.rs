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
//! The table is data: no parsing, no I/O. Kinds the user names at start-up
//! (`--extra-kinds`) are appended to it as the master learns them from the API server
//! ([`Kind::register_extra`]); a kind, once added, stays for the life of the process.

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

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
        group_version(self.group, self.version)
    }

    /// The path prefix of the group's resources: `/api/v1` or `/apis/GROUP/VERSION`.
    pub fn prefix(&self) -> String {
        api_prefix(self.group, self.version)
    }
}

/// `VERSION` for the core group (empty `group`), else `GROUP/VERSION`: an `apiVersion`.
pub fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// The path of a group version's resources and of its discovery document: `/api/v1` for
/// the core group, else `/apis/GROUP/VERSION`.
pub fn api_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// Where the master gets the resources of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Made by the graph builder (the Cluster, the graph's root). It is not a type the REST
    /// API lists on its own.
    Builder,
    /// Listed from the Kubernetes API and shown in the graph.
    Kubernetes,
    /// Listed from the Kubernetes API for what the graph rules read in it, not shown
    /// (EndpointSlices: which pods a Service sends to).
    KubernetesInput,
    /// Read from each node's container runtime.
    Runtime,
}

/// One row of the table.
#[derive(Debug)]
pub struct KindInfo {
    /// The type's name in the graph (`Pod`), which is also the Kubernetes `kind`.
    pub name: &'static str,
    /// Lower-case plural (`pods`): the Kubernetes resource name, the `/status` key of its
    /// list (with its group for an extra kind: [`Kind::status_key`]), and the name the REST
    /// API links to.
    pub plural: &'static str,
    /// kubectl's short names (`po`), as the Kubernetes API's discovery announces them; the
    /// REST API takes them too.
    pub short_names: &'static [&'static str],
    /// Further names `/cluster/resources/TYPE` accepts besides the name (in any case), the
    /// plural and the short names.
    pub aliases: &'static [&'static str],
    pub api: Option<Api>,
    pub source: Source,
    /// What a resource of this type is, for the home page.
    pub summary: &'static str,
}

const CORE_V1: &str = "v1";

/// The table of the built-in kinds. Its order is the graph's order of resource types;
/// kinds added at start-up (see [`Kind::register_extra`]) follow it.
static TABLE: [KindInfo; 20] = [
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
        name: "Namespace",
        plural: "namespaces",
        short_names: &["ns"],
        aliases: &[],
        api: Some(Api {
            group: "",
            version: CORE_V1,
            namespaced: false,
        }),
        source: Source::Kubernetes,
        summary: "namespaces",
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
        name: "PersistentVolume",
        plural: "persistentvolumes",
        short_names: &["pv"],
        aliases: &[],
        api: Some(Api {
            group: "",
            version: CORE_V1,
            namespaced: false,
        }),
        source: Source::Kubernetes,
        summary: "persistent volumes",
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
        name: "Deployment",
        plural: "deployments",
        short_names: &["deploy"],
        aliases: &[],
        api: Some(Api {
            group: "apps",
            version: "v1",
            namespaced: true,
        }),
        source: Source::Kubernetes,
        summary: "deployments",
    },
    KindInfo {
        name: "ReplicaSet",
        plural: "replicasets",
        short_names: &["rs"],
        aliases: &[],
        api: Some(Api {
            group: "apps",
            version: "v1",
            namespaced: true,
        }),
        source: Source::Kubernetes,
        summary: "replica sets",
    },
    KindInfo {
        name: "StatefulSet",
        plural: "statefulsets",
        short_names: &["sts"],
        aliases: &[],
        api: Some(Api {
            group: "apps",
            version: "v1",
            namespaced: true,
        }),
        source: Source::Kubernetes,
        summary: "stateful sets",
    },
    KindInfo {
        name: "DaemonSet",
        plural: "daemonsets",
        short_names: &["ds"],
        aliases: &[],
        api: Some(Api {
            group: "apps",
            version: "v1",
            namespaced: true,
        }),
        source: Source::Kubernetes,
        summary: "daemon sets",
    },
    KindInfo {
        name: "Job",
        plural: "jobs",
        short_names: &[],
        aliases: &[],
        api: Some(Api {
            group: "batch",
            version: "v1",
            namespaced: true,
        }),
        source: Source::Kubernetes,
        summary: "jobs",
    },
    KindInfo {
        name: "CronJob",
        plural: "cronjobs",
        short_names: &["cj"],
        aliases: &[],
        api: Some(Api {
            group: "batch",
            version: "v1",
            namespaced: true,
        }),
        source: Source::Kubernetes,
        summary: "cron jobs",
    },
    KindInfo {
        name: "Ingress",
        plural: "ingresses",
        short_names: &["ing"],
        aliases: &[],
        api: Some(Api {
            group: "networking.k8s.io",
            version: "v1",
            namespaced: true,
        }),
        source: Source::Kubernetes,
        summary: "ingresses",
    },
    KindInfo {
        name: "PersistentVolumeClaim",
        plural: "persistentvolumeclaims",
        short_names: &["pvc"],
        aliases: &[],
        api: Some(Api {
            group: "",
            version: CORE_V1,
            namespaced: true,
        }),
        source: Source::Kubernetes,
        summary: "persistent volume claims",
    },
    KindInfo {
        name: "HorizontalPodAutoscaler",
        plural: "horizontalpodautoscalers",
        short_names: &["hpa"],
        aliases: &[],
        api: Some(Api {
            group: "autoscaling",
            version: "v2",
            namespaced: true,
        }),
        source: Source::Kubernetes,
        summary: "horizontal pod autoscalers",
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
        name: "EndpointSlice",
        plural: "endpointslices",
        short_names: &[],
        aliases: &[],
        api: Some(Api {
            group: "discovery.k8s.io",
            version: "v1",
            namespaced: true,
        }),
        source: Source::KubernetesInput,
        summary: "endpoint slices: which pods a service sends to",
    },
];

/// The most kinds there can be, built-in and extra.
const MAX_KINDS: usize = u8::MAX as usize;

/// The most kinds that can be added to the table.
const MAX_EXTRA: usize = MAX_KINDS - TABLE.len();

/// Kinds added while running (custom resources and any other kind the table does not
/// have), in slots filled in order and never emptied: a [`Kind`] made from a slot stays
/// valid for the life of the process, and reading one takes no lock.
static EXTRA: [OnceLock<KindInfo>; MAX_EXTRA] = [const { OnceLock::new() }; MAX_EXTRA];

/// How many slots of [`EXTRA`] are filled; raised after the slots are, so that whoever
/// sees a count sees the rows under it.
static EXTRA_COUNT: AtomicUsize = AtomicUsize::new(0);

/// One registration at a time.
static REGISTERING: parking_lot::Mutex<()> = parking_lot::const_mutex(());

/// What [`Kind::info`] answers for an index no kind has (no [`Kind`] can hold one: they
/// are made only from the table and the filled slots).
static UNKNOWN: KindInfo = KindInfo {
    name: "Unknown",
    plural: "unknown",
    short_names: &[],
    aliases: &[],
    api: None,
    source: Source::Builder,
    summary: "no such kind",
};

impl Kind {
    pub const CLUSTER: Kind = Kind(0);
    pub const NAMESPACE: Kind = Kind(1);
    pub const NODE: Kind = Kind(2);
    pub const PERSISTENT_VOLUME: Kind = Kind(3);
    pub const POD: Kind = Kind(4);
    pub const SERVICE: Kind = Kind(5);
    pub const REPLICATION_CONTROLLER: Kind = Kind(6);
    pub const DEPLOYMENT: Kind = Kind(7);
    pub const REPLICA_SET: Kind = Kind(8);
    pub const STATEFUL_SET: Kind = Kind(9);
    pub const DAEMON_SET: Kind = Kind(10);
    pub const JOB: Kind = Kind(11);
    pub const CRON_JOB: Kind = Kind(12);
    pub const INGRESS: Kind = Kind(13);
    pub const PERSISTENT_VOLUME_CLAIM: Kind = Kind(14);
    pub const HORIZONTAL_POD_AUTOSCALER: Kind = Kind(15);
    pub const CONTAINER: Kind = Kind(16);
    pub const IMAGE: Kind = Kind(17);
    pub const PROCESS: Kind = Kind(18);
    pub const ENDPOINT_SLICE: Kind = Kind(19);

    /// Its row of the table (or of the extra kinds).
    pub fn info(self) -> &'static KindInfo {
        let i = usize::from(self.0);
        match TABLE.get(i) {
            Some(info) => info,
            None => EXTRA
                .get(i - TABLE.len())
                .and_then(OnceLock::get)
                .unwrap_or(&UNKNOWN),
        }
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Its position among all kinds (for arrays indexed by kind).
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// How many kinds there are, built-in and extra.
    pub fn count() -> usize {
        TABLE.len() + EXTRA_COUNT.load(Ordering::Acquire)
    }

    /// Every kind: the table's, then the extra ones, in the graph's order.
    pub fn all() -> impl Iterator<Item = Kind> {
        // At most MAX_KINDS: register_extra refuses more.
        (0..Kind::count()).map(|i| Kind(i as u8))
    }

    /// The table's kinds only, whatever was added (the cluster simulator serves these).
    pub fn built_in() -> impl Iterator<Item = Kind> {
        (0..TABLE.len()).map(|i| Kind(i as u8))
    }

    /// Adds kinds the table does not have (custom resources, named at start-up); they
    /// follow the table and the kinds added before them, in the graph's order. Returns them.
    /// All or none are added.
    pub fn register_extra(kinds: Vec<KindInfo>) -> Result<Vec<Kind>, ExtraKindsError> {
        let _one_at_a_time = REGISTERING.lock();
        let start = EXTRA_COUNT.load(Ordering::Acquire);
        if start + kinds.len() > MAX_EXTRA {
            return Err(ExtraKindsError::TooMany);
        }
        for (i, kind) in kinds.iter().enumerate() {
            let taken = Kind::all().any(|k| {
                let info = k.info();
                info.name == kind.name || (info.plural == kind.plural && info.api == kind.api)
            }) || kinds[..i].iter().any(|k| k.name == kind.name);
            if taken {
                return Err(ExtraKindsError::Taken(kind.name.to_string()));
            }
        }
        let count = kinds.len();
        for (slot, kind) in EXTRA[start..start + count].iter().zip(kinds) {
            // Slots past the count are filled only here, under the lock: each is empty.
            let _ = slot.set(kind);
        }
        EXTRA_COUNT.store(start + count, Ordering::Release);
        Ok((TABLE.len() + start..TABLE.len() + start + count)
            .map(|i| Kind(i as u8))
            .collect())
    }

    /// The types of the graph's resources, in the graph's order.
    pub fn in_graph() -> impl Iterator<Item = Kind> {
        Kind::all().filter(|k| k.info().source != Source::KubernetesInput)
    }

    /// The kinds the master lists from the Kubernetes API.
    pub fn listed() -> impl Iterator<Item = Kind> {
        Kind::all().filter(|k| {
            let info = k.info();
            matches!(info.source, Source::Kubernetes | Source::KubernetesInput)
                && info.api.is_some()
        })
    }

    /// The types `/cluster/resources/TYPE` serves.
    pub fn queryable() -> impl Iterator<Item = Kind> {
        Kind::all().filter(|k| matches!(k.info().source, Source::Kubernetes | Source::Runtime))
    }

    /// The kind a graph type is named by exactly (`Pod`).
    pub fn by_name(name: &str) -> Option<Kind> {
        Kind::all().find(|k| k.name() == name)
    }

    /// The kind the API calls `kind` in group `group` (an `apiVersion`'s group; empty for
    /// the core group): `Deployment` in `apps`.
    pub fn by_group_kind(group: &str, kind: &str) -> Option<Kind> {
        Kind::all()
            .find(|k| k.api_kind() == kind && k.info().api.is_some_and(|api| api.group == group))
    }

    /// Its `kind` as the API names it: its name, less the `.group` an extra kind's name
    /// carries when another kind has the same `kind` (`Service.serving.knative.dev`).
    pub fn api_kind(self) -> &'static str {
        let info = self.info();
        match info.api {
            Some(api) if self.is_extra() && !api.group.is_empty() => info
                .name
                .strip_suffix(api.group)
                .and_then(|n| n.strip_suffix('.'))
                .unwrap_or(info.name),
            _ => info.name,
        }
    }

    /// The queryable type `/cluster/resources/TYPE` names: its name in any case, or one of
    /// its [`other_names`](Kind::other_names).
    pub fn from_type_name(text: &str) -> Option<Kind> {
        let lower = text.to_ascii_lowercase();
        Kind::queryable()
            .find(|k| k.name().eq_ignore_ascii_case(&lower) || k.other_names().any(|n| n == lower))
    }

    /// The names `/cluster/resources/TYPE` takes for it besides its name: its plural,
    /// kubectl's short names, its aliases.
    pub fn other_names(self) -> impl Iterator<Item = &'static str> {
        let info = self.info();
        std::iter::once(info.plural)
            .chain(info.short_names.iter().copied())
            .chain(info.aliases.iter().copied())
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

    /// Whether the kind was added at start-up rather than being in the table.
    pub fn is_extra(self) -> bool {
        self.index() >= TABLE.len()
    }

    /// The key of its list in the master's `/status`: the plural for the table's kinds,
    /// `plural.group` for the extra ones (as kubectl names them), which may share a plural
    /// with a kind of another group.
    pub fn status_key(self) -> String {
        let info = self.info();
        match info.api {
            Some(api) if self.is_extra() => extra_status_key(info.plural, api.group),
            _ => info.plural.to_string(),
        }
    }

    /// Whether objects of the kind live in namespaces.
    pub fn namespaced(self) -> bool {
        self.info().api.is_some_and(|api| api.namespaced)
    }
}

/// The `/status` key of an extra kind's list: `plural.group`, or the plural for the core
/// group.
pub fn extra_status_key(plural: &str, group: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

impl KindInfo {
    /// A row for a kind the table does not have, as the API server's discovery describes
    /// it. Its texts live as long as the process (kinds are registered once, at start-up).
    pub fn extra(
        name: &str,
        plural: &str,
        group: &str,
        version: &str,
        namespaced: bool,
    ) -> KindInfo {
        let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
        let group = leak(group);
        let version = leak(version);
        KindInfo {
            name: leak(name),
            plural: leak(plural),
            short_names: &[],
            aliases: &[],
            api: Some(Api {
                group,
                version,
                namespaced,
            }),
            source: Source::Kubernetes,
            summary: leak(&format!(
                "{plural} ({}, named with --extra-kinds)",
                group_version(group, version)
            )),
        }
    }
}

/// Why extra kinds cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraKindsError {
    TooMany,
    /// A kind of this name (or this resource) exists already.
    Taken(String),
}

impl fmt::Display for ExtraKindsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtraKindsError::TooMany => write!(f, "more than {MAX_KINDS} kinds in all"),
            ExtraKindsError::Taken(name) => write!(f, "kind {name} exists already"),
        }
    }
}

impl std::error::Error for ExtraKindsError {}

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
            (Kind::DEPLOYMENT, "Deployment"),
            (Kind::REPLICA_SET, "ReplicaSet"),
            (Kind::STATEFUL_SET, "StatefulSet"),
            (Kind::DAEMON_SET, "DaemonSet"),
            (Kind::JOB, "Job"),
            (Kind::CRON_JOB, "CronJob"),
            (Kind::INGRESS, "Ingress"),
            (Kind::PERSISTENT_VOLUME_CLAIM, "PersistentVolumeClaim"),
            (Kind::PERSISTENT_VOLUME, "PersistentVolume"),
            (Kind::HORIZONTAL_POD_AUTOSCALER, "HorizontalPodAutoscaler"),
            (Kind::ENDPOINT_SLICE, "EndpointSlice"),
        ] {
            assert_eq!(kind.name(), name);
            assert_eq!(Kind::by_name(name), Some(kind));
        }
    }

    #[test]
    fn names_are_unique_and_resolve_to_one_kind() {
        let mut seen = HashSet::new();
        for kind in Kind::built_in() {
            let lower = kind.name().to_ascii_lowercase();
            for name in std::iter::once(lower).chain(kind.other_names().map(str::to_string)) {
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
        for (name, kind) in [
            ("deploy", Kind::DEPLOYMENT),
            ("rs", Kind::REPLICA_SET),
            ("sts", Kind::STATEFUL_SET),
            ("ds", Kind::DAEMON_SET),
            ("jobs", Kind::JOB),
            ("cj", Kind::CRON_JOB),
            ("ing", Kind::INGRESS),
            ("pvc", Kind::PERSISTENT_VOLUME_CLAIM),
            ("pv", Kind::PERSISTENT_VOLUME),
            ("ns", Kind::NAMESPACE),
            ("hpa", Kind::HORIZONTAL_POD_AUTOSCALER),
            ("po", Kind::POD),
            ("no", Kind::NODE),
            ("svc", Kind::SERVICE),
            ("rc", Kind::REPLICATION_CONTROLLER),
        ] {
            assert_eq!(Kind::from_type_name(name), Some(kind), "{name}");
        }
        // The root and what the graph does not show are not types to ask for.
        assert_eq!(Kind::from_type_name("cluster"), None);
        assert_eq!(Kind::from_type_name("endpointslices"), None);
        assert_eq!(Kind::from_type_name("widgets"), None);
    }

    // The only test here that adds kinds: the others see the table grow while they run.
    #[test]
    fn extra_kinds_follow_the_table_in_the_order_added() {
        let rollout = KindInfo::extra("Rollout", "rollouts", "argoproj.io", "v1alpha1", true);
        let kinds = Kind::register_extra(vec![rollout]).unwrap();
        assert_eq!(kinds.len(), 1);
        let k = kinds[0];
        assert_eq!((k.name(), k.index()), ("Rollout", TABLE.len()));
        assert!(k > Kind::PROCESS && Kind::listed().any(|l| l == k));
        assert_eq!(
            k.list_path().as_deref(),
            Some("/apis/argoproj.io/v1alpha1/rollouts")
        );
        assert_eq!(Kind::from_type_name("ROLLOUTS"), Some(k));
        assert_eq!(k.status_key(), "rollouts.argoproj.io");
        assert!(Kind::built_in().all(|b| b != k));

        // Later additions follow; a name taken refuses the whole batch; a kind whose `kind`
        // another has is named with its group.
        let knative = KindInfo::extra(
            "Service.serving.knative.dev",
            "services",
            "serving.knative.dev",
            "v1",
            true,
        );
        let again = KindInfo::extra("Rollout", "rollouts", "argoproj.io", "v1", true);
        let count = Kind::count();
        assert_eq!(
            Kind::register_extra(vec![knative, again]),
            Err(ExtraKindsError::Taken("Rollout".into()))
        );
        assert_eq!(Kind::count(), count);
        let knative = KindInfo::extra(
            "Service.serving.knative.dev",
            "services",
            "serving.knative.dev",
            "v1",
            true,
        );
        let kn = Kind::register_extra(vec![knative]).unwrap()[0];
        assert_eq!(kn.index(), TABLE.len() + 1);
        assert_eq!(kn.api_kind(), "Service");
        assert_eq!(
            Kind::by_group_kind("serving.knative.dev", "Service"),
            Some(kn)
        );
        assert_eq!(Kind::by_group_kind("", "Service"), Some(Kind::SERVICE));
        assert_eq!(
            Kind::by_group_kind("apps", "Deployment"),
            Some(Kind::DEPLOYMENT)
        );
        assert_eq!(Kind::by_group_kind("", "Deployment"), None);
        // The built-in plural still names the built-in kind.
        assert_eq!(Kind::from_type_name("services"), Some(Kind::SERVICE));
        assert_eq!(Kind(250).name(), "Unknown");
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
        assert!(listed.contains(&"EndpointSlice") && listed.contains(&"Deployment"));
        assert!(!listed.contains(&"Container") && !listed.contains(&"Cluster"));
        assert_eq!(
            Kind::DEPLOYMENT.list_path().as_deref(),
            Some("/apis/apps/v1/deployments")
        );
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
