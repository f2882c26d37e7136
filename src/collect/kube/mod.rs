//! The Kubernetes API client: the only module that talks to the API server.
//!
//! Reads the lists the graph needs (the table of kinds says which), across all namespaces,
//! in pages (`limit`/`continue`). HTTPS is verified against the cluster's CA; the bearer token is
//! re-read from its file about once a minute (service-account tokens rotate), and the last
//! good token is kept if a read fails. The token never reaches a log line or an error.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::objects::parse_list_page;
use super::ParseError;
use cluster_insight_wire::percent;

mod exec;
pub(crate) mod kubeconfig;

pub use exec::ExecError;
use exec::{ExecPlugin, Issued};

/// How to reach the API server, resolved from flags, a kubeconfig and the environment.
#[derive(Clone)]
pub struct KubeConfig {
    /// `https://host:port` or `http://host:port`, without a trailing slash.
    pub base_url: String,
    /// The bearer token's file (re-read now and then); it wins over `token` and `exec`.
    pub token_file: Option<PathBuf>,
    /// CA certificates to verify the server with; none means the system's roots.
    pub ca: Option<PemSource>,
    pub insecure_skip_tls_verify: bool,
    /// A bearer token given inline (a kubeconfig's `token`).
    pub(crate) token: Option<String>,
    /// A client certificate (chain) and its key, for mutual TLS.
    pub client_cert: Option<(PemSource, PemSource)>,
    /// A credential plugin, asked again when what it issued expires or is refused.
    pub(crate) exec: Option<ExecPlugin>,
    pub(crate) page_size: usize,
    pub connect_timeout: Duration,
    /// Bound on one page: request, headers and body.
    pub request_timeout: Duration,
}

impl KubeConfig {
    pub fn new(base_url: &str) -> KubeConfig {
        KubeConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            token_file: None,
            ca: None,
            insecure_skip_tls_verify: false,
            token: None,
            client_cert: None,
            exec: None,
            page_size: 500,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for KubeConfig {
    // Written out so that an inline token never reaches a debug line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeConfig")
            .field("base_url", &self.base_url)
            .field("token_file", &self.token_file)
            .field("ca", &self.ca)
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .field("token", &self.token.as_ref().map(|_| "<token>"))
            .field("client_cert", &self.client_cert)
            .field("exec", &self.exec)
            .finish_non_exhaustive()
    }
}

/// PEM text from a file (`--ca-file`, a kubeconfig's paths) or given inline (a kubeconfig's
/// `*-data` fields, decoded).
#[derive(Clone, PartialEq)]
pub enum PemSource {
    File(PathBuf),
    Data {
        /// The field it came from, for messages.
        what: String,
        pem: Vec<u8>,
    },
}

impl PemSource {
    fn read(&self) -> Result<Vec<u8>, KubeSetupError> {
        match self {
            PemSource::File(path) => {
                std::fs::read(path).map_err(|error| KubeSetupError::ReadFile {
                    path: path.clone(),
                    error,
                })
            }
            PemSource::Data { pem, .. } => Ok(pem.clone()),
        }
    }

    fn describe(&self) -> String {
        match self {
            PemSource::File(path) => path.display().to_string(),
            PemSource::Data { what, .. } => what.clone(),
        }
    }
}

impl fmt::Debug for PemSource {
    // Inline data may be a private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemSource::File(path) => write!(f, "File({})", path.display()),
            PemSource::Data { what, pem } => write!(f, "Data({what}, {} bytes)", pem.len()),
        }
    }
}

/// `url` with anything before an `@` in its authority masked, for messages.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://…@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Why `url` cannot be the API server's base URL, if it cannot: checked at start, so that a
/// typo is exit 3 with a message rather than a master whose every call fails.
fn check_url(url: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("it must start with http:// or https://".to_string());
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("it names no host".to_string());
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        // They would be in every log line and `/status` entry that names the API server.
        return Err(
            "it holds credentials (user@ or user:password@): give a token with \
                    --token-file instead"
                .to_string(),
        );
    }
    if uri.query().is_some() {
        return Err("it may not have a query".to_string());
    }
    Ok(())
}

/// A failure of a list call, by cause.
#[derive(Debug)]
pub enum KubeError {
    /// No (complete) HTTP answer: connection refused, TLS failure, timeout.
    Transport(TransportError),
    /// The API server answered with an error; `reason` and `message` come from its Status.
    Status {
        code: u16,
        reason: String,
        message: String,
    },
    /// A 2xx answer we could not read.
    Parse(ParseError),
    /// The kubeconfig's credential plugin gave no credential.
    Credential(ExecError),
}

impl fmt::Display for KubeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubeError::Transport(t) => f.write_str(t.doing),
            KubeError::Status {
                code,
                reason,
                message,
            } => write!(f, "HTTP {code} {reason}: {message}"),
            // A parse error says what it could not read; it stands for the whole error.
            KubeError::Parse(e) => write!(f, "{e}"),
            KubeError::Credential(e) => write!(f, "{e}"),
        }
    }
}

/// What was being done when no answer came, and ureq's account of why.
#[derive(Debug)]
pub struct TransportError {
    pub(crate) doing: &'static str,
    pub(crate) error: ureq::Error,
}

impl std::error::Error for KubeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KubeError::Transport(t) => Some(&t.error),
            // Said by Display already.
            KubeError::Parse(_) | KubeError::Status { .. } | KubeError::Credential(_) => None,
        }
    }
}

/// Errors that stop the client from being built at all (start-up errors).
#[derive(Debug)]
pub enum KubeSetupError {
    ReadFile {
        path: PathBuf,
        error: std::io::Error,
    },
    /// CA certificates that cannot be used; `what` is the file or kubeconfig field.
    BadCa { what: String, detail: String },
    /// A client certificate or key that cannot be used.
    BadClientCert { what: String, detail: String },
    /// `--kubernetes-url` is not an http(s) URL with a host.
    BadUrl { url: String, why: String },
    /// A kubeconfig that cannot be used; `what` names its file(s).
    Kubeconfig { what: String, why: String },
    /// The kubeconfig's credential plugin gave no credential at start-up.
    Exec(ExecError),
}

impl fmt::Display for KubeSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubeSetupError::ReadFile { path, .. } => write!(f, "cannot read {}", path.display()),
            KubeSetupError::BadCa { what, detail } => {
                write!(f, "no usable CA certificate in {what}: {detail}")
            }
            KubeSetupError::BadClientCert { what, detail } => {
                write!(f, "no usable client certificate in {what}: {detail}")
            }
            KubeSetupError::BadUrl { url, why } => {
                write!(f, "Kubernetes URL {:?}: {why}", without_credentials(url))
            }
            KubeSetupError::Kubeconfig { what, why } => write!(f, "kubeconfig {what}: {why}"),
            KubeSetupError::Exec(_) => f.write_str("kubeconfig credential plugin"),
        }
    }
}

impl std::error::Error for KubeSetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KubeSetupError::ReadFile { error, .. } => Some(error),
            KubeSetupError::Exec(error) => Some(error),
            KubeSetupError::BadCa { .. }
            | KubeSetupError::BadClientCert { .. }
            | KubeSetupError::BadUrl { .. }
            | KubeSetupError::Kubeconfig { .. } => None,
        }
    }
}

/// A bearer token, re-read from its file at most once a minute (a projected
/// service-account token is rotated by the kubelet).
pub(crate) struct Token {
    file: PathBuf,
    value: Option<String>,
    read_at: Option<Instant>,
}

const TOKEN_REREAD: Duration = Duration::from_secs(60);

impl Token {
    /// Reads `file` now: a missing or empty file is an error at start-up.
    pub(crate) fn open(file: &Path) -> std::io::Result<Token> {
        let value = read_token(file)?;
        Ok(Token {
            file: file.to_path_buf(),
            value: Some(value),
            read_at: Some(Instant::now()),
        })
    }

    pub(crate) fn current(&mut self) -> Option<String> {
        let stale = self.read_at.is_none_or(|t| t.elapsed() >= TOKEN_REREAD);
        if stale {
            match read_token(&self.file) {
                Ok(value) => self.value = Some(value),
                Err(e) => log::warn!(
                    "cannot re-read the token file {}: {e}; keeping the last good token",
                    self.file.display()
                ),
            }
            self.read_at = Some(Instant::now());
        }
        self.value.clone()
    }
}

fn read_token(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the token file is empty",
        ));
    }
    Ok(token)
}

/// A client of one API server. Cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct KubeClient {
    agent: ureq::Agent,
    base_url: Arc<str>,
    page_size: usize,
    credential: Option<Arc<Credential>>,
    /// Bound on one call; a watch's head must come within it too.
    request_timeout: Duration,
}

/// Where the bearer token (and, from a plugin, the client certificate) comes from.
enum Credential {
    File(Mutex<Token>),
    Inline(String),
    Exec(Box<ExecSession>),
}

/// A credential plugin and what it last issued. The lock is held while the plugin runs, so
/// that threads listing at once run it once.
struct ExecSession {
    plugin: ExecPlugin,
    agents: AgentSettings,
    state: Mutex<ExecState>,
}

struct ExecState {
    issued: Issued,
    /// Set when the plugin issued a client certificate: an agent that presents it.
    agent: Option<ureq::Agent>,
    /// When the API server last refused what was issued (a 401): asked again then, but not
    /// more than every few seconds for a plugin that keeps issuing a refused token.
    refused_at: Option<Instant>,
    issued_at: Instant,
}

/// Everything of an agent but the client certificate, which a plugin may change.
struct AgentSettings {
    roots: Option<Vec<ureq::tls::Certificate<'static>>>,
    insecure: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl AgentSettings {
    fn build(&self, client_cert: Option<ureq::tls::ClientCert>) -> ureq::Agent {
        let mut tls = ureq::tls::TlsConfig::builder().client_cert(client_cert);
        if let Some(certs) = &self.roots {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(certs));
        }
        if self.insecure {
            tls = tls.disable_verification(true);
        }
        ureq::Agent::config_builder()
            .tls_config(tls.build())
            // The API server's address is given; an environment proxy would be a surprise.
            .proxy(None)
            // Error statuses carry a Status object we want to read.
            .http_status_as_error(false)
            .timeout_connect(Some(self.connect_timeout))
            .timeout_global(Some(self.request_timeout))
            .user_agent(concat!("cluster-insight/", env!("CARGO_PKG_VERSION")))
            .accept("application/json")
            .max_redirects(0)
            .build()
            .into()
    }
}

/// A refused plugin credential is asked for again at most this often.
const EXEC_RETRY_AFTER_REFUSAL: Duration = Duration::from_secs(5);

fn client_cert(
    cert: &[u8],
    key: &[u8],
    what: &str,
) -> Result<ureq::tls::ClientCert, KubeSetupError> {
    let bad = |detail: String| KubeSetupError::BadClientCert {
        what: what.to_string(),
        detail,
    };
    let chain = parse_ca(cert).map_err(bad)?;
    let key = ureq::tls::PrivateKey::from_pem(key).map_err(|e| bad(format!("the key: {e}")))?;
    Ok(ureq::tls::ClientCert::new_with_certs(&chain, key))
}

impl ExecSession {
    /// What to send now: the agent (with the plugin's certificate, if any) and the token.
    fn current(
        &self,
        default_agent: &ureq::Agent,
    ) -> Result<(ureq::Agent, Option<String>), KubeError> {
        let mut state = self.state.lock();
        let refused =
            state.refused_at.is_some() && state.issued_at.elapsed() >= EXEC_RETRY_AFTER_REFUSAL;
        if refused
            || state
                .issued
                .expired(cluster_insight_wire::time::now_millis())
        {
            let issued = self.plugin.run().map_err(KubeError::Credential)?;
            let agent = self.agent_for(&issued).map_err(|e| {
                KubeError::Credential(ExecError::Output {
                    command: self.plugin.command.display().to_string(),
                    why: e.to_string(),
                })
            })?;
            *state = ExecState {
                issued,
                agent,
                refused_at: None,
                issued_at: Instant::now(),
            };
        }
        let agent = state.agent.clone().unwrap_or_else(|| default_agent.clone());
        Ok((agent, state.issued.token.clone()))
    }

    fn agent_for(&self, issued: &Issued) -> Result<Option<ureq::Agent>, KubeSetupError> {
        match &issued.client_cert {
            Some((cert, key)) => {
                let identity = client_cert(cert, key, "the credential plugin's certificate")?;
                Ok(Some(self.agents.build(Some(identity))))
            }
            None => Ok(None),
        }
    }
}

impl KubeClient {
    /// Builds the client, reading the CA, the client certificate and the token now (and
    /// running a credential plugin once) so that a bad configuration fails start-up.
    pub fn new(config: &KubeConfig) -> Result<KubeClient, KubeSetupError> {
        let url = &config.base_url;
        check_url(url).map_err(|why| KubeSetupError::BadUrl {
            url: url.clone(),
            why: why.to_string(),
        })?;
        let roots = match &config.ca {
            Some(ca) => {
                let pem = ca.read()?;
                let certs = parse_ca(&pem).map_err(|detail| KubeSetupError::BadCa {
                    what: ca.describe(),
                    detail,
                })?;
                Some(certs)
            }
            None => None,
        };
        let settings = AgentSettings {
            roots,
            insecure: config.insecure_skip_tls_verify,
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
        };
        let identity = match &config.client_cert {
            Some((cert, key)) => Some(client_cert(
                &cert.read()?,
                &key.read()?,
                &format!("{} and {}", cert.describe(), key.describe()),
            )?),
            None => None,
        };
        let agent = settings.build(identity);
        let credential = if let Some(file) = &config.token_file {
            let token = Token::open(file).map_err(|error| KubeSetupError::ReadFile {
                path: file.clone(),
                error,
            })?;
            Some(Credential::File(Mutex::new(token)))
        } else if let Some(token) = &config.token {
            Some(Credential::Inline(token.clone()))
        } else if let Some(plugin) = &config.exec {
            let issued = plugin.run().map_err(KubeSetupError::Exec)?;
            let session = ExecSession {
                plugin: plugin.clone(),
                agents: settings,
                state: Mutex::new(ExecState {
                    issued: Issued {
                        token: None,
                        client_cert: None,
                        expires_at: None,
                    },
                    agent: None,
                    refused_at: None,
                    issued_at: Instant::now(),
                }),
            };
            let agent = session.agent_for(&issued)?;
            *session.state.lock() = ExecState {
                issued,
                agent,
                refused_at: None,
                issued_at: Instant::now(),
            };
            Some(Credential::Exec(Box::new(session)))
        } else {
            None
        };
        Ok(KubeClient {
            agent,
            base_url: Arc::from(url.as_str()),
            page_size: config.page_size.max(1),
            credential: credential.map(Arc::new),
            request_timeout: config.request_timeout,
        })
    }

    /// Bound on one call.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// All items of a list across pages, e.g. `list("/api/v1/pods", parse_pod)`, each
    /// parsed as its page arrives so that no more than one page of text is held. Items that
    /// do not parse are counted and skipped. An expired `continue` token (410) restarts the
    /// list once, as the API conventions ask.
    pub fn list<T>(
        &self,
        path: &str,
        mut parse: impl FnMut(&RawValue) -> Result<T, ParseError>,
    ) -> Result<ListResult<T>, KubeError> {
        match self.list_pages(path, &mut parse) {
            Err(KubeError::Status { code: 410, .. }) => {
                log::info!("list of {path} expired while paging; starting it again");
                self.list_pages(path, &mut parse)
            }
            other => other,
        }
    }

    fn list_pages<T>(
        &self,
        path: &str,
        parse: &mut impl FnMut(&RawValue) -> Result<T, ParseError>,
    ) -> Result<ListResult<T>, KubeError> {
        let mut result = ListResult {
            items: Vec::new(),
            pages: 0,
            malformed: Vec::new(),
            malformed_count: 0,
            resource_version: None,
        };
        let mut continue_token: Option<String> = None;
        // A server that hands out a token it gave before would have us loop for ever.
        let mut seen_tokens = std::collections::HashSet::new();
        loop {
            if result.pages == MAX_PAGES {
                return Err(KubeError::Parse(ParseError::new(
                    "list",
                    format!("more than {MAX_PAGES} pages"),
                )));
            }
            let mut url = format!("{}{path}?limit={}", self.base_url, self.page_size);
            if let Some(token) = &continue_token {
                url.push_str("&continue=");
                url.push_str(&percent_encode(token));
            }
            let text = self.get(&url)?;
            result.pages += 1;
            let page = parse_list_page(&text).map_err(KubeError::Parse)?;
            if page.resource_version.is_some() {
                result.resource_version = page.resource_version.clone();
            }
            for item in page.items {
                match parse(item) {
                    Ok(object) => result.items.push(object),
                    Err(e) => {
                        result.malformed_count += 1;
                        if result.malformed.len() < 3 {
                            result.malformed.push(e);
                        }
                    }
                }
            }
            match page.continue_token {
                Some(next) if seen_tokens.insert(next.clone()) => continue_token = Some(next),
                Some(_) => {
                    return Err(KubeError::Parse(ParseError::new(
                        "list",
                        "the server repeated a continue token",
                    )))
                }
                None => return Ok(result),
            }
        }
    }

    /// What the API server serves in one group version (`GET /api/v1`,
    /// `GET /apis/GROUP/VERSION`): its resources, without their subresources.
    pub(crate) fn discover(
        &self,
        group: &str,
        version: &str,
    ) -> Result<Vec<ApiResource>, KubeError> {
        #[derive(Deserialize)]
        struct ResourceList {
            #[serde(default)]
            resources: Vec<ApiResource>,
        }
        let path = cluster_insight_kinds::api_prefix(group, version);
        let text = self.get(&format!("{}{path}", self.base_url))?;
        let list: ResourceList = serde_json::from_str(&text)
            .map_err(|e| KubeError::Parse(ParseError::new(format!("discovery of {path}"), e)))?;
        Ok(list
            .resources
            .into_iter()
            .filter(|r| !r.name.contains('/'))
            .collect())
    }

    /// The agent to send with and the token to send, if any (re-read from its file now and
    /// then, or asked of the credential plugin when what it issued has expired).
    fn credentials(&self) -> Result<(ureq::Agent, Option<String>), KubeError> {
        match self.credential.as_deref() {
            None => Ok((self.agent.clone(), None)),
            Some(Credential::File(token)) => Ok((self.agent.clone(), token.lock().current())),
            Some(Credential::Inline(token)) => Ok((self.agent.clone(), Some(token.clone()))),
            Some(Credential::Exec(session)) => session.current(&self.agent),
        }
    }

    fn get(&self, url: &str) -> Result<String, KubeError> {
        let (agent, sent) = self.credentials()?;
        let request = with_bearer(agent.get(url), sent.as_deref());
        let response = request.call();
        self.answer(response, &[sent.as_deref()])
    }

    /// Watches `path` (a list) from `resource_version`, with bookmarks, for at most
    /// `timeout`: the API server ends the stream then, and a stream that says nothing for
    /// half a minute longer is taken as dropped. A refusal (a 410 when the version is too
    /// old, any error status) is the error, with its Status.
    pub(crate) fn watch(
        &self,
        path: &str,
        resource_version: &str,
        timeout: Duration,
    ) -> Result<WatchStream, KubeError> {
        let url = format!(
            "{}{path}?watch=1&allowWatchBookmarks=true&timeoutSeconds={}&resourceVersion={}",
            self.base_url,
            timeout.as_secs().max(1),
            percent_encode(resource_version)
        );
        let (agent, sent) = self.credentials()?;
        // The head must come as soon as a list's would; the body lasts the watch.
        let request = agent
            .get(&url)
            .config()
            .timeout_global(None)
            .timeout_recv_response(Some(self.request_timeout))
            .timeout_recv_body(Some(timeout + WATCH_GRACE))
            .build();
        let request = with_bearer(request, sent.as_deref());
        let response = request.call().map_err(|error| {
            KubeError::Transport(TransportError {
                doing: "no answer",
                error,
            })
        })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            // An error answer is small; read it as any other.
            return Err(self
                .answer(Ok(response), &[sent.as_deref()])
                .err()
                .unwrap_or(KubeError::Status {
                    code: status,
                    reason: String::new(),
                    message: String::new(),
                }));
        }
        Ok(WatchStream {
            reader: std::io::BufReader::new(Box::new(response.into_body().into_reader())),
        })
    }

    /// POSTs `body` (JSON) to `path` of the API server and reads the answer; `secret`, a
    /// value the body holds (a token under review), is cut out of error bodies as the
    /// client's own token is.
    pub(crate) fn post_json(
        &self,
        path: &str,
        body: &str,
        secret: Option<&str>,
    ) -> Result<String, KubeError> {
        let url = format!("{}{path}", self.base_url.trim_end_matches('/'));
        let (agent, sent) = self.credentials()?;
        let request = with_bearer(
            agent.post(&url).header("Content-Type", "application/json"),
            sent.as_deref(),
        );
        let response = request.send(body);
        self.answer(response, &[sent.as_deref(), secret])
    }

    /// The body of a 2xx answer, else the error it says, with `secrets` cut out of it.
    fn answer(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        secrets: &[Option<&str>],
    ) -> Result<String, KubeError> {
        let mut response = response.map_err(|error| {
            KubeError::Transport(TransportError {
                doing: "no answer",
                error,
            })
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_PAGE_BYTES)
            .read_to_string()
            .map_err(|error| {
                KubeError::Transport(TransportError {
                    doing: "reading the answer",
                    error,
                })
            })?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            if status == 401 {
                if let Some(Credential::Exec(session)) = self.credential.as_deref() {
                    session.state.lock().refused_at = Some(Instant::now());
                }
            }
            // A server or proxy that echoes the request's headers in its error must not
            // put the token into the log and `/status`.
            let mut text = text;
            for secret in secrets.iter().flatten() {
                if !secret.is_empty() && text.contains(secret) {
                    text = text.replace(secret, "<token>");
                }
            }
            Err(status_error(status, &text))
        }
    }
}

/// `request` with `Authorization: Bearer` when there is a token to send.
fn with_bearer<B>(
    request: ureq::RequestBuilder<B>,
    token: Option<&str>,
) -> ureq::RequestBuilder<B> {
    match token {
        Some(value) => request.header("Authorization", &format!("Bearer {value}")),
        None => request,
    }
}

/// How long past its `timeoutSeconds` a watch may stay silent before it is taken as dropped.
const WATCH_GRACE: Duration = Duration::from_secs(30);

/// Largest watch event: an object is at most 1.5 MB in etcd; this is far above.
const MAX_EVENT_BYTES: u64 = 16 << 20;

/// The events of one watch, a JSON document per line.
pub(crate) struct WatchStream {
    reader: std::io::BufReader<Box<dyn std::io::Read + Send>>,
}

impl WatchStream {
    /// The next event's text; `None` when the server ended the stream.
    pub(crate) fn next_event(&mut self) -> Result<Option<String>, KubeError> {
        use std::io::{BufRead, Read};
        loop {
            let mut line = Vec::new();
            let read = match (&mut self.reader)
                .take(MAX_EVENT_BYTES + 1)
                .read_until(b'\n', &mut line)
            {
                Ok(n) => n,
                // Between events, a dropped connection; within one, an event cut off.
                Err(e) if line.is_empty() => {
                    return Err(KubeError::Parse(ParseError::new(
                        "watch stream",
                        format!("dropped: {e}"),
                    )))
                }
                Err(e) => {
                    return Err(KubeError::Parse(ParseError::new(
                        "watch stream",
                        format!("cut off in the middle of an event: {e}"),
                    )))
                }
            };
            if read == 0 {
                return Ok(None);
            }
            if line.len() as u64 > MAX_EVENT_BYTES {
                return Err(KubeError::Parse(ParseError::new(
                    "watch event",
                    format!("more than {} MiB", MAX_EVENT_BYTES >> 20),
                )));
            }
            if !line.ends_with(b"\n") {
                return Err(KubeError::Parse(ParseError::new(
                    "watch stream",
                    "cut off in the middle of an event",
                )));
            }
            let text = String::from_utf8(line)
                .map_err(|_| KubeError::Parse(ParseError::new("watch event", "not UTF-8")))?;
            if !text.trim().is_empty() {
                return Ok(Some(text));
            }
        }
    }
}

/// One resource of a discovery document (`APIResourceList`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ApiResource {
    /// The plural, as in paths (`rollouts`); subresources are `rollouts/status`.
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) namespaced: bool,
}

/// 10,000 pages of 500 objects: five million, far beyond any cluster.
const MAX_PAGES: usize = 10_000;

/// One page of 500 large pods (50 KB each) is 25 MB; a much bigger answer is not an API
/// server, and every listed kind is read at once.
const MAX_PAGE_BYTES: u64 = 128 << 20;

/// The items of a list, how many pages it took, and the objects that could not be read.
#[derive(Debug)]
pub struct ListResult<T> {
    pub items: Vec<T>,
    pub(crate) pages: usize,
    /// The first few errors, for the log.
    pub(crate) malformed: Vec<ParseError>,
    pub(crate) malformed_count: usize,
    /// The list's `resourceVersion`, where a watch of it starts.
    pub(crate) resource_version: Option<String>,
}

/// Reads a Kubernetes `Status` object out of an error body, when there is one.
fn status_error(code: u16, body: &str) -> KubeError {
    #[derive(Deserialize)]
    struct Status {
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    match serde_json::from_str::<Status>(body) {
        Ok(s) => KubeError::Status {
            code,
            reason: s.reason.unwrap_or_default(),
            message: s.message.unwrap_or_default(),
        },
        Err(_) => KubeError::Status {
            code,
            reason: String::new(),
            message: body.chars().take(200).collect(),
        },
    }
}

fn parse_ca(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    if certs.is_empty() {
        return Err("no PEM certificate found".to_string());
    }
    Ok(certs)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    percent::encode(s, b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_objects_are_read() {
        let e = status_error(
            403,
            r#"{"kind":"Status","status":"Failure","message":"pods is forbidden","reason":"Forbidden","code":403}"#,
        );
        assert_eq!(e.to_string(), "HTTP 403 Forbidden: pods is forbidden");
        let e = status_error(502, "<html>bad gateway</html>");
        assert_eq!(e.to_string(), "HTTP 502 : <html>bad gateway</html>");
    }

    #[test]
    fn urls_are_checked() {
        assert!(KubeClient::new(&KubeConfig::new("localhost:8001")).is_err());
        assert!(KubeClient::new(&KubeConfig::new("http://127.0.0.1:8001/")).is_ok());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        assert!(parse_ca(b"not a pem").is_err());
    }

    #[test]
    fn continue_tokens_are_encoded() {
        assert_eq!(percent_encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }
}
