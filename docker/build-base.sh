#!/usr/bin/env bash
# Builds the faultline node base root filesystem as a tar, without any image registry:
# debootstrap a minimal Debian bookworm from Debian's own package mirror, add the packages
# listed in base-packages.txt, strip caches and docs, and write the tree as one tar that
# `docker import` (or the harness, through the Docker API) turns into an image.
#
# Usage: build-base.sh PACKAGES_FILE OUTPUT_TAR [MIRROR]
#   MIRROR defaults to the first Debian mirror in this machine's apt sources, else
#   http://deb.debian.org/debian.
# Needs: root (debootstrap mounts and chroots), debootstrap, tar.
set -euo pipefail

packages_file=${1:?usage: build-base.sh PACKAGES_FILE OUTPUT_TAR [MIRROR]}
output_tar=${2:?usage: build-base.sh PACKAGES_FILE OUTPUT_TAR [MIRROR]}
mirror=${3:-}
suite=bookworm

if [[ $(id -u) -ne 0 ]]; then
  echo "error: build-base.sh must run as root (debootstrap needs chroot and mounts)" >&2
  exit 2
fi
if ! command -v debootstrap >/dev/null; then
  echo "error: debootstrap is not installed (on Debian/Ubuntu: apt-get install -y debootstrap)" >&2
  exit 2
fi

# Use the mirror this machine's apt already trusts: it is the one known to be reachable.
if [[ -z $mirror ]]; then
  mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi

packages=$(grep -vE '^\s*(#|$)' "$packages_file" | tr -d ' ' | paste -sd, -)

workdir=$(mktemp -d /var/tmp/faultline-rootfs.XXXXXX)
# The rootfs may still have proc/sys mounted if debootstrap fails midway; unmount before rm.
cleanup() {
  for m in proc sys dev/pts dev; do umount -l "$workdir/rootfs/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$workdir"
}
trap cleanup EXIT
rootfs=$workdir/rootfs

echo "step: debootstrap $suite (minbase + $packages) from $mirror"
debootstrap --variant=minbase --include="$packages" --components=main \
  "$suite" "$rootfs" "$mirror"

echo "step: configuring rootfs"
# Point apt at the same mirror so a user can apt-get inside a node while debugging.
echo "deb $mirror $suite main" > "$rootfs/etc/apt/sources.list"
# iptables-legacy works in any kernel network namespace; nft needs nf_tables modules that
# some hosts lack. Prefer legacy when present so partitions work the same everywhere.
if [[ -x $rootfs/usr/sbin/iptables-legacy ]]; then
  chroot "$rootfs" update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
  chroot "$rootfs" update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null
fi

echo "step: trimming caches and docs"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/var/log/* "$rootfs"/tmp/* \
  "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old
# Docker provides these at run time; leaving host-specific copies would be misleading.
: > "$rootfs/etc/hostname"
: > "$rootfs/etc/resolv.conf"

echo "step: writing $output_tar"
mkdir -p "$(dirname "$output_tar")"
tar --numeric-owner --xattrs -C "$rootfs" -cf "$output_tar.partial" .
mv "$output_tar.partial" "$output_tar"
echo "done: $(du -h "$output_tar" | cut -f1) $output_tar"
