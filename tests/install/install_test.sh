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
soname=libcordon.so.$(cut -d. -f1,2 "$prefix/share/cordon/version" 2>/dev/null)
for f in include/cordon/cordon.h include/cordon/cordon.hpp include/cordon/version.h lib/libcordon.a \
         lib/libcordon_inspector.a lib/libcordon.so "lib/$soname" lib/cordon/CordonGates.so \
         lib/cmake/cordon/cordonConfig.cmake lib/pkgconfig/cordon.pc lib/pkgconfig/cordon-static.pc bin/cordon-scan bin/cordon-audit bin/cordon-vm bin/cordon-pku-run share/cordon/vm/init.c \
         share/cordon/audit-schema-v1.json \
         share/doc/cordon/README.md share/doc/cordon/LICENSE; do
  [ -e "$prefix/$f" ]; check "installed $f" 0 "$?"
done
! grep -rq "$(cd "$here/../.." && pwd)/runtime" "$prefix/lib/cmake/cordon/"; check "no source-tree include paths exported" 0 "$?"

# libcordon.so: its SONAME follows the version, and it exports the C API
# of cordon.h (every function declared there, nothing else) and dlopen.
[ "$(readelf -d "$prefix/lib/libcordon.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')" = "$soname" ]
check "libcordon.so's SONAME is $soname" 0 "$?"
# The header's declarations as the compiler sees them (gcc -aux-info).
echo '#include <cordon/cordon.h>' >"$tmp/decls.c"
gcc -I"$prefix/include" -aux-info "$tmp/decls.txt" -fsyntax-only "$tmp/decls.c"
declared=$(grep 'cordon/cordon.h' "$tmp/decls.txt" | grep -oE '\bcordon_[a-z0-9_]+ \(' | sed 's/ (//' | sort -u)
exported=$(nm -D --defined-only "$prefix/lib/libcordon.so" | awk '{print $3}' | grep -v '^dlopen$' | sort -u)
[ -n "$declared" ] && [ "$declared" = "$exported" ]
check "libcordon.so exports exactly cordon.h's functions" 0 "$?"
[ "$declared" = "$exported" ] || diff <(echo "$declared") <(echo "$exported")
nm -D --defined-only "$prefix/lib/libcordon.so" | grep -qw dlopen; check "libcordon.so exports dlopen" 0 "$?"

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

out=$("$prefix/bin/cordon-pku-run" --no-stdin -- "$tmp/outside/plain_shared" "CMake, cordon::cordon_shared" 2>"$tmp/err"); rc=$?
[ "$rc" = 0 ] || cat "$tmp/err"
check "outside program runs with cordon::cordon_shared" "0:plain app (CMake, cordon::cordon_shared): twice(21) = 42" "$rc:$out"
readelf -d "$tmp/outside/plain_shared" | grep -q "NEEDED.*\[$soname\]"; check "it needs $soname" 0 "$?"

# pkg-config and gcc.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[ "$(pkg-config --modversion cordon)" = "$(cat "$prefix/share/cordon/version")" ]; check "pkg-config version" 0 "$?"
# shellcheck disable=SC2046
for pc in cordon cordon-static; do
  gcc -std=c11 -Wall -Wextra -Werror -o "$tmp/plain-$pc" "$here/plain.c" $(pkg-config --cflags --libs $pc) \
    -Wl,-rpath,"$prefix/lib" >"$tmp/gcc.log" 2>&1; rc=$?
  check "gcc builds a program with pkg-config $pc" 0 "$rc"
  [ "$rc" = 0 ] || cat "$tmp/gcc.log"
  out=$("$prefix/bin/cordon-pku-run" --no-stdin -- "$tmp/plain-$pc" "gcc, pkg-config $pc" 2>"$tmp/err"); rc=$?
  [ "$rc" = 0 ] || cat "$tmp/err"
  check "the gcc program ($pc) calls through a gate" "0:plain app (gcc, pkg-config $pc): twice(21) = 42" "$rc:$out"
done
readelf -d "$tmp/plain-cordon" | grep -q "NEEDED.*\[$soname\]"; check "pkg-config cordon links $soname" 0 "$?"
! readelf -d "$tmp/plain-cordon-static" | grep -q "NEEDED.*libcordon"; check "pkg-config cordon-static links statically" 0 "$?"

# CORDON_TRUSTED code linked against libcordon.so fails, naming the cure.
clang-14 -c -o "$tmp/app.o" "$here/outside/app.c" -fpass-plugin="$(pkg-config --variable=plugin cordon-static)" \
  $(pkg-config --cflags cordon) >"$tmp/pass.log" 2>&1 &&
  clang-14 -o "$tmp/app-shared" "$tmp/app.o" $(pkg-config --libs cordon) >>"$tmp/pass.log" 2>&1; rc=$?
check "annotated code does not link with libcordon.so" 1 "$rc"
grep -q "undefined reference to \`cordon_trusted_code_needs_the_static_libcordon'" "$tmp/pass.log"
check "the link error says the static library is needed" 0 "$?"

# LD_PRELOAD: a program that knows nothing of Cordon loads a plugin that
# uses it; the plugin's calls bind to the preloaded libcordon.so. The
# plugin's secret, drawn in the trusted domain, reaches the judge (this
# script) on stderr before the lockdown; a direct read must fault with
# SEGV_PKUERR and print nothing of it, and the preloaded dlopen must refuse
# a library with a WRPKRU.
pre=$tmp/preload
mkdir -p "$pre"
gcc -std=c11 -Wall -Wextra -Werror -o "$pre/host" "$here/preload/host.c" -ldl >"$tmp/pre.log" 2>&1 &&
  gcc -std=c11 -Wall -Wextra -Werror -fPIC -shared -o "$pre/plugin.so" "$here/preload/plugin.c" \
    $(pkg-config --cflags cordon) >>"$tmp/pre.log" 2>&1 &&
  gcc -fPIC -shared -o "$pre/unsafe.so" "$here/preload/unsafe.c" >>"$tmp/pre.log" 2>&1; rc=$?
check "the preload programs build (host without Cordon)" 0 "$rc"
[ "$rc" = 0 ] || cat "$tmp/pre.log"
! readelf -d "$pre/host" "$pre/plugin.so" | grep -q 'NEEDED.*libcordon'; check "neither links libcordon" 0 "$?"
out=$("$prefix/bin/cordon-pku-run" --no-stdin --file "$pre" --file "$prefix/lib" -- \
  /usr/bin/env LD_PRELOAD="$prefix/lib/libcordon.so" "$pre/host" "$pre/plugin.so" 2 "$pre/unsafe.so" 2>"$tmp/err"); rc=$?
[ "$rc" = 0 ] || { echo "$out"; cat "$tmp/err"; }
check "the preloaded runtime protects the plugin's secret" "0" "$rc"
expected="plugin: cordon $(cat "$prefix/share/cordon/version"), secret in domain 1 (key 1), locked down
host: digests agree yes, differ by nonce yes
plugin: direct read of the secret: signal 11, si_code 4, si_pkey 1, at the secret yes
host: unsafe library refused"
check "preload: what the host and the plugin saw" "$expected" "$out"
secret=$(grep -oE '^[0-9a-f]{64}' "$tmp/err" | head -1)
[ -n "$secret" ]; check "the judge got the secret" 0 "$?"
! grep -q "${secret:-nosecret}" <<<"$out"; check "the secret is nowhere in the program's output" 0 "$?"
grep -q "cordon: refused dlopen(\"$pre/unsafe.so\")" "$tmp/err"; check "the refusal says why" 0 "$?"
# shellcheck disable=SC2046
gcc -c -o "$tmp/decl.o" "$here/trusted_decl.c" $(pkg-config --cflags cordon) >"$tmp/decl.log" 2>&1; rc=$?
check "gcc refuses CORDON_TRUSTED" 1 "$rc"
grep -q "error: CORDON_TRUSTED needs clang 14 with the Cordon pass plugin" "$tmp/decl.log"; check "gcc says why" 0 "$?"

# The installed tools.
out=$("$prefix/bin/cordon-scan" --version); check "cordon-scan --version" "cordon-scan $(cat "$prefix/share/cordon/version")" "$out"
"$prefix/bin/cordon-scan" "$tmp/outside/app" >/dev/null; check "cordon-scan passes the outside app" 0 "$?"
out=$("$prefix/bin/cordon-audit" --version)
check "cordon-audit --version" "cordon-audit $(cat "$prefix/share/cordon/version") (schema cordon.audit/1)" "$out"
"$prefix/bin/cordon-audit" schema | cmp -s - "$prefix/share/cordon/audit-schema-v1.json"
check "installed cordon-audit prints the installed schema" 0 "$?"
out=$("$prefix/bin/cordon-vm" --version); check "installed cordon-vm --version" "cordon-vm $(cat "$prefix/share/cordon/version")" "$out"
"$prefix/bin/cordon-vm" --kernel-path --kernel 6.12 >/dev/null; check "installed cordon-vm finds its kernels" 0 "$?"
finish
