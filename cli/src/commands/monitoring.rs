//! `apiary inventory`, `apiary find` and `apiary metrics`.

use serde_json::Value;

use super::audit::parse_since;
use crate::client::{Client, ClientError, encode};
use crate::output::{self, rows, s, time};
use crate::resolve;

/// `apiary inventory DEVICE [KIND] [--search TEXT]`.
pub fn inventory(
    c: &Client,
    device: &str,
    kind: Option<&str>,
    search: Option<&str>,
    json: bool,
) -> Result<(), ClientError> {
    let id = resolve::device(c, device)?;
    let Some(kind) = kind else {
        output::print(&c.get(&format!("/devices/{id}/inventory"))?, json, kinds);
        return Ok(());
    };
    let mut view = c.get(&format!("/devices/{id}/inventory/{}", encode(kind, false)))?;
    if let Some(text) = search {
        filter_packages(&mut view["data"], &text.to_lowercase());
    }
    let human = match kind {
        "system" => system,
        "software" => software,
        "users" => users,
        "ports" => ports,
        _ => processes,
    };
    output::print(&view, json, human);
    Ok(())
}

fn filter_packages(lists: &mut Value, text: &str) {
    for list in lists.as_array_mut().into_iter().flatten() {
        if let Some(p) = list["packages"].as_array_mut() {
            p.retain(|p| s(&p["name"]).to_lowercase().contains(text));
        }
    }
}

fn kinds(v: &Value) {
    println!("{:<10} {:<20} ENTRIES", "KIND", "CHANGED");
    for k in rows(v) {
        let entries = match &k["data"] {
            Value::Array(a) if k["kind"] == "software" => a
                .iter()
                .map(|l| l["packages"].as_array().map_or(0, Vec::len))
                .sum(),
            Value::Array(a) => a.len(),
            _ => 1,
        };
        println!(
            "{:<10} {:<20} {entries}",
            s(&k["kind"]),
            time(&k["changed_at"])
        );
    }
}

fn changed(v: &Value) {
    println!("(changed {})", time(&v["changed_at"]));
}

fn system(v: &Value) {
    let d = &v["data"];
    for key in [
        "os",
        "os_id",
        "os_version",
        "kernel",
        "arch",
        "cpu_model",
        "cpu_count",
        "serial",
        "memory_bytes",
        "default_interface",
    ] {
        println!("{key:<18} {}", s(&d[key]));
    }
    println!("{:<18} {}", "boot_time", time(&d["boot_time"]));
    let names: Vec<String> = rows(&d["hostnames"]).iter().map(s).collect();
    println!("{:<18} {}", "hostnames", names.join(" "));
    changed(v);
}

fn software(v: &Value) {
    println!(
        "{:<6} {:<40} {:<32} {:<10} SOURCE",
        "MGR", "NAME", "VERSION", "ARCH"
    );
    for list in rows(&v["data"]) {
        for p in rows(&list["packages"]) {
            println!(
                "{:<6} {:<40} {:<32} {:<10} {}",
                s(&list["manager"]),
                s(&p["name"]),
                s(&p["version"]),
                s(&p["arch"]),
                s(&p["source"])
            );
        }
    }
    changed(v);
}

/// Days since 1970 as today's count, for password ages.
fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 / 86400)
}

fn users(v: &Value) {
    println!(
        "{:<16} {:>6} {:>6} {:<9} {:<14} {:>8}  {:<20} HOME",
        "NAME", "UID", "GID", "PASSWORD", "ALGORITHM", "AGE(d)", "SHELL"
    );
    for a in rows(&v["data"]) {
        let algorithm = s(&a["algorithm"]);
        let weak = apiary_proto::inventory::weak_algorithm(&algorithm);
        let age = a["last_change_day"]
            .as_i64()
            .map_or("-".into(), |d| (today() - d).to_string());
        println!(
            "{:<16} {:>6} {:>6} {:<9} {:<14} {:>8}  {:<20} {}",
            s(&a["name"]),
            s(&a["uid"]),
            s(&a["gid"]),
            s(&a["password"]),
            if weak {
                format!("{algorithm} (weak)")
            } else {
                algorithm
            },
            age,
            s(&a["shell"]),
            s(&a["home"])
        );
    }
    changed(v);
}

fn ports(v: &Value) {
    println!(
        "{:<6} {:<40} {:>6} {:>7} {:>6} PROCESS",
        "PROTO", "ADDRESS", "PORT", "PID", "UID"
    );
    for p in rows(&v["data"]) {
        println!(
            "{:<6} {:<40} {:>6} {:>7} {:>6} {}",
            s(&p["protocol"]),
            s(&p["address"]),
            s(&p["port"]),
            s(&p["pid"]),
            s(&p["uid"]),
            s(&p["process"])
        );
    }
    changed(v);
}

fn processes(v: &Value) {
    let mut list: Vec<&Value> = rows(&v["data"]).iter().collect();
    list.sort_by(|a, b| {
        let cpu = |p: &Value| p["cpu"].as_f64().unwrap_or(0.0);
        cpu(b).total_cmp(&cpu(a))
    });
    println!(
        "{:>7} {:<12} {:>6} {:>6} {:>9} COMMAND",
        "PID", "USER", "CPU%", "MEM%", "RSS(KiB)"
    );
    for p in list {
        println!(
            "{:>7} {:<12} {:>6} {:>6} {:>9} {}",
            s(&p["pid"]),
            s(&p["user"]),
            s(&p["cpu"]),
            s(&p["memory"]),
            s(&p["rss_kib"]),
            s(&p["command"])
        );
    }
    changed(v);
}

/// `apiary find --package TEXT | --port N`.
pub fn find(
    c: &Client,
    package: Option<&str>,
    port: Option<u16>,
    json: bool,
) -> Result<(), ClientError> {
    let query = match (package, port) {
        (Some(text), _) => format!("package={}", encode(text, false)),
        (None, Some(port)) => format!("port={port}"),
        (None, None) => return Err(ClientError::Usage("pass --package or --port".into())),
    };
    output::print(&c.get(&format!("/inventory/search?{query}"))?, json, found);
    Ok(())
}

fn found(v: &Value) {
    println!("{:<12} {:<24} MATCH", "DEVICE", "NAME");
    for f in rows(v) {
        let id: String = s(&f["device_id"]).chars().take(12).collect();
        println!("{id:<12} {:<24} {}", s(&f["device_name"]), s(&f["detail"]));
    }
}

/// The range and series `apiary metrics` asks for.
pub struct Range {
    pub since: String,
    pub until: Option<String>,
    pub series: Vec<String>,
    pub resolution: Option<String>,
}

/// `apiary metrics DEVICE [--since] [--until] [--series NAME]... [--points]`.
pub fn metrics(
    c: &Client,
    device: &str,
    range: Range,
    points: bool,
    json: bool,
) -> Result<(), ClientError> {
    let id = resolve::device(c, device)?;
    let mut query = vec![format!("from={}", parse_since(&range.since)?)];
    if let Some(until) = &range.until {
        query.push(format!("to={}", parse_since(until)?));
    }
    if !range.series.is_empty() {
        query.push(format!("series={}", encode(&range.series.join(","), false)));
    }
    if let Some(r) = &range.resolution {
        query.push(format!("resolution={}", encode(r, false)));
    }
    let set = c.get(&format!("/devices/{id}/metrics?{}", query.join("&")))?;
    output::print(
        &set,
        json,
        if points {
            series_points
        } else {
            series_summary
        },
    );
    Ok(())
}

fn values(series: &Value) -> Vec<f64> {
    rows(&series["values"])
        .iter()
        .filter_map(Value::as_f64)
        .collect()
}

fn series_summary(v: &Value) {
    println!(
        "{} points ({}) from {} to {}",
        rows(&v["times"]).len(),
        s(&v["resolution"]),
        time(&v["from"]),
        time(&v["to"])
    );
    println!(
        "{:<32} {:<5} {:>14} {:>14} {:>14} {:>14}",
        "SERIES", "UNIT", "LAST", "MIN", "MEAN", "MAX"
    );
    for series in rows(&v["series"]) {
        let vals = values(series);
        if vals.is_empty() {
            continue;
        }
        let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let last = vals.last().copied().unwrap_or_default();
        println!(
            "{:<32} {:<5} {:>14} {:>14} {:>14} {:>14}",
            s(&series["name"]),
            s(&series["unit"]),
            number(last),
            number(min),
            number(mean),
            number(max)
        );
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn series_points(v: &Value) {
    let series = rows(&v["series"]);
    let names: Vec<String> = series.iter().map(|x| s(&x["name"])).collect();
    println!("TIME                 {}", names.join(" "));
    for (i, t) in rows(&v["times"]).iter().enumerate() {
        let cells: Vec<String> = series
            .iter()
            .map(|x| x["values"][i].as_f64().map_or("-".into(), number))
            .collect();
        println!("{} {}", time(t), cells.join(" "));
    }
}
