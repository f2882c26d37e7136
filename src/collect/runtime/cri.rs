//! A node's runtime read through CRI `runtime.v1` (containerd, CRI-O): the only code that
//! knows CRI's messages as the graph sees them. Pod sandboxes are listed beside containers,
//! as a pod's own container (Docker shows the pause container the same way).
//!
//! A container's or sandbox's observed form is what `crictl inspect` shows: `status`, the
//! runtime's status message in protobuf's JSON mapping, and `info`, the runtime's verbose
//! account (its OCI spec among it). Environment values are redacted here, before anything
//! else sees them: `info.runtimeSpec.process.env` and `info.config.envs`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::docker::redact_env_list;
use super::{Cause, Listed, NodeRuntime, RuntimeError, RuntimeInfo};
use crate::agent::cri::{api, CriClient, CriError};
use crate::agent::document::STATUS_VOLATILE;
use crate::collect::ParseError;
use crate::graph::fingerprint;
use crate::graph::observed::{Container, Image, Process};
use cluster_insight_wire::time::rfc3339_millis;

const CONTAINER_RUNNING: i32 = api::ContainerState::ContainerRunning as i32;
const SANDBOX_READY: i32 = api::PodSandboxState::SandboxReady as i32;

/// A node's runtime read through CRI.
pub(crate) struct CriRuntime {
    client: CriClient,
    show_env: bool,
    /// What the last list showed: which IDs are sandboxes, and the node's images (which
    /// name the images containers refer to by digest or by name).
    listed: Mutex<Listing>,
}

#[derive(Default)]
struct Listing {
    sandboxes: HashSet<String>,
    images: Vec<api::Image>,
}

impl CriRuntime {
    pub(crate) fn new(client: CriClient, show_env: bool) -> CriRuntime {
        CriRuntime {
            client,
            show_env,
            listed: Mutex::new(Listing::default()),
        }
    }

    /// The image ID (`sha256:…` config digest) of what a container's status names: an
    /// image ID or a repository digest (`reference`); only when it names neither, the
    /// image its name is a tag of now (a tag may have moved since the container started).
    fn image_id(&self, reference: &str, by_name: &str) -> String {
        let listing = self.listed.lock();
        let by_reference = listing
            .images
            .iter()
            .find(|i| i.id == reference || i.repo_digests.iter().any(|d| d == reference));
        match by_reference {
            Some(image) => image.id.clone(),
            None if reference.starts_with("sha256:") => reference.to_string(),
            None if reference.is_empty() => listing
                .images
                .iter()
                .find(|i| i.repo_tags.iter().any(|t| t == by_name))
                .map(|i| i.id.clone())
                .unwrap_or_default(),
            None => String::new(),
        }
    }
}

fn failed(e: CriError) -> RuntimeError {
    let call = e.call().to_string();
    let cause = if e.is_not_found() {
        Cause::NotFound
    } else {
        Cause::Cri(e)
    };
    RuntimeError { call, cause }
}

fn parse_failed(call: String, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError {
        call: call.clone(),
        cause: Cause::Parse(ParseError::new(call, e)),
    }
}

/// Nanoseconds since the epoch as RFC 3339; CRI's 0 means "not yet", written as Docker
/// writes its zero time so that the graph reads both alike.
fn time(nanos: i64) -> String {
    if nanos <= 0 {
        "0001-01-01T00:00:00Z".to_string()
    } else {
        rfc3339_millis(nanos / 1_000_000)
    }
}

/// What a text of the verbose info that is not JSON becomes unless `show_env`: it cannot
/// be searched for environment values, so it is not passed on.
const NOT_SHOWN: &str = "<not shown: not JSON, so its environment values could not be redacted>";

/// The verbose `info` map, each entry's JSON text parsed, the environment redacted unless
/// `show_env`. containerd and CRI-O put everything under one `info` entry, which then is
/// the whole of it (as `crictl inspect` shows it); other entries are kept beside it.
fn verbose_info(info: &BTreeMap<String, String>, show_env: bool) -> Value {
    let mut out = serde_json::Map::new();
    for (key, text) in info {
        let value = match serde_json::from_str::<Value>(text) {
            Ok(mut value) => {
                if !show_env {
                    redact_cri_env(&mut value);
                }
                value
            }
            Err(_) if show_env => json!(text),
            Err(_) => json!(NOT_SHOWN),
        };
        out.insert(key.clone(), value);
    }
    if out.len() == 1 && out.get("info").is_some_and(Value::is_object) {
        if let Some(inner) = out.remove("info") {
            return inner;
        }
    }
    Value::Object(out)
}

/// Environment values of a CRI verbose info, wherever the runtimes put them: the OCI
/// spec's `process.env` and its hooks' `env` (`NAME=VALUE` strings) and the container
/// config's `envs` (`{key, value}` pairs), under an `info` entry or at the top.
pub(crate) fn redact_cri_env(value: &mut Value) {
    let nested = value.get("info").is_some_and(Value::is_object);
    let info = if nested { &mut value["info"] } else { value };
    if let Some(env) = info
        .pointer_mut("/runtimeSpec/process/env")
        .and_then(Value::as_array_mut)
    {
        redact_env_list(env);
    }
    if let Some(hooks) = info
        .pointer_mut("/runtimeSpec/hooks")
        .and_then(Value::as_object_mut)
    {
        for hook in hooks.values_mut().filter_map(Value::as_array_mut).flatten() {
            if let Some(env) = hook.get_mut("env").and_then(Value::as_array_mut) {
                redact_env_list(env);
            }
        }
    }
    if let Some(envs) = info
        .pointer_mut("/config/envs")
        .and_then(Value::as_array_mut)
    {
        for pair in envs.iter_mut() {
            match pair.get_mut("value") {
                Some(v) => *v = json!("<redacted>"),
                None => *pair = json!("<redacted>"),
            }
        }
    }
}

/// Which runtime a `Version` answer names (containerd says `containerd`, CRI-O `cri-o`).
fn runtime_info(version: api::VersionResponse, endpoint: String) -> RuntimeInfo {
    RuntimeInfo {
        name: version.runtime_name,
        version: version.runtime_version,
        api: format!("CRI runtime.v1 {}", version.runtime_api_version),
        endpoint,
    }
}

/// The observed form of a status and its verbose info.
fn observed(
    status: &impl serde::Serialize,
    info: Value,
    call: &str,
) -> Result<(Arc<str>, u64), RuntimeError> {
    let raw = serde_json::to_string(&json!({ "status": status, "info": info }))
        .map_err(|e| parse_failed(call.to_string(), e))?;
    let fingerprint = fingerprint::ignoring(&raw, STATUS_VOLATILE)
        .map_err(|e| parse_failed(call.to_string(), e))?;
    Ok((Arc::from(raw), fingerprint))
}

impl NodeRuntime for CriRuntime {
    fn endpoint(&self) -> String {
        format!("unix://{}", self.client.socket().display())
    }

    fn describe(&self) -> Result<RuntimeInfo, RuntimeError> {
        let version = self.client.version().map_err(failed)?;
        Ok(runtime_info(version, self.endpoint()))
    }

    fn tells_processes(&self) -> bool {
        false
    }

    fn list(&self) -> Result<Vec<Listed>, RuntimeError> {
        let sandboxes = self.client.list_pod_sandboxes().map_err(failed)?;
        let containers = self.client.list_containers().map_err(failed)?;
        // Images are few and listed in one call; the statuses name them by digest.
        let images = self.client.list_images().map_err(failed)?;
        let mut listing = self.listed.lock();
        listing.images = images;
        listing.sandboxes.clear();
        let mut out = Vec::new();
        // A CRI container never changes but for its state, and only running ones are
        // listed: a restart is a new container, with a new ID.
        for sandbox in sandboxes.into_iter().filter(|s| s.state == SANDBOX_READY) {
            listing.sandboxes.insert(sandbox.id.clone());
            out.push(Listed {
                id: sandbox.id,
                state: "ready".to_string(),
                age_at_most_secs: None,
            });
        }
        for container in containers
            .into_iter()
            .filter(|c| c.state == CONTAINER_RUNNING)
        {
            out.push(Listed {
                id: container.id,
                state: "running".to_string(),
                age_at_most_secs: None,
            });
        }
        Ok(out)
    }

    fn inspect(&self, id: &str) -> Result<Container, RuntimeError> {
        let is_sandbox = self.listed.lock().sandboxes.contains(id);
        if is_sandbox {
            let answer = self.client.pod_sandbox_status(id, true).map_err(failed)?;
            let call = format!("status of pod sandbox {id}");
            let status = answer
                .status
                .ok_or_else(|| parse_failed(call.clone(), "no status"))?;
            let info = verbose_info(&answer.info, self.show_env);
            // The sandbox's image is named in containerd's verbose info only.
            let image_name = info
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let (raw, fingerprint) = observed(&status, info, &call)?;
            return Ok(Container {
                id: status.id,
                name: status.metadata.map(|m| m.name).unwrap_or_default(),
                // A name, not an ID or digest: the image it is a tag of.
                image_id: self.image_id("", &image_name),
                labels: status.labels,
                started_at: time(status.created_at),
                finished_at: time(0),
                running: status.state == SANDBOX_READY,
                sandbox: true,
                raw,
                fingerprint,
            });
        }
        let answer = self.client.container_status(id, true).map_err(failed)?;
        let call = format!("status of container {id}");
        let status = answer
            .status
            .ok_or_else(|| parse_failed(call.clone(), "no status"))?;
        let info = verbose_info(&answer.info, self.show_env);
        let image_name = status
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        let reference = if status.image_id.is_empty() {
            &status.image_ref
        } else {
            &status.image_id
        };
        let image_id = self.image_id(reference, &image_name);
        let (raw, fingerprint) = observed(&status, info, &call)?;
        Ok(Container {
            id: status.id,
            name: status.metadata.map(|m| m.name).unwrap_or_default(),
            image_id,
            labels: status.labels,
            started_at: time(status.started_at),
            finished_at: time(status.finished_at),
            running: status.state == CONTAINER_RUNNING,
            sandbox: false,
            raw,
            fingerprint,
        })
    }

    fn processes(&self, _container: &Container) -> Result<Option<Vec<Process>>, RuntimeError> {
        // CRI has no process list; the agent reads the host's /proc instead.
        Ok(None)
    }

    fn image(&self, id: &str) -> Result<Image, RuntimeError> {
        let call = format!("image {id}");
        let listed = self
            .listed
            .lock()
            .images
            .iter()
            .find(|i| i.id == id)
            .cloned();
        let image = match listed {
            Some(image) => image,
            None => self
                .client
                .image_status(id, false)
                .map_err(failed)?
                .image
                .ok_or(RuntimeError {
                    call: call.clone(),
                    cause: Cause::NotFound,
                })?,
        };
        let name = image
            .repo_tags
            .first()
            .cloned()
            .or_else(|| {
                image
                    .repo_digests
                    .first()
                    .map(|d| d.split('@').next().unwrap_or_default().to_string())
            })
            .unwrap_or_default();
        let raw = serde_json::to_string(&image).map_err(|e| parse_failed(call.clone(), e))?;
        let fingerprint = fingerprint::plain(&raw).map_err(|e| parse_failed(call, e))?;
        Ok(Image {
            id: image.id,
            name,
            raw: Arc::from(raw),
            fingerprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_values_are_redacted_in_both_places() {
        let mut info = BTreeMap::new();
        info.insert(
            "info".to_string(),
            json!({
                "pid": 42,
                "runtimeSpec": {"process": {"env": ["PATH=/bin", "TOKEN=s3cret"], "args": ["sh"]}},
                "config": {"envs": [{"key": "TOKEN", "value": "s3cret"}], "metadata": {"name": "app"}},
            })
            .to_string(),
        );
        let redacted = verbose_info(&info, false);
        let text = redacted.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(
            redacted["runtimeSpec"]["process"]["env"][1],
            "TOKEN=<redacted>"
        );
        assert_eq!(redacted["config"]["envs"][0]["key"], "TOKEN");
        assert_eq!(redacted["config"]["envs"][0]["value"], "<redacted>");
        assert_eq!(redacted["pid"], 42);
        let shown = verbose_info(&info, true);
        assert!(shown.to_string().contains("s3cret"));
    }

    #[test]
    fn verbose_info_that_is_not_json_is_not_shown_unless_asked() {
        let mut info = BTreeMap::new();
        info.insert("note".to_string(), "TOKEN=s3cret {".to_string());
        assert_eq!(verbose_info(&info, false), json!({"note": NOT_SHOWN}));
        assert_eq!(verbose_info(&info, true), json!({"note": "TOKEN=s3cret {"}));
        // Entries beside `info` are kept, and redacted too.
        info.insert(
            "info".to_string(),
            json!({"runtimeSpec": {"hooks": {"prestart": [{"path": "/h", "env": ["K=v1"]}]}}})
                .to_string(),
        );
        info.insert(
            "other".to_string(),
            json!({"config": {"envs": [{"key": "K", "value": "v2"}]}}).to_string(),
        );
        let shown = verbose_info(&info, false);
        let text = shown.to_string();
        assert!(!text.contains("v1") && !text.contains("v2"), "{text}");
        assert_eq!(
            shown["info"]["runtimeSpec"]["hooks"]["prestart"][0]["env"][0],
            "K=<redacted>"
        );
        assert_eq!(shown["note"], NOT_SHOWN);
    }

    #[test]
    fn cri_o_as_it_answers() {
        let info = runtime_info(
            api::VersionResponse {
                version: "0.1.0".into(),
                runtime_name: "cri-o".into(),
                runtime_version: "1.30.4".into(),
                runtime_api_version: "v1".into(),
            },
            "unix:///var/run/crio/crio.sock".into(),
        );
        assert_eq!(
            (info.name.as_str(), info.version.as_str(), info.api.as_str()),
            ("cri-o", "1.30.4", "CRI runtime.v1 v1")
        );

        // CRI-O's verbose info: the OCI spec under `info`, no container config.
        let mut verbose = BTreeMap::new();
        verbose.insert(
            "info".to_string(),
            json!({
                "sandboxID": "5d1d8c0e", "pid": 2817, "privileged": false,
                "runtimeSpec": {"ociVersion": "1.0.2-dev", "process": {
                    "env": ["PATH=/usr/bin", "HOSTNAME=web-0", "DB_PASSWORD=hunter2"],
                    "args": ["nginx", "-g", "daemon off;"]}}
            })
            .to_string(),
        );
        let redacted = verbose_info(&verbose, false);
        assert!(!redacted.to_string().contains("hunter2"), "{redacted}");
        assert_eq!(
            redacted["runtimeSpec"]["process"]["env"][2],
            "DB_PASSWORD=<redacted>"
        );
        assert_eq!(redacted["pid"], 2817);

        // CRI-O names a container's image by repository digest (`imageRef`), and newer
        // releases by ID too (`imageId`); either finds the image's ID.
        let runtime = CriRuntime::new(CriClient::new("/nonexistent/crio.sock"), false);
        let id = format!("sha256:{}", "a1".repeat(32));
        runtime.listed.lock().images = vec![api::Image {
            id: id.clone(),
            repo_tags: vec!["docker.io/library/nginx:1.27".into()],
            repo_digests: vec![format!(
                "docker.io/library/nginx@sha256:{}",
                "b2".repeat(32)
            )],
            ..Default::default()
        }];
        let digest = format!("docker.io/library/nginx@sha256:{}", "b2".repeat(32));
        assert_eq!(runtime.image_id(&digest, "nginx:1.27"), id);
        assert_eq!(runtime.image_id(&id, ""), id);
        assert_eq!(runtime.image_id("", "docker.io/library/nginx:1.27"), id);
        assert_eq!(runtime.image_id("", "other:1"), "");
        // An ID the list does not have is taken as given, not traded for a tag's image.
        let gone = format!("sha256:{}", "c3".repeat(32));
        assert_eq!(
            runtime.image_id(&gone, "docker.io/library/nginx:1.27"),
            gone
        );
        assert_eq!(
            runtime.image_id("unknown@sha256:00", "docker.io/library/nginx:1.27"),
            ""
        );
    }

    #[test]
    fn zero_times_read_as_dockers_zero_time() {
        assert_eq!(time(0), "0001-01-01T00:00:00Z");
        assert_eq!(time(1_700_000_000_123_456_789), "2023-11-14T22:13:20.123Z");
    }
}
