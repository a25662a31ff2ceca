//! Who may read the runs. With `--token` (or `HYDRA_TOKEN`) every route — pages, API, server
//! functions, the live feed, shared snapshots, the site's own files — wants it, as
//! `Authorization: Bearer TOKEN`, or once as `?token=TOKEN` (a link to paste), which is
//! swapped for an HttpOnly cookie and taken out of the address bar. Without a token the
//! dashboard relies on listening on loopback (the default).
//!
//! Always: no cross-origin reads unless `--cors-origin` names the one origin allowed, and
//! no WebSocket from another site's page (browsers do not apply CORS to WebSockets, so any
//! page a person visits could otherwise follow their runs through `ws://127.0.0.1`).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The cookie a `?token=` link leaves behind.
pub const COOKIE: &str = "hydra_token";

/// How long the cookie lasts: a working week of checking a run.
const COOKIE_DAYS: u32 = 7;

/// The access rules the command line set.
#[derive(Clone, Debug, Default)]
pub struct Access {
    token: Option<Arc<str>>,
    cors_origin: Option<Arc<str>>,
}

impl Access {
    /// Checks the token and the origin as given on the command line.
    pub fn new(token: Option<String>, cors_origin: Option<String>) -> Result<Self, String> {
        let token = token.filter(|t| !t.is_empty());
        if let Some(t) = &token {
            if t.chars().count() < 16 {
                return Err(
                    "--token must be at least 16 characters (try: openssl rand -hex 16)".into(),
                );
            }
            if !t
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b";,\"\\".contains(&b))
            {
                return Err(
                    "--token may hold letters, digits and punctuation except ; , \" \\ (it travels in a cookie)"
                        .into(),
                );
            }
        }
        let cors_origin = cors_origin.filter(|o| !o.is_empty());
        if let Some(o) = &cors_origin {
            let scheme_ok = o.starts_with("http://") || o.starts_with("https://");
            if !scheme_ok || o.ends_with('/') || HeaderValue::from_str(o).is_err() {
                return Err(format!(
                    "--cors-origin {o:?} is not an origin; write it as the browser sends it, e.g. https://tools.example.com"
                ));
            }
        }
        Ok(Self {
            token: token.map(Into::into),
            cors_origin: cors_origin.map(Into::into),
        })
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }
}

/// The middleware in front of every route.
pub async fn guard(State(access): State<Access>, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    let allowed_origin = origin
        .as_deref()
        .filter(|o| access.cors_origin.as_deref() == Some(*o));
    // A CORS preflight carries no credentials; it is answered for the allowed origin only.
    if request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return preflight(allowed_origin);
    }
    if request.uri().path().starts_with("/ws/")
        && origin
            .as_deref()
            .is_some_and(|o| allowed_origin.is_none() && !same_origin(o, request.headers()))
    {
        return refuse(
            StatusCode::FORBIDDEN,
            "a live feed is not opened from another site's page",
            false,
        );
    }

    let mut response = match &access.token {
        None => next.run(request).await,
        Some(token) => match credential(&request, token) {
            Credential::Valid => next.run(request).await,
            Credential::InQuery { redirect } => {
                let cookie = cookie_for(token, request.headers());
                let mut response = match redirect {
                    // A page: reload it without the token in the address bar or history.
                    Some(location) => (
                        StatusCode::SEE_OTHER,
                        [
                            (header::LOCATION, location),
                            (header::CACHE_CONTROL, "no-store".into()),
                        ],
                    )
                        .into_response(),
                    None => next.run(request).await,
                };
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, v);
                }
                response
            }
            Credential::Missing | Credential::Wrong => {
                let wants_html = wants_html(request.headers());
                refuse(
                    StatusCode::UNAUTHORIZED,
                    "this dashboard wants its access token: send `Authorization: Bearer TOKEN`, or open a link with ?token=TOKEN once",
                    wants_html,
                )
            }
        },
    };
    if let Some(o) = allowed_origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

enum Credential {
    Valid,
    /// Given as `?token=`; a GET of a page is redirected to `redirect`, the same address
    /// without it.
    InQuery {
        redirect: Option<String>,
    },
    Missing,
    Wrong,
}

fn credential(request: &Request, token: &str) -> Credential {
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value);
    let query = request.uri().query().unwrap_or("");
    let in_query = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    let given = [bearer, cookie, in_query.as_deref()];
    if given
        .iter()
        .flatten()
        .any(|g| same(g.as_bytes(), token.as_bytes()))
    {
        if bearer.is_none() && cookie.is_none() {
            let page = request.method() == Method::GET && !is_api(request.uri().path());
            return Credential::InQuery {
                redirect: page.then(|| without_token(request.uri())),
            };
        }
        return Credential::Valid;
    }
    if given.iter().all(Option::is_none) {
        Credential::Missing
    } else {
        Credential::Wrong
    }
}

/// Equal bytes, in time that depends on the length only, so the token cannot be guessed a
/// character at a time by timing.
fn same(given: &[u8], token: &[u8]) -> bool {
    if given.len() != token.len() {
        return false;
    }
    let diff = given
        .iter()
        .zip(token)
        .fold(0_u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

/// The request's address with `token=` taken out of the query. Never `//host…`, which a
/// browser would read as another site.
fn without_token(uri: &axum::http::Uri) -> String {
    let path = format!("/{}", uri.path().trim_start_matches('/'));
    let rest: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k != "token")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if rest.is_empty() {
        return path;
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(rest)
        .finish();
    format!("{path}?{query}")
}

fn cookie_for(token: &str, headers: &HeaderMap) -> String {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        COOKIE_DAYS * 24 * 3600,
        if secure { "; Secure" } else { "" }
    )
}

/// Machine endpoints answer in JSON and are never redirected.
fn is_api(path: &str) -> bool {
    ["/api/", "/ws/", "/_sfn/", "/pkg/"]
        .iter()
        .any(|p| path.starts_with(p))
        || path.ends_with(".png")
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Whether `origin` is the address this request was sent to (the page's own origin).
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

fn preflight(allowed: Option<&str>) -> Response {
    let Some(origin) = allowed.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type"),
            ),
            (
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            ),
            (header::VARY, HeaderValue::from_static("Origin")),
        ],
    )
        .into_response()
}

/// A refusal: JSON like every API error, or for a person's browser a page with a field for
/// the token (it submits as `?token=`, which sets the cookie).
fn refuse(status: StatusCode, message: &str, html: bool) -> Response {
    let mut response = if html {
        let page = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>HYDRA — \
             access token</title><meta name=\"viewport\" content=\"width=device-width\"></head>\
             <body style=\"font-family:sans-serif;background:#0d1117;color:#c9d1d9;padding:2rem\">\
             <h1>This dashboard wants its access token</h1><p>It was started with <code>--token\
             </code>. Paste the token, or open the link you were given.</p><form method=\"get\">\
             <input name=\"token\" type=\"password\" autocomplete=\"current-password\" \
             aria-label=\"access token\" autofocus> <button type=\"submit\">Open</button></form>\
             </body></html>";
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page,
        )
            .into_response()
    } else {
        let body = serde_json::json!({"error": message, "status": status.as_u16()});
        (status, axum::Json(body)).into_response()
    };
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hydra-dashboard\""),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole_and_exact() {
        assert!(same(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same(b"0123456789abcdeF", b"0123456789abcdef"));
        assert!(!same(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!same(b"", b"0123456789abcdef"));
    }

    #[test]
    fn the_token_leaves_the_address_and_never_for_another_site() {
        let uri = |s: &str| s.parse::<axum::http::Uri>().unwrap();
        assert_eq!(
            without_token(&uri("/run/a%2Fb?token=x&model=m")),
            "/run/a%2Fb?model=m"
        );
        assert_eq!(without_token(&uri("/?token=x")), "/");
        assert_eq!(
            without_token(&uri("//evil.example/?token=x")),
            "/evil.example/"
        );
    }

    #[test]
    fn weak_or_cookie_breaking_tokens_and_bad_origins_are_refused_at_start() {
        assert!(Access::new(Some("short".into()), None).is_err());
        assert!(Access::new(Some("0123456789abcdef;x".into()), None).is_err());
        assert!(Access::new(Some("0123456789abcdef".into()), None)
            .unwrap()
            .has_token());
        assert!(!Access::new(Some(String::new()), None).unwrap().has_token());
        assert!(Access::new(None, Some("tools.example.com".into())).is_err());
        assert!(Access::new(None, Some("https://tools.example.com/".into())).is_err());
        assert!(Access::new(None, Some("https://tools.example.com".into())).is_ok());
    }
}
