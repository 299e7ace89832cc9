//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`), for the console's tests. Each `Browser` starts its own
//! chromedriver on a free port and its own browser profile, and stops both when
//! dropped. The calls are blocking: each runs on the browser's own small runtime.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A browser session, or the reason there can be none on this machine.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: TempDir,
}

/// `POST /session/{id}/se/log`: chromedriver's browser console log.
#[derive(Debug)]
struct ConsoleLog;

impl WebDriverCompatibleCommand for ConsoleLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; `None` (with the reason printed)
    /// when they are not installed. `.ci/run` installs them.
    pub fn start() -> Option<Browser> {
        for tool in [CHROMEDRIVER, CHROMIUM] {
            if !std::path::Path::new(tool).exists() {
                println!(
                    "SKIPPED: {tool} is not installed (apt-get install chromium chromium-driver)"
                );
                return None;
            }
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run", "--disable-quic",
                         "--window-size=1280,900",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            // chromedriver listens on loopback in plain HTTP: no TLS stack needed.
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let connected = runtime.block_on(
                ClientBuilder::new(connector)
                    .capabilities(capabilities.clone())
                    .connect(&url),
            );
            match connected {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => panic!("chromedriver did not start: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        Some(Browser {
            runtime,
            client: Some(client),
            driver,
            _profile: profile,
        })
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    pub fn goto(&self, url: &str) {
        self.runtime.block_on(self.client().goto(url)).unwrap();
    }

    /// The current URL's path.
    pub fn path(&self) -> String {
        self.runtime
            .block_on(self.client().current_url())
            .unwrap()
            .path()
            .to_string()
    }

    /// Types `text` into the element `css`, after clearing it.
    pub fn fill(&self, css: &str, text: &str) {
        self.runtime.block_on(async {
            let element = self.client().find(Locator::Css(css)).await.unwrap();
            element.clear().await.unwrap();
            element.send_keys(text).await.unwrap();
        });
    }

    /// Clicks `css`, a button or link that loads another page, and waits for that page.
    pub fn submit(&self, css: &str) {
        self.execute("window.threadaOldPage = true; return null;");
        self.click(css);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let loaded = self.execute(
                "return window.threadaOldPage === undefined && document.readyState === 'complete';",
            );
            if loaded == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "{css}: no new page loaded");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Clicks `css` (a checkbox, say).
    pub fn click(&self, css: &str) {
        self.runtime.block_on(async {
            let element = self
                .client()
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{css}: {e}"));
            element.click().await.unwrap();
        });
    }

    /// Selects the option with `value` in the `select` at `css`.
    pub fn select(&self, css: &str, value: &str) {
        self.runtime.block_on(async {
            let element = self.client().find(Locator::Css(css)).await.unwrap();
            element.select_by_value(value).await.unwrap();
        });
    }

    /// The text of the first element matching `css`.
    pub fn text(&self, css: &str) -> String {
        self.runtime.block_on(async {
            let element = self
                .client()
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{css}: {e}"));
            element.text().await.unwrap()
        })
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        self.runtime
            .block_on(self.client().find_all(Locator::Css(css)))
            .unwrap()
            .len()
    }

    /// The value of `attribute` on the first element matching `css`.
    pub fn attr(&self, css: &str, attribute: &str) -> Option<String> {
        self.runtime.block_on(async {
            let element = self.client().find(Locator::Css(css)).await.unwrap();
            element.attr(attribute).await.unwrap()
        })
    }

    /// Runs a script in the page and returns its value.
    pub fn execute(&self, script: &str) -> Value {
        self.runtime
            .block_on(self.client().execute(script, vec![]))
            .unwrap()
    }

    /// Whether an alert dialog is open.
    pub fn alert_open(&self) -> bool {
        self.runtime
            .block_on(self.client().get_alert_text())
            .is_ok()
    }

    /// The browser console's messages at level SEVERE (errors) since the last call.
    pub fn console_errors(&self) -> Vec<String> {
        let log = self
            .runtime
            .block_on(self.client().issue_cmd(ConsoleLog))
            .unwrap();
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// A PNG of the page.
    pub fn screenshot(&self) -> Vec<u8> {
        self.runtime.block_on(self.client().screenshot()).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
