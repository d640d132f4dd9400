#!/bin/sh
# twinhost first boot: packages must not start their services before the firewall is up
# (glusterd would listen on the public address meanwhile). The first-boot commands remove this
# file right after `ufw enable` and start each service themselves. Exit 101: action forbidden.
exit 101
