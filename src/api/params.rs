//! Query parameters, read strictly: each endpoint names the parameters it takes, and any
//! other is a 400 that lists them (contract §7) rather than a filter silently not applied.

use super::error::ApiError;
use crate::http::Request;
use cluster_insight_wire::percent;

/// A request's query parameters, decoded, in the order given.
#[derive(Debug, Default)]
pub(super) struct Params(Vec<(String, String)>);

/// More parameters than any query of ours needs: a request with more is refused before
/// anything is done with them.
const MAX_PARAMS: usize = 64;

impl Params {
    /// The parameters of `request`, every one of them among `known`.
    pub(super) fn of(
        request: &Request,
        known: &'static [&'static str],
    ) -> Result<Params, ApiError> {
        let mut params = Vec::new();
        for part in request.query().unwrap_or("").split('&') {
            if part.is_empty() {
                continue;
            }
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let decode = |s: &str| {
                percent::decode_query_component(s).map_err(|_| {
                    ApiError::BadParameter("the query is not valid percent-encoding".into())
                })
            };
            let name = decode(name)?;
            if !known.contains(&name.as_str()) {
                return Err(ApiError::UnknownParameter(name, known));
            }
            if params.len() == MAX_PARAMS {
                return Err(ApiError::BadParameter(format!(
                    "more than {MAX_PARAMS} query parameters"
                )));
            }
            params.push((name, decode(value)?));
        }
        Ok(Params(params))
    }

    /// Every value given for `name`.
    pub(super) fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = name.to_string();
        self.0
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a parameter that may be given once.
    pub(super) fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::BadParameter(format!("{name} may be given once")));
        }
        Ok(first)
    }

    /// A yes-or-no parameter given at most once: `1`/`true` or `0`/`false`; absent is no.
    pub(super) fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.one(name)? {
            None | Some("0" | "false") => Ok(false),
            Some("1" | "true") => Ok(true),
            Some(other) => Err(ApiError::BadParameter(format!(
                "{name}={:?} is not 1, true, 0 or false",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }

    /// A whole number given once, within `range`.
    pub(super) fn number(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, ApiError> {
        let Some(text) = self.one(name)? else {
            return Ok(None);
        };
        match text.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::BadParameter(format!(
                "{name}={:?} is not a whole number from {} to {}",
                text.chars().take(40).collect::<String>(),
                range.start(),
                range.end()
            ))),
        }
    }

    /// The same parameters in one order, whatever order they came in: what names a
    /// query's answer in its ETag.
    pub(super) fn canonical(&self) -> String {
        let mut sorted: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        sorted.sort();
        sorted.join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_parameters_are_taken() {
        let known: &[&str] = &["namespace", "type"];
        let p = Params::of(
            &Request::get("/x?type=pods&namespace=a%20b&&type=nodes"),
            known,
        )
        .unwrap();
        assert_eq!(p.all("type").collect::<Vec<_>>(), ["pods", "nodes"]);
        assert_eq!(p.one("namespace").unwrap(), Some("a b"));
        assert!(p.one("type").is_err());
        assert_eq!(p.canonical(), "namespace=a b&type=nodes&type=pods");
        let err = Params::of(&Request::get("/x?nmespace=a"), known).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(
            Params::of(&Request::get("/x?type=%zz"), known)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            Params::of(&Request::get("/x"), known).unwrap().canonical(),
            ""
        );
        let many = format!("/x?{}", vec!["type=a"; 65].join("&"));
        assert_eq!(
            Params::of(&Request::get(&many), known)
                .unwrap_err()
                .status(),
            400
        );
    }
}
