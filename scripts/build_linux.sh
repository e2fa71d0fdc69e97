#!/usr/bin/env bash
# Builds vmxlab's test Linux guest: tests/guests/linux/{bzImage,initramfs.cpio.gz}.
#
# The kernel: Debian's linux-source-6.1 (/usr/src/linux-source-6.1.tar.xz), `make ARCH=i386
# tinyconfig`, then tests/guests/linux/config.fragment on top (checked option by option after
# olddefconfig). The initramfs: Debian's busybox-static:i386 (/bin/busybox), a symlink for every
# applet, tests/guests/linux/init, and /dev/console, packed with the kernel's own gen_init_cpio (so
# no root is needed for the device node) and gzip'd.
#
# Needs (Debian 12): apt-get install linux-source-6.1 busybox-static:i386 flex bison bc libelf-dev
# cpio lz4 gcc make (busybox-static:i386 after `dpkg --add-architecture i386 && apt-get update`;
# lz4 compresses the kernel).
# Tests never run this: they boot the committed bzImage and initramfs.
#
#   scripts/build_linux.sh [--initramfs-only]     BUILD_DIR (default /tmp/vmxlab-linux) holds the tree
#   JOBS=2 NICE=19 by default: the kernel build takes ~8 minutes on two cores.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$here/tests/guests/linux"
build="${BUILD_DIR:-/tmp/vmxlab-linux}"
jobs="${JOBS:-2}"
nice="${NICE:-19}"
tarball="${LINUX_TARBALL:-/usr/src/linux-source-6.1.tar.xz}"
busybox="${BUSYBOX:-/bin/busybox}"
only_initramfs=0
[[ "${1:-}" == "--initramfs-only" ]] && only_initramfs=1

[[ -f "$tarball" ]] || { echo "no $tarball: apt-get install linux-source-6.1" >&2; exit 1; }
command -v lz4 >/dev/null || { echo "no lz4 (the kernel is LZ4-compressed): apt-get install lz4" >&2; exit 1; }
file -L "$busybox" | grep -q 'ELF 32-bit.*Intel 80386.*statically linked' \
  || { echo "$busybox is not a static i386 busybox: apt-get install busybox-static:i386" >&2; exit 1; }

mkdir -p "$build"
src="$build/linux-source-6.1"
if [[ ! -f "$src/Makefile" ]]; then
  echo "unpacking $tarball into $build"
  tar -C "$build" -xf "$tarball"
fi
kmake() { nice -n "$nice" make -C "$src" ARCH=i386 "$@"; }

if [[ $only_initramfs == 0 ]]; then
  kmake tinyconfig >/dev/null
  "$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$out/config.fragment" >/dev/null
  kmake olddefconfig >/dev/null
  # Every line of the fragment must have survived olddefconfig (a missing dependency drops an option).
  bad=0
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=*) grep -qx "$line" "$src/.config" || { echo "config: $line did not stick" >&2; bad=1; } ;;
      "# CONFIG_"*" is not set")
        opt="${line#\# }"; opt="${opt%% *}"
        if grep -q "^$opt=" "$src/.config"; then echo "config: $opt is still set" >&2; bad=1; fi ;;
    esac
  done < "$out/config.fragment"
  [[ $bad == 0 ]] || exit 1
  # A reproducible build: fixed identity and timestamp in the banner uname -a prints.
  export KBUILD_BUILD_USER=vmxlab KBUILD_BUILD_HOST=vmxlab KBUILD_BUILD_TIMESTAMP="2026-01-01 00:00:00 UTC" KBUILD_BUILD_VERSION=1
  kmake -j"$jobs" bzImage
  cp "$src/arch/x86/boot/bzImage" "$out/bzImage"
  cp "$src/.config" "$out/config"
fi

# The initramfs.
gen="$build/gen_init_cpio"
gcc -O2 -o "$gen" "$src/usr/gen_init_cpio.c"
list="$build/initramfs.list"
{
  echo "dir /bin 0755 0 0"
  echo "dir /dev 0755 0 0"
  echo "dir /proc 0755 0 0"
  echo "dir /sys 0755 0 0"
  echo "dir /tmp 1777 0 0"
  echo "dir /root 0700 0 0"
  echo "nod /dev/console 0600 0 0 c 5 1"
  echo "file /bin/busybox $busybox 0755 0 0"
  echo "file /init $out/init 0755 0 0"
  for applet in $("$busybox" --list); do
    [[ "$applet" == busybox ]] && continue
    echo "slink /bin/$applet busybox 0777 0 0"
  done
} > "$list"
"$gen" -t 1767225600 "$list" | gzip -9 -n > "$out/initramfs.cpio.gz"
ls -l "$out/bzImage" "$out/initramfs.cpio.gz"
