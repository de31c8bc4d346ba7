# kvmscope: build, install and package for hosts without a Swift toolchain.
#
#   make                     the release binary (Swift runtime linked in) and its man pages/completions
#   make install PREFIX=/usr/local DESTDIR=   install them (DESTDIR for packagers)
#   make deb                 kvmscope_VERSION_amd64.deb (packaging/make-deb)
#   make rpm                 kvmscope-VERSION-1.x86_64.rpm (packaging/make-rpm, needs rpmbuild)
#   make check-binary        the binary runs with the toolchain hidden (packaging/check-binary)
#
# `swift build` alone still works for development; this file is only the way to a host install.

SWIFT   ?= swift
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man/man1
DOCDIR  ?= $(PREFIX)/share/doc/kvmscope
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
# zsh searches vendor-completions only under /usr (Debian's zsh); under any other prefix the
# directory in its default fpath is site-functions.
ifeq ($(PREFIX),/usr)
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/vendor-completions
else
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
endif

# --static-swift-stdlib: the Swift runtime, Foundation and Dispatch are linked into the binary,
# so it needs only the system C libraries (glibc, zlib, liblzma, libzstd, libvirt).
RELEASE_FLAGS := -c release --static-swift-stdlib
STAGE := .build/pkg

.PHONY: all build man completions install install-staged uninstall deb rpm check-binary clean-pkg
all: build man completions

# SwiftPM decides what is stale; the release binary is copied (stripped) to the staging tree.
build:
	$(SWIFT) build $(RELEASE_FLAGS) --product kvmscope
	mkdir -p $(STAGE)
	cp "$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/kvmscope" $(STAGE)/kvmscope.unstripped
	strip --strip-unneeded -o $(STAGE)/kvmscope $(STAGE)/kvmscope.unstripped

# Man pages from the ArgumentParser definitions (swift-argument-parser's generate-manual plugin),
# one per subcommand, so they never drift from --help. The plugin builds every product first; in
# debug, so it reuses `swift build`'s build and never touches the release binary.
# The pages carry the commit's date, not the build's, so a rebuild of one commit is identical.
# EXIT STATUS is each command's own (from its help text; packaging/man-exit-status), checked
# by packaging/check-man.
MANDATE := $(shell d=$$(git log -1 --format=%cs 2>/dev/null) && [ -n "$$d" ] && echo "--date $$d")
man:
	$(SWIFT) package plugin generate-manual --configuration debug --multi-page \
		--authors "the kvmscope authors" $(MANDATE) </dev/null
	packaging/collect-man .build/plugins/GenerateManual/outputs/kvmscope $(STAGE)/man
	packaging/check-man $(STAGE)/man

completions: build
	mkdir -p $(STAGE)/completions
	$(STAGE)/kvmscope --generate-completion-script bash > $(STAGE)/completions/kvmscope.bash
	$(STAGE)/kvmscope --generate-completion-script zsh > $(STAGE)/completions/_kvmscope
	$(STAGE)/kvmscope --generate-completion-script fish > $(STAGE)/completions/kvmscope.fish

install: all
	$(MAKE) --no-print-directory install-staged

# What install copies, from the staging tree `make all` filled (make-deb calls this too).
install-staged:
	install -D -m 0755 $(STAGE)/kvmscope $(DESTDIR)$(BINDIR)/kvmscope
	install -d $(DESTDIR)$(MANDIR)
	install -m 0644 $(STAGE)/man/*.1 $(DESTDIR)$(MANDIR)/
	install -D -m 0644 $(STAGE)/completions/kvmscope.bash $(DESTDIR)$(BASHCOMPDIR)/kvmscope
	install -D -m 0644 $(STAGE)/completions/_kvmscope $(DESTDIR)$(ZSHCOMPDIR)/_kvmscope
	install -D -m 0644 $(STAGE)/completions/kvmscope.fish $(DESTDIR)$(FISHCOMPDIR)/kvmscope.fish
	install -d $(DESTDIR)$(DOCDIR)
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/kvmscope $(DESTDIR)$(MANDIR)/kvmscope.1 $(DESTDIR)$(MANDIR)/kvmscope-*.1
	rm -f $(DESTDIR)$(BASHCOMPDIR)/kvmscope $(DESTDIR)$(ZSHCOMPDIR)/_kvmscope $(DESTDIR)$(FISHCOMPDIR)/kvmscope.fish
	rm -rf $(DESTDIR)$(DOCDIR)

deb: all
	packaging/make-deb

rpm: all
	packaging/make-rpm

check-binary: build
	packaging/check-binary $(STAGE)/kvmscope

clean-pkg:
	rm -rf $(STAGE)
