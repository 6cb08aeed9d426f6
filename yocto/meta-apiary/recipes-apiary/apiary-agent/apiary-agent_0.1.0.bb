# The Apiary agent built from source with the image's own Rust (1.88 or later).
require apiary-agent.inc

LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

inherit cargo cargo-update-recipe-crates

# The source is the Apiary checkout this layer lives in, at the commit named by
# APIARY_SRCREV (a full hash, e.g. `git -C <checkout> rev-parse HEAD`), so the agent and
# this layer come from the same tree. Point APIARY_GIT_URI at a mirror to build elsewhere.
APIARY_GIT_URI ??= "git://${APIARY_SOURCE_CHECKOUT};protocol=file"
APIARY_SRCREV ??= ""
PV .= "+git"
SRC_URI = "${APIARY_GIT_URI};nobranch=1;destsuffix=apiary"
SRCREV = "${APIARY_SRCREV}"
# After SRC_URI's assignment, which would drop the crates it appends.
require apiary-agent-crates.inc
S = "${APIARY_UNPACKDIR}/apiary"

# One package of the workspace: the agent; Cargo.lock is the workspace's.
CARGO_SRC_DIR = "agent"
CARGO_LOCK_SRC_DIR = "${S}"
CARGO_LOCK_PATH = "${S}/Cargo.lock"
# The workspace's release profile strips; Yocto strips itself and keeps the symbols for
# the -dbg package, so cargo must not (else QA's already-stripped error).
export CARGO_PROFILE_RELEASE_STRIP = "false"

APIARY_FILES = "${S}/packaging/files"

# nooelint: oelint.task.noanonpython - a clear skip at parse time beats a failed build
python __anonymous() {
    if not d.getVar('APIARY_SRCREV'):
        raise bb.parse.SkipRecipe(
            'set APIARY_SRCREV to the full commit hash of the Apiary checkout to build '
            '(git -C %s rev-parse HEAD)' % d.getVar('APIARY_SOURCE_CHECKOUT'))
    wanted = (1, 88)
    rust = (d.getVar('RUSTVERSION') or '').rstrip('%')
    try:
        have = tuple(int(part) for part in rust.split('.')[:2])
    except ValueError:
        return
    if have < wanted:
        raise bb.parse.SkipRecipe(
            'apiary-agent needs Rust %d.%d or later; RUSTVERSION is %s. On scarthgap add '
            'the scarthgap/rust branch of meta-lts-mixins (meta-apiary README)'
            % (wanted + (rust,)))
}

do_install() {
    install -d ${D}${bindir}
    install -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/apiary-agent ${D}${bindir}/apiary-agent
    apiary_install_service_files
}
