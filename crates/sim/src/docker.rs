//! The simulated Docker Engine API of one node: `/containers/json`, container inspect,
//! `top`, image inspect, `/version` and `/_ping`, with Docker's lookup rules (full ID,
//! name, unique ID prefix) and its `{"message": ...}` errors.
//!
//! Bodies are rendered on each request from the model: a node holds tens of containers, so
//! this is cheap, and a thousand nodes' worth of cached inspects would not be.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::agent;
use super::latency::NodeCall;
use super::model::{
    human_duration, wall_clock_millis, Cluster, Container, Image, Node, Runtime, PAUSE_IMAGE,
};
use cluster_insight_wire::percent;
use cluster_insight_wire::time::rfc3339_millis;

use super::server::{Counters, NodeDocument, Request, Response, Shared};

const API_VERSION: &str = "1.43";

/// Docker's nanosecond timestamps.
pub(crate) fn docker_time(millis: i64) -> String {
    let text = rfc3339_millis(millis);
    format!(
        "{}{:06}Z",
        text.trim_end_matches('Z'),
        (millis.rem_euclid(997) * 1009) % 1_000_000
    )
}

fn message(status: u16, text: &str) -> Response {
    let mut response = Response::json(status, json!({ "message": text }).to_string());
    add_headers(&mut response);
    response
}

fn add_headers(response: &mut Response) {
    response.headers.push(("Api-Version", API_VERSION.into()));
    response
        .headers
        .push(("Docker-Experimental", "false".into()));
    response.headers.push(("Ostype", "linux".into()));
    response
        .headers
        .push(("Server", "Docker/24.0.7 (linux)".into()));
}

fn ok(value: &Value) -> Response {
    let mut response = Response::json(200, value.to_string());
    add_headers(&mut response);
    response
}

/// The answer of the `Status(code)` fault.
pub(crate) fn fault_status(code: u16) -> Response {
    match code {
        404 => message(404, "page not found"),
        _ => message(code, "simulated daemon failure: context deadline exceeded"),
    }
}

/// Strips an optional `/v1.NN` API version prefix.
fn unversioned(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let version = &rest[..end];
        if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return &rest[end..];
        }
    }
    path
}

enum Route {
    /// The node agent's `GET /node`.
    Node,
    Ping,
    Version,
    List,
    Inspect(String),
    Top(String),
    Image(String),
    Unknown,
}

fn route(path: &str) -> Route {
    let path = unversioned(path);
    match path {
        "/_ping" => return Route::Ping,
        "/node" => return Route::Node,
        "/version" => return Route::Version,
        "/containers/json" => return Route::List,
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/containers/") {
        if let Some(id) = rest
            .strip_suffix("/json")
            .filter(|id| !id.is_empty() && !id.contains('/'))
        {
            return percent::decode_utf8(id).map_or(Route::Unknown, Route::Inspect);
        }
        if let Some(id) = rest
            .strip_suffix("/top")
            .filter(|id| !id.is_empty() && !id.contains('/'))
        {
            return percent::decode_utf8(id).map_or(Route::Unknown, Route::Top);
        }
    }
    // Image names may hold slashes: /images/registry.k8s.io/pause:3.9/json.
    if let Some(name) = path
        .strip_prefix("/images/")
        .and_then(|r| r.strip_suffix("/json"))
        .filter(|n| !n.is_empty())
    {
        return percent::decode_utf8(name).map_or(Route::Unknown, Route::Image);
    }
    Route::Unknown
}

/// The kind of call a path is, for its latency.
pub(crate) fn call_kind(path: &str) -> Option<NodeCall> {
    match route(path) {
        Route::List => Some(NodeCall::List),
        Route::Inspect(_) => Some(NodeCall::Inspect),
        Route::Top(_) => Some(NodeCall::Top),
        Route::Image(_) => Some(NodeCall::Image),
        Route::Node => Some(NodeCall::Node),
        Route::Ping | Route::Version | Route::Unknown => None,
    }
}

/// Counts the request by kind (before any fault applies).
pub(crate) fn count(counters: &Counters, req: &Request) {
    use std::sync::atomic::Ordering::Relaxed;
    let counter = match route(&req.path) {
        Route::List => &counters.docker_list,
        Route::Inspect(_) => &counters.docker_inspect,
        Route::Top(_) => &counters.docker_top,
        Route::Image(_) => &counters.docker_image,
        Route::Node => &counters.node_document,
        Route::Ping | Route::Version | Route::Unknown => &counters.docker_other,
    };
    counter.fetch_add(1, Relaxed);
}

/// Docker's lookup: full ID, then name, then unique ID prefix.
pub(crate) fn find_container<'a>(node: &'a Node, key: &str) -> Option<&'a Container> {
    if let Some(c) = node.containers.iter().find(|c| c.id == key) {
        return Some(c);
    }
    let name = key.strip_prefix('/').unwrap_or(key);
    if let Some(c) = node.containers.iter().find(|c| c.name == name) {
        return Some(c);
    }
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut matches = node.containers.iter().filter(|c| c.id.starts_with(key));
    let first = matches.next()?;
    matches.next().is_none().then_some(first)
}

fn find_image<'a>(cluster: &'a Cluster, node: &Node, key: &str) -> Option<&'a Image> {
    let mut on_node: Vec<usize> = node.containers.iter().map(|c| c.image).collect();
    on_node.sort_unstable();
    on_node.dedup();
    let images = || on_node.iter().map(|&i| &cluster.images[i]);
    if let Some(image) = images().find(|i| {
        i.id == key || (!i.tag.is_empty() && (i.tag == key || format!("{}:latest", key) == i.tag))
    }) {
        return Some(image);
    }
    let hex = key.strip_prefix("sha256:").unwrap_or(key);
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut matches = images().filter(|i| i.id["sha256:".len()..].starts_with(hex));
    let first = matches.next()?;
    matches.next().is_none().then_some(first)
}

pub(crate) fn labels(c: &Container) -> Value {
    let mut map = Map::new();
    if let Some(pod) = c.pod.as_ref().filter(|_| c.labeled()) {
        map.insert(
            "io.kubernetes.container.name".into(),
            json!(pod.container_name),
        );
        map.insert("io.kubernetes.pod.name".into(), json!(pod.pod_name));
        map.insert("io.kubernetes.pod.namespace".into(), json!(pod.namespace));
        map.insert("io.kubernetes.pod.uid".into(), json!(pod.uid));
        if c.sandbox {
            map.insert("io.kubernetes.docker.type".into(), json!("podsandbox"));
            map.insert(
                "annotation.kubernetes.io/config.source".into(),
                json!("api"),
            );
        } else {
            map.insert("io.kubernetes.docker.type".into(), json!("container"));
            map.insert("io.kubernetes.sandbox.id".into(), json!(pod.sandbox_id));
            map.insert(
                "io.kubernetes.container.logpath".into(),
                json!(format!(
                    "/var/log/pods/{}_{}_{}/{}/{}.log",
                    pod.namespace, pod.pod_name, pod.uid, pod.container_name, c.attempt
                )),
            );
            map.insert(
                "annotation.io.kubernetes.container.restartCount".into(),
                json!(c.attempt.to_string()),
            );
            map.insert(
                "annotation.io.kubernetes.container.terminationMessagePath".into(),
                json!("/dev/termination-log"),
            );
        }
    }
    if c.pod.is_none() {
        map.insert("com.example.role".into(), json!("host-agent"));
    }
    Value::Object(map)
}

pub(crate) fn image_name(image: &Image) -> String {
    if image.tag.is_empty() {
        image.id.clone()
    } else {
        image.tag.clone()
    }
}

pub(crate) fn summary(cluster: &Cluster, c: &Container) -> Value {
    let image = &cluster.images[c.image];
    json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": image_name(image),
        "ImageID": image.id,
        "Command": c.cmd.join(" "),
        "Created": c.created / 1000,
        "Ports": [],
        "Labels": labels(c),
        "State": "running",
        // Docker computes the uptime when asked, from its own clock.
        "Status": format!("Up {}", human_duration(wall_clock_millis().max(cluster.now) - c.started)),
        "HostConfig": {"NetworkMode": network_mode(c)},
        "NetworkSettings": {"Networks": if c.sandbox || c.pod.is_none() { json!({"bridge": bridge(c)}) } else { json!({}) }},
        "Mounts": mounts(c),
    })
}

fn network_mode(c: &Container) -> String {
    match &c.pod {
        Some(pod) if !c.sandbox => format!("container:{}", pod.sandbox_id),
        _ => "bridge".into(),
    }
}

fn bridge(c: &Container) -> Value {
    let n = u32::from_str_radix(&c.id[..6], 16).unwrap_or(2);
    json!({
        "IPAMConfig": null, "Links": null, "Aliases": null,
        "NetworkID": format!("{:064x}", 0x5151_u64),
        "EndpointID": format!("{}{}", &c.id[32..], &c.id[..32]),
        "Gateway": "172.17.0.1", "IPAddress": format!("172.17.{}.{}", (n >> 8) % 255, 2 + n % 250),
        "IPPrefixLen": 16, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "MacAddress": format!("02:42:ac:11:{:02x}:{:02x}", (n >> 8) % 255, 2 + n % 250), "DriverOpts": null
    })
}

fn mounts(c: &Container) -> Value {
    match &c.pod {
        Some(pod) if !c.sandbox => json!([
            {"Type": "bind", "Source": format!("/var/lib/kubelet/pods/{}/volumes/kubernetes.io~projected/kube-api-access", pod.uid),
             "Destination": "/var/run/secrets/kubernetes.io/serviceaccount", "Mode": "ro", "RW": false, "Propagation": "rprivate"},
            {"Type": "bind", "Source": format!("/var/lib/kubelet/pods/{}/etc-hosts", pod.uid),
             "Destination": "/etc/hosts", "Mode": "", "RW": true, "Propagation": "rprivate"}
        ]),
        Some(_) => json!([]),
        None => {
            json!([{"Type": "volume", "Name": format!("{}-data", c.name), "Source": format!("/var/lib/docker/volumes/{}-data/_data", c.name),
            "Destination": "/data", "Driver": "local", "Mode": "z", "RW": true, "Propagation": ""}])
        }
    }
}

fn host_config(c: &Container) -> Value {
    json!({
        "Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}},
        "NetworkMode": network_mode(c), "PortBindings": {}, "RestartPolicy": {"Name": if c.pod.is_some() { "no" } else { "unless-stopped" }, "MaximumRetryCount": 0},
        "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null, "CapAdd": null, "CapDrop": null,
        "CgroupnsMode": "private", "Dns": null, "DnsOptions": null, "DnsSearch": null, "ExtraHosts": null,
        "IpcMode": if c.sandbox { "shareable".to_string() } else { network_mode(c) }, "OomScoreAdj": if c.sandbox { -998 } else { 968 },
        "PidMode": "", "Privileged": false, "PublishAllPorts": false, "ReadonlyRootfs": false,
        "SecurityOpt": ["seccomp=unconfined"], "UTSMode": "", "UsernsMode": "", "ShmSize": 67_108_864,
        "Runtime": "runc", "Isolation": "", "CpuShares": if c.sandbox { 2 } else { 102 }, "Memory": if c.sandbox { 0 } else { 268_435_456 },
        "NanoCpus": 0, "CgroupParent": if c.pod.is_some() { "kubepods-burstable.slice" } else { "" }, "CpuPeriod": 100_000, "CpuQuota": 0
    })
}

pub(crate) fn inspect(cluster: &Cluster, c: &Container) -> Value {
    let image = &cluster.images[c.image];
    let root = format!("/var/lib/docker/containers/{}", c.id);
    let hostname = match &c.pod {
        Some(pod) => pod.pod_name.clone(),
        None => c.id[..12].to_string(),
    };
    json!({
        "Id": c.id,
        "Created": docker_time(c.created),
        "Path": c.cmd.first().cloned().unwrap_or_default(),
        "Args": c.cmd.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": "running", "Running": true, "Paused": false, "Restarting": false,
            "OOMKilled": false, "Dead": false, "Pid": c.pid_base, "ExitCode": 0, "Error": "",
            "StartedAt": docker_time(c.started), "FinishedAt": "0001-01-01T00:00:00Z"
        },
        "Image": image.id,
        "ResolvConfPath": format!("{root}/resolv.conf"),
        "HostnamePath": format!("{root}/hostname"),
        "HostsPath": format!("{root}/hosts"),
        "LogPath": format!("{root}/{}-json.log", c.id),
        "Name": format!("/{}", c.name),
        "RestartCount": 0,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "docker-default",
        "ExecIDs": if c.exec_ids.is_empty() { Value::Null } else { json!(c.exec_ids) },
        "HostConfig": host_config(c),
        "GraphDriver": {"Name": "overlay2", "Data": {
            "MergedDir": format!("/var/lib/docker/overlay2/{}/merged", &c.id[..32]),
            "UpperDir": format!("/var/lib/docker/overlay2/{}/diff", &c.id[..32]),
            "WorkDir": format!("/var/lib/docker/overlay2/{}/work", &c.id[..32])
        }},
        "Mounts": mounts(c),
        "Config": {
            "Hostname": hostname, "Domainname": "", "User": if c.sandbox { "65535:65535" } else { "" },
            "AttachStdin": false, "AttachStdout": false, "AttachStderr": false, "Tty": false,
            "OpenStdin": false, "StdinOnce": false,
            "Env": c.env,
            "Cmd": c.cmd,
            "Image": image_name(image),
            "Volumes": null, "WorkingDir": "", "Entrypoint": null, "OnBuild": null,
            "Labels": labels(c),
            "StopSignal": "SIGTERM"
        },
        "NetworkSettings": {
            "Bridge": "", "SandboxID": if c.sandbox || c.pod.is_none() { c.id.clone() } else { String::new() },
            "SandboxKey": if c.sandbox || c.pod.is_none() { format!("/var/run/docker/netns/{}", &c.id[..12]) } else { String::new() },
            "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": {},
            "Networks": if c.sandbox || c.pod.is_none() { json!({"bridge": bridge(c)}) } else { json!({}) }
        }
    })
}

/// The container's processes as `ps aux` rows, with each one's parent (`PPID`, after
/// `PID`, as the node agent reads them from `/proc`): the first process is the container's
/// own, the others its children.
pub(crate) fn ps_aux(c: &Container) -> Vec<Vec<(&'static str, String)>> {
    let start = rfc3339_millis(c.started);
    let hhmm = start.get(11..16).unwrap_or("00:00").to_string();
    // CPU time is fixed per process so that an unchanged cluster answers identically.
    let cpu_time = |i: usize| {
        let seconds = (c.pid_base as usize * 7 + i * 13) % 600;
        format!("{}:{:02}", seconds / 60, seconds % 60)
    };
    let command = |i: usize| {
        if i == 0 {
            c.cmd.join(" ")
        } else {
            format!(
                "{} worker {i}",
                c.cmd.first().map(String::as_str).unwrap_or("app")
            )
        }
    };
    let pid = |i: usize| c.pid_base + if i == 0 { 0 } else { 7 + 3 * i as u32 };
    let user = if c.sandbox { "65535" } else { "root" };
    (0..c.processes)
        .map(|i| {
            vec![
                ("USER", user.to_string()),
                ("PID", pid(i).to_string()),
                (
                    "PPID",
                    if i == 0 {
                        (c.pid_base - 17).to_string()
                    } else {
                        pid(0).to_string()
                    },
                ),
                (
                    "%CPU",
                    format!("{}.{}", i % 3, (c.pid_base as usize + i) % 10),
                ),
                ("%MEM", format!("0.{}", (c.pid_base as usize + 3 * i) % 10)),
                (
                    "VSZ",
                    (4_412 + 1_000 * i + (c.pid_base as usize % 977)).to_string(),
                ),
                (
                    "RSS",
                    (724 + 100 * i + (c.pid_base as usize % 333)).to_string(),
                ),
                ("TTY", "?".into()),
                ("STAT", if i == 0 { "Ss".into() } else { "Sl".into() }),
                ("START", hhmm.clone()),
                ("TIME", cpu_time(i)),
                ("COMMAND", command(i)),
            ]
        })
        .collect()
}

fn top(c: &Container, ps_args: Option<&str>) -> Value {
    let rows = ps_aux(c);
    let column = |row: &[(&'static str, String)], title: &str| {
        row.iter()
            .find(|(t, _)| *t == title)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if ps_args == Some("aux") {
        const TITLES: [&str; 11] = [
            "USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT", "START", "TIME", "COMMAND",
        ];
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|row| TITLES.iter().map(|t| column(row, t)).collect())
            .collect();
        json!({"Titles": TITLES, "Processes": rows})
    } else {
        // Docker's default, `ps -ef`: its own columns from the same processes.
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                vec![
                    column(row, "USER"),
                    column(row, "PID"),
                    column(row, "PPID"),
                    "0".into(),
                    column(row, "START"),
                    column(row, "TTY"),
                    "00:00:01".into(),
                    column(row, "COMMAND"),
                ]
            })
            .collect();
        json!({"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": rows})
    }
}

pub(crate) fn image_inspect(image: &Image, index: usize) -> Value {
    let layers: Vec<String> = (0..3)
        .map(|k| format!("sha256:{:016x}{}", index * 31 + k, &image.id[23..]))
        .collect();
    json!({
        "Id": image.id,
        "RepoTags": if image.tag.is_empty() { json!([]) } else { json!([image.tag]) },
        "RepoDigests": [format!("{}@{}", image.repo, image.digest)],
        "Parent": "",
        "Comment": "buildkit.dockerfile.v0",
        "Created": docker_time(image.created),
        "DockerVersion": "",
        "Author": "",
        "Config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": image.cmd,
            "Entrypoint": null,
            "WorkingDir": if index == PAUSE_IMAGE { "/" } else { "" },
            "Labels": null,
            "User": if index == PAUSE_IMAGE { "65535:65535" } else { "" },
            "ExposedPorts": if index == PAUSE_IMAGE { Value::Null } else { json!({"8080/tcp": {}}) }
        },
        "Architecture": "amd64",
        "Os": "linux",
        "Size": image.size,
        "GraphDriver": {"Name": "overlay2", "Data": {
            "MergedDir": format!("/var/lib/docker/overlay2/{}/merged", &image.id[7..39]),
            "UpperDir": format!("/var/lib/docker/overlay2/{}/diff", &image.id[7..39]),
            "WorkDir": format!("/var/lib/docker/overlay2/{}/work", &image.id[7..39])
        }},
        "RootFS": {"Type": "layers", "Layers": layers},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}
    })
}

fn version() -> Value {
    json!({
        "Platform": {"Name": "Docker Engine - Community"},
        "Components": [{"Name": "Engine", "Version": "24.0.7", "Details": {
            "ApiVersion": API_VERSION, "Arch": "amd64", "BuildTime": "2023-10-26T09:08:02.000000000+00:00",
            "Experimental": "false", "GitCommit": "311b9ff", "GoVersion": "go1.20.10",
            "KernelVersion": "6.1.0-27-amd64", "MinAPIVersion": "1.12", "Os": "linux"}},
            {"Name": "containerd", "Version": "1.6.24", "Details": {"GitCommit": "61f9fd88f79f081d64d6fa3bb1a0dc71ec870523"}},
            {"Name": "runc", "Version": "1.1.9", "Details": {"GitCommit": "v1.1.9-0-gccaecfc"}}],
        "Version": "24.0.7",
        "ApiVersion": API_VERSION,
        "MinAPIVersion": "1.12",
        "GitCommit": "311b9ff",
        "GoVersion": "go1.20.10",
        "Os": "linux",
        "Arch": "amd64",
        "KernelVersion": "6.1.0-27-amd64",
        "BuildTime": "2023-10-26T09:08:02.000000000+00:00"
    })
}

/// The agent's document, with its ETag; 304 when the client has it. Made once per node
/// while the cluster does not change.
fn node_document(
    shared: &Shared,
    cluster: &Cluster,
    node_index: usize,
    node: &Node,
    req: &Request,
) -> Response {
    let generation = shared.generation();
    let cached = shared
        .node_documents
        .lock()
        .get(&node_index)
        .filter(|(made_in, _)| *made_in == generation)
        .map(|(_, document)| Arc::clone(document));
    let document = cached.unwrap_or_else(|| {
        let body = agent::document(cluster, node).to_string();
        // FNV-1a: the same document gets the same tag in every run.
        let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let document = Arc::new(NodeDocument {
            body,
            etag: format!("W/\"{hash:016x}\""),
        });
        shared
            .node_documents
            .lock()
            .insert(node_index, (generation, Arc::clone(&document)));
        document
    });
    let (body, etag) = (&document.body, document.etag.clone());
    // Weak comparison (RFC 9110 §13.1.2), as the agent makes it.
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
    if req
        .header("If-None-Match")
        .is_some_and(|tags| tags.split(',').any(|t| opaque(t) == opaque(&etag)))
    {
        return Response {
            status: 304,
            content_type: "application/json",
            headers: vec![("ETag", etag)],
            body: Vec::new(),
        };
    }
    let mut response = Response::json(200, body.clone());
    response.headers.push(("ETag", etag));
    response
}

/// Answers one request to node `node`'s Docker API.
pub(crate) fn handle(shared: &Shared, node_index: usize, req: &Request) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return message(
            405,
            &format!("method {} not allowed in the cluster simulator", req.method),
        );
    }
    let state = shared.state.read();
    let cluster = &state.cluster;
    let Some(node) = cluster.nodes.get(node_index) else {
        return message(404, "page not found");
    };
    let route = route(&req.path);
    match (node.runtime, &route) {
        (Runtime::Containerd, Route::Node) => {
            return node_document(shared, cluster, node_index, node, req)
        }
        (Runtime::Docker, Route::Node) if cluster.spec.node_documents => {
            return node_document(shared, cluster, node_index, node, req)
        }
        // A containerd node's agent has no Docker daemon to forward to.
        (Runtime::Containerd, _) | (_, Route::Node) => return message(404, "page not found"),
        _ => {}
    }
    match route {
        Route::Node => message(404, "page not found"),
        Route::Ping => {
            let mut response = Response {
                status: 200,
                content_type: "text/plain; charset=utf-8",
                headers: Vec::new(),
                body: b"OK".to_vec(),
            };
            add_headers(&mut response);
            response.headers.push((
                "Cache-Control",
                "no-cache, no-store, must-revalidate".into(),
            ));
            response
        }
        Route::Version => ok(&version()),
        Route::List => ok(&Value::Array(
            node.containers
                .iter()
                .map(|c| summary(cluster, c))
                .collect(),
        )),
        Route::Inspect(id) => match find_container(node, &id) {
            Some(c) => ok(&inspect(cluster, c)),
            None => message(404, &format!("No such container: {id}")),
        },
        Route::Top(id) => match find_container(node, &id) {
            Some(c) => ok(&top(c, req.param("ps_args"))),
            None => message(404, &format!("No such container: {id}")),
        },
        Route::Image(id) => match find_image(cluster, node, &id) {
            Some(image) => {
                let index = cluster
                    .images
                    .iter()
                    .position(|i| i.id == image.id)
                    .unwrap_or(0);
                ok(&image_inspect(image, index))
            }
            None => message(404, &format!("No such image: {id}")),
        },
        Route::Unknown => message(404, "page not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_api_version_prefix() {
        assert_eq!(unversioned("/v1.43/containers/json"), "/containers/json");
        assert_eq!(unversioned("/version"), "/version");
        assert_eq!(unversioned("/containers/json"), "/containers/json");
    }

    #[test]
    fn routes_image_names_with_slashes() {
        assert!(
            matches!(route("/images/registry.k8s.io/pause:3.9/json"), Route::Image(n) if n == "registry.k8s.io/pause:3.9")
        );
        assert!(matches!(route("/containers/abc/top"), Route::Top(n) if n == "abc"));
        assert!(matches!(route("/containers/a/b/json"), Route::Unknown));
    }

    #[test]
    fn docker_times_have_nanoseconds() {
        let t = docker_time(1_795_521_600_123);
        assert!(
            t.starts_with("2026-11-24T12:00:00.123") && t.ends_with('Z') && t.len() == 30,
            "{t}"
        );
    }
}
