//! The map's files (`/` and `/ui/…`), embedded in the binary so that the map needs no
//! network and no files beside the binary. `web/` holds them; `web/vendor/` the graph
//! library, as published, with its licences.
//!
//! They carry no cluster data: the page reads the API like any other client, so they are
//! served to every caller, and a page that is refused the API asks for a token.

use std::sync::{Arc, OnceLock};

use crate::graph::fingerprint::bytes_hash;
use crate::http::{Body, Request, Response};

struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const SCRIPT: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: HTML,
        bytes: include_bytes!("../../web/index.html"),
    },
    Asset {
        path: "/ui/map.js",
        content_type: SCRIPT,
        bytes: include_bytes!("../../web/map.js"),
    },
    Asset {
        path: "/ui/map.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../web/map.css"),
    },
    Asset {
        path: "/ui/vendor/cytoscape.min.js",
        content_type: SCRIPT,
        bytes: include_bytes!("../../web/vendor/cytoscape.min.js"),
    },
    Asset {
        path: "/ui/vendor/layout-base.js",
        content_type: SCRIPT,
        bytes: include_bytes!("../../web/vendor/layout-base.js"),
    },
    Asset {
        path: "/ui/vendor/cose-base.js",
        content_type: SCRIPT,
        bytes: include_bytes!("../../web/vendor/cose-base.js"),
    },
    Asset {
        path: "/ui/vendor/cytoscape-fcose.js",
        content_type: SCRIPT,
        bytes: include_bytes!("../../web/vendor/cytoscape-fcose.js"),
    },
    Asset {
        path: "/ui/vendor/README.md",
        content_type: TEXT,
        bytes: include_bytes!("../../web/vendor/README.md"),
    },
    Asset {
        path: "/ui/vendor/cytoscape.LICENSE",
        content_type: TEXT,
        bytes: include_bytes!("../../web/vendor/cytoscape.LICENSE"),
    },
    Asset {
        path: "/ui/vendor/cytoscape-fcose.LICENSE",
        content_type: TEXT,
        bytes: include_bytes!("../../web/vendor/cytoscape-fcose.LICENSE"),
    },
    Asset {
        path: "/ui/vendor/cose-base.LICENSE",
        content_type: TEXT,
        bytes: include_bytes!("../../web/vendor/cose-base.LICENSE"),
    },
    Asset {
        path: "/ui/vendor/layout-base.LICENSE",
        content_type: TEXT,
        bytes: include_bytes!("../../web/vendor/layout-base.LICENSE"),
    },
];

/// Only the page's own files run; the API is read from the same origin; no one may frame
/// the page. Styles may be inline: the graph library sets them on its elements.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// An asset as served, made on first use: its bytes shared (a reference count per answer,
/// not a copy), their gzip, and the ETag of the bytes.
struct Served {
    plain: Arc<[u8]>,
    gzip: Arc<[u8]>,
    etag: String,
}

fn served(index: usize) -> &'static Served {
    static SERVED: OnceLock<Vec<OnceLock<Served>>> = OnceLock::new();
    let all = SERVED.get_or_init(|| ASSETS.iter().map(|_| OnceLock::new()).collect());
    all[index].get_or_init(|| {
        let plain: Arc<[u8]> = Arc::from(ASSETS[index].bytes);
        Served {
            gzip: Body::Shared(Arc::clone(&plain)).gzip().into(),
            etag: format!("\"ui-{:016x}\"", bytes_hash(&plain)),
            plain,
        }
    })
}

/// Whether `path` is one of the map's files.
pub(crate) fn is_asset(path: &str) -> bool {
    ASSETS.iter().any(|a| a.path == path)
}

/// The answer for one of the map's files, or `None` if `path` is not one.
pub(crate) fn answer(request: &Request, path: &str) -> Option<Response> {
    let index = ASSETS.iter().position(|a| a.path == path)?;
    let asset = &ASSETS[index];
    let served = served(index);
    let gzip = super::accepts_gzip(request.header("Accept-Encoding"));
    let etag = if gzip {
        format!("{}-gz\"", served.etag.trim_end_matches('"'))
    } else {
        served.etag.clone()
    };
    let body = if gzip {
        Body::Shared(Arc::clone(&served.gzip))
    } else {
        Body::Shared(Arc::clone(&served.plain))
    };
    let mut response = Response::new(200, asset.content_type, body)
        .with_header("ETag", &etag)
        .with_header("Vary", "Accept-Encoding")
        // Checked on every load, so that a new binary's page is never mixed with an old one's
        // script; unchanged files cost a 304.
        .with_header("Cache-Control", "no-cache")
        .with_header("X-Content-Type-Options", "nosniff");
    if gzip {
        response = response.with_header("Content-Encoding", "gzip");
    }
    if asset.content_type == HTML {
        response = response
            .with_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            .with_header("Referrer-Policy", "no-referrer");
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_served_with_its_type_and_a_stable_etag() {
        for asset in ASSETS {
            let plain = answer(&Request::get(asset.path), asset.path).unwrap();
            assert_eq!(plain.status, 200);
            assert_eq!(plain.header("Content-Type"), Some(asset.content_type));
            assert_eq!(plain.body.to_vec(), asset.bytes, "{}", asset.path);
            let again = answer(&Request::get(asset.path), asset.path).unwrap();
            assert_eq!(plain.header("ETag"), again.header("ETag"));
            let zipped = answer(
                &Request::get(asset.path).with_header("Accept-Encoding", "gzip"),
                asset.path,
            )
            .unwrap();
            assert_eq!(zipped.header("Content-Encoding"), Some("gzip"));
            assert_ne!(zipped.header("ETag"), plain.header("ETag"));
            let mut unzipped = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(&zipped.body.to_vec()[..]),
                &mut unzipped,
            )
            .unwrap();
            assert_eq!(unzipped, asset.bytes, "{}", asset.path);
        }
        assert!(answer(&Request::get("/ui/nothing.js"), "/ui/nothing.js").is_none());
    }

    #[test]
    fn the_page_names_only_files_that_are_served() {
        let page = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        let mut named = 0;
        for quote in page.split("=\"").skip(1) {
            let target = quote.split('"').next().unwrap();
            if target.starts_with("/ui/") {
                assert!(is_asset(target), "{target} is not embedded");
                named += 1;
            }
        }
        assert!(named >= 6, "{named}");
    }
}
