#!/bin/sh
# set-quotas.sh DIR HOME_QUOTA EXCHANGE_QUOTA: give the exchange and every student's home (each a subvolume
# of the btrfs file system mounted at DIR) their limits; EXCHANGE_QUOTA "-": no exchange here (a swarm node).
# Prints what it changed (for Ansible's changed_when).
set -eu
dir=$1 home_quota=$2 exchange_quota=$3
limit() {  # limit SUBVOLUME SIZE: set its limit of referenced bytes when it differs
    want=$(numfmt --from=iec "$2")
    have=$(btrfs qgroup show -re --raw -f "$1" | awk 'NR > 2 { print $4 }')
    if [ "$have" != "$want" ]; then
        btrfs qgroup limit "$want" "$1"
        echo "$1: $2"
    fi
}
if [ "$exchange_quota" != - ]; then
    limit "$dir/exchange" "$exchange_quota"
fi
for home in "$dir"/homes/*; do
    [ "$(stat -c %i "$home" 2>/dev/null)" = 256 ] || continue   # a subvolume's root is inode 256
    limit "$home" "$home_quota"
done
