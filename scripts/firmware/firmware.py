"""Facts the firmware checks share: the workspace version, the supported releases and their
Rust, and `systemd-analyze verify` of units in a scratch root."""
import os
import re
import shutil
import subprocess
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def version():
    """The workspace's version (Cargo.toml), which recipe and package versions follow."""
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        return re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)


def rust_versions():
    """{release: rust version} from scripts/firmware/rust-versions."""
    found = {}
    with open(os.path.join(os.path.dirname(__file__), "rust-versions")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                release, rust = line.split()[:2]
                found[release] = rust
    return found


def yocto_releases():
    """{yocto series: rust version}, e.g. {"wrynose": "1.94.1"}."""
    return {r[len("yocto-"):]: v for r, v in rust_versions().items() if r.startswith("yocto-")}


def verify_units(image, units, fail, unit_dir):
    """systemd-analyze verify of `units` installed under image/unit_dir, with their drop-ins,
    in a root that also holds the host's units (for the targets they name) and the image."""
    with tempfile.TemporaryDirectory() as root:
        shutil.copytree("/lib/systemd/system", os.path.join(root, "lib/systemd/system"),
                        symlinks=True)
        shutil.copytree(image, root, dirs_exist_ok=True, symlinks=True)
        dest = os.path.join(root, "etc/systemd/system")
        os.makedirs(dest, exist_ok=True)
        for unit in units:
            shutil.copy(os.path.join(image, unit_dir, unit), dest)
            dropins = os.path.join(image, unit_dir, unit + ".d")
            if os.path.isdir(dropins):
                shutil.copytree(dropins, os.path.join(dest, unit + ".d"), dirs_exist_ok=True)
        done = subprocess.run(["systemd-analyze", "verify", "--man=no", "--root", root] + units,
                              capture_output=True, text=True)
        # systemd before 254 does not know the restart back-off keys and says so.
        noise = ("Unknown key 'RestartSteps'", "Unknown key 'RestartMaxDelaySec'")
        lines = [l for l in (done.stdout + done.stderr).splitlines()
                 if l.strip() and not any(n in l for n in noise)]
        if done.returncode != 0 or lines:
            fail("systemd-analyze verify %s: %s" % (" ".join(units), "; ".join(lines)))
