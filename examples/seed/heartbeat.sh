#!/bin/sh
# Stands in for "check if the other server is still up": offline, it only says it is alive.
echo "heartbeat from $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
