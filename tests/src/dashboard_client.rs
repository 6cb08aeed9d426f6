//! The dashboard over plain HTTP, as a browser without JavaScript would use it: a cookie
//! jar, forms, and redirects reported rather than followed.

use crate::Backend;

/// A cookie-keeping HTTP client that does not follow redirects.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Client {
    /// A client without cookies for `base` (the operator URL).
    pub fn new(base: &str) -> Self {
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

    /// GET: status and body.
    pub fn get(&mut self, path: &str) -> (u16, String) {
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
    pub fn headers(&mut self, path: &str) -> String {
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

    /// POST a form: status, `Location` and body.
    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
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
pub fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

/// Signs in through the login form.
pub fn login(backend: &Backend, user: &str, password: &str) -> Client {
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
