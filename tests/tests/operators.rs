//! Dashboard operators: `apiary-backend users` on the data dir, and what a read-only operator
//! and a stale session get, over plain HTTP (the browser test covers the pages themselves).

use std::io::Write;
use std::process::{Command, Stdio};

use apiary_tests::dashboard_client::{Client, csrf, login};
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

    // Five wrong passwords lock the name: even the right one is refused for a while, and
    // other names are not affected.
    let mut guesser = Client::new(&backend.operator_url);
    for _ in 0..5 {
        let (_, page) = guesser.get("/login");
        let (_, location, _) = guesser.post(
            "/login",
            &[
                ("csrf", &csrf(&page)),
                ("username", "viewer1"),
                ("password", "wrong guess"),
            ],
        );
        assert_eq!(location, "/login?failed=1");
    }
    let (_, page) = guesser.get("/login");
    let (_, location, _) = guesser.post(
        "/login",
        &[
            ("csrf", &csrf(&page)),
            ("username", "Viewer1"),
            ("password", "long enough password"),
        ],
    );
    assert_eq!(location, "/login?locked=5", "locked for the window");
    let (_, page) = guesser.get(&location);
    assert!(page.contains("Too many failed logins"), "{page}");
    login(&backend, "admin", &backend.dashboard_password);

    // A new password ends the operator's sessions.
    let (ok, out) = users(&backend, &["passwd", "admin"], "another long password\n");
    assert!(ok, "{out}");
    let (status, _) = admin.get("/devices");
    assert_eq!(status, 303, "the old session is gone");
    login(&backend, "admin", "another long password");
    let (ok, out) = users(&backend, &["passwd", "ghost"], "another long password\n");
    assert!(!ok && out.contains("no operator ghost"), "{out}");
}

/// The location and the page it leads to, after a dashboard form.
fn after(client: &mut Client, (status, location, body): (u16, String, String)) -> String {
    assert_eq!(status, 303, "{body}");
    client.get(&location).1
}

#[test]
fn operators_are_managed_in_the_dashboard() {
    let backend = Backend::start();
    let mut admin = login(&backend, "admin", &backend.dashboard_password);
    let (_, page) = admin.get("/operators");
    let token = csrf(&page);

    // Adding checks the name and the password like the CLI.
    let form = |name: &str, role: &str, password: &str| {
        vec![
            ("csrf".to_string(), token.clone()),
            ("username".to_string(), name.to_string()),
            ("role".to_string(), role.to_string()),
            ("password".to_string(), password.to_string()),
        ]
    };
    let post = |c: &mut Client, path: &str, f: &[(String, String)]| {
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        c.post(path, &f)
    };
    let r = post(
        &mut admin,
        "/operators/add",
        &form("ops2", "viewer", "short"),
    );
    assert!(after(&mut admin, r).contains("at least 10 characters"));
    let r = post(
        &mut admin,
        "/operators/add",
        &form("ops2", "viewer", "a long password"),
    );
    let page = after(&mut admin, r);
    assert!(page.contains("added ops2 (viewer)"), "{page}");
    assert!(page.contains("data-operator=\"ops2\""), "{page}");

    // A viewer sees the page, cannot manage, but can change its own password.
    let mut ops2 = login(&backend, "ops2", "a long password");
    let (_, page) = ops2.get("/operators");
    assert!(!page.contains("Add an operator"), "{page}");
    let viewer_token = csrf(&page);
    let (status, _, _) = ops2.post(
        "/operators/add",
        &[
            ("csrf", &viewer_token),
            ("username", "x"),
            ("role", "admin"),
            ("password", "a long password"),
        ],
    );
    assert_eq!(status, 403, "viewers manage nobody");
    let r = ops2.post(
        "/operators/own-password",
        &[
            ("csrf", &viewer_token),
            ("current", "wrong one"),
            ("password", "a newer password"),
        ],
    );
    assert!(after(&mut ops2, r).contains("current password is wrong"));
    let (status, location, _) = ops2.post(
        "/operators/own-password",
        &[
            ("csrf", &viewer_token),
            ("current", "a long password"),
            ("password", "a newer password"),
        ],
    );
    assert_eq!(
        (status, location.as_str()),
        (303, "/login"),
        "signed out after the change"
    );
    let mut ops2 = login(&backend, "ops2", "a newer password");

    // Roles: the last admin stays an admin; promoting another makes demotion possible.
    let r = post(&mut admin, "/operators/role", &form("admin", "viewer", ""));
    assert!(after(&mut admin, r).contains("admin is the last admin"));
    let r = post(&mut admin, "/operators/role", &form("ops2", "admin", ""));
    assert!(after(&mut admin, r).contains("ops2 is now admin"));
    let (_, page) = ops2.get("/operators");
    assert!(
        page.contains("Add an operator"),
        "the new role applies to the open session"
    );

    // Removing: never oneself; another operator's sessions end with it.
    let r = post(&mut admin, "/operators/remove", &form("admin", "", ""));
    assert!(after(&mut admin, r).contains("cannot remove yourself"));
    let r = post(&mut admin, "/operators/remove", &form("ops2", "", ""));
    assert!(after(&mut admin, r).contains("removed ops2"));
    let (status, _) = ops2.get("/operators");
    assert_eq!(status, 303, "the removed operator's session is gone");
    let audit = backend.cli_ok(&["audit"]);
    for action in [
        "operator.add",
        "operator.role",
        "operator.password",
        "operator.remove",
    ] {
        assert!(audit.contains(action), "{action} in {audit}");
    }
}

#[test]
fn one_address_guessing_many_names_is_locked_and_huge_names_are_refused() {
    let backend = Backend::start();
    let mut guesser = Client::new(&backend.operator_url);
    let mut attempt = |name: &str, password: &str| {
        let (_, page) = guesser.get("/login");
        let (status, location, _) = guesser.post(
            "/login",
            &[
                ("csrf", &csrf(&page)),
                ("username", name),
                ("password", password),
            ],
        );
        (status, location)
    };
    // A name longer than any operator's is refused as a failure, not looked up.
    let huge = "x".repeat(10_000);
    assert_eq!(attempt(&huge, "whatever"), (303, "/login?failed=1".into()));
    // 20 failures from one address, one per name, lock the address for every name:
    // even the right password of an operator nobody guessed.
    for n in 1..20 {
        let (_, location) = attempt(&format!("guess{n}"), "wrong guess");
        assert_eq!(location, "/login?failed=1", "attempt {n}");
    }
    let (_, location) = attempt("admin", &backend.dashboard_password);
    assert!(location.starts_with("/login?locked="), "{location}");
    // A form body past the login's limit is refused before it is parsed.
    let (_, page) = guesser.get("/login");
    let padding = "p".repeat(20_000);
    let (status, _, _) = guesser.post(
        "/login",
        &[
            ("csrf", &csrf(&page)),
            ("username", "admin"),
            ("password", &padding),
        ],
    );
    assert_eq!(status, 413);
}
