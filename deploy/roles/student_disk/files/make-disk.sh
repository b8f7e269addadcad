#!/bin/sh
# make-disk.sh IMAGE SIZE: make the students' file system image, or grow it to SIZE.
# SIZE is a size for truncate (40G) or "auto": half the free space where IMAGE lives, on its first making.
# Prints "made", "grew" or nothing (for Ansible's changed_when); an impossible size is an error that says why.
set -eu
image=$1 size=$2
free=$(df --output=avail -B1 "$(dirname "$image")" | tail -n 1)
bytes() { numfmt --from=iec "$1"; }

if [ ! -e "$image" ]; then
    if [ "$size" = auto ]; then
        size=$(( free / 2 / 1073741824 ))G
    fi
    if [ "$(bytes "$size")" -lt 1073741824 ]; then
        echo "student_disk_size $size is below 1G (free space where $image goes: $(numfmt --to=iec "$free"))" >&2
        exit 1
    fi
    if [ "$(bytes "$size")" -gt "$free" ]; then
        echo "student_disk_size $size is more than the free space where $image goes ($(numfmt --to=iec "$free"))" >&2
        exit 1
    fi
    truncate -s "$size" "$image.part"
    mkfs.btrfs -q "$image.part" >/dev/null
    chmod 0600 "$image.part"
    mv "$image.part" "$image"
    echo made
elif [ "$size" != auto ] && [ "$(bytes "$size")" -gt "$(stat -c %s "$image")" ]; then
    grow=$(( $(bytes "$size") - $(stat -c %s "$image") ))
    if [ "$grow" -gt "$free" ]; then
        echo "growing $image to $size needs $(numfmt --to=iec "$grow") more than the free space there" >&2
        exit 1
    fi
    truncate -s "$size" "$image"
    echo grew
fi
