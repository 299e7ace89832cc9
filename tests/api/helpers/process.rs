//! The server as a separate process of the real binary (signals, kill -9, the
//! environment), and what it printed.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cli::binary;
use super::client::Client;

/// The server as a separate process (for signals, kill -9, environment variables).
pub struct ServerProcess {
    pub child: Child,
    pub client: Client,
    pub stdout: Arc<Mutex<String>>,
    /// What the server logged.
    pub stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `threada <command> --config <file>` and waits for it to listen.
    pub fn start(command: &str, config: &Path, dir: &Path, envs: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::start_args(
            &[command, "--config", &config.display().to_string()],
            dir,
            envs,
        )
    }

    /// Starts `threada <args>` in `dir` and waits for it to listen.
    pub fn start_args(args: &[&str], dir: &Path, envs: &[(&str, &str)]) -> ServerProcess {
        let mut child = binary()
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let log = stderr.lock().unwrap().clone();
            if let Some(port) = log
                .lines()
                .find_map(|l| l.split("listening on http://").nth(1))
                // The address ends the text (or, in a JSON line, the string).
                .and_then(|rest| rest.split(['"', ' ']).next())
                .and_then(|address| address.rsplit(':').next())
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("server exited early ({status}): {log}");
            }
            assert!(Instant::now() < deadline, "server did not start: {log}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let client = Client::new(format!("http://127.0.0.1:{port}"));
        // Ready once the database answers.
        while client.send("GET", "/readyz", &[], None).status != 200 {
            assert!(Instant::now() < deadline, "server not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        ServerProcess {
            child,
            client,
            stdout,
            stderr,
        }
    }

    /// A client of the `admin.bind` listener, whose port the server logged.
    pub fn admin_listener(&self) -> Client {
        let log = self.stderr.lock().unwrap().clone();
        let port = log
            .lines()
            .find_map(|l| l.split("also on http://127.0.0.1:").nth(1))
            .unwrap_or_else(|| panic!("no admin listener logged: {log}"))
            .trim()
            .to_string();
        Client::new(format!("http://127.0.0.1:{port}"))
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until standard output contains `needle`; returns all of it.
    pub fn wait_for_stdout(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.stdout.lock().unwrap().clone();
            if out.contains(needle) {
                return out;
            }
            assert!(Instant::now() < deadline, "{needle:?} never printed: {out}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill_9(&mut self) {
        self.signal("KILL");
        let _ = self.wait(Duration::from_secs(10));
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn capture(mut stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buffer) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    text
}

impl std::ops::Deref for ServerProcess {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}
