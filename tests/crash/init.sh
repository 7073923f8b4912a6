#!/bin/sh
# /init of the crash-test initramfs (see README.md beside this file).
# Busybox only. The host passes what to do on the kernel command line:
#   aw.phase=1  mount the disk, write the old content, sync, run awrite,
#               and crash the kernel the moment awrite exits 0
#   aw.phase=2  mount the disk (log/journal replay) and print f
#   aw.phase=probe  print AWRITE-PROBE-OK and power off (does KVM work?)
#   aw.fs=btrfs|ext4|xfs   aw.mode=plain|stream|append   aw.crash=c|b
# Every line the host parses starts with "AWRITE-".

/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys

die() {
    echo "AWRITE-ERROR $*"
    poweroff -f
    sleep 5
    exit 1
}

phase= fs= mode= crash=c
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        aw.phase=*) phase=${arg#aw.phase=} ;;
        aw.fs=*) fs=${arg#aw.fs=} ;;
        aw.mode=*) mode=${arg#aw.mode=} ;;
        aw.crash=*) crash=${arg#aw.crash=} ;;
    esac
done

if [ "$phase" = probe ]; then
    echo "AWRITE-PROBE-OK"
    poweroff -f
    sleep 5
fi

# Modules in dependency order (the host resolved them); a module the
# kernel has built in or that does not fit this CPU just fails here.
for m in $(cat /modules/base "/modules/$fs" 2>/dev/null); do
    insmod "/modules/$m" 2>/dev/null
done

i=0
while [ ! -b /dev/vda ]; do
    i=$((i + 1))
    [ $i -gt 100 ] && die "no /dev/vda after 10 s"
    sleep 0.1
done

mkdir -p /mnt
mount -t "$fs" /dev/vda /mnt || die "cannot mount /dev/vda as $fs"
cd /mnt || die "cd /mnt"

case "$phase" in
1)
    printf 'old\n' >f || die "cannot write the old content"
    sync
    echo "AWRITE-PHASE1 fs=$fs mode=$mode crash=$crash"
    # Nothing between awrite's exit and the crash: no console output, no
    # fork (echo is an ash builtin). The host knows awrite exited 0 from
    # the kernel's "sysrq: ..." line and the missing AWRITE-EXIT line.
    case "$mode" in
        plain) echo new | /bin/awrite f ;;
        stream) echo new | /bin/awrite --stream f ;;
        append) echo new | /bin/awrite --append f ;;
        *) die "unknown mode $mode" ;;
    esac
    rc=$?
    [ $rc -eq 0 ] && echo "$crash" >/proc/sysrq-trigger
    echo "AWRITE-EXIT rc=$rc"
    poweroff -f
    ;;
2)
    if [ -e f ]; then
        echo "AWRITE-RESULT exists=1 size=$(stat -c %s f)"
        echo "AWRITE-HEX $(xxd -p f | tr -d '\n')"
    else
        echo "AWRITE-RESULT exists=0"
    fi
    ls -la /mnt | sed 's/^/AWRITE-LS /'
    dmesg | grep -iE 'btrfs|xfs|ext4|jbd2' | sed 's/^/AWRITE-DMESG /'
    cd /
    umount /mnt
    echo "AWRITE-DONE"
    poweroff -f
    ;;
*)
    die "no aw.phase on the kernel command line"
    ;;
esac
sleep 5
