//! Dashboard operators: `apiary-backend users` on the data dir, and what a read-only operator
//! and a stale session get, over plain HTTP (the browser test covers the pages themselves).

use std::io::Write;
use std::process::{Command, Stdio};

use apiary_tests::{Backend, bin};

fn users(backend: &Backend, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(bin("apiary-backend"))
        .arg("users")
        .args(["--data-dir", backend.data_dir().to_str().unwrap()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A cookie-keeping HTTP client that does not follow redirects.
struct Client {
    agent: ureq::Agent,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Client {
    fn new(base: &str) -> Self {
        Self {
            agent: ureq::Agent::config_builder()
                .max_redirects(0)
                .http_status_as_error(false)
                .build()
                .into(),
            base: base.to_string(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, response: &ureq::http::Response<ureq::Body>) {
        for v in response.headers().get_all("set-cookie") {
            let pair = v.to_str().unwrap().split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !val.is_empty() {
                self.cookies.push((k.to_string(), val.to_string()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn get(&mut self, path: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .call()
            .unwrap();
        self.keep(&r);
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    /// The response headers of a GET, one `name: value` per line.
    fn headers(&mut self, path: &str) -> String {
        let r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .call()
            .unwrap();
        r.headers()
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("")))
            .collect()
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
        let mut r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send_form(form.iter().copied())
            .unwrap();
        self.keep(&r);
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (
            r.status().as_u16(),
            location,
            r.body_mut().read_to_string().unwrap_or_default(),
        )
    }
}

/// The first `name="csrf" value="..."` of a page.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

fn login(backend: &Backend, user: &str, password: &str) -> Client {
    let mut c = Client::new(&backend.operator_url);
    let (_, page) = c.get("/login");
    let token = csrf(&page);
    let (status, location, _) = c.post(
        "/login",
        &[("csrf", &token), ("username", user), ("password", password)],
    );
    assert_eq!((status, location.as_str()), (303, "/"), "{user} logs in");
    c
}

#[test]
fn operators_are_managed_on_the_data_dir_and_roles_hold() {
    let backend = Backend::start();
    assert_eq!(
        backend.dashboard_password.len(),
        24,
        "the first admin's password is printed"
    );

    let (ok, out) = users(&backend, &["add", "viewer1", "--role", "viewer"], "short\n");
    assert!(!ok && out.contains("at least 10 characters"), "{out}");
    let (ok, out) = users(
        &backend,
        &["add", "viewer1", "--role", "viewer"],
        "long enough password\n",
    );
    assert!(ok, "{out}");
    let (ok, out) = users(&backend, &["add", "viewer1"], "long enough password\n");
    assert!(!ok && out.contains("already exists"), "{out}");
    let (ok, out) = users(&backend, &["list"], "");
    assert!(
        ok && out.contains("admin\tadmin") && out.contains("viewer1\tviewer"),
        "{out}"
    );

    // A viewer sees pages but changes nothing.
    let mut viewer = login(&backend, "viewer1", "long enough password");
    let (status, page) = viewer.get("/devices");
    assert_eq!(status, 200);
    let headers = viewer.headers("/devices");
    assert!(headers.contains("frame-ancestors 'none'"), "{headers}");
    assert!(headers.contains("x-frame-options: DENY"), "{headers}");
    let token = csrf(&page);
    let (status, _, body) = viewer.post("/groups/create", &[("csrf", &token), ("path", "/nope")]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("read-only access"), "{body}");

    // An admin's form without the session's token is refused; with it, it works.
    let mut admin = login(&backend, "admin", &backend.dashboard_password);
    let (status, _, body) = admin.post(
        "/groups/create",
        &[("csrf", "0".repeat(64).as_str()), ("path", "/x")],
    );
    assert_eq!(status, 403, "{body}");
    let (_, page) = admin.get("/devices");
    let (status, location, _) =
        admin.post("/groups/create", &[("csrf", &csrf(&page)), ("path", "/x")]);
    assert_eq!(status, 303);
    assert!(location.contains("created%20group"), "{location}");

    // The login form needs its own token too.
    let mut stranger = Client::new(&backend.operator_url);
    let (status, _, _) = stranger.post(
        "/login",
        &[
            ("csrf", "abc"),
            ("username", "admin"),
            ("password", &backend.dashboard_password),
        ],
    );
    assert_eq!(status, 403, "no login without the form's token");

    // A new password ends the operator's sessions.
    let (ok, out) = users(&backend, &["passwd", "admin"], "another long password\n");
    assert!(ok, "{out}");
    let (status, _) = admin.get("/devices");
    assert_eq!(status, 303, "the old session is gone");
    login(&backend, "admin", "another long password");
    let (ok, out) = users(&backend, &["passwd", "ghost"], "another long password\n");
    assert!(!ok && out.contains("no operator ghost"), "{out}");
}
