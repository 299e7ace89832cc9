//! Runs of the real `threada` binary: CLI commands and their output.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use threada::config::Config;

/// Writes `config` as TOML into `dir` and returns the file's path.
pub fn write_config(dir: &Path, config: &Config) -> PathBuf {
    let path = dir.join("threada.toml");
    std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
    path
}

/// The real binary.
pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_threada"));
    command.env_remove("RUST_LOG").env_remove("THREADA_CONFIG");
    for (name, _) in std::env::vars() {
        if name.starts_with("THREADA_") {
            command.env_remove(name);
        }
    }
    command
}

/// What a CLI run printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "one JSON object expected: {:?}",
            self.stdout
        );
        serde_json::from_str(lines[0]).unwrap()
    }
}

/// Runs CLI commands against one config file.
pub struct Cli {
    pub config: PathBuf,
}

impl Cli {
    pub fn new(config: PathBuf) -> Cli {
        Cli { config }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let output = binary()
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap();
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `run`, killing the command if it is still running after `limit` (a test that
    /// expects it to stop at once then fails instead of hanging).
    pub fn run_within(&self, args: &[&str], limit: std::time::Duration) -> Output {
        let mut child = binary()
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + limit;
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("threada {args:?} still running after {limit:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        self.run(&all).json()
    }

    /// A tenant named `name` whose actions go to `base_url`, and a key with every
    /// scope, made with the CLI: `(tenant_id, api_key)`.
    pub fn tenant_with_hooks(&self, name: &str, base_url: &str) -> (String, String) {
        let tenant = self.json(&[
            "tenant",
            "create",
            "--name",
            name,
            "--action-base-url",
            base_url,
        ]);
        let tenant_id = tenant["tenant_id"].as_str().unwrap().to_string();
        let key = self.json(&[
            "key",
            "create",
            "--tenant",
            &tenant_id,
            "--name",
            "k",
            "--scopes",
            "support.read,support.write,support.actions",
        ]);
        (tenant_id, key["api_key"].as_str().unwrap().to_string())
    }

    /// A tenant and a key with `scopes`, made with the CLI: the key's `--json` output.
    pub fn tenant_and_key(&self, scopes: &str) -> Value {
        let tenant = self.json(&["tenant", "create", "--name", "Acme"]);
        let tenant_id = tenant["tenant_id"].as_str().unwrap();
        self.json(&[
            "key", "create", "--tenant", tenant_id, "--name", "k", "--scopes", scopes,
        ])
    }
}
