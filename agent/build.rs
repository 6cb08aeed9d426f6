//! Records when the agent was built, as `APIARY_BUILD_TIME` (Unix seconds): the lower bound
//! of the agent's clock (`src/clock.rs`). `SOURCE_DATE_EPOCH` wins (reproducible builds);
//! else the last commit's time; else 0, no bound.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let time = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .or_else(|| {
            let out = Command::new("git")
                .args(["log", "-1", "--format=%ct"])
                .output()
                .ok()?;
            String::from_utf8(out.stdout).ok()?.trim().parse().ok()
        })
        .unwrap_or(0);
    println!("cargo:rustc-env=APIARY_BUILD_TIME={time}");
}
