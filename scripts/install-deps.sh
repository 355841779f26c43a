#!/bin/sh
# install-deps.sh - install the Debian packages clsm needs, and nothing else.
#
# Usage: scripts/install-deps.sh [build|check|bench|all]...
#   build  compiler, CMake and the libraries clsmd and its tools link against;
#          python3 for the demo scenario and the fleet generator
#   check  build + what the tests need (cmocka, clang for sanitizers and fuzzing,
#          clang-format, python3 for the integration tests)
#   bench  build + load generators (wrk), the reference server (nginx), openssl
#          (for `openssl speed`), python3, curl and procps for the scripts
# Idempotent: when every package of the chosen groups is installed it changes
# nothing and does not touch the network. Otherwise it runs apt-get update once
# and installs what is missing. Needs root (or sudo) only when something is missing.
set -eu

pkgs_build="build-essential cmake pkg-config python3 libevent-dev libssl-dev libsqlite3-dev \
libjansson-dev libcurl4-openssl-dev libxml2-dev libmosquitto-dev ca-certificates"
pkgs_check="libcmocka-dev clang libclang-rt-14-dev clang-format python3 sqlite3 curl openssl"
pkgs_bench="wrk nginx iproute2 procps python3 curl openssl"

groups="${*:-build}"
want=""
for g in $groups; do
	case "$g" in
	build) want="$want $pkgs_build" ;;
	check) want="$want $pkgs_build $pkgs_check" ;;
	bench) want="$want $pkgs_build $pkgs_bench" ;;
	all) want="$want $pkgs_build $pkgs_check $pkgs_bench" ;;
	*)
		echo "install-deps: unknown group '$g' (build, check, bench, all)" >&2
		exit 2
		;;
	esac
done

missing=""
for p in $want; do
	case " $missing " in *" $p "*) continue ;; esac
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing="$missing $p"
done

[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: missing packages:$missing; this script needs Debian's apt-get" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo="sudo"
	else
		echo "install-deps: missing packages:$missing; run as root to install them" >&2
		exit 1
	fi
fi
echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing
