//! The built site (wasm, js, css, favicon): baked into the binary with the `embed` feature,
//! read from `site_root` on disk otherwise. Either way only files of the site are served:
//! a path is looked up by name, never joined onto the filesystem unchecked.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

#[cfg(feature = "embed")]
#[derive(rust_embed::RustEmbed)]
#[folder = "target/site/"]
struct Site;

/// A file of the site and whether it is a precompressed variant.
struct Found {
    bytes: Vec<u8>,
    encoding: Option<&'static str>,
}

/// Serves `path` (without its leading `/`) from the site, or a small 404 page.
pub fn serve(path: &str, site_root: &str, headers: &HeaderMap) -> Response {
    let Some(path) = clean(path) else {
        return not_found();
    };
    let accepts = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(found) = find(&path, site_root, accepts) else {
        return not_found();
    };
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    let mut response = Response::new(Body::from(found.bytes));
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    // File names carry no hash, so the browser must revalidate after an upgrade.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(enc) = found.encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    response
}

/// Accepts only plain relative paths of safe names: no `..`, no hidden files, no
/// backslashes or NULs. Anything else is simply not a file of the site.
fn clean(path: &str) -> Option<String> {
    let path = path.trim_start_matches('/');
    if path.is_empty() || path.len() > 256 {
        return None;
    }
    let ok = path.split('/').all(|seg| {
        !seg.is_empty()
            && !seg.starts_with('.')
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    ok.then(|| path.to_string())
}

fn find(path: &str, site_root: &str, accepts: &str) -> Option<Found> {
    for (suffix, encoding) in [(".br", "br"), (".gz", "gzip")] {
        if accepts.contains(encoding) {
            if let Some(bytes) = read(&format!("{path}{suffix}"), site_root) {
                return Some(Found {
                    bytes,
                    encoding: Some(encoding),
                });
            }
        }
    }
    read(path, site_root).map(|bytes| Found {
        bytes,
        encoding: None,
    })
}

#[cfg(feature = "embed")]
fn read(path: &str, _site_root: &str) -> Option<Vec<u8>> {
    Site::get(path).map(|f| f.data.into_owned())
}

#[cfg(not(feature = "embed"))]
fn read(path: &str, site_root: &str) -> Option<Vec<u8>> {
    std::fs::read(std::path::Path::new(site_root).join(path)).ok()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found · HYDRA</title></head>\
             <body style=\"background:#0d1117;color:#e6edf3;font-family:system-ui,sans-serif;padding:3rem\">\
             <h1>Not found</h1><p>There is no page here. <a style=\"color:#58a6ff\" href=\"/\">Back to the dashboard</a>.</p></body></html>",
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn only_plain_site_paths_are_served() {
        assert_eq!(
            clean("/pkg/hydra-dashboard.wasm").as_deref(),
            Some("pkg/hydra-dashboard.wasm")
        );
        assert_eq!(clean("favicon.ico").as_deref(), Some("favicon.ico"));
        for bad in [
            "",
            "/",
            "../Cargo.toml",
            "pkg/../../etc/passwd",
            "pkg//x",
            ".env",
            "pkg/.hidden",
            "a\\b",
            "a\0b",
            "pkg/%2e%2e/x",
            "/etc/passwd/",
        ] {
            assert_eq!(clean(bad), None, "{bad:?}");
        }
    }
}
