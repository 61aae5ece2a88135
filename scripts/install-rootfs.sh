#!/usr/bin/env bash
# Builds the root file system that sshhost's systemd hosts boot
# (sshhost.WithSystemd: one systemd-nspawn container per host, systemd as
# PID 1, sshd started by systemd) into a cache outside the repository, once.
#
#   debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,openssh-server
#
# from deb.debian.org, then a few adjustments for booting under nspawn with
# the network already set up by sshhost (see `customize` below). Containers
# never write to it: each host boots an overlay of it with its own upper dir.
#
#   scripts/install-rootfs.sh         build if missing; print the rootfs path
#   scripts/install-rootfs.sh path    print the path it is (or would be) at
#
# The directory name carries the suite and a hash of this script's recipe,
# so changing the recipe builds a new rootfs next to the old one (remove old
# ones by hand). Needs root and debootstrap; concurrent runs wait for each
# other (flock) and the rootfs appears atomically (rename) when complete.
set -euo pipefail

SUITE="${ROOTFS_SUITE:-bookworm}"
MIRROR="${ROOTFS_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="systemd,systemd-sysv,dbus,openssh-server"
CACHE="${ETCD_ROOTFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/terraform-provider-etcd/rootfs}"

log() { printf 'install-rootfs: %s\n' "$*" >&2; }

# customize runs once on the fresh debootstrap tree ($1). Anything changed
# here changes the recipe hash and so the cache directory.
customize() {
  local root="$1"
  # Per-host identity is written by sshhost before each first boot: host
  # keys and the authorized key. An empty machine-id makes systemd generate
  # a fresh one per boot instead of every container sharing one.
  rm -f "$root"/etc/ssh/ssh_host_*
  : > "$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  # sshd as the tests need it: root with keys only, no DNS lookups, many
  # concurrent sessions (the provider opens several per host).
  cat > "$root/etc/ssh/sshd_config.d/sshhost.conf" <<'EOF'
# written by scripts/install-rootfs.sh for sshhost test hosts
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
LoginGraceTime 30
AllowTcpForwarding yes
PrintMotd no
HostKey /etc/ssh/ssh_host_ed25519_key
EOF
  # sshhost writes the host key and root's authorized_keys before a
  # host's first boot (Debian's ssh.service generates no keys: without one,
  # sshd -t fails and the unit with it, which the ready wait reports).
  mkdir -p "$root/root/.ssh"
  chmod 700 "$root/root/.ssh"
  # Units that have nothing to do in a test container, or that would wait
  # for a console login or for network configuration (sshhost sets up the
  # namespace from outside), or run maintenance at random times.
  local unit
  for unit in console-getty.service getty@.service systemd-networkd-wait-online.service \
    systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer \
    systemd-firstboot.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  # journald: keep logs in memory only (a container's disk is its overlay).
  mkdir -p "$root/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n' > "$root/etc/systemd/journald.conf.d/sshhost.conf"
  echo sshhost > "$root/etc/hostname" # sshhost writes each host's name
  # apt's caches are not needed at run time.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
}

recipe_hash() {
  { echo "$SUITE $MIRROR $PACKAGES"; declare -f customize; } | sha256sum | cut -c1-12
}

dir="$CACHE/debian-$SUITE-$(recipe_hash)"
if [ "${1:-}" = path ]; then
  printf '%s\n' "$dir"
  exit 0
fi

ready() { [ -x "$1/lib/systemd/systemd" ] && [ -x "$1/usr/sbin/sshd" ] && [ -f "$1/.sshhost-rootfs" ]; }

if ready "$dir"; then
  log "rootfs cached at $dir"
  printf '%s\n' "$dir"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { log "building the rootfs needs root (debootstrap)"; exit 1; }
command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if ready "$dir"; then # built by a concurrent run while we waited
  log "rootfs cached at $dir"
  printf '%s\n' "$dir"
  exit 0
fi

tmp="$dir.tmp-$$"
rm -rf "$dir".tmp-*
trap 'rm -rf "$tmp"' EXIT
log "debootstrap $SUITE ($PACKAGES) from $MIRROR into $tmp (a few minutes)"
started=$SECONDS
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1; then
  tail -n 20 "$CACHE/debootstrap.log" >&2
  log "debootstrap failed; full log in $CACHE/debootstrap.log"
  exit 1
fi
customize "$tmp"
date -u +%FT%TZ > "$tmp/.sshhost-rootfs"
mv "$tmp" "$dir"
trap - EXIT
log "built $dir in $((SECONDS - started))s ($(du -sh "$dir" | cut -f1))"
printf '%s\n' "$dir"
