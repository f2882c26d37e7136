//! The minion's allow-list (contract §1): a parser of the request that decides whether it may
//! reach the Docker daemon, and if so writes out what exactly to send.
//!
//! The decision is made by parsing the request target into a route — origin-form only, one
//! level of percent-decoding, every segment and query parameter accounted for — and what is
//! forwarded is that route written out again, never the client's string: whatever the
//! client's encoding tricks, the daemon can only ever see one of the allowed shapes with an
//! ID of the allowed characters.

use crate::http::Method;
use cluster_insight_wire::percent;

/// The longest container or image ID (after percent-decoding) the proxy forwards.
pub(super) const MAX_ID_LEN: usize = 255;

/// Targets longer than this are refused before parsing: the longest allowed one, with every
/// ID byte percent-encoded, is under 800 bytes.
const MAX_TARGET_LEN: usize = 2048;

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// Send this normalized path and query to the daemon (with the request's method).
    Forward(String),
    /// Answer with an error and send nothing to the daemon.
    Refuse(Refusal),
}

/// Why a request is not forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// A method other than GET and HEAD (the method the client sent).
    Method(String),
    /// A path or query outside the allow-list; the text says which rule it broke.
    Target(&'static str),
}

impl Refusal {
    pub(super) fn message(&self) -> String {
        match self {
            Refusal::Method(name) => format!(
                "method {} is not allowed: the minion is read-only (GET, HEAD)",
                crate::http::layers::printable(name, 20)
            ),
            Refusal::Target(why) => why.to_string(),
        }
    }
}

/// The allow-list: decides whether `method` and `target` (as the client sent it) may go to
/// the daemon, and if so, what exactly to send.
pub(super) fn check_request(method: &Method, target: &str) -> Decision {
    if let Method::Other(name) = method {
        return Decision::Refuse(Refusal::Method(name.clone()));
    }
    match parse_target(target) {
        Ok(route) => Decision::Forward(route.target()),
        Err(why) => Decision::Refuse(Refusal::Target(why)),
    }
}

/// The requests the proxy forwards; IDs are decoded and valid.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    ContainerList,
    ContainerInspect(String),
    ContainerTop(String),
    ImageInspect(String),
    Version,
    Ping,
}

/// Whether a target the allow-list wrote is a container inspect, whose answer holds the
/// container's environment.
pub(super) fn is_container_inspect(target: &str) -> bool {
    target != Route::ContainerList.target()
        && target.starts_with("/containers/")
        && target.ends_with("/json")
}

impl Route {
    /// The target to send to the daemon: written from the route, not copied from the client.
    fn target(&self) -> String {
        match self {
            Route::ContainerList => "/containers/json".to_string(),
            Route::ContainerInspect(id) => format!("/containers/{}/json", encode(id)),
            Route::ContainerTop(id) => format!("/containers/{}/top?ps_args=aux", encode(id)),
            Route::ImageInspect(id) => format!("/images/{}/json", encode(id)),
            Route::Version => "/version".to_string(),
            Route::Ping => "/_ping".to_string(),
        }
    }
}

/// Percent-encodes what is not unreserved or `:` in a path segment. Valid IDs need none of
/// it; this is here so that the forwarded target stays well-formed even if the ID grammar
/// is ever widened.
fn encode(segment: &str) -> String {
    percent::encode(segment, b":")
}

const NOT_ALLOWED_PATH: &str = "path not allowed: the minion serves only /node, /healthz, \
    /containers/json, /containers/{id}/json, /containers/{id}/top?ps_args=aux, \
    /images/{id}/json, /version and /_ping";

const BAD_ID: &str = "container or image ID not allowed: it must match \
    [A-Za-z0-9][A-Za-z0-9_.:-]{0,254} and not contain '..'";

fn parse_target(target: &str) -> Result<Route, &'static str> {
    if target.len() > MAX_TARGET_LEN {
        return Err("request target longer than 2048 bytes not allowed");
    }
    if !target.starts_with('/') {
        return Err(
            "request target not allowed: only origin-form targets (starting with '/') are served",
        );
    }
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("request target contains characters that are not allowed");
    }
    if target.contains('#') {
        return Err("fragments are not allowed");
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let route = parse_path(&path[1..])?;
    let params = parse_query(query)?;
    match (&route, params.as_slice()) {
        (Route::ContainerTop(_), [(key, Some(value))]) if key == b"ps_args" && value == b"aux" => {
            Ok(route)
        }
        (Route::ContainerTop(_), _) => Err("query not allowed: top takes exactly ps_args=aux"),
        (_, []) => Ok(route),
        (_, _) => Err("query not allowed: this path takes no query parameters"),
    }
}

/// Routes the path (after the leading '/'); every segment is decoded exactly once.
fn parse_path(path: &str) -> Result<Route, &'static str> {
    let mut segments = Vec::with_capacity(3);
    for raw in path.split('/') {
        if segments.len() == 3 {
            return Err(NOT_ALLOWED_PATH);
        }
        if raw.is_empty() {
            return Err("empty path segment ('//' or a trailing '/') not allowed");
        }
        let decoded = percent_decode(raw)?;
        if decoded == b"." || decoded == b".." {
            return Err("dot-segments ('.' and '..') are not allowed");
        }
        segments.push(decoded);
    }
    let route = match segments.as_slice() {
        [a, b] if a == b"containers" && b == b"json" => Route::ContainerList,
        [a, id, b] if a == b"containers" && b == b"json" => Route::ContainerInspect(check_id(id)?),
        [a, id, b] if a == b"containers" && b == b"top" => Route::ContainerTop(check_id(id)?),
        [a, id, b] if a == b"images" && b == b"json" => Route::ImageInspect(check_id(id)?),
        [a] if a == b"version" => Route::Version,
        [a] if a == b"_ping" => Route::Ping,
        _ => return Err(NOT_ALLOWED_PATH),
    };
    Ok(route)
}

/// `[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}`, without `..`; `%` left after decoding means the
/// client encoded twice, which the daemon might decode again.
fn check_id(id: &[u8]) -> Result<String, &'static str> {
    if id.contains(&b'%') {
        return Err("a second level of percent-encoding is not allowed");
    }
    if id.contains(&b'/') {
        return Err("an encoded '/' is not allowed in an ID");
    }
    let valid = (1..=MAX_ID_LEN).contains(&id.len())
        && id[0].is_ascii_alphanumeric()
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(b))
        && !id.windows(2).any(|w| w == b"..");
    if !valid {
        return Err(BAD_ID);
    }
    // Every byte is ASCII by the check above.
    Ok(id.iter().map(|&b| b as char).collect())
}

/// Query parameters in order, each decoded once; `None` for a key without `=`. Empty
/// parameters and repeated keys are refused rather than guessed at: the daemon's idea of
/// "the" value of a repeated key may not be ours.
#[allow(clippy::type_complexity)]
fn parse_query(query: Option<&str>) -> Result<Vec<(Vec<u8>, Option<Vec<u8>>)>, &'static str> {
    let Some(query) = query else {
        return Ok(Vec::new());
    };
    if query.is_empty() {
        return Err("empty query not allowed");
    }
    let mut params: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    for pair in query.split('&') {
        if pair.is_empty() {
            return Err("empty query parameter not allowed");
        }
        let (key, value) = match pair.split_once('=') {
            Some((key, value)) => (percent_decode(key)?, Some(percent_decode(value)?)),
            None => (percent_decode(pair)?, None),
        };
        if params.iter().any(|(k, _)| *k == key) {
            return Err("repeated query parameter not allowed");
        }
        params.push((key, value));
    }
    Ok(params)
}

/// One level of percent-decoding; a `%` not followed by two hex digits is an error.
fn percent_decode(s: &str) -> Result<Vec<u8>, &'static str> {
    percent::decode(s).map_err(|_| "malformed percent-encoding not allowed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> Decision {
        check_request(&Method::Get, target)
    }

    #[test]
    fn allow_list_table() {
        let id255 = format!("a{}", "b".repeat(254));
        let id256 = format!("a{}", "b".repeat(255));
        let allowed: Vec<(String, String)> = [
            ("/containers/json", "/containers/json"),
            ("/containers/abc123/json", "/containers/abc123/json"),
            (
                "/containers/k8s_POD.1_web-0_ns_uid_0/json",
                "/containers/k8s_POD.1_web-0_ns_uid_0/json",
            ),
            (
                "/containers/abc/top?ps_args=aux",
                "/containers/abc/top?ps_args=aux",
            ),
            (
                "/images/sha256:0123abcdef/json",
                "/images/sha256:0123abcdef/json",
            ),
            ("/images/nginx:1.27/json", "/images/nginx:1.27/json"),
            ("/images/sha256%3Aabc/json", "/images/sha256:abc/json"),
            ("/containers/%61bc/json", "/containers/abc/json"),
            ("/containers/json/json", "/containers/json/json"),
            ("/%63ontainers/json", "/containers/json"),
            (
                "/containers/abc/top?ps_args=%61ux",
                "/containers/abc/top?ps_args=aux",
            ),
            ("/version", "/version"),
            ("/_ping", "/_ping"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .chain([(
            format!("/containers/{id255}/json"),
            format!("/containers/{id255}/json"),
        )])
        .collect();
        for (target, forwarded) in &allowed {
            assert_eq!(
                get(target),
                Decision::Forward(forwarded.clone()),
                "{target}"
            );
            assert_eq!(
                check_request(&Method::Head, target),
                Decision::Forward(forwarded.clone()),
                "{target}"
            );
        }

        let refused = [
            "/",
            "",
            "*",
            "version",
            "/version/",
            "/Version",
            "/info",
            "/v1.43/version",
            "/containers",
            "/containers/",
            "/containers//json",
            "/containers/json/",
            "/containers/abc/json/",
            "/containers/abc/logs",
            "/containers/abc/export",
            "/containers/abc/archive?path=/etc/shadow",
            "/containers/create",
            "/images/json",
            "/images/abc/history",
            "/images/abc/get",
            "/exec/abc/json",
            "/containers/../version",
            "/containers/./json",
            "/containers/%2e%2e/json",
            "/containers/%2E%2E/version",
            "/containers/a..b/json",
            "/containers/a%2e.b/json",
            "/containers/.abc/json",
            "/containers/-abc/json",
            "/containers/_abc/json",
            "/containers/a%2Fb/json",
            "/containers/a%2fb/json",
            "/containers%2Fjson",
            "/containers/%252e%252e/json",
            "/containers/a%2541/json",
            "/containers/%25/json",
            "/containers/a%/json",
            "/containers/a%4/json",
            "/containers/a%zz/json",
            "/containers/a%00/json",
            "/containers/a%20b/json",
            "/containers/a+b/json",
            "/containers/a@b/json",
            "/containers/a~b/json",
            "/containers/%C3%A9/json",
            "/containers/json?",
            "/containers/json?all=1",
            "/containers/json?&",
            "/version?x",
            "/_ping?",
            "/containers/abc/json?size=true",
            "/containers/abc/top",
            "/containers/abc/top?",
            "/containers/abc/top?ps_args=aux;ls",
            "/containers/abc/top?ps_args=aux&x=1",
            "/containers/abc/top?x=1&ps_args=aux",
            "/containers/abc/top?ps_args=aux&ps_args=aux",
            "/containers/abc/top?ps_args=aux&",
            "/containers/abc/top?&ps_args=aux",
            "/containers/abc/top?ps_args",
            "/containers/abc/top?ps_args=",
            "/containers/abc/top?ps_args=-ef",
            "/containers/abc/top?ps_args=aux%20e",
            "/containers/abc/top?ps_args=%2561ux",
            "/containers/abc/top?PS_ARGS=aux",
            "/containers/abc/top?ps_args=aux#x",
            "/containers/abc/json#frag",
            "/version#",
            "http://127.0.0.1:4243/version",
            "http://docker/containers/json",
            "//evil.example/version",
            "localhost:2375",
            "/containers/abc/json?ps_args=aux",
        ];
        for target in refused {
            match get(target) {
                Decision::Refuse(Refusal::Target(message)) => {
                    assert!(message.contains("not allowed"), "{target:?}: {message}")
                }
                other => panic!("{target:?} gave {other:?}"),
            }
        }
        assert!(matches!(
            get(&format!("/containers/{id256}/json")),
            Decision::Refuse(Refusal::Target(_))
        ));
        assert!(matches!(
            get(&format!("/images/{id256}/json")),
            Decision::Refuse(Refusal::Target(_))
        ));
        // 255 characters after decoding, however many before.
        let encoded255 = "%61".repeat(255);
        assert_eq!(
            get(&format!("/containers/{encoded255}/json")),
            Decision::Forward(format!("/containers/{}/json", "a".repeat(255)))
        );
    }

    #[test]
    fn every_other_method_is_405() {
        for name in [
            "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "get", "BREW",
        ] {
            let method = Method::Other(name.to_string());
            for target in ["/version", "/containers/create", "*"] {
                match check_request(&method, target) {
                    Decision::Refuse(refusal @ Refusal::Method(_)) => {
                        assert!(refusal.message().contains(name))
                    }
                    other => panic!("{name} {target} gave {other:?}"),
                }
            }
        }
    }

    /// The allow-list grammar written out a second way, on the forwarded (normalized) form.
    fn in_grammar(target: &str) -> bool {
        fn is_id(s: &str) -> bool {
            let b = s.as_bytes();
            (1..=255).contains(&b.len())
                && b[0].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-'))
                && !s.contains("..")
        }
        if ["/containers/json", "/version", "/_ping"].contains(&target) {
            return true;
        }
        if let Some(rest) = target.strip_prefix("/containers/") {
            if let Some(id) = rest.strip_suffix("/json") {
                return is_id(id);
            }
            if let Some(id) = rest.strip_suffix("/top?ps_args=aux") {
                return is_id(id);
            }
        }
        match target
            .strip_prefix("/images/")
            .and_then(|r| r.strip_suffix("/json"))
        {
            Some(id) => is_id(id),
            None => false,
        }
    }

    /// splitmix64: a fixed-seed generator, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const PIECES: &[&str] = &[
        "/",
        "/",
        "/",
        "containers",
        "containers",
        "images",
        "json",
        "json",
        "top",
        "version",
        "_ping",
        "abc",
        "0123456789abcdef",
        "sha256:",
        "nginx:1.27",
        "a.b",
        "a-b_c",
        ".",
        "..",
        "%2e",
        "%2E",
        "%2F",
        "%2f",
        "%25",
        "%252e",
        "%",
        "%4",
        "%zz",
        "%61",
        "%3A",
        "?",
        "?",
        "&",
        "=",
        "ps_args",
        "aux",
        "ps_args=aux",
        ";",
        "#",
        "+",
        "~",
        "@",
        "http:",
        "//",
        ":4243",
        "*",
        "\\",
        "%00",
        "%C3%A9",
    ];

    fn random_target(rng: &mut Rng) -> String {
        let mut target = String::new();
        match rng.below(4) {
            // A valid target with a few random edits.
            0 | 1 => {
                let id = rng.pick(&["abc", "0123456789abcdef", "sha256:abc", "web.1", "a%62c"]);
                target.push_str(
                    match rng.below(6) {
                        0 => "/containers/json".to_string(),
                        1 => format!("/containers/{id}/json"),
                        2 => format!("/containers/{id}/top?ps_args=aux"),
                        3 => format!("/images/{id}/json"),
                        4 => "/version".to_string(),
                        _ => "/_ping".to_string(),
                    }
                    .as_str(),
                );
                for _ in 0..rng.below(3) {
                    let at = rng.below(target.len() + 1);
                    // Only edit at character boundaries (every piece is ASCII, except
                    // random bytes below which go through char).
                    if !target.is_char_boundary(at) {
                        continue;
                    }
                    let piece = rng.pick(PIECES);
                    if rng.below(2) == 0 && at < target.len() {
                        let end = (at + 1..=target.len())
                            .find(|&e| target.is_char_boundary(e))
                            .unwrap_or(target.len());
                        target.replace_range(at..end, piece);
                    } else {
                        target.insert_str(at, piece);
                    }
                }
            }
            // Pieces strung together.
            2 => {
                for _ in 0..1 + rng.below(10) {
                    target.push_str(rng.pick(PIECES));
                }
            }
            // Random bytes, mostly printable ASCII.
            _ => {
                target.push('/');
                for _ in 0..rng.below(40) {
                    let b = if rng.below(8) == 0 {
                        rng.below(256)
                    } else {
                        0x20 + rng.below(0x5f)
                    };
                    target.push(char::from(b as u8));
                }
            }
        }
        target
    }

    #[test]
    fn generated_targets_forward_only_the_allow_list() {
        let mut rng = Rng(0x5EED_1234_ABCD_0042);
        let (mut forwarded, mut refused) = (0, 0);
        for _ in 0..5000 {
            let target = random_target(&mut rng);
            match get(&target) {
                Decision::Forward(out) => {
                    forwarded += 1;
                    assert!(in_grammar(&out), "{target:?} forwarded as {out:?}");
                    assert_eq!(get(&out), Decision::Forward(out.clone()), "{target:?}");
                    if !target.contains('%') {
                        assert_eq!(out, target);
                    }
                }
                Decision::Refuse(refusal) => {
                    refused += 1;
                    assert!(matches!(refusal, Refusal::Target(_)), "{refusal:?}");
                    // Refused targets that happen to be in the grammar would be a bug.
                    assert!(!in_grammar(&target), "{target:?} refused");
                }
            }
            assert!(matches!(
                check_request(&Method::Other("POST".into()), &target),
                Decision::Refuse(Refusal::Method(_))
            ));
        }
        // The generator must exercise both sides for the test to mean anything.
        assert!(
            forwarded > 500 && refused > 2000,
            "{forwarded} forwarded, {refused} refused"
        );
    }
}
