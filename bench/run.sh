#!/bin/sh
# run.sh - every benchmark in bench/, one after the other, with their default
# arguments (see README.md).
set -eu
cd "$(dirname "$0")"
./api_read.sh
./channel_handshakes.sh
./idle_channels.sh
./warm_commands.sh
./admission.sh
./switch_storm.sh
