//! A docker-registry on loopback with htpasswd auth, for pull tests. Shared by
//! the agent's image tests and the end-to-end tests (`#[path]` include: the
//! e2e crate depends on the agent, so the agent's tests cannot depend on it).
// Each including test crate uses part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "berth";
pub const PASSWORD: &str = "s3cret:pw";

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (scripts/install-deps.sh installs it)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A docker-registry on loopback that wants `USER`/`PASSWORD`; killed on drop.
pub struct AuthRegistry {
    pub host: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// A throwaway CA and a certificate for 127.0.0.1 it signed (openssl).
pub struct TestCa {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl TestCa {
    pub fn make(dir: &std::path::Path) -> Self {
        let p = |name: &str| dir.join(name).display().to_string();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(Command::new("openssl")
            .args(["req", "-x509", "-days", "1", "-subj", "/CN=berth test CA"])
            .args(ec)
            .args(["-keyout", &p("ca.key"), "-out", &p("ca.pem")]));
        run(Command::new("openssl")
            .args(["req", "-subj", "/CN=127.0.0.1"])
            .args(ec)
            .args(["-keyout", &p("registry.key"), "-out", &p("registry.csr")]));
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        run(Command::new("openssl").args([
            "x509",
            "-req",
            "-days",
            "1",
            "-in",
            &p("registry.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-extfile",
            &p("san.ext"),
            "-out",
            &p("registry.pem"),
        ]));
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("registry.pem"),
            key: dir.join("registry.key"),
        }
    }
}

impl AuthRegistry {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Like `start`, serving HTTPS with a certificate from `ca`.
    pub fn start_tls(ca: &TestCa) -> Self {
        Self::start_with(Some(ca))
    }

    fn start_with(tls: Option<&TestCa>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let tls_config = tls.map_or(String::new(), |ca| {
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                ca.cert.display(),
                ca.key.display()
            )
        });
        let htpasswd = run(Command::new("htpasswd").args(["-nbB", USER, PASSWORD]));
        std::fs::write(dir.path().join("htpasswd"), htpasswd).unwrap();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    \
                     rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: \
                     127.0.0.1:{port}\n{tls_config}auth:\n  htpasswd:\n    realm: berth-test\n    path: {pw}\n",
                    root = dir.path().join("data").display(),
                    pw = dir.path().join("htpasswd").display(),
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("docker-registry (scripts/install-deps.sh installs it)");
            let host = format!("127.0.0.1:{port}");
            if wait_ready(&mut child, &host) {
                return Self {
                    host,
                    child,
                    _dir: dir,
                };
            }
            // Most likely someone took the port first: try another.
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        panic!("the auth registry did not start: {log}")
    }

    /// Copies `source` (on the plain test registry) here as `name` (`repo:tag`).
    pub fn push(&self, source: &str, name: &str, format: &str) {
        self.copy(source, name, &["--format", format]);
    }

    /// Like `push`, as an OCI image whose layers are zstd-compressed.
    pub fn push_zstd(&self, source: &str, name: &str) {
        self.copy(
            source,
            name,
            &[
                "--format",
                "oci",
                "--dest-compress",
                "--dest-compress-format",
                "zstd",
            ],
        );
    }

    fn copy(&self, source: &str, name: &str, extra: &[&str]) {
        let creds = format!("{USER}:{PASSWORD}");
        let from = format!("docker://{source}");
        let to = format!("docker://{}/{name}", self.host);
        let mut args = vec!["copy", "-q"];
        args.extend_from_slice(extra);
        args.extend([
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &from,
            &to,
        ]);
        run(Command::new("skopeo").args(args));
    }

    /// The raw manifest of `name` as the registry serves it.
    pub fn manifest(&self, name: &str) -> String {
        run(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
            &format!("docker://{}/{name}", self.host),
        ]))
    }
}

/// Up when `/v2/` answers 401 (it wants credentials).
fn wait_ready(child: &mut Child, host: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if let Ok(mut stream) = TcpStream::connect(host) {
            let _ =
                stream.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes());
            let mut head = [0_u8; 12];
            // 401: wants credentials; 400: a TLS registry refusing plain HTTP.
            if stream.read_exact(&mut head).is_ok()
                && (head.ends_with(b"401") || head.ends_with(b"400"))
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
