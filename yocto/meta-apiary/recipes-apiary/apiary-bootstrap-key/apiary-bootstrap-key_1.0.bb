# Seeds the image with an Apiary bootstrap key, so that the device enrols by itself at first
# boot (apiary-agent-enroll) and shows up pending for an operator to approve.
#
# APIARY_BOOTSTRAP_KEY_FILE names a file on the build host holding the key; the key's text
# is never a variable, since variables end up in sigdata, buildhistory and the SPDX data.
# APIARY_DEVICE_URL is the device API URL; APIARY_CA_CERT_FILE optionally names the CA (PEM)
# to trust for enrolment instead of the system bundle.
SUMMARY = "Apiary bootstrap key for first-boot enrolment"
DESCRIPTION = "Installs an Apiary bootstrap key and the backend's URL in /etc/apiary-bootstrap, \
               from which apiary-agent-enroll enrols the device at first boot."
HOMEPAGE = "https://example.invalid/apiary"
SECTION = "admin"
LICENSE = "CLOSED"

APIARY_BOOTSTRAP_KEY_FILE ??= ""
APIARY_DEVICE_URL ??= ""
APIARY_CA_CERT_FILE ??= ""
APIARY_DEVICE_NAME ??= ""
# "/usr/bin/sudo -n" with apiary-agent-unprivileged (docs/agent.md).
APIARY_ELEVATION_COMMAND ??= ""
APIARY_PROXY_HOST ??= ""
APIARY_PROXY_PORT ??= ""

# The files themselves, by path: their checksums (not their text) enter the task hashes.
SRC_URI = "file://${APIARY_BOOTSTRAP_KEY_FILE} \
    ${@'file://' + d.getVar('APIARY_CA_CERT_FILE') if d.getVar('APIARY_CA_CERT_FILE') else ''}"

PACKAGE_ARCH = "${MACHINE_ARCH}"
INHIBIT_DEFAULT_DEPS = "1"
FILES:${PN} += "${sysconfdir}/apiary-bootstrap"
RDEPENDS:${PN} = "apiary-agent-enroll"

# nooelint: oelint.task.noanonpython - a clear skip at parse time beats a failed build
python __anonymous() {
    key = d.getVar('APIARY_BOOTSTRAP_KEY_FILE')
    if not key:
        raise bb.parse.SkipRecipe('set APIARY_BOOTSTRAP_KEY_FILE to the file holding the key')
    if not os.path.isabs(key):
        raise bb.parse.SkipRecipe('APIARY_BOOTSTRAP_KEY_FILE must be an absolute path: %s' % key)
    if not d.getVar('APIARY_DEVICE_URL').startswith('https://'):
        raise bb.parse.SkipRecipe('set APIARY_DEVICE_URL to the device API URL (https://...)')
    for name in ('APIARY_DEVICE_URL', 'APIARY_DEVICE_NAME', 'APIARY_ELEVATION_COMMAND',
                 'APIARY_PROXY_HOST', 'APIARY_PROXY_PORT'):
        if '\n' in (d.getVar(name) or ''):
            raise bb.parse.SkipRecipe('%s must be one line' % name)
}

do_configure[noexec] = "1"
do_compile[noexec] = "1"

# Python, not shell: the values are written as data, never expanded by a shell.
python do_install() {
    import shutil
    dest = d.getVar('D') + d.getVar('sysconfdir') + '/apiary-bootstrap'
    os.makedirs(dest, mode=0o755, exist_ok=True)
    shutil.copyfile(d.getVar('APIARY_BOOTSTRAP_KEY_FILE'), dest + '/key')
    os.chmod(dest + '/key', 0o600)
    if d.getVar('APIARY_CA_CERT_FILE'):
        shutil.copyfile(d.getVar('APIARY_CA_CERT_FILE'), dest + '/ca.pem')
        os.chmod(dest + '/ca.pem', 0o644)
    lines = ['# Written by apiary-bootstrap-key; read by apiary-agent-enroll.']
    for key, var in (('server', 'APIARY_DEVICE_URL'), ('device_name', 'APIARY_DEVICE_NAME'),
                     ('elevation_command', 'APIARY_ELEVATION_COMMAND'),
                     ('proxy_host', 'APIARY_PROXY_HOST'), ('proxy_port', 'APIARY_PROXY_PORT')):
        if d.getVar(var):
            lines.append('%s=%s' % (key, d.getVar(var)))
    with open(dest + '/enroll.conf', 'w') as conf:
        conf.write('\n'.join(lines) + '\n')
    os.chmod(dest + '/enroll.conf', 0o644)
}
