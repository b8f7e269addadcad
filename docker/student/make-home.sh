#!/bin/sh
# make-home.sh NAME QUOTA: make /homes/NAME a btrfs subvolume that may hold QUOTA (a size: 2G).
# The hub runs it before a student's first start, in a throw-away container of this image: root with
# CAP_SYS_ADMIN (btrfs quotas), no network, the students' homes folder at /homes; and the student's Docker
# volume from a deploy before quotas at /old, if there is one. What /homes/NAME held before (a plain folder:
# a restored backup) or /old holds moves into the new home; the home keeps its owner, start-student.sh sets it.
set -eu
name=$1 quota=$2
case "$name" in ""|*[!a-z0-9_-]*|[!a-z]*) echo "make-home: '$name' is not a student's name" >&2; exit 64 ;; esac
home=/homes/$name new=/homes/.new-$name

if [ "$(stat -c %i "$home" 2>/dev/null)" = 256 ]; then   # the root of a subvolume is inode 256
    exit 0
fi
if [ -e "$new" ]; then                                    # an attempt that stopped half-way
    btrfs subvolume delete "$new" >/dev/null
fi
btrfs subvolume create "$new" >/dev/null
if [ -d "$home" ]; then
    cp -a "$home/." "$new/"
fi
if [ -d /old ]; then
    cp -a /old/. "$new/"
fi
btrfs qgroup limit "$quota" "$new"
rm -rf "$home"
mv "$new" "$home"
echo "made $home with a quota of $quota"
