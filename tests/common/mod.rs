//! Test helpers: real-format databases from the independent fixture writer, the real binary
//! on loopback, and a minimal HTTP client (no client library needed for GETs).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// `../shared/fixtures/make_training_db.py`, or `$HYDRA_FIXTURES/make_training_db.py`.
pub fn fixture_script() -> PathBuf {
    let dir = std::env::var("HYDRA_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    dir.join("make_training_db.py")
}

/// A fresh empty directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hydra-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `dir/training.db` with the fixture writer and the given flags.
pub fn make_db(dir: &Path, args: &[&str]) -> PathBuf {
    let db = dir.join("training.db");
    let status = Command::new("python3")
        .arg(fixture_script())
        .arg(&db)
        .args(args)
        .status()
        .expect("python3 runs the fixture writer");
    assert!(status.success(), "fixture writer failed for {args:?}");
    db
}

/// Two models, two runs each; the first with NaN and Inf losses.
pub fn two_models() -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = temp_dir("two-models");
    let db = make_db(&dir, &["--nan", "--steps", "30000", "--every", "5"]);
    let status = std::process::Command::new("python3")
        .arg(fixture_script())
        .arg(&db)
        .args([
            "--model", "626m", "--steps", "24000", "--every", "4", "--seed", "7",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    (dir, db)
}

/// The run ids `/api/runs` lists, oldest first.
pub fn run_ids(s: &Server) -> Vec<String> {
    let (status, rows) = s.json("/api/runs");
    assert_eq!(status, 200, "{rows}");
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect()
}

/// Runs SQL on a test database through Python's sqlite3, as a third party would edit it.
pub fn sql(db: &Path, script: &str) {
    let status = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit(); c.close()",
        ])
        .arg(db)
        .arg(script)
        .status()
        .unwrap();
    assert!(status.success(), "sql failed: {script}");
}

/// The real binary serving a database on an ephemeral loopback port; killed on drop.
pub struct Server {
    child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(db: &Path) -> Self {
        Self::start_with(db, &[])
    }

    /// Started with more `serve` flags. Shared snapshots and alert memory go to a fresh
    /// temporary directory unless the flags say `--state-dir`, never into the tester's home
    /// nor shared between servers.
    pub fn start_with(db: &Path, flags: &[&str]) -> Self {
        Self::serve(&[&["--db", db.to_str().unwrap()][..], flags].concat())
    }

    /// Serving the runs shipped to the PostgreSQL at `url` (`--store`).
    pub fn on_store(url: &str) -> Self {
        Self::serve(&["--store", url])
    }

    /// `serve` on a free loopback port with `flags`.
    pub fn serve(flags: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hydra-dashboard"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(flags)
            .env("HYDRA_STATE_DIR", temp_dir("state"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .unwrap_or_else(|| panic!("no URL in the first line: {line:?}"))
            .trim()
            .to_string();
        Self { child, addr }
    }

    /// Serving a trainer's working directory (`--root DIR`), with more `serve` flags.
    pub fn watching(dir: &Path, flags: &[&str]) -> Self {
        let root = ["--root", dir.to_str().unwrap()];
        Self::start_with(
            &dir.join("checkpoints/training.db"),
            &[&root[..], flags].concat(),
        )
    }

    /// The server's peak resident memory so far, in MiB (Linux `VmHWM`).
    pub fn peak_rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib / 1024
    }

    /// GET `path` (already percent-encoded); returns status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        http(&self.addr, "GET", path)
    }

    /// Waits until the alerts have read the history of every run the server knows (its
    /// start-up replay): until then a run's alerts are not all told yet, and an answer
    /// compared with another server's would differ by when each was asked.
    pub fn alerts_settled(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let (status, v) = self.json("/api/alerts?state=all");
            if status == 200 && v["history_read"] == true {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the alerts never read every run: {status} {v}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// GET expecting JSON; panics if the body is not strict JSON.
    pub fn json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = self.get(path);
        let value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: not strict JSON ({e}): {body:.300}"));
        (status, value)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The response head of a GET, lower-cased: status line and headers.
pub fn head_of(addr: &str, path: &str) -> String {
    let text = request(addr, "GET", path);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.to_ascii_lowercase()
}

/// One request on its own connection; the whole raw response.
fn request(addr: &str, method: &str, path: &str) -> String {
    String::from_utf8_lossy(&raw_request(addr, method, path, "", b"")).into_owned()
}

fn raw_request(addr: &str, method: &str, path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let connection = if headers.to_ascii_lowercase().contains("connection:") {
        ""
    } else {
        "Connection: close\r\n"
    };
    let mut message = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{connection}{headers}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    message.extend_from_slice(body);
    // A server may answer before the request is all sent (413 for a body over the cap, 431
    // for a huge header) and close; the answer is what is under test, so a request cut short
    // is not a failure here.
    if let Err(e) = stream.write_all(&message) {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "writing the request: {e}"
        );
    }
    let mut raw = Vec::new();
    let mut buf = [0_u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        // A connection kept open (a switch to WebSocket, or a refused one): stop at the end
        // of the answer rather than wait for a close.
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let upgraded = head.starts_with("http/1.1 101");
            if upgraded || length.is_some_and(|n| raw.len() >= end + 4 + n) {
                break;
            }
        }
    }
    raw
}

/// A response: status, head (lower-cased) and body bytes, de-chunked.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not strict JSON ({e}): {:.300}", self.text()))
    }
}

/// `method path` with `body`, on its own connection.
pub fn send(addr: &str, method: &str, path: &str, body: &[u8]) -> Reply {
    send_raw(addr, method, path, "", body)
}

/// `method path` with extra header lines (each `Name: value\r\n`) and `body`.
pub fn send_raw(addr: &str, method: &str, path: &str, headers: &str, body: &[u8]) -> Reply {
    let raw = raw_request(addr, method, path, headers, body);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let rest = raw.get(split + 4..).unwrap_or_default();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Reply { status, head, body }
}

pub fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let reply = send(addr, method, path, b"");
    (reply.status, reply.text())
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..eol]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let rest = &body[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        body = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// The run a dashboard opens by default in a one-model file: the newest.
pub fn newest_run(db: &Path) -> String {
    query(
        db,
        "SELECT run_id FROM runs ORDER BY start_step DESC LIMIT 1",
    )
}

/// One value from a test database through Python's sqlite3: `SELECT …` → its text.
pub fn query(db: &Path, select: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(sys.argv[2]).fetchone()[0]); c.close()",
        ])
        .arg(db)
        .arg(select)
        .output()
        .unwrap();
    assert!(out.status.success(), "query failed: {select}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every file in `dir` with its size and a hash of its bytes, to prove nothing changed.
pub fn snapshot(dir: &Path) -> Vec<(String, u64, u64)> {
    use std::hash::{Hash, Hasher};
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap_or_default();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                bytes.len() as u64,
                h.finish(),
            )
        })
        .collect();
    files.sort();
    files
}

/// `../shared/fixtures/hydra_trainer.py`, or `$HYDRA_FIXTURES/hydra_trainer.py`.
pub fn trainer_script() -> PathBuf {
    fixture_script().with_file_name("hydra_trainer.py")
}

/// Runs the trainer-like fixture in `dir` with `args` to its end; the database it leaves
/// (when the run reached its end).
pub fn train(dir: &Path, args: &[&str]) -> PathBuf {
    let status = Command::new("python3")
        .arg(trainer_script())
        .arg(dir)
        .args(args)
        .status()
        .expect("python3 runs the trainer fixture");
    assert!(status.success(), "hydra_trainer.py failed for {args:?}");
    dir.join("checkpoints").join("training.db")
}

/// The step numbers of an `/api/metrics` page, in its order.
pub fn step_numbers(page: &serde_json::Value) -> Vec<i64> {
    page["steps"]
        .as_array()
        .expect("a page of steps")
        .iter()
        .map(|s| s["step"].as_i64().expect("a step number"))
        .collect()
}

/// GET `path` accepting gzip: the reply, which must be gzipped, and its body decoded.
pub fn gzipped(addr: &str, path: &str) -> (Reply, String) {
    use std::io::Read;
    let reply = send_raw(addr, "GET", path, "Accept-Encoding: gzip\r\n", b"");
    assert!(
        reply.head.contains("content-encoding: gzip"),
        "{path}: {}",
        reply.head
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(&reply.body[..])
        .read_to_string(&mut text)
        .unwrap();
    (reply, text)
}

/// The trainer fixture training in `dir` in real time; killed on drop.
pub struct Training(pub Child);

impl Training {
    /// `hydra_trainer.py --live` in `dir` with `args`.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        Self(
            Command::new("python3")
                .arg(trainer_script())
                .arg(dir)
                .arg("--live")
                .args(args)
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Training {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
