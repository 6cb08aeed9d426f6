################################################################################
#
# apiary-agent
#
################################################################################

# Built from the Apiary checkout this external tree lives in: the agent and the tree that
# packages it come from the same commit.
APIARY_AGENT_VERSION = 0.1.0
APIARY_AGENT_SITE = $(BR2_EXTERNAL_APIARY_PATH)/..
APIARY_AGENT_SITE_METHOD = local
APIARY_AGENT_LICENSE = Apache-2.0
APIARY_AGENT_LICENSE_FILES = LICENSE
# The workspace's build output and release files are not sources.
APIARY_AGENT_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude=/target --exclude=/dist --exclude=/fuzz/target
APIARY_AGENT_SUBDIR = agent
APIARY_AGENT_CARGO_BUILD_OPTS = --bin apiary-agent
# The agent's clock never goes below its build time (docs/agent.md, "Clock"); the rsynced
# copy has no .git to read the commit's time from, so take it from the checkout.
APIARY_AGENT_CARGO_ENV = SOURCE_DATE_EPOCH=$(or $(SOURCE_DATE_EPOCH),$(shell \
	git -C $(APIARY_AGENT_SITE) log -1 --format=%ct 2>/dev/null))

APIARY_AGENT_CONFIG_DIR = $(call qstrip,$(BR2_PACKAGE_APIARY_AGENT_DATA_DIR))
APIARY_AGENT_KEY_FILE = $(call qstrip,$(BR2_PACKAGE_APIARY_AGENT_BOOTSTRAP_KEY_FILE))
APIARY_AGENT_CA_FILE = $(call qstrip,$(BR2_PACKAGE_APIARY_AGENT_CA_CERT_FILE))
APIARY_AGENT_FILES = $(@D)/packaging/files

# These values are written into files by the shell: refuse the quote that would end them.
ifeq ($(BR2_PACKAGE_APIARY_AGENT),y)
ifneq ($(findstring ',$(APIARY_AGENT_CONFIG_DIR)$(BR2_PACKAGE_APIARY_AGENT_SERVER)),)
$(error apiary-agent: BR2_PACKAGE_APIARY_AGENT_DATA_DIR and _SERVER must not contain ')
endif
endif

# A local source skips the download step, which vendors the crates of a cargo package:
# vendor them here into the same place (VENDOR, .cargo/config.toml) from Cargo.lock.
# The first build needs crates.io, or a filled $(BR_CARGO_HOME).
define APIARY_AGENT_VENDOR_CRATES
	mkdir -p $(@D)/.cargo
	cd $(@D) && $(HOST_MAKE_ENV) CARGO_HOME=$(BR_CARGO_HOME) \
		cargo vendor --locked VENDOR > $(@D)/.cargo/config.toml
endef
APIARY_AGENT_PRE_CONFIGURE_HOOKS += APIARY_AGENT_VENDOR_CRATES

# Rust's own version is not a Kconfig symbol: refuse an older one here, by name.
define APIARY_AGENT_CHECK_RUST_VERSION
	version=$$($(HOST_DIR)/bin/rustc --version | cut -d' ' -f2); \
	if [ "$$(printf '1.88.0\n%s\n' "$$version" | sort -V | head -n1)" != 1.88.0 ]; then \
		echo "apiary-agent needs Rust 1.88 or later; this Buildroot has $$version" >&2; \
		exit 1; \
	fi
endef
APIARY_AGENT_PRE_BUILD_HOOKS += APIARY_AGENT_CHECK_RUST_VERSION

define APIARY_AGENT_USERS
	apiary -1 apiary -1 * - - - Apiary agent, unprivileged mode
endef

define APIARY_AGENT_INSTALL_DEFAULTS
	$(INSTALL) -D -m 0644 $(APIARY_AGENT_FILES)/apiary-agent.default \
		$(TARGET_DIR)/etc/default/apiary-agent
	printf 'APIARY_CONFIG_DIR=%s\n' '$(APIARY_AGENT_CONFIG_DIR)' \
		>> $(TARGET_DIR)/etc/default/apiary-agent
	$(INSTALL) -D -m 0755 $(APIARY_AGENT_FILES)/apiary-agent-enroll \
		$(TARGET_DIR)/usr/libexec/apiary-agent/enroll
	$(INSTALL) -D -m 0440 $(APIARY_AGENT_FILES)/apiary-agent.sudoers \
		$(TARGET_DIR)/usr/share/apiary-agent/sudoers
endef
APIARY_AGENT_POST_INSTALL_TARGET_HOOKS += APIARY_AGENT_INSTALL_DEFAULTS

ifneq ($(APIARY_AGENT_KEY_FILE),)
APIARY_AGENT_ENROLL_CONF = $(TARGET_DIR)/etc/apiary-bootstrap/enroll.conf
define APIARY_AGENT_INSTALL_BOOTSTRAP_KEY
	$(INSTALL) -D -m 0600 $(APIARY_AGENT_KEY_FILE) \
		$(TARGET_DIR)/etc/apiary-bootstrap/key
	$(if $(APIARY_AGENT_CA_FILE),$(INSTALL) -D -m 0644 $(APIARY_AGENT_CA_FILE) \
		$(TARGET_DIR)/etc/apiary-bootstrap/ca.pem)
	printf 'server=%s\n' '$(call qstrip,$(BR2_PACKAGE_APIARY_AGENT_SERVER))' \
		> $(APIARY_AGENT_ENROLL_CONF)
endef
APIARY_AGENT_POST_INSTALL_TARGET_HOOKS += APIARY_AGENT_INSTALL_BOOTSTRAP_KEY

define APIARY_AGENT_PERMISSIONS
	/etc/apiary-bootstrap/key f 0600 0 0 - - - - -
endef
endif

define APIARY_AGENT_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(APIARY_AGENT_PKGDIR)/S95apiary-agent \
		$(TARGET_DIR)/etc/init.d/S95apiary-agent
endef

# The source tree's units; a drop-in points their conditions at the persistent directory.
define APIARY_AGENT_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(APIARY_AGENT_FILES)/apiary-agent.service \
		$(TARGET_DIR)/usr/lib/systemd/system/apiary-agent.service
	$(INSTALL) -D -m 0644 $(APIARY_AGENT_FILES)/apiary-agent-enroll.service \
		$(TARGET_DIR)/usr/lib/systemd/system/apiary-agent-enroll.service
	$(INSTALL) -D -m 0644 $(APIARY_AGENT_PKGDIR)/data-dir.conf \
		$(TARGET_DIR)/usr/lib/systemd/system/apiary-agent.service.d/data-dir.conf
	$(INSTALL) -D -m 0644 $(APIARY_AGENT_PKGDIR)/enroll-data-dir.conf \
		$(TARGET_DIR)/usr/lib/systemd/system/apiary-agent-enroll.service.d/data-dir.conf
	$(SED) 's#@CONFIG_DIR@#$(APIARY_AGENT_CONFIG_DIR)#g' \
		$(TARGET_DIR)/usr/lib/systemd/system/apiary-agent.service.d/data-dir.conf \
		$(TARGET_DIR)/usr/lib/systemd/system/apiary-agent-enroll.service.d/data-dir.conf
endef

$(eval $(cargo-package))
