//! Monitoring in the dashboard, in headless Chromium: the static agent inside the Debian
//! root sends its inventory and metrics to a real backend; the operator reads the graphs
//! (and zooms them by dragging), the inventory tab (a weak, old password marked; a listening
//! port; software searched), searches the fleet, adds an alert rule and a webhook in the
//! forms, and sees the alert open on the alerts page and the overview. Screenshots go to
//! `target/dashboard-screenshots/monitoring-*.png`.
//!
//! Ignored by default: it needs Chromium, the roots (`tests/rootfs/build`), the static
//! agent (`cross/build`) and root; `scripts/test` provides them and runs it.

use apiary_tests::browser::Browser;
use apiary_tests::rootfs::RootFs;
use apiary_tests::{Agent, Backend, wait_for};

/// Waits until the element `css` contains `text`.
fn wait_text(browser: &Browser, css: &str, text: &str) {
    wait_for(|| browser.text_now(css).filter(|t| t.contains(text)).map(drop));
}

#[test]
#[ignore = "needs Chromium, tests/rootfs/build, cross/build and root (scripts/test runs it)"]
fn an_operator_reads_graphs_inventory_and_alerts_in_chromium() {
    let root = RootFs::debian();
    root.sh_ok(
        "useradd -m -p '$1$vendor$0123456789abcdefghijkl' vendor && chage -d 2020-01-15 vendor",
    );
    root.sh_ok(
        "perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => \"127.0.0.1\", LocalPort => 0, Listen => 5) or die; open(F, \">/tmp/port\"); print F $s->sockport; close F; sleep 100000' >/dev/null 2>&1 &",
    );
    let port: u16 = wait_for(|| {
        let text = std::fs::read_to_string(root.path("/tmp/port")).ok()?;
        text.trim().parse().ok()
    });
    let mut backend = Backend::start();
    backend.extra_args = vec!["--alert-interval".into(), "1".into()];
    backend.restart();
    let agent = Agent::in_root("graphs-device", &root);
    let id = backend.enroll(&agent, "/lab");
    // A few cycles more than a second apart (the agent takes no two samples within a
    // second of each other): a few samples of every series.
    for _ in 0..4 {
        let (code, log) = agent.run_once();
        assert_eq!(code, 0, "agent run failed: {log}");
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let set = backend.cli_json(&["metrics", &id, "--since", "1h"]);
    let times: Vec<i64> = set["times"]
        .as_array()
        .expect("times")
        .iter()
        .map(|t| t.as_i64().expect("a time"))
        .collect();
    assert!(times.len() >= 3, "samples: {set}");

    let browser = Browser::chromium();
    let base = backend.operator_url.clone();
    let screenshot = |page: &str| browser.screenshot(&format!("monitoring-{page}"));
    browser.goto(&format!("{base}/login"));
    browser.fill("#username", "admin");
    browser.fill("#password", &backend.dashboard_password);
    browser.click("#login");
    wait_text(&browser, "h1", "Overview");

    // Graphs over a span two minutes wide around the samples, so they sit in its middle.
    let (first, last) = (times[0], times[times.len() - 1]);
    let (from, to) = (first - 60, last + 60);
    browser.goto(&format!("{base}/devices/{id}/graphs?from={from}&to={to}"));
    wait_text(
        &browser,
        "#graphs-status",
        &format!("{} samples", times.len()),
    );
    for graph in [
        "CPU",
        "Memory and swap used",
        "Load average",
        "File systems used",
    ] {
        assert!(
            browser.count(&format!("#graphs [data-graph='{graph}'] canvas")) == 1,
            "a {graph} graph"
        );
    }
    assert!(browser.script("return document.getElementById('graphs-reset').hidden") == true);
    screenshot("01-graphs");

    // Dragging across the middle half of the CPU graph zooms every graph to that span.
    let width = browser
        .script("return document.querySelector(\"[data-graph='CPU'] .u-over\").getBoundingClientRect().width")
        .as_f64()
        .expect("the plot's width") as i64;
    browser.drag("[data-graph='CPU'] .u-over", -width / 4, width / 4);
    wait_for(|| {
        (browser.script("return document.getElementById('graphs-reset').hidden") == false)
            .then_some(())
    });
    let zoomed = browser.url();
    let span = |url: &str| -> Option<(i64, i64)> {
        let query = url.split_once('?')?.1;
        let get = |k: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=')?.parse::<i64>().ok())
        };
        Some((get("from")?, get("to")?))
    };
    let (zoom_from, zoom_to) = span(&zoomed).expect("a zoomed view has its span in its address");
    assert!(
        from < zoom_from && zoom_to < to,
        "{zoomed} inside {from}..{to}"
    );
    assert!(
        (zoom_to - zoom_from) * 3 < (to - from) * 2,
        "a half-width drag narrows the span: {zoomed}"
    );
    wait_text(&browser, "#graphs-status", "samples");
    screenshot("02-graphs-zoomed");
    browser.click("#graphs-reset");
    wait_for(|| {
        (browser.script("return document.getElementById('graphs-reset').hidden") == true)
            .then_some(())
    });
    assert!(browser.url().ends_with(&format!("?from={from}&to={to}")));

    // The inventory tab: the vendor account's md5 hash and 2020 password marked.
    browser.click("#device-tabs a[href$='/inventory']");
    wait_text(&browser, "#users", "vendor");
    let vendor = browser.text("#users tr.risk[data-user='vendor']");
    assert!(
        vendor.contains("md5 weak") && vendor.contains("old"),
        "{vendor}"
    );
    assert_eq!(browser.count("#users tr.risk[data-user='root']"), 0);
    assert!(browser.text("#ports").contains(&port.to_string()));
    assert!(browser.text("#ports").contains("perl"));
    assert!(browser.text("#system").contains("Debian"));
    screenshot("03-inventory");
    browser.fill("#software-filter", "libc6");
    browser.click("#software-search button");
    wait_text(&browser, "#software-search", "of ");
    let software = browser.text("#software");
    assert!(software.contains("libc6"), "{software}");
    assert!(!software.contains("coreutils"), "{software}");
    screenshot("04-inventory-software");

    // The fleet: who has the package, who listens on the port.
    browser.goto(&format!("{base}/inventory"));
    browser.fill("#package", "libc6");
    browser.click("#package-search button");
    wait_text(&browser, "#found", "graphs-device");
    assert!(browser.text("#found").contains("libc6"));
    browser.fill("#port", &port.to_string());
    browser.click("#port-search button");
    wait_text(&browser, "h2", &format!("for port {port}"));
    assert!(browser.text("#found").contains("perl"));
    screenshot("05-fleet-search");
    browser.fill("#port", "70000");
    browser.click("#port-search button");
    wait_text(&browser, "main", "a port is a number from 1 to 65535");

    // An alert rule and a webhook from the forms; the rule fires for the device.
    browser.goto(&format!("{base}/alerts"));
    wait_text(&browser, "#alert-rules", "No rules");
    browser.fill("#add-metric-rule input[name=name]", "any load");
    browser.fill("#add-metric-rule input[name=metric]", "load.1");
    browser.fill("#add-metric-rule input[name=above]", "-1");
    browser.fill("#add-metric-rule input[name=minutes]", "0");
    browser.click("#add-metric-rule button");
    wait_text(&browser, ".flash", "rule any load added: load.1 above -1");
    // The browser keeps number fields numeric; a limit is free text the server checks.
    browser.fill("#add-metric-rule input[name=name]", "bad");
    browser.fill("#add-metric-rule input[name=metric]", "load.1");
    browser.fill("#add-metric-rule input[name=above]", "lots");
    browser.click("#add-metric-rule button");
    wait_text(
        &browser,
        ".flash.error",
        "above must be a number, not \"lots\"",
    );
    assert!(!browser.text("#alert-rules").contains("bad"));
    const SECRET: &str = "a-secret-of-twenty-characters";
    browser.fill("#add-webhook input[name=url]", "http://127.0.0.1:9/hook");
    browser.fill("#add-webhook input[name=secret]", SECRET);
    browser.click("#add-webhook button");
    wait_text(
        &browser,
        ".flash",
        "webhook http://127.0.0.1:9/hook added (signed)",
    );
    let source = browser.script("return document.documentElement.outerHTML");
    assert!(
        !source.to_string().contains(SECRET),
        "the secret is never shown"
    );
    wait_for(|| {
        browser.goto(&format!("{base}/alerts"));
        browser
            .text_now("#alerts")
            .filter(|t| t.contains("graphs-device") && t.contains("any load"))
            .map(drop)
    });
    assert!(
        browser
            .text("#webhooks")
            .contains("http://127.0.0.1:9/hook")
    );
    screenshot("06-alerts");
    browser.goto(&format!("{base}/"));
    wait_text(&browser, "#open-alerts", "1");
    assert!(browser.text("#overview-alerts").contains("load.1"));
    screenshot("07-overview-alert");
}
