#!/bin/sh
# run.sh - every benchmark in bench/, one after the other (see README.md).
set -eu
cd "$(dirname "$0")"
./api_read.sh "$@"
