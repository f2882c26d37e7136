//! Kinds named with `--extra-kinds`: custom resources and any other kind the table of kinds
//! does not have. The API server's discovery says what each is called and whether it lives
//! in namespaces; a kind is added to the table (and listed from then on, like the others)
//! as soon as discovery names it. Until then each has its line in `/status`: `SKIPPED` when
//! the server does not serve it or the master may not ask (asked again every few minutes,
//! for a resource definition installed later), `ERROR` while discovery fails otherwise
//! (asked again at the next refresh).

use std::collections::BTreeMap;
use std::fmt;

use cluster_insight_kinds::{extra_status_key, group_version, KindInfo};

use super::kube::{KubeClient, KubeError};
use super::status::SourceStatus;
use crate::graph::Kind;

/// A kind named by its API group, version and resource (`argoproj.io/v1alpha1/rollouts`;
/// `v1/configmaps` for the core group), as `--extra-kinds` names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupVersionResource {
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl GroupVersionResource {
    /// Reads `GROUP/VERSION/RESOURCE` or `VERSION/RESOURCE` (the core group).
    pub fn parse(text: &str) -> Result<GroupVersionResource, String> {
        let parts: Vec<&str> = text.trim().split('/').collect();
        let (group, version, resource) = match parts.as_slice() {
            [version, resource] => ("", *version, *resource),
            [group, version, resource] => (*group, *version, *resource),
            _ => return Err(format!("{text:?} is not GROUP/VERSION/RESOURCE")),
        };
        // A group is a DNS subdomain (`argoproj.io`); a version and a resource are labels.
        let name = |s: &str, dots: bool| {
            !s.is_empty()
                && s.len() <= 253
                && s.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.')
                })
        };
        if !(group.is_empty() || name(group, true))
            || !name(version, false)
            || !name(resource, false)
        {
            return Err(format!(
                "{text:?}: the group is a lower-case domain name (argoproj.io), the version \
                 and the resource lower-case words (v1alpha1, rollouts)"
            ));
        }
        Ok(GroupVersionResource {
            group: group.to_string(),
            version: version.to_string(),
            resource: resource.to_string(),
        })
    }

    /// Its line in `/status`, as [`Kind::status_key`] will name it once it is a kind.
    fn status_key(&self) -> String {
        extra_status_key(&self.resource, &self.group)
    }
}

impl fmt::Display for GroupVersionResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group_version = group_version(&self.group, &self.version);
        write!(f, "{group_version}/{}", self.resource)
    }
}

/// Refreshes between two questions about a kind the server did not serve: a minute at the
/// default interval of 10 s.
const ASK_AGAIN_AFTER: u64 = 6;

/// A named kind not yet added.
struct Waiting {
    kind: GroupVersionResource,
    /// The refresh from which it is asked about again.
    next_ask: u64,
    /// Why it is not a kind yet, and whether that is on purpose (`SKIPPED`) or a failure.
    why: Option<(String, bool)>,
}

/// The kinds named with `--extra-kinds` that discovery has not named yet.
pub(crate) struct ExtraKinds {
    waiting: Vec<Waiting>,
}

impl ExtraKinds {
    pub(crate) fn new(named: &[GroupVersionResource]) -> ExtraKinds {
        ExtraKinds {
            waiting: named
                .iter()
                .map(|kind| Waiting {
                    kind: kind.clone(),
                    next_ask: 0,
                    why: None,
                })
                .collect(),
        }
    }

    /// Asks discovery about the kinds whose turn it is, adds those it names to the table (in
    /// the order named), and writes every waiting kind's line in `status`.
    pub(crate) fn discover(
        &mut self,
        client: &KubeClient,
        refresh: u64,
        now: i64,
        status: &mut BTreeMap<String, SourceStatus>,
    ) {
        if self.waiting.is_empty() {
            return;
        }
        let mut group_versions: Vec<(String, String)> = Vec::new();
        for w in self.waiting.iter().filter(|w| w.next_ask <= refresh) {
            let gv = (w.kind.group.clone(), w.kind.version.clone());
            if !group_versions.contains(&gv) {
                group_versions.push(gv);
            }
        }
        let asked: Vec<usize> = (0..self.waiting.len())
            .filter(|&i| self.waiting[i].next_ask <= refresh)
            .collect();
        let mut found: Vec<(usize, KindInfo)> = Vec::new();
        for (group, version) in &group_versions {
            let served = client.discover(group, version);
            let gv = group_version(group, version);
            for (i, w) in self.waiting.iter_mut().enumerate() {
                if w.next_ask > refresh || w.kind.group != *group || w.kind.version != *version {
                    continue;
                }
                let resources = match &served {
                    Ok(resources) => resources.as_slice(),
                    // The group version is not served at all.
                    Err(KubeError::Status { code: 404, .. }) => &[],
                    Err(KubeError::Status { code: 403, .. }) => {
                        w.why = Some((
                            format!("the master may not read the discovery of {gv} (403)"),
                            true,
                        ));
                        w.next_ask = refresh + ASK_AGAIN_AFTER;
                        continue;
                    }
                    Err(e) => {
                        let why = format!("waiting for discovery: {}", crate::report::chain(e));
                        w.why = Some((why, false));
                        w.next_ask = refresh + 1;
                        continue;
                    }
                };
                match resources
                    .iter()
                    .find(|r| r.name == w.kind.resource && !r.kind.is_empty())
                {
                    Some(r) => {
                        // Resources are named `Kind:…`: a kind another already has is
                        // named with its group too, as kubectl does (`Service.serving.knative.dev`).
                        let taken = Kind::by_name(&r.kind).is_some()
                            || found.iter().any(|(_, k)| k.name == r.kind);
                        let name = if taken && !group.is_empty() {
                            format!("{}.{group}", r.kind)
                        } else {
                            r.kind.clone()
                        };
                        found.push((
                            i,
                            KindInfo::extra(&name, &r.name, group, version, r.namespaced),
                        ));
                    }
                    None => {
                        w.why = Some((
                            format!("the API server does not serve {} (discovery)", w.kind),
                            true,
                        ));
                        w.next_ask = refresh + ASK_AGAIN_AFTER;
                    }
                }
            }
        }
        // In the order named, whatever the order of the group versions asked.
        found.sort_by_key(|(i, _)| *i);
        let positions: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
        let mut added = vec![false; self.waiting.len()];
        if !positions.is_empty() {
            match Kind::register_extra(found.into_iter().map(|(_, info)| info).collect()) {
                Ok(kinds) => {
                    for kind in kinds {
                        log::info!(
                            "showing {} as {kind} ({})",
                            kind.status_key(),
                            kind.list_path().unwrap_or_default()
                        );
                    }
                    for &i in &positions {
                        added[i] = true;
                    }
                }
                Err(e) => {
                    for &i in &positions {
                        self.waiting[i].why = Some((format!("cannot be shown: {e}"), false));
                        self.waiting[i].next_ask = refresh + ASK_AGAIN_AFTER;
                    }
                }
            }
        }
        // The lines of the kinds asked about that still wait; the others keep theirs.
        let endpoint = client.base_url().to_string();
        for &i in asked.iter().filter(|&&i| !added[i]) {
            let w = &self.waiting[i];
            let Some((why, skipped)) = &w.why else {
                continue;
            };
            let entry = status.entry(w.kind.status_key()).or_default();
            if entry.error.as_deref() != Some(why.as_str()) {
                log::warn!("Kubernetes API: extra kind {}: {why}", w.kind);
            }
            if *skipped {
                entry.record_skipped(now, endpoint.clone(), why.clone());
            } else {
                entry.record(now, endpoint.clone(), Err(why.clone()));
            }
        }
        let mut i = 0;
        self.waiting.retain(|_| {
            i += 1;
            !added[i - 1]
        });
    }
}
