#!/usr/bin/env bash
# Checks the distribution packages the build and the tests need. As root it installs what is
# missing (Debian/Ubuntu apt); otherwise it stops with the exact install command.
set -u
missing=()
need_header() { [ -e "/usr/include/$1" ] || missing+=("$2"); }
need_cmd()    { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_cmd cmake cmake
need_cmd make make
need_cmd cc gcc
need_cmd pkg-config pkg-config
need_cmd git git
need_header jansson.h libjansson-dev
need_header criterion/criterion.h libcriterion-dev
need_header pcre2.h libpcre2-dev
need_header utf8proc.h libutf8proc-dev
need_cmd gnuplot gnuplot-nox
[ ${#missing[@]} -eq 0 ] && exit 0
line="apt-get update && apt-get install -y ${missing[*]}"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-deps: installing missing packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq "${missing[@]}" >&2 || {
    echo "ensure-deps: install failed; run: $line" >&2; exit 1; }
  exit 0
fi
echo "ensure-deps: missing packages: ${missing[*]}" >&2
echo "ensure-deps: install them with (as root):  $line" >&2
exit 1
