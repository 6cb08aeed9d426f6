# The Apiary agent as the project releases it: the static musl binary from a release
# tarball (packaging/build's apiary-agent-<version>-<target>.tar.gz), for images that do
# not build Rust. APIARY_BIN_DIR names the directory on the build host that holds the
# tarballs; the recipe takes the one of the machine's CPU.
require apiary-agent.inc

LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

APIARY_BIN_DIR ??= ""
APIARY_RUST_TARGET = "unknown"
APIARY_RUST_TARGET:x86-64 = "x86_64-unknown-linux-musl"
APIARY_RUST_TARGET:aarch64 = "aarch64-unknown-linux-musl"
# nooelint: oelint.vars.specific - arm is TARGET_ARCH's override for 32-bit ARM
APIARY_RUST_TARGET:arm = "armv7-unknown-linux-musleabihf"
APIARY_RUST_TARGET:mips = "mips-unknown-linux-musl"
APIARY_RUST_TARGET:mipsel = "mipsel-unknown-linux-musl"
COMPATIBLE_HOST = "(x86_64|aarch64|arm|mips|mipsel).*-linux.*"

APIARY_TARBALL = "apiary-agent-${PV}-${APIARY_RUST_TARGET}"
SRC_URI = "file://${APIARY_BIN_DIR}/${APIARY_TARBALL}.tar.gz"
S = "${APIARY_UNPACKDIR}/${APIARY_TARBALL}"

# Either this recipe's packages or apiary-agent's, never both; apiary-bootstrap-key's
# dependency on apiary-agent-enroll is met by either.
RPROVIDES:${PN} = "apiary-agent"
RPROVIDES:${PN}-enroll = "apiary-agent-enroll"
RPROVIDES:${PN}-unprivileged = "apiary-agent-unprivileged"
RREPLACES:${PN} = "apiary-agent"
RCONFLICTS:${PN} = "apiary-agent"
RCONFLICTS:${PN}-enroll = "apiary-agent-enroll"
RCONFLICTS:${PN}-unprivileged = "apiary-agent-unprivileged"

# The binary arrives as released: static and stripped (the release profile strips).
INHIBIT_PACKAGE_STRIP = "1"
INHIBIT_PACKAGE_DEBUG_SPLIT = "1"
# nooelint: oelint.vars.insaneskip - the released binary is stripped by its own build
INSANE_SKIP:${PN} += "already-stripped"

# nooelint: oelint.task.noanonpython - a clear skip at parse time beats a failed build
python __anonymous() {
    if not d.getVar('APIARY_BIN_DIR'):
        raise bb.parse.SkipRecipe(
            'set APIARY_BIN_DIR to the directory holding apiary-agent-%s-<target>.tar.gz '
            '(packaging/build writes them to dist/)' % d.getVar('PV'))
}

APIARY_FILES = "${B}/files"

# The tarball groups its files by kind; the shared install step takes them by name.
do_compile() {
    install -d ${APIARY_FILES}
    cp ${S}/systemd/apiary-agent.service ${S}/systemd/apiary-agent-enroll.service \
        ${S}/systemd/unprivileged.conf ${APIARY_FILES}/
    cp ${S}/init.d/apiary-agent ${APIARY_FILES}/apiary-agent.init
    cp ${S}/init.d/apiary-agent-enroll ${APIARY_FILES}/apiary-agent-enroll.init
    cp ${S}/default/apiary-agent ${APIARY_FILES}/apiary-agent.default
    cp ${S}/sudoers/apiary-agent ${APIARY_FILES}/apiary-agent.sudoers
    cp ${S}/libexec/enroll ${APIARY_FILES}/apiary-agent-enroll
}

do_install() {
    install -d ${D}${bindir} ${D}${mandir}/man1
    install -m 0755 ${S}/apiary-agent ${D}${bindir}/apiary-agent
    install -m 0644 ${S}/apiary-agent.1 ${D}${mandir}/man1/apiary-agent.1
    apiary_install_service_files
}
