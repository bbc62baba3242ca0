#!/bin/sh
# Writes the *.expected files with printf(1) and the format strings of cman 3's
# cman_tool/main.c (show_status, print_node), from the values in the *.json fixtures
# (an oracle independent of clusterd.cli.cman_tool). Lines cman printed that clusterd
# leaves out (Active subsystems, Ports Bound, Multicast addresses) are not written;
# the override line is clusterd's. Times are UTC. Run: sh make_expected.sh
set -eu
cd "$(dirname "$0")"

status() {  # version cfgver name id member gen state nodes exp total nvotes quorum quorate flags nname nid addrs
    printf "Version: %s\n" "$1"
    printf "Config Version: %d\n" "$2"
    printf "Cluster Name: %s\n" "$3"
    printf "Cluster Id: %d\n" "$4"
    printf "Cluster Member: %s\n" "$5"
    printf "Cluster Generation: %d\n" "$6"
    printf "Membership state: %s\n" "$7"
    printf "Nodes: %d\n" "$8"
    printf "Expected votes: %d\n" "$9"
    shift 9
    printf "Total votes: %d\n" "$1"
    printf "Node votes: %d\n" "$2"
    if [ "$4" = 1 ]; then printf "Quorum: %d %s\n" "$3" " "
    else printf "Quorum: %d %s\n" "$3" "Activity blocked"; fi
    printf "Flags:"; [ -n "$5" ] && printf " %s" "$5"; printf " \n"
    printf "Node name: %s\n" "$6"
    printf "Node ID: %u\n" "$7"
    if [ -n "$8" ]; then printf "Node addresses: "; printf "%s " "$8"; printf "\n"; fi
}

node() {  # id type inc joined name
    printf "%4u   %c  %5d   %s  %s\n" "$1" "$2" "$3" "$4" "$5"
}
blank="                   "
header="Node  Sts   Inc   Joined               Name\n"

status 0.1.0 3 alpha 3169 Yes 7 Cluster-Member 3 4 4 1 3 1 "" node1 1 198.18.0.11 \
    > status_quorate.expected
status 0.1.0 1 svclab 2811 Yes 12 Cluster-Member 1 1 1 1 1 1 "" node1 1 198.18.0.11 \
    > status_override.expected
printf "Expected votes override: 1 (cluster.conf: 3), set by uid 0 on node1, until the next config change\n" \
    >> status_override.expected
status 0.1.0 9 pair 771 Yes 3 Leaving 1 1 1 1 1 0 2node a 1 10.0.0.1 > status_blocked.expected
printf "Expected votes override: 1 (cluster.conf: 1), set by uid 0 on b (via node 2), until the next config change; not confirmed yet by b\n" \
    >> status_blocked.expected

{ printf "$header"
  node 1 M 1 "2025-11-25 21:00:00" node1
  node 2 M 2 "2025-11-25 21:00:01" node2
  node 3 M 7 "2025-11-25 22:00:00" node3.example.com; } > nodes_quorate.expected
{ printf "$header"
  node 1 M 1 "2025-11-25 21:00:00" node1
  printf "       Addresses: %s \n" 198.18.0.11
  node 2 X 2 "$blank" node2
  printf "       Addresses: %s \n" 198.18.0.12
  node 3 X 0 "$blank" node3
  printf "       Addresses: %s \n" 198.18.0.13; } > nodes_override_a.expected
{ printf "$header"
  node 1 M 3 "2025-11-25 21:00:00" a
  node 2 X 0 "$blank" b; } > nodes_blocked.expected
{ printf "%s " 2 node2 X Dead 198.18.0.12; printf "\n"
  printf "%s " 3 node3 X Dead 198.18.0.13; printf "\n"; } > nodes_override_F.expected
