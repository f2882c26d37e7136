//! The Docker Engine API as the collector reads it: four read-only calls, through a node's
//! minion (TCP) or a local daemon socket, and the parsers of their answers. The only code
//! that knows Docker's JSON and its status texts.
//!
//! Container inspects are redacted here, at the edge, before anything else sees them:
//! `Config.Env` values are replaced (they hold secrets) unless the operator asked for them,
//! and `ExecIDs` becomes its length (exec probes grow it without bound).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{Cause, Listed, NodeRuntime, RuntimeError, RuntimeInfo};
use crate::collect::ParseError;
use crate::graph::fingerprint;
use crate::graph::observed::{Container, Image, Process};
use crate::http::{Client, ClientConfig, Endpoint};
use cluster_insight_wire::percent;

/// Keys of a container inspect that change while the container does not: the exec list
/// grows with every exec probe, the health log rotates on every health check.
pub(crate) const INSPECT_VOLATILE: &[&str] = &["ExecIDs", "Log", "FailingStreak"];

/// Columns of a `top` row that are readings rather than state.
pub(crate) const PROCESS_VOLATILE: &[&str] = &["%CPU", "%MEM", "VSZ", "RSS", "TIME", "STAT", "C"];

/// Where the Docker daemon listens unless told otherwise.
pub(crate) const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// A node's runtime read through the Docker Engine API.
pub(crate) struct DockerRuntime {
    client: Client,
    show_env: bool,
}

impl DockerRuntime {
    pub(crate) fn new(client: Client, show_env: bool) -> DockerRuntime {
        DockerRuntime { client, show_env }
    }

    /// GETs `path`; `call` names it in errors.
    fn get_text(&self, call: &dyn Fn() -> String, path: &str) -> Result<String, RuntimeError> {
        let fail = |cause| RuntimeError {
            call: call(),
            cause,
        };
        let response = self
            .client
            .get(path)
            .map_err(|e| fail(Cause::Transport(e)))?;
        let text = String::from_utf8(response.body)
            .map_err(|_| fail(Cause::Parse(ParseError::new(path, "body is not UTF-8"))))?;
        match response.status {
            200..=299 => Ok(text),
            404 => Err(fail(Cause::NotFound)),
            code => Err(fail(Cause::Status {
                code,
                message: error_message(&text),
            })),
        }
    }

    /// GETs `path` and parses the answer; `call` names it in errors.
    fn get<T>(
        &self,
        call: &dyn Fn() -> String,
        path: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, RuntimeError> {
        let text = self.get_text(call, path)?;
        parse(&text).map_err(|e| RuntimeError {
            call: call(),
            cause: Cause::Parse(e),
        })
    }
}

impl NodeRuntime for DockerRuntime {
    fn endpoint(&self) -> String {
        self.client.endpoint().to_string()
    }

    fn describe(&self) -> Result<RuntimeInfo, RuntimeError> {
        #[derive(Deserialize)]
        struct Version {
            #[serde(rename = "Version", default)]
            version: String,
            #[serde(rename = "ApiVersion", default)]
            api_version: String,
        }
        let version = self.get(
            &|| format!("GET /version at {}", self.client.endpoint()),
            "/version",
            |text| {
                serde_json::from_str::<Version>(text).map_err(|e| ParseError::new("/version", e))
            },
        )?;
        Ok(RuntimeInfo {
            name: "docker".to_string(),
            version: version.version,
            api: format!("Docker Engine API {}", version.api_version),
            endpoint: self.client.endpoint().to_string(),
        })
    }

    fn tells_processes(&self) -> bool {
        true
    }

    fn list(&self) -> Result<Vec<Listed>, RuntimeError> {
        let listed = self.get(
            &|| format!("GET /containers/json at {}", self.client.endpoint()),
            "/containers/json",
            parse_container_list,
        )?;
        Ok(listed.into_iter().map(listed_state).collect())
    }

    fn inspect(&self, id: &str) -> Result<Container, RuntimeError> {
        self.get(
            &|| format!("inspect of container {id}"),
            &format!("/containers/{}/json", encode_id(id)),
            |text| parse_container_inspect(text, self.show_env),
        )
    }

    fn processes(&self, container: &Container) -> Result<Option<Vec<Process>>, RuntimeError> {
        let id = &container.id;
        let path = format!("/containers/{}/top?ps_args=aux", encode_id(id));
        match self.get(&|| format!("top of container {id}"), &path, parse_top) {
            Ok(rows) => Ok(Some(rows)),
            // Gone, or stopped since the list: it has no processes to show.
            Err(RuntimeError {
                cause: Cause::NotFound | Cause::Status { code: 409, .. },
                ..
            }) => Ok(Some(Vec::new())),
            Err(e) => Err(e),
        }
    }

    fn image(&self, id: &str) -> Result<Image, RuntimeError> {
        self.get(
            &|| format!("inspect of image {id}"),
            &format!("/images/{}/json", encode_id(id)),
            parse_image,
        )
    }
}

/// IDs come from the daemon, but we still never let one change the shape of the path.
fn encode_id(id: &str) -> String {
    percent::encode(id, b":")
}

/// Docker's error bodies are `{"message": "..."}`; anything else is quoted, shortened.
fn error_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct DockerMessage {
        message: String,
    }
    match serde_json::from_str::<DockerMessage>(body) {
        Ok(m) => m.message,
        Err(_) => body.chars().take(200).collect(),
    }
}

/// A list entry as the collector's cache reads it: Docker's `State` and the shape of its
/// `Status` text are the state (`running` and `Up (healthy)`), the duration in the text
/// is the age.
pub(crate) fn listed_state(entry: ListedContainer) -> Listed {
    let status = split_status(&entry.status);
    Listed {
        id: entry.id,
        state: format!("{} / {}", entry.state, status.shape),
        age_at_most_secs: status.age_upper_bound_secs,
    }
}

/// The image and image ID of the container `id`, looked up through the daemon at
/// `endpoint`, for `/version`: `(Config.Image, Image)`.
/// `bearer`: what the local minion asks of its callers, when it is the minion that answers.
pub(crate) fn image_of_container(
    endpoint: Endpoint,
    id: &str,
    bearer: Option<crate::http::Bearer>,
) -> Option<(String, String)> {
    let config = ClientConfig {
        connect_timeout: std::time::Duration::from_secs(1),
        io_timeout: std::time::Duration::from_secs(2),
        request_timeout: std::time::Duration::from_secs(3),
        max_body: 4 << 20,
        bearer,
    };
    let client = Client::new(endpoint, config);
    let response = client
        .get(&format!("/containers/{}/json", encode_id(id)))
        .ok()?;
    if response.status != 200 {
        return None;
    }
    let value: Value = serde_json::from_slice(&response.body).ok()?;
    let name = value.get("Config")?.get("Image")?.as_str()?.to_string();
    let image_id = value.get("Image")?.as_str()?.to_string();
    Some((name, image_id))
}

/// Whether a daemon socket exists at `path`.
pub(crate) fn socket_exists(path: &Path) -> bool {
    std::fs::metadata(path).is_ok()
}

/// One entry of `/containers/json`: only what decides whether a cached inspect is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedContainer {
    pub id: String,
    /// `running`, `exited`, … (absent in old daemons: empty).
    pub(crate) state: String,
    /// `Up 2 hours`, `Exited (0) 5 minutes ago`, …
    pub(crate) status: String,
}

pub fn parse_container_list(text: &str) -> Result<Vec<ListedContainer>, ParseError> {
    // Only three fields of each entry matter, and every node's list is read at every
    // refresh: the rest is skipped, never built into trees. Entries are read one by one,
    // so a malformed entry costs that container, not the node's.
    #[derive(Deserialize)]
    struct Entry<'a> {
        #[serde(rename = "Id", default, borrow)]
        id: Option<&'a RawValue>,
        #[serde(rename = "State", default, borrow)]
        state: Option<&'a RawValue>,
        #[serde(rename = "Status", default, borrow)]
        status: Option<&'a RawValue>,
    }
    fn string(raw: Option<&RawValue>) -> Option<String> {
        raw.filter(|r| r.get().starts_with('"'))
            .and_then(|r| serde_json::from_str(r.get()).ok())
    }
    let entries: Option<Vec<&RawValue>> =
        serde_json::from_str(text).map_err(|e| ParseError::new("container list", e))?;
    let mut seen = std::collections::HashSet::new();
    let mut skipped = 0usize;
    let mut out = Vec::new();
    for raw in entries.unwrap_or_default() {
        let entry = serde_json::from_str::<Entry>(raw.get()).ok();
        let Some((entry, id)) = entry
            .and_then(|e| string(e.id).map(|id| (e, id)))
            .filter(|(_, id)| !id.is_empty())
        else {
            skipped += 1;
            continue;
        };
        if seen.insert(id.clone()) {
            out.push(ListedContainer {
                id,
                state: string(entry.state).unwrap_or_default(),
                status: string(entry.status).unwrap_or_default(),
            });
        }
    }
    if skipped > 0 {
        log::warn!("container list: skipped {skipped} malformed entries (no string Id)");
    }
    Ok(out)
}

/// Parses a container inspect and redacts it (see the module comment).
pub fn parse_container_inspect(text: &str, show_env: bool) -> Result<Container, ParseError> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|e| ParseError::new("container inspect", e))?;
    redact_inspect(&mut value, show_env);
    let obj = value
        .as_object()
        .ok_or_else(|| ParseError::new("container inspect", "not a JSON object"))?;
    let str_at = |path: &[&str]| -> String {
        let mut v = Some(&value);
        for key in path {
            v = v.and_then(|x| x.get(key));
        }
        v.and_then(Value::as_str).unwrap_or_default().to_string()
    };
    let id = str_at(&["Id"]);
    if id.is_empty() {
        return Err(ParseError::new("container inspect", "no Id"));
    }
    let labels = obj
        .get("Config")
        .and_then(|c| c.get("Labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect::<BTreeMap<_, _>>()
        })
        .unwrap_or_default();
    let running = value
        .get("State")
        .and_then(|s| s.get("Running"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let raw = serde_json::to_string(&value).map_err(|e| ParseError::new("container inspect", e))?;
    let fingerprint = fingerprint::ignoring(&raw, INSPECT_VOLATILE)
        .map_err(|e| ParseError::new("container inspect", e))?;
    Ok(Container {
        name: str_at(&["Name"]).trim_start_matches('/').to_string(),
        image_id: str_at(&["Image"]),
        started_at: str_at(&["State", "StartedAt"]),
        finished_at: str_at(&["State", "FinishedAt"]),
        id,
        labels,
        running,
        sandbox: false,
        raw: Arc::from(raw),
        fingerprint,
    })
}

/// `Config.Env` values become `NAME=<redacted>` unless `show_env`; `ExecIDs` becomes its
/// length. Everything else is left as it was.
pub(crate) fn redact_inspect(value: &mut Value, show_env: bool) {
    if !show_env {
        redact_env(value);
    }
    if let Some(exec_ids) = value.get_mut("ExecIDs") {
        let count = exec_ids.as_array().map_or(0, Vec::len);
        *exec_ids = Value::from(count);
    }
}

/// `Config.Env` values of a container inspect become `NAME=<redacted>`.
pub(crate) fn redact_env(inspect: &mut Value) {
    if let Some(env) = inspect
        .get_mut("Config")
        .and_then(|c| c.get_mut("Env"))
        .and_then(Value::as_array_mut)
    {
        redact_env_list(env);
    }
}

/// Every `NAME=VALUE` string of `env` becomes `NAME=<redacted>`; anything else is replaced
/// whole. (Docker's and CRI's runtime specs list the environment alike.)
pub(crate) fn redact_env_list(env: &mut [Value]) {
    for entry in env.iter_mut() {
        let redacted = match entry.as_str() {
            Some(text) => match text.split_once('=') {
                Some((name, _)) => format!("{name}=<redacted>"),
                None => text.to_string(),
            },
            None => "<redacted>".to_string(),
        };
        *entry = Value::String(redacted);
    }
}

/// `{"Titles": [...], "Processes": [[...], ...]}` → one map of title to value per row.
/// Rows whose width differs from the titles are kept as far as they go; a row without a
/// PID is dropped, since a process has no identity without one. Values are copied as the
/// daemon wrote them, never parsed into trees: `top` is the one call made for every running
/// container at every refresh.
pub fn parse_top(text: &str) -> Result<Vec<Process>, ParseError> {
    #[derive(Deserialize)]
    struct Top<'a> {
        #[serde(rename = "Titles", default)]
        titles: Option<Vec<String>>,
        #[serde(rename = "Processes", default, borrow)]
        processes: Option<Vec<Vec<&'a RawValue>>>,
    }
    let top: Top = serde_json::from_str(text).map_err(|e| ParseError::new("top", e))?;
    let titles = top.titles.unwrap_or_default();
    let pid_column = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ParseError::new("top", "no PID column"))?;
    let titles_json: Vec<String> = titles.iter().map(|t| json_string(t)).collect();
    let volatile: Vec<bool> = titles
        .iter()
        .map(|t| PROCESS_VOLATILE.contains(&t.as_str()))
        .collect();
    let mut out = Vec::new();
    for row in top.processes.unwrap_or_default() {
        let pid = match row.get(pid_column).map(|v| v.get()) {
            Some(v) if v.starts_with('"') => match serde_json::from_str::<String>(v) {
                Ok(p) if !p.is_empty() => p,
                _ => continue,
            },
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v.to_string(),
            _ => continue,
        };
        // Titles in the order Docker gave them, as JSON objects keep them.
        let mut raw = String::with_capacity(row.iter().map(|v| v.get().len() + 12).sum());
        let mut hash = fingerprint::Fnv64::default();
        raw.push('{');
        for (i, (title, value)) in titles_json.iter().zip(&row).enumerate() {
            if i > 0 {
                raw.push(',');
            }
            raw.push_str(title);
            raw.push(':');
            raw.push_str(value.get());
            if !volatile[i] {
                std::hash::Hasher::write(&mut hash, title.as_bytes());
                std::hash::Hasher::write(&mut hash, value.get().as_bytes());
            }
        }
        raw.push('}');
        out.push(Process {
            pid,
            raw: Arc::from(raw),
            fingerprint: std::hash::Hasher::finish(&hash),
        });
    }
    Ok(out)
}

/// One process row as an object of column title to value (a row of the agent's `/node`
/// document): `None` without a `PID`, since a process has no identity without one.
pub(crate) fn process_from_row(row: &str) -> Option<Process> {
    #[derive(Deserialize)]
    struct Pid<'a> {
        #[serde(rename = "PID", borrow)]
        pid: &'a RawValue,
    }
    let pid = serde_json::from_str::<Pid>(row).ok()?.pid.get();
    let pid = match serde_json::from_str::<Value>(pid).ok()? {
        Value::String(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p,
        Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return None,
    };
    process_with_pid(pid, row)
}

/// A process row whose PID is known already (the agent's own `/proc` rows).
pub(crate) fn process_with_pid(pid: String, row: &str) -> Option<Process> {
    let fingerprint = fingerprint::ignoring(row, PROCESS_VOLATILE).ok()?;
    Some(Process {
        pid,
        raw: Arc::from(row),
        fingerprint,
    })
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

pub fn parse_image(text: &str) -> Result<Image, ParseError> {
    #[derive(Deserialize)]
    struct Fields {
        #[serde(rename = "Id", alias = "id", default)]
        id: Option<String>,
        // Read leniently: a malformed name must not cost the image itself.
        #[serde(rename = "RepoTags", default)]
        repo_tags: Value,
        #[serde(rename = "RepoDigests", default)]
        repo_digests: Value,
    }
    let strings = |v: Value| -> Vec<String> {
        match v {
            Value::Array(list) => list
                .into_iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let fields: Fields =
        serde_json::from_str(text).map_err(|e| ParseError::new("image inspect", e))?;
    let id = fields
        .id
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ParseError::new("image inspect", "no Id"))?;
    let name = strings(fields.repo_tags)
        .into_iter()
        .find(|t| t != "<none>:<none>")
        .or_else(|| {
            strings(fields.repo_digests)
                .into_iter()
                .next()
                .map(|d| d.split('@').next().unwrap_or_default().to_string())
        })
        .unwrap_or_default();
    let fingerprint = fingerprint::plain(text).map_err(|e| ParseError::new("image inspect", e))?;
    Ok(Image {
        id,
        name,
        raw: Arc::from(text.trim()),
        fingerprint,
    })
}

/// A container list entry's `Status` taken apart: its shape with the duration left out
/// (`Up 2 hours (healthy)` → `Up (healthy)`, `Exited (0) 3 days ago` → `Exited (0) ago`)
/// and the most that duration can be, in seconds, rounded the way Docker rounds it. Two
/// refreshes of an unchanged container give the same shape and a consistent duration; a
/// restart, an exit or a health change shows in one or the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusParts {
    pub(crate) shape: String,
    pub(crate) age_upper_bound_secs: Option<u64>,
}

pub(crate) fn split_status(status: &str) -> StatusParts {
    let words: Vec<&str> = status.split_whitespace().collect();
    for start in 0..words.len() {
        if let Some((len, bound)) = duration_at(&words[start..]) {
            let mut shape: Vec<&str> = words[..start].to_vec();
            shape.extend_from_slice(&words[start + len..]);
            return StatusParts {
                shape: shape.join(" "),
                age_upper_bound_secs: Some(bound),
            };
        }
    }
    StatusParts {
        shape: words.join(" "),
        age_upper_bound_secs: None,
    }
}

/// A duration phrase at the start of `words` (`5 seconds`, `About a minute`, `Less than a
/// second`, `2 hours`): how many words it takes and its upper bound in seconds.
fn duration_at(words: &[&str]) -> Option<(usize, u64)> {
    let lower: Vec<String> = words
        .iter()
        .take(4)
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    if lower.starts_with(&["less", "than", "a", "second"]) {
        return Some((4, 1));
    }
    let (count, unit, len) = match lower.as_slice() {
        ["about", "a" | "an", unit, ..] => (1u64, *unit, 3),
        [n, unit, ..] => (n.parse::<u64>().ok()?, *unit, 2),
        _ => return None,
    };
    let unit_secs: u64 = match unit.trim_end_matches('s') {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 7 * 86_400,
        "month" => 31 * 86_400,
        "year" => 366 * 86_400,
        _ => return None,
    };
    // Docker prints "About a minute" up to two minutes and floors everything else. The
    // count comes from the network: an absurd one saturates rather than overflows.
    Some((len, count.saturating_add(1).saturating_mul(unit_secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_is_redacted_and_exec_ids_counted() {
        let text = r#"{"Id":"abc","Name":"/k8s_app_p_ns_uid_0","Image":"sha256:1",
            "State":{"Running":true,"StartedAt":"2026-01-01T00:00:00Z"},
            "Config":{"Image":"nginx:1.27","Env":["PASSWORD=hunter2","PATH=/bin","WEIRD"],
            "Labels":{"a":"b"}},"ExecIDs":["e1","e2","e3"]}"#;
        let c = parse_container_inspect(text, false).unwrap();
        assert!(!c.raw.contains("hunter2"));
        assert!(c.raw.contains(r#""PASSWORD=<redacted>""#));
        assert!(c.raw.contains(r#""WEIRD""#));
        assert!(c.raw.contains(r#""ExecIDs":3"#));
        assert_eq!(c.name, "k8s_app_p_ns_uid_0");
        assert_eq!(c.image_id, "sha256:1");
        assert!(c.running);
        let shown = parse_container_inspect(text, true).unwrap();
        assert!(shown.raw.contains("PASSWORD=hunter2"));
    }

    #[test]
    fn exec_probes_do_not_change_the_fingerprint() {
        let a = parse_container_inspect(r#"{"Id":"x","ExecIDs":["1"]}"#, false).unwrap();
        let b = parse_container_inspect(r#"{"Id":"x","ExecIDs":["1","2"]}"#, false).unwrap();
        let c = parse_container_inspect(r#"{"Id":"x","ExecIDs":null,"State":{}}"#, false).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
    }

    #[test]
    fn top_rows_become_maps() {
        let text = r#"{"Titles":["USER","PID","%CPU","COMMAND"],
            "Processes":[["root","1","0.5","sleep 1"],["root","","0","x"],["root","7"]]}"#;
        let rows = parse_top(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].pid, "1");
        assert_eq!(
            &*rows[0].raw,
            r#"{"USER":"root","PID":"1","%CPU":"0.5","COMMAND":"sleep 1"}"#
        );
        assert_eq!(&*rows[1].raw, r#"{"USER":"root","PID":"7"}"#);
        assert!(parse_top(r#"{"Titles":["USER"],"Processes":[["x"]]}"#).is_err());
        assert!(parse_top(r#"{"Titles":"x"}"#).is_err());
    }

    #[test]
    fn process_readings_do_not_change_the_fingerprint() {
        let row = |cpu: &str, cmd: &str| {
            let text = format!(
                r#"{{"Titles":["PID","%CPU","TIME","COMMAND"],"Processes":[["1","{cpu}","0:0{cpu}","{cmd}"]]}}"#
            );
            parse_top(&text).unwrap()[0].fingerprint
        };
        assert_eq!(row("1", "sleep"), row("2", "sleep"));
        assert_ne!(row("1", "sleep"), row("1", "sh"));
        // Numbers are rows' values too, and escapes survive as the daemon wrote them.
        let rows = parse_top(r#"{"Titles":["PID","C"],"Processes":[[42,"a\"b"]]}"#).unwrap();
        assert_eq!(
            (rows[0].pid.as_str(), &*rows[0].raw),
            ("42", r#"{"PID":42,"C":"a\"b"}"#)
        );
    }

    #[test]
    fn a_malformed_list_entry_costs_only_itself() {
        let l = parse_container_list(
            r#"[{"Id":5},{"Id":"b","State":7,"Labels":{"x":[1]}},3,"x",{"Id":"c","Status":"Up 1 second"},{"Id":""}]"#,
        )
        .unwrap();
        let ids: Vec<&str> = l.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(
            (l[0].state.as_str(), l[1].status.as_str()),
            ("", "Up 1 second")
        );
        assert_eq!(
            parse_container_list(r#"[{"Id":"a\u0062"}]"#).unwrap()[0].id,
            "ab"
        );
    }

    #[test]
    fn list_drops_duplicates_and_accepts_null() {
        let l = parse_container_list(
            r#"[{"Id":"a","State":"running","Status":"Up 1 second"},{"Id":"a"},{"Id":"b"}]"#,
        )
        .unwrap();
        assert_eq!(l.len(), 2);
        assert!(parse_container_list("null").unwrap().is_empty());
        assert!(parse_container_list(r#"{"Id":"a"}"#).is_err());
    }

    #[test]
    fn image_name_skips_untagged() {
        let i = parse_image(r#"{"Id":"sha256:ab","RepoTags":["<none>:<none>"],"RepoDigests":["busybox@sha256:cd"]}"#).unwrap();
        assert_eq!(i.name, "busybox");
        assert!(parse_image(r#"{"RepoTags":[]}"#).is_err());
    }

    #[test]
    fn statuses_split_into_shape_and_age() {
        let parts = |s: &str| {
            let p = split_status(s);
            (p.shape, p.age_upper_bound_secs)
        };
        assert_eq!(parts("Up Less than a second"), ("Up".into(), Some(1)));
        assert_eq!(parts("Up 5 seconds"), ("Up".into(), Some(6)));
        assert_eq!(parts("Up About a minute"), ("Up".into(), Some(120)));
        assert_eq!(
            parts("Up 2 hours (healthy)"),
            ("Up (healthy)".into(), Some(3 * 3600))
        );
        assert_eq!(
            parts("Up About an hour (Paused)"),
            ("Up (Paused)".into(), Some(7200))
        );
        assert_eq!(
            parts("Exited (0) 2 hours ago"),
            ("Exited (0) ago".into(), Some(3 * 3600))
        );
        assert_eq!(
            parts("Restarting (1) 5 seconds ago"),
            ("Restarting (1) ago".into(), Some(6))
        );
        assert_eq!(parts("Created"), ("Created".into(), None));
        assert_eq!(parts("Up forever"), ("Up forever".into(), None));
        assert_eq!(
            parts("Up 18446744073709551615 years"),
            ("Up".into(), Some(u64::MAX)),
            "an absurd count saturates"
        );
    }

    #[test]
    fn ids_cannot_reshape_paths() {
        assert_eq!(encode_id("sha256:ab"), "sha256:ab");
        assert_eq!(encode_id("../x?y"), "..%2Fx%3Fy");
    }

    #[test]
    fn list_entries_become_states_and_ages() {
        let l = listed_state(ListedContainer {
            id: "a".into(),
            state: "running".into(),
            status: "Up 2 hours (healthy)".into(),
        });
        assert_eq!(
            (l.state.as_str(), l.age_at_most_secs),
            ("running / Up (healthy)", Some(3 * 3600))
        );
    }
}
