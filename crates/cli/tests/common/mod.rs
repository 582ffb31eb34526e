//! The one helper that starts `moldau server` for the CLI tests, and runs commands.
// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod cluster;
pub mod connect;
pub mod proxy;

pub const BIN: &str = env!("CARGO_BIN_EXE_moldau");
/// Upper bound for any one command; commands bound their own requests far below it.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(90);
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// A `moldau server` child process with its own data directory, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    pub _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A node with a fresh data directory.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut server = Server::start_in(tmp.path(), &[]);
        server._tmp = Some(tmp);
        server
    }

    /// A node on an existing data directory, with extra `moldau server` arguments
    /// (they come after the listener and data directory overrides).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Server {
        Server::start_wrapped(dir, &[], extra)
    }

    /// As `start_in`, with `moldau` run under a wrapper command (e.g. `prlimit --nofile=N`).
    pub fn start_wrapped(dir: &Path, wrapper: &[&str], extra: &[&str]) -> Server {
        let listeners = format!("listeners=PLAINTEXT://127.0.0.1:{}", free_port());
        let mut server =
            Server::spawn(dir, wrapper, &[&["--override", &listeners], extra].concat());
        server.wait_until_accepting();
        server
    }

    /// Starts `moldau server` without waiting for it to accept. `args` must set
    /// `listeners`; the first listener is where clients connect (`addr`).
    pub fn spawn(dir: &Path, wrapper: &[&str], args: &[&str]) -> Server {
        // The last one wins, as in `moldau server`.
        let listeners = args
            .iter()
            .rev()
            .find_map(|a| a.strip_prefix("listeners="))
            .expect("listeners= among the args");
        let addr: SocketAddr = listeners
            .split(',')
            .next()
            .and_then(|l| l.split_once("://"))
            .map(|(_, hostport)| hostport.parse().expect("listener host:port"))
            .expect("a listener");
        let data_dir = dir.join("data");
        let log_path = dir.join(format!("server-{}.log", addr.port()));
        let log = std::fs::File::create(&log_path).expect("server log");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(BIN);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.arg("server")
            .arg("--override")
            .arg(format!("log.dirs={}", data_dir.display()));
        cmd.args(args);
        let child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn moldau server");
        Server {
            child,
            addr,
            data_dir,
            log_path,
            _tmp: None,
        }
    }

    pub fn wait_until_accepting(&mut self) {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "moldau server exited with {status} before accepting:\n{}",
                    self.log()
                );
            }
            // Ready once it says so: its port accepts TCP connections before the node
            // serves (and a port picked free may have been taken by another test's node).
            if self.log().contains("moldau is ready on")
                && TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server not accepting within 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Runs a client command against this node.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, "")
    }

    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("MOLDAU_BOOTSTRAP_SERVER", self.addr.to_string());
        run(cmd, input)
    }

    /// Like `run`, and the command must succeed.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        out.assert_success(args, self);
        out
    }

    pub fn ok_with_input(&self, args: &[&str], input: &str) -> Output {
        let out = self.run_with_input(args, input);
        out.assert_success(args, self);
        out
    }

    /// The values of `count` records of `topic` from the beginning (`moldau consume`).
    pub fn consume_values(&self, topic: &str, count: usize) -> Vec<String> {
        let out = self.ok(&[
            "consume",
            "--topic",
            topic,
            "--from-beginning",
            "--max-messages",
            &count.to_string(),
            "--timeout-ms",
            "20000",
        ]);
        out.stdout.lines().map(str::to_string).collect()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}):\n{}", out.stdout))
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = signal_and_wait(&mut self.child, "-TERM");
        status.unwrap_or_else(|| panic!("no exit 30 s after SIGTERM:\n{}", self.log()))
    }
}

/// Sends a signal with kill(1) and waits up to 30 s for the exit status.
pub fn signal_and_wait(child: &mut Child, signal: &str) -> Option<std::process::ExitStatus> {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
    let deadline = Instant::now() + STARTUP_DEADLINE;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago, for a server a test starts. Drawn below Linux's
/// ephemeral range (32768-60999), where the tests' own outgoing connections take their
/// ports (a port picked by binding port 0 is often taken by a client before the server
/// binds it), and never handed out twice in one test process.
pub fn free_port() -> u16 {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap();
    loop {
        let random = RandomState::new().hash_one(handed_out.len());
        let port = 10_000 + (random % 20_000) as u16;
        if handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
}

pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn assert_success(&self, args: &[&str], server: &Server) {
        assert_eq!(
            self.code,
            Some(0),
            "moldau {args:?} failed\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
            self.stdout,
            self.stderr,
            server.log()
        );
    }

    /// A failure reported as exactly one `error:` line on stderr.
    pub fn assert_one_line_error(&self, code: i32, needle: &str) {
        assert_eq!(self.code, Some(code), "stderr:\n{}", self.stderr);
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr, got:\n{}",
            self.stderr
        );
        assert!(lines[0].starts_with("error: "), "{}", lines[0]);
        assert!(
            lines[0].contains(needle),
            "{:?} does not mention {needle:?}",
            lines[0]
        );
    }

    /// A failure whose last stderr line is the error (progress lines may come before).
    pub fn assert_last_line_error(&self, code: i32, needle: &str) {
        assert_eq!(self.code, Some(code), "stderr:\n{}", self.stderr);
        let last = self.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(needle),
            "{}",
            self.stderr
        );
    }

    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

/// Runs a command to completion with `input` on stdin, killing it past the deadline.
pub fn run(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn moldau");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + COMMAND_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {COMMAND_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    Output {
        code: status.code(),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// A client command without a server.
pub fn moldau(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    run(cmd, "")
}
