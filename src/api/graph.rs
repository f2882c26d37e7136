//! The graph's endpoints: `/cluster`, `/cluster/resources[/TYPE[/ID-REST]]` and `/debug`,
//! of the current snapshot or of an earlier one (`at=`), whole or as a query selects
//! (contract §7). A whole body is the snapshot's, serialized when it was published; a
//! selection is composed of the same pieces, so a query costs the selection and no
//! serialization.

use std::sync::Arc;

use super::error::ApiError;
use super::params::Params;
use super::ApiState;
use crate::graph::query::Query;
use crate::graph::selector::LabelSelector;
use crate::graph::{Id, Kind};
use crate::http::{layers, Body, Request, Response};
use crate::publish::changes::Gone;
use crate::publish::dot::DotOptions;
use crate::publish::snapshot::{self, Rendered, Snapshot};
use cluster_insight_wire::time::{parse_rfc3339_millis, rfc3339_millis};

/// Which body of a snapshot.
#[derive(Debug, Clone, Copy)]
pub(super) enum Form {
    /// `/cluster`: resources and relations.
    Cluster,
    /// `/cluster/resources`: every resource.
    Resources,
    /// `/cluster/resources/TYPE`.
    Type(Kind),
    /// `/debug`: DOT.
    Debug,
}

/// What `/cluster` takes: a selection, a time, and the format (JSON, or GraphML).
const GRAPH_PARAMS: &[&str] = &[
    "namespace",
    "type",
    "labelSelector",
    "around",
    "depth",
    "at",
    "format",
];

/// `/debug` draws the selection `/cluster` answers, with processes or without.
const DEBUG_PARAMS: &[&str] = &[
    "namespace",
    "type",
    "labelSelector",
    "around",
    "depth",
    "at",
    "processes",
];

impl Form {
    fn known(self) -> &'static [&'static str] {
        match self {
            Form::Cluster => GRAPH_PARAMS,
            Form::Debug => DEBUG_PARAMS,
            Form::Resources => &["namespace", "type", "labelSelector", "at"],
            Form::Type(_) => &["namespace", "labelSelector", "at"],
        }
    }
}

/// The farthest `depth` of `around`: the whole graph of most clusters is within it.
const MAX_DEPTH: u64 = 100;

/// A graph body: whole when no query narrows it, else the selection.
pub(super) fn answer(
    state: &ApiState,
    request: &Request,
    form: Form,
) -> Result<Response, ApiError> {
    let params = Params::of(request, form.known())?;
    let snapshot = snapshot_at(state, &params)?;
    let mut query = query_of(&params)?;
    if let Some((id, _)) = &query.around {
        if snapshot.index().position(id).is_none() {
            return Err(ApiError::NoSuchResource(id.to_string()));
        }
    }
    let dot = DotOptions {
        processes: params.flag("processes")?,
    };
    let graphml = match params.one("format")? {
        None | Some("json") => false,
        Some("graphml") => true,
        Some(other) => {
            return Err(ApiError::BadParameter(format!(
                "format={:?} is not json or graphml",
                other.chars().take(40).collect::<String>()
            )))
        }
    };
    if query.is_empty() && !dot.processes {
        let rendered = match form {
            Form::Cluster if graphml => snapshot.graphml(),
            Form::Cluster => snapshot.cluster(),
            Form::Resources => snapshot.resources(),
            Form::Type(kind) => snapshot
                .of_type(kind)
                .ok_or_else(|| ApiError::NotCollectedYet(kind.name().to_string()))?,
            Form::Debug => snapshot.debug(),
        };
        return Ok(respond(request, rendered));
    }
    if let Form::Type(kind) = form {
        query.types = vec![kind];
    }
    let selection = snapshot.index().select(&snapshot.graph, &query);
    let with_relations = matches!(form, Form::Cluster);
    let name = match form {
        Form::Type(kind) => format!("{}?{}", kind.name(), params.canonical()),
        _ => format!("{form:?}?{}", params.canonical()),
    };
    let rendered = match form {
        Form::Debug => snapshot.debug_selected(&selection, dot, &name),
        Form::Cluster if graphml => snapshot.graphml_selected(&selection, &name),
        _ => snapshot.selected(&selection, with_relations, &name),
    };
    Ok(respond(request, &rendered))
}

/// `/cluster/resources/TYPE/ID-REST`: one resource and the relations it is an end of.
pub(super) fn one(
    state: &ApiState,
    request: &Request,
    kind: Kind,
    rest: &str,
) -> Result<Response, ApiError> {
    let params = Params::of(request, &["at"])?;
    let snapshot = snapshot_at(state, &params)?;
    let id = format!("{}:{rest}", kind.name());
    let at = snapshot
        .index()
        .position(&id)
        .ok_or(ApiError::NoSuchResource(id))?;
    Ok(respond(request, &snapshot.one(at)))
}

fn query_of(params: &Params) -> Result<Query, ApiError> {
    let mut query = Query {
        namespaces: params.all("namespace").map(str::to_string).collect(),
        ..Query::default()
    };
    for name in params.all("type") {
        query.types.push(
            Kind::from_type_name(name).ok_or_else(|| ApiError::UnknownType(name.to_string()))?,
        );
    }
    if let Some(text) = params.one("labelSelector")? {
        query.selector = Some(
            LabelSelector::parse(text)
                .map_err(|e| ApiError::BadParameter(format!("labelSelector: {e}")))?,
        );
    }
    let depth = params.number("depth", 0..=MAX_DEPTH)?;
    match (params.one("around")?, depth) {
        (Some(id), depth) => {
            // At most MAX_DEPTH, which fits.
            let depth = u32::try_from(depth.unwrap_or(1)).unwrap_or(u32::MAX);
            query.around = Some((Id::new(id.to_string()), depth));
        }
        (None, Some(_)) => {
            return Err(ApiError::BadParameter(
                "depth is the depth of around=ID, which is missing".into(),
            ))
        }
        (None, None) => {}
    }
    Ok(query)
}

/// The current snapshot, or with `at=RFC3339` the one that was current then: the current
/// graph with the changes since undone. The last one made is kept, so that asking again
/// (paging through a view, a client polling) costs nothing.
fn snapshot_at(state: &ApiState, params: &Params) -> Result<Arc<Snapshot>, ApiError> {
    let current = state.shared.current().ok_or(ApiError::NoSnapshotYet)?;
    let Some(at) = params.one("at")? else {
        return Ok(current);
    };
    // A `+` of an offset sent unencoded arrives as a space (form encoding).
    let at_ms = parse_rfc3339_millis(&at.replace(' ', "+")).ok_or_else(|| {
        ApiError::BadParameter(format!(
            "at={:?} is not an RFC 3339 time such as 2026-12-01T12:00:00Z",
            at.chars().take(40).collect::<String>()
        ))
    })?;
    if at_ms > super::now_ms() {
        return Err(ApiError::BadParameter(format!("at={at} is in the future")));
    }
    // The log is read under its lock; the undoing and rendering are done without it.
    let rewind = state
        .shared
        .changes()
        .rewind_to(&current, at_ms)
        .map_err(gone)?;
    let Some(rewind) = rewind else {
        return Ok(current);
    };
    if let Some(past) = state
        .past
        .lock()
        .as_ref()
        .filter(|p| p.sequence == rewind.sequence)
    {
        return Ok(Arc::clone(past));
    }
    // One earlier snapshot is made at a time: at 150,000 pods one is gigabytes and seconds.
    let Some(_making) = state.making_past.try_lock() else {
        return Err(ApiError::Busy(
            "another earlier snapshot is being made; ask again shortly".into(),
        ));
    };
    let past = Arc::new(snapshot::render_past(
        rewind.graph(&current),
        &state.version,
        rewind.sequence,
    ));
    *state.past.lock() = Some(Arc::clone(&past));
    Ok(past)
}

/// What the log no longer has, as the API says it.
pub(super) fn gone(gone: Gone) -> ApiError {
    ApiError::Gone(match gone {
        Gone::TooOld { oldest, oldest_ms } => format!(
            "older than the history this master keeps (--history): its oldest snapshot is \
             {oldest}, published at {}; read /cluster again",
            rfc3339_millis(oldest_ms)
        ),
        Gone::Unknown { latest } => format!(
            "not a sequence this master has published (its latest is {latest}): it may have \
             restarted; read /cluster again"
        ),
        Gone::Empty => "nothing has been published yet".to_string(),
    })
}

/// A rendered body, gzipped when the client takes gzip, with its ETag; a client that has
/// it already gets 304 before anything is compressed.
pub(super) fn respond(request: &Request, rendered: &Rendered) -> Response {
    let gzip = super::accepts_gzip(request.header("Accept-Encoding"));
    let etag = if gzip {
        rendered.gzip_etag()
    } else {
        rendered.etag.clone()
    };
    if request
        .header("If-None-Match")
        .is_some_and(|tags| layers::etag_matches(tags, &etag))
    {
        return Response::new(304, rendered.content_type, Body::Empty)
            .with_header("ETag", &etag)
            .with_header("Vary", "Accept-Encoding")
            .with_header("Cache-Control", "no-cache");
    }
    let response = if gzip {
        Response::new(200, rendered.content_type, Body::Shared(rendered.gzip()))
            .with_header("Content-Encoding", "gzip")
            .with_header("ETag", &rendered.gzip_etag())
    } else {
        Response::new(200, rendered.content_type, rendered.body.clone())
            .with_header("ETag", &rendered.etag)
    };
    response
        .with_header("Vary", "Accept-Encoding")
        .with_header("Cache-Control", "no-cache")
}
