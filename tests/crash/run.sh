#!/usr/bin/env bash
# Crash test for awrite on a real kernel: QEMU, Debian's kernel, a raw
# virtio disk per try, btrfs / ext4 / xfs. Boot 1 runs awrite and crashes
# the kernel as soon as awrite exits 0; boot 2 mounts the disk again (log
# replay) and prints the file. After exit 0 anything but the complete new
# content is a violation. See README.md beside this file.
#
#   tests/crash/run.sh [--tries N|FS=N,...] [--fs btrfs,ext4,xfs]
#                      [--modes plain,stream,append] [--crash c|b]
#                      [--kernel VMLINUZ [--modules DIR]] [--workdir DIR]
#                      [--accel kvm|tcg]
#                      BINARY
#
# Exit 0: no violation; 1: at least one violation; 2: a try could not be
# run (boot failed, awrite failed, timeout) and there was no violation;
# 64: usage.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tries_spec=6
fs_list=btrfs,ext4,xfs
mode_list=plain,stream,append
crash=c
kernel=
modules=
work=${AWRITE_CRASH_WORKDIR:-/var/tmp/awrite-crash}
timeout_s=${AWRITE_CRASH_TIMEOUT:-300}
binary=
accel=

usage() {
    sed -n '/^#   tests\/crash\/run.sh/,/^# 64: usage/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 64
}

while [ $# -gt 0 ]; do
    case "$1" in
        --tries) tries_spec=${2:?}; shift 2 ;;
        --tries=*) tries_spec=${1#*=}; shift ;;
        --fs) fs_list=${2:?}; shift 2 ;;
        --fs=*) fs_list=${1#*=}; shift ;;
        --modes) mode_list=${2:?}; shift 2 ;;
        --modes=*) mode_list=${1#*=}; shift ;;
        --crash) crash=${2:?}; shift 2 ;;
        --crash=*) crash=${1#*=}; shift ;;
        --kernel) kernel=${2:?}; shift 2 ;;
        --modules) modules=${2:?}; shift 2 ;;
        --workdir) work=${2:?}; shift 2 ;;
        --accel) accel=${2:?}; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "run.sh: unknown option $1" >&2; usage ;;
        *) [ -z "$binary" ] || usage; binary=$1; shift ;;
    esac
done
[ -n "$binary" ] || usage
[ -x "$binary" ] || { echo "run.sh: $binary is not an executable" >&2; exit 64; }
binary=$(realpath "$binary")
case "$crash" in c|b) ;; *) echo "run.sh: --crash is c or b" >&2; exit 64 ;; esac
IFS=, read -r -a fss <<<"$fs_list"
IFS=, read -r -a modes <<<"$mode_list"
for f in "${fss[@]}"; do
    case "$f" in btrfs|ext4|xfs) ;; *) echo "run.sh: unknown fs $f" >&2; exit 64 ;; esac
done
for m in "${modes[@]}"; do
    case "$m" in plain|stream|append) ;; *) echo "run.sh: unknown mode $m" >&2; exit 64 ;; esac
done

# --tries 6, or per file system: --tries btrfs=6,ext4=3,xfs=3
tries_for() {
    local fs=$1 item n=
    case "$tries_spec" in
        *=*)
            IFS=, read -r -a items <<<"$tries_spec"
            for item in "${items[@]}"; do
                [ "${item%%=*}" = "$fs" ] && n=${item#*=}
            done
            echo "${n:-0}" ;;
        *) echo "$tries_spec" ;;
    esac
}

log() { echo "run.sh: $*" >&2; }

# --- 1. what the host needs -------------------------------------------------
apt_updated=
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ -z "$apt_updated" ]; then
        log "apt-get update"
        apt-get update -qq >&2
        apt_updated=1
    fi
    for p in "${missing[@]}"; do
        if apt-cache policy "$p" | grep -q 'Candidate: (none)' ||
            [ -z "$(apt-cache policy "$p")" ]; then
            log "no Debian package $p to install"
            exit 2
        fi
    done
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
}
apt_install qemu-system-x86 busybox-static btrfs-progs xfsprogs e2fsprogs cpio kmod

# --- 2. the kernel and its modules ------------------------------------------
# --kernel VMLINUZ (modules from --modules DIR, default /lib/modules/VERSION);
# else an installed Debian 6.1 kernel from /boot; else one unpacked under
# the workdir by an earlier run; else linux-image-amd64's kernel package,
# downloaded with apt-get and unpacked under the workdir (not installed:
# no initramfs-tools, no boot loader, /boot untouched).
mkdir -p "$work"
if [ -z "$kernel" ]; then
    for k in $(ls /boot/vmlinuz-6.1.* 2>/dev/null | sort -rV); do
        v=${k#/boot/vmlinuz-}
        if [ -d "/lib/modules/$v/kernel/fs/btrfs" ]; then
            kernel=$k
            break
        fi
    done
fi
if [ -z "$kernel" ]; then
    # One unpacked earlier (the newest), so a rerun needs no apt at all.
    for k in $(ls "$work"/kernel/*/boot/vmlinuz-* 2>/dev/null | sort -rV); do
        v=${k##*/vmlinuz-}
        if [ -d "$work/kernel/$v/lib/modules/$v/kernel/fs/btrfs" ]; then
            kernel=$k
            modules=$work/kernel/$v/lib/modules/$v
            break
        fi
    done
fi
if [ -z "$kernel" ]; then
    if [ -z "$apt_updated" ]; then apt-get update -qq >&2; apt_updated=1; fi
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
    [ -n "$pkg" ] || { log "cannot resolve linux-image-amd64"; exit 2; }
    v=${pkg#linux-image-}
    kroot=$work/kernel/$v
    if [ ! -f "$kroot/boot/vmlinuz-$v" ]; then
        log "apt-get download $pkg (unpacked into $kroot)"
        rm -rf "$kroot" "$work/kernel/deb"
        mkdir -p "$work/kernel/deb" "$kroot"
        chmod 777 "$work/kernel/deb"   # so apt's _apt user may write there
        (cd "$work/kernel/deb" && apt-get download -qq "$pkg" >&2)
        dpkg-deb -x "$work/kernel/deb/${pkg}_"*.deb "$kroot"
        rm -rf "$work/kernel/deb"
    fi
    kernel=$kroot/boot/vmlinuz-$v
    modules=$kroot/lib/modules/$v
fi
kver=$(basename "$kernel"); kver=${kver#vmlinuz-}
[ -n "$modules" ] || modules=/lib/modules/$kver
[ -d "$modules/kernel" ] || { log "no modules in $modules"; exit 2; }
# modprobe wants BASE/lib/modules/VERSION and a modules.dep there.
mbase=${modules%/lib/modules/*}
mver=${modules##*/lib/modules/}
[ -n "$mbase" ] || mbase=/
[ -f "$modules/modules.dep" ] || depmod -b "$mbase" "$mver"
log "kernel $kernel, modules $modules"

# --- 3. the initramfs ---------------------------------------------------------
key=$( { sha256sum "$binary" "$here/init.sh" /bin/busybox | cut -d' ' -f1; echo "$kernel $modules"; } |
    sha256sum | cut -c1-16)
initrd=$work/initrd-$key.cpio.gz
if [ ! -f "$initrd" ]; then
    stage=$(mktemp -d "$work/stage.XXXXXX")
    mkdir -p "$stage"/{bin,dev,proc,sys,mnt,modules,tmp}
    cp /bin/busybox "$stage/bin/busybox"
    ln -s busybox "$stage/bin/sh"
    install -m 755 "$here/init.sh" "$stage/init"
    install -m 755 "$binary" "$stage/bin/awrite"
    # The binary's shared libraries and loader, at the paths ldd names.
    { ldd "$binary" 2>/dev/null || true; } | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}' |
        while read -r lib; do
            mkdir -p "$stage$(dirname "$lib")"
            cp -L "$lib" "$stage$lib"
        done
    mknod "$stage/dev/console" c 5 1 2>/dev/null || true
    # virtio (PCI, block) and the three file systems, dependencies first:
    # modules/base for the disk, modules/FS for each file system (a boot
    # loads only its own: under TCG every module costs boot time).
    for group in base btrfs ext4 xfs; do
        case $group in base) mods="virtio_pci virtio_blk" ;; *) mods=$group ;; esac
        for m in $mods; do
            modprobe -d "$mbase" -S "$mver" --show-depends "$m"
        done | awk '$1 == "insmod" && !seen[$2]++ {print $2}' |
            while read -r ko; do
                [ -f "$stage/modules/$(basename "$ko")" ] || cp "$ko" "$stage/modules/"
                basename "$ko"
            done >"$stage/modules/$group"
    done
    (cd "$stage" && find . | cpio -o -H newc --quiet) | gzip -1 >"$initrd.$$"
    mv "$initrd.$$" "$initrd"
    rm -rf "$stage"
fi
log "initramfs $initrd ($(du -h "$initrd" | cut -f1))"

# KVM when it really runs a guest: a /dev/kvm that opens may still fail
# (nested: "failed to set MSR 0x10a" with -cpu host/max) or hang, so one
# short probe boot decides; otherwise TCG (about 15 s a boot on 2 cores).
cpu_for() { if [ "$1" = kvm ]; then echo host,-arch-capabilities; else echo max; fi; }
if [ -z "$accel" ]; then
    accel=tcg
    if [ -r /dev/kvm ] && [ -w /dev/kvm ] &&
        timeout 30 qemu-system-x86_64 -accel kvm -cpu "$(cpu_for kvm)" -m 512 \
            -nographic -no-reboot -no-user-config -nic none -kernel "$kernel" -initrd "$initrd" \
            -append "console=ttyS0 panic=-1 quiet aw.phase=probe" </dev/null 2>&1 |
        grep -q AWRITE-PROBE-OK; then
        accel=kvm
    fi
fi
cpu=$(cpu_for "$accel")
log "accelerator: $accel (-cpu $cpu)"

# --- 4. the tries -------------------------------------------------------------
run_dir=$work/runs/$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$run_dir"
img=$run_dir/disk.img
boot_total=0
boots=0

# boot PHASE FS MODE LOG: one QEMU run, serial console into LOG.
boot() {
    local t0 rc=0
    t0=$(date +%s%N)
    timeout "$timeout_s" qemu-system-x86_64 \
        -accel "$accel" -cpu "$cpu" -smp 1 -m 512 \
        -nographic -no-reboot -no-user-config \
        -kernel "$kernel" -initrd "$initrd" \
        -append "console=ttyS0 panic=-1 quiet aw.phase=$1 aw.fs=$2 aw.mode=$3 aw.crash=$crash" \
        -drive "file=$img,format=raw,if=virtio" -nic none \
        </dev/null >"$4" 2>&1 || rc=$?
    boot_total=$((boot_total + ($(date +%s%N) - t0) / 1000000))
    boots=$((boots + 1))
    return $rc
}

hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
old_hex=$(hex $'old\n')
declare -A new_hex=(
    [plain]=$(hex $'new\n')
    [stream]=$(hex $'new\n')
    [append]=$(hex $'old\nnew\n')
)

declare -A n_tries n_new n_old n_other n_err
violations=0
errors=0
mkfs_for() {
    case "$1" in
        btrfs) mkfs.btrfs -q -f "$img" ;;
        ext4) mkfs.ext4 -q -F "$img" ;;
        xfs) mkfs.xfs -q -f "$img" ;;
    esac >/dev/null
}

for fs in "${fss[@]}"; do
    n=$(tries_for "$fs")
    for mode in "${modes[@]}"; do
        k=$fs/$mode
        n_tries[$k]=0 n_new[$k]=0 n_old[$k]=0 n_other[$k]=0 n_err[$k]=0
        for ((t = 1; t <= n; t++)); do
            n_tries[$k]=$((n_tries[$k] + 1))
            l1=$run_dir/$fs-$mode-$t.boot1.log
            l2=$run_dir/$fs-$mode-$t.boot2.log
            rm -f "$img"
            truncate -s 512M "$img"
            mkfs_for "$fs"
            what=
            if ! boot 1 "$fs" "$mode" "$l1"; then
                what="error: boot 1 failed or timed out (see $l1)"
            elif grep -q 'AWRITE-ERROR' "$l1"; then
                what="error: $(grep -m1 -o 'AWRITE-ERROR.*' "$l1" | tr -d '\r')"
            elif grep -q 'AWRITE-EXIT' "$l1"; then
                what="error: awrite $(grep -m1 -o 'AWRITE-EXIT.*' "$l1" | tr -d '\r') (see $l1)"
            elif ! grep -q 'AWRITE-PHASE1' "$l1" ||
                ! grep -qE 'sysrq: (Trigger a crash|Resetting)' "$l1"; then
                what="error: no crash after awrite (see $l1)"
            elif ! boot 2 "$fs" "$mode" "$l2" ||
                ! grep -q 'AWRITE-DONE' "$l2"; then
                what="error: boot 2 failed (see $l2)"
            fi
            if [ -n "$what" ]; then
                n_err[$k]=$((n_err[$k] + 1))
                errors=$((errors + 1))
                echo "$fs $mode #$t: $what"
                continue
            fi
            res=$(grep -m1 -o 'AWRITE-RESULT.*' "$l2" | tr -d '\r')
            got=$(grep -m1 -o 'AWRITE-HEX.*' "$l2" | tr -d '\r' | sed 's/^AWRITE-HEX *//')
            case "$res" in
                *exists=0*) desc="f is missing" ;;
                *size=0) desc="f is empty (0 bytes)" ;;
                *) desc="f has ${res##*size=} bytes: $got" ;;
            esac
            if [[ $res == *exists=1* && $got == "${new_hex[$mode]}" ]]; then
                n_new[$k]=$((n_new[$k] + 1))
                echo "$fs $mode #$t: ok, new content"
            elif [[ $res == *exists=1* && $got == "$old_hex" ]]; then
                n_old[$k]=$((n_old[$k] + 1))
                violations=$((violations + 1))
                echo "$fs $mode #$t: VIOLATION (not durable): old content after exit 0"
            else
                n_other[$k]=$((n_other[$k] + 1))
                violations=$((violations + 1))
                echo "$fs $mode #$t: VIOLATION (neither old nor new): $desc"
            fi
        done
    done
done

# --- 5. the table -------------------------------------------------------------
echo
echo "binary: $binary"
echo "kernel: $kernel ($accel), crash: echo $crash > /proc/sysrq-trigger, logs: $run_dir"
if [ $boots -gt 0 ]; then
    ms=$((boot_total / boots))
    printf 'boots: %d, mean %d.%d s each\n' $boots $((ms / 1000)) $((ms % 1000 / 100))
fi
echo
printf '%-6s %-7s %6s %5s %5s %7s %6s %10s\n' fs mode tries new old neither errors violations
for fs in "${fss[@]}"; do
    for mode in "${modes[@]}"; do
        k=$fs/$mode
        [ "${n_tries[$k]:-0}" -gt 0 ] || continue
        printf '%-6s %-7s %6d %5d %5d %7d %6d %10d\n' "$fs" "$mode" "${n_tries[$k]}" \
            "${n_new[$k]}" "${n_old[$k]}" "${n_other[$k]}" "${n_err[$k]}" \
            $((n_old[$k] + n_other[$k]))
    done
done
echo
echo "violations = old + neither: after exit 0 only the complete new content is right."
rm -f "$img"
if [ $violations -gt 0 ]; then exit 1; fi
if [ $errors -gt 0 ]; then exit 2; fi
exit 0
