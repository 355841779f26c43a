#!/bin/sh
# check-format.sh - fail when a C file differs from what clang-format makes
# of it (.clang-format at the top). `make format` fixes what this finds.
set -eu
cd "$(dirname "$0")/.."
files=$(find src tools tests sim bench -name '*.[ch]' 2>/dev/null | sort)
[ -n "$files" ] || exit 0
# shellcheck disable=SC2086
clang-format --dry-run --Werror $files
