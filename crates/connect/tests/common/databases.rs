//! Real database servers for tests: Debian's `mariadb-server` and `postgresql` packages,
//! started on a free 127.0.0.1 port with their data directory in the test's temporary
//! directory (no system service). Killed and removed on drop.
//!
//! On a machine without the packages the tests that need them print why and pass, so the
//! README's test command works with only Rust; CI sets `MOLDAU_REQUIRE_DATABASES=1`
//! (`.ci/run` installs both) and then a missing server fails the test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .unwrap()
        .port()
}

fn required() -> bool {
    std::env::var("MOLDAU_REQUIRE_DATABASES").is_ok_and(|v| v == "1")
}

fn missing(what: &str) -> Option<()> {
    assert!(
        !required(),
        "{what} is not installed and MOLDAU_REQUIRE_DATABASES=1 (apt-get install mariadb-server postgresql)"
    );
    eprintln!("SKIPPED: {what} is not installed (apt-get install mariadb-server postgresql)");
    None
}

fn wait_for_port(port: u16, child: &mut Child, log: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe extern "C" {
        fn geteuid() -> u32;
    }
    unsafe { geteuid() == 0 }
}

/// A MariaDB server with the binary log on in row format (what CDC needs), user `root`
/// without a password on 127.0.0.1.
pub struct MariaDb {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl MariaDb {
    /// `None` (after printing why) when MariaDB is not installed and not required.
    pub fn start() -> Option<MariaDb> {
        Self::start_with(&[])
    }

    /// With extra `mariadbd` options (`--binlog-expire-logs-seconds=...`).
    pub fn start_with(extra_args: &[&str]) -> Option<MariaDb> {
        let server = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let Some(server) = server else {
            return missing("MariaDB (mariadbd)").map(|_| unreachable!());
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        // Each server its own temporary directory: a starting server removes `#sql*` files
        // in its tmpdir, which would be another server's install in a shared /tmp.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmpdir");
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .args(is_root().then_some("--user=root"))
            .output()
            .expect("mariadb-install-db runs");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = dir.path().join("error.log");
        let d = dir.path();
        let mut child = Command::new(server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", d.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--log-bin={}", d.join("binlog").display()))
            .arg("--binlog-format=ROW")
            .arg("--server-id=1")
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg("--innodb-buffer-pool-size=64M")
            .args(is_root().then_some("--user=root"))
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        wait_for_port(port, &mut child, &log, "mariadbd");
        Some(MariaDb { port, child, dir })
    }

    /// `mysql://root@127.0.0.1:PORT` (add a database as the path).
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// Runs SQL with the `mariadb` command line client (statements separated by `;`).
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-h127.0.0.1", "-uroot", "-N", "-B"])
            .arg(format!("-P{}", self.port))
            .arg("-e")
            .arg(sql)
            .output()
            .expect("mariadb client runs");
        assert!(
            out.status.success(),
            "mariadb -e {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL): a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `postgres` user's uid and gid (from /etc/passwd).
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres")).then(|| (f[2].parse().unwrap(), f[3].parse().unwrap()))
        })
        .expect("the postgresql package's postgres user")
}

/// A PostgreSQL server with `wal_level=logical` (what CDC needs), superuser `postgres`
/// trusted on 127.0.0.1.
pub struct Postgres {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Postgres {
    /// `None` (after printing why) when PostgreSQL is not installed and not required.
    pub fn start() -> Option<Postgres> {
        Self::start_with(&[])
    }

    /// With extra server settings (`("max_slot_wal_keep_size", "64MB")`).
    pub fn start_with(settings: &[(&str, &str)]) -> Option<Postgres> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path().join("bin"))
                    .collect()
            })
            .unwrap_or_default();
        versions.retain(|p| p.join("postgres").exists());
        versions.sort();
        let Some(bin) = versions.pop() else {
            return missing("PostgreSQL (postgres)").map(|_| unreachable!());
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // PostgreSQL refuses to run as root: then it runs as the package's `postgres` user
        // (set in the child itself, so a kill reaches the server).
        let user = if is_root() {
            Some(postgres_user())
        } else {
            None
        };
        let as_user = |program: PathBuf| {
            let mut c = Command::new(program);
            if let Some((uid, gid)) = user {
                use std::os::unix::process::CommandExt;
                c.uid(uid).gid(gid);
            }
            c
        };
        if let Some((uid, _)) = user {
            let status = Command::new("chown")
                .arg("-R")
                .arg(uid.to_string())
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let data = dir.path().join("data");
        let out = as_user(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = dir.path().join("postgres.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = as_user(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "wal_level=logical"])
            .args(["-c", "max_wal_senders=10"])
            .args(["-c", "max_replication_slots=10"])
            .args(["-c", "fsync=off"]);
        for (k, v) in settings {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("postgres starts");
        wait_for_port(port, &mut child, &log, "postgres");
        // Listening is not ready: it answers "the database system is starting up" first.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"])
                .arg("-p")
                .arg(port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "postgres not ready within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Postgres {
            port,
            child,
            dir,
            bin,
        })
    }

    /// A libpq/tokio-postgres connection string for a database.
    pub fn conn_str(&self, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={database}",
            self.port
        )
    }

    /// `postgresql://postgres@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs SQL with `psql` in a database.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(database)
            .arg("-c")
            .arg(sql)
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql -c {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL): a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill();
    }
}
