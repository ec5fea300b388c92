#!/usr/bin/env bash
# Cordon used from outside, against an installed prefix: cmake --install,
# then an outside CMake project (find_package + cordon_enable_gates, with the
# installed pass plugin), a gcc program through pkg-config, gcc's message for
# a CORDON_TRUSTED declaration, and the installed tools. The programs run
# through the installed cordon-pku-run: natively on a PKU host, else in the VM.
# usage: install_test.sh BUILD_DIR
set -uo pipefail
build=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../support/check.sh
. "$here/../support/check.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; rc=$?
check "cmake --install" 0 "$rc"
[ "$rc" = 0 ] || cat "$tmp/install.log"
for f in include/cordon/cordon.h include/cordon/cordon.hpp include/cordon/version.h lib/libcordon.a \
         lib/libcordon_inspector.a lib/cordon/CordonGates.so lib/cmake/cordon/cordonConfig.cmake \
         lib/pkgconfig/cordon.pc bin/cordon-scan bin/cordon-vm bin/cordon-pku-run share/cordon/vm/init.c \
         share/doc/cordon/README.md share/doc/cordon/LICENSE; do
  [ -e "$prefix/$f" ]; check "installed $f" 0 "$?"
done
! grep -rq "$(cd "$here/../.." && pwd)/runtime" "$prefix/lib/cmake/cordon/"; check "no source-tree include paths exported" 0 "$?"

# CMake: find_package(cordon CONFIG) and cordon_enable_gates().
cmake -S "$here/outside" -B "$tmp/outside" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER=clang-14 >"$tmp/cfg.log" 2>&1; rc=$?
check "outside project configures" 0 "$rc"
[ "$rc" = 0 ] || cat "$tmp/cfg.log"
cmake --build "$tmp/outside" >"$tmp/build.log" 2>&1; rc=$?
check "outside project builds" 0 "$rc"
[ "$rc" = 0 ] || cat "$tmp/build.log"
out=$("$prefix/bin/cordon-pku-run" --no-stdin -- "$tmp/outside/app" 2>"$tmp/err"); rc=$?
[ "$rc" = 0 ] || cat "$tmp/err"
check "outside app runs through its generated gate" "0:outside app: cordon $(cat "$prefix/share/cordon/version"), bump gave 2 then 5, in domain 0 now" "$rc:$out"

# pkg-config and gcc.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[ "$(pkg-config --modversion cordon)" = "$(cat "$prefix/share/cordon/version")" ]; check "pkg-config version" 0 "$?"
# shellcheck disable=SC2046
gcc -std=c11 -Wall -Wextra -Werror -o "$tmp/plain" "$here/plain.c" $(pkg-config --cflags --libs cordon) \
  >"$tmp/gcc.log" 2>&1; rc=$?
check "gcc builds a program with pkg-config" 0 "$rc"
[ "$rc" = 0 ] || cat "$tmp/gcc.log"
out=$("$prefix/bin/cordon-pku-run" --no-stdin -- "$tmp/plain" 2>"$tmp/err"); rc=$?
[ "$rc" = 0 ] || cat "$tmp/err"
check "the gcc program calls through a gate" "0:plain app (gcc, pkg-config): twice(21) = 42" "$rc:$out"
# shellcheck disable=SC2046
gcc -c -o "$tmp/decl.o" "$here/trusted_decl.c" $(pkg-config --cflags cordon) >"$tmp/decl.log" 2>&1; rc=$?
check "gcc refuses CORDON_TRUSTED" 1 "$rc"
grep -q "error: CORDON_TRUSTED needs clang 14 with the Cordon pass plugin" "$tmp/decl.log"; check "gcc says why" 0 "$?"

# The installed tools.
out=$("$prefix/bin/cordon-scan" --version); check "cordon-scan --version" "cordon-scan $(cat "$prefix/share/cordon/version")" "$out"
"$prefix/bin/cordon-scan" "$tmp/outside/app" >/dev/null; check "cordon-scan passes the outside app" 0 "$?"
out=$("$prefix/bin/cordon-vm" --version); check "installed cordon-vm --version" "cordon-vm $(cat "$prefix/share/cordon/version")" "$out"
"$prefix/bin/cordon-vm" --kernel-path --kernel 6.12 >/dev/null; check "installed cordon-vm finds its kernels" 0 "$?"
finish
