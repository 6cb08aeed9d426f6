//! The dashboard in real browsers (Debian's headless Chromium through ChromeDriver, and
//! Debian's Firefox ESR through geckodriver), against a real backend and a real agent: log
//! in, approve the agent, move it into a group, configure a templated file in the policy
//! form, commit, converge, follow the rollout and search the device's log. Every page is
//! saved as a screenshot under `target/dashboard-screenshots/`.
//!
//! Ignored by default (it needs the browsers); `scripts/test` installs them and runs it.

use apiary_tests::browser::Browser;
use apiary_tests::{Agent, Backend, wait_child, wait_for};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

/// Waits until the browser shows a page whose element `css` contains `text`.
fn wait_text(browser: &Browser, css: &str, text: &str) {
    wait_for(|| browser.text_now(css).filter(|t| t.contains(text)).map(drop));
}

#[test]
#[ignore = "needs Debian's chromium and chromium-driver; scripts/test installs them and runs it"]
fn an_operator_rolls_out_a_template_in_chromium() {
    an_operator_rolls_out_a_template(Browser::chromium(), "chromium");
}

#[test]
#[ignore = "needs firefox-esr and geckodriver; scripts/test installs them and runs it"]
fn an_operator_rolls_out_a_template_in_firefox() {
    an_operator_rolls_out_a_template(Browser::firefox(), "firefox");
}

/// The whole operator flow in `browser`; screenshots are named `{name}-NN-page.png`.
fn an_operator_rolls_out_a_template(browser: Browser, name: &str) {
    let backend = Backend::start();
    let base = backend.operator_url.clone();
    let screenshot = |page: &str| browser.screenshot(&format!("{name}-{page}"));

    // A failed login is refused, and says so.
    browser.goto(&format!("{base}/"));
    assert!(
        browser.url().ends_with("/login"),
        "signed-out visitors land on the login page"
    );
    screenshot("01-login");
    browser.fill("#username", "admin");
    browser.fill("#password", "not the password");
    browser.click("#login");
    wait_text(&browser, "#login-error", "Wrong user name or password");

    browser.fill("#username", "admin");
    browser.fill("#password", &backend.dashboard_password);
    browser.click("#login");
    wait_text(&browser, "h1", "Overview");
    screenshot("02-overview");

    // A real agent asks to enrol; the operator approves it on the pending page.
    let agent = Agent::new("dash-device-1");
    let mut bootstrap = backend.start_enrolment(&agent, None);
    let id = wait_for(|| {
        let pending = backend.cli_json(&["devices", "list", "--pending"]);
        pending.as_array()?.first()?["id"]
            .as_str()
            .map(str::to_string)
    });
    browser.goto(&format!("{base}/pending"));
    wait_text(&browser, "#pending-devices", "dash-device-1");
    screenshot("03-pending");
    browser.click(&format!("tr[data-device='{id}'] button[value=approve]"));
    wait_text(&browser, ".flash", "approved dash-device-1");
    assert!(
        wait_child(&mut bootstrap).success(),
        "bootstrap ends once approved"
    );

    // Into a new group.
    browser.goto(&format!("{base}/devices?group=unassigned"));
    browser.fill("#new-group", "/lab");
    browser.click("form[action='/groups/create'] button");
    wait_text(&browser, ".flash", "created group /lab");
    browser.goto(&format!("{base}/devices?group=unassigned"));
    wait_text(&browser, "#devices", "dash-device-1");
    browser.fill("#devices input[name=group]", "/lab");
    browser.click("#devices form button");
    wait_text(&browser, ".flash", "moved");
    wait_text(&browser, "#devices", "dash-device-1");
    screenshot("04-devices");
    assert_eq!(backend.device(&id)["group"], "/lab");

    // A templated file and a plain one for the group, drafted in the configure page's
    // form; the second file's row comes from "Add file" (JavaScript).
    backend.upload(
        "/templates/motd.tmpl",
        b"Welcome to {{site}} ({{sys.arch}})\n",
    );
    backend.upload("/files/issue", b"lab device\n");
    let dest = agent.root("etc/motd");
    let issue = agent.root("etc/issue");
    browser.goto(&format!("{base}/configure?node=/lab"));
    wait_text(&browser, "h1", "Configure /lab");
    browser.click("#edit-file_distribution > summary");
    let set = "#edit-file_distribution [name='f.sets.0";
    browser.fill(&format!("{set}.label']"), "motd");
    browser.fill(&format!("{set}.parameters.0.k']"), "site");
    browser.fill(&format!("{set}.parameters.0.v']"), "the lab");
    browser.fill(&format!("{set}.files.0.source']"), "/templates/motd.tmpl");
    browser.fill(
        &format!("{set}.files.0.destination']"),
        dest.to_str().unwrap(),
    );
    browser.click(&format!("{set}.files.0.template']"));
    browser.click("#edit-file_distribution button[data-list='f.sets.0.files']");
    browser.fill(&format!("{set}.files.1.source']"), "/files/issue");
    browser.fill(
        &format!("{set}.files.1.destination']"),
        issue.to_str().unwrap(),
    );
    browser.fill(&format!("{set}.files.1.mode']"), "0600");
    screenshot("05-configure-form");
    browser.click("#edit-file_distribution form.policy-form button[type=submit]");
    wait_text(&browser, ".flash", "file_distribution on /lab: draft saved");
    wait_text(&browser, "#drafts-pending", "1 draft change");
    // The saved draft comes back into the same form.
    assert_eq!(
        browser.script(&format!(
            "return document.querySelector(\"{set}.files.1.mode']\").value"
        )),
        json!("0600")
    );

    // A form with a bad value is refused with a message naming it, and drafts nothing.
    browser.click("#edit-settings > summary");
    browser.fill("#edit-settings [name='f.interval_seconds']", "5");
    browser.click("#edit-settings form.policy-form button[type=submit]");
    wait_text(
        &browser,
        ".flash.error",
        "interval_seconds must be at least 10",
    );
    assert_eq!(
        browser.script(
            "return document.querySelector(\"#edit-settings [name='f.interval_seconds']\").value"
        ),
        json!("5"),
        "the refused form comes back as it was filled in"
    );
    wait_text(&browser, "#drafts-pending", "1 draft change");
    screenshot("05-configure");

    // Commit, after seeing which devices it reaches.
    browser.goto(&format!("{base}/commit"));
    wait_text(&browser, "#impact-summary", "1 device(s) get a new bundle");
    assert!(browser.text("#impacted").contains("dash-device-1"));
    screenshot("06-commit-preview");
    browser.fill("#message", "motd for the lab");
    browser.click("#confirm-commit");
    wait_text(&browser, "h1", "Commit #");
    wait_text(&browser, "#rollout-counts", "pending: 1");
    let commit_url = browser.url();

    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    let arch = std::env::consts::ARCH;
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        format!("Welcome to the lab ({arch})\n")
    );
    assert_eq!(std::fs::read_to_string(&issue).unwrap(), "lab device\n");
    let mode = std::fs::metadata(&issue).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "mode from the form");
    browser.goto(&commit_url);
    wait_text(&browser, "#rollout-counts", "converged: 1");
    assert!(browser.text("#rollout").contains("converged"));
    screenshot("07-commit-rollout");

    // The device inherits the group's files: shown read-only, each set with its node.
    browser.goto(&format!("{base}/configure?node={id}"));
    wait_text(
        &browser,
        "#policy-file_distribution .inherited-from",
        "/lab",
    );
    let inherited = "#policy-file_distribution .inherited";
    assert!(
        browser
            .text(&format!("{inherited} legend"))
            .contains("from /lab")
    );
    assert_eq!(
        browser.count(&format!("{inherited} input:not([disabled])")),
        0,
        "inherited values are read-only"
    );
    screenshot("07-configure-device");

    // The device's log shows the change, and searching it works.
    browser.goto(&format!("{base}/devices/{id}"));
    wait_text(&browser, "#device-log", "written from /templates/motd.tmpl");
    assert!(browser.text("#device-info").contains("/lab"));
    browser.fill("#log-search", "motd.tmpl");
    browser.click("#log-filter button");
    wait_text(&browser, "#device-log", "written from /templates/motd.tmpl");
    screenshot("08-device-log");
    browser.fill("#log-search", "no such words anywhere");
    browser.click("#log-filter button");
    wait_text(&browser, "#device-log", "Nothing matches.");
    browser.click("#sort-level");
    wait_text(&browser, "#device-log", "Nothing matches.");
    browser.goto(&format!("{base}/"));
    wait_text(&browser, "#events", "dash-device-1");
    wait_text(&browser, "#online", "1");

    browser.goto(&format!("{base}/operators"));
    wait_text(&browser, "#operators", "admin (you)");
    screenshot("09-operators");

    // A form without its CSRF token is refused and changes nothing.
    browser.goto(&format!("{base}/devices"));
    browser.script(
        "document.querySelector(\"form[action='/groups/create'] input[name=csrf]\").remove()",
    );
    browser.fill("#new-group", "/forged");
    browser.click("form[action='/groups/create'] button");
    wait_text(&browser, "main", "security token is missing or stale");
    let groups = backend.cli_json(&["groups", "list"]).to_string();
    assert!(!groups.contains("/forged"), "{groups}");

    // Logging out ends the session.
    browser.goto(&format!("{base}/"));
    browser.click("form.logout button");
    wait_for(|| browser.url().ends_with("/login").then_some(()));
    browser.goto(&format!("{base}/devices"));
    assert!(browser.url().ends_with("/login"), "the old session is gone");
}
