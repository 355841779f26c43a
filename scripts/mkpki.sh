#!/bin/sh
# mkpki.sh - make the test PKI (and gateway bundle) that the demo and the tests
# use, with clsm-pki; does nothing when DIR already holds what is asked for.
#
#   scripts/mkpki.sh DIR [--curve C] [--gateways FILE_OF_IDS | --count N --prefix P]
#                        [--emt ID]... [--gwa ID]...
#
# A PKI is complete once DIR/curve exists (clsm-pki init writes it last);
# an incomplete one is made anew. The gateway ids of the bundle are kept in
# DIR/smgw/gateways.ids; the bundle is issued again only when they change.
# Asking for another curve than DIR's is an error (remove DIR first).
# Missing --emt/--gwa certificates are added to an existing PKI.
#
# Environment: CLSM_PKI=path of clsm-pki (default build/clsm-pki in the
# source tree). Exit status: 0 done or nothing to do, 1 failure, 2 bad usage.
set -eu

usage() {
	echo "mkpki: $1" >&2
	echo "usage: mkpki.sh DIR [--curve C] [--gateways FILE | --count N --prefix EABC]" \
		"[--emt ID]... [--gwa ID]..." >&2
	exit 2
}

root=$(cd "$(dirname "$0")/.." && pwd)
tool=${CLSM_PKI:-$root/build/clsm-pki}
dir="" curve="" ids_file="" count="" prefix="" emt="" gwa=""

while [ $# -gt 0 ]; do
	case $1 in
	--curve | --gateways | --count | --prefix | --emt | --gwa)
		[ $# -ge 2 ] || usage "$1 needs a value"
		case $1 in
		--curve) curve=$2 ;;
		--gateways) ids_file=$2 ;;
		--count) count=$2 ;;
		--prefix) prefix=$2 ;;
		--emt) emt="$emt $2" ;;
		--gwa) gwa="$gwa $2" ;;
		esac
		shift 2
		;;
	-*) usage "unknown option $1" ;;
	*)
		[ -z "$dir" ] || usage "more than one DIR"
		dir=$1
		shift
		;;
	esac
done
[ -n "$dir" ] || usage "no DIR given"
if [ -n "$ids_file" ] && [ -n "$count$prefix" ]; then
	usage "give --gateways FILE or --count N --prefix P, not both"
fi
if [ -n "$count$prefix" ]; then
	case $count in '' | *[!0-9]* | 0*) usage "--count wants a number from 1 (and --prefix)" ;; esac
	case $prefix in E[A-Z][A-Z][A-Z]) ;; *) usage "--prefix wants E and 3 upper-case letters" ;; esac
	[ "$count" -le 10000000 ] || usage "--count is at most 10000000"
fi
if [ -n "$ids_file" ] && [ ! -r "$ids_file" ]; then
	echo "mkpki: $ids_file cannot be read" >&2
	exit 2
fi
if [ ! -x "$tool" ]; then
	echo "mkpki: $tool is missing; run 'make build' or set CLSM_PKI" >&2
	exit 1
fi

# The PKI itself.
if [ -f "$dir/curve" ]; then
	have=$(cat "$dir/curve")
	if [ -n "$curve" ] && [ "$curve" != "$have" ]; then
		echo "mkpki: $dir holds a PKI on $have, not $curve; remove $dir to make a new one" >&2
		exit 1
	fi
	for id in $emt; do
		[ -f "$dir/emt/$id.crt" ] || "$tool" leaf "$dir" --ca emt --cn "$id"
	done
	for id in $gwa; do
		[ -f "$dir/gwa/$id.crt" ] || "$tool" leaf "$dir" --ca gwa --cn "$id"
	done
else
	set -- init "$dir" --force
	[ -z "$curve" ] || set -- "$@" --curve "$curve"
	for id in $emt; do set -- "$@" --emt "$id"; done
	for id in $gwa; do set -- "$@" --gwa "$id"; done
	rm -f "$dir/smgw/gateways.ids"
	"$tool" "$@"
fi

# The gateway bundle.
[ -n "$ids_file$count" ] || exit 0
want=$(mktemp "${TMPDIR:-/tmp}/mkpki-ids.XXXXXX")
trap 'rm -f "$want"' EXIT
if [ -n "$ids_file" ]; then
	cat "$ids_file" >"$want"
else
	awk -v n="$count" -v p="$prefix" 'BEGIN { for (i = 1; i <= n; i++) printf "%s%010d\n", p, i }' >"$want"
fi
if [ -f "$dir/smgw/gateways.pem" ] && cmp -s "$want" "$dir/smgw/gateways.ids"; then
	echo "mkpki: $dir is up to date" >&2
	exit 0
fi
rm -f "$dir/smgw/gateways.ids"
"$tool" smgw "$dir" --ids "$want" --force
cp "$want" "$dir/smgw/gateways.ids.tmp"
mv "$dir/smgw/gateways.ids.tmp" "$dir/smgw/gateways.ids"
