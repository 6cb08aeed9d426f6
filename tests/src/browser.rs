//! A real browser for dashboard tests, driven through the W3C WebDriver protocol (plain HTTP
//! on loopback) with just the commands the tests use: Debian's headless Chromium through
//! ChromeDriver, or Debian's headless Firefox ESR through geckodriver.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::wait_for;

/// The W3C key under which an element reference comes back.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The window size the dashboard is checked at.
const WINDOW: (u32, u32) = (1400, 1000);

/// A headless browser session (Chromium or Firefox) and the WebDriver server behind it.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    /// Removed only after `drop` has ended the browser, as fields drop after it.
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

/// Where screenshots go: `target/dashboard-screenshots/` (kept after the run).
pub fn screenshot_dir() -> PathBuf {
    crate::bin("apiary-backend")
        .parent()
        .and_then(Path::parent)
        .expect("binaries live in target/<profile>")
        .join("dashboard-screenshots")
}

/// Where `scripts/setup-browser` installs geckodriver, which Debian does not package:
/// `$APIARY_TOOLS_DIR` (default `~/.cache/apiary-tools`), then `bin/geckodriver`.
pub fn geckodriver_path() -> PathBuf {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let tools = env("APIARY_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            env("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| env("HOME").map(|home| Path::new(&home).join(".cache")))
                .expect("HOME or XDG_CACHE_HOME is set")
                .join("apiary-tools")
        });
    tools.join("bin").join("geckodriver")
}

/// A free loopback port for a WebDriver server to listen on.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium with a fresh profile.
    pub fn chromium() -> Self {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                Path::new(tool).exists(),
                "{tool} missing: scripts/setup-browser installs Debian's chromium and chromium-driver"
            );
        }
        let port = free_port();
        let mut driver = Command::new("/usr/bin/chromedriver");
        driver.arg(format!("--port={port}"));
        let profile = tempfile::tempdir().expect("temp dir");
        // Flags as on a closed network: no background fetches, no QUIC, no sandbox as root.
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--no-first-run",
                    format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                    format!("--user-data-dir={}", profile.path().display())
                ]
            }
        });
        Self::launch(driver, port, profile, caps)
    }

    /// Starts geckodriver and a headless Firefox ESR with a fresh profile.
    pub fn firefox() -> Self {
        let geckodriver = geckodriver_path();
        for tool in [Path::new("/usr/bin/firefox-esr"), &geckodriver] {
            assert!(
                tool.exists(),
                "{} missing: scripts/setup-browser installs Debian's firefox-esr and geckodriver",
                tool.display()
            );
        }
        let port = free_port();
        let mut driver = Command::new(geckodriver);
        driver.args(["--host", "127.0.0.1", "--port", &port.to_string()]);
        // Firefox's own test switch: it refuses connections to anything but loopback, and
        // only with it does a release build honour the Remote Settings server pref below.
        // Set on the driver because Firefox inherits its environment, whereas geckodriver
        // applies `moz:firefoxOptions.env` only to Firefox on Android.
        driver.env("MOZ_DISABLE_NONLOCAL_CONNECTIONS", "1");
        let profile = tempfile::tempdir().expect("temp dir");
        let caps = json!({
            "browserName": "firefox",
            "moz:firefoxOptions": {
                "binary": "/usr/bin/firefox-esr",
                "args": [
                    "-headless", "-no-remote",
                    "-profile", profile.path().to_str().expect("a UTF-8 temp path"),
                ],
                "prefs": firefox_prefs(),
            }
        });
        Self::launch(driver, port, profile, caps)
    }

    /// Runs a WebDriver server on `port`, waits until it is ready, and opens a session.
    fn launch(mut driver: Command, port: u16, profile: tempfile::TempDir, caps: Value) -> Self {
        // Its own process group, so that Drop can end the browser with it even when the
        // session could not be closed politely.
        let driver = driver
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the WebDriver server starts");
        let base = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            agent,
            _profile: profile,
            shots: screenshot_dir(),
        };
        wait_for(|| {
            let r = browser
                .agent
                .get(format!("{}/status", browser.base))
                .call()
                .ok()?;
            let v: Value = r.into_body().read_json().ok()?;
            v["value"]["ready"].as_bool().filter(|r| *r)
        });
        let answer = browser.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": caps}})),
        );
        browser.session = answer["value"]["sessionId"]
            .as_str()
            .expect("a new session has an id")
            .to_string();
        // Chromium already has this size from its flags; Firefox takes it only this way.
        browser.session_call(
            "POST",
            "/window/rect",
            Some(json!({"width": WINDOW.0, "height": WINDOW.1})),
        );
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path} failed {e}"))
    }

    /// One WebDriver command; a refusal comes back as `(status): message`.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self.agent.post(&url).send_json(body.unwrap_or(json!({}))),
        }
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = response.status();
        let value: Value = response
            .into_body()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_json()
            .expect("WebDriver answers JSON");
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!("({status}): {}", value["value"]["message"]))
        }
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)["value"].take()
    }

    /// Opens a URL.
    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({"url": url})));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element matching a CSS selector (fails the test if there is none).
    pub fn find(&self, css: &str) -> String {
        let v = self.session_call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css:?}"))
            .to_string()
    }

    /// How many elements match a CSS selector.
    pub fn count(&self, css: &str) -> usize {
        self.session_call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .map_or(0, Vec::len)
    }

    /// Clicks the element matching `css`.
    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.session_call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Replaces the text of the input matching `css`.
    pub fn fill(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.session_call("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.session_call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    /// The visible text of the element matching `css`.
    pub fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.session_call("GET", &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The text of the element matching `css`, or None while there is none, including
    /// when the page is replaced between finding the element and reading it.
    pub fn text_now(&self, css: &str) -> Option<String> {
        let session = format!("/session/{}", self.session);
        let found = self
            .try_call(
                "POST",
                &format!("{session}/element"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .ok()?;
        let id = found["value"][ELEMENT].as_str()?;
        let text = self
            .try_call("GET", &format!("{session}/element/{id}/text"), None)
            .ok()?;
        Some(text["value"].as_str().unwrap_or_default().to_string())
    }

    /// Presses the mouse inside the element matching `css` and drags it horizontally:
    /// from `from` to `to`, in pixels from the element's centre (W3C pointer actions).
    pub fn drag(&self, css: &str, from: i64, to: i64) {
        let id = self.find(css);
        let origin = json!({ELEMENT: id});
        let steps = json!([
            {"type": "pointerMove", "origin": origin, "x": from, "y": 0, "duration": 0},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerMove", "origin": origin, "x": (from + to) / 2, "y": 0, "duration": 100},
            {"type": "pointerMove", "origin": origin, "x": to, "y": 0, "duration": 100},
            {"type": "pointerUp", "button": 0},
        ]);
        self.session_call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": steps}]})),
        );
        self.session_call("DELETE", "/actions", None);
    }

    /// Runs a script in the page and returns its result.
    pub fn script(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Saves a PNG of the viewport as `<screenshot dir>/<name>.png`; returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.session_call("GET", "/screenshot", None);
        let png = decode_base64(b64.as_str().expect("a base64 PNG"));
        std::fs::create_dir_all(&self.shots).expect("screenshot dir");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(format!("{}/session/{}", self.base, self.session))
                .call();
        }
        // The browser and its helpers share the driver's process group (see `launch`); a
        // negative pid signals the whole group. `kill` the program, as std has no killpg.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Preferences that keep Firefox off the network except for the pages a test opens: no
/// updates, telemetry, Safe Browsing lists, captive-portal or connectivity probes, remote
/// settings, add-on or plug-in downloads, push, geolocation or DNS-over-HTTPS.
fn firefox_prefs() -> Value {
    json!({
        "app.update.enabled": false,
        "app.update.auto": false,
        "app.normandy.enabled": false,
        "app.shield.optoutstudies.enabled": false,
        "browser.safebrowsing.malware.enabled": false,
        "browser.safebrowsing.phishing.enabled": false,
        "browser.safebrowsing.downloads.enabled": false,
        "browser.safebrowsing.downloads.remote.enabled": false,
        "browser.safebrowsing.blockedURIs.enabled": false,
        "browser.safebrowsing.provider.mozilla.updateURL": "",
        "browser.safebrowsing.provider.google4.updateURL": "",
        "browser.safebrowsing.provider.google.updateURL": "",
        "browser.search.update": false,
        "browser.region.update.enabled": false,
        "browser.region.network.url": "",
        "browser.newtabpage.enabled": false,
        "browser.startup.page": 0,
        "browser.startup.homepage": "about:blank",
        "browser.shell.checkDefaultBrowser": false,
        "browser.ping-centre.telemetry": false,
        "network.captive-portal-service.enabled": false,
        "network.connectivity-service.enabled": false,
        "network.trr.mode": 5,
        "network.dns.disablePrefetch": true,
        "network.prefetch-next": false,
        "network.http.speculative-parallel-limit": 0,
        "datareporting.healthreport.uploadEnabled": false,
        "datareporting.policy.dataSubmissionEnabled": false,
        "toolkit.telemetry.enabled": false,
        "toolkit.telemetry.unified": false,
        "toolkit.telemetry.archive.enabled": false,
        "extensions.update.enabled": false,
        "extensions.getAddons.cache.enabled": false,
        "extensions.blocklist.enabled": false,
        // Remote Settings has no off switch. Its usual test value, a `data:` URL, still
        // sends the Rust client to the production server, so a closed loopback port instead.
        "services.settings.server": "http://127.0.0.1:9/v1",
        "media.gmp-manager.url": "",
        "media.gmp-gmpopenh264.enabled": false,
        "dom.push.connection.enabled": false,
        "geo.provider.network.url": "",
    })
}

/// Standard base64 (the screenshot encoding), without a dependency for it.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64() {
        assert_eq!(super::decode_base64("aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(super::decode_base64("YQ=="), b"a");
    }
}
