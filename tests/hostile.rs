//! Hostile input against the real binary: every path and query parameter of every endpoint
//! with values built to break parsers, wrong methods, oversized headers and bodies, path
//! traversal. Nothing may answer 5xx, every API answer is JSON, and no file from outside
//! the site is ever served.

mod common;
use common::*;

/// Values for any parameter or path segment, already percent-encoded where a URL needs it.
const NASTY: [&str; 18] = [
    "",
    "-1",
    "0",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999999999",
    "1e9",
    "NaN",
    "abc",
    "%00",
    "%F0%9F%92%A5",
    "%FF%FE",
    "'%20OR%201=1--",
    "%27;DROP%20TABLE%20steps;--",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fCargo.toml",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "x%20y%3F%23",
];

fn endpoints(run: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for v in NASTY {
        paths.extend([
            format!("/api/runs/{v}"),
            format!("/api/stats/{v}"),
            format!("/api/run/{v}"),
            format!("/api/milestones/{v}?interval={v}"),
            format!("/api/milestones/500m?interval={v}"),
            format!("/api/metrics/{v}?limit={v}&start_step={v}"),
            format!("/api/metrics/{run}?limit={v}&start_step={v}"),
            format!("/api/metrics/{run}?max_points={v}&start_step={v}&end_step={v}&metrics={v}"),
            format!("/api/metrics/{run}?max_points=50&metrics=loss_total,{v}"),
            format!("/api/routing/{v}/{run}"),
            format!("/api/routing/mor/{v}?start_step={v}&limit={v}"),
            format!("/api/routing/mod/{run}?start_step={v}&limit={v}"),
            format!("/api/export/{v}/steps.csv"),
            format!("/api/export/{run}/{v}"),
            format!("/api/export/{run}/steps.csv?start_step={v}&end_step={v}&metrics={v}"),
            format!("/api/export/{run}/loss.png?width={v}&height={v}&log={v}&start_step={v}"),
            format!("/api/ema/{v}?start_step={v}&end_step={v}"),
            format!("/api/ema/500m?start_step={v}&end_step={v}"),
            format!("/api/adaptive_lr/{v}?limit={v}"),
            format!("/api/adaptive_lr/{run}?start_step={v}&limit={v}"),
            format!("/health?{v}={v}"),
            format!("/api/{v}"),
            format!("/ws/{v}?after_step={v}"),
            format!("/ws/{run}?after_step={v}"),
        ]);
    }
    paths
}

fn pages(run: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for v in NASTY {
        paths.extend([
            format!("/run/{v}"),
            format!("/?model={v}"),
            format!("/run/{run}?model={v}"),
            format!("/s/{v}"),
            format!("/s/{v}.png"),
            format!("/pkg/{v}"),
            format!("/{v}"),
        ]);
    }
    paths
}

#[test]
fn no_parameter_of_any_endpoint_brings_a_5xx() {
    let dir = temp_dir("hostile");
    let db = make_db(&dir, &["--steps", "2000", "--moe", "--nan"]);
    let s = Server::start(&db);
    let run = newest_run(&db);
    let mut answered = 0;
    for path in endpoints(&run) {
        let r = send(&s.addr, "GET", &path, b"");
        assert!(
            (200..500).contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.text()
        );
        let typed = r.head.contains("content-type: application/json")
            || r.head.contains("content-type: text/csv")
            || r.head.contains("content-type: image/");
        assert!(typed, "{path}: {}", r.head);
        if r.head.contains("application/json") {
            let _ = r.json();
        }
        answered += 1;
    }
    for path in pages(&run) {
        let r = send(&s.addr, "GET", &path, b"");
        assert!((200..500).contains(&r.status), "{path}: {}", r.status);
        let body = r.text();
        assert!(!body.contains("root:x:0:0"), "{path} served /etc/passwd");
        assert!(!body.contains("[package]"), "{path} served Cargo.toml");
        answered += 1;
    }
    assert!(answered > 400);
    // Still serving after all that.
    assert_eq!(s.get("/api/models").0, 200);
}

#[test]
fn wrong_methods_and_oversized_requests_are_refused_cleanly() {
    let dir = temp_dir("hostile-size");
    let db = make_db(&dir, &["--steps", "500"]);
    let s = Server::start(&db);
    for method in ["PUT", "DELETE", "PATCH", "POST"] {
        for path in ["/api/models", "/api/runs/500m", "/api/export/x/steps.csv"] {
            let r = send(&s.addr, method, path, b"{}");
            assert_eq!(r.status, 405, "{method} {path}");
        }
    }
    // Bodies beyond the cap, to the share endpoint and to a server function.
    let big = vec![b'x'; 1 << 20];
    for path in ["/api/snapshots", "/_sfn/get_dashboard"] {
        let r = send(&s.addr, "POST", path, &big);
        assert_eq!(r.status, 413, "{path}");
    }
    // A huge header line and very many headers.
    let huge = format!("X-Junk: {}\r\n", "a".repeat(512 * 1024));
    let r = send_raw(&s.addr, "GET", "/api/models", &huge, b"");
    assert!(
        r.status == 431 || r.status == 400 || r.status == 0,
        "a {} for a 512 KB header",
        r.status
    );
    let many: String = (0..2000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = send_raw(&s.addr, "GET", "/api/models", &many, b"");
    assert!(
        r.status == 431 || r.status == 400 || r.status == 0,
        "{}",
        r.status
    );
    // A path of 100 KB.
    let long = format!("/api/run/{}", "a".repeat(100 * 1024));
    let r = send(&s.addr, "GET", &long, b"");
    assert!(r.status < 500, "{}", r.status);
    assert_eq!(s.get("/api/models").0, 200, "still serving");
}
