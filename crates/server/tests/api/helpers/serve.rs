//! `cortexlayer serve` as a user starts it, for the tests that need a real process (crash
//! and restart, the log a newcomer reads).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

pub struct Server {
    child: Child,
    /// Kept open for the life of the server, as a terminal would be.
    _stdout: BufReader<std::process::ChildStdout>,
    pub base: String,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Kills the process without warning (SIGKILL), as a crash or the OOM killer would.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cortexlayer serve` on the database at `db`.
pub fn start_on(db: &str, extra_env: &[(&str, &str)]) -> Server {
    // The tests' own HTTP clients use the same TLS provider as the product.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cortexlayer"));
    cmd.args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", db)
        .env(
            "CORTEX_DATA_DIR",
            std::env::temp_dir().join(format!("cortex-serve-{}", uuid::Uuid::now_v7())),
        )
        .env_remove("SMTP_URL")
        .env_remove("CORTEX_ENV")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start cortexlayer serve");
    let log = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().expect("stderr");
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read stdout");
    let mut rest = String::new();
    for _ in 0..3 {
        stdout.read_line(&mut rest).expect("read stdout");
    }
    let base = first
        .trim()
        .strip_prefix("CortexLayer is running. Open the dashboard: ")
        .map(|url| url.trim_end_matches('/'))
        .unwrap_or_else(|| {
            panic!(
                "unexpected first line {first:?}; log: {}",
                log.lock().expect("lock")
            )
        })
        .to_owned();
    assert!(rest.contains(&format!("API docs: {base}/docs")), "{rest}");
    assert!(rest.contains("Database: "), "{rest}");
    Server {
        child,
        _stdout: stdout,
        base,
        log,
    }
}
