//! Access control against the real binary on loopback: with `--token` every route wants it,
//! a `?token=` link becomes an HttpOnly cookie, and other sites can neither read the API nor
//! open the live feed.

mod common;
use common::*;

const TOKEN: &str = "s3cret-token-0123456789";

#[test]
fn with_a_token_every_route_wants_it() {
    let dir = temp_dir("auth");
    let db = make_db(&dir, &[]);
    let state = temp_dir("auth-state");
    let s = Server::start_with(
        &db,
        &["--token", TOKEN, "--state-dir", state.to_str().unwrap()],
    );
    let run = newest_run(&db);
    let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
    let wrong = "Authorization: Bearer s3cret-token-0123456780\r\n";

    let routes = [
        "/".to_string(),
        format!("/run/{run}"),
        "/api/models".to_string(),
        format!("/api/metrics/{run}?max_points=100"),
        format!("/api/export/{run}/steps.csv"),
        format!("/ws/{run}"),
        "/pkg/hydra-dashboard.wasm".to_string(),
        "/s/0123456789abcdef0123456789abcdef".to_string(),
        "/favicon.ico".to_string(),
    ];
    for path in &routes {
        for headers in ["", wrong] {
            let r = send_raw(&s.addr, "GET", path, headers, b"");
            assert_eq!(r.status, 401, "{path} with {headers:?}");
            assert!(r.head.contains("www-authenticate: bearer"), "{path}");
            assert!(
                !r.text().contains(&run) || path.contains(&run),
                "nothing leaks"
            );
        }
        let r = send_raw(&s.addr, "GET", path, &bearer, b"");
        assert_ne!(r.status, 401, "{path} with the token");
    }
    // Server functions and the share endpoint are POSTs: guarded the same way.
    let r = send_raw(&s.addr, "POST", "/api/snapshots", "", b"{}");
    assert_eq!(r.status, 401);
    let r = send_raw(&s.addr, "POST", "/_sfn/get_dashboard", "", b"");
    assert_eq!(r.status, 401);
    let created = send_raw(&s.addr, "POST", "/api/snapshots", &bearer, b"{}");
    assert_eq!(created.status, 201, "{}", created.text());
    let url = created.json()["url"].as_str().unwrap().to_string();
    assert_eq!(send_raw(&s.addr, "GET", &url, "", b"").status, 401);
    assert_eq!(send_raw(&s.addr, "GET", &url, &bearer, b"").status, 200);

    // A person's browser gets a page asking for the token, not JSON.
    let r = send_raw(&s.addr, "GET", "/", "Accept: text/html\r\n", b"");
    assert_eq!(r.status, 401);
    assert!(r.text().contains("<form method=\"get\">") && r.text().contains("name=\"token\""));
    let r = send_raw(&s.addr, "GET", "/api/models", "", b"");
    assert!(r.json()["error"].as_str().unwrap().contains("Bearer"));
}

#[test]
fn a_token_link_becomes_a_cookie_and_leaves_the_address_bar() {
    let dir = temp_dir("auth-link");
    let db = make_db(&dir, &[]);
    let s = Server::start_with(&db, &["--token", TOKEN]);
    let run = newest_run(&db);

    let r = send_raw(
        &s.addr,
        "GET",
        &format!("/run/{run}?model=500m&token={TOKEN}"),
        "",
        b"",
    );
    assert_eq!(r.status, 303);
    assert!(
        r.head
            .contains(&format!("location: /run/{run}?model=500m\r\n").to_lowercase()),
        "{}",
        r.head
    );
    let cookie = r
        .head
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .expect("a cookie")
        .to_string();
    assert!(
        cookie.contains("httponly") && cookie.contains("samesite=lax"),
        "{cookie}"
    );
    assert!(cookie.contains(&format!("hydra_token={}", TOKEN.to_lowercase())));

    let jar = format!("Cookie: theme=dark; hydra_token={TOKEN}\r\n");
    let page = send_raw(&s.addr, "GET", &format!("/run/{run}"), &jar, b"");
    assert_eq!(page.status, 200);
    assert!(page.text().contains(&run));
    assert_eq!(
        send_raw(&s.addr, "GET", "/api/models", &jar, b"").status,
        200
    );

    // API calls with ?token= answer directly; the redirect is for pages.
    let r = send_raw(
        &s.addr,
        "GET",
        &format!("/api/models?token={TOKEN}"),
        "",
        b"",
    );
    assert_eq!(r.status, 200);
    // A link crafted to bounce elsewhere stays on this site.
    let r = send_raw(
        &s.addr,
        "GET",
        &format!("//evil.example/?token={TOKEN}"),
        "",
        b"",
    );
    assert_eq!(r.status, 303);
    assert!(
        r.head.contains("location: /evil.example/\r\n"),
        "{}",
        r.head
    );
    // A wrong token in a link is refused, not swapped for a cookie.
    let r = send_raw(&s.addr, "GET", "/?token=not-the-token-at-all", "", b"");
    assert_eq!(r.status, 401);
    assert!(!r.head.contains("set-cookie"));
}

#[test]
fn other_sites_neither_read_the_api_nor_follow_the_live_feed() {
    let dir = temp_dir("auth-cors");
    let db = make_db(&dir, &[]);
    let run = newest_run(&db);
    let upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    let s = Server::start(&db);
    let r = send_raw(
        &s.addr,
        "GET",
        "/api/models",
        "Origin: http://evil.example\r\n",
        b"",
    );
    assert_eq!(r.status, 200);
    assert!(
        !r.head.contains("access-control-allow-origin"),
        "no CORS by default"
    );
    let evil_ws = format!("Origin: http://evil.example\r\n{upgrade}");
    let r = send_raw(&s.addr, "GET", &format!("/ws/{run}"), &evil_ws, b"");
    assert_eq!(r.status, 403, "{}", r.text());
    let own_ws = format!("Origin: http://{}\r\n{upgrade}", s.addr);
    let r = send_raw(&s.addr, "GET", &format!("/ws/{run}"), &own_ws, b"");
    assert_eq!(r.status, 101, "the page's own origin opens the feed");
    drop(s);

    let s = Server::start_with(&db, &["--cors-origin", "https://tools.example"]);
    let ok = "Origin: https://tools.example\r\n";
    let r = send_raw(&s.addr, "GET", "/api/models", ok, b"");
    assert!(r
        .head
        .contains("access-control-allow-origin: https://tools.example"));
    let preflight = format!("{ok}Access-Control-Request-Method: POST\r\n");
    let r = send_raw(&s.addr, "OPTIONS", "/api/snapshots", &preflight, b"");
    assert_eq!(r.status, 204);
    assert!(r
        .head
        .contains("access-control-allow-headers: authorization, content-type"));
    let r = send_raw(
        &s.addr,
        "GET",
        "/api/models",
        "Origin: https://other.example\r\n",
        b"",
    );
    assert!(!r.head.contains("access-control-allow-origin"));
}

#[test]
fn bad_access_flags_stop_the_start_with_a_reason() {
    let dir = temp_dir("auth-flags");
    let db = make_db(&dir, &[]);
    for (flags, says) in [
        (vec!["--token", "short"], "at least 16"),
        (vec!["--cors-origin", "tools.example"], "not an origin"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hydra-dashboard"))
            .args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(&db)
            .args(&flags)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{flags:?}: {err}");
    }
}
