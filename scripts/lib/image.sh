# shellcheck shell=bash
# image.sh: the apitx-busybox test image, shared by scripts/lxd-sandbox and
# scripts/lxd-cluster (sourced, not run).
#
# There is no internet on the test machines, so the image is built offline
# from the host's busybox-static: a ~1 MB "unified" tarball (metadata.yaml and
# rootfs/ at its top level) that LXD imports as it is.
#
#   source scripts/lib/image.sh
#   ensure_busybox_image apitx-busybox     # imports it into the LXD that
#                                          # lxc talks to ($LXD_DIR), if missing
#
# Both functions talk to whatever daemon `lxc` reaches: the caller sets
# LXD_DIR (and LXD_CONF) first. Errors go to stderr and make the function
# fail, so a caller under `set -e` stops with the message.

# Build the image tarball in directory $1 (which must exist and be empty);
# the tarball is $1/image.tar.gz.
# The build is reproducible (dates from the busybox binary, sorted tar, gzip
# without a name or time), so every server gets the same fingerprint from it.
build_busybox_image() (   # a subshell: its umask stays inside
    local tmp=$1 root=$1/rootfs busybox applet epoch
    busybox=$(readlink -f /bin/busybox)
    # The host's busybox is copied into a container with no libc at all: it
    # must be the static one, whatever the package database says.
    if ldd "$busybox" >/dev/null 2>&1; then
        echo "${0##*/}: error: $busybox is dynamically linked; install busybox-static" \
            "(scripts/lxd-sandbox does)" >&2
        return 1
    fi
    epoch=$(stat -c %Y "$busybox")
    umask 022

    mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,root,etc,run,var}
    chmod 1777 "$root/tmp"
    chmod 0700 "$root/root"
    cp "$busybox" "$root/bin/busybox"
    chmod 0755 "$root/bin/busybox"
    # One symlink per applet (sh, echo, cat, ls, sleep, true, false, ...).
    for applet in $("$busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    # The daemon starts /sbin/init; busybox's init handles SIGPWR (the stop
    # signal) by halting, so a plain `lxc stop` works without --force.
    ln -sf /bin/busybox "$root/sbin/init"
    # Without /etc/inittab busybox init spawns shells on tty2..tty4, which do
    # not exist in a container. An inittab with no entries makes it just
    # reap children and wait for signals; tests use exec.
    printf '# apitx-busybox: no boot actions, no consoles.\n' >"$root/etc/inittab"
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\n' >"$root/etc/group"

    cat >"$tmp/metadata.yaml" <<EOF
architecture: $(uname -m)
creation_date: $epoch
properties:
  description: apitx test image (busybox $("$busybox" | sed -n '1s/^BusyBox v\([^ ]*\).*/\1/p'))
  os: busybox
  release: static
EOF
    # One "unified" tarball: metadata.yaml and rootfs/ at its top level.
    tar -C "$tmp" --sort=name --mtime="@$epoch" --numeric-owner --owner=0 --group=0 \
        -cf - metadata.yaml rootfs | gzip -n >"$tmp/image.tar.gz"
)

ensure_busybox_image() {
    local alias=$1
    lxc image info "$alias" >/dev/null 2>&1 && return 0
    echo "${0##*/}: building and importing image '$alias'" >&2
    (
        tmp=$(mktemp -d /tmp/apitx-image.XXXXXX)
        trap 'rm -rf "$tmp"' EXIT
        build_busybox_image "$tmp"
        lxc image import "$tmp/image.tar.gz" --alias "$alias" >&2
    )
}
